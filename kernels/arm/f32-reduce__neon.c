/* f32 MEAN, AArch64 NEON: the reference's walk (the collapsed input in row-major order, an
 * odometer over the outer dims). A kept innermost dim is summed 8 slots at a time, each output
 * adding its inputs in the reference's order (bit-identical: MEAN over H, W of NHWC, as before a
 * classifier); a reduced innermost row (a layer norm's mean over the last axis) is summed in 4
 * lanes and then across them, a reassociation of the reference's sum. */
#include <arm_neon.h>
#include <math.h>

#include "edgeq/dispatch.h"
#include "edgeq/params/reduce.h"
#include "edgeq/walk.h"

/* in[0..n) summed in 4 lanes, then across them; rows under 16 (0 done) the caller sums in
 * order, as the other variants do (tests/test_kernels_f32.py test_mean). */
static inline float lanes_sum(const float *in, int32_t n, int32_t *done) {
  if (n < 16) {
    *done = 0;
    return 0.0f;
  }
  float32x4_t lanes = vld1q_f32(in);
  int32_t j = 4;
  for (; j + 4 <= n; j += 4) lanes = vaddq_f32(lanes, vld1q_f32(in + j));
  *done = j;
  return vaddvq_f32(lanes);
}

/* acc[0..n) += in[0..n) */
static inline void add_row(float *acc, const float *in, int32_t n) {
  int32_t j = 0;
  for (; j + 8 <= n; j += 8) {
    vst1q_f32(acc + j, vaddq_f32(vld1q_f32(acc + j), vld1q_f32(in + j)));
    vst1q_f32(acc + j + 4, vaddq_f32(vld1q_f32(acc + j + 4), vld1q_f32(in + j + 4)));
  }
  for (; j + 4 <= n; j += 4) vst1q_f32(acc + j, vaddq_f32(vld1q_f32(acc + j), vld1q_f32(in + j)));
  for (; j < n; ++j) acc[j] += in[j];
}

static void walk_sum(const eq_reduce_params *p, const float *in, int64_t in_count, float *acc) {
  const int32_t nd = p->ndim;
  const int32_t inner = p->dims[nd - 1];
  if (in_count == 0 || inner == 0) return;
  const int64_t rows = in_count / inner;
  const int inner_reduced = p->out_strides[nd - 1] == 0;
  int32_t idx[EQ_MAX_DIMS] = {0};
  int64_t o = 0;
  for (int64_t r = 0; r < rows; ++r, in += inner) {
    if (inner_reduced) {
      int32_t j;
      float v = lanes_sum(in, inner, &j);
      for (; j < inner; ++j) v += in[j];
      acc[o] += v;
    } else {
      add_row(acc + o, in, inner);
    }
    o = eq_reduce_next_row(p, idx, o);
  }
}

/* The spatial mean of NHWC maps (collapsed to [rows, inner], rows reduced, inner kept, as
 * before a classifier or in squeeze-and-excite blocks): up to 32 outputs at a time are summed
 * in registers down all the rows, each in the reference's order. Returns 0 when the shape is
 * not that one. */
static int rows_sum(const eq_reduce_params *p, const float *in, int64_t in_count, float *acc) {
  if (p->ndim != 2 || p->out_strides[0] != 0 || p->out_strides[1] != 1) return 0;
  const int32_t inner = p->dims[1];
  if (inner == 0 || in_count == 0) return 1;
  const int64_t rows = in_count / inner;
  int32_t j = 0;
  for (; j + 32 <= inner; j += 32) {
    float32x4_t s[8];
#pragma GCC unroll 8
    for (int32_t q = 0; q < 8; ++q) s[q] = vld1q_f32(acc + j + 4 * q);
    const float *x = in + j;
    for (int64_t r = 0; r < rows; ++r, x += inner) {
#pragma GCC unroll 8
      for (int32_t q = 0; q < 8; ++q) s[q] = vaddq_f32(s[q], vld1q_f32(x + 4 * q));
    }
#pragma GCC unroll 8
    for (int32_t q = 0; q < 8; ++q) vst1q_f32(acc + j + 4 * q, s[q]);
  }
  for (; j + 4 <= inner; j += 4) {
    float32x4_t s = vld1q_f32(acc + j);
    const float *x = in + j;
    for (int64_t r = 0; r < rows; ++r, x += inner) s = vaddq_f32(s, vld1q_f32(x));
    vst1q_f32(acc + j, s);
  }
  for (; j < inner; ++j) {
    float s = acc[j];
    for (int64_t r = 0; r < rows; ++r) s += in[r * inner + j];
    acc[j] = s;
  }
  return 1;
}

int eq_f32_mean__neon(const eq_node *node, eq_ctx *ctx) {
  (void)ctx;
  const eq_reduce_params *p = (const eq_reduce_params *)node->params;
  const eq_tensor *x = node->inputs[0];
  eq_tensor *y = node->outputs[0];
  float *out = (float *)y->data;
  const int64_t n = y->count > 0 ? x->count / y->count : 0;
  for (int64_t i = 0; i < y->count; ++i) out[i] = 0.0f;
  if (!rows_sum(p, (const float *)x->data, x->count, out))
    walk_sum(p, (const float *)x->data, x->count, out);
  for (int64_t i = 0; i < y->count; ++i) out[i] = n > 0 ? out[i] / (float)n : NAN;
  return 0;
}
