/* Vector math shared by the AArch64 NEON kernel files (included only by `*__neon.c` files). */
#ifndef EDGEQ_ARM_MATH_NEON_H
#define EDGEQ_ARM_MATH_NEON_H
#include <arm_neon.h>

/* e^v for v <= 0: v = n ln2 + r with |r| <= ln2 / 2 (n rounded to nearest), e^r by its degree-6
 * Taylor polynomial (relative error below 2e-7 there), times 2^n built in the exponent bits;
 * 0 below -87 (where 2^n would leave the normal range), NaN for NaN (FMAX keeps it). */
static inline float32x4_t exp_nonpositive4(float32x4_t v) {
  const float32x4_t floor = vdupq_n_f32(-87.0f);
  const uint32x4_t underflow = vcltq_f32(v, floor);
  v = vmaxq_f32(v, floor);
  const float32x4_t n = vrndnq_f32(vmulq_n_f32(v, 1.44269504088896341f));
  /* ln 2 split in two so that n * ln2_hi is exact */
  float32x4_t r = vfmsq_f32(v, n, vdupq_n_f32(0.693359375f));
  r = vfmsq_f32(r, n, vdupq_n_f32(-2.12194440e-4f));
  float32x4_t p = vdupq_n_f32(1.0f / 720.0f);
  p = vfmaq_f32(vdupq_n_f32(1.0f / 120.0f), p, r);
  p = vfmaq_f32(vdupq_n_f32(1.0f / 24.0f), p, r);
  p = vfmaq_f32(vdupq_n_f32(1.0f / 6.0f), p, r);
  p = vfmaq_f32(vdupq_n_f32(0.5f), p, r);
  p = vfmaq_f32(vdupq_n_f32(1.0f), p, r);
  p = vfmaq_f32(vdupq_n_f32(1.0f), p, r);
  const int32x4_t scale = vshlq_n_s32(vaddq_s32(vcvtq_s32_f32(n), vdupq_n_s32(127)), 23);
  const float32x4_t e = vmulq_f32(p, vreinterpretq_f32_s32(scale));
  return vreinterpretq_f32_u32(vbicq_u32(vreinterpretq_u32_f32(e), underflow));
}

#endif
