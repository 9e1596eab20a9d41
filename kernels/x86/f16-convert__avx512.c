/* fp16 <-> float32, 16 lanes per instruction (AVX-512F vcvtph2ps / vcvtps2ph); the tail under
 * a mask, so every n takes the vector path. */
#include <immintrin.h>

#include "edgeq/f16.h"

void eq_f16_to_f32__avx512(size_t n, const uint16_t *in, float *out) {
  size_t i = 0;
  for (; i + 32 <= n; i += 32) {
    const __m256i h0 = _mm256_loadu_si256((const __m256i *)(in + i));
    const __m256i h1 = _mm256_loadu_si256((const __m256i *)(in + i + 16));
    _mm512_storeu_ps(out + i, _mm512_cvtph_ps(h0));
    _mm512_storeu_ps(out + i + 16, _mm512_cvtph_ps(h1));
  }
  for (; i < n; i += 16) {
    const __mmask16 m = n - i >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (n - i)) - 1u);
    const __m256i h = _mm256_maskz_loadu_epi16(m, in + i);
    _mm512_mask_storeu_ps(out + i, m, _mm512_cvtph_ps(h));
  }
}

void eq_f32_to_f16__avx512(size_t n, const float *in, uint16_t *out) {
  size_t i = 0;
  for (; i + 32 <= n; i += 32) {
    const __m256i h0 = _mm512_cvtps_ph(_mm512_loadu_ps(in + i), _MM_FROUND_TO_NEAREST_INT);
    const __m256i h1 = _mm512_cvtps_ph(_mm512_loadu_ps(in + i + 16), _MM_FROUND_TO_NEAREST_INT);
    _mm256_storeu_si256((__m256i *)(out + i), h0);
    _mm256_storeu_si256((__m256i *)(out + i + 16), h1);
  }
  for (; i < n; i += 16) {
    const __mmask16 m = n - i >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (n - i)) - 1u);
    const __m512 v = _mm512_maskz_loadu_ps(m, in + i);
    _mm256_mask_storeu_epi16(out + i, m, _mm512_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT));
  }
}
