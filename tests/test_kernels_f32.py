"""Optimized float32 kernels (packed-weight GEMM, indirect-GEMM convolution, depthwise) against the
scalar reference kernels (kernels/ref/conv.c, the spec), for every ISA variant this host can run,
over edge sizes: 1, tails of the 4/6/7-row and 16/32-column tiles, odd channel counts, large.

Each variant runs through run_kernel with `allowed` set to that ISA's bits (0 = the portable
microkernels); the reference is the unpacked kernel run with allowed=0. They may differ only by
reassociation and FMA, hence the small tolerance.
"""
import itertools

import numpy as np
import pytest

from edgeq.ops.common import broadcast_strides, pack_f32_gemm_weights
from edgeq.ops.conv import ConvParams, FcParams
from edgeq.ops.elementwise import BinaryParams, _array
from edgeq.runtime import cpu, run_kernel
from harness import assert_close_to_range, isa_fixture

F32 = np.float32
FLT_MAX = float(np.finfo(F32).max)
VARIANTS = {"portable": 0, "avx2": cpu.FEATURES["avx2"],
            "avx512": cpu.FEATURES["avx2"] | cpu.FEATURES["avx512"], "neon": cpu.FEATURES["neon"]}

allowed = isa_fixture(VARIANTS)


def rand(rng, *shape):
    return rng.standard_normal(shape).astype(F32)


# The GEMM epilogue's optional parts (edgeq/f32_gemm.h): PRELU slopes, a residual, both.
EPILOGUES = {"slope": (True, False), "residual": (False, True), "both": (True, True)}


def epilogue_inputs(rng, out_shape, epilogue):
    """(kernel inputs 2 and 3, numpy epilogue) for an epilogue name (None = the clamp alone):
    slopes padded to whole 16-column blocks (NaN past the channels, never to be read into an
    output), a residual shaped as the output."""
    if epilogue is None:
        return [], lambda v, lo, hi: v
    def hswish(v):
        return (v * np.clip(v + F32(3), F32(0), F32(6)) / F32(6)).astype(F32)

    if epilogue == "hswish":  # by the kernel's name (conv2d_f32_*gemm_hswish), no inputs
        return [], lambda v, lo, hi: hswish(v)
    if epilogue == "residual_hswish":  # no graph pass makes it; the kernels take it
        residual = rand(rng, *out_shape)
        return [None, residual], lambda v, lo, hi: hswish(np.clip(v + residual, F32(lo),
                                                                  F32(hi)))
    with_slope, with_residual = EPILOGUES[epilogue]
    n = out_shape[-1]
    slopes = np.full(-(-n // 16) * 16, np.nan, F32)
    slopes[:n] = rng.uniform(-2, 2, n).astype(F32)
    slopes[: min(n, 3)] = [0.0, 1.0, -0.25][: min(n, 3)]
    residual = rand(rng, *out_shape)

    def apply(v, lo, hi):
        if with_residual:
            v = np.clip(v + residual, F32(lo), F32(hi))
        return (np.where(v >= 0, v, v * slopes[:n]) if with_slope else v).astype(F32)

    return [slopes if with_slope else None, residual if with_residual else None], apply


def fc(allowed, rows, depth, units, bias=True, act=(-FLT_MAX, FLT_MAX), seed=0, epilogue=None):
    rng = np.random.default_rng(seed)
    x, w = rand(rng, rows, depth), rand(rng, units, depth)
    b = rand(rng, units) if bias else None
    params = bytes(FcParams(rows, depth, units, *act))
    got = np.full((rows, units), np.nan, F32)
    extra, apply = epilogue_inputs(rng, (rows, units), epilogue)
    run_kernel("fully_connected_f32_gemm", params, [x, pack_f32_gemm_weights(w, b)] + extra,
               [got], allowed=allowed)
    want = np.empty((rows, units), F32)
    # The reference runs unclamped when a residual comes before the clamp.
    ref_act = (-FLT_MAX, FLT_MAX) if extra and extra[1] is not None else act
    run_kernel("fully_connected_f32", bytes(FcParams(rows, depth, units, *ref_act)), [x, w, b],
               [want], allowed=0)
    assert_close_to_range(got, apply(want, *act), rel=1e-5)


GEMM_M = [1, 2, 5, 6, 7, 8, 9, 13, 16, 17, 49]
# Column tails of the 16- and 32-column tiles (a 32-column tile reads two packed blocks).
GEMM_N = [1, 7, 15, 16, 17, 24, 31, 32, 33, 48, 63]
GEMM_K = [1, 3, 16, 67]


@pytest.mark.parametrize("m", GEMM_M)
def test_gemm_tiles_and_tails(allowed, m):
    for n, k in itertools.product(GEMM_N, GEMM_K):
        fc(allowed, m, k, n, seed=m * 1000 + n * 10 + k)


def test_gemm_large_and_clamped(allowed):
    fc(allowed, 300, 517, 203, seed=1)
    fc(allowed, 97, 960, 1280, bias=False, seed=2)
    fc(allowed, 37, 64, 45, act=(0.0, 6.0), seed=3)
    fc(allowed, 1, 1280, 1000, act=(-1.0, 1.0), seed=4)
    # Blocks of 83 KB: a task's slice of W (three blocks in 256 KB) rounds to whole 32-column
    # tiles, over an odd number of blocks.
    fc(allowed, 9, 1300, 100, seed=5)


@pytest.mark.parametrize("m", range(1, 14))
def test_gemm_walking_tiles_every_width(allowed, m):
    """Every N to 80 (a walking microkernel's 16-column blocks, its 24-column tails as two
    3x24 tiles, 8-column ends, one row over up to four blocks), K odd and even, each row count
    of one to two tiles and a bit."""
    for n, k in itertools.product(range(1, 81), [5, 8]):
        fc(allowed, m, k, n, seed=m * 1000 + n * 10 + k)


def test_gemm_walking_tails_across_slices(allowed):
    # 24-column tails (N = 24, 40, 72, 120) behind wide and deep weights: blocks of 5 to 83 KB,
    # a call's span cut to what stays in L1, a task's slice of W to what stays in L2.
    for m, k, n in [(13, 300, 40), (7, 1300, 72), (19, 96, 120), (6, 16, 1000), (1, 1300, 40),
                    (25, 144, 24), (8, 640, 200)]:
        fc(allowed, m, k, n, seed=m + k + n)
        fc(allowed, m, k, n, seed=m + k + n + 1, epilogue="both")


@pytest.mark.parametrize("k", [47, 48, 255, 256])
def test_gemm_depths_at_the_two_pass_bounds(allowed, k):
    """Depths on both sides of the range where the AVX-512 7x32 tile runs as two 16-column
    passes on Zen 4 (taps * kc in [48, 256)): two blocks, the second one full, partial or a
    ymm-wide tail, behind every epilogue; and convolutions reaching it by filter rows and taps."""
    for m, n in itertools.product([6, 7, 15], [17, 24, 32, 40, 64]):
        fc(allowed, m, k, n, seed=m * 1000 + n * 10 + k, epilogue="both")
    fc(allowed, 14, k, 31, act=(-0.5, 0.5), seed=k)
    c = k // 9 + 1  # 3x3 taps of c channels: depth 9c, filter rows 3c wide
    conv(allowed, "conv2d_f32_igemm", (1, 7, 9, c), 29, (3, 3), pads=(1, 1, 1, 1), seed=k)
    conv(allowed, "conv2d_f32_igemm", (1, 6, 8, c), 48, (3, 3), seed=k + 1, epilogue="both")


@pytest.mark.parametrize("epilogue", list(EPILOGUES))
@pytest.mark.parametrize("m", [1, 2, 6, 7, 9, 17])
def test_gemm_epilogue_tiles_and_tails(allowed, m, epilogue):
    for n, k in itertools.product(GEMM_N, [1, 16, 67]):
        fc(allowed, m, k, n, seed=m * 1000 + n * 10 + k, epilogue=epilogue)
    fc(allowed, m, 40, 37, act=(-0.5, 1.5), seed=m, epilogue=epilogue)


def test_gemm_epilogue_large(allowed):
    fc(allowed, 300, 517, 203, seed=1, epilogue="both")
    fc(allowed, 97, 64, 1280, bias=False, seed=2, epilogue="slope")


def test_gemm_epilogue_nan(allowed):
    """A NaN sum stays NaN through residual, clamp and slope, as in the unfused ops."""
    x = np.array([[np.nan, 1.0]], F32)
    w = np.ones((3, 2), F32)
    got = np.zeros((1, 3), F32)
    slopes = np.zeros(16, F32)
    run_kernel("fully_connected_f32_gemm", bytes(FcParams(1, 2, 3, 0.0, 6.0)),
               [x, pack_f32_gemm_weights(w, None), slopes, np.ones((1, 3), F32)], [got],
               allowed=allowed)
    assert np.isnan(got).all()


def test_gemm_passes_nan_through_the_clamp(allowed):
    x = np.array([[np.nan, 1.0]], F32)
    w = np.ones((3, 2), F32)
    got = np.zeros((1, 3), F32)
    run_kernel("fully_connected_f32_gemm", bytes(FcParams(1, 2, 3, 0.0, 6.0)),
               [x, pack_f32_gemm_weights(w, None)], [got], allowed=allowed)
    assert np.isnan(got).all()


def conv_params(n, h, w, c, oc, kh, kw, stride, dilation, pads, act=(-FLT_MAX, FLT_MAX),
                multiplier=1):
    """Geometry with explicit padding (top, left, bottom, right): kernels take any."""
    top, left, bottom, right = pads
    out_h = (h + top + bottom - (kh - 1) * dilation[0] - 1) // stride[0] + 1
    out_w = (w + left + right - (kw - 1) * dilation[1] - 1) // stride[1] + 1
    return ConvParams(n, h, w, c, max(out_h, 0), max(out_w, 0), oc, kh, kw, stride[0], stride[1],
                      dilation[0], dilation[1], top, left, 1, multiplier, *act)


def conv(allowed, kernel, shape, oc, k, stride=(1, 1), dilation=(1, 1), pads=(0, 0, 0, 0),
         bias=True, act=(-FLT_MAX, FLT_MAX), seed=0, padded_copy=False, epilogue=None):
    rng = np.random.default_rng(seed)
    n, h, w, c = shape
    p = conv_params(n, h, w, c, oc, k[0], k[1], stride, dilation, pads, act)
    x, f = rand(rng, *shape), rand(rng, oc, k[0], k[1], c)
    b = rand(rng, oc) if bias else None
    out_shape = (n, p.out_h, p.out_w, oc)
    extra, apply = epilogue_inputs(rng, out_shape, epilogue)
    want = np.empty(out_shape, F32)
    ref = conv_params(n, h, w, c, oc, k[0], k[1], stride, dilation, pads,
                      (-FLT_MAX, FLT_MAX) if extra and extra[1] is not None else act)
    run_kernel("conv2d_f32", bytes(ref), [x, f, b], [want], allowed=0)
    want = apply(want, *act)
    got = np.full(out_shape, np.nan, F32)
    depth = k[0] * k[1] * c
    packed = pack_f32_gemm_weights(f.reshape(oc, depth), b)
    scratch = k[1] * c * 4
    if padded_copy:  # room for the zero-padded input: the kernel then reads that copy
        padded_h = (p.out_h - 1) * stride[0] + (k[0] - 1) * dilation[0] + 1
        padded_w = (p.out_w - 1) * stride[1] + (k[1] - 1) * dilation[1] + 1
        scratch += n * padded_h * padded_w * c * 4
    run_kernel(kernel, bytes(p), [x, packed] + extra, [got], scratch_bytes=scratch,
               allowed=allowed)
    assert_close_to_range(got, want, rel=1e-5)


@pytest.mark.parametrize("shape,oc", [((1, 1, 1, 1), 1), ((1, 5, 7, 3), 17), ((2, 6, 5, 16), 16),
                                      ((1, 14, 14, 96), 576), ((1, 7, 7, 320), 1280),
                                      ((3, 3, 3, 33), 9), ((1, 9, 7, 144), 24),
                                      ((1, 5, 9, 16), 40), ((1, 4, 5, 24), 8)])
def test_pointwise_conv(allowed, shape, oc):
    conv(allowed, "conv2d_f32_gemm", shape, oc, (1, 1), act=(0.0, 6.0))


IGEMM_CASES = {
    "mobilenet_first_layer": ((1, 224, 224, 3), 32, (3, 3), (2, 2), (1, 1), (0, 0, 1, 1)),
    "3x3_same": ((1, 9, 8, 5), 7, (3, 3), (1, 1), (1, 1), (1, 1, 1, 1)),
    "5x5_s2_odd": ((2, 11, 13, 3), 19, (5, 5), (2, 2), (1, 1), (2, 2, 2, 2)),
    "dilated": ((1, 12, 10, 4), 6, (3, 3), (1, 1), (2, 3), (2, 3, 2, 3)),
    "asymmetric_kernel_stride": ((1, 10, 9, 2), 5, (1, 7), (3, 1), (1, 1), (0, 3, 0, 3)),
    "1x1_stride2": ((1, 7, 7, 8), 16, (1, 1), (2, 2), (1, 1), (0, 0, 0, 0)),
    "one_pixel": ((1, 1, 1, 1), 1, (1, 1), (1, 1), (1, 1), (0, 0, 0, 0)),
    "kernel_beyond_input": ((1, 3, 2, 2), 3, (5, 5), (1, 1), (1, 1), (2, 2, 2, 2)),
    "deep": ((1, 6, 6, 64), 48, (3, 3), (1, 1), (1, 1), (1, 1, 1, 1)),
    # keyword spotting's first layer: one channel, 10x4 filter, tiles spanning output rows
    "ds_cnn_first_layer": ((1, 49, 10, 1), 64, (10, 4), (2, 2), (1, 1), (4, 1, 5, 1)),
    # tiles spanning output rows (width 5) and images (batch 2), every filter row inside
    "valid_rows_and_images": ((2, 6, 7, 20), 33, (3, 3), (1, 1), (1, 1), (0, 0, 0, 0)),
    "valid_strided_rows": ((1, 9, 11, 3), 16, (3, 2), (2, 3), (1, 1), (0, 0, 0, 0)),
    # MobileNet widths with 24-column tails through the walking kernel's strided entry and taps
    "first_layer_24": ((1, 15, 17, 3), 24, (3, 3), (2, 2), (1, 1), (0, 0, 1, 1)),
    "same_40": ((1, 8, 9, 6), 40, (3, 3), (1, 1), (1, 1), (1, 1, 1, 1)),
    "valid_72_rows": ((1, 7, 20, 4), 72, (3, 3), (1, 1), (1, 1), (0, 0, 0, 0)),
}


@pytest.mark.parametrize("padded_copy", [False, True])
@pytest.mark.parametrize("case", list(IGEMM_CASES))
def test_indirect_gemm_conv(allowed, case, padded_copy):
    shape, oc, k, stride, dilation, pads = IGEMM_CASES[case]
    # A clamp narrows the output's range, and the tolerance with it: only where sums are short.
    act = (-1.0, 1.0) if k[0] * k[1] * shape[3] < 100 else (-FLT_MAX, FLT_MAX)
    conv(allowed, "conv2d_f32_igemm", shape, oc, k, stride, dilation, pads, act=act,
         padded_copy=padded_copy)


DIRECT_CASES = {
    "ds_cnn_first_layer": ((1, 49, 10, 1), 64, (10, 4), (2, 2), (1, 1), (4, 1, 5, 1)),
    "3x3_same_batch2": ((2, 9, 8, 1), 17, (3, 3), (1, 1), (1, 1), (1, 1, 1, 1)),
    "valid_dilated": ((1, 12, 15, 1), 65, (3, 3), (1, 2), (2, 1), (0, 0, 0, 0)),
    "three_channels": ((1, 11, 13, 3), 130, (3, 3), (2, 2), (1, 1), (0, 0, 1, 1)),
    "kernel_beyond_input": ((1, 3, 2, 1), 3, (5, 5), (1, 1), (1, 1), (2, 2, 2, 2)),
}


@pytest.mark.parametrize("case", list(DIRECT_CASES))
def test_direct_conv(allowed, case):
    shape, oc, k, stride, dilation, pads = DIRECT_CASES[case]
    conv(allowed, "conv2d_f32_direct", shape, oc, k, stride, dilation, pads, act=(-3.0, 3.0),
         padded_copy=True)


def test_direct_conv_run_and_channel_tails(allowed):
    # Widths 1..14: every tail of the 6-pixel runs; output channels: every number of 16-channel
    # blocks (1 to 4, and past one 64-channel group) with and without a partial last block.
    for width, oc in itertools.product(range(1, 15), [1, 16, 20, 33, 48, 64, 79, 128]):
        conv(allowed, "conv2d_f32_direct", (1, 4, width, 1), oc, (3, 2), (1, 1), (1, 1),
             (1, 0, 1, 1), bias=oc % 2 == 0, seed=width * 100 + oc, padded_copy=True)


def test_direct_conv_fails_cleanly_without_its_scratch():
    p = conv_params(1, 5, 5, 1, 4, 3, 3, (1, 1), (1, 1), (1, 1, 1, 1), (-FLT_MAX, FLT_MAX))
    x = np.zeros((1, 5, 5, 1), F32)
    packed = pack_f32_gemm_weights(np.zeros((4, 9), F32), None)
    with pytest.raises(Exception, match="scratch"):
        run_kernel("conv2d_f32_direct", bytes(p), [x, packed], [np.empty((1, 5, 5, 4), F32)])


@pytest.mark.parametrize("epilogue", list(EPILOGUES) + ["hswish"])
def test_conv_epilogues(allowed, epilogue):
    """The epilogue through each driver path: 1x1 GEMM, indirect taps, filter rows, the strided
    entry (a tile in one output row inside the image), tiles over padding."""
    suffix = {"slope": "", "hswish": "_hswish"}.get(epilogue, "_residual")
    name = "conv2d_f32_igemm" + suffix
    conv(allowed, "conv2d_f32_gemm" + suffix, (1, 5, 7, 19), 33, (1, 1), act=(-1.0, 2.0),
         seed=1, epilogue=epilogue)
    conv(allowed, "conv2d_f32_gemm" + suffix, (2, 6, 5, 16), 16, (1, 1), seed=2,
         epilogue=epilogue)
    for width in (1, 2, 5, 8, 9):  # 8-column blocks and one-row tiles
        conv(allowed, "conv2d_f32_gemm" + suffix, (1, 1, width, 7), width + 3, (1, 1),
             seed=width, epilogue=epilogue)
    for seed, (shape, oc, k, stride, dilation, pads) in enumerate(IGEMM_CASES.values()):
        conv(allowed, name, shape, oc, k, stride, dilation, pads, seed=seed, epilogue=epilogue)
    conv(allowed, name, (1, 16, 16, 3), 64, (3, 3), (2, 2), (1, 1), (0, 0, 1, 1),
         seed=3, padded_copy=True, epilogue=epilogue)


# Every epilogue kind (each has its own instance of every tile, kernels/arm/f32-gemm-6x16__neon.c),
# as the conv kernel name that takes it: None = the clamp alone.
EPILOGUE_KERNELS = {None: "conv2d_f32_gemm", "slope": "conv2d_f32_gemm",
                    "residual": "conv2d_f32_gemm_residual", "both": "conv2d_f32_gemm_residual",
                    "hswish": "conv2d_f32_gemm_hswish",
                    "residual_hswish": "conv2d_f32_gemm_hswish"}


@pytest.mark.parametrize("epilogue", list(EPILOGUE_KERNELS))
def test_gemm_epilogue_every_row_and_column_tail(allowed, epilogue):
    """Each epilogue over rows 1..7 (the whole 6-row tile and its tails), columns 1..33 (16-column
    blocks, their 4-column groups and lanes), depths around the 4-step loop; a 1x1 convolution
    of one image row of m pixels, clamped on odd column counts."""
    for m, n, k in itertools.product(range(1, 8), range(1, 34), (1, 3, 4, 6)):
        act = (-0.5, 1.5) if n % 2 else (-FLT_MAX, FLT_MAX)
        conv(allowed, EPILOGUE_KERNELS[epilogue], (1, 1, m, k), n, (1, 1), act=act,
             seed=m * 1000 + n * 10 + k, epilogue=epilogue)


def test_hard_swish_epilogue_is_the_op_bit_for_bit(allowed):
    """An identity 1x1 convolution passes its input through: its fused HARD_SWISH must equal
    hard_swish_f32 on the unfused output exactly, over negative zero products (x <= -3),
    denormal and tiny ones, products that overflow to infinity, and random values."""
    rng = np.random.default_rng(5)
    special = np.array([0.0, 1e-45, -1e-45, 1e-39, 3e-38, -3e-38, 1e-37, 2e-19, -3.0,
                        -2.9999998, -4.0, 3.0, 1e30, -1e30, 3.4e38, -3.4e38, 1.0, -1.0, 0.5,
                        5.9999995, 7.0], F32)
    values = np.concatenate([special, rng.standard_normal(16 * 37 - special.size).astype(F32)
                             * F32(4)])
    x = values.reshape(1, 37, 1, 16)
    packed = pack_f32_gemm_weights(np.eye(16, dtype=F32), None)
    p = bytes(conv_params(1, 37, 1, 16, 16, 1, 1, (1, 1), (1, 1), (0, 0, 0, 0),
                          (-np.inf, np.inf)))
    got, plain, want = (np.empty_like(x) for _ in range(3))
    run_kernel("conv2d_f32_gemm_hswish", p, [x, packed], [got], allowed=allowed)
    run_kernel("conv2d_f32_gemm", p, [x, packed], [plain], allowed=allowed)
    run_kernel("hard_swish_f32", None, [plain], [want], allowed=0)
    np.testing.assert_array_equal(got.view(np.uint32), want.view(np.uint32))


def test_indirect_gemm_tile_tails_and_large_filters(allowed):
    # Pixel counts 1..17 cover every tail of the 4-, 6- and 7-row tiles; 9x9 and 1x12 filters
    # have many taps per tile.
    for width in range(1, 18):
        conv(allowed, "conv2d_f32_igemm", (1, 1, width, 5), 18, (1, 3), (1, 1), (1, 1),
             (0, 1, 0, 1), bias=width % 2 == 0, seed=width)
    conv(allowed, "conv2d_f32_igemm", (1, 12, 11, 2), 3, (9, 9), (1, 1), (1, 1), (4, 4, 4, 4))
    conv(allowed, "conv2d_f32_igemm", (1, 3, 14, 6), 20, (1, 12), (1, 1), (1, 1), (0, 5, 0, 6))


def depthwise(allowed, shape, k, stride, dilation, pads, bias=True, act=(-FLT_MAX, FLT_MAX),
              seed=0, padded_copy=False, hard_swish=False):
    """The ISA's depthwise kernel against the reference; with hard_swish, both `_hswish`
    kernels, each of which must equal hard_swish_f32 on its own unfused output bit for bit."""
    rng = np.random.default_rng(seed)
    n, h, w, c = shape
    p = conv_params(n, h, w, c, c, k[0], k[1], stride, dilation, pads, act)
    x, f = rand(rng, *shape), rand(rng, 1, k[0], k[1], c)
    if hard_swish:  # sums across the gate's bends at -3 and 3
        x *= F32(2)
    b = rand(rng, c) if bias else None
    out_shape = (n, p.out_h, p.out_w, c)
    suffix = "_hswish" if hard_swish else ""
    want = np.empty(out_shape, F32)
    run_kernel("depthwise_conv2d_f32" + suffix, bytes(p), [x, f, b], [want], allowed=0)
    got = np.full(out_shape, np.nan, F32)
    scratch = max(w, 1) * c * 4
    if padded_copy:  # room for the zero-padded input: the kernel then reads that copy
        scratch += n * c * 4 * ((p.out_h - 1) * stride[0] + (k[0] - 1) * dilation[0] + 1) * \
            ((p.out_w - 1) * stride[1] + (k[1] - 1) * dilation[1] + 1)
    run_kernel("depthwise_conv2d_f32_dw" + suffix, bytes(p), [x, f, b], [got],
               scratch_bytes=scratch, allowed=allowed)
    assert_close_to_range(got, want, rel=1e-5)
    if not hard_swish:
        return
    for kernel, isa in (("depthwise_conv2d_f32", 0), ("depthwise_conv2d_f32_dw", allowed)):
        plain, fused, swished = (np.full(out_shape, np.nan, F32) for _ in range(3))
        run_kernel(kernel, bytes(p), [x, f, b], [plain], scratch_bytes=scratch, allowed=isa)
        run_kernel(kernel + "_hswish", bytes(p), [x, f, b], [fused], scratch_bytes=scratch,
                   allowed=isa)
        run_kernel("hard_swish_f32", None, [plain], [swished], allowed=0)
        np.testing.assert_array_equal(fused.view(np.uint32), swished.view(np.uint32))
        if c >= 16 and plain.size >= 256:  # values on each side of the bends
            assert (plain < -3).any() and (plain > 3).any() and (abs(plain) < 3).any()


@pytest.mark.parametrize("k", [1, 2, 3, 5, 7])
@pytest.mark.parametrize("stride", [1, 2, 3])
@pytest.mark.parametrize("padded_copy", [False, True])
def test_depthwise_sizes_and_strides(allowed, k, stride, padded_copy):
    # Widths 8 and 29: row interiors shorter than, and spanning, the 8- and 4-pixel runs;
    # 97 channels: the 64-, 32- and 16-channel steps and a tail.
    for c, dilation, same, width in itertools.product([1, 7, 8, 16, 17, 40, 97], [1, 2],
                                                      [False, True], [8, 29]):
        pad = ((k - 1) * dilation) // 2 if same else 0
        extra = ((k - 1) * dilation) - pad if same else 0
        depthwise(allowed, (1, 9, width, c), (k, k), (stride, stride), (dilation, dilation),
                  (pad, pad, extra, extra), bias=c % 2 == 0, act=(-2.0, 2.0), seed=k * c,
                  padded_copy=padded_copy)


@pytest.mark.parametrize("k", [1, 3, 5])
@pytest.mark.parametrize("stride", [1, 2])
@pytest.mark.parametrize("padded_copy", [False, True])
def test_depthwise_hard_swish_sizes_and_strides(allowed, k, stride, padded_copy):
    # The fused HARD_SWISH through every path: border pixels, row interiors, whole-image rows
    # (AVX-512: 3x3 / 5x5), the 64/32/16-channel steps and masked tails; with and without a
    # clamp before it.
    for c, same, width in itertools.product([1, 7, 16, 17, 97], [False, True], [7, 8, 29]):
        pad = (k - 1) // 2 if same else 0
        extra = (k - 1) - pad if same else 0
        act = (-FLT_MAX, FLT_MAX) if c % 2 else (-4.0, 6.0)
        depthwise(allowed, (1, 9, width, c), (k, k), (stride, stride), (1, 1),
                  (pad, pad, extra, extra), bias=c != 7, act=act, seed=k * c + width,
                  padded_copy=padded_copy, hard_swish=True)


@pytest.mark.parametrize("k", [3, 5])
def test_depthwise_every_run_length(allowed, k):
    # Row interiors of 1..20 pixels: every remainder after the 8- (3x3) or 4-pixel (5x5) runs
    # goes as one run of that many chains; 64 channels (keyword spotting's 25x5x64) and 20.
    for width, c in itertools.product(range(1, 21), [20, 64]):
        for padded_copy in (False, True):
            depthwise(allowed, (1, 3, width, c), (k, k), (1, 1), (1, 1),
                      (k // 2, k // 2, k // 2, k // 2), act=(-2.0, 2.0), seed=width,
                      padded_copy=padded_copy)
            depthwise(allowed, (1, 3, width, c), (k, k), (1, 1), (1, 1),
                      (k // 2, k // 2, k // 2, k // 2), seed=width, padded_copy=padded_copy,
                      hard_swish=True)


@pytest.mark.parametrize("k", [3, 5])
@pytest.mark.parametrize("stride", [1, 2])
def test_depthwise_image_edge_sizes(allowed, k, stride):
    # The whole-row kernels (3- and 5-wide filters at stride 1 or 2): widths 1..20 (runs of 8
    # and every rest), channels 1..40 (full 8-channel blocks and each masked tail), and the
    # padding on one side at a time (top, left, bottom, right), on all four, and on none.
    sides = [(k - 1, 0, 0, 0), (0, k - 1, 0, 0), (0, 0, k - 1, 0), (0, 0, 0, k - 1),
             (k // 2, k // 2, k // 2, k // 2), (0, 0, 0, 0)]
    for width, pads in itertools.product(range(1, 21), sides):
        if width + pads[1] + pads[3] < k:
            continue
        for c in sorted({1 + (width * 3 + sum(pads)) % 40, 8, 40}):
            depthwise(allowed, (1, 5, width, c), (k, k), (stride, stride), (1, 1), pads,
                      bias=width % 3 != 0, act=(-2.0, 2.0), seed=width * 41 + c)


def test_depthwise_mobilenet_layers(allowed):
    depthwise(allowed, (1, 112, 112, 32), (3, 3), (1, 1), (1, 1), (1, 1, 1, 1), act=(0.0, 6.0))
    depthwise(allowed, (1, 56, 56, 144), (3, 3), (2, 2), (1, 1), (0, 0, 1, 1), act=(0.0, 6.0))
    depthwise(allowed, (2, 14, 14, 576), (5, 5), (1, 1), (1, 1), (2, 2, 2, 2))
    # 7-wide maps (an overlapping last group of four pixels in the NEON row kernel), with and
    # without the padded copy; 5x5 at stride 2 onto a 7-wide output
    for padded_copy in (False, True):
        depthwise(allowed, (1, 7, 7, 100), (3, 3), (1, 1), (1, 1), (1, 1, 1, 1), act=(0.0, 6.0),
                  padded_copy=padded_copy)
        depthwise(allowed, (1, 7, 7, 36), (5, 5), (1, 1), (1, 1), (2, 2, 2, 2),
                  padded_copy=padded_copy)
        depthwise(allowed, (1, 14, 14, 44), (5, 5), (2, 2), (1, 1), (1, 1, 2, 2),
                  padded_copy=padded_copy)
    depthwise(allowed, (1, 7, 9, 33), (3, 5), (2, 1), (1, 1), (1, 2, 1, 2))
    # MobileNetV3-small's depthwise layers that a HARD_SWISH follows, batch 2, and a multiplier
    # of 1 through the reference too
    for shape, k, stride, pads in [((2, 28, 28, 96), 5, 2, (1, 1, 2, 2)),
                                   ((1, 14, 14, 240), 5, 1, (2, 2, 2, 2)),
                                   ((1, 7, 7, 576), 5, 1, (2, 2, 2, 2)),
                                   ((1, 56, 56, 72), 3, 2, (0, 0, 1, 1))]:
        for padded_copy in (False, True):
            depthwise(allowed, shape, (k, k), (stride, stride), (1, 1), pads,
                      padded_copy=padded_copy, hard_swish=True)


BINARY_SHAPES = [((1,), (1,)), ((7,), (7,)), ((75264,), (75264,)), ((3, 5, 17), (17,)),
                 ((2, 9, 33), (1,)), ((1,), (4, 31)), ((6, 1), (1, 13)), ((4, 3, 1), (4, 1, 9)),
                 ((2, 1, 8), (2, 5, 8)),
                 # runs of 4..16 against a repeated row (a per-channel alpha / bias), either side
                 ((1, 9, 7, 8), (1, 1, 8)), ((5, 4), (4,)), ((3, 6, 12), (12,)), ((16,), (7, 16)),
                 ((2, 3, 1, 16), (2, 1, 5, 16)), ((4, 3, 20), (20,))]


@pytest.mark.parametrize("op", ["add", "sub", "mul", "prelu", "squared_difference"])
@pytest.mark.parametrize("shapes", BINARY_SHAPES, ids=str)
def test_binary_broadcasts(allowed, op, shapes):
    rng = np.random.default_rng(len(shapes[0]) * 100 + shapes[1][-1])
    a, b = rand(rng, *shapes[0]), rand(rng, *shapes[1])
    a.reshape(-1)[:4] = [np.nan, np.inf, -np.inf, -0.0][:a.size]
    out_shape = np.broadcast_shapes(a.shape, b.shape)
    dims, (sa, sb) = broadcast_strides(out_shape, a.shape, b.shape)
    for act in ((-np.inf, np.inf), (0.0, 6.0)):
        params = bytes(BinaryParams(_array(dims), _array(sa), _array(sb), *act))
        got, want = np.empty(out_shape, F32), np.empty(out_shape, F32)
        run_kernel(f"{op}_f32", params, [a, b], [got], allowed=allowed)
        run_kernel(f"{op}_f32", params, [a, b], [want], allowed=0)
        np.testing.assert_array_equal(got, want)  # one operation per element: bit-exact


def plan_kernels(model):
    import edgeq

    it = edgeq.Interpreter(model_content=model, num_threads=1)
    it.allocate_tensors()
    return it._get_plan().compiled.kernel_of_node


def test_prepare_picks_the_fast_paths_and_edgeq_isa_scalar_the_reference(monkeypatch):
    from test_threads import fast_path_model

    model, _ = fast_path_model()
    assert plan_kernels(model) == ["conv2d_f32_gemm", "conv2d_f32_igemm",
                                   "depthwise_conv2d_f32_dw", "fully_connected_f32_gemm"]
    monkeypatch.setenv("EDGEQ_ISA", "scalar")
    assert plan_kernels(model) == ["conv2d_f32", "conv2d_f32", "depthwise_conv2d_f32",
                                   "fully_connected_f32"]


def test_one_channel_convolutions_go_direct_where_an_isa_has_the_kernel(monkeypatch):
    from edgeq.runtime import find_kernel
    from edgeq.tflite.schema import BuiltinOp
    from harness import single_op_model

    rng = np.random.default_rng(6)
    model = single_op_model(BuiltinOp.CONV_2D, [((1, 49, 10, 1), F32), rand(rng, 64, 10, 4, 1),
                                                rand(rng, 64)],
                            options={"padding": 0, "stride_h": 2, "stride_w": 2})
    found = find_kernel("conv2d_f32_direct", cpu.allowed())
    assert plan_kernels(model) == ["conv2d_f32_direct" if found[1] else "conv2d_f32_igemm"]
    monkeypatch.setenv("EDGEQ_ISA", "avx2" if cpu._family() == "x86" else "neon")
    assert plan_kernels(model) == ["conv2d_f32_igemm"]  # the portable one is only a reference


def test_what_the_fast_paths_do_not_cover_falls_back_to_the_reference():
    from edgeq.tflite.schema import BuiltinOp
    from harness import single_op_model

    rng = np.random.default_rng(5)
    x = ((1, 6, 6, 4), F32)
    # depth multiplier 2
    dw = single_op_model(BuiltinOp.DEPTHWISE_CONV_2D, [x, rand(rng, 1, 3, 3, 8), None],
                         options={"padding": 0, "stride_h": 1, "stride_w": 1,
                                  "depth_multiplier": 2})
    assert plan_kernels(dw) == ["depthwise_conv2d_f32"]
    # two groups
    grouped = single_op_model(BuiltinOp.CONV_2D, [x, rand(rng, 6, 3, 3, 2), None],
                              options={"padding": 0, "stride_h": 1, "stride_w": 1})
    assert plan_kernels(grouped) == ["conv2d_f32"]
    # weights that are a runtime input cannot be packed at prepare
    runtime_w = single_op_model(BuiltinOp.FULLY_CONNECTED, [((2, 4), F32), ((3, 4), F32)],
                                options={})
    assert plan_kernels(runtime_w) == ["fully_connected_f32"]


POOL_CASES = [  # (N, H, W, C), filter, stride, (pad_top, pad_left), out (H, W)
    ((1, 112, 112, 16), (2, 2), (2, 2), (0, 0), (56, 56)),
    # whole 2x2 windows next to clipped ones (the last row and column), 8 and 13 channels
    ((1, 9, 11, 8), (2, 2), (2, 2), (0, 0), (5, 6)),
    ((1, 6, 6, 13), (2, 2), (1, 1), (1, 1), (6, 6)),
    ((2, 9, 7, 3), (3, 3), (2, 2), (1, 1), (5, 4)),
    ((1, 7, 7, 33), (7, 7), (1, 1), (0, 0), (1, 1)),
    ((1, 5, 6, 17), (3, 2), (1, 2), (1, 0), (5, 3)),
    ((1, 4, 4, 8), (5, 5), (3, 3), (2, 2), (2, 2)),
    # 32-channel steps: keyword spotting's global 25x5 pool; 32 + 8 + a tail of 1
    ((1, 25, 5, 64), (25, 5), (1, 1), (0, 0), (1, 1)),
    ((2, 6, 5, 41), (3, 3), (2, 2), (1, 1), (3, 3)),
]


@pytest.mark.parametrize("kind", ["max_pool2d_f32", "avg_pool2d_f32"])
@pytest.mark.parametrize("case", POOL_CASES, ids=str)
def test_pooling(allowed, kind, case):
    from edgeq.ops.pool import Pool2DParams

    (n, h, w, c), (fh, fw), (sh, sw), (pt, pl), (oh, ow) = case
    x = rand(np.random.default_rng(h * w + c), n, h, w, c)
    x.reshape(-1)[:4] = [np.nan, np.inf, -np.inf, -0.0]
    for act in ((-np.inf, np.inf), (0.0, 6.0)):
        params = bytes(Pool2DParams(n, h, w, c, oh, ow, fh, fw, sh, sw, pt, pl, *act))
        got, want = np.empty((n, oh, ow, c), F32), np.empty((n, oh, ow, c), F32)
        run_kernel(kind, params, [x], [got], allowed=allowed)
        run_kernel(kind, params, [x], [want], allowed=0)
        np.testing.assert_array_equal(got, want)  # the same operations per lane: bit-exact


def test_hard_swish(allowed):
    x = np.concatenate([np.linspace(-8, 8, 1001, dtype=F32),
                        np.array([np.nan, np.inf, -np.inf, -0.0, -3.0, 3.0], F32)])
    for n in (1, 7, 8, 9, x.size):
        got, want = np.empty(n, F32), np.empty(n, F32)
        run_kernel("hard_swish_f32", None, [x[:n]], [got], allowed=allowed)
        run_kernel("hard_swish_f32", None, [x[:n]], [want], allowed=0)
        np.testing.assert_array_equal(got, want)  # the reference's operations in its order


def matmul_params(lhs_shape, rhs_shape, adj_x, adj_y):
    """eq_matmul_params as prepare builds them (edgeq/ops/conv.py prepare_batch_matmul)."""
    from edgeq.ops.conv import MATMUL_BATCH_DIMS, MatmulParams

    m, k = lhs_shape[-2:][::-1] if adj_x else lhs_shape[-2:]
    n = rhs_shape[-2] if adj_y else rhs_shape[-1]
    batch = np.broadcast_shapes(lhs_shape[:-2], rhs_shape[:-2])
    dims, (sl, sr) = broadcast_strides(batch, lhs_shape[:-2], rhs_shape[:-2])
    lhs_m, lhs_k = (1, m) if adj_x else (k, 1)
    rhs_k, rhs_n = (1, k) if adj_y else (n, 1)
    arr = ctypes_array(MATMUL_BATCH_DIMS)
    return MatmulParams(arr(*dims), arr(*sl), arr(*sr), m, k, n, lhs_m, lhs_k, rhs_k,
                        rhs_n), tuple(batch) + (m, n)


def ctypes_array(n):
    import ctypes

    return ctypes.c_int32 * n


MATMUL_CASES = [((1, 4, 64, 64), (1, 4, 64, 32)), ((1, 4, 64, 32), (1, 4, 32, 64)),
                ((3, 5, 7), (7, 17)), ((1, 1), (1, 1)), ((2, 1, 9, 13), (3, 13, 33)),
                ((6, 4), (4, 15)), ((5, 0), (0, 3))]


@pytest.mark.parametrize("adj", [(False, False), (True, False), (False, True), (True, True)])
@pytest.mark.parametrize("shapes", MATMUL_CASES, ids=str)
def test_batch_matmul(allowed, shapes, adj):
    rng = np.random.default_rng(sum(shapes[0]) + sum(shapes[1]))
    lhs_shape, rhs_shape = list(shapes[0]), list(shapes[1])
    if adj[0]:
        lhs_shape[-2:] = lhs_shape[-2:][::-1]
    if adj[1]:
        rhs_shape[-2:] = rhs_shape[-2:][::-1]
    lhs, rhs = rand(rng, *lhs_shape), rand(rng, *rhs_shape)
    params, out_shape = matmul_params(tuple(lhs_shape), tuple(rhs_shape), *adj)
    got, want = np.full(out_shape, np.nan, F32), np.empty(out_shape, F32)
    run_kernel("batch_matmul_f32", bytes(params), [lhs, rhs], [got], allowed=allowed)
    run_kernel("batch_matmul_f32", bytes(params), [lhs, rhs], [want], allowed=0)
    assert_close_to_range(got, want, rel=1e-5)


@pytest.mark.parametrize("n", [1, 7, 8, 13, 8192 + 5])
def test_dequantize_i8(allowed, n):
    from edgeq.ops.elementwise import DequantizeParams

    q = np.random.default_rng(n).integers(-128, 128, n).astype(np.int8)
    q[:2] = [-128, 127][:n]
    for scale, zp in ((0.0123, 0), (0.5, -128), (3e-5, 127), (1.0, 7)):
        params = bytes(DequantizeParams(scale, zp))
        got, want = np.full(n, np.nan, F32), np.empty(n, F32)
        run_kernel("dequantize_i8_f32", params, [q], [got], allowed=allowed)
        run_kernel("dequantize_i8_f32", params, [q], [want], allowed=0)
        np.testing.assert_array_equal(got, want)  # the same three operations: bit-exact


def test_gelu(allowed):
    x = np.concatenate([np.linspace(-12, 12, 4001, dtype=F32),
                        rand(np.random.default_rng(9), 999) * 3,
                        np.array([0.0, -0.0, 1e-30, -1e-30, 30.0, -30.0, 100.0], F32)])
    for n in (1, 5, 8, 13, x.size):
        got, want = np.full(n, np.nan, F32), np.empty(n, F32)
        run_kernel("gelu_f32", None, [x[:n]], [got], allowed=allowed)
        run_kernel("gelu_f32", None, [x[:n]], [want], allowed=0)
        # erf from a rational fit (kernels/x86/gelu_erf.h): an absolute error below
        # 2e-7 max(1, |x|), LiteRT's accuracy (1.65e-7 max(1, |x|) measured the same way)
        bound = 2e-7 * np.maximum(1.0, np.abs(x[:n])) + 1e-7 * np.abs(want)
        assert np.all(np.abs(got.astype(np.float64) - want) <= bound), \
            np.max(np.abs(got.astype(np.float64) - want) / bound)
    special = np.array([np.nan, np.inf, -np.inf], F32)
    got, want = np.empty(3, F32), np.empty(3, F32)
    run_kernel("gelu_f32", None, [special], [got], allowed=allowed)
    run_kernel("gelu_f32", None, [special], [want], allowed=0)
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("depth", [1, 7, 8, 12, 64, 1001])
def test_softmax(allowed, depth):
    from edgeq.ops.reduce import SoftmaxParams

    rng = np.random.default_rng(depth)
    x = rand(rng, 5, depth) * 4
    x[1, :] = -np.inf  # a row of -inf: 0 / 0 in both
    x[2, 0] = np.nan
    x[3, -1] = 80.0  # one value dominating
    for beta in (1.0, 0.5, -1.0):
        params = bytes(SoftmaxParams(depth, beta))
        got, want = np.full(x.shape, 7.0, F32), np.empty(x.shape, F32)
        run_kernel("softmax_f32", params, [x], [got], allowed=allowed)
        run_kernel("softmax_f32", params, [x], [want], allowed=0)
        np.testing.assert_allclose(got, want, rtol=2e-6, atol=1e-9)


@pytest.mark.parametrize("shape,axes", [((1, 7, 7, 576), (1, 2)), ((1, 56, 56, 17), (1, 2)),
                                        ((2, 3, 5, 9), (0, 2)), ((4, 6, 13), (2,)),
                                        ((3, 4, 5), (0, 1, 2)), ((8, 1, 3), (1,)),
                                        ((1, 64, 128), (2,)), ((5, 37), (1,)),
                                        ((3, 40, 23), (0, 2)),
                                        # tiny_bert's MEAN over the sequence; 64-slot groups
                                        # of columns, then 8-slot ones and a tail
                                        ((1, 64, 128), (1,)), ((2, 9, 139), (1,))])
def test_mean(allowed, shape, axes):
    import ctypes

    from edgeq.ops.reduce import MAX_DIMS, ReduceParams, collapse

    x = rand(np.random.default_rng(len(shape) * 10 + shape[-1]), *shape)
    x.reshape(-1)[:2] = [np.inf, np.nan]
    dims, strides = collapse(x.shape, set(axes))
    pad = MAX_DIMS - len(dims)
    params = bytes(ReduceParams(len(dims), (ctypes.c_int32 * MAX_DIMS)(*(dims + [0] * pad)),
                                (ctypes.c_int32 * MAX_DIMS)(*(strides + [0] * pad))))
    out_shape = tuple(n for d, n in enumerate(shape) if d not in axes)
    got, want = np.full(out_shape, 77, F32), np.full(out_shape, 77, F32)
    run_kernel("mean_f32", params, [x], [got], allowed=allowed)
    run_kernel("mean_f32", params, [x], [want], allowed=0)
    if shape[-1] < 16 or (len(shape) - 1) not in axes:
        np.testing.assert_array_equal(got, want)  # the same sums in the same order
    else:  # rows of 16 or more reduced in 8 lanes: the sum reassociated
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
