/* Parameters of the convolution and matrix kernels (mirrored by ctypes structs in
 * edgeq/ops/conv.py). Prepare fills every field and has checked that they agree with the
 * tensors' shapes, so kernels index with them directly. */
#ifndef EDGEQ_PARAMS_CONV_H
#define EDGEQ_PARAMS_CONV_H
#include <stdint.h>

/* CONV_2D, DEPTHWISE_CONV_2D and TRANSPOSE_CONV share one geometry. Activations are NHWC.
 *
 * conv2d:         filter [out_c, k_h, k_w, in_c / groups]; output channel oc reads input
 *                 channels of group oc / (out_c / groups).
 * depthwise:      filter [1, k_h, k_w, out_c], out_c = in_c * depth_multiplier; output channel
 *                 ic * depth_multiplier + m reads input channel ic.
 * transpose conv: filter [out_c, k_h, k_w, in_c]; input pixel (y, x) adds into output pixel
 *                 (y * stride - pad + ky * dilation, ...); dilation is always 1 there.
 *
 * pad_top / pad_left are the padding before the first row / column (TFLite puts the odd extra
 * padding after). act_min / act_max is the fused clamp (+-inf when none). hard_swish (depthwise
 * only, 0 elsewhere): the output after the clamp goes through HARD_SWISH, x * clamp(x + 3, 0, 6)
 * / 6 in that op's order of operations (eq_hard_swish_f32), so bit for bit the unfused op; the
 * driver sets it from the kernel's name (`depthwise_conv2d_f32*_hswish`), prepare leaves it 0. */
typedef struct eq_conv_params {
  int32_t batch;
  int32_t in_h, in_w, in_c;
  int32_t out_h, out_w, out_c;
  int32_t k_h, k_w;
  int32_t stride_h, stride_w;
  int32_t dilation_h, dilation_w;
  int32_t pad_top, pad_left;
  int32_t groups;            /* conv2d only; 1 elsewhere */
  int32_t depth_multiplier;  /* depthwise only; 1 elsewhere */
  float act_min, act_max;
  int32_t hard_swish;
} eq_conv_params;

/* HARD_SWISH of one value in the op's order: (x * clamp(x + 3, 0, 6)) / 6; a NaN stays NaN. */
static inline float eq_hard_swish_f32(float x) {
  const float g = x + 3.0f;
  return x * (g < 0.0f ? 0.0f : (g > 6.0f ? 6.0f : g)) / 6.0f;
}

/* The interior output columns [*lo, *hi) of a convolution: ox * s - pad >= 0 and
 * ox * s - pad + (k_w - 1) * d <= in_w - 1, every tap inside the width (an empty range when
 * there is none). */
static inline void eq_conv_interior_columns(const eq_conv_params *p, int32_t *lo_out,
                                            int32_t *hi_out) {
  const int64_t s = p->stride_w, span = (int64_t)(p->k_w - 1) * p->dilation_w;
  int64_t lo = (p->pad_left + s - 1) / s;
  const int64_t last = (int64_t)p->in_w - 1 - span + p->pad_left;
  int64_t hi = last >= 0 ? last / s + 1 : 0;
  if (hi > p->out_w) hi = p->out_w;
  if (lo > hi) lo = hi;
  *lo_out = (int32_t)lo;
  *hi_out = (int32_t)hi;
}

/* TRANSPOSE_CONV (eq_conv_params, with pad_top / pad_left as prepare derives them): the
 * [lo, hi] (inclusive) of input positions i with 0 <= i < in_size whose window, placed at
 * i * stride - pad, covers output position t - pad, i.e. 0 <= t - i * stride < k. Empty when
 * lo > hi. t >= 0 always (pad >= 0), so the divisions below round the right way. */
static inline void eq_transpose_window(int32_t t, int32_t k, int32_t stride, int32_t in_size,
                                       int32_t *lo, int32_t *hi) {
  const int64_t first = (int64_t)t - k + 1;  /* i * stride must reach at least this */
  *lo = first <= 0 ? 0 : (int32_t)((first + stride - 1) / stride);
  *hi = t / stride;
  if (*hi > in_size - 1) *hi = in_size - 1;
}

/* The input window of output pixel (oy, ox) of a TRANSPOSE_CONV: the input pixels (iy, ix) in
 * [iy_lo, iy_hi] x [ix_lo, ix_hi] contribute, each through filter tap (ty - iy * stride_h,
 * tx - ix * stride_w). */
typedef struct eq_deconv_window {
  int32_t ty, tx, iy_lo, iy_hi, ix_lo, ix_hi;
} eq_deconv_window;

static inline eq_deconv_window eq_deconv_window_at(const eq_conv_params *p, int32_t oy,
                                                   int32_t ox) {
  eq_deconv_window w;
  w.ty = oy + p->pad_top;
  w.tx = ox + p->pad_left;
  eq_transpose_window(w.ty, p->k_h, p->stride_h, p->in_h, &w.iy_lo, &w.iy_hi);
  eq_transpose_window(w.tx, p->k_w, p->stride_w, p->in_w, &w.ix_lo, &w.ix_hi);
  return w;
}

/* The column windows [ix_lo, ix_hi] of output columns 0, 1, 2, ... of a TRANSPOSE_CONV row,
 * kept up to date as ox grows instead of divided out per pixel (the dot-product kernels):
 * ix_hi = tx / stride, ix_lo = max(0, floor((tx - k_w + stride) / stride)), tx = ox + pad_left,
 * each a quotient whose remainder steps by one. */
typedef struct eq_deconv_columns {
  int32_t hi_q, hi_r, lo_q, lo_r;
} eq_deconv_columns;

static inline eq_deconv_columns eq_deconv_columns_begin(const eq_conv_params *p) {
  const int32_t s = p->stride_w, u0 = p->pad_left - p->k_w + s;  /* u0 may be negative */
  eq_deconv_columns c;
  c.hi_q = p->pad_left / s;
  c.hi_r = p->pad_left % s;
  c.lo_q = u0 >= 0 ? u0 / s : -((-u0 + s - 1) / s);
  c.lo_r = u0 - c.lo_q * s;
  return c;
}

/* The window of the current column, then a step to the next. */
static inline void eq_deconv_columns_next(const eq_conv_params *p, eq_deconv_columns *c,
                                          int32_t *ix_lo, int32_t *ix_hi) {
  *ix_lo = c->lo_q > 0 ? c->lo_q : 0;
  *ix_hi = c->hi_q < p->in_w - 1 ? c->hi_q : p->in_w - 1;
  if (++c->hi_r == p->stride_w) c->hi_r = 0, ++c->hi_q;
  if (++c->lo_r == p->stride_w) c->lo_r = 0, ++c->lo_q;
}

/* for (iy, ix) in the window, tap = the filter tap (ky * k_w + kx) through which input pixel
 * (iy, ix) reaches the window's output pixel: the taps in increasing (y, x). */
#define EQ_DECONV_FOR_EACH_TAP(p, win, iy, ix, tap)                                         \
  for (int32_t iy = (win).iy_lo; iy <= (win).iy_hi; ++iy)                                  \
    for (int32_t ix = (win).ix_lo,                                                         \
                 tap = ((win).ty - iy * (p)->stride_h) * (p)->k_w + (win).tx - ix * (p)->stride_w; \
         ix <= (win).ix_hi; ++ix, tap -= (p)->stride_w)

/* Packed TRANSPOSE_CONV weights (transpose_conv2d_f32_packed / transpose_conv2d_qd8_grid,
 * made once at prepare): [k_h * k_w][in_c][ocp] floats, ocp = out_c rounded up to
 * EQ_DECONV_OC_BLOCK and zero past out_c, so that one tap's one input channel is a contiguous
 * run of output channels; the bias (and the QD8 weight scales) padded to ocp alike. */
#define EQ_DECONV_OC_BLOCK 8
static inline int32_t eq_deconv_ocp(int32_t out_c) {
  return (out_c + EQ_DECONV_OC_BLOCK - 1) / EQ_DECONV_OC_BLOCK * EQ_DECONV_OC_BLOCK;
}

/* One image's work for a row function of those kernels: rows(job, oy_begin, oy_end). */
struct eq_node;
struct eq_ctx;
typedef struct eq_deconv_job {
  const struct eq_node *node;
  const float *image;    /* this image of the input, or its grid */
  const float *w_scale;  /* NULL for float32 */
  float row_scale;       /* QD8: the image's quantization scale */
  int32_t batch;         /* the image's index */
} eq_deconv_job;

/* Runs `rows` over every image (kernels/ref/conv.c), quantizing each first when qd8. */
int eq_deconv_packed_run(const struct eq_node *node, struct eq_ctx *ctx, int qd8,
                         void (*rows)(void *job, int64_t begin, int64_t end));

/* FULLY_CONNECTED: out[r, u] = sum_k in[r, k] * weights[u, k] (+ bias[u]), for rows r of the
 * input seen as [rows, depth]. */
typedef struct eq_fc_params {
  int32_t rows;
  int32_t depth;
  int32_t units;
  float act_min, act_max;
} eq_fc_params;

#define EQ_MATMUL_BATCH_DIMS 6

/* BATCH_MATMUL: out[b][m, n] = sum_k lhs[b][m, k] * rhs[b][k, n]. The batch index space is
 * batch_dims (collapsed, padded with leading 1s); lhs_batch / rhs_batch are each operand's
 * stride along those dims in whole matrices (0 where the operand is broadcast). Inside one
 * matrix, element (m, k) of lhs is at m * lhs_m_stride + k * lhs_k_stride and element (k, n) of
 * rhs at k * rhs_k_stride + n * rhs_n_stride, which covers adj_x / adj_y. */
typedef struct eq_matmul_params {
  int32_t batch_dims[EQ_MATMUL_BATCH_DIMS];
  int32_t lhs_batch[EQ_MATMUL_BATCH_DIMS];
  int32_t rhs_batch[EQ_MATMUL_BATCH_DIMS];
  int32_t m, k, n;
  int32_t lhs_m_stride, lhs_k_stride;
  int32_t rhs_k_stride, rhs_n_stride;
} eq_matmul_params;

#endif
