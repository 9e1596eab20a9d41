/* Parameters of elementwise kernels (mirrored by ctypes structs in edgeq/ops/elementwise.py). */
#ifndef EDGEQ_PARAMS_ELEMENTWISE_H
#define EDGEQ_PARAMS_ELEMENTWISE_H
#include <stdint.h>

#define EQ_BCAST_DIMS 6

/* Binary ops with numpy broadcasting, collapsed by the planner to EQ_BCAST_DIMS dims; a stride
 * of 0 means the operand is broadcast along that dim. act_min/act_max is the fused clamp
 * (+-inf when none); the float and the integer arithmetic kernels apply it (TFLite clamps int32
 * and int64 ADD/SUB/MUL/DIV too), comparison and logical kernels ignore it. */
typedef struct eq_binary_params {
  int32_t out_dims[EQ_BCAST_DIMS];
  int32_t a_strides[EQ_BCAST_DIMS];
  int32_t b_strides[EQ_BCAST_DIMS];
  float act_min;
  float act_max;
} eq_binary_params;

/* SELECT / SELECT_V2: out = cond ? x : y, the three operands broadcast to the output the same
 * way as eq_binary_params (stride 0 = broadcast along that dim). */
typedef struct eq_select_params {
  int32_t out_dims[EQ_BCAST_DIMS];
  int32_t c_strides[EQ_BCAST_DIMS];
  int32_t x_strides[EQ_BCAST_DIMS];
  int32_t y_strides[EQ_BCAST_DIMS];
} eq_select_params;

/* RELU, RELU6, RELU_N1_TO_1, RELU_0_TO_1: out = min(max(x, lo), hi); hi may be +inf. */
typedef struct eq_clamp_params {
  float lo;
  float hi;
} eq_clamp_params;

/* LEAKY_RELU: out = x > 0 ? x : alpha * x. */
typedef struct eq_alpha_params {
  float alpha;
} eq_alpha_params;

/* DEQUANTIZE with one scale for the whole tensor: out = (q - zero_point) * scale. */
typedef struct eq_dequantize_params {
  float scale;
  int32_t zero_point;
} eq_dequantize_params;

/* DEQUANTIZE per channel: the input viewed as [outer, channels, inner] (channels = the size of
 * quantized_dimension); inputs[1] holds `channels` float32 scales, inputs[2] as many int32 zero
 * points. */
typedef struct eq_dequantize_pc_params {
  int32_t outer;
  int32_t channels;
  int32_t inner;
} eq_dequantize_pc_params;

#endif
