/* QD8 GEMM for NEON with the dot-product extension (Cortex-A55/A76 and later): 4 rows x 16
 * channels, sdot by element on the 4-byte k groups of the c4 layout (params/qd8.h): one sdot
 * multiplies a group of 4 channels with one 4-byte group of a row. Signed x signed, so the
 * activations stay int8 (a_xor 0). Exact int32 sums: equal to the scalar reference. */
#include "edgeq/dispatch.h"
#include "qd8_neon.h"

#define MR 4

static void qd8_gemm_4x16c4__neondot(size_t mr, size_t nc, size_t kc, const int8_t *a,
                                     size_t a_stride, const void *packed_w, float *c,
                                     size_t c_stride, const eq_qd8_row_quant *quant,
                                     float act_min, float act_max) {
  const int8_t *ar[MR];
  size_t rows[MR];
  qd8_neon_tile_rows(mr, MR, a, a_stride, ar, rows);
  const size_t block_bytes = EQ_QD8_BLOCK_BYTES(kc);
  const uint8_t *block = (const uint8_t *)packed_w;
  for (size_t n0 = 0; n0 < nc; n0 += EQ_QD8_NR, block += block_bytes) {
    const int32_t *ksum = (const int32_t *)block;
    int32x4_t acc[MR][4];
    for (size_t i = 0; i < MR; ++i) {
      for (int j = 0; j < 4; ++j) {
        acc[i][j] = vmulq_n_s32(vld1q_s32(ksum + 4 * j), -quant[rows[i]].zero_point);
      }
    }
    const int8_t *w = (const int8_t *)(block + 4 * EQ_QD8_NR);
    size_t k = 0;
    for (; k + 16 <= kc; k += 16) {  /* four groups per activation load */
      int8x16_t va[MR];
      for (size_t i = 0; i < MR; ++i) va[i] = vld1q_s8(ar[i] + k);
#define GROUP(lane)                                                           \
  {                                                                           \
    const int8x16_t w0 = vld1q_s8(w), w1 = vld1q_s8(w + 16);                  \
    const int8x16_t w2 = vld1q_s8(w + 32), w3 = vld1q_s8(w + 48);             \
    w += 64;                                                                  \
    for (size_t i = 0; i < MR; ++i) {                                         \
      acc[i][0] = vdotq_laneq_s32(acc[i][0], w0, va[i], lane);                \
      acc[i][1] = vdotq_laneq_s32(acc[i][1], w1, va[i], lane);                \
      acc[i][2] = vdotq_laneq_s32(acc[i][2], w2, va[i], lane);                \
      acc[i][3] = vdotq_laneq_s32(acc[i][3], w3, va[i], lane);                \
    }                                                                         \
  }
      GROUP(0) GROUP(1) GROUP(2) GROUP(3)
#undef GROUP
    }
    for (; k < kc; k += EQ_QD8_KR, w += 64) {  /* the last groups, one at a time */
      const int8x16_t w0 = vld1q_s8(w), w1 = vld1q_s8(w + 16);
      const int8x16_t w2 = vld1q_s8(w + 32), w3 = vld1q_s8(w + 48);
      for (size_t i = 0; i < MR; ++i) {
        int32_t g;
        memcpy(&g, ar[i] + k, 4);
        const int8x16_t va = vreinterpretq_s8_s32(vdupq_n_s32(g));
        acc[i][0] = vdotq_laneq_s32(acc[i][0], w0, va, 0);
        acc[i][1] = vdotq_laneq_s32(acc[i][1], w1, va, 0);
        acc[i][2] = vdotq_laneq_s32(acc[i][2], w2, va, 0);
        acc[i][3] = vdotq_laneq_s32(acc[i][3], w3, va, 0);
      }
    }
    const float *scale = (const float *)w;
    for (size_t i = MR; i-- > 0;) {
      qd8_neon_store_row(c + rows[i] * c_stride + n0, acc[i], quant[rows[i]].scale, scale,
                         scale + EQ_QD8_NR, act_min, act_max, nc - n0);
    }
  }
}

QD8_NEON_UKERNELS(kNeonDot, qd8_gemm_4x16c4__neondot, MR)
EQ_QD8_NODE_KERNELS(kNeonDot)

const eq_kernel_info eq_arm_neondot_qd8_kernels[] = {
    EQ_QD8_TABLE_ENTRIES(EQ_ISA_NEON | EQ_ISA_NEON_DOT),
    {NULL, NULL, 0, 0},
};
