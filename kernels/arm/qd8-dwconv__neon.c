/* QD8 depthwise microkernels for AArch64 NEON (every ARM level uses them). The pixel kernel
 * (border pixels): 16 channels per step, then 4, then one by one; each step loads a weight for
 * every input it multiplies. The run kernels (the interior of a row, params/qd8.h): a 3x3
 * filter's 9 weights of 4 channels stay in registers while it walks the run, 4 pixels at a time
 * sharing their inputs at stride 1, else two at a time; a 5x5 filter's 25, one pixel at a time. On the integer grid of
 * params/qd8.h the FMAs are exact, so the sums equal the reference's whatever the order; the
 * epilogue rounds the scale product, the product and the sum separately, as the reference
 * does. */
#include <stddef.h>

#include "qd8_neon.h"

static inline float32x4_t finish16_part(float32x4_t acc, float32x4_t scale, const float *w_scale,
                                        const float *bias, float32x4_t lo, float32x4_t hi) {
  return qd8_neon_epilogue4(acc, scale, vld1q_f32(w_scale), vld1q_f32(bias), lo, hi);
}

/* The 16 channels at c of one pixel, finished. */
static inline void store16(float *out, float32x4_t a0, float32x4_t a1, float32x4_t a2,
                           float32x4_t a3, float32x4_t vscale, const float *w_scale,
                           const float *bias, float32x4_t lo, float32x4_t hi) {
  vst1q_f32(out, finish16_part(a0, vscale, w_scale, bias, lo, hi));
  vst1q_f32(out + 4, finish16_part(a1, vscale, w_scale + 4, bias + 4, lo, hi));
  vst1q_f32(out + 8, finish16_part(a2, vscale, w_scale + 8, bias + 8, lo, hi));
  vst1q_f32(out + 12, finish16_part(a3, vscale, w_scale + 12, bias + 12, lo, hi));
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
    vst1q_f32(out + c, finish16_part(acc, vscale, w_scale + c, bias + c, lo, hi));
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

/* The 9 taps at x0..x8 (pixel offset o) against weights k0..k8 (names fixed by the caller). */
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

/* One filter row at stride 1 for 4 pixels: the row's pixels 0..5, each loaded once and used by
 * the (up to) three outputs whose filter it falls under. */
#define QD8_DW_SLIDE4(x, ka, kb, kc)                                              \
  {                                                                              \
    float32x4_t i = vld1q_f32(x);                                                \
    acc0 = vfmaq_f32(acc0, i, ka);                                               \
    i = vld1q_f32((x) + step);                                                   \
    acc0 = vfmaq_f32(acc0, i, kb);                                               \
    acc1 = vfmaq_f32(acc1, i, ka);                                               \
    QD8_DW_SLIDE_IN(x, 2, kc, kb, ka, acc0, acc1, acc2)                          \
    QD8_DW_SLIDE_IN(x, 3, kc, kb, ka, acc1, acc2, acc3)                          \
    i = vld1q_f32((x) + 4 * step);                                               \
    acc2 = vfmaq_f32(acc2, i, kc);                                               \
    acc3 = vfmaq_f32(acc3, i, kb);                                               \
    i = vld1q_f32((x) + 5 * step);                                               \
    acc3 = vfmaq_f32(acc3, i, kc);                                               \
  }
/* Input pixel j of the row: the last tap of out_a, the middle one of out_b, the first of out_c. */
#define QD8_DW_SLIDE_IN(x, j, kc, kb, ka, out_a, out_b, out_c) \
  i = vld1q_f32((x) + (j) * step);                            \
  out_a = vfmaq_f32(out_a, i, kc);                            \
  out_b = vfmaq_f32(out_b, i, kb);                            \
  out_c = vfmaq_f32(out_c, i, ka);

static inline float32x4_t finish(float32x4_t acc, float32x4_t s, float32x4_t b,
                                 float32x4_t lo, float32x4_t hi) {
  return vminq_f32(vmaxq_f32(vaddq_f32(vmulq_f32(acc, s), b), lo), hi);
}

/* A 3x3 filter over a run. A tap in the padding (NULL, a whole filter row) gets zero weights and
 * the pointer of a tap that is there: it adds x * 0 = 0 (x is finite on the grid), exactly. With stride 1 and no dilation
 * (each row's taps one step apart) 4 pixels share their inputs: 6 loads per filter row for 12
 * FMAs (8 pixels measured no better: their accumulators spill). */
static void run3x3(size_t pixels, size_t step, size_t channels, const float *const *rows_in,
                   const float *weights, float *out, float scale, const float *w_scale,
                   const float *bias, float act_min, float act_max) {
  const float *rows[9], *any = NULL;
  int live[9], full = -1;  /* full: a filter row (3 taps) wholly there */
  for (int t = 0; t < 9; ++t) {
    live[t] = rows_in[t] != NULL;
    any = any != NULL ? any : rows_in[t];
  }
  for (int g = 0; g < 3 && full < 0; ++g) {
    full = live[3 * g] && live[3 * g + 1] && live[3 * g + 2] ? g : -1;
  }
  for (int t = 0; t < 9; ++t) {
    const int row_gone = !live[t - t % 3] && !live[t - t % 3 + 1] && !live[t - t % 3 + 2];
    rows[t] = live[t] ? rows_in[t] : row_gone && full >= 0 ? rows_in[3 * full + t % 3] : any;
  }
  int slide = 1;
  for (int g = 0; g < 3; ++g) {
    slide &= rows[3 * g + 1] == rows[3 * g] + step && rows[3 * g + 2] == rows[3 * g] + 2 * step;
  }
  const float32x4_t lo = vdupq_n_f32(act_min), hi = vdupq_n_f32(act_max);
  const float32x4_t vscale = vdupq_n_f32(scale), zero = vdupq_n_f32(0.0f);
  float on[12] = {0};
  for (int t = 0; t < 9; ++t) on[t] = live[t] ? 1.0f : 0.0f;
  const float32x4_t m0 = vld1q_f32(on), m1 = vld1q_f32(on + 4), m2 = vld1q_f32(on + 8);
  size_t c = 0;
  for (; c + 4 <= channels; c += 4) {
    const float *w = weights + c;
    /* A tap's weights times 1 or 0 (exact): no branch per tap. */
#define QD8_DW_W(t, m, l) vmulq_laneq_f32(vld1q_f32(w + (t) * channels), m, l)
    const float32x4_t k0 = QD8_DW_W(0, m0, 0), k1 = QD8_DW_W(1, m0, 1), k2 = QD8_DW_W(2, m0, 2);
    const float32x4_t k3 = QD8_DW_W(3, m0, 3), k4 = QD8_DW_W(4, m1, 0), k5 = QD8_DW_W(5, m1, 1);
    const float32x4_t k6 = QD8_DW_W(6, m1, 2), k7 = QD8_DW_W(7, m1, 3), k8 = QD8_DW_W(8, m2, 0);
#undef QD8_DW_W
    const float32x4_t s = vmulq_f32(vscale, vld1q_f32(w_scale + c)), b = vld1q_f32(bias + c);
    const float *x0 = rows[0] + c, *x1 = rows[1] + c, *x2 = rows[2] + c, *x3 = rows[3] + c;
    const float *x4 = rows[4] + c, *x5 = rows[5] + c, *x6 = rows[6] + c, *x7 = rows[7] + c;
    const float *x8 = rows[8] + c;
    float *o = out + c;
    size_t px = 0, at = 0;
    if (slide) {
      for (; px + 4 <= pixels; px += 4, at += 4 * step, o += 4 * channels) {
        float32x4_t acc0 = zero, acc1 = zero, acc2 = zero, acc3 = zero;
        QD8_DW_SLIDE4(x0 + at, k0, k1, k2)
        QD8_DW_SLIDE4(x3 + at, k3, k4, k5)
        QD8_DW_SLIDE4(x6 + at, k6, k7, k8)
        vst1q_f32(o, finish(acc0, s, b, lo, hi));
        vst1q_f32(o + channels, finish(acc1, s, b, lo, hi));
        vst1q_f32(o + 2 * channels, finish(acc2, s, b, lo, hi));
        vst1q_f32(o + 3 * channels, finish(acc3, s, b, lo, hi));
      }
    }
    for (; px + 2 <= pixels; px += 2, at += 2 * step, o += 2 * channels) {
      float32x4_t acc0 = zero, acc1 = zero;
      QD8_DW9(acc0, at);
      QD8_DW9(acc1, at + step);
      vst1q_f32(o, finish(acc0, s, b, lo, hi));
      vst1q_f32(o + channels, finish(acc1, s, b, lo, hi));
    }
    if (px < pixels) {
      float32x4_t acc0 = zero;
      QD8_DW9(acc0, at);
      vst1q_f32(o, finish(acc0, s, b, lo, hi));
    }
  }
  for (; c < channels; ++c) {  /* the reference's loop */
    for (size_t px = 0; px < pixels; ++px) {
      float acc = 0.0f;
      for (size_t t = 0; t < 9; ++t) {
        if (live[t]) acc += rows[t][px * step + c] * weights[t * channels + c];
      }
      const float v = acc * (scale * w_scale[c]) + bias[c];
      out[px * channels + c] = v < act_min ? act_min : (v > act_max ? act_max : v);
    }
  }
}

/* One filter row of 5 taps for one pixel: the row's taps at x, x + d, ..., x + 4 d. */
#define QD8_DW_ROW5(acc, x, ka, kb, kc, kd, ke)  \
  acc = vfmaq_f32(acc, vld1q_f32(x), ka);         \
  acc = vfmaq_f32(acc, vld1q_f32((x) + d), kb);   \
  acc = vfmaq_f32(acc, vld1q_f32((x) + d2), kc);  \
  acc = vfmaq_f32(acc, vld1q_f32((x) + d3), kd);  \
  acc = vfmaq_f32(acc, vld1q_f32((x) + d4), ke)

/* A 5x5 filter over a run, one pixel at a time (the 25 weights of 4 channels fill the registers
 * that a second pixel's would need): per pixel and 4 channels 25 loads and 25 FMAs, the 5 filter
 * rows addressed from their first tap with the taps' common spacing d. A filter row in the
 * padding (NULL) gets zero weights and a row that is there, as in run3x3. Returns 0, computing
 * nothing, unless every filter row is wholly there or wholly absent with its taps d apart (the
 * driver's rows always are, for a 5x5 filter). */
static int run5x5(size_t pixels, size_t step, size_t channels, const float *const *rows_in,
                  const float *weights, float *out, float scale, const float *w_scale,
                  const float *bias, float act_min, float act_max) {
  const float *base[5] = {NULL, NULL, NULL, NULL, NULL}, *any = NULL;
  ptrdiff_t d = 0;
  float on[8] = {0};
  for (int g = 0; g < 5; ++g) {
    const float *const *r = rows_in + 5 * g;
    if (r[0] == NULL) {
      if (r[1] != NULL || r[2] != NULL || r[3] != NULL || r[4] != NULL) return 0;
      continue;
    }
    if (r[1] == NULL || r[2] == NULL || r[3] == NULL || r[4] == NULL) return 0;
    if (any == NULL) {
      any = r[0];
      d = r[1] - r[0];
    }
    for (int t = 1; t < 5; ++t) {
      if (r[t] != r[0] + t * d) return 0;
    }
    base[g] = r[0];
    on[g] = 1.0f;
  }
  if (any == NULL) return 0;
  for (int g = 0; g < 5; ++g) base[g] = base[g] != NULL ? base[g] : any;
  const ptrdiff_t d2 = 2 * d, d3 = 3 * d, d4 = 4 * d;
  const float32x4_t lo = vdupq_n_f32(act_min), hi = vdupq_n_f32(act_max);
  const float32x4_t vscale = vdupq_n_f32(scale), zero = vdupq_n_f32(0.0f);
  const float32x4_t m0 = vld1q_f32(on), m1 = vld1q_f32(on + 4);
  size_t c = 0;
  for (; c + 4 <= channels; c += 4) {
    const float *w = weights + c;
    /* Filter row g's weights times 1 or 0 (exact). */
#define QD8_DW_W(t, m, l) vmulq_laneq_f32(vld1q_f32(w + (t) * channels), m, l)
#define QD8_DW_WROW(g, m, l)                                                                 \
  const float32x4_t k##g##0 = QD8_DW_W(5 * (g), m, l), k##g##1 = QD8_DW_W(5 * (g) + 1, m, l); \
  const float32x4_t k##g##2 = QD8_DW_W(5 * (g) + 2, m, l);                                    \
  const float32x4_t k##g##3 = QD8_DW_W(5 * (g) + 3, m, l);                                    \
  const float32x4_t k##g##4 = QD8_DW_W(5 * (g) + 4, m, l)
    QD8_DW_WROW(0, m0, 0);
    QD8_DW_WROW(1, m0, 1);
    QD8_DW_WROW(2, m0, 2);
    QD8_DW_WROW(3, m0, 3);
    QD8_DW_WROW(4, m1, 0);
#undef QD8_DW_WROW
#undef QD8_DW_W
    const float32x4_t s = vmulq_f32(vscale, vld1q_f32(w_scale + c)), b = vld1q_f32(bias + c);
    const float *x0 = base[0] + c, *x1 = base[1] + c, *x2 = base[2] + c, *x3 = base[3] + c;
    const float *x4 = base[4] + c;
    float *o = out + c;
    for (size_t px = 0, at = 0; px < pixels; ++px, at += step, o += channels) {
      float32x4_t acc = zero;
      QD8_DW_ROW5(acc, x0 + at, k00, k01, k02, k03, k04);
      QD8_DW_ROW5(acc, x1 + at, k10, k11, k12, k13, k14);
      QD8_DW_ROW5(acc, x2 + at, k20, k21, k22, k23, k24);
      QD8_DW_ROW5(acc, x3 + at, k30, k31, k32, k33, k34);
      QD8_DW_ROW5(acc, x4 + at, k40, k41, k42, k43, k44);
      vst1q_f32(o, finish(acc, s, b, lo, hi));
    }
  }
  for (; c < channels; ++c) {  /* the reference's loop */
    for (size_t px = 0; px < pixels; ++px) {
      float acc = 0.0f;
      for (size_t t = 0; t < 25; ++t) {
        if (rows_in[t] != NULL) acc += rows_in[t][px * step + c] * weights[t * channels + c];
      }
      const float v = acc * (scale * w_scale[c]) + bias[c];
      out[px * channels + c] = v < act_min ? act_min : (v > act_max ? act_max : v);
    }
  }
  return 1;
}

void eq_qd8_dwconv_run__neon(size_t pixels, size_t step, size_t channels, size_t taps,
                             const float *const *rows, const float *weights, float *out,
                             float scale, const float *w_scale, const float *bias,
                             float act_min, float act_max) {
  int any = 0;
  for (size_t t = 0; t < taps; ++t) any |= rows[t] != NULL;
  if (taps == 9 && any) {
    run3x3(pixels, step, channels, rows, weights, out, scale, w_scale, bias, act_min, act_max);
    return;
  }
  if (taps == 25 && run5x5(pixels, step, channels, rows, weights, out, scale, w_scale, bias,
                           act_min, act_max)) {
    return;
  }
  const float *at[EQ_QD8_MAX_DW_TAPS];
  for (size_t px = 0; px < pixels; ++px) {  /* other filters, one pixel at a time */
    for (size_t t = 0; t < taps; ++t) at[t] = rows[t] != NULL ? rows[t] + px * step : NULL;
    eq_qd8_dwconv__neon(channels, taps, at, weights, out + px * channels, scale, w_scale, bias,
                        act_min, act_max);
  }
}
