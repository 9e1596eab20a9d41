/* Shared by the QD8 GEMMs on 256-bit vectors (AVX2 and AVX-VNNI, both compiled with AVX2 + FMA):
 * the float epilogue of params/qd8.h on 8 channels, the row quantizers and the depthwise
 * microkernel (the GEMM is what each file speeds up). */
#ifndef EDGEQ_X86_QD8_AVX2_H
#define EDGEQ_X86_QD8_AVX2_H
#include <immintrin.h>
#include <math.h>

#include "edgeq/params/qd8.h"
#include "qd8_quant_params.h"

static inline __m256i qd8_avx2_tail_mask(size_t cols) {
  const __m256i index = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  return _mm256_cmpgt_epi32(_mm256_set1_epi32((int)cols), index);
}

static inline void qd8_avx2_store8(float *c, __m256i acc, __m256 row_scale, const float *scale,
                          const float *bias, __m256 lo, __m256 hi, size_t cols) {
  const __m256 s = _mm256_mul_ps(row_scale, _mm256_loadu_ps(scale));
  __m256 v = _mm256_add_ps(_mm256_mul_ps(_mm256_cvtepi32_ps(acc), s), _mm256_loadu_ps(bias));
  v = _mm256_min_ps(_mm256_max_ps(v, lo), hi);
  if (cols >= 8) {
    _mm256_storeu_ps(c, v);
  } else {
    _mm256_maskstore_ps(c, qd8_avx2_tail_mask(cols), v);
  }
}

static inline void qd8_avx2_min_max(size_t n, const float *x, float *lo, float *hi) {
  __m256 vmin = _mm256_set1_ps(x[0]), vmax = vmin;
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256 v = _mm256_loadu_ps(x + i);
    vmin = _mm256_min_ps(vmin, v);
    vmax = _mm256_max_ps(vmax, v);
  }
  float mins[8], maxs[8];
  _mm256_storeu_ps(mins, vmin);
  _mm256_storeu_ps(maxs, vmax);
  float l = mins[0], h = maxs[0];
  for (int j = 1; j < 8; ++j) {
    l = mins[j] < l ? mins[j] : l;
    h = maxs[j] > h ? maxs[j] : h;
  }
  for (; i < n; ++i) {
    l = x[i] < l ? x[i] : l;
    h = x[i] > h ? x[i] : h;
  }
  *lo = l;
  *hi = h;
}

/* rint of the float32 product (cvtps rounds to nearest even), + zero point. */
static inline __m256i qd8_avx2_quantize8(__m256 x, __m256 vq, __m256i vzp) {
  return _mm256_add_epi32(_mm256_cvtps_epi32(_mm256_mul_ps(x, vq)), vzp);
}

/* rint of the exact product, by the magic-bias FMA (params/qd8.h), + zero point. */
static inline __m256i qd8_avx2_quantize8_exact(__m256 x, __m256 vq, __m256i vzp) {
  const __m256 t = _mm256_fmadd_ps(x, vq, _mm256_set1_ps(EQ_QD8_MAGIC_BIAS));
  return _mm256_add_epi32(_mm256_sub_epi32(_mm256_castps_si256(t),
                                           _mm256_set1_epi32(EQ_QD8_MAGIC_BITS)), vzp);
}

static inline int32_t qd8_avx2_quantize1(float x, float q_scale, float zp) {
  const float v = nearbyintf(x * q_scale) + zp;
  return (int32_t)(v < -128.0f ? -128.0f : (v > 127.0f ? 127.0f : v));
}

static inline int32_t qd8_avx2_quantize1_exact(float x, float q_scale, float zp) {
  const float v = eq_qd8_round_product(x, q_scale) + zp;
  return (int32_t)(v < -128.0f ? -128.0f : (v > 127.0f ? 127.0f : v));
}

/* Saturated by the packs; the tail by the scalar formula, the same arithmetic. Every byte is
 * xored with a_xor (0x80: x_q + 128 as uint8, for vpdpbusd; 0: x_q). */
static inline void qd8_avx2_quantize(size_t n, const float *x, int8_t *q, eq_qd8_row_quant *quant,
                                     uint8_t a_xor) {
  float lo, hi;
  qd8_avx2_min_max(n, x, &lo, &hi);
  const float q_scale = qd8_x86_quant_params(lo, hi, quant);
  const __m256 vq = _mm256_set1_ps(q_scale);
  const __m256i vzp = _mm256_set1_epi32(quant->zero_point);
  const __m128i vxor = _mm_set1_epi8((char)a_xor);
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256i v = qd8_avx2_quantize8(_mm256_loadu_ps(x + i), vq, vzp);
    const __m256i b = _mm256_packs_epi16(_mm256_packs_epi32(v, v), _mm256_setzero_si256());
    const __m128i out = _mm_unpacklo_epi32(_mm256_castsi256_si128(b),
                                           _mm256_extracti128_si256(b, 1));
    _mm_storel_epi64((__m128i *)(q + i), _mm_xor_si128(out, vxor));
  }
  for (; i < n; ++i)
    q[i] = (int8_t)(qd8_avx2_quantize1(x[i], q_scale, (float)quant->zero_point) ^ a_xor);
}

static inline void qd8_avx2_quantize_grid(size_t n, const float *x, float *grid,
                                    eq_qd8_row_quant *quant) {
  float lo, hi;
  qd8_avx2_min_max(n, x, &lo, &hi);
  const float q_scale = qd8_x86_quant_params(lo, hi, quant);
  const __m256 vq = _mm256_set1_ps(q_scale);
  const __m256i vzp = _mm256_set1_epi32(quant->zero_point);
  const __m256i qmin = _mm256_set1_epi32(-128), qmax = _mm256_set1_epi32(127);
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    __m256i v = qd8_avx2_quantize8_exact(_mm256_loadu_ps(x + i), vq, vzp);
    v = _mm256_sub_epi32(_mm256_min_epi32(_mm256_max_epi32(v, qmin), qmax), vzp);
    _mm256_storeu_ps(grid + i, _mm256_cvtepi32_ps(v));
  }
  for (; i < n; ++i) {
    const int32_t zp = quant->zero_point;
    grid[i] = (float)(qd8_avx2_quantize1_exact(x[i], q_scale, (float)zp) - zp);
  }
}

/* One output pixel, 8 channels per vector (FMA is exact on the grid, params/qd8.h). */
static inline void qd8_avx2_dwconv(size_t channels, size_t taps, const float *const *rows,
                             const float *weights, float *out, float scale,
                             const float *w_scale, const float *bias, float act_min,
                             float act_max) {
  const __m256 vscale = _mm256_set1_ps(scale);
  const __m256 lo = _mm256_set1_ps(act_min), hi = _mm256_set1_ps(act_max);
  size_t c = 0;
  for (; c + 16 <= channels; c += 16) {
    __m256 acc0 = _mm256_setzero_ps(), acc1 = acc0;
    for (size_t t = 0; t < taps; ++t) {
      if (rows[t] == NULL) continue;
      const float *w = weights + t * channels + c;
      acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(rows[t] + c), _mm256_loadu_ps(w), acc0);
      acc1 = _mm256_fmadd_ps(_mm256_loadu_ps(rows[t] + c + 8), _mm256_loadu_ps(w + 8), acc1);
    }
    const __m256 s0 = _mm256_mul_ps(vscale, _mm256_loadu_ps(w_scale + c));
    const __m256 s1 = _mm256_mul_ps(vscale, _mm256_loadu_ps(w_scale + c + 8));
    const __m256 v0 = _mm256_add_ps(_mm256_mul_ps(acc0, s0), _mm256_loadu_ps(bias + c));
    const __m256 v1 = _mm256_add_ps(_mm256_mul_ps(acc1, s1), _mm256_loadu_ps(bias + c + 8));
    _mm256_storeu_ps(out + c, _mm256_min_ps(_mm256_max_ps(v0, lo), hi));
    _mm256_storeu_ps(out + c + 8, _mm256_min_ps(_mm256_max_ps(v1, lo), hi));
  }
  for (; c < channels; ++c) {
    float acc = 0.0f;
    for (size_t t = 0; t < taps; ++t) {
      if (rows[t] != NULL) acc += rows[t][c] * weights[t * channels + c];
    }
    const float v = acc * (scale * w_scale[c]) + bias[c];
    out[c] = v < act_min ? act_min : (v > act_max ? act_max : v);
  }
}

#endif
