/* f32 GEMM microkernel, 6 rows x 16 columns, AVX2 + FMA: twelve ymm accumulators (two per
 * row) hide the FMA latency; one broadcast of A per row and two loads of packed W per k. */
#include <immintrin.h>

#include "edgeq/f32_gemm.h"

/* 8 set lanes then 8 clear ones: loadu at (8 - n) gives a mask of the first n lanes. */
static const int32_t kMaskTable[16] = {-1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0};

static inline __m256 clamp8(__m256 v, __m256 lo, __m256 hi) {
  /* max/min return their second operand for NaN, so a NaN passes through as in the reference */
  return _mm256_min_ps(hi, _mm256_max_ps(lo, v));
}

static inline void store16(float *c, int32_t nc, __m256 v0, __m256 v1) {
  if (nc == 16) {
    _mm256_storeu_ps(c, v0);
    _mm256_storeu_ps(c + 8, v1);
  } else if (nc >= 8) {
    _mm256_storeu_ps(c, v0);
    _mm256_maskstore_ps(c + 8, _mm256_loadu_si256((const __m256i *)(kMaskTable + 16 - nc)), v1);
  } else {
    _mm256_maskstore_ps(c, _mm256_loadu_si256((const __m256i *)(kMaskTable + 8 - nc)), v0);
  }
}

/* A block with at most 8 live columns: half the FMAs. */
static void gemm_narrow(int32_t mr, int32_t nc, int32_t kc, const float *const *a,
                        const float *w, float *c, int64_t c_stride, float lo, float hi) {
  __m256 acc[6];
  for (int32_t i = 0; i < 6; ++i) acc[i] = _mm256_loadu_ps(w);
  w += 16;
  for (int32_t k = 0; k < kc; ++k, w += 16) {
    const __m256 wk = _mm256_loadu_ps(w);
#pragma GCC unroll 6
    for (int32_t i = 0; i < 6; ++i)
      acc[i] = _mm256_fmadd_ps(_mm256_broadcast_ss(a[i] + k), wk, acc[i]);
  }
  const __m256 vlo = _mm256_set1_ps(lo), vhi = _mm256_set1_ps(hi);
  const __m256i mask = _mm256_loadu_si256((const __m256i *)(kMaskTable + 8 - nc));
  for (int32_t i = 0; i < mr; ++i) {
    if (nc == 8) {
      _mm256_storeu_ps(c + i * c_stride, clamp8(acc[i], vlo, vhi));
    } else {
      _mm256_maskstore_ps(c + i * c_stride, mask, clamp8(acc[i], vlo, vhi));
    }
  }
}

void eq_f32_gemm_6x16__avx2(int32_t mr, int32_t nc, int32_t kc, const float *a,
                            int64_t a_stride, const float *w, float *c, int64_t c_stride,
                            float lo, float hi) {
  /* Rows past mr repeat the last real row; their results are never stored. */
  const float *a0 = a;
  const float *a1 = mr > 1 ? a0 + a_stride : a0;
  const float *a2 = mr > 2 ? a1 + a_stride : a1;
  const float *a3 = mr > 3 ? a2 + a_stride : a2;
  const float *a4 = mr > 4 ? a3 + a_stride : a3;
  const float *a5 = mr > 5 ? a4 + a_stride : a4;
  if (nc <= 8) {
    const float *const rows[6] = {a0, a1, a2, a3, a4, a5};
    gemm_narrow(mr, nc, kc, rows, w, c, c_stride, lo, hi);
    return;
  }
  __m256 c00 = _mm256_loadu_ps(w), c01 = _mm256_loadu_ps(w + 8);
  __m256 c10 = c00, c11 = c01, c20 = c00, c21 = c01;
  __m256 c30 = c00, c31 = c01, c40 = c00, c41 = c01, c50 = c00, c51 = c01;
  w += 16;
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
  const __m256 vlo = _mm256_set1_ps(lo), vhi = _mm256_set1_ps(hi);
  store16(c, nc, clamp8(c00, vlo, vhi), clamp8(c01, vlo, vhi));
  if (mr > 1) store16(c + c_stride, nc, clamp8(c10, vlo, vhi), clamp8(c11, vlo, vhi));
  if (mr > 2) store16(c + 2 * c_stride, nc, clamp8(c20, vlo, vhi), clamp8(c21, vlo, vhi));
  if (mr > 3) store16(c + 3 * c_stride, nc, clamp8(c30, vlo, vhi), clamp8(c31, vlo, vhi));
  if (mr > 4) store16(c + 4 * c_stride, nc, clamp8(c40, vlo, vhi), clamp8(c41, vlo, vhi));
  if (mr > 5) store16(c + 5 * c_stride, nc, clamp8(c50, vlo, vhi), clamp8(c51, vlo, vhi));
}
