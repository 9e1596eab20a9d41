/* f32 MAX_POOL_2D and AVERAGE_POOL_2D, AArch64 NEON: the reference kernels' walk (same window,
 * same order of the sums, TFLite's -FLT_MAX start for the max), 4 channels at a time and the
 * last few lane by lane, output rows split across threads. Bit-identical to the reference: per
 * lane the same operations. The reference compares rather than using FMAX/FMIN (its max keeps
 * the running value when the input is NaN; its clamp keeps a value equal to a bound, -0
 * against 0): so do these, with compare-and-select. */
#include <float.h>
#include <arm_neon.h>

#include "edgeq/dispatch.h"
#include "edgeq/params/pool.h"
#include "edgeq/threadpool.h"
#include "edgeq/walk.h"

/* v < lo ? lo : (v > hi ? hi : v), per lane */
static inline float32x4_t clamp_by_compare(float32x4_t v, float32x4_t lo, float32x4_t hi) {
  v = vbslq_f32(vcltq_f32(v, lo), lo, v);
  return vbslq_f32(vcgtq_f32(v, hi), hi, v);
}

/* One block of `lanes` channels (4, or 1 for the tail: the same code on lane 0) of output
 * pixel (y0, x0): the window [fy_lo, fy_hi) x [fx_lo, fx_hi). */
static inline __attribute__((always_inline)) float32x4_t pool_block(
    const float *image, int64_t row_stride, int64_t C, int64_t y0, int64_t x0, int32_t fy_lo,
    int32_t fy_hi, int32_t fx_lo, int32_t fx_hi, int is_max, int lanes) {
  float32x4_t acc = vdupq_n_f32(is_max ? -FLT_MAX : 0.0f);
  for (int32_t fy = fy_lo; fy < fy_hi; ++fy) {
    const float *px = image + (y0 + fy) * row_stride + (x0 + fx_lo) * C;
    for (int32_t fx = fx_lo; fx < fx_hi; ++fx, px += C) {
      const float32x4_t v = lanes == 4 ? vld1q_f32(px) : vld1q_dup_f32(px);
      acc = is_max ? vbslq_f32(vcgtq_f32(v, acc), v, acc) : vaddq_f32(acc, v);
    }
  }
  return acc;
}

typedef struct pool_job {
  const eq_node *node;
  int is_max;
} pool_job;

static inline __attribute__((always_inline)) void pool_rows(const pool_job *j, int64_t begin,
                                                            int64_t end, const int is_max) {
  const eq_pool2d_params *p = (const eq_pool2d_params *)j->node->params;
  const float *in = (const float *)j->node->inputs[0]->data;
  float *out_all = (float *)j->node->outputs[0]->data;
  const int64_t C = p->channels, row_stride = (int64_t)p->in_w * C;
  const float32x4_t vlo = vdupq_n_f32(p->act_min), vhi = vdupq_n_f32(p->act_max);
  for (int64_t row = begin; row < end; ++row) {
    const int32_t b = (int32_t)(row / p->out_h), oy = (int32_t)(row % p->out_h);
    const float *image = in + (int64_t)b * p->in_h * row_stride;
    float *out = out_all + row * p->out_w * C;
    int32_t fy_lo, fy_hi;
    const int64_t y0 = (int64_t)oy * p->stride_h - p->pad_top;
    eq_window_span(y0, p->filter_h, p->in_h, &fy_lo, &fy_hi);
    for (int32_t ox = 0; ox < p->out_w; ++ox, out += C) {
      int32_t fx_lo, fx_hi;
      const int64_t x0 = (int64_t)ox * p->stride_w - p->pad_left;
      eq_window_span(x0, p->filter_w, p->in_w, &fx_lo, &fx_hi);
      const int32_t count = (fy_hi - fy_lo) * (fx_hi - fx_lo);
      const float32x4_t divisor = vdupq_n_f32((float)count);
      int64_t c = 0;
      if (fy_lo == 0 && fy_hi == 2 && fx_lo == 0 && fx_hi == 2) {
        /* a whole 2x2 window (BlazePalm's max pools): the same taps, unrolled */
        for (; c + 4 <= C; c += 4) {
          float32x4_t acc = pool_block(image + c, row_stride, C, y0, x0, 0, 2, 0, 2, is_max, 4);
          if (!is_max) acc = vdivq_f32(acc, divisor);
          vst1q_f32(out + c, clamp_by_compare(acc, vlo, vhi));
        }
      }
      for (; c + 4 <= C; c += 4) {
        float32x4_t acc = pool_block(image + c, row_stride, C, y0, x0, fy_lo, fy_hi, fx_lo,
                                     fx_hi, is_max, 4);
        if (!is_max) acc = count > 0 ? vdivq_f32(acc, divisor) : vdupq_n_f32(0.0f);
        vst1q_f32(out + c, clamp_by_compare(acc, vlo, vhi));
      }
      for (; c < C; ++c) {
        float32x4_t acc = pool_block(image + c, row_stride, C, y0, x0, fy_lo, fy_hi, fx_lo,
                                     fx_hi, is_max, 1);
        if (!is_max) acc = count > 0 ? vdivq_f32(acc, divisor) : vdupq_n_f32(0.0f);
        out[c] = vgetq_lane_f32(clamp_by_compare(acc, vlo, vhi), 0);
      }
    }
  }
}

static void max_rows(void *arg, int64_t begin, int64_t end) {
  pool_rows((const pool_job *)arg, begin, end, 1);
}

static void avg_rows(void *arg, int64_t begin, int64_t end) {
  pool_rows((const pool_job *)arg, begin, end, 0);
}

static int pool(const eq_node *node, eq_ctx *ctx, int is_max) {
  const eq_pool2d_params *p = (const eq_pool2d_params *)node->params;
  pool_job job = {node, is_max};
  eq_parallel_for(ctx, (int64_t)p->batch * p->out_h, 1, is_max ? max_rows : avg_rows, &job);
  return 0;
}

int eq_f32_max_pool__neon(const eq_node *node, eq_ctx *ctx) { return pool(node, ctx, 1); }
int eq_f32_avg_pool__neon(const eq_node *node, eq_ctx *ctx) { return pool(node, ctx, 0); }
