/* f32 RESIZE_BILINEAR, AVX2: the reference's coordinates (params/pool.h) and its four weighted
 * terms in its order, 8 channels at a time; output rows split across threads. The compiler may
 * fuse a product into the following sum, so results agree with the reference to float
 * rounding, not bit for bit. */
#include <immintrin.h>

#include "edgeq/dispatch.h"
#include "edgeq/params/pool.h"

static const int32_t kMaskTable[16] = {-1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0};

static inline __m256 blend4(__m256 a, __m256 b, __m256 c, __m256 d, __m256 wy0, __m256 wy1,
                            __m256 wx0, __m256 wx1) {
  const __m256 t0 = _mm256_mul_ps(_mm256_mul_ps(a, wy0), wx0);
  const __m256 t1 = _mm256_mul_ps(_mm256_mul_ps(b, wy1), wx0);
  const __m256 t2 = _mm256_mul_ps(_mm256_mul_ps(c, wy0), wx1);
  const __m256 t3 = _mm256_mul_ps(_mm256_mul_ps(d, wy1), wx1);
  return _mm256_add_ps(_mm256_add_ps(_mm256_add_ps(t0, t1), t2), t3);
}

static void resize_rows(void *arg, int64_t begin, int64_t end) {
  const eq_resize_job *j = (const eq_resize_job *)arg;
  const eq_resize_params *p = (const eq_resize_params *)j->node->params;
  const float *in = (const float *)j->node->inputs[0]->data;
  float *out_all = (float *)j->node->outputs[0]->data;
  const int64_t C = p->channels;
  for (int64_t row = begin; row < end; ++row) {
    const float *row0, *row1;
    float dy;
    eq_bilinear_rows(p, j->scale_h, in, row, &row0, &row1, &dy);
    const __m256 wy0 = _mm256_set1_ps(1 - dy), wy1 = _mm256_set1_ps(dy);
    float *out = out_all + row * p->out_w * C;
    for (int32_t ox = 0; ox < p->out_w; ++ox, out += C) {
      float sx;
      int32_t x0, x1;
      eq_bilinear_source(ox, j->scale_w, p->half_pixel_centers, p->in_w, &sx, &x0, &x1);
      const float dx = sx - (float)x0;
      const __m256 wx0 = _mm256_set1_ps(1 - dx), wx1 = _mm256_set1_ps(dx);
      const float *a = row0 + (int64_t)x0 * C, *bb = row1 + (int64_t)x0 * C;
      const float *c = row0 + (int64_t)x1 * C, *d = row1 + (int64_t)x1 * C;
      int64_t k = 0;
      for (; k + 8 <= C; k += 8) {
        _mm256_storeu_ps(out + k, blend4(_mm256_loadu_ps(a + k), _mm256_loadu_ps(bb + k),
                                         _mm256_loadu_ps(c + k), _mm256_loadu_ps(d + k), wy0,
                                         wy1, wx0, wx1));
      }
      if (k < C) {
        const __m256i m = _mm256_loadu_si256((const __m256i *)(kMaskTable + 8 - (C - k)));
        _mm256_maskstore_ps(out + k, m,
                            blend4(_mm256_maskload_ps(a + k, m), _mm256_maskload_ps(bb + k, m),
                                   _mm256_maskload_ps(c + k, m), _mm256_maskload_ps(d + k, m),
                                   wy0, wy1, wx0, wx1));
      }
    }
  }
}

int eq_f32_resize_bilinear__avx2(const eq_node *node, eq_ctx *ctx) {
  return eq_resize_bilinear_run(node, ctx, resize_rows);
}
