/* f32 SOFTMAX, AVX-512: the AVX2 kernel's steps (per row: max, e^(beta (x - max)) with its sum,
 * then each value divided by the sum) on 16 lanes, tails through masks; within a few 1e-7
 * relative of the reference. A negative beta (never written by converters) goes to the AVX2
 * kernel, which takes the reference's scalar path for it. */
#include <float.h>

#include "edgeq/dispatch.h"
#include "edgeq/params/reduce.h"
#include "math__avx512.h"

int eq_f32_softmax__avx2(const eq_node *node, eq_ctx *ctx);

/* Rows [0, nr) of a block, nr <= BLOCK: the max and the exponentials with their sum walk the
 * block's rows side by side (one chain per row, the rows' horizontal reductions independent
 * of each other), then each row is scaled by the reciprocal of its sum (within 1.5 ulp of the
 * quotient; a sum of 0 or NaN still gives NaN). Attention's softmax rows are only 64 long: one
 * row at a time, or one row after another in program order, waited on every reduction
 * (tiny_bert's [4, 64, 64]: 4.9 us, 4.0 us like this). */
enum { BLOCK = 8 };

static inline __attribute__((always_inline)) void softmax_block(
    const int64_t nr, int32_t depth, const float *xb, float *yb, __m512 vbeta) {
  const __m512 lowest = _mm512_set1_ps(-FLT_MAX);
  __m512 acc[BLOCK], vm[BLOCK];
#pragma GCC unroll 8
  for (int64_t r = 0; r < BLOCK; ++r) acc[r] = lowest;
  /* max_ps keeps its second operand, the running max, against a NaN: the reference's
   * `x > mx ? x : mx`; masked-off lanes stay at -FLT_MAX */
  for (int32_t c = 0; c < depth; c += 16) {
    const __mmask16 m = tail_mask16(depth - c);
#pragma GCC unroll 8
    for (int64_t r = 0; r < nr; ++r)
      acc[r] = _mm512_max_ps(_mm512_mask_loadu_ps(lowest, m, xb + r * depth + c), acc[r]);
  }
#pragma GCC unroll 8
  for (int64_t r = 0; r < BLOCK; ++r) {
    vm[r] = _mm512_set1_ps(r < nr ? _mm512_reduce_max_ps(acc[r]) : 0.0f);
    acc[r] = _mm512_setzero_ps();
  }
  for (int32_t c = 0; c < depth; c += 16) {
    const __mmask16 m = tail_mask16(depth - c);
#pragma GCC unroll 8
    for (int64_t r = 0; r < nr; ++r) {
      const __m512 v = _mm512_sub_ps(_mm512_maskz_loadu_ps(m, xb + r * depth + c), vm[r]);
      const __m512 e = _mm512_maskz_mov_ps(m, exp_nonpositive16(_mm512_mul_ps(v, vbeta)));
      _mm512_mask_storeu_ps(yb + r * depth + c, m, e);
      acc[r] = _mm512_add_ps(acc[r], e);
    }
  }
  for (int64_t r = 0; r < nr; ++r) {
    const __m512 vs = _mm512_set1_ps(1.0f / _mm512_reduce_add_ps(acc[r]));
    for (int32_t c = 0; c < depth; c += 16) {
      const __mmask16 m = tail_mask16(depth - c);
      float *o = yb + r * depth + c;
      _mm512_mask_storeu_ps(o, m, _mm512_mul_ps(_mm512_maskz_loadu_ps(m, o), vs));
    }
  }
}

int eq_f32_softmax__avx512(const eq_node *node, eq_ctx *ctx) {
  const eq_softmax_params *p = (const eq_softmax_params *)node->params;
  if (!(p->beta >= 0.0f)) return eq_f32_softmax__avx2(node, ctx);
  const float *x = (const float *)node->inputs[0]->data;
  float *y = (float *)node->outputs[0]->data;
  const int32_t depth = p->depth;
  if (depth == 0) return 0;
  const int64_t rows = node->inputs[0]->count / depth;
  const __m512 vbeta = _mm512_set1_ps(p->beta);
  for (int64_t r0 = 0; r0 < rows; r0 += BLOCK) {
    if (rows - r0 >= BLOCK) {
      softmax_block(BLOCK, depth, x + r0 * depth, y + r0 * depth, vbeta);
    } else {
      softmax_block(rows - r0, depth, x + r0 * depth, y + r0 * depth, vbeta);
    }
  }
  return 0;
}
