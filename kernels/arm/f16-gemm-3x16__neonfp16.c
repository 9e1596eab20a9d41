/* fp16 GEMM microkernel in ARMv8.2 FP16 arithmetic (edgeq/f16.h): a tile of 3 rows by one packed
 * block of 16 columns. Products are summed in fp16 (fused multiply-adds by element, 8 lanes per
 * instruction) over chunks of EQ_F16_GEMM_CHUNK k, and each chunk's fp16 sums are added to
 * float32 accumulators (started from the bias): the fp16 rounding error then grows with a
 * chunk's partial sums, not with the whole dot product's, at a cost of 24 instructions per
 * chunk of 8 k x 48 outputs (3 rows keep all 23 vectors in registers; 4 would spill). Only cores with ASIMDHP run this file (EQ_ISA_NEON_FP16). */
#include <arm_neon.h>
#include <string.h>

#include "edgeq/dispatch.h"
#include "edgeq/f16.h"
#include "edgeq/f32_gemm.h"
#include "edgeq/params/conv.h"

static inline float16x8_t load8(const uint16_t *p) { return vreinterpretq_f16_u16(vld1q_u16(p)); }

static inline float16x4_t load4(const uint16_t *p) { return vreinterpret_f16_u16(vld1_u16(p)); }

/* acc (+)= b * x[L]. Written as asm: the by-element multiply on 8 halves takes its element from
 * v0-v15 only (constraint "x"), which GCC's intrinsics lowering handles by splitting the A
 * vectors into single halves and moving them lane by lane (twice the instructions). */
#define FMLA_LANE(acc, b, x, L) \
  __asm__("fmla %0.8h, %1.8h, %2.h[" #L "]" : "+w"(acc) : "w"(b), "x"(x))
#define FMUL_LANE(acc, b, x, L) \
  __asm__("fmul %0.8h, %1.8h, %2.h[" #L "]" : "=w"(acc) : "w"(b), "x"(x))

/* One k on lane L of the rows' A vectors x0..x2, weights at w; OP starts (FMUL) or continues
 * (FMLA) the chunk's fp16 sums. */
#define STEP(OP, L)                                                                       \
  do {                                                                                    \
    const float16x8_t b0 = load8(w), b1 = load8(w + 8);                                   \
    w += EQ_F32_GEMM_NR;                                                                  \
    OP(h00, b0, x0, L); OP(h01, b1, x0, L);                                               \
    OP(h10, b0, x1, L); OP(h11, b1, x1, L);                                               \
    OP(h20, b0, x2, L); OP(h21, b1, x2, L);                                               \
  } while (0)

#define LOAD_X(k)                                                                         \
  const float16x4_t x0 = load4(a0 + (k)), x1 = load4(a1 + (k)), x2 = load4(a2 + (k))

/* float32 accumulators of one row: columns 0-3, 4-7, 8-11, 12-15. */
typedef struct row32 {
  float32x4_t v0, v1, v2, v3;
} row32;

static inline void add_chunk(row32 *r, float16x8_t h0, float16x8_t h1) {
  r->v0 = vaddq_f32(r->v0, vcvt_f32_f16(vget_low_f16(h0)));
  r->v1 = vaddq_f32(r->v1, vcvt_high_f32_f16(h0));
  r->v2 = vaddq_f32(r->v2, vcvt_f32_f16(vget_low_f16(h1)));
  r->v3 = vaddq_f32(r->v3, vcvt_high_f32_f16(h1));
}

static inline void store_row(uint16_t *c, int32_t nc, const row32 *r, float32x4_t lo,
                             float32x4_t hi) {
  const float16x4_t q0 = vcvt_f16_f32(vminq_f32(vmaxq_f32(r->v0, lo), hi));
  const float16x8_t s0 = vcvt_high_f16_f32(q0, vminq_f32(vmaxq_f32(r->v1, lo), hi));
  const float16x4_t q1 = vcvt_f16_f32(vminq_f32(vmaxq_f32(r->v2, lo), hi));
  const float16x8_t s1 = vcvt_high_f16_f32(q1, vminq_f32(vmaxq_f32(r->v3, lo), hi));
  if (nc == EQ_F32_GEMM_NR) {
    vst1q_u16(c, vreinterpretq_u16_f16(s0));
    vst1q_u16(c + 8, vreinterpretq_u16_f16(s1));
    return;
  }
  uint16_t tmp[EQ_F32_GEMM_NR];
  vst1q_u16(tmp, vreinterpretq_u16_f16(s0));
  vst1q_u16(tmp + 8, vreinterpretq_u16_f16(s1));
  memcpy(c, tmp, (size_t)nc * sizeof(uint16_t));
}

static inline row32 bias_row(const uint16_t *w) {
  const float16x8_t b0 = load8(w), b1 = load8(w + 8);
  row32 r = {vcvt_f32_f16(vget_low_f16(b0)), vcvt_high_f32_f16(b0),
             vcvt_f32_f16(vget_low_f16(b1)), vcvt_high_f32_f16(b1)};
  return r;
}

void eq_f16_gemm_3x16__neonfp16(int32_t mr, int32_t nc, int32_t kc, const uint16_t *a,
                                int64_t a_stride, const uint16_t *w, uint16_t *c,
                                int64_t c_stride, float lo, float hi) {
  /* Rows past mr read the last row: computed, never stored. */
  const uint16_t *a0 = a;
  const uint16_t *a1 = mr > 1 ? a0 + a_stride : a0;
  const uint16_t *a2 = mr > 2 ? a1 + a_stride : a1;
  row32 r0 = bias_row(w), r1 = r0, r2 = r0;
  w += EQ_F32_GEMM_NR;
  float16x8_t h00, h01, h10, h11, h20, h21;
  int32_t k = 0;
  for (; k + EQ_F16_GEMM_CHUNK <= kc; k += EQ_F16_GEMM_CHUNK) {
    {
      LOAD_X(k);
      STEP(FMUL_LANE, 0);
      STEP(FMLA_LANE, 1);
      STEP(FMLA_LANE, 2);
      STEP(FMLA_LANE, 3);
    }
    {
      LOAD_X(k + 4);
      STEP(FMLA_LANE, 0);
      STEP(FMLA_LANE, 1);
      STEP(FMLA_LANE, 2);
      STEP(FMLA_LANE, 3);
    }
    add_chunk(&r0, h00, h01);
    add_chunk(&r1, h10, h11);
    add_chunk(&r2, h20, h21);
  }
  if (k < kc) {
    /* The last k (< a chunk), one at a time: the rows' values in lane 0. */
    h00 = h01 = h10 = h11 = h20 = h21 = vdupq_n_f16(0);
    for (; k < kc; ++k) {
      const float16x4_t x0 = vreinterpret_f16_u16(vld1_dup_u16(a0 + k));
      const float16x4_t x1 = vreinterpret_f16_u16(vld1_dup_u16(a1 + k));
      const float16x4_t x2 = vreinterpret_f16_u16(vld1_dup_u16(a2 + k));
      STEP(FMLA_LANE, 0);
    }
    add_chunk(&r0, h00, h01);
    add_chunk(&r1, h10, h11);
    add_chunk(&r2, h20, h21);
  }
  const float32x4_t vlo = vdupq_n_f32(lo), vhi = vdupq_n_f32(hi);
  store_row(c, nc, &r0, vlo, vhi);
  if (mr > 1) store_row(c + c_stride, nc, &r1, vlo, vhi);
  if (mr > 2) store_row(c + 2 * c_stride, nc, &r2, vlo, vhi);
}

EQ_F16_GEMM_KERNELS(neonfp16, eq_f16_gemm_3x16__neonfp16, 3)
EQ_F16_DW_KERNELS(neonfp16, eq_f16_dwconv__neonfp16)  /* f16-dwconv__neonfp16.c */

/* The fp16 GEMM and depthwise node kernels of ARMv8.2 FP16 cores. */
const eq_kernel_info eq_arm_neonfp16_gemm_kernels[] = {
    EQ_F16_GEMM_ENTRIES(neonfp16, EQ_ISA_NEON_FP16),
    EQ_F16_DW_ENTRIES(neonfp16, EQ_ISA_NEON_FP16),
    {NULL, NULL, 0, 0},
};
