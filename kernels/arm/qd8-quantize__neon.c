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

/* Row x[0, n), n >= 1, folded into a vector minimum and maximum (fminnm/fmaxnm: a NaN is passed
 * over, as the reference's comparisons pass it over). */
static inline __attribute__((always_inline)) void row_min_max4(size_t n, const float *x,
                                                                float32x4_t *lo,
                                                                float32x4_t *hi) {
  float32x4_t mn0, mx0;
  size_t i;
  if (n >= 16) {
    const float32x4_t a = vld1q_f32(x), b = vld1q_f32(x + 4);
    const float32x4_t c = vld1q_f32(x + 8), d = vld1q_f32(x + 12);
    float32x4_t mn1 = b, mx1 = b, mn2 = c, mx2 = c, mn3 = d, mx3 = d;
    mn0 = a, mx0 = a;
    for (i = 16; i + 16 <= n; i += 16) {
      const float32x4_t e = vld1q_f32(x + i), f = vld1q_f32(x + i + 4);
      const float32x4_t g = vld1q_f32(x + i + 8), h = vld1q_f32(x + i + 12);
      mn0 = vminnmq_f32(mn0, e);
      mx0 = vmaxnmq_f32(mx0, e);
      mn1 = vminnmq_f32(mn1, f);
      mx1 = vmaxnmq_f32(mx1, f);
      mn2 = vminnmq_f32(mn2, g);
      mx2 = vmaxnmq_f32(mx2, g);
      mn3 = vminnmq_f32(mn3, h);
      mx3 = vmaxnmq_f32(mx3, h);
    }
    mn0 = vminnmq_f32(vminnmq_f32(mn0, mn1), vminnmq_f32(mn2, mn3));
    mx0 = vmaxnmq_f32(vmaxnmq_f32(mx0, mx1), vmaxnmq_f32(mx2, mx3));
  } else if (n >= 4) {
    mn0 = mx0 = vld1q_f32(x);
    i = 4;
  } else {
    mn0 = mx0 = vdupq_n_f32(x[0]);
    i = 1;
  }
  for (; i + 4 <= n; i += 4) {
    const float32x4_t a = vld1q_f32(x + i);
    mn0 = vminnmq_f32(mn0, a);
    mx0 = vmaxnmq_f32(mx0, a);
  }
  for (; i < n; ++i) {
    const float32x4_t a = vdupq_n_f32(x[i]);
    mn0 = vminnmq_f32(mn0, a);
    mx0 = vmaxnmq_f32(mx0, a);
  }
  *lo = mn0;
  *hi = mx0;
}

/* Minimum and maximum of x[0, n), n >= 1. */
static inline __attribute__((always_inline)) void min_max(size_t n, const float *x, float *lo,
                                                           float *hi) {
  float32x4_t mn, mx;
  row_min_max4(n, x, &mn, &mx);
  *lo = vminnmvq_f32(mn);
  *hi = vmaxnmvq_f32(mx);
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

/* x[0, n) into q with factor vq (every lane) and zero point zp (every lane of vzp). */
static inline __attribute__((always_inline)) void quantize_row(size_t n, const float *x,
                                                                int8_t *q, float32x4_t vq,
                                                                int16x8_t vzp, int32_t zero_point) {
  size_t i = 0;
  for (; i + 16 <= n; i += 16) vst1q_s8(q + i, quantize16(x + i, vq, vzp));
  for (; i + 4 <= n; i += 4) {
    const int32x4_t r = vcvtnq_s32_f32(vmulq_f32(vld1q_f32(x + i), vq));
    const int16x4_t v = vqadd_s16(vqmovn_s32(r), vget_low_s16(vzp));
    const int8x8_t b = vqmovn_s16(vcombine_s16(v, v));
    vst1_lane_s32((int32_t *)(void *)(q + i), vreinterpret_s32_s8(b), 0);
  }
  const float zp = (float)zero_point;
  for (; i < n; ++i) {  /* the reference's formula */
    const float v = nearbyintf(x[i] * vgetq_lane_f32(vq, 0)) + zp;
    q[i] = (int8_t)(v < -128.0f ? -128.0f : (v > 127.0f ? 127.0f : v));
  }
}

void eq_qd8_quantize__neon(size_t n, const float *x, int8_t *q, eq_qd8_row_quant *quant) {
  float lo, hi;
  min_max(n, x, &lo, &hi);
  const float32x4_t vq = vdupq_n_f32(eq_qd8_quant_params(lo, hi, quant));
  quantize_row(n, x, q, vq, vdupq_n_s16((int16_t)quant->zero_point), quant->zero_point);
}

/* --- several rows at once (a pointwise conv's pixels): the minimum and maximum of 4 rows
 * gathered into one vector each, and eq_qd8_quant_params on the 4 lanes (the same float32
 * operations, selects for its branches), so that the per-row fixed cost (reductions, two
 * divisions, the branches) is shared; then each row quantized as above. --- */

/* eq_qd8_quant_params on 4 rows: returns q; zp gets the zero points, scale 1 / q. */
static inline float32x4_t quant_params4(float32x4_t min, float32x4_t max, int32x4_t *zp,
                                        float32x4_t *scale) {
  const float32x4_t zero = vdupq_n_f32(0.0f), one = vdupq_n_f32(1.0f);
  const float32x4_t qmin = vdupq_n_f32(-128.0f), qmax = vdupq_n_f32(127.0f);
  const float32x4_t rmin = vbslq_f32(vcltzq_f32(min), min, zero);
  const float32x4_t rmax = vbslq_f32(vcgtzq_f32(max), max, zero);
  const float32x4_t q = vbslq_f32(vceqq_f32(rmin, rmax), one,
                                  vdivq_f32(vdupq_n_f32(255.0f), vsubq_f32(rmax, rmin)));
  const float32x4_t rmin_q = vmulq_f32(rmin, q), rmax_q = vmulq_f32(rmax, q);
  const float32x4_t side = vaddq_f32(vaddq_f32(qmin, rmin_q), vaddq_f32(qmax, rmax_q));
  float32x4_t z = vbslq_f32(vcgtzq_f32(side), vsubq_f32(qmin, rmin_q), vsubq_f32(qmax, rmax_q));
  /* z < qmin ? qmin : (z > qmax ? qmax : z), a NaN kept (fcvtns then gives 0, as the
   * reference's conversion does on AArch64) */
  z = vbslq_f32(vcltq_f32(z, qmin), qmin, vbslq_f32(vcgtq_f32(z, qmax), qmax, z));
  *zp = vcvtnq_s32_f32(z);
  *scale = vdivq_f32(one, q);
  return q;
}

void eq_qd8_quantize_rows__neon(size_t rows, size_t n, const float *x, size_t x_stride,
                                int8_t *q, size_t q_stride, eq_qd8_row_quant *quant) {
  for (size_t r0 = 0; r0 < rows; r0 += 4) {
    const size_t count = rows - r0 < 4 ? rows - r0 : 4;
    const float *xr[4];
    for (size_t i = 0; i < 4; ++i) xr[i] = x + (r0 + (i < count ? i : count - 1)) * x_stride;
    float32x4_t lo0, hi0, lo1, hi1, lo2, hi2, lo3, hi3;
    row_min_max4(n, xr[0], &lo0, &hi0);
    row_min_max4(n, xr[1], &lo1, &hi1);
    row_min_max4(n, xr[2], &lo2, &hi2);
    row_min_max4(n, xr[3], &lo3, &hi3);
    const float32x4_t lo = vpminnmq_f32(vpminnmq_f32(lo0, lo1), vpminnmq_f32(lo2, lo3));
    const float32x4_t hi = vpmaxnmq_f32(vpmaxnmq_f32(hi0, hi1), vpmaxnmq_f32(hi2, hi3));
    int32x4_t zp;
    float32x4_t scale;
    const float32x4_t vq = quant_params4(lo, hi, &zp, &scale);
    const int16x8_t zp16 = vcombine_s16(vmovn_s32(zp), vmovn_s32(zp));
    if (count == 4) {
      int32x4x2_t both = {{zp, vreinterpretq_s32_f32(scale)}};
      vst2q_s32((int32_t *)(void *)(quant + r0), both);  /* {zero_point, scale} x 4 */
    } else {
      int32_t zs[4];
      float ss[4];
      vst1q_s32(zs, zp);
      vst1q_f32(ss, scale);
      for (size_t i = 0; i < count; ++i) quant[r0 + i].zero_point = zs[i], quant[r0 + i].scale = ss[i];
    }
    int8_t *qr = q + r0 * q_stride;
    quantize_row(n, xr[0], qr, vdupq_laneq_f32(vq, 0), vdupq_laneq_s16(zp16, 0),
                 vgetq_lane_s32(zp, 0));
    if (count > 1) {
      quantize_row(n, xr[1], qr + q_stride, vdupq_laneq_f32(vq, 1), vdupq_laneq_s16(zp16, 1),
                   vgetq_lane_s32(zp, 1));
    }
    if (count > 2) {
      quantize_row(n, xr[2], qr + 2 * q_stride, vdupq_laneq_f32(vq, 2),
                   vdupq_laneq_s16(zp16, 2), vgetq_lane_s32(zp, 2));
    }
    if (count > 3) {
      quantize_row(n, xr[3], qr + 3 * q_stride, vdupq_laneq_f32(vq, 3),
                   vdupq_laneq_s16(zp16, 3), vgetq_lane_s32(zp, 3));
    }
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
