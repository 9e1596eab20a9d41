/* QD8 for AVX-512 VNNI: a GEMM of 8 rows x 32 channels (two packed blocks) per step, vpdpbusd
 * on 4-byte k groups (the c4 layout of params/qd8.h), the depthwise microkernel and vectorised
 * quantizers.
 *
 * vpdpbusd multiplies unsigned by signed bytes, so the quantizer stores each activation as
 * x_q + 128 (an xor with 0x80, a_xor) and the extra 128 * ksum[n] leaves with the zero point:
 * acc = sum((x_q + 128) * w) - (zp + 128) * ksum. The products and sums are exact in int32 for
 * the depths prepare allows, so results equal the scalar reference bit for bit. */
#include <immintrin.h>
#include <string.h>

#include "edgeq/dispatch.h"
#include "edgeq/params/qd8.h"
#include "qd8_quant_params.h"

#define MR 8

/* Stores one row of up to 16 results: float(acc) * (row scale * channel scale) + bias. */
static inline void store_row(float *c, __m512i acc, __m512 row_scale, const float *scale,
                             const float *bias, __m512 lo, __m512 hi, __mmask16 mask) {
  const __m512 s = _mm512_mul_ps(row_scale, _mm512_loadu_ps(scale));
  __m512 v = _mm512_add_ps(_mm512_mul_ps(_mm512_cvtepi32_ps(acc), s), _mm512_loadu_ps(bias));
  v = _mm512_min_ps(_mm512_max_ps(v, lo), hi);
  _mm512_mask_storeu_ps(c, mask, v);
}

static inline __mmask16 cols_mask(size_t cols) {
  return cols >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << cols) - 1);
}

static inline __m512i broadcast4(const uint8_t *a) {
  int32_t v;
  memcpy(&v, a, 4);
  return _mm512_set1_epi32(v);
}

/* The rows are spelled out (ROWS) rather than looped over arrays, so that the accumulators
 * stay in registers. */
#define ROWS(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7)

/* acc[i * blocks + j] += row i (a[i], kc bytes) times packed block j (j < blocks, 1 or 2) of
 * weights w[j]. Out of line on purpose: inlined into the GEMM, GCC 12 shuffled and spilled
 * the accumulators inside the k loop (with the epilogue's values live around it), at about
 * half the speed. */
#define DEFINE_DOT(blocks)                                                                 \
  __attribute__((noinline)) static void dot8x##blocks(                                     \
      size_t kc, const uint8_t *const a[MR], const uint8_t *const w[blocks],               \
      __m512i acc[MR * (blocks)]) {                                                        \
    ROWS(DOT_LOAD##blocks)                                                                 \
    const uint8_t *w0 = w[0], *w1 = w[(blocks) - 1];                                       \
    for (size_t k = 0; k < kc; k += EQ_QD8_KR, w0 += 64, w1 += 64) {                       \
      const __m512i vw0 = _mm512_loadu_si512(w0);                                          \
      const __m512i vw1 = (blocks) == 2 ? _mm512_loadu_si512(w1) : vw0;                    \
      (void)vw1;                                                                           \
      ROWS(DOT_STEP##blocks)                                                               \
    }                                                                                      \
    ROWS(DOT_SAVE##blocks)                                                                 \
  }
#define DOT_LOAD2(i)                                                       \
  const uint8_t *a##i = a[i];                                              \
  __m512i acc##i##_0 = acc[2 * (i)], acc##i##_1 = acc[2 * (i) + 1];
#define DOT_STEP2(i)                                                       \
  {                                                                        \
    const __m512i va = broadcast4(a##i + k);                               \
    acc##i##_0 = _mm512_dpbusd_epi32(acc##i##_0, va, vw0);                 \
    acc##i##_1 = _mm512_dpbusd_epi32(acc##i##_1, va, vw1);                 \
  }
#define DOT_SAVE2(i) acc[2 * (i)] = acc##i##_0, acc[2 * (i) + 1] = acc##i##_1;
#define DOT_LOAD1(i)                                                       \
  const uint8_t *a##i = a[i];                                              \
  __m512i acc##i = acc[i];
#define DOT_STEP1(i) acc##i = _mm512_dpbusd_epi32(acc##i, broadcast4(a##i + k), vw0);
#define DOT_SAVE1(i) acc[i] = acc##i;
DEFINE_DOT(2)
DEFINE_DOT(1)

/* Rows past mr repeat the last one: their results land on it, identical. */
static void qd8_gemm_8x32c4__avx512vnni(size_t mr, size_t nc, size_t kc, const int8_t *a,
                                        size_t a_stride, const void *packed_w, float *c,
                                        size_t c_stride, const eq_qd8_row_quant *quant,
                                        float act_min, float act_max) {
  const uint8_t *rows[MR];
  float *out[MR];
  __m512i zp[MR];
  __m512 rs[MR];
  for (size_t i = 0; i < MR; ++i) {
    const size_t r = i < mr ? i : mr - 1;
    rows[i] = (const uint8_t *)a + r * a_stride;
    out[i] = c + r * c_stride;
    zp[i] = _mm512_set1_epi32(-(quant[r].zero_point + 128));
    rs[i] = _mm512_set1_ps(quant[r].scale);
  }
  const __m512 lo = _mm512_set1_ps(act_min), hi = _mm512_set1_ps(act_max);
  const size_t block_bytes = EQ_QD8_BLOCK_BYTES(kc);
  const uint8_t *block = (const uint8_t *)packed_w;
  for (size_t n0 = 0; n0 < nc; n0 += 2 * EQ_QD8_NR, block += 2 * block_bytes) {
    const size_t blocks = n0 + EQ_QD8_NR < nc ? 2 : 1;
    const uint8_t *w[2] = {block + 4 * EQ_QD8_NR, block + block_bytes + 4 * EQ_QD8_NR};
    __m512i acc[2 * MR];
    for (size_t j = 0; j < blocks; ++j) {
      const __m512i ksum = _mm512_loadu_si512(block + j * block_bytes);
      for (size_t i = 0; i < MR; ++i) acc[i * blocks + j] = _mm512_mullo_epi32(ksum, zp[i]);
    }
    if (blocks == 2) {
      dot8x2(kc, rows, w, acc);
    } else {
      dot8x1(kc, rows, w, acc);
    }
    /* Last row first: a repeated row then ends up written by the real one (same values). */
    const float *scale0 = (const float *)(w[0] + EQ_QD8_NR * kc);  /* after the weights */
    if (blocks == 2) {
      const float *scale1 = (const float *)(w[1] + EQ_QD8_NR * kc);
      const __mmask16 mask1 = cols_mask(nc - n0 - EQ_QD8_NR);
      for (size_t i = MR; i-- > 0;) {
        store_row(out[i] + n0, acc[2 * i], rs[i], scale0, scale0 + EQ_QD8_NR, lo, hi, 0xffff);
        store_row(out[i] + n0 + EQ_QD8_NR, acc[2 * i + 1], rs[i], scale1, scale1 + EQ_QD8_NR,
                  lo, hi, mask1);
      }
    } else {
      const __mmask16 mask0 = cols_mask(nc - n0);
      for (size_t i = MR; i-- > 0;)
        store_row(out[i] + n0, acc[i], rs[i], scale0, scale0 + EQ_QD8_NR, lo, hi, mask0);
    }
  }
}

/* rint of the float32 product (cvtps rounds to nearest even), + zero point. */
static inline __m512i quantize16(__m512 x, __m512 vq, __m512i vzp) {
  return _mm512_add_epi32(_mm512_cvtps_epi32(_mm512_mul_ps(x, vq)), vzp);
}

/* rint of the exact product, by the magic-bias FMA (params/qd8.h), + zero point. */
static inline __m512i quantize16_exact(__m512 x, __m512 vq, __m512i vzp) {
  const __m512 t = _mm512_fmadd_ps(x, vq, _mm512_set1_ps(EQ_QD8_MAGIC_BIAS));
  return _mm512_add_epi32(_mm512_sub_epi32(_mm512_castps_si512(t),
                                           _mm512_set1_epi32(EQ_QD8_MAGIC_BITS)), vzp);
}

/* Two pairs of accumulators, so that a row's chain of min/max waits half as long (the row
 * quantizer runs once per FC row: its latency, not its throughput, is what a row costs). */
static void min_max__avx512(size_t n, const float *x, float *lo, float *hi) {
  __m512 vmin = _mm512_set1_ps(x[0]), vmax = vmin, vmin1 = vmin, vmax1 = vmin;
  size_t i = 0;
  for (; i + 32 <= n; i += 32) {
    const __m512 v = _mm512_loadu_ps(x + i), v1 = _mm512_loadu_ps(x + i + 16);
    vmin = _mm512_min_ps(vmin, v);
    vmax = _mm512_max_ps(vmax, v);
    vmin1 = _mm512_min_ps(vmin1, v1);
    vmax1 = _mm512_max_ps(vmax1, v1);
  }
  vmin = _mm512_min_ps(vmin, vmin1);
  vmax = _mm512_max_ps(vmax, vmax1);
  for (; i + 16 <= n; i += 16) {
    const __m512 v = _mm512_loadu_ps(x + i);
    vmin = _mm512_min_ps(vmin, v);
    vmax = _mm512_max_ps(vmax, v);
  }
  if (i < n) {
    const __mmask16 m = (__mmask16)((1u << (n - i)) - 1);
    vmin = _mm512_mask_min_ps(vmin, m, vmin, _mm512_maskz_loadu_ps(m, x + i));
    vmax = _mm512_mask_max_ps(vmax, m, vmax, _mm512_maskz_loadu_ps(m, x + i));
  }
  *lo = _mm512_reduce_min_ps(vmin);
  *hi = _mm512_reduce_max_ps(vmax);
}

/* The scalar quantizer's arithmetic, 16 lanes at a time, saturated to int8, then stored as
 * x_q + 128 (uint8), the form vpdpbusd multiplies (a_xor below). */
static void qd8_quantize__avx512(size_t n, const float *x, int8_t *q, eq_qd8_row_quant *quant) {
  float lo, hi;
  min_max__avx512(n, x, &lo, &hi);
  const __m512 vq = _mm512_set1_ps(qd8_x86_quant_params(lo, hi, quant));
  const __m512i vzp = _mm512_set1_epi32(quant->zero_point);
  size_t i = 0;
  for (; i + 16 <= n; i += 16) {
    const __m128i v = _mm512_cvtsepi32_epi8(quantize16(_mm512_loadu_ps(x + i), vq, vzp));
    _mm_storeu_si128((__m128i *)(q + i), _mm_xor_si128(v, _mm_set1_epi8((char)0x80)));
  }
  if (i < n) {
    const __mmask16 m = (__mmask16)((1u << (n - i)) - 1);
    const __m128i v = _mm512_cvtsepi32_epi8(quantize16(_mm512_maskz_loadu_ps(m, x + i), vq, vzp));
    _mm_mask_storeu_epi8(q + i, m, _mm_xor_si128(v, _mm_set1_epi8((char)0x80)));
  }
}

/* The grid quantizer: as above, then clamped to int8 and the zero point taken off, as floats. */
static void qd8_quantize_grid__avx512(size_t n, const float *x, float *grid,
                                      eq_qd8_row_quant *quant) {
  float lo, hi;
  min_max__avx512(n, x, &lo, &hi);
  const __m512 vq = _mm512_set1_ps(qd8_x86_quant_params(lo, hi, quant));
  const __m512i vzp = _mm512_set1_epi32(quant->zero_point);
  const __m512i qmin = _mm512_set1_epi32(-128), qmax = _mm512_set1_epi32(127);
  for (size_t i = 0; i < n; i += 16) {
    const __mmask16 m = n - i >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (n - i)) - 1);
    __m512i v = quantize16_exact(_mm512_maskz_loadu_ps(m, x + i), vq, vzp);
    v = _mm512_sub_epi32(_mm512_min_epi32(_mm512_max_epi32(v, qmin), qmax), vzp);
    _mm512_mask_storeu_ps(grid + i, m, _mm512_cvtepi32_ps(v));
  }
}

/* One output pixel, 16 channels per vector; the sums are exact (params/qd8.h), so FMA is
 * safe here. */
static void qd8_dwconv__avx512(size_t channels, size_t taps, const float *const *rows,
                               const float *weights, float *out, float scale,
                               const float *w_scale, const float *bias, float act_min,
                               float act_max) {
  const __m512 vscale = _mm512_set1_ps(scale);
  const __m512 lo = _mm512_set1_ps(act_min), hi = _mm512_set1_ps(act_max);
  size_t c = 0;
  for (; c + 64 <= channels; c += 64) {
    __m512 acc0 = _mm512_setzero_ps(), acc1 = acc0, acc2 = acc0, acc3 = acc0;
    for (size_t t = 0; t < taps; ++t) {
      const float *x = rows[t];
      if (x == NULL) continue;
      const float *w = weights + t * channels + c;
      acc0 = _mm512_fmadd_ps(_mm512_loadu_ps(x + c), _mm512_loadu_ps(w), acc0);
      acc1 = _mm512_fmadd_ps(_mm512_loadu_ps(x + c + 16), _mm512_loadu_ps(w + 16), acc1);
      acc2 = _mm512_fmadd_ps(_mm512_loadu_ps(x + c + 32), _mm512_loadu_ps(w + 32), acc2);
      acc3 = _mm512_fmadd_ps(_mm512_loadu_ps(x + c + 48), _mm512_loadu_ps(w + 48), acc3);
    }
    const __m512 accs[4] = {acc0, acc1, acc2, acc3};
    for (int j = 0; j < 4; ++j) {
      const size_t cj = c + 16 * (size_t)j;
      const __m512 s = _mm512_mul_ps(vscale, _mm512_loadu_ps(w_scale + cj));
      __m512 v = _mm512_add_ps(_mm512_mul_ps(accs[j], s), _mm512_loadu_ps(bias + cj));
      _mm512_storeu_ps(out + cj, _mm512_min_ps(_mm512_max_ps(v, lo), hi));
    }
  }
  for (; c < channels; c += 16) {
    const __mmask16 m =
        channels - c >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (channels - c)) - 1);
    __m512 acc = _mm512_setzero_ps();
    for (size_t t = 0; t < taps; ++t) {
      if (rows[t] == NULL) continue;
      acc = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, rows[t] + c),
                            _mm512_maskz_loadu_ps(m, weights + t * channels + c), acc);
    }
    const __m512 s = _mm512_mul_ps(vscale, _mm512_maskz_loadu_ps(m, w_scale + c));
    __m512 v = _mm512_add_ps(_mm512_mul_ps(acc, s), _mm512_maskz_loadu_ps(m, bias + c));
    _mm512_mask_storeu_ps(out + c, m, _mm512_min_ps(_mm512_max_ps(v, lo), hi));
  }
}

static const eq_qd8_ukernels kAvx512Vnni = {qd8_gemm_8x32c4__avx512vnni, MR, 0x80,
                                            qd8_quantize__avx512, qd8_dwconv__avx512,
                                            qd8_quantize_grid__avx512};

EQ_QD8_NODE_KERNELS(kAvx512Vnni)

#define ISA (EQ_ISA_AVX2 | EQ_ISA_AVX512 | EQ_ISA_AVX512VNNI)

const eq_kernel_info eq_x86_avx512vnni_qd8_kernels[] = {
    EQ_QD8_TABLE_ENTRIES(ISA),
    {NULL, NULL, 0, 0},
};
