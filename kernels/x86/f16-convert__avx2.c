/* fp16 <-> float32 with F16C (every AVX2 CPU edgeq targets has it, cpu.h): vcvtph2ps and
 * vcvtps2ph with round-to-nearest-even, which is exactly eq_float_to_half (edgeq/f16.h). */
#include <immintrin.h>

#include "edgeq/f16.h"

void eq_f16_to_f32__avx2(size_t n, const uint16_t *in, float *out) {
  size_t i = 0;
  for (; i + 16 <= n; i += 16) {
    const __m128i h0 = _mm_loadu_si128((const __m128i *)(in + i));
    const __m128i h1 = _mm_loadu_si128((const __m128i *)(in + i + 8));
    _mm256_storeu_ps(out + i, _mm256_cvtph_ps(h0));
    _mm256_storeu_ps(out + i + 8, _mm256_cvtph_ps(h1));
  }
  for (; i + 8 <= n; i += 8) {
    _mm256_storeu_ps(out + i, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(in + i))));
  }
  for (; i < n; ++i) out[i] = eq_half_to_float(in[i]);
}

void eq_f32_to_f16__avx2(size_t n, const float *in, uint16_t *out) {
  size_t i = 0;
  for (; i + 16 <= n; i += 16) {
    const __m128i h0 = _mm256_cvtps_ph(_mm256_loadu_ps(in + i), _MM_FROUND_TO_NEAREST_INT);
    const __m128i h1 = _mm256_cvtps_ph(_mm256_loadu_ps(in + i + 8), _MM_FROUND_TO_NEAREST_INT);
    _mm_storeu_si128((__m128i *)(out + i), h0);
    _mm_storeu_si128((__m128i *)(out + i + 8), h1);
  }
  for (; i + 8 <= n; i += 8) {
    _mm_storeu_si128((__m128i *)(out + i),
                     _mm256_cvtps_ph(_mm256_loadu_ps(in + i), _MM_FROUND_TO_NEAREST_INT));
  }
  for (; i < n; ++i) out[i] = eq_float_to_half(in[i]);
}
