/* edgeq's fused layer normalization (params/reduce.h), AVX2: per row the reference's three
 * passes (sum, sum of squared deviations, scale), 8 lanes at a time with the lane sums folded
 * at the end; the per-element step is the reference's x * s + (-m) * s (+ beta). Sums are
 * reassociated across lanes, so results agree with the reference to float rounding. Rows split
 * across threads. */
#include <immintrin.h>
#include <math.h>

#include "edgeq/dispatch.h"
#include "edgeq/params/reduce.h"
#include "edgeq/threadpool.h"

static inline float hsum8(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

static void layer_norm_rows(void *arg, int64_t begin, int64_t end) {
  const eq_node *node = (const eq_node *)arg;
  const eq_layer_norm_params *p = (const eq_layer_norm_params *)node->params;
  const float *gamma = node->n_inputs > 1 && node->inputs[1] ? node->inputs[1]->data : NULL;
  const float *beta = node->n_inputs > 2 && node->inputs[2] ? node->inputs[2]->data : NULL;
  const int64_t depth = p->depth, body = depth & ~(int64_t)7;
  for (int64_t r = begin; r < end; ++r) {
    const float *x = (const float *)node->inputs[0]->data + r * depth;
    float *y = (float *)node->outputs[0]->data + r * depth;
    __m256 acc = _mm256_setzero_ps();
    for (int64_t c = 0; c < body; c += 8) acc = _mm256_add_ps(acc, _mm256_loadu_ps(x + c));
    float sum = hsum8(acc);
    for (int64_t c = body; c < depth; ++c) sum += x[c];
    const float mean = depth > 0 ? sum / (float)depth : NAN;
    const __m256 vm = _mm256_set1_ps(mean);
    acc = _mm256_setzero_ps();
    for (int64_t c = 0; c < body; c += 8) {
      const __m256 d = _mm256_sub_ps(_mm256_loadu_ps(x + c), vm);
      acc = _mm256_add_ps(acc, _mm256_mul_ps(d, d));
    }
    float sq = hsum8(acc);
    for (int64_t c = body; c < depth; ++c) sq += (x[c] - mean) * (x[c] - mean);
    const float rs = 1.0f / sqrtf((depth > 0 ? sq / (float)depth : NAN) + p->epsilon);
    const __m256 vr = _mm256_set1_ps(rs), vneg = _mm256_set1_ps(-mean);
    for (int64_t c = 0; c < body; c += 8) {
      const __m256 s = gamma ? _mm256_mul_ps(vr, _mm256_loadu_ps(gamma + c)) : vr;
      __m256 v = _mm256_add_ps(_mm256_mul_ps(_mm256_loadu_ps(x + c), s), _mm256_mul_ps(vneg, s));
      if (beta) v = _mm256_add_ps(v, _mm256_loadu_ps(beta + c));
      _mm256_storeu_ps(y + c, v);
    }
    for (int64_t c = body; c < depth; ++c) {
      const float s = gamma ? rs * gamma[c] : rs;
      const float v = x[c] * s + (-mean) * s;
      y[c] = beta ? v + beta[c] : v;
    }
  }
}

int eq_f32_layer_norm__avx2(const eq_node *node, eq_ctx *ctx) {
  const eq_layer_norm_params *p = (const eq_layer_norm_params *)node->params;
  eq_parallel_for(ctx, p->rows, eq_parallel_grain(p->rows, (int64_t)p->rows * p->depth * 4),
                  layer_norm_rows, (void *)node);
  return 0;
}
