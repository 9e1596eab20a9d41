/* f32 TRANSPOSE_CONV (and MediaPipe's Convolution2DTransposeBias) on its unpacked weights [OC,
 * KH, KW, IC], AArch64 NEON, for layers with fewer output channels than one packed block (a
 * segmentation head's 1-channel output; prepare picks it there, edgeq/ops/conv.py): the
 * reference's gather per output pixel (kernels/ref/conv.c: every input pixel whose window
 * covers it, in increasing (y, x) order) with the dot products over input channels 4 at a time
 * (the last 1..3 one at a time), four output channels per pass and the rest one by one; output
 * rows split across threads. Sums are reassociated across the 4 lanes, so results agree with
 * the reference to float rounding. The same walk as f32-deconv-dot__avx2.c, except for filters
 * that tile the output (stride = size, no padding), walked over input pixels. */
#include <arm_neon.h>

#include "edgeq/dispatch.h"
#include "edgeq/params/conv.h"
#include "edgeq/threadpool.h"

static inline float clamp1(float v, float lo, float hi) {
  return v < lo ? lo : (v > hi ? hi : v);
}

/* The node's input, filter, bias (NULL when absent) and output. */
static inline void operands(const eq_node *node, const float **in, const float **filter,
                            const float **bias, float **out) {
  *in = (const float *)node->inputs[0]->data;
  *filter = (const float *)node->inputs[1]->data;
  *bias = node->n_inputs > 2 && node->inputs[2] ? (const float *)node->inputs[2]->data : NULL;
  *out = (float *)node->outputs[0]->data;
}

/* One output pixel's channels [oc, oc + NJ) of image b, NJ = 1 or 4: the gather over its
 * window, the accumulators named (an array indexed by a loop would live on the stack). */
#define DECONV_PIXEL(NAME, NJ)                                                               \
  static inline __attribute__((always_inline)) void NAME(                                   \
      const eq_conv_params *p, const float *in_b, const float *f_oc, int32_t ty, int32_t tx, \
      int32_t iy_lo, int32_t iy_hi, int32_t ix_lo, int32_t ix_hi, const float *bias,         \
      float *o) {                                                                            \
    const int32_t ic = p->in_c;                                                              \
    const int64_t oc_stride = (int64_t)p->k_h * p->k_w * ic;                                 \
    float32x4_t a0 = vdupq_n_f32(0.0f), a1 = a0, a2 = a0, a3 = a0;                           \
    float t0 = 0.0f, t1 = 0.0f, t2 = 0.0f, t3 = 0.0f;                                        \
    for (int32_t iy = iy_lo; iy <= iy_hi; ++iy) {                                            \
      const int32_t ky = ty - iy * p->stride_h;                                              \
      for (int32_t ix = ix_lo; ix <= ix_hi; ++ix) {                                          \
        const int32_t kx = tx - ix * p->stride_w;                                            \
        const float *x = in_b + ((int64_t)iy * p->in_w + ix) * ic;                           \
        const float *f = f_oc + ((int64_t)ky * p->k_w + kx) * ic;                            \
        int32_t c = 0;                                                                       \
        for (; c + 4 <= ic; c += 4) {                                                        \
          const float32x4_t xv = vld1q_f32(x + c);                                           \
          a0 = vfmaq_f32(a0, xv, vld1q_f32(f + c));                                          \
          if (NJ == 4) {                                                                     \
            a1 = vfmaq_f32(a1, xv, vld1q_f32(f + oc_stride + c));                            \
            a2 = vfmaq_f32(a2, xv, vld1q_f32(f + 2 * oc_stride + c));                        \
            a3 = vfmaq_f32(a3, xv, vld1q_f32(f + 3 * oc_stride + c));                        \
          }                                                                                  \
        }                                                                                    \
        for (; c < ic; ++c) {                                                                \
          t0 += x[c] * f[c];                                                                 \
          if (NJ == 4) {                                                                     \
            t1 += x[c] * f[oc_stride + c];                                                   \
            t2 += x[c] * f[2 * oc_stride + c];                                               \
            t3 += x[c] * f[3 * oc_stride + c];                                               \
          }                                                                                  \
        }                                                                                    \
      }                                                                                      \
    }                                                                                        \
    o[0] = clamp1(vaddvq_f32(a0) + t0 + (bias ? bias[0] : 0.0f), p->act_min, p->act_max);    \
    if (NJ == 4) {                                                                           \
      o[1] = clamp1(vaddvq_f32(a1) + t1 + (bias ? bias[1] : 0.0f), p->act_min, p->act_max);  \
      o[2] = clamp1(vaddvq_f32(a2) + t2 + (bias ? bias[2] : 0.0f), p->act_min, p->act_max);  \
      o[3] = clamp1(vaddvq_f32(a3) + t3 + (bias ? bias[3] : 0.0f), p->act_min, p->act_max);  \
    }                                                                                        \
  }
DECONV_PIXEL(deconv_pixel4, 4)
DECONV_PIXEL(deconv_pixel1, 1)
#undef DECONV_PIXEL

static void deconv_rows(void *arg, int64_t begin, int64_t end) {
  const eq_node *node = (const eq_node *)arg;
  /* a local copy: the output stores cannot alias it, so nothing is reloaded per pixel */
  const eq_conv_params params = *(const eq_conv_params *)node->params, *p = &params;
  const float *in, *filter, *bias;
  float *out_all;
  operands(node, &in, &filter, &bias, &out_all);
  const int32_t ic = p->in_c, out_c = p->out_c;
  const int64_t oc_stride = (int64_t)p->k_h * p->k_w * ic;
  for (int64_t row = begin; row < end; ++row) {
    const int32_t b = (int32_t)(row / p->out_h), oy = (int32_t)(row % p->out_h);
    const float *in_b = in + (int64_t)b * p->in_h * p->in_w * ic;
    const int32_t ty = oy + p->pad_top;
    int32_t iy_lo, iy_hi;
    eq_transpose_window(ty, p->k_h, p->stride_h, p->in_h, &iy_lo, &iy_hi);
    float *o = out_all + row * p->out_w * out_c;
    eq_deconv_columns cols = eq_deconv_columns_begin(p);
    for (int32_t ox = 0; ox < p->out_w; ++ox, o += out_c) {
      const int32_t tx = ox + p->pad_left;
      int32_t ix_lo, ix_hi;
      eq_deconv_columns_next(p, &cols, &ix_lo, &ix_hi);
      int32_t oc = 0;
      for (; oc + 4 <= out_c; oc += 4)
        deconv_pixel4(p, in_b, filter + oc * oc_stride, ty, tx, iy_lo, iy_hi, ix_lo, ix_hi,
                      bias ? bias + oc : NULL, o + oc);
      for (; oc < out_c; ++oc)  /* a segmentation head's single channel, say */
        deconv_pixel1(p, in_b, filter + oc * oc_stride, ty, tx, iy_lo, iy_hi, ix_lo, ix_hi,
                      bias ? bias + oc : NULL, o + oc);
    }
  }
}

/* Filters that tile the output (stride = filter size, no padding: a 2x2 stride-2 upsampling
 * head): each output pixel is one input pixel's dot product with one tap, so the walk goes over
 * input pixels instead, one row of them per task row, with no window arithmetic per pixel. */
static int tiles_output(const eq_conv_params *p) {
  return p->stride_h == p->k_h && p->stride_w == p->k_w && p->pad_top == 0 &&
         p->pad_left == 0 && p->out_h == p->in_h * p->k_h && p->out_w == p->in_w * p->k_w;
}

static void deconv_tile_rows(void *arg, int64_t begin, int64_t end) {
  const eq_node *node = (const eq_node *)arg;
  const eq_conv_params params = *(const eq_conv_params *)node->params, *p = &params;
  const float *in, *filter, *bias;
  float *out;
  operands(node, &in, &filter, &bias, &out);
  const int32_t ic = p->in_c, out_c = p->out_c, k_h = p->k_h, k_w = p->k_w;
  const int64_t oc_stride = (int64_t)k_h * k_w * ic, out_row = (int64_t)p->out_w * out_c;
  for (int64_t row = begin; row < end; ++row) {  /* row = b * in_h + iy */
    const float *x = in + row * p->in_w * ic;
    float *o_row = out + row * k_h * out_row;  /* output rows iy * k_h .. + k_h - 1 */
    for (int32_t ix = 0; ix < p->in_w; ++ix, x += ic) {
      for (int32_t ky = 0; ky < k_h; ++ky) {
        float *o = o_row + ky * out_row + (int64_t)ix * k_w * out_c;
        for (int32_t kx = 0; kx < k_w; ++kx, o += out_c) {
          const float *f = filter + ((int64_t)ky * k_w + kx) * ic;
          for (int32_t oc = 0; oc < out_c; ++oc, f += oc_stride) {
            float32x4_t acc = vdupq_n_f32(0.0f);
            int32_t c = 0;
            for (; c + 4 <= ic; c += 4) acc = vfmaq_f32(acc, vld1q_f32(x + c), vld1q_f32(f + c));
            float t = 0.0f;
            for (; c < ic; ++c) t += x[c] * f[c];
            o[oc] = clamp1(vaddvq_f32(acc) + t + (bias ? bias[oc] : 0.0f), p->act_min,
                           p->act_max);
          }
        }
      }
    }
  }
}

/* The commonest tiling head, one output channel from a 2x2 stride-2 filter over Q * 4 input
 * channels (Q = 1..4, selfie_segmentation's 16): the four taps' weights held in registers, the
 * four dot products of an input pixel summed pairwise into one vector (tap order), the bias
 * added and the clamp applied to all four at once (compare-and-select, the reference's clamp),
 * then stored as two pixels of each of the two output rows. */
static inline __attribute__((always_inline)) void tile2x2_rows(const eq_node *node,
                                                               int64_t begin, int64_t end,
                                                               const int Q) {
  const eq_conv_params *p = (const eq_conv_params *)node->params;
  const float *in, *filter, *bias;
  float *out;
  operands(node, &in, &filter, &bias, &out);
  const float b = bias ? bias[0] : 0.0f;
  const int32_t in_w = p->in_w, ic = 4 * Q;
  const int64_t out_w = p->out_w;
  float32x4_t w[4][4];
  for (int t = 0; t < 4; ++t)
    for (int q = 0; q < Q; ++q) w[t][q] = vld1q_f32(filter + t * ic + 4 * q);
  const float32x4_t vb = vdupq_n_f32(b);
  const float32x4_t lo = vdupq_n_f32(p->act_min), hi = vdupq_n_f32(p->act_max);
  for (int64_t row = begin; row < end; ++row) {  /* row = b * in_h + iy */
    const float *x = in + row * in_w * ic;
    float *o0 = out + row * 2 * out_w, *o1 = o0 + out_w;
    for (int32_t ix = 0; ix < in_w; ++ix, x += ic, o0 += 2, o1 += 2) {
      float32x4_t xq[4], d[4];
      for (int q = 0; q < Q; ++q) xq[q] = vld1q_f32(x + 4 * q);
      for (int t = 0; t < 4; ++t) {
        d[t] = vmulq_f32(xq[0], w[t][0]);
        for (int q = 1; q < Q; ++q) d[t] = vfmaq_f32(d[t], xq[q], w[t][q]);
      }
      float32x4_t v = vpaddq_f32(vpaddq_f32(d[0], d[1]), vpaddq_f32(d[2], d[3]));
      v = vaddq_f32(v, vb);
      v = vbslq_f32(vcltq_f32(v, lo), lo, v);
      v = vbslq_f32(vcgtq_f32(v, hi), hi, v);
      vst1_f32(o0, vget_low_f32(v));
      vst1_f32(o1, vget_high_f32(v));
    }
  }
}

static void tile2x2_rows_q1(void *a, int64_t b, int64_t e) { tile2x2_rows(a, b, e, 1); }
static void tile2x2_rows_q2(void *a, int64_t b, int64_t e) { tile2x2_rows(a, b, e, 2); }
static void tile2x2_rows_q3(void *a, int64_t b, int64_t e) { tile2x2_rows(a, b, e, 3); }
static void tile2x2_rows_q4(void *a, int64_t b, int64_t e) { tile2x2_rows(a, b, e, 4); }

int eq_f32_transpose_conv__neon(const eq_node *node, eq_ctx *ctx) {
  const eq_conv_params *p = (const eq_conv_params *)node->params;
  const int32_t q = p->in_c / 4;
  if (tiles_output(p) && p->k_h == 2 && p->k_w == 2 && p->out_c == 1 && p->in_c % 4 == 0 &&
      q >= 1 && q <= 4) {
    eq_task_fn rows = q == 1 ? tile2x2_rows_q1 : q == 2 ? tile2x2_rows_q2
                    : q == 3 ? tile2x2_rows_q3 : tile2x2_rows_q4;
    eq_parallel_for(ctx, (int64_t)p->batch * p->in_h, 1, rows, (void *)node);
  } else if (tiles_output(p))
    eq_parallel_for(ctx, (int64_t)p->batch * p->in_h, 1, deconv_tile_rows, (void *)node);
  else
    eq_parallel_for(ctx, (int64_t)p->batch * p->out_h, 1, deconv_rows, (void *)node);
  return 0;
}
