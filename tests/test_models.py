"""Every model in ../shared/models, run by edgeq and by LiteRT on the same inputs.

fp32 paths must agree within 1e-4 of each output's range. The shared folder ships with CI but
not with a user's clone: without it these tests skip, saying so. Where LiteRT cannot run (emulated
ARM, tools/qemu_pytest.py), its outputs recorded on x86 by tools/record_references.py under
tests/reference/ stand in for it.
"""
from __future__ import annotations

import hashlib
import importlib.util
from pathlib import Path

import numpy as np
import pytest

import edgeq
from harness import assert_close_to_range, litert_interpreter, shared_model

FLOAT_MODELS = [
    "ds_cnn_kws.fp32.tflite", "ds_cnn_kws.fp16.tflite",
    "mobilenet_v2.fp32.tflite", "mobilenet_v2.fp16.tflite",
    "mobilenet_v3_small.fp32.tflite", "mobilenet_v3_small.fp16.tflite",
    "tiny_bert.fp32.tflite", "tiny_bert.fp16.tflite",
    "face_detection_short_range.tflite", "face_landmark.tflite", "hand_landmark_lite.tflite",
    "hand_recrop.tflite", "iris_landmark.tflite", "palm_detection_lite.tflite",
]

# Dynamic-range int8 models (the QD8 path): compared in tests/test_qd8_models.py, with a
# tolerance measured there.
QD8_MODELS = ["ds_cnn_kws.qd8.tflite", "mobilenet_v2.qd8.tflite",
              "mobilenet_v3_small.qd8.tflite", "tiny_bert.qd8.tflite"]

# Inputs with unknown dims are resized to these before allocation (both runtimes alike).
RESIZE = {"mobilenet_v3_small": (1, 224, 224, 3)}
REFERENCE = Path(__file__).resolve().parent / "reference"


def make_inputs(details, seed=0):
    rng = np.random.default_rng(seed)
    feeds = []
    for d in details:
        shape = tuple(int(s) for s in d["shape"])
        if np.issubdtype(d["dtype"], np.integer):
            feeds.append(rng.integers(0, 1000, shape).astype(d["dtype"]))
        else:
            feeds.append(rng.uniform(-1, 1, shape).astype(d["dtype"]))
    return feeds


def run(interp, model_name, seed):
    new_shape = RESIZE.get(model_name.split(".")[0])
    if new_shape:
        interp.resize_tensor_input(interp.get_input_details()[0]["index"], new_shape)
    interp.allocate_tensors()
    feeds = make_inputs(interp.get_input_details(), seed)
    for d, x in zip(interp.get_input_details(), feeds):
        interp.set_tensor(d["index"], x)
    interp.invoke()
    return [interp.get_tensor(d["index"]) for d in interp.get_output_details()]


def inputs_digest(feeds):
    """tools/record_references.py's digest of the inputs it fed LiteRT."""
    h = hashlib.sha256()
    for x in feeds:
        x = np.ascontiguousarray(x)
        h.update(f"{x.dtype.str}{x.shape}".encode())
        h.update(x.tobytes())
    return h.hexdigest()


def recorded_outputs(name, ran):
    """LiteRT's outputs recorded on x86; `ran` is the interpreter that just ran the same inputs."""
    path = REFERENCE / (name[: -len(".tflite")] + ".npz")
    if not path.exists():
        pytest.skip(f"LiteRT is not installed and {path.name} is not recorded")
    with np.load(path) as ref:
        feeds = make_inputs(ran.get_input_details(), seed=int(ref["seed"]))
        assert inputs_digest(feeds) == str(ref["inputs_sha256"]), \
            f"{path.name} was recorded from other inputs: re-run tools/record_references.py"
        return [ref[f"output_{k}"] for k in range(len(ran.get_output_details()))]


@pytest.mark.parametrize("name", FLOAT_MODELS)
def test_model_matches_litert(name):
    path = shared_model(name)
    ours = edgeq.Interpreter(model_path=str(path), num_threads=1)
    actual = run(ours, name, seed=1)
    if importlib.util.find_spec("ai_edge_litert") is None:
        expected = recorded_outputs(name, ours)
    else:
        expected = run(litert_interpreter(model_path=str(path)), name, seed=1)
    assert len(actual) == len(expected)
    for k, (a, e) in enumerate(zip(actual, expected)):
        assert_close_to_range(a, e, 1e-4, what=f"{name} output {k}")


def test_an_unknown_custom_op_is_refused_by_name():
    """A shared model whose custom op is renamed to one nobody has: refused at load, naming it
    (selfie_segmentation's own Convolution2DTransposeBias runs: tests/test_mediapipe_ops.py)."""
    model = shared_model("selfie_segmentation.tflite").read_bytes()
    renamed = model.replace(b"Convolution2DTransposeBias", b"Convolution2DTransposeBiaz")
    assert renamed != model
    with pytest.raises(edgeq.ModelError, match=r"custom op Convolution2DTransposeBiaz is not "
                                               r"supported by edgeq \(first at op 244"):
        edgeq.Interpreter(model_content=renamed)


def test_details_match_litert():
    path = shared_model("tiny_bert.fp32.tflite")
    ours = edgeq.Interpreter(model_path=str(path))
    ref = litert_interpreter(model_path=str(path))
    for mine, theirs in [(ours.get_input_details(), ref.get_input_details()),
                         (ours.get_output_details(), ref.get_output_details())]:
        assert len(mine) == len(theirs)
        for m, t in zip(mine, theirs):
            assert set(m) == set(t)
            for key in ("name", "index", "dtype", "quantization"):
                assert m[key] == t[key], key
            np.testing.assert_array_equal(m["shape"], t["shape"])
            np.testing.assert_array_equal(m["shape_signature"], t["shape_signature"])
    assert ours.get_signature_list() == ref.get_signature_list()


@pytest.mark.parametrize("name", ["ds_cnn_kws.fp32.tflite", "mobilenet_v3_small.fp16.tflite",
                                  "tiny_bert.fp32.tflite", "face_detection_short_range.tflite"])
def test_edgeq_run_command_matches_litert(name, tmp_path):
    """`edgeq run MODEL --input x.npz --output y.npz` gives LiteRT's outputs too."""
    from edgeq.cli import main

    path = shared_model(name)
    ref = edgeq.Interpreter(model_path=str(path), num_threads=1)
    run(ref, name, seed=1)  # resized and allocated: its details give the inputs' shapes
    if importlib.util.find_spec("ai_edge_litert") is None:
        expected = recorded_outputs(name, ref)
    else:
        expected = run(litert_interpreter(model_path=str(path)), name, seed=1)
    details = ref.get_input_details()
    feeds = make_inputs(details, seed=1)
    np.savez(tmp_path / "in.npz", **{d["name"]: x for d, x in zip(details, feeds)})
    argv = ["run", str(path), "--input", str(tmp_path / "in.npz"), "--output",
            str(tmp_path / "out.npz"), "--threads", "1", "--repeat", "0"]
    assert main(argv) == 0
    with np.load(tmp_path / "out.npz") as saved:
        names = [d["name"] for d in ref.get_output_details()]
        assert sorted(saved.files) == sorted(names)
        for k, (n, e) in enumerate(zip(names, expected)):
            assert_close_to_range(saved[n], e, 1e-4, what=f"{name} output {k} via edgeq run")


def test_an_input_too_small_for_the_model_is_refused_not_nan():
    path = shared_model("mobilenet_v3_small.fp32.tflite")
    it = edgeq.Interpreter(model_path=str(path), num_threads=1)
    it.resize_tensor_input(it.get_input_details()[0]["index"], (1, 8, 8, 3))
    with pytest.raises(edgeq.ModelError, match=r"too small for this model.*empty output"):
        it.allocate_tensors()
