/* f32 SOFTMAX, AVX-512: the AVX2 kernel's steps (per row: max, e^(beta (x - max)) with its sum,
 * then each value divided by the sum) on 16 lanes, tails through masks; within a few 1e-7
 * relative of the reference. A negative beta (never written by converters) goes to the AVX2
 * kernel, which takes the reference's scalar path for it. */
#include <float.h>

#include "edgeq/dispatch.h"
#include "edgeq/params/reduce.h"
#include "math__avx512.h"

int eq_f32_softmax__avx2(const eq_node *node, eq_ctx *ctx);

int eq_f32_softmax__avx512(const eq_node *node, eq_ctx *ctx) {
  const eq_softmax_params *p = (const eq_softmax_params *)node->params;
  if (!(p->beta >= 0.0f)) return eq_f32_softmax__avx2(node, ctx);
  const float *x = (const float *)node->inputs[0]->data;
  float *y = (float *)node->outputs[0]->data;
  const int32_t depth = p->depth;
  if (depth == 0) return 0;
  const int64_t rows = node->inputs[0]->count / depth;
  const __m512 vbeta = _mm512_set1_ps(p->beta), lowest = _mm512_set1_ps(-FLT_MAX);
  /* Each step runs over a block of rows before the next starts: a row's steps depend on each
   * other through its max and its sum (horizontal reductions, ~15 cycles each), rows do not, so
   * the core overlaps the rows of a block instead of waiting on every reduction (attention's
   * softmax rows are only 64 long). */
  enum { BLOCK = 16 };
  float mx[BLOCK], sum[BLOCK];
  for (int64_t r0 = 0; r0 < rows; r0 += BLOCK) {
    const int64_t nr = rows - r0 < BLOCK ? rows - r0 : BLOCK;
    const float *xb = x + r0 * depth;
    float *yb = y + r0 * depth;
    for (int64_t r = 0; r < nr; ++r) {
      /* max_ps keeps its second operand, the running max, against a NaN: the reference's
       * `x > mx ? x : mx`; masked-off lanes stay at -FLT_MAX */
      const float *xr = xb + r * depth;
      __m512 vmx = lowest;
      for (int32_t c = 0; c < depth; c += 16)
        vmx = _mm512_max_ps(_mm512_mask_loadu_ps(lowest, tail_mask16(depth - c), xr + c), vmx);
      mx[r] = _mm512_reduce_max_ps(vmx);
    }
    for (int64_t r = 0; r < nr; ++r) {
      const __m512 vm = _mm512_set1_ps(mx[r]);
      __m512 vsum = _mm512_setzero_ps();
      for (int32_t c = 0; c < depth; c += 16) {
        const __mmask16 m = tail_mask16(depth - c);
        const __m512 v = _mm512_sub_ps(_mm512_maskz_loadu_ps(m, xb + r * depth + c), vm);
        const __m512 e = _mm512_maskz_mov_ps(m, exp_nonpositive16(_mm512_mul_ps(v, vbeta)));
        _mm512_mask_storeu_ps(yb + r * depth + c, m, e);
        vsum = _mm512_add_ps(vsum, e);
      }
      sum[r] = _mm512_reduce_add_ps(vsum);
    }
    for (int64_t r = 0; r < nr; ++r) {
      const __m512 vs = _mm512_set1_ps(sum[r]);
      for (int32_t c = 0; c < depth; c += 16) {
        const __mmask16 m = tail_mask16(depth - c);
        float *o = yb + r * depth + c;
        _mm512_mask_storeu_ps(o, m, _mm512_div_ps(_mm512_maskz_loadu_ps(m, o), vs));
      }
    }
  }
  return 0;
}
