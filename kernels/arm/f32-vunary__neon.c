/* f32 unary ops, AArch64 NEON: HARD_SWISH (x * clamp(x + 3, 0, 6) / 6 in the reference's order
 * of operations with its ARM clamp, FMAX then FMIN, so bit-identical to it), GELU (erf by
 * the x86 kernels' rational fit), LOGISTIC and TANH (from e^-|x|, math__neon.h), 8 elements
 * per loop step; the last 1..7 elements run 4 at a time, then the same vector code on a
 * duplicated lane. */
#include <arm_neon.h>

#include "edgeq/dispatch.h"
#include "edgeq/gelu_erf.h"
#include "math__neon.h"

static inline float32x4_t hard_swish4(float32x4_t x) {
  const float32x4_t gate =
      vminq_f32(vmaxq_f32(vaddq_f32(x, vdupq_n_f32(3.0f)), vdupq_n_f32(0.0f)), vdupq_n_f32(6.0f));
  return vdivq_f32(vmulq_f32(x, gate), vdupq_n_f32(6.0f));
}

/* erf(z) by the rational function of gelu_erf.h (the x86 kernels' fit, P and Q by Horner, in
 * parallel): the same float32 operations as there (FMA, one division), so the same results. */
static inline float32x4_t erf4(float32x4_t z) {
  const float32x4_t c = vdupq_n_f32(EQ_GELU_ERF_CLAMP);
  z = vminq_f32(c, vmaxq_f32(vnegq_f32(c), z));  /* FMAX / FMIN: NaN stays */
  const float32x4_t s = vmulq_f32(z, z);
  float32x4_t p = vdupq_n_f32(kGeluErfP[5]), q = vdupq_n_f32(kGeluErfQ[5]);
  for (int i = 4; i >= 0; --i) {
    p = vfmaq_f32(vdupq_n_f32(kGeluErfP[i]), p, s);
    q = vfmaq_f32(vdupq_n_f32(kGeluErfQ[i]), q, s);
  }
  return vdivq_f32(vmulq_f32(z, p), q);
}

/* GELU (exact form): h + h erf(x / sqrt 2), h = x / 2: within 2e-7 max(1, |x|) of the reference
 * (gelu_erf.h), as LiteRT; -inf gives NaN (-inf + inf) and +inf gives inf, as the reference. */
static inline float32x4_t gelu4(float32x4_t x) {
  const float32x4_t h = vmulq_n_f32(x, 0.5f);
  return vfmaq_f32(h, h, erf4(vmulq_n_f32(x, 0.7071067811865476f)));
}

/* LOGISTIC: 1 / (1 + e^-x) from e = e^-|x|, never overflowing: x >= 0 gives 1 / (1 + e),
 * x < 0 gives e / (1 + e). Within a few ulp of the reference's expf form; 0 below about -87
 * where the reference gives a subnormal, NaN for NaN. */
static inline float32x4_t sigmoid4(float32x4_t x) {
  const float32x4_t one = vdupq_n_f32(1.0f);
  const float32x4_t e = exp_nonpositive4(vnegq_f32(vabsq_f32(x)));
  const float32x4_t r = vdivq_f32(one, vaddq_f32(one, e));
  return vbslq_f32(vcltzq_f32(x), vmulq_f32(e, r), r);
}

/* TANH with the sign of x: |x| < 0.3125 by its odd Taylor polynomial to x^11 (the next term
 * is below 3e-8 relative there), else (1 - e) / (1 + e), e = e^-2|x| (no overflow; 1 past
 * about 43, NaN for NaN). Within 3.2e-7 relative of float32 tanhf (checked over [-20, 20] in
 * steps of 1e-5 near 0 and 1e-4 elsewhere); -0 stays -0. */
static inline float32x4_t tanh4(float32x4_t x) {
  const float32x4_t one = vdupq_n_f32(1.0f);
  const float32x4_t ax = vabsq_f32(x);
  const float32x4_t e = exp_nonpositive4(vmulq_n_f32(ax, -2.0f));
  const float32x4_t big = vdivq_f32(vsubq_f32(one, e), vaddq_f32(one, e));
  const float32x4_t s = vmulq_f32(ax, ax);
  float32x4_t p = vdupq_n_f32(-1382.0f / 155925.0f);
  p = vfmaq_f32(vdupq_n_f32(62.0f / 2835.0f), p, s);
  p = vfmaq_f32(vdupq_n_f32(-17.0f / 315.0f), p, s);
  p = vfmaq_f32(vdupq_n_f32(2.0f / 15.0f), p, s);
  p = vfmaq_f32(vdupq_n_f32(-1.0f / 3.0f), p, s);
  const float32x4_t small = vfmaq_f32(ax, ax, vmulq_f32(s, p));
  const float32x4_t t = vbslq_f32(vcltq_f32(ax, vdupq_n_f32(0.3125f)), small, big);
  /* the sign bit of x on |tanh| (a NaN's payload passes through either way) */
  const uint32x4_t sign = vdupq_n_u32(0x80000000u);
  return vbslq_f32(sign, x, t);
}

/* UNROLL elements per loop step (4 or 8). */
#define DEFINE_VUNARY(NAME, OP, UNROLL)                                                      \
  int NAME(const eq_node *node, eq_ctx *ctx) {                                               \
    (void)ctx;                                                                               \
    const float *in = (const float *)node->inputs[0]->data;                                  \
    float *out = (float *)node->outputs[0]->data;                                            \
    const int64_t n = node->inputs[0]->count;                                                \
    int64_t i = 0;                                                                           \
    for (; UNROLL == 8 && i + 8 <= n; i += 8) {                                              \
      const float32x4_t x0 = vld1q_f32(in + i), x1 = vld1q_f32(in + i + 4);                  \
      vst1q_f32(out + i, OP(x0));                                                            \
      vst1q_f32(out + i + 4, OP(x1));                                                        \
    }                                                                                        \
    for (; i + 4 <= n; i += 4) vst1q_f32(out + i, OP(vld1q_f32(in + i)));                    \
    for (; i < n; ++i) out[i] = vgetq_lane_f32(OP(vld1q_dup_f32(in + i)), 0);                \
    return 0;                                                                                \
  }

DEFINE_VUNARY(eq_f32_hard_swish__neon, hard_swish4, 8)
DEFINE_VUNARY(eq_f32_gelu__neon, gelu4, 8)
DEFINE_VUNARY(eq_f32_logistic__neon, sigmoid4, 8)
DEFINE_VUNARY(eq_f32_tanh__neon, tanh4, 8)
