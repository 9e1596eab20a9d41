/* f32 SOFTMAX, AVX2: per row the reference's steps (max, e^(beta (x - max)) with its sum, then
 * each value divided by the sum), 8 lanes at a time: the sum is reassociated and e^ comes from
 * a polynomial, so results are within a few 1e-7 relative of the reference. A negative beta
 * (never written by converters) takes the reference's scalar path. */
#include <float.h>
#include <math.h>

#include "edgeq/dispatch.h"
#include "edgeq/params/reduce.h"
#include "math__avx2.h"

static inline float hmax8(__m256 v) {
  __m128 m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  m = _mm_max_ps(m, _mm_movehl_ps(m, m));
  m = _mm_max_ss(m, _mm_shuffle_ps(m, m, 1));
  return _mm_cvtss_f32(m);
}

static inline float hsum8(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 1));
  return _mm_cvtss_f32(s);
}

int eq_f32_softmax__avx2(const eq_node *node, eq_ctx *ctx) {
  (void)ctx;
  const eq_softmax_params *p = (const eq_softmax_params *)node->params;
  const float *x = (const float *)node->inputs[0]->data;
  float *y = (float *)node->outputs[0]->data;
  const int32_t depth = p->depth;
  if (depth == 0) return 0;
  const int64_t rows = node->inputs[0]->count / depth;
  const float beta = p->beta;
  const __m256 vbeta = _mm256_set1_ps(beta);
  for (int64_t r = 0; r < rows; ++r, x += depth, y += depth) {
    /* max_ps keeps its second operand, the running max, against a NaN: the reference's
     * `x > mx ? x : mx` */
    __m256 vmx = _mm256_set1_ps(-FLT_MAX);
    int32_t c = 0;
    for (; c + 8 <= depth; c += 8) vmx = _mm256_max_ps(_mm256_loadu_ps(x + c), vmx);
    float mx = hmax8(vmx);
    for (; c < depth; ++c) mx = x[c] > mx ? x[c] : mx;
    float sum = 0.0f;
    if (beta >= 0.0f) {
      const __m256 vm = _mm256_set1_ps(mx);
      __m256 vsum = _mm256_setzero_ps();
      for (c = 0; c + 8 <= depth; c += 8) {
        const __m256 e = exp_nonpositive(_mm256_mul_ps(_mm256_sub_ps(_mm256_loadu_ps(x + c), vm),
                                                       vbeta));
        _mm256_storeu_ps(y + c, e);
        vsum = _mm256_add_ps(vsum, e);
      }
      sum = hsum8(vsum);
    } else {
      c = 0;
    }
    for (; c < depth; ++c) {
      const float e = expf((x[c] - mx) * beta);
      y[c] = e;
      sum += e;
    }
    const __m256 vs = _mm256_set1_ps(sum);
    for (c = 0; c + 8 <= depth; c += 8)
      _mm256_storeu_ps(y + c, _mm256_div_ps(_mm256_loadu_ps(y + c), vs));
    for (; c < depth; ++c) y[c] = y[c] / sum;
  }
  return 0;
}
