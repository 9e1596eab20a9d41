/* f32 MAX_POOL_2D and AVERAGE_POOL_2D, AVX2: the reference kernels' walk (same window, same
 * order of the sums, TFLite's -FLT_MAX start for the max), 8 channels a lane block, up to 64
 * channels of a window at a time, output rows
 * split across threads. Bit-identical to the reference: per lane the same operations. */
#include <float.h>
#include <immintrin.h>

#include "edgeq/dispatch.h"
#include "edgeq/params/pool.h"
#include "edgeq/threadpool.h"

static const int32_t kMaskTable[16] = {-1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0};

static inline void window_span(int64_t origin, int32_t filter, int32_t size, int32_t *lo,
                               int32_t *hi) {
  const int64_t l = origin < 0 ? -origin : 0;
  int64_t h = size - origin < filter ? size - origin : filter;
  if (h < l) h = l;
  *lo = (int32_t)(l < filter ? l : filter);
  *hi = (int32_t)(h < filter ? h : filter);
}

typedef struct pool_job {
  const eq_node *node;
  int is_max;
} pool_job;

/* One window of `blocks` blocks of 8 channels from channel c (the last block n lanes wide),
 * their chains side by side: one block at a time waited on each add's latency, 125 of them
 * per block on keyword spotting's global 25x5 average (0.7 us for its 64 channels). */
static inline __attribute__((always_inline)) void pool_window(
    const int32_t blocks, int is_max, const float *first, int64_t row_stride, int64_t C,
    int32_t rows, int32_t cols, int32_t count, int32_t n, __m256 vlo, __m256 vhi, float *out) {
  const __m256i mask = _mm256_loadu_si256((const __m256i *)(kMaskTable + 8 - n));
  __m256 acc[8];
#pragma GCC unroll 8
  for (int32_t k = 0; k < blocks; ++k) acc[k] = _mm256_set1_ps(is_max ? -FLT_MAX : 0.0f);
  for (int32_t fy = 0; fy < rows; ++fy) {
    const float *px = first + fy * row_stride;
    for (int32_t fx = 0; fx < cols; ++fx, px += C) {
#pragma GCC unroll 8
      for (int32_t k = 0; k < blocks; ++k) {
        const __m256 v = k + 1 < blocks || n == 8 ? _mm256_loadu_ps(px + 8 * k)
                                                  : _mm256_maskload_ps(px + 8 * k, mask);
        /* max_ps returns its second operand when the first is NaN or not greater: the
         * reference's `px > out ? px : out`. */
        acc[k] = is_max ? _mm256_max_ps(v, acc[k]) : _mm256_add_ps(acc[k], v);
      }
    }
  }
  const __m256 divisor = _mm256_set1_ps((float)count);
#pragma GCC unroll 8
  for (int32_t k = 0; k < blocks; ++k) {
    __m256 v = acc[k];
    if (!is_max) v = count > 0 ? _mm256_div_ps(v, divisor) : _mm256_setzero_ps();
    v = _mm256_min_ps(vhi, _mm256_max_ps(vlo, v));
    if (k + 1 < blocks || n == 8) {
      _mm256_storeu_ps(out + 8 * k, v);
    } else {
      _mm256_maskstore_ps(out + 8 * k, mask, v);
    }
  }
}

static void pool_rows(void *arg, int64_t begin, int64_t end) {
  const pool_job *j = (const pool_job *)arg;
  const eq_pool2d_params *p = (const eq_pool2d_params *)j->node->params;
  const float *in = (const float *)j->node->inputs[0]->data;
  float *out_all = (float *)j->node->outputs[0]->data;
  const int64_t C = p->channels, row_stride = (int64_t)p->in_w * C;
  const __m256 vlo = _mm256_set1_ps(p->act_min), vhi = _mm256_set1_ps(p->act_max);
  for (int64_t row = begin; row < end; ++row) {
    const int32_t b = (int32_t)(row / p->out_h), oy = (int32_t)(row % p->out_h);
    const float *image = in + (int64_t)b * p->in_h * row_stride;
    float *out = out_all + row * p->out_w * C;
    int32_t fy_lo, fy_hi;
    const int64_t y0 = (int64_t)oy * p->stride_h - p->pad_top;
    window_span(y0, p->filter_h, p->in_h, &fy_lo, &fy_hi);
    for (int32_t ox = 0; ox < p->out_w; ++ox, out += C) {
      int32_t fx_lo, fx_hi;
      const int64_t x0 = (int64_t)ox * p->stride_w - p->pad_left;
      window_span(x0, p->filter_w, p->in_w, &fx_lo, &fx_hi);
      const int32_t count = (fy_hi - fy_lo) * (fx_hi - fx_lo);
      const float *first = image + (y0 + fy_lo) * row_stride + (x0 + fx_lo) * C;
      int64_t c = 0;
      for (; c + 64 <= C; c += 64)
        pool_window(8, j->is_max, first + c, row_stride, C, fy_hi - fy_lo, fx_hi - fx_lo,
                    count, 8, vlo, vhi, out + c);
      for (; c < C; c += 8)
        pool_window(1, j->is_max, first + c, row_stride, C, fy_hi - fy_lo, fx_hi - fx_lo,
                    count, C - c < 8 ? (int32_t)(C - c) : 8, vlo, vhi, out + c);
    }
  }
}

static int pool(const eq_node *node, eq_ctx *ctx, int is_max) {
  const eq_pool2d_params *p = (const eq_pool2d_params *)node->params;
  pool_job job = {node, is_max};
  eq_parallel_for(ctx, (int64_t)p->batch * p->out_h, 1, pool_rows, &job);
  return 0;
}

int eq_f32_max_pool__avx2(const eq_node *node, eq_ctx *ctx) { return pool(node, ctx, 1); }
int eq_f32_avg_pool__avx2(const eq_node *node, eq_ctx *ctx) { return pool(node, ctx, 0); }
