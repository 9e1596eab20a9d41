/* fp16 <-> float32 with plain NEON (fcvtl / fcvtn exist on every AArch64 core; no FP16
 * arithmetic needed). fcvtn rounds by FPCR, which Linux and Android leave at round-to-nearest-
 * even, so results equal eq_float_to_half (edgeq/f16.h). The vectors are moved as uint16 and
 * reinterpreted, so no compiler fp16 type is needed at the interface. */
#include <arm_neon.h>

#include "edgeq/f16.h"

void eq_f16_to_f32__neon(size_t n, const uint16_t *in, float *out) {
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const float16x8_t h = vreinterpretq_f16_u16(vld1q_u16(in + i));
    vst1q_f32(out + i, vcvt_f32_f16(vget_low_f16(h)));
    vst1q_f32(out + i + 4, vcvt_high_f32_f16(h));
  }
  for (; i + 4 <= n; i += 4) {
    vst1q_f32(out + i, vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(in + i))));
  }
  for (; i < n; ++i) out[i] = eq_half_to_float(in[i]);
}

void eq_f32_to_f16__neon(size_t n, const float *in, uint16_t *out) {
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const float16x4_t lo = vcvt_f16_f32(vld1q_f32(in + i));
    const float16x8_t h = vcvt_high_f16_f32(lo, vld1q_f32(in + i + 4));
    vst1q_u16(out + i, vreinterpretq_u16_f16(h));
  }
  for (; i + 4 <= n; i += 4) {
    vst1_u16(out + i, vreinterpret_u16_f16(vcvt_f16_f32(vld1q_f32(in + i))));
  }
  for (; i < n; ++i) out[i] = eq_float_to_half(in[i]);
}
