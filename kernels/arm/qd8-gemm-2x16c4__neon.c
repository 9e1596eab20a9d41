/* QD8 GEMM for plain NEON (Cortex-A53/A72: Pi 3, Pi 4): 2 rows x 16 channels on the c4 layout
 * (params/qd8.h). A 16-byte weight load holds 4 channels x 4 k; smull multiplies it with the
 * row's 4 activations repeated, into int16 (|x_q * w| <= 128 * 128 fits), and sadalp adds
 * neighbouring products into int32, so each channel collects two partial sums that a final
 * pairwise add joins. One product per int16 lane before widening: safe even for a weight of
 * -128. Exact: equal to the scalar reference. */
#include "edgeq/dispatch.h"
#include "qd8_neon.h"

#define MR 2

static inline int8x16_t repeat4(const int8_t *a) {
  int32_t g;
  memcpy(&g, a, 4);
  return vreinterpretq_s8_s32(vdupq_n_s32(g));
}

static void qd8_gemm_2x16c4__neon(size_t mr, size_t nc, size_t kc, const int8_t *a,
                                  size_t a_stride, const void *packed_w, float *c,
                                  size_t c_stride, const eq_qd8_row_quant *quant,
                                  float act_min, float act_max) {
  const int8_t *a1 = mr > 1 ? a + a_stride : a;  /* a missing row repeats row 0 */
  float *c1 = mr > 1 ? c + c_stride : c;
  const eq_qd8_row_quant q1 = quant[mr > 1 ? 1 : 0];
  const size_t block_bytes = EQ_QD8_BLOCK_BYTES(kc);
  const uint8_t *block = (const uint8_t *)packed_w;
  for (size_t n0 = 0; n0 < nc; n0 += EQ_QD8_NR, block += block_bytes) {
    /* pairs[r][2j] holds channels 4j, 4j+1 of row r as two partial sums each, pairs[r][2j+1]
     * channels 4j+2, 4j+3. */
    int32x4_t pairs0[8], pairs1[8];
    for (int j = 0; j < 8; ++j) pairs0[j] = pairs1[j] = vdupq_n_s32(0);
    const int8_t *w = (const int8_t *)(block + 4 * EQ_QD8_NR);
    for (size_t k = 0; k < kc; k += EQ_QD8_KR, w += 64) {
      const int8x16_t x0 = repeat4(a + k), x1 = repeat4(a1 + k);
      for (int j = 0; j < 4; ++j) {
        const int8x16_t wj = vld1q_s8(w + 16 * j);
        pairs0[2 * j] = vpadalq_s16(pairs0[2 * j], vmull_s8(vget_low_s8(wj), vget_low_s8(x0)));
        pairs0[2 * j + 1] = vpadalq_s16(pairs0[2 * j + 1], vmull_high_s8(wj, x0));
        pairs1[2 * j] = vpadalq_s16(pairs1[2 * j], vmull_s8(vget_low_s8(wj), vget_low_s8(x1)));
        pairs1[2 * j + 1] = vpadalq_s16(pairs1[2 * j + 1], vmull_high_s8(wj, x1));
      }
    }
    const int32_t *ksum = (const int32_t *)block;
    int32x4_t acc0[4], acc1[4];
    for (int j = 0; j < 4; ++j) {
      const int32x4_t ks = vld1q_s32(ksum + 4 * j);
      acc0[j] = vmlaq_n_s32(vpaddq_s32(pairs0[2 * j], pairs0[2 * j + 1]), ks,
                            -quant[0].zero_point);
      acc1[j] = vmlaq_n_s32(vpaddq_s32(pairs1[2 * j], pairs1[2 * j + 1]), ks, -q1.zero_point);
    }
    const float *scale = (const float *)w;
    qd8_neon_store_row(c1 + n0, acc1, q1.scale, scale, scale + EQ_QD8_NR, act_min, act_max,
                       nc - n0);
    qd8_neon_store_row(c + n0, acc0, quant[0].scale, scale, scale + EQ_QD8_NR, act_min,
                       act_max, nc - n0);
  }
}

QD8_NEON_UKERNELS(kNeon, qd8_gemm_2x16c4__neon, MR)
EQ_QD8_NODE_KERNELS(kNeon)

const eq_kernel_info eq_arm_neon_qd8_kernels[] = {
    EQ_QD8_TABLE_ENTRIES(EQ_ISA_NEON),
    {NULL, NULL, 0, 0},
};
