/* f32 unary ops, AVX-512: GELU, the AVX2 kernel's arithmetic on 16 lanes (Zen 5 and Intel
 * server cores run 512-bit FMAs at full width, so this halves the instruction count). */
#include <immintrin.h>

#include "edgeq/dispatch.h"
#include "math__avx512.h"

/* erfc(z) = t exp(-z^2 + P(t)), t = 1 / (1 + |z| / 2), mirrored as 2 - erfc(-z) for z < 0: the
 * Chebyshev fit of Numerical Recipes (erfcc, fractional error below 1.2e-7 everywhere), as in
 * f32-vunary__avx2.c. */
static inline __m512 erfc16(__m512 z) {
  const __m512 a = _mm512_abs_ps(z);
  const __m512 one = _mm512_set1_ps(1.0f);
  const __m512 t = _mm512_div_ps(one, _mm512_fmadd_ps(a, _mm512_set1_ps(0.5f), one));
  /* P by Estrin's scheme: pairs, then t^2, t^4, t^8; 4 dependent steps instead of Horner's 9
   * (the loop is bound by latency, not by the FMA pipes) */
  const __m512 t2 = _mm512_mul_ps(t, t), t4 = _mm512_mul_ps(t2, t2), t8 = _mm512_mul_ps(t4, t4);
#define PAIR(i, j) _mm512_fmadd_ps(_mm512_set1_ps(j), t, _mm512_set1_ps(i))
  const __m512 p01 = PAIR(-1.26551223f, 1.00002368f), p23 = PAIR(0.37409196f, 0.09678418f);
  const __m512 p45 = PAIR(-0.18628806f, 0.27886807f), p67 = PAIR(-1.13520398f, 1.48851587f);
  const __m512 p89 = PAIR(-0.82215223f, 0.17087277f);
#undef PAIR
  const __m512 p03 = _mm512_fmadd_ps(p23, t2, p01), p47 = _mm512_fmadd_ps(p67, t2, p45);
  const __m512 p = _mm512_fmadd_ps(p89, t8, _mm512_fmadd_ps(p47, t4, p03));
  const __m512 y = _mm512_mul_ps(t, exp_nonpositive16(_mm512_fnmadd_ps(a, a, p)));
  const __mmask16 negative = _mm512_cmp_ps_mask(z, _mm512_setzero_ps(), _CMP_LT_OQ);
  return _mm512_mask_sub_ps(y, negative, _mm512_set1_ps(2.0f), y);
}

/* GELU (exact form): 0.5 x erfc(-x / sqrt 2), as the reference writes it: within a few 1e-7 of
 * it (relative), not bit-identical. */
int eq_f32_gelu__avx512(const eq_node *node, eq_ctx *ctx) {
  (void)ctx;
  const float *in = (const float *)node->inputs[0]->data;
  float *out = (float *)node->outputs[0]->data;
  const int64_t n = node->inputs[0]->count;
  const __m512 half = _mm512_set1_ps(0.5f), scale = _mm512_set1_ps(-0.7071067811865476f);
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 m = tail_mask16(n - i);
    const __m512 x = _mm512_maskz_loadu_ps(m, in + i);
    _mm512_mask_storeu_ps(out + i, m, _mm512_mul_ps(_mm512_mul_ps(half, x),
                                                    erfc16(_mm512_mul_ps(x, scale))));
  }
  return 0;
}
