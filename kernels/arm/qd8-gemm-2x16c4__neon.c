/* QD8 GEMM for plain NEON (Cortex-A53/A72: Pi 3, Pi 4): 2 rows x 16 channels on the c4 layout
 * (params/qd8.h). A 16-byte weight load holds 4 channels x 4 k; smull multiplies each half with
 * the row's 4 activations repeated, into int16, and smlal adds the product of the next k group
 * (the same two channels) to it: two products per int16 lane, |2 * 128 * 127| < 2^15, safe
 * because weights stay in [-127, 127] (FACTS.md). sadalp then adds neighbouring int16 lanes into
 * int32, so each channel collects two partial sums that a final pairwise add joins: per 16 MACs
 * one multiply and half a sadalp, all 16 accumulators in registers. Exact: equal to the scalar
 * reference. */
#include "edgeq/dispatch.h"
#include "qd8_neon.h"

/* GCC's pre-register-allocation scheduler hoists the weight loads of a whole step and then
 * spills accumulators (measured: 101 instead of 81 instructions per 16 k in the sdot kernel);
 * without it every accumulator stays in a register. */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("no-schedule-insns")
#endif

/* Rows per call: the 2-row tile walks pairs of them (and a last single row), so that the call
 * and task overhead (~90 instructions) is paid once per 16 rows, not per pair: 1x1 convs
 * quantize and multiply per pixel, 32,928 rows in MobileNetV2. */
#define MR 16

/* Channels 4j..4j+3 of row r: pairs r##lo holds 4j, 4j+1, r##hi holds 4j+2, 4j+3. */
#define QD8_TWO_GROUPS(ADD, p_lo, p_hi, wa, wb, xa, xb)                                            \
  do {                                                                                             \
    p_lo = ADD(p_lo, vmlal_s8(vmull_s8(vget_low_s8(wa), vget_low_s8(xa)), vget_low_s8(wb),         \
                              vget_low_s8(xb)));                                                   \
    p_hi = ADD(p_hi, vmlal_high_s8(vmull_high_s8(wa, xa), wb, xb));                                \
  } while (0)
/* How int16 products join an accumulator: sadalp, or saddlp for the first ones (no zeroing). */
#define QD8_ADD(p, v) vpadalq_s16(p, v)
#define QD8_SET(p, v) vpaddlq_s16(v)
#define QD8_ONE_GROUP(p_lo, p_hi, wa, xa)                                                          \
  do {                                                                                             \
    p_lo = QD8_ADD(p_lo, vmull_s8(vget_low_s8(wa), vget_low_s8(xa)));                              \
    p_hi = QD8_ADD(p_hi, vmull_high_s8(wa, xa));                                                   \
  } while (0)

/* Two consecutive k groups at wp (64 bytes each) against x0a, x0b (row 0) and x1a, x1b (row 1),
 * 8 channels at a time: their weights are two adjacent pairs of vectors (ldp). */
#define QD8_FOUR_PAIRS(ADD, wp, x0a, x0b, x1a, x1b)                                                \
  {                                                                                                \
    const int8x16_t xa0 = (x0a), xb0 = (x0b);                                                      \
    const int8x16_t xa1 = TWO ? (x1a) : xa0, xb1 = TWO ? (x1b) : xb0;                              \
    QD8_CHANNELS8(ADD, r0p0, r0p1, r1p0, r1p1, r0p2, r0p3, r1p2, r1p3, wp);                        \
    if (!HALF) QD8_CHANNELS8(ADD, r0p4, r0p5, r1p4, r1p5, r0p6, r0p7, r1p6, r1p7, (wp) + 32);      \
  }
#define QD8_CHANNELS8(ADD, p0lo, p0hi, p1lo, p1hi, q0lo, q0hi, q1lo, q1hi, wp)                     \
  {                                                                                                \
    const int8x16_t wa = vld1q_s8(wp), wa2 = vld1q_s8((wp) + 16);                                  \
    const int8x16_t wb = vld1q_s8((wp) + 64), wb2 = vld1q_s8((wp) + 80);                           \
    QD8_TWO_GROUPS(ADD, p0lo, p0hi, wa, wb, xa0, xb0);                                             \
    if (TWO) QD8_TWO_GROUPS(ADD, p1lo, p1hi, wa, wb, xa1, xb1);                                    \
    QD8_TWO_GROUPS(ADD, q0lo, q0hi, wa2, wb2, xa0, xb0);                                           \
    if (TWO) QD8_TWO_GROUPS(ADD, q1lo, q1hi, wa2, wb2, xa1, xb1);                                  \
  }

/* TWO: both rows, HALF: only the block's first 8 channels, nc <= 8 (compile-time constants: the
 * one-row form is for single-row calls such as a classifier's FC, which the two-row form would
 * compute twice; the half form for the last block of N = 16 j + 8, e.g. 24 or 72 channels, whose
 * zero channels would otherwise cost as much as real ones). */
static inline __attribute__((always_inline)) void qd8_gemm_rows(
    const int TWO, const int HALF, size_t nc, size_t kc, const int8_t *a, size_t a_stride,
    const void *packed_w, float *c, size_t c_stride, const eq_qd8_row_quant *quant,
    float act_min, float act_max) {
  const int8_t *a1 = TWO ? a + a_stride : a;
  float *c1 = TWO ? c + c_stride : c;
  const eq_qd8_row_quant q0 = quant[0], q1 = quant[TWO ? 1 : 0];
  const size_t block_bytes = EQ_QD8_BLOCK_BYTES(kc);
  const uint8_t *block = (const uint8_t *)packed_w;
  for (size_t n0 = 0; n0 < nc; n0 += EQ_QD8_NR, block += block_bytes) {
    int32x4_t r0p0, r0p1, r0p2, r0p3, r0p4, r0p5, r0p6, r0p7;
    int32x4_t r1p0, r1p1, r1p2, r1p3, r1p4, r1p5, r1p6, r1p7;
    const int8_t *w = (const int8_t *)(block + 4 * EQ_QD8_NR);
    const int8_t *x0 = a, *x1 = a1;  /* advanced by the loads */
    size_t k = 0;
    if (kc >= 2 * EQ_QD8_KR) {  /* the first two groups set the accumulators */
      QD8_FOUR_PAIRS(QD8_SET, w, qd8_neon_next4(&x0), qd8_neon_next4(&x0), qd8_neon_next4(&x1),
                     qd8_neon_next4(&x1));
      k += 2 * EQ_QD8_KR;
      w += 128;
    } else {
      r0p0 = r0p1 = r0p2 = r0p3 = r0p4 = r0p5 = r0p6 = r0p7 = vdupq_n_s32(0);
      r1p0 = r1p1 = r1p2 = r1p3 = r1p4 = r1p5 = r1p6 = r1p7 = r0p0;
    }
    for (; k + 4 * EQ_QD8_KR <= kc; k += 4 * EQ_QD8_KR, w += 256) {
      QD8_FOUR_PAIRS(QD8_ADD, w, qd8_neon_next4(&x0), qd8_neon_next4(&x0), qd8_neon_next4(&x1),
                     qd8_neon_next4(&x1));
      QD8_FOUR_PAIRS(QD8_ADD, w + 128, qd8_neon_next4(&x0), qd8_neon_next4(&x0),
                     qd8_neon_next4(&x1), qd8_neon_next4(&x1));
    }
    if (k + 2 * EQ_QD8_KR <= kc) {
      QD8_FOUR_PAIRS(QD8_ADD, w, qd8_neon_next4(&x0), qd8_neon_next4(&x0), qd8_neon_next4(&x1),
                     qd8_neon_next4(&x1));
      k += 2 * EQ_QD8_KR;
      w += 128;
    }
    if (k < kc) {  /* an odd last group */
      const int8x16_t v0 = qd8_neon_next4(&x0), v1 = qd8_neon_next4(&x1);
      const int8x16_t w0 = vld1q_s8(w), w1 = vld1q_s8(w + 16);
      QD8_ONE_GROUP(r0p0, r0p1, w0, v0);
      if (TWO) QD8_ONE_GROUP(r1p0, r1p1, w0, v1);
      QD8_ONE_GROUP(r0p2, r0p3, w1, v0);
      if (TWO) QD8_ONE_GROUP(r1p2, r1p3, w1, v1);
      if (!HALF) {
        const int8x16_t w2 = vld1q_s8(w + 32), w3 = vld1q_s8(w + 48);
        QD8_ONE_GROUP(r0p4, r0p5, w2, v0);
        if (TWO) QD8_ONE_GROUP(r1p4, r1p5, w2, v1);
        QD8_ONE_GROUP(r0p6, r0p7, w3, v0);
        if (TWO) QD8_ONE_GROUP(r1p6, r1p7, w3, v1);
      }
      w += 64;
    }
    const int32_t *ksum = (const int32_t *)block;
    const int32x4_t ks0 = vld1q_s32(ksum), ks1 = vld1q_s32(ksum + 4);
    const int32x4_t ks2 = vld1q_s32(ksum + 8), ks3 = vld1q_s32(ksum + 12);
    const float *scale = (const float *)w;  /* then the bias */
    const qd8_neon_terms terms =
        qd8_neon_load_terms(scale, scale + EQ_QD8_NR, act_min, act_max);
    if (HALF) {
      if (TWO) {
        qd8_neon_store_half(c1 + n0, vmlaq_n_s32(vpaddq_s32(r1p0, r1p1), ks0, -q1.zero_point),
                            vmlaq_n_s32(vpaddq_s32(r1p2, r1p3), ks1, -q1.zero_point), q1.scale,
                            &terms, nc - n0);
      }
      qd8_neon_store_half(c + n0, vmlaq_n_s32(vpaddq_s32(r0p0, r0p1), ks0, -q0.zero_point),
                          vmlaq_n_s32(vpaddq_s32(r0p2, r0p3), ks1, -q0.zero_point), q0.scale,
                          &terms, nc - n0);
      continue;
    }
    if (TWO) {
      qd8_neon_store_row(c1 + n0, vmlaq_n_s32(vpaddq_s32(r1p0, r1p1), ks0, -q1.zero_point),
                         vmlaq_n_s32(vpaddq_s32(r1p2, r1p3), ks1, -q1.zero_point),
                         vmlaq_n_s32(vpaddq_s32(r1p4, r1p5), ks2, -q1.zero_point),
                         vmlaq_n_s32(vpaddq_s32(r1p6, r1p7), ks3, -q1.zero_point), q1.scale,
                         &terms, nc - n0);
    }
    qd8_neon_store_row(c + n0, vmlaq_n_s32(vpaddq_s32(r0p0, r0p1), ks0, -q0.zero_point),
                       vmlaq_n_s32(vpaddq_s32(r0p2, r0p3), ks1, -q0.zero_point),
                       vmlaq_n_s32(vpaddq_s32(r0p4, r0p5), ks2, -q0.zero_point),
                       vmlaq_n_s32(vpaddq_s32(r0p6, r0p7), ks3, -q0.zero_point), q0.scale,
                       &terms, nc - n0);
  }
}

static void qd8_gemm_2x16c4__neon(size_t mr, size_t nc, size_t kc, const int8_t *a,
                                  size_t a_stride, const void *packed_w, float *c,
                                  size_t c_stride, const eq_qd8_row_quant *quant,
                                  float act_min, float act_max) {
  /* Block by block, so that a block's weights (16 * kc bytes) stay in L1 for every row pair. */
  const size_t block_bytes = EQ_QD8_BLOCK_BYTES(kc);
  for (size_t n0 = 0; n0 < nc; n0 += EQ_QD8_NR) {
    const void *w = (const uint8_t *)packed_w + (n0 / EQ_QD8_NR) * block_bytes;
    const size_t cols = nc - n0 < EQ_QD8_NR ? nc - n0 : EQ_QD8_NR;
    size_t i = 0;
#define QD8_ROWS(two, half)                                                                   \
  qd8_gemm_rows(two, half, cols, kc, a + i * a_stride, a_stride, w, c + i * c_stride + n0,    \
                c_stride, quant + i, act_min, act_max)
    if (cols > 8) {
      for (; i + 2 <= mr; i += 2) QD8_ROWS(1, 0);
      if (i < mr) QD8_ROWS(0, 0);
    } else {
      for (; i + 2 <= mr; i += 2) QD8_ROWS(1, 1);
      if (i < mr) QD8_ROWS(0, 1);
    }
#undef QD8_ROWS
  }
}

QD8_NEON_UKERNELS(kNeon, qd8_gemm_2x16c4__neon, MR)
EQ_QD8_NODE_KERNELS(kNeon)

const eq_kernel_info eq_arm_neon_qd8_kernels[] = {
    EQ_QD8_TABLE_ENTRIES(EQ_ISA_NEON),
    {NULL, NULL, 0, 0},
};
