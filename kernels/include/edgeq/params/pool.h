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

#endif
