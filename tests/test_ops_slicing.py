"""Slicing, gathering and padding ops against LiteRT: STRIDED_SLICE, SLICE, GATHER, PAD, PADV2,
MIRROR_PAD, DEPTH_TO_SPACE, SPACE_TO_DEPTH, SPACE_TO_BATCH_ND, BATCH_TO_SPACE_ND; prepare-time
evaluation on constants; bad models that must be refused with a message naming the problem; a
runtime gather index out of range."""
from __future__ import annotations

import numpy as np
import pytest

import edgeq
from edgeq.tflite.schema import BuiltinOp as B
from edgeq.tflite.writer import ModelBuilder
from harness import check_against_litert, expect_model_error, run_edgeq, run_litert, \
    single_op_model
from test_ops_movement import data

# The dtypes LiteRT's kernels of this family accept (bool and fp16 are not among them for all).
DTYPES = [np.float32, np.int32, np.int64, np.int8, np.uint8, np.int16]


def check(op, inputs, feeds, dtype=np.float32, **kw):
    return check_against_litert(op, inputs, feeds, output_dtype=dtype, **kw)


def i32(*values):
    return np.array(values, np.int32)


def refused(op, inputs, *words, **kw):
    """edgeq refuses the one-op model; the message contains every word."""
    message = expect_model_error(op, inputs, **kw)
    for w in words:
        assert w in message, f"{w!r} not in {message!r}"
    return message


def num_kernels(model: bytes, feeds=()) -> int:
    it = edgeq.Interpreter(model_content=model, num_threads=1)
    it.allocate_tensors()
    return it._session(0).plan.compiled.num_nodes


# -- STRIDED_SLICE ---------------------------------------------------------------------------------

def strided_slice(shape, begin, end, strides, dtype=np.float32, **opts):
    """Checked against LiteRT's own kernels: its XNNPack delegate reads an end of 0 as "to the
    end of the dim", which TFLite's kernels (and edgeq) do not."""
    x = data(shape, dtype)
    inputs = [(shape, dtype)] + [i32(*v) for v in (begin, end, strides)]
    out, = check(B.STRIDED_SLICE, inputs, [x], dtype, options=opts, kernels="builtin")
    return x, out


@pytest.mark.parametrize("shape,begin,end,strides,opts", [
    ((10,), [2], [7], [1], {}),
    ((10,), [-3], [100], [1], {}),
    ((10,), [8], [1], [-2], {}),
    ((10,), [-1], [-11], [-1], {}),
    ((10,), [0], [0], [-1], {"begin_mask": 1, "end_mask": 1}),
    ((10,), [3], [3], [1], {}),  # empty
    ((10,), [0], [0], [1], {}),  # empty too (LiteRT's XNNPack delegate says otherwise)
    ((2, 3), [1, 0], [2, 0], [1, 1], {}),
    ((10,), [7], [2], [1], {}),  # empty: stop before start
    ((10,), [4], [0], [1], {"shrink_axis_mask": 1}),
    ((10,), [-2], [0], [1], {"shrink_axis_mask": 1}),
    ((10,), [2], [3], [1], {"offset": True}),
    ((10,), [-4], [3], [1], {"offset": True}),
    ((4, 6), [1, 2], [2, 4], [1, 3], {"offset": True}),
    ((2, 3, 4), [0, 1, 0], [2, 3, 4], [1, 1, 2], {}),
    ((2, 3, 4), [1, 0, 3], [0, 0, 0], [-1, 1, -1], {"end_mask": 0b111}),
    ((2, 3, 4), [0, 0, 0], [1, 3, 4], [1, 1, 1], {"shrink_axis_mask": 0b001}),
    ((2, 3, 4), [0, 2, 1], [1, 3, 4], [1, 1, 1], {"shrink_axis_mask": 0b011}),
    ((2, 3, 4), [0, 1], [0, 2], [1, 1], {"begin_mask": 1, "end_mask": 1}),  # spec shorter
    ((2, 3, 4), [0, 1], [0, 3], [1, 1], {"ellipsis_mask": 1}),  # [..., 1:3]
    ((2, 3, 4), [1, 0, 0], [2, 0, 0], [1, 1, 1], {"ellipsis_mask": 0b010}),
    ((2, 3, 4), [0, 0, 2], [0, 0, 3], [1, 1, 1], {"ellipsis_mask": 0b001, "new_axis_mask": 0b010,
                                                    "shrink_axis_mask": 0b100}),
    ((2, 3, 4), [0, 0], [0, 0], [1, 1], {"new_axis_mask": 0b01, "begin_mask": 2, "end_mask": 2}),
    ((2, 3, 4), [0, 0, 0], [1, 1, 1], [1, 1, 1], {"new_axis_mask": 0b101}),
    ((2, 3, 4), [1, 0, 0], [2, 0, 0], [1, 1, 1], {"new_axis_mask": 0b010, "ellipsis_mask": 0b010}),
    ((3, 1, 5, 1), [0, 0, 4, 0], [3, 1, 0, 1], [2, 1, -2, 1], {}),
    ((2, 3, 4, 5, 6), [1, -1, 0, 1, 5], [2, -4, 4, 5, 0], [1, -1, 3, 2, -2], {}),
    ((2, 3, 4, 5, 6), [0, 0, 0, 0, 0], [1, 1, 1, 1, 1], [1, 1, 1, 1, 1],
     {"shrink_axis_mask": 0b11111}),  # a scalar
    ((0, 3), [0, 1], [0, 3], [1, 1], {"end_mask": 1}),
    ((1, 5, 5, 8), [0, 0, 0, 0], [1, 5, 5, 8], [1, 2, 2, 1], {}),
])
def test_strided_slice_cases(shape, begin, end, strides, opts):
    x, out = strided_slice(shape, begin, end, strides, **opts)
    if not any(opts.get(k) for k in ("ellipsis_mask", "new_axis_mask", "offset")):
        # Plain Python slicing agrees with TFLite when only begin/end/shrink masks are set.
        index = []
        for k in range(len(x.shape)):
            if k >= len(begin):
                index.append(slice(None))
                continue
            if opts.get("shrink_axis_mask", 0) >> k & 1:
                index.append(begin[k])
                continue
            b = None if opts.get("begin_mask", 0) >> k & 1 else begin[k]
            e = None if opts.get("end_mask", 0) >> k & 1 else end[k]
            index.append(slice(b, e, strides[k]))
        np.testing.assert_array_equal(out, x[tuple(index)])


@pytest.mark.parametrize("dtype", DTYPES + [np.bool_])
def test_strided_slice_dtypes(dtype):
    strided_slice((3, 4, 5), [2, 0, 1], [0, 4, 5], [-1, 2, 1], dtype)


def test_strided_slice_int64_spec():
    # LiteRT takes int32 begin/end/strides only; edgeq also reads int64 ones, the same way.
    x = data((4, 6), np.float32)
    spec = [np.array(v, np.int64) for v in ([1, -1], [4, 0], [2, -2])]
    out, = run_edgeq(single_op_model(B.STRIDED_SLICE, [((4, 6), np.float32)] + spec), [x])
    np.testing.assert_array_equal(out, x[1:4:2, -1:0:-2])


def test_strided_slice_fuzz():
    """Random specs of rank 1..5 mixing every mask. A spec edgeq refuses must be one of the
    documented refusals; the rest must match LiteRT."""
    rng = np.random.default_rng(7)
    matched = 0
    for _ in range(600):
        rank = int(rng.integers(1, 6))
        shape = tuple(int(d) for d in rng.integers(1, 5, rank))
        n = int(rng.integers(1, rank + 2))
        opts = {k: sum(int(rng.random() < p) << k for k in range(n)) for k, p in (
            ("begin_mask", 0.2), ("end_mask", 0.2), ("ellipsis_mask", 0.12),
            ("new_axis_mask", 0.15), ("shrink_axis_mask", 0.2))}
        begin, end = (rng.integers(-5, 6, n).tolist() for _ in range(2))
        strides = rng.choice([-2, -1, 1, 2, 3], n).tolist()
        if any(opts["shrink_axis_mask"] >> k & 1 and strides[k] < 0 for k in range(n)):
            continue  # LiteRT leaves such an output unwritten (see the test below)
        model = single_op_model(B.STRIDED_SLICE, [(shape, np.float32)] + [
            i32(*v) for v in (begin, end, strides)], options=opts)
        x = data(shape, np.float32)
        try:
            actual, = run_edgeq(model, [x])
        except edgeq.ModelError as e:
            assert any(w in str(e) for w in (
                "shrink_axis_mask removes", "more than one entry", "more than the input's",
                "stand for no dim")), str(e)
            continue
        expected, = run_litert(model, [x], kernels="builtin")
        assert actual.shape == expected.shape and np.array_equal(actual, expected), \
            f"{shape} {begin} {end} {strides} {opts}"
        matched += 1
    assert matched > 250


def test_strided_slice_shrink_negative_stride():
    """A shrunk dim takes the element at begin whatever the stride (TensorFlow's meaning)."""
    x = data((3, 4), np.float32)
    model = single_op_model(B.STRIDED_SLICE, [((3, 4), np.float32), i32(-1, 3), i32(0, 0),
                                              i32(-2, -1)], options={"shrink_axis_mask": 1})
    out, = run_edgeq(model, [x])
    np.testing.assert_array_equal(out, x[-1, 3:0:-1])


def test_strided_slice_on_constants_is_evaluated_at_prepare():
    x = np.arange(24, dtype=np.int32).reshape(2, 3, 4)
    model = single_op_model(B.STRIDED_SLICE, [x, i32(1, 2, 0), i32(2, 0, 4), i32(1, -1, 3)],
                            output_dtype=np.int32)
    out, = run_edgeq(model, [])
    np.testing.assert_array_equal(out, x[1:2, 2:0:-1, 0:4:3])
    assert num_kernels(model) == 0


def test_keras_shape_slice_pack_reshape_chain_is_folded():
    """SHAPE -> STRIDED_SLICE (the batch) -> PACK -> RESHAPE, as Keras' Flatten writes it."""
    b = ModelBuilder()
    x = b.add_tensor("x", [2, 3, 4], np.float32)
    shape = b.add_tensor("shape", [3], np.int32)
    batch = b.add_tensor("batch", [], np.int32)
    flat = b.add_tensor("flat", [2], np.int32)
    y = b.add_tensor("y", [2, 12], np.float32)
    consts = [b.add_tensor(f"c{k}", [1], np.int32, data=i32(v)) for k, v in enumerate((0, 1, 1))]
    minus_one = b.add_tensor("m1", [], np.int32, data=np.array(-1, np.int32))
    b.add_operator(B.SHAPE, [x], [shape], options={"out_type": 2})
    b.add_operator(B.STRIDED_SLICE, [shape] + consts, [batch], options={"shrink_axis_mask": 1})
    b.add_operator(B.PACK, [batch, minus_one], [flat], options={"values_count": 2, "axis": 0})
    b.add_operator(B.RESHAPE, [x, flat], [y])
    b.set_inputs([x])
    b.set_outputs([y])
    model = b.build()
    feed = data((2, 3, 4), np.float32)
    out, = run_edgeq(model, [feed])
    np.testing.assert_array_equal(out, feed.reshape(2, 12))
    assert num_kernels(model) == 1  # only the reshape's copy is left


def test_strided_slice_bad():
    x = ((4, 5), np.float32)
    refused(B.STRIDED_SLICE, [x, i32(0, 0), i32(1, 1), i32(1, 0)], "strides", "zero")
    refused(B.STRIDED_SLICE, [x, i32(0, 0), i32(1, 1), i32(1)], "differ in length")
    refused(B.STRIDED_SLICE, [x, i32(0, 0, 0), i32(1, 1, 1), i32(1, 1, 1)], "3 entries")
    refused(B.STRIDED_SLICE, [x, i32(4, 0), i32(5, 1), i32(1, 1)], "shrink_axis_mask", "begin 4",
            options={"shrink_axis_mask": 1})
    refused(B.STRIDED_SLICE, [x, i32(-5, 0), i32(5, 1), i32(1, 1)], "begin -5",
            options={"shrink_axis_mask": 1})
    refused(B.STRIDED_SLICE, [x, i32(0, 0), i32(1, 1), i32(1, 1)], "more than one",
            options={"ellipsis_mask": 3})
    refused(B.STRIDED_SLICE, [x, i32(0, 0), i32(1, 1), i32(1, 1)], "new_axis_mask", "beyond",
            options={"new_axis_mask": 4})
    refused(B.STRIDED_SLICE, [x, i32(0, 0, 0), i32(1, 1, 1), i32(1, 1, 1)], "ellipsis",
            "no dim", options={"ellipsis_mask": 1})
    refused(B.STRIDED_SLICE, [x, i32(2, 0), i32(3, 1), i32(1, 1)], "offset", "inside",
            options={"offset": True})
    refused(B.STRIDED_SLICE, [x, i32(2, 0), i32(-1, 1), i32(-1, 1)], "offset", "stride -1",
            options={"offset": True})
    refused(B.STRIDED_SLICE, [x, np.array([0., 0.], np.float32), i32(1, 1), i32(1, 1)],
            "begin", "int32 or int64")
    refused(B.STRIDED_SLICE, [x, ((2,), np.int32), i32(1, 1), i32(1, 1)], "begin",
            "must be constant", feeds=[np.zeros((4, 5), np.float32), i32(0, 0)])


# -- SLICE -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("shape,begin,size", [
    ((7,), [2], [3]),
    ((7,), [2], [-1]),
    ((7,), [7], [0]),
    ((7,), [0], [7]),
    ((3, 4), [1, 0], [2, -1]),
    ((3, 4), [0, 2], [3, 2]),
    ((2, 3, 4), [1, 1, 1], [1, 2, 3]),
    ((2, 1, 3, 1), [0, 0, 1, 0], [-1, 1, 1, -1]),
    ((2, 3, 4, 5, 6), [1, 0, 2, 1, 3], [1, -1, 2, 3, -1]),
    ((0, 4), [0, 1], [0, 2]),
    ((1, 16, 16, 8), [0, 2, 3, 0], [1, 10, 11, 8]),
])
def test_slice_cases(shape, begin, size):
    x = data(shape, np.float32)
    out, = check(B.SLICE, [(shape, np.float32), i32(*begin), i32(*size)], [x])
    index = tuple(slice(b, None if s == -1 else b + s) for b, s in zip(begin, size))
    np.testing.assert_array_equal(out, x[index])


@pytest.mark.parametrize("dtype", DTYPES + [np.bool_])
def test_slice_dtypes(dtype):
    x = data((3, 4, 5), dtype)
    check(B.SLICE, [((3, 4, 5), dtype), i32(1, 0, 2), i32(2, -1, 2)], [x], dtype)


def test_slice_int64_spec():
    x = data((3, 4), np.float32)
    check(B.SLICE, [((3, 4), np.float32), np.array([1, 1], np.int64),
                    np.array([-1, 2], np.int64)], [x])


def test_slice_bad():
    x = ((3, 4), np.float32)
    refused(B.SLICE, [x, i32(4, 0), i32(1, 1)], "begin 4", "dim 0")
    refused(B.SLICE, [x, i32(-1, 0), i32(1, 1)], "begin -1")
    refused(B.SLICE, [x, i32(1, 2), i32(1, 3)], "size 3", "dim 1")
    refused(B.SLICE, [x, i32(1, 2), i32(1, -2)], "size -2")
    refused(B.SLICE, [x, i32(1), i32(1)], "one entry per input dim")
    refused(B.SLICE, [x, i32(0, 0), ((2,), np.int32)], "size", "must be constant",
            feeds=[np.zeros((3, 4), np.float32), i32(1, 1)])


# -- GATHER ----------------------------------------------------------------------------------------

def gather(params_shape, indices, axis=0, batch_dims=0, dtype=np.float32, const_params=False,
           const_indices=False):
    x = data(params_shape, dtype)
    idx = np.asarray(indices)
    inputs = [x if const_params else (params_shape, dtype),
              idx if const_indices else (idx.shape, idx.dtype)]
    feeds = ([] if const_params else [x]) + ([] if const_indices else [idx])
    out, = check(B.GATHER, inputs, feeds, dtype, options={"axis": axis, "batch_dims": batch_dims})
    return x, idx, out


@pytest.mark.parametrize("params_shape,indices,axis", [
    ((5,), [4, 0, 2, 2], 0),
    ((5, 3), [[1, 0], [4, 4]], 0),
    ((5, 3), [2, 0, 1, 2], 1),
    ((5, 3), [2, 0, 1, 2], -1),
    ((2, 3, 4), [3, 1], -1),
    ((2, 3, 4), [[0], [2]], 1),
    ((2, 3, 4), 2, 1),  # scalar index: the axis disappears
    ((2, 3, 4), np.zeros((0,), np.int32), 1),
    ((1, 1, 7, 1, 2), [6, 0, 3], 2),
    ((1000, 16), np.arange(64).reshape(1, 64) * 15, 0),  # an embedding lookup
])
def test_gather_cases(params_shape, indices, axis):
    idx = np.asarray(indices, np.int32)
    x, idx, out = gather(params_shape, idx, axis)
    np.testing.assert_array_equal(out, np.take(x, idx, axis=axis))


@pytest.mark.parametrize("params_shape,indices_shape,axis,batch_dims", [
    ((2, 5), (2, 3), 1, 1),
    ((2, 5), (2, 3), 1, -1),
    ((2, 5), (2,), 1, 1),  # one index per batch row
    ((2, 3, 5), (2, 2), 2, 1),
    ((2, 3, 5, 4), (2, 3, 2), 2, 2),
    ((2, 3, 5, 4), (2, 6), 2, 1),
    ((2, 3, 5, 4), (2, 6), -2, 1),
])
def test_gather_batch_dims(params_shape, indices_shape, axis, batch_dims):
    size = params_shape[axis]
    idx = np.random.default_rng(3).integers(0, size, indices_shape).astype(np.int32)
    gather(params_shape, idx, axis, batch_dims)


@pytest.mark.parametrize("dtype", DTYPES + [np.bool_])
@pytest.mark.parametrize("index_dtype", [np.int32, np.int64])
def test_gather_dtypes(dtype, index_dtype):
    gather((4, 3), np.array([[3, 0], [1, 1]], index_dtype), 0, dtype=dtype)


def test_gather_constant_params_runtime_indices():
    gather((50, 8), np.array([[3, 49, 0, 7]], np.int32), const_params=True)


def test_gather_on_constants_is_evaluated_at_prepare():
    x = np.arange(12, dtype=np.int64).reshape(3, 4)
    model = single_op_model(B.GATHER, [x, i32(2, 0)], output_dtype=np.int64,
                            options={"axis": 0})
    out, = run_edgeq(model, [])
    np.testing.assert_array_equal(out, x[[2, 0]])
    assert num_kernels(model) == 0


@pytest.mark.parametrize("bad", [5, -1, 2**31 - 1])
@pytest.mark.parametrize("index_dtype", [np.int32, np.int64])
def test_gather_runtime_index_out_of_range(bad, index_dtype):
    model = single_op_model(B.GATHER, [((5, 3), np.float32), ((4,), index_dtype)],
                            options={"axis": 0})
    it = edgeq.Interpreter(model_content=model, num_threads=1)
    it.allocate_tensors()
    it.set_tensor(0, data((5, 3), np.float32))
    it.set_tensor(1, np.array([0, 4, bad, 1], index_dtype))
    with pytest.raises(edgeq.InvokeError) as info:
        it.invoke()
    message = str(info.value)
    assert "GATHER" in message and f"index {bad}" in message and "element 2" in message \
        and "[0, 5)" in message, message
    it.set_tensor(1, np.array([0, 4, 3, 1], index_dtype))  # good indices run again
    it.invoke()


def test_gather_bad():
    x = ((4, 3), np.float32)
    refused(B.GATHER, [x, i32(0, 4)], "index 4", "element 1", "[0, 4)")
    refused(B.GATHER, [x, i32(-1)], "index -1")
    refused(B.GATHER, [x, ((2,), np.int32)], "axis 2", "out of range", options={"axis": 2})
    refused(B.GATHER, [x, ((2,), np.int32)], "axis -3", options={"axis": -3})
    refused(B.GATHER, [x, ((2,), np.float32)], "indices", "int32 or int64")
    refused(B.GATHER, [x, ((4, 2), np.int32)], "batch_dims 2", options={"axis": 1,
                                                                          "batch_dims": 2})
    refused(B.GATHER, [x, ((3, 2), np.int32)], "batch_dims=1", "differ",
            options={"axis": 1, "batch_dims": 1})
    refused(B.GATHER, [(((), np.float32)), ((2,), np.int32)], "scalar")


# -- PAD, PADV2, MIRROR_PAD ------------------------------------------------------------------------

PAD_CASES = [
    ((5,), [[2, 3]]),
    ((5,), [[0, 0]]),
    ((3, 4), [[1, 0], [0, 2]]),
    ((1, 8, 8, 3), [[0, 0], [1, 1], [1, 1], [0, 0]]),  # before a 3x3 convolution
    ((1, 7, 9, 16), [[0, 0], [0, 1], [0, 1], [0, 0]]),  # before a stride-2 convolution
    ((2, 3, 4), [[0, 0], [0, 0], [2, 1]]),
    ((2, 3, 4), [[1, 2], [0, 0], [0, 0]]),
    ((1, 4, 4, 5), [[0, 0], [0, 0], [0, 0], [0, 3]]),  # channel padding
    ((1, 1, 3, 1, 2), [[1, 0], [0, 1], [1, 1], [0, 0], [2, 0]]),
    ((0, 3), [[1, 1], [0, 0]]),  # empty input, non-empty output
    ((2, 0, 3), [[0, 0], [1, 0], [0, 0]]),
    ((3, 0), [[0, 0], [0, 0]]),
]


@pytest.mark.parametrize("shape,pads", PAD_CASES)
def test_pad_cases(shape, pads):
    x = data(shape, np.float32)
    out, = check(B.PAD, [(shape, np.float32), np.array(pads, np.int32)], [x])
    np.testing.assert_array_equal(out, np.pad(x, pads))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("pad_dtype", [np.int32, np.int64])
def test_pad_dtypes(dtype, pad_dtype):
    x = data((2, 3, 4), dtype)
    check(B.PAD, [((2, 3, 4), dtype), np.array([[1, 0], [0, 2], [1, 1]], pad_dtype)], [x],
          dtype)


def test_pad_quantized_fills_the_zero_point():
    b = ModelBuilder()
    x = b.add_tensor("x", [1, 2, 2, 1], np.int8, quantization=dict(scale=[0.5], zero_point=[-7]))
    y = b.add_tensor("y", [1, 4, 4, 1], np.int8, quantization=dict(scale=[0.5], zero_point=[-7]))
    p = b.add_tensor("p", [4, 2], np.int32, data=np.array([[0, 0], [1, 1], [1, 1], [0, 0]],
                                                            np.int32))
    b.add_operator(B.PAD, [x, p], [y])
    b.set_inputs([x])
    b.set_outputs([y])
    feed = data((1, 2, 2, 1), np.int8)
    out, = run_edgeq(b.build(), [feed])
    np.testing.assert_array_equal(out, np.pad(feed, [[0, 0], [1, 1], [1, 1], [0, 0]],
                                              constant_values=-7))


@pytest.mark.parametrize("shape,pads", PAD_CASES[:9])
@pytest.mark.parametrize("dtype", [np.float32, np.int8, np.int64])
def test_padv2(shape, pads, dtype):
    x = data(shape, dtype)
    fill = np.array(-3 if dtype != np.float32 else 2.5, dtype)
    out, = check(B.PADV2, [(shape, dtype), np.array(pads, np.int32), fill], [x], dtype)
    np.testing.assert_array_equal(out, np.pad(x, pads, constant_values=fill))


def test_padv2_without_value_pads_zero():
    x = data((2, 3), np.float32)
    out, = run_edgeq(single_op_model(B.PADV2, [((2, 3), np.float32), i32(1, 1, 0, 2).reshape(2, 2),
                                               None]), [x])
    np.testing.assert_array_equal(out, np.pad(x, [[1, 1], [0, 2]]))


MIRROR_CASES = [
    ((5,), [[2, 3]]),
    ((3, 4), [[1, 2], [3, 0]]),
    ((2, 3, 4), [[0, 0], [2, 2], [1, 1]]),
    ((1, 6, 6, 3), [[0, 0], [2, 2], [2, 2], [0, 0]]),
    ((2, 1, 3, 4, 2), [[1, 1], [0, 0], [0, 2], [3, 0], [1, 0]]),
    ((4, 4), [[0, 0], [0, 0]]),
    ((1, 3), [[1, 1], [2, 0]]),  # SYMMETRIC repeats a size-1 dim; REFLECT cannot pad it
]


@pytest.mark.parametrize("shape,pads", MIRROR_CASES)
@pytest.mark.parametrize("mode", [0, 1])
def test_mirror_pad(shape, pads, mode):
    if mode == 0:  # REFLECT cannot reach past the edge element
        pads = [[min(a, d - 1), min(b, d - 1)] for d, (a, b) in zip(shape, pads)]
    for dtype in (np.float32, np.int32, np.int8):
        x = data(shape, dtype)
        out, = check(B.MIRROR_PAD, [(shape, dtype), np.array(pads, np.int32)], [x], dtype,
                     options={"mode": mode})
        np.testing.assert_array_equal(out, np.pad(x, pads, "reflect" if mode == 0 else
                                                  "symmetric"))


def test_pad_bad():
    x = ((2, 3), np.float32)
    refused(B.PAD, [x, i32(1, -1, 0, 0).reshape(2, 2)], "paddings", "negative")
    refused(B.PAD, [x, i32(1, 1, 0, 0, 0, 0).reshape(3, 2)], "paddings", "[2, 2]", "[3, 2]")
    refused(B.PAD, [x, i32(1, 1)], "paddings", "[2, 2]")
    refused(B.PAD, [x, np.zeros((2, 2), np.float32)], "paddings", "int32 or int64")
    refused(B.PAD, [x, ((2, 2), np.int32)], "paddings", "must be constant",
            feeds=[np.zeros((2, 3), np.float32), np.zeros((2, 2), np.int32)])
    refused(B.PADV2, [x, i32(1, 1, 0, 0).reshape(2, 2), np.array(1, np.int32)],
            "constant_values", "int32")
    refused(B.PADV2, [x, i32(1, 1, 0, 0).reshape(2, 2), np.array([1, 2], np.float32)],
            "constant_values", "one value")
    refused(B.PADV2, [x, i32(1, 1, 0, 0).reshape(2, 2), ((), np.float32)], "constant_values",
            "must be constant", feeds=[np.zeros((2, 3), np.float32), np.array(0, np.float32)])
    refused(B.MIRROR_PAD, [x, i32(2, 0, 0, 0).reshape(2, 2)], "REFLECT", "at most 1",
            options={"mode": 0})
    refused(B.MIRROR_PAD, [x, i32(0, 0, 0, 4).reshape(2, 2)], "SYMMETRIC", "at most 3",
            options={"mode": 1})


# -- DEPTH_TO_SPACE, SPACE_TO_DEPTH ----------------------------------------------------------------

@pytest.mark.parametrize("shape,block", [
    ((1, 2, 3, 4), 2), ((2, 3, 2, 18), 3), ((1, 1, 1, 4), 2), ((1, 4, 5, 7), 1),
    ((3, 2, 2, 16), 4),
])
@pytest.mark.parametrize("dtype", [np.float32, np.int8, np.int64])
def test_depth_to_space(shape, block, dtype):
    x = data(shape, dtype)
    out, = check(B.DEPTH_TO_SPACE, [(shape, dtype)], [x], dtype, options={"block_size": block})
    n, h, w, c = shape
    dcr = x.reshape(n, h, w, block, block, c // block**2).transpose(0, 1, 3, 2, 4, 5)
    np.testing.assert_array_equal(out, dcr.reshape(n, h * block, w * block, -1))


@pytest.mark.parametrize("shape,block", [
    ((1, 4, 6, 3), 2), ((2, 6, 3, 1), 3), ((1, 2, 2, 5), 2), ((1, 3, 5, 2), 1), ((1, 8, 8, 2), 4),
])
@pytest.mark.parametrize("dtype", [np.float32, np.uint8, np.int32])
def test_space_to_depth(shape, block, dtype):
    x = data(shape, dtype)
    check(B.SPACE_TO_DEPTH, [(shape, dtype)], [x], dtype, options={"block_size": block})


def test_depth_space_bad():
    refused(B.DEPTH_TO_SPACE, [((1, 2, 2, 6), np.float32)], "depth 6", "block_size^2 = 4",
            options={"block_size": 2})
    refused(B.DEPTH_TO_SPACE, [((2, 2, 8), np.float32)], "4-d", options={"block_size": 2})
    refused(B.SPACE_TO_DEPTH, [((1, 4, 3, 2), np.float32)], "width 3", "block_size 2",
            options={"block_size": 2})


# -- SPACE_TO_BATCH_ND, BATCH_TO_SPACE_ND ----------------------------------------------------------

@pytest.mark.parametrize("shape,block,pads", [
    ((1, 4, 4, 1), [2, 2], [[0, 0], [0, 0]]),
    ((2, 3, 5, 3), [2, 3], [[1, 0], [0, 1]]),
    ((1, 5, 2, 2), [3, 1], [[2, 2], [0, 0]]),
    ((3, 2, 2, 4), [1, 1], [[0, 0], [0, 0]]),
    ((2, 7, 3), [3], [[1, 1]]),  # the 3-d [N, W, C] form
    ((1, 4, 2), [2], [[0, 0]]),
])
@pytest.mark.parametrize("dtype", [np.float32, np.int8, np.int64])
def test_space_to_batch_nd(shape, block, pads, dtype):
    x = data(shape, dtype)
    check(B.SPACE_TO_BATCH_ND, [(shape, dtype), i32(*block), np.array(pads, np.int32)], [x],
          dtype)


@pytest.mark.parametrize("shape,block,crops", [
    ((4, 2, 2, 1), [2, 2], [[0, 0], [0, 0]]),
    ((12, 2, 2, 3), [2, 3], [[1, 0], [0, 2]]),
    ((6, 3, 2, 2), [3, 1], [[2, 2], [0, 0]]),
    ((2, 2, 2, 4), [1, 1], [[0, 1], [1, 0]]),
    ((6, 3, 3), [3], [[1, 1]]),  # the 3-d [N, W, C] form
    ((4, 2, 3), [2], [[0, 4]]),  # everything cropped
])
@pytest.mark.parametrize("dtype", [np.float32, np.int8, np.int64])
def test_batch_to_space_nd(shape, block, crops, dtype):
    x = data(shape, dtype)
    check(B.BATCH_TO_SPACE_ND, [(shape, dtype), i32(*block), np.array(crops, np.int32)], [x],
          dtype)


def test_space_batch_round_trip():
    """BATCH_TO_SPACE_ND undoes SPACE_TO_BATCH_ND when the crops are the paddings (how
    converters write dilated convolutions)."""
    x = data((2, 5, 7, 3), np.float32)
    pads = np.array([[1, 2], [2, 3]], np.int32)
    batched, = run_edgeq(single_op_model(B.SPACE_TO_BATCH_ND, [
        ((2, 5, 7, 3), np.float32), i32(2, 3), pads]), [x])
    back, = run_edgeq(single_op_model(B.BATCH_TO_SPACE_ND, [
        (batched.shape, np.float32), i32(2, 3), pads]), [batched])
    np.testing.assert_array_equal(back, x)


def test_space_batch_bad():
    x = ((1, 4, 4, 1), np.float32)
    refused(B.SPACE_TO_BATCH_ND, [x, i32(3, 2), np.zeros((2, 2), np.int32)],
            "padded spatial dim 0", "block_shape 3")
    refused(B.SPACE_TO_BATCH_ND, [x, i32(2, 0), np.zeros((2, 2), np.int32)], "below 1")
    refused(B.SPACE_TO_BATCH_ND, [x, i32(2), np.zeros((2, 2), np.int32)], "2 entries")
    refused(B.SPACE_TO_BATCH_ND, [x, i32(2, 2), i32(0, -2, 0, 0).reshape(2, 2)], "negative")
    refused(B.SPACE_TO_BATCH_ND, [x, i32(2, 2), np.zeros((2, 3), np.int32)], "[2, 2]")
    refused(B.SPACE_TO_BATCH_ND, [((4, 4), np.float32), i32(2), np.zeros((1, 2), np.int32)],
            "4-d NHWC or 3-d")
    refused(B.BATCH_TO_SPACE_ND, [((6, 2, 2, 1), np.float32), i32(2, 2),
                                  np.zeros((2, 2), np.int32)], "batch 6", "4")
    refused(B.BATCH_TO_SPACE_ND, [x, i32(1, 1), i32(3, 2, 0, 0).reshape(2, 2)], "crops",
            "remove more")


# -- beyond what LiteRT runs -----------------------------------------------------------------------

def test_float16_against_numpy():
    """LiteRT's kernels of this family take no float16; edgeq's move bytes and do."""
    x = data((3, 4, 5), np.float16)
    spec = ((3, 4, 5), np.float16)
    out, = run_edgeq(single_op_model(B.STRIDED_SLICE, [spec, i32(2, 0, 1), i32(0, 4, 5),
                                                       i32(-1, 2, 1)], output_dtype=np.float16), [x])
    np.testing.assert_array_equal(out, x[2:0:-1, 0:4:2, 1:5])
    pads = [[1, 0], [0, 2], [1, 1]]
    out, = run_edgeq(single_op_model(B.PADV2, [spec, np.array(pads, np.int32),
                                               np.array(1.5, np.float16)],
                                     output_dtype=np.float16), [x])
    np.testing.assert_array_equal(out, np.pad(x, pads, constant_values=1.5))
    out, = run_edgeq(single_op_model(B.GATHER, [spec, i32(4, 0, 4)], output_dtype=np.float16,
                                     options={"axis": 2}), [x])
    np.testing.assert_array_equal(out, x[:, :, [4, 0, 4]])


def test_rank_8_against_numpy():
    """LiteRT stops at rank 5 for slices and pads; edgeq's kernels go to the executor's 8."""
    shape = (2, 1, 3, 2, 1, 2, 3, 2)
    x = data(shape, np.float32)
    spec = (shape, np.float32)
    begin, end, strides = [1, 0, 2, 0, 0, 1, 0, 1], [0, 1, 0, 2, 1, 2, 3, 2], [-1, 1, -2, 1, 1,
                                                                               1, 2, 1]
    out, = run_edgeq(single_op_model(B.STRIDED_SLICE, [spec, i32(*begin), i32(*end),
                                                       i32(*strides)]), [x])
    np.testing.assert_array_equal(out, x[tuple(slice(b, e, s) for b, e, s in
                                               zip(begin, end, strides))])
    pads = [[1, 0], [0, 1], [0, 0], [2, 1], [0, 0], [0, 0], [1, 1], [0, 3]]
    out, = run_edgeq(single_op_model(B.PAD, [spec, np.array(pads, np.int32)]), [x])
    np.testing.assert_array_equal(out, np.pad(x, pads))
    mirror = [[1, 1], [0, 0], [2, 0], [1, 1], [0, 0], [0, 2], [1, 2], [0, 1]]
    out, = run_edgeq(single_op_model(B.MIRROR_PAD, [spec, np.array(mirror, np.int32)],
                                     options={"mode": 1}), [x])
    np.testing.assert_array_equal(out, np.pad(x, mirror, "symmetric"))
