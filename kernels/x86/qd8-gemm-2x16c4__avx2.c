/* QD8 for AVX2 (no VNNI): a GEMM of 2 rows x 16 channels per step on the c4 layout of
 * params/qd8.h, the depthwise microkernel and vectorised quantizers.
 *
 * vpmaddubsw (u8 x s8 into int16) would saturate on the +128-shifted activations (2 * 255 * 127
 * > 32767), so both operands are sign-extended to int16 instead and vpmaddwd forms exact
 * pairwise sums in int32: a 4-byte group of 4 channels becomes 16 int16 lanes, the row's 4
 * activations are broadcast against them, and each channel's two pair sums meet in a final
 * horizontal add. Results equal the scalar reference bit for bit. */
#include <immintrin.h>
#include <string.h>

#include "edgeq/dispatch.h"
#include "edgeq/params/qd8.h"
#include "qd8_avx2.h"

#define MR 2

/* The row's 4 activations of group g as int16, repeated in every 64-bit lane. */
static inline __m256i broadcast_s16x4(const int8_t *a) {
  int32_t v;
  memcpy(&v, a, 4);
  return _mm256_broadcastq_epi64(_mm_cvtepi8_epi16(_mm_cvtsi32_si128(v)));
}

/* Channels 0..7 of a block from the pair sums of channels 0-3 (lo) and 4-7 (hi). */
static inline __m256i reduce_pairs(__m256i lo, __m256i hi) {
  return _mm256_permute4x64_epi64(_mm256_hadd_epi32(lo, hi), 0xD8);
}

static void qd8_gemm_2x16c4__avx2(size_t mr, size_t nc, size_t kc, const int8_t *a,
                                  size_t a_stride, const void *packed_w, float *c,
                                  size_t c_stride, const eq_qd8_row_quant *quant, float act_min,
                                  float act_max) {
  const int8_t *a1 = mr > 1 ? a + a_stride : a;  /* a missing row repeats row 0 */
  float *c1 = mr > 1 ? c + c_stride : c;
  const eq_qd8_row_quant q0 = quant[0], q1 = quant[mr > 1 ? 1 : 0];
  const __m256i zp0 = _mm256_set1_epi32(-q0.zero_point), zp1 = _mm256_set1_epi32(-q1.zero_point);
  const __m256 rs0 = _mm256_set1_ps(q0.scale), rs1 = _mm256_set1_ps(q1.scale);
  const __m256 lo = _mm256_set1_ps(act_min), hi = _mm256_set1_ps(act_max);
  const uint8_t *block = (const uint8_t *)packed_w;
  for (size_t n0 = 0; n0 < nc; n0 += EQ_QD8_NR, block += EQ_QD8_BLOCK_BYTES(kc)) {
    const int8_t *w = (const int8_t *)(block + 4 * EQ_QD8_NR);
    /* acc[r][j]: pair sums of channels 4j..4j+3 for row r. */
    __m256i acc0[4], acc1[4];
    for (int j = 0; j < 4; ++j) acc0[j] = acc1[j] = _mm256_setzero_si256();
    for (size_t g = 0; g < kc / EQ_QD8_KR; ++g, w += EQ_QD8_NR * EQ_QD8_KR) {
      const __m256i x0 = broadcast_s16x4(a + g * EQ_QD8_KR);
      const __m256i x1 = broadcast_s16x4(a1 + g * EQ_QD8_KR);
      for (int j = 0; j < 4; ++j) {
        const __m256i wj = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(w + 16 * j)));
        acc0[j] = _mm256_add_epi32(acc0[j], _mm256_madd_epi16(x0, wj));
        acc1[j] = _mm256_add_epi32(acc1[j], _mm256_madd_epi16(x1, wj));
      }
    }
    const int32_t *ksum = (const int32_t *)block;
    const float *scale = (const float *)(block + 4 * EQ_QD8_NR + EQ_QD8_NR * kc);
    const float *bias = scale + EQ_QD8_NR;
    const size_t cols = nc - n0;
    for (int h = 0; h < 2; ++h) {  /* channels 8h..8h+7 */
      const __m256i ks = _mm256_loadu_si256((const __m256i *)(ksum + 8 * h));
      const __m256i r1 = _mm256_add_epi32(reduce_pairs(acc1[2 * h], acc1[2 * h + 1]),
                                          _mm256_mullo_epi32(ks, zp1));
      const __m256i r0 = _mm256_add_epi32(reduce_pairs(acc0[2 * h], acc0[2 * h + 1]),
                                          _mm256_mullo_epi32(ks, zp0));
      if (cols <= 8 * (size_t)h) break;
      const size_t left = cols - 8 * (size_t)h;
      qd8_avx2_store8(c1 + n0 + 8 * h, r1, rs1, scale + 8 * h, bias + 8 * h, lo, hi, left);
      qd8_avx2_store8(c + n0 + 8 * h, r0, rs0, scale + 8 * h, bias + 8 * h, lo, hi, left);
    }
  }
}

static void qd8_quantize__avx2(size_t n, const float *x, int8_t *q, eq_qd8_row_quant *quant) {
  qd8_avx2_quantize(n, x, q, quant, 0);
}

static const eq_qd8_ukernels kAvx2 = {qd8_gemm_2x16c4__avx2, MR, 0, qd8_quantize__avx2,
                                      qd8_avx2_dwconv, qd8_avx2_quantize_grid};

EQ_QD8_NODE_KERNELS(kAvx2)

const eq_kernel_info eq_x86_avx2_qd8_kernels[] = {
    EQ_QD8_TABLE_ENTRIES(EQ_ISA_AVX2),
    {NULL, NULL, 0, 0},
};
