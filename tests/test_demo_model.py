"""The shipped demo model (edgeq/data/demo_shapes.*): what it is, that LiteRT runs it as the
numpy model it was trained as, that it recognises fresh shapes, and that the script rebuilds it."""
from __future__ import annotations

import resource
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import edgeq
from edgeq.tflite.reader import read_model
from edgeq.tflite.schema import BuiltinOp

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
import make_demo_model as demo  # noqa: E402

MODEL = ROOT / "edgeq" / "data" / "demo_shapes.tflite"
LABELS = ROOT / "edgeq" / "data" / "demo_shapes_labels.txt"
INPUTS = ROOT / "edgeq" / "data" / "demo_shapes_inputs.npz"
FRESH_SEED = 20240607  # images neither training, testing nor the samples used


def litert():
    return pytest.importorskip("ai_edge_litert.interpreter",
                               reason="ai-edge-litert (the reference) is not installed")


def shipped_samples():
    with np.load(INPUTS) as npz:
        return npz["images"], npz["labels"]


def test_shipped_files_describe_a_small_six_class_model():
    model = read_model(MODEL.read_bytes())
    assert MODEL.stat().st_size < 100_000
    assert LABELS.read_text().splitlines() == demo.LABELS
    assert model.metadata["labels"].decode().splitlines() == demo.LABELS
    sub = model.subgraphs[0]
    ops = [op.builtin_code for op in sub.operators]
    assert ops == [BuiltinOp.CONV_2D, BuiltinOp.DEPTHWISE_CONV_2D, BuiltinOp.CONV_2D,
                   BuiltinOp.MEAN, BuiltinOp.FULLY_CONNECTED, BuiltinOp.SOFTMAX]
    conv1, dw, pw = sub.operators[:3]
    assert (conv1.options["stride_h"], conv1.options["stride_w"]) == (2, 2)
    assert [o.options["fused_activation_function"] for o in (conv1, dw, pw)] == [1, 3, 1]
    (inp,), (out,) = sub.inputs, sub.outputs
    assert sub.tensors[inp].shape == (1, 32, 32, 3)
    assert sub.tensors[inp].dtype == np.float32
    assert sub.tensors[out].shape == (1, len(demo.LABELS))
    constants = [t for t in sub.tensors if t.data is not None]
    assert all(t.dtype in (np.float32, np.int32) for t in constants)


def test_shipped_samples_are_the_seeded_images_and_cover_every_class():
    images, labels = shipped_samples()
    assert images.dtype == np.float32 and images.shape[1:] == (32, 32, 3)
    assert 0.0 <= images.min() and images.max() <= 1.0
    assert set(labels.tolist()) == set(range(len(demo.LABELS)))
    again, again_labels = demo.make_images(len(labels), demo.SAMPLE_SEED)
    np.testing.assert_array_equal(labels, again_labels)
    np.testing.assert_allclose(images, again, atol=1e-6)


def test_images_are_balanced_and_differ_between_seeds():
    a, ya = demo.make_images(60, 11)
    b, yb = demo.make_images(60, 12)
    assert np.bincount(ya).tolist() == [10] * len(demo.LABELS)
    assert not np.allclose(a, b)


def test_litert_computes_what_the_numpy_model_computes():
    litert()
    model = MODEL.read_bytes()
    params = demo.params_from_model(model)
    images, _ = demo.make_images(60, FRESH_SEED)
    expected = demo.forward(params, images)
    got = demo.run_litert(model, images)
    assert np.abs(got - expected).max() < 1e-5
    np.testing.assert_array_equal(got.argmax(1), expected.argmax(1))


def test_litert_recognises_fresh_shapes_and_the_shipped_samples():
    litert()
    model = MODEL.read_bytes()
    images, labels = demo.make_images(600, FRESH_SEED)
    accuracy = float((demo.run_litert(model, images).argmax(1) == labels).mean())
    assert accuracy > 0.9, f"accuracy {accuracy:.3f} on fresh images"
    samples, sample_labels = shipped_samples()
    np.testing.assert_array_equal(demo.run_litert(model, samples).argmax(1), sample_labels)


def test_edgeq_matches_litert_on_the_demo_model():
    litert()
    model = MODEL.read_bytes()
    images, _ = demo.make_images(20, FRESH_SEED)
    expected = demo.run_litert(model, images)
    it = edgeq.Interpreter(model_content=model, num_threads=1)
    it.allocate_tensors()
    (inp,), (out,) = it.get_input_details(), it.get_output_details()
    got = []
    for img in images:
        it.set_tensor(inp["index"], img[None])
        it.invoke()
        got.append(it.get_tensor(out["index"])[0])
    assert np.abs(np.array(got) - expected).max() < 1e-4


def test_script_regenerates_an_equivalent_model(tmp_path):
    """The script runs within its minute and rebuilds a model that does as well as the shipped
    one. Bytes are the same on one machine but may differ on another (its BLAS may sum in
    another order), so compare behaviour."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_utime
    done = subprocess.run([sys.executable, str(ROOT / "tools" / "make_demo_model.py"),
                           "--out-dir", str(tmp_path)], capture_output=True, text=True,
                          cwd=ROOT, timeout=600)
    cpu = resource.getrusage(resource.RUSAGE_CHILDREN).ru_utime - before
    assert done.returncode == 0, done.stdout + done.stderr
    # CPU time, not wall time: a busy machine must not fail this (about 25 s when idle).
    assert cpu < 60, f"the script used {cpu:.0f} s of CPU"
    assert "held-out accuracy" in done.stdout
    fresh = read_model((tmp_path / MODEL.name).read_bytes())
    shipped = read_model(MODEL.read_bytes())
    assert [(t.name, t.shape) for t in fresh.subgraphs[0].tensors] == \
        [(t.name, t.shape) for t in shipped.subgraphs[0].tensors]
    assert (tmp_path / LABELS.name).read_text() == LABELS.read_text()
    with np.load(tmp_path / INPUTS.name) as npz:
        np.testing.assert_array_equal(npz["labels"], shipped_samples()[1])
    images, labels = demo.make_images(300, FRESH_SEED)
    p_fresh = demo.forward(demo.params_from_model((tmp_path / MODEL.name).read_bytes()), images)
    p_shipped = demo.forward(demo.params_from_model(MODEL.read_bytes()), images)
    assert float((p_fresh.argmax(1) == labels).mean()) > 0.9
    assert float((p_fresh.argmax(1) == p_shipped.argmax(1)).mean()) > 0.9
