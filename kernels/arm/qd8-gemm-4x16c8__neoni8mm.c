/* QD8 GEMM for NEON with I8MM (smmla: Cortex-A510/A715/X3, Pixel 8 class): 4 rows x 16
 * channels. smmla multiplies a 2x8 block of activations (two rows, 8 consecutive k) by an 8x2
 * block of weights (two channels, the same k) into a 2x2 int32 tile, so this kernel wants the
 * c8 variant of the packed layout (params/qd8.h: 8 consecutive k per channel, KR = 8), which
 * prepare chooses when it finds the `_c8` kernels. Per 16 k: one 16-byte load per row, two
 * zips per row pair, 16 weight loads and 32 smmla (64 MACs each), the 16 tiles in registers.
 * Signed x signed, activations int8 (a_xor 0). Exact int32 sums: equal to the scalar
 * reference. */
#include "edgeq/dispatch.h"
#include "qd8_neon.h"

/* GCC's pre-register-allocation scheduler hoists the weight loads of a whole step and then
 * spills accumulators (measured: 101 instead of 81 instructions per 16 k in the sdot kernel);
 * without it every accumulator stays in a register. */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("no-schedule-insns")
#endif

#define MR 4
#define KR8 8

/* Tiles t##h##p: rows 2h, 2h+1 x channels 2p, 2p+1, as [r0c0, r0c1, r1c0, r1c1]. Channel pairs
 * p0 (and p0 + 1) at wp, p0 + 2 and p0 + 3 after them. */
#define QD8_MMLA_PAIRS(wp, a01, a23, p0, p1)                          \
  {                                                                   \
    const int8x16_t wa = vld1q_s8(wp), wb = vld1q_s8((wp) + 16);      \
    t0##p0 = vmmlaq_s32(t0##p0, a01, wa);                             \
    t1##p0 = vmmlaq_s32(t1##p0, a23, wa);                             \
    t0##p1 = vmmlaq_s32(t0##p1, a01, wb);                             \
    t1##p1 = vmmlaq_s32(t1##p1, a23, wb);                             \
  }
#define QD8_MMLA_K8(wp, a01, a23)                 \
  {                                               \
    const int8x16_t x01 = (a01), x23 = (a23);     \
    QD8_MMLA_PAIRS(wp, x01, x23, 0, 1)            \
    QD8_MMLA_PAIRS((wp) + 32, x01, x23, 2, 3)     \
    QD8_MMLA_PAIRS((wp) + 64, x01, x23, 4, 5)     \
    QD8_MMLA_PAIRS((wp) + 96, x01, x23, 6, 7)     \
  }

/* Channels 4j..4j+3 of the upper (zip1) or lower (zip2) row of tiles ta, tb, less zp * ksum. */
static inline int32x4_t row_of(int32x4_t ta, int32x4_t tb, int lower, int32x4_t ks,
                               int32_t zp) {
  const int64x2_t x = vreinterpretq_s64_s32(ta), y = vreinterpretq_s64_s32(tb);
  const int32x4_t sums = vreinterpretq_s32_s64(lower ? vzip2q_s64(x, y) : vzip1q_s64(x, y));
  return vmlaq_n_s32(sums, ks, -zp);
}

static inline int8x16_t load8x2(const int8_t *r0, const int8_t *r1) {
  return vcombine_s8(vld1_s8(r0), vld1_s8(r1));
}

static void qd8_gemm_4x16c8__neoni8mm(size_t mr, size_t nc, size_t kc, const int8_t *a,
                                      size_t a_stride, const void *packed_w, float *c,
                                      size_t c_stride, const eq_qd8_row_quant *quant,
                                      float act_min, float act_max) {
  const int8_t *ar[MR];
  size_t rows[MR];
  qd8_neon_tile_rows(mr, MR, a, a_stride, ar, rows);
  const int8_t *a0 = ar[0], *a1 = ar[1], *a2 = ar[2], *a3 = ar[3];
  const size_t block_bytes = EQ_QD8_BLOCK_BYTES(kc);
  const uint8_t *block = (const uint8_t *)packed_w;
  for (size_t n0 = 0; n0 < nc; n0 += EQ_QD8_NR, block += block_bytes) {
    const int32x4_t z = vdupq_n_s32(0);
    int32x4_t t00 = z, t01 = z, t02 = z, t03 = z, t04 = z, t05 = z, t06 = z, t07 = z;
    int32x4_t t10 = z, t11 = z, t12 = z, t13 = z, t14 = z, t15 = z, t16 = z, t17 = z;
    const int8_t *w = (const int8_t *)(block + 4 * EQ_QD8_NR);
    size_t k = 0;
    for (; k + 2 * KR8 <= kc; k += 2 * KR8, w += 2 * EQ_QD8_NR * KR8) {
      const int64x2_t v0 = vreinterpretq_s64_s8(vld1q_s8(a0 + k));
      const int64x2_t v1 = vreinterpretq_s64_s8(vld1q_s8(a1 + k));
      const int64x2_t v2 = vreinterpretq_s64_s8(vld1q_s8(a2 + k));
      const int64x2_t v3 = vreinterpretq_s64_s8(vld1q_s8(a3 + k));
      QD8_MMLA_K8(w, vreinterpretq_s8_s64(vzip1q_s64(v0, v1)),
                  vreinterpretq_s8_s64(vzip1q_s64(v2, v3)))
      QD8_MMLA_K8(w + EQ_QD8_NR * KR8, vreinterpretq_s8_s64(vzip2q_s64(v0, v1)),
                  vreinterpretq_s8_s64(vzip2q_s64(v2, v3)))
    }
    if (k < kc) {  /* an odd last group of 8 */
      QD8_MMLA_K8(w, load8x2(a0 + k, a1 + k), load8x2(a2 + k, a3 + k))
      w += EQ_QD8_NR * KR8;
    }
    const int32_t *ksum = (const int32_t *)block;
    const int32x4_t ks0 = vld1q_s32(ksum), ks1 = vld1q_s32(ksum + 4);
    const int32x4_t ks2 = vld1q_s32(ksum + 8), ks3 = vld1q_s32(ksum + 12);
    const float *scale = (const float *)w;  /* then the bias */
    const qd8_neon_terms terms =
        qd8_neon_load_terms(scale, scale + EQ_QD8_NR, act_min, act_max);
    /* Last row first: a repeated row's results land on the real one, identical. */
#define QD8_MMLA_STORE(i, h, lower)                                                          \
  {                                                                                          \
    const eq_qd8_row_quant q = quant[rows[i]];                                               \
    qd8_neon_store_row(c + rows[i] * c_stride + n0,                                          \
                       row_of(t##h##0, t##h##1, lower, ks0, q.zero_point),                   \
                       row_of(t##h##2, t##h##3, lower, ks1, q.zero_point),                   \
                       row_of(t##h##4, t##h##5, lower, ks2, q.zero_point),                   \
                       row_of(t##h##6, t##h##7, lower, ks3, q.zero_point), q.scale, &terms,  \
                       nc - n0);                                                             \
  }
    QD8_MMLA_STORE(3, 1, 1)
    QD8_MMLA_STORE(2, 1, 0)
    QD8_MMLA_STORE(1, 0, 1)
    QD8_MMLA_STORE(0, 0, 0)
#undef QD8_MMLA_STORE
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
