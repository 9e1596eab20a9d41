"""TRANSPOSE_CONV with int8 weights (dynamic-range models) on the QD8 path: each image
quantized as one row, int8 x int8 sums in int32, the QD8 epilogue (kernels/ref/conv.c
transpose_conv2d_qd8). Checked bit for bit against a numpy model of that arithmetic, against
LiteRT's own hybrid TRANSPOSE_CONV, and against the float op on the dequantized weights
(the quantization error itself)."""
from __future__ import annotations

import struct

import numpy as np
import pytest

import edgeq
from edgeq.tflite.schema import BuiltinOp
from edgeq.tflite.writer import ModelBuilder
from harness import assert_close_to_range, run_edgeq, run_litert
from test_qd8_kernels import epilogue, quantize

F32 = np.float32
FLT_MAX = float(np.finfo(F32).max)


def deconv_spec(x, w, w_scale, bias, stride, pad, out_hw, act=(-np.inf, np.inf)):
    """The scatter TFLite defines, on the quantized image, in exact integers."""
    n, h, wd, _ = x.shape
    oc, kh, kw, _ = w.shape
    (sh, sw), (top, left), (oh, ow) = stride, pad, out_hw
    out = np.empty((n, oh, ow, oc), F32)
    for b in range(n):
        xq, zp, s = quantize(x[b])
        img = (xq - zp).reshape(h, wd, -1)
        acc = np.zeros(((h - 1) * sh + kh, (wd - 1) * sw + kw, oc), np.int64)
        for iy in range(h):
            for ix in range(wd):
                acc[iy * sh:iy * sh + kh, ix * sw:ix * sw + kw] += np.einsum(
                    "c,okxc->kxo", img[iy, ix], w.astype(np.int64))
        full = np.zeros((max(acc.shape[0], top + oh), max(acc.shape[1], left + ow), oc),
                        np.int64)
        full[:acc.shape[0], :acc.shape[1]] = acc
        out[b] = epilogue(full[top:top + oh, left:left + ow], s, w_scale, bias, *act)
    return out


def geometry(in_hw, k, stride, same):
    """(out_h, out_w), (pad_top, pad_left) as TFLite derives them for output in * stride (SAME)
    or in * stride + max(k - stride, 0) (VALID)."""
    out = [i * s if same else i * s + max(kk - s, 0) for i, kk, s in zip(in_hw, k, stride)]
    pads = [max((i - 1) * s + kk - o, 0) // 2 for i, kk, s, o in zip(in_hw, k, stride, out)]
    return tuple(out), tuple(pads)


def model(x_shape, w, w_scale, bias, out_shape, stride, same, act=0, float_weights=False):
    b = ModelBuilder(description="hybrid transpose conv")
    x = b.add_tensor("x", x_shape, F32)
    shape = b.add_tensor("output_shape", [4], np.int32, data=np.array(out_shape, np.int32))
    if float_weights:
        wt = b.add_tensor("w", w.shape, F32, data=(w * w_scale.reshape(-1, 1, 1, 1)).astype(F32))
    else:
        wt = b.add_tensor("w", w.shape, np.int8, data=w, quantization=dict(
            scale=w_scale, zero_point=np.zeros(len(w_scale), np.int64), quantized_dimension=0))
    ids = [shape, wt, x]
    if bias is not None:
        ids.append(b.add_tensor("bias", bias.shape, F32, data=bias))
    y = b.add_tensor("y", out_shape, F32)
    b.add_operator(BuiltinOp.TRANSPOSE_CONV, ids, [y], options={
        "padding": 0 if same else 1, "stride_h": stride[0], "stride_w": stride[1],
        "fused_activation_function": act})
    b.set_inputs([x]); b.set_outputs([y])
    return b.build()


CASES = [  # (n, h, w, ic), oc, kernel, stride, SAME, per-channel scales
    ((1, 1, 1, 1), 1, (1, 1), (1, 1), True, True),
    ((1, 5, 5, 8), 6, (3, 3), (2, 2), True, True),
    ((2, 4, 3, 3), 5, (3, 3), (2, 2), False, True),
    ((1, 6, 6, 16), 1, (2, 2), (2, 2), True, False),
    ((1, 3, 7, 9), 4, (4, 2), (1, 3), False, True),
    ((1, 4, 4, 33), 17, (5, 5), (2, 2), True, True),
]


@pytest.fixture(params=["best", "scalar"])
def isa(request, monkeypatch):
    """The kernel this CPU's dispatch picks, and the scalar reference (EDGEQ_ISA=scalar)."""
    if request.param == "scalar":
        monkeypatch.setenv("EDGEQ_ISA", "scalar")
    else:
        monkeypatch.delenv("EDGEQ_ISA", raising=False)
    return request.param


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("case", CASES, ids=str)
def test_matches_spec_litert_and_the_float_op(case, bias, isa):
    x_shape, oc, k, stride, same, per_channel = case
    rng = np.random.default_rng(sum(x_shape) * 10 + oc)
    ic = x_shape[3]
    w = rng.integers(-127, 128, (oc, k[0], k[1], ic)).astype(np.int8)
    w_scale = rng.uniform(0.001, 0.03, oc if per_channel else 1).astype(F32)
    b = rng.standard_normal(oc).astype(F32) if bias else None
    (oh, ow), pad = geometry(x_shape[1:3], k, stride, same)
    out_shape = [x_shape[0], oh, ow, oc]
    x = (rng.standard_normal(x_shape) + 0.3).astype(F32)
    hybrid = model(x_shape, w, w_scale, b, out_shape, stride, same)
    (actual,) = run_edgeq(hybrid, [x])
    scales = np.broadcast_to(w_scale, (oc,)).astype(F32)
    spec = deconv_spec(x, w, scales, b if bias else np.zeros(oc, F32), stride, pad, (oh, ow))
    np.testing.assert_array_equal(actual, spec)
    (litert,) = run_litert(hybrid, [x])
    assert_close_to_range(actual, litert, 1e-5, what="against LiteRT's hybrid TRANSPOSE_CONV")
    (exact,) = run_litert(model(x_shape, w, scales, b, out_shape, stride, same,
                                float_weights=True), [x])
    assert_close_to_range(actual, exact, 0.02, what="against the float op")


@pytest.mark.parametrize("ic,k,expected", [(8, 3, "transpose_conv2d_qd8_grid"),
                                            (64, 5, "transpose_conv2d_qd8")])
def test_int32_sums_where_float_ones_could_be_inexact(ic, k, expected, isa):
    """255 * sum |w| of an output channel reaching 2^24 keeps the int32 kernel (a 5x5x64 filter
    of +-127 does); below it the packed grid kernel runs; both give the spec bit for bit."""
    rng = np.random.default_rng(ic)
    w = rng.choice(np.array([-127, 127], np.int8), (3, k, k, ic))
    scale = rng.uniform(0.001, 0.01, 3).astype(F32)
    x = rng.standard_normal((1, 4, 4, ic)).astype(F32)
    m = model(x.shape, w, scale, None, [1, 8, 8, 3], (2, 2), True)
    it = edgeq.Interpreter(model_content=m)
    it.allocate_tensors()
    kernel = "transpose_conv2d_qd8" if isa == "scalar" else expected
    assert [n.call.kernel for n in it._get_plan().nodes] == [kernel]
    (actual,) = run_edgeq(m, [x])
    (oh, ow), pad = geometry((4, 4), (k, k), (2, 2), True)
    np.testing.assert_array_equal(actual, deconv_spec(x, w, scale, np.zeros(3, F32), (2, 2),
                                                      pad, (oh, ow)))


def test_fused_relu6_and_quantize_mode():
    rng = np.random.default_rng(3)
    w = rng.integers(-127, 128, (4, 3, 3, 8)).astype(np.int8)
    scale = rng.uniform(0.01, 0.05, 4).astype(F32)
    x = rng.standard_normal((1, 6, 6, 8)).astype(F32)
    relu6 = model(x.shape, w, scale, None, [1, 12, 12, 4], (2, 2), True, act=3)
    (actual,) = run_edgeq(relu6, [x])
    assert actual.min() >= 0 and actual.max() <= 6
    spec = deconv_spec(x, w, scale, np.zeros(4, F32), (2, 2), (0, 0), (12, 12), (0, 6))
    np.testing.assert_array_equal(actual, spec)
    # quantize="qd8" takes a float model's TRANSPOSE_CONV weights (>= 1024 elements) too
    big = rng.standard_normal((16, 3, 3, 8)).astype(F32)
    fm = model(x.shape, big, np.ones(16, F32), None, [1, 12, 12, 16], (2, 2), True,
               float_weights=True)
    it = edgeq.Interpreter(model_content=fm, quantize="qd8")
    it.allocate_tensors()
    assert [n.call.kernel for n in it._get_plan().nodes] == ["transpose_conv2d_qd8_grid"]
    it.set_tensor(it.get_input_details()[0]["index"], x)
    it.invoke()
    (exact,) = run_edgeq(fm, [x])
    assert_close_to_range(it.get_tensor(it.get_output_details()[0]["index"]), exact, 0.02)


def test_mediapipe_transpose_conv_bias_with_int8_weights():
    """Convolution2DTransposeBias with int8 weights takes the same QD8 kernel."""
    rng = np.random.default_rng(4)
    w = rng.integers(-127, 128, (2, 2, 2, 16)).astype(np.int8)
    scale = rng.uniform(0.01, 0.05, 2).astype(F32)
    bias = rng.standard_normal(2).astype(F32)
    b = ModelBuilder()
    x = b.add_tensor("x", [1, 4, 4, 16], F32)
    wt = b.add_tensor("w", w.shape, np.int8, data=w, quantization=dict(
        scale=scale, zero_point=np.zeros(2, np.int64), quantized_dimension=0))
    bt = b.add_tensor("bias", [2], F32, data=bias)
    y = b.add_tensor("y", [1, 8, 8, 2], F32)
    b.add_operator("Convolution2DTransposeBias", [x, wt, bt], [y],
                   custom_options=struct.pack("<iii", 1, 2, 2))
    b.set_inputs([x]); b.set_outputs([y])
    xin = rng.standard_normal((1, 4, 4, 16)).astype(F32)
    (actual,) = run_edgeq(b.build(), [xin])
    np.testing.assert_array_equal(actual, deconv_spec(xin, w, scale, bias, (2, 2), (0, 0),
                                                      (8, 8)))


def test_int8_weights_without_scales_are_refused():
    w = np.ones((2, 3, 3, 4), np.int8)
    b = ModelBuilder()
    x = b.add_tensor("x", [1, 2, 2, 4], F32)
    shape = b.add_tensor("s", [4], np.int32, data=np.array([1, 4, 4, 2], np.int32))
    wt = b.add_tensor("w", w.shape, np.int8, data=w)
    y = b.add_tensor("y", [1, 4, 4, 2], F32)
    b.add_operator(BuiltinOp.TRANSPOSE_CONV, [shape, wt, x], [y],
                   options={"padding": 0, "stride_h": 2, "stride_w": 2})
    b.set_inputs([x]); b.set_outputs([y])
    with pytest.raises(edgeq.ModelError, match=r"op 0 \(TRANSPOSE_CONV\): int8 weights tensor "
                                               r"2 'w' has no quantization scale"):
        edgeq.Interpreter(model_content=b.build()).allocate_tensors()
