/* Shared by the NEON QD8 kernels: the float epilogue of params/qd8.h on one row of up to 16
 * channels, and the microkernels every ARM level runs beside its own GEMM (the quantizers and
 * the depthwise, plain NEON: qd8-quantize__neon.c, qd8-dwconv__neon.c). */
#ifndef EDGEQ_ARM_QD8_NEON_H
#define EDGEQ_ARM_QD8_NEON_H
#include <arm_neon.h>
#include <string.h>

#include "edgeq/params/qd8.h"

/* clamp(acc * (rs * scale) + bias) on 4 channels. No FMA: the spec rounds the product and the
 * sum separately (and the files build with -std=c11, which does not contract). */
static inline float32x4_t qd8_neon_epilogue4(float32x4_t acc, float32x4_t rs, float32x4_t scale,
                                             float32x4_t bias, float32x4_t lo, float32x4_t hi) {
  const float32x4_t v = vaddq_f32(vmulq_f32(acc, vmulq_f32(rs, scale)), bias);
  return vminq_f32(vmaxq_f32(v, lo), hi);
}

/* A weight block's epilogue terms (16 channels), loaded once for all rows of a tile. */
typedef struct qd8_neon_terms {
  float32x4_t s0, s1, s2, s3, b0, b1, b2, b3, lo, hi;
} qd8_neon_terms;

static inline qd8_neon_terms qd8_neon_load_terms(const float *scale, const float *bias,
                                                 float act_min, float act_max) {
  qd8_neon_terms t;
  t.s0 = vld1q_f32(scale), t.s1 = vld1q_f32(scale + 4);
  t.s2 = vld1q_f32(scale + 8), t.s3 = vld1q_f32(scale + 12);
  t.b0 = vld1q_f32(bias), t.b1 = vld1q_f32(bias + 4);
  t.b2 = vld1q_f32(bias + 8), t.b3 = vld1q_f32(bias + 12);
  t.lo = vdupq_n_f32(act_min), t.hi = vdupq_n_f32(act_max);
  return t;
}

/* The first cols (< 16) of the 16 outputs v0..v3: whole vectors first, then 2 and 1 lanes (no
 * memcpy call, which made the compiler spill every live vector around it: ~100 instructions per
 * row of a block of 8). */
static inline void qd8_neon_store_part(float *c, float32x4_t v0, float32x4_t v1, float32x4_t v2,
                                       float32x4_t v3, size_t cols) {
  float32x4_t v = v0;
  if (cols >= 8) {
    vst1q_f32(c, v0);
    vst1q_f32(c + 4, v1);
    c += 8, cols -= 8;
    v0 = v2, v1 = v3, v = v2;
  }
  if (cols >= 4) {
    vst1q_f32(c, v0);
    c += 4, cols -= 4;
    v = v1;
  }
  if (cols >= 2) {
    vst1_f32(c, vget_low_f32(v));
    c += 2, cols -= 2;
    v = vextq_f32(v, v, 2);
  }
  if (cols) vst1q_lane_f32(c, v, 0);
}

/* out[j] = clamp(float(acc[j]) * (row_scale * scale[j]) + bias[j]) for j < cols (<= 16), acc
 * as four vectors of 4 channels. */
static inline void qd8_neon_store_row(float *c, int32x4_t acc0, int32x4_t acc1, int32x4_t acc2,
                                      int32x4_t acc3, float row_scale, const qd8_neon_terms *t,
                                      size_t cols) {
  const float32x4_t rs = vdupq_n_f32(row_scale);
  const float32x4_t v0 = qd8_neon_epilogue4(vcvtq_f32_s32(acc0), rs, t->s0, t->b0, t->lo, t->hi);
  const float32x4_t v1 = qd8_neon_epilogue4(vcvtq_f32_s32(acc1), rs, t->s1, t->b1, t->lo, t->hi);
  const float32x4_t v2 = qd8_neon_epilogue4(vcvtq_f32_s32(acc2), rs, t->s2, t->b2, t->lo, t->hi);
  const float32x4_t v3 = qd8_neon_epilogue4(vcvtq_f32_s32(acc3), rs, t->s3, t->b3, t->lo, t->hi);
  if (cols >= 16) {
    vst1q_f32(c, v0);
    vst1q_f32(c + 4, v1);
    vst1q_f32(c + 8, v2);
    vst1q_f32(c + 12, v3);
    return;
  }
  qd8_neon_store_part(c, v0, v1, v2, v3, cols);
}

/* The same for the first 8 channels of a block, cols <= 8 (a block's last channels are past N). */
static inline void qd8_neon_store_half(float *c, int32x4_t acc0, int32x4_t acc1, float row_scale,
                                       const qd8_neon_terms *t, size_t cols) {
  const float32x4_t rs = vdupq_n_f32(row_scale);
  const float32x4_t v0 = qd8_neon_epilogue4(vcvtq_f32_s32(acc0), rs, t->s0, t->b0, t->lo, t->hi);
  const float32x4_t v1 = qd8_neon_epilogue4(vcvtq_f32_s32(acc1), rs, t->s1, t->b1, t->lo, t->hi);
  qd8_neon_store_part(c, v0, v1, v1, v1, cols);
}

/* The 4-byte k group at *a, in every 32-bit lane, and *a moved to the next group: one ld1r with
 * post-increment (rows and groups are 4-byte aligned in the scratch). Written out because GCC 12
 * turns vld1q_dup_s32 into a scalar load plus a dup, two instructions where one does. */
static inline int8x16_t qd8_neon_next4(const int8_t **a) {
#if defined(__GNUC__)
  int8x16_t v;
  __asm__("ld1r {%0.4s}, [%1], #4" : "=w"(v), "+r"(*a) : "m"(*(const int32_t *)(const void *)*a));
  return v;
#else
  const int8x16_t v = vreinterpretq_s8_s32(vld1q_dup_s32((const int32_t *)(const void *)*a));
  *a += 4;
  return v;
#endif
}

/* The 4-byte k group at a, in every 32-bit lane. */
static inline int8x16_t qd8_neon_repeat4(const int8_t *a) { return qd8_neon_next4(&a); }

/* Row pointers of a tile of `count` rows; rows past mr repeat the last one (their results land
 * on it, identical), so the kernels keep a fixed shape. */
static inline void qd8_neon_tile_rows(size_t mr, size_t count, const int8_t *a, size_t a_stride,
                                      const int8_t **ar, size_t *rows) {
  for (size_t i = 0; i < count; ++i) {
    rows[i] = i < mr ? i : mr - 1;
    ar[i] = a + rows[i] * a_stride;
  }
}

void eq_qd8_quantize__neon(size_t n, const float *x, int8_t *q, eq_qd8_row_quant *quant);
void eq_qd8_quantize_rows__neon(size_t rows, size_t n, const float *x, size_t x_stride,
                                int8_t *q, size_t q_stride, eq_qd8_row_quant *quant);
void eq_qd8_quantize_grid__neon(size_t n, const float *x, float *grid, eq_qd8_row_quant *quant);
void eq_qd8_dwconv__neon(size_t channels, size_t taps, const float *const *rows,
                         const float *weights, float *out, float scale, const float *w_scale,
                         const float *bias, float act_min, float act_max);
void eq_qd8_dwconv_run__neon(size_t pixels, size_t step, size_t channels, size_t taps,
                             const float *const *rows, const float *weights, float *out,
                             float scale, const float *w_scale, const float *bias,
                             float act_min, float act_max);

/* Weight blocks per GEMM call: 32 (512 channels; at most 512 * 960 bytes of weights for the
 * shared models' largest pointwise conv, well inside the Pi 4's 1 MiB L2) instead of the
 * drivers' 8: each call costs ~90 instructions of prologue and task bookkeeping, about 2M per
 * MobileNetV2 invoke at 8 blocks (benchmarks/README.md, "QD8 below fp32 on the A53/A72"). */
#define QD8_NEON_CHUNK_BLOCKS 32
#define QD8_NEON_UKERNELS(name, gemm, mr)                                                  \
  static const eq_qd8_ukernels name = {gemm, mr, 0, eq_qd8_quantize__neon,               \
                                       eq_qd8_dwconv__neon, eq_qd8_quantize_grid__neon,   \
                                       eq_qd8_dwconv_run__neon, QD8_NEON_CHUNK_BLOCKS,    \
                                       eq_qd8_quantize_rows__neon};

#endif
