/* f32 depthwise microkernel, AVX2 + FMA: 16 channels at a time (8 and a masked tail after),
 * the taps of one pixel summed in order; 3x3 and 5x5 get their tap loop unrolled. A fused
 * HARD_SWISH (eq_conv_params.hard_swish) is applied in registers before the store, each
 * kernel compiled with and without it (`hs`). */
#include <immintrin.h>

#include "edgeq/f32_gemm.h"
#include "edgeq/params/conv.h"
#include "f32_dwconv_entries.h"
#include "math__avx2.h"

static const int32_t kMaskTable[16] = {-1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0};

/* The clamp, then HARD_SWISH where hs. */
static inline __attribute__((always_inline)) __m256 finish8(__m256 v, __m256 lo, __m256 hi,
                                                           const int hs) {
  v = _mm256_min_ps(hi, _mm256_max_ps(lo, v));
  return hs ? hard_swish_ps8(v) : v;
}

static inline __attribute__((always_inline)) void dw_pixels(
    int32_t pixels, int32_t channels, const int32_t taps, const float *const *ptrs,
    const float *restrict weights, const float *restrict bias, float *restrict out, float lo,
    float hi, const int hs) {
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
      _mm256_storeu_ps(out + ch, finish8(acc0, vlo, vhi, hs));
      _mm256_storeu_ps(out + ch + 8, finish8(acc1, vlo, vhi, hs));
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
      _mm256_maskstore_ps(out + ch, mask, finish8(acc, vlo, vhi, hs));
    }
  }
}

/* The interior of a row: a block of 8 channels at a time (the last one masked), its 3x3 weights
 * held in registers while the block walks the row's pixels; larger filters read them from L1. */
#define ROW_MAX_TAPS 9

static inline __attribute__((always_inline)) __m256 load8(const float *x, __m256i m, int full) {
  return full ? _mm256_loadu_ps(x) : _mm256_maskload_ps(x, m);
}

static inline __attribute__((always_inline)) void store8(float *o, __m256i m, int full,
                                                         __m256 v) {
  if (full) {
    _mm256_storeu_ps(o, v);
  } else {
    _mm256_maskstore_ps(o, m, v);
  }
}

static inline __attribute__((always_inline)) void dw_row_block(
    const eq_conv_params *p, const float *const *rows, int32_t ox0, int32_t ox1,
    const float *restrict weights, const float *restrict bias, float *restrict out_row,
    const int32_t k_h, const int32_t k_w, int32_t ch, const int full, const int hs) {
  const int32_t channels = p->in_c, taps = k_h * k_w;
  const int64_t step = (int64_t)p->stride_w * channels;
  const int64_t tap_step = (int64_t)p->dilation_w * channels;
  const __m256 vlo = _mm256_set1_ps(p->act_min), vhi = _mm256_set1_ps(p->act_max);
  const int64_t ix0 = (int64_t)ox0 * p->stride_w - p->pad_left;
  const int32_t n = channels - ch < 8 ? channels - ch : 8;
  const __m256i m = _mm256_loadu_si256((const __m256i *)(kMaskTable + 8 - n));
  __m256 w[ROW_MAX_TAPS];
  if (taps <= ROW_MAX_TAPS) {
#pragma GCC unroll 9
    for (int32_t t = 0; t < taps; ++t) w[t] = load8(weights + (int64_t)t * channels + ch, m, full);
  }
#define WEIGHT(t) (taps <= ROW_MAX_TAPS ? w[t] \
                   : load8(weights + (int64_t)(t) * channels + ch, m, full))
  const __m256 b = load8(bias + ch, m, full);
  float *o = out_row + (int64_t)ox0 * channels + ch;
  int32_t ox = ox0;
  /* Two pixels at a time: independent FMA chains hide the FMA latency (16 registers). */
  for (; ox + 2 <= ox1; ox += 2, o += 2 * channels) {
    const int64_t at = ix0 * channels + (ox - ox0) * step + ch;
    __m256 acc0 = _mm256_setzero_ps(), acc1 = acc0;
#pragma GCC unroll 5
    for (int32_t ky = 0; ky < k_h; ++ky) {
      const float *x = rows[ky] + at;
#pragma GCC unroll 5
      for (int32_t kx = 0; kx < k_w; ++kx, x += tap_step) {
        const __m256 wt = WEIGHT(ky * k_w + kx);
        acc0 = _mm256_fmadd_ps(load8(x, m, full), wt, acc0);
        acc1 = _mm256_fmadd_ps(load8(x + step, m, full), wt, acc1);
      }
    }
    store8(o, m, full, finish8(_mm256_add_ps(acc0, b), vlo, vhi, hs));
    store8(o + channels, m, full, finish8(_mm256_add_ps(acc1, b), vlo, vhi, hs));
  }
  for (; ox < ox1; ++ox, o += channels) {
    const int64_t at = ix0 * channels + (ox - ox0) * step + ch;
    __m256 acc = _mm256_setzero_ps();
#pragma GCC unroll 5
    for (int32_t ky = 0; ky < k_h; ++ky) {
      const float *x = rows[ky] + at;
#pragma GCC unroll 5
      for (int32_t kx = 0; kx < k_w; ++kx, x += tap_step)
        acc = _mm256_fmadd_ps(load8(x, m, full), WEIGHT(ky * k_w + kx), acc);
    }
    store8(o, m, full, finish8(_mm256_add_ps(acc, b), vlo, vhi, hs));
  }
#undef WEIGHT
}

static inline __attribute__((always_inline)) void dw_row(
    const eq_conv_params *p, const float *const *rows, int32_t ox0, int32_t ox1,
    const float *restrict weights, const float *restrict bias, float *restrict out_row,
    const int32_t k_h, const int32_t k_w, const int hs) {
  int32_t ch = 0;
  for (; ch + 8 <= p->in_c; ch += 8)
    dw_row_block(p, rows, ox0, ox1, weights, bias, out_row, k_h, k_w, ch, 1, hs);
  if (ch < p->in_c) dw_row_block(p, rows, ox0, ox1, weights, bias, out_row, k_h, k_w, ch, 0, hs);
}

EQ_F32_DWCONV_ENTRIES(avx2)
