/* f32 TRANSPOSE_CONV (and MediaPipe's Convolution2DTransposeBias) on its unpacked weights
 * [OC, KH, KW, IC], AArch64 NEON, for layers with fewer output channels than one packed block
 * (a segmentation head's 1-channel output; prepare picks it there, edgeq/ops/conv.py): the
 * reference's gather per output pixel (kernels/ref/conv.c: every input pixel whose window
 * covers it, in increasing (y, x) order) with the dot products over input channels 4 at a
 * time (the last 1..3 one at a time), four output channels per pass and the rest one by
 * one; output rows split across threads. Sums are reassociated across the 4 lanes, so results agree with the
 * reference to float rounding. The same walk as f32-deconv-dot__avx2.c. */
#include <arm_neon.h>

#include "edgeq/dispatch.h"
#include "edgeq/params/conv.h"
#include "edgeq/threadpool.h"

static inline float clamp1(float v, float lo, float hi) {
  return v < lo ? lo : (v > hi ? hi : v);
}

/* One output pixel's channels [oc, oc + nj) of image b, nj = 1 or 4: the gather over its
 * window. nj is a constant at each call site, so the accumulators stay in registers. */
static inline void deconv_pixel(const eq_conv_params *p, const float *in_b, const float *f_oc,
                                int32_t ty, int32_t tx, int32_t iy_lo, int32_t iy_hi,
                                int32_t ix_lo, int32_t ix_hi, int nj, const float *bias,
                                float *o) {
  const int32_t ic = p->in_c;
  const int64_t oc_stride = (int64_t)p->k_h * p->k_w * ic;
  float32x4_t acc[4] = {vdupq_n_f32(0.0f), vdupq_n_f32(0.0f), vdupq_n_f32(0.0f),
                        vdupq_n_f32(0.0f)};
  float tail[4] = {0.0f, 0.0f, 0.0f, 0.0f};
  for (int32_t iy = iy_lo; iy <= iy_hi; ++iy) {
    const int32_t ky = ty - iy * p->stride_h;
    for (int32_t ix = ix_lo; ix <= ix_hi; ++ix) {
      const int32_t kx = tx - ix * p->stride_w;
      const float *x = in_b + ((int64_t)iy * p->in_w + ix) * ic;
      const float *f = f_oc + ((int64_t)ky * p->k_w + kx) * ic;
      int32_t c = 0;
      for (; c + 4 <= ic; c += 4) {
        const float32x4_t xv = vld1q_f32(x + c);
        for (int j = 0; j < nj; ++j)
          acc[j] = vfmaq_f32(acc[j], xv, vld1q_f32(f + j * oc_stride + c));
      }
      for (; c < ic; ++c)
        for (int j = 0; j < nj; ++j) tail[j] += x[c] * f[j * oc_stride + c];
    }
  }
  for (int j = 0; j < nj; ++j)
    o[j] = clamp1(vaddvq_f32(acc[j]) + tail[j] + (bias ? bias[j] : 0.0f), p->act_min,
                  p->act_max);
}

static void deconv_rows(void *arg, int64_t begin, int64_t end) {
  const eq_node *node = (const eq_node *)arg;
  /* a local copy: the output stores cannot alias it, so nothing is reloaded per pixel */
  const eq_conv_params params = *(const eq_conv_params *)node->params, *p = &params;
  const float *in = (const float *)node->inputs[0]->data;
  const float *filter = (const float *)node->inputs[1]->data;
  const float *bias =
      node->n_inputs > 2 && node->inputs[2] ? (const float *)node->inputs[2]->data : NULL;
  float *out_all = (float *)node->outputs[0]->data;
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
        deconv_pixel(p, in_b, filter + oc * oc_stride, ty, tx, iy_lo, iy_hi, ix_lo, ix_hi, 4,
                     bias ? bias + oc : NULL, o + oc);
      for (; oc < out_c; ++oc)  /* a segmentation head's single channel, say */
        deconv_pixel(p, in_b, filter + oc * oc_stride, ty, tx, iy_lo, iy_hi, ix_lo, ix_hi, 1,
                     bias ? bias + oc : NULL, o + oc);
    }
  }
}

int eq_f32_transpose_conv__neon(const eq_node *node, eq_ctx *ctx) {
  const eq_conv_params *p = (const eq_conv_params *)node->params;
  eq_parallel_for(ctx, (int64_t)p->batch * p->out_h, 1, deconv_rows, (void *)node);
  return 0;
}
