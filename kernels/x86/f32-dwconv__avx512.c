/* f32 depthwise microkernel, AVX-512F: 32 channels at a time, then 16 and a masked tail; the
 * taps of one pixel summed in order; 3x3 and 5x5 get their tap loop unrolled. */
#include <immintrin.h>

#include "edgeq/f32_gemm.h"

static inline __m512 clamp16(__m512 v, __m512 lo, __m512 hi) {
  return _mm512_min_ps(hi, _mm512_max_ps(lo, v));
}

static inline __attribute__((always_inline)) void dw_pixels(
    int32_t pixels, int32_t channels, const int32_t taps, const float *const *ptrs,
    const float *restrict weights, const float *restrict bias, float *restrict out, float lo,
    float hi) {
  const __m512 vlo = _mm512_set1_ps(lo), vhi = _mm512_set1_ps(hi);
  for (int32_t px = 0; px < pixels; ++px, ptrs += taps, out += channels) {
    int32_t ch = 0;
    for (; ch + 32 <= channels; ch += 32) {
      __m512 acc0 = _mm512_setzero_ps(), acc1 = _mm512_setzero_ps();
      for (int32_t t = 0; t < taps; ++t) {
        const float *x = ptrs[t] + ch, *w = weights + (int64_t)t * channels + ch;
        acc0 = _mm512_fmadd_ps(_mm512_loadu_ps(x), _mm512_loadu_ps(w), acc0);
        acc1 = _mm512_fmadd_ps(_mm512_loadu_ps(x + 16), _mm512_loadu_ps(w + 16), acc1);
      }
      acc0 = _mm512_add_ps(acc0, _mm512_loadu_ps(bias + ch));
      acc1 = _mm512_add_ps(acc1, _mm512_loadu_ps(bias + ch + 16));
      _mm512_storeu_ps(out + ch, clamp16(acc0, vlo, vhi));
      _mm512_storeu_ps(out + ch + 16, clamp16(acc1, vlo, vhi));
    }
    for (; ch < channels; ch += 16) {
      const int32_t n = channels - ch < 16 ? channels - ch : 16;
      const __mmask16 m = (__mmask16)((1u << n) - 1u);
      __m512 acc = _mm512_setzero_ps();
      for (int32_t t = 0; t < taps; ++t) {
        acc = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, ptrs[t] + ch),
                              _mm512_maskz_loadu_ps(m, weights + (int64_t)t * channels + ch),
                              acc);
      }
      acc = _mm512_add_ps(acc, _mm512_maskz_loadu_ps(m, bias + ch));
      _mm512_mask_storeu_ps(out + ch, m, clamp16(acc, vlo, vhi));
    }
  }
}

void eq_f32_dwconv__avx512(int32_t pixels, int32_t channels, int32_t taps,
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
