/* f32 depthwise microkernels, AArch64 NEON: 4 channels per q register, the last block of a row
 * finished lane by lane. The pixel kernel sums the taps of each border pixel through its tap
 * pointers; the row kernel holds a block's 3x3 weights in registers while it walks the
 * interior of a row, two pixels at a time for two FMA chains. */
#include <arm_neon.h>
#include <math.h>

#include "edgeq/f32_gemm.h"
#include "edgeq/params/conv.h"

static inline float clampf(float v, float lo, float hi) { return v < lo ? lo : (v > hi ? hi : v); }

static inline float32x4_t clamp4(float32x4_t v, float32x4_t lo, float32x4_t hi) {
  return vminq_f32(hi, vmaxq_f32(lo, v));
}

void eq_f32_dwconv__neon(int32_t pixels, int32_t channels, int32_t taps,
                         const float *const *ptrs, const float *weights, const float *bias,
                         float *out, float lo, float hi) {
  const float32x4_t vlo = vdupq_n_f32(lo), vhi = vdupq_n_f32(hi);
  for (int32_t px = 0; px < pixels; ++px, ptrs += taps, out += channels) {
    int32_t ch = 0;
    for (; ch + 4 <= channels; ch += 4) {
      float32x4_t acc = vdupq_n_f32(0.0f);
      for (int32_t t = 0; t < taps; ++t)
        acc = vfmaq_f32(acc, vld1q_f32(ptrs[t] + ch), vld1q_f32(weights + t * channels + ch));
      vst1q_f32(out + ch, clamp4(vaddq_f32(acc, vld1q_f32(bias + ch)), vlo, vhi));
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
    const int32_t k_h, const int32_t k_w) {
  const int32_t channels = p->in_c, taps = k_h * k_w;
  const int64_t step = (int64_t)p->stride_w * channels;
  const int64_t tap_step = (int64_t)p->dilation_w * channels;
  const float32x4_t vlo = vdupq_n_f32(p->act_min), vhi = vdupq_n_f32(p->act_max);
  const int64_t ix0 = (int64_t)ox0 * p->stride_w - p->pad_left;
  int32_t ch = 0;
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

void eq_f32_dwconv_row__neon(const eq_conv_params *p, const float *const *rows, int32_t ox0,
                             int32_t ox1, const float *weights, const float *bias,
                             float *out_row) {
  if (p->k_h == 3 && p->k_w == 3) {
    dw_row(p, rows, ox0, ox1, weights, bias, out_row, 3, 3);
  } else if (p->k_h == 5 && p->k_w == 5) {
    dw_row(p, rows, ox0, ox1, weights, bias, out_row, 5, 5);
  } else {
    dw_row(p, rows, ox0, ox1, weights, bias, out_row, p->k_h, p->k_w);
  }
}
