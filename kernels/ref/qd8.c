/* QD8 kernels: float32 activations quantized per row (or image) at run time, int8 weights
 * packed at prepare. The arithmetic and the packed layout are in params/qd8.h. This file holds
 * the scalar microkernels (the spec), the op drivers that every ISA level runs its own
 * microkernels through, and the reference node kernels. */
#include <math.h>
#include <string.h>

#include "edgeq/dispatch.h"
#include "edgeq/params/conv.h"
#include "edgeq/params/qd8.h"
#include "edgeq/threadpool.h"

static inline float clampf(float v, float lo, float hi) { return v < lo ? lo : (v > hi ? hi : v); }

/* --- microkernels ---------------------------------------------------------------------- */

float eq_qd8_quant_params(float min, float max, eq_qd8_row_quant *quant) {
  const float qmin = -128.0f, qmax = 127.0f;
  const float rmin = min < 0.0f ? min : 0.0f, rmax = max > 0.0f ? max : 0.0f;
  const float q = rmin == rmax ? 1.0f : (qmax - qmin) / (rmax - rmin);
  const float rmin_q = rmin * q, rmax_q = rmax * q;
  /* Both sides give the same zero point in exact arithmetic; take the one whose rounding
   * error is smaller (the sum below compares |qmin + rmin_q| with |qmax + rmax_q|). */
  float zp = (qmin + rmin_q) + (qmax + rmax_q) > 0.0f ? qmin - rmin_q : qmax - rmax_q;
  zp = zp < qmin ? qmin : (zp > qmax ? qmax : zp);
  quant->zero_point = (int32_t)nearbyintf(zp);  /* default rounding: to nearest, ties to even */
  quant->scale = 1.0f / q;
  return q;
}

/* The row's parameters (from its minimum and maximum); returns q. */
static float row_params(size_t n, const float *x, eq_qd8_row_quant *quant) {
  float lo = x[0], hi = x[0];
  for (size_t i = 1; i < n; ++i) {
    lo = x[i] < lo ? x[i] : lo;
    hi = x[i] > hi ? x[i] : hi;
  }
  return eq_qd8_quant_params(lo, hi, quant);
}

void eq_qd8_quantize__scalar(size_t n, const float *x, int8_t *q, eq_qd8_row_quant *quant) {
  const float q_scale = row_params(n, x, quant);
  const float zp = (float)quant->zero_point;
  for (size_t i = 0; i < n; ++i) {
    const float v = nearbyintf(x[i] * q_scale) + zp;
    q[i] = (int8_t)(v < -128.0f ? -128.0f : (v > 127.0f ? 127.0f : v));
  }
}

/* Block b of the packed weights (params/qd8.h). */
typedef struct qd8_block {
  const int32_t *ksum;
  const int8_t *w;
  const float *scale, *bias;
} qd8_block;

static inline qd8_block qd8_block_at(const void *packed_w, size_t kc, size_t b) {
  const uint8_t *base = (const uint8_t *)packed_w + b * EQ_QD8_BLOCK_BYTES(kc);
  qd8_block blk;
  blk.ksum = (const int32_t *)base;
  blk.w = (const int8_t *)(base + 4 * EQ_QD8_NR);
  blk.scale = (const float *)(base + 4 * EQ_QD8_NR + EQ_QD8_NR * kc);
  blk.bias = blk.scale + EQ_QD8_NR;
  return blk;
}

/* The GEMM on either packed layout: kr consecutive k per channel (4: c4, 8: c8). */
static inline void qd8_gemm_scalar(size_t kr, size_t mr, size_t nc, size_t kc, const int8_t *a,
                                   size_t a_stride, const void *packed_w, float *c,
                                   size_t c_stride, const eq_qd8_row_quant *quant,
                                   float act_min, float act_max) {
  for (size_t b = 0; b * EQ_QD8_NR < nc; ++b) {
    const qd8_block blk = qd8_block_at(packed_w, kc, b);
    const size_t cols = nc - b * EQ_QD8_NR < EQ_QD8_NR ? nc - b * EQ_QD8_NR : EQ_QD8_NR;
    for (size_t i = 0; i < mr; ++i) {
      const int8_t *ai = a + i * a_stride;
      int32_t acc[EQ_QD8_NR];
      for (size_t j = 0; j < EQ_QD8_NR; ++j) acc[j] = -quant[i].zero_point * blk.ksum[j];
      for (size_t g = 0; g < kc / kr; ++g) {
        const int8_t *wg = blk.w + g * EQ_QD8_NR * kr;
        for (size_t j = 0; j < EQ_QD8_NR; ++j) {
          for (size_t t = 0; t < kr; ++t) {
            acc[j] += (int32_t)ai[g * kr + t] * wg[j * kr + t];
          }
        }
      }
      float *ci = c + i * c_stride + b * EQ_QD8_NR;
      for (size_t j = 0; j < cols; ++j) {
        const float v = (float)acc[j] * (quant[i].scale * blk.scale[j]) + blk.bias[j];
        ci[j] = clampf(v, act_min, act_max);
      }
    }
  }
}

static void qd8_gemm_1x16c4__scalar(size_t mr, size_t nc, size_t kc, const int8_t *a,
                                    size_t a_stride, const void *packed_w, float *c,
                                    size_t c_stride, const eq_qd8_row_quant *quant,
                                    float act_min, float act_max) {
  qd8_gemm_scalar(4, mr, nc, kc, a, a_stride, packed_w, c, c_stride, quant, act_min, act_max);
}

static void qd8_gemm_1x16c8__scalar(size_t mr, size_t nc, size_t kc, const int8_t *a,
                                    size_t a_stride, const void *packed_w, float *c,
                                    size_t c_stride, const eq_qd8_row_quant *quant,
                                    float act_min, float act_max) {
  qd8_gemm_scalar(8, mr, nc, kc, a, a_stride, packed_w, c, c_stride, quant, act_min, act_max);
}


/* --- op drivers -------------------------------------------------------------------------- */

/* One GEMM over rows [0, m) of `a` (all quantized alike, or per row), split into tasks of one
 * row tile x one chunk of weight blocks; tasks over the same chunk are adjacent so that a
 * thread streams activations past weights that stay in cache. */
#define QD8_CHUNK_BLOCKS 8

typedef struct qd8_gemm_job {
  const eq_qd8_ukernels *uk;
  int64_t m, n;
  size_t kc;
  const int8_t *a;
  const void *packed_w;
  float *c;
  const eq_qd8_row_quant *quant;  /* one per row, or one for all rows */
  int per_row;
  float act_min, act_max;
  int64_t m_tiles;
} qd8_gemm_job;

static void qd8_gemm_tasks(void *arg, int64_t begin, int64_t end) {
  const qd8_gemm_job *job = (const qd8_gemm_job *)arg;
  const int64_t mr = job->uk->mr;
  for (int64_t t = begin; t < end; ++t) {
    const int64_t chunk = t / job->m_tiles, row0 = (t % job->m_tiles) * mr;
    const int64_t col0 = chunk * QD8_CHUNK_BLOCKS * EQ_QD8_NR;
    const int64_t rows = job->m - row0 < mr ? job->m - row0 : mr;
    const int64_t cols = job->n - col0 < QD8_CHUNK_BLOCKS * EQ_QD8_NR
                             ? job->n - col0 : QD8_CHUNK_BLOCKS * EQ_QD8_NR;
    eq_qd8_row_quant same[EQ_QD8_MAX_MR];
    const eq_qd8_row_quant *quant = job->quant + row0;
    if (!job->per_row) {
      for (int64_t i = 0; i < rows; ++i) same[i] = job->quant[0];
      quant = same;
    }
    job->uk->gemm((size_t)rows, (size_t)cols, job->kc, job->a + row0 * (int64_t)job->kc,
                  job->kc,
                  (const uint8_t *)job->packed_w + (col0 / EQ_QD8_NR) * EQ_QD8_BLOCK_BYTES(job->kc),
                  job->c + row0 * job->n + col0, (size_t)job->n, quant, job->act_min,
                  job->act_max);
  }
}

static void qd8_gemm_run(eq_ctx *ctx, qd8_gemm_job *job) {
  job->m_tiles = (job->m + job->uk->mr - 1) / job->uk->mr;
  const int64_t chunks = (job->n + QD8_CHUNK_BLOCKS * EQ_QD8_NR - 1) /
                         (QD8_CHUNK_BLOCKS * EQ_QD8_NR);
  eq_parallel_for(ctx, job->m_tiles * chunks, 1, qd8_gemm_tasks, job);
}

typedef struct qd8_rows_job {
  const eq_qd8_ukernels *uk;
  const float *x;
  int8_t *q;
  eq_qd8_row_quant *quant;
  int64_t depth, kc;
} qd8_rows_job;

static void qd8_quantize_rows(void *arg, int64_t begin, int64_t end) {
  const qd8_rows_job *job = (const qd8_rows_job *)arg;
  for (int64_t r = begin; r < end; ++r) {
    int8_t *q = job->q + r * job->kc;
    job->uk->quantize((size_t)job->depth, job->x + r * job->depth, q, &job->quant[r]);
    if (job->kc > job->depth) memset(q + job->depth, 0, (size_t)(job->kc - job->depth));
  }
}

/* Scratch: rows eq_qd8_row_quant (64-byte rounded), then rows * kc quantized activations. */
static inline size_t qd8_quant_bytes(int64_t count) {
  return ((size_t)count * sizeof(eq_qd8_row_quant) + 63) & ~(size_t)63;
}

int eq_qd8_fully_connected(const eq_node *node, eq_ctx *ctx, const eq_qd8_ukernels *uk) {
  const eq_qd8_fc_params *p = (const eq_qd8_fc_params *)node->params;
  eq_qd8_row_quant *quant = (eq_qd8_row_quant *)node->scratch;
  int8_t *aq = (int8_t *)node->scratch + qd8_quant_bytes(p->rows);
  qd8_rows_job rows = {uk, (const float *)node->inputs[0]->data, aq, quant, p->depth, p->kc};
  eq_parallel_for(ctx, p->rows, 16, qd8_quantize_rows, &rows);
  qd8_gemm_job job = {uk, p->rows, p->units, (size_t)p->kc, aq, node->inputs[1]->data,
                      (float *)node->outputs[0]->data, quant, 1, p->act_min, p->act_max, 0};
  qd8_gemm_run(ctx, &job);
  return 0;
}

typedef struct qd8_im2col_job {
  const eq_qd8_conv_params *p;
  const int8_t *image;
  int8_t *cols;
  int8_t pad;
} qd8_im2col_job;

/* Rows of A for output pixels [begin, end): the (ky, kx, c) patch, in the filter's OHWI order,
 * the image's zero point where the patch leaves the image, zeros up to kc. */
static void qd8_im2col_rows(void *arg, int64_t begin, int64_t end) {
  const qd8_im2col_job *job = (const qd8_im2col_job *)arg;
  const eq_qd8_conv_params *p = job->p;
  for (int64_t pix = begin; pix < end; ++pix) {
    const int32_t oy = (int32_t)(pix / p->out_w), ox = (int32_t)(pix % p->out_w);
    int8_t *row = job->cols + pix * p->kc;
    const int32_t ix0 = ox * p->stride_w - p->pad_left;
    /* With undilated columns all inside the image, a filter row is one contiguous run. */
    const int whole_rows = p->dilation_w == 1 && ix0 >= 0 && ix0 + p->k_w <= p->in_w;
    for (int32_t ky = 0; ky < p->k_h; ++ky) {
      const int32_t iy = oy * p->stride_h - p->pad_top + ky * p->dilation_h;
      const size_t run = (size_t)p->k_w * p->in_c;
      if (iy < 0 || iy >= p->in_h) {
        memset(row, job->pad, run);
        row += run;
        continue;
      }
      if (whole_rows) {
        memcpy(row, job->image + ((int64_t)iy * p->in_w + ix0) * p->in_c, run);
        row += run;
        continue;
      }
      for (int32_t kx = 0; kx < p->k_w; ++kx, row += p->in_c) {
        const int32_t ix = ix0 + kx * p->dilation_w;
        if (ix < 0 || ix >= p->in_w) {
          memset(row, job->pad, (size_t)p->in_c);
        } else {
          memcpy(row, job->image + ((int64_t)iy * p->in_w + ix) * p->in_c, (size_t)p->in_c);
        }
      }
    }
    const int64_t used = (int64_t)p->k_h * p->k_w * p->in_c;
    memset(job->cols + pix * p->kc + used, 0, (size_t)(p->kc - used));
  }
}

int eq_qd8_conv2d(const eq_node *node, eq_ctx *ctx, const eq_qd8_ukernels *uk) {
  const eq_qd8_conv_params *p = (const eq_qd8_conv_params *)node->params;
  const int64_t image = (int64_t)p->in_h * p->in_w * p->in_c;
  const int64_t pixels = (int64_t)p->out_h * p->out_w;
  eq_qd8_row_quant *quant = (eq_qd8_row_quant *)node->scratch;
  int8_t *qimage = (int8_t *)node->scratch + qd8_quant_bytes(1);
  int8_t *cols = qimage + ((image + 63) & ~(int64_t)63);
  for (int32_t b = 0; b < p->batch; ++b) {
    uk->quantize((size_t)image, (const float *)node->inputs[0]->data + b * image, qimage, quant);
    qd8_im2col_job im2col = {p, qimage, cols, (int8_t)(quant->zero_point ^ uk->a_xor)};
    eq_parallel_for(ctx, pixels, 64, qd8_im2col_rows, &im2col);
    qd8_gemm_job job = {uk, pixels, p->out_c, (size_t)p->kc, cols, node->inputs[1]->data,
                        (float *)node->outputs[0]->data + b * pixels * p->out_c, quant, 0,
                        p->act_min, p->act_max, 0};
    qd8_gemm_run(ctx, &job);
  }
  return 0;
}

/* --- depthwise -------------------------------------------------------------------------- */

/* The image on the integer grid: x_q - zp as floats. Products with the (integer) weights and
 * their sums over at most EQ_QD8_MAX_DW_TAPS taps stay below 2^24, so float arithmetic is
 * exact there and the result equals the int32 sum of params/qd8.h whatever the order. */
void eq_qd8_quantize_grid__scalar(size_t n, const float *x, float *grid,
                                  eq_qd8_row_quant *quant) {
  const float q_scale = row_params(n, x, quant);
  const float zp = (float)quant->zero_point;
  for (size_t i = 0; i < n; ++i) {
    const float v = eq_qd8_round_product(x[i], q_scale) + zp;
    grid[i] = (v < -128.0f ? -128.0f : (v > 127.0f ? 127.0f : v)) - zp;
  }
}

void eq_qd8_dwconv__scalar(size_t channels, size_t taps, const float *const *rows,
                               const float *weights, float *out, float scale,
                               const float *w_scale, const float *bias, float act_min,
                               float act_max) {
  for (size_t c = 0; c < channels; ++c) {
    float acc = 0.0f;
    for (size_t t = 0; t < taps; ++t) {
      if (rows[t] != NULL) acc += rows[t][c] * weights[t * channels + c];
    }
    out[c] = clampf(acc * (scale * w_scale[c]) + bias[c], act_min, act_max);
  }
}

typedef struct qd8_depthwise_job {
  const eq_node *node;
  const eq_qd8_ukernels *uk;
  const float *grid;
  eq_qd8_row_quant quant;
  float *out;
} qd8_depthwise_job;

/* Output rows [begin, end) of one image. With a depth multiplier above 1 each output channel
 * reads input channel oc / multiplier, which the per-pixel gather below does channel by
 * channel (rare in practice; the reference path only). */
static void qd8_depthwise_rows(void *arg, int64_t begin, int64_t end) {
  const qd8_depthwise_job *job = (const qd8_depthwise_job *)arg;
  const eq_node *node = job->node;
  const eq_qd8_conv_params *p = (const eq_qd8_conv_params *)node->params;
  const float *weights = (const float *)node->inputs[1]->data;
  const float *w_scale = (const float *)node->inputs[2]->data;
  const float *bias = (const float *)node->inputs[3]->data;
  const int32_t mult = p->depth_multiplier;
  const size_t taps = (size_t)p->k_h * p->k_w;
  const float *rows[EQ_QD8_MAX_DW_TAPS];
  /* Output columns [ox_lo, ox_hi) have every tap inside the image along x: a level with a run
   * kernel does them in one call per row. */
  int32_t ox_lo = 0, ox_hi = 0;
  if (mult == 1 && job->uk->dwconv_run != NULL) {
    ox_lo = p->pad_left > 0 ? (p->pad_left + p->stride_w - 1) / p->stride_w : 0;
    const int32_t last = p->in_w - 1 + p->pad_left - (p->k_w - 1) * p->dilation_w;
    ox_hi = last < 0 ? 0 : last / p->stride_w + 1;
    ox_hi = ox_hi < p->out_w ? ox_hi : p->out_w;
    ox_lo = ox_lo < ox_hi ? ox_lo : ox_hi;
  }
  for (int64_t oy = begin; oy < end; ++oy) {
    for (int32_t ox = 0; ox < p->out_w; ++ox) {
      if (ox == ox_lo && ox_lo < ox_hi) {
        for (int32_t ky = 0; ky < p->k_h; ++ky) {
          const int32_t iy = (int32_t)oy * p->stride_h - p->pad_top + ky * p->dilation_h;
          for (int32_t kx = 0; kx < p->k_w; ++kx) {
            const int32_t ix = ox * p->stride_w - p->pad_left + kx * p->dilation_w;
            rows[ky * p->k_w + kx] =
                iy >= 0 && iy < p->in_h ? job->grid + ((int64_t)iy * p->in_w + ix) * p->in_c
                                        : NULL;
          }
        }
        job->uk->dwconv_run((size_t)(ox_hi - ox_lo), (size_t)p->stride_w * p->in_c,
                            (size_t)p->out_c, taps, rows, weights,
                            job->out + ((int64_t)oy * p->out_w + ox) * p->out_c,
                            job->quant.scale, w_scale, bias, p->act_min, p->act_max);
        ox = ox_hi - 1;
        continue;
      }
      for (int32_t ky = 0; ky < p->k_h; ++ky) {
        const int32_t iy = (int32_t)oy * p->stride_h - p->pad_top + ky * p->dilation_h;
        for (int32_t kx = 0; kx < p->k_w; ++kx) {
          const int32_t ix = ox * p->stride_w - p->pad_left + kx * p->dilation_w;
          const int inside = iy >= 0 && iy < p->in_h && ix >= 0 && ix < p->in_w;
          rows[ky * p->k_w + kx] =
              inside ? job->grid + ((int64_t)iy * p->in_w + ix) * p->in_c : NULL;
        }
      }
      float *o = job->out + ((int64_t)oy * p->out_w + ox) * p->out_c;
      if (mult == 1) {
        job->uk->dwconv((size_t)p->out_c, taps, rows, weights, o, job->quant.scale, w_scale,
                        bias, p->act_min, p->act_max);
        continue;
      }
      for (int32_t c = 0; c < p->out_c; ++c) {
        float acc = 0.0f;
        for (size_t t = 0; t < taps; ++t) {
          if (rows[t] != NULL) acc += rows[t][c / mult] * weights[t * p->out_c + c];
        }
        const float v = acc * (job->quant.scale * w_scale[c]) + bias[c];
        o[c] = clampf(v, p->act_min, p->act_max);
      }
    }
  }
}

int eq_qd8_depthwise_conv2d(const eq_node *node, eq_ctx *ctx, const eq_qd8_ukernels *uk) {
  const eq_qd8_conv_params *p = (const eq_qd8_conv_params *)node->params;
  const int64_t image = (int64_t)p->in_h * p->in_w * p->in_c;
  const int64_t out_image = (int64_t)p->out_h * p->out_w * p->out_c;
  float *grid = (float *)node->scratch;
  for (int32_t b = 0; b < p->batch; ++b) {
    qd8_depthwise_job job = {node, uk, grid, {0, 1.0f},
                             (float *)node->outputs[0]->data + b * out_image};
    uk->quantize_grid((size_t)image, (const float *)node->inputs[0]->data + b * image, grid,
                      &job.quant);
    eq_parallel_for(ctx, p->out_h, 1, qd8_depthwise_rows, &job);
  }
  return 0;
}

/* --- node kernels --------------------------------------------------------------------------- */

static const eq_qd8_ukernels kScalar = {qd8_gemm_1x16c4__scalar, 1, 0, eq_qd8_quantize__scalar,
                                        eq_qd8_dwconv__scalar, eq_qd8_quantize_grid__scalar};

EQ_QD8_NODE_KERNELS(kScalar)

/* The c8 layout's reference (the spec of the I8MM kernels, and their stand-in wherever EDGEQ_ISA
 * leaves none): prepare packs c8 only when a c8 kernel beats the c4 one (edgeq/ops/qd8.py). */
static const eq_qd8_ukernels kScalarC8 = {qd8_gemm_1x16c8__scalar, 1, 0,
                                          eq_qd8_quantize__scalar, eq_qd8_dwconv__scalar,
                                          eq_qd8_quantize_grid__scalar};

static int fully_connected_qd8_c8(const eq_node *node, eq_ctx *ctx) {
  return eq_qd8_fully_connected(node, ctx, &kScalarC8);
}

static int conv2d_qd8_c8(const eq_node *node, eq_ctx *ctx) {
  return eq_qd8_conv2d(node, ctx, &kScalarC8);
}

const eq_kernel_info eq_ref_qd8_kernels[] = {
    EQ_QD8_TABLE_ENTRIES(0),
    {"fully_connected_qd8_c8", fully_connected_qd8_c8, sizeof(eq_qd8_fc_params), 0},
    {"conv2d_qd8_c8", conv2d_qd8_c8, sizeof(eq_qd8_conv_params), 0},
    {NULL, NULL, 0, 0},
};
