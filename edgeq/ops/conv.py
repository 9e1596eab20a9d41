"""Convolution and matrix ops, float32: CONV_2D, DEPTHWISE_CONV_2D, TRANSPOSE_CONV,
FULLY_CONNECTED, BATCH_MATMUL.

Prepare checks every shape and option the kernels (kernels/ref/conv.c) index with, computes the
output shape and padding exactly as TFLite does, and refuses what edgeq does not run yet:
quantized activations, and float activations with uint8 weights. Float activations with int8
weights (dynamic-range "hybrid" models, the QD8 path) go to edgeq/ops/qd8.py. fp16 weights reach
prepare already as float32 constants, because a constant DEQUANTIZE is evaluated before its
consumer is prepared.
"""
from __future__ import annotations

import ctypes

import numpy as np

from edgeq.ops import qd8
from edgeq.ops.common import (BROADCAST_DIMS, F32_GEMM_NR, broadcast_shape, broadcast_strides,
                              fused_activation, pack_f32_gemm_weights)
from edgeq.ops.registry import KernelCall, register
from edgeq.runtime import cpu, find_kernel
from edgeq.tflite.schema import BuiltinOp

F32 = np.dtype(np.float32)
INT32_MAX = 2**31 - 1
MATMUL_BATCH_DIMS = 6  # EQ_MATMUL_BATCH_DIMS
assert MATMUL_BATCH_DIMS == BROADCAST_DIMS  # the batch dims are collapsed by broadcast_strides

PADDING_SAME, PADDING_VALID = 0, 1
_QUANTIZED = {np.dtype(np.int8), np.dtype(np.uint8), np.dtype(np.int16)}
_HYBRID_WEIGHTS = {np.dtype(np.int8), np.dtype(np.uint8)}


class ConvParams(ctypes.Structure):
    """Mirror of eq_conv_params (kernels/include/edgeq/params/conv.h)."""

    _fields_ = [(name, ctypes.c_int32) for name in (
        "batch", "in_h", "in_w", "in_c", "out_h", "out_w", "out_c", "k_h", "k_w",
        "stride_h", "stride_w", "dilation_h", "dilation_w", "pad_top", "pad_left",
        "groups", "depth_multiplier")] + [("act_min", ctypes.c_float),
                                          ("act_max", ctypes.c_float),
                                          ("hard_swish", ctypes.c_int32)]  # the kernel sets it


class FcParams(ctypes.Structure):
    """Mirror of eq_fc_params."""

    _fields_ = [("rows", ctypes.c_int32), ("depth", ctypes.c_int32), ("units", ctypes.c_int32),
                ("act_min", ctypes.c_float), ("act_max", ctypes.c_float)]


class MatmulParams(ctypes.Structure):
    """Mirror of eq_matmul_params."""

    _fields_ = [("batch_dims", ctypes.c_int32 * MATMUL_BATCH_DIMS),
                ("lhs_batch", ctypes.c_int32 * MATMUL_BATCH_DIMS),
                ("rhs_batch", ctypes.c_int32 * MATMUL_BATCH_DIMS)] + [
        (name, ctypes.c_int32) for name in (
            "m", "k", "n", "lhs_m_stride", "lhs_k_stride", "rhs_k_stride", "rhs_n_stride")]


# --- shared checks ---------------------------------------------------------------------------

def _describe(t) -> str:
    return f"tensor {t.index} '{t.name}'"


def _check_activation_dtype(ctx, t, what="input"):
    """Float32 activations only; quantized ones get a clear refusal rather than a guess."""
    if t.dtype == F32:
        return
    if t.dtype in _QUANTIZED:
        raise ctx.fail(f"{t.dtype} activations are not supported ({what} {_describe(t)}); "
                       f"only float32 runs")
    raise ctx.fail(f"{what} {_describe(t)} has dtype {t.dtype}; only float32 is supported")


def _check_weights_dtype(ctx, t, what):
    """Weights of a float op: float32, or refused (int8/uint8 weights mean a hybrid model)."""
    if t.dtype == F32:
        return
    if t.dtype in _HYBRID_WEIGHTS:
        raise ctx.fail(f"dynamic-range int8 weights (QD8) are not supported yet: {what} "
                       f"{_describe(t)} is {t.dtype} while the input is float32")
    raise ctx.fail(f"{what} {_describe(t)} has dtype {t.dtype}; only float32 is supported")


def _check_output(ctx):
    """One output, declared float32 (or with a dtype the model leaves to the runtime)."""
    if len(ctx.outputs) != 1:
        raise ctx.fail(f"has {len(ctx.outputs)} outputs; expected 1")
    out = ctx.outputs[0]
    if out.dtype is not None and out.dtype != F32:
        raise ctx.fail(f"output {_describe(out)} is declared {out.dtype} but the op computes "
                       f"float32")


def _check_int32(ctx, **values):
    """Kernel parameters are int32: refuse sizes that would not fit rather than wrap."""
    for name, value in values.items():
        for v in np.ravel(value):
            if not -INT32_MAX - 1 <= int(v) <= INT32_MAX:
                raise ctx.fail(f"{name} {int(v)} does not fit in int32")


def _check_rank(ctx, t, rank, what):
    if len(t.shape) != rank:
        raise ctx.fail(f"{what} {_describe(t)} must have rank {rank}, it has shape "
                       f"{list(t.shape)}")


def _check_bias(ctx, bias, out_c):
    if bias is None:
        return
    if bias.dtype != F32:
        raise ctx.fail(f"bias {_describe(bias)} has dtype {bias.dtype}; expected float32")
    if bias.size != out_c:
        raise ctx.fail(f"bias {_describe(bias)} has {bias.size} elements (shape "
                       f"{list(bias.shape)}) but there are {out_c} output channels")


def _positive_option(ctx, name, default=None):
    value = ctx.options.get(name, default)
    if value is None or int(value) <= 0:
        raise ctx.fail(f"{name} is {value}; it must be > 0")
    if int(value) > INT32_MAX:
        raise ctx.fail(f"{name} {value} is out of range")
    return int(value)


def _out_and_pad(ctx, padding, in_size, k, stride, dilation):
    """(out_size, pad_before) as TFLite's ComputePaddingHeightWidth: C integer division, and
    the padding derived from the output size whatever the padding type."""
    eff = (k - 1) * dilation + 1
    if padding == PADDING_SAME:
        out = (in_size + stride - 1) // stride
    elif padding == PADDING_VALID:
        num = in_size - eff + stride
        out = num // stride if num >= 0 else -((-num) // stride)  # truncates toward zero
    else:
        raise ctx.fail(f"padding {padding} is not SAME (0) or VALID (1)")
    total = max((out - 1) * stride + eff - in_size, 0)
    return out, total // 2


def _spatial(ctx, in_h, in_w, k_h, k_w):
    """Strides, dilations, output size and padding of a forward convolution (conv, depthwise)."""
    padding = int(ctx.options.get("padding", PADDING_SAME))
    s_h, s_w = _positive_option(ctx, "stride_h"), _positive_option(ctx, "stride_w")
    d_h = _positive_option(ctx, "dilation_h_factor", 1)
    d_w = _positive_option(ctx, "dilation_w_factor", 1)
    # A zero PAD folded in by edgeq.graph.graph.fold_padding: the convolution runs over the
    # padded size; padding past the last row/column is implicit (the kernels bound-check the
    # input, and the output size comes from the padded extent).
    top, bottom, left, right = ctx.options.get("explicit_padding", (0, 0, 0, 0))
    padded_h, padded_w = in_h + top + bottom, in_w + left + right
    for what, k, d, size in (("height", k_h, d_h, padded_h), ("width", k_w, d_w, padded_w)):
        if k <= 0:
            raise ctx.fail(f"filter {what} is {k}; it must be > 0")
        if (k - 1) * d + 1 + size > INT32_MAX:
            raise ctx.fail(f"dilated filter {what} {(k - 1) * d + 1} is out of range")
    out_h, pad_top = _out_and_pad(ctx, padding, padded_h, k_h, s_h, d_h)
    out_w, pad_left = _out_and_pad(ctx, padding, padded_w, k_w, s_w, d_w)
    pad_top, pad_left = pad_top + top, pad_left + left
    for what, out, k, d, size in (("height", out_h, k_h, d_h, padded_h),
                                  ("width", out_w, k_w, d_w, padded_w)):
        # TFLite accepts an empty output (VALID, filter just past the input) but fails on the
        # negative size C division gives when the filter overshoots by a stride or more.
        if out < 0:
            raise ctx.fail(f"VALID padding: the filter {what} {k} (dilated to {(k - 1) * d + 1}) "
                           f"is larger than the input {what} {size}; the output {what} would be "
                           f"{out}")
    return (s_h, s_w, d_h, d_w), (out_h, out_w), (pad_top, pad_left)


def _activation(ctx):
    lo, hi = fused_activation(ctx)
    return float(lo), float(hi)


def _index(t):
    return t.index if t is not None else -1


# --- CONV_2D ---------------------------------------------------------------------------------

@register(BuiltinOp.CONV_2D)
def prepare_conv2d(ctx):
    fused = bool(ctx.options.get(FUSED_EPILOGUE))
    if qd8.is_hybrid(ctx, 0, 1) and not fused:
        return qd8.prepare_conv2d(ctx)
    ctx.expect_inputs(2, 5 if fused else 3)
    x, w, bias = ctx.input(0), ctx.input(1), ctx.optional_input(2)
    _check_activation_dtype(ctx, x)
    _check_weights_dtype(ctx, w, "filter")
    _check_output(ctx)
    _check_rank(ctx, x, 4, "input")
    _check_rank(ctx, w, 4, "filter")
    n, in_h, in_w, in_c = x.shape
    out_c, k_h, k_w, group_in = w.shape
    if group_in <= 0:
        raise ctx.fail(f"filter {_describe(w)} has {group_in} input channels (shape "
                       f"{list(w.shape)})")
    if in_c % group_in:
        raise ctx.fail(f"input has {in_c} channels, which is not a multiple of the filter's "
                       f"{group_in} input channels (input {list(x.shape)}, filter "
                       f"{list(w.shape)})")
    groups = in_c // group_in
    if groups == 0:
        raise ctx.fail(f"input has 0 channels but the filter expects {group_in}")
    if out_c % groups:
        raise ctx.fail(f"grouped convolution: {out_c} output channels do not split into "
                       f"{groups} groups (input {in_c} channels, filter {list(w.shape)})")
    _check_bias(ctx, bias, out_c)
    (s_h, s_w, d_h, d_w), (out_h, out_w), (pad_top, pad_left) = _spatial(
        ctx, in_h, in_w, k_h, k_w)
    lo, hi = _activation(ctx)
    ctx.set_output(0, (n, out_h, out_w, out_c), F32)
    params = ConvParams(n, in_h, in_w, in_c, out_h, out_w, out_c, k_h, k_w, s_h, s_w, d_h, d_w,
                        pad_top, pad_left, groups, 1, lo, hi)
    fast = None
    if _constant_or_absent(bias):
        fast = _conv2d_f32_gemm_call(ctx, params, x, w.value, None if bias is None else bias.value)
    if fast is not None:
        return fast
    if fused and n * out_h * out_w * out_c > 0:
        raise ctx.fail("a PRELU / ADD fused into this convolution needs the packed-weight GEMM "
                       "kernels, which do not cover it (edgeq/graph/graph.py "
                       "fuse_activations should have left it unfused)")
    # (an empty output: nothing for the fused ops to do either)
    return KernelCall("conv2d_f32", params, inputs=[x.index, w.index, _index(bias)])


# node.options flag of a CONV_2D into which edgeq/graph/graph.py fuse_activations folded the
# PRELU after it (its alpha then input 3) and/or a residual ADD (the other operand input 4), or
# a HARD_SWISH (FUSED_HARD_SWISH set too). A DEPTHWISE_CONV_2D that absorbed the HARD_SWISH
# after it (graph.py fuse_depthwise_hard_swish) has FUSED_HARD_SWISH alone.
FUSED_EPILOGUE = "edgeq_fused_epilogue"
FUSED_HARD_SWISH = "edgeq_fused_hard_swish"


def _epilogue_inputs(ctx, out_shape):
    """The GEMM kernels' epilogue inputs (kernels/core/f32_drivers.c): [slopes, residual] when
    the graph pass fused a PRELU / ADD into the node, -1 for either one absent; [] if neither.
    Slopes are PRELU's alpha per output channel, zero-padded to whole NR blocks."""
    if not ctx.options.get(FUSED_EPILOGUE):
        return []
    out_c = out_shape[-1]
    alpha, residual = ctx.optional_input(3), ctx.optional_input(4)
    slopes = -1
    if alpha is not None:
        value = np.asarray(ctx.constant(3, "PRELU alpha"))
        if value.dtype != F32 or value.ndim > len(out_shape) or \
                value.size not in (1, out_c) or (value.size > 1 and value.shape[-1] != out_c):
            raise ctx.fail(f"fused PRELU alpha {_describe(alpha)} of shape {list(value.shape)} "
                           f"is not one float32 value per channel of {out_c}")
        padded = np.zeros(-(-out_c // F32_GEMM_NR) * F32_GEMM_NR, F32)
        padded[:out_c] = value.reshape(-1)
        slopes = ctx.add_constant(padded, "prelu_slopes")
    if residual is not None:
        if residual.dtype != F32 or tuple(residual.shape) != tuple(out_shape):
            raise ctx.fail(f"fused ADD operand {_describe(residual)} ({residual.dtype}, shape "
                           f"{list(residual.shape)}) does not match the output "
                           f"{list(out_shape)}")
    return [slopes, _index(residual)]


# Tap pointers of one GEMM tile live on the kernel's stack (EQ_F32_GEMM_MAX_POINTERS for the
# tallest tile, EQ_F32_GEMM_MAX_MR): larger filters run the reference kernel.
IGEMM_MAX_POINTERS, GEMM_MAX_MR = 4096, 8
# A padded copy of the input pays for itself where taps are short (few channels) and the copy
# is small.
PAD_COPY_MAX_CHANNELS, PAD_COPY_MAX_BYTES = 4, 64 << 10
# Depthwise: maps up to 16 wide, up to 512 KiB padded (MobileNets' 7x7 x 960 and 14x14 x 240
# 5x5 layers, whose border pixels are otherwise half the work at twice the cost per tap).
DW_PAD_COPY_MAX_WIDTH, DW_PAD_COPY_MAX_BYTES = 16, 512 << 10


def _padded_input_bytes(p):
    """Bytes of the input with the padding the convolution reads (pad_input in
    kernels/core/f32_drivers.c)."""
    padded_h = (p.out_h - 1) * p.stride_h + (p.k_h - 1) * p.dilation_h + 1
    padded_w = (p.out_w - 1) * p.stride_w + (p.k_w - 1) * p.dilation_w + 1
    return p.batch * padded_h * padded_w * p.in_c * 4


def _constant_or_absent(t):
    return t is None or t.value is not None


def _conv2d_f32_gemm_call(ctx, p, x, w_value, bias_value):
    """The packed-weight GEMM kernels for a one-group convolution with constant weights (and
    bias; None: none or zero): 1x1 stride-1 convolutions multiply the input pixels directly, any
    other size is an indirect GEMM whose taps point at input pixels. None when the reference
    kernel must run. (qd8.py also calls it with weights it dequantized.)"""
    if cpu.reference_only() or p.groups != 1 or w_value is None:
        return None
    depth = p.k_h * p.k_w * p.in_c
    m = p.batch * p.out_h * p.out_w
    if depth == 0 or m == 0 or p.out_c == 0 or p.k_h * p.k_w * GEMM_MAX_MR > IGEMM_MAX_POINTERS:
        return None
    packed = ctx.add_constant(pack_f32_gemm_weights(w_value.reshape(p.out_c, depth), bias_value,
                                                    ctx.empty_constant), "packed_weights")
    epilogue = _epilogue_inputs(ctx, (p.batch, p.out_h, p.out_w, p.out_c))
    # A residual input is an activation: fp16 twins (edgeq/plan/precision.py) would not slice
    # it, so those calls go by names of their own, which have no twin; HARD_SWISH is told by
    # the name too.
    suffix = "_residual" if epilogue and epilogue[1] >= 0 else ""
    if ctx.options.get(FUSED_HARD_SWISH):
        if suffix:
            raise ctx.fail("a fused HARD_SWISH after a fused ADD is not supported")
        suffix = "_hswish"
    inputs = [x.index, packed] + epilogue
    pointwise = (p.k_h, p.k_w, p.stride_h, p.stride_w) == (1, 1, 1, 1) and \
        (p.out_h, p.out_w) == (p.in_h, p.in_w)
    if pointwise:
        return KernelCall("conv2d_f32_gemm" + suffix, p, inputs=inputs)
    # One input channel (a keyword spotter's spectrogram): a direct convolution over the
    # zero-padded input, where the ISA has one (the portable one is only its reference); taps
    # one float long cost the indirect GEMM a pointer load per multiply. It has no fused
    # epilogue beyond the clamp.
    padded = _padded_input_bytes(p)
    direct = find_kernel("conv2d_f32_direct", cpu.allowed())
    if p.in_c == 1 and not epilogue and not suffix and padded <= PAD_COPY_MAX_BYTES and \
            direct and direct[1]:
        return KernelCall("conv2d_f32_direct", p, inputs=[x.index, packed], scratch_bytes=padded)
    # Scratch: the zero row that taps (or whole filter rows) over the padding point at; with
    # few channels and a small input, room for the zero-padded input before it, so that every
    # filter row is one contiguous run (a keyword spotter's 1-channel spectrogram).
    zero_row = p.k_w * p.in_c * 4
    pads = p.pad_top or p.pad_left or padded > p.batch * p.in_h * p.in_w * p.in_c * 4
    if pads and p.in_c <= PAD_COPY_MAX_CHANNELS and padded <= PAD_COPY_MAX_BYTES:
        return KernelCall("conv2d_f32_igemm" + suffix, p, inputs=inputs,
                          scratch_bytes=padded + zero_row)
    return KernelCall("conv2d_f32_igemm" + suffix, p, inputs=inputs, scratch_bytes=zero_row)


# --- DEPTHWISE_CONV_2D -----------------------------------------------------------------------

@register(BuiltinOp.DEPTHWISE_CONV_2D)
def prepare_depthwise_conv2d(ctx):
    if qd8.is_hybrid(ctx, 0, 1):
        if ctx.options.get(FUSED_HARD_SWISH):
            raise ctx.fail("a HARD_SWISH fused into a depthwise convolution with int8 weights "
                           "is not supported (edgeq/graph/graph.py fuse_depthwise_hard_swish "
                           "should have left it unfused)")
        return qd8.prepare_depthwise_conv2d(ctx)
    ctx.expect_inputs(2, 3)
    x, w, bias = ctx.input(0), ctx.input(1), ctx.optional_input(2)
    _check_activation_dtype(ctx, x)
    _check_weights_dtype(ctx, w, "filter")
    _check_output(ctx)
    _check_rank(ctx, x, 4, "input")
    _check_rank(ctx, w, 4, "filter")
    n, in_h, in_w, in_c = x.shape
    one, k_h, k_w, out_c = w.shape
    if one != 1:
        raise ctx.fail(f"filter {_describe(w)} must have shape [1, H, W, C * multiplier], "
                       f"it has {list(w.shape)}")
    # The depth_multiplier option is redundant and LiteRT ignores it (0 or a wrong value run
    # fine there): the multiplier is what the shapes say.
    if in_c == 0:
        if out_c != 0:
            raise ctx.fail(f"input has 0 channels but the filter has {out_c}")
        multiplier = 1
    else:
        if out_c % in_c:
            raise ctx.fail(f"filter has {out_c} channels, which is not a multiple of the "
                           f"input's {in_c} channels (input {list(x.shape)}, filter "
                           f"{list(w.shape)})")
        multiplier = out_c // in_c
    _check_bias(ctx, bias, out_c)
    (s_h, s_w, d_h, d_w), (out_h, out_w), (pad_top, pad_left) = _spatial(
        ctx, in_h, in_w, k_h, k_w)
    lo, hi = _activation(ctx)
    ctx.set_output(0, (n, out_h, out_w, out_c), F32)
    params = ConvParams(n, in_h, in_w, in_c, out_h, out_w, out_c, k_h, k_w, s_h, s_w, d_h, d_w,
                        pad_top, pad_left, 1, multiplier, lo, hi)
    return depthwise_call(params, x.index, w.index, _index(bias),
                          hard_swish=bool(ctx.options.get(FUSED_HARD_SWISH)))


def depthwise_call(params, x_index: int, w_index: int, bias_index: int,
                   hard_swish: bool = False):
    """The float depthwise kernel for checked geometry (also qd8.py's, with weights it
    dequantized on cores where that is cheaper). hard_swish: the kernel ends in the HARD_SWISH
    the graph fused into the node (`_hswish` names: no fp16 twin, which would drop it)."""
    p = params
    suffix = "_hswish" if hard_swish else ""
    if p.depth_multiplier == 1 and p.in_c > 0 and not cpu.reference_only():
        # A zero input row in scratch stands in for the padding; on small maps (where border
        # pixels are many) a zero-padded copy of the input makes every pixel interior.
        zero_row = max(p.in_w, 1) * p.in_c * 4
        padded = _padded_input_bytes(params)
        scratch = zero_row
        if p.out_w <= DW_PAD_COPY_MAX_WIDTH and padded <= DW_PAD_COPY_MAX_BYTES and \
                (p.pad_top or p.pad_left or padded > p.batch * p.in_h * p.in_w * p.in_c * 4):
            scratch += padded
        return KernelCall("depthwise_conv2d_f32_dw" + suffix, params,
                          inputs=[x_index, w_index, bias_index], scratch_bytes=scratch)
    return KernelCall("depthwise_conv2d_f32" + suffix, params,
                      inputs=[x_index, w_index, bias_index])


# --- TRANSPOSE_CONV --------------------------------------------------------------------------

@register(BuiltinOp.TRANSPOSE_CONV)
def prepare_transpose_conv(ctx):
    """Inputs in TFLite's order: output_shape, weights [OC, KH, KW, IC], input, optional bias."""
    ctx.expect_inputs(3, 4)
    shape_t, w, x = ctx.input(0), ctx.input(1), ctx.input(2)
    if shape_t.dtype != np.int32:
        raise ctx.fail(f"output_shape {_describe(shape_t)} has dtype {shape_t.dtype}; TFLite "
                       f"requires int32")
    out_shape = ctx.constant(0, "output_shape")
    if out_shape.ndim != 1 or out_shape.size != 4:
        raise ctx.fail(f"output_shape must be 4 values [N, H, W, C], it is "
                       f"{out_shape.tolist()}")
    padding = int(ctx.options.get("padding", PADDING_SAME))
    s_h, s_w = _positive_option(ctx, "stride_h"), _positive_option(ctx, "stride_w")
    return transpose_conv_call(ctx, x, w, ctx.optional_input(3), tuple(int(v) for v in out_shape),
                               padding, s_h, s_w)


def transpose_conv_call(ctx, x, w, bias, out_shape, padding, s_h, s_w):
    """The checks and the kernel call of a transposed convolution of x by weights
    [OC, KH, KW, IC] to out_shape [N, H, W, C] (TRANSPOSE_CONV, and MediaPipe's
    Convolution2DTransposeBias in edgeq/ops/mediapipe.py)."""
    _check_activation_dtype(ctx, x)
    hybrid = qd8.is_hybrid_tensors(ctx, x, w)
    if not hybrid:
        _check_weights_dtype(ctx, w, "weights")
    _check_output(ctx)
    _check_rank(ctx, x, 4, "input")
    _check_rank(ctx, w, 4, "weights")
    n, in_h, in_w, in_c = x.shape
    out_c, k_h, k_w, w_in = w.shape
    out_n, out_h, out_w, shape_c = out_shape
    if w_in != in_c:
        raise ctx.fail(f"input has {in_c} channels but the weights {list(w.shape)} expect "
                       f"{w_in}")
    if out_n != n:
        raise ctx.fail(f"output_shape {list(out_shape)} has batch {out_n} but the input has "
                       f"{n}")
    if shape_c != out_c:
        raise ctx.fail(f"output_shape {list(out_shape)} has {shape_c} channels but the "
                       f"weights {list(w.shape)} produce {out_c}")
    if out_h < 0 or out_w < 0:
        raise ctx.fail(f"output_shape {list(out_shape)} has a negative dimension")
    _check_bias(ctx, bias, out_c)
    for what, k in (("height", k_h), ("width", k_w)):
        if k <= 0:
            raise ctx.fail(f"weights {what} is {k}; it must be > 0")
    # The kernel indexes output rows and columns shifted by the padding, in int32.
    _check_int32(ctx, output_height_with_filter_and_stride=out_h + k_h + s_h,
                 output_width_with_filter_and_stride=out_w + k_w + s_w)
    # TFLite pads as if a forward convolution ran from the output back to the input, and
    # insists that this convolution would give back the input's size.
    back_h, pad_top = _out_and_pad(ctx, padding, out_h, k_h, s_h, 1)
    back_w, pad_left = _out_and_pad(ctx, padding, out_w, k_w, s_w, 1)
    if (back_h, back_w) != (in_h, in_w):
        name = "SAME" if padding == PADDING_SAME else "VALID"
        raise ctx.fail(f"output_shape {list(out_shape)} does not fit the input "
                       f"{list(x.shape)}: with {name} padding, strides {s_h}x{s_w} and a "
                       f"{k_h}x{k_w} filter it maps back to {back_h}x{back_w}, not "
                       f"{in_h}x{in_w}")
    lo, hi = _activation(ctx)
    ctx.set_output(0, (n, out_h, out_w, out_c), F32)
    params = ConvParams(n, in_h, in_w, in_c, out_h, out_w, out_c, k_h, k_w, s_h, s_w, 1, 1,
                        pad_top, pad_left, 1, 1, lo, hi)
    if hybrid:
        return qd8.prepare_transpose_conv(ctx, x, w, bias, params)
    # Packed weights vectorize over output channels; with fewer than one block of them (a
    # segmentation head's single channel) the unpacked kernels' dot products over the input
    # channels do better.
    if not cpu.reference_only() and w.value is not None and _constant_or_absent(bias) and \
            (out_c >= DECONV_OC_BLOCK or in_c < DECONV_OC_BLOCK):
        packed = ctx.add_constant(pack_deconv_weights(w.value), "packed_weights")
        b = ctx.add_constant(pad_deconv_channels(bias.value if bias is not None else None,
                                                 out_c), "packed_bias")
        return KernelCall("transpose_conv2d_f32_packed", params, inputs=[x.index, packed, b])
    return KernelCall("transpose_conv2d_f32", params, inputs=[x.index, w.index, _index(bias)])


DECONV_OC_BLOCK = 8  # EQ_DECONV_OC_BLOCK (kernels/include/edgeq/params/conv.h)


def pack_deconv_weights(w: np.ndarray) -> np.ndarray:
    """Weights [OC, KH, KW, IC] -> the packed float32 [KH * KW][IC][ocp] of params/conv.h."""
    out_c, k_h, k_w, in_c = w.shape
    ocp = -(-out_c // DECONV_OC_BLOCK) * DECONV_OC_BLOCK
    packed = np.zeros((k_h * k_w, in_c, ocp), np.float32)
    packed[:, :, :out_c] = np.asarray(w, np.float32).transpose(1, 2, 3, 0).reshape(
        k_h * k_w, in_c, out_c)
    return packed


def pad_deconv_channels(values, out_c: int) -> np.ndarray:
    """A per-output-channel vector (bias, scales; None = zeros) padded to ocp."""
    ocp = -(-out_c // DECONV_OC_BLOCK) * DECONV_OC_BLOCK
    padded = np.zeros(ocp, np.float32)
    if values is not None:
        padded[:out_c] = np.asarray(values, np.float32).reshape(out_c)
    return padded


# --- FULLY_CONNECTED -------------------------------------------------------------------------

@register(BuiltinOp.FULLY_CONNECTED)
def prepare_fully_connected(ctx):
    if qd8.is_hybrid(ctx, 0, 1):
        return qd8.prepare_fully_connected(ctx)
    ctx.expect_inputs(2, 3)
    fmt = int(ctx.options.get("weights_format", 0))
    if fmt != 0:
        raise ctx.fail(f"weights_format {fmt} (shuffled) is not supported; only DEFAULT (0)")
    x, w, bias = ctx.input(0), ctx.input(1), ctx.optional_input(2)
    _check_activation_dtype(ctx, x)
    _check_weights_dtype(ctx, w, "weights")
    _check_output(ctx)
    _check_rank(ctx, w, 2, "weights")
    units, depth = w.shape
    if depth <= 0:
        raise ctx.fail(f"weights {_describe(w)} have shape {list(w.shape)}; the input depth "
                       f"must be > 0")
    _check_bias(ctx, bias, units)
    if x.size % depth:
        raise ctx.fail(f"input shape {list(x.shape)} ({x.size} elements) is not a whole number "
                       f"of rows of the weights' depth {depth}")
    rows = x.size // depth
    _check_int32(ctx, rows=rows)
    if ctx.options.get("keep_num_dims", False):
        if not x.shape or x.shape[-1] != depth:
            raise ctx.fail(f"keep_num_dims: the input's last dimension (shape {list(x.shape)}) "
                           f"must equal the weights' depth {depth}")
        out_shape = tuple(x.shape[:-1]) + (units,)
    else:
        out_shape = (rows, units)
    lo, hi = _activation(ctx)
    ctx.set_output(0, out_shape, F32)
    params = FcParams(rows, depth, units, lo, hi)
    if not cpu.reference_only() and w.value is not None and _constant_or_absent(bias) and \
            rows > 0 and units > 0:
        packed = ctx.add_constant(pack_f32_gemm_weights(
            w.value, None if bias is None else bias.value, ctx.empty_constant), "packed_weights")
        return KernelCall("fully_connected_f32_gemm", params, inputs=[x.index, packed])
    return KernelCall("fully_connected_f32", params, inputs=[x.index, w.index, _index(bias)])


# --- BATCH_MATMUL ----------------------------------------------------------------------------

@register(BuiltinOp.BATCH_MATMUL)
def prepare_batch_matmul(ctx):
    if qd8.is_hybrid(ctx, 0, 1):
        return qd8.prepare_batch_matmul(ctx)
    ctx.expect_inputs(2)
    lhs, rhs = ctx.input(0), ctx.input(1)
    _check_activation_dtype(ctx, lhs, "lhs")
    _check_weights_dtype(ctx, rhs, "rhs")
    _check_output(ctx)
    for t, what in ((lhs, "lhs"), (rhs, "rhs")):
        if len(t.shape) < 2:
            raise ctx.fail(f"{what} {_describe(t)} must have rank >= 2, it has shape "
                           f"{list(t.shape)}")
    adj_x = bool(ctx.options.get("adj_x", False))
    adj_y = bool(ctx.options.get("adj_y", False))
    l_rows, l_cols = lhs.shape[-2:]
    r_rows, r_cols = rhs.shape[-2:]
    m, k = (l_cols, l_rows) if adj_x else (l_rows, l_cols)
    k_rhs, n = (r_cols, r_rows) if adj_y else (r_rows, r_cols)
    if k != k_rhs:
        raise ctx.fail(f"inner dimensions differ: lhs {list(lhs.shape)} (adj_x={adj_x}) gives "
                       f"{k}, rhs {list(rhs.shape)} (adj_y={adj_y}) gives {k_rhs}")
    batch = broadcast_shape(ctx, lhs.shape[:-2], rhs.shape[:-2])
    collapsed = broadcast_strides(batch, lhs.shape[:-2], rhs.shape[:-2])
    if collapsed is None:
        raise ctx.fail(f"batch dims of {list(lhs.shape)} and {list(rhs.shape)} need more than "
                       f"{MATMUL_BATCH_DIMS} dims after collapsing")
    dims, (sl, sr) = collapsed
    _check_int32(ctx, batch_dims=dims, lhs_batch_strides=sl, rhs_batch_strides=sr)
    ctx.set_output(0, tuple(batch) + (m, n), F32)
    lhs_m, lhs_k = (1, m) if adj_x else (k, 1)
    rhs_k, rhs_n = (1, k) if adj_y else (n, 1)
    arr = ctypes.c_int32 * MATMUL_BATCH_DIMS
    params = MatmulParams(arr(*dims), arr(*sl), arr(*sr), m, k, n, lhs_m, lhs_k, rhs_k, rhs_n)
    return KernelCall("batch_matmul_f32", params)
