/* f32 (indirect) GEMM microkernel, 4 rows x 16 columns, AArch64 NEON.
 *
 * The main loop takes four k steps at a time: each row's next four A values are one q-register
 * load, and each packed weight row (16 floats, four q registers) is multiplied by one lane of
 * them with the by-element FMA (`fmla v.4s, v.4s, v.s[lane]`), so no A value is duplicated
 * into a register of its own. Per four k steps: 4 A loads, 8 paired weight loads, 64 FMAs
 * and the loop's counter and branch, 0.32 instructions per multiply-accumulate as gcc
 * schedules it (6 rows would need 24 accumulators + 6 A + 4 weight registers, more than the
 * 32 there are: gcc spills, 0.41). The k steps left over (kc not a multiple of 4, e.g. a
 * 3-channel first convolution) go one at a time with a duplicating load. Blocks with at most
 * 8 live columns do half the FMAs; one row runs a one-row loop. Each output adds its products
 * in increasing k from its bias, as every variant does (edgeq/f32_gemm.h). */
#include <arm_neon.h>

#include "edgeq/f32_gemm.h"

#define MR 4

static inline float32x4_t clamp4(float32x4_t v, float32x4_t lo, float32x4_t hi) {
  /* vmaxnm/vminnm would drop a NaN; max/min keep it, as the reference does */
  return vminq_f32(hi, vmaxq_f32(lo, v));
}

/* Stores the first n (0..4) lanes of v. */
static inline void store4(float *c, int32_t n, float32x4_t v) {
  if (n >= 4) {
    vst1q_f32(c, v);
    return;
  }
  float32x2_t low = vget_low_f32(v);
  if (n >= 2) {
    vst1_f32(c, low);
    if (n == 3) vst1q_lane_f32(c + 2, v, 2);
  } else if (n == 1) {
    vst1_lane_f32(c, low, 0);
  }
}

/* One lane of the four-k step: weight row `lane` (NQ q registers) times lane `lane` of every
 * row's A vector. The lane must be a literal, hence a macro. */
#define LANE_STEP(lane)                                                                      \
  do {                                                                                       \
    _Pragma("GCC unroll 4") for (int32_t q = 0; q < NQ; ++q) {                               \
      const float32x4_t wq = vld1q_f32(w + 16 * (lane) + 4 * q);                             \
      _Pragma("GCC unroll 4") for (int32_t i = 0; i < R; ++i)                                \
        acc[i][q] = vfmaq_laneq_f32(acc[i][q], wq, xa[i], lane);                             \
    }                                                                                        \
  } while (0)

/* R rows (1 <= R <= MR) x 4 * NQ columns; stores rows < mr and columns < nc. */
static inline __attribute__((always_inline)) void tile(
    const int32_t R, const int32_t NQ, int32_t mr, int32_t nc, int32_t taps, int32_t kc,
    const float *const *a, const float *restrict w, float *restrict c, int64_t c_stride,
    float lo, float hi) {
  float32x4_t acc[MR][4];
#pragma GCC unroll 4
  for (int32_t q = 0; q < NQ; ++q) {
    const float32x4_t bias = vld1q_f32(w + 4 * q);
#pragma GCC unroll 4
    for (int32_t i = 0; i < R; ++i) acc[i][q] = bias;
  }
  w += 16;
  for (int32_t t = 0; t < taps; ++t, a += MR) {
    const float *x[MR];
#pragma GCC unroll 4
    for (int32_t i = 0; i < R; ++i) x[i] = a[i];
    int32_t k = kc;
    for (; k >= 4; k -= 4, w += 64) {
      float32x4_t xa[MR];
#pragma GCC unroll 4
      for (int32_t i = 0; i < R; ++i) {
        xa[i] = vld1q_f32(x[i]);
        x[i] += 4;
      }
      LANE_STEP(0);
      LANE_STEP(1);
      LANE_STEP(2);
      LANE_STEP(3);
    }
    for (; k > 0; --k, w += 16) {
      float32x4_t xd[MR];
#pragma GCC unroll 4
      for (int32_t i = 0; i < R; ++i) xd[i] = vld1q_dup_f32(x[i]++);
#pragma GCC unroll 4
      for (int32_t q = 0; q < NQ; ++q) {
        const float32x4_t wq = vld1q_f32(w + 4 * q);
#pragma GCC unroll 4
        for (int32_t i = 0; i < R; ++i) acc[i][q] = vfmaq_f32(acc[i][q], xd[i], wq);
      }
    }
  }
  const float32x4_t vlo = vdupq_n_f32(lo), vhi = vdupq_n_f32(hi);
  /* constant indices (unrolled, then cut at mr) keep the accumulators out of memory */
#pragma GCC unroll 4
  for (int32_t i = 0; i < R; ++i) {
    if (i >= mr) break;
#pragma GCC unroll 4
    for (int32_t q = 0; q < NQ; ++q)
      store4(c + i * c_stride + 4 * q, nc - 4 * q, clamp4(acc[i][q], vlo, vhi));
  }
}

void eq_f32_gemm_4x16__neon(int32_t mr, int32_t nc, int32_t taps, int32_t kc,
                            const float *const *a, const float *w, float *c, int64_t c_stride,
                            float lo, float hi) {
  if (mr == 1) {
    tile(1, 4, mr, nc, taps, kc, a, w, c, c_stride, lo, hi);
  } else if (nc <= 8) {
    tile(MR, 2, mr, nc, taps, kc, a, w, c, c_stride, lo, hi);
  } else {
    tile(MR, 4, mr, nc, taps, kc, a, w, c, c_stride, lo, hi);
  }
}
