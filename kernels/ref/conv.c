/* Reference convolution and matrix kernels, float32. Scalar and readable: the spec that the
 * optimized kernels are tested against.
 *
 * Every output element accumulates its products in float32, starting from 0, in the same order
 * as TFLite's reference kernels (filter row, filter column, input channel; k for the matrix
 * ops), and adds the bias only after the sum, so results agree with TFLite's reference to the
 * last bit wherever the compiler does not contract into FMAs. The loops are ordered so that the
 * innermost one walks contiguous memory of both operands. */
#include "edgeq/batch_matmul.h"
#include "edgeq/dispatch.h"
#include "edgeq/params/conv.h"
#include "edgeq/params/qd8.h"
#include "edgeq/threadpool.h"

static inline float clampf(float v, float lo, float hi) { return v < lo ? lo : (v > hi ? hi : v); }

/* An optional input: absent either as a NULL slot or beyond n_inputs. */
static inline const float *optional_f32(const eq_node *node, int i) {
  if (i >= node->n_inputs || node->inputs[i] == NULL) return NULL;
  return (const float *)node->inputs[i]->data;
}

/* Inputs: input [N, H, W, C], filter [OC, KH, KW, C / groups], optional bias [OC]. The filter is
 * read from its tensor on every call, so it may be a runtime tensor. */
static void conv2d_f32_rows(void *arg, int64_t row_begin, int64_t row_end) {
  const eq_node *node = (const eq_node *)arg;
  const eq_conv_params *p = (const eq_conv_params *)node->params;
  const float *in = (const float *)node->inputs[0]->data;
  const float *filter = (const float *)node->inputs[1]->data;
  const float *bias = optional_f32(node, 2);
  float *out = (float *)node->outputs[0]->data;

  const int32_t group_in = p->in_c / p->groups;    /* filter's input channels */
  const int32_t group_out = p->out_c / p->groups;  /* output channels per group */
  const int64_t filter_stride = (int64_t)p->k_h * p->k_w * group_in;  /* one output channel */

  for (int64_t row = row_begin; row < row_end; ++row) {
    const int32_t b = (int32_t)(row / p->out_h), oy = (int32_t)(row % p->out_h);
    const float *in_b = in + (int64_t)b * p->in_h * p->in_w * p->in_c;
    {
      const int32_t iy0 = oy * p->stride_h - p->pad_top;
      for (int32_t ox = 0; ox < p->out_w; ++ox) {
        const int32_t ix0 = ox * p->stride_w - p->pad_left;
        float *o = out + (((int64_t)b * p->out_h + oy) * p->out_w + ox) * p->out_c;
        for (int32_t g = 0; g < p->groups; ++g) {
          const float *in_g = in_b + (int64_t)g * group_in;
          for (int32_t j = 0; j < group_out; ++j) {
            const int32_t oc = g * group_out + j;
            const float *f_oc = filter + oc * filter_stride;
            float acc = 0.0f;
            for (int32_t ky = 0; ky < p->k_h; ++ky) {
              const int32_t iy = iy0 + ky * p->dilation_h;
              if (iy < 0 || iy >= p->in_h) continue;  /* zero padding */
              for (int32_t kx = 0; kx < p->k_w; ++kx) {
                const int32_t ix = ix0 + kx * p->dilation_w;
                if (ix < 0 || ix >= p->in_w) continue;
                const float *x = in_g + ((int64_t)iy * p->in_w + ix) * p->in_c;
                const float *f = f_oc + ((int64_t)ky * p->k_w + kx) * group_in;
                for (int32_t c = 0; c < group_in; ++c) acc += x[c] * f[c];
              }
            }
            if (bias) acc += bias[oc];
            o[oc] = clampf(acc, p->act_min, p->act_max);
          }
        }
      }
    }
  }
}

/* Output rows are independent, so threads split them; each output is computed exactly as in a
 * single-threaded run, so the thread count never changes a result. */
static int conv2d_f32(const eq_node *node, eq_ctx *ctx) {
  const eq_conv_params *p = (const eq_conv_params *)node->params;
  eq_parallel_for(ctx, (int64_t)p->batch * p->out_h, 1, conv2d_f32_rows, (void *)node);
  return 0;
}

typedef struct depthwise_job {
  const eq_node *node;
  int32_t hard_swish;
} depthwise_job;

/* Inputs: input [N, H, W, C], filter [1, KH, KW, C * M], optional bias [C * M]. The output pixel
 * itself is the accumulator, so the innermost loop runs over contiguous output channels. With
 * hard_swish, HARD_SWISH after the clamp (eq_conv_params). */
static void depthwise_conv2d_f32_rows(void *arg, int64_t row_begin, int64_t row_end) {
  const depthwise_job *job = (const depthwise_job *)arg;
  const eq_node *node = job->node;
  const eq_conv_params *p = (const eq_conv_params *)node->params;
  const float *in = (const float *)node->inputs[0]->data;
  const float *filter = (const float *)node->inputs[1]->data;
  const float *bias = optional_f32(node, 2);
  float *out = (float *)node->outputs[0]->data;
  const int32_t mult = p->depth_multiplier;

  for (int64_t row = row_begin; row < row_end; ++row) {
    const int32_t b = (int32_t)(row / p->out_h), oy = (int32_t)(row % p->out_h);
    const float *in_b = in + (int64_t)b * p->in_h * p->in_w * p->in_c;
    {
      const int32_t iy0 = oy * p->stride_h - p->pad_top;
      for (int32_t ox = 0; ox < p->out_w; ++ox) {
        const int32_t ix0 = ox * p->stride_w - p->pad_left;
        float *o = out + (((int64_t)b * p->out_h + oy) * p->out_w + ox) * p->out_c;
        for (int32_t oc = 0; oc < p->out_c; ++oc) o[oc] = 0.0f;
        for (int32_t ky = 0; ky < p->k_h; ++ky) {
          const int32_t iy = iy0 + ky * p->dilation_h;
          if (iy < 0 || iy >= p->in_h) continue;
          for (int32_t kx = 0; kx < p->k_w; ++kx) {
            const int32_t ix = ix0 + kx * p->dilation_w;
            if (ix < 0 || ix >= p->in_w) continue;
            const float *x = in_b + ((int64_t)iy * p->in_w + ix) * p->in_c;
            const float *f = filter + ((int64_t)ky * p->k_w + kx) * p->out_c;
            if (mult == 1) {
              for (int32_t c = 0; c < p->in_c; ++c) o[c] += x[c] * f[c];
            } else {
              for (int32_t c = 0; c < p->in_c; ++c) {
                const float xc = x[c];
                float *oc = o + (int64_t)c * mult;
                const float *fc = f + (int64_t)c * mult;
                for (int32_t m = 0; m < mult; ++m) oc[m] += xc * fc[m];
              }
            }
          }
        }
        for (int32_t oc = 0; oc < p->out_c; ++oc) {
          const float v = clampf(bias ? o[oc] + bias[oc] : o[oc], p->act_min, p->act_max);
          o[oc] = job->hard_swish ? eq_hard_swish_f32(v) : v;
        }
      }
    }
  }
}

static int depthwise_conv2d(const eq_node *node, eq_ctx *ctx, int32_t hard_swish) {
  const eq_conv_params *p = (const eq_conv_params *)node->params;
  depthwise_job job = {node, hard_swish};
  eq_parallel_for(ctx, (int64_t)p->batch * p->out_h, 1, depthwise_conv2d_f32_rows, &job);
  return 0;
}

static int depthwise_conv2d_f32(const eq_node *node, eq_ctx *ctx) {
  return depthwise_conv2d(node, ctx, 0);
}

static int depthwise_conv2d_f32_hswish(const eq_node *node, eq_ctx *ctx) {
  return depthwise_conv2d(node, ctx, 1);
}

/* Inputs (edgeq order, see conv.py): input [N, H, W, C], filter [OC, KH, KW, C], optional bias
 * [OC]. TFLite defines the op as a scatter: every input pixel adds input * filter into the
 * window of output pixels it maps to. Computed here as a gather per output pixel, visiting the
 * contributing input pixels in increasing (y, x, channel) order: the order in which the scatter
 * adds into any one output, so the sums are the same. */
static int transpose_conv2d_f32(const eq_node *node, eq_ctx *ctx) {
  (void)ctx;
  const eq_conv_params *p = (const eq_conv_params *)node->params;
  const float *in = (const float *)node->inputs[0]->data;
  const float *filter = (const float *)node->inputs[1]->data;
  const float *bias = optional_f32(node, 2);
  float *out = (float *)node->outputs[0]->data;
  const int64_t filter_stride = (int64_t)p->k_h * p->k_w * p->in_c;

  for (int32_t b = 0; b < p->batch; ++b) {
    const float *in_b = in + (int64_t)b * p->in_h * p->in_w * p->in_c;
    for (int32_t oy = 0; oy < p->out_h; ++oy) {
      for (int32_t ox = 0; ox < p->out_w; ++ox) {
        const eq_deconv_window win = eq_deconv_window_at(p, oy, ox);
        float *o = out + (((int64_t)b * p->out_h + oy) * p->out_w + ox) * p->out_c;
        for (int32_t oc = 0; oc < p->out_c; ++oc) {
          const float *f_oc = filter + oc * filter_stride;
          float acc = 0.0f;
          EQ_DECONV_FOR_EACH_TAP(p, win, iy, ix, tap) {
            const float *x = in_b + ((int64_t)iy * p->in_w + ix) * p->in_c;
            const float *f = f_oc + (int64_t)tap * p->in_c;
            for (int32_t c = 0; c < p->in_c; ++c) acc += x[c] * f[c];
          }
          if (bias) acc += bias[oc];
          o[oc] = clampf(acc, p->act_min, p->act_max);
        }
      }
    }
  }
  return 0;
}

/* TRANSPOSE_CONV with int8 weights (the QD8 path, edgeq/ops/qd8.py): each image quantized as
 * one row (params/qd8.h), then per output pixel and channel the reference's gather in int32,
 * acc = sum over window taps t of (sum_c x_q[c] * w[oc][t][c] - zero_point * wsum[oc][t]),
 * and the QD8 epilogue clamp(float(acc) * (scale * w_scale[oc]) + bias[oc]).
 * Inputs: x [N, H, W, IC] float, w int8 [OC, KH, KW, IC], wsum int32 [OC, KH * KW] (sum over c),
 * w_scale float [OC], bias float [OC]. Scratch: the quantized image (H * W * IC bytes). */
static int transpose_conv2d_qd8(const eq_node *node, eq_ctx *ctx) {
  (void)ctx;
  const eq_conv_params *p = (const eq_conv_params *)node->params;
  const float *in = (const float *)node->inputs[0]->data;
  const int8_t *w = (const int8_t *)node->inputs[1]->data;
  const int32_t *wsum = (const int32_t *)node->inputs[2]->data;
  const float *w_scale = (const float *)node->inputs[3]->data;
  const float *bias = (const float *)node->inputs[4]->data;
  float *out = (float *)node->outputs[0]->data;
  int8_t *xq = (int8_t *)node->scratch;
  const int64_t image = (int64_t)p->in_h * p->in_w * p->in_c;
  const int32_t taps = p->k_h * p->k_w;
  for (int32_t b = 0; b < p->batch; ++b) {
    eq_qd8_row_quant quant;
    eq_qd8_quantize__scalar((size_t)image, in + b * image, xq, &quant);
    for (int32_t oy = 0; oy < p->out_h; ++oy) {
      for (int32_t ox = 0; ox < p->out_w; ++ox) {
        const eq_deconv_window win = eq_deconv_window_at(p, oy, ox);
        float *o = out + (((int64_t)b * p->out_h + oy) * p->out_w + ox) * p->out_c;
        for (int32_t oc = 0; oc < p->out_c; ++oc) {
          int32_t acc = 0;
          EQ_DECONV_FOR_EACH_TAP(p, win, iy, ix, tap) {
            const int8_t *x = xq + ((int64_t)iy * p->in_w + ix) * p->in_c;
            const int8_t *f = w + ((int64_t)oc * taps + tap) * p->in_c;
            for (int32_t c = 0; c < p->in_c; ++c) acc += (int32_t)x[c] * (int32_t)f[c];
            acc -= quant.zero_point * wsum[oc * taps + tap];
          }
          o[oc] = clampf((float)acc * (quant.scale * w_scale[oc]) + bias[oc], p->act_min,
                         p->act_max);
        }
      }
    }
  }
  return 0;
}

/* The packed-weight transposed convolution (params/conv.h) behind two kernels, portable C:
 *   transpose_conv2d_f32_packed  inputs x, packed w, bias [ocp]: clamp(sum + bias)
 *   transpose_conv2d_qd8_grid    inputs x, packed w (int8 values as floats), bias [ocp],
 *                                w_scale [ocp]; each image quantized as one row and put on the
 *                                integer grid (x_q - zero_point, exact as floats), the sums taken
 *                                in float, exactly (prepare checks 255 * sum |w| < 2^24 for every
 *                                output channel), then the QD8 epilogue: the same numbers as
 *                                transpose_conv2d_qd8. Scratch: the int8 image, 64-byte aligned,
 *                                then the grid.
 * Per output pixel the window's taps in increasing (y, x), channels innermost. */
static void deconv_packed_rows(void *arg, int64_t begin, int64_t end) {
  const eq_deconv_job *j = (const eq_deconv_job *)arg;
  const eq_conv_params *p = (const eq_conv_params *)j->node->params;
  const float *w = (const float *)j->node->inputs[1]->data;
  const float *bias = (const float *)j->node->inputs[2]->data;
  const int32_t ocp = eq_deconv_ocp(p->out_c);
  float *out = (float *)j->node->outputs[0]->data +
               (int64_t)j->batch * p->out_h * p->out_w * p->out_c;
  for (int64_t oy = begin; oy < end; ++oy) {
    for (int32_t ox = 0; ox < p->out_w; ++ox) {
      const eq_deconv_window win = eq_deconv_window_at(p, (int32_t)oy, ox);
      float *o = out + (oy * p->out_w + ox) * p->out_c;
      for (int32_t oc = 0; oc < p->out_c; ++oc) {
        float acc = 0.0f;
        EQ_DECONV_FOR_EACH_TAP(p, win, iy, ix, tap) {
          const float *x = j->image + ((int64_t)iy * p->in_w + ix) * p->in_c;
          const float *f = w + (int64_t)tap * p->in_c * ocp + oc;
          for (int32_t c = 0; c < p->in_c; ++c) acc += x[c] * f[(int64_t)c * ocp];
        }
        const float v = j->w_scale ? acc * (j->row_scale * j->w_scale[oc]) + bias[oc]
                                   : acc + bias[oc];
        o[oc] = clampf(v, p->act_min, p->act_max);
      }
    }
  }
}

/* Drives deconv_packed_rows-style row functions over the images: for QD8 each image is first
 * quantized and put on the grid (shared by every ISA's variant of the two kernels). */
int eq_deconv_packed_run(const eq_node *node, eq_ctx *ctx, int qd8, eq_task_fn rows) {
  const eq_conv_params *p = (const eq_conv_params *)node->params;
  const float *in = (const float *)node->inputs[0]->data;
  const int64_t image = (int64_t)p->in_h * p->in_w * p->in_c;
  eq_deconv_job job = {node, in, qd8 ? (const float *)node->inputs[3]->data : NULL, 1.0f, 0};
  int8_t *xq = (int8_t *)node->scratch;
  float *grid = (float *)((char *)node->scratch + ((image + 63) & ~(int64_t)63));
  for (int32_t b = 0; b < p->batch; ++b) {
    job.batch = b;
    job.image = in + b * image;
    if (qd8) {
      eq_qd8_row_quant quant;
      eq_qd8_quantize__scalar((size_t)image, job.image, xq, &quant);
      for (int64_t i = 0; i < image; ++i) grid[i] = (float)(xq[i] - quant.zero_point);
      job.image = grid;
      job.row_scale = quant.scale;
    }
    eq_parallel_for(ctx, p->out_h, 1, rows, &job);
  }
  return 0;
}

static int transpose_conv2d_f32_packed(const eq_node *node, eq_ctx *ctx) {
  return eq_deconv_packed_run(node, ctx, 0, deconv_packed_rows);
}

static int transpose_conv2d_qd8_grid(const eq_node *node, eq_ctx *ctx) {
  return eq_deconv_packed_run(node, ctx, 1, deconv_packed_rows);
}

/* Inputs: input (any shape, seen as [rows, depth]), weights [units, depth], optional bias
 * [units]. */
static int fully_connected_f32(const eq_node *node, eq_ctx *ctx) {
  (void)ctx;
  const eq_fc_params *p = (const eq_fc_params *)node->params;
  const float *in = (const float *)node->inputs[0]->data;
  const float *weights = (const float *)node->inputs[1]->data;
  const float *bias = optional_f32(node, 2);
  float *out = (float *)node->outputs[0]->data;

  for (int32_t r = 0; r < p->rows; ++r) {
    const float *x = in + (int64_t)r * p->depth;
    float *o = out + (int64_t)r * p->units;
    for (int32_t u = 0; u < p->units; ++u) {
      const float *w = weights + (int64_t)u * p->depth;
      float acc = 0.0f;
      for (int32_t k = 0; k < p->depth; ++k) acc += x[k] * w[k];
      if (bias) acc += bias[u];
      o[u] = clampf(acc, p->act_min, p->act_max);
    }
  }
  return 0;
}

/* One [m, k] x [k, n] product. When rhs rows are contiguous the output row is the accumulator
 * (innermost loop over n); otherwise rhs columns are contiguous and each output is a dot
 * product over k. Both add the products of one output in increasing k from 0. */
static void matmul_one(const eq_matmul_params *p, const float *lhs, const float *rhs,
                       float *out) {
  if (p->rhs_n_stride == 1) {
    for (int32_t i = 0; i < p->m; ++i) {
      float *o = out + (int64_t)i * p->n;
      for (int32_t j = 0; j < p->n; ++j) o[j] = 0.0f;
      for (int32_t k = 0; k < p->k; ++k) {
        const float a = lhs[(int64_t)i * p->lhs_m_stride + (int64_t)k * p->lhs_k_stride];
        const float *r = rhs + (int64_t)k * p->rhs_k_stride;
        for (int32_t j = 0; j < p->n; ++j) o[j] += a * r[j];
      }
    }
  } else {
    for (int32_t i = 0; i < p->m; ++i) {
      const float *a = lhs + (int64_t)i * p->lhs_m_stride;
      float *o = out + (int64_t)i * p->n;
      for (int32_t j = 0; j < p->n; ++j) {
        const float *r = rhs + (int64_t)j * p->rhs_n_stride;
        float acc = 0.0f;
        for (int32_t k = 0; k < p->k; ++k) {
          acc += a[(int64_t)k * p->lhs_k_stride] * r[(int64_t)k * p->rhs_k_stride];
        }
        o[j] = acc;
      }
    }
  }
}

/* Inputs: lhs, rhs (batch dims broadcast against each other). */
static int batch_matmul_f32(const eq_node *node, eq_ctx *ctx) {
  (void)ctx;
  eq_batch_matmul_walk(node, matmul_one);
  return 0;
}

const eq_kernel_info eq_ref_conv_kernels[] = {
    {"conv2d_f32", conv2d_f32, sizeof(eq_conv_params)},
    {"depthwise_conv2d_f32", depthwise_conv2d_f32, sizeof(eq_conv_params)},
    {"depthwise_conv2d_f32_hswish", depthwise_conv2d_f32_hswish, sizeof(eq_conv_params)},
    {"transpose_conv2d_f32", transpose_conv2d_f32, sizeof(eq_conv_params)},
    {"transpose_conv2d_qd8", transpose_conv2d_qd8, sizeof(eq_conv_params)},
    {"transpose_conv2d_f32_packed", transpose_conv2d_f32_packed, sizeof(eq_conv_params)},
    {"transpose_conv2d_qd8_grid", transpose_conv2d_qd8_grid, sizeof(eq_conv_params)},
    {"fully_connected_f32", fully_connected_f32, sizeof(eq_fc_params)},
    {"batch_matmul_f32", batch_matmul_f32, sizeof(eq_matmul_params)},
    {NULL, NULL, 0},
};
