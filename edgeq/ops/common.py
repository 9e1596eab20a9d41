"""Helpers shared by op prepare functions: activations, broadcasting, padding, axes."""
from __future__ import annotations


import numpy as np

from edgeq.runtime.executor import pack_f32_gemm

from edgeq.tflite.schema import TENSOR_TYPE_OF

# Fused activation codes (schema ActivationFunctionType).
ACT_NONE, ACT_RELU, ACT_RELU_N1_TO_1, ACT_RELU6, ACT_TANH, ACT_SIGN_BIT = range(6)

BROADCAST_DIMS = 6  # rank the binary kernels work in after collapsing


def dtype_code(dtype) -> int:
    """TFLite TensorType code of a numpy dtype (the C kernels use these codes)."""
    return TENSOR_TYPE_OF[np.dtype(dtype)]


# TFLite's builtin kernels clamp even "no activation" to the finite float range (inf + 0 gives
# FLT_MAX); XNNPack, LiteRT's default for elementwise ops, leaves the upper bounds open.
FLT_MAX = float(np.finfo(np.float32).max)


def activation_range(ctx, act: int, finite: bool = True):
    """(min, max) clamp for a fused activation that is a clamp; TANH/SIGN_BIT are refused.

    finite=False leaves unbounded sides at +-inf, so that +-inf inputs stay infinite."""
    big = FLT_MAX if finite else float("inf")
    if act == ACT_NONE:
        return -big, big
    if act == ACT_RELU:
        return 0.0, big
    if act == ACT_RELU_N1_TO_1:
        return -1.0, 1.0
    if act == ACT_RELU6:
        return 0.0, 6.0
    raise ctx.fail(f"fused_activation_function {act} is not supported for this op")


def fused_activation(ctx, finite: bool = True):
    return activation_range(ctx, int(ctx.options.get("fused_activation_function", 0)), finite)


def broadcast_shape(ctx, a, b):
    """numpy broadcasting of two shapes, as TFLite defines it; a clear error when incompatible."""
    try:
        return tuple(np.broadcast_shapes(tuple(a), tuple(b)))
    except ValueError:
        raise ctx.fail(f"shapes {list(a)} and {list(b)} cannot be broadcast together") from None


def broadcast_strides(out_shape, *in_shapes):
    """Collapse to BROADCAST_DIMS dims and give each input's element strides (0 = broadcast).

    Adjacent dims are merged when every operand is either contiguous across both or broadcast
    across both, so the common case (same shapes) becomes one flat loop.
    """
    rank = len(out_shape)
    shapes = [(1,) * (rank - len(s)) + tuple(s) for s in in_shapes]
    dims = list(out_shape)
    # Per operand and dim: True when the operand is broadcast along that dim.
    bcast = [[s[i] == 1 and dims[i] != 1 for i in range(rank)] for s in shapes]
    merged_dims, merged_b = [], [[] for _ in shapes]
    for i in range(rank):
        if dims[i] == 1:
            continue  # size-1 output dims contribute nothing
        if merged_dims and all(merged_b[k][-1] == bcast[k][i] for k in range(len(shapes))):
            merged_dims[-1] *= dims[i]
        else:
            merged_dims.append(dims[i])
            for k in range(len(shapes)):
                merged_b[k].append(bcast[k][i])
    if len(merged_dims) > BROADCAST_DIMS:
        return None  # caller reports it
    pad = BROADCAST_DIMS - len(merged_dims)
    out_dims = [1] * pad + merged_dims
    strides = []
    for k in range(len(shapes)):
        flags = [True] * pad + merged_b[k]
        st, acc = [0] * BROADCAST_DIMS, 1
        for i in reversed(range(BROADCAST_DIMS)):
            st[i] = 0 if flags[i] else acc
            if not flags[i]:
                acc *= out_dims[i]
        strides.append(st)
    return out_dims, strides


def same_padding(in_size, filter_size, stride, dilation):
    """(out_size, pad_before) for SAME padding, as TFLite computes it."""
    eff = (filter_size - 1) * dilation + 1
    out = (in_size + stride - 1) // stride
    total = max((out - 1) * stride + eff - in_size, 0)
    return out, total // 2


def valid_out(in_size, filter_size, stride, dilation):
    eff = (filter_size - 1) * dilation + 1
    return (in_size - eff + stride) // stride if in_size >= eff else 0


def conv_out_and_pad(ctx, padding, in_size, filter_size, stride, dilation):
    if padding == 0:  # SAME
        return same_padding(in_size, filter_size, stride, dilation)
    if padding == 1:  # VALID
        return valid_out(in_size, filter_size, stride, dilation), 0
    raise ctx.fail(f"padding {padding} is not SAME or VALID")


def normalize_axis(ctx, axis, rank, what="axis"):
    axis = int(axis)
    if not -rank <= axis < max(rank, 1):
        raise ctx.fail(f"{what} {axis} is out of range for rank {rank}")
    return axis % rank if rank else 0


def int_array(ctypes_type, values):
    """A ctypes array initialised from a Python sequence."""
    return (ctypes_type * len(values))(*values)


# Packed float32 GEMM weights, as every f32 GEMM microkernel reads them (EQ_F32_GEMM_NR and the
# layout in kernels/include/edgeq/f32_gemm.h). One NR serves every ISA, so the layout never
# depends on which variant the dispatch picks.
F32_GEMM_NR = 16


def pack_f32_gemm_weights(weights: np.ndarray, bias, empty=np.empty) -> np.ndarray:
    """weights [N, K] (output channel major), bias [N] or None -> [ceil(N/NR), K + 1, NR]: per
    block of NR output channels, their biases then K rows of their weights, zeros past N
    (written by kernels/core/pack.c in one pass), into empty(shape, dtype) (prepare passes
    ctx.empty_constant)."""
    n, k = weights.shape
    out = empty((-(-n // F32_GEMM_NR), k + 1, F32_GEMM_NR), np.float32)
    b = None if bias is None else np.ascontiguousarray(bias, np.float32).reshape(-1)
    pack_f32_gemm(np.ascontiguousarray(weights, np.float32).reshape(-1), b, n, k,
                  out.reshape(-1))
    return out
