/* QD8 GEMM for NEON with the dot-product extension (Cortex-A55/A76 and later): 4 rows x 16
 * channels, sdot by element on the 4-byte k groups of the c4 layout (params/qd8.h): one sdot
 * multiplies a group of 4 channels with one 4-byte group of a row, 16 MACs. Per 16 k: one
 * 16-byte load per row, 16 weight loads and 64 sdot, the 16 accumulators in registers.
 * Signed x signed, so the activations stay int8 (a_xor 0). Exact int32 sums: equal to the
 * scalar reference. */
#include "edgeq/dispatch.h"
#include "qd8_neon.h"

/* GCC's pre-register-allocation scheduler hoists the weight loads of a whole step and then
 * spills accumulators (measured: 101 instead of 81 instructions per 16 k in the sdot kernel);
 * without it every accumulator stays in a register. */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("no-schedule-insns")
#endif

#define MR 4

/* Row r's 16 accumulators meet the 4 weight vectors of one k group, lane l of its activations. */
#define QD8_DOT_ROW(r, va, l)                          \
  acc##r##0 = vdotq_laneq_s32(acc##r##0, w0, va, l);   \
  acc##r##1 = vdotq_laneq_s32(acc##r##1, w1, va, l);   \
  acc##r##2 = vdotq_laneq_s32(acc##r##2, w2, va, l);   \
  acc##r##3 = vdotq_laneq_s32(acc##r##3, w3, va, l)
#define QD8_DOT_GROUP(wp, v0, v1, v2, v3, l)                                        \
  {                                                                                 \
    const int8x16_t w0 = vld1q_s8(wp), w1 = vld1q_s8(wp + 16);                      \
    const int8x16_t w2 = vld1q_s8(wp + 32), w3 = vld1q_s8(wp + 48);                 \
    QD8_DOT_ROW(0, v0, l);                                                          \
    QD8_DOT_ROW(1, v1, l);                                                          \
    QD8_DOT_ROW(2, v2, l);                                                          \
    QD8_DOT_ROW(3, v3, l);                                                          \
  }
#define QD8_DOT_INIT(r, zp)                      \
  int32x4_t acc##r##0 = vmulq_n_s32(ks0, -(zp)); \
  int32x4_t acc##r##1 = vmulq_n_s32(ks1, -(zp)); \
  int32x4_t acc##r##2 = vmulq_n_s32(ks2, -(zp)); \
  int32x4_t acc##r##3 = vmulq_n_s32(ks3, -(zp))

static void qd8_gemm_4x16c4__neondot(size_t mr, size_t nc, size_t kc, const int8_t *a,
                                     size_t a_stride, const void *packed_w, float *c,
                                     size_t c_stride, const eq_qd8_row_quant *quant,
                                     float act_min, float act_max) {
  const int8_t *ar[MR];
  size_t rows[MR];
  qd8_neon_tile_rows(mr, MR, a, a_stride, ar, rows);
  const int8_t *a0 = ar[0], *a1 = ar[1], *a2 = ar[2], *a3 = ar[3];
  const eq_qd8_row_quant q0 = quant[rows[0]], q1 = quant[rows[1]];
  const eq_qd8_row_quant q2 = quant[rows[2]], q3 = quant[rows[3]];
  const size_t block_bytes = EQ_QD8_BLOCK_BYTES(kc);
  const uint8_t *block = (const uint8_t *)packed_w;
  for (size_t n0 = 0; n0 < nc; n0 += EQ_QD8_NR, block += block_bytes) {
    const int32_t *ksum = (const int32_t *)block;
    const int32x4_t ks0 = vld1q_s32(ksum), ks1 = vld1q_s32(ksum + 4);
    const int32x4_t ks2 = vld1q_s32(ksum + 8), ks3 = vld1q_s32(ksum + 12);
    QD8_DOT_INIT(0, q0.zero_point);
    QD8_DOT_INIT(1, q1.zero_point);
    QD8_DOT_INIT(2, q2.zero_point);
    QD8_DOT_INIT(3, q3.zero_point);
    const int8_t *w = (const int8_t *)(block + 4 * EQ_QD8_NR);
    size_t k = 0;
    for (; k + 16 <= kc; k += 16, w += 256) {  /* four groups per activation load */
      const int8x16_t v0 = vld1q_s8(a0 + k), v1 = vld1q_s8(a1 + k);
      const int8x16_t v2 = vld1q_s8(a2 + k), v3 = vld1q_s8(a3 + k);
      QD8_DOT_GROUP(w, v0, v1, v2, v3, 0)
      QD8_DOT_GROUP(w + 64, v0, v1, v2, v3, 1)
      QD8_DOT_GROUP(w + 128, v0, v1, v2, v3, 2)
      QD8_DOT_GROUP(w + 192, v0, v1, v2, v3, 3)
    }
    for (; k < kc; k += EQ_QD8_KR, w += 64) {  /* the last groups, one at a time */
      const int8x16_t v0 = qd8_neon_repeat4(a0 + k), v1 = qd8_neon_repeat4(a1 + k);
      const int8x16_t v2 = qd8_neon_repeat4(a2 + k), v3 = qd8_neon_repeat4(a3 + k);
      QD8_DOT_GROUP(w, v0, v1, v2, v3, 0)
    }
    const float *scale = (const float *)w;  /* then the bias */
    const qd8_neon_terms terms =
        qd8_neon_load_terms(scale, scale + EQ_QD8_NR, act_min, act_max);
    /* Last row first: a repeated row's results land on the real one, identical. */
    qd8_neon_store_row(c + rows[3] * c_stride + n0, acc30, acc31, acc32, acc33, q3.scale, &terms,
                       nc - n0);
    qd8_neon_store_row(c + rows[2] * c_stride + n0, acc20, acc21, acc22, acc23, q2.scale, &terms,
                       nc - n0);
    qd8_neon_store_row(c + rows[1] * c_stride + n0, acc10, acc11, acc12, acc13, q1.scale, &terms,
                       nc - n0);
    qd8_neon_store_row(c + rows[0] * c_stride + n0, acc00, acc01, acc02, acc03, q0.scale, &terms,
                       nc - n0);
  }
}

QD8_NEON_UKERNELS(kNeonDot, qd8_gemm_4x16c4__neondot, MR)
EQ_QD8_NODE_KERNELS(kNeonDot)

const eq_kernel_info eq_arm_neondot_qd8_kernels[] = {
    EQ_QD8_TABLE_ENTRIES(EQ_ISA_NEON | EQ_ISA_NEON_DOT),
    {NULL, NULL, 0, 0},
};
