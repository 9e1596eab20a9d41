/* fp16 depthwise microkernel in ARMv8.2 FP16 arithmetic (edgeq/f16.h): channels in blocks of 8
 * lanes, the block's weights of every tap held in registers while the pixels pass (3x3 and 5x5
 * unrolled: 9 or 25 vectors), one load and one fused multiply-add per tap and 8 channels. The
 * last channels (< 8) in scalar fp16 arithmetic. Only cores with ASIMDHP run this file. */
#include <arm_neon.h>

#include "edgeq/f16.h"

static inline float16x8_t load8(const uint16_t *p) { return vreinterpretq_f16_u16(vld1q_u16(p)); }

static inline float16x8_t bound(float v) {
  return vreinterpretq_f16_u16(vdupq_n_u16(eq_float_to_half(v)));
}

/* Blocks of 8 channels from ch on, for TAPS taps (a constant where inlined). */
static inline __attribute__((always_inline)) int32_t dw_blocks(
    int32_t pixels, int32_t channels, const int32_t TAPS, const uint16_t *const *ptrs,
    int64_t step, const uint16_t *weights, const uint16_t *bias, uint16_t *out, float16x8_t lo,
    float16x8_t hi) {
  int32_t ch = 0;
  for (; ch + 8 <= channels; ch += 8) {
    float16x8_t wv[TAPS];
    const uint16_t *x[TAPS];
#pragma GCC unroll 25
    for (int32_t t = 0; t < TAPS; ++t) {
      wv[t] = load8(weights + (int64_t)t * channels + ch);
      x[t] = ptrs[t] + ch;
    }
    const float16x8_t b = load8(bias + ch);
    uint16_t *o = out + ch;
    for (int32_t px = 0; px < pixels; ++px, o += channels) {
      const int64_t at = px * step;
      float16x8_t acc = b;
#pragma GCC unroll 25
      for (int32_t t = 0; t < TAPS; ++t) acc = vfmaq_f16(acc, load8(x[t] + at), wv[t]);
      vst1q_u16(o, vreinterpretq_u16_f16(vminq_f16(vmaxq_f16(acc, lo), hi)));
    }
  }
  return ch;
}

static int32_t dw_blocks_any(int32_t pixels, int32_t channels, int32_t taps,
                             const uint16_t *const *ptrs, int64_t step, const uint16_t *weights,
                             const uint16_t *bias, uint16_t *out, float16x8_t lo,
                             float16x8_t hi) {
  int32_t ch = 0;
  for (; ch + 8 <= channels; ch += 8) {
    const float16x8_t b = load8(bias + ch);
    uint16_t *o = out + ch;
    for (int32_t px = 0; px < pixels; ++px, o += channels) {
      const int64_t at = px * step + ch;
      float16x8_t acc = b;
      for (int32_t t = 0; t < taps; ++t)
        acc = vfmaq_f16(acc, load8(ptrs[t] + at), load8(weights + (int64_t)t * channels + ch));
      vst1q_u16(o, vreinterpretq_u16_f16(vminq_f16(vmaxq_f16(acc, lo), hi)));
    }
  }
  return ch;
}

void eq_f16_dwconv__neonfp16(int32_t pixels, int32_t channels, int32_t taps,
                             const uint16_t *const *ptrs, int64_t step, const uint16_t *weights,
                             const uint16_t *bias, uint16_t *out, float lo, float hi) {
  const float16x8_t vlo = bound(lo), vhi = bound(hi);
  int32_t ch;
  if (taps == 9) {
    ch = dw_blocks(pixels, channels, 9, ptrs, step, weights, bias, out, vlo, vhi);
  } else if (taps == 25) {
    ch = dw_blocks(pixels, channels, 25, ptrs, step, weights, bias, out, vlo, vhi);
  } else {
    ch = dw_blocks_any(pixels, channels, taps, ptrs, step, weights, bias, out, vlo, vhi);
  }
  if (ch == channels) return;
  const float16_t flo = vgetq_lane_f16(vlo, 0), fhi = vgetq_lane_f16(vhi, 0);
  for (int32_t px = 0; px < pixels; ++px) {
    for (int32_t c = ch; c < channels; ++c) {
      float16_t acc = vreinterpret_f16_u16(vdup_n_u16(bias[c]))[0];
      for (int32_t t = 0; t < taps; ++t) {
        const float16_t xv = vreinterpret_f16_u16(vdup_n_u16(ptrs[t][px * step + c]))[0];
        const float16_t wt =
            vreinterpret_f16_u16(vdup_n_u16(weights[(int64_t)t * channels + c]))[0];
        acc = vfmah_f16(acc, xv, wt);
      }
      acc = vmaxnmh_f16(acc, flo);
      acc = vminnmh_f16(acc, fhi);
      out[(int64_t)px * channels + c] = vget_lane_u16(vreinterpret_u16_f16(vdup_n_f16(acc)), 0);
    }
  }
}
