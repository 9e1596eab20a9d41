"""Reductions, softmax and arg-min/max against LiteRT's reference (XNNPack-free) kernels, plus
kernel-level sweeps of the reduction walk against numpy and bad-input cases."""
from __future__ import annotations

import itertools
import platform

import numpy as np
import pytest

from edgeq.tflite.schema import BuiltinOp
from harness import (check_against_litert, expect_model_error,
                     run_edgeq, run_litert, single_op_model)

RNG = np.random.default_rng(1234)


def run_reference(model: bytes, feeds: list, optimized: bool = False):
    """LiteRT without XNNPack: its reference kernels (which edgeq's match bit for bit on
    x86-64), or with optimized=True its default builtin kernels."""
    return run_litert(model, feeds, "builtin" if optimized else "reference")


def check(op, inputs, feeds, rel=1e-4, **kwargs):
    """Against LiteRT's reference kernels, which edgeq's match bit for bit on x86-64."""
    return check_against_litert(op, inputs, feeds, rel, kernels="reference", **kwargs)


edgeq_error = expect_model_error


def rand(shape, dtype=np.float32, low=-5, high=5):
    if np.dtype(dtype) == np.bool_:
        return RNG.random(shape) < 0.3
    if np.issubdtype(dtype, np.integer):
        return RNG.integers(low, high, size=shape).astype(dtype)
    return RNG.uniform(low, high, size=shape).astype(dtype)


# ---- reductions ------------------------------------------------------------------------------

REDUCE_OPS = [BuiltinOp.MEAN, BuiltinOp.SUM, BuiltinOp.REDUCE_MAX, BuiltinOp.REDUCE_MIN,
              BuiltinOp.REDUCE_PROD]
ALL_AXES_4D = [list(c) for r in range(5) for c in itertools.combinations(range(4), r)]


def reduce_check(op, x, axes, keep_dims, dtype=None):
    axes = np.asarray(axes, np.int32).reshape(-1)
    out_dtype = dtype or x.dtype
    return check(op, [(x.shape, x.dtype), axes], [x], output_dtype=out_dtype,
                 options={"keep_dims": keep_dims})


@pytest.mark.parametrize("op", REDUCE_OPS, ids=lambda o: o.name)
def test_reduce_every_axis_combination_4d(op):
    # Values near 1 keep REDUCE_PROD finite and well conditioned.
    low, high = (0.5, 1.5) if op == BuiltinOp.REDUCE_PROD else (-5, 5)
    x = rand((2, 3, 4, 5), low=low, high=high)
    for axes in ALL_AXES_4D:
        if not axes:
            continue  # empty axes: test_reduce_empty_axes_is_identity
        for keep_dims in (False, True):
            reduce_check(op, x, axes, keep_dims)


@pytest.mark.parametrize("op", REDUCE_OPS, ids=lambda o: o.name)
def test_reduce_negative_and_duplicate_axes(op):
    x = rand((3, 1, 4, 2), low=0.5, high=1.5)
    for axes in ([-1], [-4, 2], [1, -3], [0, 0, -4], [3, -1, 2]):
        for keep_dims in (False, True):
            reduce_check(op, x, axes, keep_dims)


def test_reduce_scalar_axis_tensor():
    x = rand((2, 3, 4))
    for op in (BuiltinOp.SUM, BuiltinOp.REDUCE_MIN):
        check(op, [(x.shape, x.dtype), np.array(-2, np.int32)], [x], options={"keep_dims": True})


@pytest.mark.parametrize("op", REDUCE_OPS, ids=lambda o: o.name)
def test_reduce_empty_axes_is_identity(op):
    x = rand((2, 3, 5))
    for keep_dims in (False, True):
        out = reduce_check(op, x, np.zeros((0,), np.int32), keep_dims)[0]
        np.testing.assert_array_equal(out, x)


@pytest.mark.parametrize("op", REDUCE_OPS, ids=lambda o: o.name)
@pytest.mark.parametrize("dtype", [np.int32, np.int64])
def test_reduce_integers(op, dtype):
    # Negative values exercise integer MEAN's truncation toward zero.
    x = rand((3, 4, 5), dtype, low=-9, high=9)
    if op == BuiltinOp.REDUCE_PROD:
        x = rand((3, 4, 5), dtype, low=-3, high=4)
    for axes in ([0], [1], [2], [0, 2], [1, 2], [0, 1, 2]):
        for keep_dims in (False, True):
            reduce_check(op, x, axes, keep_dims)


def test_reduce_wide_and_odd_shapes():
    for shape, axes in (((1, 7, 9, 13), [1, 2]), ((5, 1, 1, 3), [1, 2]), ((4096,), [0]),
                        ((3, 1000), [1]), ((1000, 3), [0]), ((2, 3, 4, 5, 6), [0, 2, 4]),
                        ((1, 1, 1), [1])):
        x = rand(shape)
        for op in (BuiltinOp.MEAN, BuiltinOp.SUM, BuiltinOp.REDUCE_MAX):
            reduce_check(op, x, axes, True)
            reduce_check(op, x, axes, False)


def test_reduce_scalar_input():
    x = np.array(3.5, np.float32)
    for op in (BuiltinOp.SUM, BuiltinOp.MEAN, BuiltinOp.REDUCE_MAX):
        out = reduce_check(op, x, [0], False)[0]
        assert out.shape == () and out == np.float32(3.5)


def test_reduce_over_empty_input():
    # TFLite: an empty SUM is 0, an empty PROD 1, an empty float MEAN NaN.
    x = np.zeros((0, 3), np.float32)
    for op in (BuiltinOp.SUM, BuiltinOp.REDUCE_PROD, BuiltinOp.MEAN):
        out = reduce_check(op, x, [0], False)[0]
        assert out.shape == (3,)


def test_mean_global_pool_like_mobilenet():
    x = rand((1, 7, 7, 64))
    reduce_check(BuiltinOp.MEAN, x, [1, 2], True)
    reduce_check(BuiltinOp.MEAN, x, [1, 2], False)


def test_reduce_any():
    x = rand((3, 4, 5), np.bool_)
    x[1] = False
    for axes in ([0], [1, 2], [-1], [0, 1, 2]):
        for keep_dims in (False, True):
            reduce_check(BuiltinOp.REDUCE_ANY, x, axes, keep_dims)


@pytest.mark.skipif(not hasattr(BuiltinOp, "REDUCE_ALL"), reason="schema has no REDUCE_ALL")
def test_reduce_all():
    x = rand((3, 4, 5), np.bool_) | (rand((3, 4, 5)) > -4)
    for axes in ([0], [1, 2], [0, 1, 2]):
        reduce_check(BuiltinOp.REDUCE_ALL, x, axes, False)


def test_reduce_max_min_non_finite_like_litert():
    # As LiteRT's default kernels do: each output starts from its first element (so -inf stays
    # -inf; LiteRT's BUILTIN_REF kernels start from the lowest finite float instead), a NaN
    # replaces the running value and the next number replaces the NaN, and an empty input leaves
    # the lowest/highest finite float.
    n, inf = np.nan, np.inf
    x = np.array([[[-inf, -inf, -inf], [n, 1, 2], [1, n, 2]],
                  [[inf, inf, -inf], [1, 2, n], [n, n, n]]], np.float32)
    for op in (BuiltinOp.REDUCE_MAX, BuiltinOp.REDUCE_MIN):
        for axes in ([0], [1], [2], [0, 2], [0, 1, 2]):
            model = single_op_model(op, [(x.shape, x.dtype), np.array(axes, np.int32)],
                                    options={"keep_dims": False})
            np.testing.assert_array_equal(run_edgeq(model, [x])[0],
                                          run_reference(model, [x], optimized=True)[0])
        empty = np.zeros((0, 2), np.float32)
        model = single_op_model(op, [(empty.shape, empty.dtype), np.array([0], np.int32)],
                                options={"keep_dims": False})
        out = run_edgeq(model, [empty])[0]
        np.testing.assert_array_equal(out, run_reference(model, [empty], optimized=True)[0])
        np.testing.assert_array_equal(out, run_reference(model, [empty])[0])
        assert np.isfinite(out).all()


def test_reduce_prod_on_constant_shape_is_folded_at_prepare():
    # tiny_bert-style shape arithmetic: every input constant, evaluated by the kernel at prepare.
    shape = np.array([2, 3, 7], np.int32)
    model = single_op_model(BuiltinOp.REDUCE_PROD, [shape, np.array([0], np.int32)],
                            output_dtype=np.int32, options={"keep_dims": False})
    out = run_edgeq(model, [])[0]
    assert out.dtype == np.int32 and out.shape == () and int(out) == 42
    np.testing.assert_array_equal(out, run_reference(model, [])[0])


def test_reduce_int64_axes():
    # LiteRT accepts int32 axes only; edgeq takes int64 too: compare with numpy.
    x = rand((2, 3, 4))
    model = single_op_model(BuiltinOp.SUM, [(x.shape, x.dtype), np.array([-1, 0], np.int64)],
                            options={"keep_dims": False})
    out = run_edgeq(model, [x])[0]
    np.testing.assert_allclose(out, x.sum(axis=(0, 2)), rtol=1e-5, atol=1e-5)


@pytest.mark.skipif(platform.machine().lower() not in ("x86_64", "amd64"),
                    reason="elsewhere compilers may contract multiply-adds into FMAs")
def test_bit_exact_with_litert_reference_kernels(monkeypatch):
    # edgeq's reference kernels (the optimized SOFTMAX reassociates its sum)
    monkeypatch.setenv("EDGEQ_ISA", "scalar")
    x = rand((2, 17, 13, 8))
    for axes in ([1, 2], [3], [0, 3], [0, 1, 2, 3]):
        for op in (BuiltinOp.MEAN, BuiltinOp.SUM):
            model = single_op_model(op, [(x.shape, x.dtype), np.array(axes, np.int32)],
                                    options={"keep_dims": True})
            np.testing.assert_array_equal(run_edgeq(model, [x])[0], run_reference(model, [x])[0])
    s = rand((4, 1000), low=-20, high=20)
    for op, options in ((BuiltinOp.SOFTMAX, {"beta": 0.7}), (BuiltinOp.LOG_SOFTMAX, None)):
        model = single_op_model(op, [(s.shape, s.dtype)], options=options)
        np.testing.assert_array_equal(run_edgeq(model, [s])[0], run_reference(model, [s])[0])


def test_reduce_bad_inputs():
    x = ((2, 3), np.float32)
    msg = edgeq_error(BuiltinOp.SUM, [x, np.array([2], np.int32)], [rand((2, 3))])
    assert "axis 2 is out of range" in msg
    msg = edgeq_error(BuiltinOp.MEAN, [x, np.array([-3], np.int32)], [rand((2, 3))])
    assert "axis -3 is out of range" in msg
    msg = edgeq_error(BuiltinOp.REDUCE_MAX, [x, ((1,), np.int32)],
                      [rand((2, 3)), np.array([0], np.int32)])
    assert "must be constant" in msg
    msg = edgeq_error(BuiltinOp.SUM, [x, np.array([0.0], np.float32)], [rand((2, 3))])
    assert "axis must be int32 or int64" in msg
    msg = edgeq_error(BuiltinOp.MEAN, [((2, 3), np.int8), np.array([0], np.int32)],
                      [rand((2, 3), np.int8)], output_dtype=np.int8)
    assert "int8 activations are not supported" in msg
    msg = edgeq_error(BuiltinOp.REDUCE_ANY, [x, np.array([0], np.int32)], [rand((2, 3))],
                      output_dtype=np.float32)
    assert "float32 is not supported" in msg
    msg = edgeq_error(BuiltinOp.REDUCE_MAX, [((2, 3), np.bool_), np.array([0], np.int32)],
                      [rand((2, 3), np.bool_)], output_dtype=np.bool_)
    assert "bool is not supported" in msg


# ---- kernel-level sweep of the reduction walk -----------------------------------------------

def run_reduce_kernel(kernel, x, axes, out_dtype=None):
    from edgeq.ops.reduce import MAX_DIMS, ReduceParams, collapse
    from edgeq.runtime import run_kernel
    import ctypes

    reduced = {a % x.ndim for a in axes}
    dims, strides = collapse(x.shape, reduced)
    pad = MAX_DIMS - len(dims)
    params = ReduceParams(len(dims), (ctypes.c_int32 * MAX_DIMS)(*(dims + [0] * pad)),
                          (ctypes.c_int32 * MAX_DIMS)(*(strides + [0] * pad)))
    out_shape = tuple(n for d, n in enumerate(x.shape) if d not in reduced)
    out = np.full(out_shape, 77, out_dtype or x.dtype)
    scratch = out.size * 8 if kernel == "mean_i32" else 0
    run_kernel(kernel, bytes(params), [x], [out], scratch)
    return out


def test_reduce_walk_sweep_against_numpy():
    for _ in range(150):
        rank = int(RNG.integers(1, 7))
        shape = tuple(int(v) for v in RNG.choice([1, 1, 2, 3, 5], size=rank))
        axes = sorted({int(a) for a in RNG.integers(0, rank, size=RNG.integers(1, rank + 1))})
        x = rand(shape, np.int64, -1000, 1000)
        ax = tuple(axes)
        np.testing.assert_array_equal(run_reduce_kernel("sum_i64", x, axes), x.sum(axis=ax))
        np.testing.assert_array_equal(run_reduce_kernel("reduce_max_i64", x, axes),
                                      x.max(axis=ax))
        np.testing.assert_array_equal(run_reduce_kernel("reduce_min_i64", x, axes),
                                      x.min(axis=ax))
        x32 = x.astype(np.int32)
        mean = np.trunc(x.sum(axis=ax) / np.prod([shape[a] for a in axes])).astype(np.int32)
        np.testing.assert_array_equal(run_reduce_kernel("mean_i32", x32, axes), mean)
        xf = x.astype(np.float32) / 100
        np.testing.assert_allclose(run_reduce_kernel("mean_f32", xf, axes),
                                   xf.astype(np.float64).mean(axis=ax), rtol=1e-5, atol=1e-4)


def test_reduce_kernels_on_zero_size_dims():
    x = np.zeros((2, 0, 3), np.float32)
    np.testing.assert_array_equal(run_reduce_kernel("sum_f32", x, [1]), np.zeros((2, 3)))
    np.testing.assert_array_equal(run_reduce_kernel("reduce_prod_f32", x, [1]), np.ones((2, 3)))
    assert np.isnan(run_reduce_kernel("mean_f32", x, [1])).all()
    assert (run_reduce_kernel("reduce_max_f32", x, [1]) == np.finfo(np.float32).min).all()
    assert run_reduce_kernel("sum_f32", x, [0]).shape == (0, 3)
    assert (run_reduce_kernel("mean_i32", x.astype(np.int32), [1]) == 0).all()


def test_integer_sum_and_prod_wrap_like_tflite():
    x = np.array([2**31 - 1, 1, 5], np.int32)
    assert run_reduce_kernel("sum_i32", x, [0]) == np.int32(-(2**31) + 5)
    y = np.array([2**20, 2**20, 3], np.int32)
    assert run_reduce_kernel("reduce_prod_i32", y, [0]) == np.int32(0)
    # int32 MEAN sums in int64: no wrap there.
    assert run_reduce_kernel("mean_i32", np.array([2**31 - 1] * 4, np.int32), [0]) == 2**31 - 1


# ---- softmax ---------------------------------------------------------------------------------

@pytest.mark.parametrize("shape", [(7,), (3, 10), (2, 3, 17), (2, 1, 4, 1001), (1, 2, 2, 2, 3)])
@pytest.mark.parametrize("beta", [1.0, 0.5, 2.5])
def test_softmax(shape, beta):
    x = rand(shape, low=-8, high=8)
    check(BuiltinOp.SOFTMAX, [(shape, np.float32)], [x], options={"beta": beta})


def test_softmax_large_logits_do_not_overflow():
    x = rand((4, 33), low=-1e4, high=1e4)
    x[0, 3] = 3e38
    x[1] = 1e30  # all equal: uniform
    x[2] = x[2] - 1e5  # all very negative: exp would underflow without the max shift
    out = check(BuiltinOp.SOFTMAX, [(x.shape, np.float32)], [x], options={"beta": 1.0})[0]
    assert np.isfinite(out).all()
    np.testing.assert_allclose(out[1], 1 / 33, rtol=1e-6)
    np.testing.assert_allclose(out.sum(axis=-1), 1.0, rtol=1e-5)


@pytest.mark.parametrize("shape", [(9,), (4, 10), (2, 3, 257)])
def test_log_softmax(shape):
    x = rand(shape, low=-20, high=20)
    check(BuiltinOp.LOG_SOFTMAX, [(shape, np.float32)], [x])
    big = x * 1e4
    out = check(BuiltinOp.LOG_SOFTMAX, [(shape, np.float32)], [big])[0]
    assert np.isfinite(out).all()


def test_softmax_zero_size():
    # LiteRT crashes on an empty last axis; edgeq returns the empty tensor.
    for op in (BuiltinOp.SOFTMAX, BuiltinOp.LOG_SOFTMAX):
        for shape in ((2, 0), (0, 3)):
            model = single_op_model(op, [(shape, np.float32)],
                                    options={"beta": 1.0} if op == BuiltinOp.SOFTMAX else None)
            assert run_edgeq(model, [np.zeros(shape, np.float32)])[0].shape == shape
    x = np.zeros((0, 3), np.float32)
    check(BuiltinOp.SOFTMAX, [(x.shape, np.float32)], [x], options={"beta": 1.0})


def test_softmax_bad_inputs():
    msg = edgeq_error(BuiltinOp.SOFTMAX, [((2, 3), np.int8)], [rand((2, 3), np.int8)],
                      output_dtype=np.int8, options={"beta": 1.0})
    assert "int8 activations are not supported" in msg
    msg = edgeq_error(BuiltinOp.SOFTMAX, [((), np.float32)], [np.float32(1).reshape(())],
                      options={"beta": 1.0})
    assert "rank >= 1" in msg
    msg = edgeq_error(BuiltinOp.SOFTMAX, [((2, 3), np.float32)], [rand((2, 3))],
                      options={"beta": float("nan")})
    assert "beta" in msg and "must be finite" in msg
    msg = edgeq_error(BuiltinOp.LOG_SOFTMAX, [((2, 3), np.int32)], [rand((2, 3), np.int32)],
                      output_dtype=np.int32)
    assert "int32 is not supported" in msg


# ---- arg max / arg min -----------------------------------------------------------------------

TENSOR_TYPE = {np.int32: 2, np.int64: 4}


def arg_check(op, x, axis, out_dtype, axis_dtype=np.int32):
    return check(op, [(x.shape, x.dtype), np.array([axis], axis_dtype)], [x],
                 output_dtype=out_dtype, options={"output_type": TENSOR_TYPE[out_dtype]})


@pytest.mark.parametrize("op", [BuiltinOp.ARG_MAX, BuiltinOp.ARG_MIN], ids=lambda o: o.name)
@pytest.mark.parametrize("dtype", [np.float32, np.int32, np.uint8, np.int8])
def test_arg_min_max(op, dtype):
    # A narrow value range makes ties frequent: the first index must win.
    x = rand((3, 4, 5), dtype, low=0, high=3)
    for axis in (0, 1, 2, -1, -3):
        for out_dtype in (np.int32, np.int64):
            arg_check(op, x, axis, out_dtype)
    arg_check(op, x, 1, np.int32, axis_dtype=np.int64)


def test_arg_min_max_nan_like_litert():
    # Any number beats a NaN; an all-NaN slice gives index 0.
    n, inf = np.nan, np.inf
    x = np.array([[n, 1, 2], [1, n, 2], [2, n, 1], [n, n, n], [n, 2, n], [1, 2, n],
                  [-inf, -inf, -inf], [3, 3, n], [n, 5, 5]], np.float32)
    for op in (BuiltinOp.ARG_MAX, BuiltinOp.ARG_MIN):
        for data, axis in ((x, 1), (np.ascontiguousarray(x.T), 0)):
            arg_check(op, data, axis, np.int64)


def test_arg_max_odd_shapes():
    for shape, axis in (((1000,), 0), ((1, 1, 1), 1), ((7, 1), 1), ((2, 3, 1, 129), 3)):
        x = rand(shape)
        arg_check(BuiltinOp.ARG_MAX, x, axis, np.int64)
        arg_check(BuiltinOp.ARG_MIN, x, axis, np.int32)


def test_arg_max_zero_size_outer():
    x = np.zeros((0, 4, 3), np.float32)
    out = arg_check(BuiltinOp.ARG_MAX, x, 2, np.int32)[0]
    assert out.shape == (0, 4)


def test_arg_max_ties_pick_first_index():
    x = np.array([[1, 3, 3, 0], [2, 2, 2, 2]], np.float32)
    model = single_op_model(BuiltinOp.ARG_MAX, [(x.shape, x.dtype), np.array([1], np.int32)],
                            output_dtype=np.int32, options={"output_type": 2})
    np.testing.assert_array_equal(run_edgeq(model, [x])[0], [1, 0])


def test_arg_bool_and_int64_inputs_against_numpy():
    for dtype in (np.bool_, np.int64):
        x = rand((4, 6), dtype, low=-3, high=3)
        for op, fn in ((BuiltinOp.ARG_MAX, np.argmax), (BuiltinOp.ARG_MIN, np.argmin)):
            model = single_op_model(op, [(x.shape, x.dtype), np.array([1], np.int32)],
                                    output_dtype=np.int64, options={"output_type": 4})
            np.testing.assert_array_equal(run_edgeq(model, [x])[0], fn(x, axis=1))


def test_arg_bad_inputs():
    x = ((2, 3), np.float32)
    feeds = [rand((2, 3))]
    msg = edgeq_error(BuiltinOp.ARG_MAX, [x, np.array([2], np.int32)], feeds,
                      output_dtype=np.int64, options={"output_type": 4})
    assert "axis 2 is out of range" in msg
    msg = edgeq_error(BuiltinOp.ARG_MIN, [x, np.array([0, 1], np.int32)], feeds,
                      output_dtype=np.int64, options={"output_type": 4})
    assert "exactly one value" in msg
    msg = edgeq_error(BuiltinOp.ARG_MAX, [x, np.array([0], np.int32)], feeds,
                      output_dtype=np.float32, options={"output_type": 0})
    assert "output_type 0 is not INT32 or INT64" in msg
    msg = edgeq_error(BuiltinOp.ARG_MAX, [x, ((1,), np.int32)],
                      feeds + [np.array([0], np.int32)], output_dtype=np.int64,
                      options={"output_type": 4})
    assert "must be constant" in msg
    msg = edgeq_error(BuiltinOp.ARG_MAX, [((2, 0), np.float32), np.array([1], np.int32)],
                      [np.zeros((2, 0), np.float32)], output_dtype=np.int64,
                      options={"output_type": 4})
    assert "has size 0" in msg
