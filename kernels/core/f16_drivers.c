/* fp16 storage around float32 kernels (params: edgeq/f16.h): the conversion node kernels, the
 * converters each ISA level provides, and the twin driver that runs a float32 kernel slice by
 * slice on fp16 tensors. */
#include <stdatomic.h>
#include <string.h>

#include "edgeq/cpu.h"
#include "edgeq/dispatch.h"
#include "edgeq/f16.h"
#include "edgeq/f32_gemm.h"
#include "edgeq/params/elementwise.h"
#include "edgeq/params/pool.h"
#include "edgeq/threadpool.h"

eq_f16_converters eq_f16_converters_for(uint32_t isa) {
  eq_f16_converters c = {eq_f16_to_f32__scalar, eq_f32_to_f16__scalar};
#if defined(__x86_64__) || defined(_M_X64)
  if (isa & EQ_ISA_AVX512) {
    c.to_f32 = eq_f16_to_f32__avx512;
    c.to_f16 = eq_f32_to_f16__avx512;
  } else if (isa & EQ_ISA_AVX2) {
    c.to_f32 = eq_f16_to_f32__avx2;
    c.to_f16 = eq_f32_to_f16__avx2;
  }
#elif defined(__aarch64__)
  if (isa & EQ_ISA_NEON) {
    c.to_f32 = eq_f16_to_f32__neon;
    c.to_f16 = eq_f32_to_f16__neon;
  }
#else
  (void)isa;
#endif
  return c;
}

/* --- conversion nodes --------------------------------------------------------------------- */

typedef struct convert_job {
  eq_f16_to_f32_fn to_f32;
  eq_f32_to_f16_fn to_f16;
  const void *in;
  void *out;
} convert_job;

static void convert_range(void *arg, int64_t begin, int64_t end) {
  const convert_job *j = (const convert_job *)arg;
  if (j->to_f32 != NULL) {
    j->to_f32((size_t)(end - begin), (const uint16_t *)j->in + begin, (float *)j->out + begin);
  } else {
    j->to_f16((size_t)(end - begin), (const float *)j->in + begin, (uint16_t *)j->out + begin);
  }
}

/* Converts n elements, split among the context's threads (large tensors only). */
static void convert_parallel(eq_ctx *ctx, eq_f16_to_f32_fn to_f32, eq_f32_to_f16_fn to_f16,
                             const void *in, void *out, int64_t n) {
  convert_job job = {to_f32, to_f16, in, out};
  eq_parallel_for(ctx, n, 1 << 15, convert_range, &job);
}

int eq_f16_convert_node(const eq_node *node, eq_ctx *ctx, eq_f16_to_f32_fn to_f32,
                        eq_f32_to_f16_fn to_f16) {
  convert_parallel(ctx, to_f32, to_f16, node->inputs[0]->data, node->outputs[0]->data,
                   node->outputs[0]->count);
  return 0;
}

void eq_f16_to_f32__scalar(size_t n, const uint16_t *in, float *out) {
  for (size_t i = 0; i < n; ++i) out[i] = eq_half_to_float(in[i]);
}

void eq_f32_to_f16__scalar(size_t n, const float *in, uint16_t *out) {
  for (size_t i = 0; i < n; ++i) out[i] = eq_float_to_half(in[i]);
}

/* --- twins ---------------------------------------------------------------------------------- */

/* What one slice runs on: shadow tensors over scratch, and the node that points at them. */
typedef struct twin_slice {
  const eq_node *node;
  eq_ctx *ctx;
  const eq_f16_twin_params *p;
  eq_f16_converters cv;
  eq_tensor in[EQ_F16_MAX_INPUTS];
  const eq_tensor *in_ptr[EQ_F16_MAX_INPUTS];
  eq_tensor out;
  eq_tensor *out_ptr[1];
  eq_node shadow;
  uint8_t params[EQ_F16_INNER_PARAMS_MAX];
  char *scratch;   /* this slot's scratch: the inner kernel's, then the buffers */
  float *buffers;  /* float32 slice buffers, after the inner kernel's scratch */
  int64_t slot, slots;  /* this runner takes slices k with k % slots == slot */
} twin_slice;

static void twin_setup(twin_slice *s, const eq_node *node, eq_ctx *ctx, int64_t slot,
                       int64_t slots) {
  const eq_f16_twin_params *p = (const eq_f16_twin_params *)node->params;
  s->slot = slot;
  s->slots = slots;
  s->scratch = (char *)node->scratch + slot * p->slot_bytes;
  s->node = node;
  s->ctx = ctx;
  s->p = p;
  s->cv = eq_f16_converters_for(ctx->isa);
  for (int32_t i = 0; i < node->n_inputs; ++i) {
    s->in_ptr[i] = node->inputs[i];
    if (node->inputs[i] != NULL) s->in[i] = *node->inputs[i];
  }
  s->out = *node->outputs[0];
  s->out_ptr[0] = &s->out;
  memcpy(s->params, p->inner_params, (size_t)p->inner_params_size);
  s->shadow = *node;
  s->shadow.run = (eq_kernel_fn)(uintptr_t)p->inner;
  s->shadow.params = p->inner_params_size ? s->params : NULL;
  s->shadow.inputs = s->in_ptr;
  s->shadow.outputs = s->out_ptr;
  s->shadow.scratch_bytes = p->inner_scratch;
  s->buffers = (float *)(s->scratch + ((p->inner_scratch + 63) & ~(int64_t)63));
}

static inline int is_mine(const twin_slice *s, int64_t k) { return k % s->slots == s->slot; }

static int is_f16_input(const twin_slice *s, int32_t i) {
  return ((s->p->f16_inputs >> i) & 1u) && s->node->inputs[i] != NULL;
}

/* Points input i's shadow at its `count` elements from `first` on: converted into buf when the
 * input is fp16 (returns the next free buffer), else read in place. */
static float *stage_input(twin_slice *s, int32_t i, int64_t first, int64_t count, float *buf,
                          int32_t ndim, const int32_t *dims) {
  eq_tensor *t = &s->in[i];
  const eq_tensor *src = s->node->inputs[i];
  if (is_f16_input(s, i)) {
    convert_parallel(s->ctx, s->cv.to_f32, NULL, (const uint16_t *)src->data + first, buf,
                     count);
    t->data = buf;
    t->dtype = EQ_FLOAT32;
    buf += (count + 15) & ~(int64_t)15;
  } else {
    t->data = (char *)src->data + first * (int64_t)eq_dtype_size(src->dtype);
  }
  t->count = count;
  if (ndim > 0) {
    t->ndim = ndim;
    memcpy(t->dims, dims, sizeof(int32_t) * (size_t)ndim);
  }
  s->in_ptr[i] = t;
  return buf;
}

static int out_is_f16(const twin_slice *s) { return s->node->outputs[0]->dtype == EQ_FLOAT16; }

/* The output slice from element `first` on: float32 in buf, or the output itself when it is
 * float32 (a graph output). */
static void set_output(twin_slice *s, float *buf, int64_t first, int64_t count, int32_t ndim,
                       const int32_t *dims) {
  s->out.data = out_is_f16(s) ? buf : (float *)s->node->outputs[0]->data + first;
  s->out.dtype = EQ_FLOAT32;
  s->out.count = count;
  if (ndim > 0) {
    s->out.ndim = ndim;
    memcpy(s->out.dims, dims, sizeof(int32_t) * (size_t)ndim);
  }
}

static int run_and_store(twin_slice *s, float *out_buf, int64_t first, int64_t count) {
  s->shadow.scratch = s->scratch;
  if (s->shadow.run(&s->shadow, s->ctx) != 0) return -1;
  if (!out_is_f16(s)) return 0;
  convert_parallel(s->ctx, NULL, s->cv.to_f16, out_buf,
                   (uint16_t *)s->node->outputs[0]->data + first, count);
  return 0;
}

/* Geometry fields a band changes; conv and pool params keep them in different places. */
typedef struct band_geometry {
  int32_t *batch, *in_h, *out_h, *pad_top;
  int32_t in_w, in_c, out_w, out_c, k_h, stride_h, dilation_h;
} band_geometry;

static band_geometry band_fields(twin_slice *s, int pool) {
  band_geometry g;
  if (pool) {
    eq_pool2d_params *q = (eq_pool2d_params *)s->params;
    g.batch = &q->batch, g.in_h = &q->in_h, g.out_h = &q->out_h, g.pad_top = &q->pad_top;
    g.in_w = q->in_w, g.in_c = q->channels, g.out_w = q->out_w, g.out_c = q->channels;
    g.k_h = q->filter_h, g.stride_h = q->stride_h, g.dilation_h = 1;
  } else {
    eq_conv_params *q = (eq_conv_params *)s->params;
    g.batch = &q->batch, g.in_h = &q->in_h, g.out_h = &q->out_h, g.pad_top = &q->pad_top;
    g.in_w = q->in_w, g.in_c = q->in_c, g.out_w = q->out_w, g.out_c = q->out_c;
    g.k_h = q->k_h, g.stride_h = q->stride_h, g.dilation_h = q->dilation_h;
  }
  return g;
}

/* Bands of output rows: each band's receptive field is converted, and the geometry shifted so
 * that the float32 kernel sees that field as its whole input. */
static int twin_bands(twin_slice *s, int pool) {
  band_geometry g = band_fields(s, pool);
  const int32_t batch = *g.batch, in_h = *g.in_h, out_h = *g.out_h, pad_top = *g.pad_top;
  const int64_t in_row = (int64_t)g.in_w * g.in_c, out_row = (int64_t)g.out_w * g.out_c;
  const int32_t band = s->p->slice > 0 ? s->p->slice : 1;
  int64_t k = 0;
  for (int32_t b = 0; b < batch; ++b) {
    for (int32_t oy0 = 0; oy0 < out_h; oy0 += band) {
      if (!is_mine(s, k++)) continue;
      const int32_t rows = out_h - oy0 < band ? out_h - oy0 : band;
      int64_t first = (int64_t)oy0 * g.stride_h - pad_top;
      int64_t last = (int64_t)(oy0 + rows - 1) * g.stride_h - pad_top +
                     (int64_t)(g.k_h - 1) * g.dilation_h;  /* inclusive */
      const int32_t r0 = first < 0 ? 0 : (int32_t)first;
      int32_t r1 = last >= in_h ? in_h : (int32_t)last + 1;
      if (r1 < r0) r1 = r0;
      *g.batch = 1;
      *g.out_h = rows;
      *g.in_h = r1 - r0;
      *g.pad_top = first < 0 ? (int32_t)-first : 0;
      const int32_t in_dims[4] = {1, r1 - r0, g.in_w, g.in_c};
      const int32_t out_dims[4] = {1, rows, g.out_w, g.out_c};
      float *buf = s->buffers;
      if (r1 > r0) {
        buf = stage_input(s, 0, ((int64_t)b * in_h + r0) * in_row, (int64_t)(r1 - r0) * in_row,
                          buf, 4, in_dims);
      } else {
        /* The band reads only padding: an empty input the kernel never touches. */
        s->in[0].data = buf;
        s->in[0].dtype = EQ_FLOAT32;
        s->in[0].count = 0;
        s->in_ptr[0] = &s->in[0];
      }
      const int64_t out_at = ((int64_t)b * out_h + oy0) * out_row;
      set_output(s, buf, out_at, rows * out_row, 4, out_dims);
      if (run_and_store(s, buf, out_at, rows * out_row) != 0) return -1;
    }
  }
  return 0;
}

/* Slices of rows of a [rows, depth] -> [rows, units] kernel (eq_fc_params first). */
static int twin_rows(twin_slice *s) {
  eq_fc_params *q = (eq_fc_params *)s->params;
  const int32_t total = q->rows, depth = q->depth, units = q->units;
  const int32_t step = s->p->slice > 0 ? s->p->slice : 1;
  for (int32_t r0 = 0, k = 0; r0 < total; r0 += step) {
    if (!is_mine(s, k++)) continue;
    const int32_t rows = total - r0 < step ? total - r0 : step;
    q->rows = rows;
    const int32_t in_dims[2] = {rows, depth}, out_dims[2] = {rows, units};
    float *buf = stage_input(s, 0, (int64_t)r0 * depth, (int64_t)rows * depth, s->buffers, 2,
                             in_dims);
    set_output(s, buf, (int64_t)r0 * units, (int64_t)rows * units, 2, out_dims);
    if (run_and_store(s, buf, (int64_t)r0 * units, (int64_t)rows * units) != 0) return -1;
  }
  return 0;
}

/* Slices of the flat element range of input 0 and the output (same count; softmax slices are
 * whole rows); other inputs (PRELU-like constants) are read whole. */
static int twin_flat(twin_slice *s) {
  const int64_t total = s->node->outputs[0]->count;
  const int64_t step = s->p->slice > 0 ? s->p->slice : 1;
  for (int64_t e0 = 0, k = 0; e0 < total; e0 += step) {
    if (!is_mine(s, k++)) continue;
    const int64_t n = total - e0 < step ? total - e0 : step;
    const int32_t dims[1] = {(int32_t)n};
    float *buf = stage_input(s, 0, e0, n, s->buffers, 1, dims);
    set_output(s, buf, e0, n, 1, dims);
    if (run_and_store(s, buf, e0, n) != 0) return -1;
  }
  return 0;
}

/* Slices along the outermost output dim of size > 1 of a broadcast binary op. */
static int twin_binary(twin_slice *s) {
  eq_binary_params *q = (eq_binary_params *)s->params;
  const eq_binary_params *orig = (const eq_binary_params *)s->p->inner_params;
  int32_t d = 0;
  while (d < EQ_BCAST_DIMS - 1 && orig->out_dims[d] == 1) ++d;
  int64_t inner = 1;
  for (int32_t k = d + 1; k < EQ_BCAST_DIMS; ++k) inner *= orig->out_dims[k];
  const int32_t extent = orig->out_dims[d];
  const int32_t step = s->p->slice > 0 ? s->p->slice : 1;
  const int32_t *strides[2] = {orig->a_strides, orig->b_strides};
  for (int32_t i0 = 0, k = 0; i0 < extent; i0 += step) {
    if (!is_mine(s, k++)) continue;
    const int32_t n = extent - i0 < step ? extent - i0 : step;
    q->out_dims[d] = n;
    float *buf = s->buffers;
    for (int32_t i = 0; i < 2; ++i) {
      const int64_t stride = strides[i][d];
      /* An operand broadcast along d is read whole by every slice; otherwise the slice's
       * elements are the contiguous run [i0 * stride, (i0 + n) * stride). */
      const int64_t first = stride ? (int64_t)i0 * stride : 0;
      const int64_t count = stride ? (int64_t)n * stride : s->node->inputs[i]->count;
      buf = stage_input(s, i, first, count, buf, 0, NULL);
    }
    set_output(s, buf, (int64_t)i0 * inner, n * inner, 0, NULL);
    if (run_and_store(s, buf, (int64_t)i0 * inner, n * inner) != 0) return -1;
  }
  return 0;
}

/* Whole tensors at once. */
static int twin_whole(twin_slice *s) {
  float *buf = s->buffers;
  for (int32_t i = 0; i < s->node->n_inputs; ++i) {
    if (is_f16_input(s, i)) buf = stage_input(s, i, 0, s->node->inputs[i]->count, buf, 0, NULL);
  }
  set_output(s, buf, 0, s->node->outputs[0]->count, 0, NULL);
  return run_and_store(s, buf, 0, s->node->outputs[0]->count);
}

static int twin_run(twin_slice *s) {
  switch (s->p->kind) {
    case EQ_F16_CONV: return twin_bands(s, 0);
    case EQ_F16_POOL: return twin_bands(s, 1);
    case EQ_F16_ROWS: return twin_rows(s);
    case EQ_F16_FLAT: return twin_flat(s);
    case EQ_F16_BINARY: return twin_binary(s);
    case EQ_F16_WHOLE: return twin_whole(s);
    default: return eq_fail(s->ctx, "fp16 twin: unknown slicing kind %d", (int)s->p->kind);
  }
}

typedef struct slots_job {
  const eq_node *node;
  eq_ctx *ctx;
  atomic_int failed;
} slots_job;

/* Slots [begin, end), each on its own scratch, with one-thread inner kernels. */
static void twin_slots(void *arg, int64_t begin, int64_t end) {
  slots_job *job = (slots_job *)arg;
  const eq_f16_twin_params *p = (const eq_f16_twin_params *)job->node->params;
  for (int64_t slot = begin; slot < end; ++slot) {
    eq_ctx local = *job->ctx;
    local.pool = NULL;
    local.num_threads = 1;
    twin_slice s;
    twin_setup(&s, job->node, &local, slot, p->slots);
    if (twin_run(&s) != 0 && atomic_exchange(&job->failed, 1) == 0) {
      memcpy(job->ctx->message, local.message, sizeof local.message);
    }
  }
}

int eq_f16_twin(const eq_node *node, eq_ctx *ctx) {
  const eq_f16_twin_params *p = (const eq_f16_twin_params *)node->params;
  if (node->n_inputs > EQ_F16_MAX_INPUTS || p->inner == 0 || p->slots < 1 ||
      p->inner_params_size > EQ_F16_INNER_PARAMS_MAX || p->inner_params_size < 0)
    return eq_fail(ctx, "fp16 twin: malformed params");
  if (p->slots > 1 && ctx->pool != NULL && ctx->num_threads > 1) {
    slots_job job = {node, ctx, 0};
    eq_parallel_for(ctx, p->slots, 1, twin_slots, &job);
    return atomic_load(&job.failed) ? -1 : 0;
  }
  twin_slice s;
  twin_setup(&s, node, ctx, 0, 1);
  return twin_run(&s);
}

/* --- elementwise ---------------------------------------------------------------------------- */

typedef struct binary_job {
  const eq_node *node;
  eq_f16_vbinary_fn row;
} binary_job;

/* Rows [begin, end) of the outer index space (the first five collapsed dims). */
static void binary_rows(void *arg, int64_t begin, int64_t end) {
  const binary_job *j = (const binary_job *)arg;
  const eq_binary_params *p = (const eq_binary_params *)j->node->params;
  const uint16_t *A = (const uint16_t *)j->node->inputs[0]->data;
  const uint16_t *B = (const uint16_t *)j->node->inputs[1]->data;
  uint16_t *out = (uint16_t *)j->node->outputs[0]->data;
  const int32_t *d = p->out_dims;
  const int32_t n = d[EQ_BCAST_DIMS - 1];
  for (int64_t r = begin; r < end; ++r) {
    int64_t rest = r, at_a = 0, at_b = 0;
    for (int32_t k = EQ_BCAST_DIMS - 2; k >= 0; --k) {
      const int64_t i = rest % d[k];
      rest /= d[k];
      at_a += i * p->a_strides[k];
      at_b += i * p->b_strides[k];
    }
    j->row((size_t)n, A + at_a, p->a_strides[EQ_BCAST_DIMS - 1], B + at_b,
           p->b_strides[EQ_BCAST_DIMS - 1], out + r * n, p->act_min, p->act_max);
  }
}

int eq_f16_binary(const eq_node *node, eq_ctx *ctx, eq_f16_vbinary_fn row) {
  const eq_binary_params *p = (const eq_binary_params *)node->params;
  int64_t rows = 1;
  for (int32_t k = 0; k < EQ_BCAST_DIMS - 1; ++k) rows *= p->out_dims[k];
  const int64_t n = p->out_dims[EQ_BCAST_DIMS - 1];
  if (rows * n == 0) return 0;
  binary_job job = {node, row};
  eq_parallel_for(ctx, rows, n >= 16384 ? 1 : 16384 / n, binary_rows, &job);
  return 0;
}

typedef struct unary_job {
  const uint16_t *in;
  uint16_t *out;
  eq_f16_vunary_fn row;
} unary_job;

static void unary_range(void *arg, int64_t begin, int64_t end) {
  const unary_job *j = (const unary_job *)arg;
  j->row((size_t)(end - begin), j->in + begin, j->out + begin);
}

int eq_f16_unary(const eq_node *node, eq_ctx *ctx, eq_f16_vunary_fn row) {
  unary_job job = {(const uint16_t *)node->inputs[0]->data, (uint16_t *)node->outputs[0]->data,
                   row};
  eq_parallel_for(ctx, node->outputs[0]->count, 16384, unary_range, &job);
  return 0;
}

/* --- fp16 GEMM -------------------------------------------------------------------------------- */

/* A task's tiles: their A rows about this many bytes, so that they stay in L1 while every
 * packed block passes over them. */
#define F16_GEMM_GROUP_BYTES (16 * 1024)
/* Below this many multiply-adds a GEMM runs on the calling thread alone. */
#define F16_GEMM_PARALLEL_MACS (128 * 1024)

typedef struct f16_gemm_job {
  const eq_f16_gemm_ukernel *uk;
  int64_t m;
  int32_t n, k;
  const uint16_t *a, *w;
  uint16_t *c;
  float lo, hi;
  int64_t group;  /* tiles per task */
} f16_gemm_job;

static void f16_gemm_tasks(void *arg, int64_t begin, int64_t end) {
  const f16_gemm_job *j = (const f16_gemm_job *)arg;
  const int32_t mr = j->uk->mr;
  const int64_t block = ((int64_t)j->k + 1) * EQ_F32_GEMM_NR;
  const int64_t m_tiles = (j->m + mr - 1) / mr;
  for (int64_t t = begin; t < end; ++t) {
    const int64_t tile0 = t * j->group;
    const int64_t tile1 = tile0 + j->group < m_tiles ? tile0 + j->group : m_tiles;
    for (int32_t col = 0; col < j->n; col += EQ_F32_GEMM_NR) {
      const int32_t nc = j->n - col < EQ_F32_GEMM_NR ? j->n - col : EQ_F32_GEMM_NR;
      const uint16_t *w = j->w + (col / EQ_F32_GEMM_NR) * block;
      for (int64_t tile = tile0; tile < tile1; ++tile) {
        const int64_t row = tile * mr;
        const int32_t rows = j->m - row < mr ? (int32_t)(j->m - row) : mr;
        j->uk->fn(rows, nc, j->k, j->a + row * j->k, j->k, w, j->c + row * j->n + col, j->n,
                  j->lo, j->hi);
      }
    }
  }
}

static int f16_gemm(eq_ctx *ctx, const eq_f16_gemm_ukernel *uk, int64_t m, int32_t n, int32_t k,
                    const eq_node *node, float lo, float hi) {
  if (node->inputs[0]->dtype != EQ_FLOAT16 || node->outputs[0]->dtype != EQ_FLOAT16 ||
      node->inputs[1]->dtype != EQ_FLOAT16)
    return eq_fail(ctx, "fp16 GEMM: input, packed weights and output must be fp16");
  if (uk->mr < 1 || uk->mr > EQ_F16_GEMM_MAX_MR) return eq_fail(ctx, "fp16 GEMM: bad tile");
  if (m <= 0 || n <= 0) return 0;
  const int64_t m_tiles = (m + uk->mr - 1) / uk->mr;
  int64_t group = F16_GEMM_GROUP_BYTES / ((int64_t)uk->mr * (k > 0 ? k : 1) * 2);
  if (group < 1) group = 1;
  if (group > m_tiles) group = m_tiles;
  f16_gemm_job job = {uk, m, n, k, (const uint16_t *)node->inputs[0]->data,
                      (const uint16_t *)node->inputs[1]->data,
                      (uint16_t *)node->outputs[0]->data, lo, hi, group};
  const int64_t tasks = (m_tiles + group - 1) / group;
  const int64_t grain = m * n * (int64_t)k < F16_GEMM_PARALLEL_MACS ? tasks : 1;
  eq_parallel_for(ctx, tasks, grain, f16_gemm_tasks, &job);
  return 0;
}

int eq_f16_conv2d_gemm(const eq_node *node, eq_ctx *ctx, const eq_f16_gemm_ukernel *uk) {
  const eq_conv_params *p = (const eq_conv_params *)node->params;
  return f16_gemm(ctx, uk, (int64_t)p->batch * p->out_h * p->out_w, p->out_c, p->in_c, node,
                  p->act_min, p->act_max);
}

int eq_f16_fully_connected_gemm(const eq_node *node, eq_ctx *ctx,
                                const eq_f16_gemm_ukernel *uk) {
  const eq_fc_params *p = (const eq_fc_params *)node->params;
  return f16_gemm(ctx, uk, p->rows, p->units, p->depth, node, p->act_min, p->act_max);
}

/* --- fp16 depthwise ----------------------------------------------------------------------- */

typedef struct f16_dw_job {
  const eq_node *node;
  const eq_conv_params *p;
  eq_f16_dwconv_fn dw;
  const uint16_t *zeros;  /* in_w * C zeros */
  int32_t ox_lo, ox_hi;   /* interior output columns: every tap inside the width */
} f16_dw_job;

static void f16_dw_rows(void *arg, int64_t begin, int64_t end) {
  const f16_dw_job *j = (const f16_dw_job *)arg;
  const eq_conv_params *p = j->p;
  const int32_t c = p->in_c, taps = p->k_h * p->k_w;
  const uint16_t *in = (const uint16_t *)j->node->inputs[0]->data;
  const uint16_t *w = (const uint16_t *)j->node->inputs[1]->data;
  const uint16_t *bias = (const uint16_t *)j->node->inputs[2]->data;
  uint16_t *out = (uint16_t *)j->node->outputs[0]->data;
  const uint16_t *ptrs[EQ_F16_DW_MAX_TAPS];
  for (int64_t row = begin; row < end; ++row) {
    const int32_t b = (int32_t)(row / p->out_h), oy = (int32_t)(row % p->out_h);
    const uint16_t *in_b = in + (int64_t)b * p->in_h * p->in_w * c;
    uint16_t *out_row = out + row * p->out_w * c;
    for (int32_t ox = 0; ox < p->out_w;) {
      const int interior = ox >= j->ox_lo && ox < j->ox_hi;
      const int32_t pixels = interior ? j->ox_hi - ox : 1;
      for (int32_t ky = 0, t = 0; ky < p->k_h; ++ky) {
        const int32_t iy = oy * p->stride_h - p->pad_top + ky * p->dilation_h;
        const int row_ok = iy >= 0 && iy < p->in_h;
        /* a row outside the image reads the zero row at the same columns */
        const uint16_t *r = row_ok ? in_b + (int64_t)iy * p->in_w * c : j->zeros;
        for (int32_t kx = 0; kx < p->k_w; ++kx, ++t) {
          const int32_t ix = ox * p->stride_w - p->pad_left + kx * p->dilation_w;
          ptrs[t] = ix >= 0 && ix < p->in_w ? r + (int64_t)ix * c : j->zeros;
        }
      }
      j->dw(pixels, c, taps, ptrs, (int64_t)p->stride_w * c, w, bias,
            out_row + (int64_t)ox * c, p->act_min, p->act_max);
      ox += pixels;
    }
  }
}

int eq_f16_depthwise(const eq_node *node, eq_ctx *ctx, eq_f16_dwconv_fn dw) {
  const eq_conv_params *p = (const eq_conv_params *)node->params;
  if (node->n_inputs < 3 || node->inputs[2] == NULL || node->inputs[0]->dtype != EQ_FLOAT16 ||
      node->inputs[1]->dtype != EQ_FLOAT16 || node->inputs[2]->dtype != EQ_FLOAT16 ||
      node->outputs[0]->dtype != EQ_FLOAT16)
    return eq_fail(ctx, "fp16 depthwise: input, filter, bias and output must be fp16");
  if (p->in_c != p->out_c || p->k_h * p->k_w > EQ_F16_DW_MAX_TAPS || p->k_h * p->k_w < 1)
    return eq_fail(ctx, "fp16 depthwise: multiplier 1 and at most %d taps only",
                   EQ_F16_DW_MAX_TAPS);
  const int64_t zero_row = (int64_t)(p->in_w > 0 ? p->in_w : 1) * p->in_c;
  if (node->scratch_bytes < zero_row * 2)
    return eq_fail(ctx, "fp16 depthwise: scratch of %lld bytes, needs %lld",
                   (long long)node->scratch_bytes, (long long)(zero_row * 2));
  uint16_t *zeros = (uint16_t *)node->scratch;
  memset(zeros, 0, (size_t)zero_row * sizeof(uint16_t));
  f16_dw_job job = {node, p, dw, zeros, 0, 0};
  eq_conv_interior_columns(p, &job.ox_lo, &job.ox_hi);
  const int64_t rows = (int64_t)p->batch * p->out_h;
  const int64_t macs = rows * p->out_w * p->in_c * p->k_h * p->k_w;
  eq_parallel_for(ctx, rows, macs < F16_GEMM_PARALLEL_MACS ? rows : 1, f16_dw_rows, &job);
  return 0;
}

static int convert_f16_f32(const eq_node *node, eq_ctx *ctx) {
  return eq_f16_convert_node(node, ctx, eq_f16_converters_for(ctx->isa).to_f32, NULL);
}

static int convert_f32_f16(const eq_node *node, eq_ctx *ctx) {
  return eq_f16_convert_node(node, ctx, NULL, eq_f16_converters_for(ctx->isa).to_f16);
}

/* Portable entries: the converters inside pick the ISA variant from ctx->isa. */
const eq_kernel_info eq_core_f16_kernels[] = {
    {"convert_f16_f32", convert_f16_f32, 0, 0},
    {"convert_f32_f16", convert_f32_f16, 0, 0},
    {"f16_twin", eq_f16_twin, sizeof(eq_f16_twin_params), 0},
    {NULL, NULL, 0, 0},
};
