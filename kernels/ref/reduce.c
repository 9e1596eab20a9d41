/* Reference reductions (MEAN, SUM, REDUCE_MAX/MIN/PROD/ANY/ALL), SOFTMAX, LOG_SOFTMAX and
 * ARG_MAX/ARG_MIN. Scalar, readable: the spec that optimized kernels are tested against. */
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "edgeq/dispatch.h"
#include "edgeq/params/reduce.h"
#include "edgeq/walk.h"

/* ---- Reductions ------------------------------------------------------------------------- */

/* Walks the collapsed input in row-major order and folds every element into its output slot:
 * acc[o] = COMBINE(acc[o], x). The innermost collapsed dim is either reduced (the row folds into
 * one slot, kept in a register) or kept (the row folds elementwise into a row of slots). The
 * other dims advance an odometer that tracks the output offset, so no index is ever divided.
 * ACC must already hold the initial value. */
#define DEFINE_REDUCE_WALK(NAME, T, ACC_T, COMBINE)                                          \
  static void NAME(const eq_reduce_params *p, const T *in, int64_t in_count, ACC_T *acc) {   \
    const int32_t nd = p->ndim;                                                              \
    const int32_t inner = p->dims[nd - 1];                                                   \
    if (in_count == 0 || inner == 0) return;                                                 \
    const int64_t rows = in_count / inner;                                                   \
    const int inner_reduced = p->out_strides[nd - 1] == 0;                                   \
    int32_t idx[EQ_MAX_DIMS] = {0};                                                          \
    int64_t o = 0;                                                                           \
    for (int64_t r = 0; r < rows; ++r, in += inner) {                                        \
      ACC_T *a = acc + o;                                                                    \
      if (inner_reduced) {                                                                   \
        ACC_T v = *a;                                                                        \
        for (int32_t j = 0; j < inner; ++j) v = COMBINE(v, in[j]);                          \
        *a = v;                                                                              \
      } else {                                                                               \
        for (int32_t j = 0; j < inner; ++j) a[j] = COMBINE(a[j], in[j]);                     \
      }                                                                                      \
      o = eq_reduce_next_row(p, idx, o);                                                     \
    }                                                                                        \
  }

/* Integer sums and products wrap (two's complement) like TFLite's, without C's signed-overflow
 * undefined behaviour. */
#define ADD_F(a, x) ((a) + (x))
#define MUL_F(a, x) ((a) * (x))
#define ADD_I32(a, x) ((int32_t)((uint32_t)(a) + (uint32_t)(x)))
#define MUL_I32(a, x) ((int32_t)((uint32_t)(a) * (uint32_t)(x)))
#define ADD_I64(a, x) ((int64_t)((uint64_t)(a) + (uint64_t)(int64_t)(x)))
#define MUL_I64(a, x) ((int64_t)((uint64_t)(a) * (uint64_t)(x)))
/* Written as TFLite's optimized reducers are: accumulator first. */
#define MAX_OF(a, x) ((a) > (x) ? (a) : (x))
#define MIN_OF(a, x) ((a) < (x) ? (a) : (x))
#define OR_OF(a, x) ((uint8_t)((a) || (x)))
#define AND_OF(a, x) ((uint8_t)((a) && (x)))

DEFINE_REDUCE_WALK(walk_sum_f32, float, float, ADD_F)
DEFINE_REDUCE_WALK(walk_sum_i32, int32_t, int32_t, ADD_I32)
DEFINE_REDUCE_WALK(walk_sum_i32_wide, int32_t, int64_t, ADD_I64)
DEFINE_REDUCE_WALK(walk_sum_i64, int64_t, int64_t, ADD_I64)
DEFINE_REDUCE_WALK(walk_prod_f32, float, float, MUL_F)
DEFINE_REDUCE_WALK(walk_prod_i32, int32_t, int32_t, MUL_I32)
DEFINE_REDUCE_WALK(walk_prod_i64, int64_t, int64_t, MUL_I64)
DEFINE_REDUCE_WALK(walk_max_f32, float, float, MAX_OF)
DEFINE_REDUCE_WALK(walk_max_i32, int32_t, int32_t, MAX_OF)
DEFINE_REDUCE_WALK(walk_max_i64, int64_t, int64_t, MAX_OF)
DEFINE_REDUCE_WALK(walk_min_f32, float, float, MIN_OF)
DEFINE_REDUCE_WALK(walk_min_i32, int32_t, int32_t, MIN_OF)
DEFINE_REDUCE_WALK(walk_min_i64, int64_t, int64_t, MIN_OF)
DEFINE_REDUCE_WALK(walk_any_b8, uint8_t, uint8_t, OR_OF)
DEFINE_REDUCE_WALK(walk_all_b8, uint8_t, uint8_t, AND_OF)

/* A reduction whose output is the accumulator: fill with INIT, then walk. INIT is the identity
 * of the fold, so each output effectively starts from its first element (as in LiteRT); with
 * the accumulator-first comparison a NaN replaces the running max/min and the next number
 * replaces the NaN, as in LiteRT. An empty input leaves LiteRT's fill value EMPTY: 0 / 1 /
 * lowest / highest / false / true (lowest, not -inf, for a float max). */
#define DEFINE_REDUCE(NAME, T, INIT, EMPTY, WALK)                                            \
  static int NAME(const eq_node *node, eq_ctx *ctx) {                                        \
    (void)ctx;                                                                               \
    const eq_reduce_params *p = (const eq_reduce_params *)node->params;                      \
    const eq_tensor *x = node->inputs[0];                                                    \
    eq_tensor *y = node->outputs[0];                                                         \
    T *out = (T *)y->data;                                                                   \
    const T init = x->count > 0 ? (T)(INIT) : (T)(EMPTY);                                    \
    for (int64_t i = 0; i < y->count; ++i) out[i] = init;                                    \
    WALK(p, (const T *)x->data, x->count, out);                                              \
    return 0;                                                                                \
  }

DEFINE_REDUCE(sum_f32, float, 0.0f, 0.0f, walk_sum_f32)
DEFINE_REDUCE(sum_i32, int32_t, 0, 0, walk_sum_i32)
DEFINE_REDUCE(sum_i64, int64_t, 0, 0, walk_sum_i64)
DEFINE_REDUCE(reduce_prod_f32, float, 1.0f, 1.0f, walk_prod_f32)
DEFINE_REDUCE(reduce_prod_i32, int32_t, 1, 1, walk_prod_i32)
DEFINE_REDUCE(reduce_prod_i64, int64_t, 1, 1, walk_prod_i64)
DEFINE_REDUCE(reduce_max_f32, float, -INFINITY, -FLT_MAX, walk_max_f32)
DEFINE_REDUCE(reduce_max_i32, int32_t, INT32_MIN, INT32_MIN, walk_max_i32)
DEFINE_REDUCE(reduce_max_i64, int64_t, INT64_MIN, INT64_MIN, walk_max_i64)
DEFINE_REDUCE(reduce_min_f32, float, INFINITY, FLT_MAX, walk_min_f32)
DEFINE_REDUCE(reduce_min_i32, int32_t, INT32_MAX, INT32_MAX, walk_min_i32)
DEFINE_REDUCE(reduce_min_i64, int64_t, INT64_MAX, INT64_MAX, walk_min_i64)
DEFINE_REDUCE(reduce_any_bool, uint8_t, 0, 0, walk_any_b8)
DEFINE_REDUCE(reduce_all_bool, uint8_t, 1, 1, walk_all_b8)

/* Elements folded into each output (0 when the input is empty). */
static int64_t reduce_count(const eq_tensor *x, const eq_tensor *y) {
  return y->count > 0 ? x->count / y->count : 0;
}

/* MEAN as TFLite computes it: a float32 sum divided by the float count; an empty reduction is
 * NaN. */
static int mean_f32(const eq_node *node, eq_ctx *ctx) {
  (void)ctx;
  const eq_reduce_params *p = (const eq_reduce_params *)node->params;
  const eq_tensor *x = node->inputs[0];
  eq_tensor *y = node->outputs[0];
  float *out = (float *)y->data;
  const int64_t n = reduce_count(x, y);
  for (int64_t i = 0; i < y->count; ++i) out[i] = 0.0f;
  walk_sum_f32(p, (const float *)x->data, x->count, out);
  for (int64_t i = 0; i < y->count; ++i) out[i] = n > 0 ? out[i] / (float)n : NAN;
  return 0;
}

/* Integer MEAN: an int64 sum divided by the count, truncated toward zero (TFLite's integer
 * mean); an empty reduction is 0. int32 sums need the int64 accumulators in scratch. */
static int mean_i32(const eq_node *node, eq_ctx *ctx) {
  const eq_reduce_params *p = (const eq_reduce_params *)node->params;
  const eq_tensor *x = node->inputs[0];
  eq_tensor *y = node->outputs[0];
  int32_t *out = (int32_t *)y->data;
  int64_t *acc = (int64_t *)node->scratch;
  if (y->count > 0 && (acc == NULL || node->scratch_bytes < y->count * (int64_t)sizeof *acc))
    return eq_fail(ctx, "mean_i32: scratch of %lld bytes is too small",
                   (long long)node->scratch_bytes);
  const int64_t n = reduce_count(x, y);
  for (int64_t i = 0; i < y->count; ++i) acc[i] = 0;
  walk_sum_i32_wide(p, (const int32_t *)x->data, x->count, acc);
  for (int64_t i = 0; i < y->count; ++i) out[i] = n > 0 ? (int32_t)(acc[i] / n) : 0;
  return 0;
}

static int mean_i64(const eq_node *node, eq_ctx *ctx) {
  (void)ctx;
  const eq_reduce_params *p = (const eq_reduce_params *)node->params;
  const eq_tensor *x = node->inputs[0];
  eq_tensor *y = node->outputs[0];
  int64_t *out = (int64_t *)y->data;
  const int64_t n = reduce_count(x, y);
  for (int64_t i = 0; i < y->count; ++i) out[i] = 0;
  walk_sum_i64(p, (const int64_t *)x->data, x->count, out);
  for (int64_t i = 0; i < y->count; ++i) out[i] = n > 0 ? out[i] / n : 0;
  return 0;
}

/* A reduction over no axis is a copy (TFLite copies too, rather than folding each element with
 * the initial value). Any dtype: it moves bytes. */
static int reduce_identity(const eq_node *node, eq_ctx *ctx) {
  (void)ctx;
  const eq_tensor *x = node->inputs[0];
  eq_tensor *y = node->outputs[0];
  const size_t bytes = (size_t)y->count * eq_dtype_size(y->dtype);
  if (bytes > 0 && y->data != x->data) memcpy(y->data, x->data, bytes);
  return 0;
}

/* ---- Softmax ---------------------------------------------------------------------------- */

static int softmax_f32(const eq_node *node, eq_ctx *ctx) {
  (void)ctx;
  const eq_softmax_params *p = (const eq_softmax_params *)node->params;
  const eq_tensor *xt = node->inputs[0];
  const float *x = (const float *)xt->data;
  float *y = (float *)node->outputs[0]->data;
  const int32_t depth = p->depth;
  if (depth == 0) return 0;
  const int64_t rows = xt->count / depth;
  for (int64_t r = 0; r < rows; ++r, x += depth, y += depth) {
    /* exp(beta * (x - max)) never overflows; the result is the same function. */
    float mx = -FLT_MAX;
    for (int32_t c = 0; c < depth; ++c) mx = x[c] > mx ? x[c] : mx;
    float sum = 0.0f;
    for (int32_t c = 0; c < depth; ++c) {
      const float e = expf((x[c] - mx) * p->beta);
      y[c] = e;
      sum += e;
    }
    for (int32_t c = 0; c < depth; ++c) y[c] = y[c] / sum;
  }
  return 0;
}

static int log_softmax_f32(const eq_node *node, eq_ctx *ctx) {
  (void)ctx;
  const eq_softmax_params *p = (const eq_softmax_params *)node->params;
  const eq_tensor *xt = node->inputs[0];
  const float *x = (const float *)xt->data;
  float *y = (float *)node->outputs[0]->data;
  const int32_t depth = p->depth;
  if (depth == 0) return 0;
  const int64_t rows = xt->count / depth;
  for (int64_t r = 0; r < rows; ++r, x += depth, y += depth) {
    float mx = -FLT_MAX;
    for (int32_t c = 0; c < depth; ++c) mx = x[c] > mx ? x[c] : mx;
    float sum = 0.0f;
    for (int32_t c = 0; c < depth; ++c) sum += expf(x[c] - mx);
    const float log_sum = logf(sum);
    for (int32_t c = 0; c < depth; ++c) y[c] = x[c] - mx - log_sum;
  }
  return 0;
}

/* ---- Arg-max / arg-min ------------------------------------------------------------------ */

/* A strict comparison keeps the first index on ties. As in LiteRT, any number beats a NaN, so a
 * NaN is picked only when the whole slice is NaN (then index 0); `best != best` is false for
 * integers. */
#define DEFINE_ARG(NAME, T, OUT_T, CMP)                                                      \
  static int NAME(const eq_node *node, eq_ctx *ctx) {                                        \
    (void)ctx;                                                                               \
    const eq_arg_params *p = (const eq_arg_params *)node->params;                            \
    const T *in = (const T *)node->inputs[0]->data;                                          \
    OUT_T *out = (OUT_T *)node->outputs[0]->data;                                            \
    const int64_t inner = p->inner, axis = p->axis_size;                                     \
    if (axis == 0) return 0;                                                                 \
    for (int32_t o = 0; o < p->outer; ++o) {                                                 \
      const T *block = in + (int64_t)o * axis * inner;                                       \
      for (int64_t i = 0; i < inner; ++i) {                                                  \
        T best = block[i];                                                                   \
        OUT_T best_at = 0;                                                                   \
        for (int64_t k = 1; k < axis; ++k) {                                                 \
          const T v = block[k * inner + i];                                                  \
          if (v CMP best || (best != best && v == v)) {                                      \
            best = v;                                                                        \
            best_at = (OUT_T)k;                                                              \
          }                                                                                  \
        }                                                                                    \
        *out++ = best_at;                                                                    \
      }                                                                                      \
    }                                                                                        \
    return 0;                                                                                \
  }

#define DEFINE_ARG_FAMILY(T, SUFFIX)                          \
  DEFINE_ARG(arg_max_##SUFFIX##_i32, T, int32_t, >)           \
  DEFINE_ARG(arg_max_##SUFFIX##_i64, T, int64_t, >)           \
  DEFINE_ARG(arg_min_##SUFFIX##_i32, T, int32_t, <)           \
  DEFINE_ARG(arg_min_##SUFFIX##_i64, T, int64_t, <)

DEFINE_ARG_FAMILY(float, f32)
DEFINE_ARG_FAMILY(int32_t, i32)
DEFINE_ARG_FAMILY(int64_t, i64)
DEFINE_ARG_FAMILY(uint8_t, u8)
DEFINE_ARG_FAMILY(int8_t, i8)
DEFINE_ARG_FAMILY(uint8_t, bool)

#define ARG_ENTRIES(SUFFIX)                                                             \
  {"arg_max_" #SUFFIX "_i32", arg_max_##SUFFIX##_i32, sizeof(eq_arg_params)},           \
  {"arg_max_" #SUFFIX "_i64", arg_max_##SUFFIX##_i64, sizeof(eq_arg_params)},           \
  {"arg_min_" #SUFFIX "_i32", arg_min_##SUFFIX##_i32, sizeof(eq_arg_params)},           \
  {"arg_min_" #SUFFIX "_i64", arg_min_##SUFFIX##_i64, sizeof(eq_arg_params)}

/* The fused layer normalization (params/reduce.h), each sum in increasing index order as the
 * MEAN kernels take it. */
static int layer_norm_f32(const eq_node *node, eq_ctx *ctx) {
  (void)ctx;
  const eq_layer_norm_params *p = (const eq_layer_norm_params *)node->params;
  const float *gamma = node->n_inputs > 1 && node->inputs[1] ? node->inputs[1]->data : NULL;
  const float *beta = node->n_inputs > 2 && node->inputs[2] ? node->inputs[2]->data : NULL;
  const int64_t depth = p->depth;
  for (int64_t r = 0; r < p->rows; ++r) {
    const float *x = (const float *)node->inputs[0]->data + r * depth;
    float *y = (float *)node->outputs[0]->data + r * depth;
    float sum = 0.0f;
    for (int64_t c = 0; c < depth; ++c) sum += x[c];
    const float mean = depth > 0 ? sum / (float)depth : NAN;
    float sq = 0.0f;
    for (int64_t c = 0; c < depth; ++c) sq += (x[c] - mean) * (x[c] - mean);
    const float rs = 1.0f / sqrtf((depth > 0 ? sq / (float)depth : NAN) + p->epsilon);
    for (int64_t c = 0; c < depth; ++c) {
      const float s = gamma ? rs * gamma[c] : rs;
      const float v = x[c] * s + (-mean) * s;
      y[c] = beta ? v + beta[c] : v;
    }
  }
  return 0;
}

const eq_kernel_info eq_ref_reduce_kernels[] = {
    {"mean_f32", mean_f32, sizeof(eq_reduce_params)},
    {"layer_norm_f32", layer_norm_f32, sizeof(eq_layer_norm_params)},
    {"mean_i32", mean_i32, sizeof(eq_reduce_params)},
    {"mean_i64", mean_i64, sizeof(eq_reduce_params)},
    {"sum_f32", sum_f32, sizeof(eq_reduce_params)},
    {"sum_i32", sum_i32, sizeof(eq_reduce_params)},
    {"sum_i64", sum_i64, sizeof(eq_reduce_params)},
    {"reduce_prod_f32", reduce_prod_f32, sizeof(eq_reduce_params)},
    {"reduce_prod_i32", reduce_prod_i32, sizeof(eq_reduce_params)},
    {"reduce_prod_i64", reduce_prod_i64, sizeof(eq_reduce_params)},
    {"reduce_max_f32", reduce_max_f32, sizeof(eq_reduce_params)},
    {"reduce_max_i32", reduce_max_i32, sizeof(eq_reduce_params)},
    {"reduce_max_i64", reduce_max_i64, sizeof(eq_reduce_params)},
    {"reduce_min_f32", reduce_min_f32, sizeof(eq_reduce_params)},
    {"reduce_min_i32", reduce_min_i32, sizeof(eq_reduce_params)},
    {"reduce_min_i64", reduce_min_i64, sizeof(eq_reduce_params)},
    {"reduce_any_bool", reduce_any_bool, sizeof(eq_reduce_params)},
    {"reduce_all_bool", reduce_all_bool, sizeof(eq_reduce_params)},
    {"reduce_identity", reduce_identity, 0},
    {"softmax_f32", softmax_f32, sizeof(eq_softmax_params)},
    {"log_softmax_f32", log_softmax_f32, sizeof(eq_softmax_params)},
    ARG_ENTRIES(f32),
    ARG_ENTRIES(i32),
    ARG_ENTRIES(i64),
    ARG_ENTRIES(u8),
    ARG_ENTRIES(i8),
    ARG_ENTRIES(bool),
    {NULL, NULL, 0},
};
