/* edgeq's fused layer normalization (params/reduce.h), NEON: per row the reference's three
 * passes (sum, sum of squared deviations, scale), 4 lanes at a time with the lane sums folded
 * at the end; the per-element step is the reference's x * s + (-m) * s (+ beta), as a multiply
 * and a fused multiply-add. Sums are reassociated across lanes, so results agree with the
 * reference to float rounding. Rows split across threads. */
#include <arm_neon.h>
#include <math.h>

#include "edgeq/dispatch.h"
#include "edgeq/params/reduce.h"
#include "edgeq/threadpool.h"

static void layer_norm_rows(void *arg, int64_t begin, int64_t end) {
  const eq_node *node = (const eq_node *)arg;
  const eq_layer_norm_params *p = (const eq_layer_norm_params *)node->params;
  const float *gamma = node->n_inputs > 1 && node->inputs[1] ? node->inputs[1]->data : NULL;
  const float *beta = node->n_inputs > 2 && node->inputs[2] ? node->inputs[2]->data : NULL;
  const int64_t depth = p->depth, body = depth & ~(int64_t)3;
  for (int64_t r = begin; r < end; ++r) {
    const float *x = (const float *)node->inputs[0]->data + r * depth;
    float *y = (float *)node->outputs[0]->data + r * depth;
    float32x4_t acc = vdupq_n_f32(0.0f);
    for (int64_t c = 0; c < body; c += 4) acc = vaddq_f32(acc, vld1q_f32(x + c));
    float sum = vaddvq_f32(acc);
    for (int64_t c = body; c < depth; ++c) sum += x[c];
    const float mean = depth > 0 ? sum / (float)depth : NAN;
    const float32x4_t vm = vdupq_n_f32(mean);
    acc = vdupq_n_f32(0.0f);
    for (int64_t c = 0; c < body; c += 4) {
      const float32x4_t d = vsubq_f32(vld1q_f32(x + c), vm);
      acc = vfmaq_f32(acc, d, d);
    }
    float sq = vaddvq_f32(acc);
    for (int64_t c = body; c < depth; ++c) sq += (x[c] - mean) * (x[c] - mean);
    const float rs = 1.0f / sqrtf((depth > 0 ? sq / (float)depth : NAN) + p->epsilon);
    const float32x4_t vr = vdupq_n_f32(rs), vneg = vdupq_n_f32(-mean);
    for (int64_t c = 0; c < body; c += 4) {
      const float32x4_t s = gamma ? vmulq_f32(vr, vld1q_f32(gamma + c)) : vr;
      float32x4_t v = vfmaq_f32(vmulq_f32(vneg, s), vld1q_f32(x + c), s);
      if (beta) v = vaddq_f32(v, vld1q_f32(beta + c));
      vst1q_f32(y + c, v);
    }
    for (int64_t c = body; c < depth; ++c) {
      const float s = gamma ? rs * gamma[c] : rs;
      const float v = x[c] * s + (-mean) * s;
      y[c] = beta ? v + beta[c] : v;
    }
  }
}

int eq_f32_layer_norm__neon(const eq_node *node, eq_ctx *ctx) {
  const eq_layer_norm_params *p = (const eq_layer_norm_params *)node->params;
  eq_parallel_for(ctx, p->rows, eq_parallel_grain(p->rows, (int64_t)p->rows * p->depth * 4),
                  layer_norm_rows, (void *)node);
  return 0;
}
