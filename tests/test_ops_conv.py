"""CONV_2D, DEPTHWISE_CONV_2D, TRANSPOSE_CONV, FULLY_CONNECTED, BATCH_MATMUL (float32).

Every case runs against LiteRT twice: its default runtime (XNNPack; the harness tolerance) and
its reference kernels (bit-exact on x86-64). Then seeded random sweeps over sizes, strides,
dilations, padding and groups; empty tensors (checked with numpy, LiteRT refuses most); and bad
models, which must raise ModelError naming the problem."""
from __future__ import annotations

import os
import platform

import numpy as np
import pytest

import edgeq
from edgeq.tflite.schema import BuiltinOp
from harness import assert_close_to_range, run_edgeq, run_litert, single_op_model

F32 = np.float32
SAME, VALID = 0, 1
NONE, RELU, RELU_N1_TO_1, RELU6 = 0, 1, 2, 3

RNG = np.random.default_rng(20240607)


def rand(*shape, scale=1.0):
    return (RNG.standard_normal(shape) * scale).astype(F32)


# The reference kernels add in TFLite's reference order in float32; on x86-64 (no FMA in the
# portable build, nor in LiteRT's reference kernels) the results are then bit-identical to LiteRT's
# BUILTIN_REF kernels. Elsewhere a compiler may contract into FMAs, so only closeness is checked.
BIT_EXACT = platform.machine().lower() in ("x86_64", "amd64")


def run_litert_reference(model: bytes, feeds: list):
    return run_litert(model, feeds, kernels="reference")


def run_edgeq_reference(model: bytes, feeds: list):
    """edgeq with EDGEQ_ISA=scalar: its reference kernels, not the optimized paths."""
    saved = os.environ.get("EDGEQ_ISA")
    os.environ["EDGEQ_ISA"] = "scalar"
    try:
        return run_edgeq(model, feeds)
    finally:
        if saved is None:
            del os.environ["EDGEQ_ISA"]
        else:
            os.environ["EDGEQ_ISA"] = saved


def check(op, inputs, feeds, **kwargs):
    """edgeq (optimized kernels) against LiteRT's default runtime within the harness tolerance;
    edgeq's reference kernels against LiteRT's reference kernels, bit-exact where BIT_EXACT; the
    optimized kernels differ from those only by reassociation and FMA."""
    model = single_op_model(op, inputs, **kwargs)
    (got,) = run_edgeq(model, feeds)
    (want,) = run_litert(model, feeds)
    assert_close_to_range(got, want)
    (ref,) = run_litert_reference(model, feeds)
    (ours_ref,) = run_edgeq_reference(model, feeds)
    if BIT_EXACT:
        np.testing.assert_array_equal(ours_ref, ref,
                                      err_msg="differs from LiteRT's reference kernel")
    else:
        assert_close_to_range(ours_ref, ref, rel=1e-6)
    assert_close_to_range(got, ref, rel=1e-5)


def conv_options(padding=SAME, stride=(1, 1), dilation=(1, 1), act=NONE):
    return {"padding": padding, "stride_h": stride[0], "stride_w": stride[1],
            "dilation_h_factor": dilation[0], "dilation_w_factor": dilation[1],
            "fused_activation_function": act}


def check_without_bias(op, x, w, options, absent):
    """edgeq on a model without bias (`absent`: -1 slot or 2 inputs) equals LiteRT with a zero
    bias. (LiteRT 2.3 refuses CONV_2D without bias and crashes on a 2-input DEPTHWISE_CONV_2D
    with stride 2, so the reference run always gets the explicit zeros.)"""
    inputs = [(x.shape, F32), w] + ([None] if absent == "minus_one" else [])
    (got,) = run_edgeq(single_op_model(op, inputs, options=options), [x])
    zeros = np.zeros(w.shape[0] if op != BuiltinOp.DEPTHWISE_CONV_2D else w.shape[3], F32)
    (want,) = run_litert(single_op_model(op, [(x.shape, F32), w, zeros], options=options), [x])
    assert_close_to_range(got, want)


def prepare_error(op, inputs, **kwargs):
    """Load and prepare a one-op model in edgeq: for models that must raise ModelError."""
    model = single_op_model(op, inputs, **kwargs)
    it = edgeq.Interpreter(model_content=model, num_threads=1)
    it.allocate_tensors()


# --- CONV_2D ---------------------------------------------------------------------------------

# (input NHWC, filter OHWI, padding, stride, dilation, activation, bias)
CONV_CASES = {
    "3x3_same": ((1, 8, 8, 3), (4, 3, 3, 3), SAME, (1, 1), (1, 1), NONE, True),
    "3x3_valid_s2_relu": ((1, 9, 7, 5), (6, 3, 3, 5), VALID, (2, 2), (1, 1), RELU, True),
    "1x1_batch2_relu6": ((2, 5, 6, 7), (3, 1, 1, 7), SAME, (1, 1), (1, 1), RELU6, True),
    "1x1_stride2": ((1, 7, 7, 4), (5, 1, 1, 4), VALID, (2, 2), (1, 1), NONE, True),
    "kernel_larger_than_input_same": ((1, 3, 2, 2), (3, 5, 5, 2), SAME, (1, 1), (1, 1), NONE,
                                      True),
    "kernel_larger_than_input_same_s2": ((1, 3, 4, 2), (2, 6, 7, 2), SAME, (2, 3), (1, 1),
                                         NONE, True),
    "stride_gt_kernel_valid": ((1, 11, 10, 3), (2, 2, 2, 3), VALID, (3, 4), (1, 1), NONE, True),
    "stride_gt_kernel_same": ((2, 10, 11, 3), (2, 2, 1, 3), SAME, (3, 3), (1, 1), NONE, True),
    "dilation2_same": ((1, 9, 10, 3), (4, 3, 3, 3), SAME, (1, 1), (2, 2), NONE, True),
    "dilation_asym_same_s2": ((1, 13, 12, 2), (3, 3, 2, 2), SAME, (2, 1), (3, 2), RELU, True),
    "dilation_valid": ((1, 12, 12, 2), (2, 3, 3, 2), VALID, (1, 1), (2, 3), NONE, True),
    "c1_oc1": ((1, 6, 5, 1), (1, 3, 3, 1), SAME, (1, 1), (1, 1), NONE, True),
    "even_kernel_same": ((1, 6, 7, 3), (2, 4, 2, 3), SAME, (1, 1), (1, 1), RELU_N1_TO_1, True),
    "batch3_odd": ((3, 5, 7, 3), (5, 3, 5, 3), SAME, (2, 2), (1, 1), NONE, True),
    "valid_empty_output": ((1, 4, 8, 2), (2, 5, 3, 2), VALID, (2, 1), (1, 1), NONE, True),
    "batch0": ((0, 4, 4, 2), (3, 3, 3, 2), SAME, (1, 1), (1, 1), NONE, True),
    "grouped_2": ((1, 6, 6, 4), (6, 3, 3, 2), SAME, (1, 1), (1, 1), NONE, True),
    "grouped_depthwise_like": ((1, 7, 5, 6), (6, 3, 3, 1), VALID, (1, 2), (1, 1), RELU, True),
    "grouped_4_s2": ((2, 8, 8, 8), (12, 3, 3, 2), SAME, (2, 2), (1, 1), NONE, True),
}


@pytest.mark.parametrize("case", CONV_CASES, ids=list(CONV_CASES))
def test_conv2d(case):
    in_shape, f_shape, padding, stride, dilation, act, has_bias = CONV_CASES[case]
    inputs = [(in_shape, F32), rand(*f_shape)]
    if has_bias:
        inputs.append(rand(f_shape[0]))
    check(BuiltinOp.CONV_2D, inputs, [rand(*in_shape)],
          options=conv_options(padding, stride, dilation, act))


@pytest.mark.parametrize("absent", ["minus_one", "two_inputs"])
def test_conv2d_without_bias(absent):
    """LiteRT insists on a bias tensor for CONV_2D; edgeq also takes a model without one (2
    inputs, or -1 in the bias slot) and then adds nothing."""
    x, w = rand(1, 5, 5, 3), rand(2, 3, 3, 3)
    check_without_bias(BuiltinOp.CONV_2D, x, w, conv_options(SAME, (2, 1)), absent)


def test_conv2d_runtime_filter():
    """A filter that is a graph input (not a constant) is read on every invoke."""
    x, w, b = rand(1, 6, 5, 4), rand(3, 3, 2, 4), rand(3)
    check(BuiltinOp.CONV_2D, [(x.shape, F32), (w.shape, F32), b], [x, w],
          options=conv_options(SAME, (2, 1)))


@pytest.mark.parametrize("layer", ["conv3x3_s2_224", "pointwise_112", "depthwise_112"])
def test_mobilenet_sized_layers_are_fast(layer):
    """MobileNet-sized layers take milliseconds, not seconds (a slack 1 s bound per layer)."""
    import time

    if layer == "conv3x3_s2_224":
        op, x, w, opts = BuiltinOp.CONV_2D, rand(1, 224, 224, 3), rand(32, 3, 3, 3), \
            conv_options(SAME, (2, 2), act=RELU6)
    elif layer == "pointwise_112":
        op, x, w, opts = BuiltinOp.CONV_2D, rand(1, 112, 112, 32), rand(64, 1, 1, 32), \
            conv_options(SAME, act=RELU6)
    else:
        op, x, w, opts = BuiltinOp.DEPTHWISE_CONV_2D, rand(1, 112, 112, 32), rand(1, 3, 3, 32), \
            dw_options(1, SAME, act=RELU6)
    bias = rand(w.shape[0] if op == BuiltinOp.CONV_2D else w.shape[3])
    model = single_op_model(op, [(x.shape, F32), w, bias], options=opts)
    it = edgeq.Interpreter(model_content=model, num_threads=1)
    it.allocate_tensors()
    it.set_tensor(it.get_input_details()[0]["index"], x)
    start = time.perf_counter()
    it.invoke()
    assert time.perf_counter() - start < 1.0


# --- DEPTHWISE_CONV_2D -----------------------------------------------------------------------

def dw_options(multiplier, padding=SAME, stride=(1, 1), dilation=(1, 1), act=NONE):
    opts = conv_options(padding, stride, dilation, act)
    opts["depth_multiplier"] = multiplier
    return opts


# (input NHWC, multiplier, kernel (h, w), padding, stride, dilation, activation, bias)
DW_CASES = {
    "3x3_same": ((1, 8, 8, 4), 1, (3, 3), SAME, (1, 1), (1, 1), NONE, True),
    "mult2_valid_s2_relu6": ((1, 9, 8, 3), 2, (3, 3), VALID, (2, 2), (1, 1), RELU6, True),
    "dilation2_same": ((1, 10, 9, 5), 1, (3, 3), SAME, (1, 1), (2, 2), RELU, True),
    "dilation_asym_mult3": ((2, 11, 7, 2), 3, (3, 2), SAME, (1, 2), (2, 3), NONE, True),
    "kernel_larger_than_input": ((1, 2, 3, 3), 1, (5, 5), SAME, (1, 1), (1, 1), NONE, True),
    "c1_mult4": ((1, 6, 6, 1), 4, (3, 3), SAME, (2, 2), (1, 1), RELU_N1_TO_1, True),
    "stride_gt_kernel": ((2, 10, 11, 6), 1, (2, 2), VALID, (3, 4), (1, 1), NONE, True),
    "1x1": ((1, 5, 5, 7), 2, (1, 1), SAME, (1, 1), (1, 1), NONE, True),
    "wide_channels_odd": ((1, 5, 4, 37), 1, (3, 3), SAME, (1, 1), (1, 1), RELU, True),
}


@pytest.mark.parametrize("case", DW_CASES, ids=list(DW_CASES))
def test_depthwise_conv2d(case):
    in_shape, mult, (kh, kw), padding, stride, dilation, act, has_bias = DW_CASES[case]
    oc = in_shape[3] * mult
    inputs = [(in_shape, F32), rand(1, kh, kw, oc)]
    if has_bias:
        inputs.append(rand(oc))
    check(BuiltinOp.DEPTHWISE_CONV_2D, inputs, [rand(*in_shape)],
          options=dw_options(mult, padding, stride, dilation, act))


@pytest.mark.parametrize("absent", ["minus_one", "two_inputs"])
def test_depthwise_without_bias(absent):
    x, w = rand(1, 7, 6, 4), rand(1, 3, 3, 8)
    check_without_bias(BuiltinOp.DEPTHWISE_CONV_2D, x, w, dw_options(2, SAME, (2, 2)), absent)


@pytest.mark.parametrize("option", [0, 1, 3])
def test_depthwise_multiplier_option_is_redundant(option):
    """LiteRT derives the multiplier from the shapes (filter channels / input channels) and
    runs models whose depth_multiplier option is 0 or wrong; so does edgeq."""
    x, w, b = rand(1, 5, 4, 3), rand(1, 3, 3, 6), rand(6)
    check(BuiltinOp.DEPTHWISE_CONV_2D, [(x.shape, F32), w, b], [x],
          options=dw_options(option, SAME))


def test_depthwise_runtime_filter():
    x, w, b = rand(1, 6, 7, 3), rand(1, 3, 3, 6), rand(6)
    check(BuiltinOp.DEPTHWISE_CONV_2D, [(x.shape, F32), (w.shape, F32), b],
          [x, w], options=dw_options(2, SAME, (2, 2)))


# --- TRANSPOSE_CONV --------------------------------------------------------------------------

def tconv_options(padding=SAME, stride=(1, 1), act=NONE):
    return {"padding": padding, "stride_h": stride[0], "stride_w": stride[1],
            "fused_activation_function": act}


# (input NHWC, weights OHWI, output H/W, padding, stride, activation, bias)
TCONV_CASES = {
    "same_s2": ((1, 4, 5, 3), (2, 3, 3, 3), (8, 10), SAME, (2, 2), NONE, True),
    "same_s2_odd_out": ((1, 4, 5, 3), (2, 3, 3, 3), (7, 9), SAME, (2, 2), NONE, True),
    "valid_s2": ((1, 4, 3, 2), (3, 3, 3, 2), (9, 7), VALID, (2, 2), NONE, True),
    "valid_s2_uncovered_row": ((1, 4, 4, 2), (2, 3, 3, 2), (10, 10), VALID, (2, 2), NONE, True),
    "valid_s1": ((2, 3, 4, 2), (2, 2, 3, 2), (4, 6), VALID, (1, 1), NONE, False),
    "1x1_s1": ((1, 5, 5, 4), (3, 1, 1, 4), (5, 5), SAME, (1, 1), NONE, True),
    "stride_gt_kernel_valid": ((1, 3, 4, 2), (2, 2, 2, 2), (8, 11), VALID, (3, 3), NONE, True),
    "stride_gt_kernel_same": ((1, 3, 4, 2), (2, 2, 1, 2), (9, 12), SAME, (3, 3), NONE, True),
    "even_kernel_same_s2": ((1, 3, 3, 3), (4, 4, 4, 3), (6, 6), SAME, (2, 2), NONE, True),
    "asym_stride": ((2, 3, 5, 2), (2, 3, 3, 2), (6, 5), SAME, (2, 1), NONE, True),
    "c1": ((1, 4, 4, 1), (1, 3, 3, 1), (8, 8), SAME, (2, 2), NONE, True),
    "relu": ((1, 4, 4, 3), (2, 3, 3, 3), (8, 8), SAME, (2, 2), RELU, True),
    "relu6_valid": ((1, 3, 3, 2), (2, 3, 3, 2), (7, 7), VALID, (2, 2), RELU6, True),
}


@pytest.mark.parametrize("case", TCONV_CASES, ids=list(TCONV_CASES))
def test_transpose_conv(case):
    in_shape, w_shape, (oh, ow), padding, stride, act, has_bias = TCONV_CASES[case]
    out_shape = np.array([in_shape[0], oh, ow, w_shape[0]], np.int32)
    inputs = [out_shape, rand(*w_shape), (in_shape, F32)]
    if has_bias:
        inputs.append(rand(w_shape[0]))
    version = 4 if act != NONE else 1
    check(BuiltinOp.TRANSPOSE_CONV, inputs, [rand(*in_shape)],
          options=tconv_options(padding, stride, act), version=version)


def test_transpose_conv_runtime_weights():
    x, w = rand(1, 3, 4, 2), rand(3, 3, 3, 2)
    out_shape = np.array([1, 6, 8, 3], np.int32)
    check(BuiltinOp.TRANSPOSE_CONV, [out_shape, (w.shape, F32), (x.shape, F32)],
          [w, x], options=tconv_options(SAME, (2, 2)))


# --- FULLY_CONNECTED -------------------------------------------------------------------------

def fc_options(act=NONE, keep_num_dims=False):
    return {"fused_activation_function": act, "keep_num_dims": keep_num_dims,
            "weights_format": 0}


# (input shape, units, activation, bias, keep_num_dims)
FC_CASES = {
    "2d_relu": ((3, 10), 4, RELU, True, False),
    "no_bias": ((2, 7), 5, NONE, False, False),
    "flatten_4d": ((2, 3, 4, 5), 6, NONE, True, False),
    "flatten_across_batch": ((4, 6), 3, RELU6, True, False),
    "keep_num_dims_3d": ((2, 3, 8), 5, NONE, True, True),
    "1d_input": ((9,), 2, RELU_N1_TO_1, True, False),
    "unit1_depth1": ((5, 1), 1, NONE, True, False),
    "wide": ((1, 257), 33, NONE, True, False),
    "rows0": ((0, 4), 3, NONE, True, False),
    "units0": ((2, 4), 0, NONE, True, False),
    "scalar_input": ((), 3, NONE, True, False),
    "keep_num_dims_1d": ((4,), 3, RELU, True, True),
}


@pytest.mark.parametrize("case", FC_CASES, ids=list(FC_CASES))
def test_fully_connected(case):
    in_shape, units, act, has_bias, keep = FC_CASES[case]
    depth = {"flatten_4d": 20, "scalar_input": 1}.get(case) or in_shape[-1]
    inputs = [(in_shape, F32), rand(units, depth), rand(units) if has_bias else None]
    check(BuiltinOp.FULLY_CONNECTED, inputs, [rand(*in_shape)],
          options=fc_options(act, keep))


def test_fully_connected_runtime_weights():
    x, w, b = rand(3, 6), rand(4, 6), rand(4)
    check(BuiltinOp.FULLY_CONNECTED, [(x.shape, F32), (w.shape, F32), b],
          [x, w], options=fc_options())


# --- BATCH_MATMUL ----------------------------------------------------------------------------

# (lhs shape, rhs shape, adj_x, adj_y, rhs constant)
BMM_CASES = {
    "rank2": ((3, 4), (4, 5), False, False, False),
    "rank3": ((2, 3, 4), (2, 4, 5), False, False, False),
    "adj_x": ((2, 4, 3), (2, 4, 5), True, False, False),
    "adj_y": ((2, 3, 4), (2, 5, 4), False, True, False),
    "adj_both": ((2, 4, 3), (2, 5, 4), True, True, False),
    "broadcast_lhs_batch": ((1, 3, 4), (3, 4, 2), False, False, False),
    "broadcast_rank_diff": ((2, 1, 3, 4), (5, 4, 6), False, False, False),
    "broadcast_both_adj_y": ((2, 1, 3, 4), (1, 3, 6, 4), False, True, False),
    "rank5": ((2, 1, 2, 3, 4), (1, 3, 2, 4, 2), False, False, False),
    "rank4_vs_rank2": ((2, 3, 5, 4), (4, 3), False, False, True),
    "const_rhs_adj_y": ((3, 2, 7), (5, 7), False, True, True),
    "vector_like": ((4, 1, 6), (4, 6, 1), False, False, False),
}


@pytest.mark.parametrize("case", BMM_CASES, ids=list(BMM_CASES))
def test_batch_matmul(case):
    l_shape, r_shape, adj_x, adj_y, const_rhs = BMM_CASES[case]
    rhs = rand(*r_shape)
    inputs = [(l_shape, F32), rhs if const_rhs else (r_shape, F32)]
    feeds = [rand(*l_shape)] + ([] if const_rhs else [rhs])
    check(BuiltinOp.BATCH_MATMUL, inputs, feeds,
          options={"adj_x": adj_x, "adj_y": adj_y})


# --- random sweeps against LiteRT ------------------------------------------------------------
# Each seed draws one configuration (sizes, strides, dilations, padding, groups, activation), so a
# failure names a reproducible case. Sizes stay small: the point is the index arithmetic at the
# borders, which small odd sizes hit most often.

def _draw_forward(rng):
    padding = int(rng.integers(0, 2))
    k = [int(v) for v in rng.integers(1, 6, 2)]
    stride = [int(v) for v in rng.integers(1, 4, 2)]
    dilation = [int(v) for v in rng.choice([1, 1, 2, 3], 2)]
    eff = [(k[i] - 1) * dilation[i] + 1 for i in range(2)]
    low = [e if padding == VALID else 1 for e in eff]
    hw = [int(rng.integers(low[i], low[i] + 7)) for i in range(2)]
    n = int(rng.integers(1, 3))
    act = int(rng.choice([NONE, RELU, RELU_N1_TO_1, RELU6]))
    return n, hw, k, stride, dilation, padding, act


@pytest.mark.parametrize("seed", range(40))
def test_conv2d_sweep(seed):
    rng = np.random.default_rng(1000 + seed)
    n, (h, w), (kh, kw), stride, dilation, padding, act = _draw_forward(rng)
    groups = int(rng.choice([1, 1, 2, 3]))
    group_in, group_out = int(rng.integers(1, 5)), int(rng.integers(1, 4))
    in_shape = (n, h, w, groups * group_in)
    inputs = [(in_shape, F32), rand(groups * group_out, kh, kw, group_in),
              rand(groups * group_out)]
    check(BuiltinOp.CONV_2D, inputs, [rand(*in_shape)],
          options=conv_options(padding, stride, dilation, act))


@pytest.mark.parametrize("seed", range(30))
def test_depthwise_sweep(seed):
    rng = np.random.default_rng(2000 + seed)
    n, (h, w), (kh, kw), stride, dilation, padding, act = _draw_forward(rng)
    c, mult = int(rng.integers(1, 9)), int(rng.choice([1, 1, 2, 3]))
    in_shape = (n, h, w, c)
    inputs = [(in_shape, F32), rand(1, kh, kw, c * mult), rand(c * mult)]
    check(BuiltinOp.DEPTHWISE_CONV_2D, inputs, [rand(*in_shape)],
          options=dw_options(mult, padding, stride, dilation, act))


def _transpose_out_sizes(in_size, k, stride, padding):
    """Output sizes TFLite accepts for this input size: those that map back to it."""
    sizes = []
    for out in range(0, in_size * stride + k + 1):
        if padding == SAME:
            back = (out + stride - 1) // stride
        else:
            num = out - k + stride
            back = num // stride if num >= 0 else -((-num) // stride)
        if back == in_size:
            sizes.append(out)
    return sizes


@pytest.mark.parametrize("seed", range(30))
def test_transpose_conv_sweep(seed):
    rng = np.random.default_rng(3000 + seed)
    padding = int(rng.integers(0, 2))
    n, c, oc = int(rng.integers(1, 3)), int(rng.integers(1, 5)), int(rng.integers(1, 5))
    k = [int(v) for v in rng.integers(1, 6, 2)]
    stride = [int(v) for v in rng.integers(1, 4, 2)]
    hw = [int(v) for v in rng.integers(1, 6, 2)]
    out_hw = [int(rng.choice(_transpose_out_sizes(hw[i], k[i], stride[i], padding)))
              for i in range(2)]
    act = int(rng.choice([NONE, RELU, RELU6]))
    in_shape = (n, hw[0], hw[1], c)
    inputs = [np.array([n, *out_hw, oc], np.int32), rand(oc, k[0], k[1], c), (in_shape, F32)]
    if rng.integers(0, 2):
        inputs.append(rand(oc))
    check(BuiltinOp.TRANSPOSE_CONV, inputs, [rand(*in_shape)],
          options=tconv_options(padding, stride, act), version=4)


@pytest.mark.parametrize("seed", range(20))
def test_batch_matmul_sweep(seed):
    rng = np.random.default_rng(4000 + seed)
    rank = int(rng.integers(2, 6))
    batch = [int(v) for v in rng.integers(1, 4, rank - 2)]
    lb = [d if rng.integers(0, 3) else 1 for d in batch]
    rb = [d if rng.integers(0, 3) else 1 for d in batch]
    rb = rb[int(rng.integers(0, len(rb) + 1)):]  # rhs may have a lower rank
    m, k, n = (int(v) for v in rng.integers(1, 7, 3))
    adj_x, adj_y = bool(rng.integers(0, 2)), bool(rng.integers(0, 2))
    l_shape = tuple(lb) + ((k, m) if adj_x else (m, k))
    r_shape = tuple(rb) + ((n, k) if adj_y else (k, n))
    check(BuiltinOp.BATCH_MATMUL, [(l_shape, F32), (r_shape, F32)],
          [rand(*l_shape), rand(*r_shape)],
          options={"adj_x": adj_x, "adj_y": adj_y})


# --- every layer of real models -------------------------------------------------------------
# Each conv/matmul layer of the shared models is cut out into a one-op model (same weights, with
# fp16 weights dequantized as a folded DEQUANTIZE would; same options) and run on random input.
# Layers whose input has unknown dims in the file are left out: their stored shape is a
# placeholder. Layers with int8 weights (the qd8 models) run the QD8 path, tested with their
# weight scales in tests/test_qd8_kernels.py.

MY_OPS = {BuiltinOp.CONV_2D, BuiltinOp.DEPTHWISE_CONV_2D, BuiltinOp.TRANSPOSE_CONV,
          BuiltinOp.FULLY_CONNECTED, BuiltinOp.BATCH_MATMUL}


def _cut_layers(path):
    """(op, inputs, feeds, options, version, has_int8_weights) for each layer of my family."""
    from edgeq.tflite.reader import read_model

    sub = read_model(path).subgraphs[0]
    producer = {o: op for op in sub.operators for o in op.outputs}
    for op in sub.operators:
        if op.builtin_code not in MY_OPS:
            continue
        inputs, feeds, int8, dynamic = [], [], False, False
        for ti in op.inputs:
            if ti < 0:
                inputs.append(None)
                continue
            t = sub.tensors[ti]
            data = t.data
            src = producer.get(ti)
            if data is None and src is not None and src.builtin_code == BuiltinOp.DEQUANTIZE:
                w = sub.tensors[src.inputs[0]]
                if w.data is not None and w.dtype == np.float16:
                    data = w.data.astype(F32)
            if data is not None:
                int8 |= data.dtype in (np.int8, np.uint8)
                inputs.append(np.array(data))
            else:
                dynamic |= t.shape_signature is not None and -1 in t.shape_signature[1:]
                inputs.append((tuple(t.shape), t.dtype))
                feeds.append(RNG.standard_normal(t.shape).astype(t.dtype))
        if not dynamic:
            yield BuiltinOp(op.builtin_code), inputs, feeds, op.options, op.version, int8


@pytest.mark.parametrize("name", ["mobilenet_v2.fp32", "mobilenet_v2.qd8",
                                  "mobilenet_v3_small.fp16", "tiny_bert.fp32", "ds_cnn_kws.qd8",
                                  "face_detection_short_range"])
def test_real_model_layers(name):
    from harness import shared_model

    layers = list(_cut_layers(shared_model(f"{name}.tflite")))
    assert layers
    for op, inputs, feeds, options, version, int8 in layers:
        if not int8:
            check(op, inputs, feeds, options=options, version=version)


# --- empty tensors (LiteRT refuses most of these, so numpy is the reference) -----------------

def test_batch_matmul_empty_inner_dim_gives_zeros():
    (got,) = run_edgeq(single_op_model(BuiltinOp.BATCH_MATMUL, [((2, 3, 0), F32),
                                                                ((2, 0, 4), F32)]),
                       [rand(2, 3, 0), rand(2, 0, 4)])
    np.testing.assert_array_equal(got, np.zeros((2, 3, 4), F32))


@pytest.mark.parametrize("l_shape,r_shape,out_shape", [
    ((2, 0, 3), (2, 3, 4), (2, 0, 4)),
    ((0, 2, 3), (1, 3, 4), (0, 2, 4)),
    ((2, 3), (3, 0), (2, 0)),
])
def test_batch_matmul_empty_output(l_shape, r_shape, out_shape):
    (got,) = run_edgeq(single_op_model(BuiltinOp.BATCH_MATMUL, [(l_shape, F32), (r_shape, F32)]),
                       [rand(*l_shape), rand(*r_shape)])
    assert got.shape == out_shape and got.dtype == F32


def test_batch_matmul_rank7_beyond_litert():
    """LiteRT stops at rank 5; edgeq broadcasts any batch rank that collapses to 6 dims."""
    a, b = rand(2, 1, 2, 1, 2, 3, 4), rand(2, 1, 2, 1, 4, 2)
    (got,) = run_edgeq(single_op_model(BuiltinOp.BATCH_MATMUL, [(a.shape, F32), (b.shape, F32)]),
                       [a, b])
    want = np.matmul(a.astype(np.float64), b.astype(np.float64))
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("in_shape,f_shape,out_shape", [
    ((1, 0, 4, 2), (3, 3, 3, 2), (1, 0, 4, 3)),
    ((1, 4, 4, 2), (0, 3, 3, 2), (1, 4, 4, 0)),
])
def test_conv2d_empty(in_shape, f_shape, out_shape):
    inputs = [(in_shape, F32), rand(*f_shape), rand(f_shape[0])]
    (got,) = run_edgeq(single_op_model(BuiltinOp.CONV_2D, inputs, options=conv_options()),
                       [rand(*in_shape)])
    assert got.shape == out_shape


def test_depthwise_empty_height():
    inputs = [((1, 0, 4, 2), F32), rand(1, 3, 3, 4), rand(4)]
    (got,) = run_edgeq(single_op_model(BuiltinOp.DEPTHWISE_CONV_2D, inputs,
                                       options=dw_options(2)), [rand(1, 0, 4, 2)])
    assert got.shape == (1, 0, 4, 4)


# --- bad models ------------------------------------------------------------------------------

def test_conv2d_channel_mismatch():
    with pytest.raises(edgeq.ModelError, match=r"CONV_2D.*5 channels.*multiple.*3 input"):
        prepare_error(BuiltinOp.CONV_2D, [((1, 4, 4, 5), F32), rand(2, 3, 3, 3), rand(2)],
                      options=conv_options())


def test_conv2d_groups_do_not_split_outputs():
    with pytest.raises(edgeq.ModelError, match=r"5 output channels.*2 groups"):
        prepare_error(BuiltinOp.CONV_2D, [((1, 4, 4, 4), F32), rand(5, 3, 3, 2), rand(5)],
                      options=conv_options())


def test_conv2d_bias_wrong_length():
    with pytest.raises(edgeq.ModelError, match=r"bias .* 3 elements .* 2 output channels"):
        prepare_error(BuiltinOp.CONV_2D, [((1, 4, 4, 3), F32), rand(2, 3, 3, 3), rand(3)],
                      options=conv_options())


@pytest.mark.parametrize("field", ["stride_h", "stride_w", "dilation_h_factor",
                                   "dilation_w_factor"])
def test_conv2d_zero_stride_or_dilation(field):
    opts = conv_options()
    opts[field] = 0
    with pytest.raises(edgeq.ModelError, match=field):
        prepare_error(BuiltinOp.CONV_2D, [((1, 4, 4, 3), F32), rand(2, 3, 3, 3), rand(2)],
                      options=opts)


def test_conv2d_bad_padding():
    opts = conv_options()
    opts["padding"] = 7
    with pytest.raises(edgeq.ModelError, match=r"padding( |=)7"):
        prepare_error(BuiltinOp.CONV_2D, [((1, 4, 4, 3), F32), rand(2, 3, 3, 3), rand(2)],
                      options=opts)


def test_conv2d_valid_filter_larger_than_input():
    with pytest.raises(edgeq.ModelError, match=r"VALID.*filter height 5.*input height 3"):
        prepare_error(BuiltinOp.CONV_2D, [((1, 3, 8, 2), F32), rand(2, 5, 3, 2), rand(2)],
                      options=conv_options(VALID))


def test_conv2d_tanh_activation_refused():
    """TFLite's float kernels silently skip a fused TANH; edgeq refuses rather than differ."""
    with pytest.raises(edgeq.ModelError, match=r"fused_activation_function 4"):
        prepare_error(BuiltinOp.CONV_2D, [((1, 4, 4, 3), F32), rand(2, 3, 3, 3), rand(2)],
                      options=conv_options(act=4))


def test_conv2d_output_declared_int8_refused():
    with pytest.raises(edgeq.ModelError, match=r"output tensor 3 'out0' is declared int8"):
        prepare_error(BuiltinOp.CONV_2D, [((1, 4, 4, 3), F32), rand(2, 3, 3, 3), rand(2)],
                      options=conv_options(), output_dtype=np.int8)


def test_conv2d_wrong_rank():
    with pytest.raises(edgeq.ModelError, match=r"input .* rank 4"):
        prepare_error(BuiltinOp.CONV_2D, [((4, 4, 3), F32), rand(2, 3, 3, 3), rand(2)],
                      options=conv_options())


def test_conv2d_uint8_weights_refused():
    w = RNG.integers(0, 5, (2, 3, 3, 3)).astype(np.uint8)
    with pytest.raises(edgeq.ModelError,
                       match=r"CONV_2D.*dynamic-range int8 weights \(QD8\) are not supported "
                             r"yet.*filter tensor 1 'const1'"):
        prepare_error(BuiltinOp.CONV_2D, [((1, 4, 4, 3), F32), w, rand(2)],
                      options=conv_options())


def test_conv2d_int8_activations_refused():
    w = RNG.integers(-5, 5, (2, 3, 3, 3)).astype(np.int8)
    with pytest.raises(edgeq.ModelError, match=r"int8 activations are not supported"):
        prepare_error(BuiltinOp.CONV_2D,
                      [((1, 4, 4, 3), np.int8), w, np.zeros(2, np.int32)],
                      options=conv_options(), output_dtype=np.int8)


def test_depthwise_channel_mismatch():
    with pytest.raises(edgeq.ModelError, match=r"filter has 5 channels.*multiple.*3"):
        prepare_error(BuiltinOp.DEPTHWISE_CONV_2D, [((1, 4, 4, 3), F32), rand(1, 3, 3, 5)],
                      options=dw_options(1))


def test_depthwise_bias_wrong_length():
    with pytest.raises(edgeq.ModelError, match=r"bias .* 3 elements .* 6 output channels"):
        prepare_error(BuiltinOp.DEPTHWISE_CONV_2D,
                      [((1, 4, 4, 3), F32), rand(1, 3, 3, 6), rand(3)], options=dw_options(2))


def test_depthwise_zero_stride():
    with pytest.raises(edgeq.ModelError, match=r"stride_w( is |=)0"):
        prepare_error(BuiltinOp.DEPTHWISE_CONV_2D, [((1, 4, 4, 3), F32), rand(1, 3, 3, 3)],
                      options=dw_options(1, stride=(1, 0)))


def test_transpose_conv_output_channels_mismatch():
    with pytest.raises(edgeq.ModelError, match=r"output_shape .* 4 channels .* produce 2"):
        prepare_error(BuiltinOp.TRANSPOSE_CONV,
                      [np.array([1, 8, 8, 4], np.int32), rand(2, 3, 3, 3), ((1, 4, 4, 3), F32)],
                      options=tconv_options(SAME, (2, 2)))


def test_transpose_conv_input_channels_mismatch():
    with pytest.raises(edgeq.ModelError, match=r"input has 5 channels .* expect 3"):
        prepare_error(BuiltinOp.TRANSPOSE_CONV,
                      [np.array([1, 8, 8, 2], np.int32), rand(2, 3, 3, 3), ((1, 4, 4, 5), F32)],
                      options=tconv_options(SAME, (2, 2)))


@pytest.mark.parametrize("out_hw", [(5, 8), (12, 8), (8, 3)])
def test_transpose_conv_output_shape_does_not_fit_input(out_hw):
    out_shape = np.array([1, *out_hw, 2], np.int32)
    with pytest.raises(edgeq.ModelError, match=r"output_shape .* does not fit the input"):
        prepare_error(BuiltinOp.TRANSPOSE_CONV,
                      [out_shape, rand(2, 3, 3, 3), ((1, 4, 4, 3), F32)],
                      options=tconv_options(SAME, (2, 2)))


def test_transpose_conv_batch_mismatch():
    with pytest.raises(edgeq.ModelError, match=r"batch 2 .* input has 1"):
        prepare_error(BuiltinOp.TRANSPOSE_CONV,
                      [np.array([2, 8, 8, 2], np.int32), rand(2, 3, 3, 3), ((1, 4, 4, 3), F32)],
                      options=tconv_options(SAME, (2, 2)))


def test_transpose_conv_runtime_output_shape_refused():
    with pytest.raises(edgeq.ModelError, match=r"output_shape .* must be constant"):
        prepare_error(BuiltinOp.TRANSPOSE_CONV,
                      [((4,), np.int32), rand(2, 3, 3, 3), ((1, 4, 4, 3), F32)],
                      options=tconv_options(SAME, (2, 2)))


def test_transpose_conv_bias_wrong_length():
    with pytest.raises(edgeq.ModelError, match=r"bias .* 3 elements .* 2 output channels"):
        prepare_error(BuiltinOp.TRANSPOSE_CONV,
                      [np.array([1, 8, 8, 2], np.int32), rand(2, 3, 3, 3), ((1, 4, 4, 3), F32),
                       rand(3)], options=tconv_options(SAME, (2, 2)))


def test_transpose_conv_zero_stride():
    with pytest.raises(edgeq.ModelError, match=r"stride_h( is |=)0"):
        prepare_error(BuiltinOp.TRANSPOSE_CONV,
                      [np.array([1, 8, 8, 2], np.int32), rand(2, 3, 3, 3), ((1, 4, 4, 3), F32)],
                      options=tconv_options(SAME, (0, 2)))


def test_fully_connected_input_not_whole_rows():
    with pytest.raises(edgeq.ModelError, match=r"input shape \[2, 7\].*depth 4"):
        prepare_error(BuiltinOp.FULLY_CONNECTED, [((2, 7), F32), rand(3, 4), rand(3)],
                      options=fc_options())


def test_fully_connected_bias_wrong_length():
    with pytest.raises(edgeq.ModelError, match=r"bias .* 4 elements .* 3 output channels"):
        prepare_error(BuiltinOp.FULLY_CONNECTED, [((2, 4), F32), rand(3, 4), rand(4)],
                      options=fc_options())


def test_fully_connected_keep_num_dims_mismatch():
    with pytest.raises(edgeq.ModelError, match=r"keep_num_dims"):
        prepare_error(BuiltinOp.FULLY_CONNECTED, [((2, 2, 4), F32), rand(3, 8), rand(3)],
                      options=fc_options(keep_num_dims=True))


def test_fully_connected_shuffled_weights_refused():
    opts = fc_options()
    opts["weights_format"] = 1
    with pytest.raises(edgeq.ModelError, match=r"weights_format 1"):
        prepare_error(BuiltinOp.FULLY_CONNECTED, [((2, 4), F32), rand(3, 4), rand(3)],
                      options=opts)


def test_batch_matmul_inner_mismatch():
    with pytest.raises(edgeq.ModelError, match=r"inner dimensions differ.*gives 4.*gives 5"):
        prepare_error(BuiltinOp.BATCH_MATMUL, [((2, 3, 4), F32), ((2, 5, 6), F32)],
                      options={"adj_x": False, "adj_y": False})


def test_batch_matmul_batch_not_broadcastable():
    with pytest.raises(edgeq.ModelError, match=r"cannot be broadcast"):
        prepare_error(BuiltinOp.BATCH_MATMUL, [((2, 3, 4), F32), ((3, 4, 6), F32)],
                      options={"adj_x": False, "adj_y": False})


def test_batch_matmul_rank1_refused():
    with pytest.raises(edgeq.ModelError, match=r"rank >= 2"):
        prepare_error(BuiltinOp.BATCH_MATMUL, [((4,), F32), ((4, 6), F32)],
                      options={"adj_x": False, "adj_y": False})
