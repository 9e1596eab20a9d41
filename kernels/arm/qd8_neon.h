/* Shared by the NEON QD8 GEMMs: the float epilogue of params/qd8.h on one row of up to 16
 * channels, and the node kernels on scalar quantizers and depthwise (the GEMM is what they
 * speed up). */
#ifndef EDGEQ_ARM_QD8_NEON_H
#define EDGEQ_ARM_QD8_NEON_H
#include <arm_neon.h>
#include <string.h>

#include "edgeq/params/qd8.h"

/* out[j] = clamp(float(acc[j]) * (row_scale * scale[j]) + bias[j]) for j < cols (<= 16). No
 * FMA: the spec rounds the product and the sum separately. */
static inline void qd8_neon_store_row(float *c, const int32x4_t acc[4], float row_scale,
                                      const float *scale, const float *bias, float act_min,
                                      float act_max, size_t cols) {
  const float32x4_t rs = vdupq_n_f32(row_scale);
  const float32x4_t lo = vdupq_n_f32(act_min), hi = vdupq_n_f32(act_max);
  float tmp[16];
  float *dst = cols >= 16 ? c : tmp;
  for (int j = 0; j < 4; ++j) {
    const float32x4_t s = vmulq_f32(rs, vld1q_f32(scale + 4 * j));
    float32x4_t v = vaddq_f32(vmulq_f32(vcvtq_f32_s32(acc[j]), s), vld1q_f32(bias + 4 * j));
    vst1q_f32(dst + 4 * j, vminq_f32(vmaxq_f32(v, lo), hi));
  }
  if (cols < 16) memcpy(c, tmp, cols * sizeof(float));
}

/* Row pointers of a tile of `count` rows; rows past mr repeat the last one (their results land
 * on it, identical), so the kernels keep a fixed shape. */
static inline void qd8_neon_tile_rows(size_t mr, size_t count, const int8_t *a, size_t a_stride,
                                      const int8_t **ar, size_t *rows) {
  for (size_t i = 0; i < count; ++i) {
    rows[i] = i < mr ? i : mr - 1;
    ar[i] = a + rows[i] * a_stride;
  }
}

#define QD8_NEON_UKERNELS(name, gemm, mr)                                                  \
  static const eq_qd8_ukernels name = {gemm, mr, 0, eq_qd8_quantize__scalar,            \
                                       eq_qd8_dwconv__scalar, eq_qd8_quantize_grid__scalar};

#endif
