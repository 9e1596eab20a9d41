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
 * as every variant does (edgeq/f32_gemm.h).
 *
 * The epilogue (residual, clamp, then PRELU slopes or HARD_SWISH) is applied to the
 * accumulators before the store, by one instance of each tile per epilogue kind: storing the
 * raw sums and passing over the tile again cost more guest instructions than the separate
 * PRELU / ADD / HARD_SWISH kernels; in registers, fusing them pays (benchmarks/README.md,
 * "Conv epilogue fusion on ARM"). */
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

/* The first n (at most 4; none when n <= 0) lanes at p, the others zero: a residual is read
 * only where its output is stored. */
static inline float32x4_t load4(const float *p, int32_t n) {
  if (n >= 4) return vld1q_f32(p);
  float32x4_t v = vdupq_n_f32(0.0f);
  if (n >= 1) v = vld1q_lane_f32(p, v, 0);
  if (n >= 2) v = vld1q_lane_f32(p + 1, v, 1);
  if (n >= 3) v = vld1q_lane_f32(p + 2, v, 2);
  return v;
}

/* The epilogue after the residual: the clamp, then ACT (0 none, 1 PRELU with the four slopes
 * at slope, 2 HARD_SWISH). */
static inline __attribute__((always_inline)) float32x4_t finish4(
    const int ACT, float32x4_t v, float32x4_t lo, float32x4_t hi, const float *slope) {
  v = clamp4(v, lo, hi);
  if (ACT == 1) {
    /* x >= 0 ? x : x * slope; a NaN fails the compare and gives x * slope */
    v = vbslq_f32(vcgeq_f32(v, vdupq_n_f32(0.0f)), v, vmulq_f32(v, vld1q_f32(slope)));
  } else if (ACT == 2) {
    /* HARD_SWISH's operations in its order (max/min keep a NaN) */
    const float32x4_t six = vdupq_n_f32(6.0f);
    const float32x4_t g = vminq_f32(six, vmaxq_f32(vdupq_n_f32(0.0f),
                                                   vaddq_f32(v, vdupq_n_f32(3.0f))));
    v = vdivq_f32(vmulq_f32(v, g), six);
  }
  return v;
}

/* R rows (1 <= R <= MR; 4 at most when NQ is 4) x 4 * NQ columns; stores rows < mr and
 * columns < nc, through the epilogue: RES (a residual) and ACT (as finish4) are constants of
 * each instance. */
static inline __attribute__((always_inline)) void tile(
    const int32_t R, const int32_t NQ, const int RES, const int ACT, int32_t mr, int32_t nc,
    int32_t taps, int32_t kc, const float *const *a, const float *restrict w,
    float *restrict c, int64_t c_stride, const eq_f32_gemm_epilogue *ep) {
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
  const float32x4_t vlo = vdupq_n_f32(ep->lo), vhi = vdupq_n_f32(ep->hi);
  /* constant indices (unrolled, then cut at mr) keep the accumulators out of memory */
#pragma GCC unroll 4
  for (int32_t i = 0; i < R; ++i) {
    if (i >= mr) break;
#pragma GCC unroll 4
    for (int32_t q = 0; q < NQ; ++q) {
      float32x4_t v = acc[i][q];
      if (RES) v = vaddq_f32(v, load4(ep->residual + i * c_stride + 4 * q, nc - 4 * q));
      store4(c + i * c_stride + 4 * q, nc - 4 * q,
             finish4(ACT, v, vlo, vhi, ACT == 1 ? ep->slope + 4 * q : NULL));
    }
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
/* The sums of a whole tile into v8-v31 (K_STEP's layout), every tap and k step. */
#define GEMM_6X16_SUMS                                                                        \
  /* every row starts from the bias: one 4-register load per row */                           \
  "ld1 {v8.4s, v9.4s, v10.4s, v11.4s}, [%[w]]\n"                                              \
  "ld1 {v12.4s, v13.4s, v14.4s, v15.4s}, [%[w]]\n"                                            \
  "ld1 {v16.4s, v17.4s, v18.4s, v19.4s}, [%[w]]\n"                                            \
  "ld1 {v20.4s, v21.4s, v22.4s, v23.4s}, [%[w]]\n"                                            \
  "ld1 {v24.4s, v25.4s, v26.4s, v27.4s}, [%[w]]\n"                                            \
  "ld1 {v28.4s, v29.4s, v30.4s, v31.4s}, [%[w]], #64\n"                                       \
  "1:\n"  /* each tap: its six row pointers */                                                \
  "ldp %[r0], %[r1], [%[a]]\n ldp %[r2], %[r3], [%[a], #16]\n ldp %[r4], %[r5], [%[a], #32]\n" \
  "add %[a], %[a], #48\n"                                                                     \
  "subs %[k], %[kc], #4\n"                                                                    \
  "b.lo 3f\n"                                                                                 \
  "2:\n"  /* four k steps */                                                                  \
  "ldr q0, [%[r0]], #16\n ldr q1, [%[r1]], #16\n ldr q2, [%[r2]], #16\n"                      \
  "ldr q3, [%[r3]], #16\n ldr q4, [%[r4]], #16\n ldr q5, [%[r5]], #16\n"                      \
  K_STEP(0) K_STEP(1) K_STEP(2) K_STEP(3)                                                     \
  "subs %[k], %[k], #4\n"                                                                     \
  "b.hs 2b\n"                                                                                 \
  "3:\n"  /* k = -4 + the steps left (0..3) */                                                \
  "adds %[k], %[k], #4\n"                                                                     \
  "b.eq 5f\n"                                                                                 \
  "4:\n"  /* one k step */                                                                    \
  "ld1r {v0.4s}, [%[r0]], #4\n ld1r {v1.4s}, [%[r1]], #4\n ld1r {v2.4s}, [%[r2]], #4\n"       \
  "ld1r {v3.4s}, [%[r3]], #4\n ld1r {v4.4s}, [%[r4]], #4\n ld1r {v5.4s}, [%[r5]], #4\n"       \
  K_STEP(0)                                                                                   \
  "subs %[k], %[k], #1\n"                                                                     \
  "b.ne 4b\n"                                                                                 \
  "5:\n"                                                                                      \
  "subs %[t], %[t], #1\n"                                                                     \
  "b.ne 1b\n"

/* The epilogue of row i, accumulators A..D (v<8+4i>..v<11+4i>), after the loop; v0 and v1 hold
 * lo and hi in every lane, v2 and v3 are free. The residual: row i's 16 values at res, two
 * registers at a time, then res moves to the next row (rs = row stride - 32 bytes). */
#define RESIDUAL_ADD(A, B, C, D)                                                             \
  "ld1 {v2.4s, v3.4s}, [%[res]], #32\n fadd v" #A ".4s, v" #A ".4s, v2.4s\n"                 \
  "fadd v" #B ".4s, v" #B ".4s, v3.4s\n ld1 {v2.4s, v3.4s}, [%[res]], %[rs]\n"               \
  "fadd v" #C ".4s, v" #C ".4s, v2.4s\n fadd v" #D ".4s, v" #D ".4s, v3.4s\n"
/* FMAX then FMIN, a NaN kept, as in clamp4 */
#define CLAMP(A, B, C, D)                                                                    \
  "fmax v" #A ".4s, v" #A ".4s, v0.4s\n fmax v" #B ".4s, v" #B ".4s, v0.4s\n"                \
  "fmax v" #C ".4s, v" #C ".4s, v0.4s\n fmax v" #D ".4s, v" #D ".4s, v0.4s\n"                \
  "fmin v" #A ".4s, v" #A ".4s, v1.4s\n fmin v" #B ".4s, v" #B ".4s, v1.4s\n"                \
  "fmin v" #C ".4s, v" #C ".4s, v1.4s\n fmin v" #D ".4s, v" #D ".4s, v1.4s\n"
/* PRELU on register X with the slopes in S (v4-v7, columns 0-15): X >= 0 ? X : X * S (a NaN
 * fails the compare and takes X * S); BIF keeps X where the mask is set. */
#define PRELU1(X, S)                                                                         \
  "fcmge v2.4s, v" #X ".4s, #0.0\n fmul v3.4s, v" #X ".4s, v" #S ".4s\n"                     \
  "bif v" #X ".16b, v3.16b, v2.16b\n"
#define PRELU(A, B, C, D) PRELU1(A, 4) PRELU1(B, 5) PRELU1(C, 6) PRELU1(D, 7)
/* HARD_SWISH on register X in its operations' order, v4 = 3, v5 = 6, v6 = 0, T a temporary:
 * X * min(6, max(0, X + 3)) / 6 (a NaN stays NaN). */
#define HSWISH1(X, T)                                                                        \
  "fadd v" #T ".4s, v" #X ".4s, v4.4s\n fmax v" #T ".4s, v" #T ".4s, v6.4s\n"                \
  "fmin v" #T ".4s, v" #T ".4s, v5.4s\n fmul v" #X ".4s, v" #X ".4s, v" #T ".4s\n"           \
  "fdiv v" #X ".4s, v" #X ".4s, v5.4s\n"
#define HSWISH(A, B, C, D) HSWISH1(A, 2) HSWISH1(B, 3) HSWISH1(C, 7) HSWISH1(D, 2)
#define NOTHING(A, B, C, D)
/* Row i's store: v<8+4i>..v<11+4i> to c, then c += c_stride (one st1 does both). */
#define STORE(A, B, C, D) "st1 {v" #A ".4s, v" #B ".4s, v" #C ".4s, v" #D ".4s}, [%[c]], %[cs]\n"
/* One row's whole epilogue: residual (RES_ or NOTHING), clamp, activation (PRELU, HSWISH or
 * NOTHING), store. */
#define ROW(RES_, ACT_, A, B, C, D)                                                          \
  RES_(A, B, C, D) CLAMP(A, B, C, D) ACT_(A, B, C, D) STORE(A, B, C, D)
#define ROWS(RES_, ACT_)                                                                     \
  ROW(RES_, ACT_, 8, 9, 10, 11) ROW(RES_, ACT_, 12, 13, 14, 15)                              \
  ROW(RES_, ACT_, 16, 17, 18, 19) ROW(RES_, ACT_, 20, 21, 22, 23)                            \
  ROW(RES_, ACT_, 24, 25, 26, 27) ROW(RES_, ACT_, 28, 29, 30, 31)
/* What an activation needs in v4-v7 before the rows. */
#define SETUP_NOTHING ""
#define SETUP_PRELU "ld1 {v4.4s, v5.4s, v6.4s, v7.4s}, [%[slope]]\n"
#define SETUP_HSWISH "fmov v4.4s, #3.0\n fmov v5.4s, #6.0\n movi v6.4s, #0\n"

/* A whole 6 x 16 tile (taps >= 1, kc >= 1) ending in epilogue RES_ / ACT_ (ROW): bounds is
 * {lo, hi}, slope the tile's 16 slopes, res its residual (each unread when not in it). */
typedef void tile_6x16_fn(int32_t taps, int32_t kc, const float *const *a, const float *w,
                          float *c, int64_t c_stride, const float *bounds, const float *slope,
                          const float *res);
#define TILE_6X16(name, RES_, ACT_)                                                          \
  static void name(int32_t taps, int32_t kc, const float *const *a, const float *w,         \
                   float *c, int64_t c_stride, const float *bounds, const float *slope,     \
                   const float *res) {                                                      \
    const float *r0, *r1, *r2, *r3, *r4, *r5;                                               \
    int64_t k;                                                                              \
    int64_t t = taps;                                                                       \
    __asm__ volatile(                                                                       \
        GEMM_6X16_SUMS                                                                      \
        "ld2r {v0.4s, v1.4s}, [%[bounds]]\n" SETUP_##ACT_ ROWS(RES_, ACT_)                  \
        : [a] "+r"(a), [w] "+r"(w), [c] "+r"(c), [t] "+r"(t), [res] "+r"(res),              \
          [k] "=&r"(k), [r0] "=&r"(r0), [r1] "=&r"(r1), [r2] "=&r"(r2), [r3] "=&r"(r3),     \
          [r4] "=&r"(r4), [r5] "=&r"(r5)                                                    \
        : [kc] "r"((int64_t)kc), [cs] "r"(c_stride * (int64_t)sizeof(float)),              \
          [rs] "r"((c_stride - 8) * (int64_t)sizeof(float)), [bounds] "r"(bounds),          \
          [slope] "r"(slope)                                                                \
        : "cc", "memory", "v0", "v1", "v2", "v3", "v4", "v5", "v6", "v7", "v8", "v9",       \
          "v10", "v11", "v12", "v13", "v14", "v15", "v16", "v17", "v18", "v19", "v20",      \
          "v21", "v22", "v23", "v24", "v25", "v26", "v27", "v28", "v29", "v30", "v31");     \
  }

TILE_6X16(tile_6x16, NOTHING, NOTHING)
TILE_6X16(tile_6x16_prelu, NOTHING, PRELU)
TILE_6X16(tile_6x16_hswish, NOTHING, HSWISH)
TILE_6X16(tile_6x16_residual, RESIDUAL_ADD, NOTHING)
TILE_6X16(tile_6x16_residual_prelu, RESIDUAL_ADD, PRELU)
TILE_6X16(tile_6x16_residual_hswish, RESIDUAL_ADD, HSWISH)

/* [RES][ACT], as tile's. */
static tile_6x16_fn *const WHOLE_TILES[2][3] = {
    {tile_6x16, tile_6x16_prelu, tile_6x16_hswish},
    {tile_6x16_residual, tile_6x16_residual_prelu, tile_6x16_residual_hswish}};

/* The GEMM with epilogue RES / ACT (as tile's). */
static inline __attribute__((always_inline)) void gemm(
    const int RES, const int ACT, int32_t mr, int32_t nc, int32_t taps, int32_t kc,
    const float *const *a, const float *w, float *c, int64_t c_stride,
    const eq_f32_gemm_epilogue *ep) {
  if (mr == MR && nc == 16 && taps > 0 && kc > 0) {
    const float bounds[2] = {ep->lo, ep->hi};
    WHOLE_TILES[RES][ACT](taps, kc, a, w, c, c_stride, bounds, ep->slope, ep->residual);
  } else if (mr == 1) {
    tile(1, 4, RES, ACT, mr, nc, taps, kc, a, w, c, c_stride, ep);
  } else if (nc <= 8) {
    tile(MR, 2, RES, ACT, mr, nc, taps, kc, a, w, c, c_stride, ep);
  } else if (mr <= 4) {
    tile(4, 4, RES, ACT, mr, nc, taps, kc, a, w, c, c_stride, ep);
  } else {
    tile(MR, 4, RES, ACT, mr, nc, taps, kc, a, w, c, c_stride, ep);
  }
}

void eq_f32_gemm_6x16__neon(int32_t mr, int32_t nc, int32_t taps, int32_t kc,
                            const float *const *a, const float *w, float *c, int64_t c_stride,
                            const eq_f32_gemm_epilogue *ep) {
  if (ep->slope && ep->hard_swish) {
    /* both (no graph pass asks for it): the sums unclamped, then the portable pass */
    const eq_f32_gemm_epilogue sums = {-__builtin_inff(), __builtin_inff(), NULL, NULL, 0};
    gemm(0, 0, mr, nc, taps, kc, a, w, c, c_stride, &sums);
    eq_f32_gemm_epilogue_pass(mr, nc, c, c_stride, ep);
    return;
  }
  const int act = ep->slope ? 1 : ep->hard_swish ? 2 : 0;
  if (ep->residual) {
    if (act == 1) gemm(1, 1, mr, nc, taps, kc, a, w, c, c_stride, ep);
    else if (act == 2) gemm(1, 2, mr, nc, taps, kc, a, w, c, c_stride, ep);
    else gemm(1, 0, mr, nc, taps, kc, a, w, c, c_stride, ep);
  } else {
    if (act == 1) gemm(0, 1, mr, nc, taps, kc, a, w, c, c_stride, ep);
    else if (act == 2) gemm(0, 2, mr, nc, taps, kc, a, w, c, c_stride, ep);
    else gemm(0, 0, mr, nc, taps, kc, a, w, c, c_stride, ep);
  }
}
