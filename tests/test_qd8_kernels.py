"""QD8 kernels: edgeq against a numpy model of the arithmetic in kernels/include/edgeq/params/
qd8.h (bit for bit: the same float32 operations in the same order), and every compiled ISA
variant against the scalar reference over M / N / K sweeps (1, tails, K not a multiple of the
K group, large K). Variants the host cannot run are skipped, saying so.
"""
from __future__ import annotations

import numpy as np
import pytest

import edgeq
from edgeq.ops.qd8 import quantize_weights
from edgeq.runtime import cpu
from edgeq.runtime.executor import kernel_table
from edgeq.tflite.schema import BuiltinOp
from edgeq.tflite.writer import ModelBuilder
from harness import run_edgeq, shared_model

F32 = np.float32
RNG = np.random.default_rng(7)


@pytest.fixture(autouse=True)
def qd8_depthwise(monkeypatch):
    """The QD8 depthwise kernels are tested on every level, also where a QD8 model's depthwise
    convs run as float ones (plain NEON: edgeq/ops/qd8.py runs_float_layers; that path is
    test_float_depthwise_runs_the_dequantized_weights)."""
    from edgeq.ops import qd8

    monkeypatch.setattr(qd8, "runs_float_layers", lambda: False)


# --- the spec, in numpy ------------------------------------------------------------------------

def quantize(x, exact=False):
    """XNNPack's dynamic quantization of one row: (x_q int32, zero point, scale). x * q is the
    float32 product, or with exact (depthwise) the exact one, rounded once."""
    x = np.asarray(x, F32).ravel()
    rmin, rmax = min(F32(0), x.min()), max(F32(0), x.max())
    q = F32(1) if rmin == rmax else F32(255) / F32(rmax - rmin)
    rmin_q, rmax_q = F32(rmin * q), F32(rmax * q)
    if F32(F32(-128) + rmin_q) + F32(F32(127) + rmax_q) > 0:
        zp = F32(F32(-128) - rmin_q)
    else:
        zp = F32(F32(127) - rmax_q)
    zp = int(np.rint(np.clip(zp, -128, 127)))
    product = x.astype(np.float64) * np.float64(q) if exact else x * q  # float64: exact
    xq = np.clip(np.rint(product) + zp, -128, 127).astype(np.int64)
    return xq, zp, F32(F32(1) / q)


def epilogue(acc, scale, w_scale, bias, lo=-np.inf, hi=np.inf):
    out = acc.astype(F32) * (F32(scale) * w_scale) + bias
    return np.clip(out, F32(lo), F32(hi)).astype(F32)


def fc_spec(x, w, w_scale, bias):
    """Rows of x [..., K] against int8 w [N, K]."""
    rows = x.reshape(-1, w.shape[1])
    out = np.empty((rows.shape[0], w.shape[0]), F32)
    for r, row in enumerate(rows):
        xq, zp, s = quantize(row)
        out[r] = epilogue((w.astype(np.int64) * (xq - zp)).sum(1), s, w_scale, bias)
    return out


def conv_spec(x, w, w_scale, bias, stride, pad, dilation=1):
    """CONV_2D with one quantization per image; padding (pad_top, pad_left, out_h, out_w)."""
    n, h, wd, c = x.shape
    oc, kh, kw, _ = w.shape
    top, left, oh, ow = pad
    out = np.empty((n, oh, ow, oc), F32)
    w2 = w.reshape(oc, -1).astype(np.int64)
    for b in range(n):
        xq, zp, s = quantize(x[b])
        span_h, span_w = (kh - 1) * dilation + 1, (kw - 1) * dilation + 1
        img = np.full((h + span_h + oh * stride, wd + span_w + ow * stride, c), zp, np.int64)
        img[top:top + h, left:left + wd] = xq.reshape(h, wd, c)
        for y in range(oh):
            for xx in range(ow):
                patch = img[y * stride:y * stride + span_h:dilation,
                            xx * stride:xx * stride + span_w:dilation].ravel()
                out[b, y, xx] = epilogue((w2 * (patch - zp)).sum(1), s, w_scale, bias)
    return out


def depthwise_spec(x, w, w_scale, bias, stride, pad):
    n, h, wd, c = x.shape
    _, kh, kw, oc = w.shape
    mult = oc // c
    top, left, oh, ow = pad
    out = np.empty((n, oh, ow, oc), F32)
    for b in range(n):
        xq, zp, s = quantize(x[b], exact=True)
        img = np.full((h + kh + oh * stride, wd + kw + ow * stride, c), zp, np.int64)
        img[top:top + h, left:left + wd] = xq.reshape(h, wd, c)
        img = np.repeat(img - zp, mult, axis=2)
        for y in range(oh):
            for xx in range(ow):
                patch = img[y * stride:y * stride + kh, xx * stride:xx * stride + kw]
                out[b, y, xx] = epilogue((patch * w[0]).sum((0, 1)), s, w_scale, bias)
    return out


# --- one-op models -----------------------------------------------------------------------------

def hybrid_model(op, x_shape, w, w_scale, bias, options, qdim=0):
    b = ModelBuilder(description="edgeq qd8 test")
    x = b.add_tensor("x", x_shape, F32)
    wt = b.add_tensor("w", w.shape, np.int8, data=w, quantization=dict(
        scale=w_scale, zero_point=np.zeros(len(w_scale), np.int64), quantized_dimension=qdim))
    ids = [x, wt]
    if bias is not None:
        ids.append(b.add_tensor("bias", bias.shape, F32, data=bias))
    y = b.add_tensor("y", [], F32)
    b.add_operator(op, ids, [y], options=options)
    b.set_inputs([x])
    b.set_outputs([y])
    return b.build()


def weights(n, k):
    return RNG.integers(-127, 128, (n, k)).astype(np.int8), RNG.uniform(0.001, 0.03, n).astype(F32)


def fc_case(m, n, k, offset=0.3):
    w, s = weights(n, k)
    bias = RNG.standard_normal(n).astype(F32)
    x = (RNG.standard_normal((m, k)) + offset).astype(F32)
    model = hybrid_model(BuiltinOp.FULLY_CONNECTED, x.shape, w, s, bias,
                         {"asymmetric_quantize_inputs": True})
    return model, x, fc_spec(x, w, s, bias)


@pytest.mark.parametrize("m,n,k", [(1, 1, 1), (1, 16, 4), (3, 17, 5), (5, 33, 37), (17, 40, 64),
                                   (2, 7, 1030)])
def test_fully_connected_matches_spec(m, n, k):
    model, x, want = fc_case(m, n, k)
    (got,) = run_edgeq(model, [x])
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("m,n,k", [(1, 1, 1), (3, 17, 5), (5, 33, 37), (2, 20, 72)])
def test_c8_layout_reference_matches_spec(m, n, k, monkeypatch):
    """The c8 packing and its scalar GEMM (the spec of the I8MM kernels), forced on any host."""
    from edgeq.ops import qd8

    monkeypatch.setattr(qd8, "gemm_layout", lambda kernel: (kernel + "_c8", 8))
    monkeypatch.setenv("EDGEQ_ISA", "scalar")
    model, x, want = fc_case(m, n, k)
    (got,) = run_edgeq(model, [x])
    np.testing.assert_array_equal(got, want)
    w = RNG.integers(-127, 128, (9, 3, 3, 3)).astype(np.int8)
    s = RNG.uniform(0.001, 0.03, 9).astype(F32)
    conv_model = hybrid_model(BuiltinOp.CONV_2D, (1, 6, 5, 3), w, s, np.zeros(9, F32),
                              {"padding": 1, "stride_h": 1, "stride_w": 1})
    xc = RNG.standard_normal((1, 6, 5, 3)).astype(F32)
    (got,) = run_edgeq(conv_model, [xc])
    np.testing.assert_array_equal(got, conv_spec(xc, w, s, np.zeros(9, F32), 1, (0, 0, 4, 3)))


def test_fully_connected_constant_row_and_relu6():
    w, s = weights(8, 12)
    x = np.zeros((2, 12), F32)
    x[1] = 5.0  # rmin == 0 and the scale of a row of zeros is 1
    model = hybrid_model(BuiltinOp.FULLY_CONNECTED, x.shape, w, s, None,
                         {"fused_activation_function": 3})
    (got,) = run_edgeq(model, [x])
    np.testing.assert_array_equal(got, np.clip(fc_spec(x, w, s, np.zeros(8, F32)), 0, 6))


@pytest.mark.parametrize("shape,k,stride,padding,dilation", [
    ((1, 9, 7, 5), 3, 1, 0, 1), ((2, 8, 8, 3), 3, 2, 1, 1), ((1, 6, 5, 8), 1, 1, 0, 1),
    ((1, 5, 6, 3), 1, 2, 0, 1), ((1, 9, 10, 2), 3, 1, 0, 2), ((1, 12, 6, 1), 5, 2, 0, 1),
    # im2col's short moves: filters wider than the image, runs of 1-40 bytes
    ((1, 3, 4, 1), 5, 1, 0, 1), ((1, 7, 5, 6), 5, 2, 0, 1), ((1, 6, 9, 9), 5, 1, 0, 1)])
def test_conv2d_matches_spec(shape, k, stride, padding, dilation):
    n, h, wd, c = shape
    oc = 19
    w = RNG.integers(-127, 128, (oc, k, k, c)).astype(np.int8)
    s = RNG.uniform(0.001, 0.03, oc).astype(F32)
    bias = RNG.standard_normal(oc).astype(F32)
    x = RNG.standard_normal(shape).astype(F32)
    model = hybrid_model(BuiltinOp.CONV_2D, shape, w, s, bias,
                         {"padding": padding, "stride_h": stride, "stride_w": stride,
                          "dilation_h_factor": dilation, "dilation_w_factor": dilation})
    (got,) = run_edgeq(model, [x])
    if k == 1 and stride == 1:  # a pointwise conv quantizes per pixel, as an FC
        want = fc_spec(x, w.reshape(oc, c), s, bias).reshape(got.shape)
    else:
        oh, ow = got.shape[1:3]
        span = (k - 1) * dilation + 1
        top = max((oh - 1) * stride + span - h, 0) // 2 if padding == 0 else 0
        left = max((ow - 1) * stride + span - wd, 0) // 2 if padding == 0 else 0
        want = conv_spec(x, w, s, bias, stride, (top, left, oh, ow), dilation)
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("shape,mult,stride", [((1, 9, 7, 5), 1, 1), ((2, 8, 8, 3), 2, 2),
                                               ((1, 4, 4, 300), 1, 1)])
def test_depthwise_matches_spec(shape, mult, stride):
    n, h, wd, c = shape
    oc = c * mult
    w = RNG.integers(-127, 128, (1, 3, 3, oc)).astype(np.int8)
    s = RNG.uniform(0.001, 0.03, oc).astype(F32)
    bias = RNG.standard_normal(oc).astype(F32)
    x = RNG.standard_normal(shape).astype(F32)
    model = hybrid_model(BuiltinOp.DEPTHWISE_CONV_2D, shape, w, s, bias,
                         {"padding": 0, "stride_h": stride, "stride_w": stride,
                          "depth_multiplier": mult}, qdim=3)
    (got,) = run_edgeq(model, [x])
    oh, ow = got.shape[1:3]
    top, left = max((oh - 1) * stride + 3 - h, 0) // 2, max((ow - 1) * stride + 3 - wd, 0) // 2
    np.testing.assert_array_equal(got, depthwise_spec(x, w, s, bias, stride, (top, left, oh, ow)))


def test_batch_matmul_constant_int8_rhs():
    k, n = 24, 10
    rhs = RNG.integers(-127, 128, (k, n)).astype(np.int8)
    s = RNG.uniform(0.001, 0.03, n).astype(F32)
    b = ModelBuilder()
    x = b.add_tensor("x", (2, 3, k), F32)
    r = b.add_tensor("rhs", rhs.shape, np.int8, data=rhs, quantization=dict(
        scale=s, zero_point=np.zeros(n, np.int64), quantized_dimension=1))
    y = b.add_tensor("y", [], F32)
    b.add_operator(BuiltinOp.BATCH_MATMUL, [x, r], [y], options={"adj_x": False, "adj_y": False})
    b.set_inputs([x])
    b.set_outputs([y])
    xs = RNG.standard_normal((2, 3, k)).astype(F32)
    (got,) = run_edgeq(b.build(), [xs])
    want = fc_spec(xs, rhs.T, s, np.zeros(n, F32)).reshape(2, 3, n)
    np.testing.assert_array_equal(got, want)


def test_int8_weights_without_scale_refused():
    b = ModelBuilder()
    x = b.add_tensor("x", (2, 4), F32)
    w = b.add_tensor("w", (3, 4), np.int8, data=np.ones((3, 4), np.int8))
    y = b.add_tensor("y", [], F32)
    b.add_operator(BuiltinOp.FULLY_CONNECTED, [x, w], [y])
    b.set_inputs([x])
    b.set_outputs([y])
    with pytest.raises(edgeq.ModelError, match=r"FULLY_CONNECTED.*int8 weights tensor 1 'w' "
                                               r"has no quantization scale"):
        run_edgeq(b.build(), [np.ones((2, 4), F32)])


# --- every ISA variant against the scalar reference --------------------------------------------

def _levels():
    """(level, host runs it) for each ISA level that brings a qd8 kernel of its own: one whose
    features the level allows and the level below it does not."""
    qd8_isas = {isa for name, isa in kernel_table() if "_qd8" in name and isa}
    order = cpu._ORDER[cpu._family()]
    levels = []
    for below, level in zip(order, order[1:]):
        mask, lower = cpu.level_mask(level), cpu.level_mask(below)
        own = [isa for isa in qd8_isas if isa & ~mask == 0 and isa & ~lower]
        if own:
            levels.append((level, all(isa & ~cpu.detected() == 0 for isa in own)))
    return levels


LEVELS = _levels() or [pytest.param("none", False, marks=pytest.mark.skip(
    reason="no ISA-specific qd8 kernels are compiled for this architecture"))]


@pytest.mark.parametrize("level,runs", LEVELS)
@pytest.mark.parametrize("m,n,k", [(1, 1, 1), (1, 16, 4), (2, 15, 3), (4, 31, 7), (5, 16, 8),
                                   (10, 17, 33), (11, 33, 64), (23, 48, 129), (3, 130, 2048),
                                   (40, 64, 100)])
def test_isa_variant_matches_scalar(level, runs, m, n, k, monkeypatch):
    if not runs:
        pytest.skip(f"this CPU lacks the {level} features")
    model, x, want = fc_case(m, n, k)
    monkeypatch.setenv("EDGEQ_ISA", "scalar")
    (scalar,) = run_edgeq(model, [x])
    monkeypatch.setenv("EDGEQ_ISA", level)
    (got,) = run_edgeq(model, [x])
    np.testing.assert_array_equal(scalar, want)
    np.testing.assert_array_equal(got, scalar)


@pytest.mark.parametrize("level,runs", LEVELS)
@pytest.mark.parametrize("k", [1, 3, 16, 21, 64])
def test_isa_variant_special_rows_match_scalar(level, runs, k, monkeypatch):
    """Rows whose quantization parameters take every branch (all zero, one-sided, constant,
    a range too small for a finite 255 / range, huge values), side by side in groups of rows
    (levels that quantize several rows at once compute their parameters together)."""
    if not runs:
        pytest.skip(f"this CPU lacks the {level} features")
    base = RNG.standard_normal(k).astype(F32)
    rows = [np.zeros(k, F32), np.abs(base) + 0.1, -np.abs(base) - 0.1, np.full(k, 2.5, F32),
            np.full(k, -3.0, F32), base * F32(1e-38), base * F32(1e30), base,
            np.where(np.arange(k) % 2 == 0, F32(-0.0), F32(0.0)).astype(F32), base + 1.0,
            base * 0.5]
    x = np.stack(rows).astype(F32)
    w, s = weights(19, k)
    bias = RNG.standard_normal(19).astype(F32)
    model = hybrid_model(BuiltinOp.FULLY_CONNECTED, x.shape, w, s, bias, {})
    monkeypatch.setenv("EDGEQ_ISA", "scalar")
    (scalar,) = run_edgeq(model, [x])
    monkeypatch.setenv("EDGEQ_ISA", level)
    (got,) = run_edgeq(model, [x])
    np.testing.assert_array_equal(got, scalar)


@pytest.mark.parametrize("level,runs", LEVELS)
def test_isa_variant_conv_matches_scalar(level, runs, monkeypatch):
    if not runs:
        pytest.skip(f"this CPU lacks the {level} features")
    w = RNG.integers(-127, 128, (37, 3, 3, 6)).astype(np.int8)
    s = RNG.uniform(0.001, 0.03, 37).astype(F32)
    bias = RNG.standard_normal(37).astype(F32)
    model = hybrid_model(BuiltinOp.CONV_2D, (1, 11, 9, 6), w, s, bias,
                         {"padding": 0, "stride_h": 1, "stride_w": 1})
    x = RNG.standard_normal((1, 11, 9, 6)).astype(F32)
    monkeypatch.setenv("EDGEQ_ISA", "scalar")
    (scalar,) = run_edgeq(model, [x])
    monkeypatch.setenv("EDGEQ_ISA", level)
    (got,) = run_edgeq(model, [x])
    np.testing.assert_array_equal(got, scalar)


@pytest.mark.parametrize("level,runs", LEVELS)
@pytest.mark.parametrize("channels,stride", [(1, 1), (15, 2), (64, 1), (100, 1), (147, 2)])
def test_isa_variant_depthwise_matches_scalar(level, runs, channels, stride, monkeypatch):
    if not runs:
        pytest.skip(f"this CPU lacks the {level} features")
    w = RNG.integers(-127, 128, (1, 3, 3, channels)).astype(np.int8)
    s = RNG.uniform(0.001, 0.03, channels).astype(F32)
    bias = RNG.standard_normal(channels).astype(F32)
    model = hybrid_model(BuiltinOp.DEPTHWISE_CONV_2D, (1, 7, 6, channels), w, s, bias,
                         {"padding": 0, "stride_h": stride, "stride_w": stride,
                          "depth_multiplier": 1, "fused_activation_function": 3}, qdim=3)
    x = (RNG.standard_normal((1, 7, 6, channels)) * 3).astype(F32)
    monkeypatch.setenv("EDGEQ_ISA", "scalar")
    (scalar,) = run_edgeq(model, [x])
    monkeypatch.setenv("EDGEQ_ISA", level)
    (got,) = run_edgeq(model, [x])
    np.testing.assert_array_equal(got, scalar)


@pytest.mark.parametrize("level,runs", LEVELS)
@pytest.mark.parametrize("shape,k,stride,padding,dilation", [
    ((1, 5, 23, 17), 3, 1, 0, 1),   # runs of 21 (odd), 17 channels: 4-channel blocks + 1
    ((1, 6, 20, 4), 3, 2, 0, 1),    # stride 2: runs of 9
    ((1, 7, 12, 33), 3, 1, 1, 1),   # VALID: no border pixels at all
    ((1, 4, 4, 3), 3, 1, 0, 1),     # runs of 2, fewer than 4 channels
    ((1, 3, 3, 16), 3, 1, 0, 1),    # a run of 1
    ((2, 9, 14, 20), 3, 1, 0, 2),   # dilated taps
    ((1, 9, 11, 8), 5, 1, 0, 1),    # 25 taps: the 5x5 run kernel
    ((1, 11, 13, 13), 5, 2, 0, 1),  # 5x5 at stride 2, 13 channels: 4-channel blocks + 1
    ((1, 6, 30, 7), 5, 1, 1, 1),    # 5x5 VALID: a run of 26, every filter row there
    ((1, 12, 14, 6), 5, 1, 0, 2),   # 5x5 dilated: taps 2 pixels apart
    ((1, 8, 9, 5), 2, 2, 0, 1)])    # 4 taps, padding on one side only
def test_isa_variant_depthwise_rows_match_scalar(level, runs, shape, k, stride, padding,
                                                  dilation, monkeypatch):
    """The interior of each row (a run kernel where the level has one) and its border."""
    if not runs:
        pytest.skip(f"this CPU lacks the {level} features")
    c = shape[3]
    w = RNG.integers(-127, 128, (1, k, k, c)).astype(np.int8)
    s = RNG.uniform(0.001, 0.03, c).astype(F32)
    bias = RNG.standard_normal(c).astype(F32)
    model = hybrid_model(BuiltinOp.DEPTHWISE_CONV_2D, shape, w, s, bias,
                         {"padding": padding, "stride_h": stride, "stride_w": stride,
                          "depth_multiplier": 1, "dilation_h_factor": dilation,
                          "dilation_w_factor": dilation}, qdim=3)
    x = (RNG.standard_normal(shape) * 2 + 0.5).astype(F32)
    monkeypatch.setenv("EDGEQ_ISA", "scalar")
    (scalar,) = run_edgeq(model, [x])
    monkeypatch.setenv("EDGEQ_ISA", level)
    (got,) = run_edgeq(model, [x])
    np.testing.assert_array_equal(got, scalar)


def ties_row(n):
    """A row with range [-4, 4] (so q = 255 / 8) whose other values put x * q at a tie in float32
    but not exactly: the FC quantizer (float32 product) and the depthwise one (exact product)
    round them differently, which a quantizer using the wrong product gets wrong."""
    q = F32(255) / F32(8)
    found = []
    for k in range(-120, 120):
        t = k + 0.5
        near = np.float32(t / float(q)).view(np.int32) + np.arange(-3, 4, dtype=np.int32)
        for x in near.view(F32):
            if F32(x * q) == t and float(x) * float(q) != t:
                found.append(x)
                break
    assert len(found) > 50
    row = np.resize(np.array(found, F32), n)
    row[0], row[-1] = -4.0, 4.0
    return row


@pytest.mark.parametrize("level,runs", LEVELS + [("scalar", True)])
def test_quantizers_round_ties_as_the_spec(level, runs, monkeypatch):
    if not runs:
        pytest.skip(f"this CPU lacks the {level} features")
    monkeypatch.setenv("EDGEQ_ISA", level)
    row = ties_row(70)
    xq_fc, _, _ = quantize(row)
    xq_dw, _, _ = quantize(row, exact=True)
    assert (xq_fc != xq_dw).sum() > 10  # the two rules do differ on this row
    w, s = weights(9, 70)
    bias = RNG.standard_normal(9).astype(F32)
    model = hybrid_model(BuiltinOp.FULLY_CONNECTED, (1, 70), w, s, bias, {})
    (got,) = run_edgeq(model, [row[None]])
    np.testing.assert_array_equal(got, fc_spec(row[None], w, s, bias))
    c = 5
    img = row.reshape(1, 2, 7, c)
    wd = RNG.integers(-127, 128, (1, 1, 1, c)).astype(np.int8)  # 1x1: each output one input
    sd = RNG.uniform(0.001, 0.03, c).astype(F32)
    dw = hybrid_model(BuiltinOp.DEPTHWISE_CONV_2D, img.shape, wd, sd, np.zeros(c, F32),
                      {"padding": 1, "stride_h": 1, "stride_w": 1, "depth_multiplier": 1},
                      qdim=3)
    (got,) = run_edgeq(dw, [img])
    np.testing.assert_array_equal(got, depthwise_spec(img, wd, sd, np.zeros(c, F32), 1,
                                                      (0, 0, 2, 7)))


def float_model(op, x_shape, w, bias, options):
    """The float op on the given (dequantized) weights: what runs_float_layers must give."""
    b = ModelBuilder(description="edgeq float layer")
    ids = [b.add_tensor("x", x_shape, F32), b.add_tensor("w", w.shape, F32, data=w.astype(F32)),
           b.add_tensor("bias", bias.shape, F32, data=bias)]
    y = b.add_tensor("y", [], F32)
    b.add_operator(op, ids, [y], options=options)
    b.set_inputs([ids[0]])
    b.set_outputs([y])
    return b.build()


@pytest.mark.parametrize("stride,act", [(1, 0), (2, 3)])
def test_float_depthwise_runs_the_dequantized_weights(stride, act, monkeypatch):
    """runs_float_layers: the float depthwise kernel on w_q * scale, the float op's numbers."""
    from edgeq.ops import qd8

    c = 21
    w = RNG.integers(-127, 128, (1, 3, 3, c)).astype(np.int8)
    s = RNG.uniform(0.001, 0.03, c).astype(F32)
    bias = RNG.standard_normal(c).astype(F32)
    opts = {"padding": 0, "stride_h": stride, "stride_w": stride, "depth_multiplier": 1,
            "fused_activation_function": act}
    x = (RNG.standard_normal((1, 9, 11, c)) * 2).astype(F32)
    (want,) = run_edgeq(float_model(BuiltinOp.DEPTHWISE_CONV_2D, x.shape, w * s, bias, opts), [x])
    monkeypatch.setattr(qd8, "runs_float_layers", lambda: True)
    model = hybrid_model(BuiltinOp.DEPTHWISE_CONV_2D, x.shape, w, s, bias, opts, qdim=3)
    it = edgeq.Interpreter(model_content=model)
    it.allocate_tensors()
    kernels = it._get_plan().compiled.kernel_of_node
    assert all(k.startswith("depthwise_conv2d_f32") for k in kernels)
    (got,) = run_edgeq(model, [x])
    np.testing.assert_array_equal(got, want)


def test_shallow_float_conv_runs_the_dequantized_weights(monkeypatch):
    """runs_float_layers: a non-pointwise conv of depth < FLOAT_CONV_MAX_DEPTH runs the float
    kernel on w_q * scale (deeper ones stay QD8)."""
    from edgeq.ops import qd8

    for c, float_path in ((2, True), (8, False)):  # depth 18 and 72
        w = RNG.integers(-127, 128, (13, 3, 3, c)).astype(np.int8)
        s = RNG.uniform(0.001, 0.03, 13).astype(F32)
        bias = RNG.standard_normal(13).astype(F32)
        opts = {"padding": 0, "stride_h": 2, "stride_w": 1, "fused_activation_function": 1}
        x = RNG.standard_normal((1, 9, 7, c)).astype(F32)
        (want,) = run_edgeq(float_model(BuiltinOp.CONV_2D, x.shape, w * s.reshape(-1, 1, 1, 1),
                                        bias, opts), [x])
        monkeypatch.setattr(qd8, "runs_float_layers", lambda: True)
        model = hybrid_model(BuiltinOp.CONV_2D, x.shape, w, s, bias, opts)
        it = edgeq.Interpreter(model_content=model)
        it.allocate_tensors()
        kernels = it._get_plan().compiled.kernel_of_node
        (got,) = run_edgeq(model, [x])
        if float_path:
            assert all(k.startswith("conv2d_f32") for k in kernels)
            np.testing.assert_array_equal(got, want)
        else:
            assert all(k.startswith("conv2d_qd8") for k in kernels)


# --- layers of the shared qd8 models, with their scales ------------------------------------------

@pytest.mark.parametrize("name", ["mobilenet_v2.qd8", "ds_cnn_kws.qd8"])
def test_real_model_layers_match_spec(name):
    from edgeq.tflite.reader import read_model

    sub = read_model(shared_model(f"{name}.tflite")).subgraphs[0]
    checked = 0
    for op in sub.operators:
        ts = [sub.tensors[i] if i >= 0 else None for i in op.inputs]
        if len(ts) < 2 or ts[1] is None or ts[1].dtype != np.int8 or checked >= 6:
            continue
        dynamic = ts[0].shape_signature and -1 in ts[0].shape_signature[1:]
        if op.builtin_code != BuiltinOp.CONV_2D or dynamic:
            continue
        w, q = np.array(ts[1].data), ts[1].quantization
        bias = np.array(ts[2].data, F32) if ts[2] is not None else np.zeros(w.shape[0], F32)
        model = hybrid_model(BuiltinOp.CONV_2D, ts[0].shape, w, np.asarray(q.scale, F32), bias,
                             op.options)
        x = np.clip(RNG.standard_normal(ts[0].shape), 0, 6).astype(F32)  # relu6-like inputs
        (got,) = run_edgeq(model, [x])
        oc, kh, kw, c = w.shape
        lo, hi = {0: (-np.inf, np.inf), 1: (0, np.inf), 3: (0, 6)}[
            op.options.get("fused_activation_function", 0)]
        if kh == kw == 1 and op.options["stride_h"] == 1:
            want = fc_spec(x, w.reshape(oc, c), np.asarray(q.scale, F32), bias)
            want = np.clip(want, F32(lo), F32(hi)).reshape(got.shape)
            np.testing.assert_array_equal(got, want)
            checked += 1
    assert checked


@pytest.mark.parametrize("level", cpu._ORDER[cpu._family()])
@pytest.mark.parametrize("kernel", ["fully_connected_qd8", "conv2d_qd8", "depthwise_conv2d_qd8"])
def test_edgeq_isa_caps_the_chosen_kernel(level, kernel, monkeypatch):
    from edgeq.runtime.executor import find_kernel

    monkeypatch.setenv("EDGEQ_ISA", level)
    _, isa = find_kernel(kernel, cpu.allowed())
    assert isa & ~cpu.level_mask(level) == 0
    if level == "scalar":
        assert isa == 0
    best = max((i for n, i in kernel_table() if n == kernel and i & ~cpu.allowed() == 0),
               key=lambda i: bin(i).count("1"))
    assert isa == best  # the most capable variant the level allows wins


# --- threads, and models prepare refuses ---------------------------------------------------------

def test_thread_count_does_not_change_results():
    model, x, _ = fc_case(50, 70, 90)
    w = RNG.integers(-127, 128, (1, 3, 3, 20)).astype(np.int8)
    dw = hybrid_model(BuiltinOp.DEPTHWISE_CONV_2D, (1, 20, 9, 20), w,
                      RNG.uniform(0.001, 0.03, 20).astype(F32), RNG.standard_normal(20).astype(F32),
                      {"padding": 0, "stride_h": 1, "stride_w": 1, "depth_multiplier": 1}, qdim=3)
    xd = RNG.standard_normal((1, 20, 9, 20)).astype(F32)
    for m, feed in ((model, x), (dw, xd)):
        outs = []
        for threads in (1, 2, 3):
            it = edgeq.Interpreter(model_content=m, num_threads=threads)
            it.allocate_tensors()
            it.set_tensor(it.get_input_details()[0]["index"], feed)
            it.invoke()
            outs.append(it.get_tensor(it.get_output_details()[0]["index"]))
        for o in outs[1:]:
            np.testing.assert_array_equal(o, outs[0])


def _fc_with_quantization(quantization, w_shape=(3, 4)):
    b = ModelBuilder()
    x = b.add_tensor("x", (2, w_shape[1]), F32)
    w = b.add_tensor("w", w_shape, np.int8, data=np.ones(w_shape, np.int8),
                     quantization=quantization)
    y = b.add_tensor("y", [], F32)
    b.add_operator(BuiltinOp.FULLY_CONNECTED, [x, w], [y])
    b.set_inputs([x])
    b.set_outputs([y])
    return b.build()


# (Scale counts that do not fit the shape and negative scales are the reader's to refuse.)
@pytest.mark.parametrize("quantization,message", [
    (dict(scale=np.ones(3, F32), zero_point=np.ones(3, np.int64)), r"non-zero zero point"),
    (dict(scale=np.ones(4, F32), zero_point=np.zeros(4, np.int64), quantized_dimension=1),
     r"has 4 scales for 3 output channels"),
])
def test_bad_weight_quantization_refused(quantization, message):
    with pytest.raises(edgeq.ModelError, match=r"FULLY_CONNECTED.*" + message):
        run_edgeq(_fc_with_quantization(quantization), [np.ones((2, 4), F32)])


def test_per_channel_along_the_wrong_dimension_refused():
    q = dict(scale=np.ones(4, F32), zero_point=np.zeros(4, np.int64), quantized_dimension=1)
    with pytest.raises(edgeq.ModelError, match=r"quantized along dimension 1"):
        run_edgeq(_fc_with_quantization(q, (4, 4)), [np.ones((2, 4), F32)])


def test_depth_beyond_exact_int32_sums_refused():
    k = (1 << 16) + 4
    q = dict(scale=np.ones(1, F32), zero_point=np.zeros(1, np.int64))
    with pytest.raises(edgeq.ModelError, match=r"depth 65540 exceeds 65536"):
        run_edgeq(_fc_with_quantization(q, (1, k)), [np.ones((2, k), F32)])


def test_quantize_qd8_leaves_small_weights_float():
    """Below 1024 elements the converter keeps weights float, and so does quantize="qd8"."""
    b = ModelBuilder()
    x = b.add_tensor("x", (3, 8), F32)
    w = b.add_tensor("w", (4, 8), F32, data=RNG.standard_normal((4, 8)).astype(F32))
    y = b.add_tensor("y", [], F32)
    b.add_operator(BuiltinOp.FULLY_CONNECTED, [x, w], [y])
    b.set_inputs([x])
    b.set_outputs([y])
    model, feed = b.build(), RNG.standard_normal((3, 8)).astype(F32)
    outs = []
    for quantize in (None, "qd8"):
        it = edgeq.Interpreter(model_content=model, num_threads=1, quantize=quantize)
        it.allocate_tensors()
        it.set_tensor(it.get_input_details()[0]["index"], feed)
        it.invoke()
        outs.append(it.get_tensor(it.get_output_details()[0]["index"]))
    np.testing.assert_array_equal(outs[0], outs[1])


def test_quantize_qd8_quantizes_large_weights_per_channel():
    w = RNG.standard_normal((40, 64)).astype(F32)
    q, s = quantize_weights(w, 0)
    np.testing.assert_allclose(s, np.abs(w).max(axis=1) / 127, rtol=1e-6)
    assert q.dtype == np.int8 and np.abs(q).max() == 127
    b = ModelBuilder()
    x = b.add_tensor("x", (5, 64), F32)
    wt = b.add_tensor("w", w.shape, F32, data=w)
    y = b.add_tensor("y", [], F32)
    b.add_operator(BuiltinOp.FULLY_CONNECTED, [x, wt], [y])
    b.set_inputs([x])
    b.set_outputs([y])
    feed = RNG.standard_normal((5, 64)).astype(F32)
    it = edgeq.Interpreter(model_content=b.build(), num_threads=1, quantize="qd8")
    it.allocate_tensors()
    it.set_tensor(it.get_input_details()[0]["index"], feed)
    it.invoke()
    np.testing.assert_array_equal(it.get_tensor(it.get_output_details()[0]["index"]),
                                  fc_spec(feed, q, s, np.zeros(40, F32)))
