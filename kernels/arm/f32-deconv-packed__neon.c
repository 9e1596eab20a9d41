/* TRANSPOSE_CONV on packed weights, AArch64 NEON (params/conv.h): per output pixel, the
 * reference's walk over its window's taps and input channels, 16 output channels at a time
 * (four q accumulators; four input channels loaded at once, each lane multiplied into a
 * contiguous run of packed weights), then 8 (ocp is a multiple of 8). Serves
 * transpose_conv2d_f32_packed and, on the integer grid, transpose_conv2d_qd8_grid
 * (eq_deconv_packed_run quantizes the image first), as f32-deconv-packed__avx2.c does. Sums are
 * taken in the reference's order per lane with fused products, so float32 results agree to
 * rounding, and QD8 ones (exact integer sums) bit for bit. */
#include <arm_neon.h>

#include "edgeq/dispatch.h"
#include "edgeq/params/conv.h"

/* Output channels [ob, ob + 4 * NQ) of one pixel, NQ = 4 or 2. */
static inline __attribute__((always_inline)) void deconv_block(
    const eq_conv_params *p, const eq_deconv_window *win, const float *image, const float *w,
    int32_t ocp, int32_t ob, const int NQ, float32x4_t acc[4]) {
  float32x4_t a0 = vdupq_n_f32(0.0f), a1 = a0, a2 = a0, a3 = a0;
  EQ_DECONV_FOR_EACH_TAP(p, *win, iy, ix, tap) {
    const float *x = image + ((int64_t)iy * p->in_w + ix) * p->in_c;
    const float *f = w + (int64_t)tap * p->in_c * ocp + ob;
    int32_t c = 0;
    for (; c + 4 <= p->in_c; c += 4, f += 4 * ocp) {  /* four input channels per load */
      const float32x4_t xv = vld1q_f32(x + c);
#define LANE(L)                                                                 \
  a0 = vfmaq_laneq_f32(a0, vld1q_f32(f + (L) * ocp), xv, L);                    \
  a1 = vfmaq_laneq_f32(a1, vld1q_f32(f + (L) * ocp + 4), xv, L);                \
  if (NQ == 4) {                                                                \
    a2 = vfmaq_laneq_f32(a2, vld1q_f32(f + (L) * ocp + 8), xv, L);              \
    a3 = vfmaq_laneq_f32(a3, vld1q_f32(f + (L) * ocp + 12), xv, L);             \
  }
      LANE(0) LANE(1) LANE(2) LANE(3)
#undef LANE
    }
    for (; c < p->in_c; ++c, f += ocp) {
      const float32x4_t xb = vld1q_dup_f32(x + c);
      a0 = vfmaq_f32(a0, xb, vld1q_f32(f));
      a1 = vfmaq_f32(a1, xb, vld1q_f32(f + 4));
      if (NQ == 4) {
        a2 = vfmaq_f32(a2, xb, vld1q_f32(f + 8));
        a3 = vfmaq_f32(a3, xb, vld1q_f32(f + 12));
      }
    }
  }
  acc[0] = a0, acc[1] = a1, acc[2] = a2, acc[3] = a3;
}

static void deconv_rows(void *arg, int64_t begin, int64_t end) {
  const eq_deconv_job *j = (const eq_deconv_job *)arg;
  const eq_node *node = j->node;
  const eq_conv_params params = *(const eq_conv_params *)node->params, *p = &params;
  const float *w = (const float *)node->inputs[1]->data;
  const float *bias = (const float *)node->inputs[2]->data;
  const int32_t out_c = p->out_c, ocp = eq_deconv_ocp(out_c);
  float *out = (float *)node->outputs[0]->data + (int64_t)j->batch * p->out_h * p->out_w * out_c;
  const float32x4_t lo = vdupq_n_f32(p->act_min), hi = vdupq_n_f32(p->act_max);
  for (int64_t oy = begin; oy < end; ++oy) {
    for (int32_t ox = 0; ox < p->out_w; ++ox) {
      const eq_deconv_window win = eq_deconv_window_at(p, (int32_t)oy, ox);
      float *o = out + (oy * p->out_w + ox) * out_c;
      for (int32_t ob = 0; ob < ocp;) {
        const int nq = ocp - ob >= 16 ? 4 : 2;
        float32x4_t acc[4];
        if (nq == 4)
          deconv_block(p, &win, j->image, w, ocp, ob, 4, acc);
        else
          deconv_block(p, &win, j->image, w, ocp, ob, 2, acc);
        for (int i = 0; i < nq; ++i, ob += 4) {
          float32x4_t v = acc[i];
          if (j->w_scale) v = vmulq_f32(v, vmulq_n_f32(vld1q_f32(j->w_scale + ob), j->row_scale));
          v = vminq_f32(hi, vmaxq_f32(lo, vaddq_f32(v, vld1q_f32(bias + ob))));
          if (out_c - ob >= 4) {
            vst1q_f32(o + ob, v);
          } else if (ob < out_c) {
            float lanes[4];
            vst1q_f32(lanes, v);
            for (int32_t k = 0; k < out_c - ob; ++k) o[ob + k] = lanes[k];
          }
        }
      }
    }
  }
}

int eq_f32_transpose_conv_packed__neon(const eq_node *node, eq_ctx *ctx) {
  return eq_deconv_packed_run(node, ctx, 0, deconv_rows);
}

int eq_qd8_transpose_conv_grid__neon(const eq_node *node, eq_ctx *ctx) {
  return eq_deconv_packed_run(node, ctx, 1, deconv_rows);
}
