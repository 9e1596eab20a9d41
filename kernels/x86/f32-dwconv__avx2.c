/* f32 depthwise microkernel, AVX2 + FMA: 16 channels at a time (8 and a masked tail after),
 * the taps of one pixel summed in order; 3x3 and 5x5 get their tap loop unrolled. */
#include <immintrin.h>

#include "edgeq/f32_gemm.h"

static const int32_t kMaskTable[16] = {-1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0};

static inline __m256 clamp8(__m256 v, __m256 lo, __m256 hi) {
  return _mm256_min_ps(hi, _mm256_max_ps(lo, v));
}

static inline __attribute__((always_inline)) void dw_pixels(
    int32_t pixels, int32_t channels, const int32_t taps, const float *const *ptrs,
    const float *restrict weights, const float *restrict bias, float *restrict out, float lo,
    float hi) {
  const __m256 vlo = _mm256_set1_ps(lo), vhi = _mm256_set1_ps(hi);
  for (int32_t px = 0; px < pixels; ++px, ptrs += taps, out += channels) {
    int32_t ch = 0;
    for (; ch + 16 <= channels; ch += 16) {
      __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
      for (int32_t t = 0; t < taps; ++t) {
        const float *x = ptrs[t] + ch, *w = weights + (int64_t)t * channels + ch;
        acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(x), _mm256_loadu_ps(w), acc0);
        acc1 = _mm256_fmadd_ps(_mm256_loadu_ps(x + 8), _mm256_loadu_ps(w + 8), acc1);
      }
      acc0 = _mm256_add_ps(acc0, _mm256_loadu_ps(bias + ch));
      acc1 = _mm256_add_ps(acc1, _mm256_loadu_ps(bias + ch + 8));
      _mm256_storeu_ps(out + ch, clamp8(acc0, vlo, vhi));
      _mm256_storeu_ps(out + ch + 8, clamp8(acc1, vlo, vhi));
    }
    for (; ch < channels; ch += 8) {
      const int32_t n = channels - ch < 8 ? channels - ch : 8;
      const __m256i mask = _mm256_loadu_si256((const __m256i *)(kMaskTable + 8 - n));
      __m256 acc = _mm256_setzero_ps();
      for (int32_t t = 0; t < taps; ++t) {
        acc = _mm256_fmadd_ps(_mm256_maskload_ps(ptrs[t] + ch, mask),
                              _mm256_maskload_ps(weights + (int64_t)t * channels + ch, mask),
                              acc);
      }
      acc = _mm256_add_ps(acc, _mm256_maskload_ps(bias + ch, mask));
      _mm256_maskstore_ps(out + ch, mask, clamp8(acc, vlo, vhi));
    }
  }
}

void eq_f32_dwconv__avx2(int32_t pixels, int32_t channels, int32_t taps,
                         const float *const *ptrs, const float *weights, const float *bias,
                         float *out, float lo, float hi) {
  if (taps == 9) {
    dw_pixels(pixels, channels, 9, ptrs, weights, bias, out, lo, hi);
  } else if (taps == 25) {
    dw_pixels(pixels, channels, 25, ptrs, weights, bias, out, lo, hi);
  } else {
    dw_pixels(pixels, channels, taps, ptrs, weights, bias, out, lo, hi);
  }
}
