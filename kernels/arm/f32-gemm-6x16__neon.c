/* f32 (indirect) GEMM microkernel, 6 rows x 16 columns, AArch64 NEON.
 *
 * Four k steps at a time: each row's next four A values are one q-register load, and each
 * packed weight row (16 floats) is multiplied by one lane of them with the by-element FMA
 * (`fmla v.4s, v.4s, v.s[lane]`), so no A value is duplicated into a register of its own.
 *
 * Whole tiles (6 rows, 16 columns) run an assembly loop: 24 accumulators (v8-v31), the six
 * rows' A vectors (v0-v5) and one pair of weight registers (v6-v7) fill the 32 vector registers
 * exactly. Per four k steps: 6 A loads, 8 paired weight loads, 96 FMAs, counter and branch:
 * 112 instructions for 384 multiply-accumulates (0.29). From C, gcc cannot hold that many live
 * vectors without spilling, and shuffles the accumulators between registers around every loop
 * (0.38 per MAC measured on MobileNetV2's 1x1 convolutions, against 0.32 for its best C tile).
 * The k steps left over (kc not a multiple of 4, e.g. a 3-channel first convolution) go one at
 * a time with duplicating loads through the same FMA block at lane 0.
 *
 * Edge tiles (fewer rows, fewer columns) take the C tile below: at most 4 rows x 16 columns,
 * 6 rows x 8 columns, or one row. Each output adds its products in increasing k from its bias,
 * as every variant does (edgeq/f32_gemm.h). */
#include <arm_neon.h>

#include "edgeq/f32_gemm.h"

#define MR 6

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
      _Pragma("GCC unroll 6") for (int32_t i = 0; i < R; ++i)                                \
        acc[i][q] = vfmaq_laneq_f32(acc[i][q], wq, xa[i], lane);                             \
    }                                                                                        \
  } while (0)

/* R rows (1 <= R <= MR; 4 at most when NQ is 4) x 4 * NQ columns; stores rows < mr and
 * columns < nc. */
static inline __attribute__((always_inline)) void tile(
    const int32_t R, const int32_t NQ, int32_t mr, int32_t nc, int32_t taps, int32_t kc,
    const float *const *a, const float *restrict w, float *restrict c, int64_t c_stride,
    float lo, float hi) {
  float32x4_t acc[MR][4];
#pragma GCC unroll 4
  for (int32_t q = 0; q < NQ; ++q) {
    const float32x4_t bias = vld1q_f32(w + 4 * q);
#pragma GCC unroll 6
    for (int32_t i = 0; i < R; ++i) acc[i][q] = bias;
  }
  w += 16;
  for (int32_t t = 0; t < taps; ++t, a += MR) {
    const float *x[MR];
#pragma GCC unroll 6
    for (int32_t i = 0; i < R; ++i) x[i] = a[i];
    int32_t k = kc;
    for (; k >= 4; k -= 4, w += 64) {
      float32x4_t xa[MR];
#pragma GCC unroll 6
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
#pragma GCC unroll 6
      for (int32_t i = 0; i < R; ++i) xd[i] = vld1q_dup_f32(x[i]++);
#pragma GCC unroll 4
      for (int32_t q = 0; q < NQ; ++q) {
        const float32x4_t wq = vld1q_f32(w + 4 * q);
#pragma GCC unroll 6
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

/* The FMAs of one k step for the whole tile: weight row at w (two ldp of two q registers)
 * times lane LANE of v0-v5 (row i's A values in v<i>). Accumulator of row i, columns 4q..4q+3:
 * v<8 + 4i + q>. */
#define K_STEP(L)                                                                            \
  "ldp q6, q7, [%[w]], #32\n"                                                                \
  "fmla v8.4s, v6.4s, v0.s[" #L "]\n fmla v9.4s, v7.4s, v0.s[" #L "]\n"                      \
  "fmla v12.4s, v6.4s, v1.s[" #L "]\n fmla v13.4s, v7.4s, v1.s[" #L "]\n"                    \
  "fmla v16.4s, v6.4s, v2.s[" #L "]\n fmla v17.4s, v7.4s, v2.s[" #L "]\n"                    \
  "fmla v20.4s, v6.4s, v3.s[" #L "]\n fmla v21.4s, v7.4s, v3.s[" #L "]\n"                    \
  "fmla v24.4s, v6.4s, v4.s[" #L "]\n fmla v25.4s, v7.4s, v4.s[" #L "]\n"                    \
  "fmla v28.4s, v6.4s, v5.s[" #L "]\n fmla v29.4s, v7.4s, v5.s[" #L "]\n"                    \
  "ldp q6, q7, [%[w]], #32\n"                                                                \
  "fmla v10.4s, v6.4s, v0.s[" #L "]\n fmla v11.4s, v7.4s, v0.s[" #L "]\n"                    \
  "fmla v14.4s, v6.4s, v1.s[" #L "]\n fmla v15.4s, v7.4s, v1.s[" #L "]\n"                    \
  "fmla v18.4s, v6.4s, v2.s[" #L "]\n fmla v19.4s, v7.4s, v2.s[" #L "]\n"                    \
  "fmla v22.4s, v6.4s, v3.s[" #L "]\n fmla v23.4s, v7.4s, v3.s[" #L "]\n"                    \
  "fmla v26.4s, v6.4s, v4.s[" #L "]\n fmla v27.4s, v7.4s, v4.s[" #L "]\n"                    \
  "fmla v30.4s, v6.4s, v5.s[" #L "]\n fmla v31.4s, v7.4s, v5.s[" #L "]\n"
/* Row i's clamp and store: v<8+4i>..v<11+4i> to c, then c += c_stride (one st1 does both). */
#define CLAMP_STORE(A, B, C, D)                                                              \
  "fmax v" #A ".4s, v" #A ".4s, v0.4s\n fmax v" #B ".4s, v" #B ".4s, v0.4s\n"                \
  "fmax v" #C ".4s, v" #C ".4s, v0.4s\n fmax v" #D ".4s, v" #D ".4s, v0.4s\n"                \
  "fmin v" #A ".4s, v" #A ".4s, v1.4s\n fmin v" #B ".4s, v" #B ".4s, v1.4s\n"                \
  "fmin v" #C ".4s, v" #C ".4s, v1.4s\n fmin v" #D ".4s, v" #D ".4s, v1.4s\n"                \
  "st1 {v" #A ".4s, v" #B ".4s, v" #C ".4s, v" #D ".4s}, [%[c]], %[cs]\n"

/* A whole 6 x 16 tile (taps >= 1, kc >= 1). The clamp is FMAX then FMIN, NaN kept, as in
 * clamp4. */
static void tile_6x16(int32_t taps, int32_t kc, const float *const *a, const float *w,
                      float *c, int64_t c_stride, const float *bounds) {
  const float *r0, *r1, *r2, *r3, *r4, *r5;
  int64_t k;
  int64_t t = taps;
  __asm__ volatile(
      /* every row starts from the bias: one 4-register load per row */
      "ld1 {v8.4s, v9.4s, v10.4s, v11.4s}, [%[w]]\n ld1 {v12.4s, v13.4s, v14.4s, v15.4s}, [%[w]]\n"
      "ld1 {v16.4s, v17.4s, v18.4s, v19.4s}, [%[w]]\n ld1 {v20.4s, v21.4s, v22.4s, v23.4s}, [%[w]]\n"
      "ld1 {v24.4s, v25.4s, v26.4s, v27.4s}, [%[w]]\n"
      "ld1 {v28.4s, v29.4s, v30.4s, v31.4s}, [%[w]], #64\n"
      "1:\n"  /* each tap: its six row pointers */
      "ldp %[r0], %[r1], [%[a]]\n ldp %[r2], %[r3], [%[a], #16]\n ldp %[r4], %[r5], [%[a], #32]\n"
      "add %[a], %[a], #48\n"
      "subs %[k], %[kc], #4\n"
      "b.lo 3f\n"
      "2:\n"  /* four k steps */
      "ldr q0, [%[r0]], #16\n ldr q1, [%[r1]], #16\n ldr q2, [%[r2]], #16\n"
      "ldr q3, [%[r3]], #16\n ldr q4, [%[r4]], #16\n ldr q5, [%[r5]], #16\n"
      K_STEP(0) K_STEP(1) K_STEP(2) K_STEP(3)
      "subs %[k], %[k], #4\n"
      "b.hs 2b\n"
      "3:\n"  /* k = -4 + the steps left (0..3) */
      "adds %[k], %[k], #4\n"
      "b.eq 5f\n"
      "4:\n"  /* one k step */
      "ld1r {v0.4s}, [%[r0]], #4\n ld1r {v1.4s}, [%[r1]], #4\n ld1r {v2.4s}, [%[r2]], #4\n"
      "ld1r {v3.4s}, [%[r3]], #4\n ld1r {v4.4s}, [%[r4]], #4\n ld1r {v5.4s}, [%[r5]], #4\n"
      K_STEP(0)
      "subs %[k], %[k], #1\n"
      "b.ne 4b\n"
      "5:\n"
      "subs %[t], %[t], #1\n"
      "b.ne 1b\n"
      "ld1r {v0.4s}, [%[bounds]]\n"
      "add %[k], %[bounds], #4\n"
      "ld1r {v1.4s}, [%[k]]\n"
      CLAMP_STORE(8, 9, 10, 11) CLAMP_STORE(12, 13, 14, 15) CLAMP_STORE(16, 17, 18, 19)
      CLAMP_STORE(20, 21, 22, 23) CLAMP_STORE(24, 25, 26, 27) CLAMP_STORE(28, 29, 30, 31)
      : [a] "+r"(a), [w] "+r"(w), [c] "+r"(c), [t] "+r"(t), [k] "=&r"(k), [r0] "=&r"(r0),
        [r1] "=&r"(r1), [r2] "=&r"(r2), [r3] "=&r"(r3), [r4] "=&r"(r4), [r5] "=&r"(r5)
      : [kc] "r"((int64_t)kc), [cs] "r"(c_stride * (int64_t)sizeof(float)), [bounds] "r"(bounds)
      : "cc", "memory", "v0", "v1", "v2", "v3", "v4", "v5", "v6", "v7", "v8", "v9", "v10",
        "v11", "v12", "v13", "v14", "v15", "v16", "v17", "v18", "v19", "v20", "v21", "v22",
        "v23", "v24", "v25", "v26", "v27", "v28", "v29", "v30", "v31");
}

/* The clamp-only epilogue (edgeq/f32_gemm.h). */
static void gemm_clamped(int32_t mr, int32_t nc, int32_t taps, int32_t kc,
                         const float *const *a, const float *w, float *c, int64_t c_stride,
                         float lo, float hi) {
  if (mr == MR && nc == 16 && taps > 0 && kc > 0) {
    const float bounds[2] = {lo, hi};
    tile_6x16(taps, kc, a, w, c, c_stride, bounds);
  } else if (mr == 1) {
    tile(1, 4, mr, nc, taps, kc, a, w, c, c_stride, lo, hi);
  } else if (nc <= 8) {
    tile(MR, 2, mr, nc, taps, kc, a, w, c, c_stride, lo, hi);
  } else if (mr <= 4) {
    tile(4, 4, mr, nc, taps, kc, a, w, c, c_stride, lo, hi);
  } else {
    tile(MR, 4, mr, nc, taps, kc, a, w, c, c_stride, lo, hi);
  }
}

/* The rest of the epilogue (edgeq/f32_gemm.h) over the first n4 (a multiple of 4) columns of a
 * stored tile while it is in L1; RES and ACT (0 none, 1 PRELU slopes, 2 HARD_SWISH) are
 * constants of each instance, so every loop is branch-free. */
static inline __attribute__((always_inline)) void epilogue_rows(
    const int RES, const int ACT, int32_t mr, int32_t n4, float *c, int64_t c_stride,
    const eq_f32_gemm_epilogue *ep) {
  const float32x4_t vlo = vdupq_n_f32(ep->lo), vhi = vdupq_n_f32(ep->hi);
  const float32x4_t zero = vdupq_n_f32(0.0f), three = vdupq_n_f32(3.0f);
  const float32x4_t six = vdupq_n_f32(6.0f);
  for (int32_t i = 0; i < mr; ++i) {
    float *row = c + i * c_stride;
    const float *res = RES ? ep->residual + i * c_stride : NULL;
    for (int32_t j = 0; j < n4; j += 4) {
      float32x4_t v = vld1q_f32(row + j);
      if (RES) v = vaddq_f32(v, vld1q_f32(res + j));
      v = clamp4(v, vlo, vhi);
      if (ACT == 1) {
        /* x >= 0 ? x : x * slope; a NaN fails the compare and gives x * slope */
        v = vbslq_f32(vcgeq_f32(v, zero), v, vmulq_f32(v, vld1q_f32(ep->slope + j)));
      } else if (ACT == 2) {
        /* HARD_SWISH's operations in its order (max/min keep a NaN) */
        v = vdivq_f32(vmulq_f32(v, vminq_f32(six, vmaxq_f32(zero, vaddq_f32(v, three)))), six);
      }
      vst1q_f32(row + j, v);
    }
  }
}

/* The rest of the epilogue over a stored tile: four columns at a time, the last nc % 4 by the
 * portable pass. */
static void epilogue_pass(int32_t mr, int32_t nc, float *c, int64_t c_stride,
                          const eq_f32_gemm_epilogue *ep) {
  const int32_t n4 = nc & ~3;
  const int act = ep->slope ? 1 : ep->hard_swish ? 2 : 0;
  if (ep->residual) {
    if (act == 1) epilogue_rows(1, 1, mr, n4, c, c_stride, ep);
    else if (act == 2) epilogue_rows(1, 2, mr, n4, c, c_stride, ep);
    else epilogue_rows(1, 0, mr, n4, c, c_stride, ep);
  } else {
    if (act == 1) epilogue_rows(0, 1, mr, n4, c, c_stride, ep);
    else if (act == 2) epilogue_rows(0, 2, mr, n4, c, c_stride, ep);
    else epilogue_rows(0, 0, mr, n4, c, c_stride, ep);
  }
  if (n4 < nc) {
    eq_f32_gemm_epilogue tail = *ep;
    if (tail.slope) tail.slope += n4;
    if (tail.residual) tail.residual += n4;
    eq_f32_gemm_epilogue_pass(mr, nc - n4, c + n4, c_stride, &tail);
  }
}

void eq_f32_gemm_6x16__neon(int32_t mr, int32_t nc, int32_t taps, int32_t kc,
                            const float *const *a, const float *w, float *c, int64_t c_stride,
                            const eq_f32_gemm_epilogue *ep) {
  if (eq_f32_gemm_clamp_only(ep)) {
    gemm_clamped(mr, nc, taps, kc, a, w, c, c_stride, ep->lo, ep->hi);
    return;
  }
  /* A residual, PRELU slopes or HARD_SWISH: the sums are stored as they are and the pass
   * does the rest. */
  gemm_clamped(mr, nc, taps, kc, a, w, c, c_stride, -__builtin_inff(), __builtin_inff());
  epilogue_pass(mr, nc, c, c_stride, ep);
}
