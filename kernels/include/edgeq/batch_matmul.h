/* The batch walk of f32 BATCH_MATMUL shared by the reference kernel and every ISA variant:
 * one call of `one` per output matrix, lhs and rhs matrices picked by the broadcast batch
 * strides of eq_matmul_params. */
#ifndef EDGEQ_BATCH_MATMUL_H
#define EDGEQ_BATCH_MATMUL_H
#include "edgeq/kernel.h"
#include "edgeq/params/conv.h"

typedef void (*eq_matmul_one_fn)(const eq_matmul_params *p, const float *lhs, const float *rhs,
                                 float *out);

static inline void eq_batch_matmul_walk(const eq_node *node, eq_matmul_one_fn one) {
  const eq_matmul_params *p = (const eq_matmul_params *)node->params;
  const float *lhs = (const float *)node->inputs[0]->data;
  const float *rhs = (const float *)node->inputs[1]->data;
  float *out = (float *)node->outputs[0]->data;
  const int64_t lhs_size = (int64_t)p->m * p->k, rhs_size = (int64_t)p->k * p->n;
  const int64_t out_size = (int64_t)p->m * p->n;
  const int32_t *d = p->batch_dims, *sl = p->lhs_batch, *sr = p->rhs_batch;
  for (int32_t i0 = 0; i0 < d[0]; ++i0)
  for (int32_t i1 = 0; i1 < d[1]; ++i1)
  for (int32_t i2 = 0; i2 < d[2]; ++i2)
  for (int32_t i3 = 0; i3 < d[3]; ++i3)
  for (int32_t i4 = 0; i4 < d[4]; ++i4)
  for (int32_t i5 = 0; i5 < d[5]; ++i5) {
    const int64_t l = (int64_t)i0 * sl[0] + (int64_t)i1 * sl[1] + (int64_t)i2 * sl[2] +
                      (int64_t)i3 * sl[3] + (int64_t)i4 * sl[4] + (int64_t)i5 * sl[5];
    const int64_t r = (int64_t)i0 * sr[0] + (int64_t)i1 * sr[1] + (int64_t)i2 * sr[2] +
                      (int64_t)i3 * sr[3] + (int64_t)i4 * sr[4] + (int64_t)i5 * sr[5];
    one(p, lhs + l * lhs_size, rhs + r * rhs_size, out);
    out += out_size;
  }
}

#endif
