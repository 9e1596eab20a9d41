"""Elementwise ops against LiteRT (the reference) and, at kernel level, against numpy."""
from __future__ import annotations

import ctypes
import platform

import numpy as np
import pytest

import edgeq
from edgeq.ops.common import BROADCAST_DIMS, broadcast_strides
from edgeq.ops.elementwise import BinaryParams, SelectParams
from edgeq.runtime import run_kernel
from edgeq.tflite.schema import BuiltinOp as B
from edgeq.tflite.writer import ModelBuilder
from harness import (assert_close_to_range, check_against_litert, run_edgeq, run_litert,
                     single_op_model)

RNG = np.random.default_rng(1234)
F32, I32, I64, BOOL = np.float32, np.int32, np.int64, np.bool_


# ---------------------------------------------------------------------------------------------
# Helpers


def assert_identical(actual, expected, what="output"):
    """Same shape, dtype and bytes (NaNs compare by position, not by payload)."""
    actual, expected = np.asarray(actual), np.asarray(expected)
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape} != {expected.shape}"
    assert actual.dtype == expected.dtype, f"{what}: dtype {actual.dtype} != {expected.dtype}"
    if np.issubdtype(expected.dtype, np.floating):
        nan = np.isnan(expected)
        np.testing.assert_array_equal(np.isnan(actual), nan, err_msg=what)
        np.testing.assert_array_equal(actual[~nan], expected[~nan], err_msg=what)
        np.testing.assert_array_equal(np.signbit(actual[~nan]), np.signbit(expected[~nan]),
                                      err_msg=f"{what}: sign of zero")
    else:
        np.testing.assert_array_equal(actual, expected, err_msg=what)


def run_litert_reference_kernels(model: bytes, feeds: list):
    """LiteRT with its reference kernels and no XNNPACK delegate (TFLite's own definition)."""
    return run_litert(model, feeds, kernels="reference")


def edgeq_single(op, inputs, feeds, **kwargs):
    return run_edgeq(single_op_model(op, inputs, **kwargs), feeds)


def data(shape, dtype, low=-5, high=5):
    if np.dtype(dtype) == np.bool_:
        return RNG.random(shape) < 0.5
    if np.issubdtype(dtype, np.integer):
        return RNG.integers(low, high + 1, shape).astype(dtype)
    return RNG.uniform(low, high, shape).astype(dtype)


def nonzero(shape, dtype, low=-7, high=7):
    x = data(shape, dtype, low, high)
    x[np.abs(x) < 0.5] = 3
    return x


# ---------------------------------------------------------------------------------------------
# Binary arithmetic against LiteRT

SHAPE_PAIRS = [
    ((), ()),
    ((5,), ()),
    ((), (3, 4)),
    ((2, 3, 4), (4,)),
    ((2, 1, 4), (1, 3, 1)),
    ((3, 1), (1, 5)),
    ((1, 2, 3, 4), (2, 1, 3, 1)),
    ((2, 1, 3, 1, 5), (1, 4, 1, 2, 1)),
    ((1, 2, 1, 3, 1, 5), (2, 1, 4, 1, 2, 1)),
    ((3, 2, 2, 1, 2, 3), (3, 2, 2, 1, 2, 3)),
    ((0, 3), (1, 3)),
    ((4, 0), ()),
    ((37, 129), (37, 129)),
    ((3, 50, 70), (50, 1)),
    ((64, 4099), (4099,)),
]

# op -> (dtypes, (input a, input b) generator, numpy reference)
BINARY = {
    B.ADD: ((F32, I32, I64), None, lambda a, b: a + b),
    B.SUB: ((F32, I32, I64), None, lambda a, b: a - b),
    B.MUL: ((F32, I32, I64), None, lambda a, b: a * b),
    B.DIV: ((F32, I32), "nonzero_b",
            lambda a, b: (a / b) if a.dtype == F32 else np.fix(a / b.astype(np.float64))
            .astype(a.dtype)),
    B.SQUARED_DIFFERENCE: ((F32, I32), None, lambda a, b: (a - b) * (a - b)),
    B.MAXIMUM: ((F32, I32, I64), None, lambda a, b: np.where(a > b, a, b)),
    B.MINIMUM: ((F32, I32, I64), None, lambda a, b: np.where(a < b, a, b)),
    B.POW: ((F32, I32), "pow", lambda a, b: np.power(a, b)),
    B.FLOOR_DIV: ((F32, I32), "nonzero_b",
                  lambda a, b: np.floor(a.astype(np.float64) / b).astype(a.dtype)),
    B.FLOOR_MOD: ((F32, I32, I64), "nonzero_b", lambda a, b: np.mod(a, b)),
}


def binary_inputs(op, sa, sb, dtype):
    kind = BINARY[op][1] if op in BINARY else None
    if kind == "pow":
        if dtype == F32:
            return data(sa, dtype, 0.1, 3), data(sb, dtype, -2, 2)
        return data(sa, dtype, -4, 4), data(sb, dtype, 0, 6)
    a = data(sa, dtype, -9, 9)
    return a, (nonzero(sb, dtype) if kind == "nonzero_b" else data(sb, dtype, -9, 9))


def compare_binary(op, sa, sb, dtype, out_dtype=None, options=None, a=None, b=None):
    if a is None:
        a, b = binary_inputs(op, sa, sb, dtype)
    model = single_op_model(op, [(sa, dtype), (sb, dtype)], output_dtype=out_dtype or dtype,
                            options=options)
    expected = run_litert(model, [a, b])[0]
    actual = run_edgeq(model, [a, b])[0]
    assert_close_to_range(actual, expected)
    return actual


@pytest.mark.parametrize("op", list(BINARY), ids=lambda o: o.name)
def test_binary_against_litert(op):
    dtypes = BINARY[op][0]
    for dtype in dtypes:
        for sa, sb in SHAPE_PAIRS:
            compare_binary(op, sa, sb, dtype)
            compare_binary(op, sb, sa, dtype)


@pytest.mark.parametrize("op", [B.ADD, B.SUB, B.MUL, B.DIV], ids=lambda o: o.name)
@pytest.mark.parametrize("act", [1, 2, 3], ids=["relu", "relu_n1_to_1", "relu6"])
def test_fused_activation(op, act):
    for dtype in (F32, I32):
        a = data((4, 9), dtype, -12, 12)
        b = nonzero((9,), dtype, -3, 3)
        out = compare_binary(op, (4, 9), (9,), dtype, options={"fused_activation_function": act},
                             a=a, b=b)
        lo, hi = {1: (0, np.inf), 2: (-1, 1), 3: (0, 6)}[act]
        assert out.min() >= lo and out.max() <= hi


def test_int_arithmetic_edges():
    imin, imax = np.iinfo(np.int32).min, np.iinfo(np.int32).max
    a = np.array([imax, imin, -7, 7, -7, 7, 0, imin + 1], I32)
    b = np.array([1, -1, 2, -2, -2, 2, 5, -1], I32)
    # Overflow wraps (LiteRT on x86 wraps too).
    for op in (B.ADD, B.SUB, B.MUL):
        compare_binary(op, a.shape, b.shape, I32, a=a, b=b)
    # INT_MIN / -1 traps on x86: compare the rest with LiteRT, that element with the wrap.
    for op in (B.DIV, B.FLOOR_DIV, B.FLOOR_MOD):
        compare_binary(op, (6,), (6,), I32, a=np.delete(a, 1), b=np.delete(b, 1))
        out = edgeq_single(op, [((2,), I32), ((2,), I32)], [a[1:3], b[1:3]], output_dtype=I32)[0]
        assert out[0] == (0 if op == B.FLOOR_MOD else imin)
    # Truncating vs flooring division and the sign of the modulus.
    x = np.array([-7, 7, -7, 7, -6, 6, 0], I32)
    y = np.array([2, 2, -2, -2, 3, -3, -4], I32)
    np.testing.assert_array_equal(compare_binary(B.DIV, x.shape, y.shape, I32, a=x, b=y),
                                  [-3, 3, 3, -3, -2, -2, 0])
    np.testing.assert_array_equal(compare_binary(B.FLOOR_DIV, x.shape, y.shape, I32, a=x, b=y),
                                  [-4, 3, 3, -4, -2, -2, 0])
    np.testing.assert_array_equal(compare_binary(B.FLOOR_MOD, x.shape, y.shape, I32, a=x, b=y),
                                  [1, 1, -1, -1, 0, 0, 0])
    for dtype in (F32, I64):
        compare_binary(B.FLOOR_MOD, x.shape, y.shape, dtype, a=x.astype(dtype), b=y.astype(dtype))
    compare_binary(B.FLOOR_DIV, x.shape, y.shape, F32, a=x.astype(F32), b=y.astype(F32))
    # int32 POW goes through double pow; a big result converts as the CPU's own double->int32
    # truncation does, as in LiteRT: INT32_MIN on x86, saturation by sign on ARM.
    p = np.array([2, -3, 10, 0, 1, -1, 7, 3, 10, -3, 2], I32)
    e = np.array([30, 5, 3, 0, 9, 7, 11, 25, 12, 21, 31], I32)
    out = compare_binary(B.POW, p.shape, e.shape, I32, a=p, b=e)
    if platform.machine().lower() in ("aarch64", "arm64"):
        big = p[-4:].astype(np.float64) ** e[-4:]
        np.testing.assert_array_equal(out[-4:], np.where(big > 0, imax, imin))
    else:
        assert (out[-4:] == imin).all()


def test_float_special_values():
    a = np.array([np.nan, 1, np.nan, 2, np.inf, -np.inf, 0, -0.0], F32)
    b = np.array([1, np.nan, np.nan, 3, 1, 2, 0, 0], F32)
    for op in (B.MAXIMUM, B.MINIMUM, B.ADD, B.MUL, B.DIV, B.SQUARED_DIFFERENCE):
        compare_binary(op, a.shape, b.shape, F32, a=a, b=b)
    # Equal operands: MAXIMUM / MINIMUM return the second one (visible on signed zeros).
    z1, z2 = np.array([0.0, -0.0, 0.0, -0.0], F32), np.array([-0.0, 0.0, 0.0, -0.0], F32)
    for op in (B.MAXIMUM, B.MINIMUM):
        model = single_op_model(op, [((4,), F32), ((4,), F32)])
        assert_identical(run_edgeq(model, [z1, z2])[0], run_litert(model, [z1, z2])[0], op.name)


# ---------------------------------------------------------------------------------------------
# Comparisons and logical ops

COMPARISONS = [B.LESS, B.LESS_EQUAL, B.GREATER, B.GREATER_EQUAL, B.EQUAL, B.NOT_EQUAL]


@pytest.mark.parametrize("op", COMPARISONS, ids=lambda o: o.name)
def test_comparisons(op):
    dtypes = (F32, I32, I64) + ((BOOL,) if op in (B.EQUAL, B.NOT_EQUAL) else ())
    for dtype in dtypes:
        for sa, sb in SHAPE_PAIRS:
            a, b = data(sa, dtype, -2, 2), data(sb, dtype, -2, 2)
            if dtype == F32:  # plenty of ties
                a, b = np.round(a), np.round(b)
            out = compare_binary(op, sa, sb, dtype, out_dtype=BOOL, a=a, b=b)
            assert out.dtype == np.bool_


def test_comparisons_nan():
    a = np.array([np.nan, 1, np.nan], F32)
    b = np.array([1, np.nan, np.nan], F32)
    for op in COMPARISONS:
        compare_binary(op, a.shape, b.shape, F32, out_dtype=BOOL, a=a, b=b)


@pytest.mark.parametrize("op", [B.LOGICAL_AND, B.LOGICAL_OR], ids=lambda o: o.name)
def test_logical_binary(op):
    for sa, sb in SHAPE_PAIRS:
        compare_binary(op, sa, sb, BOOL)


def test_logical_not():
    for shape in [(), (7,), (0, 3), (3, 40, 17)]:
        check_against_litert(B.LOGICAL_NOT, [(shape, BOOL)], [data(shape, BOOL)],
                             output_dtype=BOOL)


# ---------------------------------------------------------------------------------------------
# SELECT / SELECT_V2


def test_select_v2_broadcast():
    cases = [((), (), ()), ((4,), (), (4,)), ((2, 1, 4), (1, 3, 1), (3, 4)),
             ((3, 1), (1, 5), ()), ((2, 3, 1), (2, 3, 4), (4,)), ((0, 2), (1, 2), (2,)),
             ((1, 40, 1), (2, 40, 33), (33,)), ((2, 2, 1, 3), (2, 1, 2, 3), (2, 1, 1))]
    for dtype in (F32, I32, I64, BOOL, np.float16, np.int16, np.int8, np.uint8):
        for sc, sx, sy in cases:
            feeds = [data(sc, BOOL), data(sx, dtype), data(sy, dtype)]
            check_against_litert(B.SELECT_V2, [(sc, BOOL), (sx, dtype), (sy, dtype)], feeds,
                                 output_dtype=dtype)


def test_select_v1_condition_forms():
    for sc, sx in [((3, 4), (3, 4)), ((3,), (3, 4, 2)), ((), (2, 5)), ((5,), (5,)), ((), ())]:
        for dtype in (F32, I32):
            feeds = [data(sc, BOOL), data(sx, dtype), data(sx, dtype)]
            check_against_litert(B.SELECT, [(sc, BOOL), (sx, dtype), (sx, dtype)], feeds,
                                 output_dtype=dtype)


def test_select_uses_declared_shape_for_single_elements():
    # TFLite keeps the model's own output shape when every operand has one element.
    model = single_op_model(B.SELECT_V2, [((1,), BOOL), ((1, 1), F32), ((), F32)],
                            output_shapes=[(1, 1, 1)])
    feeds = [np.array([False]), np.array([[2.0]], F32), np.array(5.0, F32)]
    expected = run_litert(model, feeds)[0]
    actual = run_edgeq(model, feeds)[0]
    assert_identical(actual, expected)
    assert actual.shape == (1, 1, 1) and actual[0, 0, 0] == 5.0


# ---------------------------------------------------------------------------------------------
# Unary math and activations

UNARY_SHAPES = [(), (1,), (7,), (0, 5), (3, 4, 5), (2, 1, 3, 1, 2, 2), (65, 257)]

# op -> (dtypes, low, high)
UNARY = {
    B.NEG: ((F32, I32, I64), -9, 9),
    B.ABS: ((F32, I32), -9, 9),
    B.SQRT: ((F32,), 0, 50),
    B.RSQRT: ((F32,), 0.05, 50),
    B.EXP: ((F32,), -10, 10),
    B.LOG: ((F32,), 0.01, 100),
    B.SQUARE: ((F32,), -9, 9),
    B.FLOOR: ((F32,), -9, 9),
    B.CEIL: ((F32,), -9, 9),
    B.ROUND: ((F32,), -9, 9),
    B.SIN: ((F32,), -7, 7),
    B.COS: ((F32,), -7, 7),
    B.LOGISTIC: ((F32,), -12, 12),
    B.TANH: ((F32,), -6, 6),
    B.RELU: ((F32,), -6, 9),
    B.RELU6: ((F32,), -6, 9),
    B.RELU_N1_TO_1: ((F32,), -3, 3),
    B.RELU_0_TO_1: ((F32,), -3, 3),
    B.HARD_SWISH: ((F32,), -6, 6),
    B.ELU: ((F32,), -6, 6),
    B.GELU: ((F32,), -6, 6),
    B.LEAKY_RELU: ((F32,), -6, 6),
}


@pytest.mark.parametrize("op", list(UNARY), ids=lambda o: o.name)
def test_unary_against_litert(op):
    dtypes, low, high = UNARY[op]
    for dtype in dtypes:
        for shape in UNARY_SHAPES:
            x = data(shape, dtype, low, high)
            options = {"alpha": 0.2} if op == B.LEAKY_RELU else None
            check_against_litert(op, [(shape, dtype)], [x], output_dtype=dtype, options=options)


def test_unary_special_values():
    x = np.array([-2.5, -1.5, -0.5, 0.5, 1.5, 2.5, 3.5, -0.0, 0.0, 1e30, -1e30, np.inf, -np.inf,
                  np.nan, 0.49999997, -3.2, 3.7, 8388609.0], F32)
    for op in (B.ROUND, B.FLOOR, B.CEIL, B.ABS, B.RELU, B.RELU6, B.RELU_N1_TO_1,
               B.RELU_0_TO_1, B.SQUARE):
        model = single_op_model(op, [(x.shape, F32)])
        assert_identical(run_edgeq(model, [x])[0], run_litert(model, [x])[0], op.name)
    # LiteRT's default NEG gives +0.0 for -(+0.0); TFLite's reference (and edgeq) give -0.0.
    model = single_op_model(B.NEG, [(x.shape, F32)])
    assert_close_to_range(run_edgeq(model, [x])[0], run_litert(model, [x])[0])
    assert_identical(run_edgeq(model, [x])[0], run_litert_reference_kernels(model, [x])[0])
    for op in (B.TANH, B.ELU, B.HARD_SWISH, B.GELU, B.LEAKY_RELU):
        check_against_litert(op, [(x.shape, F32)], [x])
    # LiteRT 2.3's XNNPACK LOGISTIC returns NaN for +-1e30 (its range reduction overflows);
    # TFLite's reference kernel, like edgeq, saturates to 1 and 0.
    check_against_litert(B.LOGISTIC, [(x.shape, F32)], [x], kernels="reference")
    model = single_op_model(B.LOGISTIC, [(x.shape, F32)])
    np.testing.assert_array_equal(run_edgeq(model, [x])[0][9:13], [1, 0, 1, 0])
    # LiteRT's vectorized EXP maps NaN to 0 (std::exp, TFLite's reference, keeps NaN).
    finite_or_inf = x[~np.isnan(x)]
    check_against_litert(B.EXP, [(finite_or_inf.shape, F32)], [finite_or_inf])
    model = single_op_model(B.ROUND, [(x.shape, F32)])
    np.testing.assert_array_equal(run_edgeq(model, [x])[0][:7], [-2, -2, -0, 0, 2, 2, 4])
    i = np.array([np.iinfo(np.int32).min, -3, 0, 5], I32)
    for op in (B.NEG, B.ABS):
        model = single_op_model(op, [(i.shape, I32)], output_dtype=I32)
        assert_identical(run_edgeq(model, [i])[0], run_litert(model, [i])[0], op.name)


@pytest.mark.parametrize("approximate", [False, True])
def test_gelu_forms(approximate):
    x = np.linspace(-8, 8, 1001, dtype=F32)
    out = check_against_litert(B.GELU, [(x.shape, F32)], [x],
                               options={"approximate": approximate})[0]
    # The two forms differ by up to ~5e-4 near |x| = 2: make sure each matches its own formula.
    from math import erf, sqrt, tanh, pi
    if approximate:
        ref = [0.5 * v * (1 + tanh(sqrt(2 / pi) * (v + 0.044715 * v ** 3))) for v in x.tolist()]
    else:
        ref = [0.5 * v * (1 + erf(v / sqrt(2))) for v in x.tolist()]
    np.testing.assert_allclose(out, np.array(ref), rtol=0, atol=2e-6)


@pytest.mark.parametrize("alpha", [0.0, 0.01, 0.3, -1.5, 2.0])
def test_leaky_relu_alpha(alpha):
    x = data((5, 17), F32, -4, 4)
    out = check_against_litert(B.LEAKY_RELU, [(x.shape, F32)], [x], options={"alpha": alpha})[0]
    np.testing.assert_allclose(out, np.where(x > 0, x, alpha * x), rtol=1e-6)


def test_prelu():
    # MediaPipe: [1, 1, C] constant alpha against [N, H, W, C]; also runtime alpha, full-shape
    # alpha, scalar alpha and 0-size input.
    cases = [((1, 6, 7, 8), (1, 1, 8), True), ((2, 5, 4), (4,), True), ((3, 4), (3, 4), False),
             ((2, 4, 3), (4, 1), False), ((4,), (), True), ((0, 3), (3,), True),
             ((1, 2, 3, 4, 5), (1, 1, 1, 5), True)]
    for sx, sa, const in cases:
        x = data(sx, F32, -5, 5)
        alpha = data(sa, F32, -0.5, 0.5)
        if const:
            out = check_against_litert(B.PRELU, [(sx, F32), alpha], [x])[0]
        else:
            out = check_against_litert(B.PRELU, [(sx, F32), (sa, F32)], [x, alpha])[0]
        np.testing.assert_allclose(out, np.where(x >= 0, x, x * alpha), rtol=1e-6)
    # x >= 0 keeps x (TFLite's reference; LiteRT runs a runtime alpha on it): -0.0 stays -0.0,
    # +0.0 is not multiplied by a negative alpha.
    x = np.array([0.0, -0.0, 0.0, -0.0], F32)
    alpha = np.array([-0.5, -0.5, 0.5, 0.5], F32)
    model = single_op_model(B.PRELU, [((4,), F32), ((4,), F32)])
    assert_identical(run_edgeq(model, [x, alpha])[0], run_litert(model, [x, alpha])[0])


# ---------------------------------------------------------------------------------------------
# CAST

CAST_TYPES = [np.float32, np.float16, np.int64, np.int32, np.int16, np.int8, np.uint8, np.bool_]


def cast_source(dtype):
    if dtype == np.bool_:
        return np.array([True, False, True, True, False])
    if np.issubdtype(dtype, np.floating):
        vals = [0, -0.0, 0.4, -0.6, 2.7, -2.7, 127.5, -128.9, 255.9, 300, -300, 40000, -40000,
                65504, 3e9, -3e9, 1e19, -1e19, np.inf, -np.inf, np.nan, 1.0 / 3]
        with np.errstate(over="ignore"):
            return np.array(vals, np.float32).astype(dtype)
    info = np.iinfo(dtype)
    vals = [0, 1, -1, 127, -128, 255, 256, 300, -300, 32767, -32769, 2 ** 31, -2 ** 31 - 5,
            2 ** 40 + 7, 16777217, info.min, info.max]
    return np.array([v for v in vals if info.min <= v <= info.max], dtype)


@pytest.mark.parametrize("src", CAST_TYPES, ids=lambda t: np.dtype(t).name)
def test_cast_all_pairs(src):
    x = cast_source(src)
    for dst in CAST_TYPES:
        model = single_op_model(B.CAST, [(x.shape, src)], output_dtype=dst)
        expected = run_litert(model, [x])[0]
        actual = run_edgeq(model, [x])[0]
        assert_identical(actual, expected, f"{np.dtype(src)} -> {np.dtype(dst)}")
    # shapes: scalar, 0-size, large
    for shape in [(), (0, 4), (300, 301)]:
        check_against_litert(B.CAST, [(shape, src)], [data(shape, src, 0, 100)],
                             output_dtype=np.int32)


def test_cast_f32_f16_rounding_exhaustive():
    # every half, the midpoints between neighbours (ties to even) and random floats
    halves = np.arange(65536, dtype=np.uint16).view(np.float16)
    h32 = halves[np.isfinite(halves)].astype(np.float32)
    h32.sort()
    mids = ((h32[:-1].astype(np.float64) + h32[1:]) / 2).astype(np.float32)
    rand = RNG.integers(0, 2 ** 32, 200_000, dtype=np.uint64).astype(np.uint32).view(np.float32)
    x = np.concatenate([h32, mids, rand[np.isfinite(rand)]]).astype(np.float32)
    out = np.empty(x.shape, np.float16)
    run_kernel("cast_f32_f16", None, [x], [out])
    with np.errstate(over="ignore"):
        np.testing.assert_array_equal(out.view(np.uint16), x.astype(np.float16).view(np.uint16))
    back = np.empty(halves.shape, np.float32)
    run_kernel("cast_f16_f32", None, [halves], [back])
    assert_identical(back, halves.astype(np.float32))


# ---------------------------------------------------------------------------------------------
# DEQUANTIZE


def dequant_add_model(const, quantization, runtime_shape):
    """DEQUANTIZE(const) -> ADD(input): LiteRT has to run the DEQUANTIZE as written."""
    b = ModelBuilder(description="dequantize test")
    w = b.add_tensor("w", const.shape, const.dtype, data=const, quantization=quantization)
    wf = b.add_tensor("w_float", const.shape, np.float32)
    x = b.add_tensor("x", runtime_shape, np.float32)
    y = b.add_tensor("y", [], np.float32)
    b.add_operator(B.DEQUANTIZE, [w], [wf])
    b.add_operator(B.ADD, [wf, x], [y])
    b.set_inputs([x])
    b.set_outputs([y])
    return b.build()


def check_dequant(const, quantization, expected_weights):
    x_shape = const.shape[-1:] if const.ndim else ()
    x = np.full(x_shape, -0.0, np.float32)  # w + (-0.0) == w exactly, signed zeros included
    model = dequant_add_model(const, quantization, x_shape)
    actual = run_edgeq(model, [x])[0]
    # XNNPACK (LiteRT's default) rounds int8 per-tensor dequantization differently in the last
    # bit; TFLite's reference kernels round (q - zero_point) * scale once, as edgeq does.
    assert_close_to_range(actual, run_litert(model, [x])[0])
    # (the reference ADD clamps +-inf to +-FLT_MAX, XNNPACK and edgeq keep inf: finite only)
    finite = np.isfinite(actual)
    assert_identical(actual[finite], run_litert_reference_kernels(model, [x])[0][finite])
    assert_identical(actual, np.broadcast_to(expected_weights, actual.shape).astype(np.float32))


def test_dequantize_fp16_constant():
    w = np.concatenate([np.arange(65536, dtype=np.uint16).view(np.float16)[:63488],
                        RNG.standard_normal(4096).astype(np.float16)]).reshape(-1, 32)
    check_dequant(w, None, w.astype(np.float32))
    s = np.array(1.5, np.float16)
    check_dequant(s, None, s.astype(np.float32))


@pytest.mark.parametrize("shape,axis", [((8, 3, 3, 5), 0), ((1, 3, 3, 16), 3), ((4, 6, 7), 1),
                                        ((5,), 0)])
def test_dequantize_int8_per_channel(shape, axis):
    q = RNG.integers(-128, 128, shape).astype(np.int8)
    n = shape[axis]
    scale = RNG.uniform(0.001, 0.1, n).astype(np.float32)
    zp = RNG.integers(-10, 10, n).astype(np.int64)
    bshape = [1] * len(shape)
    bshape[axis] = n
    ref = ((q.astype(np.int32) - zp.reshape(bshape)).astype(np.float32)
           * scale.reshape(bshape)).astype(np.float32)
    check_dequant(q, dict(scale=scale, zero_point=zp, quantized_dimension=axis), ref)


@pytest.mark.parametrize("dtype,zp", [(np.int8, -3), (np.uint8, 128), (np.int16, 0)])
def test_dequantize_per_tensor(dtype, zp):
    info = np.iinfo(dtype)
    q = RNG.integers(info.min, info.max + 1, (3, 7, 11)).astype(dtype)
    scale = np.float32(0.0123)
    ref = (q.astype(np.int32) - zp).astype(np.float32) * scale
    check_dequant(q, dict(scale=[scale], zero_point=[zp]), ref)


def test_dequantize_uint8_per_channel_runtime_input():
    # A non-constant quantized input: the kernel runs per inference.
    b = ModelBuilder()
    scale = np.array([0.5, 0.25, 2.0], np.float32)
    zp = np.array([128, 100, 0])
    x = b.add_tensor("x", [2, 3], np.uint8,
                     quantization=dict(scale=scale, zero_point=zp, quantized_dimension=1))
    y = b.add_tensor("y", [2, 3], np.float32)
    b.add_operator(B.DEQUANTIZE, [x], [y])
    b.set_inputs([x])
    b.set_outputs([y])
    model = b.build()
    feed = np.array([[0, 255, 7], [128, 100, 1]], np.uint8)
    out = run_edgeq(model, [feed])[0]
    assert_identical(out, ((feed.astype(np.int32) - zp) * scale).astype(np.float32))


def test_dequantize_kernel_large_weights():
    # millions of weights at load: per-channel kernel against numpy, byte for byte
    q = RNG.integers(-128, 128, (1024, 4096), dtype=np.int8)
    scale = RNG.uniform(1e-4, 1e-1, 1024).astype(np.float32)
    zp = RNG.integers(-5, 5, 1024).astype(np.int32)
    from edgeq.ops.elementwise import DequantizePerChannelParams
    out = np.empty(q.shape, np.float32)
    run_kernel("dequantize_pc_i8_f32", bytes(DequantizePerChannelParams(1, 1024, 4096)),
               [q, scale, zp], [out])
    ref = (q.astype(np.int32) - zp[:, None]).astype(np.float32) * scale[:, None]
    assert_identical(out, ref)


# ---------------------------------------------------------------------------------------------
# Kernel-level sweeps against numpy

REFERENCE = {
    B.ADD: lambda a, b: a + b,
    B.SUB: lambda a, b: a - b,
    B.MUL: lambda a, b: a * b,
    B.DIV: BINARY[B.DIV][2],
    B.SQUARED_DIFFERENCE: BINARY[B.SQUARED_DIFFERENCE][2],
    B.MAXIMUM: BINARY[B.MAXIMUM][2],
    B.MINIMUM: BINARY[B.MINIMUM][2],
    B.POW: BINARY[B.POW][2],
    B.FLOOR_DIV: BINARY[B.FLOOR_DIV][2],
    B.FLOOR_MOD: BINARY[B.FLOOR_MOD][2],
    B.LESS: np.less, B.LESS_EQUAL: np.less_equal, B.GREATER: np.greater,
    B.GREATER_EQUAL: np.greater_equal, B.EQUAL: np.equal, B.NOT_EQUAL: np.not_equal,
    B.LOGICAL_AND: np.logical_and, B.LOGICAL_OR: np.logical_or,
}


def random_broadcast_pair(rank):
    out = RNG.integers(1, 5, rank)
    out[RNG.random(rank) < 0.08] = 0
    sa = [d if RNG.random() < 0.6 else 1 for d in out]
    sb = [d if RNG.random() < 0.6 else 1 for d in out]
    sa = sa[RNG.integers(0, rank + 1):]  # numpy aligns on the right
    sb = sb[RNG.integers(0, rank + 1):]
    return tuple(int(d) for d in sa), tuple(int(d) for d in sb)


def binary_params(sa, sb, act=(-np.inf, np.inf)):
    out_shape = np.broadcast_shapes(sa, sb)
    collapsed = broadcast_strides(out_shape, sa, sb)
    assert collapsed is not None
    dims, (st_a, st_b) = collapsed
    arr = ctypes.c_int32 * BROADCAST_DIMS
    return out_shape, bytes(BinaryParams(arr(*dims), arr(*st_a), arr(*st_b), *act))


SWEEP = [("add", B.ADD, F32), ("sub", B.SUB, I32), ("mul", B.MUL, I64), ("div", B.DIV, F32),
         ("maximum", B.MAXIMUM, F32), ("floor_mod", B.FLOOR_MOD, I32),
         ("less", B.LESS, F32), ("equal", B.EQUAL, I64), ("logical_or", B.LOGICAL_OR, BOOL)]


def test_kernel_binary_broadcast_sweep():
    suffix = {F32: "f32", I32: "i32", I64: "i64", BOOL: "bool"}
    for trial in range(400):
        name, op, dtype = SWEEP[trial % len(SWEEP)]
        sa, sb = random_broadcast_pair(int(RNG.integers(0, 7)))
        out_shape, params = binary_params(sa, sb)
        a = data(sa, dtype, -9, 9)
        b = nonzero(sb, dtype) if op in (B.DIV, B.FLOOR_MOD) else data(sb, dtype, -9, 9)
        out_dtype = BOOL if op in (B.LESS, B.EQUAL) else dtype
        out = np.empty(out_shape, out_dtype)
        run_kernel(f"{name}_{suffix[dtype]}", params, [a, b], [out])
        expected = np.asarray(REFERENCE[op](a, b)).astype(out_dtype)
        np.testing.assert_allclose(out, expected, rtol=1e-6, err_msg=f"{name} {sa} {sb}")


def test_kernel_clamp_in_int_kernels():
    out_shape, params = binary_params((6,), (6,), act=(0.0, 6.0))
    a = np.array([-10, -1, 0, 5, 6, 2 ** 31 - 1], I32)
    b = np.array([1, 0, 0, 0, 3, 1], I32)
    out = np.empty(out_shape, I32)
    run_kernel("add_i32", params, [a, b], [out])
    np.testing.assert_array_equal(out, [0, 0, 0, 5, 6, 0])  # the wrapped INT_MIN clamps to 0


def test_kernel_select_broadcast_sweep():
    from edgeq.ops.elementwise import SELECT_WIDTH
    arr = ctypes.c_int32 * BROADCAST_DIMS
    for trial in range(200):
        dtype = [F32, np.float16, I64, np.int8][trial % 4]
        sc, sx = random_broadcast_pair(int(RNG.integers(0, 7)))
        sy = random_broadcast_pair(len(np.broadcast_shapes(sc, sx)))[0]
        try:
            out_shape = np.broadcast_shapes(sc, sx, sy)
        except ValueError:
            continue
        dims, (st_c, st_x, st_y) = broadcast_strides(out_shape, sc, sx, sy)
        params = bytes(SelectParams(arr(*dims), arr(*st_c), arr(*st_x), arr(*st_y)))
        c, x, y = data(sc, BOOL), data(sx, dtype, -50, 50), data(sy, dtype, -50, 50)
        out = np.empty(out_shape, dtype)
        run_kernel(f"select_{SELECT_WIDTH[np.dtype(dtype).itemsize]}", params, [c, x, y], [out])
        np.testing.assert_array_equal(out, np.where(c, x, y), err_msg=f"{sc} {sx} {sy}")


# ---------------------------------------------------------------------------------------------
# Constant folding: all-constant ops run at prepare with the same kernels


def test_constant_folding_shape_arithmetic():
    a = np.array([4, 7, -9], I32)
    b = np.array([2, -2, 4], I32)
    for op in (B.ADD, B.MUL, B.FLOOR_DIV, B.FLOOR_MOD, B.MAXIMUM):
        out = edgeq_single(op, [a, b], [], output_dtype=I32)[0]
        np.testing.assert_array_equal(out, REFERENCE[op](a, b))
    out = edgeq_single(B.CAST, [a], [], output_dtype=np.int64)[0]
    assert_identical(out, a.astype(np.int64))


# ---------------------------------------------------------------------------------------------
# Bad input: every op refuses what it cannot run, naming the problem

BINARY_OPS = list(BINARY) + COMPARISONS
UNARY_OPS = [op for op in UNARY] + [B.PRELU]


@pytest.mark.parametrize("op", BINARY_OPS + UNARY_OPS, ids=lambda o: o.name)
def test_refuses_int8_activations(op):
    n = 2 if op in BINARY_OPS or op == B.PRELU else 1
    model = single_op_model(op, [((4,), np.int8)] * n, output_dtype=np.int8)
    with pytest.raises(edgeq.ModelError, match="int8 activations are not supported"):
        run_edgeq(model, [np.zeros(4, np.int8)] * n)


@pytest.mark.parametrize("op", BINARY_OPS, ids=lambda o: o.name)
def test_binary_bad_shapes_and_dtypes(op):
    with pytest.raises(edgeq.ModelError, match=r"shapes \[2, 3\] and \[4\] cannot be broadcast"):
        run_edgeq(single_op_model(op, [((2, 3), F32), ((4,), F32)]),
                  [np.zeros((2, 3), F32), np.zeros(4, F32)])
    with pytest.raises(edgeq.ModelError, match="input dtypes differ"):
        run_edgeq(single_op_model(op, [((3,), F32), ((3,), I32)]),
                  [np.zeros(3, F32), np.zeros(3, I32)])


def test_broadcast_beyond_six_dims():
    sa, sb = (2, 1, 2, 1, 2, 1, 2), (1, 2, 1, 2, 1, 2, 1)
    with pytest.raises(edgeq.ModelError, match="needs more than 6 dims"):
        run_edgeq(single_op_model(B.ADD, [(sa, F32), (sb, F32)]),
                  [np.zeros(sa, F32), np.zeros(sb, F32)])


@pytest.mark.parametrize("op", [B.DIV, B.FLOOR_DIV, B.FLOOR_MOD], ids=lambda o: o.name)
def test_integer_division_by_zero(op):
    a, b = np.array([1, 2, 3], I32), np.array([1, 0, 3], I32)
    with pytest.raises(edgeq.InvokeError, match="division by zero"):
        edgeq_single(op, [((3,), I32), ((3,), I32)], [a, b], output_dtype=I32)
    with pytest.raises(edgeq.ModelError, match="division by zero"):  # folded at prepare
        edgeq_single(op, [a, b], [], output_dtype=I32)


def test_float_floor_div_by_zero():
    # TFLite refuses a zero divisor for FLOOR_DIV of floats too
    a, b = np.ones(2, F32), np.array([1, 0], F32)
    with pytest.raises(RuntimeError):
        run_litert(single_op_model(B.FLOOR_DIV, [((2,), F32), ((2,), F32)]), [a, b])
    with pytest.raises(edgeq.InvokeError, match="division by zero"):
        edgeq_single(B.FLOOR_DIV, [((2,), F32), ((2,), F32)], [a, b])


def test_pow_negative_int_exponent():
    with pytest.raises(edgeq.InvokeError, match="exponent -1 is negative"):
        edgeq_single(B.POW, [((2,), I32), ((2,), I32)],
                     [np.array([2, 3], I32), np.array([1, -1], I32)], output_dtype=I32)


@pytest.mark.parametrize("op", [B.DIV, B.POW, B.SQUARED_DIFFERENCE, B.FLOOR_DIV],
                         ids=lambda o: o.name)
def test_int64_refused_where_tflite_has_no_kernel(op):
    with pytest.raises(edgeq.ModelError, match="input dtype int64 is not supported"):
        edgeq_single(op, [((2,), I64), ((2,), I64)], [np.ones(2, I64)] * 2, output_dtype=I64)


@pytest.mark.parametrize("op", [B.LOGICAL_AND, B.LOGICAL_OR, B.LOGICAL_NOT],
                         ids=lambda o: o.name)
def test_logical_refuses_float(op):
    n = 1 if op == B.LOGICAL_NOT else 2
    with pytest.raises(edgeq.ModelError, match="input dtype float32 is not supported"):
        edgeq_single(op, [((2,), F32)] * n, [np.ones(2, F32)] * n, output_dtype=BOOL)


@pytest.mark.parametrize("op", [op for op in UNARY if UNARY[op][0] == (F32,)],
                         ids=lambda o: o.name)
def test_float_only_unary_refuses_int32(op):
    with pytest.raises(edgeq.ModelError, match=r"input dtype int32 is not supported \(expected "
                                               r"float32\)"):
        edgeq_single(op, [((2,), I32)], [np.ones(2, I32)], output_dtype=I32)


@pytest.mark.parametrize("op", [B.SELECT, B.SELECT_V2], ids=lambda o: o.name)
def test_select_bad_inputs(op):
    with pytest.raises(edgeq.ModelError, match="condition dtype is float32, must be bool"):
        edgeq_single(op, [((2,), F32)] * 3, [np.ones(2, F32)] * 3)
    with pytest.raises(edgeq.ModelError, match="x and y dtypes differ"):
        edgeq_single(op, [((2,), BOOL), ((2,), F32), ((2,), I32)],
                     [np.ones(2, BOOL), np.ones(2, F32), np.ones(2, I32)])
    bad = "condition shape" if op == B.SELECT else "cannot be broadcast"
    with pytest.raises(edgeq.ModelError, match=bad):
        edgeq_single(op, [((3,), BOOL), ((2, 4), F32), ((2, 4), F32)],
                     [np.ones(3, BOOL), np.ones((2, 4), F32), np.ones((2, 4), F32)])


def test_select_v1_needs_same_x_y_shapes():
    with pytest.raises(edgeq.ModelError, match=r"x shape \[2, 4\] and y shape \[4\] differ"):
        edgeq_single(B.SELECT, [((2, 4), BOOL), ((2, 4), F32), ((4,), F32)],
                     [np.ones((2, 4), BOOL), np.ones((2, 4), F32), np.ones(4, F32)])


def test_prelu_alpha_must_not_enlarge_the_input():
    with pytest.raises(edgeq.ModelError, match=r"alpha shape \[4, 1\] does not broadcast to the "
                                               r"input shape \[2, 1, 3\]"):
        edgeq_single(B.PRELU, [((2, 1, 3), F32), np.ones((4, 1), F32)], [np.ones((2, 1, 3), F32)])


def test_cast_refuses_float64():
    with pytest.raises(edgeq.ModelError, match="cannot cast from float64"):
        edgeq_single(B.CAST, [((2,), np.float64)], [np.ones(2)], output_dtype=F32)
    with pytest.raises(edgeq.ModelError, match="cannot cast to float64"):
        edgeq_single(B.CAST, [((2,), F32)], [np.ones(2, F32)], output_dtype=np.float64)


def test_dequantize_bad_inputs():
    with pytest.raises(edgeq.ModelError, match="has no quantization scale"):
        edgeq_single(B.DEQUANTIZE, [np.ones(3, np.int8)], [])
    with pytest.raises(edgeq.ModelError, match="input dtype float32 is not supported"):
        edgeq_single(B.DEQUANTIZE, [((3,), F32)], [np.ones(3, F32)])
    b = ModelBuilder()
    w = b.add_tensor("w", [2, 3], np.int16, data=np.ones((2, 3), np.int16),
                     quantization=dict(scale=[0.1, 0.2], zero_point=[0, 0], quantized_dimension=0))
    y = b.add_tensor("y", [2, 3], F32)
    b.add_operator(B.DEQUANTIZE, [w], [y])
    b.set_inputs([])
    b.set_outputs([y])
    with pytest.raises(edgeq.ModelError, match="per-channel dequantization of int16"):
        run_edgeq(b.build(), [])
