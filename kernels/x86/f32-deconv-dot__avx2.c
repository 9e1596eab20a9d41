/* f32 TRANSPOSE_CONV (and MediaPipe's Convolution2DTransposeBias) on its unpacked weights
 * [OC, KH, KW, IC], AVX2, for layers with fewer output channels than one packed block (a
 * segmentation head's 1-channel output: prepare picks it there, edgeq/ops/conv.py; the packed
 * kernel, f32-deconv-packed__avx2.c, vectorizes over output channels instead): the reference's
 * gather per output pixel (kernels/ref/conv.c: every input pixel whose window covers it, in
 * increasing (y, x) order) with the dot products over input channels 8 at a time, four output
 * channels per pass; output rows split across threads. Sums are reassociated across the 8
 * lanes, so results agree with the reference to float rounding. */
#include <immintrin.h>

#include "edgeq/dispatch.h"
#include "edgeq/params/conv.h"
#include "edgeq/threadpool.h"

static const int32_t kMaskTable[16] = {-1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0};

static inline float hsum8(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

static inline float clamp1(float v, float lo, float hi) {
  return v < lo ? lo : (v > hi ? hi : v);
}

/* acc[j] += x[0..ic) . f[j * f_stride + 0..ic) for j < nj (1..4). */
static inline void dot4(const float *x, const float *f, int64_t f_stride, int32_t ic, int nj,
                        __m256i tail, __m256 acc[4]) {
  int32_t c = 0;
  for (; c + 8 <= ic; c += 8) {
    const __m256 xv = _mm256_loadu_ps(x + c);
    for (int j = 0; j < nj; ++j)
      acc[j] = _mm256_fmadd_ps(xv, _mm256_loadu_ps(f + j * f_stride + c), acc[j]);
  }
  if (c < ic) {
    const __m256 xv = _mm256_maskload_ps(x + c, tail);
    for (int j = 0; j < nj; ++j)
      acc[j] = _mm256_fmadd_ps(xv, _mm256_maskload_ps(f + j * f_stride + c, tail), acc[j]);
  }
}

/* One output pixel's channels [oc, oc + NJ) of image b: the gather over its window. NJ is a
 * constant at each call site, so the compiler keeps the accumulators in registers. */
static inline void deconv_pixel(const eq_conv_params *p, const float *in_b, const float *f_oc,
                                int32_t ty, int32_t tx, int32_t iy_lo, int32_t iy_hi,
                                int32_t ix_lo, int32_t ix_hi, int nj, __m256i tail,
                                const float *bias, float *o) {
  const int32_t ic = p->in_c;
  const int64_t oc_stride = (int64_t)p->k_h * p->k_w * ic;
  __m256 acc[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(),
                   _mm256_setzero_ps()};
  for (int32_t iy = iy_lo; iy <= iy_hi; ++iy) {
    const int32_t ky = ty - iy * p->stride_h;
    for (int32_t ix = ix_lo; ix <= ix_hi; ++ix) {
      const int32_t kx = tx - ix * p->stride_w;
      dot4(in_b + ((int64_t)iy * p->in_w + ix) * ic, f_oc + ((int64_t)ky * p->k_w + kx) * ic,
           oc_stride, ic, nj, tail, acc);
    }
  }
  for (int j = 0; j < nj; ++j)
    o[j] = clamp1(hsum8(acc[j]) + (bias ? bias[j] : 0.0f), p->act_min, p->act_max);
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
  const __m256i tail = _mm256_loadu_si256((const __m256i *)(kMaskTable + 8 - (ic % 8)));
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
                     tail, bias ? bias + oc : NULL, o + oc);
      switch (out_c - oc) {
#define TAIL(n)                                                                            \
  case n:                                                                                  \
    deconv_pixel(p, in_b, filter + oc * oc_stride, ty, tx, iy_lo, iy_hi, ix_lo, ix_hi, n,  \
                 tail, bias ? bias + oc : NULL, o + oc);                                   \
    break;
        TAIL(1) TAIL(2) TAIL(3)
#undef TAIL
        default:
          break;
      }
    }
  }
}

int eq_f32_transpose_conv__avx2(const eq_node *node, eq_ctx *ctx) {
  const eq_conv_params *p = (const eq_conv_params *)node->params;
  eq_parallel_for(ctx, (int64_t)p->batch * p->out_h, 1, deconv_rows, (void *)node);
  return 0;
}
