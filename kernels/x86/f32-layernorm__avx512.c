/* edgeq's fused layer normalization (params/reduce.h), AVX-512: the AVX2 kernel's three passes
 * (sum, sum of squared deviations, scale) on 16 lanes, tails through masks, the per-element
 * step the reference's x * s + (-m) * s (+ beta). Each pass runs over a block of rows before
 * the next starts: a row's passes wait on each other through horizontal sums, rows do not, so
 * the core overlaps the rows of a block (tiny_bert's rows are 128 long: one row at a time
 * waited on its reductions, 2.8 us for 64 rows in the AVX2 kernel). */
#include <immintrin.h>
#include <math.h>

#include "edgeq/dispatch.h"
#include "edgeq/params/reduce.h"
#include "edgeq/threadpool.h"
#include "math__avx512.h"

enum { BLOCK = 8 };

/* The normalization of rows [0, nr) of a block, nr <= BLOCK: the two sums walk the block's rows
 * side by side (one chain per row), the scaling row by row. */
static inline __attribute__((always_inline)) void normalize_block(
    const int64_t nr, int64_t depth, float epsilon, const float *xb, float *yb,
    const float *gamma, const float *beta) {
  __m512 acc[BLOCK], vm[BLOCK];
  float mean[BLOCK], rs[BLOCK];
#pragma GCC unroll 8
  for (int64_t r = 0; r < BLOCK; ++r) acc[r] = vm[r] = _mm512_setzero_ps();
  for (int64_t c = 0; c < depth; c += 16) {
    const __mmask16 m = tail_mask16(depth - c);
#pragma GCC unroll 8
    for (int64_t r = 0; r < nr; ++r)
      acc[r] = _mm512_add_ps(acc[r], _mm512_maskz_loadu_ps(m, xb + r * depth + c));
  }
#pragma GCC unroll 8
  for (int64_t r = 0; r < nr; ++r) {
    mean[r] = depth > 0 ? _mm512_reduce_add_ps(acc[r]) / (float)depth : NAN;
    vm[r] = _mm512_set1_ps(mean[r]);
    acc[r] = _mm512_setzero_ps();
  }
  for (int64_t c = 0; c < depth; c += 16) {
    const __mmask16 m = tail_mask16(depth - c);
#pragma GCC unroll 8
    for (int64_t r = 0; r < nr; ++r) {
      const __m512 d = _mm512_maskz_sub_ps(m, _mm512_maskz_loadu_ps(m, xb + r * depth + c),
                                           vm[r]);
      acc[r] = _mm512_fmadd_ps(d, d, acc[r]);
    }
  }
#pragma GCC unroll 8
  for (int64_t r = 0; r < nr; ++r)
    rs[r] = 1.0f / sqrtf((depth > 0 ? _mm512_reduce_add_ps(acc[r]) / (float)depth : NAN) +
                         epsilon);
  for (int64_t r = 0; r < nr; ++r) {
    const float *x = xb + r * depth;
    float *y = yb + r * depth;
    const __m512 vr = _mm512_set1_ps(rs[r]), vneg = _mm512_set1_ps(-mean[r]);
    for (int64_t c = 0; c < depth; c += 16) {
      const __mmask16 m = tail_mask16(depth - c);
      const __m512 s = gamma ? _mm512_mul_ps(vr, _mm512_maskz_loadu_ps(m, gamma + c)) : vr;
      __m512 v = _mm512_add_ps(_mm512_mul_ps(_mm512_maskz_loadu_ps(m, x + c), s),
                               _mm512_mul_ps(vneg, s));
      if (beta) v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(m, beta + c));
      _mm512_mask_storeu_ps(y + c, m, v);
    }
  }
}

static void layer_norm_rows(void *arg, int64_t begin, int64_t end) {
  const eq_node *node = (const eq_node *)arg;
  const eq_layer_norm_params *p = (const eq_layer_norm_params *)node->params;
  const float *gamma = node->n_inputs > 1 && node->inputs[1] ? node->inputs[1]->data : NULL;
  const float *beta = node->n_inputs > 2 && node->inputs[2] ? node->inputs[2]->data : NULL;
  const int64_t depth = p->depth;
  for (int64_t r0 = begin; r0 < end; r0 += BLOCK) {
    const float *xb = (const float *)node->inputs[0]->data + r0 * depth;
    float *yb = (float *)node->outputs[0]->data + r0 * depth;
    if (end - r0 >= BLOCK) {
      normalize_block(BLOCK, depth, p->epsilon, xb, yb, gamma, beta);
    } else {
      normalize_block(end - r0, depth, p->epsilon, xb, yb, gamma, beta);
    }
  }
}

int eq_f32_layer_norm__avx512(const eq_node *node, eq_ctx *ctx) {
  const eq_layer_norm_params *p = (const eq_layer_norm_params *)node->params;
  eq_parallel_for(ctx, p->rows, eq_parallel_grain(p->rows, (int64_t)p->rows * p->depth * 4),
                  layer_norm_rows, (void *)node);
  return 0;
}
