/* Parameters of the slicing and padding kernels (mirrored by ctypes structs in
 * edgeq/ops/slicing.py).
 *
 * SLICE, STRIDED_SLICE, DEPTH_TO_SPACE and SPACE_TO_DEPTH need no struct of their own: they are
 * the movement family's strided copy (eq_strided_copy_params, started at in_offset). Like the
 * movement kernels, these never look at values: they work per element size, or per byte. */
#ifndef EDGEQ_PARAMS_SLICING_H
#define EDGEQ_PARAMS_SLICING_H
#include <stdint.h>

#include "edgeq/kernel.h"

enum eq_pad_mode {
  EQ_PAD_CONSTANT = 0, /* PAD, PADV2: the border takes `value` */
  EQ_PAD_REFLECT = 1,  /* MIRROR_PAD REFLECT: the edge element is not repeated */
  EQ_PAD_SYMMETRIC = 2 /* MIRROR_PAD SYMMETRIC: the edge element is repeated */
};

/* PAD, PADV2, MIRROR_PAD over the input dims, collapsed by prepare: size-1 and unpadded
 * neighbours are merged (for the constant mode, unpadded inner dims fold into the padded dim
 * outside them), so the innermost dim is the longest contiguous run. Output dim k is
 * before[k] + in_dims[k] + after[k]. value holds the fill element's bytes (its zero point for a
 * quantized tensor). Mirror modes have before/after <= in_dims (REFLECT: < in_dims). */
typedef struct eq_pad_params {
  int32_t ndim;
  int32_t mode; /* enum eq_pad_mode */
  int32_t in_dims[EQ_MAX_DIMS];
  int32_t before[EQ_MAX_DIMS];
  int32_t after[EQ_MAX_DIMS];
  uint8_t value[8];
} eq_pad_params;

/* GATHER: params seen as [batch, outer, axis_size, inner] and indices as [batch, n_indices];
 * the output is [batch, outer, n_indices, inner]. The kernel checks every index, since indices
 * are usually runtime data. */
typedef struct eq_gather_params {
  int64_t batch;
  int64_t outer;
  int64_t axis_size;
  int64_t inner;
  int64_t n_indices;
} eq_gather_params;

/* SPACE_TO_BATCH_ND and BATCH_TO_SPACE_ND (NHWC; the 3-d [N, W, C] form as H = 1). The
 * batch-side tensor is [block_h * block_w * batch, batch_h, batch_w, depth], its batch index
 * being (i * block_w + j) * batch + b; its pixel (y, x) is the space-side pixel
 * (y * block_h + i - pad_top, x * block_w + j - pad_left) of the space-side tensor
 * [batch, space_h, space_w, depth]. SPACE_TO_BATCH_ND (to_batch = 1) writes the batch side and
 * fills pixels that fall outside the space side with `value`; BATCH_TO_SPACE_ND writes the
 * space side, and pad_top/pad_left are its crops. */
typedef struct eq_space_batch_params {
  int32_t to_batch;
  int32_t batch;
  int32_t space_h;
  int32_t space_w;
  int32_t batch_h;
  int32_t batch_w;
  int32_t block_h;
  int32_t block_w;
  int32_t pad_top;
  int32_t pad_left;
  int32_t depth;
  uint8_t value[8];
} eq_space_batch_params;

#endif
