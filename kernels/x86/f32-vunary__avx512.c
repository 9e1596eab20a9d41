/* f32 unary ops, AVX-512: GELU, the AVX2 kernel's arithmetic on 16 lanes (Zen 5 and Intel
 * server cores run 512-bit FMAs at full width, so this halves the instruction count). */
#include <immintrin.h>

#include "edgeq/dispatch.h"
#include "edgeq/gelu_erf.h"
#include "math__avx512.h"

/* erf(z) by the rational function of gelu_erf.h (P and Q by Horner, in parallel). */
static inline __m512 erf16(__m512 z) {
  const __m512 c = _mm512_set1_ps(EQ_GELU_ERF_CLAMP);
  z = _mm512_min_ps(c, _mm512_max_ps(_mm512_sub_ps(_mm512_setzero_ps(), c), z));  /* NaN stays */
  const __m512 s = _mm512_mul_ps(z, z);
  __m512 p = _mm512_set1_ps(kGeluErfP[5]), q = _mm512_set1_ps(kGeluErfQ[5]);
  for (int i = 4; i >= 0; --i) {
    p = _mm512_fmadd_ps(p, s, _mm512_set1_ps(kGeluErfP[i]));
    q = _mm512_fmadd_ps(q, s, _mm512_set1_ps(kGeluErfQ[i]));
  }
  return _mm512_div_ps(_mm512_mul_ps(z, p), q);
}

/* GELU (exact form): x / 2 (1 + erf(x / sqrt 2)), within 2e-7 max(1, |x|) of the reference
 * (gelu_erf.h), as LiteRT. */
int eq_f32_gelu__avx512(const eq_node *node, eq_ctx *ctx) {
  (void)ctx;
  const float *in = (const float *)node->inputs[0]->data;
  float *out = (float *)node->outputs[0]->data;
  const int64_t n = node->inputs[0]->count;
  const __m512 half = _mm512_set1_ps(0.5f), scale = _mm512_set1_ps(0.7071067811865476f);
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 m = tail_mask16(n - i);
    const __m512 x = _mm512_maskz_loadu_ps(m, in + i);
    const __m512 h = _mm512_mul_ps(half, x);
    _mm512_mask_storeu_ps(out + i, m, _mm512_fmadd_ps(h, erf16(_mm512_mul_ps(x, scale)), h));
  }
  return 0;
}
