"""Slicing, gathering and padding: SLICE, STRIDED_SLICE, GATHER, PAD, PADV2, MIRROR_PAD,
DEPTH_TO_SPACE, SPACE_TO_DEPTH, SPACE_TO_BATCH_ND, BATCH_TO_SPACE_ND.

Like the movement family these never look at values: kernels are chosen by element size (or
copy bytes). Slices and depth/space rearrangements are the movement family's strided copy from
a start offset; padding, gather and space/batch have kernels of their own (kernels/ref/slicing.c).
Begin/end/size/paddings/block shapes must be known at prepare time; gather indices may be runtime
data, which the kernel checks (constant ones are checked here).
"""
from __future__ import annotations

import ctypes
import math

import numpy as np

from edgeq.ops.movement import (
    INT32_MAX, MAX_RANK, SHAPE_DTYPES, _axis, _check_rank, _int_values, _movable,
    _row_major_strides, _same_quantization, _strided_call,
)
from edgeq.ops.registry import KernelCall, register
from edgeq.tflite.schema import BuiltinOp, MirrorPadMode

PAD_CONSTANT, PAD_REFLECT, PAD_SYMMETRIC = 0, 1, 2  # enum eq_pad_mode
QUANTIZED = (np.dtype(np.int8), np.dtype(np.uint8), np.dtype(np.int16))


class PadParams(ctypes.Structure):
    """Mirror of eq_pad_params (kernels/include/edgeq/params/slicing.h)."""

    _fields_ = [
        ("ndim", ctypes.c_int32),
        ("mode", ctypes.c_int32),
        ("in_dims", ctypes.c_int32 * MAX_RANK),
        ("before", ctypes.c_int32 * MAX_RANK),
        ("after", ctypes.c_int32 * MAX_RANK),
        ("value", ctypes.c_uint8 * 8),
    ]


class GatherParams(ctypes.Structure):
    """Mirror of eq_gather_params."""

    _fields_ = [(name, ctypes.c_int64)
                for name in ("batch", "outer", "axis_size", "inner", "n_indices")]


class SpaceBatchParams(ctypes.Structure):
    """Mirror of eq_space_batch_params."""

    _fields_ = [(name, ctypes.c_int32) for name in (
        "to_batch", "batch", "space_h", "space_w", "batch_h", "batch_w", "block_h", "block_w",
        "pad_top", "pad_left", "depth")] + [("value", ctypes.c_uint8 * 8)]


def _element_bytes(value, dtype) -> ctypes.Array:
    """The 8-byte fill field holding one element of `dtype`."""
    raw = np.asarray(value).astype(dtype).reshape(-1)[:1].tobytes()
    return (ctypes.c_uint8 * 8)(*raw.ljust(8, b"\0"))


def _zero_value(ctx, x):
    """What "zero" is in x's representation: its zero point when quantized."""
    q = x.quantization
    if x.dtype in QUANTIZED and q is not None and len(q.zero_point):
        zero_points = {int(z) for z in np.asarray(q.zero_point).reshape(-1)}
        if len(zero_points) != 1:
            raise ctx.fail(f"padding a per-channel quantized tensor (zero points "
                           f"{sorted(zero_points)}) is not supported")
        return zero_points.pop()
    return 0


def _source(ctx):
    """Input 0, whose elements the op copies: a movable dtype, and when quantized the output's
    scale and zero point (no requantization happens)."""
    x = ctx.input(0)
    _movable(ctx, x)
    if x.dtype in QUANTIZED:
        _same_quantization(ctx, [x], ctx.outputs[0], ctx.node.op_name.lower())
    return x


def _pairs(ctx, i, rows, what):
    """A constant [rows, 2] int32/int64 input (paddings, crops) as a list of (before, after)."""
    t = ctx.input(i)
    if t.dtype not in SHAPE_DTYPES:
        raise ctx.fail(f"{what} must be int32 or int64, got {t.dtype}")
    value = np.zeros(t.shape, t.dtype) if t.value is None and t.size == 0 else \
        ctx.constant(i, what)
    if value.shape != (rows, 2):
        raise ctx.fail(f"{what} must have shape [{rows}, 2], got {list(value.shape)}")
    pairs = [(int(a), int(b)) for a, b in value]
    if any(a < 0 or b < 0 for a, b in pairs):
        raise ctx.fail(f"{what} {[list(p) for p in pairs]} has a negative entry")
    return pairs


# -- SLICE, STRIDED_SLICE -------------------------------------------------------------------------

def _slice_call(ctx, op, x, shape, starts, counts, steps, out_shape):
    """The strided copy of the box starts + k * steps (k < counts) of x seen with `shape`."""
    in_strides = _row_major_strides(shape)
    offset = sum(s * st for s, st in zip(starts, in_strides))
    _check_rank(ctx, out_shape)
    ctx.set_output(0, out_shape, x.dtype)
    return _strided_call(ctx, op, x.dtype, counts, [s * st for s, st in zip(steps, in_strides)],
                         offset)


@register(BuiltinOp.SLICE)
def prepare_slice(ctx):
    ctx.expect_inputs(3)
    x = _source(ctx)
    rank = len(x.shape)
    _check_rank(ctx, x.shape, "input")
    begin = _int_values(ctx, 1, "begin")
    size = _int_values(ctx, 2, "size")
    if len(begin) != rank or len(size) != rank:
        raise ctx.fail(f"begin {begin} and size {size} must have one entry per input dim "
                       f"(input shape {list(x.shape)})")
    counts = []
    for k, (b, s, d) in enumerate(zip(begin, size, x.shape)):
        if not 0 <= b <= d:
            raise ctx.fail(f"begin {b} of dim {k} is out of range [0, {d}] (input shape "
                           f"{list(x.shape)})")
        if s < -1:
            raise ctx.fail(f"size {s} of dim {k} is negative (only -1, up to the end, is allowed)")
        if s == -1:
            s = d - b
        if b + s > d:
            raise ctx.fail(f"size {size[k]} of dim {k} from begin {b} runs past the dim's size "
                           f"{d} (input shape {list(x.shape)})")
        counts.append(s)
    return _slice_call(ctx, "slice", x, x.shape, begin, counts, [1] * rank, counts)


def _strided_slice_spec(ctx, shape, begin, end, strides):
    """TFLite's reading of STRIDED_SLICE: the input's shape with the new axes inserted, one
    (start, count, step) per dim of it, and the output shape (without the shrunk dims).

    The spec (begin/end/strides, n entries) maps onto the input dims in order; an ellipsis entry
    stands for as many full dims as the spec leaves uncovered, a new-axis entry inserts a size-1
    dim, and dims past the spec's end are taken whole.
    """
    opts = ctx.options
    masks = {k: int(opts.get(k, 0)) for k in (
        "begin_mask", "end_mask", "ellipsis_mask", "new_axis_mask", "shrink_axis_mask")}
    n = len(begin)
    for name in ("ellipsis_mask", "new_axis_mask"):
        if masks[name] >> n:
            raise ctx.fail(f"{name} {masks[name]} marks entries beyond the {n} of begin/end/"
                           f"strides")
    marked = [k for k in range(n) if masks["ellipsis_mask"] >> k & 1]
    if len(marked) > 1:
        raise ctx.fail(f"ellipsis_mask {masks['ellipsis_mask']} marks more than one entry")
    ellipsis = marked[0] if marked else None
    rank = len(shape)
    # A new-axis bit on the ellipsis entry is ignored, as in TFLite.
    new_axes = {k for k in range(n) if masks["new_axis_mask"] >> k & 1 and k != ellipsis}
    covered = n - (ellipsis is not None)
    if covered > rank + len(new_axes):
        raise ctx.fail(f"begin/end/strides have {n} entries, more than the input's {rank} dims "
                       f"(shape {list(shape)}) and {len(new_axes)} new axes")
    # The ellipsis stands for the input dims the other entries do not claim.
    ellipsis_dims = rank - (covered - len(new_axes)) if ellipsis is not None else 0
    if ellipsis is not None and ellipsis_dims == 0:
        # TFLite would still give the ellipsis one dim and drop the spec's last entry.
        raise ctx.fail(f"the ellipsis (ellipsis_mask {masks['ellipsis_mask']}) would stand for "
                       f"no dim of the input {list(shape)}; not supported")

    def bit(name, k):
        return masks[name] >> k & 1

    entries = []  # per effective dim: (spec index or None for a whole dim, input dim or None)
    in_dim = 0
    for k in range(n):
        if k == ellipsis:
            entries += [(None, in_dim + j) for j in range(ellipsis_dims)]
            in_dim += ellipsis_dims
        elif k in new_axes:
            entries.append((k, None))
        else:
            entries.append((k, in_dim))
            in_dim += 1
    entries += [(None, d) for d in range(in_dim, rank)]

    walk, out_shape, eff_shape = [], [], []  # walk: (start, count, step) per effective dim
    offset_mode = bool(opts.get("offset", False))
    for k, d in entries:
        if d is None:  # a new axis: the output gets a size-1 dim
            eff_shape.append(1)
            walk.append((0, 1, 1))
            out_shape.append(1)
            continue
        size = shape[d]
        eff_shape.append(size)
        if k is None:
            walk.append((0, size, 1))
            out_shape.append(size)
            continue
        step = strides[k]
        if step == 0:
            raise ctx.fail(f"strides {strides} has a zero entry (index {k})")
        lo, hi = (0, size) if step > 0 else (-1, size - 1)
        b = begin[k]
        if bit("begin_mask", k):
            start = lo if step > 0 else hi
        else:
            start = min(max(b + size if b < 0 else b, lo), hi)
        if bit("shrink_axis_mask", k):
            if not -size <= b < size and not (bit("begin_mask", k) and size):
                raise ctx.fail(f"begin {b} of the dim that shrink_axis_mask removes (entry {k}) "
                               f"is out of range for its size {size}")
            if not bit("begin_mask", k):
                start = b + size if b < 0 else b
            walk.append((start, 1, 1))
            continue
        if offset_mode:
            stop = _offset_stop(ctx, k, start, end[k], step, size, bit("end_mask", k))
        elif bit("end_mask", k):
            stop = hi if step > 0 else lo
        else:
            e = end[k]
            stop = min(max(e + size if e < 0 else e, lo), hi)
        count = max(0, -((start - stop) // step)) if size else 0
        walk.append((start if count else 0, count, step))
        out_shape.append(count)
    starts, counts, steps = (list(column) for column in zip(*walk)) if walk else ([], [], [])
    return eff_shape, starts, counts, steps, out_shape


def _offset_stop(ctx, k, start, length, step, size, end_masked):
    """With the offset option, end is a length counted from begin. TFLite then neither clamps nor
    handles negative strides (it reads outside the input), so only slices inside are taken."""
    stop = size if end_masked else start + length
    if step < 0 or not 0 <= start < stop <= size:
        raise ctx.fail(f"offset slice of entry {k} (start {start}, length {length}, stride "
                       f"{step}) does not stay inside its dim of size {size} with a positive "
                       f"stride; not supported")
    return stop


@register(BuiltinOp.STRIDED_SLICE)
def prepare_strided_slice(ctx):
    ctx.expect_inputs(4)
    x = _source(ctx)
    _check_rank(ctx, x.shape, "input")
    begin = _int_values(ctx, 1, "begin")
    end = _int_values(ctx, 2, "end")
    strides = _int_values(ctx, 3, "strides")
    if not len(begin) == len(end) == len(strides):
        raise ctx.fail(f"begin {begin}, end {end} and strides {strides} differ in length")
    eff_shape, starts, counts, steps, out_shape = _strided_slice_spec(
        ctx, x.shape, begin, end, strides)
    _check_rank(ctx, eff_shape, "input with the new axes")
    return _slice_call(ctx, "strided_slice", x, eff_shape, starts, counts, steps, out_shape)


# -- GATHER ---------------------------------------------------------------------------------------

@register(BuiltinOp.GATHER)
def prepare_gather(ctx):
    ctx.expect_inputs(2)
    x, idx = _source(ctx), ctx.input(1)
    if idx.dtype not in SHAPE_DTYPES:
        raise ctx.fail(f"indices must be int32 or int64, got {idx.dtype}")
    rank, idx_rank = len(x.shape), len(idx.shape)
    if rank == 0:
        raise ctx.fail("params (input 0) is a scalar; gather needs at least one dim")
    axis = _axis(ctx, int(ctx.options.get("axis", 0)), rank)
    batch_dims = int(ctx.options.get("batch_dims", 0))
    if batch_dims < 0:
        batch_dims += idx_rank
    if not 0 <= batch_dims <= min(idx_rank, axis):
        raise ctx.fail(f"batch_dims {ctx.options.get('batch_dims', 0)} is out of range: it must "
                       f"name at most the indices' {idx_rank} dims and at most axis {axis}")
    if tuple(x.shape[:batch_dims]) != tuple(idx.shape[:batch_dims]):
        raise ctx.fail(f"the first batch_dims={batch_dims} dims of params {list(x.shape)} and "
                       f"indices {list(idx.shape)} differ")
    axis_size = x.shape[axis]
    if idx.value is not None and idx.size:
        flat = idx.value.reshape(-1)
        bad = np.flatnonzero((flat < 0) | (flat >= axis_size))
        if bad.size:
            raise ctx.fail(f"index {int(flat[bad[0]])} (element {int(bad[0])} of the indices) "
                           f"is out of range [0, {axis_size}) for axis {axis}")
    out_shape = list(x.shape[:axis]) + list(idx.shape[batch_dims:]) + list(x.shape[axis + 1:])
    _check_rank(ctx, out_shape)
    ctx.set_output(0, out_shape, x.dtype)
    params = GatherParams(
        batch=math.prod(x.shape[:batch_dims]), outer=math.prod(x.shape[batch_dims:axis]),
        axis_size=axis_size, inner=math.prod(x.shape[axis + 1:]),
        n_indices=math.prod(idx.shape[batch_dims:]))
    return KernelCall("gather_x_i32" if idx.dtype == np.int32 else "gather_x_i64", params)


# -- PAD, PADV2, MIRROR_PAD -----------------------------------------------------------------------

def _collapse_padding(shape, pads, mode):
    """Merge dims so the kernel's innermost run is as long as possible.

    Size-1 unpadded dims vanish and unpadded neighbours merge. With a constant fill an unpadded
    dim also folds into the padded dim outside it (its border rows are then fills of the longer
    row); a mirrored border reverses the order of blocks, so mirror modes keep such dims apart.
    """
    dims = []  # [in_dim, before, after]
    for d, (a, b) in zip(shape, pads):
        unpadded = a == b == 0
        if unpadded and d == 1:
            continue
        if dims and unpadded and (mode == PAD_CONSTANT or dims[-1][1] == dims[-1][2] == 0):
            dims[-1] = [dims[-1][0] * d, dims[-1][1] * d, dims[-1][2] * d]
        else:
            dims.append([d, a, b])
    return dims or [[1, 0, 0]]


def _pad_call(ctx, kernel, mode, pads, value=0) -> KernelCall:
    x = ctx.input(0)
    out_shape = [a + d + b for d, (a, b) in zip(x.shape, pads)]
    _check_rank(ctx, out_shape)
    ctx.set_output(0, out_shape, x.dtype)
    dims = _collapse_padding(x.shape, pads, mode)
    if any(v > INT32_MAX for dim in dims for v in dim):
        raise ctx.fail("tensor too large for the 32-bit index parameters")
    params = PadParams(ndim=len(dims), mode=mode, value=_element_bytes(value, x.dtype))
    for k, (d, a, b) in enumerate(dims):
        params.in_dims[k], params.before[k], params.after[k] = d, a, b
    return KernelCall(kernel, params)


def _pad_input(ctx):
    x = _source(ctx)
    _check_rank(ctx, x.shape, "input")
    return x, _pairs(ctx, 1, len(x.shape), "paddings")


@register(BuiltinOp.PAD)
def prepare_pad(ctx):
    ctx.expect_inputs(2)
    x, pads = _pad_input(ctx)
    return _pad_call(ctx, "pad_x", PAD_CONSTANT, pads, _zero_value(ctx, x))


@register(BuiltinOp.PADV2)
def prepare_padv2(ctx):
    ctx.expect_inputs(2, 3)
    x, pads = _pad_input(ctx)
    fill_t = ctx.optional_input(2)
    if fill_t is None:
        return _pad_call(ctx, "padv2_x", PAD_CONSTANT, pads, _zero_value(ctx, x))
    if fill_t.dtype != x.dtype:
        raise ctx.fail(f"constant_values dtype {fill_t.dtype} differs from the input's {x.dtype}")
    if fill_t.size != 1:
        raise ctx.fail(f"constant_values must hold one value, got shape {list(fill_t.shape)}")
    fill = ctx.constant(2, "constant_values")
    return _pad_call(ctx, "padv2_x", PAD_CONSTANT, pads, fill)


@register(BuiltinOp.MIRROR_PAD)
def prepare_mirror_pad(ctx):
    ctx.expect_inputs(2)
    x, pads = _pad_input(ctx)
    mode = int(ctx.options.get("mode", 0))
    if mode not in (MirrorPadMode.REFLECT, MirrorPadMode.SYMMETRIC):
        raise ctx.fail(f"mode {mode} is not REFLECT (0) or SYMMETRIC (1)")
    symmetric = mode == MirrorPadMode.SYMMETRIC
    for k, (d, (a, b)) in enumerate(zip(x.shape, pads)):
        limit = d if symmetric else d - 1
        if max(a, b) > max(limit, 0):
            raise ctx.fail(f"paddings [{a}, {b}] of dim {k} (size {d}) exceed what "
                           f"{'SYMMETRIC' if symmetric else 'REFLECT'} mirrors: at most {limit}")
    return _pad_call(ctx, "mirror_pad_x", PAD_SYMMETRIC if symmetric else PAD_REFLECT, pads)


# -- DEPTH_TO_SPACE, SPACE_TO_DEPTH ---------------------------------------------------------------

def _nhwc_block(ctx):
    ctx.expect_inputs(1)
    x = _source(ctx)
    if len(x.shape) != 4:
        raise ctx.fail(f"input must be 4-d NHWC, got shape {list(x.shape)}")
    block = int(ctx.options.get("block_size", 0))
    if block < 1:
        raise ctx.fail(f"block_size {block} must be positive")
    return x, block


@register(BuiltinOp.DEPTH_TO_SPACE)
def prepare_depth_to_space(ctx):
    x, b = _nhwc_block(ctx)
    n, h, w, c = x.shape
    if c % (b * b):
        raise ctx.fail(f"depth {c} is not a multiple of block_size^2 = {b * b}")
    depth = c // (b * b)
    ctx.set_output(0, [n, h * b, w * b, depth], x.dtype)
    # Output (n, h, i, w, j, c) reads input channel (i * b + j) * depth + c: TFLite's DCR order.
    return _strided_call(ctx, "depth_to_space", x.dtype, [n, h, b, w, b, depth],
                         [h * w * c, w * c, b * depth, c, depth, 1])


@register(BuiltinOp.SPACE_TO_DEPTH)
def prepare_space_to_depth(ctx):
    x, b = _nhwc_block(ctx)
    n, h, w, c = x.shape
    if h % b or w % b:
        raise ctx.fail(f"height {h} and width {w} must be multiples of block_size {b}")
    ctx.set_output(0, [n, h // b, w // b, c * b * b], x.dtype)
    # Output (n, y, x, i, j, c) reads input pixel (y * b + i, x * b + j).
    return _strided_call(ctx, "space_to_depth", x.dtype, [n, h // b, w // b, b, b, c],
                         [h * w * c, b * w * c, b * c, w * c, c, 1])


# -- SPACE_TO_BATCH_ND, BATCH_TO_SPACE_ND ---------------------------------------------------------

def _space_batch_input(ctx, what):
    """x, its shape as NHWC (the 3-d [N, W, C] form gets H = 1), block [bh, bw] and the
    (before, after) pairs of `what` (paddings or crops) per spatial dim."""
    ctx.expect_inputs(3)
    x = _source(ctx)
    if len(x.shape) not in (3, 4):
        raise ctx.fail(f"input must be 4-d NHWC or 3-d NWC, got shape {list(x.shape)}")
    spatial = len(x.shape) - 2
    block = _int_values(ctx, 1, "block_shape")
    if len(block) != spatial:
        raise ctx.fail(f"block_shape {block} must have {spatial} entries for an input of "
                       f"rank {len(x.shape)}")
    if any(b < 1 for b in block):
        raise ctx.fail(f"block_shape {block} has an entry below 1")
    pairs = _pairs(ctx, 2, spatial, what)
    shape = list(x.shape)
    if spatial == 1:
        shape.insert(1, 1)
        block, pairs = [1] + block, [(0, 0)] + pairs
    return x, shape, block, pairs


def _space_batch_call(ctx, kernel, to_batch, space_shape, batch_shape, block, before, value):
    x = ctx.input(0)
    out = batch_shape if to_batch else space_shape
    out_shape = out if len(x.shape) == 4 else [out[0], out[2], out[3]]
    ctx.set_output(0, out_shape, x.dtype)
    if max(space_shape + batch_shape) > INT32_MAX:
        raise ctx.fail("tensor too large for the 32-bit index parameters")
    params = SpaceBatchParams(
        to_batch=to_batch, batch=space_shape[0], space_h=space_shape[1], space_w=space_shape[2],
        batch_h=batch_shape[1], batch_w=batch_shape[2], block_h=block[0], block_w=block[1],
        pad_top=before[0], pad_left=before[1], depth=space_shape[3],
        value=_element_bytes(value, x.dtype))
    return KernelCall(kernel, params)


@register(BuiltinOp.SPACE_TO_BATCH_ND)
def prepare_space_to_batch_nd(ctx):
    x, (n, h, w, c), block, pads = _space_batch_input(ctx, "paddings")
    padded = [h + sum(pads[0]), w + sum(pads[1])]
    for k, (size, b) in enumerate(zip(padded, block)):
        if size % b:
            raise ctx.fail(f"padded spatial dim {k} of size {size} is not a multiple of "
                           f"block_shape {b} (input {list(x.shape)}, paddings "
                           f"{[list(p) for p in pads]})")
    batch_shape = [n * block[0] * block[1], padded[0] // block[0], padded[1] // block[1], c]
    return _space_batch_call(ctx, "space_to_batch_nd_x", 1, [n, h, w, c], batch_shape, block,
                             [pads[0][0], pads[1][0]], _zero_value(ctx, x))


@register(BuiltinOp.BATCH_TO_SPACE_ND)
def prepare_batch_to_space_nd(ctx):
    x, (n, h, w, c), block, crops = _space_batch_input(ctx, "crops")
    if n % (block[0] * block[1]):
        raise ctx.fail(f"batch {n} is not a multiple of the block size "
                       f"{block[0] * block[1]} (block_shape {block})")
    space = [h * block[0] - sum(crops[0]), w * block[1] - sum(crops[1])]
    if min(space) < 0:
        raise ctx.fail(f"crops {[list(p) for p in crops]} remove more than the "
                       f"{h * block[0]} x {w * block[1]} of the output")
    space_shape = [n // (block[0] * block[1]), space[0], space[1], c]
    return _space_batch_call(ctx, "batch_to_space_nd_x", 0, space_shape, [n, h, w, c], block,
                             [crops[0][0], crops[1][0]], 0)
