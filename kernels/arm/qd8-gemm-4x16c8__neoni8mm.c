/* QD8 GEMM for NEON with I8MM (smmla: Cortex-A510/A715/X3, Pixel 8 class): 4 rows x 16
 * channels. smmla multiplies a 2x8 block of activations (two rows, 8 consecutive k) by an 8x2
 * block of weights (two channels, the same k) into a 2x2 int32 tile, so this kernel wants the
 * c8 variant of the packed layout (params/qd8.h: 8 consecutive k per channel, KR = 8), which
 * prepare chooses when it finds the `_c8` kernels. Signed x signed, activations int8 (a_xor 0).
 * Exact int32 sums: equal to the scalar reference. */
#include "edgeq/dispatch.h"
#include "qd8_neon.h"

#define MR 4
#define KR8 8

static void qd8_gemm_4x16c8__neoni8mm(size_t mr, size_t nc, size_t kc, const int8_t *a,
                                      size_t a_stride, const void *packed_w, float *c,
                                      size_t c_stride, const eq_qd8_row_quant *quant,
                                      float act_min, float act_max) {
  const int8_t *ar[MR];
  size_t rows[MR];
  qd8_neon_tile_rows(mr, MR, a, a_stride, ar, rows);
  const size_t block_bytes = EQ_QD8_BLOCK_BYTES(kc);
  const uint8_t *block = (const uint8_t *)packed_w;
  for (size_t n0 = 0; n0 < nc; n0 += EQ_QD8_NR, block += block_bytes) {
    /* tile[h][p]: rows 2h, 2h+1 x channels 2p, 2p+1, as [r0c0, r0c1, r1c0, r1c1]. */
    int32x4_t tile[2][8];
    for (int h = 0; h < 2; ++h) {
      for (int p = 0; p < 8; ++p) tile[h][p] = vdupq_n_s32(0);
    }
    const int8_t *w = (const int8_t *)(block + 4 * EQ_QD8_NR);
    for (size_t k = 0; k < kc; k += KR8, w += EQ_QD8_NR * KR8) {
      const int8x16_t a01 = vcombine_s8(vld1_s8(ar[0] + k), vld1_s8(ar[1] + k));
      const int8x16_t a23 = vcombine_s8(vld1_s8(ar[2] + k), vld1_s8(ar[3] + k));
      for (int p = 0; p < 8; ++p) {
        const int8x16_t wp = vld1q_s8(w + 16 * p);
        tile[0][p] = vmmlaq_s32(tile[0][p], a01, wp);
        tile[1][p] = vmmlaq_s32(tile[1][p], a23, wp);
      }
    }
    const int32_t *ksum = (const int32_t *)block;
    const float *scale = (const float *)w;
    for (size_t i = MR; i-- > 0;) {
      const int h = (int)(i / 2), odd = (int)(i % 2);
      int32x4_t acc[4];
      for (int j = 0; j < 4; ++j) {  /* channels 4j..4j+3 of row i */
        const int32x4_t t0 = tile[h][2 * j], t1 = tile[h][2 * j + 1];
        const int32x4_t sums = odd ? vcombine_s32(vget_high_s32(t0), vget_high_s32(t1))
                                   : vcombine_s32(vget_low_s32(t0), vget_low_s32(t1));
        acc[j] = vmlaq_n_s32(sums, vld1q_s32(ksum + 4 * j), -quant[rows[i]].zero_point);
      }
      qd8_neon_store_row(c + rows[i] * c_stride + n0, acc, quant[rows[i]].scale, scale,
                         scale + EQ_QD8_NR, act_min, act_max, nc - n0);
    }
  }
}

QD8_NEON_UKERNELS(kNeonI8mm, qd8_gemm_4x16c8__neoni8mm, MR)
EQ_QD8_NODE_KERNELS(kNeonI8mm)

/* Named apart from the c4 kernels: their packed weights differ. */
const eq_kernel_info eq_arm_neoni8mm_qd8_kernels[] = {
    {"fully_connected_qd8_c8", fully_connected_qd8, sizeof(eq_qd8_fc_params),
     EQ_ISA_NEON | EQ_ISA_NEON_DOT | EQ_ISA_NEON_I8MM},
    {"conv2d_qd8_c8", conv2d_qd8, sizeof(eq_qd8_conv_params),
     EQ_ISA_NEON | EQ_ISA_NEON_DOT | EQ_ISA_NEON_I8MM},
    {NULL, NULL, 0, 0},
};
