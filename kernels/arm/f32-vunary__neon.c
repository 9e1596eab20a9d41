/* f32 unary ops, AArch64 NEON: HARD_SWISH (x * clamp(x + 3, 0, 6) / 6 in the reference's order
 * of operations with its ARM clamp, FMAX then FMIN, so bit-identical to it), 8 elements per loop
 * step, and GELU, 4; the last 1..3 elements run the same vector code on a duplicated lane. */
#include <arm_neon.h>

#include "edgeq/dispatch.h"
#include "math__neon.h"

static inline float32x4_t hard_swish4(float32x4_t x) {
  const float32x4_t gate =
      vminq_f32(vmaxq_f32(vaddq_f32(x, vdupq_n_f32(3.0f)), vdupq_n_f32(0.0f)), vdupq_n_f32(6.0f));
  return vdivq_f32(vmulq_f32(x, gate), vdupq_n_f32(6.0f));
}

/* erfc(z) = t exp(-z^2 + P(t)), t = 1 / (1 + |z| / 2), mirrored as 2 - erfc(-z) for z < 0: the
 * Chebyshev fit of Numerical Recipes (erfcc, fractional error below 1.2e-7 everywhere). */
static inline float32x4_t erfc4(float32x4_t z) {
  const float32x4_t a = vabsq_f32(z), one = vdupq_n_f32(1.0f);
  const float32x4_t t = vdivq_f32(one, vfmaq_n_f32(one, a, 0.5f));
  static const float c[10] = {-1.26551223f, 1.00002368f, 0.37409196f, 0.09678418f,
                              -0.18628806f, 0.27886807f, -1.13520398f, 1.48851587f,
                              -0.82215223f, 0.17087277f};
  float32x4_t p = vdupq_n_f32(c[9]);
  for (int i = 8; i >= 0; --i) p = vfmaq_f32(vdupq_n_f32(c[i]), p, t);
  const float32x4_t y = vmulq_f32(t, exp_nonpositive4(vfmsq_f32(p, a, a)));
  return vbslq_f32(vcltzq_f32(z), vsubq_f32(vdupq_n_f32(2.0f), y), y);
}

/* GELU (exact form): 0.5 x erfc(-x / sqrt 2), as the reference writes it, with erfc from the
 * fit above: within a few 1e-7 of the reference (relative), not bit-identical. */
static inline float32x4_t gelu4(float32x4_t x) {
  return vmulq_f32(vmulq_n_f32(x, 0.5f), erfc4(vmulq_n_f32(x, -0.7071067811865476f)));
}

/* UNROLL elements per loop step (4 or 8: GELU's polynomials need the registers of one). */
#define DEFINE_VUNARY(NAME, OP, UNROLL)                                                      \
  int NAME(const eq_node *node, eq_ctx *ctx) {                                               \
    (void)ctx;                                                                               \
    const float *in = (const float *)node->inputs[0]->data;                                  \
    float *out = (float *)node->outputs[0]->data;                                            \
    const int64_t n = node->inputs[0]->count;                                                \
    int64_t i = 0;                                                                           \
    for (; UNROLL == 8 && i + 8 <= n; i += 8) {                                              \
      const float32x4_t x0 = vld1q_f32(in + i), x1 = vld1q_f32(in + i + 4);                  \
      vst1q_f32(out + i, OP(x0));                                                            \
      vst1q_f32(out + i + 4, OP(x1));                                                        \
    }                                                                                        \
    for (; i + 4 <= n; i += 4) vst1q_f32(out + i, OP(vld1q_f32(in + i)));                    \
    for (; i < n; ++i) out[i] = vgetq_lane_f32(OP(vld1q_dup_f32(in + i)), 0);                \
    return 0;                                                                                \
  }

DEFINE_VUNARY(eq_f32_hard_swish__neon, hard_swish4, 8)
DEFINE_VUNARY(eq_f32_gelu__neon, gelu4, 4)
