/* f32 BATCH_MATMUL, AArch64 NEON: the reference kernel's batch walk and params. Where rhs rows
 * are contiguous (no adj_y), a block of 4 rows x 16 (or 4) columns of the output is held in
 * registers while k runs, each output still summed from 0 in increasing k; the last columns
 * (fewer than 4) and the other layout keep the reference's dot products. Nothing is split
 * across threads (attention-sized products are small). */
#include <arm_neon.h>

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
  const eq_matmul_params *p = (const eq_matmul_params *)node->params;
  const float *lhs = (const float *)node->inputs[0]->data;
  const float *rhs = (const float *)node->inputs[1]->data;
  float *out = (float *)node->outputs[0]->data;
  const int64_t lhs_size = (int64_t)p->m * p->k, rhs_size = (int64_t)p->k * p->n;
  const int64_t out_size = (int64_t)p->m * p->n;
  const int32_t *d = p->batch_dims, *sl = p->lhs_batch, *sr = p->rhs_batch;
  for (int32_t i0 = 0; i0 < d[0]; ++i0)
    for (int32_t i1 = 0; i1 < d[1]; ++i1)
      for (int32_t i2 = 0; i2 < d[2]; ++i2)
        for (int32_t i3 = 0; i3 < d[3]; ++i3)
          for (int32_t i4 = 0; i4 < d[4]; ++i4)
            for (int32_t i5 = 0; i5 < d[5]; ++i5, out += out_size) {
              const int64_t l = (int64_t)i0 * sl[0] + (int64_t)i1 * sl[1] + (int64_t)i2 * sl[2] +
                                (int64_t)i3 * sl[3] + (int64_t)i4 * sl[4] + (int64_t)i5 * sl[5];
              const int64_t r = (int64_t)i0 * sr[0] + (int64_t)i1 * sr[1] + (int64_t)i2 * sr[2] +
                                (int64_t)i3 * sr[3] + (int64_t)i4 * sr[4] + (int64_t)i5 * sr[5];
              matmul_one(p, lhs + l * lhs_size, rhs + r * rhs_size, out);
            }
  return 0;
}
