"""MediaPipe's custom ops: the ones its published .tflite models carry. LiteRT runs them only
through its XNNPack delegate; its own kernels refuse them ("Encountered unresolved custom op"),
so a LiteRT build or run without XNNPack cannot load such a model.

Convolution2DTransposeBias (selfie segmentation, hair segmentation, ...): a transposed
convolution with a bias, its options packed as a raw C struct in custom_options.
"""
from __future__ import annotations

import struct

from edgeq.ops.conv import PADDING_SAME, PADDING_VALID, transpose_conv_call
from edgeq.ops.registry import register

# custom_options of Convolution2DTransposeBias: the bytes of TFLite's C struct
# TfLiteTransposeConvParams { TfLitePadding padding; int stride_width; int stride_height; },
# little-endian int32s, where TfLitePadding is 0 unknown, 1 SAME, 2 VALID.
_OPTIONS = struct.Struct("<iii")
_C_PADDING = {1: PADDING_SAME, 2: PADDING_VALID}


def transpose_conv_bias_options(ctx) -> tuple[int, int, int]:
    """(padding as the builtin ops spell it, stride_h, stride_w), checked."""
    raw = ctx.node.custom_options
    if raw is None or len(raw) < _OPTIONS.size:
        got = "none" if raw is None else f"{len(raw)} bytes"
        raise ctx.fail(f"custom_options must hold padding, stride_width and stride_height "
                       f"({_OPTIONS.size} bytes of int32), the model has {got}")
    padding, stride_w, stride_h = _OPTIONS.unpack_from(raw)
    if padding not in _C_PADDING:
        raise ctx.fail(f"custom_options padding is {padding}; expected 1 (SAME) or 2 (VALID)")
    for what, value in (("stride_width", stride_w), ("stride_height", stride_h)):
        if value <= 0:
            raise ctx.fail(f"custom_options {what} is {value}; it must be > 0")
    return _C_PADDING[padding], stride_h, stride_w


def transposed_size(padding: int, in_size: int, k: int, stride: int) -> int:
    """Output length of a transposed convolution (Keras' conv2d_transpose without
    output_padding): SAME gives in * stride, VALID in * stride + max(k - stride, 0)."""
    if padding == PADDING_SAME:
        return in_size * stride
    return in_size * stride + max(k - stride, 0)


@register("Convolution2DTransposeBias")
def prepare_convolution2d_transpose_bias(ctx):
    """Inputs: input [N, H, W, IC], weights [OC, KH, KW, IC], bias [OC]."""
    ctx.expect_inputs(3)
    x, w, bias = ctx.input(0), ctx.input(1), ctx.input(2)
    padding, s_h, s_w = transpose_conv_bias_options(ctx)
    if len(x.shape) != 4 or len(w.shape) != 4:
        raise ctx.fail(f"input {list(x.shape)} and weights {list(w.shape)} must both be 4-D "
                       f"([N, H, W, C] and [OC, KH, KW, IC])")
    n, in_h, in_w, _ = x.shape
    out_c, k_h, k_w, _ = w.shape
    out_shape = (n, transposed_size(padding, in_h, k_h, s_h),
                 transposed_size(padding, in_w, k_w, s_w), out_c)
    return transpose_conv_call(ctx, x, w, bias, out_shape, padding, s_h, s_w)
