"""Pooling (AVERAGE/MAX/L2_POOL_2D) and resizing (RESIZE_BILINEAR, RESIZE_NEAREST_NEIGHBOR).

All of them work on 4-D NHWC tensors, as TFLite's do.
"""
from __future__ import annotations

import ctypes

import numpy as np

from edgeq.ops.common import conv_out_and_pad, fused_activation
from edgeq.ops.registry import KernelCall, register
from edgeq.tflite.schema import BuiltinOp

PADDING_NAMES = {0: "SAME", 1: "VALID"}
INT32_MAX = 2**31 - 1
FLT_MAX = float(np.finfo(np.float32).max)
MAX_RESIZE_DIM = 2**24


class Pool2DParams(ctypes.Structure):
    """Mirror of eq_pool2d_params (kernels/include/edgeq/params/pool.h)."""

    _fields_ = [(name, ctypes.c_int32) for name in (
        "batch", "in_h", "in_w", "channels", "out_h", "out_w", "filter_h", "filter_w",
        "stride_h", "stride_w", "pad_top", "pad_left")] + [
        ("act_min", ctypes.c_float), ("act_max", ctypes.c_float)]


class ResizeParams(ctypes.Structure):
    """Mirror of eq_resize_params (kernels/include/edgeq/params/pool.h)."""

    _fields_ = [(name, ctypes.c_int32) for name in (
        "batch", "in_h", "in_w", "channels", "out_h", "out_w", "align_corners",
        "half_pixel_centers")]


def _refuse_unsupported_dtype(ctx, dtype, allowed):
    if dtype in allowed:
        return
    if dtype in (np.dtype(np.int8), np.dtype(np.uint8), np.dtype(np.int16)):
        raise ctx.fail(f"quantized {dtype} activations are not supported (float32 only)")
    names = ", ".join(str(d) for d in allowed)
    raise ctx.fail(f"input dtype {dtype} is not supported ({names} only)")


def _nhwc_input(ctx, allowed):
    x = ctx.input(0)
    if len(x.shape) != 4:
        raise ctx.fail(f"input must be 4-D NHWC, got shape {list(x.shape)}")
    _refuse_unsupported_dtype(ctx, x.dtype, allowed)
    if x.size > INT32_MAX:
        raise ctx.fail(f"input has {x.size} elements, above the supported {INT32_MAX}")
    return x


def prepare_pool(ctx, kernel: str):
    ctx.expect_inputs(1)
    x = _nhwc_input(ctx, (np.dtype(np.float32),))
    opts = ctx.options
    batch, in_h, in_w, channels = x.shape
    filter_h, filter_w = int(opts.get("filter_height", 0)), int(opts.get("filter_width", 0))
    stride_h, stride_w = int(opts.get("stride_h", 0)), int(opts.get("stride_w", 0))
    for name, value in (("filter_height", filter_h), ("filter_width", filter_w),
                        ("stride_h", stride_h), ("stride_w", stride_w)):
        if value <= 0:
            raise ctx.fail(f"{name} must be positive, got {value}")
    padding = int(opts.get("padding", 0))
    # A VALID filter larger than the input gives an empty output, as in LiteRT.
    out_h, pad_top = conv_out_and_pad(ctx, padding, in_h, filter_h, stride_h, 1)
    out_w, pad_left = conv_out_and_pad(ctx, padding, in_w, filter_w, stride_w, 1)
    if max(pad_top, pad_left) > INT32_MAX:
        raise ctx.fail(f"filter {filter_h}x{filter_w} needs a padding above {INT32_MAX}")
    # TFLite clamps pooled floats to [lowest, max] even without an activation (+-inf become
    # +-FLT_MAX); LiteRT's outputs show it.
    act_min, act_max = (float(np.clip(v, -FLT_MAX, FLT_MAX)) for v in fused_activation(ctx))
    ctx.set_output(0, (batch, out_h, out_w, channels), np.float32)
    params = Pool2DParams(batch, in_h, in_w, channels, out_h, out_w, filter_h, filter_w,
                          stride_h, stride_w, pad_top, pad_left, act_min, act_max)
    return KernelCall(kernel, params)


@register(BuiltinOp.AVERAGE_POOL_2D)
def prepare_average_pool(ctx):
    return prepare_pool(ctx, "avg_pool2d_f32")


@register(BuiltinOp.MAX_POOL_2D)
def prepare_max_pool(ctx):
    return prepare_pool(ctx, "max_pool2d_f32")


@register(BuiltinOp.L2_POOL_2D)
def prepare_l2_pool(ctx):
    return prepare_pool(ctx, "l2_pool2d_f32")


def prepare_resize(ctx, kernel_base: str, allowed, allow_both_flags: bool):
    ctx.expect_inputs(2)
    x = _nhwc_input(ctx, allowed)
    size_info = ctx.input(1)
    size = ctx.constant(1, "size")
    if size_info.dtype not in (np.dtype(np.int32), np.dtype(np.int64)):
        raise ctx.fail(f"size must be int32 or int64, got {size_info.dtype}")
    if size.shape != (2,):
        raise ctx.fail(f"size must have shape [2] (new height, new width), got "
                       f"{list(size.shape)}")
    out_h, out_w = (int(v) for v in size)
    if out_h <= 0 or out_w <= 0:
        raise ctx.fail(f"size must be positive, got [{out_h}, {out_w}]")
    batch, in_h, in_w, channels = x.shape
    # Coordinates are float32 (as in TFLite): beyond 2**24 they no longer address every pixel.
    if max(out_h, out_w, in_h, in_w) > MAX_RESIZE_DIM:
        raise ctx.fail(f"resizing [{in_h}, {in_w}] to [{out_h}, {out_w}] exceeds the supported "
                       f"{MAX_RESIZE_DIM} pixels per side")
    align = bool(ctx.options.get("align_corners", False))
    half = bool(ctx.options.get("half_pixel_centers", False))
    if align and half and not allow_both_flags:
        raise ctx.fail("align_corners and half_pixel_centers cannot both be true")
    if (in_h == 0 or in_w == 0) and batch * channels > 0:
        raise ctx.fail(f"cannot resize an empty image (input shape {list(x.shape)})")
    ctx.set_output(0, (batch, out_h, out_w, channels), x.dtype)
    params = ResizeParams(batch, in_h, in_w, channels, out_h, out_w, int(align), int(half))
    suffix = {np.dtype(np.float32): "f32", np.dtype(np.int32): "i32"}[x.dtype]
    return KernelCall(f"{kernel_base}_{suffix}", params, inputs=[x.index])


@register(BuiltinOp.RESIZE_BILINEAR)
def prepare_resize_bilinear(ctx):
    return prepare_resize(ctx, "resize_bilinear", (np.dtype(np.float32),),
                          allow_both_flags=False)


@register(BuiltinOp.RESIZE_NEAREST_NEIGHBOR)
def prepare_resize_nearest(ctx):
    # TFLite's nearest-neighbour accepts both flags at once (rounding half-pixel coordinates).
    return prepare_resize(ctx, "resize_nearest", (np.dtype(np.float32), np.dtype(np.int32)),
                          allow_both_flags=True)
