/* TRANSPOSE_CONV with int8 weights (QD8), AVX2: the reference's arithmetic
 * (kernels/ref/conv.c transpose_conv2d_qd8: one quantization per image, the int32 gather, the
 * QD8 epilogue) with the int8 dot products 16 channels at a time (sign-extended to int16,
 * vpmaddwd); integer sums are exact, so results are bit-identical to the reference. Output
 * rows split across threads once the image is quantized. */
#include <immintrin.h>

#include "edgeq/dispatch.h"
#include "edgeq/params/conv.h"
#include "edgeq/params/qd8.h"
#include "edgeq/threadpool.h"

typedef struct deconv_job {
  const eq_node *node;
  const int8_t *xq;  /* the quantized image */
  eq_qd8_row_quant quant;
  int32_t batch;
} deconv_job;

static inline int32_t hsum_epi32(__m256i v) {
  __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, _MM_SHUFFLE(1, 0, 3, 2)));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, _MM_SHUFFLE(2, 3, 0, 1)));
  return _mm_cvtsi128_si32(s);
}

static inline int32_t dot_i8(const int8_t *x, const int8_t *f, int32_t n) {
  __m256i acc = _mm256_setzero_si256();
  int32_t c = 0;
  for (; c + 16 <= n; c += 16) {
    const __m256i xv = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(x + c)));
    const __m256i fv = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(f + c)));
    acc = _mm256_add_epi32(acc, _mm256_madd_epi16(xv, fv));
  }
  int32_t sum = hsum_epi32(acc);
  for (; c < n; ++c) sum += (int32_t)x[c] * (int32_t)f[c];
  return sum;
}

static void deconv_rows(void *arg, int64_t begin, int64_t end) {
  const deconv_job *j = (const deconv_job *)arg;
  const eq_node *node = j->node;
  const eq_conv_params params = *(const eq_conv_params *)node->params, *p = &params;
  const int8_t *w = (const int8_t *)node->inputs[1]->data;
  const int32_t *wsum = (const int32_t *)node->inputs[2]->data;
  const float *w_scale = (const float *)node->inputs[3]->data;
  const float *bias = (const float *)node->inputs[4]->data;
  float *out_b = (float *)node->outputs[0]->data +
                 (int64_t)j->batch * p->out_h * p->out_w * p->out_c;
  const int32_t taps = p->k_h * p->k_w, ic = p->in_c, zp = j->quant.zero_point;
  for (int64_t oy = begin; oy < end; ++oy) {
    for (int32_t ox = 0; ox < p->out_w; ++ox) {
      const eq_deconv_window win = eq_deconv_window_at(p, (int32_t)oy, ox);
      float *o = out_b + (oy * p->out_w + ox) * p->out_c;
      for (int32_t oc = 0; oc < p->out_c; ++oc) {
        int32_t acc = 0;
        EQ_DECONV_FOR_EACH_TAP(p, win, iy, ix, tap) {
          acc += dot_i8(j->xq + ((int64_t)iy * p->in_w + ix) * ic,
                        w + ((int64_t)oc * taps + tap) * ic, ic);
          acc -= zp * wsum[oc * taps + tap];
        }
        const float v = (float)acc * (j->quant.scale * w_scale[oc]) + bias[oc];
        o[oc] = v < p->act_min ? p->act_min : (v > p->act_max ? p->act_max : v);
      }
    }
  }
}

int eq_qd8_transpose_conv__avx2(const eq_node *node, eq_ctx *ctx) {
  const eq_conv_params *p = (const eq_conv_params *)node->params;
  const float *in = (const float *)node->inputs[0]->data;
  const int64_t image = (int64_t)p->in_h * p->in_w * p->in_c;
  deconv_job job = {node, (const int8_t *)node->scratch, {0, 1.0f}, 0};
  for (int32_t b = 0; b < p->batch; ++b) {
    eq_qd8_quantize__scalar((size_t)image, in + b * image, (int8_t *)node->scratch, &job.quant);
    job.batch = b;
    eq_parallel_for(ctx, p->out_h, 1, deconv_rows, &job);
  }
  return 0;
}
