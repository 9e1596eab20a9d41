/* f32 SOFTMAX, AArch64 NEON: per row the reference's steps (max, e^(beta (x - max)) with its
 * sum, then each value divided by the sum), 4 lanes at a time: the sum is reassociated and e^
 * comes from a polynomial, so results are within a few 1e-7 relative of the reference. A
 * negative beta (never written by converters) takes the reference's scalar path. */
#include <float.h>
#include <math.h>

#include "edgeq/dispatch.h"
#include "edgeq/params/reduce.h"
#include "math__neon.h"

int eq_f32_softmax__neon(const eq_node *node, eq_ctx *ctx) {
  (void)ctx;
  const eq_softmax_params *p = (const eq_softmax_params *)node->params;
  const float *x = (const float *)node->inputs[0]->data;
  float *y = (float *)node->outputs[0]->data;
  const int32_t depth = p->depth;
  if (depth == 0) return 0;
  const int64_t rows = node->inputs[0]->count / depth;
  const float beta = p->beta;
  for (int64_t r = 0; r < rows; ++r, x += depth, y += depth) {
    /* the reference's `x > mx ? x : mx`: compare and select, a NaN never replaces the max */
    float32x4_t vmx = vdupq_n_f32(-FLT_MAX);
    int32_t c = 0;
    for (; c + 4 <= depth; c += 4) {
      const float32x4_t v = vld1q_f32(x + c);
      vmx = vbslq_f32(vcgtq_f32(v, vmx), v, vmx);
    }
    float mx = vmaxvq_f32(vmx);  /* no NaN in the lanes */
    for (; c < depth; ++c) mx = x[c] > mx ? x[c] : mx;
    float sum = 0.0f;
    c = 0;
    if (beta >= 0.0f) {
      const float32x4_t vm = vdupq_n_f32(mx);
      float32x4_t vsum = vdupq_n_f32(0.0f);
      for (; c + 4 <= depth; c += 4) {
        const float32x4_t e = exp_nonpositive4(vmulq_n_f32(vsubq_f32(vld1q_f32(x + c), vm), beta));
        vst1q_f32(y + c, e);
        vsum = vaddq_f32(vsum, e);
      }
      sum = vaddvq_f32(vsum);
    }
    for (; c < depth; ++c) {
      const float e = expf((x[c] - mx) * beta);
      y[c] = e;
      sum += e;
    }
    const float32x4_t vs = vdupq_n_f32(sum);
    for (c = 0; c + 4 <= depth; c += 4) vst1q_f32(y + c, vdivq_f32(vld1q_f32(y + c), vs));
    for (; c < depth; ++c) y[c] = y[c] / sum;
  }
  return 0;
}
