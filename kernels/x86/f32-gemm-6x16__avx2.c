/* f32 (indirect) GEMM microkernel, 6 rows x 16 columns, AVX2 + FMA: twelve ymm accumulators
 * (two per row) hide the FMA latency; one broadcast of A per row and two loads of packed W per
 * k. A block with at most 8 live columns does half the FMAs. */
#include <immintrin.h>

#include "edgeq/f32_gemm.h"

#define MR 6

/* 8 set lanes then 8 clear ones: loadu at (8 - n) gives a mask of the first n lanes. */
static const int32_t kMaskTable[16] = {-1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0};

static inline __m256 clamp8(__m256 v, __m256 lo, __m256 hi) {
  /* max/min return their second operand for NaN, so a NaN passes through as in the reference */
  return _mm256_min_ps(hi, _mm256_max_ps(lo, v));
}

static inline __m256i mask8(int32_t n) {
  return _mm256_loadu_si256((const __m256i *)(kMaskTable + 8 - n));
}

static inline void store8(float *c, int32_t n, __m256 v) {
  if (n == 8) {
    _mm256_storeu_ps(c, v);
  } else {
    _mm256_maskstore_ps(c, mask8(n), v);
  }
}

/* The epilogue (edgeq/f32_gemm.h) of n <= 8 outputs at c, column j of the tile (the residual
 * read at the same place as c), then their store. x >= 0 ? x : x * slope, with a NaN x failing
 * the ordered compare and giving x * slope; HARD_SWISH's max/min keep a NaN. */
static inline void epilogue_store8(float *c, int32_t n, __m256 v, const eq_f32_gemm_epilogue *ep,
                                   int64_t offset, int32_t j, __m256 vlo, __m256 vhi) {
  if (ep->residual) {
    const float *r = ep->residual + offset + j;
    v = _mm256_add_ps(v, n == 8 ? _mm256_loadu_ps(r) : _mm256_maskload_ps(r, mask8(n)));
  }
  v = clamp8(v, vlo, vhi);
  if (ep->slope) {
    const __m256 keep = _mm256_cmp_ps(v, _mm256_setzero_ps(), _CMP_GE_OQ);
    v = _mm256_blendv_ps(_mm256_mul_ps(v, _mm256_loadu_ps(ep->slope + j)), v, keep);
  } else if (ep->hard_swish) {
    const __m256 g = _mm256_min_ps(_mm256_set1_ps(6.0f),
                                   _mm256_max_ps(_mm256_setzero_ps(),
                                                 _mm256_add_ps(v, _mm256_set1_ps(3.0f))));
    v = _mm256_div_ps(_mm256_mul_ps(v, g), _mm256_set1_ps(6.0f));
  }
  store8(c + offset + j, n, v);
}

static void gemm_narrow(int32_t mr, int32_t nc, int32_t taps, int32_t kc,
                        const float *const *a, const float *w, float *c, int64_t c_stride,
                        const eq_f32_gemm_epilogue *ep) {
  __m256 acc[MR];
  for (int32_t i = 0; i < MR; ++i) acc[i] = _mm256_loadu_ps(w);
  w += 16;
  for (int32_t t = 0; t < taps; ++t, a += MR) {
    for (int32_t k = 0; k < kc; ++k, w += 16) {
      const __m256 wk = _mm256_loadu_ps(w);
#pragma GCC unroll 6
      for (int32_t i = 0; i < MR; ++i)
        acc[i] = _mm256_fmadd_ps(_mm256_broadcast_ss(a[i] + k), wk, acc[i]);
    }
  }
  const __m256 vlo = _mm256_set1_ps(ep->lo), vhi = _mm256_set1_ps(ep->hi);
  for (int32_t i = 0; i < mr; ++i) epilogue_store8(c, nc, acc[i], ep, i * c_stride, 0, vlo, vhi);
}

/* One row (a FULLY_CONNECTED of one input row): no FMAs spent on repeated rows. */
static void gemm_1x16(int32_t nc, int32_t taps, int32_t kc, const float *const *a,
                      const float *w, float *c, const eq_f32_gemm_epilogue *ep) {
  __m256 acc0 = _mm256_loadu_ps(w), acc1 = _mm256_loadu_ps(w + 8);
  w += 16;
  for (int32_t t = 0; t < taps; ++t, a += MR) {
    const float *x = a[0];
    for (int32_t k = 0; k < kc; ++k, w += 16) {
      const __m256 xk = _mm256_broadcast_ss(x + k);
      acc0 = _mm256_fmadd_ps(xk, _mm256_loadu_ps(w), acc0);
      acc1 = _mm256_fmadd_ps(xk, _mm256_loadu_ps(w + 8), acc1);
    }
  }
  const __m256 vlo = _mm256_set1_ps(ep->lo), vhi = _mm256_set1_ps(ep->hi);
  epilogue_store8(c, nc < 8 ? nc : 8, acc0, ep, 0, 0, vlo, vhi);
  if (nc > 8) epilogue_store8(c, nc - 8, acc1, ep, 0, 8, vlo, vhi);
}

void eq_f32_gemm_6x16__avx2(int32_t mr, int32_t nc, int32_t taps, int32_t kc,
                            const float *const *a, const float *w, float *c, int64_t c_stride,
                            const eq_f32_gemm_epilogue *ep) {
  if (mr == 1) {
    gemm_1x16(nc, taps, kc, a, w, c, ep);
    return;
  }
  if (nc <= 8) {
    gemm_narrow(mr, nc, taps, kc, a, w, c, c_stride, ep);
    return;
  }
  __m256 c00 = _mm256_loadu_ps(w), c01 = _mm256_loadu_ps(w + 8);
  __m256 c10 = c00, c11 = c01, c20 = c00, c21 = c01;
  __m256 c30 = c00, c31 = c01, c40 = c00, c41 = c01, c50 = c00, c51 = c01;
  w += 16;
  for (int32_t t = 0; t < taps; ++t, a += MR) {
    const float *a0 = a[0], *a1 = a[1], *a2 = a[2], *a3 = a[3], *a4 = a[4], *a5 = a[5];
    for (int32_t k = 0; k < kc; ++k, w += 16) {
      const __m256 w0 = _mm256_loadu_ps(w), w1 = _mm256_loadu_ps(w + 8);
      __m256 x = _mm256_broadcast_ss(a0 + k);
      c00 = _mm256_fmadd_ps(x, w0, c00);
      c01 = _mm256_fmadd_ps(x, w1, c01);
      x = _mm256_broadcast_ss(a1 + k);
      c10 = _mm256_fmadd_ps(x, w0, c10);
      c11 = _mm256_fmadd_ps(x, w1, c11);
      x = _mm256_broadcast_ss(a2 + k);
      c20 = _mm256_fmadd_ps(x, w0, c20);
      c21 = _mm256_fmadd_ps(x, w1, c21);
      x = _mm256_broadcast_ss(a3 + k);
      c30 = _mm256_fmadd_ps(x, w0, c30);
      c31 = _mm256_fmadd_ps(x, w1, c31);
      x = _mm256_broadcast_ss(a4 + k);
      c40 = _mm256_fmadd_ps(x, w0, c40);
      c41 = _mm256_fmadd_ps(x, w1, c41);
      x = _mm256_broadcast_ss(a5 + k);
      c50 = _mm256_fmadd_ps(x, w0, c50);
      c51 = _mm256_fmadd_ps(x, w1, c51);
    }
  }
  const __m256 vlo = _mm256_set1_ps(ep->lo), vhi = _mm256_set1_ps(ep->hi);
  const int32_t tail = nc - 8;
  __m256 r[MR][2] = {{c00, c01}, {c10, c11}, {c20, c21}, {c30, c31}, {c40, c41}, {c50, c51}};
  if (eq_f32_gemm_clamp_only(ep)) {
    for (int32_t i = 0; i < mr; ++i) {
      _mm256_storeu_ps(c + i * c_stride, clamp8(r[i][0], vlo, vhi));
      store8(c + i * c_stride + 8, tail, clamp8(r[i][1], vlo, vhi));
    }
    return;
  }
  for (int32_t i = 0; i < mr; ++i) {
    epilogue_store8(c, 8, r[i][0], ep, i * c_stride, 0, vlo, vhi);
    epilogue_store8(c, tail, r[i][1], ep, i * c_stride, 8, vlo, vhi);
  }
}
