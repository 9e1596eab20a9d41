/* f32 BATCH_MATMUL, AArch64 NEON: the reference kernel's batch walk and params. Where rhs rows
 * are contiguous (no adj_y), a block of 4 rows x 16 (or 4) columns of the output is held in
 * registers while k runs, each output still summed from 0 in increasing k; the last columns
 * (fewer than 4) and the other layout keep the reference's dot products. Nothing is split
 * across threads (attention-sized products are small). */
#include <arm_neon.h>

#include "edgeq/batch_matmul.h"
#include "edgeq/dispatch.h"
#include "edgeq/params/conv.h"

/* Rows [i, i + rows) (rows <= 4) x columns [j, j + 4 NQ) of out = lhs x rhs. */
static inline __attribute__((always_inline)) void block(
    const eq_matmul_params *p, const float *lhs, const float *rhs, float *out, int32_t i,
    int32_t rows, int32_t j, const int32_t NQ) {
  float32x4_t acc[4][4];
#pragma GCC unroll 4
  for (int32_t r = 0; r < 4; ++r)
#pragma GCC unroll 4
    for (int32_t q = 0; q < NQ; ++q) acc[r][q] = vdupq_n_f32(0.0f);
  const float *a[4];
#pragma GCC unroll 4
  for (int32_t r = 0; r < 4; ++r) a[r] = lhs + (int64_t)(i + (r < rows ? r : 0)) * p->lhs_m_stride;
  const int64_t ks = p->lhs_k_stride, rs = p->rhs_k_stride;
  const float *rk = rhs + j;
  for (int32_t k = 0; k < p->k; ++k, rk += rs) {
    float32x4_t w[4];
#pragma GCC unroll 4
    for (int32_t q = 0; q < NQ; ++q) w[q] = vld1q_f32(rk + 4 * q);
#pragma GCC unroll 4
    for (int32_t r = 0; r < 4; ++r) {
      const float32x4_t x = vld1q_dup_f32(a[r] + k * ks);
#pragma GCC unroll 4
      for (int32_t q = 0; q < NQ; ++q) acc[r][q] = vfmaq_f32(acc[r][q], x, w[q]);
    }
  }
#pragma GCC unroll 4
  for (int32_t r = 0; r < 4; ++r) {
    if (r >= rows) break;
    float *o = out + (int64_t)(i + r) * p->n + j;
#pragma GCC unroll 4
    for (int32_t q = 0; q < NQ; ++q) vst1q_f32(o + 4 * q, acc[r][q]);
  }
}

/* out[i][j] as the reference sums it. */
static inline void dot(const eq_matmul_params *p, const float *lhs, const float *rhs,
                       float *out, int32_t i, int32_t j) {
  const float *a = lhs + (int64_t)i * p->lhs_m_stride;
  const float *r = rhs + (int64_t)j * p->rhs_n_stride;
  float acc = 0.0f;
  for (int32_t k = 0; k < p->k; ++k)
    acc += a[(int64_t)k * p->lhs_k_stride] * r[(int64_t)k * p->rhs_k_stride];
  out[(int64_t)i * p->n + j] = acc;
}

static void matmul_one(const eq_matmul_params *p, const float *lhs, const float *rhs,
                       float *out) {
  if (p->rhs_n_stride != 1) {
    for (int32_t i = 0; i < p->m; ++i)
      for (int32_t j = 0; j < p->n; ++j) dot(p, lhs, rhs, out, i, j);
    return;
  }
  for (int32_t i = 0; i < p->m; i += 4) {
    const int32_t rows = p->m - i < 4 ? p->m - i : 4;
    int32_t j = 0;
    for (; j + 16 <= p->n; j += 16) block(p, lhs, rhs, out, i, rows, j, 4);
    for (; j + 4 <= p->n; j += 4) block(p, lhs, rhs, out, i, rows, j, 1);
    for (; j < p->n; ++j)
      for (int32_t r = 0; r < rows; ++r) dot(p, lhs, rhs, out, i + r, j);
  }
}

int eq_f32_batch_matmul__neon(const eq_node *node, eq_ctx *ctx) {
  (void)ctx;
  eq_batch_matmul_walk(node, matmul_one);
  return 0;
}
