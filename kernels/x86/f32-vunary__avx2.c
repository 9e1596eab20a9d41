/* f32 HARD_SWISH, AVX2: x * clamp(x + 3, 0, 6) / 6 in the reference's order of operations, so
 * bit-identical to it (a NaN stays NaN through the clamp, as there). */
#include <immintrin.h>

#include "edgeq/dispatch.h"

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
