/* f32 unary ops, AVX2: HARD_SWISH (x * clamp(x + 3, 0, 6) / 6 in the reference's order of
 * operations, so bit-identical to it; a NaN stays NaN through the clamp, as there), GELU, and
 * DEQUANTIZE of int8. */
#include <immintrin.h>

#include "edgeq/dispatch.h"
#include "edgeq/params/elementwise.h"
#include "math__avx2.h"

int eq_f32_hard_swish__avx2(const eq_node *node, eq_ctx *ctx) {
  (void)ctx;
  const float *in = (const float *)node->inputs[0]->data;
  float *out = (float *)node->outputs[0]->data;
  const int64_t n = node->inputs[0]->count;
  const __m256 three = _mm256_set1_ps(3.0f), six = _mm256_set1_ps(6.0f);
  const __m256 zero = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256 x = _mm256_loadu_ps(in + i);
    const __m256 gate = _mm256_min_ps(six, _mm256_max_ps(zero, _mm256_add_ps(x, three)));
    _mm256_storeu_ps(out + i, _mm256_div_ps(_mm256_mul_ps(x, gate), six));
  }
  for (; i < n; ++i) {
    const float x = in[i], s = x + 3.0f;
    out[i] = x * (s < 0.0f ? 0.0f : (s > 6.0f ? 6.0f : s)) / 6.0f;
  }
  return 0;
}

/* erfc(z) = t exp(-z^2 + P(t)), t = 1 / (1 + |z| / 2), mirrored as 2 - erfc(-z) for z < 0: the
 * Chebyshev fit of Numerical Recipes (erfcc, fractional error below 1.2e-7 everywhere). */
static inline __m256 erfc8(__m256 z) {
  const __m256 a = _mm256_andnot_ps(_mm256_set1_ps(-0.0f), z);
  const __m256 one = _mm256_set1_ps(1.0f);
  const __m256 t = _mm256_div_ps(one, _mm256_fmadd_ps(a, _mm256_set1_ps(0.5f), one));
  static const float c[10] = {-1.26551223f, 1.00002368f, 0.37409196f, 0.09678418f,
                              -0.18628806f, 0.27886807f, -1.13520398f, 1.48851587f,
                              -0.82215223f, 0.17087277f};
  __m256 p = _mm256_set1_ps(c[9]);
  for (int i = 8; i >= 0; --i) p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(c[i]));
  const __m256 y = _mm256_mul_ps(t, exp_nonpositive(_mm256_fnmadd_ps(a, a, p)));
  const __m256 negative = _mm256_cmp_ps(z, _mm256_setzero_ps(), _CMP_LT_OQ);
  return _mm256_blendv_ps(y, _mm256_sub_ps(_mm256_set1_ps(2.0f), y), negative);
}

/* GELU (exact form): 0.5 x erfc(-x / sqrt 2), as the reference writes it, with erfc from the
 * fit above: within a few 1e-7 of the reference (relative), not bit-identical. */
int eq_f32_gelu__avx2(const eq_node *node, eq_ctx *ctx) {
  (void)ctx;
  const float *in = (const float *)node->inputs[0]->data;
  float *out = (float *)node->outputs[0]->data;
  const int64_t n = node->inputs[0]->count;
  const __m256 half = _mm256_set1_ps(0.5f), scale = _mm256_set1_ps(-0.7071067811865476f);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256 x = _mm256_loadu_ps(in + i);
    _mm256_storeu_ps(out + i, _mm256_mul_ps(_mm256_mul_ps(half, x),
                                            erfc8(_mm256_mul_ps(x, scale))));
  }
  if (i < n) {  /* masked only here: AMD cores store through a mask slowly */
    const __m256i mask = _mm256_cmpgt_epi32(_mm256_set1_epi32((int32_t)(n - i)),
                                            _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
    const __m256 x = _mm256_maskload_ps(in + i, mask);
    _mm256_maskstore_ps(out + i, mask, _mm256_mul_ps(_mm256_mul_ps(half, x),
                                                     erfc8(_mm256_mul_ps(x, scale))));
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
