"""MediaPipe's custom ops (edgeq/ops/mediapipe.py).

LiteRT runs selfie_segmentation.tflite's Convolution2DTransposeBias only in its XNNPack delegate
(its own kernels refuse it). edgeq is compared against both: LiteRT + XNNPack on the model as it
is, and LiteRT's reference kernels on its builtin twin (edgeq/tflite/twin.py: the op rewritten as
TRANSPOSE_CONV with a bias). The op's own output (the logits before the final sigmoid) is exposed
as a second graph output, so that the comparison sees values with a real range.
"""
from __future__ import annotations

import struct

import numpy as np
import pytest

import edgeq
from edgeq.tflite.twin import builtin_twin
from edgeq.tflite.writer import ModelBuilder
from harness import (assert_close_to_range, run_edgeq, run_litert,
                     shared_model)

CUSTOM = "Convolution2DTransposeBias"


def rewrite(model: bytes, builtin: bool, expose_custom_outputs: bool = True) -> bytes:
    return builtin_twin(model, builtin=builtin, expose_custom_outputs=expose_custom_outputs)


@pytest.mark.parametrize("reference", ["xnnpack", "twin"])
def test_selfie_segmentation_matches_litert(reference):
    model = shared_model("selfie_segmentation.tflite").read_bytes()
    x = np.random.default_rng(3).uniform(0, 1, (1, 256, 256, 3)).astype(np.float32)
    if reference == "xnnpack":
        expected = run_litert(rewrite(model, builtin=False), [x])
    else:
        expected = run_litert(rewrite(model, builtin=True), [x], kernels="reference")
    actual = run_edgeq(rewrite(model, builtin=False), [x])
    assert len(actual) == len(expected) == 2
    logits = expected[1]
    assert float(logits.max() - logits.min()) > 1.0  # the comparison sees a real range
    for k, (a, e) in enumerate(zip(actual, expected)):
        assert_close_to_range(a, e, 1e-4, what=f"selfie_segmentation output {k}")


def test_selfie_segmentation_runs_as_shipped():
    path = shared_model("selfie_segmentation.tflite")
    it = edgeq.Interpreter(model_path=str(path), num_threads=1)
    it.allocate_tensors()
    out = it.get_output_details()[0]
    assert list(out["shape"]) == [1, 256, 256, 1]
    it.set_tensor(it.get_input_details()[0]["index"],
                  np.full((1, 256, 256, 3), 0.5, np.float32))
    it.invoke()
    mask = it.get_tensor(out["index"])
    assert np.all((mask >= 0) & (mask <= 1))  # a sigmoid's output


def _one_op(options: bytes, x_shape=(1, 4, 5, 3), w_shape=(2, 3, 3, 3), out_shape=None):
    rng = np.random.default_rng(0)
    b = ModelBuilder()
    x = b.add_tensor("x", x_shape, np.float32)
    w = b.add_tensor("w", w_shape, np.float32,
                     data=rng.standard_normal(w_shape).astype(np.float32))
    bias = b.add_tensor("bias", [w_shape[0]], np.float32,
                        data=rng.standard_normal(w_shape[0]).astype(np.float32))
    y = b.add_tensor("y", out_shape or [1, 1, 1, 1], np.float32)
    b.add_operator(CUSTOM, [x, w, bias], [y], custom_options=options)
    b.set_inputs([x]); b.set_outputs([y])
    return b.build(), rng.standard_normal(x_shape).astype(np.float32)


@pytest.mark.parametrize("padding,strides,k", [(1, (2, 2), 3), (2, (2, 2), 3), (1, (1, 2), 2),
                                               (2, (3, 1), 2), (2, (1, 1), 4), (1, (3, 3), 1)])
def test_one_op_matches_builtin_transpose_conv(padding, strides, k):
    options = struct.pack("<iii", padding, strides[1], strides[0])
    in_h, in_w = 4, 5
    if padding == 1:  # SAME
        out_shape = [1, in_h * strides[0], in_w * strides[1], 2]
    else:  # VALID
        out_shape = [1, in_h * strides[0] + max(k - strides[0], 0),
                     in_w * strides[1] + max(k - strides[1], 0), 2]
    # The declared output shape (as MediaPipe's converter writes it) is what the builtin twin
    # is given; edgeq computes its own from the options and must agree.
    model, x = _one_op(options, x_shape=(1, in_h, in_w, 3), w_shape=(2, k, k, 3),
                       out_shape=out_shape)
    (actual,) = run_edgeq(model, [x])
    (expected,) = run_litert(rewrite(model, builtin=True, expose_custom_outputs=False), [x])
    assert list(actual.shape) == out_shape
    assert_close_to_range(actual, expected, 1e-4, what="Convolution2DTransposeBias")


@pytest.mark.parametrize("options,match", [
    (b"", r"custom_options must hold padding.*has 0 bytes"),
    (struct.pack("<ii", 1, 2), r"has 8 bytes"),
    (struct.pack("<iii", 0, 2, 2), r"padding is 0; expected 1 \(SAME\) or 2 \(VALID\)"),
    (struct.pack("<iii", 1, 0, 2), r"stride_width is 0"),
    (struct.pack("<iii", 2, 2, -1), r"stride_height is -1"),
])
def test_bad_options_are_refused_by_field(options, match):
    model, _ = _one_op(options)
    with pytest.raises(edgeq.ModelError, match=r"op 0 \(Convolution2DTransposeBias\): .*" + match):
        edgeq.Interpreter(model_content=model).allocate_tensors()


def test_mismatched_weights_are_refused():
    model, _ = _one_op(struct.pack("<iii", 1, 2, 2), w_shape=(2, 3, 3, 4))
    with pytest.raises(edgeq.ModelError, match=r"input has 3 channels but the weights"):
        edgeq.Interpreter(model_content=model).allocate_tensors()
