/* Drivers of the float32 GEMM and depthwise microkernels: they split the work into tiles and
 * thread tasks, lay out im2col rows and depthwise tap pointers, and call the ISA's microkernel
 * (edgeq/f32_gemm.h). Portable C; each ISA table wraps them with its own microkernels. */
#include <string.h>

#include "edgeq/f32_gemm.h"
#include "edgeq/params/conv.h"
#include "edgeq/threadpool.h"

/* A task's share of A is kept near this size so that it stays in L2 while the task walks every
 * packed weight block over it (each block of K x NR weights then stays in L1). */
#define GEMM_A_CHUNK_BYTES (256 * 1024)
/* Enough tasks to balance two to four threads; more only adds claiming traffic. */
#define GEMM_MIN_TASKS 8

typedef struct gemm_job {
  const eq_f32_gemm_ukernel *uk;
  int64_t m;
  int32_t n, k;
  const float *a;
  int64_t a_stride;
  const float *w;
  float *c;
  int64_t c_stride;
  float lo, hi;
  int64_t rows_per_task;    /* a multiple of the microkernel's MR */
  int32_t blocks_per_task;  /* packed NR blocks */
  int32_t n_tasks;          /* tasks along N */
} gemm_job;

static void gemm_tasks(void *arg, int64_t begin, int64_t end) {
  const gemm_job *j = (const gemm_job *)arg;
  const int32_t mr = j->uk->mr;
  const int64_t block_floats = (int64_t)(j->k + 1) * EQ_F32_GEMM_NR;
  for (int64_t t = begin; t < end; ++t) {
    const int64_t row0 = (t / j->n_tasks) * j->rows_per_task;
    const int64_t row1 = row0 + j->rows_per_task < j->m ? row0 + j->rows_per_task : j->m;
    const int32_t block0 = (int32_t)(t % j->n_tasks) * j->blocks_per_task;
    for (int32_t blk = block0; blk < block0 + j->blocks_per_task; ++blk) {
      const int32_t col = blk * EQ_F32_GEMM_NR;
      if (col >= j->n) break;
      const int32_t nc = j->n - col < EQ_F32_GEMM_NR ? j->n - col : EQ_F32_GEMM_NR;
      const float *w = j->w + blk * block_floats;
      for (int64_t row = row0; row < row1; row += mr) {
        const int32_t rows = row1 - row < mr ? (int32_t)(row1 - row) : mr;
        j->uk->fn(rows, nc, j->k, j->a + row * j->a_stride, j->a_stride, w,
                  j->c + row * j->c_stride + col, j->c_stride, j->lo, j->hi);
      }
    }
  }
}

/* c[m][n] = clamp(a[m][k] x packed w) over the whole matrix, threaded by tasks. */
static void gemm_run(eq_ctx *ctx, const eq_f32_gemm_ukernel *uk, int64_t m, int32_t n, int32_t k,
                     const float *a, int64_t a_stride, const float *w, float *c,
                     int64_t c_stride, float lo, float hi) {
  if (m <= 0 || n <= 0) return;
  const int32_t mr = uk->mr;
  int64_t tiles = GEMM_A_CHUNK_BYTES / ((int64_t)mr * (k > 0 ? k : 1) * 4);
  if (tiles < 1) tiles = 1;
  const int64_t m_tiles = (m + mr - 1) / mr;
  if (tiles > m_tiles) tiles = m_tiles;
  const int64_t m_tasks = (m_tiles + tiles - 1) / tiles;
  const int32_t blocks = (n + EQ_F32_GEMM_NR - 1) / EQ_F32_GEMM_NR;
  int32_t n_split = 1;
  if (m_tasks < GEMM_MIN_TASKS) {
    n_split = (int32_t)((GEMM_MIN_TASKS + m_tasks - 1) / m_tasks);
    if (n_split > blocks) n_split = blocks;
  }
  gemm_job job = {uk, m, n, k, a, a_stride, w, c, c_stride, lo, hi, tiles * mr,
                  (blocks + n_split - 1) / n_split, 0};
  job.n_tasks = (blocks + job.blocks_per_task - 1) / job.blocks_per_task;
  eq_parallel_for(ctx, m_tasks * job.n_tasks, 1, gemm_tasks, &job);
}

/* 1x1 convolution, stride 1, no padding, one group: the input pixels are the rows of A.
 * Inputs: input [N, H, W, C], packed weights. */
int eq_f32_conv2d_gemm(const eq_node *node, eq_ctx *ctx, const eq_f32_gemm_ukernel *uk) {
  const eq_conv_params *p = (const eq_conv_params *)node->params;
  const int64_t m = (int64_t)p->batch * p->out_h * p->out_w;
  gemm_run(ctx, uk, m, p->out_c, p->in_c, (const float *)node->inputs[0]->data, p->in_c,
           (const float *)node->inputs[1]->data, (float *)node->outputs[0]->data, p->out_c,
           p->act_min, p->act_max);
  return 0;
}

typedef struct im2col_job {
  const eq_conv_params *p;
  const float *in;
  float *rows;    /* scratch: [count][k_h * k_w * in_c] */
  int64_t first;  /* output pixel of rows[0] */
} im2col_job;

/* Row r of the im2col matrix: the input patch of output pixel first + r, (ky, kx, c) order as
 * the OHWI filter, zeros where the patch hangs over the padding. */
static void im2col_rows(void *arg, int64_t begin, int64_t end) {
  const im2col_job *j = (const im2col_job *)arg;
  const eq_conv_params *p = j->p;
  const int32_t c = p->in_c;
  const int64_t k = (int64_t)p->k_h * p->k_w * c;
  const int64_t image = (int64_t)p->in_h * p->in_w * c;
  /* The pixel is decomposed once; the loop then steps through (b, oy, ox). */
  const int64_t pixel = j->first + begin;
  int32_t ox = (int32_t)(pixel % p->out_w);
  int32_t oy = (int32_t)((pixel / p->out_w) % p->out_h);
  int32_t b = (int32_t)(pixel / ((int64_t)p->out_w * p->out_h));
  float *dst = j->rows + begin * k;
  for (int64_t r = begin; r < end; ++r) {
    const float *in_b = j->in + b * image;
    const int32_t ix0 = ox * p->stride_w - p->pad_left;
    for (int32_t ky = 0; ky < p->k_h; ++ky) {
      const int32_t iy = oy * p->stride_h - p->pad_top + ky * p->dilation_h;
      if (iy < 0 || iy >= p->in_h) {
        memset(dst, 0, (size_t)p->k_w * c * sizeof(float));
        dst += (int64_t)p->k_w * c;
        continue;
      }
      const float *in_row = in_b + (int64_t)iy * p->in_w * c;
      if (p->dilation_w == 1 && ix0 >= 0 && ix0 + p->k_w <= p->in_w) {
        /* The whole filter row is one contiguous run of the input row. */
        const float *src = in_row + (int64_t)ix0 * c;
        const int32_t run = p->k_w * c;
        for (int32_t i = 0; i < run; ++i) dst[i] = src[i];
        dst += run;
        continue;
      }
      for (int32_t kx = 0; kx < p->k_w; ++kx, dst += c) {
        const int32_t ix = ix0 + kx * p->dilation_w;
        if (ix < 0 || ix >= p->in_w) {
          for (int32_t i = 0; i < c; ++i) dst[i] = 0.0f;
        } else {
          const float *src = in_row + (int64_t)ix * c;
          for (int32_t i = 0; i < c; ++i) dst[i] = src[i];
        }
      }
    }
    if (++ox == p->out_w) {
      ox = 0;
      if (++oy == p->out_h) {
        oy = 0;
        ++b;
      }
    }
  }
}

/* Any other one-group convolution: im2col rows into the node's scratch, as many output pixels
 * per pass as the scratch holds (prepare sized it), then the GEMM over them.
 * Inputs: input [N, H, W, C], packed weights of the filter seen as [OC, KH * KW * C]. */
int eq_f32_conv2d_im2col(const eq_node *node, eq_ctx *ctx, const eq_f32_gemm_ukernel *uk) {
  const eq_conv_params *p = (const eq_conv_params *)node->params;
  const int32_t k = p->k_h * p->k_w * p->in_c;
  const int64_t m = (int64_t)p->batch * p->out_h * p->out_w;
  const int64_t per_pass = node->scratch_bytes / ((int64_t)k * (int64_t)sizeof(float));
  float *out = (float *)node->outputs[0]->data;
  im2col_job job = {p, (const float *)node->inputs[0]->data, (float *)node->scratch, 0};
  for (int64_t first = 0; first < m; first += per_pass) {
    const int64_t count = m - first < per_pass ? m - first : per_pass;
    job.first = first;
    eq_parallel_for(ctx, count, 16, im2col_rows, &job);
    gemm_run(ctx, uk, count, p->out_c, k, job.rows, k, (const float *)node->inputs[1]->data,
             out + first * p->out_c, p->out_c, p->act_min, p->act_max);
  }
  return 0;
}

/* Inputs: input seen as [rows, depth], packed weights. */
int eq_f32_fully_connected_gemm(const eq_node *node, eq_ctx *ctx,
                                const eq_f32_gemm_ukernel *uk) {
  const eq_fc_params *p = (const eq_fc_params *)node->params;
  gemm_run(ctx, uk, p->rows, p->units, p->depth, (const float *)node->inputs[0]->data, p->depth,
           (const float *)node->inputs[1]->data, (float *)node->outputs[0]->data, p->units,
           p->act_min, p->act_max);
  return 0;
}

/* Tap pointers of border pixels are built for this many taps x pixels at a time (stack). */
#define DW_POINTERS 2048
/* Input row pointers of one output row (stack); taller filters use the pixel path only. */
#define DW_MAX_ROWS 16

typedef struct dw_job {
  const eq_node *node;
  const eq_f32_dwconv_ukernel *dw;
  const float *zeros;  /* in_w * in_c zeros: the padding, and the bias when there is none */
  int32_t ox_lo, ox_hi;  /* interior output columns: every tap inside the width */
} dw_job;

/* Border pixels [ox0, ox1) of one output row through tap pointers. */
static void dw_pixels(const dw_job *j, const float *in_b, int32_t oy, int32_t ox0, int32_t ox1,
                      const float *bias, float *out_row) {
  const eq_conv_params *p = (const eq_conv_params *)j->node->params;
  const float *weights = (const float *)j->node->inputs[1]->data;
  const int32_t c = p->in_c, taps = p->k_h * p->k_w;
  const int32_t segment = taps < DW_POINTERS ? DW_POINTERS / taps : 1;
  const float *ptrs[DW_POINTERS];
  for (int32_t first = ox0; first < ox1; first += segment) {
    const int32_t pixels = ox1 - first < segment ? ox1 - first : segment;
    const float **ptr = ptrs;
    for (int32_t ox = first; ox < first + pixels; ++ox) {
      for (int32_t ky = 0; ky < p->k_h; ++ky) {
        const int32_t iy = oy * p->stride_h - p->pad_top + ky * p->dilation_h;
        const int row_ok = iy >= 0 && iy < p->in_h;
        for (int32_t kx = 0; kx < p->k_w; ++kx) {
          const int32_t ix = ox * p->stride_w - p->pad_left + kx * p->dilation_w;
          *ptr++ = row_ok && ix >= 0 && ix < p->in_w
                       ? in_b + ((int64_t)iy * p->in_w + ix) * c : j->zeros;
        }
      }
    }
    j->dw->pixels(pixels, c, taps, ptrs, weights, bias, out_row + (int64_t)first * c,
                  p->act_min, p->act_max);
  }
}

static void dw_rows(void *arg, int64_t begin, int64_t end) {
  const dw_job *j = (const dw_job *)arg;
  const eq_node *node = j->node;
  const eq_conv_params *p = (const eq_conv_params *)node->params;
  const float *in = (const float *)node->inputs[0]->data;
  const float *bias = node->n_inputs > 2 && node->inputs[2] ? (const float *)node->inputs[2]->data
                                                            : j->zeros;
  float *out = (float *)node->outputs[0]->data;
  const int32_t c = p->in_c;
  for (int64_t row = begin; row < end; ++row) {
    const int32_t b = (int32_t)(row / p->out_h), oy = (int32_t)(row % p->out_h);
    const float *in_b = in + (int64_t)b * p->in_h * p->in_w * c;
    float *out_row = out + row * p->out_w * c;
    if (j->ox_lo >= j->ox_hi) {
      dw_pixels(j, in_b, oy, 0, p->out_w, bias, out_row);
      continue;
    }
    const float *rows[DW_MAX_ROWS];
    for (int32_t ky = 0; ky < p->k_h; ++ky) {
      const int32_t iy = oy * p->stride_h - p->pad_top + ky * p->dilation_h;
      rows[ky] = iy >= 0 && iy < p->in_h ? in_b + (int64_t)iy * p->in_w * c : j->zeros;
    }
    dw_pixels(j, in_b, oy, 0, j->ox_lo, bias, out_row);
    j->dw->row(p, rows, j->ox_lo, j->ox_hi, (const float *)node->inputs[1]->data, bias,
               out_row);
    dw_pixels(j, in_b, oy, j->ox_hi, p->out_w, bias, out_row);
  }
}

/* Depthwise convolution with multiplier 1, any size, stride, dilation and padding: the interior
 * of each row straight from the input rows, the border pixels through tap pointers.
 * Inputs: input [N, H, W, C], filter [1, KH, KW, C], optional bias [C];
 * scratch: in_w * C floats (zeros). */
int eq_f32_depthwise(const eq_node *node, eq_ctx *ctx, const eq_f32_dwconv_ukernel *dw) {
  const eq_conv_params *p = (const eq_conv_params *)node->params;
  memset(node->scratch, 0, (size_t)node->scratch_bytes);
  dw_job job = {node, dw, (const float *)node->scratch, 0, 0};
  if (p->k_h <= DW_MAX_ROWS) {
    /* ox is interior when ox * s - pad >= 0 and ox * s - pad + (k_w - 1) * d <= in_w - 1. */
    const int64_t s = p->stride_w, span = (int64_t)(p->k_w - 1) * p->dilation_w;
    int64_t lo = (p->pad_left + s - 1) / s;
    const int64_t last = (int64_t)p->in_w - 1 - span + p->pad_left;
    int64_t hi = last >= 0 ? last / s + 1 : 0;
    if (hi > p->out_w) hi = p->out_w;
    if (lo > hi) lo = hi;
    job.ox_lo = (int32_t)lo;
    job.ox_hi = (int32_t)hi;
  }
  eq_parallel_for(ctx, (int64_t)p->batch * p->out_h, 1, dw_rows, &job);
  return 0;
}
