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

/* The interior of a row: a block of 8 channels at a time (the last one masked) walking the
 * row's pixels. */

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

/* `pixels` consecutive output pixels (up to 8) of one 8-channel block, one FMA chain each: the
 * tap's weights from registers (w, up to 3x3 taps) or loaded once for all the pixels (from L1),
 * the inputs as FMA memory operands. */
#define HELD_TAPS 9
static inline __attribute__((always_inline)) void dw_run(
    const int32_t pixels, const int full, const float *const *rows, int64_t at, int64_t step,
    int64_t tap_step, const int32_t k_h, const int32_t k_w, const __m256 *w,
    const float *weights, int64_t channels, __m256i m, __m256 b, __m256 vlo, __m256 vhi,
    float *o, const int hs) {
  __m256 acc[8];
#pragma GCC unroll 8
  for (int32_t i = 0; i < pixels; ++i) acc[i] = _mm256_setzero_ps();
#pragma GCC unroll 5
  for (int32_t ky = 0; ky < k_h; ++ky) {
    const float *x = rows[ky] + at;
    const float *wr = weights + (int64_t)ky * k_w * channels;
#pragma GCC unroll 5
    for (int32_t kx = 0; kx < k_w; ++kx, x += tap_step) {
      const __m256 wt = k_h * k_w <= HELD_TAPS ? w[ky * k_w + kx]
                                               : load8(wr + kx * channels, m, full);
#pragma GCC unroll 8
      for (int32_t i = 0; i < pixels; ++i)
        acc[i] = _mm256_fmadd_ps(load8(x + i * step, m, full), wt, acc[i]);
    }
  }
#pragma GCC unroll 8
  for (int32_t i = 0; i < pixels; ++i)
    store8(o + i * channels, m, full, finish8(_mm256_add_ps(acc[i], b), vlo, vhi, hs));
}

/* One 8-channel block (full, or the masked last one) along the row: eight pixels at a time
 * (eight FMA chains: two FMA pipes of four or five cycles' latency; two pixels at a time, as
 * before, left the 5x5 layers waiting on the latency), or four where the 3x3 weights take nine
 * of the sixteen registers, then one run of the pixels left. */
static inline __attribute__((always_inline)) void dw_row_block(
    const eq_conv_params *p, const float *const *rows, int32_t ox0, int32_t ox1,
    const float *restrict weights, const float *restrict bias, float *restrict out_row,
    const int32_t k_h, const int32_t k_w, int32_t ch, const int full, const int hs) {
  const int64_t channels = p->in_c;
  const int64_t step = (int64_t)p->stride_w * channels;
  const int64_t tap_step = (int64_t)p->dilation_w * channels;
  const __m256 vlo = _mm256_set1_ps(p->act_min), vhi = _mm256_set1_ps(p->act_max);
  const int64_t ix0 = (int64_t)ox0 * p->stride_w - p->pad_left;
  const int32_t n = channels - ch < 8 ? (int32_t)(channels - ch) : 8;
  const __m256i m = _mm256_loadu_si256((const __m256i *)(kMaskTable + 8 - n));
  const __m256 b = load8(bias + ch, m, full);
  __m256 w[HELD_TAPS];
  if (k_h * k_w <= HELD_TAPS) {
#pragma GCC unroll 9
    for (int32_t t = 0; t < k_h * k_w; ++t) w[t] = load8(weights + t * channels + ch, m, full);
  }
  float *o = out_row + (int64_t)ox0 * channels + ch;
  int32_t ox = ox0;
#define RUN(pixels)                                                                         \
  dw_run(pixels, full, rows, ix0 * channels + (ox - ox0) * step + ch, step, tap_step, k_h, \
         k_w, w, weights + ch, channels, m, b, vlo, vhi, o, hs)
  if (k_h * k_w <= HELD_TAPS) {
    for (; ox + 4 <= ox1; ox += 4, o += 4 * channels) RUN(4);
  } else {
    for (; ox + 8 <= ox1; ox += 8, o += 8 * channels) RUN(8);
  }
  EQ_DW_RUN_REST(ox1 - ox, RUN);
#undef RUN
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

/* --- Whole rows, padding included ----------------------------------------------------------
 * A run of `pixels` output pixels (up to 8) of one row for one block of 8 channels: each input
 * pixel of an input row is loaded once and feeds every tap's output it belongs to (at stride 2
 * a 5x5 filter loads 19 columns for 8 outputs instead of 40), the bias starts the sums, and
 * rows over the padding are skipped, columns over it too, so that there is no zero row, no
 * padded copy and no border pixel through tap pointers. `inside`: every column inside the
 * width (no checks); `full`: 8 live channels (no masks: masked loads cost more on Zen 3). */
static inline __attribute__((always_inline)) void image_run(
    const int32_t pixels, const int32_t k_w, const int32_t stride, const int inside,
    const int full, const eq_conv_params *p, const float *in, int32_t oy, int64_t ix0,
    __m256i m, const float *weights, const float *bias, __m256 vlo, __m256 vhi, float *o,
    const int hs) {
  const int64_t c = p->in_c, in_w = p->in_w, in_h = p->in_h, k_h = p->k_h;
  const int64_t row = in_w * c, w_row = (int64_t)k_w * c;
  const int64_t dy = p->dilation_h;
  int64_t iy = (int64_t)oy * p->stride_h - p->pad_top;
  __m256 acc[8];
  const __m256 start = load8(bias, m, full);
#pragma GCC unroll 8
  for (int32_t i = 0; i < pixels; ++i) acc[i] = start;
  const float *r = in + iy * row + ix0 * c, *wr = weights;
  for (int64_t ky = 0; ky < k_h; ++ky, iy += dy, r += dy * row, wr += w_row) {
    if ((uint64_t)iy >= (uint64_t)in_h) continue;  /* a padding row adds nothing */
    __m256 w[5];
#pragma GCC unroll 5
    for (int32_t kx = 0; kx < k_w; ++kx) w[kx] = load8(wr + kx * c, m, full);
    /* Input column j feeds output i through tap kx when j = i * stride + kx. */
    const float *x = r;
#pragma GCC unroll 20
    for (int32_t j = 0; j < (pixels - 1) * stride + k_w; ++j, x += c) {
      /* a padding column adds nothing (one unsigned compare for both sides) */
      if (!inside && (uint64_t)(ix0 + j) >= (uint64_t)in_w) continue;
      const __m256 v = load8(x, m, full);
#pragma GCC unroll 5
      for (int32_t kx = 0; kx < k_w; ++kx) {
        const int32_t d = j - kx;
        if (d >= 0 && d % stride == 0 && d / stride < pixels)
          acc[d / stride] = _mm256_fmadd_ps(v, w[kx], acc[d / stride]);
      }
    }
  }
#pragma GCC unroll 8
  for (int32_t i = 0; i < pixels; ++i) store8(o + i * c, m, full, finish8(acc[i], vlo, vhi, hs));
}

/* One run of `pixels` output pixels across every channel block: the channels inside the run,
 * so that the input columns of a run (two 8-channel blocks to a cache line) are read from L1
 * by the next block, where going a block at a time along the whole row would re-read each
 * line from L2 once per block on rows wider than L1. */
static inline __attribute__((always_inline)) void image_pixels(
    const int32_t pixels, const int32_t k_w, const int32_t stride, const int inside,
    const eq_conv_params *p, const float *in, int32_t oy, int32_t ox, const float *weights,
    const float *bias, __m256 vlo, __m256 vhi, float *o, const int hs) {
  const int32_t channels = p->in_c;
  const int64_t ix0 = (int64_t)ox * stride - p->pad_left;
  const __m256i all = _mm256_set1_epi32(-1);
  int32_t ch = 0;
  for (; ch + 8 <= channels; ch += 8)
    image_run(pixels, k_w, stride, inside, 1, p, in + ch, oy, ix0, all, weights + ch, bias + ch,
              vlo, vhi, o + ch, hs);
  if (ch < channels) {
    const __m256i m = _mm256_loadu_si256((const __m256i *)(kMaskTable + 8 - (channels - ch)));
    image_run(pixels, k_w, stride, inside, 0, p, in + ch, oy, ix0, m, weights + ch, bias + ch,
              vlo, vhi, o + ch, hs);
  }
}

static inline __attribute__((always_inline)) void image_rows(
    const eq_conv_params *p, const float *in, int32_t oy0, int32_t oy1, const float *weights,
    const float *bias, float *out, const int32_t k_w, const int32_t stride, const int hs) {
  const int32_t channels = p->in_c, width = p->out_w;
  const __m256 vlo = _mm256_set1_ps(p->act_min), vhi = _mm256_set1_ps(p->act_max);
  int32_t lo, hi;  /* the interior columns, where runs load without checks */
  eq_conv_interior_columns(p, &lo, &hi);
  for (int32_t oy = oy0; oy < oy1; ++oy) {
    float *out_row = out + (int64_t)oy * width * channels;
    /* Runs of 8 pixels: 8 FMA chains (two pipes of four cycles' latency, Zen 3), the weights
     * of a filter row and the input column in the other registers. */
    int32_t ox = 0;
    for (; ox + 8 <= width; ox += 8) {
      float *o = out_row + (int64_t)ox * channels;
      if (ox >= lo && ox + 8 <= hi) {
        image_pixels(8, k_w, stride, 1, p, in, oy, ox, weights, bias, vlo, vhi, o, hs);
      } else {
        image_pixels(8, k_w, stride, 0, p, in, oy, ox, weights, bias, vlo, vhi, o, hs);
      }
    }
    float *o = out_row + (int64_t)ox * channels;
#define RUN(pixels) \
  image_pixels(pixels, k_w, stride, 0, p, in, oy, ox, weights, bias, vlo, vhi, o, hs)
    EQ_DW_RUN_REST(width - ox, RUN);
#undef RUN
  }
}

EQ_F32_DWCONV_IMAGE_ENTRY(avx2)
