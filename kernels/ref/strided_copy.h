/* The reference strided copy (movement.c), one kernel per element size. Besides the movement
 * ops it serves the slicing family (slices, depth/space rearrangements) under their own names,
 * so that one of them can later get an optimized variant alone. */
#ifndef EDGEQ_REF_STRIDED_COPY_H
#define EDGEQ_REF_STRIDED_COPY_H
#include "edgeq/dispatch.h"
#include "edgeq/params/movement.h"

int eq_ref_strided_copy_x8(const eq_node *node, eq_ctx *ctx);
int eq_ref_strided_copy_x16(const eq_node *node, eq_ctx *ctx);
int eq_ref_strided_copy_x32(const eq_node *node, eq_ctx *ctx);
int eq_ref_strided_copy_x64(const eq_node *node, eq_ctx *ctx);

#define STRIDED_ENTRIES(OP)                                                \
  {OP "_x8", eq_ref_strided_copy_x8, sizeof(eq_strided_copy_params)},   \
  {OP "_x16", eq_ref_strided_copy_x16, sizeof(eq_strided_copy_params)}, \
  {OP "_x32", eq_ref_strided_copy_x32, sizeof(eq_strided_copy_params)}, \
  {OP "_x64", eq_ref_strided_copy_x64, sizeof(eq_strided_copy_params)}

#endif
