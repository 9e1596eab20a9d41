/* f32 (indirect) GEMM microkernel, 7 rows x 16 columns, AVX-512F: one zmm accumulator per row,
 * the packed W row loaded once per k and A broadcast into each FMA. Seven rows: the pixel
 * counts of MobileNet-style layers (112^2, 56^2, ..., 7^2) are multiples of 7, so no tile runs
 * part-empty. A block with at most 8 live columns runs at ymm width, which Zen 4 issues twice
 * per cycle. */
#include <immintrin.h>

#include "edgeq/f32_gemm.h"
#include "f32_gemm_avx512.h"

#define MR 7

static void gemm_narrow(int32_t mr, int32_t nc, int32_t taps, int32_t kc,
                        const float *const *a, const float *w, float *c, int64_t c_stride,
                        const eq_f32_gemm_epilogue *ep) {
  __m256 acc[MR];
  for (int32_t i = 0; i < MR; ++i) acc[i] = _mm256_loadu_ps(w);
  w += 16;
  for (int32_t t = 0; t < taps; ++t, a += MR) {
    for (int32_t k = 0; k < kc; ++k, w += 16) {
      const __m256 wk = _mm256_loadu_ps(w);
#pragma GCC unroll 7
      for (int32_t i = 0; i < MR; ++i)
        acc[i] = _mm256_fmadd_ps(_mm256_set1_ps(a[i][k]), wk, acc[i]);
    }
  }
  const __m256 vlo = _mm256_set1_ps(ep->lo), vhi = _mm256_set1_ps(ep->hi);
  const __mmask8 m = (__mmask8)((1u << nc) - 1u);
  const __m256 slope = ep->slope ? _mm256_loadu_ps(ep->slope) : vlo;
  for (int32_t i = 0; i < mr; ++i)
    _mm256_mask_storeu_ps(c + i * c_stride, m,
                          epilogue8(acc[i], ep, i * c_stride, m, vlo, vhi, slope));
}

/* One row (a FULLY_CONNECTED of one input row): no FMAs spent on repeated rows. */
static void gemm_1x16(int32_t nc, int32_t taps, int32_t kc, const float *const *a,
                      const float *w, float *c, const eq_f32_gemm_epilogue *ep) {
  __m512 acc = _mm512_loadu_ps(w);
  w += 16;
  for (int32_t t = 0; t < taps; ++t, a += MR) {
    const float *x = a[0];
    for (int32_t k = 0; k < kc; ++k, w += 16)
      acc = _mm512_fmadd_ps(_mm512_set1_ps(x[k]), _mm512_loadu_ps(w), acc);
  }
  const __mmask16 m = (__mmask16)((1u << nc) - 1u);
  const __m512 slope = ep->slope ? _mm512_loadu_ps(ep->slope) : acc;
  _mm512_mask_storeu_ps(c, m, epilogue16(acc, ep, 0, m, _mm512_set1_ps(ep->lo),
                                         _mm512_set1_ps(ep->hi), slope));
}

void eq_f32_gemm_7x16__avx512(int32_t mr, int32_t nc, int32_t taps, int32_t kc,
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
  __m512 c0 = _mm512_loadu_ps(w);
  __m512 c1 = c0, c2 = c0, c3 = c0, c4 = c0, c5 = c0, c6 = c0;
  w += 16;
  for (int32_t t = 0; t < taps; ++t, a += MR) {
    const float *a0 = a[0], *a1 = a[1], *a2 = a[2], *a3 = a[3], *a4 = a[4], *a5 = a[5];
    const float *a6 = a[6];
    for (int32_t k = 0; k < kc; ++k, w += 16) {
      const __m512 wk = _mm512_loadu_ps(w);
      c0 = _mm512_fmadd_ps(_mm512_set1_ps(a0[k]), wk, c0);
      c1 = _mm512_fmadd_ps(_mm512_set1_ps(a1[k]), wk, c1);
      c2 = _mm512_fmadd_ps(_mm512_set1_ps(a2[k]), wk, c2);
      c3 = _mm512_fmadd_ps(_mm512_set1_ps(a3[k]), wk, c3);
      c4 = _mm512_fmadd_ps(_mm512_set1_ps(a4[k]), wk, c4);
      c5 = _mm512_fmadd_ps(_mm512_set1_ps(a5[k]), wk, c5);
      c6 = _mm512_fmadd_ps(_mm512_set1_ps(a6[k]), wk, c6);
    }
  }
  const __m512 vlo = _mm512_set1_ps(ep->lo), vhi = _mm512_set1_ps(ep->hi);
  /* A full block stores without a mask. */
  const int full = nc == 16, clamp_only = eq_f32_gemm_clamp_only(ep);
  const __mmask16 m = (__mmask16)((1u << nc) - 1u);
  const __m512 slope = ep->slope ? _mm512_loadu_ps(ep->slope) : vlo;
#define OUT(i, v) \
  (clamp_only ? clamp16((v), vlo, vhi) : epilogue16((v), ep, (i) * c_stride, m, vlo, vhi, slope))
#define STORE_ROW(i, v)                                    \
  (full ? _mm512_storeu_ps(c + (i) * c_stride, OUT(i, v)) \
        : _mm512_mask_storeu_ps(c + (i) * c_stride, m, OUT(i, v)))
  STORE_ROW(0, c0);
  if (mr > 1) STORE_ROW(1, c1);
  if (mr > 2) STORE_ROW(2, c2);
  if (mr > 3) STORE_ROW(3, c3);
  if (mr > 4) STORE_ROW(4, c4);
  if (mr > 5) STORE_ROW(5, c5);
  if (mr > 6) STORE_ROW(6, c6);
#undef STORE_ROW
#undef OUT
}
