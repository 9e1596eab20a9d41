/* f32 (indirect) GEMM microkernel, 6 rows x 16 columns, AArch64 NEON: 24 q-register
 * accumulators (four per row) out of 32, each row's A value duplicated once per k and fed to
 * four FMAs. Blocks with at most 8 live columns do half the FMAs; one row skips the others. */
#include <arm_neon.h>

#include "edgeq/f32_gemm.h"

#define MR 6

static inline float32x4_t clamp4(float32x4_t v, float32x4_t lo, float32x4_t hi) {
  /* vmaxnm/vminnm would drop a NaN; max/min keep it, as the reference does */
  return vminq_f32(hi, vmaxq_f32(lo, v));
}

/* Stores the first n (0..4) lanes of v. */
static inline void store4(float *c, int32_t n, float32x4_t v) {
  if (n >= 4) {
    vst1q_f32(c, v);
    return;
  }
  float32x2_t low = vget_low_f32(v);
  if (n >= 2) {
    vst1_f32(c, low);
    if (n == 3) vst1q_lane_f32(c + 2, v, 2);
  } else if (n == 1) {
    vst1_lane_f32(c, low, 0);
  }
}

static inline void store16(float *c, int32_t nc, const float32x4_t v[4]) {
  for (int32_t q = 0; q < 4; ++q) store4(c + 4 * q, nc - 4 * q, v[q]);
}

static void gemm_1x16(int32_t nc, int32_t taps, int32_t kc, const float *const *a,
                      const float *w, float *c, float lo, float hi) {
  float32x4_t acc[4];
  for (int32_t q = 0; q < 4; ++q) acc[q] = vld1q_f32(w + 4 * q);
  w += 16;
  for (int32_t t = 0; t < taps; ++t, a += MR) {
    const float *x = a[0];
    for (int32_t k = 0; k < kc; ++k, w += 16) {
      const float32x4_t xk = vld1q_dup_f32(x + k);
#pragma GCC unroll 4
      for (int32_t q = 0; q < 4; ++q) acc[q] = vfmaq_f32(acc[q], xk, vld1q_f32(w + 4 * q));
    }
  }
  const float32x4_t vlo = vdupq_n_f32(lo), vhi = vdupq_n_f32(hi);
  for (int32_t q = 0; q < 4; ++q) acc[q] = clamp4(acc[q], vlo, vhi);
  store16(c, nc, acc);
}

static void gemm_6x8(int32_t mr, int32_t nc, int32_t taps, int32_t kc, const float *const *a,
                     const float *w, float *c, int64_t c_stride, float lo, float hi) {
  float32x4_t acc[MR][2];
  const float32x4_t b0 = vld1q_f32(w), b1 = vld1q_f32(w + 4);
  for (int32_t i = 0; i < MR; ++i) {
    acc[i][0] = b0;
    acc[i][1] = b1;
  }
  w += 16;
  for (int32_t t = 0; t < taps; ++t, a += MR) {
    for (int32_t k = 0; k < kc; ++k, w += 16) {
      const float32x4_t w0 = vld1q_f32(w), w1 = vld1q_f32(w + 4);
#pragma GCC unroll 6
      for (int32_t i = 0; i < MR; ++i) {
        const float32x4_t x = vld1q_dup_f32(a[i] + k);
        acc[i][0] = vfmaq_f32(acc[i][0], x, w0);
        acc[i][1] = vfmaq_f32(acc[i][1], x, w1);
      }
    }
  }
  const float32x4_t vlo = vdupq_n_f32(lo), vhi = vdupq_n_f32(hi);
  /* constant indices (unrolled, then cut at mr) keep the accumulators out of memory */
#pragma GCC unroll 6
  for (int32_t i = 0; i < MR; ++i) {
    if (i >= mr) break;
    store4(c + i * c_stride, nc, clamp4(acc[i][0], vlo, vhi));
    store4(c + i * c_stride + 4, nc - 4, clamp4(acc[i][1], vlo, vhi));
  }
}

void eq_f32_gemm_6x16__neon(int32_t mr, int32_t nc, int32_t taps, int32_t kc,
                            const float *const *a, const float *w, float *c, int64_t c_stride,
                            float lo, float hi) {
  if (mr == 1) {
    gemm_1x16(nc, taps, kc, a, w, c, lo, hi);
    return;
  }
  if (nc <= 8) {
    gemm_6x8(mr, nc, taps, kc, a, w, c, c_stride, lo, hi);
    return;
  }
  float32x4_t acc[MR][4];
#pragma GCC unroll 4
  for (int32_t q = 0; q < 4; ++q) {
    const float32x4_t bias = vld1q_f32(w + 4 * q);
#pragma GCC unroll 6
    for (int32_t i = 0; i < MR; ++i) acc[i][q] = bias;
  }
  w += 16;
  for (int32_t t = 0; t < taps; ++t, a += MR) {
    const float *a0 = a[0], *a1 = a[1], *a2 = a[2], *a3 = a[3], *a4 = a[4], *a5 = a[5];
    for (int32_t k = 0; k < kc; ++k, w += 16) {
      const float32x4_t w0 = vld1q_f32(w), w1 = vld1q_f32(w + 4);
      const float32x4_t w2 = vld1q_f32(w + 8), w3 = vld1q_f32(w + 12);
      const float *rows[MR] = {a0, a1, a2, a3, a4, a5};
#pragma GCC unroll 6
      for (int32_t i = 0; i < MR; ++i) {
        const float32x4_t x = vld1q_dup_f32(rows[i] + k);
        acc[i][0] = vfmaq_f32(acc[i][0], x, w0);
        acc[i][1] = vfmaq_f32(acc[i][1], x, w1);
        acc[i][2] = vfmaq_f32(acc[i][2], x, w2);
        acc[i][3] = vfmaq_f32(acc[i][3], x, w3);
      }
    }
  }
  const float32x4_t vlo = vdupq_n_f32(lo), vhi = vdupq_n_f32(hi);
#pragma GCC unroll 6
  for (int32_t i = 0; i < MR; ++i) {
    if (i >= mr) break;
#pragma GCC unroll 4
    for (int32_t q = 0; q < 4; ++q) acc[i][q] = clamp4(acc[i][q], vlo, vhi);
    store16(c + i * c_stride, nc, acc[i]);
  }
}
