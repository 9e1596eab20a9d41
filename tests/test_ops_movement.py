"""Movement and shape ops against LiteRT: RESHAPE, SQUEEZE, EXPAND_DIMS, TRANSPOSE, CONCATENATION,
PACK, UNPACK, SPLIT, SPLIT_V, TILE, BROADCAST_TO, SHAPE, DENSIFY; plus kernel-level sweeps of the
gather / concatenation / split kernels over edge shapes, and bad models that must be refused."""
from __future__ import annotations

import itertools

import numpy as np
import pytest

import edgeq
from edgeq.ops import movement
from edgeq.ops.registry import lookup
from edgeq.runtime import run_kernel
from edgeq.tflite.schema import BuiltinOp as B
from edgeq.tflite.writer import ModelBuilder
from harness import assert_close_to_range, check_against_litert, run_edgeq, run_litert, \
    single_op_model

ALL_DTYPES = [np.float32, np.float16, np.int32, np.int64, np.int8, np.uint8, np.int16, np.bool_]
RNG = np.random.default_rng(1234)


def data(shape, dtype, rng=RNG):
    dtype = np.dtype(dtype)
    if dtype == np.bool_:
        return rng.random(shape) < 0.5
    if dtype.kind == "f":
        return rng.standard_normal(shape).astype(dtype)
    info = np.iinfo(dtype)
    return rng.integers(max(info.min, -1000), min(info.max, 1000), size=shape, endpoint=True,
                        dtype=dtype)


def check(op, inputs, feeds, dtype=np.float32, **kw):
    return check_against_litert(op, inputs, feeds, output_dtype=dtype, **kw)


def edgeq_model(model: bytes):
    it = edgeq.Interpreter(model_content=model, num_threads=1)
    it.allocate_tensors()
    return it


def refused(op, inputs, match, **kw):
    model = single_op_model(op, inputs, **kw)
    with pytest.raises(edgeq.ModelError, match=match):
        edgeq_model(model)


# -- RESHAPE ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", ALL_DTYPES)
def test_reshape_dtypes(dtype):
    x = data((2, 3, 4), dtype)
    out, = check(B.RESHAPE, [((2, 3, 4), dtype), np.array([-1, 4], np.int32)], [x], dtype)
    np.testing.assert_array_equal(out, x.reshape(6, 4))


@pytest.mark.parametrize("in_shape,new_shape", [
    ((24,), [2, 3, 4]),
    ((2, 3, 4), [4, -1]),
    ((1, 2, 1, 3, 1, 2), [-1]),
    ((2, 3), [1, 1, 2, 1, 3, 1]),
    ((6,), [1, 1, -1, 1, 1, 1]),
    ((0, 3), [-1, 3]),
    ((0, 3), [3, 0, -1]),  # the -1 next to a zero dim takes non-zero leftovers: [3, 0, 1]
    ((0, 3), [-1]),
    ((1, 1), []),
])
def test_reshape_shape_tensor(in_shape, new_shape):
    x = data(in_shape, np.float32)
    out, = check(B.RESHAPE, [(in_shape, np.float32), np.array(new_shape, np.int32)], [x])
    assert out.size == x.size


@pytest.mark.parametrize("in_shape,new_shape", [
    ((2, 3, 4), [3, -1]),
    ((1, 1), [0]),  # legacy converters wrote [0] for a scalar
    ((1,), []),
    ((0, 2), [2, -1, 2]),
])
def test_reshape_option(in_shape, new_shape):
    x = data(in_shape, np.float32)
    out, = check(B.RESHAPE, [(in_shape, np.float32)], [x], options={"new_shape": new_shape})
    assert out.size == x.size


def test_reshape_shape_tensor_wins_over_option():
    x = data((2, 6), np.float32)
    out, = check(B.RESHAPE, [((2, 6), np.float32), np.array([3, 4], np.int32)], [x],
                 options={"new_shape": [4, 3]})
    assert out.shape == (3, 4)


def test_reshape_bad():
    refused(B.RESHAPE, [((2, 3), np.float32), np.array([4, -1], np.int32)], "cannot reshape")
    refused(B.RESHAPE, [((2, 3), np.float32), np.array([5], np.int32)], r"\(5 elements\)")
    refused(B.RESHAPE, [((2, 3), np.float32), np.array([-1, -1], np.int32)], "more than one -1")
    refused(B.RESHAPE, [((2, 3), np.float32), np.array([-2, -3], np.int32)], "negative")
    refused(B.RESHAPE, [((2, 3), np.float32), ((2,), np.int32)], "shape input.*constant")
    refused(B.RESHAPE, [((2, 3), np.float32), np.array([1] * 7 + [2, 3], np.int32)],
            "rank 9")
    refused(B.RESHAPE, [((4, 1), np.float32)], r"to new_shape option \[\] \(1 elements\)",
            options={"new_shape": []})


def keras_chain_model():
    """Keras' flatten with a dynamic batch: the target shape is computed from the input's."""
    b = ModelBuilder(description="keras flatten")
    x = b.add_tensor("x", [1, 7, 4], np.float32, shape_signature=[-1, 7, 4])
    shape = b.add_tensor("shape", [3], np.int32)
    begin = b.add_tensor("begin", [1], np.int32, data=np.array([0], np.int32))
    end = b.add_tensor("end", [1], np.int32, data=np.array([1], np.int32))
    strides = b.add_tensor("strides", [1], np.int32, data=np.array([1], np.int32))
    batch = b.add_tensor("batch", [], np.int32)
    flat = b.add_tensor("flat", [], np.int32, data=np.array(28, np.int32))
    packed = b.add_tensor("packed", [2], np.int32)
    y = b.add_tensor("y", [1, 28], np.float32, shape_signature=[-1, 28])
    b.add_operator(B.SHAPE, [x], [shape], options={"out_type": 2})
    b.add_operator(B.STRIDED_SLICE, [shape, begin, end, strides], [batch],
                   options={"shrink_axis_mask": 1})
    b.add_operator(B.PACK, [batch, flat], [packed], options={"values_count": 2, "axis": 0})
    b.add_operator(B.RESHAPE, [x, packed], [y])
    b.set_inputs([x])
    b.set_outputs([y])
    return b.build()


def test_reshape_keras_chain():
    if lookup(B.STRIDED_SLICE) is None:
        pytest.skip("STRIDED_SLICE is not registered in this tree (another family's op)")
    model = keras_chain_model()
    for batch in (1, 3, 0):
        x = data((batch, 7, 4), np.float32)
        expected, = run_litert(model, [x])
        actual, = run_edgeq(model, [x])
        assert actual.shape == (batch, 28)
        assert_close_to_range(actual, expected)


# -- SQUEEZE / EXPAND_DIMS -------------------------------------------------------------------------

@pytest.mark.parametrize("shape,dims", [
    ((1, 3, 1, 2), []),
    ((1, 3, 1, 2), [0]),
    ((1, 3, 1, 2), [-2, 0]),
    ((1, 1, 1, 1, 1, 1), []),
    ((2, 1, 3, 1, 4, 1), [5, -5]),
    ((0, 1, 3), [1]),
    ((1,), []),
    ((4,), []),
])
def test_squeeze(shape, dims):
    for dtype in (np.float32, np.int8, np.bool_):
        x = data(shape, dtype)
        out, = check(B.SQUEEZE, [(shape, dtype)], [x], dtype, options={"squeeze_dims": dims})
        np.testing.assert_array_equal(out, np.squeeze(x, axis=tuple(dims) or None))


def test_squeeze_bad():
    refused(B.SQUEEZE, [((1, 3), np.float32)], "squeeze_dims entry 1 names dim 1 of size 3",
            options={"squeeze_dims": [1]})
    refused(B.SQUEEZE, [((1, 3), np.float32)], "squeeze_dims entry -3 is out of range",
            options={"squeeze_dims": [-3]})


@pytest.mark.parametrize("shape,axis", [((3, 4), 0), ((3, 4), 2), ((3, 4), -1), ((3, 4), -3),
                                        ((), 0), ((2, 0, 3), 1), ((1, 2, 1, 2, 1), 5)])
@pytest.mark.parametrize("axis_dtype", [np.int32, np.int64])
def test_expand_dims(shape, axis, axis_dtype):
    x = data(shape, np.int32)
    out, = check(B.EXPAND_DIMS, [(shape, np.int32), np.array(axis, axis_dtype)], [x], np.int32)
    assert out.shape == np.expand_dims(x, axis).shape


def test_expand_dims_bad():
    refused(B.EXPAND_DIMS, [((3, 4), np.float32), np.array(3, np.int32)], "axis 3 is out of range")
    refused(B.EXPAND_DIMS, [((3, 4), np.float32), np.array(-4, np.int32)], "axis -4")
    refused(B.EXPAND_DIMS, [((3, 4), np.float32), np.array([0, 1], np.int32)], "single value")
    refused(B.EXPAND_DIMS, [((3, 4), np.float32), ((), np.int32)], "axis.*constant")


# -- TRANSPOSE -------------------------------------------------------------------------------------

@pytest.mark.parametrize("rank", range(1, 7))
def test_transpose_ranks(rank):
    rng = np.random.default_rng(rank)
    shape = tuple(int(d) for d in rng.integers(1, 5, size=rank))
    for _ in range(3):
        perm = rng.permutation(rank).astype(np.int32)
        x = data(shape, np.float32, rng)
        out, = check(B.TRANSPOSE, [(shape, np.float32), perm], [x])
        np.testing.assert_array_equal(out, np.transpose(x, perm))


@pytest.mark.parametrize("dtype", ALL_DTYPES)
def test_transpose_dtypes(dtype):
    x = data((3, 5, 2, 7), dtype)
    check(B.TRANSPOSE, [((3, 5, 2, 7), dtype), np.array([3, 1, 0, 2], np.int32)], [x], dtype)


@pytest.mark.parametrize("shape,perm", [((0, 3, 2), [2, 0, 1]), ((1, 64, 33), [0, 2, 1]),
                                        ((5, 1, 1, 3), [3, 2, 0, 1]), ((6,), [0])])
def test_transpose_shapes(shape, perm):
    x = data(shape, np.int16)
    check(B.TRANSPOSE, [(shape, np.int16), np.array(perm, np.int32)], [x], np.int16)


def test_transpose_scalar():
    # LiteRT leaves the output of a rank-0 transpose unwritten; it is the identity.
    model = single_op_model(B.TRANSPOSE, [((), np.int16), np.array([], np.int32)],
                            output_dtype=np.int16)
    out, = run_edgeq(model, [np.array(-321, np.int16)])
    assert out.shape == () and out == -321


def test_transpose_bad():
    refused(B.TRANSPOSE, [((2, 3, 4), np.float32), np.array([0, 0, 1], np.int32)],
            r"perm \[0, 0, 1\] is not a permutation")
    refused(B.TRANSPOSE, [((2, 3, 4), np.float32), np.array([0, 3, 1], np.int32)],
            "not a permutation")
    refused(B.TRANSPOSE, [((2, 3, 4), np.float32), np.array([1, 0], np.int32)],
            "perm .* has 2 entries for an input of rank 3")
    refused(B.TRANSPOSE, [((1,) * 7, np.float32), np.arange(7, dtype=np.int32)],
            "rank 7 .* above the supported 6")
    refused(B.TRANSPOSE, [((2, 3), np.float32), np.array([1.0, 0.0], np.float32)],
            "perm must be int32 or int64")


# -- CONCATENATION / PACK --------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", ALL_DTYPES)
def test_concatenation_dtypes(dtype):
    shapes = [(2, 3, 4), (2, 1, 4), (2, 5, 4)]
    feeds = [data(s, dtype) for s in shapes]
    out, = check(B.CONCATENATION, [(s, dtype) for s in shapes], feeds, dtype,
                 options={"axis": -2})
    np.testing.assert_array_equal(out, np.concatenate(feeds, axis=1))


@pytest.mark.parametrize("shapes,axis", [
    ([(5,), (3,)], 0),
    ([(2, 3), (2, 3)], -1),
    ([(2, 3), (0, 3), (1, 3)], 0),
    ([(2, 0), (2, 4)], 1),
    ([(0, 3), (0, 2)], 1),
    ([(1, 2, 3, 4, 5, 2)] * 2 + [(1, 2, 3, 4, 1, 2)], 4),
    ([(1, 2, 1, 2, 1, 2)] * 7, -6),
    ([(3, 4)], 1),
])
def test_concatenation_shapes(shapes, axis):
    feeds = [data(s, np.float32) for s in shapes]
    check(B.CONCATENATION, [(s, np.float32) for s in shapes], feeds, options={"axis": axis})


def test_concatenation_constant_input():
    c = data((2, 2), np.int32)
    x = data((2, 3), np.int32)
    check(B.CONCATENATION, [((2, 3), np.int32), c], [x], np.int32, options={"axis": 1})


@pytest.mark.parametrize("act,lo,hi", [(1, 0, np.inf), (2, -1, 1), (3, 0, 6)])
def test_concatenation_fused_activation(act, lo, hi):
    # TFLite's builtin kernel refuses a fused activation here and LiteRT's XNNPACK delegate
    # ignores it, so this is checked against numpy; edgeq creates such nodes itself when it
    # fuses a RELU into the concatenation that feeds it.
    x = np.linspace(-8, 8, 24, dtype=np.float32).reshape(2, 3, 4)
    model = single_op_model(B.CONCATENATION, [((2, 3, 4), np.float32), ((2, 3, 4), np.float32)],
                            options={"axis": 2, "fused_activation_function": act})
    out, = run_edgeq(model, [x, -x])
    np.testing.assert_array_equal(out, np.clip(np.concatenate([x, -x], axis=2), lo, hi))


def test_concatenation_then_relu_fused():
    if lookup(B.RELU) is None:
        pytest.skip("RELU is not registered in this tree (another family's op)")
    b = ModelBuilder()
    x0 = b.add_tensor("x0", [2, 3], np.float32)
    x1 = b.add_tensor("x1", [2, 2], np.float32)
    c = b.add_tensor("c", [2, 5], np.float32)
    y = b.add_tensor("y", [2, 5], np.float32)
    b.add_operator(B.CONCATENATION, [x0, x1], [c], options={"axis": 1})
    b.add_operator(B.RELU, [c], [y])
    b.set_inputs([x0, x1])
    b.set_outputs([y])
    model = b.build()
    feeds = [data((2, 3), np.float32), data((2, 2), np.float32)]
    assert_close_to_range(run_edgeq(model, feeds)[0], run_litert(model, feeds)[0])


def test_concatenation_bad():
    f = np.float32
    refused(B.CONCATENATION, [((2, 3), f), ((3, 3), f)], r"input 1 shape \[3, 3\] does not match",
            options={"axis": 1})
    refused(B.CONCATENATION, [((2, 3), f), ((2, 3, 1), f)], "does not match",
            options={"axis": 0})
    refused(B.CONCATENATION, [((2, 3), f), ((2, 3), f)], "axis 2 is out of range",
            options={"axis": 2})
    refused(B.CONCATENATION, [((2, 3), f), ((2, 3), f)], "axis -3 is out of range",
            options={"axis": -3})
    refused(B.CONCATENATION, [((2, 3), f), ((2, 3), np.int32)], "input 1 dtype int32 differs",
            options={"axis": 0})
    refused(B.CONCATENATION, [((2, 3), np.int32), ((2, 3), np.int32)],
            "fused_activation_function 1 on int32", options={"axis": 0,
                                                            "fused_activation_function": 1})
    refused(B.CONCATENATION, [((2, 3), f), ((2, 3), f)], "fused_activation_function 4",
            options={"axis": 0, "fused_activation_function": 4})


def test_concatenation_int8_requantization_refused():
    b = ModelBuilder()
    q = [dict(scale=[0.5], zero_point=[1]), dict(scale=[0.25], zero_point=[1])]
    x0 = b.add_tensor("x0", [2], np.int8, quantization=q[0])
    x1 = b.add_tensor("x1", [2], np.int8, quantization=q[1])
    y = b.add_tensor("y", [4], np.int8, quantization=q[0])
    b.add_operator(B.CONCATENATION, [x0, x1], [y], options={"axis": 0})
    b.set_inputs([x0, x1])
    b.set_outputs([y])
    with pytest.raises(edgeq.ModelError, match="input 1 quantization .* requantization"):
        edgeq_model(b.build())


@pytest.mark.parametrize("dtype", [np.float32, np.int32, np.int64, np.int8, np.uint8, np.int16])
def test_pack_dtypes(dtype):
    feeds = [data((3, 4), dtype) for _ in range(3)]
    out, = check(B.PACK, [((3, 4), dtype)] * 3, feeds, dtype,
                 options={"values_count": 3, "axis": 1})
    np.testing.assert_array_equal(out, np.stack(feeds, axis=1))


@pytest.mark.parametrize("shape,axis,n", [((3, 4), 0, 2), ((3, 4), 2, 2), ((3, 4), -1, 3),
                                          ((3, 4), -3, 1), ((), 0, 4), ((2, 0), 1, 2),
                                          ((1, 2, 3, 2, 1), 3, 2)])
def test_pack_axes(shape, axis, n):
    feeds = [data(shape, np.float32) for _ in range(n)]
    out, = check(B.PACK, [(shape, np.float32)] * n, feeds,
                 options={"values_count": n, "axis": axis})
    np.testing.assert_array_equal(out, np.stack(feeds, axis=axis))


def test_pack_bool_and_float16():
    # LiteRT refuses these dtypes for PACK; edgeq moves them like any other element size.
    for dtype in (np.bool_, np.float16):
        feeds = [data((2, 3), dtype) for _ in range(2)]
        model = single_op_model(B.PACK, [((2, 3), dtype)] * 2, output_dtype=dtype,
                                options={"values_count": 2, "axis": 2})
        np.testing.assert_array_equal(run_edgeq(model, feeds)[0], np.stack(feeds, axis=2))


def test_pack_bad():
    f = np.float32
    refused(B.PACK, [((2, 3), f), ((2, 3), f)], "values_count 3 does not match the 2 inputs",
            options={"values_count": 3, "axis": 0})
    refused(B.PACK, [((2, 3), f), ((3, 2), f)], r"input 1 shape \[3, 2\] differs",
            options={"values_count": 2, "axis": 0})
    refused(B.PACK, [((2, 3), f), ((2, 3), f)], "axis 3 is out of range",
            options={"values_count": 2, "axis": 3})
    refused(B.PACK, [((2, 3), f), ((2, 3), f)], "axis -4 is out of range",
            options={"values_count": 2, "axis": -4})


# -- UNPACK / SPLIT / SPLIT_V ----------------------------------------------------------------------

@pytest.mark.parametrize("dtype", [np.float32, np.float16, np.int32, np.int8, np.uint8, np.int16,
                                   np.bool_])
def test_unpack_dtypes(dtype):
    x = data((2, 3, 4), dtype)
    outs = check(B.UNPACK, [((2, 3, 4), dtype)], [x], dtype, options={"num": 3, "axis": 1},
                 n_outputs=3)
    for k in range(3):
        np.testing.assert_array_equal(outs[k], x[:, k])


@pytest.mark.parametrize("shape,axis", [((4,), 0), ((2, 3, 4), -1), ((2, 3, 4), -3),
                                        ((2, 0, 3), 0), ((1, 2, 1, 2, 1, 3), 5)])
def test_unpack_axes(shape, axis):
    x = data(shape, np.float32)
    num = shape[axis]
    options = {"num": num, "axis": axis}
    if x.size == 0:  # LiteRT refuses an empty input; edgeq returns the empty slices
        model = single_op_model(B.UNPACK, [(shape, np.float32)], options=options, n_outputs=num)
        outs = run_edgeq(model, [x])
    else:
        outs = check(B.UNPACK, [(shape, np.float32)], [x], options=options, n_outputs=num)
    for k, got in enumerate(outs):
        np.testing.assert_array_equal(got, np.take(x, k, axis=axis))


def test_unpack_bad():
    refused(B.UNPACK, [((2, 3), np.float32)], "num 3 differs from dim 0 of size 2",
            options={"num": 3, "axis": 0}, n_outputs=3)
    refused(B.UNPACK, [((2, 3), np.float32)], "num 3 does not match the 2 outputs",
            options={"num": 3, "axis": 1}, n_outputs=2)
    refused(B.UNPACK, [((2, 3), np.float32)], "axis 2 is out of range",
            options={"num": 2, "axis": 2}, n_outputs=2)


@pytest.mark.parametrize("dtype", [np.float32, np.float16, np.int32, np.int64, np.int8, np.uint8,
                                   np.int16])
def test_split_dtypes(dtype):
    x = data((2, 6, 3), dtype)
    outs = check(B.SPLIT, [np.array(1, np.int32), ((2, 6, 3), dtype)], [x], dtype,
                 options={"num_splits": 3}, n_outputs=3)
    for got, want in zip(outs, np.split(x, 3, axis=1)):
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("shape,axis,num", [((6,), 0, 6), ((4, 6), -1, 2), ((4, 6), -2, 4),
                                            ((0, 4), 1, 2), ((4, 0), 0, 2),
                                            ((1, 2, 3, 4, 2, 2), 3, 2)])
def test_split_axes(shape, axis, num):
    x = data(shape, np.float32)
    check(B.SPLIT, [np.array(axis, np.int32), (shape, np.float32)], [x],
          options={"num_splits": num}, n_outputs=num)


def test_split_bad():
    f = np.float32
    refused(B.SPLIT, [np.array(1, np.int32), ((2, 5), f)], "size 5 does not split into 2",
            options={"num_splits": 2}, n_outputs=2)
    refused(B.SPLIT, [np.array(1, np.int32), ((2, 4), f)], "num_splits 4 does not match the 2",
            options={"num_splits": 4}, n_outputs=2)
    refused(B.SPLIT, [np.array(2, np.int32), ((2, 4), f)], "axis 2 is out of range",
            options={"num_splits": 2}, n_outputs=2)
    refused(B.SPLIT, [((), np.int32), ((2, 4), f)], "axis .* must be constant",
            options={"num_splits": 2}, n_outputs=2)


@pytest.mark.parametrize("sizes,size_dtype", [([1, 2, 3], np.int32), ([2, -1, 1], np.int32),
                                              ([0, 6, 0], np.int64), ([-1], np.int64),
                                              ([3, -1], np.int32)])
@pytest.mark.parametrize("dtype", [np.float32, np.int32, np.int8])
def test_split_v(sizes, size_dtype, dtype):
    x = data((2, 6, 3), dtype)
    n = len(sizes)
    outs = check(B.SPLIT_V, [((2, 6, 3), dtype), np.array(sizes, size_dtype),
                             np.array(-2, np.int32)], [x], dtype, options={"num_splits": n},
                 n_outputs=n)
    assert sum(o.shape[1] for o in outs) == 6


def test_split_v_bad():
    f = np.float32
    refused(B.SPLIT_V, [((2, 6), f), np.array([2, 3], np.int32), np.array(1, np.int32)],
            r"size_splits \[2, 3\] add up to 5, not to dim 1 of size 6",
            options={"num_splits": 2}, n_outputs=2)
    refused(B.SPLIT_V, [((2, 6), f), np.array([-1, -1], np.int32), np.array(1, np.int32)],
            "more than one -1", options={"num_splits": 2}, n_outputs=2)
    refused(B.SPLIT_V, [((2, 6), f), np.array([7, -1], np.int32), np.array(1, np.int32)],
            "add up to more than", options={"num_splits": 2}, n_outputs=2)
    refused(B.SPLIT_V, [((2, 6), f), np.array([8, -2], np.int32), np.array(1, np.int32)],
            "negative size", options={"num_splits": 2}, n_outputs=2)
    refused(B.SPLIT_V, [((2, 6), f), np.array([2, 4], np.int32), np.array(1, np.int32)],
            "size_splits .* has 2 entries for 3 outputs", options={"num_splits": 3},
            n_outputs=3)


# -- TILE / BROADCAST_TO ---------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", ALL_DTYPES)
def test_tile_dtypes(dtype):
    x = data((2, 3), dtype)
    out, = check(B.TILE, [((2, 3), dtype), np.array([3, 2], np.int64)], [x], dtype)
    np.testing.assert_array_equal(out, np.tile(x, (3, 2)))


@pytest.mark.parametrize("shape,multiples", [((5,), [3]), ((), []), ((2, 3), [1, 1]),
                                             ((2, 3), [0, 2]), ((0, 3), [2, 2]), ((1, 3, 1), [4, 1, 5]),
                                             ((2, 1, 2, 1, 2, 1), [1, 2, 1, 2, 1, 2])])
def test_tile_shapes(shape, multiples):
    x = data(shape, np.float32)
    out, = check(B.TILE, [(shape, np.float32), np.array(multiples, np.int32)], [x])
    np.testing.assert_array_equal(out, np.tile(x, multiples))


def test_tile_bad():
    f = np.float32
    refused(B.TILE, [((2, 3), f), np.array([2, -1], np.int32)], "negative entry")
    refused(B.TILE, [((2, 3), f), np.array([2], np.int32)], "multiples .* has 1 entries")
    refused(B.TILE, [((2, 3), f), np.array([[2, 1]], np.int32)], "multiples must be a 1-D")


@pytest.mark.parametrize("dtype", ALL_DTYPES)
def test_broadcast_to_dtypes(dtype):
    x = data((3, 1), dtype)
    out, = check(B.BROADCAST_TO, [((3, 1), dtype), np.array([2, 3, 4], np.int32)], [x], dtype,
                 version=2)
    np.testing.assert_array_equal(out, np.broadcast_to(x, (2, 3, 4)))


@pytest.mark.parametrize("shape,target", [((1,), [5]), ((4,), [3, 4]), ((1, 3, 1), [2, 3, 4]),
                                          ((2, 1), [2, 0]), ((), [2, 2]),
                                          ((1, 2, 1, 2, 1, 2, 1, 2), [2] * 8),
                                          ((3, 1, 4), [3, 1, 4])])
def test_broadcast_to_shapes(shape, target):
    x = data(shape, np.float32)
    out, = check(B.BROADCAST_TO, [(shape, np.float32), np.array(target, np.int64)], [x],
                 version=2)
    np.testing.assert_array_equal(out, np.broadcast_to(x, target))


def test_broadcast_to_bad():
    f = np.float32
    refused(B.BROADCAST_TO, [((3, 2), f), np.array([3, 4], np.int32)],
            r"cannot broadcast input \[3, 2\] to shape \[3, 4\]", version=2)
    refused(B.BROADCAST_TO, [((2, 3), f), np.array([3], np.int32)], "input rank 2 is above",
            version=2)
    refused(B.BROADCAST_TO, [((1,), f), np.array([2] * 9, np.int32)], "rank 9", version=2)


# -- SHAPE -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("out_dtype,code", [(np.int32, 2), (np.int64, 4)])
@pytest.mark.parametrize("shape", [(2, 3, 4), (), (0, 5), (1, 2, 3, 4, 5, 6)])
def test_shape(shape, out_dtype, code):
    x = data(shape, np.float32)
    if shape == ():  # LiteRT's get_tensor fails on the empty [0]-shaped result
        model = single_op_model(B.SHAPE, [(shape, np.float32)], output_dtype=out_dtype,
                                options={"out_type": code})
        out, = run_edgeq(model, [x])
    else:
        out, = check(B.SHAPE, [(shape, np.float32)], [x], out_dtype, options={"out_type": code})
    assert out.dtype == out_dtype
    np.testing.assert_array_equal(out, np.array(shape, out_dtype))


def test_shape_follows_resize():
    model = single_op_model(B.SHAPE, [((1, 3), np.float32)], output_dtype=np.int32)
    out, = run_edgeq(model, [data((5, 3), np.float32)])
    np.testing.assert_array_equal(out, [5, 3])


def test_shape_bad():
    refused(B.SHAPE, [((2, 3), np.float32)], "output dtype float32 is not int32 or int64",
            output_dtype=np.float32)


# -- DENSIFY ---------------------------------------------------------------------------------------

def csr_sparsity(dense):
    """Dense rows, compressed columns (TFLite's CSR: traversal [0, 1])."""
    rows, cols = dense.shape
    segments, indices, values = [0], [], []
    for r in range(rows):
        nz = np.flatnonzero(dense[r])
        indices += nz.tolist()
        values += dense[r, nz].tolist()
        segments.append(len(indices))
    sparsity = dict(traversal_order=[0, 1], dim_metadata=[
        dict(format=0, dense_size=rows),
        dict(format=1, array_segments=np.array(segments, np.int32),
             array_indices=np.array(indices, np.int32))])
    return sparsity, np.array(values, dense.dtype)


def block_sparsity(dense, block):
    """Block CSR: dense block rows, compressed block columns, dense blocks (as converters write
    block-sparse weights: traversal [0, 1, 2, 3], block_map [0, 1])."""
    br, bc = block
    rows, cols = dense.shape[0] // br, dense.shape[1] // bc
    segments, indices, values = [0], [], []
    for r in range(rows):
        for c in range(cols):
            blk = dense[r * br:(r + 1) * br, c * bc:(c + 1) * bc]
            if np.any(blk):
                indices.append(c)
                values += blk.reshape(-1).tolist()
        segments.append(len(indices))
    sparsity = dict(traversal_order=[0, 1, 2, 3], block_map=[0, 1], dim_metadata=[
        dict(format=0, dense_size=rows),
        dict(format=1, array_segments=np.array(segments, np.uint8),
             array_indices=np.array(indices, np.uint8)),
        dict(format=0, dense_size=br), dict(format=0, dense_size=bc)])
    return sparsity, np.array(values, dense.dtype)


def densify_add_model(dense, sparsity, values):
    b = ModelBuilder(description="densify")
    w = b.add_tensor("w_sparse", dense.shape, dense.dtype, data=values, sparsity=sparsity)
    wd = b.add_tensor("w", dense.shape, dense.dtype)
    x = b.add_tensor("x", dense.shape, dense.dtype)
    y = b.add_tensor("y", dense.shape, dense.dtype)
    b.add_operator(B.DENSIFY, [w], [wd])
    b.add_operator(B.ADD, [wd, x], [y])
    b.set_inputs([x])
    b.set_outputs([y])
    return b.build()


def sparse_matrix(rng, shape, block=(1, 1)):
    keep = rng.random((shape[0] // block[0], shape[1] // block[1])) < 0.4
    mask = np.kron(keep, np.ones(block, bool))
    return np.where(mask, rng.standard_normal(shape), 0).astype(np.float32)


@pytest.mark.parametrize("kind", ["csr", "csc", "block"])
def test_densify(kind):
    rng = np.random.default_rng(7)
    if kind == "csr":
        dense = sparse_matrix(rng, (4, 8))
        dense[2] = 0  # an empty row
        sparsity, values = csr_sparsity(dense)
    elif kind == "csc":  # columns outer: traversal order [1, 0]
        dense = sparse_matrix(rng, (4, 8))
        dense[:, 5] = 0
        sparsity, values = csr_sparsity(dense.T)
        sparsity["traversal_order"] = [1, 0]
    else:
        dense = sparse_matrix(rng, (4, 8), (2, 4))
        dense[0:2, 0:4] = 1.5  # at least one block present
        sparsity, values = block_sparsity(dense, (2, 4))
    model = densify_add_model(dense, sparsity, values)
    x = data(dense.shape, np.float32, rng)
    expected, = run_litert(model, [x])
    actual, = run_edgeq(model, [x])
    assert_close_to_range(actual, expected)
    np.testing.assert_allclose(actual, dense + x, rtol=0, atol=1e-6)


def test_densify_needs_sparse_constant():
    refused(B.DENSIFY, [((4, 8), np.float32)], "must be a sparse constant")
    refused(B.DENSIFY, [np.ones((2, 2), np.float32)], "must be a sparse constant")


# -- kernel-level sweeps ---------------------------------------------------------------------------

class _Ctx:
    """Just enough of a PrepareContext for movement._strided_call."""

    def fail(self, message):
        return edgeq.ModelError(message)


def test_strided_kernels_random_transposes():
    rng = np.random.default_rng(99)
    for trial in range(200):
        rank = int(rng.integers(0, 7))
        shape = tuple(int(d) for d in rng.integers(0, 5, size=rank))
        if trial % 4:  # mostly non-empty
            shape = tuple(max(d, 1) for d in shape)
        dtype = [np.uint8, np.float16, np.int32, np.int64][trial % 4]
        x = data(shape, dtype, rng)
        perm = rng.permutation(rank)
        out_shape = [shape[p] for p in perm]
        strides = movement._row_major_strides(shape)
        call = movement._strided_call(_Ctx(), "transpose", dtype, out_shape,
                                      [strides[p] for p in perm])
        out = np.empty(out_shape, dtype)
        run_kernel(call.kernel, call.params_bytes(), [x], [out])
        np.testing.assert_array_equal(out, np.transpose(x, perm), err_msg=f"{shape} {perm}")


@pytest.mark.parametrize("shape,perm", [((1, 64, 4, 32), (0, 2, 3, 1)), ((8, 8), (1, 0)),
                                        ((17, 9), (1, 0)), ((3, 16, 23), (0, 2, 1)),
                                        ((2, 9, 3, 17), (3, 1, 2, 0)), ((1, 7), (1, 0)),
                                        ((5, 40, 33), (2, 1, 0)), ((4, 3, 8, 16), (0, 1, 3, 2))])
def test_blocked_transpose_x32(shape, perm):
    """The ISA transpose_x32 (8 x 8 blocks where the two innermost dims swap) against numpy and
    the reference strided copy, over block multiples and tails of both plane dims."""
    from edgeq.runtime import cpu

    x = np.random.default_rng(len(shape)).standard_normal(shape).astype(np.float32)
    out_shape = [shape[p] for p in perm]
    strides = movement._row_major_strides(shape)
    call = movement._strided_call(_Ctx(), "transpose", x.dtype, out_shape,
                                  [strides[p] for p in perm])
    got, ref = np.full(out_shape, np.nan, np.float32), np.empty(out_shape, np.float32)
    run_kernel(call.kernel, call.params_bytes(), [x], [got], allowed=cpu.allowed())
    run_kernel(call.kernel, call.params_bytes(), [x], [ref], allowed=0)
    np.testing.assert_array_equal(ref, np.transpose(x, perm))
    np.testing.assert_array_equal(got, ref)


def test_strided_kernels_large_and_collapsing():
    x = np.arange(3 * 1000 * 7, dtype=np.int32).reshape(3, 1000, 7)
    for perm in itertools.permutations(range(3)):
        strides = movement._row_major_strides(x.shape)
        out_shape = [x.shape[p] for p in perm]
        call = movement._strided_call(_Ctx(), "transpose", x.dtype, out_shape,
                                      [strides[p] for p in perm])
        out = np.empty(out_shape, x.dtype)
        run_kernel(call.kernel, call.params_bytes(), [x], [out])
        np.testing.assert_array_equal(out, np.transpose(x, perm))
    # Identity and broadcast-only gathers collapse to one or two dims.
    call = movement._strided_call(_Ctx(), "transpose", x.dtype, x.shape,
                                  movement._row_major_strides(x.shape))
    assert call.params.ndim == 1
    call = movement._strided_call(_Ctx(), "broadcast_to", x.dtype, [4, 5, 6], [0, 0, 1])
    assert call.params.ndim == 2


def test_zero_size_kernels_do_not_touch_memory():
    # Buffers with no elements: every kernel must return without reading or writing.
    empty = np.empty((0, 3), np.float32)
    for kernel in ("copy_x",):
        run_kernel(kernel, None, [empty], [np.empty((3, 0), np.float32)])
    params = bytes(movement.ConcatParams(1, -np.inf, np.inf))
    run_kernel("concatenation_x", params, [empty, empty], [np.empty((0, 6), np.float32)])
    run_kernel("concatenation_f32", params, [empty, empty], [np.empty((0, 6), np.float32)])
    outs = [np.empty((0, 1), np.float32) for _ in range(3)]
    run_kernel("split_x", bytes(movement.SplitParams(1)), [empty], outs)
    call = movement._strided_call(_Ctx(), "tile", np.float32, [0, 3], [0, 1])
    run_kernel(call.kernel, call.params_bytes(), [empty], [np.empty((0, 3), np.float32)])


def test_concat_split_kernels_roundtrip():
    rng = np.random.default_rng(5)
    for trial in range(60):
        rank = int(rng.integers(1, 6))
        base = [int(d) for d in rng.integers(1, 4, size=rank)]
        axis = int(rng.integers(0, rank))
        dtype = [np.int8, np.int16, np.float32, np.int64][trial % 4]
        parts = []
        for _ in range(int(rng.integers(1, 5))):
            s = list(base)
            s[axis] = int(rng.integers(0, 4))
            parts.append(data(tuple(s), dtype, rng))
        whole = np.concatenate(parts, axis=axis)
        out = np.empty(whole.shape, dtype)
        run_kernel("concatenation_x", bytes(movement.ConcatParams(axis, 0, 0)), parts, [out])
        np.testing.assert_array_equal(out, whole)
        back = [np.empty(p.shape, dtype) for p in parts]
        run_kernel("split_x", bytes(movement.SplitParams(axis)), [whole], back)
        for got, want in zip(back, parts):
            np.testing.assert_array_equal(got, want)
