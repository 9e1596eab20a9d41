/* QD8 kernels: float32 activations quantized per row (or image) at run time, int8 weights
 * packed at prepare. The arithmetic and the packed layout are in params/qd8.h. This file holds
 * the scalar microkernels (the spec), the op drivers that every ISA level runs its own
 * microkernels through, and the reference node kernels. */
#include <math.h>
#include <string.h>

#include "edgeq/dispatch.h"
#include "edgeq/f16.h"
#include "edgeq/params/conv.h"
#include "edgeq/params/qd8.h"
#include "edgeq/threadpool.h"

static inline float clampf(float v, float lo, float hi) { return v < lo ? lo : (v > hi ? hi : v); }

/* --- microkernels ---------------------------------------------------------------------- */

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
  uint16_t *c16;  /* fp16 output instead of c (precision="fp16"), or NULL */
  eq_f32_to_f16_fn to_f16;
  const eq_qd8_row_quant *quant;  /* one per row, or one for all rows */
  int per_row;
  float act_min, act_max;
  int64_t m_tiles;
} qd8_gemm_job;

static inline int64_t qd8_chunk_cols(const eq_qd8_ukernels *uk) {
  return (uk->chunk_blocks > 0 ? uk->chunk_blocks : QD8_CHUNK_BLOCKS) * EQ_QD8_NR;
}

static void qd8_gemm_tasks(void *arg, int64_t begin, int64_t end) {
  const qd8_gemm_job *job = (const qd8_gemm_job *)arg;
  const int64_t mr = job->uk->mr, chunk_cols = qd8_chunk_cols(job->uk);
  for (int64_t t = begin; t < end; ++t) {
    const int64_t chunk = t / job->m_tiles, row0 = (t % job->m_tiles) * mr;
    const int64_t col0 = chunk * chunk_cols;
    const int64_t rows = job->m - row0 < mr ? job->m - row0 : mr;
    const int64_t cols = job->n - col0 < chunk_cols ? job->n - col0 : chunk_cols;
    eq_qd8_row_quant same[EQ_QD8_MAX_MR];
    const eq_qd8_row_quant *quant = job->quant + row0;
    if (!job->per_row) {
      for (int64_t i = 0; i < rows; ++i) same[i] = job->quant[0];
      quant = same;
    }
    const void *w =
        (const uint8_t *)job->packed_w + (col0 / EQ_QD8_NR) * EQ_QD8_BLOCK_BYTES(job->kc);
    if (job->c16 == NULL) {
      job->uk->gemm((size_t)rows, (size_t)cols, job->kc, job->a + row0 * (int64_t)job->kc,
                    job->kc, w, job->c + row0 * job->n + col0, (size_t)job->n, quant,
                    job->act_min, job->act_max);
      continue;
    }
    /* fp16 epilogue: float tiles of up to QD8_CHUNK_BLOCKS blocks, then each of their rows
     * rounded into the output. */
    float tile[EQ_QD8_MAX_MR * QD8_CHUNK_BLOCKS * EQ_QD8_NR];
    for (int64_t c0 = 0; c0 < cols; c0 += QD8_CHUNK_BLOCKS * EQ_QD8_NR) {
      const int64_t part = cols - c0 < QD8_CHUNK_BLOCKS * EQ_QD8_NR
                               ? cols - c0 : QD8_CHUNK_BLOCKS * EQ_QD8_NR;
      job->uk->gemm((size_t)rows, (size_t)part, job->kc, job->a + row0 * (int64_t)job->kc,
                    job->kc, (const uint8_t *)w + (c0 / EQ_QD8_NR) * EQ_QD8_BLOCK_BYTES(job->kc),
                    tile, (size_t)part, quant, job->act_min, job->act_max);
      for (int64_t i = 0; i < rows; ++i) {
        job->to_f16((size_t)part, tile + i * part,
                    job->c16 + (row0 + i) * job->n + col0 + c0);
      }
    }
  }
}

static void qd8_gemm_run(eq_ctx *ctx, qd8_gemm_job *job) {
  job->m_tiles = (job->m + job->uk->mr - 1) / job->uk->mr;
  const int64_t chunks = (job->n + qd8_chunk_cols(job->uk) - 1) / qd8_chunk_cols(job->uk);
  const int64_t tasks = job->m_tiles * chunks;
  eq_parallel_for(ctx, tasks, eq_parallel_grain(tasks, job->m * job->n * (int64_t)job->kc),
                  qd8_gemm_tasks, job);
}

/* Byte moves of the short runs im2col makes (a first layer with one input channel moves 1-4
 * bytes at a time) and of the 0-3 padding bytes after each quantized row: fixed-size memcpy / memset pairs, which compilers turn into a move or two
 * (overlapping where n is not the size), rather than library calls costing more than the move. */
static inline void move_bytes(int8_t *d, const int8_t *s, size_t n) {
  if (n > 32) {
    memcpy(d, s, n);
  } else if (n >= 16) {
    memcpy(d, s, 16);
    memcpy(d + n - 16, s + n - 16, 16);
  } else if (n >= 8) {
    memcpy(d, s, 8);
    memcpy(d + n - 8, s + n - 8, 8);
  } else if (n >= 4) {
    memcpy(d, s, 4);
    memcpy(d + n - 4, s + n - 4, 4);
  } else {
    if (n > 0) d[0] = s[0];
    if (n > 1) d[1] = s[1];
    if (n > 2) d[2] = s[2];
  }
}

static inline void fill_bytes(int8_t *d, int8_t v, size_t n) {
  if (n > 32) {
    memset(d, v, n);
  } else if (n >= 16) {
    memset(d, v, 16);
    memset(d + n - 16, v, 16);
  } else if (n >= 8) {
    memset(d, v, 8);
    memset(d + n - 8, v, 8);
  } else if (n >= 4) {
    memset(d, v, 4);
    memset(d + n - 4, v, 4);
  } else {
    if (n > 0) d[0] = v;
    if (n > 1) d[1] = v;
    if (n > 2) d[2] = v;
  }
}

typedef struct qd8_rows_job {
  const eq_qd8_ukernels *uk;
  const float *x;
  const uint16_t *x16;  /* fp16 input, converted row by row into x, or NULL */
  eq_f16_to_f32_fn to_f32;
  int8_t *q;
  eq_qd8_row_quant *quant;
  int64_t depth, kc;
} qd8_rows_job;

static void qd8_quantize_rows(void *arg, int64_t begin, int64_t end) {
  const qd8_rows_job *job = (const qd8_rows_job *)arg;
  if (job->uk->quantize_rows != NULL) {
    for (int64_t r = begin; job->x16 != NULL && r < end; ++r) {
      job->to_f32((size_t)job->depth, job->x16 + r * job->depth,
                  (float *)job->x + r * job->depth);
    }
    job->uk->quantize_rows((size_t)(end - begin), (size_t)job->depth, job->x + begin * job->depth,
                           (size_t)job->depth, job->q + begin * job->kc, (size_t)job->kc,
                           job->quant + begin);
    for (int64_t r = begin; job->kc > job->depth && r < end; ++r) {
      fill_bytes(job->q + r * job->kc + job->depth, 0, (size_t)(job->kc - job->depth));
    }
    return;
  }
  for (int64_t r = begin; r < end; ++r) {
    int8_t *q = job->q + r * job->kc;
    if (job->x16 != NULL) {
      job->to_f32((size_t)job->depth, job->x16 + r * job->depth,
                  (float *)job->x + r * job->depth);
    }
    job->uk->quantize((size_t)job->depth, job->x + r * job->depth, q, &job->quant[r]);
    if (job->kc > job->depth) fill_bytes(q + job->depth, 0, (size_t)(job->kc - job->depth));
  }
}

/* Scratch: rows eq_qd8_row_quant (64-byte rounded), then rows * kc quantized activations. */
static inline size_t qd8_quant_bytes(int64_t count) {
  return ((size_t)count * sizeof(eq_qd8_row_quant) + 63) & ~(size_t)63;
}

/* fp16 tensors (precision="fp16", edgeq/plan/precision.py): the same arithmetic on the fp16
 * values, read through float32 copies in scratch (after the scratch above) and rounded to fp16
 * once when stored. */
static inline int is_f16(const eq_tensor *t) { return t->dtype == EQ_FLOAT16; }

static inline void *f16_staging(const eq_node *node, size_t used) {
  return (char *)node->scratch + ((used + 63) & ~(size_t)63);
}

int eq_qd8_fully_connected(const eq_node *node, eq_ctx *ctx, const eq_qd8_ukernels *uk) {
  const eq_qd8_fc_params *p = (const eq_qd8_fc_params *)node->params;
  const eq_f16_converters cv = eq_f16_converters_for(ctx->isa);
  eq_qd8_row_quant *quant = (eq_qd8_row_quant *)node->scratch;
  int8_t *aq = (int8_t *)node->scratch + qd8_quant_bytes(p->rows);
  const eq_tensor *x = node->inputs[0];
  qd8_rows_job rows = {uk, (const float *)x->data, NULL, cv.to_f32, aq, quant, p->depth, p->kc};
  if (is_f16(x)) {
    rows.x16 = (const uint16_t *)x->data;
    rows.x = (const float *)f16_staging(node, qd8_quant_bytes(p->rows) +
                                                  (size_t)p->rows * (size_t)p->kc);
  }
  const int64_t rows_grain = eq_parallel_grain(p->rows, (int64_t)p->rows * p->depth);
  eq_parallel_for(ctx, p->rows, rows_grain > 16 ? rows_grain : 16, qd8_quantize_rows, &rows);
  eq_tensor *out = node->outputs[0];
  qd8_gemm_job job = {uk, p->rows, p->units, (size_t)p->kc, aq, node->inputs[1]->data,
                      (float *)out->data, is_f16(out) ? (uint16_t *)out->data : NULL, cv.to_f16,
                      quant, 1, p->act_min, p->act_max, 0};
  qd8_gemm_run(ctx, &job);
  return 0;
}

/* The quantized image framed by its zero point, as far as the filter reaches: ph x pw pixels,
 * the image at (pad_top, pad_left) (prepare's paddings are never negative). edgeq/ops/qd8.py
 * sizes the scratch with the same formula. */
static int64_t qd8_framed_bytes(const eq_qd8_conv_params *p, int64_t *ph, int64_t *pw) {
  const int64_t reach_h = (int64_t)(p->out_h - 1) * p->stride_h +
                          (int64_t)(p->k_h - 1) * p->dilation_h + 1;
  const int64_t reach_w = (int64_t)(p->out_w - 1) * p->stride_w +
                          (int64_t)(p->k_w - 1) * p->dilation_w + 1;
  *ph = p->pad_top + p->in_h > reach_h ? p->pad_top + p->in_h : reach_h;
  *pw = p->pad_left + p->in_w > reach_w ? p->pad_left + p->in_w : reach_w;
  return *ph * *pw * p->in_c;
}

typedef struct qd8_framed_job {
  const eq_qd8_conv_params *p;
  const int8_t *framed;  /* pw pixels a row */
  int8_t *cols;
  int64_t pw;
} qd8_framed_job;

/* im2col on the framed image: every patch lies inside it, so each filter row is one run of
 * k_w * in_c bytes (undilated) or k_w runs of in_c, with no bounds to check. */
static void qd8_im2col_framed_rows(void *arg, int64_t begin, int64_t end) {
  const qd8_framed_job *job = (const qd8_framed_job *)arg;
  const eq_qd8_conv_params *p = job->p;
  const int64_t c = p->in_c, row_bytes = job->pw * c;
  const size_t run = (size_t)(p->k_w * c);
  const int64_t used = (int64_t)p->k_h * p->k_w * p->in_c;
  for (int64_t pix = begin; pix < end; ++pix) {
    const int64_t oy = pix / p->out_w, ox = pix % p->out_w;
    int8_t *row = job->cols + pix * p->kc;
    const int8_t *base = job->framed + oy * p->stride_h * row_bytes + ox * p->stride_w * c;
    for (int32_t ky = 0; ky < p->k_h; ++ky) {
      const int8_t *src = base + (int64_t)ky * p->dilation_h * row_bytes;
      if (p->dilation_w == 1) {
        move_bytes(row, src, run);
        row += run;
      } else {
        for (int32_t kx = 0; kx < p->k_w; ++kx, row += c)
          move_bytes(row, src + (int64_t)kx * p->dilation_w * c, (size_t)c);
      }
    }
    fill_bytes(job->cols + pix * p->kc + used, 0, (size_t)(p->kc - used));
  }
}

/* Scratch: one eq_qd8_row_quant (64 bytes), the quantized image (64-byte rounded), the framed
 * image (qd8_framed_bytes, 64-byte rounded), then the im2col rows (out_h * out_w * kc). */
int eq_qd8_conv2d(const eq_node *node, eq_ctx *ctx, const eq_qd8_ukernels *uk) {
  const eq_qd8_conv_params *p = (const eq_qd8_conv_params *)node->params;
  const int64_t image = (int64_t)p->in_h * p->in_w * p->in_c;
  const int64_t pixels = (int64_t)p->out_h * p->out_w;
  eq_qd8_row_quant *quant = (eq_qd8_row_quant *)node->scratch;
  int8_t *qimage = (int8_t *)node->scratch + qd8_quant_bytes(1);
  int8_t *after_image = qimage + ((image + 63) & ~(int64_t)63);
  int64_t ph = 0, pw = 0;
  const int64_t framed_bytes = (qd8_framed_bytes(p, &ph, &pw) + 63) & ~(int64_t)63;
  const int64_t needed = (int64_t)qd8_quant_bytes(1) + ((image + 63) & ~(int64_t)63) +
                         framed_bytes + pixels * p->kc;
  if (node->scratch_bytes < needed)
    return eq_fail(ctx, "conv2d_qd8: the plan gave %lld bytes of scratch, the kernel needs %lld",
                   (long long)node->scratch_bytes, (long long)needed);
  int8_t *framed = after_image, *cols = after_image + framed_bytes;
  const int64_t im2col_grain = eq_parallel_grain(pixels, pixels * p->kc);
  const int64_t c = p->in_c;
  const eq_f16_converters cv = eq_f16_converters_for(ctx->isa);
  const eq_tensor *x = node->inputs[0];
  eq_tensor *out = node->outputs[0];
  /* an fp16 input is converted past the float32 path's scratch (edgeq/plan/precision.py) */
  float *x32 = is_f16(x) ? (float *)f16_staging(node, (size_t)needed) : NULL;
  for (int32_t b = 0; b < p->batch; ++b) {
    const float *image_b = (const float *)x->data + b * image;
    if (x32 != NULL) {
      cv.to_f32((size_t)image, (const uint16_t *)x->data + b * image, x32);
      image_b = x32;
    }
    uk->quantize((size_t)image, image_b, qimage, quant);
    memset(framed, (int8_t)(quant->zero_point ^ uk->a_xor), (size_t)(ph * pw * c));
    for (int32_t y = 0; y < p->in_h; ++y)
      memcpy(framed + ((p->pad_top + y) * pw + p->pad_left) * c,
             qimage + (int64_t)y * p->in_w * c, (size_t)(p->in_w * c));
    qd8_framed_job im2col = {p, framed, cols, pw};
    eq_parallel_for(ctx, pixels, im2col_grain > 64 ? im2col_grain : 64, qd8_im2col_framed_rows,
                    &im2col);
    const int64_t out_at = b * pixels * p->out_c;
    qd8_gemm_job job = {uk, pixels, p->out_c, (size_t)p->kc, cols, node->inputs[1]->data,
                        (float *)out->data + out_at,
                        is_f16(out) ? (uint16_t *)out->data + out_at : NULL, cv.to_f16, quant, 0,
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
  uint16_t *out16;  /* fp16 output instead of out, or NULL */
  eq_f32_to_f16_fn to_f16;
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
   * kernel does them in one call per row (float32 outputs only: the run kernels write floats,
   * an fp16 output goes pixel by pixel through the staging below). */
  int32_t ox_lo = 0, ox_hi = 0;
  if (mult == 1 && job->uk->dwconv_run != NULL && job->out16 == NULL) {
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
      const int64_t at = ((int64_t)oy * p->out_w + ox) * p->out_c;
      float pixel[EQ_QD8_MAX_F16_DW_CHANNELS];
      float *o = job->out16 != NULL ? pixel : job->out + at;
      if (mult == 1) {
        job->uk->dwconv((size_t)p->out_c, taps, rows, weights, o, job->quant.scale, w_scale,
                        bias, p->act_min, p->act_max);
        if (job->out16 != NULL) job->to_f16((size_t)p->out_c, o, job->out16 + at);
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
      if (job->out16 != NULL) job->to_f16((size_t)p->out_c, o, job->out16 + at);
    }
  }
}

int eq_qd8_depthwise_conv2d(const eq_node *node, eq_ctx *ctx, const eq_qd8_ukernels *uk) {
  const eq_qd8_conv_params *p = (const eq_qd8_conv_params *)node->params;
  const int64_t image = (int64_t)p->in_h * p->in_w * p->in_c;
  const int64_t out_image = (int64_t)p->out_h * p->out_w * p->out_c;
  float *grid = (float *)node->scratch;
  const eq_f16_converters cv = eq_f16_converters_for(ctx->isa);
  const eq_tensor *x = node->inputs[0];
  eq_tensor *out = node->outputs[0];
  for (int32_t b = 0; b < p->batch; ++b) {
    qd8_depthwise_job job = {node, uk, grid, {0, 1.0f}, (float *)out->data + b * out_image,
                             is_f16(out) ? (uint16_t *)out->data + b * out_image : NULL,
                             cv.to_f16};
    const float *image_b = (const float *)x->data + b * image;
    if (is_f16(x)) {
      /* The grid is quantized in place: each element is read before it is written. */
      cv.to_f32((size_t)image, (const uint16_t *)x->data + b * image, grid);
      image_b = grid;
    }
    uk->quantize_grid((size_t)image, image_b, grid, &job.quant);
    eq_parallel_for(ctx, p->out_h,
                    eq_parallel_grain(p->out_h, out_image * (int64_t)p->k_h * p->k_w),
                    qd8_depthwise_rows, &job);
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
    {"fully_connected_qd8_c8_f16", fully_connected_qd8_c8, sizeof(eq_qd8_fc_params), 0},
    {"conv2d_qd8_c8_f16", conv2d_qd8_c8, sizeof(eq_qd8_conv_params), 0},
    {NULL, NULL, 0, 0},
};
