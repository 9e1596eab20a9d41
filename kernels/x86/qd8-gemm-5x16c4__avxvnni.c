/* QD8 for AVX-VNNI (the VEX-encoded vpdpbusd on 256-bit vectors of Intel client cores without
 * AVX-512 and of Zen 5): a GEMM of 5 rows x 16 channels (one packed block) per step on the c4
 * layout of params/qd8.h; the quantizers and the depthwise microkernel are the AVX2 ones
 * (qd8_avx2.h), the quantizer storing x_q + 128.
 *
 * Each row keeps two accumulators (channels 0-7 and 8-15 of the block): 10 of the 16 ymm
 * registers, plus two of weights and one broadcast of the row's 4 activations (6 rows would
 * take 15, and GCC 12 spilled some inside the k loop). As in the AVX-512 VNNI kernel, the u8 x s8 product needs the +128 shift, taken back with the zero point:
 * acc = sum((x_q + 128) * w) - (zp + 128) * ksum, exact in int32, so results equal the scalar
 * reference bit for bit. */
#include <immintrin.h>
#include <string.h>

#include "edgeq/dispatch.h"
#include "edgeq/params/qd8.h"
#include "qd8_avx2.h"

#define MR 5

static inline __m256i broadcast4(const uint8_t *a) {
  int32_t v;
  memcpy(&v, a, 4);
  return _mm256_set1_epi32(v);
}

/* Rows spelled out so that the accumulators stay in registers. */
#define ROWS(X) X(0) X(1) X(2) X(3) X(4)

/* acc[2i], acc[2i + 1] += row i (a[i], kc bytes) times channels 0-7 and 8-15 of the block's
 * weights w. Its own function, kept out of line: inlined into the GEMM below, GCC 12 spilled
 * accumulators inside the k loop (with the epilogue's values live around it). */
__attribute__((noinline)) static void dot5x16(size_t kc, const uint8_t *const a[MR],
                                              const uint8_t *w, __m256i acc[2 * MR]) {
#define LOAD(i)                     \
  __m256i acc##i##_0 = acc[2 * (i)]; \
  __m256i acc##i##_1 = acc[2 * (i) + 1];                                  \
  const uint8_t *a##i = a[i];
  ROWS(LOAD)
  for (size_t k = 0; k < kc; k += EQ_QD8_KR, w += 4 * EQ_QD8_NR) {
    const __m256i vw0 = _mm256_loadu_si256((const __m256i *)w);
    const __m256i vw1 = _mm256_loadu_si256((const __m256i *)(w + 32));
#define STEP(i)                                                 \
  {                                                             \
    const __m256i va = broadcast4(a##i + k);                    \
    acc##i##_0 = _mm256_dpbusd_avx_epi32(acc##i##_0, va, vw0);  \
    acc##i##_1 = _mm256_dpbusd_avx_epi32(acc##i##_1, va, vw1);  \
  }
    ROWS(STEP)
  }
#define SAVE(i)                  \
  acc[2 * (i)] = acc##i##_0;     \
  acc[2 * (i) + 1] = acc##i##_1;
  ROWS(SAVE)
}

/* Rows past mr repeat the last one: their results land on it, identical. */
static void qd8_gemm_5x16c4__avxvnni(size_t mr, size_t nc, size_t kc, const int8_t *a,
                                     size_t a_stride, const void *packed_w, float *c,
                                     size_t c_stride, const eq_qd8_row_quant *quant,
                                     float act_min, float act_max) {
  const uint8_t *rows[MR];
  float *out[MR];
  __m256i zp[MR];
  __m256 rs[MR];
  for (size_t i = 0; i < MR; ++i) {
    const size_t r = i < mr ? i : mr - 1;
    rows[i] = (const uint8_t *)a + r * a_stride;
    out[i] = c + r * c_stride;
    zp[i] = _mm256_set1_epi32(-(quant[r].zero_point + 128));
    rs[i] = _mm256_set1_ps(quant[r].scale);
  }
  const __m256 lo = _mm256_set1_ps(act_min), hi = _mm256_set1_ps(act_max);
  const uint8_t *block = (const uint8_t *)packed_w;
  for (size_t n0 = 0; n0 < nc; n0 += EQ_QD8_NR, block += EQ_QD8_BLOCK_BYTES(kc)) {
    const __m256i ksum0 = _mm256_loadu_si256((const __m256i *)block);
    const __m256i ksum1 = _mm256_loadu_si256((const __m256i *)(block + 32));
    __m256i acc[2 * MR];
    for (size_t i = 0; i < MR; ++i) {
      acc[2 * i] = _mm256_mullo_epi32(ksum0, zp[i]);
      acc[2 * i + 1] = _mm256_mullo_epi32(ksum1, zp[i]);
    }
    dot5x16(kc, rows, block + 4 * EQ_QD8_NR, acc);
    /* the scales follow the weights, then the biases */
    const float *scale = (const float *)(block + 4 * EQ_QD8_NR + EQ_QD8_NR * kc);
    const float *bias = scale + EQ_QD8_NR;
    const size_t cols = nc - n0;
    /* Last row first: a repeated row then ends up written by the real one (same values). */
    for (size_t i = MR; i-- > 0;) {
      qd8_avx2_store8(out[i] + n0, acc[2 * i], rs[i], scale, bias, lo, hi, cols);
      if (cols > 8)
        qd8_avx2_store8(out[i] + n0 + 8, acc[2 * i + 1], rs[i], scale + 8, bias + 8, lo, hi,
                        cols - 8);
    }
  }
}

static void qd8_quantize__avxvnni(size_t n, const float *x, int8_t *q, eq_qd8_row_quant *quant) {
  qd8_avx2_quantize(n, x, q, quant, 0x80);
}

static const eq_qd8_ukernels kAvxVnni = {qd8_gemm_5x16c4__avxvnni, MR, 0x80, qd8_quantize__avxvnni,
                                         qd8_avx2_dwconv, qd8_avx2_quantize_grid};

EQ_QD8_NODE_KERNELS(kAvxVnni)

const eq_kernel_info eq_x86_avxvnni_qd8_kernels[] = {
    EQ_QD8_TABLE_ENTRIES(EQ_ISA_AVX2 | EQ_ISA_AVXVNNI),
    {NULL, NULL, 0, 0},
};
