/* Vector math shared by the AVX-512 kernel files (included only by `*__avx512.c` files, which
 * are compiled with AVX-512 F/BW/DQ/VL + FMA). The 16-lane forms of math__avx2.h. */
#ifndef EDGEQ_X86_MATH_AVX512_H
#define EDGEQ_X86_MATH_AVX512_H
#include <immintrin.h>

/* e^v for v <= 0, as exp_nonpositive of math__avx2.h (v = n ln2 + r, |r| <= ln2 / 2, e^r by its
 * degree-6 Taylor polynomial, relative error below 2e-7; here by Estrin's scheme, with shorter
 * dependency chains), with 2^n applied by vscalefps, which
 * goes through the subnormals to 0 by itself: v is only clamped at -104 (where 2^n is far below
 * the smallest subnormal) so that n stays finite. NaN stays NaN. */
static inline __m512 exp_nonpositive16(__m512 v) {
  v = _mm512_max_ps(_mm512_set1_ps(-104.0f), v);  /* max returns v, the second operand, for NaN */
  const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(v, _mm512_set1_ps(1.44269504088896341f)),
                                        _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  /* ln 2 split in two so that n * ln2_hi is exact */
  __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), v);
  r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
  /* the polynomial by Estrin's scheme (3 dependent steps, not Horner's 6) */
  const __m512 r2 = _mm512_mul_ps(r, r);
  const __m512 p01 = _mm512_add_ps(_mm512_set1_ps(1.0f), r);
  const __m512 p23 = _mm512_fmadd_ps(r, _mm512_set1_ps(1.0f / 6.0f), _mm512_set1_ps(0.5f));
  const __m512 p45 = _mm512_fmadd_ps(r, _mm512_set1_ps(1.0f / 120.0f), _mm512_set1_ps(1.0f / 24.0f));
  const __m512 p46 = _mm512_fmadd_ps(r2, _mm512_set1_ps(1.0f / 720.0f), p45);
  const __m512 p = _mm512_fmadd_ps(_mm512_fmadd_ps(p46, r2, p23), r2, p01);
  return _mm512_scalef_ps(p, n);
}

/* Lanes [0, n) of a 16-lane vector, n <= 16. */
static inline __mmask16 tail_mask16(int64_t n) {
  return n >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << n) - 1);
}

#endif
