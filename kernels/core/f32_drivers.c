/* Drivers of the float32 GEMM and depthwise microkernels: they split the work into tiles and
 * thread tasks, point convolution taps at input pixels, and call the ISA's microkernel
 * (edgeq/f32_gemm.h). Portable C; each ISA table wraps them with its own microkernels. */
#include <string.h>

#include "edgeq/f32_gemm.h"
#include "edgeq/params/conv.h"
#include "edgeq/threadpool.h"

/* A task's slice of the packed weights is kept near this size, so that it stays in L2 while
 * the task's tiles walk over it. */
#define GEMM_W_SLICE_BYTES (256 * 1024)
/* Enough tasks to balance two to four threads; more only adds claiming traffic. */
#define GEMM_MIN_TASKS 32
#define GEMM_A_GROUP_BYTES (16 * 1024)
/* Below this many multiply-adds a node runs on the calling thread alone: waking a worker would
 * cost more than it saves (a keyword-spotting model's layers are a few microseconds each). */
#define PARALLEL_MIN_MACS (128 * 1024)

/* The grain that keeps a job of `macs` multiply-adds over `items` items on one thread when it
 * is small. */
static int64_t grain_for(int64_t items, int64_t macs) {
  return macs < PARALLEL_MIN_MACS ? items : 1;
}

typedef struct gemm_job {
  const eq_f32_gemm_ukernel *uk;
  int64_t m;
  int32_t n, taps, kc;
  /* Plain GEMM: row r of A at a + r * a_stride. Convolution (conv != NULL): row r is output
   * pixel r, its taps point into `a` (the input) or at `zeros`. */
  const float *a;
  int64_t a_stride;
  const eq_conv_params *conv;
  const float *zeros;
  const float *w;
  float *c;
  int64_t c_stride;
  /* The epilogue: clamp, and PRELU slopes [n] (padded to whole blocks) and a residual laid out
   * as c, or NULL (edgeq/f32_gemm.h). */
  float lo, hi;
  const float *slope, *residual;
  int32_t hard_swish;
  int64_t tiles_per_task;
  int32_t tile_blocks;  /* packed blocks a microkernel call spans at most */
  int32_t blocks_per_task;
  int32_t n_tasks;  /* tasks along N */
} gemm_job;

typedef struct out_pixel {
  int32_t b, oy, ox;
} out_pixel;

static out_pixel pixel_at(const eq_conv_params *p, int64_t pixel) {
  const int64_t by = pixel / p->out_w;
  out_pixel o = {(int32_t)(by / p->out_h), (int32_t)(by % p->out_h), (int32_t)(pixel % p->out_w)};
  return o;
}

static void next_pixel(const eq_conv_params *p, out_pixel *o) {
  if (++o->ox == p->out_w) {
    o->ox = 0;
    if (++o->oy == p->out_h) {
      o->oy = 0;
      ++o->b;
    }
  }
}

/* Copies of the filter rows that cross the input's left or right edge, zeros standing in for
 * the columns outside: with few channels a tap is too short to feed the microkernel well, so
 * the tiles at a row's ends read such copies as whole filter rows like the interior. Each group
 * of tiles fills the buffer from its start (GEMM_A_GROUP_BYTES bounds a group's rows). */
#define EDGE_MAX_CHANNELS 15
typedef struct edge_buffer {
  float *at, *end;
} edge_buffer;

/* Filter row iy of output pixel column ix0 (some columns outside the width) into the edge
 * buffer; returns the copy. */
static const float *edge_row(const eq_conv_params *p, const float *in_row, int32_t ix0,
                             edge_buffer *edge) {
  float *copy = edge->at;
  const int32_t c = p->in_c;
  for (int32_t kx = 0; kx < p->k_w; ++kx) {
    const int32_t ix = ix0 + kx;
    if (ix >= 0 && ix < p->in_w) {
      memcpy(copy + kx * c, in_row + (int64_t)ix * c, (size_t)c * sizeof(float));
    } else {
      memset(copy + kx * c, 0, (size_t)c * sizeof(float));
    }
  }
  edge->at += p->k_w * c;
  return copy;
}

/* Tap pointers of output pixel *o into ptrs[t * mr_stride]. When its filter rows lie
 * inside the input's width (and dilation_w is 1), each filter row is one contiguous run of
 * k_w * in_c input floats: one pointer per filter row, k_h taps of that length (the packed
 * weights are in the same (ky, kx, c) order, so the sums run in the same order); given an edge
 * buffer, rows crossing the width are copied there and read the same way. Returns whether it
 * gave filter rows (1) or single taps (0). */
static int conv_taps(const gemm_job *j, const out_pixel *o, int rows_allowed, edge_buffer *edge,
                     const float **ptrs, int32_t mr_stride) {
  const eq_conv_params *p = j->conv;
  const int32_t b = o->b, oy = o->oy, ox = o->ox;
  const float *in_b = j->a + (int64_t)b * p->in_h * p->in_w * p->in_c;
  const int32_t ix0 = ox * p->stride_w - p->pad_left;
  const int inside = ix0 >= 0 && ix0 + p->k_w <= p->in_w;
  const int by_rows = rows_allowed && (inside || edge);
  for (int32_t ky = 0; ky < p->k_h; ++ky) {
    const int32_t iy = oy * p->stride_h - p->pad_top + ky * p->dilation_h;
    const int row_ok = iy >= 0 && iy < p->in_h;
    const float *in_row = in_b + (int64_t)iy * p->in_w * p->in_c;
    if (by_rows) {
      *ptrs = !row_ok ? j->zeros
              : inside ? in_row + (int64_t)ix0 * p->in_c : edge_row(p, in_row, ix0, edge);
      ptrs += mr_stride;
      continue;
    }
    for (int32_t kx = 0; kx < p->k_w; ++kx, ptrs += mr_stride) {
      const int32_t ix = ix0 + kx * p->dilation_w;
      *ptrs = row_ok && ix >= 0 && ix < p->in_w ? in_row + (int64_t)ix * p->in_c : j->zeros;
    }
  }
  return by_rows;
}

/* Whether every one of `count` pixels from o on has its filter rows inside the input width. */
static int tile_by_rows(const eq_conv_params *p, out_pixel o, int32_t count) {
  if (p->dilation_w != 1) return 0;
  for (int32_t i = 0; i < count; ++i, next_pixel(p, &o)) {
    const int32_t ix0 = o.ox * p->stride_w - p->pad_left;
    if (ix0 < 0 || ix0 + p->k_w > p->in_w) return 0;
  }
  return 1;
}

/* A tile spanning output rows whose pixels all have their filter rows inside the image (always
 * so over a zero-padded copy): one pointer per pixel and filter row, the pixel's first row plus
 * ky row steps, from locals (conv_taps' checks and re-reads of the geometry per tap cost
 * keyword spotting's first layer, 125 pixels x 10 filter rows, as much as its FMAs). Writes
 * ptrs[ky * mr + i] (rows past `rows` repeat the last pixel) and returns 1, or returns 0
 * having written nothing useful when some pixel crosses the border. */
static int interior_rows_tile(const gemm_job *j, const out_pixel *o, int32_t rows, int32_t mr,
                              const float **ptrs) {
  const eq_conv_params *p = j->conv;
  if (p->dilation_w != 1) return 0;
  const int32_t in_w = p->in_w, in_h = p->in_h, c = p->in_c, k_h = p->k_h, k_w = p->k_w;
  const int32_t s_w = p->stride_w, s_h = p->stride_h, out_w = p->out_w, out_h = p->out_h;
  const int32_t pad_l = p->pad_left, pad_t = p->pad_top, span_h = (k_h - 1) * p->dilation_h;
  const int64_t row_step = (int64_t)p->dilation_h * in_w * c;
  const int64_t image = (int64_t)in_h * in_w * c;
  int32_t b = o->b, oy = o->oy, ox = o->ox;
  const float *first = NULL;
  for (int32_t i = 0; i < mr; ++i) {
    if (i < rows) {
      const int32_t ix = ox * s_w - pad_l, iy = oy * s_h - pad_t;
      if (ix < 0 || ix + k_w > in_w || iy < 0 || iy + span_h >= in_h) return 0;
      first = j->a + b * image + ((int64_t)iy * in_w + ix) * c;
      if (++ox == out_w) {
        ox = 0;
        if (++oy == out_h) {
          oy = 0;
          ++b;
        }
      }
    }
    const float *at = first;
    for (int32_t ky = 0; ky < k_h; ++ky, at += row_step) ptrs[ky * mr + i] = at;
  }
  return 1;
}

/* How a tile's A rows are given: one pointer per pixel and tap, per pixel and filter row
 * (conv_taps), or one pointer per filter row for the microkernel's strided entry. */
enum { TILE_TAPS = 0, TILE_FILTER_ROWS = 1, TILE_STRIDED_ROWS = 2 };

/* Tap pointers of the tile of `rows` output pixels from *o on (rows past them repeat the last
 * pixel) into ptrs[t * mr + i], or ptrs[ky] for TILE_STRIDED_ROWS; returns the tile's kind. */
static int conv_tile(const gemm_job *j, const out_pixel *o, int32_t rows, int32_t mr,
                     edge_buffer *edge, const float **ptrs) {
  const eq_conv_params *p = j->conv;
  const int32_t ix_first = o->ox * p->stride_w - p->pad_left;
  const int32_t ix_last = (o->ox + rows - 1) * p->stride_w - p->pad_left;
  if (p->dilation_w == 1 && o->ox + rows <= p->out_w && ix_first >= 0 &&
      ix_last + p->k_w <= p->in_w) {
    /* One output row, all inside the width: each filter row's pointer steps by the stride from
     * pixel to pixel (what conv_taps gives, without redoing its arithmetic per pixel). */
    const float *in_b = j->a + (int64_t)o->b * p->in_h * p->in_w * p->in_c;
    const int64_t step = (int64_t)p->stride_w * j->kc;
    int32_t iy = o->oy * p->stride_h - p->pad_top;
    const int32_t iy_last = iy + (p->k_h - 1) * p->dilation_h;
    if (j->uk->rows && iy >= 0 && iy_last < p->in_h) {
      for (int32_t ky = 0; ky < p->k_h; ++ky, iy += p->dilation_h)
        ptrs[ky] = in_b + ((int64_t)iy * p->in_w + ix_first) * p->in_c;
      return TILE_STRIDED_ROWS;
    }
    for (int32_t ky = 0; ky < p->k_h; ++ky, iy += p->dilation_h, ptrs += mr) {
      const int row_ok = iy >= 0 && iy < p->in_h;
      const float *at = row_ok ? in_b + ((int64_t)iy * p->in_w + ix_first) * p->in_c : j->zeros;
      const int64_t by = row_ok ? step : 0;
      ptrs[0] = at;
      for (int32_t i = 1; i < mr; ++i) {
        if (i < rows) at += by;
        ptrs[i] = at;
      }
    }
    return TILE_FILTER_ROWS;
  }
  if (interior_rows_tile(j, o, rows, mr, ptrs)) return TILE_FILTER_ROWS;
  const int64_t edge_floats = (int64_t)rows * p->k_h * p->k_w * p->in_c;
  const int copies = p->dilation_w == 1 && p->in_c <= EDGE_MAX_CHANNELS &&
                     edge->end - edge->at >= edge_floats;
  const int by_rows = copies || tile_by_rows(p, *o, rows);
  out_pixel at = *o;
  for (int32_t i = 0; i < mr; ++i) {
    if (i < rows) {
      conv_taps(j, &at, by_rows, copies ? edge : NULL, ptrs + i, mr);
      if (i + 1 < rows) next_pixel(p, &at);
    } else {
      for (int32_t t = 0; t < (by_rows ? p->k_h : j->taps); ++t)
        ptrs[t * mr + i] = ptrs[t * mr + rows - 1];
    }
  }
  return by_rows ? TILE_FILTER_ROWS : TILE_TAPS;
}

/* Moves o on by `count` pixels. */
static void advance_pixels(const eq_conv_params *p, out_pixel *o, int32_t count) {
  o->ox += count;
  while (o->ox >= p->out_w) {
    o->ox -= p->out_w;
    if (++o->oy == p->out_h) {
      o->oy = 0;
      ++o->b;
    }
  }
}

static void gemm_tasks(void *arg, int64_t begin, int64_t end) {
  const gemm_job *j = (const gemm_job *)arg;
  const int32_t mr = j->uk->mr, blocks = (j->n + EQ_F32_GEMM_NR - 1) / EQ_F32_GEMM_NR;
  const int64_t block_floats = ((int64_t)j->taps * j->kc + 1) * EQ_F32_GEMM_NR;
  const int32_t tile_ptrs = mr * j->taps;
  /* Tiles are taken a group at a time, the group's A rows small enough to stay in L1 while
   * every weight block of the task passes over them. */
  int64_t group = GEMM_A_GROUP_BYTES / ((int64_t)tile_ptrs * j->kc * 4);
  if (group > EQ_F32_GEMM_MAX_POINTERS / tile_ptrs) group = EQ_F32_GEMM_MAX_POINTERS / tile_ptrs;
  if (group < 1) group = 1;
  const float *ptrs[EQ_F32_GEMM_MAX_POINTERS];
  float edge_floats[GEMM_A_GROUP_BYTES / sizeof(float)];
  unsigned char kind[EQ_F32_GEMM_MAX_POINTERS / 4];  /* per tile of the group (mr >= 4) */
  /* Strided tiles: a plain GEMM's rows are a_stride apart, a convolution's pixels (within one
   * output row) stride_w * channels. */
  const int64_t row_step = j->conv ? (int64_t)j->conv->stride_w * j->kc : j->a_stride;
  for (int64_t t = begin; t < end; ++t) {
    const int64_t tile0 = (t / j->n_tasks) * j->tiles_per_task;
    int64_t tile_end = tile0 + j->tiles_per_task;
    const int64_t m_tiles = (j->m + mr - 1) / mr;
    if (tile_end > m_tiles) tile_end = m_tiles;
    const int32_t block0 = (int32_t)(t % j->n_tasks) * j->blocks_per_task;
    for (int64_t first = tile0; first < tile_end; first += group) {
      const int64_t tiles = tile_end - first < group ? tile_end - first : group;
      out_pixel o = {0, 0, 0};
      if (j->conv) o = pixel_at(j->conv, first * mr);
      edge_buffer edge = {edge_floats, edge_floats + GEMM_A_GROUP_BYTES / sizeof(float)};
      for (int64_t g = 0; g < tiles; ++g) {
        const int64_t row = (first + g) * mr;
        const int32_t rows = j->m - row < mr ? (int32_t)(j->m - row) : mr;
        /* Rows past the matrix repeat its last row: computed, never stored. */
        if (j->conv) {
          kind[g] = (unsigned char)conv_tile(j, &o, rows, mr, &edge, ptrs + g * tile_ptrs);
          if (g + 1 < tiles) advance_pixels(j->conv, &o, mr);
        } else if (j->uk->rows) {
          kind[g] = TILE_STRIDED_ROWS;
          ptrs[g * tile_ptrs] = j->a + row * j->a_stride;
        } else {
          kind[g] = TILE_TAPS;
          for (int32_t i = 0; i < mr; ++i)
            ptrs[g * tile_ptrs + i] = j->a + (row + (i < rows ? i : rows - 1)) * j->a_stride;
        }
      }
      const int32_t block_end = block0 + j->blocks_per_task < blocks ? block0 + j->blocks_per_task
                                                                       : blocks;
      for (int32_t blk = block0, span; blk < block_end; blk += span) {
        span = block_end - blk < j->tile_blocks ? block_end - blk : j->tile_blocks;
        /* A last block of at most 8 live columns joins the one before it in one call (a 24-
         * column tail, MobileNets' N = 24, 40, 72, ...: the 3x24 tiles of a walking kernel). */
        if (span > 1 && block_end - (blk + span) == 1 &&
            j->n - (block_end - 1) * EQ_F32_GEMM_NR <= 8)
          --span;
        const int32_t col = blk * EQ_F32_GEMM_NR;
        const int32_t nc = j->n - col < span * EQ_F32_GEMM_NR ? j->n - col
                                                               : span * EQ_F32_GEMM_NR;
        for (int64_t g = 0; g < tiles; ++g) {
          const int64_t row = (first + g) * mr;
          const int32_t rows = j->m - row < mr ? (int32_t)(j->m - row) : mr;
          const int by_rows = j->conv && kind[g] != TILE_TAPS;
          const int32_t taps = by_rows ? j->conv->k_h : j->taps;
          const int32_t kc = by_rows ? j->conv->k_w * j->kc : j->kc;
          const int64_t at = row * j->c_stride + col;
          const eq_f32_gemm_epilogue ep = {j->lo, j->hi, j->slope ? j->slope + col : NULL,
                                           j->residual ? j->residual + at : NULL,
                                           j->hard_swish};
          if (kind[g] == TILE_STRIDED_ROWS) {
            j->uk->rows(rows, nc, taps, kc, ptrs + g * tile_ptrs, row_step,
                        j->w + blk * block_floats, j->c + at, j->c_stride, &ep);
          } else {
            j->uk->fn(rows, nc, taps, kc, ptrs + g * tile_ptrs, j->w + blk * block_floats,
                      j->c + at, j->c_stride, &ep);
          }
        }
      }
    }
  }
}

/* Splits the job into tasks (slices of W that stay in L2, runs of tiles) and runs them on the
 * context's threads. */
static void gemm_run(eq_ctx *ctx, gemm_job *job) {
  if (job->m <= 0 || job->n <= 0) return;
  const int32_t blocks = (job->n + EQ_F32_GEMM_NR - 1) / EQ_F32_GEMM_NR;
  const int64_t block_bytes = ((int64_t)job->taps * job->kc + 1) * EQ_F32_GEMM_NR * 4;
  /* A call spans the microkernel's tile, or, for a kernel walking many blocks, the task's
   * whole slice of W (at least two blocks, for its 24-column tail): the tile's A rows stay in
   * L1 while the slice streams from L2 (AVX2, Zen 3: 14x14x96->576 ran 2-3% faster than
   * with 16 KB walks sharing L1 with the group's A rows; the other 1x1 layers the same). A
   * task's slice is a whole number of calls wide. */
  int32_t tile_blocks = job->uk->nr / EQ_F32_GEMM_NR;
  const int64_t slice_blocks = GEMM_W_SLICE_BYTES / block_bytes;
  if (tile_blocks > 2 && slice_blocks < tile_blocks)
    tile_blocks = slice_blocks < 2 ? 2 : (int32_t)slice_blocks;
  job->tile_blocks = tile_blocks;
  int64_t per = GEMM_W_SLICE_BYTES / block_bytes / tile_blocks * tile_blocks;
  if (per < tile_blocks) per = tile_blocks;
  job->blocks_per_task = per > blocks ? blocks : (int32_t)per;
  job->n_tasks = (blocks + job->blocks_per_task - 1) / job->blocks_per_task;
  const int64_t tiles = (job->m + job->uk->mr - 1) / job->uk->mr;
  int64_t m_tasks = (GEMM_MIN_TASKS + job->n_tasks - 1) / job->n_tasks;
  if (m_tasks > tiles) m_tasks = tiles;
  job->tiles_per_task = (tiles + m_tasks - 1) / m_tasks;
  m_tasks = (tiles + job->tiles_per_task - 1) / job->tiles_per_task;
  const int64_t macs = job->m * job->n * job->taps * job->kc;
  eq_parallel_for(ctx, m_tasks * job->n_tasks, grain_for(m_tasks * job->n_tasks, macs),
                  gemm_tasks, job);
}

/* Input i of the node when present (optional inputs are absent as NULL or past n_inputs). */
static const float *optional_input(const eq_node *node, int32_t i) {
  return node->n_inputs > i && node->inputs[i] ? (const float *)node->inputs[i]->data : NULL;
}

/* The job's epilogue from the node's optional inputs 2 (PRELU slopes) and 3 (residual). */
static void set_epilogue(gemm_job *job, const eq_node *node, float lo, float hi,
                         int32_t hard_swish) {
  job->lo = lo;
  job->hi = hi;
  job->hard_swish = hard_swish;
  job->slope = optional_input(node, 2);
  job->residual = optional_input(node, 3);
}

static void plain_gemm(eq_ctx *ctx, const eq_node *node, const eq_f32_gemm_ukernel *uk,
                       int64_t m, int32_t n, int32_t k, float lo, float hi, int32_t hard_swish) {
  gemm_job job = {uk, m, n, 1, k, (const float *)node->inputs[0]->data, k, NULL, NULL,
                  (const float *)node->inputs[1]->data, (float *)node->outputs[0]->data, n};
  set_epilogue(&job, node, lo, hi, hard_swish);
  gemm_run(ctx, &job);
}

/* The GEMM kernels' inputs past the packed weights, both optional: 2, PRELU slopes [out_c]
 * zero-padded to whole NR blocks; 3, a residual shaped as the output, added before the clamp
 * (edgeq/f32_gemm.h eq_f32_gemm_epilogue). */

/* 1x1 convolution, stride 1, no padding, one group: the input pixels are the rows of A.
 * Inputs: input [N, H, W, C], packed weights, epilogue inputs. */
int eq_f32_conv2d_gemm(const eq_node *node, eq_ctx *ctx, const eq_f32_gemm_ukernel *uk,
                       int32_t hard_swish) {
  const eq_conv_params *p = (const eq_conv_params *)node->params;
  plain_gemm(ctx, node, uk, (int64_t)p->batch * p->out_h * p->out_w, p->out_c, p->in_c,
             p->act_min, p->act_max, hard_swish);
  return 0;
}

/* The input extent the convolution reads, padding included (>= 1 when there is output). */
static int32_t padded_extent(int32_t out, int32_t k, int32_t stride, int32_t dilation) {
  return (out - 1) * stride + (k - 1) * dilation + 1;
}

/* Copies the input into a zero-padded image in `dst` and returns the geometry that reads it
 * with no padding. Only the padding is zeroed (on keyword spotting's 25x5x64 maps, zeroing the
 * whole image first cost as much as the copy). */
static eq_conv_params pad_input(const eq_conv_params *p, const float *in, float *dst) {
  eq_conv_params q = *p;
  q.in_h = padded_extent(p->out_h, p->k_h, p->stride_h, p->dilation_h);
  q.in_w = padded_extent(p->out_w, p->k_w, p->stride_w, p->dilation_w);
  q.pad_top = q.pad_left = 0;
  const int64_t c = p->in_c, row = (int64_t)q.in_w * c;
  /* Columns [left, left + w) of rows [top, top + h) hold the input; the rest is zeros. */
  const int32_t left = p->pad_left < q.in_w ? p->pad_left : q.in_w;
  const int32_t top = p->pad_top < q.in_h ? p->pad_top : q.in_h;
  int32_t w = q.in_w - left < p->in_w ? q.in_w - left : p->in_w;
  int32_t h = q.in_h - top < p->in_h ? q.in_h - top : p->in_h;
  if (w < 0) w = 0;
  if (h < 0) h = 0;
  const int64_t right = (int64_t)(q.in_w - left - w) * c;
  for (int32_t b = 0; b < p->batch; ++b) {
    float *img = dst + (int64_t)b * q.in_h * row;
    memset(img, 0, (size_t)(top * row) * sizeof(float));
    for (int32_t y = 0; y < h; ++y) {
      float *r = img + (int64_t)(top + y) * row;
      memset(r, 0, (size_t)(left * c) * sizeof(float));
      memcpy(r + left * c, in + ((int64_t)b * p->in_h + y) * p->in_w * c,
             (size_t)(w * c) * sizeof(float));
      memset(r + (left + w) * c, 0, (size_t)right * sizeof(float));
    }
    memset(img + (int64_t)(top + h) * row, 0, (size_t)((q.in_h - top - h) * row) * sizeof(float));
  }
  return q;
}

/* Any other one-group convolution, as an indirect GEMM: each output pixel's taps point at its
 * input pixels (or at a zero row over the padding), so no patch is ever copied.
 * Inputs: input [N, H, W, C], packed weights of the filter seen as [OC, KH * KW * C],
 * epilogue inputs;
 * scratch: KW * C floats (the zero row a whole filter row may point at), or, where prepare
 * asked for it (few channels, small padded input), room for the zero-padded input first: then
 * every filter row is one contiguous run and the taps need no padding checks. */
int eq_f32_conv2d_igemm(const eq_node *node, eq_ctx *ctx, const eq_f32_gemm_ukernel *uk,
                        int32_t hard_swish) {
  const eq_conv_params *p = (const eq_conv_params *)node->params;
  const int64_t zero_row = (int64_t)p->k_w * p->in_c;
  const int64_t padded = (int64_t)p->batch * p->in_c *
                         padded_extent(p->out_h, p->k_h, p->stride_h, p->dilation_h) *
                         padded_extent(p->out_w, p->k_w, p->stride_w, p->dilation_w);
  float *scratch = (float *)node->scratch;
  const float *in = (const float *)node->inputs[0]->data;
  eq_conv_params geometry = *p;
  float *zeros = scratch;
  if (p->out_h > 0 && p->out_w > 0 &&
      node->scratch_bytes >= (padded + zero_row) * (int64_t)sizeof(float)) {
    geometry = pad_input(p, in, scratch);
    in = scratch;
    zeros = scratch + padded;
  }
  memset(zeros, 0, (size_t)zero_row * sizeof(float));
  gemm_job job = {uk, (int64_t)p->batch * p->out_h * p->out_w, p->out_c, p->k_h * p->k_w,
                  p->in_c, in, 0, &geometry, zeros, (const float *)node->inputs[1]->data,
                  (float *)node->outputs[0]->data, p->out_c};
  set_epilogue(&job, node, p->act_min, p->act_max, hard_swish);
  gemm_run(ctx, &job);
  return 0;
}

/* Inputs: input seen as [rows, depth], packed weights, epilogue inputs. */
int eq_f32_fully_connected_gemm(const eq_node *node, eq_ctx *ctx,
                                const eq_f32_gemm_ukernel *uk) {
  const eq_fc_params *p = (const eq_fc_params *)node->params;
  plain_gemm(ctx, node, uk, p->rows, p->units, p->depth, p->act_min, p->act_max, 0);
  return 0;
}

/* Tap pointers of border pixels are built for this many taps x pixels at a time (stack). */
#define DW_POINTERS 2048
/* Input row pointers of one output row (stack); taller filters use the pixel path only. */
#define DW_MAX_ROWS 16

typedef struct dw_job {
  const eq_node *node;
  const eq_conv_params *p;  /* the node's geometry, or that of its zero-padded input copy */
  const float *in;
  const eq_f32_dwconv_ukernel *dw;
  const float *zeros;  /* in_w * in_c zeros: the padding, and the bias when there is none */
  int32_t ox_lo, ox_hi;  /* interior output columns: every tap inside the width */
} dw_job;

/* Border pixels [ox0, ox1) of one output row through tap pointers. */
static void dw_pixels(const dw_job *j, const float *in_b, int32_t oy, int32_t ox0, int32_t ox1,
                      const float *bias, float *out_row) {
  const eq_conv_params *p = j->p;
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
                  p->act_min, p->act_max, p->hard_swish);
  }
}

static void dw_rows(void *arg, int64_t begin, int64_t end) {
  const dw_job *j = (const dw_job *)arg;
  const eq_node *node = j->node;
  const eq_conv_params *p = j->p;
  const float *in = j->in;
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

/* Calls each(job, b, oy0, oy1) for image b's share [oy0, oy1) of rows [begin, end) of
 * batch * out_h (a thread task's rows may span images). */
static void image_shares(const void *job, int64_t begin, int64_t end, int32_t out_h,
                         void (*each)(const void *, int64_t, int32_t, int32_t)) {
  for (int64_t row = begin; row < end;) {
    const int64_t b = row / out_h, oy = row % out_h;
    const int64_t oy1 = end - b * out_h < out_h ? end - b * out_h : out_h;
    each(job, b, (int32_t)oy, (int32_t)oy1);
    row += oy1 - oy;
  }
}

static void dw_image_share(const void *arg, int64_t b, int32_t oy0, int32_t oy1) {
  const dw_job *j = (const dw_job *)arg;
  const eq_node *node = j->node;
  const eq_conv_params *p = j->p;
  const float *bias = node->n_inputs > 2 && node->inputs[2] ? (const float *)node->inputs[2]->data
                                                            : j->zeros;
  j->dw->image(p, j->in + b * p->in_h * p->in_w * p->in_c, oy0, oy1,
               (const float *)node->inputs[1]->data, bias,
               (float *)node->outputs[0]->data + b * p->out_h * p->out_w * p->in_c);
}

/* Rows [begin, end) of batch * out_h through the ISA's whole-row microkernel. */
static void dw_image_rows(void *arg, int64_t begin, int64_t end) {
  image_shares(arg, begin, end, ((const dw_job *)arg)->p->out_h, dw_image_share);
}

/* Depthwise convolution with multiplier 1, any size, stride, dilation and padding: the interior
 * of each row straight from the input rows, the border pixels through tap pointers.
 * Inputs: input [N, H, W, C], filter [1, KH, KW, C], optional bias [C];
 * scratch: in_w * C floats (zeros), or, where prepare asked for it (small maps, where border
 * pixels are many), room for the zero-padded input first: then every pixel is interior.
 * hard_swish: every microkernel ends each output in HARD_SWISH (eq_conv_params.hard_swish). */
int eq_f32_depthwise(const eq_node *node, eq_ctx *ctx, const eq_f32_dwconv_ukernel *dw,
                     int32_t hard_swish) {
  eq_conv_params node_geometry = *(const eq_conv_params *)node->params;
  node_geometry.hard_swish = hard_swish;
  const eq_conv_params *node_p = &node_geometry;
  const int64_t zero_row = (int64_t)(node_p->in_w > 0 ? node_p->in_w : 1) * node_p->in_c;
  const int64_t padded = (int64_t)node_p->batch * node_p->in_c *
      padded_extent(node_p->out_h, node_p->k_h, node_p->stride_h, node_p->dilation_h) *
      padded_extent(node_p->out_w, node_p->k_w, node_p->stride_w, node_p->dilation_w);
  float *scratch = (float *)node->scratch;
  eq_conv_params geometry = *node_p;
  const float *in = (const float *)node->inputs[0]->data;
  float *zeros = scratch;
  const int64_t rows = (int64_t)node_p->batch * node_p->out_h;
  const int64_t grain = grain_for(rows, rows * node_p->out_w * node_p->in_c * node_p->k_h *
                                            node_p->k_w);
  if (dw->image && EQ_F32_DWCONV_IMAGE_FITS(node_p)) {
    memset(zeros, 0, (size_t)node_p->in_c * sizeof(float));  /* the bias when there is none */
    dw_job job = {node, node_p, in, dw, zeros, 0, 0};
    eq_parallel_for(ctx, rows, grain, dw_image_rows, &job);
    return 0;
  }
  if (node_p->out_h > 0 && node_p->out_w > 0 &&
      node->scratch_bytes >= (padded + zero_row) * (int64_t)sizeof(float)) {
    geometry = pad_input(node_p, in, scratch);
    in = scratch;
    zeros = scratch + padded;
  }
  memset(zeros, 0, (size_t)zero_row * sizeof(float));
  const eq_conv_params *p = &geometry;
  dw_job job = {node, p, in, dw, zeros, 0, 0};
  if (p->k_h <= DW_MAX_ROWS) eq_conv_interior_columns(p, &job.ox_lo, &job.ox_hi);
  eq_parallel_for(ctx, rows, grain, dw_rows, &job);
  return 0;
}

/* --- Direct convolution of few-channel inputs ------------------------------------------- */

typedef struct direct_job {
  const eq_conv_params *p;  /* the geometry of the zero-padded input copy */
  const float *in, *packed;
  float *out;
  eq_f32_conv_direct_fn uk;
} direct_job;

static void direct_share(const void *arg, int64_t b, int32_t oy0, int32_t oy1) {
  const direct_job *j = (const direct_job *)arg;
  const eq_conv_params *p = j->p;
  j->uk(p, j->in + b * p->in_h * p->in_w * p->in_c, oy0, oy1, j->packed,
        j->out + b * p->out_h * p->out_w * p->out_c);
}

static void direct_rows(void *arg, int64_t begin, int64_t end) {
  image_shares(arg, begin, end, ((const direct_job *)arg)->p->out_h, direct_share);
}

/* A one-group convolution summed straight from a zero-padded copy of the input.
 * Inputs: input [N, H, W, C], packed weights of the filter seen as [OC, KH * KW * C];
 * scratch: the zero-padded input (prepare sizes it: _padded_input_bytes in edgeq/ops/conv.py). */
int eq_f32_conv2d_direct(const eq_node *node, eq_ctx *ctx, eq_f32_conv_direct_fn uk) {
  const eq_conv_params *p = (const eq_conv_params *)node->params;
  if (p->batch == 0 || p->out_h <= 0 || p->out_w <= 0 || p->out_c == 0) return 0;
  const int64_t padded = (int64_t)p->batch * p->in_c *
                         padded_extent(p->out_h, p->k_h, p->stride_h, p->dilation_h) *
                         padded_extent(p->out_w, p->k_w, p->stride_w, p->dilation_w);
  if (node->scratch_bytes < padded * (int64_t)sizeof(float))
    return eq_fail(ctx, "direct convolution: scratch of %lld bytes, needs %lld",
                   (long long)node->scratch_bytes, (long long)(padded * sizeof(float)));
  const eq_conv_params geometry = pad_input(p, (const float *)node->inputs[0]->data,
                                            (float *)node->scratch);
  direct_job job = {&geometry, (const float *)node->scratch,
                    (const float *)node->inputs[1]->data, (float *)node->outputs[0]->data, uk};
  const int64_t rows = (int64_t)p->batch * p->out_h;
  eq_parallel_for(ctx, rows,
                  grain_for(rows, rows * p->out_w * p->out_c * p->k_h * p->k_w * p->in_c),
                  direct_rows, &job);
  return 0;
}
