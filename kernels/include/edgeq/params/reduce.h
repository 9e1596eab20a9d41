/* Parameters of reduction, softmax and arg-min/max kernels (mirrored by ctypes structs in
 * edgeq/ops/reduce.py). */
#ifndef EDGEQ_PARAMS_REDUCE_H
#define EDGEQ_PARAMS_REDUCE_H
#include <stdint.h>

#include "edgeq/kernel.h"

/* MEAN, SUM, REDUCE_MAX/MIN/PROD/ANY/ALL. Prepare collapses the input shape: size-1 dims are
 * dropped and neighbouring dims that are both reduced or both kept are merged, so reduced and
 * kept dims alternate. out_strides[d] is the output element stride of collapsed dim d, 0 where
 * d is reduced. Each output accumulates its inputs in the input's row-major order (TFLite's
 * order). Element counts come from the tensors. */
typedef struct eq_reduce_params {
  int32_t ndim;                     /* 1..EQ_MAX_DIMS */
  int32_t dims[EQ_MAX_DIMS];
  int32_t out_strides[EQ_MAX_DIMS];
} eq_reduce_params;

/* edgeq's fused layer normalization over the last axis (edgeq/graph/graph.py fuse_layer_norm:
 * the MEAN / SQUARED_DIFFERENCE / MEAN / ADD / RSQRT / MUL ... chain a converter writes for
 * Keras' LayerNormalization), rows of `depth` elements, in the chain's own operations:
 *   m = sum(x) / depth, v = sum((x - m)^2) / depth, r = 1 / sqrt(v + epsilon),
 *   s[c] = r * gamma[c] (r without gamma), y[c] = x[c] * s[c] + (-m) * s[c] (+ beta[c]).
 * Inputs: x, optional gamma [depth], optional beta [depth]. */
typedef struct eq_layer_norm_params {
  int32_t rows;
  int32_t depth;
  float epsilon;
} eq_layer_norm_params;

/* SOFTMAX / LOG_SOFTMAX over the last axis: rows of `depth` elements (depth may be 0). */
typedef struct eq_softmax_params {
  int32_t depth;
  float beta;                       /* 1 for LOG_SOFTMAX */
} eq_softmax_params;

/* ARG_MAX / ARG_MIN: the input seen as [outer, axis_size, inner], the output as [outer, inner].
 * Ties keep the first index. */
typedef struct eq_arg_params {
  int32_t outer;
  int32_t axis_size;
  int32_t inner;
} eq_arg_params;

#endif
