/* Reference elementwise kernels: binary ops with broadcasting, SELECT, unary math, activations,
 * CAST and DEQUANTIZE. Scalar, readable: the spec every optimized variant is tested against.
 *
 * Semantics follow TFLite's reference kernels. Where TFLite's C++ relies on undefined behaviour
 * (INT_MIN / -1, float -> int out of range, signed overflow) these kernels pick the result
 * two's-complement hardware gives, with defined C, and never trap. */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "edgeq/dispatch.h"
#include "edgeq/f16.h"
#include "edgeq/params/elementwise.h"

/* float max/min as LiteRT computes them on each CPU (its vector kernels use the native
 * instruction). x86 maxps/minps: the second operand unless the first is strictly greater/less,
 * so a NaN in either place and ties (signed zeros) give the second. ARM FMAX/FMIN: NaN if
 * either operand is NaN, and +0 > -0 (max(-0, +0) = +0, min(-0, +0) = -0). */
/* NaN stays NaN, and a value equal to a bound (-0 against 0) is kept. */
static inline float clamp_by_compare(float v, float lo, float hi) {
  return v < lo ? lo : (v > hi ? hi : v);
}
#if defined(__aarch64__) || defined(__arm__)
static inline float max_f32(float x, float y) {
  if (x != x || y != y) return x + y;
  if (x == y) return signbit(x) ? y : x;
  return x > y ? x : y;
}
static inline float min_f32(float x, float y) {
  if (x != x || y != y) return x + y;
  if (x == y) return signbit(x) ? x : y;
  return x < y ? x : y;
}
/* Clamps are FMAX then FMIN there: NaN stays NaN, clamp(-0, 0, hi) is +0. */
static inline float clampf(float v, float lo, float hi) { return min_f32(max_f32(v, lo), hi); }
#else
static inline float max_f32(float x, float y) { return x > y ? x : y; }
static inline float min_f32(float x, float y) { return x < y ? x : y; }
static inline float clampf(float v, float lo, float hi) { return clamp_by_compare(v, lo, hi); }
#endif

/* IEEE half <-> single, bit-exact and portable: edgeq/f16.h. */
#define half_to_float eq_half_to_float
#define float_to_half eq_float_to_half

/* ---------------------------------------------------------------------------------------------
 * Binary ops with broadcasting. */

/* Walks the broadcast index space: OP(a, b) for every output element. GUARD may reject an
 * element pair (return eq_fail) before EXPR sees it. */
#define DEFINE_BINARY_EX(NAME, T, TO, GUARD, EXPR, CLAMP)                                    \
  static int NAME(const eq_node *node, eq_ctx *ctx) {                                        \
    (void)ctx;                                                                               \
    const eq_binary_params *p = (const eq_binary_params *)node->params;                      \
    const T *A = (const T *)node->inputs[0]->data;                                           \
    const T *B = (const T *)node->inputs[1]->data;                                           \
    TO *out = (TO *)node->outputs[0]->data;                                                  \
    const int32_t *d = p->out_dims, *sa = p->a_strides, *sb = p->b_strides;                  \
    for (int32_t i0 = 0; i0 < d[0]; ++i0)                                                    \
    for (int32_t i1 = 0; i1 < d[1]; ++i1)                                                    \
    for (int32_t i2 = 0; i2 < d[2]; ++i2)                                                    \
    for (int32_t i3 = 0; i3 < d[3]; ++i3)                                                    \
    for (int32_t i4 = 0; i4 < d[4]; ++i4) {                                                  \
      const T *a = A + (int64_t)i0 * sa[0] + (int64_t)i1 * sa[1] + (int64_t)i2 * sa[2] +    \
                   (int64_t)i3 * sa[3] + (int64_t)i4 * sa[4];                                \
      const T *b = B + (int64_t)i0 * sb[0] + (int64_t)i1 * sb[1] + (int64_t)i2 * sb[2] +    \
                   (int64_t)i3 * sb[3] + (int64_t)i4 * sb[4];                                \
      for (int32_t i5 = 0; i5 < d[5]; ++i5) {                                                \
        const T x = a[(int64_t)i5 * sa[5]], y = b[(int64_t)i5 * sb[5]];                      \
        GUARD;                                                                               \
        TO r = (EXPR);                                                                       \
        *out++ = CLAMP;                                                                      \
      }                                                                                      \
    }                                                                                        \
    return 0;                                                                                \
  }

#define DEFINE_BINARY(NAME, T, EXPR, CLAMP) DEFINE_BINARY_EX(NAME, T, T, (void)0, EXPR, CLAMP)
/* Comparisons and logical ops: BOOL output, one byte holding 0 or 1. */
#define DEFINE_PREDICATE(NAME, T, EXPR) DEFINE_BINARY_EX(NAME, T, uint8_t, (void)0, EXPR, r)

#define FCLAMP clampf(r, p->act_min, p->act_max)
/* The bounds are 0, +-1, 6 or +-inf, which compare exactly against any converted integer. */
#define ICLAMP(T)                                                                            \
  ((float)r < p->act_min ? (T)p->act_min : ((float)r > p->act_max ? (T)p->act_max : r))
#define NOCLAMP r
#define NONZERO_DIVISOR                                                                      \
  if (y == 0) return eq_fail(ctx, "integer division by zero")

/* Integer arithmetic wraps (TFLite leaves overflow undefined): go through unsigned. */
#define WRAP32(OP) (int32_t)((uint32_t)x OP (uint32_t)y)
#define WRAP64(OP) (int64_t)((uint64_t)x OP (uint64_t)y)

static inline int32_t div_op_i32(int32_t x, int32_t y) {
  return y == -1 ? (int32_t)(0u - (uint32_t)x) : x / y;
}

/* floor(x / y); equals TFLite's floor((double)x / y) for every int32 pair. */
static inline int32_t floor_div_op_i32(int32_t x, int32_t y) {
  if (y == -1) return (int32_t)(0u - (uint32_t)x);
  int32_t q = x / y;
  if (q * y != x && ((x < 0) != (y < 0))) --q;
  return q;
}

/* TFLite computes float FLOOR_DIV in double, then rounds to float. */
static inline float floor_div_op_f32(float x, float y) {
  return (float)floor((double)x / (double)y);
}

#define DEFINE_FLOOR_MOD_INT(NAME, T)                                                        \
  static inline T NAME(T x, T y) {                                                           \
    if (y == -1) return 0; /* also avoids the trap of INT_MIN % -1 */                        \
    T m = x % y;                                                                             \
    return (m != 0 && ((y < 0) != (m < 0))) ? (T)(m + y) : m;                                \
  }
DEFINE_FLOOR_MOD_INT(floor_mod_op_i32, int32_t)
DEFINE_FLOOR_MOD_INT(floor_mod_op_i64, int64_t)

static inline float floor_mod_op_f32(float x, float y) {
  const float m = fmodf(x, y);
  return (m != 0 && ((y < 0) != (m < 0))) ? m + y : m;
}

/* double -> int32 as the CPU's own truncation gives it, which is what LiteRT's plain C++ cast
 * yields there: x86 (cvttsd2si) turns out-of-range values and NaN into INT32_MIN, ARM
 * (fcvtzs) saturates to INT32_MIN/INT32_MAX and turns NaN into 0. */
static inline int32_t f64_to_i32_trunc(double v) {
  if (v > -2147483649.0 && v < 2147483648.0) return (int32_t)v;
#if defined(__aarch64__) || defined(__arm__)
  return v != v ? 0 : (v > 0 ? INT32_MAX : INT32_MIN);
#else
  return INT32_MIN;
#endif
}

/* TFLite: int32 POW goes through std::pow in double, exponents must be >= 0. */
static inline int32_t pow_op_i32(int32_t x, int32_t y) {
  return f64_to_i32_trunc(pow((double)x, (double)y));
}
#define NONNEG_EXPONENT                                                                      \
  if (y < 0) return eq_fail(ctx, "POW: int32 exponent %d is negative", (int)y)

DEFINE_BINARY(add_f32, float, x + y, FCLAMP)
DEFINE_BINARY(add_i32, int32_t, WRAP32(+), ICLAMP(int32_t))
DEFINE_BINARY(add_i64, int64_t, WRAP64(+), ICLAMP(int64_t))
DEFINE_BINARY(sub_f32, float, x - y, FCLAMP)
DEFINE_BINARY(sub_i32, int32_t, WRAP32(-), ICLAMP(int32_t))
DEFINE_BINARY(sub_i64, int64_t, WRAP64(-), ICLAMP(int64_t))
DEFINE_BINARY(mul_f32, float, x * y, FCLAMP)
DEFINE_BINARY(mul_i32, int32_t, WRAP32(*), ICLAMP(int32_t))
DEFINE_BINARY(mul_i64, int64_t, WRAP64(*), ICLAMP(int64_t))
DEFINE_BINARY(div_f32, float, x / y, FCLAMP)
DEFINE_BINARY_EX(div_i32, int32_t, int32_t, NONZERO_DIVISOR, div_op_i32(x, y), ICLAMP(int32_t))
DEFINE_BINARY(squared_difference_f32, float, (x - y) * (x - y), NOCLAMP)
DEFINE_BINARY(squared_difference_i32, int32_t,
              (int32_t)(((uint32_t)x - (uint32_t)y) * ((uint32_t)x - (uint32_t)y)), NOCLAMP)
/* TFLite's MAXIMUM/MINIMUM: el1 > el2 ? el1 : el2, so a NaN in either gives y. */
DEFINE_BINARY(maximum_f32, float, max_f32(x, y), NOCLAMP)
DEFINE_BINARY(maximum_i32, int32_t, x > y ? x : y, NOCLAMP)
DEFINE_BINARY(maximum_i64, int64_t, x > y ? x : y, NOCLAMP)
DEFINE_BINARY(minimum_f32, float, min_f32(x, y), NOCLAMP)
DEFINE_BINARY(minimum_i32, int32_t, x < y ? x : y, NOCLAMP)
DEFINE_BINARY(minimum_i64, int64_t, x < y ? x : y, NOCLAMP)
DEFINE_BINARY(pow_f32, float, powf(x, y), NOCLAMP)
DEFINE_BINARY_EX(pow_i32, int32_t, int32_t, NONNEG_EXPONENT, pow_op_i32(x, y), NOCLAMP)
/* TFLite rejects a zero divisor for FLOOR_DIV of every type, floats included. */
#define NONZERO_FLOAT_DIVISOR                                                                \
  if (y == 0) return eq_fail(ctx, "FLOOR_DIV: division by zero")
DEFINE_BINARY_EX(floor_div_f32, float, float, NONZERO_FLOAT_DIVISOR, floor_div_op_f32(x, y),
                 NOCLAMP)
DEFINE_BINARY_EX(floor_div_i32, int32_t, int32_t, NONZERO_DIVISOR, floor_div_op_i32(x, y), NOCLAMP)
DEFINE_BINARY(floor_mod_f32, float, floor_mod_op_f32(x, y), NOCLAMP)
DEFINE_BINARY_EX(floor_mod_i32, int32_t, int32_t, NONZERO_DIVISOR, floor_mod_op_i32(x, y), NOCLAMP)
DEFINE_BINARY_EX(floor_mod_i64, int64_t, int64_t, NONZERO_DIVISOR, floor_mod_op_i64(x, y), NOCLAMP)
/* PRELU: input broadcast against the alpha tensor. */
DEFINE_BINARY(prelu_f32, float, x >= 0 ? x : x * y, NOCLAMP)

#define DEFINE_COMPARISONS(SUFFIX, T)                                                        \
  DEFINE_PREDICATE(less_##SUFFIX, T, x < y)                                                  \
  DEFINE_PREDICATE(less_equal_##SUFFIX, T, x <= y)                                           \
  DEFINE_PREDICATE(greater_##SUFFIX, T, x > y)                                               \
  DEFINE_PREDICATE(greater_equal_##SUFFIX, T, x >= y)                                        \
  DEFINE_PREDICATE(equal_##SUFFIX, T, x == y)                                                \
  DEFINE_PREDICATE(not_equal_##SUFFIX, T, x != y)
DEFINE_COMPARISONS(f32, float)
DEFINE_COMPARISONS(i32, int32_t)
DEFINE_COMPARISONS(i64, int64_t)
/* Any nonzero byte counts as true, so a stray bool byte never yields a third value. */
DEFINE_PREDICATE(equal_bool, uint8_t, (x != 0) == (y != 0))
DEFINE_PREDICATE(not_equal_bool, uint8_t, (x != 0) != (y != 0))
DEFINE_PREDICATE(logical_and_bool, uint8_t, x != 0 && y != 0)
DEFINE_PREDICATE(logical_or_bool, uint8_t, x != 0 || y != 0)

/* ---------------------------------------------------------------------------------------------
 * SELECT / SELECT_V2: a three-way broadcast copying elements of one width (the element type
 * does not matter, so one kernel per width serves every dtype). */

#define DEFINE_SELECT(NAME, T)                                                               \
  static int NAME(const eq_node *node, eq_ctx *ctx) {                                        \
    (void)ctx;                                                                               \
    const eq_select_params *p = (const eq_select_params *)node->params;                      \
    const uint8_t *C = (const uint8_t *)node->inputs[0]->data;                               \
    const T *X = (const T *)node->inputs[1]->data;                                           \
    const T *Y = (const T *)node->inputs[2]->data;                                           \
    T *out = (T *)node->outputs[0]->data;                                                    \
    const int32_t *d = p->out_dims, *sc = p->c_strides, *sx = p->x_strides;                  \
    const int32_t *sy = p->y_strides;                                                        \
    for (int32_t i0 = 0; i0 < d[0]; ++i0)                                                    \
    for (int32_t i1 = 0; i1 < d[1]; ++i1)                                                    \
    for (int32_t i2 = 0; i2 < d[2]; ++i2)                                                    \
    for (int32_t i3 = 0; i3 < d[3]; ++i3)                                                    \
    for (int32_t i4 = 0; i4 < d[4]; ++i4) {                                                  \
      const int64_t oc = (int64_t)i0 * sc[0] + (int64_t)i1 * sc[1] + (int64_t)i2 * sc[2] +  \
                         (int64_t)i3 * sc[3] + (int64_t)i4 * sc[4];                          \
      const int64_t ox = (int64_t)i0 * sx[0] + (int64_t)i1 * sx[1] + (int64_t)i2 * sx[2] +  \
                         (int64_t)i3 * sx[3] + (int64_t)i4 * sx[4];                          \
      const int64_t oy = (int64_t)i0 * sy[0] + (int64_t)i1 * sy[1] + (int64_t)i2 * sy[2] +  \
                         (int64_t)i3 * sy[3] + (int64_t)i4 * sy[4];                          \
      const uint8_t *c = C + oc;                                                             \
      const T *x = X + ox, *y = Y + oy;                                                      \
      for (int32_t i5 = 0; i5 < d[5]; ++i5)                                                  \
        *out++ = c[(int64_t)i5 * sc[5]] ? x[(int64_t)i5 * sx[5]] : y[(int64_t)i5 * sy[5]];   \
    }                                                                                        \
    return 0;                                                                                \
  }

DEFINE_SELECT(select_x8, uint8_t)
DEFINE_SELECT(select_x16, uint16_t)
DEFINE_SELECT(select_x32, uint32_t)
DEFINE_SELECT(select_x64, uint64_t)

/* ---------------------------------------------------------------------------------------------
 * Unary ops and activations: one output element per input element. */

#define DEFINE_UNARY(NAME, TI, TO, PARAMS, EXPR)                                             \
  static int NAME(const eq_node *node, eq_ctx *ctx) {                                        \
    (void)ctx;                                                                               \
    const PARAMS *p = (const PARAMS *)node->params;                                          \
    (void)p;                                                                                 \
    const TI *in = (const TI *)node->inputs[0]->data;                                        \
    TO *out = (TO *)node->outputs[0]->data;                                                  \
    const int64_t n = node->inputs[0]->count;                                                \
    for (int64_t i = 0; i < n; ++i) {                                                        \
      const TI x = in[i];                                                                    \
      out[i] = (EXPR);                                                                       \
    }                                                                                        \
    return 0;                                                                                \
  }

#define DEFINE_MATH(NAME, T, EXPR) DEFINE_UNARY(NAME, T, T, void, EXPR)

/* ROUND: to nearest, ties to even, independent of the FPU rounding mode. A zero result keeps
 * the sign of x (IEEE roundeven, as LiteRT's default path gives: ROUND(-0.4) = -0). */
static inline float round_half_even(float x) {
  const float f = floorf(x), frac = x - f;
  float r;
  if (frac < 0.5f) r = f;
  else if (frac > 0.5f) r = f + 1.0f;
  else r = fmodf(f, 2.0f) == 0.0f ? f : f + 1.0f;
  return copysignf(r, x);
}

static inline float gelu_tanh(float x) {
  const float k = 0.7978845608028654f; /* sqrt(2 / pi) */
  return 0.5f * x * (1.0f + tanhf(k * (x + 0.044715f * x * x * x)));
}

/* 0.5 x (1 + erf(x / sqrt 2)), written with erfc to keep precision for large negative x. */
static inline float gelu_erf(float x) { return 0.5f * x * erfcf(x * -0.7071067811865476f); }

DEFINE_MATH(neg_f32, float, -x)
DEFINE_MATH(neg_i32, int32_t, (int32_t)(0u - (uint32_t)x))
DEFINE_MATH(neg_i64, int64_t, (int64_t)(0u - (uint64_t)x))
DEFINE_MATH(abs_f32, float, fabsf(x))
DEFINE_MATH(abs_i32, int32_t, x < 0 ? (int32_t)(0u - (uint32_t)x) : x)
DEFINE_MATH(sqrt_f32, float, sqrtf(x))
DEFINE_MATH(rsqrt_f32, float, 1.0f / sqrtf(x))
DEFINE_MATH(exp_f32, float, expf(x))
DEFINE_MATH(log_f32, float, logf(x))
DEFINE_MATH(square_f32, float, x * x)
DEFINE_MATH(floor_f32, float, floorf(x))
DEFINE_MATH(ceil_f32, float, ceilf(x))
DEFINE_MATH(round_f32, float, round_half_even(x))
DEFINE_MATH(sin_f32, float, sinf(x))
DEFINE_MATH(cos_f32, float, cosf(x))
DEFINE_MATH(logical_not_bool, uint8_t, (uint8_t)(x == 0))
DEFINE_MATH(logistic_f32, float, 1.0f / (1.0f + expf(-x)))
DEFINE_MATH(tanh_f32, float, tanhf(x))
DEFINE_MATH(hard_swish_f32, float, x * clampf(x + 3.0f, 0.0f, 6.0f) / 6.0f)
DEFINE_MATH(gelu_tanh_f32, float, gelu_tanh(x))
DEFINE_MATH(gelu_f32, float, gelu_erf(x))
DEFINE_MATH(elu_f32, float, x < 0 ? expm1f(x) : x)
DEFINE_UNARY(clamp_f32, float, float, eq_clamp_params, clampf(x, p->lo, p->hi))
/* RELU_0_TO_1 is not an XNNPack op: LiteRT's own kernel clamps by comparing, on every CPU. */
DEFINE_UNARY(clamp_by_compare_f32, float, float, eq_clamp_params,
             clamp_by_compare(x, p->lo, p->hi))
DEFINE_UNARY(leaky_relu_f32, float, float, eq_alpha_params, x > 0 ? x : x * p->alpha)

/* ---------------------------------------------------------------------------------------------
 * CAST between f32 f16 i64 i32 i16 i8 u8 bool: one kernel per (from, to) pair, named
 * cast_<from>_<to>. Every source is first loaded as its C value (f16 as float, bool as 0/1),
 * then converted to the destination by a rule chosen on the loaded value's type. */

/* float -> integer truncates toward zero and saturates; NaN gives the maximum (what LiteRT
 * does for every integer type). */
#define DEFINE_F32_TO_INT(NAME, T, MIN, MAX)                                                 \
  static inline T NAME(float v) {                                                            \
    if (!(v < -(float)(MIN))) return MAX; /* -MIN = MAX + 1 is exact in float */             \
    if (!(v > (float)(MIN) - 1.0f)) return MIN; /* MIN - 1 may round to MIN: same answer */  \
    return (T)v;                                                                             \
  }
DEFINE_F32_TO_INT(f32_to_i64, int64_t, INT64_MIN, INT64_MAX)
DEFINE_F32_TO_INT(f32_to_i32, int32_t, INT32_MIN, INT32_MAX)
DEFINE_F32_TO_INT(f32_to_i16, int16_t, INT16_MIN, INT16_MAX)
DEFINE_F32_TO_INT(f32_to_i8, int8_t, INT8_MIN, INT8_MAX)

static inline uint8_t f32_to_u8(float v) {
  if (!(v < 256.0f)) return UINT8_MAX;
  return v > -1.0f ? (uint8_t)v : 0;
}

/* integer -> narrower integer keeps the low bits (two's complement). */
static inline int64_t int_to_i64(int64_t v) { return v; }
static inline int32_t int_to_i32(int64_t v) { return (int32_t)(uint32_t)(uint64_t)v; }
static inline int16_t int_to_i16(int64_t v) { return (int16_t)(uint16_t)(uint64_t)v; }
static inline int8_t int_to_i8(int64_t v) { return (int8_t)(uint8_t)(uint64_t)v; }
static inline uint8_t int_to_u8(int64_t v) { return (uint8_t)(uint64_t)v; }

static inline uint8_t load_bool(uint8_t b) { return b != 0; }

#define TO_f32(v) ((float)(v))
#define TO_f16(v) float_to_half((float)(v))
#define TO_bool(v) ((uint8_t)((v) != 0))
#define TO_i64(v) _Generic((v), float: f32_to_i64, default: int_to_i64)(v)
#define TO_i32(v) _Generic((v), float: f32_to_i32, default: int_to_i32)(v)
#define TO_i16(v) _Generic((v), float: f32_to_i16, default: int_to_i16)(v)
#define TO_i8(v) _Generic((v), float: f32_to_i8, default: int_to_i8)(v)
#define TO_u8(v) _Generic((v), float: f32_to_u8, default: int_to_u8)(v)

/* (suffix, storage type, load) of every CAST dtype. */
#define CAST_TYPES(X, ...)                                                                   \
  X(f32, float, (float), __VA_ARGS__)                                                        \
  X(f16, uint16_t, half_to_float, __VA_ARGS__)                                               \
  X(i64, int64_t, (int64_t), __VA_ARGS__)                                                    \
  X(i32, int32_t, (int32_t), __VA_ARGS__)                                                    \
  X(i16, int16_t, (int16_t), __VA_ARGS__)                                                    \
  X(i8, int8_t, (int8_t), __VA_ARGS__)                                                       \
  X(u8, uint8_t, (uint8_t), __VA_ARGS__)                                                     \
  X(bool, uint8_t, load_bool, __VA_ARGS__)

#define DEFINE_CAST(FROM, TI, LOAD, TO, TO_T)                                                \
  static int cast_##FROM##_##TO(const eq_node *node, eq_ctx *ctx) {                          \
    (void)ctx;                                                                               \
    const TI *in = (const TI *)node->inputs[0]->data;                                        \
    TO_T *out = (TO_T *)node->outputs[0]->data;                                              \
    const int64_t n = node->inputs[0]->count;                                                \
    for (int64_t i = 0; i < n; ++i) out[i] = TO_##TO(LOAD(in[i]));                           \
    return 0;                                                                                \
  }
#define DEFINE_CASTS_TO(TO, TO_T) CAST_TYPES(DEFINE_CAST, TO, TO_T)
/* Destination storage types (f16 is stored as its bits). */
DEFINE_CASTS_TO(f32, float)
DEFINE_CASTS_TO(f16, uint16_t)
DEFINE_CASTS_TO(i64, int64_t)
DEFINE_CASTS_TO(i32, int32_t)
DEFINE_CASTS_TO(i16, int16_t)
DEFINE_CASTS_TO(i8, int8_t)
DEFINE_CASTS_TO(u8, uint8_t)
DEFINE_CASTS_TO(bool, uint8_t)

/* ---------------------------------------------------------------------------------------------
 * DEQUANTIZE. The product (q - zero_point) * scale is rounded once to float, which is what
 * TFLite's double-precision per-tensor path and its float per-channel path both give. */

static int dequantize_f16_f32(const eq_node *node, eq_ctx *ctx) {
  (void)ctx;
  const uint16_t *in = (const uint16_t *)node->inputs[0]->data;
  float *out = (float *)node->outputs[0]->data;
  const int64_t n = node->inputs[0]->count;
  for (int64_t i = 0; i < n; ++i) out[i] = half_to_float(in[i]);
  return 0;
}

#define DEFINE_DEQUANTIZE(SUFFIX, T)                                                         \
  static int dequantize_##SUFFIX##_f32(const eq_node *node, eq_ctx *ctx) {                   \
    (void)ctx;                                                                               \
    const eq_dequantize_params *p = (const eq_dequantize_params *)node->params;              \
    const T *in = (const T *)node->inputs[0]->data;                                          \
    float *out = (float *)node->outputs[0]->data;                                            \
    const int64_t n = node->inputs[0]->count;                                                \
    const float scale = p->scale;                                                            \
    const int32_t zp = p->zero_point;                                                        \
    for (int64_t i = 0; i < n; ++i) out[i] = (float)((int32_t)in[i] - zp) * scale;           \
    return 0;                                                                                \
  }                                                                                          \
  static int dequantize_pc_##SUFFIX##_f32(const eq_node *node, eq_ctx *ctx) {                \
    (void)ctx;                                                                               \
    const eq_dequantize_pc_params *p = (const eq_dequantize_pc_params *)node->params;        \
    const T *in = (const T *)node->inputs[0]->data;                                          \
    const float *scales = (const float *)node->inputs[1]->data;                              \
    const int32_t *zps = (const int32_t *)node->inputs[2]->data;                             \
    float *out = (float *)node->outputs[0]->data;                                            \
    for (int32_t o = 0; o < p->outer; ++o)                                                   \
      for (int32_t c = 0; c < p->channels; ++c) {                                            \
        const float scale = scales[c];                                                       \
        const int32_t zp = zps[c];                                                           \
        for (int32_t i = 0; i < p->inner; ++i) *out++ = (float)((int32_t)*in++ - zp) * scale; \
      }                                                                                      \
    return 0;                                                                                \
  }

DEFINE_DEQUANTIZE(i8, int8_t)
DEFINE_DEQUANTIZE(u8, uint8_t)
DEFINE_DEQUANTIZE(i16, int16_t)

/* ---------------------------------------------------------------------------------------------
 * The table. */

#define BINARY(NAME) {#NAME, NAME, sizeof(eq_binary_params)}
#define NOPARAMS(NAME) {#NAME, NAME, 0}
#define CAST_ENTRY(FROM, TI, LOAD, TO, unused) NOPARAMS(cast_##FROM##_##TO),
#define CAST_ENTRIES_TO(TO) CAST_TYPES(CAST_ENTRY, TO, 0)

const eq_kernel_info eq_ref_elementwise_kernels[] = {
    BINARY(add_f32), BINARY(add_i32), BINARY(add_i64),
    BINARY(sub_f32), BINARY(sub_i32), BINARY(sub_i64),
    BINARY(mul_f32), BINARY(mul_i32), BINARY(mul_i64),
    BINARY(div_f32), BINARY(div_i32),
    BINARY(squared_difference_f32), BINARY(squared_difference_i32),
    BINARY(maximum_f32), BINARY(maximum_i32), BINARY(maximum_i64),
    BINARY(minimum_f32), BINARY(minimum_i32), BINARY(minimum_i64),
    BINARY(pow_f32), BINARY(pow_i32),
    BINARY(floor_div_f32), BINARY(floor_div_i32),
    BINARY(floor_mod_f32), BINARY(floor_mod_i32), BINARY(floor_mod_i64),
    BINARY(prelu_f32),
    BINARY(less_f32), BINARY(less_equal_f32), BINARY(greater_f32), BINARY(greater_equal_f32),
    BINARY(equal_f32), BINARY(not_equal_f32),
    BINARY(less_i32), BINARY(less_equal_i32), BINARY(greater_i32), BINARY(greater_equal_i32),
    BINARY(equal_i32), BINARY(not_equal_i32),
    BINARY(less_i64), BINARY(less_equal_i64), BINARY(greater_i64), BINARY(greater_equal_i64),
    BINARY(equal_i64), BINARY(not_equal_i64),
    BINARY(equal_bool), BINARY(not_equal_bool), BINARY(logical_and_bool), BINARY(logical_or_bool),
    {"select_x8", select_x8, sizeof(eq_select_params)},
    {"select_x16", select_x16, sizeof(eq_select_params)},
    {"select_x32", select_x32, sizeof(eq_select_params)},
    {"select_x64", select_x64, sizeof(eq_select_params)},
    NOPARAMS(neg_f32), NOPARAMS(neg_i32), NOPARAMS(neg_i64),
    NOPARAMS(abs_f32), NOPARAMS(abs_i32),
    NOPARAMS(sqrt_f32), NOPARAMS(rsqrt_f32), NOPARAMS(exp_f32), NOPARAMS(log_f32),
    NOPARAMS(square_f32), NOPARAMS(floor_f32), NOPARAMS(ceil_f32), NOPARAMS(round_f32),
    NOPARAMS(sin_f32), NOPARAMS(cos_f32), NOPARAMS(logical_not_bool),
    NOPARAMS(logistic_f32), NOPARAMS(tanh_f32), NOPARAMS(hard_swish_f32),
    NOPARAMS(gelu_tanh_f32), NOPARAMS(gelu_f32), NOPARAMS(elu_f32),
    {"clamp_f32", clamp_f32, sizeof(eq_clamp_params)},
    {"clamp_by_compare_f32", clamp_by_compare_f32, sizeof(eq_clamp_params)},
    {"leaky_relu_f32", leaky_relu_f32, sizeof(eq_alpha_params)},
    CAST_ENTRIES_TO(f32) CAST_ENTRIES_TO(f16) CAST_ENTRIES_TO(i64) CAST_ENTRIES_TO(i32)
    CAST_ENTRIES_TO(i16) CAST_ENTRIES_TO(i8) CAST_ENTRIES_TO(u8) CAST_ENTRIES_TO(bool)
    NOPARAMS(dequantize_f16_f32),
    {"dequantize_i8_f32", dequantize_i8_f32, sizeof(eq_dequantize_params)},
    {"dequantize_u8_f32", dequantize_u8_f32, sizeof(eq_dequantize_params)},
    {"dequantize_i16_f32", dequantize_i16_f32, sizeof(eq_dequantize_params)},
    {"dequantize_pc_i8_f32", dequantize_pc_i8_f32, sizeof(eq_dequantize_pc_params)},
    {"dequantize_pc_u8_f32", dequantize_pc_u8_f32, sizeof(eq_dequantize_pc_params)},
    {"dequantize_pc_i16_f32", dequantize_pc_i16_f32, sizeof(eq_dequantize_pc_params)},
    {NULL, NULL, 0},
};
