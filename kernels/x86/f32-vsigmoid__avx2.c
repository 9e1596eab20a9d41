/* f32 LOGISTIC, AVX2: 1 / (1 + e^-x) from e^-|x| (math__avx2.h), never overflowing:
 * x >= 0 gives 1 / (1 + e), x < 0 gives e / (1 + e). Within about 2 ulp of the reference's
 * expf form; 0 below about -87 where the reference gives a subnormal, NaN for NaN. */
#include <immintrin.h>

#include "edgeq/dispatch.h"
#include "math__avx2.h"

static inline __m256 sigmoid8(__m256 x) {
  const __m256 one = _mm256_set1_ps(1.0f);
  const __m256 e = exp_nonpositive(_mm256_or_ps(x, _mm256_set1_ps(-0.0f)));  /* e^-|x| */
  const __m256 r = _mm256_div_ps(one, _mm256_add_ps(one, e));
  const __m256 negative = _mm256_cmp_ps(x, _mm256_setzero_ps(), _CMP_LT_OQ);
  return _mm256_blendv_ps(r, _mm256_mul_ps(e, r), negative);
}

int eq_f32_logistic__avx2(const eq_node *node, eq_ctx *ctx) {
  (void)ctx;
  const float *in = (const float *)node->inputs[0]->data;
  float *out = (float *)node->outputs[0]->data;
  const int64_t n = node->inputs[0]->count;
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(out + i, sigmoid8(_mm256_loadu_ps(in + i)));
  if (i < n) {
    const __m256i mask = _mm256_cmpgt_epi32(_mm256_set1_epi32((int32_t)(n - i)),
                                            _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
    _mm256_maskstore_ps(out + i, mask, sigmoid8(_mm256_maskload_ps(in + i, mask)));
  }
  return 0;
}
