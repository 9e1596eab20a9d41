"""Elementwise ops: binary arithmetic with broadcasting."""
from __future__ import annotations

import ctypes

import numpy as np

from edgeq.ops.common import BROADCAST_DIMS, broadcast_shape, broadcast_strides, fused_activation
from edgeq.ops.registry import KernelCall, register
from edgeq.tflite.schema import BuiltinOp

DTYPE_SUFFIX = {np.dtype(np.float32): "f32", np.dtype(np.int32): "i32", np.dtype(np.int64): "i64"}


class BinaryParams(ctypes.Structure):
    """Mirror of eq_binary_params (kernels/include/edgeq/params/elementwise.h)."""

    _fields_ = [
        ("out_dims", ctypes.c_int32 * BROADCAST_DIMS),
        ("a_strides", ctypes.c_int32 * BROADCAST_DIMS),
        ("b_strides", ctypes.c_int32 * BROADCAST_DIMS),
        ("act_min", ctypes.c_float),
        ("act_max", ctypes.c_float),
    ]


def prepare_binary(ctx, kernel_base: str, out_dtype=None, has_activation=True):
    ctx.expect_inputs(2)
    a, b = ctx.input(0), ctx.input(1)
    ctx.require(a.dtype == b.dtype, f"input dtypes differ ({a.dtype} and {b.dtype})")
    suffix = DTYPE_SUFFIX.get(a.dtype)
    if suffix is None:
        raise ctx.fail(f"dtype {a.dtype} is not supported")
    out_shape = broadcast_shape(ctx, a.shape, b.shape)
    ctx.set_output(0, out_shape, out_dtype or a.dtype)
    collapsed = broadcast_strides(out_shape, a.shape, b.shape)
    if collapsed is None:
        raise ctx.fail(f"broadcasting {list(a.shape)} with {list(b.shape)} needs more than "
                       f"{BROADCAST_DIMS} dims")
    dims, (sa, sb) = collapsed
    lo, hi = fused_activation(ctx) if has_activation else (-np.inf, np.inf)
    params = BinaryParams((ctypes.c_int32 * BROADCAST_DIMS)(*dims),
                          (ctypes.c_int32 * BROADCAST_DIMS)(*sa),
                          (ctypes.c_int32 * BROADCAST_DIMS)(*sb), lo, hi)
    return KernelCall(f"{kernel_base}_{suffix}", params)


@register(BuiltinOp.ADD)
def prepare_add(ctx):
    return prepare_binary(ctx, "add")
