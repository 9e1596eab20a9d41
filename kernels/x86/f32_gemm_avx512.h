/* The epilogue of edgeq/f32_gemm.h in zmm / ymm registers, shared by the AVX-512 GEMM tiles
 * (f32-gemm-7x16__avx512.c, f32-gemm-7x32__avx512.c). Compiled with AVX-512 F/VL enabled. */
#ifndef EDGEQ_X86_F32_GEMM_AVX512_H
#define EDGEQ_X86_F32_GEMM_AVX512_H
#include <immintrin.h>

#include "edgeq/f32_gemm.h"

static inline __m512 clamp16(__m512 v, __m512 lo, __m512 hi) {
  /* max/min return their second operand for NaN, so a NaN passes through as in the reference */
  return _mm512_min_ps(hi, _mm512_max_ps(lo, v));
}

static inline __m256 clamp8(__m256 v, __m256 lo, __m256 hi) {
  return _mm256_min_ps(hi, _mm256_max_ps(lo, v));
}

/* x >= 0 ? x : x * slope; a NaN x fails the compare and gives x * slope, a NaN too. */
static inline __m512 prelu16(__m512 x, __m512 slope) {
  const __mmask16 keep = _mm512_cmp_ps_mask(x, _mm512_setzero_ps(), _CMP_GE_OQ);
  return _mm512_mask_blend_ps(keep, _mm512_mul_ps(x, slope), x);
}

static inline __m256 prelu8(__m256 x, __m256 slope) {
  const __mmask8 keep = _mm256_cmp_ps_mask(x, _mm256_setzero_ps(), _CMP_GE_OQ);
  return _mm256_mask_blend_ps(keep, _mm256_mul_ps(x, slope), x);
}

static inline __m512 hard_swish16(__m512 x) {
  const __m512 g = _mm512_min_ps(_mm512_set1_ps(6.0f),
                                 _mm512_max_ps(_mm512_setzero_ps(),
                                               _mm512_add_ps(x, _mm512_set1_ps(3.0f))));
  return _mm512_div_ps(_mm512_mul_ps(x, g), _mm512_set1_ps(6.0f));
}

static inline __m256 hard_swish8(__m256 x) {
  const __m256 g = _mm256_min_ps(_mm256_set1_ps(6.0f),
                                 _mm256_max_ps(_mm256_setzero_ps(),
                                               _mm256_add_ps(x, _mm256_set1_ps(3.0f))));
  return _mm256_div_ps(_mm256_mul_ps(x, g), _mm256_set1_ps(6.0f));
}

/* The whole epilogue of one row's lanes m: its residual at ep->residual + offset, the clamp,
 * the slopes (loaded once per tile by the caller; unused without ep->slope). */
static inline __m512 epilogue16(__m512 v, const eq_f32_gemm_epilogue *ep, int64_t offset,
                                __mmask16 m, __m512 vlo, __m512 vhi, __m512 slope) {
  if (ep->residual) v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(m, ep->residual + offset));
  v = clamp16(v, vlo, vhi);
  if (ep->hard_swish) return hard_swish16(v);
  return ep->slope ? prelu16(v, slope) : v;
}

static inline __m256 epilogue8(__m256 v, const eq_f32_gemm_epilogue *ep, int64_t offset,
                               __mmask8 m, __m256 vlo, __m256 vhi, __m256 slope) {
  if (ep->residual) v = _mm256_add_ps(v, _mm256_maskz_loadu_ps(m, ep->residual + offset));
  v = clamp8(v, vlo, vhi);
  if (ep->hard_swish) return hard_swish8(v);
  return ep->slope ? prelu8(v, slope) : v;
}

#endif
