"""Reductions (MEAN, SUM, REDUCE_MAX/MIN/PROD/ANY/ALL), SOFTMAX, LOG_SOFTMAX, ARG_MAX/ARG_MIN.

Integer reductions exist because shape arithmetic (e.g. REDUCE_PROD over a SHAPE output) runs
through these kernels at prepare time.
"""
from __future__ import annotations

import ctypes

import numpy as np

from edgeq.graph.graph import LAYER_NORM
from edgeq.ops.registry import KernelCall, register
from edgeq.tflite.schema import BuiltinOp

MAX_DIMS = 8  # EQ_MAX_DIMS
INT32_MAX = 2**31 - 1

F32, I32, I64 = np.dtype(np.float32), np.dtype(np.int32), np.dtype(np.int64)
U8, I8, BOOL = np.dtype(np.uint8), np.dtype(np.int8), np.dtype(np.bool_)
SUFFIX = {F32: "f32", I32: "i32", I64: "i64", U8: "u8", I8: "i8", BOOL: "bool"}
INDEX_DTYPES = (I32, I64)
TENSOR_TYPE_INT32, TENSOR_TYPE_INT64 = 2, 4


class ReduceParams(ctypes.Structure):
    """Mirror of eq_reduce_params (kernels/include/edgeq/params/reduce.h)."""

    _fields_ = [("ndim", ctypes.c_int32), ("dims", ctypes.c_int32 * MAX_DIMS),
                ("out_strides", ctypes.c_int32 * MAX_DIMS)]


class SoftmaxParams(ctypes.Structure):
    """Mirror of eq_softmax_params."""

    _fields_ = [("depth", ctypes.c_int32), ("beta", ctypes.c_float)]


class ArgParams(ctypes.Structure):
    """Mirror of eq_arg_params."""

    _fields_ = [("outer", ctypes.c_int32), ("axis_size", ctypes.c_int32),
                ("inner", ctypes.c_int32)]


def _check_dtype(ctx, dtype, allowed, what="input"):
    if dtype in allowed:
        return
    if dtype in (I8, U8, np.dtype(np.int16)):
        raise ctx.fail(f"quantized {dtype} activations are not supported")
    names = ", ".join(str(d) for d in allowed)
    raise ctx.fail(f"{what} dtype {dtype} is not supported ({names} only)")


def _check_size(ctx, t):
    if t.size > INT32_MAX:
        raise ctx.fail(f"input has {t.size} elements, above the supported {INT32_MAX}")


def _axis_values(ctx, index: int, what: str) -> list:
    info = ctx.input(index)
    if info.dtype not in INDEX_DTYPES:
        raise ctx.fail(f"{what} must be int32 or int64, got {info.dtype}")
    if info.size == 0:
        return []  # known without data: an empty list (files store it without a buffer)
    return [int(v) for v in np.asarray(ctx.constant(index, what)).reshape(-1)]


def collapse(shape, reduced):
    """Collapsed (dims, out_strides) of a reduction (see eq_reduce_params).

    Size-1 dims vanish; neighbouring dims that are both reduced or both kept merge.
    """
    groups = []  # [size, is_reduced]
    for d, n in enumerate(shape):
        if n == 1:
            continue
        r = d in reduced
        if groups and groups[-1][1] == r:
            groups[-1][0] *= n
        else:
            groups.append([n, r])
    if not groups:
        groups = [[1, False]]
    strides, acc = [0] * len(groups), 1
    for i in reversed(range(len(groups))):
        if not groups[i][1]:
            strides[i] = acc
            acc *= groups[i][0]
    return [g[0] for g in groups], strides


def prepare_reduce(ctx, kernel_base: str, allowed, scratch_per_output=None):
    ctx.expect_inputs(2)
    x = ctx.input(0)
    _check_dtype(ctx, x.dtype, allowed)
    _check_size(ctx, x)
    axes = _axis_values(ctx, 1, "axis")
    keep_dims = bool(ctx.options.get("keep_dims", False))
    rank = len(x.shape)
    if rank == 0:
        # TFLite ignores the axes of a scalar input and returns the scalar.
        ctx.set_output(0, (), x.dtype)
        return KernelCall("reduce_identity", None, inputs=[x.index])
    reduced = set()
    for a in axes:
        if not -rank <= a < rank:
            raise ctx.fail(f"axis {a} is out of range for an input of rank {rank}")
        reduced.add(a % rank)  # duplicates count once, as in TFLite
    if keep_dims:
        out_shape = tuple(1 if d in reduced else n for d, n in enumerate(x.shape))
    else:
        out_shape = tuple(n for d, n in enumerate(x.shape) if d not in reduced)
    ctx.set_output(0, out_shape, x.dtype)
    if not reduced:
        return KernelCall("reduce_identity", None, inputs=[x.index])
    dims, strides = collapse(x.shape, reduced)
    if len(dims) > MAX_DIMS:  # cannot happen for rank <= MAX_DIMS; kept for safety
        raise ctx.fail(f"rank {rank} is above the supported {MAX_DIMS}")
    pad = MAX_DIMS - len(dims)
    params = ReduceParams(len(dims), (ctypes.c_int32 * MAX_DIMS)(*(dims + [0] * pad)),
                          (ctypes.c_int32 * MAX_DIMS)(*(strides + [0] * pad)))
    out_size = int(np.prod(out_shape, dtype=np.int64))
    scratch = 0
    if scratch_per_output is not None:
        scratch = out_size * scratch_per_output.get(x.dtype, 0)
    return KernelCall(f"{kernel_base}_{SUFFIX[x.dtype]}", params, inputs=[x.index],
                      scratch_bytes=scratch)


NUMERIC = (F32, I32, I64)


@register(BuiltinOp.MEAN)
def prepare_mean(ctx):
    # int32 means sum in int64 (TFLite's accumulator), which needs room beside the output.
    return prepare_reduce(ctx, "mean", NUMERIC, scratch_per_output={I32: 8})


@register(BuiltinOp.SUM)
def prepare_sum(ctx):
    return prepare_reduce(ctx, "sum", NUMERIC)


@register(BuiltinOp.REDUCE_PROD)
def prepare_reduce_prod(ctx):
    return prepare_reduce(ctx, "reduce_prod", NUMERIC)


@register(BuiltinOp.REDUCE_MAX)
def prepare_reduce_max(ctx):
    return prepare_reduce(ctx, "reduce_max", NUMERIC)


@register(BuiltinOp.REDUCE_MIN)
def prepare_reduce_min(ctx):
    return prepare_reduce(ctx, "reduce_min", NUMERIC)


@register(BuiltinOp.REDUCE_ANY)
def prepare_reduce_any(ctx):
    return prepare_reduce(ctx, "reduce_any", (BOOL,))


if hasattr(BuiltinOp, "REDUCE_ALL"):

    @register(BuiltinOp.REDUCE_ALL)
    def prepare_reduce_all(ctx):
        return prepare_reduce(ctx, "reduce_all", (BOOL,))


def _softmax_input(ctx):
    ctx.expect_inputs(1)
    x = ctx.input(0)
    _check_dtype(ctx, x.dtype, (F32,))
    _check_size(ctx, x)
    if len(x.shape) < 1:
        raise ctx.fail("input must have rank >= 1 (softmax runs over the last axis)")
    ctx.set_output(0, x.shape, F32)
    return x


@register(BuiltinOp.SOFTMAX)
def prepare_softmax(ctx):
    x = _softmax_input(ctx)
    beta = float(ctx.options.get("beta", 0.0))
    if not np.isfinite(beta):
        raise ctx.fail(f"beta must be finite, got {beta}")
    return KernelCall("softmax_f32", SoftmaxParams(x.shape[-1], beta))


@register(BuiltinOp.LOG_SOFTMAX)
def prepare_log_softmax(ctx):
    x = _softmax_input(ctx)
    return KernelCall("log_softmax_f32", SoftmaxParams(x.shape[-1], 1.0))


def prepare_arg(ctx, kernel_base: str):
    ctx.expect_inputs(2)
    x = ctx.input(0)
    # Quantized inputs are fine here: the index of the extreme does not depend on the scale.
    _check_dtype(ctx, x.dtype, (F32, I32, I64, U8, I8, BOOL))
    _check_size(ctx, x)
    rank = len(x.shape)
    if rank < 1:
        raise ctx.fail("input must have rank >= 1")
    values = _axis_values(ctx, 1, "axis")
    if len(values) != 1:
        raise ctx.fail(f"axis must hold exactly one value, got {len(values)}")
    axis = values[0]
    if not -rank <= axis < rank:
        raise ctx.fail(f"axis {axis} is out of range for an input of rank {rank}")
    axis %= rank
    output_type = int(ctx.options.get("output_type", TENSOR_TYPE_INT64))
    if output_type == TENSOR_TYPE_INT32:
        out_dtype, out_suffix = I32, "i32"
    elif output_type == TENSOR_TYPE_INT64:
        out_dtype, out_suffix = I64, "i64"
    else:
        raise ctx.fail(f"output_type {output_type} is not INT32 or INT64")
    outer = int(np.prod(x.shape[:axis], dtype=np.int64))
    inner = int(np.prod(x.shape[axis + 1:], dtype=np.int64))
    axis_size = x.shape[axis]
    if axis_size == 0 and outer * inner > 0:
        raise ctx.fail(f"axis {axis} has size 0: there is no element to pick")
    out_shape = x.shape[:axis] + x.shape[axis + 1:]
    ctx.set_output(0, out_shape, out_dtype)
    params = ArgParams(outer, axis_size, inner)
    return KernelCall(f"{kernel_base}_{SUFFIX[x.dtype]}_{out_suffix}", params, inputs=[x.index])


@register(BuiltinOp.ARG_MAX)
def prepare_arg_max(ctx):
    return prepare_arg(ctx, "arg_max")


@register(BuiltinOp.ARG_MIN)
def prepare_arg_min(ctx):
    return prepare_arg(ctx, "arg_min")


# --- the fused layer normalization (edgeq/graph/graph.py fuse_layer_norm) ----------------------

class LayerNormParams(ctypes.Structure):
    """Mirror of eq_layer_norm_params (kernels/include/edgeq/params/reduce.h)."""

    _fields_ = [("rows", ctypes.c_int32), ("depth", ctypes.c_int32), ("epsilon", ctypes.c_float)]


@register(LAYER_NORM)
def prepare_layer_norm(ctx):
    """Inputs: x, gamma or -1, beta or -1 (constants of x's last-axis size, checked when fused;
    the last axis cannot be resized away from them without the model failing anyway)."""
    x = ctx.input(0)
    if x.dtype != np.float32:
        raise ctx.fail(f"input dtype {x.dtype} is not float32")
    ctx.require(len(x.shape) >= 1, "input must have at least one axis")
    depth = int(x.shape[-1])
    rows = x.size // depth if depth else 0
    for i, what in ((1, "gamma"), (2, "beta")):
        t = ctx.optional_input(i)
        if t is not None and t.size != depth:
            raise ctx.fail(f"{what} has {t.size} values but the input's last axis has {depth}")
    ctx.set_output(0, x.shape, np.float32)
    from edgeq.ops.conv import _check_int32

    _check_int32(ctx, rows=rows, depth=depth)
    return KernelCall("layer_norm_f32", LayerNormParams(rows, depth,
                                                        float(ctx.options["epsilon"])))

