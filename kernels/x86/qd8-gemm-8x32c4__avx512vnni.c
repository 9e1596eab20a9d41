/* QD8 for AVX-512 VNNI: a GEMM of 8 rows x 32 channels (two packed blocks) per step, vpdpbusd
 * on 4-byte k groups (the c4 layout of params/qd8.h), the depthwise microkernel and vectorised
 * quantizers.
 *
 * vpdpbusd multiplies unsigned by signed bytes, so each activation byte is flipped to
 * x_q + 128 (an xor with 0x80) and the extra 128 * ksum[n] leaves with the zero point:
 * acc = sum((x_q + 128) * w) - (zp + 128) * ksum. The products and sums are exact in int32 for
 * the depths prepare allows, so results equal the scalar reference bit for bit. */
#include <immintrin.h>
#include <string.h>

#include "edgeq/dispatch.h"
#include "edgeq/params/qd8.h"

#define MR 8

static inline __m512i broadcast_u8x4(const int8_t *a) {
  int32_t v;
  memcpy(&v, a, 4);
  return _mm512_set1_epi32(v ^ (int32_t)0x80808080);
}

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

static void qd8_gemm_8x32c4__avx512vnni(size_t mr, size_t nc, size_t kc, const int8_t *a,
                                        size_t a_stride, const void *packed_w, float *c,
                                        size_t c_stride, const eq_qd8_row_quant *quant,
                                        float act_min, float act_max) {
  /* Rows past mr repeat the last one (their results land on it, identical), so the loops keep
   * a fixed shape. */
  const int8_t *ar[MR];
  float *cr[MR];
  __m512i zp_shift[MR];
  __m512 row_scale[MR];
  for (size_t i = 0; i < MR; ++i) {
    const size_t r = i < mr ? i : mr - 1;
    ar[i] = a + r * a_stride;
    cr[i] = c + r * c_stride;
    zp_shift[i] = _mm512_set1_epi32(-(quant[r].zero_point + 128));
    row_scale[i] = _mm512_set1_ps(quant[r].scale);
  }
  const __m512 lo = _mm512_set1_ps(act_min), hi = _mm512_set1_ps(act_max);
  const size_t block_bytes = EQ_QD8_BLOCK_BYTES(kc), groups = kc / EQ_QD8_KR;
  const uint8_t *block = (const uint8_t *)packed_w;
  size_t n0 = 0;
  for (; n0 + EQ_QD8_NR < nc; n0 += 2 * EQ_QD8_NR, block += 2 * block_bytes) {
    const uint8_t *block1 = block + block_bytes;
    const __m512i ksum0 = _mm512_loadu_si512(block), ksum1 = _mm512_loadu_si512(block1);
    __m512i acc0[MR], acc1[MR];
#pragma GCC unroll 8
    for (size_t i = 0; i < MR; ++i) {
      acc0[i] = _mm512_mullo_epi32(ksum0, zp_shift[i]);
      acc1[i] = _mm512_mullo_epi32(ksum1, zp_shift[i]);
    }
    const int8_t *w0 = (const int8_t *)(block + 4 * EQ_QD8_NR);
    const int8_t *w1 = (const int8_t *)(block1 + 4 * EQ_QD8_NR);
    for (size_t g = 0; g < groups; ++g) {
      const __m512i vw0 = _mm512_loadu_si512(w0 + g * 64), vw1 = _mm512_loadu_si512(w1 + g * 64);
#pragma GCC unroll 8
      for (size_t i = 0; i < MR; ++i) {
        const __m512i va = broadcast_u8x4(ar[i] + g * EQ_QD8_KR);
        acc0[i] = _mm512_dpbusd_epi32(acc0[i], va, vw0);
        acc1[i] = _mm512_dpbusd_epi32(acc1[i], va, vw1);
      }
    }
    const float *scale0 = (const float *)(block + 4 * EQ_QD8_NR + EQ_QD8_NR * kc);
    const float *scale1 = (const float *)(block1 + 4 * EQ_QD8_NR + EQ_QD8_NR * kc);
    const __mmask16 mask1 = cols_mask(nc - n0 - EQ_QD8_NR);
    for (size_t i = MR; i-- > 0;) {
      store_row(cr[i] + n0, acc0[i], row_scale[i], scale0, scale0 + EQ_QD8_NR, lo, hi, 0xffff);
      store_row(cr[i] + n0 + EQ_QD8_NR, acc1[i], row_scale[i], scale1, scale1 + EQ_QD8_NR, lo,
                hi, mask1);
    }
  }
  if (n0 < nc) {  /* one block left */
    const __m512i ksum = _mm512_loadu_si512(block);
    __m512i acc[MR];
#pragma GCC unroll 8
    for (size_t i = 0; i < MR; ++i) acc[i] = _mm512_mullo_epi32(ksum, zp_shift[i]);
    const int8_t *w = (const int8_t *)(block + 4 * EQ_QD8_NR);
    for (size_t g = 0; g < groups; ++g) {
      const __m512i vw = _mm512_loadu_si512(w + g * 64);
#pragma GCC unroll 8
      for (size_t i = 0; i < MR; ++i) {
        acc[i] = _mm512_dpbusd_epi32(acc[i], broadcast_u8x4(ar[i] + g * EQ_QD8_KR), vw);
      }
    }
    const float *scale = (const float *)(block + 4 * EQ_QD8_NR + EQ_QD8_NR * kc);
    const __mmask16 mask = cols_mask(nc - n0);
    for (size_t i = MR; i-- > 0;) {
      store_row(cr[i] + n0, acc[i], row_scale[i], scale, scale + EQ_QD8_NR, lo, hi, mask);
    }
  }
}

/* The scalar quantizer's arithmetic, 16 lanes at a time, saturated to int8. */
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

static void min_max__avx512(size_t n, const float *x, float *lo, float *hi) {
  __m512 vmin = _mm512_set1_ps(x[0]), vmax = vmin;
  size_t i = 0;
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

/* The scalar quantizer's arithmetic, 16 lanes at a time, saturated to int8. */
static void qd8_quantize__avx512(size_t n, const float *x, int8_t *q, eq_qd8_row_quant *quant) {
  float lo, hi;
  min_max__avx512(n, x, &lo, &hi);
  const __m512 vq = _mm512_set1_ps(eq_qd8_quant_params(lo, hi, quant));
  const __m512i vzp = _mm512_set1_epi32(quant->zero_point);
  size_t i = 0;
  for (; i + 16 <= n; i += 16) {
    _mm_storeu_si128((__m128i *)(q + i),
                     _mm512_cvtsepi32_epi8(quantize16(_mm512_loadu_ps(x + i), vq, vzp)));
  }
  if (i < n) {
    const __mmask16 m = (__mmask16)((1u << (n - i)) - 1);
    _mm512_mask_cvtsepi32_storeu_epi8(q + i, m, quantize16(_mm512_maskz_loadu_ps(m, x + i), vq,
                                                           vzp));
  }
}

/* The grid quantizer: as above, then clamped to int8 and the zero point taken off, as floats. */
static void qd8_quantize_grid__avx512(size_t n, const float *x, float *grid,
                                      eq_qd8_row_quant *quant) {
  float lo, hi;
  min_max__avx512(n, x, &lo, &hi);
  const __m512 vq = _mm512_set1_ps(eq_qd8_quant_params(lo, hi, quant));
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

static const eq_qd8_ukernels kAvx512Vnni = {qd8_gemm_8x32c4__avx512vnni, MR,
                                            qd8_quantize__avx512, qd8_dwconv__avx512,
                                            qd8_quantize_grid__avx512};

EQ_QD8_NODE_KERNELS(kAvx512Vnni)

#define ISA (EQ_ISA_AVX2 | EQ_ISA_AVX512 | EQ_ISA_AVX512VNNI)

const eq_kernel_info eq_x86_avx512vnni_qd8_kernels[] = {
    EQ_QD8_TABLE_ENTRIES(ISA),
    {NULL, NULL, 0, 0},
};
