"""Dynamic-range ("hybrid", QD8) convolution and matrix ops: float32 activations, int8
per-channel weights, float32 outputs, as TensorFlow's converter writes them with
Optimize.DEFAULT.

LiteRT runs these through XNNPack, which quantizes the activations at run time (per row for
FULLY_CONNECTED / BATCH_MATMUL, per image for CONV_2D and DEPTHWISE_CONV_2D) and multiplies in
int8; edgeq does the same (kernels/include/edgeq/params/qd8.h has the arithmetic and the packed
layout, kernels/ref/qd8.c the reference kernels). Measured on one-op models: per-image
quantization reproduces LiteRT's depthwise results to float rounding, while dequantizing the
weights to float (the other plausible reading) is off by ~0.1, so depthwise is QD8 too,
except on plain-NEON ARM cores, where float is cheaper and at least as accurate
(runs_float_layers).

conv.py hands an op here, from the top of its prepare, when its weights are int8; the checks
use conv.py's helpers.
Weights are packed once per allocate_tensors (cached across re-allocations of the same graph).
"""
from __future__ import annotations

import ctypes

import numpy as np

from edgeq.ops import conv
from edgeq.ops.common import FLT_MAX
from edgeq.ops.registry import KernelCall
from edgeq.runtime.executor import pack_qd8_gemm

I8 = np.dtype(np.int8)
F32 = np.dtype(np.float32)

NR, KR = 16, 4  # EQ_QD8_NR, EQ_QD8_KR
# int32 accumulators: |x_q * w| <= 128 * 128 and the zero-point term is as large again, so the
# exact sum fits int32 up to this depth (also for VNNI's u8 form, 255 * 128 per product).
MAX_DEPTH = 1 << 16
QUANT_BYTES = 8  # sizeof(eq_qd8_row_quant)
# Plain NEON runs non-pointwise QD8 convolutions shallower than this in float (prepare_conv2d).
FLOAT_CONV_MAX_DEPTH = 64
MAX_DW_TAPS = 512  # EQ_QD8_MAX_DW_TAPS


class FcParams(ctypes.Structure):
    """Mirror of eq_qd8_fc_params."""

    _fields_ = [(n, ctypes.c_int32) for n in ("rows", "depth", "units", "kc")] + [
        ("act_min", ctypes.c_float), ("act_max", ctypes.c_float)]


class ConvParams(ctypes.Structure):
    """Mirror of eq_qd8_conv_params."""

    _fields_ = [(n, ctypes.c_int32) for n in (
        "batch", "in_h", "in_w", "in_c", "out_h", "out_w", "out_c", "k_h", "k_w",
        "stride_h", "stride_w", "dilation_h", "dilation_w", "pad_top", "pad_left",
        "kc", "depth_multiplier")] + [("act_min", ctypes.c_float),
                                      ("act_max", ctypes.c_float)]


def _round_up(n: int, m: int) -> int:
    return (n + m - 1) // m * m


def _align64(n: int) -> int:
    return _round_up(n, 64)


# Interpreter(quantize="qd8") quantizes float weights of at least this many elements, as
# TensorFlow's converter does with Optimize.DEFAULT (smaller ones stay float there too).
QUANTIZE_MIN_ELEMENTS = 1024


def _quantizing(ctx, x, w) -> bool:
    """Interpreter(quantize="qd8") and float weights the QD8 path can take; anything else
    (grouped convs, adj_x, ...) stays on the float path."""
    if not (getattr(ctx.graph, "quantize", None) == "qd8" and w.dtype == F32
            and w.is_constant and w.size >= QUANTIZE_MIN_ELEMENTS):
        return False
    op, ws = ctx.node.op_name, w.shape
    if op == "CONV_2D":
        return len(ws) == 4 and len(x.shape) == 4 and ws[3] == x.shape[3]
    if op == "DEPTHWISE_CONV_2D":
        return len(ws) == 4 and ws[1] * ws[2] <= MAX_DW_TAPS
    if op == "FULLY_CONNECTED":
        return len(ws) == 2 and int(ctx.options.get("weights_format", 0)) == 0
    if op in ("TRANSPOSE_CONV", "Convolution2DTransposeBias"):
        return len(ws) == 4
    if op == "BATCH_MATMUL":
        return (not ctx.options.get("adj_x", False) and len(ws) >= 2
                and all(d == 1 for d in ws[:-2]))
    return False


def is_hybrid(ctx, x_index: int, w_index: int) -> bool:
    """True when the op has float32 activations and int8 weights, or float weights that
    Interpreter(quantize="qd8") turns into int8 ones (conv.py's hook)."""
    if len(ctx.inputs) <= max(x_index, w_index):
        return False
    return is_hybrid_tensors(ctx, ctx.inputs[x_index], ctx.inputs[w_index])


def is_hybrid_tensors(ctx, x, w) -> bool:
    """is_hybrid for the activation and weight tensors themselves."""
    return (x is not None and w is not None and x.dtype == F32
            and (w.dtype == I8 or _quantizing(ctx, x, w)))


def quantize_weights(values: np.ndarray, channel_dim: int):
    """Symmetric per-channel int8, as the converter writes them: scale = max|w| / 127 per
    channel (1 for an all-zero channel), w_q = round(w / scale), halves away from zero."""
    axes = tuple(d for d in range(values.ndim) if d != channel_dim)
    peak = np.max(np.abs(values), axis=axes).astype(np.float32)
    scales = np.where(peak > 0, peak / np.float32(127), np.float32(1)).astype(np.float32)
    shape = [1] * values.ndim
    shape[channel_dim] = -1
    v = values / scales.reshape(shape)
    q = np.clip(np.sign(v) * np.floor(np.abs(v) + 0.5), -127, 127).astype(np.int8)
    return q, scales


def int8_weights(ctx, w, channels: int, channel_dim: int):
    """(int8 values, per-channel float32 scales) of input 1: the model's own int8 weights, or
    float ones quantized here (Interpreter(quantize="qd8"))."""
    if w.dtype == I8:
        return ctx.constant(1, "weights"), weight_scales(ctx, w, channels, channel_dim)
    return quantize_weights(np.asarray(ctx.constant(1, "weights"), np.float32), channel_dim)


def weight_scales(ctx, w, channels: int, channel_dim: int) -> np.ndarray:
    """Per-channel float32 scales of symmetric int8 weights (a per-tensor scale broadcast)."""
    q = w.quantization
    what = f"weights tensor {w.index} '{w.name}'"
    if q is None or len(q.scale) == 0:
        raise ctx.fail(f"int8 {what} has no quantization scale")
    scales = np.asarray(q.scale, np.float32)
    if len(scales) not in (1, channels):
        raise ctx.fail(f"int8 {what} has {len(scales)} scales for {channels} output channels")
    if len(scales) > 1 and int(q.quantized_dimension) != channel_dim:
        raise ctx.fail(f"int8 {what} is quantized along dimension {q.quantized_dimension}; "
                       f"per-channel weights must be quantized along dimension {channel_dim}")
    if not np.all(np.isfinite(scales)) or np.any(scales < 0):
        raise ctx.fail(f"int8 {what} has a negative or non-finite scale")
    zero_points = np.asarray(q.zero_point, np.int64)
    if np.any(zero_points != 0):
        raise ctx.fail(f"int8 {what} has a non-zero zero point; hybrid weights are symmetric")
    return np.broadcast_to(scales, (channels,)).astype(np.float32)


def _bias_values(ctx, bias, channels: int) -> np.ndarray:
    """The bias, checked, as packed beside the weights (so it must be constant)."""
    if bias is None:
        return np.zeros(channels, np.float32)
    conv._check_bias(ctx, bias, channels)
    if bias.value is None:
        raise ctx.fail(f"bias tensor {bias.index} '{bias.name}' must be constant with int8 "
                       f"(QD8) weights")
    return np.asarray(bias.value, np.float32).reshape(channels)


def pack_gemm_weights(w: np.ndarray, scales: np.ndarray, bias: np.ndarray,
                      kr: int = KR, empty=np.empty) -> np.ndarray:
    """[N, K] int8 weights -> the packed blob of params/qd8.h (uint8), kr consecutive k per
    channel (4: the c4 layout, 8: c8); kernels/core/pack.c writes it block by block, into
    empty(shape, dtype) (prepare passes ctx.empty_constant)."""
    n, k = w.shape
    kc, blocks = _round_up(k, kr), -(-n // NR)
    out = empty((blocks * NR * (4 + kc + 8),), np.uint8)
    scales, bias = (np.ascontiguousarray(np.broadcast_to(np.asarray(v, np.float32).reshape(-1),
                                                         (n,))) for v in (scales, bias))
    pack_qd8_gemm(np.ascontiguousarray(w, np.int8).reshape(-1), scales, bias, n, k, kr, out)
    return out


def _cached_constant(ctx, key, make) -> int:
    """A packed constant made once per graph and weight tensor (allocate_tensors re-runs
    prepare after every resize; the weights do not change)."""
    cache = ctx.graph.__dict__.setdefault("_qd8_packed", {})
    if key not in cache:
        cache[key] = ctx.add_constant(make(), key[0])
    return cache[key]


def gemm_layout(kernel: str):
    """(kernel name, KR) for a QD8 GEMM op: the c8 layout when the best c8 kernel this process
    may run needs features the best c4 one does not (smmla), else c4. Asked once per prepare,
    like the kernel lookup itself."""
    from edgeq.runtime import cpu
    from edgeq.runtime.executor import find_kernel

    allowed = cpu.allowed()
    c4, c8 = find_kernel(kernel, allowed), find_kernel(kernel + "_c8", allowed)
    if c8 is not None and c8[1] & ~c4[1]:
        return kernel + "_c8", 8
    return kernel, KR


def _cached_constant_value(ctx, key, make) -> np.ndarray:
    """A prepare-time array made once per graph and weight tensor (not itself a tensor)."""
    cache = ctx.graph.__dict__.setdefault("_qd8_values", {})
    if key not in cache:
        cache[key] = make()
    return cache[key]


def _packed(ctx, w, w2d, scales, bias_values, kind: str, kr: int) -> int:
    key = (kind, ctx.node.index, w.index, kr)
    return _cached_constant(ctx, key, lambda: pack_gemm_weights(w2d, scales, bias_values, kr,
                                                                ctx.empty_constant))


def _fc_call(ctx, x_index: int, rows: int, depth: int, units: int, packed_fn, lo, hi):
    """The fully_connected_qd8 node over `rows` rows of `depth` (FC, BATCH_MATMUL, pointwise
    conv); packed_fn(kr) packs the weights in the chosen layout."""
    name, kr = gemm_layout("fully_connected_qd8")
    kc = _round_up(depth, kr)
    conv._check_int32(ctx, rows=rows * kc)
    return KernelCall(name, FcParams(rows, depth, units, kc, lo, hi),
                      inputs=[x_index, packed_fn(kr)],
                      scratch_bytes=_align64(rows * QUANT_BYTES) + rows * kc)


def _check_depth(ctx, depth: int):
    if depth > MAX_DEPTH:
        raise ctx.fail(f"depth {depth} exceeds {MAX_DEPTH}, the most the int8 kernels "
                       f"accumulate exactly in int32")


# --- FULLY_CONNECTED -----------------------------------------------------------------------

def prepare_fully_connected(ctx):
    ctx.expect_inputs(2, 3)
    fmt = int(ctx.options.get("weights_format", 0))
    if fmt != 0:
        raise ctx.fail(f"weights_format {fmt} (shuffled) is not supported; only DEFAULT (0)")
    x, w, bias = ctx.input(0), ctx.input(1), ctx.optional_input(2)
    conv._check_output(ctx)
    conv._check_rank(ctx, w, 2, "weights")
    units, depth = w.shape
    if depth <= 0 or x.size % depth:
        raise ctx.fail(f"input shape {list(x.shape)} is not a whole number of rows of the "
                       f"weights' depth {depth} (weights {list(w.shape)})")
    _check_depth(ctx, depth)
    wq, scales = int8_weights(ctx, w, units, 0)
    rows = x.size // depth
    if ctx.options.get("keep_num_dims", False):
        if x.shape[-1] != depth:
            raise ctx.fail(f"keep_num_dims: the input's last dimension (shape {list(x.shape)}) "
                           f"must equal the weights' depth {depth}")
        ctx.set_output(0, tuple(x.shape[:-1]) + (units,), F32)
    else:
        ctx.set_output(0, (rows, units), F32)
    bias_values = _bias_values(ctx, bias, units)
    lo, hi = conv._activation(ctx)
    return _fc_call(ctx, x.index, rows, depth, units,
                    lambda kr: _packed(ctx, w, wq, scales, bias_values, "fc_packed", kr),
                    lo, hi)


def prepare_batch_matmul(ctx):
    """BATCH_MATMUL with a constant int8 rhs: an FC over the lhs rows (rhs batch dims all 1)."""
    lhs, rhs = ctx.input(0), ctx.input(1)
    if ctx.options.get("adj_x", False):
        raise ctx.fail("adj_x with int8 (QD8) rhs is not supported")
    if not rhs.is_constant:
        raise ctx.fail(f"int8 rhs tensor {rhs.index} '{rhs.name}' must be constant")
    if len(rhs.shape) < 2 or any(d != 1 for d in rhs.shape[:-2]):
        raise ctx.fail(f"int8 rhs {list(rhs.shape)} must be 2-D (or have batch dims of 1)")
    if len(lhs.shape) < 2:
        raise ctx.fail(f"lhs {list(lhs.shape)} must have rank >= 2")
    adj_y = bool(ctx.options.get("adj_y", False))
    r_rows, r_cols = rhs.shape[-2:]
    k, n = (r_cols, r_rows) if adj_y else (r_rows, r_cols)
    if lhs.shape[-1] != k or k <= 0:
        raise ctx.fail(f"inner dimensions differ: lhs {list(lhs.shape)}, rhs {list(rhs.shape)} "
                       f"(adj_y={adj_y})")
    _check_depth(ctx, k)
    conv._check_output(ctx)
    # Per-channel scales run along the output dim n: the rhs' last dim, or the one before it.
    rq, scales = int8_weights(ctx, rhs, n, len(rhs.shape) - (2 if adj_y else 1))
    rows = lhs.size // k
    ctx.set_output(0, tuple(lhs.shape[:-1]) + (n,), F32)
    as_nk = rq.reshape(r_rows, r_cols) if adj_y else rq.reshape(r_rows, r_cols).T

    zeros = np.zeros(n, np.float32)
    return _fc_call(ctx, lhs.index, rows, k, n,
                    lambda kr: _packed(ctx, rhs, as_nk, scales, zeros, "bmm_packed", kr),
                    -FLT_MAX, FLT_MAX)


# --- CONV_2D ---------------------------------------------------------------------------------

def _geometry(ctx, filter_shape_ok, out_c_of):
    """The eq_conv_params of a forward convolution, checked as conv.py checks the float op."""
    ctx.expect_inputs(2, 3)
    x, w = ctx.input(0), ctx.input(1)
    conv._check_output(ctx)
    conv._check_rank(ctx, x, 4, "input")
    conv._check_rank(ctx, w, 4, "filter")
    n, in_h, in_w, in_c = x.shape
    if not filter_shape_ok(in_c, w.shape):
        raise ctx.fail(f"filter {list(w.shape)} does not fit the input {list(x.shape)}")
    out_c, k_h, k_w = out_c_of(w.shape), w.shape[1], w.shape[2]
    (s_h, s_w, d_h, d_w), (out_h, out_w), (pad_top, pad_left) = conv._spatial(
        ctx, in_h, in_w, k_h, k_w)
    lo, hi = conv._activation(ctx)
    ctx.set_output(0, (n, out_h, out_w, out_c), F32)
    return conv.ConvParams(n, in_h, in_w, in_c, out_h, out_w, out_c, k_h, k_w, s_h, s_w, d_h,
                           d_w, pad_top, pad_left, 1, out_c // max(in_c, 1), lo, hi)


def prepare_conv2d(ctx):
    # Grouped convolutions are refused (shape check: the filter takes every input channel).
    g = _geometry(ctx, lambda in_c, ws: ws[3] == in_c and in_c > 0, lambda ws: ws[0])
    x, w, bias = ctx.input(0), ctx.input(1), ctx.optional_input(2)
    depth = g.k_h * g.k_w * g.in_c
    _check_depth(ctx, depth)
    wq, scales = int8_weights(ctx, w, g.out_c, 0)
    bias_values = _bias_values(ctx, bias, g.out_c)

    def packed(kr):
        return _packed(ctx, w, wq.reshape(g.out_c, depth), scales, bias_values, "conv_packed",
                       kr)

    if g.k_h == g.k_w == 1 and g.stride_h == g.stride_w == 1 and \
            (g.out_h, g.out_w) == (g.in_h, g.in_w):
        # A pointwise conv is an FC over the pixels, and LiteRT quantizes it that way: per
        # pixel, not per image (measured on the shared MobileNetV2: per-pixel rows bring edgeq
        # within LiteRT's own rounding noise of its output, per-image rows do not).
        return _fc_call(ctx, x.index, g.batch * g.in_h * g.in_w, g.in_c, g.out_c, packed,
                        g.act_min, g.act_max)
    if depth < FLOAT_CONV_MAX_DEPTH and runs_float_layers():
        # Plain NEON: below this depth the smull/smlal loop does not earn back the per-image
        # quantization, the im2col of int8 runs and the int epilogue (ds_cnn_kws' 10x4 first
        # layer, depth 40: 147k instructions against the float kernel's 140k on the A72), so
        # the float kernel runs on the dequantized weights, as the depthwise convs do there.
        flt = conv.ConvParams.from_buffer_copy(g)
        flt.depth_multiplier = 1
        fast = conv._conv2d_f32_gemm_call(
            ctx, flt, x, _cached_constant_value(ctx, ("conv", ctx.node.index, w.index, "dequantized"),
                                              lambda: wq.astype(np.float32) * scales.reshape(-1, 1, 1, 1)),
            _bias_values(ctx, bias, g.out_c))
        if fast is not None:
            return fast
    name, kr = gemm_layout("conv2d_qd8")
    kc = _round_up(depth, kr)
    image = g.in_h * g.in_w * g.in_c
    # The image framed by its zero point as far as the filter reaches, so that im2col reads
    # every patch without bounds checks (qd8_framed_bytes in kernels/ref/qd8.c).
    framed_h = max(g.pad_top + g.in_h, (g.out_h - 1) * g.stride_h + (g.k_h - 1) * g.dilation_h + 1)
    framed_w = max(g.pad_left + g.in_w, (g.out_w - 1) * g.stride_w + (g.k_w - 1) * g.dilation_w + 1)
    scratch = (_align64(QUANT_BYTES) + _align64(image) + _align64(framed_h * framed_w * g.in_c)
               + g.out_h * g.out_w * kc)
    params = ConvParams(g.batch, g.in_h, g.in_w, g.in_c, g.out_h, g.out_w, g.out_c, g.k_h,
                        g.k_w, g.stride_h, g.stride_w, g.dilation_h, g.dilation_w, g.pad_top,
                        g.pad_left, kc, 1, g.act_min, g.act_max)
    return KernelCall(name, params, inputs=[x.index, packed(kr)], scratch_bytes=scratch)


# --- DEPTHWISE_CONV_2D -----------------------------------------------------------------------

def runs_float_layers() -> bool:
    """True where a QD8 model's depthwise convs, and its convolutions shallower than
    FLOAT_CONV_MAX_DEPTH that are not pointwise, run as float ones on their dequantized weights
    (w_q * scale): on ARM cores without sdot, whose QD8 GEMM is the plain NEON one. There the
    QD8 depthwise (a grid pass over the image, then float FMAs and a per-channel epilogue) costs
    about twice the float kernel's guest instructions, and with it the model's QD8 would cost
    more than its fp32 (benchmarks/README.md, "QD8 below fp32 on the A53/A72"); skipping the
    activation rounding keeps the model closer to the fp32 one than LiteRT's QD8 is
    (tests/test_qd8_models.py checks that bound). Elsewhere these layers stay QD8, as LiteRT
    runs them."""
    from edgeq.runtime import cpu
    from edgeq.runtime.executor import find_kernel

    if cpu.reference_only():
        return False
    found = find_kernel("fully_connected_qd8", cpu.allowed())
    return found is not None and found[1] == cpu.FEATURES["neon"]


def prepare_depthwise_conv2d(ctx):
    # As for float, the multiplier is what the shapes say (LiteRT ignores the option).
    g = _geometry(ctx, lambda in_c, ws: ws[0] == 1 and in_c > 0 and ws[3] % in_c == 0,
                  lambda ws: ws[3])
    x, w, bias = ctx.input(0), ctx.input(1), ctx.optional_input(2)
    wq, scales = int8_weights(ctx, w, g.out_c, 3)
    taps = g.k_h * g.k_w
    if taps > MAX_DW_TAPS:
        raise ctx.fail(f"filter {g.k_h}x{g.k_w} has more than {MAX_DW_TAPS} taps, the most the "
                       f"int8 depthwise kernels sum exactly")
    key = ("dw", ctx.node.index, w.index)
    if g.depth_multiplier == 1 and runs_float_layers():
        _bias_values(ctx, bias, g.out_c)  # checked as below; the float kernel reads the tensor
        filt = _cached_constant(ctx, key + ("dequantized",), lambda: np.ascontiguousarray(
            (wq.reshape(1, g.k_h, g.k_w, g.out_c).astype(np.float32) * scales)))
        return conv.depthwise_call(g, x.index, filt, conv._index(bias))
    # Weights as floats: the kernels sum exactly on the integer grid (params/qd8.h).
    filt = _cached_constant(ctx, key + ("weights",), lambda: np.ascontiguousarray(
        wq.reshape(taps, g.out_c).astype(np.float32)))
    s = _cached_constant(ctx, key + ("scales",), lambda: scales)
    b = _cached_constant(ctx, key + ("bias",), lambda: _bias_values(ctx, bias, g.out_c))
    params = ConvParams(g.batch, g.in_h, g.in_w, g.in_c, g.out_h, g.out_w, g.out_c, g.k_h,
                        g.k_w, g.stride_h, g.stride_w, g.dilation_h, g.dilation_w, g.pad_top,
                        g.pad_left, 0, g.depth_multiplier, g.act_min,
                        g.act_max)
    return KernelCall("depthwise_conv2d_qd8", params, inputs=[x.index, filt, s, b],
                      scratch_bytes=4 * g.in_h * g.in_w * g.in_c)


# --- TRANSPOSE_CONV --------------------------------------------------------------------------

def prepare_transpose_conv(ctx, x, w, bias, params):
    """The transposed convolution of conv.transpose_conv_call (geometry checked there, params
    its eq_conv_params) with int8 weights [OC, KH, KW, IC]. Each image is quantized as one row;
    the sums are int32 (kernels/ref/conv.c transpose_conv2d_qd8), or, where no output channel
    can reach 2^24 (255 * sum |w| below it), float sums on the integer grid, which are exact and
    run on the packed-weight kernels (transpose_conv2d_qd8_grid)."""
    from edgeq.runtime import cpu

    out_c, k_h, k_w, in_c = w.shape
    taps = k_h * k_w
    _check_depth(ctx, taps * in_c)
    wq, scales = int8_weights(ctx, w, out_c, 0)  # input 1 in both ops that get here
    key = ("deconv", ctx.node.index, w.index)
    image = params.in_h * params.in_w * params.in_c
    bound = 255 * int(np.abs(wq.astype(np.int64)).reshape(out_c, -1).sum(axis=1).max(initial=0))
    if not cpu.reference_only() and bound < (1 << 24):
        packed = _cached_constant(ctx, key + ("packed",), lambda: conv.pack_deconv_weights(wq))
        b = _cached_constant(ctx, key + ("padded bias",), lambda: conv.pad_deconv_channels(
            _bias_values(ctx, bias, out_c), out_c))
        s = _cached_constant(ctx, key + ("padded scales",),
                             lambda: conv.pad_deconv_channels(scales, out_c))
        return KernelCall("transpose_conv2d_qd8_grid", params, inputs=[x.index, packed, b, s],
                          scratch_bytes=_align64(image) + 4 * image)
    weights = _cached_constant(ctx, key + ("weights",), lambda: np.ascontiguousarray(wq))
    sums = _cached_constant(ctx, key + ("sums",), lambda: np.ascontiguousarray(
        wq.astype(np.int32).sum(axis=3, dtype=np.int32).reshape(out_c, taps)))
    s = _cached_constant(ctx, key + ("scales",), lambda: scales)
    b = _cached_constant(ctx, key + ("bias",), lambda: _bias_values(ctx, bias, out_c))
    return KernelCall("transpose_conv2d_qd8", params, inputs=[x.index, weights, sums, s, b],
                      scratch_bytes=_align64(image))
