"""Elementwise ops: binary arithmetic and comparisons with broadcasting, SELECT, unary math,
activations, CAST and DEQUANTIZE (TFLite semantics; kernels in kernels/ref/elementwise.c)."""
from __future__ import annotations

import ctypes

import numpy as np

from edgeq.ops.common import BROADCAST_DIMS, broadcast_shape, broadcast_strides, fused_activation
from edgeq.ops.registry import KernelCall, register
from edgeq.tflite.schema import BuiltinOp

F32, F16 = np.dtype(np.float32), np.dtype(np.float16)
I64, I32, I16 = np.dtype(np.int64), np.dtype(np.int32), np.dtype(np.int16)
I8, U8, BOOL = np.dtype(np.int8), np.dtype(np.uint8), np.dtype(np.bool_)

DTYPE_SUFFIX = {F32: "f32", F16: "f16", I64: "i64", I32: "i32", I16: "i16", I8: "i8", U8: "u8",
                BOOL: "bool"}

# Types TFLite only runs through quantized arithmetic (scale / zero point): edgeq has no
# quantized kernels, so they are refused rather than computed on raw integers.
QUANTIZED = (I8, U8, I16)

ARITH = (F32, I32, I64)
FLOAT = (F32,)


def _names(dtypes):
    return ", ".join(str(d) for d in dtypes)


def check_dtype(ctx, dtype, allowed, what="input"):
    """The kernel suffix for dtype, or a ModelError saying why it is refused."""
    dtype = np.dtype(dtype)
    if dtype in allowed:
        return DTYPE_SUFFIX[dtype]
    if dtype in QUANTIZED:
        raise ctx.fail(f"{dtype} activations are not supported ({what} is {dtype}: quantized "
                       f"arithmetic); edgeq runs this op on {_names(allowed)}")
    raise ctx.fail(f"{what} dtype {dtype} is not supported (expected {_names(allowed)})")


def _array(values):
    return (ctypes.c_int32 * BROADCAST_DIMS)(*values)


class BinaryParams(ctypes.Structure):
    """Mirror of eq_binary_params (kernels/include/edgeq/params/elementwise.h)."""

    _fields_ = [
        ("out_dims", ctypes.c_int32 * BROADCAST_DIMS),
        ("a_strides", ctypes.c_int32 * BROADCAST_DIMS),
        ("b_strides", ctypes.c_int32 * BROADCAST_DIMS),
        ("act_min", ctypes.c_float),
        ("act_max", ctypes.c_float),
    ]


class SelectParams(ctypes.Structure):
    """Mirror of eq_select_params."""

    _fields_ = [
        ("out_dims", ctypes.c_int32 * BROADCAST_DIMS),
        ("c_strides", ctypes.c_int32 * BROADCAST_DIMS),
        ("x_strides", ctypes.c_int32 * BROADCAST_DIMS),
        ("y_strides", ctypes.c_int32 * BROADCAST_DIMS),
    ]


class ClampParams(ctypes.Structure):
    """Mirror of eq_clamp_params."""

    _fields_ = [("lo", ctypes.c_float), ("hi", ctypes.c_float)]


class AlphaParams(ctypes.Structure):
    """Mirror of eq_alpha_params."""

    _fields_ = [("alpha", ctypes.c_float)]


class DequantizeParams(ctypes.Structure):
    """Mirror of eq_dequantize_params."""

    _fields_ = [("scale", ctypes.c_float), ("zero_point", ctypes.c_int32)]


class DequantizePerChannelParams(ctypes.Structure):
    """Mirror of eq_dequantize_pc_params."""

    _fields_ = [("outer", ctypes.c_int32), ("channels", ctypes.c_int32),
                ("inner", ctypes.c_int32)]


def _collapse(ctx, out_shape, *shapes):
    collapsed = broadcast_strides(out_shape, *shapes)
    if collapsed is None:
        raise ctx.fail(f"broadcasting {' with '.join(str(list(s)) for s in shapes)} needs more "
                       f"than {BROADCAST_DIMS} dims")
    return collapsed


# ---------------------------------------------------------------------------------------------
# Binary ops


def prepare_binary(ctx, kernel_base: str, out_dtype=None, has_activation=True, dtypes=ARITH):
    """Two same-dtype inputs broadcast against each other; kernel `<kernel_base>_<dtype>`.

    The fused activation (when the op's options carry one) is a clamp applied by the kernel.
    """
    ctx.expect_inputs(2)
    a, b = ctx.input(0), ctx.input(1)
    if a.dtype != b.dtype:  # (a test, not ctx.require: the message would be formatted per op)
        raise ctx.fail(f"input dtypes differ ({a.dtype} and {b.dtype})")
    suffix = check_dtype(ctx, a.dtype, dtypes)
    out_shape = broadcast_shape(ctx, a.shape, b.shape)
    ctx.set_output(0, out_shape, out_dtype or a.dtype)
    dims, (sa, sb) = _collapse(ctx, out_shape, a.shape, b.shape)
    lo, hi = fused_activation(ctx, finite=False) if has_activation else (-np.inf, np.inf)
    params = BinaryParams(_array(dims), _array(sa), _array(sb), lo, hi)
    return KernelCall(f"{kernel_base}_{suffix}", params)


def _binary(op, kernel_base, dtypes=ARITH, out_dtype=None, has_activation=False):
    @register(op)
    def prepare(ctx):
        return prepare_binary(ctx, kernel_base, out_dtype, has_activation, dtypes)

    prepare.__name__ = f"prepare_{kernel_base}"
    return prepare


@register(BuiltinOp.ADD)
def prepare_add(ctx):
    return prepare_binary(ctx, "add")


_binary(BuiltinOp.SUB, "sub", has_activation=True)
_binary(BuiltinOp.MUL, "mul", has_activation=True)
_binary(BuiltinOp.DIV, "div", (F32, I32), has_activation=True)
_binary(BuiltinOp.SQUARED_DIFFERENCE, "squared_difference", (F32, I32))
_binary(BuiltinOp.MAXIMUM, "maximum")
_binary(BuiltinOp.MINIMUM, "minimum")
_binary(BuiltinOp.POW, "pow", (F32, I32))
_binary(BuiltinOp.FLOOR_DIV, "floor_div", (F32, I32))
_binary(BuiltinOp.FLOOR_MOD, "floor_mod")
_binary(BuiltinOp.LESS, "less", out_dtype=BOOL)
_binary(BuiltinOp.LESS_EQUAL, "less_equal", out_dtype=BOOL)
_binary(BuiltinOp.GREATER, "greater", out_dtype=BOOL)
_binary(BuiltinOp.GREATER_EQUAL, "greater_equal", out_dtype=BOOL)
_binary(BuiltinOp.EQUAL, "equal", ARITH + (BOOL,), out_dtype=BOOL)
_binary(BuiltinOp.NOT_EQUAL, "not_equal", ARITH + (BOOL,), out_dtype=BOOL)
_binary(BuiltinOp.LOGICAL_AND, "logical_and", (BOOL,))
_binary(BuiltinOp.LOGICAL_OR, "logical_or", (BOOL,))


@register(BuiltinOp.PRELU)
def prepare_prelu(ctx):
    # alpha (input 1) broadcasts to the input's shape (MediaPipe's [1, 1, C] constants); like
    # TFLite, an alpha that would enlarge the output is refused.
    ctx.expect_inputs(2)
    x, alpha = ctx.input(0), ctx.input(1)
    check_dtype(ctx, x.dtype, FLOAT)
    check_dtype(ctx, alpha.dtype, FLOAT, "alpha")
    ctx.require(broadcast_shape(ctx, x.shape, alpha.shape) == tuple(x.shape),
                f"alpha shape {list(alpha.shape)} does not broadcast to the input shape "
                f"{list(x.shape)}")
    return prepare_binary(ctx, "prelu", has_activation=False, dtypes=FLOAT)


# ---------------------------------------------------------------------------------------------
# SELECT / SELECT_V2

SELECT_WIDTH = {1: "x8", 2: "x16", 4: "x32", 8: "x64"}
SELECT_DTYPES = (F32, F16, I64, I32, I16, I8, U8, BOOL)


def _prepare_select(ctx, version):
    ctx.expect_inputs(3)
    cond, x, y = ctx.input(0), ctx.input(1), ctx.input(2)
    if cond.dtype != BOOL:
        raise ctx.fail(f"condition dtype is {cond.dtype}, must be bool")
    if x.dtype != y.dtype:
        raise ctx.fail(f"x and y dtypes differ ({x.dtype} and {y.dtype})")
    if x.dtype not in SELECT_DTYPES:
        raise ctx.fail(f"dtype {x.dtype} is not supported (expected {_names(SELECT_DTYPES)})")
    declared = ctx.outputs[0].shape
    sizes = [int(np.prod(s, dtype=np.int64)) for s in (cond.shape, x.shape, y.shape, declared)]
    cond_shape = cond.shape
    if all(n == 1 for n in sizes):
        # TFLite keeps the model's own output shape when every operand holds one element.
        out_shape = declared
    elif version == 2:
        out_shape = broadcast_shape(ctx, broadcast_shape(ctx, cond.shape, x.shape), y.shape)
    else:
        ctx.require(tuple(x.shape) == tuple(y.shape),
                    f"x shape {list(x.shape)} and y shape {list(y.shape)} differ")
        out_shape = x.shape
        if tuple(cond.shape) != tuple(x.shape):
            # SELECT (v1) also takes a scalar condition, or a rank-1 one picking whole rows.
            rank1 = len(cond.shape) == 1 and len(x.shape) >= 1 and cond.shape[0] == x.shape[0]
            ctx.require(len(cond.shape) == 0 or rank1,
                        f"condition shape {list(cond.shape)} must equal x shape "
                        f"{list(x.shape)}, be a scalar, or be rank 1 of size x.shape[0]")
            if rank1:
                cond_shape = (cond.shape[0],) + (1,) * (len(x.shape) - 1)
    ctx.set_output(0, out_shape, x.dtype)
    dims, (sc, sx, sy) = _collapse(ctx, out_shape, cond_shape, x.shape, y.shape)
    params = SelectParams(_array(dims), _array(sc), _array(sx), _array(sy))
    return KernelCall(f"select_{SELECT_WIDTH[x.dtype.itemsize]}", params)


@register(BuiltinOp.SELECT)
def prepare_select(ctx):
    return _prepare_select(ctx, 1)


@register(BuiltinOp.SELECT_V2)
def prepare_select_v2(ctx):
    return _prepare_select(ctx, 2)


# ---------------------------------------------------------------------------------------------
# Unary ops and activations


def prepare_unary(ctx, kernel_base: str, dtypes=FLOAT, params=None):
    ctx.expect_inputs(1)
    x = ctx.input(0)
    suffix = check_dtype(ctx, x.dtype, dtypes)
    ctx.set_output(0, x.shape, x.dtype)
    return KernelCall(f"{kernel_base}_{suffix}", params)


def _unary(op, kernel_base, dtypes=FLOAT):
    @register(op)
    def prepare(ctx):
        return prepare_unary(ctx, kernel_base, dtypes)

    prepare.__name__ = f"prepare_{kernel_base}"
    return prepare


_unary(BuiltinOp.NEG, "neg", ARITH)
_unary(BuiltinOp.ABS, "abs", (F32, I32))
_unary(BuiltinOp.SQRT, "sqrt")
_unary(BuiltinOp.RSQRT, "rsqrt")
_unary(BuiltinOp.EXP, "exp")
_unary(BuiltinOp.LOG, "log")
_unary(BuiltinOp.SQUARE, "square")
_unary(BuiltinOp.FLOOR, "floor")
_unary(BuiltinOp.CEIL, "ceil")
_unary(BuiltinOp.ROUND, "round")
_unary(BuiltinOp.SIN, "sin")
_unary(BuiltinOp.COS, "cos")
_unary(BuiltinOp.LOGICAL_NOT, "logical_not", (BOOL,))
_unary(BuiltinOp.LOGISTIC, "logistic")
_unary(BuiltinOp.TANH, "tanh")
_unary(BuiltinOp.HARD_SWISH, "hard_swish")
_unary(BuiltinOp.ELU, "elu")

CLAMPS = {
    BuiltinOp.RELU: (0.0, np.inf),
    BuiltinOp.RELU6: (0.0, 6.0),
    BuiltinOp.RELU_N1_TO_1: (-1.0, 1.0),
    BuiltinOp.RELU_0_TO_1: (0.0, 1.0),
}


@register(*CLAMPS)
def prepare_relu(ctx):
    lo, hi = CLAMPS[ctx.node.op]
    # LiteRT runs RELU_0_TO_1 in its own kernel, the others in XNNPack's (whose clamps keep or
    # drop the sign of -0 as the CPU's max/min instruction does).
    kernel = "clamp_by_compare" if ctx.node.op == BuiltinOp.RELU_0_TO_1 else "clamp"
    return prepare_unary(ctx, kernel, params=ClampParams(lo, hi))


@register(BuiltinOp.LEAKY_RELU)
def prepare_leaky_relu(ctx):
    alpha = float(ctx.options.get("alpha", 0.0))
    ctx.require(np.isfinite(alpha), f"alpha {alpha} is not finite")
    return prepare_unary(ctx, "leaky_relu", params=AlphaParams(alpha))


@register(BuiltinOp.GELU)
def prepare_gelu(ctx):
    # approximate=True is the tanh form, False (the default) the exact erf form.
    return prepare_unary(ctx, "gelu_tanh" if ctx.options.get("approximate", False) else "gelu")


# ---------------------------------------------------------------------------------------------
# CAST and DEQUANTIZE

CAST_DTYPES = (F32, F16, I64, I32, I16, I8, U8, BOOL)


@register(BuiltinOp.CAST)
def prepare_cast(ctx):
    # Like TFLite, the output tensor's declared type says what to cast to (CastOptions are
    # optional and not consulted).
    ctx.expect_inputs(1)
    x = ctx.input(0)
    to = ctx.outputs[0].dtype
    src = DTYPE_SUFFIX[x.dtype] if x.dtype in CAST_DTYPES else None
    dst = DTYPE_SUFFIX[to] if to is not None and np.dtype(to) in CAST_DTYPES else None
    if src is None:
        raise ctx.fail(f"cannot cast from {x.dtype} (supported: {_names(CAST_DTYPES)})")
    if dst is None:
        raise ctx.fail(f"cannot cast to {to} (supported: {_names(CAST_DTYPES)})")
    ctx.set_output(0, x.shape, to)
    return KernelCall(f"cast_{src}_{dst}")


@register(BuiltinOp.DEQUANTIZE)
def prepare_dequantize(ctx):
    ctx.expect_inputs(1)
    x = ctx.input(0)
    ctx.set_output(0, x.shape, F32)
    if x.dtype == F16:
        # fp16 -> float32 is exact: the converter with F16C / NEON (kernels/core/f16_drivers.c)
        # gives the reference's values, and fp16-weight models run it on every weight at load.
        return KernelCall("convert_f16_f32")
    ctx.require(x.dtype in (I8, U8, I16),
                f"input dtype {x.dtype} is not supported (expected float16, int8, uint8, int16)")
    suffix = DTYPE_SUFFIX[x.dtype]
    q = x.quantization
    if q is None or len(q.scale) == 0:
        raise ctx.fail(f"{x.dtype} input '{x.name}' has no quantization scale / zero point")
    scales = np.asarray(q.scale, np.float32)
    zero_points = np.asarray(q.zero_point, np.int64)
    info = np.iinfo(x.dtype)
    ctx.require(len(zero_points) == len(scales),
                f"{len(scales)} scales but {len(zero_points)} zero points")
    ctx.require(bool(np.all(np.isfinite(scales))), "quantization scale is not finite")
    ctx.require(bool(np.all((zero_points >= info.min) & (zero_points <= info.max))),
                f"zero point outside the {x.dtype} range")
    if len(scales) == 1:
        return KernelCall(f"dequantize_{suffix}_f32",
                          DequantizeParams(float(scales[0]), int(zero_points[0])))
    # Per-channel, as TFLite has it for int8 and uint8.
    ctx.require(x.dtype != I16, "per-channel dequantization of int16 is not supported")
    rank, dim = len(x.shape), int(q.quantized_dimension)
    ctx.require(0 <= dim < rank, f"quantized_dimension {dim} is out of range for rank {rank}")
    ctx.require(x.shape[dim] == len(scales),
                f"{len(scales)} per-channel scales, but dimension {dim} of shape "
                f"{list(x.shape)} has {x.shape[dim]}")
    outer = int(np.prod(x.shape[:dim], dtype=np.int64))
    inner = int(np.prod(x.shape[dim + 1:], dtype=np.int64))
    s = ctx.add_constant(scales, "scales")
    z = ctx.add_constant(zero_points.astype(np.int32), "zero_points")
    params = DequantizePerChannelParams(outer, len(scales), inner)
    return KernelCall(f"dequantize_pc_{suffix}_f32", params, inputs=[x.index, s, z])
