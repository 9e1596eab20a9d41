/* QD8 for AVX2 (no VNNI): a GEMM of 2 rows x 16 channels per step on the c4 layout of
 * params/qd8.h, the depthwise microkernel and vectorised quantizers.
 *
 * vpmaddubsw (u8 x s8 into int16) would saturate on the +128-shifted activations (2 * 255 * 127
 * > 32767), so both operands are sign-extended to int16 instead and vpmaddwd forms exact
 * pairwise sums in int32: a 4-byte group of 4 channels becomes 16 int16 lanes, the row's 4
 * activations are broadcast against them, and each channel's two pair sums meet in a final
 * horizontal add. Results equal the scalar reference bit for bit. */
#include <immintrin.h>
#include <math.h>
#include <string.h>

#include "edgeq/dispatch.h"
#include "edgeq/params/qd8.h"

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

static inline __m256i tail_mask(size_t cols) {
  const __m256i index = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  return _mm256_cmpgt_epi32(_mm256_set1_epi32((int)cols), index);
}

static inline void store8(float *c, __m256i acc, __m256 row_scale, const float *scale,
                          const float *bias, __m256 lo, __m256 hi, size_t cols) {
  const __m256 s = _mm256_mul_ps(row_scale, _mm256_loadu_ps(scale));
  __m256 v = _mm256_add_ps(_mm256_mul_ps(_mm256_cvtepi32_ps(acc), s), _mm256_loadu_ps(bias));
  v = _mm256_min_ps(_mm256_max_ps(v, lo), hi);
  if (cols >= 8) {
    _mm256_storeu_ps(c, v);
  } else {
    _mm256_maskstore_ps(c, tail_mask(cols), v);
  }
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
      store8(c1 + n0 + 8 * h, r1, rs1, scale + 8 * h, bias + 8 * h, lo, hi, left);
      store8(c + n0 + 8 * h, r0, rs0, scale + 8 * h, bias + 8 * h, lo, hi, left);
    }
  }
}

static void min_max__avx2(size_t n, const float *x, float *lo, float *hi) {
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
static inline __m256i quantize8(__m256 x, __m256 vq, __m256i vzp) {
  return _mm256_add_epi32(_mm256_cvtps_epi32(_mm256_mul_ps(x, vq)), vzp);
}

/* rint of the exact product, by the magic-bias FMA (params/qd8.h), + zero point. */
static inline __m256i quantize8_exact(__m256 x, __m256 vq, __m256i vzp) {
  const __m256 t = _mm256_fmadd_ps(x, vq, _mm256_set1_ps(EQ_QD8_MAGIC_BIAS));
  return _mm256_add_epi32(_mm256_sub_epi32(_mm256_castps_si256(t),
                                           _mm256_set1_epi32(EQ_QD8_MAGIC_BITS)), vzp);
}

static inline int32_t quantize1(float x, float q_scale, float zp) {
  const float v = nearbyintf(x * q_scale) + zp;
  return (int32_t)(v < -128.0f ? -128.0f : (v > 127.0f ? 127.0f : v));
}

static inline int32_t quantize1_exact(float x, float q_scale, float zp) {
  const float v = eq_qd8_round_product(x, q_scale) + zp;
  return (int32_t)(v < -128.0f ? -128.0f : (v > 127.0f ? 127.0f : v));
}

/* Saturated by the packs; the tail by the scalar formula, the same arithmetic. */
static void qd8_quantize__avx2(size_t n, const float *x, int8_t *q, eq_qd8_row_quant *quant) {
  float lo, hi;
  min_max__avx2(n, x, &lo, &hi);
  const float q_scale = eq_qd8_quant_params(lo, hi, quant);
  const __m256 vq = _mm256_set1_ps(q_scale);
  const __m256i vzp = _mm256_set1_epi32(quant->zero_point);
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256i v = quantize8(_mm256_loadu_ps(x + i), vq, vzp);
    const __m256i b = _mm256_packs_epi16(_mm256_packs_epi32(v, v), _mm256_setzero_si256());
    const __m128i out = _mm_unpacklo_epi32(_mm256_castsi256_si128(b),
                                           _mm256_extracti128_si256(b, 1));
    _mm_storel_epi64((__m128i *)(q + i), out);
  }
  for (; i < n; ++i) q[i] = (int8_t)quantize1(x[i], q_scale, (float)quant->zero_point);
}

static void qd8_quantize_grid__avx2(size_t n, const float *x, float *grid,
                                    eq_qd8_row_quant *quant) {
  float lo, hi;
  min_max__avx2(n, x, &lo, &hi);
  const float q_scale = eq_qd8_quant_params(lo, hi, quant);
  const __m256 vq = _mm256_set1_ps(q_scale);
  const __m256i vzp = _mm256_set1_epi32(quant->zero_point);
  const __m256i qmin = _mm256_set1_epi32(-128), qmax = _mm256_set1_epi32(127);
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    __m256i v = quantize8_exact(_mm256_loadu_ps(x + i), vq, vzp);
    v = _mm256_sub_epi32(_mm256_min_epi32(_mm256_max_epi32(v, qmin), qmax), vzp);
    _mm256_storeu_ps(grid + i, _mm256_cvtepi32_ps(v));
  }
  for (; i < n; ++i) {
    const int32_t zp = quant->zero_point;
    grid[i] = (float)(quantize1_exact(x[i], q_scale, (float)zp) - zp);
  }
}

/* One output pixel, 8 channels per vector (FMA is exact on the grid, params/qd8.h). */
static void qd8_dwconv__avx2(size_t channels, size_t taps, const float *const *rows,
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

static const eq_qd8_ukernels kAvx2 = {qd8_gemm_2x16c4__avx2, MR, 0, qd8_quantize__avx2,
                                      qd8_dwconv__avx2, qd8_quantize_grid__avx2};

EQ_QD8_NODE_KERNELS(kAvx2)

const eq_kernel_info eq_x86_avx2_qd8_kernels[] = {
    EQ_QD8_TABLE_ENTRIES(EQ_ISA_AVX2),
    {NULL, NULL, 0, 0},
};
