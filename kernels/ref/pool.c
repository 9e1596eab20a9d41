/* Reference pooling and resize kernels, NHWC float32 (nearest-neighbour resize also int32).
 * Scalar, readable: the spec that optimized kernels are tested against. */
#include <float.h>
#include <math.h>
#include <string.h>

#include "edgeq/dispatch.h"
#include "edgeq/params/pool.h"
#include "edgeq/threadpool.h"
#include "edgeq/walk.h"

static inline float clampf(float v, float lo, float hi) { return v < lo ? lo : (v > hi ? hi : v); }

enum pool_kind { POOL_AVG, POOL_MAX, POOL_L2 };

/* One walk for the three pools: each output pixel's channel row is built by visiting the
 * in-bounds window pixels in row-major order (TFLite's summation order), channels innermost so
 * every access is contiguous. */
static int pool2d_f32(const eq_node *node, enum pool_kind kind) {
  const eq_pool2d_params *p = (const eq_pool2d_params *)node->params;
  const float *in = (const float *)node->inputs[0]->data;
  float *out = (float *)node->outputs[0]->data;
  const int64_t C = p->channels;
  const int64_t row_stride = (int64_t)p->in_w * C;
  for (int32_t b = 0; b < p->batch; ++b) {
    const float *image = in + (int64_t)b * p->in_h * row_stride;
    for (int32_t oy = 0; oy < p->out_h; ++oy) {
      int32_t fy_lo, fy_hi;
      const int64_t y0 = (int64_t)oy * p->stride_h - p->pad_top;
      eq_window_span(y0, p->filter_h, p->in_h, &fy_lo, &fy_hi);
      for (int32_t ox = 0; ox < p->out_w; ++ox, out += C) {
        int32_t fx_lo, fx_hi;
        const int64_t x0 = (int64_t)ox * p->stride_w - p->pad_left;
        eq_window_span(x0, p->filter_w, p->in_w, &fx_lo, &fx_hi);
        /* TFLite starts the max at the lowest finite float, not -inf. */
        const float init = kind == POOL_MAX ? -FLT_MAX : 0.0f;
        for (int64_t c = 0; c < C; ++c) out[c] = init;
        for (int32_t fy = fy_lo; fy < fy_hi; ++fy) {
          const float *px = image + (int64_t)(y0 + fy) * row_stride + (int64_t)(x0 + fx_lo) * C;
          for (int32_t fx = fx_lo; fx < fx_hi; ++fx, px += C) {
            switch (kind) {
              case POOL_AVG:
                for (int64_t c = 0; c < C; ++c) out[c] += px[c];
                break;
              case POOL_MAX:
                for (int64_t c = 0; c < C; ++c) out[c] = px[c] > out[c] ? px[c] : out[c];
                break;
              case POOL_L2:
                for (int64_t c = 0; c < C; ++c) out[c] += px[c] * px[c];
                break;
            }
          }
        }
        const int32_t count = (fy_hi - fy_lo) * (fx_hi - fx_lo);
        for (int64_t c = 0; c < C; ++c) {
          float v = out[c];
          /* count is never 0 for shapes prepare accepts; the guard keeps the kernel total. */
          if (kind == POOL_AVG) v = count > 0 ? v / (float)count : 0.0f;
          if (kind == POOL_L2) v = count > 0 ? sqrtf(v / (float)count) : 0.0f;
          out[c] = clampf(v, p->act_min, p->act_max);
        }
      }
    }
  }
  return 0;
}

static int avg_pool2d_f32(const eq_node *node, eq_ctx *ctx) {
  (void)ctx;
  return pool2d_f32(node, POOL_AVG);
}

static int max_pool2d_f32(const eq_node *node, eq_ctx *ctx) {
  (void)ctx;
  return pool2d_f32(node, POOL_MAX);
}

static int l2_pool2d_f32(const eq_node *node, eq_ctx *ctx) {
  (void)ctx;
  return pool2d_f32(node, POOL_L2);
}

/* TFLite's input/output scale of one resized axis, in float32. */
static int resize_bilinear_f32(const eq_node *node, eq_ctx *ctx) {
  (void)ctx;
  const eq_resize_params *p = (const eq_resize_params *)node->params;
  const float *in = (const float *)node->inputs[0]->data;
  float *out = (float *)node->outputs[0]->data;
  const int64_t C = p->channels;
  const int64_t row_stride = (int64_t)p->in_w * C;
  const float scale_h = eq_resize_scale(p->in_h, p->out_h, p->align_corners);
  const float scale_w = eq_resize_scale(p->in_w, p->out_w, p->align_corners);
  for (int32_t b = 0; b < p->batch; ++b) {
    const float *image = in + (int64_t)b * p->in_h * row_stride;
    for (int32_t oy = 0; oy < p->out_h; ++oy) {
      float sy;
      int32_t y0, y1;
      eq_bilinear_source(oy, scale_h, p->half_pixel_centers, p->in_h, &sy, &y0, &y1);
      const float dy = sy - (float)y0;
      const float *row0 = image + (int64_t)y0 * row_stride;
      const float *row1 = image + (int64_t)y1 * row_stride;
      for (int32_t ox = 0; ox < p->out_w; ++ox, out += C) {
        float sx;
        int32_t x0, x1;
        eq_bilinear_source(ox, scale_w, p->half_pixel_centers, p->in_w, &sx, &x0, &x1);
        const float dx = sx - (float)x0;
        const float *a = row0 + (int64_t)x0 * C, *b1 = row1 + (int64_t)x0 * C;
        const float *c1 = row0 + (int64_t)x1 * C, *d = row1 + (int64_t)x1 * C;
        /* Same terms, same association as TFLite's reference. */
        for (int64_t c = 0; c < C; ++c) {
          out[c] = a[c] * (1 - dy) * (1 - dx) + b1[c] * dy * (1 - dx) + c1[c] * (1 - dy) * dx +
                   d[c] * dy * dx;
        }
      }
    }
  }
  return 0;
}

/* The driver of the vector RESIZE_BILINEAR kernels (params/pool.h). */
int eq_resize_bilinear_run(const eq_node *node, eq_ctx *ctx, eq_task_fn rows) {
  const eq_resize_params *p = (const eq_resize_params *)node->params;
  eq_resize_job job = {node, eq_resize_scale(p->in_h, p->out_h, p->align_corners),
                       eq_resize_scale(p->in_w, p->out_w, p->align_corners)};
  const int64_t n = (int64_t)p->batch * p->out_h;
  const int64_t per_row = (int64_t)p->out_w * p->channels;
  const int64_t grain = per_row > 0 ? (32768 + per_row - 1) / per_row : n;
  eq_parallel_for(ctx, n, grain > 0 ? grain : 1, rows, &job);
  return 0;
}

/* Source index of output index i for nearest-neighbour sampling, as TFLite computes it. */
static int32_t nearest_source(int32_t i, float scale, int32_t in_size, int32_t align_corners,
                              int32_t half_pixel) {
  const float v = ((float)i + (half_pixel ? 0.5f : 0.0f)) * scale;
  const float r = align_corners ? roundf(v) : floorf(v);
  /* Clamped as a float first, so the conversion to int can never overflow. */
  int32_t s = r >= (float)(in_size - 1) ? in_size - 1 : (int32_t)r;
  if (half_pixel && s < 0) s = 0;
  return s;
}

/* Nearest-neighbour only moves elements, so one kernel serves every 4-byte type. */
static int resize_nearest_x32(const eq_node *node, eq_ctx *ctx) {
  (void)ctx;
  const eq_resize_params *p = (const eq_resize_params *)node->params;
  const uint32_t *in = (const uint32_t *)node->inputs[0]->data;
  uint32_t *out = (uint32_t *)node->outputs[0]->data;
  const int64_t C = p->channels;
  const int64_t row_stride = (int64_t)p->in_w * C;
  const float scale_h = eq_resize_scale(p->in_h, p->out_h, p->align_corners);
  const float scale_w = eq_resize_scale(p->in_w, p->out_w, p->align_corners);
  for (int32_t b = 0; b < p->batch; ++b) {
    const uint32_t *image = in + (int64_t)b * p->in_h * row_stride;
    for (int32_t oy = 0; oy < p->out_h; ++oy) {
      const int32_t sy = nearest_source(oy, scale_h, p->in_h, p->align_corners,
                                        p->half_pixel_centers);
      const uint32_t *row = image + (int64_t)sy * row_stride;
      for (int32_t ox = 0; ox < p->out_w; ++ox, out += C) {
        const int32_t sx = nearest_source(ox, scale_w, p->in_w, p->align_corners,
                                          p->half_pixel_centers);
        if (C > 0) memcpy(out, row + (int64_t)sx * C, (size_t)C * sizeof *out);
      }
    }
  }
  return 0;
}

const eq_kernel_info eq_ref_pool_kernels[] = {
    {"avg_pool2d_f32", avg_pool2d_f32, sizeof(eq_pool2d_params)},
    {"max_pool2d_f32", max_pool2d_f32, sizeof(eq_pool2d_params)},
    {"l2_pool2d_f32", l2_pool2d_f32, sizeof(eq_pool2d_params)},
    {"resize_bilinear_f32", resize_bilinear_f32, sizeof(eq_resize_params)},
    {"resize_nearest_f32", resize_nearest_x32, sizeof(eq_resize_params)},
    {"resize_nearest_i32", resize_nearest_x32, sizeof(eq_resize_params)},
    {NULL, NULL, 0},
};
