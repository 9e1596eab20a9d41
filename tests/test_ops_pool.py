"""Pooling and resize ops against LiteRT's reference (XNNPack-free) kernels, plus bad inputs."""
from __future__ import annotations

import platform

import numpy as np
import pytest

from edgeq.tflite.schema import BuiltinOp
from harness import (check_against_litert, expect_model_error,
                     run_edgeq, run_litert, single_op_model)

RNG = np.random.default_rng(4321)
SAME, VALID = 0, 1
NONE, RELU, RELU_N1_TO_1, RELU6, TANH = 0, 1, 2, 3, 4


def run_reference(model: bytes, feeds: list, optimized: bool = False):
    """LiteRT without XNNPack: its reference kernels (which edgeq's match bit for bit on
    x86-64), or with optimized=True its default builtin kernels."""
    return run_litert(model, feeds, "builtin" if optimized else "reference")


def check(op, inputs, feeds, rel=1e-4, **kwargs):
    """Against LiteRT's reference kernels, which edgeq's match bit for bit on x86-64."""
    return check_against_litert(op, inputs, feeds, rel, kernels="reference", **kwargs)


edgeq_error = expect_model_error


def rand(shape, dtype=np.float32, low=-5, high=5):
    if np.issubdtype(dtype, np.integer):
        return RNG.integers(low, high, size=shape).astype(dtype)
    return RNG.uniform(low, high, size=shape).astype(dtype)


# ---- pooling ---------------------------------------------------------------------------------

def pool_options(filter_hw, stride_hw, padding, act=NONE):
    return {"filter_height": filter_hw[0], "filter_width": filter_hw[1],
            "stride_h": stride_hw[0], "stride_w": stride_hw[1], "padding": padding,
            "fused_activation_function": act}


def pool_check(op, x, filter_hw, stride_hw, padding, act=NONE):
    return check(op, [(x.shape, np.float32)], [x],
                 options=pool_options(filter_hw, stride_hw, padding, act))


POOL_CASES = [
    # (input shape, filter, stride, padding)
    ((1, 5, 7, 3), (2, 2), (2, 2), SAME),    # odd sizes: the last window hangs over
    ((1, 5, 7, 3), (3, 3), (2, 2), SAME),
    ((2, 9, 6, 4), (3, 2), (1, 3), SAME),
    ((1, 4, 4, 1), (5, 5), (1, 1), SAME),    # windows larger than the image
    ((1, 7, 7, 8), (3, 3), (3, 3), SAME),
    ((1, 5, 7, 3), (2, 3), (2, 2), VALID),
    ((3, 8, 8, 5), (2, 2), (2, 2), VALID),
    ((1, 11, 10, 2), (4, 3), (3, 2), VALID),
    ((1, 7, 7, 16), (7, 7), (1, 1), VALID),  # global pooling (MobileNet head)
    ((1, 49, 10, 6), (49, 10), (2, 2), VALID),  # global pooling (ds_cnn)
    ((1, 25, 5, 64), (25, 5), (1, 1), VALID),  # ds_cnn's: 64 channels of a window at a time
    ((1, 6, 5, 133), (3, 3), (2, 2), SAME),  # two 64-channel groups, then blocks and a tail
    ((1, 1, 1, 3), (1, 1), (1, 1), SAME),
    ((2, 3, 1, 2), (2, 1), (1, 1), SAME),
]


@pytest.mark.parametrize("op", [BuiltinOp.AVERAGE_POOL_2D, BuiltinOp.MAX_POOL_2D,
                                BuiltinOp.L2_POOL_2D], ids=lambda o: o.name)
@pytest.mark.parametrize("case", POOL_CASES, ids=str)
def test_pool(op, case):
    shape, filter_hw, stride_hw, padding = case
    low = 0 if op == BuiltinOp.L2_POOL_2D else -5
    pool_check(op, rand(shape, low=low), filter_hw, stride_hw, padding)


@pytest.mark.parametrize("op", [BuiltinOp.AVERAGE_POOL_2D, BuiltinOp.MAX_POOL_2D],
                         ids=lambda o: o.name)
@pytest.mark.parametrize("act", [RELU, RELU6, RELU_N1_TO_1])
def test_pool_fused_activation(op, act):
    x = rand((1, 6, 5, 3), low=-8, high=8)
    pool_check(op, x, (2, 2), (1, 1), SAME, act)


def test_average_pool_counts_only_in_bounds_elements():
    x = np.ones((1, 3, 3, 1), np.float32)
    model = single_op_model(BuiltinOp.AVERAGE_POOL_2D, [(x.shape, np.float32)],
                            options=pool_options((3, 3), (1, 1), SAME))
    np.testing.assert_array_equal(run_edgeq(model, [x])[0], x)  # padding never dilutes


def test_max_pool_of_negative_values_ignores_padding():
    x = -np.arange(1, 10, dtype=np.float32).reshape(1, 3, 3, 1)
    out = pool_check(BuiltinOp.MAX_POOL_2D, x, (3, 3), (2, 2), SAME)[0]
    np.testing.assert_array_equal(out.reshape(-1), [-1, -2, -4, -5])  # never the padding's 0


def test_pool_of_infinite_values_like_litert():
    # TFLite clamps pooled values to the finite float range even without an activation.
    x = np.full((1, 3, 4, 2), -np.inf, np.float32)
    x[0, 0, 0, 0] = np.inf
    x[0, 2, 3, 1] = 7.0
    outs = {}
    for op in (BuiltinOp.MAX_POOL_2D, BuiltinOp.AVERAGE_POOL_2D):
        model = single_op_model(op, [(x.shape, np.float32)],
                                options=pool_options((2, 2), (2, 2), SAME))
        outs[op] = run_edgeq(model, [x])[0]
        np.testing.assert_array_equal(outs[op], run_reference(model, [x])[0])
    max_out, avg_out = outs[BuiltinOp.MAX_POOL_2D], outs[BuiltinOp.AVERAGE_POOL_2D]
    assert max_out[0, 0, 0, 0] == np.finfo(np.float32).max
    assert max_out[0, 0, 1, 0] == np.finfo(np.float32).min
    assert np.isnan(avg_out[0, 0, 0, 0])  # inf + -inf


def test_valid_pool_larger_than_input_is_empty_like_litert():
    x = rand((1, 2, 6, 1))
    for filter_hw, stride_hw in (((5, 1), (4, 1)), ((7, 2), (1, 1))):
        out = pool_check(BuiltinOp.AVERAGE_POOL_2D, x, filter_hw, stride_hw, VALID)[0]
        assert out.shape[1] == 0


def test_pool_random_sweep():
    for _ in range(25):
        h, w = (int(v) for v in RNG.integers(1, 12, size=2))
        fh, fw = (int(v) for v in RNG.integers(1, 6, size=2))
        sh, sw = (int(v) for v in RNG.integers(1, 4, size=2))
        padding = int(RNG.integers(0, 2))
        if padding == VALID:
            fh, fw = min(fh, h), min(fw, w)
        x = rand((int(RNG.integers(1, 3)), h, w, int(RNG.integers(1, 5))))
        for op in (BuiltinOp.AVERAGE_POOL_2D, BuiltinOp.MAX_POOL_2D):
            pool_check(op, x, (fh, fw), (sh, sw), padding)


def test_pool_large_image():
    x = rand((1, 112, 112, 32))
    pool_check(BuiltinOp.AVERAGE_POOL_2D, x, (3, 3), (2, 2), SAME)
    pool_check(BuiltinOp.MAX_POOL_2D, x, (3, 3), (2, 2), SAME)


@pytest.mark.parametrize("shape", [(0, 4, 4, 2), (1, 4, 4, 0), (1, 0, 4, 2)], ids=str)
def test_zero_size_dims(shape):
    x = np.zeros(shape, np.float32)
    for op in (BuiltinOp.AVERAGE_POOL_2D, BuiltinOp.MAX_POOL_2D):
        out = pool_check(op, x, (2, 2), (1, 1), SAME)[0]
        assert out.size == 0
    if shape[1]:  # resizing an empty image is refused (test_resize_bad_inputs)
        for op in (BuiltinOp.RESIZE_BILINEAR, BuiltinOp.RESIZE_NEAREST_NEIGHBOR):
            out = resize_check(op, x, (3, 5), False, False)[0]
            assert out.shape == (shape[0], 3, 5, shape[3])


@pytest.mark.skipif(platform.machine().lower() not in ("x86_64", "amd64"),
                    reason="elsewhere compilers may contract multiply-adds into FMAs")
def test_bit_exact_with_litert_reference_kernels():
    x = np.abs(rand((1, 17, 13, 8)))
    for shape in [x.shape, (1, 9, 7, 75)]:  # 75 channels: a 64-channel group, blocks, a tail
        y = np.abs(rand(shape))
        for op in (BuiltinOp.AVERAGE_POOL_2D, BuiltinOp.MAX_POOL_2D, BuiltinOp.L2_POOL_2D):
            model = single_op_model(op, [(y.shape, np.float32)],
                                    options=pool_options((3, 3), (2, 2), SAME))
            np.testing.assert_array_equal(run_edgeq(model, [y])[0],
                                          run_reference(model, [y])[0])
    for op in (BuiltinOp.RESIZE_BILINEAR, BuiltinOp.RESIZE_NEAREST_NEIGHBOR):
        for align, half in RESIZE_FLAGS:
            model = single_op_model(op, [(x.shape, np.float32), np.array([29, 7], np.int32)],
                                    options={"align_corners": align, "half_pixel_centers": half})
            np.testing.assert_array_equal(run_edgeq(model, [x])[0],
                                          run_reference(model, [x])[0])


def test_pool_bad_inputs():
    x4 = ((1, 4, 4, 2), np.float32)
    feeds = [rand((1, 4, 4, 2))]
    ok = pool_options((2, 2), (1, 1), SAME)
    msg = edgeq_error(BuiltinOp.MAX_POOL_2D, [((4, 4, 2), np.float32)], [rand((4, 4, 2))],
                      options=ok)
    assert "input must be 4-D NHWC" in msg
    for field in ("filter_height", "filter_width", "stride_h", "stride_w"):
        bad = dict(ok, **{field: 0})
        msg = edgeq_error(BuiltinOp.AVERAGE_POOL_2D, [x4], feeds, options=bad)
        assert field in msg and ("must be > 0" in msg or "must be positive" in msg)
    msg = edgeq_error(BuiltinOp.MAX_POOL_2D, [x4], feeds, options=dict(ok, padding=7))
    assert "padding" in msg and "7" in msg
    msg = edgeq_error(BuiltinOp.MAX_POOL_2D, [x4], feeds,
                      options=pool_options((2, 2), (1, 1), SAME, TANH))
    assert "fused_activation_function 4" in msg
    msg = edgeq_error(BuiltinOp.AVERAGE_POOL_2D, [((1, 4, 4, 2), np.int8)],
                      [rand((1, 4, 4, 2), np.int8)], output_dtype=np.int8, options=ok)
    assert "int8 activations are not supported" in msg
    msg = edgeq_error(BuiltinOp.L2_POOL_2D, [((1, 4, 4, 2), np.uint8)],
                      [rand((1, 4, 4, 2), np.uint8, 0, 9)], output_dtype=np.uint8, options=ok)
    assert "uint8 activations are not supported" in msg


# ---- resize ----------------------------------------------------------------------------------

RESIZE_FLAGS = [(False, False), (True, False), (False, True)]
RESIZE_SIZES = [
    # (input shape, (new_h, new_w))
    ((1, 3, 5, 2), (7, 4)),     # up in h, down in w
    ((2, 8, 6, 3), (3, 5)),     # down
    ((1, 4, 4, 1), (8, 8)),     # exact 2x up
    ((1, 5, 3, 2), (13, 11)),   # odd up
    ((1, 6, 9, 2), (1, 1)),     # down to a single pixel
    ((1, 1, 1, 3), (4, 5)),     # from a single pixel
    ((1, 7, 5, 1), (7, 5)),     # same size
]


def resize_check(op, x, size, align, half):
    return check(op, [(x.shape, x.dtype), np.array(size, np.int32)], [x], output_dtype=x.dtype,
                 options={"align_corners": align, "half_pixel_centers": half})


@pytest.mark.parametrize("flags", RESIZE_FLAGS, ids=str)
@pytest.mark.parametrize("case", RESIZE_SIZES, ids=str)
def test_resize_bilinear(case, flags):
    shape, size = case
    resize_check(BuiltinOp.RESIZE_BILINEAR, rand(shape), size, *flags)


@pytest.mark.parametrize("flags", RESIZE_FLAGS + [(True, True)], ids=str)
@pytest.mark.parametrize("case", RESIZE_SIZES, ids=str)
def test_resize_nearest(case, flags):
    shape, size = case
    resize_check(BuiltinOp.RESIZE_NEAREST_NEIGHBOR, rand(shape), size, *flags)


@pytest.mark.parametrize("flags", RESIZE_FLAGS + [(True, True)], ids=str)
def test_resize_nearest_int32(flags):
    x = rand((2, 5, 4, 3), np.int32, -1000, 1000)
    resize_check(BuiltinOp.RESIZE_NEAREST_NEIGHBOR, x, (9, 3), *flags)


def test_resize_random_sweep():
    for _ in range(20):
        h, w, oh, ow = (int(v) for v in RNG.integers(1, 20, size=4))
        x = rand((1, h, w, 2))
        for align, half in RESIZE_FLAGS:
            resize_check(BuiltinOp.RESIZE_BILINEAR, x, (oh, ow), align, half)
            resize_check(BuiltinOp.RESIZE_NEAREST_NEIGHBOR, x, (oh, ow), align, half)


def test_resize_bad_inputs():
    x = ((1, 4, 4, 2), np.float32)
    feeds = [rand((1, 4, 4, 2))]
    for op in (BuiltinOp.RESIZE_BILINEAR, BuiltinOp.RESIZE_NEAREST_NEIGHBOR):
        msg = edgeq_error(op, [x, np.array([0, 3], np.int32)], feeds)
        assert "size must be positive, got [0, 3]" in msg
        msg = edgeq_error(op, [x, np.array([2, 3, 4], np.int32)], feeds)
        assert "size must have shape [2]" in msg
        msg = edgeq_error(op, [x, ((2,), np.int32)], feeds + [np.array([2, 2], np.int32)])
        assert "must be constant" in msg
        msg = edgeq_error(op, [((4, 4, 2), np.float32), np.array([2, 2], np.int32)],
                          [rand((4, 4, 2))])
        assert "input must be 4-D NHWC" in msg
        msg = edgeq_error(op, [((1, 0, 4, 2), np.float32), np.array([2, 2], np.int32)],
                          [np.zeros((1, 0, 4, 2), np.float32)])
        assert "cannot resize an empty image" in msg
        msg = edgeq_error(op, [x, np.array([2.0, 2.0], np.float32)], feeds)
        assert "size must be int32" in msg
        msg = edgeq_error(op, [((1, 4, 4, 2), np.int8), np.array([2, 2], np.int32)],
                          [rand((1, 4, 4, 2), np.int8)], output_dtype=np.int8)
        assert "int8 activations are not supported" in msg
    msg = edgeq_error(BuiltinOp.RESIZE_BILINEAR, [x, np.array([2, 2], np.int32)], feeds,
                      options={"align_corners": True, "half_pixel_centers": True})
    assert "align_corners and half_pixel_centers cannot both be true" in msg
    msg = edgeq_error(BuiltinOp.RESIZE_BILINEAR, [((1, 4, 4, 2), np.int32),
                                                  np.array([2, 2], np.int32)],
                      [rand((1, 4, 4, 2), np.int32)], output_dtype=np.int32)
    assert "int32 is not supported" in msg
