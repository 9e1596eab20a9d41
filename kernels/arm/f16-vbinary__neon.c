/* fp16 ADD / SUB / MUL / PRELU / HARD_SWISH on plain NEON (every AArch64 core: Cortex-A53/A72
 * too): 8 halves widened by fcvtl, the float32 operation, clamped, narrowed once by fcvtn. The
 * reference's values bit for bit (kernels/ref/f16.c); cores with fp16 arithmetic run
 * f16-vbinary__neonfp16.c instead. */
#include <arm_neon.h>

#include "edgeq/dispatch.h"
#include "edgeq/f16.h"
#include "edgeq/params/elementwise.h"

typedef struct f32x8 {
  float32x4_t lo, hi;
} f32x8;

static inline f32x8 load8(const uint16_t *p) {
  const float16x8_t h = vreinterpretq_f16_u16(vld1q_u16(p));
  f32x8 v = {vcvt_f32_f16(vget_low_f16(h)), vcvt_high_f32_f16(h)};
  return v;
}

static inline f32x8 splat8(uint16_t h) {
  const float32x4_t v = vdupq_n_f32(eq_half_to_float(h));
  f32x8 r = {v, v};
  return r;
}

static inline void store8(uint16_t *p, f32x8 v) {
  vst1q_u16(p, vreinterpretq_u16_f16(vcvt_high_f16_f32(vcvt_f16_f32(v.lo), v.hi)));
}

static inline f32x8 clamp8(f32x8 v, float32x4_t lo, float32x4_t hi) {
  f32x8 r = {vminq_f32(vmaxq_f32(v.lo, lo), hi), vminq_f32(vmaxq_f32(v.hi, lo), hi)};
  return r;
}

/* x >= 0 ? x : x * alpha (a NaN x fails the compare: x * alpha, a NaN too). */
static inline float32x4_t prelu4(float32x4_t x, float32x4_t alpha) {
  return vbslq_f32(vcgezq_f32(x), x, vmulq_f32(x, alpha));
}

#define DEFINE_NEON_BINARY(NAME, VOP, TAIL, CLAMPED)                                         \
  static void NAME(size_t n, const uint16_t *a, ptrdiff_t sa, const uint16_t *b,             \
                   ptrdiff_t sb, uint16_t *out, float lo, float hi) {                        \
    const float32x4_t vlo = vdupq_n_f32(lo), vhi = vdupq_n_f32(hi);                          \
    size_t i = 0;                                                                            \
    if ((sa == 1 && (sb == 1 || sb == 0)) || (sa == 0 && sb == 1)) {                         \
      const f32x8 xa = splat8(*a), yb = splat8(*b);                                          \
      for (; i + 8 <= n; i += 8) {                                                           \
        const f32x8 x = sa ? load8(a + i) : xa, y = sb ? load8(b + i) : yb;                  \
        f32x8 r = {VOP(x.lo, y.lo), VOP(x.hi, y.hi)};                                        \
        store8(out + i, (CLAMPED) ? clamp8(r, vlo, vhi) : r);                                \
      }                                                                                      \
    }                                                                                        \
    if (i < n) /* the tail, and strides other than 0 and 1 */                               \
      TAIL(n - i, a + (ptrdiff_t)i * sa, sa, b + (ptrdiff_t)i * sb, sb, out + i, lo, hi);    \
  }

DEFINE_NEON_BINARY(neon_add, vaddq_f32, eq_f16_add__scalar, 1)
DEFINE_NEON_BINARY(neon_sub, vsubq_f32, eq_f16_sub__scalar, 1)
DEFINE_NEON_BINARY(neon_mul, vmulq_f32, eq_f16_mul__scalar, 1)
DEFINE_NEON_BINARY(neon_prelu, prelu4, eq_f16_prelu__scalar, 0)

/* x * clamp(x + 3, 0, 6) / 6, with the reference's operation order (a true division). */
static inline float32x4_t hard_swish4(float32x4_t x) {
  const float32x4_t c = vminq_f32(vmaxq_f32(vaddq_f32(x, vdupq_n_f32(3.0f)), vdupq_n_f32(0.0f)),
                                  vdupq_n_f32(6.0f));
  return vdivq_f32(vmulq_f32(x, c), vdupq_n_f32(6.0f));
}

static void neon_hard_swish(size_t n, const uint16_t *in, uint16_t *out) {
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const f32x8 x = load8(in + i);
    const f32x8 r = {hard_swish4(x.lo), hard_swish4(x.hi)};
    store8(out + i, r);
  }
  if (i < n) eq_f16_hard_swish__scalar(n - i, in + i, out + i);
}

EQ_F16_ELEMENTWISE_KERNELS(neon)

const eq_kernel_info eq_arm_neon_f16_kernels[] = {
    EQ_F16_ELEMENTWISE_ENTRIES(neon, EQ_ISA_NEON),
    {NULL, NULL, 0, 0},
};
