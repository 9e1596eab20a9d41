/* Parameters of data-movement kernels (mirrored by ctypes structs in edgeq/ops/movement.py).
 *
 * Movement kernels never look at values, only at element sizes, so one kernel per element size
 * (x8/x16/x32/x64) serves every dtype of that size; the byte-copying ones (copy, concatenation,
 * split) serve every size at once. */
#ifndef EDGEQ_PARAMS_MOVEMENT_H
#define EDGEQ_PARAMS_MOVEMENT_H
#include <stdint.h>

/* TILE splits each of up to 8 dims into (repeat, original): 16 dims before collapsing. */
#define EQ_MOVE_DIMS 16

/* A gather over an N-d index space: the output, walked in row-major order over dims, takes the
 * input element at in_offset + sum(i_k * in_strides[k]) (in elements). TRANSPOSE permutes the
 * input's strides; BROADCAST_TO and TILE give stride 0 along repeated dims; the slicing family
 * (SLICE, STRIDED_SLICE, DEPTH_TO_SPACE, ...) starts at in_offset and may step backwards
 * (negative strides). Prepare collapses size-1 dims and merges contiguous neighbours, so
 * 1 <= ndim <= EQ_MOVE_DIMS. */
typedef struct eq_strided_copy_params {
  int32_t ndim;
  int32_t dims[EQ_MOVE_DIMS];
  int32_t in_strides[EQ_MOVE_DIMS];
  int32_t in_offset;
} eq_strided_copy_params;

/* CONCATENATION and PACK: every input contributes a contiguous run of elements to each of the
 * `outer` rows of the output, where outer is the product of the output dims before `axis`.
 * act_min/act_max is the fused clamp, read by concatenation_f32 only. */
typedef struct eq_concat_params {
  int32_t axis;
  float act_min;
  float act_max;
} eq_concat_params;

/* SPLIT, SPLIT_V and UNPACK: the inverse, rows counted over the input dims before `axis`. */
typedef struct eq_split_params {
  int32_t axis;
} eq_split_params;

#endif
