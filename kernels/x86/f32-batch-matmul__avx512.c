/* f32 BATCH_MATMUL, AVX-512: where rhs rows are contiguous (no adj_y), an 8 x 32 block of the
 * output in 16 zmm accumulators while k runs (lhs values broadcast from memory into the FMAs),
 * each output summed from 0 in increasing k as in the reference; the other layout is the
 * AVX2 kernel's. Nothing is split across threads (attention-sized products are small). */
#include <immintrin.h>

#include "edgeq/dispatch.h"
#include "edgeq/params/conv.h"
#include "edgeq/batch_matmul.h"

int eq_f32_batch_matmul__avx2(const eq_node *node, eq_ctx *ctx);

#define MR 8

static inline __mmask16 lanes(int32_t n) {
  return n >= 16 ? (__mmask16)0xffff : (n <= 0 ? (__mmask16)0 : (__mmask16)((1u << n) - 1));
}

/* Rows [i, i + rows) (rows <= MR) x columns [j, j + nc) (nc <= 32) of out = lhs x rhs. Out of
 * line, with the rows spelled out, so that the 16 accumulators stay in registers (inlined into
 * the loops below, GCC 12 spilled such accumulators in the QD8 GEMMs). */
__attribute__((noinline)) static void block8x32(const eq_matmul_params *p, const float *lhs,
                                                const float *rhs, float *out, int32_t i,
                                                int32_t rows, int32_t j, int32_t nc) {
  const __mmask16 m0 = lanes(nc), m1 = lanes(nc - 16);
#define ROWS(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7)
#define SETUP(r)                                                                         \
  const float *a##r = lhs + (int64_t)(i + ((r) < rows ? (r) : 0)) * p->lhs_m_stride;      \
  __m512 acc##r##_0 = _mm512_setzero_ps(), acc##r##_1 = _mm512_setzero_ps();
  ROWS(SETUP)
  const int64_t ks = p->lhs_k_stride;
  const float *rk = rhs + j;
  for (int64_t k = 0, at = 0; k < p->k; ++k, at += ks, rk += p->rhs_k_stride) {
    const __m512 w0 = _mm512_maskz_loadu_ps(m0, rk), w1 = _mm512_maskz_loadu_ps(m1, rk + 16);
#define STEP(r)                                                \
  {                                                            \
    const __m512 x = _mm512_set1_ps(a##r[at]);                 \
    acc##r##_0 = _mm512_fmadd_ps(x, w0, acc##r##_0);           \
    acc##r##_1 = _mm512_fmadd_ps(x, w1, acc##r##_1);           \
  }
    ROWS(STEP)
  }
#define STORE(r)                                                            \
  if ((r) < rows) {                                                         \
    float *o = out + (int64_t)(i + (r)) * p->n + j;                         \
    _mm512_mask_storeu_ps(o, m0, acc##r##_0);                               \
    _mm512_mask_storeu_ps(o + 16, m1, acc##r##_1);                          \
  }
  ROWS(STORE)
}

static void matmul_one(const eq_matmul_params *p, const float *lhs, const float *rhs,
                       float *out) {
  for (int32_t i = 0; i < p->m; i += MR) {
    const int32_t rows = p->m - i < MR ? p->m - i : MR;
    for (int32_t j = 0; j < p->n; j += 32) block8x32(p, lhs, rhs, out, i, rows, j, p->n - j);
  }
}

int eq_f32_batch_matmul__avx512(const eq_node *node, eq_ctx *ctx) {
  const eq_matmul_params *p = (const eq_matmul_params *)node->params;
  if (p->rhs_n_stride != 1) return eq_f32_batch_matmul__avx2(node, ctx);
  eq_batch_matmul_walk(node, matmul_one);
  return 0;
}
