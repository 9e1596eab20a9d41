/* f32 depthwise microkernel, AVX-512F: 32 channels at a time, then 16 and a masked tail; the
 * taps of one pixel summed in order; 3x3 and 5x5 get their tap loop unrolled. A fused
 * HARD_SWISH (eq_conv_params.hard_swish) is applied in registers before the store, each
 * kernel compiled with and without it (`hs`). */
#include <immintrin.h>

#include "edgeq/f32_gemm.h"
#include "edgeq/params/conv.h"
#include "f32_dwconv_entries.h"
#include "f32_gemm_avx512.h"

/* The clamp, then HARD_SWISH where hs (the GEMM epilogue's, bit for bit the op's). */
static inline __attribute__((always_inline)) __m512 finish16(__m512 v, __m512 lo, __m512 hi,
                                                             const int hs) {
  v = clamp16(v, lo, hi);
  return hs ? hard_swish16(v) : v;
}

static inline __attribute__((always_inline)) void dw_pixels(
    int32_t pixels, int32_t channels, const int32_t taps, const float *const *ptrs,
    const float *restrict weights, const float *restrict bias, float *restrict out, float lo,
    float hi, const int hs) {
  const __m512 vlo = _mm512_set1_ps(lo), vhi = _mm512_set1_ps(hi);
  for (int32_t px = 0; px < pixels; ++px, ptrs += taps, out += channels) {
    int32_t ch = 0;
    /* 64 channels: four FMA chains, each FMA with two loads (input and weight), which is as
     * many FMAs as two load ports feed. */
    for (; ch + 64 <= channels; ch += 64) {
      __m512 acc[4];
#pragma GCC unroll 4
      for (int32_t i = 0; i < 4; ++i) acc[i] = _mm512_setzero_ps();
      for (int32_t t = 0; t < taps; ++t) {
        const float *x = ptrs[t] + ch, *w = weights + (int64_t)t * channels + ch;
#pragma GCC unroll 4
        for (int32_t i = 0; i < 4; ++i)
          acc[i] = _mm512_fmadd_ps(_mm512_loadu_ps(x + 16 * i), _mm512_loadu_ps(w + 16 * i),
                                   acc[i]);
      }
#pragma GCC unroll 4
      for (int32_t i = 0; i < 4; ++i) {
        const __m512 v = _mm512_add_ps(acc[i], _mm512_loadu_ps(bias + ch + 16 * i));
        _mm512_storeu_ps(out + ch + 16 * i, finish16(v, vlo, vhi, hs));
      }
    }
    for (; ch + 32 <= channels; ch += 32) {
      __m512 acc0 = _mm512_setzero_ps(), acc1 = _mm512_setzero_ps();
      for (int32_t t = 0; t < taps; ++t) {
        const float *x = ptrs[t] + ch, *w = weights + (int64_t)t * channels + ch;
        acc0 = _mm512_fmadd_ps(_mm512_loadu_ps(x), _mm512_loadu_ps(w), acc0);
        acc1 = _mm512_fmadd_ps(_mm512_loadu_ps(x + 16), _mm512_loadu_ps(w + 16), acc1);
      }
      acc0 = _mm512_add_ps(acc0, _mm512_loadu_ps(bias + ch));
      acc1 = _mm512_add_ps(acc1, _mm512_loadu_ps(bias + ch + 16));
      _mm512_storeu_ps(out + ch, finish16(acc0, vlo, vhi, hs));
      _mm512_storeu_ps(out + ch + 16, finish16(acc1, vlo, vhi, hs));
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
      _mm512_mask_storeu_ps(out + ch, m, finish16(acc, vlo, vhi, hs));
    }
  }
}

/* The interior of a row: a block of 16 channels at a time, its weights held in registers while
 * the block walks the row's pixels (up to 5x5 taps; more are read from memory). */
#define ROW_MAX_TAPS 25

/* `pixels` consecutive output pixels of one 16-channel block, one FMA chain each, from x (the
 * first pixel's first tap in row 0 at offset `at`). A `full` block (16 live channels) loads
 * and stores without the mask: on Zen 5 that made the 56x56x144 layer ~8% faster. */
static inline __attribute__((always_inline)) void dw_run(
    const int32_t pixels, const int full, const float *const *rows, int64_t at, int64_t step,
    int64_t tap_step,
    const int32_t k_h, const int32_t k_w, const __m512 *w, const float *weights,
    int32_t channels, int32_t ch, __mmask16 m, __m512 b, __m512 vlo, __m512 vhi, float *o,
    const int hs) {
  __m512 acc[8];
#pragma GCC unroll 8
  for (int32_t i = 0; i < pixels; ++i) acc[i] = _mm512_setzero_ps();
#pragma GCC unroll 5
  for (int32_t ky = 0; ky < k_h; ++ky) {
    const float *x = rows[ky] + at;
#pragma GCC unroll 5
    for (int32_t kx = 0; kx < k_w; ++kx, x += tap_step) {
      const int32_t t = ky * k_w + kx;
      const __m512 wt = k_h * k_w <= ROW_MAX_TAPS
                            ? w[t] : _mm512_maskz_loadu_ps(m, weights + (int64_t)t * channels + ch);
#pragma GCC unroll 8
      for (int32_t i = 0; i < pixels; ++i)
        acc[i] = _mm512_fmadd_ps(full ? _mm512_loadu_ps(x + i * step)
                                      : _mm512_maskz_loadu_ps(m, x + i * step), wt, acc[i]);
    }
  }
#pragma GCC unroll 8
  for (int32_t i = 0; i < pixels; ++i) {
    const __m512 v = finish16(_mm512_add_ps(acc[i], b), vlo, vhi, hs);
    if (full) {
      _mm512_storeu_ps(o + i * channels, v);
    } else {
      _mm512_mask_storeu_ps(o + i * channels, m, v);
    }
  }
}

static inline __attribute__((always_inline)) void dw_row(
    const eq_conv_params *p, const float *const *rows, int32_t ox0, int32_t ox1,
    const float *restrict weights, const float *restrict bias, float *restrict out_row,
    const int32_t k_h, const int32_t k_w, const int hs) {
  const int32_t channels = p->in_c, taps = k_h * k_w;
  const int64_t step = (int64_t)p->stride_w * channels;
  const int64_t tap_step = (int64_t)p->dilation_w * channels;
  const __m512 vlo = _mm512_set1_ps(p->act_min), vhi = _mm512_set1_ps(p->act_max);
  const int64_t ix0 = (int64_t)ox0 * p->stride_w - p->pad_left;
  for (int32_t ch = 0; ch < channels; ch += 16) {
    const int32_t n = channels - ch < 16 ? channels - ch : 16;
    const __mmask16 m = (__mmask16)((1u << n) - 1u);
    __m512 w[ROW_MAX_TAPS];
    if (taps <= ROW_MAX_TAPS) {
#pragma GCC unroll 25
      for (int32_t t = 0; t < taps; ++t)
        w[t] = _mm512_maskz_loadu_ps(m, weights + (int64_t)t * channels + ch);
    }
    const __m512 b = _mm512_maskz_loadu_ps(m, bias + ch);
    float *o = out_row + (int64_t)ox0 * channels + ch;
    int32_t ox = ox0;
#define RUN(pixels, full)                                                                \
  dw_run(pixels, full, rows, ix0 * channels + (ox - ox0) * step + ch, step, tap_step, k_h, k_w, \
         w, weights, channels, ch, m, b, vlo, vhi, o, hs)
    /* Eight pixels at a time where the weights leave registers for eight chains (two FMA
     * pipes of four cycles' latency, Zen 5, keep eight in flight), else four. The last
     * pixels of the row go as one run of as many chains as are left: one pixel at a time
     * waited for each FMA's latency (a row 5 wide, as in keyword spotting's 25x5 maps, took
     * twice as long as one run of 5). */
#define RUN_REST(full)                                                                   \
  do {                                                                                   \
    switch (ox1 - ox) {                                                                  \
      case 7: RUN(7, full); break;                                                       \
      case 6: RUN(6, full); break;                                                       \
      case 5: RUN(5, full); break;                                                       \
      case 4: RUN(4, full); break;                                                       \
      case 3: RUN(3, full); break;                                                       \
      case 2: RUN(2, full); break;                                                       \
      case 1: RUN(1, full); break;                                                       \
      default: break;                                                                    \
    }                                                                                    \
  } while (0)
#define RUNS(full)                                                                       \
  do {                                                                                   \
    if (taps <= 9) {                                                                     \
      for (; ox + 8 <= ox1; ox += 8, o += 8 * channels) RUN(8, full);                    \
    } else {                                                                             \
      for (; ox + 4 <= ox1; ox += 4, o += 4 * channels) RUN(4, full);                    \
    }                                                                                    \
    RUN_REST(full);                                                                      \
  } while (0)
    if (n == 16) {
      RUNS(1);
    } else {
      RUNS(0);
    }
#undef RUNS
#undef RUN_REST
#undef RUN
  }
}

EQ_F32_DWCONV_ENTRIES(avx512)

/* --- Whole rows of small maps, padding included ------------------------------------------
 * A run of `pixels` output pixels (up to 8) of one row, for `blocks` blocks of 16 channels:
 * every input pixel of an input row is loaded once and feeds each of its kw taps' outputs
 * (3 or 5 loads per output instead of 9 or 25 on a 3x3 / 5x5 filter at stride 1), the bias
 * starts the sums, and columns or rows over the padding are skipped or read as zeros (a
 * masked load with an empty mask reads nothing), so there is no zero row and no padded copy.
 * A `plain` run (every column inside the width, 16 live channels) loads without masks.
 * Keyword spotting's 25x5x64 maps took 2.6 us a layer in the row kernel with its padded copy:
 * the per-row set-up and the copy cost more than the 45 FMAs of a 16-channel row. */
static inline __attribute__((always_inline)) void image_run(
    const int32_t pixels, const int32_t blocks, const int32_t k_w, const int32_t stride,
    const int plain, const eq_conv_params *p, const float *in, int32_t oy, int32_t ox,
    int32_t ch, const __mmask16 *m, const float *weights, const float *bias, __m512 vlo,
    __m512 vhi, float *o, const int hs) {
  const int64_t c = p->in_c, ix0 = (int64_t)ox * stride - p->pad_left;
  __m512 acc[2][8];
#pragma GCC unroll 2
  for (int32_t b = 0; b < blocks; ++b) {
    const __m512 start = _mm512_maskz_loadu_ps(m[b], bias + ch + 16 * b);
#pragma GCC unroll 8
    for (int32_t i = 0; i < pixels; ++i) acc[b][i] = start;
  }
  for (int32_t ky = 0; ky < p->k_h; ++ky) {
    const int64_t iy = (int64_t)oy * p->stride_h - p->pad_top + (int64_t)ky * p->dilation_h;
    if (iy < 0 || iy >= p->in_h) continue;
    const float *r = in + iy * p->in_w * c + ch;
    const float *wr = weights + (int64_t)ky * k_w * c + ch;
    __m512 w[2][5];
#pragma GCC unroll 2
    for (int32_t b = 0; b < blocks; ++b) {
#pragma GCC unroll 5
      for (int32_t kx = 0; kx < k_w; ++kx)
        w[b][kx] = plain ? _mm512_loadu_ps(wr + kx * c + 16 * b)
                         : _mm512_maskz_loadu_ps(m[b], wr + kx * c + 16 * b);
    }
    /* Input column j feeds output i through tap kx when j = i * stride + kx. (Loading all
     * columns first and then going tap by tap ran 5-20% slower.) */
#pragma GCC unroll 20
    for (int32_t j = 0; j < (pixels - 1) * stride + k_w; ++j) {
      const int64_t ix = ix0 + j;
      const int inside = plain || (ix >= 0 && ix < p->in_w);
      const float *x = r + (inside ? ix : 0) * c;
#pragma GCC unroll 2
      for (int32_t b = 0; b < blocks; ++b) {
        const __m512 v = plain ? _mm512_loadu_ps(x + 16 * b)
                               : _mm512_maskz_loadu_ps(inside ? m[b] : 0, x + 16 * b);
#pragma GCC unroll 5
        for (int32_t kx = 0; kx < k_w; ++kx) {
          const int32_t d = j - kx;
          if (d >= 0 && d % stride == 0 && d / stride < pixels)
            acc[b][d / stride] = _mm512_fmadd_ps(v, w[b][kx], acc[b][d / stride]);
        }
      }
    }
  }
#pragma GCC unroll 2
  for (int32_t b = 0; b < blocks; ++b) {
#pragma GCC unroll 8
    for (int32_t i = 0; i < pixels; ++i) {
      const __m512 v = finish16(acc[b][i], vlo, vhi, hs);
      if (plain) {
        _mm512_storeu_ps(o + i * c + 16 * b, v);
      } else {
        _mm512_mask_storeu_ps(o + i * c + 16 * b, m[b], v);
      }
    }
  }
}

static inline __attribute__((always_inline)) void image_rows(
    const eq_conv_params *p, const float *in, int32_t oy0, int32_t oy1, const float *weights,
    const float *bias, float *out, const int32_t k_w, const int32_t stride, const int hs) {
  const int32_t channels = p->in_c, width = p->out_w, rest = width % 8;
  const __m512 vlo = _mm512_set1_ps(p->act_min), vhi = _mm512_set1_ps(p->act_max);
  int32_t lo, hi;  /* the interior columns, where runs may go plain */
  eq_conv_interior_columns(p, &lo, &hi);
  for (int32_t oy = oy0; oy < oy1; ++oy) {
    float *out_row = out + (int64_t)oy * width * channels;
    /* Runs of 8 pixels, one block of channels at a time (8 FMA chains: two pipes of four
     * cycles' latency, Zen 5, keep eight in flight). */
    for (int32_t ch = 0; ch < channels && width >= 8; ch += 16) {
      const int32_t n = channels - ch < 16 ? channels - ch : 16;
      const __mmask16 m[2] = {(__mmask16)((1u << n) - 1u), 0};
      for (int32_t ox = 0; ox + 8 <= width; ox += 8) {
        float *o = out_row + (int64_t)ox * channels + ch;
        if (n == 16 && ox >= lo && ox + 8 <= hi) {
          image_run(8, 1, k_w, stride, 1, p, in, oy, ox, ch, m, weights, bias, vlo, vhi, o, hs);
        } else {
          image_run(8, 1, k_w, stride, 0, p, in, oy, ox, ch, m, weights, bias, vlo, vhi, o, hs);
        }
      }
    }
    /* The last `rest` pixels (a whole row of a map narrower than 8) for two blocks of
     * channels at a time, so that a 5-wide row still keeps ten chains in flight. */
    if (rest == 0) continue;
    const int32_t ox = width - rest;
    for (int32_t ch = 0; ch < channels; ch += 32) {
      const int32_t n = channels - ch;
      const __mmask16 m[2] = {(__mmask16)(n >= 16 ? 0xffffu : (1u << n) - 1u),
                              (__mmask16)(n >= 32 ? 0xffffu : n > 16 ? (1u << (n - 16)) - 1u
                                                                     : 0u)};
      float *o = out_row + (int64_t)ox * channels + ch;
#define RUN(pixels, blocks) \
  image_run(pixels, blocks, k_w, stride, 0, p, in, oy, ox, ch, m, weights, bias, vlo, vhi, o, hs)
#define RUN_BLOCKS(pixels) \
  do {                     \
    if (n > 16) {          \
      RUN(pixels, 2);      \
    } else {               \
      RUN(pixels, 1);      \
    }                      \
  } while (0)
      switch (rest) {
        case 7: RUN_BLOCKS(7); break;
        case 6: RUN_BLOCKS(6); break;
        case 5: RUN_BLOCKS(5); break;
        case 4: RUN_BLOCKS(4); break;
        case 3: RUN_BLOCKS(3); break;
        case 2: RUN_BLOCKS(2); break;
        default: RUN_BLOCKS(1); break;
      }
#undef RUN_BLOCKS
#undef RUN
    }
  }
}

EQ_F32_DWCONV_IMAGE_ENTRY(avx512)
