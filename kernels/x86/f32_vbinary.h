/* The walk the x86 float binary kernels share (f32-vbinary__avx2.c, __avx512.c): the reference
 * kernels' loop over the collapsed broadcast dims of eq_binary_params, running the body (the last arguments) once per
 * innermost run with `a`, `b` at its first elements and `out` advancing by the run length
 * p->out_dims[5]. */
#ifndef EDGEQ_X86_F32_VBINARY_H
#define EDGEQ_X86_F32_VBINARY_H
#include "edgeq/params/elementwise.h"

/* The start of node kernel NAME: its params p, operands A, B, output out, innermost strides
 * sa[5], sb[5], run length n, fused activation bounds lo, hi (used when CLAMPED). */
#define EQ_F32_VBINARY_BEGIN(NAME, CLAMPED)                                                  \
  int NAME(const eq_node *node, eq_ctx *ctx) {                                               \
    (void)ctx;                                                                               \
    const eq_binary_params *p = (const eq_binary_params *)node->params;                      \
    const float *A = (const float *)node->inputs[0]->data;                                   \
    const float *B = (const float *)node->inputs[1]->data;                                   \
    float *out = (float *)node->outputs[0]->data;                                            \
    const int32_t *sa = p->a_strides, *sb = p->b_strides;                                   \
    const float lo = p->act_min, hi = p->act_max;                                            \
    const int clamped = CLAMPED;                                                             \
    const int32_t n = p->out_dims[5];

#define EQ_F32_VBINARY_RUNS(p, A, B, out, ...)                                               \
  do {                                                                                       \
    const int32_t *d_ = (p)->out_dims, *sa_ = (p)->a_strides, *sb_ = (p)->b_strides;         \
    for (int32_t i0 = 0; i0 < d_[0]; ++i0)                                                   \
    for (int32_t i1 = 0; i1 < d_[1]; ++i1)                                                   \
    for (int32_t i2 = 0; i2 < d_[2]; ++i2)                                                   \
    for (int32_t i3 = 0; i3 < d_[3]; ++i3)                                                   \
    for (int32_t i4 = 0; i4 < d_[4]; ++i4, (out) += d_[5]) {                                 \
      const float *a = (A) + (int64_t)i0 * sa_[0] + (int64_t)i1 * sa_[1] +                  \
                       (int64_t)i2 * sa_[2] + (int64_t)i3 * sa_[3] + (int64_t)i4 * sa_[4];   \
      const float *b = (B) + (int64_t)i0 * sb_[0] + (int64_t)i1 * sb_[1] +                  \
                       (int64_t)i2 * sb_[2] + (int64_t)i3 * sb_[3] + (int64_t)i4 * sb_[4];   \
      __VA_ARGS__                                                                            \
    }                                                                                        \
  } while (0)

#endif
