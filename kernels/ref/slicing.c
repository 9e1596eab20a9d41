/* Reference slicing and padding kernels: PAD/PADV2/MIRROR_PAD, GATHER, SPACE_TO_BATCH_ND /
 * BATCH_TO_SPACE_ND; SLICE, STRIDED_SLICE, DEPTH_TO_SPACE and SPACE_TO_DEPTH are the movement
 * family's strided copy under their own names. Like the movement kernels they never look at
 * values, so they work per element size or per byte, and they return before touching memory
 * when the output is empty. Innermost work is a memcpy of a contiguous run or a fill. */
#include <string.h>

#include "edgeq/dispatch.h"
#include "edgeq/params/slicing.h"
#include "strided_copy.h"

typedef void (*fill_fn)(char *dst, int64_t n, const uint8_t *value);

static void fill_x8(char *dst, int64_t n, const uint8_t *value) {
  if (n > 0) memset(dst, value[0], (size_t)n);
}

#define DEFINE_FILL(NAME, T)                                     \
  static void NAME(char *dst, int64_t n, const uint8_t *value) { \
    T v;                                                         \
    memcpy(&v, value, sizeof v);                                 \
    T *d = (T *)dst;                                             \
    for (int64_t i = 0; i < n; ++i) d[i] = v;                    \
  }

DEFINE_FILL(fill_x16, uint16_t)
DEFINE_FILL(fill_x32, uint32_t)
DEFINE_FILL(fill_x64, uint64_t)

/* memset is the fastest fill there is, and zero is by far the most common padding. */
#define DEFINE_ZERO_FILL(NAME, BYTES)                            \
  static void NAME(char *dst, int64_t n, const uint8_t *value) { \
    (void)value;                                                 \
    if (n > 0) memset(dst, 0, (size_t)n * (BYTES));              \
  }

DEFINE_ZERO_FILL(fill_zero_x16, 2)
DEFINE_ZERO_FILL(fill_zero_x32, 4)
DEFINE_ZERO_FILL(fill_zero_x64, 8)

static fill_fn fill_for_size(size_t es, const uint8_t *value) {
  int zero = 1;
  for (size_t i = 0; i < es; ++i) zero &= value[i] == 0;
  if (zero) {
    switch (es) {
      case 1: return fill_x8;
      case 2: return fill_zero_x16;
      case 4: return fill_zero_x32;
      default: return fill_zero_x64;
    }
  }
  switch (es) {
    case 1: return fill_x8;
    case 2: return fill_x16;
    case 4: return fill_x32;
    default: return fill_x64;
  }
}

/* -- PAD, PADV2, MIRROR_PAD --------------------------------------------------------------- */

typedef struct pad_walk {
  const eq_pad_params *p;
  size_t es;
  fill_fn fill;
  int64_t in_stride[EQ_MAX_DIMS];  /* elements */
  int64_t out_stride[EQ_MAX_DIMS]; /* elements */
} pad_walk;

static void pad_walk_init(pad_walk *w, const eq_node *node) {
  const eq_pad_params *p = (const eq_pad_params *)node->params;
  w->p = p;
  w->es = eq_dtype_size(node->outputs[0]->dtype);
  w->fill = fill_for_size(w->es, p->value);
  int64_t in = 1, out = 1;
  for (int32_t k = p->ndim - 1; k >= 0; --k) {
    w->in_stride[k] = in;
    w->out_stride[k] = out;
    in *= p->in_dims[k];
    out *= (int64_t)p->before[k] + p->in_dims[k] + p->after[k];
  }
}

/* Output block of dim k: the border fills, the interior copies input blocks. The rows of the
 * innermost dim are done in place (one fill, one memcpy, one fill each), not by recursing. */
static void pad_constant_dim(const pad_walk *w, int32_t k, const char *src, char *dst) {
  const eq_pad_params *p = w->p;
  const size_t block = (size_t)w->out_stride[k] * w->es;
  w->fill(dst, p->before[k] * w->out_stride[k], p->value);
  dst += p->before[k] * block;
  if (k == p->ndim - 1) {
    if (p->in_dims[k] > 0) memcpy(dst, src, (size_t)p->in_dims[k] * w->es);
  } else if (k == p->ndim - 2) {
    const int32_t last = k + 1;
    const size_t run = (size_t)p->in_dims[last] * w->es;
    const size_t head = (size_t)p->before[last] * w->es;
    for (int32_t i = 0; i < p->in_dims[k]; ++i) {
      char *row = dst + i * block;
      w->fill(row, p->before[last], p->value);
      if (run > 0) memcpy(row + head, src + i * run, run);
      w->fill(row + head + run, p->after[last], p->value);
    }
  } else {
    const size_t in_block = (size_t)w->in_stride[k] * w->es;
    for (int32_t i = 0; i < p->in_dims[k]; ++i) {
      pad_constant_dim(w, k + 1, src + i * in_block, dst + i * block);
    }
  }
  dst += p->in_dims[k] * block;
  w->fill(dst, p->after[k] * w->out_stride[k], p->value);
}

static int pad_constant(const eq_node *node, eq_ctx *ctx) {
  (void)ctx;
  if (node->outputs[0]->count == 0) return 0;
  pad_walk w;
  pad_walk_init(&w, node);
  pad_constant_dim(&w, 0, (const char *)node->inputs[0]->data, (char *)node->outputs[0]->data);
  return 0;
}

/* The interior index a border index o of a dim mirrors (o counted in the output). */
static int64_t mirrored(int64_t o, int64_t before, int64_t size, int64_t symmetric) {
  const int64_t i = o - before;
  if (i < 0) return -i - symmetric;
  if (i >= size) return 2 * size - 2 + symmetric - i;
  return i;
}

/* The interior is copied from the input first; each border block is then a copy of the
 * finished output block it mirrors, so a padded outer dim costs one memcpy per block. */
static void mirror_pad_dim(const pad_walk *w, int32_t k, const char *src, char *dst) {
  const eq_pad_params *p = w->p;
  const int64_t symmetric = p->mode == EQ_PAD_SYMMETRIC;
  const int64_t n = p->in_dims[k], before = p->before[k], out_n = before + n + p->after[k];
  const size_t block = (size_t)w->out_stride[k] * w->es;
  if (k == p->ndim - 1) {
    memcpy(dst + before * block, src, (size_t)n * w->es);
  } else {
    const size_t in_block = (size_t)w->in_stride[k] * w->es;
    for (int64_t i = 0; i < n; ++i) {
      mirror_pad_dim(w, k + 1, src + i * in_block, dst + (before + i) * block);
    }
  }
  for (int64_t o = 0; o < out_n; ++o) {
    if (o >= before && o < before + n) continue;
    memcpy(dst + o * block, dst + (before + mirrored(o, before, n, symmetric)) * block, block);
  }
}

static int mirror_pad(const eq_node *node, eq_ctx *ctx) {
  (void)ctx;
  if (node->outputs[0]->count == 0) return 0;
  pad_walk w;
  pad_walk_init(&w, node);
  mirror_pad_dim(&w, 0, (const char *)node->inputs[0]->data, (char *)node->outputs[0]->data);
  return 0;
}

/* -- GATHER ------------------------------------------------------------------------------- */

#define DEFINE_GATHER(NAME, IDX_T)                                                            \
  static int NAME(const eq_node *node, eq_ctx *ctx) {                                         \
    const eq_gather_params *p = (const eq_gather_params *)node->params;                       \
    eq_tensor *out = node->outputs[0];                                                        \
    if (out->count == 0) return 0;                                                            \
    const size_t row = (size_t)p->inner * eq_dtype_size(out->dtype);                          \
    const char *src = (const char *)node->inputs[0]->data;                                    \
    const IDX_T *indices = (const IDX_T *)node->inputs[1]->data;                              \
    char *dst = (char *)out->data;                                                            \
    for (int64_t b = 0; b < p->batch; ++b) {                                                  \
      const IDX_T *idx = indices + b * p->n_indices;                                          \
      for (int64_t o = 0; o < p->outer; ++o) {                                                \
        const char *base = src + (size_t)((b * p->outer + o) * p->axis_size) * row;           \
        for (int64_t j = 0; j < p->n_indices; ++j) {                                          \
          const int64_t v = (int64_t)idx[j];                                                  \
          if (v < 0 || v >= p->axis_size) {                                                   \
            return eq_fail(ctx, "GATHER: index %lld (element %lld of the indices) is out of " \
                           "range [0, %lld)", (long long)v, (long long)(b * p->n_indices + j), \
                           (long long)p->axis_size);                                          \
          }                                                                                   \
          memcpy(dst, base + (size_t)v * row, row);                                           \
          dst += row;                                                                         \
        }                                                                                     \
      }                                                                                       \
    }                                                                                         \
    return 0;                                                                                 \
  }

DEFINE_GATHER(gather_x_i32, int32_t)
DEFINE_GATHER(gather_x_i64, int64_t)

/* -- SPACE_TO_BATCH_ND, BATCH_TO_SPACE_ND ------------------------------------------------- */

/* Walks the batch-side tensor pixel by pixel; each pixel is one contiguous run of depth
 * elements, copied to or from its space-side pixel (or filled, when it lies in the padding). */
static int space_batch_x(const eq_node *node, eq_ctx *ctx) {
  (void)ctx;
  const eq_space_batch_params *p = (const eq_space_batch_params *)node->params;
  const eq_tensor *in = node->inputs[0];
  eq_tensor *out = node->outputs[0];
  if (out->count == 0) return 0;
  const size_t es = eq_dtype_size(out->dtype);
  const size_t row = (size_t)p->depth * es;
  const fill_fn fill = fill_for_size(es, p->value);
  char *batch_side = p->to_batch ? (char *)out->data : (char *)in->data;
  char *space_side = p->to_batch ? (char *)in->data : (char *)out->data;
  const int64_t n_batch = (int64_t)p->block_h * p->block_w * p->batch;
  for (int64_t ob = 0; ob < n_batch; ++ob) {
    const int64_t b = ob % p->batch, block = ob / p->batch;
    const int64_t i = block / p->block_w, j = block % p->block_w;
    for (int64_t y = 0; y < p->batch_h; ++y) {
      const int64_t sy = y * p->block_h + i - p->pad_top;
      char *pixel = batch_side + (size_t)((ob * p->batch_h + y) * p->batch_w) * row;
      for (int64_t x = 0; x < p->batch_w; ++x, pixel += row) {
        const int64_t sx = x * p->block_w + j - p->pad_left;
        if (sy < 0 || sy >= p->space_h || sx < 0 || sx >= p->space_w) {
          if (p->to_batch) fill(pixel, p->depth, p->value);
          continue;
        }
        char *space_pixel = space_side + (size_t)((b * p->space_h + sy) * p->space_w + sx) * row;
        if (p->to_batch) {
          memcpy(pixel, space_pixel, row);
        } else {
          memcpy(space_pixel, pixel, row);
        }
      }
    }
  }
  return 0;
}

const eq_kernel_info eq_ref_slicing_kernels[] = {
    STRIDED_ENTRIES("slice"),
    STRIDED_ENTRIES("strided_slice"),
    STRIDED_ENTRIES("depth_to_space"),
    STRIDED_ENTRIES("space_to_depth"),
    {"pad_x", pad_constant, sizeof(eq_pad_params)},
    {"padv2_x", pad_constant, sizeof(eq_pad_params)},
    {"mirror_pad_x", mirror_pad, sizeof(eq_pad_params)},
    {"gather_x_i32", gather_x_i32, sizeof(eq_gather_params)},
    {"gather_x_i64", gather_x_i64, sizeof(eq_gather_params)},
    {"space_to_batch_nd_x", space_batch_x, sizeof(eq_space_batch_params)},
    {"batch_to_space_nd_x", space_batch_x, sizeof(eq_space_batch_params)},
    {NULL, NULL, 0},
};
