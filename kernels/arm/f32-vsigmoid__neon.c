/* f32 LOGISTIC, AArch64 NEON: 1 / (1 + e^-x) from e^-|x| (math__neon.h), never overflowing:
 * x >= 0 gives 1 / (1 + e), x < 0 gives e / (1 + e). Within a few ulp of the reference's expf
 * form; 0 below about -87 where the reference gives a subnormal, NaN for NaN. 8 elements per
 * loop step, then 4, then the same vector code on a duplicated lane. */
#include <arm_neon.h>

#include "edgeq/dispatch.h"
#include "math__neon.h"

static inline float32x4_t sigmoid4(float32x4_t x) {
  const float32x4_t one = vdupq_n_f32(1.0f);
  const float32x4_t e = exp_nonpositive4(vnegq_f32(vabsq_f32(x)));  /* e^-|x| */
  const float32x4_t r = vdivq_f32(one, vaddq_f32(one, e));
  return vbslq_f32(vcltzq_f32(x), vmulq_f32(e, r), r);
}

int eq_f32_logistic__neon(const eq_node *node, eq_ctx *ctx) {
  (void)ctx;
  const float *in = (const float *)node->inputs[0]->data;
  float *out = (float *)node->outputs[0]->data;
  const int64_t n = node->inputs[0]->count;
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const float32x4_t x0 = vld1q_f32(in + i), x1 = vld1q_f32(in + i + 4);
    vst1q_f32(out + i, sigmoid4(x0));
    vst1q_f32(out + i + 4, sigmoid4(x1));
  }
  for (; i + 4 <= n; i += 4) vst1q_f32(out + i, sigmoid4(vld1q_f32(in + i)));
  for (; i < n; ++i) out[i] = vgetq_lane_f32(sigmoid4(vld1q_dup_f32(in + i)), 0);
  return 0;
}
