/* f32 unary ops, AVX2: HARD_SWISH (x * clamp(x + 3, 0, 6) / 6 in the reference's order of
 * operations, so bit-identical to it; a NaN stays NaN through the clamp, as there), GELU, and
 * DEQUANTIZE of int8. */
#include <immintrin.h>

#include "edgeq/dispatch.h"
#include "edgeq/params/elementwise.h"
#include "edgeq/gelu_erf.h"
#include "edgeq/params/conv.h"
#include "math__avx2.h"

int eq_f32_hard_swish__avx2(const eq_node *node, eq_ctx *ctx) {
  (void)ctx;
  const float *in = (const float *)node->inputs[0]->data;
  float *out = (float *)node->outputs[0]->data;
  const int64_t n = node->inputs[0]->count;
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(out + i, hard_swish_ps8(_mm256_loadu_ps(in + i)));
  for (; i < n; ++i) out[i] = eq_hard_swish_f32(in[i]);
  return 0;
}

/* erf(z) by the rational function of gelu_erf.h (P and Q by Horner, in parallel). */
static inline __m256 erf8(__m256 z) {
  const __m256 c = _mm256_set1_ps(EQ_GELU_ERF_CLAMP);
  z = _mm256_min_ps(c, _mm256_max_ps(_mm256_sub_ps(_mm256_setzero_ps(), c), z));  /* NaN stays */
  const __m256 s = _mm256_mul_ps(z, z);
  __m256 p = _mm256_set1_ps(kGeluErfP[5]), q = _mm256_set1_ps(kGeluErfQ[5]);
  for (int i = 4; i >= 0; --i) {
    p = _mm256_fmadd_ps(p, s, _mm256_set1_ps(kGeluErfP[i]));
    q = _mm256_fmadd_ps(q, s, _mm256_set1_ps(kGeluErfQ[i]));
  }
  return _mm256_div_ps(_mm256_mul_ps(z, p), q);
}

static inline __m256 gelu8(__m256 x) {
  const __m256 h = _mm256_mul_ps(_mm256_set1_ps(0.5f), x);
  return _mm256_fmadd_ps(h, erf8(_mm256_mul_ps(x, _mm256_set1_ps(0.7071067811865476f))), h);
}

/* GELU (exact form): x / 2 (1 + erf(x / sqrt 2)), within 2e-7 max(1, |x|) of the reference
 * (gelu_erf.h), as LiteRT. */
int eq_f32_gelu__avx2(const eq_node *node, eq_ctx *ctx) {
  (void)ctx;
  const float *in = (const float *)node->inputs[0]->data;
  float *out = (float *)node->outputs[0]->data;
  const int64_t n = node->inputs[0]->count;
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(out + i, gelu8(_mm256_loadu_ps(in + i)));
  if (i < n) {  /* masked only here: AMD cores store through a mask slowly */
    const __m256i mask = _mm256_cmpgt_epi32(_mm256_set1_epi32((int32_t)(n - i)),
                                            _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
    _mm256_maskstore_ps(out + i, mask, gelu8(_mm256_maskload_ps(in + i, mask)));
  }
  return 0;
}

/* DEQUANTIZE int8 -> f32 with one scale: (q - zero_point) * scale, the reference's operations
 * (an exact int32 difference, an exact conversion, one rounding), so bit-identical to it. A
 * dynamic-range model dequantizes its gathered embedding rows this way on every run. */
int eq_dequantize_i8_f32__avx2(const eq_node *node, eq_ctx *ctx) {
  (void)ctx;
  const eq_dequantize_params *p = (const eq_dequantize_params *)node->params;
  const int8_t *in = (const int8_t *)node->inputs[0]->data;
  float *out = (float *)node->outputs[0]->data;
  const int64_t n = node->inputs[0]->count;
  const __m256i zp = _mm256_set1_epi32(p->zero_point);
  const __m256 scale = _mm256_set1_ps(p->scale);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256i q = _mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)(in + i)));
    _mm256_storeu_ps(out + i, _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_sub_epi32(q, zp)), scale));
  }
  for (; i < n; ++i) out[i] = (float)((int32_t)in[i] - p->zero_point) * p->scale;
  return 0;
}
