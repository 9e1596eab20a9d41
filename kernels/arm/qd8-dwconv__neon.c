/* QD8 depthwise microkernels for AArch64 NEON (every ARM level uses them). The pixel kernel
 * (border pixels): 16 channels per step, then 4, then one by one; each step loads a weight for
 * every input it multiplies. The run kernel (the interior of a row, params/qd8.h): a 3x3
 * filter's 9 weights of 4 channels stay in registers while it walks the run two pixels at a
 * time, so a MAC costs one load and one FMA. On the integer grid of params/qd8.h the FMAs are
 * exact, so the sums equal the reference's whatever the order; the epilogue rounds the scale
 * product, the product and the sum separately, as the reference does. */
#include "qd8_neon.h"

/* The 16 channels at c of one pixel, finished. */
static inline void store16(float *out, float32x4_t a0, float32x4_t a1, float32x4_t a2,
                           float32x4_t a3, float32x4_t vscale, const float *w_scale,
                           const float *bias, float32x4_t lo, float32x4_t hi) {
  vst1q_f32(out, qd8_neon_finish4(a0, vscale, w_scale, bias, lo, hi));
  vst1q_f32(out + 4, qd8_neon_finish4(a1, vscale, w_scale + 4, bias + 4, lo, hi));
  vst1q_f32(out + 8, qd8_neon_finish4(a2, vscale, w_scale + 8, bias + 8, lo, hi));
  vst1q_f32(out + 12, qd8_neon_finish4(a3, vscale, w_scale + 12, bias + 12, lo, hi));
}

/* (Plain loads: GCC 12 keeps the 4-register tuples of vld1q_f32_x4 on the stack.) */
#define QD8_DW_TAP(x, k)                                                \
  {                                                                     \
    const float *xp = (x), *kp = (k);                                   \
    a0 = vfmaq_f32(a0, vld1q_f32(xp), vld1q_f32(kp));                   \
    a1 = vfmaq_f32(a1, vld1q_f32(xp + 4), vld1q_f32(kp + 4));           \
    a2 = vfmaq_f32(a2, vld1q_f32(xp + 8), vld1q_f32(kp + 8));           \
    a3 = vfmaq_f32(a3, vld1q_f32(xp + 12), vld1q_f32(kp + 12));         \
  }

void eq_qd8_dwconv__neon(size_t channels, size_t taps, const float *const *rows,
                         const float *weights, float *out, float scale, const float *w_scale,
                         const float *bias, float act_min, float act_max) {
  const float32x4_t vscale = vdupq_n_f32(scale);
  const float32x4_t lo = vdupq_n_f32(act_min), hi = vdupq_n_f32(act_max);
  size_t c = 0;
  for (; c + 16 <= channels; c += 16) {
    float32x4_t a0 = vdupq_n_f32(0.0f), a1 = a0, a2 = a0, a3 = a0;
    const float *w = weights + c;
    for (size_t t = 0; t < taps; ++t, w += channels) {
      if (rows[t] != NULL) QD8_DW_TAP(rows[t] + c, w)
    }
    store16(out + c, a0, a1, a2, a3, vscale, w_scale + c, bias + c, lo, hi);
  }
  for (; c + 4 <= channels; c += 4) {
    float32x4_t acc = vdupq_n_f32(0.0f);
    for (size_t t = 0; t < taps; ++t) {
      if (rows[t] != NULL) {
        acc = vfmaq_f32(acc, vld1q_f32(rows[t] + c), vld1q_f32(weights + t * channels + c));
      }
    }
    vst1q_f32(out + c, qd8_neon_finish4(acc, vscale, w_scale + c, bias + c, lo, hi));
  }
  for (; c < channels; ++c) {  /* the reference's loop */
    float acc = 0.0f;
    for (size_t t = 0; t < taps; ++t) {
      if (rows[t] != NULL) acc += rows[t][c] * weights[t * channels + c];
    }
    const float v = acc * (scale * w_scale[c]) + bias[c];
    out[c] = v < act_min ? act_min : (v > act_max ? act_max : v);
  }
}

/* The 9 taps at x (pixel offset o) against weights k0..k8 (names fixed by the caller). */
#define QD8_DW9(acc, o)                                                          \
  acc = vfmaq_f32(acc, vld1q_f32(x0 + (o)), k0);                                \
  acc = vfmaq_f32(acc, vld1q_f32(x1 + (o)), k1);                                \
  acc = vfmaq_f32(acc, vld1q_f32(x2 + (o)), k2);                                \
  acc = vfmaq_f32(acc, vld1q_f32(x3 + (o)), k3);                                \
  acc = vfmaq_f32(acc, vld1q_f32(x4 + (o)), k4);                                \
  acc = vfmaq_f32(acc, vld1q_f32(x5 + (o)), k5);                                \
  acc = vfmaq_f32(acc, vld1q_f32(x6 + (o)), k6);                                \
  acc = vfmaq_f32(acc, vld1q_f32(x7 + (o)), k7);                                \
  acc = vfmaq_f32(acc, vld1q_f32(x8 + (o)), k8)

/* 9 taps, all inside (rows non-NULL): 4 channels at a time over the whole run. */
static void run9(size_t pixels, size_t step, size_t channels, const float *const *rows,
                 const float *weights, float *out, float scale, const float *w_scale,
                 const float *bias, float act_min, float act_max) {
  const float32x4_t lo = vdupq_n_f32(act_min), hi = vdupq_n_f32(act_max);
  const float32x4_t vscale = vdupq_n_f32(scale);
  size_t c = 0;
  for (; c + 4 <= channels; c += 4) {
    const float *w = weights + c;
    const float32x4_t k0 = vld1q_f32(w), k1 = vld1q_f32(w + channels);
    const float32x4_t k2 = vld1q_f32(w + 2 * channels), k3 = vld1q_f32(w + 3 * channels);
    const float32x4_t k4 = vld1q_f32(w + 4 * channels), k5 = vld1q_f32(w + 5 * channels);
    const float32x4_t k6 = vld1q_f32(w + 6 * channels), k7 = vld1q_f32(w + 7 * channels);
    const float32x4_t k8 = vld1q_f32(w + 8 * channels);
    const float32x4_t s = vmulq_f32(vscale, vld1q_f32(w_scale + c)), b = vld1q_f32(bias + c);
    const float *x0 = rows[0] + c, *x1 = rows[1] + c, *x2 = rows[2] + c, *x3 = rows[3] + c;
    const float *x4 = rows[4] + c, *x5 = rows[5] + c, *x6 = rows[6] + c, *x7 = rows[7] + c;
    const float *x8 = rows[8] + c;
    float *o = out + c;
    size_t px = 0, at = 0;
    for (; px + 2 <= pixels; px += 2, at += 2 * step, o += 2 * channels) {
      float32x4_t acc0 = vdupq_n_f32(0.0f), acc1 = acc0;
      QD8_DW9(acc0, at);
      QD8_DW9(acc1, at + step);
      vst1q_f32(o, vminq_f32(vmaxq_f32(vaddq_f32(vmulq_f32(acc0, s), b), lo), hi));
      vst1q_f32(o + channels, vminq_f32(vmaxq_f32(vaddq_f32(vmulq_f32(acc1, s), b), lo), hi));
    }
    if (px < pixels) {
      float32x4_t acc0 = vdupq_n_f32(0.0f);
      QD8_DW9(acc0, at);
      vst1q_f32(o, vminq_f32(vmaxq_f32(vaddq_f32(vmulq_f32(acc0, s), b), lo), hi));
    }
  }
  for (; c < channels; ++c) {  /* the reference's loop */
    for (size_t px = 0; px < pixels; ++px) {
      float acc = 0.0f;
      for (size_t t = 0; t < 9; ++t) acc += rows[t][px * step + c] * weights[t * channels + c];
      const float v = acc * (scale * w_scale[c]) + bias[c];
      out[px * channels + c] = v < act_min ? act_min : (v > act_max ? act_max : v);
    }
  }
}

void eq_qd8_dwconv_run__neon(size_t pixels, size_t step, size_t channels, size_t taps,
                             const float *const *rows, const float *weights, float *out,
                             float scale, const float *w_scale, const float *bias,
                             float act_min, float act_max) {
  int inside = taps == 9;
  for (size_t t = 0; t < taps && inside; ++t) inside = rows[t] != NULL;
  if (inside) {
    run9(pixels, step, channels, rows, weights, out, scale, w_scale, bias, act_min, act_max);
    return;
  }
  const float *at[EQ_QD8_MAX_DW_TAPS];
  for (size_t px = 0; px < pixels; ++px) {  /* other filters, and the rows along the padding */
    for (size_t t = 0; t < taps; ++t) at[t] = rows[t] != NULL ? rows[t] + px * step : NULL;
    eq_qd8_dwconv__neon(channels, taps, at, weights, out + px * channels, scale, w_scale, bias,
                        act_min, act_max);
  }
}
