"""Data movement and shape ops: reshape-likes, transpose, concatenation/pack, split/unpack, tile,
broadcast_to, shape, densify.

None of these look at element values, so they accept every fixed-size dtype the kernels know and
pick a kernel by element size. Everything the kernels rely on (axes, permutations, split sizes,
element counts) is checked here; shapes and shape-like inputs must be known at prepare time.
"""
from __future__ import annotations

import ctypes
import math

import numpy as np

from edgeq.ops.common import ACT_NONE, activation_range
from edgeq.ops.registry import KernelCall, register
from edgeq.tflite.schema import BuiltinOp

MAX_RANK = 8  # EQ_MAX_DIMS: the executor's tensor descriptors hold 8 dims
MOVE_DIMS = 16  # EQ_MOVE_DIMS
TRANSPOSE_MAX_RANK = 6  # as TFLite's transpose
INT32_MAX = 2**31 - 1

# The dtypes kernel.h gives a size for (eq_dtype_size); the byte-copying kernels rely on it.
MOVABLE = {np.dtype(t) for t in (np.float32, np.float16, np.float64, np.int8, np.uint8, np.int16,
                                 np.uint16, np.int32, np.uint32, np.int64, np.bool_)}
SHAPE_DTYPES = (np.dtype(np.int32), np.dtype(np.int64))


class StridedCopyParams(ctypes.Structure):
    """Mirror of eq_strided_copy_params (kernels/include/edgeq/params/movement.h)."""

    _fields_ = [
        ("ndim", ctypes.c_int32),
        ("dims", ctypes.c_int32 * MOVE_DIMS),
        ("in_strides", ctypes.c_int32 * MOVE_DIMS),
        ("in_offset", ctypes.c_int32),
    ]


class ConcatParams(ctypes.Structure):
    """Mirror of eq_concat_params."""

    _fields_ = [("axis", ctypes.c_int32), ("act_min", ctypes.c_float), ("act_max", ctypes.c_float)]


class SplitParams(ctypes.Structure):
    """Mirror of eq_split_params."""

    _fields_ = [("axis", ctypes.c_int32)]


# -- shared checks --------------------------------------------------------------------------------

def _movable(ctx, t, what="input"):
    if t.dtype not in MOVABLE:
        raise ctx.fail(f"{what} dtype {t.dtype} is not supported")
    return t.dtype


def _sized_kernel(base: str, dtype) -> str:
    return f"{base}_x{8 * np.dtype(dtype).itemsize}"


def _check_rank(ctx, shape, what="output", limit=MAX_RANK):
    if len(shape) > limit:
        raise ctx.fail(f"{what} rank {len(shape)} (shape {list(shape)}) is above the supported "
                       f"{limit}")


def _int_values(ctx, i, what) -> list:
    """A constant int32/int64 shape-like input as a list of Python ints."""
    t = ctx.input(i)
    if t.dtype not in SHAPE_DTYPES:
        raise ctx.fail(f"{what} must be int32 or int64, got {t.dtype}")
    # An empty vector is known from its shape alone (writers give it an empty buffer, which
    # reads back as "not constant").
    if t.value is None and t.size == 0:
        value = np.zeros(t.shape, t.dtype)
    else:
        value = ctx.constant(i, what)
    if value.ndim != 1:
        raise ctx.fail(f"{what} must be a 1-D tensor, got shape {list(value.shape)}")
    return [int(v) for v in value.reshape(-1)]


def _scalar_axis(ctx, i, what="axis") -> int:
    t = ctx.input(i)
    value = ctx.constant(i, what)
    if t.dtype not in SHAPE_DTYPES:
        raise ctx.fail(f"{what} must be int32 or int64, got {t.dtype}")
    if value.size != 1:
        raise ctx.fail(f"{what} must hold a single value, got shape {list(value.shape)}")
    return int(value.reshape(-1)[0])


def _axis(ctx, axis, rank, what="axis") -> int:
    """TFLite's rule: -rank <= axis < rank, negative counted from the end."""
    if not -rank <= axis < rank:
        raise ctx.fail(f"{what} {axis} is out of range for rank {rank}")
    return axis + rank if axis < 0 else axis


def _qparams(t):
    q = t.quantization
    if q is None or len(q.scale) == 0:
        return None
    return ([float(s) for s in np.asarray(q.scale).reshape(-1)],
            [int(z) for z in np.asarray(q.zero_point).reshape(-1)])


def _same_quantization(ctx, inputs, out, op_word):
    """Raw copies are only right when inputs and output share scale and zero point."""
    target = _qparams(out)
    for k, t in enumerate(inputs):
        if _qparams(t) != target:
            raise ctx.fail(f"input {k} quantization {_qparams(t)} differs from the output's "
                           f"{target}; {op_word} with requantization is not supported")


def _row_major_strides(shape) -> list:
    strides, acc = [0] * len(shape), 1
    for k in reversed(range(len(shape))):
        strides[k] = acc
        acc *= shape[k]
    return strides


def _strided_call(ctx, op: str, dtype, dims, strides, offset: int = 0) -> KernelCall:
    """Collapse an (out dims, input strides) gather starting at input element `offset` and
    return its kernel call. Strides may be negative (a slice walking backwards)."""
    pairs = []
    if all(d != 0 for d in dims):
        for d, s in zip(dims, strides):
            if d == 1:
                continue
            # The previous dim steps over exactly this one: they walk the input as one dim.
            if pairs and pairs[-1][1] == s * d:
                pairs[-1] = (pairs[-1][0] * d, s)
            else:
                pairs.append((d, s))
        pairs = pairs or [(1, 0)]
    else:
        pairs = [(0, 0)]  # nothing to move; the kernel returns at once
        offset = 0
    if len(pairs) > MOVE_DIMS:
        raise ctx.fail(f"needs {len(pairs)} dims after collapsing, above the supported "
                       f"{MOVE_DIMS}")
    if any(d > INT32_MAX or abs(s) > INT32_MAX for d, s in pairs) or offset > INT32_MAX:
        raise ctx.fail("tensor too large for the 32-bit index parameters")
    params = StridedCopyParams()
    params.ndim = len(pairs)
    for k, (d, s) in enumerate(pairs):
        params.dims[k] = d
        params.in_strides[k] = s
    params.in_offset = offset
    return KernelCall(_sized_kernel(op, dtype), params)


def _copy(ctx, out_shape) -> KernelCall:
    """Same elements in the same order under a new shape (a memcpy, or a prepare-time constant)."""
    x = ctx.input(0)
    _movable(ctx, x)
    _check_rank(ctx, out_shape)
    if math.prod(out_shape) != x.size:
        raise ctx.fail(f"output shape {list(out_shape)} holds {math.prod(out_shape)} elements, "
                       f"the input {list(x.shape)} holds {x.size}")
    ctx.set_output(0, out_shape, x.dtype)
    return KernelCall("copy_x")


# -- reshape-likes --------------------------------------------------------------------------------

def _resolve_reshape(ctx, in_shape, requested, source):
    """TFLite's reshape rule: at most one -1, which takes whatever the other dims leave over.

    Zero-size dims are skipped in the division so that [0, 3] -> [-1, 3] gives [0, 3]; a -1 next
    to a 0 in a non-empty input gets 0 (the element count check then fails).
    """
    requested = list(requested)
    stretch = [k for k, d in enumerate(requested) if d == -1]
    if len(stretch) > 1:
        raise ctx.fail(f"{source} {requested} has more than one -1")
    if any(d < -1 for d in requested):
        raise ctx.fail(f"{source} {requested} has a negative dimension")
    n_in = math.prod(in_shape)
    nz_in = math.prod(d for d in in_shape if d != 0)
    known = [d for d in requested if d != -1]
    n_out = math.prod(known)
    nz_out = math.prod(d for d in known if d != 0)
    if stretch:
        requested[stretch[0]] = 0 if (n_in == 0 and n_out != 0) else nz_in // nz_out
        n_out *= requested[stretch[0]]
    if n_out != n_in:
        raise ctx.fail(f"cannot reshape {list(in_shape)} ({n_in} elements) to {source} "
                       f"{requested} ({n_out} elements)")
    return requested


@register(BuiltinOp.RESHAPE)
def prepare_reshape(ctx):
    ctx.expect_inputs(1, 2)
    x = ctx.input(0)
    shape_t = ctx.optional_input(1)
    # As TFLite: the shape input wins when it is an int32 vector; otherwise (absent, int64,
    # scalar) the new_shape option is used.
    if shape_t is not None and shape_t.dtype == np.int32 and len(shape_t.shape) == 1:
        requested = _int_values(ctx, 1, "shape input")
        source = "shape input"
    else:
        requested = [int(v) for v in ctx.options.get("new_shape", ())]
        if requested == [0]:
            requested = []  # legacy converters wrote [0] for a scalar
        source = "new_shape option"
    return _copy(ctx, _resolve_reshape(ctx, x.shape, requested, source))


@register(BuiltinOp.SQUEEZE)
def prepare_squeeze(ctx):
    ctx.expect_inputs(1)
    x = ctx.input(0)
    rank = len(x.shape)
    dims = [int(d) for d in ctx.options.get("squeeze_dims", ())]
    if not dims:
        drop = {k for k, d in enumerate(x.shape) if d == 1}
    else:
        drop = set()
        for d in dims:
            k = _axis(ctx, d, rank, "squeeze_dims entry")
            if x.shape[k] != 1:
                raise ctx.fail(f"squeeze_dims entry {d} names dim {k} of size {x.shape[k]}, "
                               f"not 1 (input shape {list(x.shape)})")
            drop.add(k)
    return _copy(ctx, [d for k, d in enumerate(x.shape) if k not in drop])


@register(BuiltinOp.EXPAND_DIMS)
def prepare_expand_dims(ctx):
    ctx.expect_inputs(2)
    x = ctx.input(0)
    rank = len(x.shape)
    axis = _scalar_axis(ctx, 1)
    if not -rank - 1 <= axis <= rank:
        raise ctx.fail(f"axis {axis} is out of range for inserting into rank {rank}")
    if axis < 0:
        axis += rank + 1
    shape = list(x.shape)
    shape.insert(axis, 1)
    return _copy(ctx, shape)


# -- gathers --------------------------------------------------------------------------------------

@register(BuiltinOp.TRANSPOSE)
def prepare_transpose(ctx):
    ctx.expect_inputs(2)
    x = ctx.input(0)
    dtype = _movable(ctx, x)
    rank = len(x.shape)
    _check_rank(ctx, x.shape, "input", TRANSPOSE_MAX_RANK)
    perm = _int_values(ctx, 1, "perm")
    if len(perm) != rank:
        raise ctx.fail(f"perm {perm} has {len(perm)} entries for an input of rank {rank}")
    if sorted(perm) != list(range(rank)):
        raise ctx.fail(f"perm {perm} is not a permutation of 0..{rank - 1}")
    out_shape = [x.shape[p] for p in perm]
    ctx.set_output(0, out_shape, dtype)
    in_strides = _row_major_strides(x.shape)
    return _strided_call(ctx, "transpose", dtype, out_shape, [in_strides[p] for p in perm])


@register(BuiltinOp.TILE)
def prepare_tile(ctx):
    ctx.expect_inputs(2)
    x = ctx.input(0)
    dtype = _movable(ctx, x)
    rank = len(x.shape)
    _check_rank(ctx, x.shape, "input")
    multiples = _int_values(ctx, 1, "multiples")
    if len(multiples) != rank:
        raise ctx.fail(f"multiples {multiples} has {len(multiples)} entries for an input of "
                       f"rank {rank}")
    if any(m < 0 for m in multiples):
        raise ctx.fail(f"multiples {multiples} has a negative entry")
    out_shape = [d * m for d, m in zip(x.shape, multiples)]
    ctx.set_output(0, out_shape, dtype)
    # Output dim k of size m*d is walked as (m, d): the repeat re-reads the same input run.
    dims, strides = [], []
    for d, m, s in zip(x.shape, multiples, _row_major_strides(x.shape)):
        dims += [m, d]
        strides += [0, s]
    return _strided_call(ctx, "tile", dtype, dims, strides)


@register(BuiltinOp.BROADCAST_TO)
def prepare_broadcast_to(ctx):
    ctx.expect_inputs(2)
    x = ctx.input(0)
    dtype = _movable(ctx, x)
    shape = _int_values(ctx, 1, "shape")
    _check_rank(ctx, shape, "shape")
    if any(d < 0 for d in shape):
        raise ctx.fail(f"shape {shape} has a negative dimension")
    if len(x.shape) > len(shape):
        raise ctx.fail(f"input rank {len(x.shape)} is above the target rank {len(shape)} "
                       f"(shape {shape})")
    padded = [1] * (len(shape) - len(x.shape)) + list(x.shape)
    for k, (d, want) in enumerate(zip(padded, shape)):
        if d != 1 and d != want:
            raise ctx.fail(f"cannot broadcast input {list(x.shape)} to shape {shape} "
                           f"(dim {k}: {d} vs {want})")
    ctx.set_output(0, shape, dtype)
    strides = [0 if d == 1 else s for d, s in zip(padded, _row_major_strides(padded))]
    return _strided_call(ctx, "broadcast_to", dtype, shape, strides)


# -- concatenation and pack -----------------------------------------------------------------------

@register(BuiltinOp.CONCATENATION)
def prepare_concatenation(ctx):
    n = len(ctx.inputs)
    ctx.expect_inputs(1, max(n, 1))
    ins = [ctx.input(k) for k in range(n)]
    first = ins[0]
    dtype = _movable(ctx, first, "input 0")
    rank = len(first.shape)
    axis = _axis(ctx, int(ctx.options.get("axis", 0)), rank)
    total = 0
    for k, t in enumerate(ins):
        if t.dtype != dtype:
            raise ctx.fail(f"input {k} dtype {t.dtype} differs from input 0's {dtype}")
        if len(t.shape) != rank or any(a != b for j, (a, b) in enumerate(zip(t.shape, first.shape))
                                       if j != axis):
            raise ctx.fail(f"input {k} shape {list(t.shape)} does not match input 0's "
                           f"{list(first.shape)} off axis {axis}")
        total += t.shape[axis]
    out_shape = list(first.shape)
    out_shape[axis] = total
    act = int(ctx.options.get("fused_activation_function", ACT_NONE))
    lo, hi = -np.inf, np.inf
    if act != ACT_NONE:
        if dtype != np.float32:
            raise ctx.fail(f"fused_activation_function {act} on {dtype} is not supported")
        lo, hi = activation_range(ctx, act)
    if dtype in (np.int8, np.uint8, np.int16):
        _same_quantization(ctx, ins, ctx.outputs[0], "concatenation")
    ctx.set_output(0, out_shape, dtype)
    kernel = "concatenation_x" if act == ACT_NONE else "concatenation_f32"
    return KernelCall(kernel, ConcatParams(axis, lo, hi))


@register(BuiltinOp.PACK)
def prepare_pack(ctx):
    n = len(ctx.inputs)
    ctx.expect_inputs(1, max(n, 1))
    count = int(ctx.options.get("values_count", 0))
    if count != n:
        raise ctx.fail(f"values_count {count} does not match the {n} inputs")
    ins = [ctx.input(k) for k in range(n)]
    first = ins[0]
    dtype = _movable(ctx, first, "input 0")
    rank = len(first.shape)
    axis = int(ctx.options.get("axis", 0))
    if not -rank - 1 <= axis <= rank:
        raise ctx.fail(f"axis {axis} is out of range for packing rank-{rank} inputs")
    if axis < 0:
        axis += rank + 1
    for k, t in enumerate(ins):
        if t.dtype != dtype:
            raise ctx.fail(f"input {k} dtype {t.dtype} differs from input 0's {dtype}")
        if tuple(t.shape) != tuple(first.shape):
            raise ctx.fail(f"input {k} shape {list(t.shape)} differs from input 0's "
                           f"{list(first.shape)}")
    if dtype in (np.int8, np.uint8, np.int16):
        _same_quantization(ctx, ins, ctx.outputs[0], "pack")
    out_shape = list(first.shape)
    out_shape.insert(axis, n)
    _check_rank(ctx, out_shape)
    ctx.set_output(0, out_shape, dtype)
    return KernelCall("pack_x", ConcatParams(axis, -np.inf, np.inf))


# -- split and unpack -----------------------------------------------------------------------------

def _split_call(ctx, kernel, x, axis, sizes, keep_axis=True):
    for k, size in enumerate(sizes):
        shape = list(x.shape)
        if keep_axis:
            shape[axis] = size
        else:
            del shape[axis]
        ctx.set_output(k, shape, x.dtype)
    return KernelCall(kernel, SplitParams(axis))


@register(BuiltinOp.SPLIT)
def prepare_split(ctx):
    ctx.expect_inputs(2)
    x = ctx.input(1)
    _movable(ctx, x)
    rank = len(x.shape)
    axis = _axis(ctx, _scalar_axis(ctx, 0), rank)
    num = int(ctx.options.get("num_splits", 0))
    n_out = len(ctx.outputs)
    if num != n_out or num <= 0:
        raise ctx.fail(f"num_splits {num} does not match the {n_out} outputs")
    if x.shape[axis] % num:
        raise ctx.fail(f"dim {axis} of size {x.shape[axis]} does not split into {num} equal "
                       f"parts (num_splits)")
    call = _split_call(ctx, "split_x", x, axis, [x.shape[axis] // num] * num)
    call.inputs = [ctx.input(1).index]  # the kernel reads the value only, not the axis
    return call


@register(BuiltinOp.SPLIT_V)
def prepare_split_v(ctx):
    ctx.expect_inputs(3)
    x = ctx.input(0)
    _movable(ctx, x)
    rank = len(x.shape)
    axis = _axis(ctx, _scalar_axis(ctx, 2), rank)
    sizes = _int_values(ctx, 1, "size_splits")
    n_out = len(ctx.outputs)
    num = int(ctx.options.get("num_splits", 0))
    if num != n_out:
        raise ctx.fail(f"num_splits {num} does not match the {n_out} outputs")
    if len(sizes) != n_out:
        raise ctx.fail(f"size_splits {sizes} has {len(sizes)} entries for {n_out} outputs")
    if sizes.count(-1) > 1:
        raise ctx.fail(f"size_splits {sizes} has more than one -1")
    if any(s < -1 for s in sizes):
        raise ctx.fail(f"size_splits {sizes} has a negative size")
    dim = x.shape[axis]
    known = sum(s for s in sizes if s != -1)
    if -1 in sizes:
        if known > dim:
            raise ctx.fail(f"size_splits {sizes} add up to more than dim {axis} of size {dim}")
        sizes[sizes.index(-1)] = dim - known
    elif known != dim:
        raise ctx.fail(f"size_splits {sizes} add up to {known}, not to dim {axis} of size {dim}")
    call = _split_call(ctx, "split_x", x, axis, sizes)
    call.inputs = [x.index]
    return call


@register(BuiltinOp.UNPACK)
def prepare_unpack(ctx):
    ctx.expect_inputs(1)
    x = ctx.input(0)
    _movable(ctx, x)
    rank = len(x.shape)
    axis = _axis(ctx, int(ctx.options.get("axis", 0)), rank)
    num = int(ctx.options.get("num", 0))
    n_out = len(ctx.outputs)
    if num != n_out:
        raise ctx.fail(f"num {num} does not match the {n_out} outputs")
    if x.shape[axis] != num:
        raise ctx.fail(f"num {num} differs from dim {axis} of size {x.shape[axis]} "
                       f"(input shape {list(x.shape)})")
    return _split_call(ctx, "unpack_x", x, axis, [1] * num, keep_axis=False)


# -- prepare-time values --------------------------------------------------------------------------

@register(BuiltinOp.SHAPE)
def prepare_shape(ctx):
    ctx.expect_inputs(1)
    x = ctx.input(0)
    # TFLite takes the element type from the output tensor; out_type merely mirrors it.
    dtype = ctx.outputs[0].dtype
    if dtype not in SHAPE_DTYPES:
        raise ctx.fail(f"output dtype {dtype} is not int32 or int64 (out_type "
                       f"{ctx.options.get('out_type', 0)})")
    ctx.set_output(0, [len(x.shape)], dtype, value=np.array(x.shape, dtype))
    return None


@register(BuiltinOp.DENSIFY)
def prepare_densify(ctx):
    ctx.expect_inputs(1)
    x = ctx.input(0)
    tdef = ctx.graph.tensors[x.index]
    if x.value is None or tdef.sparsity is None:
        raise ctx.fail(f"input (tensor {x.index} '{x.name}') must be a sparse constant")
    # The graph densified the constant while loading it: the output is that value.
    ctx.set_output(0, x.shape, x.dtype, value=np.array(x.value, copy=True))
    return None
