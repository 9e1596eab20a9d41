/* f32 BATCH_MATMUL, AVX2 + FMA: the reference kernel's batch walk and params. Where rhs rows
 * are contiguous (no adj_y), a 4 x 16 block of the output is held in registers while k runs,
 * each output still summed from 0 in increasing k; the other layout keeps the reference's
 * dot products. Both split nothing across threads (attention-sized products are small). */
#include <immintrin.h>

#include "edgeq/dispatch.h"
#include "edgeq/params/conv.h"
#include "edgeq/batch_matmul.h"

static const int32_t kMaskTable[16] = {-1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0};

/* The first n lanes, n clamped to [0, 8]. */
static inline __m256i mask_of(int32_t n) {
  n = n < 0 ? 0 : (n > 8 ? 8 : n);
  return _mm256_loadu_si256((const __m256i *)(kMaskTable + 8 - n));
}

/* Rows [i, i + rows) (rows <= 4) x columns [j, j + 16) (nc live) of out = lhs x rhs; `full`
 * (nc == 16, known at the call) keeps masks out of the k loop. */
static inline __attribute__((always_inline)) void block(
    const eq_matmul_params *p, const float *lhs, const float *rhs, float *out, int32_t i,
    int32_t rows, int32_t j, int32_t nc, const int full) {
  /* Fully unrolled, so that the accumulators live in registers. */
  __m256 acc[4][2];
#pragma GCC unroll 4
  for (int32_t r = 0; r < 4; ++r) acc[r][0] = acc[r][1] = _mm256_setzero_ps();
  const __m256i m0 = mask_of(nc), m1 = mask_of(nc - 8);
  const float *a[4];
#pragma GCC unroll 4
  for (int32_t r = 0; r < 4; ++r) a[r] = lhs + (int64_t)(i + (r < rows ? r : 0)) * p->lhs_m_stride;
  for (int32_t k = 0; k < p->k; ++k) {
    const float *rk = rhs + (int64_t)k * p->rhs_k_stride + j;
    const __m256 w0 = full || nc >= 8 ? _mm256_loadu_ps(rk) : _mm256_maskload_ps(rk, m0);
    const __m256 w1 = full ? _mm256_loadu_ps(rk + 8) : _mm256_maskload_ps(rk + 8, m1);
    const int64_t at = (int64_t)k * p->lhs_k_stride;
#pragma GCC unroll 4
    for (int32_t r = 0; r < 4; ++r) {
      const __m256 x = _mm256_broadcast_ss(a[r] + at);
      acc[r][0] = _mm256_fmadd_ps(x, w0, acc[r][0]);
      acc[r][1] = _mm256_fmadd_ps(x, w1, acc[r][1]);
    }
  }
#pragma GCC unroll 4
  for (int32_t r = 0; r < 4; ++r) {
    if (r >= rows) break;
    float *o = out + (int64_t)(i + r) * p->n + j;
    if (nc >= 8) {
      _mm256_storeu_ps(o, acc[r][0]);
    } else {
      _mm256_maskstore_ps(o, m0, acc[r][0]);
    }
    if (nc >= 16) {
      _mm256_storeu_ps(o + 8, acc[r][1]);
    } else if (nc > 8) {
      _mm256_maskstore_ps(o + 8, m1, acc[r][1]);
    }
  }
}

static void matmul_one(const eq_matmul_params *p, const float *lhs, const float *rhs,
                       float *out) {
  if (p->rhs_n_stride == 1) {
    for (int32_t i = 0; i < p->m; i += 4) {
      const int32_t rows = p->m - i < 4 ? p->m - i : 4;
      int32_t j = 0;
      for (; j + 16 <= p->n; j += 16) block(p, lhs, rhs, out, i, rows, j, 16, 1);
      if (j < p->n) block(p, lhs, rhs, out, i, rows, j, p->n - j, 0);
    }
    return;
  }
  for (int32_t i = 0; i < p->m; ++i) {
    const float *a = lhs + (int64_t)i * p->lhs_m_stride;
    float *o = out + (int64_t)i * p->n;
    for (int32_t j = 0; j < p->n; ++j) {
      const float *r = rhs + (int64_t)j * p->rhs_n_stride;
      float acc = 0.0f;
      for (int32_t k = 0; k < p->k; ++k) {
        acc += a[(int64_t)k * p->lhs_k_stride] * r[(int64_t)k * p->rhs_k_stride];
      }
      o[j] = acc;
    }
  }
}

int eq_f32_batch_matmul__avx2(const eq_node *node, eq_ctx *ctx) {
  (void)ctx;
  eq_batch_matmul_walk(node, matmul_one);
  return 0;
}
