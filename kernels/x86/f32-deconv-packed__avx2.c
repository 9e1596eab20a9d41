/* TRANSPOSE_CONV on packed weights, AVX2 (params/conv.h): per output pixel, the reference's
 * walk over its window's taps and input channels, 32 output channels at a time (four ymm
 * accumulators, the input channel broadcast against a contiguous run of packed weights), then
 * 8 at a time. Serves transpose_conv2d_f32_packed and, on the integer grid,
 * transpose_conv2d_qd8_grid (eq_deconv_packed_run quantizes the image first). Sums are taken
 * in the reference's order per lane; the compiler may fuse the products into them, so float32
 * results agree to rounding, and QD8 ones (exact integer sums) bit for bit. */
#include <immintrin.h>

#include "edgeq/dispatch.h"
#include "edgeq/params/conv.h"
#include "edgeq/threadpool.h"

static const int32_t kMaskTable[16] = {-1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0};

/* Output channels [ob, ob + 8 * NB) of one pixel, NB = 4, 2 or 1, the tap and channel loops
 * written out for each so that the accumulators stay in registers. */
#define DECONV_BLOCK(NAME, NB, BODY)                                                      \
  static inline void NAME(const eq_conv_params *p, const eq_deconv_window *win,            \
                          const float *image, const float *w, int32_t ocp, int32_t ob,     \
                          __m256 acc[4]) {                                                 \
    __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;                           \
    EQ_DECONV_FOR_EACH_TAP(p, *win, iy, ix, tap) {                                        \
      const float *x = image + ((int64_t)iy * p->in_w + ix) * p->in_c;                    \
      const float *f = w + (int64_t)tap * p->in_c * ocp + ob;                             \
      for (int32_t c = 0; c < p->in_c; ++c, f += ocp) {                                   \
        const __m256 xb = _mm256_broadcast_ss(x + c);                                     \
        BODY                                                                              \
      }                                                                                   \
    }                                                                                     \
    acc[0] = a0, acc[1] = a1, acc[2] = a2, acc[3] = a3;                                   \
  }
DECONV_BLOCK(deconv_block32, 4,
             a0 = _mm256_fmadd_ps(xb, _mm256_loadu_ps(f), a0);
             a1 = _mm256_fmadd_ps(xb, _mm256_loadu_ps(f + 8), a1);
             a2 = _mm256_fmadd_ps(xb, _mm256_loadu_ps(f + 16), a2);
             a3 = _mm256_fmadd_ps(xb, _mm256_loadu_ps(f + 24), a3);)
DECONV_BLOCK(deconv_block16, 2,
             a0 = _mm256_fmadd_ps(xb, _mm256_loadu_ps(f), a0);
             a1 = _mm256_fmadd_ps(xb, _mm256_loadu_ps(f + 8), a1);)
DECONV_BLOCK(deconv_block8, 1, a0 = _mm256_fmadd_ps(xb, _mm256_loadu_ps(f), a0);)
#undef DECONV_BLOCK

static void deconv_rows(void *arg, int64_t begin, int64_t end) {
  const eq_deconv_job *j = (const eq_deconv_job *)arg;
  const eq_node *node = j->node;
  const eq_conv_params params = *(const eq_conv_params *)node->params, *p = &params;
  const float *w = (const float *)node->inputs[1]->data;
  const float *bias = (const float *)node->inputs[2]->data;
  const int32_t out_c = p->out_c, ocp = eq_deconv_ocp(out_c);
  float *out = (float *)node->outputs[0]->data + (int64_t)j->batch * p->out_h * p->out_w * out_c;
  const __m256 lo = _mm256_set1_ps(p->act_min), hi = _mm256_set1_ps(p->act_max);
  const __m256 row_scale = _mm256_set1_ps(j->row_scale);
  for (int64_t oy = begin; oy < end; ++oy) {
    for (int32_t ox = 0; ox < p->out_w; ++ox) {
      const eq_deconv_window win = eq_deconv_window_at(p, (int32_t)oy, ox);
      float *o = out + (oy * p->out_w + ox) * out_c;
      for (int32_t ob = 0; ob < ocp;) {
        const int nb = ocp - ob >= 32 ? 4 : (ocp - ob >= 16 ? 2 : 1);
        __m256 acc[4];
        if (nb == 4)
          deconv_block32(p, &win, j->image, w, ocp, ob, acc);
        else if (nb == 2)
          deconv_block16(p, &win, j->image, w, ocp, ob, acc);
        else
          deconv_block8(p, &win, j->image, w, ocp, ob, acc);
        for (int i = 0; i < nb; ++i, ob += 8) {
          __m256 v = acc[i];
          if (j->w_scale)
            v = _mm256_mul_ps(v, _mm256_mul_ps(row_scale, _mm256_loadu_ps(j->w_scale + ob)));
          v = _mm256_min_ps(hi, _mm256_max_ps(lo, _mm256_add_ps(v, _mm256_loadu_ps(bias + ob))));
          if (out_c - ob >= 8) {
            _mm256_storeu_ps(o + ob, v);
          } else {
            const __m256i m = _mm256_loadu_si256((const __m256i *)(kMaskTable + 8 - (out_c - ob)));
            _mm256_maskstore_ps(o + ob, m, v);
          }
        }
      }
    }
  }
}

int eq_f32_transpose_conv_packed__avx2(const eq_node *node, eq_ctx *ctx) {
  return eq_deconv_packed_run(node, ctx, 0, deconv_rows);
}

int eq_qd8_transpose_conv_grid__avx2(const eq_node *node, eq_ctx *ctx) {
  return eq_deconv_packed_run(node, ctx, 1, deconv_rows);
}
