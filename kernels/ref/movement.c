/* Reference movement kernels: reshape-like copies, transpose/tile/broadcast gathers, concatenation
 * and splitting. They move elements without looking at them, so they are written per element
 * size (or per byte) rather than per dtype. Every kernel returns before touching memory when
 * there is nothing to move, so 0-size tensors never dereference their data pointers. */
#include <string.h>

#include "edgeq/dispatch.h"
#include "edgeq/params/movement.h"
#include "strided_copy.h"

/* RESHAPE, SQUEEZE, EXPAND_DIMS, DENSIFY: same elements, same order, new shape. */
static int copy_x(const eq_node *node, eq_ctx *ctx) {
  (void)ctx;
  const eq_tensor *in = node->inputs[0];
  eq_tensor *out = node->outputs[0];
  const size_t bytes = (size_t)out->count * eq_dtype_size(out->dtype);
  if (bytes > 0 && out->data != in->data) memcpy(out->data, in->data, bytes);
  return 0;
}

/* Walks the output contiguously; the input position follows an odometer over the outer dims,
 * so the index space is never divided back into coordinates. */
#define DEFINE_STRIDED_COPY(NAME, T)                                                         \
  int NAME(const eq_node *node, eq_ctx *ctx) {                                               \
    (void)ctx;                                                                               \
    const eq_strided_copy_params *p = (const eq_strided_copy_params *)node->params;          \
    eq_tensor *out_t = node->outputs[0];                                                     \
    if (out_t->count == 0) return 0;                                                         \
    const T *src = (const T *)node->inputs[0]->data;                                         \
    T *dst = (T *)out_t->data;                                                               \
    const int32_t last = p->ndim - 1;                                                        \
    const int32_t inner = p->dims[last];                                                     \
    const int64_t step = p->in_strides[last];                                                \
    int32_t idx[EQ_MOVE_DIMS] = {0};                                                         \
    int64_t pos = p->in_offset; /* input offset of the current output row */                 \
    for (;;) {                                                                               \
      if (step == 1) {                                                                       \
        memcpy(dst, src + pos, (size_t)inner * sizeof(T));                                   \
      } else {                                                                               \
        for (int32_t i = 0; i < inner; ++i) dst[i] = src[pos + (int64_t)i * step];           \
      }                                                                                      \
      dst += inner;                                                                          \
      int32_t k = last - 1;                                                                  \
      for (; k >= 0; --k) {                                                                  \
        pos += p->in_strides[k];                                                             \
        if (++idx[k] < p->dims[k]) break;                                                    \
        pos -= (int64_t)p->in_strides[k] * p->dims[k];                                       \
        idx[k] = 0;                                                                          \
      }                                                                                      \
      if (k < 0) return 0;                                                                   \
    }                                                                                        \
  }

DEFINE_STRIDED_COPY(eq_ref_strided_copy_x8, uint8_t)
DEFINE_STRIDED_COPY(eq_ref_strided_copy_x16, uint16_t)
DEFINE_STRIDED_COPY(eq_ref_strided_copy_x32, uint32_t)
DEFINE_STRIDED_COPY(eq_ref_strided_copy_x64, uint64_t)

static int64_t rows_before(const eq_tensor *t, int32_t axis) {
  int64_t rows = 1;
  for (int32_t k = 0; k < axis; ++k) rows *= t->dims[k];
  return rows;
}

static inline float clampf(float v, float lo, float hi) { return v < lo ? lo : (v > hi ? hi : v); }

/* One input at a time: its row o goes to output row o, after the runs of the inputs before it.
 * The clamp is applied while copying when `clamp` is set (float32 only). */
static int concat_impl(const eq_node *node, int clamp) {
  const eq_concat_params *p = (const eq_concat_params *)node->params;
  eq_tensor *out = node->outputs[0];
  if (out->count == 0) return 0;
  const size_t es = eq_dtype_size(out->dtype);
  const int64_t outer = rows_before(out, p->axis);
  const int64_t out_row = out->count / outer;
  int64_t offset = 0;  /* elements into each output row */
  for (int32_t i = 0; i < node->n_inputs; ++i) {
    const eq_tensor *in = node->inputs[i];
    const int64_t run = in->count / outer;
    if (run == 0) continue;
    for (int64_t o = 0; o < outer; ++o) {
      if (clamp) {
        const float *s = (const float *)in->data + o * run;
        float *d = (float *)out->data + o * out_row + offset;
        for (int64_t j = 0; j < run; ++j) d[j] = clampf(s[j], p->act_min, p->act_max);
      } else {
        memcpy((char *)out->data + (size_t)(o * out_row + offset) * es,
               (const char *)in->data + (size_t)(o * run) * es, (size_t)run * es);
      }
    }
    offset += run;
  }
  return 0;
}

static int concatenation_x(const eq_node *node, eq_ctx *ctx) {
  (void)ctx;
  return concat_impl(node, 0);
}

static int concatenation_f32(const eq_node *node, eq_ctx *ctx) {
  (void)ctx;
  return concat_impl(node, 1);
}

/* Each output takes its run out of every input row, the runs laid side by side. */
static int split_x(const eq_node *node, eq_ctx *ctx) {
  (void)ctx;
  const eq_split_params *p = (const eq_split_params *)node->params;
  const eq_tensor *in = node->inputs[0];
  if (in->count == 0) return 0;
  const size_t es = eq_dtype_size(in->dtype);
  const int64_t outer = rows_before(in, p->axis);
  const int64_t in_row = in->count / outer;
  int64_t offset = 0;
  for (int32_t i = 0; i < node->n_outputs; ++i) {
    eq_tensor *out = node->outputs[i];
    const int64_t run = out->count / outer;
    if (run == 0) continue;
    for (int64_t o = 0; o < outer; ++o) {
      memcpy((char *)out->data + (size_t)(o * run) * es,
             (const char *)in->data + (size_t)(o * in_row + offset) * es, (size_t)run * es);
    }
    offset += run;
  }
  return 0;
}

/* Ops that share an implementation still get their own names, so that an optimized variant of
 * one (a blocked transpose, a memcpy-doubling tile) can later replace it alone. */
const eq_kernel_info eq_ref_movement_kernels[] = {
    {"copy_x", copy_x, 0},
    STRIDED_ENTRIES("transpose"),
    STRIDED_ENTRIES("tile"),
    STRIDED_ENTRIES("broadcast_to"),
    {"concatenation_x", concatenation_x, sizeof(eq_concat_params)},
    {"concatenation_f32", concatenation_f32, sizeof(eq_concat_params)},
    {"pack_x", concatenation_x, sizeof(eq_concat_params)},
    {"split_x", split_x, sizeof(eq_split_params)},
    {"unpack_x", split_x, sizeof(eq_split_params)},
    {NULL, NULL, 0},
};
