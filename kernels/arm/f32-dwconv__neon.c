/* f32 depthwise microkernels, AArch64 NEON: 4 channels per q register, the last block of a row
 * finished lane by lane. The pixel kernel sums the taps of each border pixel through its tap
 * pointers (3x3 unrolled, its pointers and weight rows held in registers); the row kernel holds a block's weights in registers while it walks the interior of
 * a row. 3x3 and 5x5 filters with stride 1 or 2 (and no dilation) take four output pixels at a
 * time and load each input column of the group once for all the pixels that read it (3x3: 6
 * columns per filter row at stride 1, 9 at stride 2, instead of 12; 18 or 27 loads for 36
 * FMAs). Other shapes go two pixels at a time, each tap loaded per pixel (1x1, 3x3 and 5x5
 * with their tap loops unrolled). A fused HARD_SWISH (eq_conv_params.hard_swish) goes over the
 * outputs just stored, still in L1, not in registers: edgeq/graph/graph.py fuses it only off ARM
 * (epilogue_fusion_pays), so this is for correctness, not speed. */
#include <arm_neon.h>
#include <math.h>

#include "edgeq/f32_gemm.h"
#include "edgeq/params/conv.h"

static inline float clampf(float v, float lo, float hi) { return v < lo ? lo : (v > hi ? hi : v); }

static inline float32x4_t clamp4(float32x4_t v, float32x4_t lo, float32x4_t hi) {
  return vminq_f32(hi, vmaxq_f32(lo, v));
}

/* HARD_SWISH of n stored outputs, in the op's order of operations (max/min keep a NaN). */
static void hard_swish_stored(float *o, int64_t n) {
  const float32x4_t three = vdupq_n_f32(3.0f), six = vdupq_n_f32(6.0f);
  int64_t i = 0;
  for (; i + 4 <= n; i += 4) {
    const float32x4_t x = vld1q_f32(o + i);
    const float32x4_t g = vminq_f32(six, vmaxq_f32(vdupq_n_f32(0.0f), vaddq_f32(x, three)));
    vst1q_f32(o + i, vdivq_f32(vmulq_f32(x, g), six));
  }
  for (; i < n; ++i) o[i] = eq_hard_swish_f32(o[i]);
}

/* One 4-channel block of a pixel: its taps' products in tap order, then the bias. */
#define PIXEL_BLOCK(TAP, TAPS)                                                               \
  do {                                                                                       \
    float32x4_t acc = vdupq_n_f32(0.0f);                                                     \
    _Pragma("GCC unroll 9") for (int32_t t = 0; t < (TAPS); ++t)                             \
      acc = vfmaq_f32(acc, vld1q_f32(TAP(t) + ch), vld1q_f32(weights + t * channels + ch));  \
    vst1q_f32(out + ch, clamp4(vaddq_f32(acc, vld1q_f32(bias + ch)), vlo, vhi));             \
  } while (0)
#define FROM_PTRS(t) ptrs[t]
#define FROM_TP(t) tp[t]

void eq_f32_dwconv__neon(int32_t pixels, int32_t channels, int32_t taps,
                         const float *const *ptrs, const float *weights, const float *bias,
                         float *out, float lo, float hi, int32_t hard_swish) {
  const float32x4_t vlo = vdupq_n_f32(lo), vhi = vdupq_n_f32(hi);
  if (hard_swish) {
    eq_f32_dwconv__neon(pixels, channels, taps, ptrs, weights, bias, out, lo, hi, 0);
    hard_swish_stored(out, (int64_t)pixels * channels);
    return;
  }
  for (int32_t px = 0; px < pixels; ++px, ptrs += taps, out += channels) {
    int32_t ch = 0;
    if (taps == 9) {  /* 3x3 (MobileNets' border pixels): the 9 tap pointers in registers */
      const float *tp[9];
#pragma GCC unroll 9
      for (int32_t t = 0; t < 9; ++t) tp[t] = ptrs[t];
      for (; ch + 4 <= channels; ch += 4) PIXEL_BLOCK(FROM_TP, 9);
    } else {
      for (; ch + 4 <= channels; ch += 4) PIXEL_BLOCK(FROM_PTRS, taps);
    }
    for (; ch < channels; ++ch) {
      float acc = 0.0f;
      for (int32_t t = 0; t < taps; ++t) acc = fmaf(ptrs[t][ch], weights[t * channels + ch], acc);
      out[ch] = clampf(acc + bias[ch], lo, hi);
    }
  }
}

#define ROW_MAX_TAPS 9

static inline __attribute__((always_inline)) void dw_row(
    const eq_conv_params *p, const float *const *rows, int32_t ox0, int32_t ox1,
    const float *restrict weights, const float *restrict bias, float *restrict out_row,
    const int32_t k_h, const int32_t k_w, int32_t ch) {
  const int32_t channels = p->in_c, taps = k_h * k_w;
  const int64_t step = (int64_t)p->stride_w * channels;
  const int64_t tap_step = (int64_t)p->dilation_w * channels;
  const float32x4_t vlo = vdupq_n_f32(p->act_min), vhi = vdupq_n_f32(p->act_max);
  const int64_t ix0 = (int64_t)ox0 * p->stride_w - p->pad_left;
  for (; ch + 4 <= channels; ch += 4) {
    float32x4_t w[ROW_MAX_TAPS];
    if (taps <= ROW_MAX_TAPS) {
#pragma GCC unroll 9
      for (int32_t t = 0; t < taps; ++t) w[t] = vld1q_f32(weights + t * channels + ch);
    }
#define WEIGHT(t) (taps <= ROW_MAX_TAPS ? w[t] : vld1q_f32(weights + (t) * channels + ch))
    const float32x4_t b = vld1q_f32(bias + ch);
    float *o = out_row + (int64_t)ox0 * channels + ch;
    int32_t ox = ox0;
    for (; ox + 2 <= ox1; ox += 2, o += 2 * channels) {
      const int64_t at = ix0 * channels + (ox - ox0) * step + ch;
      float32x4_t acc0 = vdupq_n_f32(0.0f), acc1 = acc0;
#pragma GCC unroll 5
      for (int32_t ky = 0; ky < k_h; ++ky) {
        const float *x = rows[ky] + at;
#pragma GCC unroll 5
        for (int32_t kx = 0; kx < k_w; ++kx, x += tap_step) {
          const float32x4_t wt = WEIGHT(ky * k_w + kx);
          acc0 = vfmaq_f32(acc0, vld1q_f32(x), wt);
          acc1 = vfmaq_f32(acc1, vld1q_f32(x + step), wt);
        }
      }
      vst1q_f32(o, clamp4(vaddq_f32(acc0, b), vlo, vhi));
      vst1q_f32(o + channels, clamp4(vaddq_f32(acc1, b), vlo, vhi));
    }
    for (; ox < ox1; ++ox, o += channels) {
      const int64_t at = ix0 * channels + (ox - ox0) * step + ch;
      float32x4_t acc = vdupq_n_f32(0.0f);
#pragma GCC unroll 5
      for (int32_t ky = 0; ky < k_h; ++ky) {
        const float *x = rows[ky] + at;
#pragma GCC unroll 5
        for (int32_t kx = 0; kx < k_w; ++kx, x += tap_step)
          acc = vfmaq_f32(acc, vld1q_f32(x), WEIGHT(ky * k_w + kx));
      }
      vst1q_f32(o, clamp4(vaddq_f32(acc, b), vlo, vhi));
    }
#undef WEIGHT
  }
  for (; ch < channels; ++ch) {  /* the channels past the last whole q register */
    for (int32_t ox = ox0; ox < ox1; ++ox) {
      const int64_t at = (ix0 + (int64_t)(ox - ox0) * p->stride_w) * channels + ch;
      float acc = 0.0f;
      for (int32_t ky = 0; ky < k_h; ++ky)
        for (int32_t kx = 0; kx < k_w; ++kx)
          acc = fmaf(rows[ky][at + kx * tap_step], weights[(ky * k_w + kx) * channels + ch], acc);
      out_row[(int64_t)ox * channels + ch] = clampf(acc + bias[ch], p->act_min, p->act_max);
    }
  }
}

/* Four output pixels of one 4-channel block, at o, o + C, ... from the input columns at
 * x[ky] (advanced past the group): K x K (3 or 5), dilation 1, stride S (1 or 2). Each input
 * column of the group is loaded once for all the pixels that read it. A 3x3 block's weights
 * come from w (registers); a 5x5 one's are loaded from wp, one filter row at a time. Each pixel
 * starts from its first product and adds the others in (ky, kx) order, then the bias. */
static inline __attribute__((always_inline)) void dw_group4(
    const float **x, float *o, const float32x4_t *w, const float *wp, int64_t C,
    float32x4_t b, float32x4_t vlo, float32x4_t vhi, const int32_t K, const int32_t S) {
  float32x4_t acc[4];
#pragma GCC unroll 5
  for (int32_t ky = 0; ky < K; ++ky) {
    float32x4_t col[11], wr[5];  /* the group's window columns 0 .. 3S + K - 1 */
#pragma GCC unroll 11
    for (int32_t j = 0; j < 3 * S + K; ++j) col[j] = vld1q_f32(x[ky] + j * C);
    x[ky] += 4 * S * C;
#pragma GCC unroll 5
    for (int32_t kx = 0; kx < K; ++kx)
      wr[kx] = K * K <= 9 ? w[ky * K + kx] : vld1q_f32(wp + (ky * K + kx) * C);
#pragma GCC unroll 4
    for (int32_t px = 0; px < 4; ++px) {
#pragma GCC unroll 5
      for (int32_t kx = 0; kx < K; ++kx) {
        const float32x4_t v = col[px * S + kx];
        acc[px] = ky == 0 && kx == 0 ? vmulq_f32(v, wr[kx]) : vfmaq_f32(acc[px], v, wr[kx]);
      }
    }
  }
#pragma GCC unroll 4
  for (int32_t px = 0; px < 4; ++px)
    vst1q_f32(o + px * C, clamp4(vaddq_f32(acc[px], b), vlo, vhi));
}

/* A row's interior for K x K (3 or 5), dilation 1, stride S (1 or 2): four pixels at a time
 * (a 3x3 block's weights held in registers for the whole row), then one at a time, or, when
 * three are left, one more group of four overlapping the previous one by a pixel (cheaper than
 * three single pixels; it writes the same values again). */
static inline __attribute__((always_inline)) void dw_square_row(
    const eq_conv_params *p, const float *const *rows, int32_t ox0, int32_t ox1,
    const float *restrict weights, const float *restrict bias, float *restrict out_row,
    const int32_t K, const int32_t S) {
  const int32_t channels = p->in_c;
  const int64_t C = channels;
  const float32x4_t vlo = vdupq_n_f32(p->act_min), vhi = vdupq_n_f32(p->act_max);
  const int64_t ix0 = (int64_t)ox0 * S - p->pad_left;
  const int held = K * K <= 9;
  int32_t ch = 0;
  for (; ch + 4 <= channels; ch += 4) {
    float32x4_t w[9];
    if (held) {
#pragma GCC unroll 9
      for (int32_t t = 0; t < K * K; ++t) w[t] = vld1q_f32(weights + t * C + ch);
    }
#define WEIGHT(t) (held ? w[t] : vld1q_f32(weights + (t) * C + ch))
    const float32x4_t b = vld1q_f32(bias + ch);
    const float *x[5];
#pragma GCC unroll 5
    for (int32_t ky = 0; ky < K; ++ky) x[ky] = rows[ky] + ix0 * C + ch;
    float *o = out_row + (int64_t)ox0 * C + ch;
    int32_t ox = ox0;
    for (; ox + 4 <= ox1; ox += 4, o += 4 * C)
      dw_group4(x, o, w, weights + ch, C, b, vlo, vhi, K, S);
    if (ox1 - ox == 3 && ox1 - ox0 >= 4) {
#pragma GCC unroll 5
      for (int32_t ky = 0; ky < K; ++ky) x[ky] -= S * C;
      dw_group4(x, o - C, w, weights + ch, C, b, vlo, vhi, K, S);
      ox = ox1;
    }
    for (; ox < ox1; ++ox, o += C) {
      float32x4_t acc = vmulq_f32(vld1q_f32(x[0]), WEIGHT(0));
#pragma GCC unroll 5
      for (int32_t ky = 0; ky < K; ++ky) {
#pragma GCC unroll 5
        for (int32_t kx = ky == 0; kx < K; ++kx)
          acc = vfmaq_f32(acc, vld1q_f32(x[ky] + kx * C), WEIGHT(ky * K + kx));
        x[ky] += S * C;
      }
      vst1q_f32(o, clamp4(vaddq_f32(acc, b), vlo, vhi));
    }
#undef WEIGHT
  }
  if (ch < channels) dw_row(p, rows, ox0, ox1, weights, bias, out_row, K, K, ch);
}

void eq_f32_dwconv_row__neon(const eq_conv_params *p, const float *const *rows, int32_t ox0,
                             int32_t ox1, const float *weights, const float *bias,
                             float *out_row) {
  const int k = p->k_h == p->k_w && (p->k_h == 3 || p->k_h == 5) ? p->k_h : 0;
  /* rows[] already holds dilation_h: only the width's dilation and stride matter here */
  const int sliding = k && p->dilation_w == 1 && (p->stride_w == 1 || p->stride_w == 2);
  if (sliding && k == 3 && p->stride_w == 1) {
    dw_square_row(p, rows, ox0, ox1, weights, bias, out_row, 3, 1);
  } else if (sliding && k == 3) {
    dw_square_row(p, rows, ox0, ox1, weights, bias, out_row, 3, 2);
  } else if (sliding && p->stride_w == 1) {
    dw_square_row(p, rows, ox0, ox1, weights, bias, out_row, 5, 1);
  } else if (sliding) {
    dw_square_row(p, rows, ox0, ox1, weights, bias, out_row, 5, 2);
  } else if (k == 3) {
    dw_row(p, rows, ox0, ox1, weights, bias, out_row, 3, 3, 0);
  } else if (k == 5) {
    dw_row(p, rows, ox0, ox1, weights, bias, out_row, 5, 5, 0);
  } else if (p->k_h == 1 && p->k_w == 1) {  /* a per-channel scale and bias (BlazePalm-style) */
    dw_row(p, rows, ox0, ox1, weights, bias, out_row, 1, 1, 0);
  } else {
    dw_row(p, rows, ox0, ox1, weights, bias, out_row, p->k_h, p->k_w, 0);
  }
  if (p->hard_swish && ox1 > ox0)
    hard_swish_stored(out_row + (int64_t)ox0 * p->in_c, (int64_t)(ox1 - ox0) * p->in_c);
}
