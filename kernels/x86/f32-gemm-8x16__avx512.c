/* f32 GEMM microkernel, 8 rows x 16 columns, AVX-512F: one zmm accumulator per row, the packed
 * W row loaded once per k and A broadcast from memory into each FMA. */
#include <immintrin.h>

#include "edgeq/f32_gemm.h"

static inline __m512 clamp16(__m512 v, __m512 lo, __m512 hi) {
  /* max/min return their second operand for NaN, so a NaN passes through as in the reference */
  return _mm512_min_ps(hi, _mm512_max_ps(lo, v));
}

void eq_f32_gemm_8x16__avx512(int32_t mr, int32_t nc, int32_t kc, const float *a,
                              int64_t a_stride, const float *w, float *c, int64_t c_stride,
                              float lo, float hi) {
  /* Rows past mr repeat the last real row; their results are never stored. */
  const float *a0 = a;
  const float *a1 = mr > 1 ? a0 + a_stride : a0;
  const float *a2 = mr > 2 ? a1 + a_stride : a1;
  const float *a3 = mr > 3 ? a2 + a_stride : a2;
  const float *a4 = mr > 4 ? a3 + a_stride : a3;
  const float *a5 = mr > 5 ? a4 + a_stride : a4;
  const float *a6 = mr > 6 ? a5 + a_stride : a5;
  const float *a7 = mr > 7 ? a6 + a_stride : a6;
  __m512 c0 = _mm512_loadu_ps(w);
  __m512 c1 = c0, c2 = c0, c3 = c0, c4 = c0, c5 = c0, c6 = c0, c7 = c0;
  w += 16;
  for (int32_t k = 0; k < kc; ++k, w += 16) {
    const __m512 wk = _mm512_loadu_ps(w);
    c0 = _mm512_fmadd_ps(_mm512_set1_ps(a0[k]), wk, c0);
    c1 = _mm512_fmadd_ps(_mm512_set1_ps(a1[k]), wk, c1);
    c2 = _mm512_fmadd_ps(_mm512_set1_ps(a2[k]), wk, c2);
    c3 = _mm512_fmadd_ps(_mm512_set1_ps(a3[k]), wk, c3);
    c4 = _mm512_fmadd_ps(_mm512_set1_ps(a4[k]), wk, c4);
    c5 = _mm512_fmadd_ps(_mm512_set1_ps(a5[k]), wk, c5);
    c6 = _mm512_fmadd_ps(_mm512_set1_ps(a6[k]), wk, c6);
    c7 = _mm512_fmadd_ps(_mm512_set1_ps(a7[k]), wk, c7);
  }
  const __m512 vlo = _mm512_set1_ps(lo), vhi = _mm512_set1_ps(hi);
  const __mmask16 m = (__mmask16)((1u << nc) - 1u);
  _mm512_mask_storeu_ps(c, m, clamp16(c0, vlo, vhi));
  if (mr > 1) _mm512_mask_storeu_ps(c + c_stride, m, clamp16(c1, vlo, vhi));
  if (mr > 2) _mm512_mask_storeu_ps(c + 2 * c_stride, m, clamp16(c2, vlo, vhi));
  if (mr > 3) _mm512_mask_storeu_ps(c + 3 * c_stride, m, clamp16(c3, vlo, vhi));
  if (mr > 4) _mm512_mask_storeu_ps(c + 4 * c_stride, m, clamp16(c4, vlo, vhi));
  if (mr > 5) _mm512_mask_storeu_ps(c + 5 * c_stride, m, clamp16(c5, vlo, vhi));
  if (mr > 6) _mm512_mask_storeu_ps(c + 6 * c_stride, m, clamp16(c6, vlo, vhi));
  if (mr > 7) _mm512_mask_storeu_ps(c + 7 * c_stride, m, clamp16(c7, vlo, vhi));
}
