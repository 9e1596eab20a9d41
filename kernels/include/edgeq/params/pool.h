/* Parameters of pooling and resize kernels (mirrored by ctypes structs in edgeq/ops/pool.py).
 * All of them work on NHWC tensors; prepare has checked every field, kernels trust them. */
#ifndef EDGEQ_PARAMS_POOL_H
#define EDGEQ_PARAMS_POOL_H
#include <math.h>
#include <stdint.h>

/* AVERAGE/MAX/L2 pooling. The window of output (oy, ox) starts at input row
 * oy * stride_h - pad_top and column ox * stride_w - pad_left; only its in-bounds part takes
 * part (the average divides by the number of in-bounds elements). act_min/act_max is the fused
 * clamp (+-inf when none). */
typedef struct eq_pool2d_params {
  int32_t batch;
  int32_t in_h, in_w;
  int32_t channels;
  int32_t out_h, out_w;
  int32_t filter_h, filter_w;
  int32_t stride_h, stride_w;
  int32_t pad_top, pad_left;
  float act_min;
  float act_max;
} eq_pool2d_params;

/* RESIZE_BILINEAR / RESIZE_NEAREST_NEIGHBOR with TFLite's coordinate rules. The scales are
 * derived in the kernel, in float32, exactly as TFLite derives them. */
typedef struct eq_resize_params {
  int32_t batch;
  int32_t in_h, in_w;
  int32_t channels;
  int32_t out_h, out_w;
  int32_t align_corners;       /* 0 or 1 */
  int32_t half_pixel_centers;  /* 0 or 1 */
} eq_resize_params;

/* The coordinate rules every resize kernel shares (the reference's, kernels/ref/pool.c). */
static inline float eq_resize_scale(int32_t in_size, int32_t out_size, int32_t align_corners) {
  if (align_corners && out_size > 1) return (float)(in_size - 1) / (float)(out_size - 1);
  return (float)in_size / (float)out_size;
}

/* Source coordinate of output index i for bilinear sampling and its two neighbours, clamped to
 * the input the way TFLite clamps them (the weights use the unclamped coordinate). */
static inline void eq_bilinear_source(int32_t i, float scale, int32_t half_pixel, int32_t in_size,
                                      float *pos, int32_t *lo, int32_t *hi) {
  const float v = half_pixel ? ((float)i + 0.5f) * scale - 0.5f : (float)i * scale;
  const int32_t f = (int32_t)floorf(v), c = (int32_t)ceilf(v);
  *pos = v;
  *lo = f > 0 ? f : 0;
  *hi = c < in_size - 1 ? c : in_size - 1;
}

/* One job of the vector RESIZE_BILINEAR kernels: rows(job, begin, end) over output rows
 * (batch * out_h of them), run by eq_resize_bilinear_run (kernels/ref/pool.c) in chunks of
 * about 32 K outputs. */
struct eq_node;
struct eq_ctx;
typedef struct eq_resize_job {
  const struct eq_node *node;
  float scale_h, scale_w;
} eq_resize_job;

int eq_resize_bilinear_run(const struct eq_node *node, struct eq_ctx *ctx,
                           void (*rows)(void *job, int64_t begin, int64_t end));

/* Output row `row` (counted over the batch) of a bilinear resize of `in`: its two source rows
 * and the weight dy of the second. */
static inline void eq_bilinear_rows(const eq_resize_params *p, float scale_h, const float *in,
                                    int64_t row, const float **row0, const float **row1,
                                    float *dy) {
  const int32_t b = (int32_t)(row / p->out_h), oy = (int32_t)(row % p->out_h);
  const int64_t row_stride = (int64_t)p->in_w * p->channels;
  float sy;
  int32_t y0, y1;
  eq_bilinear_source(oy, scale_h, p->half_pixel_centers, p->in_h, &sy, &y0, &y1);
  *dy = sy - (float)y0;
  const float *image = in + (int64_t)b * p->in_h * row_stride;
  *row0 = image + (int64_t)y0 * row_stride;
  *row1 = image + (int64_t)y1 * row_stride;
}

#endif
