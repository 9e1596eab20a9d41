/* QD8 row quantizers for AArch64 NEON (every ARM level uses them): the arithmetic of
 * params/qd8.h, 16 floats per step, bit for bit the scalar reference's.
 *
 * eq_qd8_quantize: rint of the float32 product (fcvtns rounds to nearest even), + zero point,
 * saturated to int8: every step saturates, so even an infinite product (a row whose range is
 * too small for 255 / range to be finite) lands on -128 or 127, as in the reference.
 * The last n % 4 values use the reference's formula.
 * eq_qd8_quantize_grid: rint of the exact product by the magic-bias FMA (params/qd8.h), kept as
 * a float 1.5 * 2^23 + r whose ulp is 1; clamping r + zp to [-128, 127] is clamping r to
 * [-128 - zp, 127 - zp], done on those floats (exact there), and subtracting the bias leaves
 * x_q - zp exactly; the last n % 4 values go through the same code on a padded copy. */
#include <math.h>

#include "qd8_neon.h"

/* Minimum and maximum of x[0, n), n >= 1 (fminnm/fmaxnm: a NaN is passed over, as the reference's
 * comparisons pass it over). */
static inline __attribute__((always_inline)) void min_max(size_t n, const float *x, float *lo,
                                                           float *hi) {
  float32x4_t mn0 = vdupq_n_f32(x[0]), mx0 = mn0, mn1 = mn0, mx1 = mn0;
  float32x4_t mn2 = mn0, mx2 = mn0, mn3 = mn0, mx3 = mn0;
  size_t i = 0;
  for (; i + 16 <= n; i += 16) {
    const float32x4_t a = vld1q_f32(x + i), b = vld1q_f32(x + i + 4);
    const float32x4_t c = vld1q_f32(x + i + 8), d = vld1q_f32(x + i + 12);
    mn0 = vminnmq_f32(mn0, a);
    mx0 = vmaxnmq_f32(mx0, a);
    mn1 = vminnmq_f32(mn1, b);
    mx1 = vmaxnmq_f32(mx1, b);
    mn2 = vminnmq_f32(mn2, c);
    mx2 = vmaxnmq_f32(mx2, c);
    mn3 = vminnmq_f32(mn3, d);
    mx3 = vmaxnmq_f32(mx3, d);
  }
  for (; i + 4 <= n; i += 4) {
    const float32x4_t a = vld1q_f32(x + i);
    mn0 = vminnmq_f32(mn0, a);
    mx0 = vmaxnmq_f32(mx0, a);
  }
  mn0 = vminnmq_f32(vminnmq_f32(mn0, mn1), vminnmq_f32(mn2, mn3));
  mx0 = vmaxnmq_f32(vmaxnmq_f32(mx0, mx1), vmaxnmq_f32(mx2, mx3));
  float l = vminnmvq_f32(mn0), h = vmaxnmvq_f32(mx0);
  for (; i < n; ++i) {
    l = x[i] < l ? x[i] : l;
    h = x[i] > h ? x[i] : h;
  }
  *lo = l;
  *hi = h;
}

static inline int8x16_t quantize16(const float *x, float32x4_t vq, int16x8_t vzp) {
  const int32x4_t r0 = vcvtnq_s32_f32(vmulq_f32(vld1q_f32(x), vq));
  const int32x4_t r1 = vcvtnq_s32_f32(vmulq_f32(vld1q_f32(x + 4), vq));
  const int32x4_t r2 = vcvtnq_s32_f32(vmulq_f32(vld1q_f32(x + 8), vq));
  const int32x4_t r3 = vcvtnq_s32_f32(vmulq_f32(vld1q_f32(x + 12), vq));
  const int16x8_t lo = vqaddq_s16(vcombine_s16(vqmovn_s32(r0), vqmovn_s32(r1)), vzp);
  const int16x8_t hi = vqaddq_s16(vcombine_s16(vqmovn_s32(r2), vqmovn_s32(r3)), vzp);
  return vcombine_s8(vqmovn_s16(lo), vqmovn_s16(hi));
}

void eq_qd8_quantize__neon(size_t n, const float *x, int8_t *q, eq_qd8_row_quant *quant) {
  float lo, hi;
  min_max(n, x, &lo, &hi);
  const float32x4_t vq = vdupq_n_f32(eq_qd8_quant_params(lo, hi, quant));
  const int16x8_t vzp = vdupq_n_s16((int16_t)quant->zero_point);
  size_t i = 0;
  for (; i + 16 <= n; i += 16) vst1q_s8(q + i, quantize16(x + i, vq, vzp));
  for (; i + 4 <= n; i += 4) {
    const int32x4_t r = vcvtnq_s32_f32(vmulq_f32(vld1q_f32(x + i), vq));
    const int16x4_t v = vqadd_s16(vqmovn_s32(r), vget_low_s16(vzp));
    const int8x8_t b = vqmovn_s16(vcombine_s16(v, v));
    vst1_lane_s32((int32_t *)(void *)(q + i), vreinterpret_s32_s8(b), 0);
  }
  const float zp = (float)quant->zero_point;
  for (; i < n; ++i) {  /* the reference's formula */
    const float v = nearbyintf(x[i] * vgetq_lane_f32(vq, 0)) + zp;
    q[i] = (int8_t)(v < -128.0f ? -128.0f : (v > 127.0f ? 127.0f : v));
  }
}

static inline void grid4(const float *x, float *grid, float32x4_t vq, float32x4_t bias,
                         float32x4_t lo, float32x4_t hi) {
  const float32x4_t t = vfmaq_f32(bias, vld1q_f32(x), vq);
  vst1q_f32(grid, vsubq_f32(vminq_f32(vmaxq_f32(t, lo), hi), bias));
}

void eq_qd8_quantize_grid__neon(size_t n, const float *x, float *grid,
                                eq_qd8_row_quant *quant) {
  float lo, hi;
  min_max(n, x, &lo, &hi);
  const float32x4_t vq = vdupq_n_f32(eq_qd8_quant_params(lo, hi, quant));
  const float zp = (float)quant->zero_point;
  const float32x4_t bias = vdupq_n_f32(EQ_QD8_MAGIC_BIAS);
  const float32x4_t vlo = vdupq_n_f32(EQ_QD8_MAGIC_BIAS + (-128.0f - zp));
  const float32x4_t vhi = vdupq_n_f32(EQ_QD8_MAGIC_BIAS + (127.0f - zp));
  size_t i = 0;
  for (; i + 16 <= n; i += 16) {
    grid4(x + i, grid + i, vq, bias, vlo, vhi);
    grid4(x + i + 4, grid + i + 4, vq, bias, vlo, vhi);
    grid4(x + i + 8, grid + i + 8, vq, bias, vlo, vhi);
    grid4(x + i + 12, grid + i + 12, vq, bias, vlo, vhi);
  }
  for (; i + 4 <= n; i += 4) grid4(x + i, grid + i, vq, bias, vlo, vhi);
  if (i < n) {
    float tail[4] = {0}, out[4];
    memcpy(tail, x + i, (n - i) * sizeof(float));
    grid4(tail, out, vq, bias, vlo, vhi);
    memcpy(grid + i, out, (n - i) * sizeof(float));
  }
}
