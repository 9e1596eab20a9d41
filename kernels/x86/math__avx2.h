/* Vector math shared by the AVX2 kernel files (included only by `*__avx2.c` files, which are
 * compiled with AVX2 + FMA). */
#ifndef EDGEQ_X86_MATH_AVX2_H
#define EDGEQ_X86_MATH_AVX2_H
#include <immintrin.h>

/* e^v for v <= 0: v = n ln2 + r with |r| <= ln2 / 2, e^r by its degree-6 Taylor polynomial
 * (relative error below 2e-7 there), times 2^n built in the exponent bits; 0 below -87 (where
 * 2^n would leave the normal range), NaN for NaN. */
static inline __m256 exp_nonpositive(__m256 v) {
  const __m256 floor = _mm256_set1_ps(-87.0f);
  const __m256 underflow = _mm256_cmp_ps(v, floor, _CMP_LT_OQ);
  v = _mm256_max_ps(floor, v);  /* max returns its second operand, v, when v is NaN */
  const __m256 n = _mm256_round_ps(_mm256_mul_ps(v, _mm256_set1_ps(1.44269504088896341f)),
                                   _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  /* ln 2 split in two so that n * ln2_hi is exact */
  __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), v);
  r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
  __m256 p = _mm256_set1_ps(1.0f / 720.0f);
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 120.0f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 24.0f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 6.0f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(0.5f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
  const __m256i scale = _mm256_slli_epi32(
      _mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
  return _mm256_andnot_ps(underflow, _mm256_mul_ps(p, _mm256_castsi256_ps(scale)));
}

/* HARD_SWISH in the op's order of operations, (x * clamp(x + 3, 0, 6)) / 6, so bit for bit
 * the reference (kernels/ref/elementwise.c); max/min keep a NaN. */
static inline __m256 hard_swish_ps8(__m256 x) {
  const __m256 six = _mm256_set1_ps(6.0f);
  const __m256 gate = _mm256_min_ps(six, _mm256_max_ps(_mm256_setzero_ps(),
                                                      _mm256_add_ps(x, _mm256_set1_ps(3.0f))));
  return _mm256_div_ps(_mm256_mul_ps(x, gate), six);
}

#endif
