/* Parameters of elementwise kernels (mirrored by ctypes structs in edgeq/ops/elementwise.py). */
#ifndef EDGEQ_PARAMS_ELEMENTWISE_H
#define EDGEQ_PARAMS_ELEMENTWISE_H
#include <stdint.h>

#define EQ_BCAST_DIMS 6

/* Binary ops with numpy broadcasting, collapsed by the planner to EQ_BCAST_DIMS dims; a stride
 * of 0 means the operand is broadcast along that dim. act_min/act_max is the fused clamp
 * (+-inf when none) and is applied by float kernels only. */
typedef struct eq_binary_params {
  int32_t out_dims[EQ_BCAST_DIMS];
  int32_t a_strides[EQ_BCAST_DIMS];
  int32_t b_strides[EQ_BCAST_DIMS];
  float act_min;
  float act_max;
} eq_binary_params;

#endif
