"""Optimized RESIZE_BILINEAR, LOGISTIC, TANH and TRANSPOSE_CONV kernels against the scalar
references (kernels/ref), for every ISA variant this host can run, over edge sizes: 1 element,
channel counts around the 8-lane width, up- and down-sampling, every coordinate rule, strides
and paddings of transposed convolutions, with and without bias and fused clamps."""
import itertools

import numpy as np
import pytest

from edgeq.ops.conv import ConvParams, pack_deconv_weights, pad_deconv_channels
from edgeq.ops.pool import ResizeParams
from edgeq.runtime import cpu, run_kernel
from harness import assert_close_to_range, isa_fixture

F32 = np.float32
FLT_MAX = float(np.finfo(F32).max)
VARIANTS = {"avx2": cpu.FEATURES["avx2"], "neon": cpu.FEATURES["neon"]}
# The packed transposed convolution also has a portable C version (allowed=0).
DECONV_VARIANTS = dict(VARIANTS, portable=0)

allowed = isa_fixture(VARIANTS)


RESIZE_CASES = [((1, 1, 1), (1, 1)), ((2, 3, 1), (4, 6)), ((4, 4, 7), (9, 3)),
                ((5, 6, 8), (10, 12)), ((3, 3, 9), (7, 7)), ((16, 16, 24), (32, 32)),
                ((8, 5, 17), (3, 11)), ((2, 2, 128), (5, 4))]


@pytest.mark.parametrize("align,half", [(0, 0), (1, 0), (0, 1)])
@pytest.mark.parametrize("in_shape,out_hw", RESIZE_CASES, ids=str)
def test_resize_bilinear(allowed, in_shape, out_hw, align, half):
    h, w, c = in_shape
    x = np.random.default_rng(h * 100 + w * 10 + c).standard_normal((2, h, w, c)).astype(F32)
    params = bytes(ResizeParams(2, h, w, c, out_hw[0], out_hw[1], align, half))
    got = np.full((2, *out_hw, c), np.nan, F32)
    want = np.empty_like(got)
    run_kernel("resize_bilinear_f32", params, [x], [got], allowed=allowed)
    run_kernel("resize_bilinear_f32", params, [x], [want], allowed=0)
    assert_close_to_range(got, want, rel=1e-6)


def test_logistic(allowed):
    x = np.concatenate([np.linspace(-20, 20, 4001, dtype=F32),
                        np.random.default_rng(5).standard_normal(999).astype(F32) * 4,
                        np.array([0.0, -0.0, 1e-30, -1e-30, 80.0, -80.0, 88.0, 200.0, -200.0,
                                  np.inf, -np.inf], F32)])
    for n in (1, 7, 8, 9, x.size):
        got, want = np.full(n, np.nan, F32), np.empty(n, F32)
        run_kernel("logistic_f32", None, [x[:n]], [got], allowed=allowed)
        run_kernel("logistic_f32", None, [x[:n]], [want], allowed=0)
        # a few ulp relative; in the far negative tail the reference's subnormals become 0
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-37)
    nan = np.array([np.nan], F32)
    got = np.empty(1, F32)
    run_kernel("logistic_f32", None, [nan], [got], allowed=allowed)
    assert np.isnan(got[0])


def test_tanh(allowed):
    x = np.concatenate([np.linspace(-1, 1, 20001, dtype=F32), np.linspace(-20, 20, 4001, dtype=F32),
                        np.random.default_rng(6).standard_normal(999).astype(F32) * 2,
                        np.array([0.0, -0.0, 1e-30, -1e-30, 0.3125, -0.3125, 0.31249999, 44.0,
                                  -44.0, 100.0, np.inf, -np.inf], F32)])
    for n in (1, 7, 8, 9, x.size):
        got, want = np.full(n, np.nan, F32), np.empty(n, F32)
        run_kernel("tanh_f32", None, [x[:n]], [got], allowed=allowed)
        run_kernel("tanh_f32", None, [x[:n]], [want], allowed=0)
        # the NEON kernel is within 3.2e-7 relative of tanhf (its comment)
        np.testing.assert_allclose(got, want, rtol=4e-7, atol=1e-37)
        np.testing.assert_array_equal(np.signbit(got), np.signbit(want))  # -0 stays -0
    nan = np.array([np.nan], F32)
    got = np.empty(1, F32)
    run_kernel("tanh_f32", None, [nan], [got], allowed=allowed)
    assert np.isnan(got[0])


def _deconv_geometry(in_hw, k, stride, same):
    """(out_h, out_w, pad_top, pad_left) as edgeq/ops/conv.py derives them."""
    out = [i * s if same else i * s + max(kk - s, 0) for i, kk, s in zip(in_hw, k, stride)]
    pads = []
    for o, kk, s, i in zip(out, k, stride, in_hw):
        back = (o + s - 1) // s if same else (o - kk + s) // s
        assert back == i
        pads.append(max((i - 1) * s + kk - o, 0) // 2)
    return out[0], out[1], pads[0], pads[1]


DECONV_CASES = [  # (in h, w, c), out channels, kernel, stride, SAME
    ((1, 1, 1), 1, (1, 1), (1, 1), True), ((4, 5, 3), 2, (3, 3), (2, 2), True),
    ((4, 5, 3), 2, (3, 3), (2, 2), False), ((3, 4, 8), 5, (2, 2), (2, 2), True),
    ((6, 3, 16), 1, (2, 2), (2, 2), True), ((5, 5, 9), 7, (4, 4), (1, 1), False),
    ((3, 6, 17), 4, (3, 2), (3, 1), False), ((2, 2, 33), 9, (5, 5), (2, 3), True),
    # filters that tile the output (stride = size, no padding): channel tails, 1..3 outputs,
    # a selfie_segmentation-sized head
    ((5, 7, 19), 3, (2, 2), (2, 2), False), ((4, 3, 4), 2, (3, 2), (3, 2), True),
    ((32, 32, 16), 1, (2, 2), (2, 2), True), ((3, 5, 4), 1, (2, 2), (2, 2), True),
    ((2, 3, 8), 1, (2, 2), (2, 2), False), ((3, 2, 12), 1, (2, 2), (2, 2), True),
    ((2, 2, 20), 1, (2, 2), (2, 2), True),
]


deconv_allowed = isa_fixture(DECONV_VARIANTS)


@pytest.mark.parametrize("bias,act", [(True, (-FLT_MAX, FLT_MAX)), (False, (-0.5, 0.7))])
@pytest.mark.parametrize("case", DECONV_CASES + [((3, 3, 5), 40, (3, 3), (2, 2), True), ((2, 3, 4), 24, (2, 2), (2, 2), True)], ids=str)
@pytest.mark.parametrize("packed", [True, False])
def test_transpose_conv(deconv_allowed, case, bias, act, packed):
    allowed = deconv_allowed
    (h, w, c), oc, k, stride, same = case
    rng = np.random.default_rng(h + 7 * w + 31 * c + oc)
    out_h, out_w, pad_top, pad_left = _deconv_geometry((h, w), k, stride, same)
    x = rng.standard_normal((2, h, w, c)).astype(F32)
    filt = rng.standard_normal((oc, k[0], k[1], c)).astype(F32)
    b = rng.standard_normal(oc).astype(F32) if bias else None
    params = bytes(ConvParams(2, h, w, c, out_h, out_w, oc, k[0], k[1], stride[0], stride[1],
                              1, 1, pad_top, pad_left, 1, 1, *act))
    got = np.full((2, out_h, out_w, oc), np.nan, F32)
    want = np.empty_like(got)
    if packed:
        run_kernel("transpose_conv2d_f32_packed", params,
                   [x, pack_deconv_weights(filt), pad_deconv_channels(b, oc)], [got],
                   allowed=allowed)
    else:  # the unpacked kernel's ISA variants (allowed=0: the reference itself)
        run_kernel("transpose_conv2d_f32", params, [x, filt, b], [got], allowed=allowed)
    run_kernel("transpose_conv2d_f32", params, [x, filt, b], [want], allowed=0)
    assert_close_to_range(got, want, rel=1e-5)
