/* fp16 ADD / SUB / MUL / PRELU / HARD_SWISH in ARMv8.2 FP16 arithmetic: 8 lanes per vector,
 * no conversions. MUL and PRELU round once, as the reference (kernels/ref/f16.c) does (the
 * product of two halves is exact in float32); ADD and SUB round the exact sum once too, where
 * the reference rounds twice (to float32, then to fp16), so the two may differ by one ulp;
 * HARD_SWISH rounds after each step. Only cores with ASIMDHP run this file (EQ_ISA_NEON_FP16). */
#include <arm_neon.h>

#include "edgeq/dispatch.h"
#include "edgeq/f16.h"
#include "edgeq/params/elementwise.h"

static inline float16x8_t load8(const uint16_t *p) { return vreinterpretq_f16_u16(vld1q_u16(p)); }

static inline void store8(uint16_t *p, float16x8_t v) { vst1q_u16(p, vreinterpretq_u16_f16(v)); }

/* The float32 bounds as fp16 (+-FLT_MAX becomes +-inf, which clamps nothing, as before). */
static inline float16x8_t bound(float v) {
  return vreinterpretq_f16_u16(vdupq_n_u16(eq_float_to_half(v)));
}

#define DEFINE_FP16_BINARY(NAME, VOP, TAIL, CLAMPED)                                          \
  static void NAME(size_t n, const uint16_t *a, ptrdiff_t sa, const uint16_t *b,             \
                   ptrdiff_t sb, uint16_t *out, float lo, float hi) {                        \
    const float16x8_t vlo = bound(lo), vhi = bound(hi);                                      \
    size_t i = 0;                                                                            \
    if (sa == 1 && (sb == 1 || sb == 0)) {                                                   \
      const float16x8_t yb = vreinterpretq_f16_u16(vdupq_n_u16(*b));                         \
      for (; i + 8 <= n; i += 8) {                                                           \
        const float16x8_t x = load8(a + i), y = sb ? load8(b + i) : yb;                      \
        const float16x8_t r = VOP(x, y);                                                     \
        store8(out + i, (CLAMPED) ? vminq_f16(vmaxq_f16(r, vlo), vhi) : r);                  \
      }                                                                                      \
    } else if (sa == 0 && sb == 1) {                                                         \
      const float16x8_t x = vreinterpretq_f16_u16(vdupq_n_u16(*a));                          \
      for (; i + 8 <= n; i += 8) {                                                           \
        const float16x8_t r = VOP(x, load8(b + i));                                          \
        store8(out + i, (CLAMPED) ? vminq_f16(vmaxq_f16(r, vlo), vhi) : r);                  \
      }                                                                                      \
    }                                                                                        \
    if (i < n) /* the tail, and strides other than 0 and 1 */                               \
      TAIL(n - i, a + (ptrdiff_t)i * sa, sa, b + (ptrdiff_t)i * sb, sb, out + i, lo, hi);    \
  }

/* x >= 0 ? x : x * alpha (a NaN x fails the compare: x * alpha, a NaN too). */
static inline float16x8_t prelu8(float16x8_t x, float16x8_t alpha) {
  return vbslq_f16(vcgezq_f16(x), x, vmulq_f16(x, alpha));
}

DEFINE_FP16_BINARY(fp16_add, vaddq_f16, eq_f16_add__scalar, 1)
DEFINE_FP16_BINARY(fp16_sub, vsubq_f16, eq_f16_sub__scalar, 1)
DEFINE_FP16_BINARY(fp16_mul, vmulq_f16, eq_f16_mul__scalar, 1)
DEFINE_FP16_BINARY(fp16_prelu, prelu8, eq_f16_prelu__scalar, 0)

static void fp16_hard_swish(size_t n, const uint16_t *in, uint16_t *out) {
  const float16x8_t three = vdupq_n_f16(3.0f), six = vdupq_n_f16(6.0f);
  const float16x8_t zero = vdupq_n_f16(0.0f);
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const float16x8_t x = load8(in + i);
    const float16x8_t c = vminq_f16(vmaxq_f16(vaddq_f16(x, three), zero), six);
    store8(out + i, vdivq_f16(vmulq_f16(x, c), six));
  }
  if (i < n) eq_f16_hard_swish__scalar(n - i, in + i, out + i);
}

EQ_F16_ELEMENTWISE_KERNELS(fp16)

const eq_kernel_info eq_arm_neonfp16_f16_kernels[] = {
    EQ_F16_ELEMENTWISE_ENTRIES(fp16, EQ_ISA_NEON_FP16),
    {NULL, NULL, 0, 0},
};
