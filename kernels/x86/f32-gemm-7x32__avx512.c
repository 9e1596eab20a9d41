/* f32 (indirect) GEMM microkernel, 7 rows x 32 columns, AVX-512F: two consecutive packed NR=16
 * blocks at once, fourteen zmm accumulators. Zen 5 keeps two 512-bit FMAs in flight per cycle
 * at four cycles of latency, so it needs at least eight independent chains (the 7x16 tile has
 * seven), and each broadcast of A now feeds two FMAs. Blocks of at most 16 live columns go to
 * the 7x16 kernel. The second block starts one block (bias + taps * kc rows of 16) after the
 * first: the layout of edgeq/f32_gemm.h, unchanged.
 *
 * The strided entry (eq_f32_gemm_rows_fn) reads row i of tap t at a[t] + i * a_step: the
 * convolution driver then builds one pointer per filter row instead of one per pixel. */
#include <immintrin.h>

#include "edgeq/f32_gemm.h"

#define MR 7

static inline __m512 clamp16(__m512 v, __m512 lo, __m512 hi) {
  /* max/min return their second operand for NaN, so a NaN passes through as in the reference */
  return _mm512_min_ps(hi, _mm512_max_ps(lo, v));
}

/* One row (a FULLY_CONNECTED of one input row): two chains, no FMAs spent on repeated rows.
 * Tap t's row is a[t * tap_stride]. */
static void gemm_1x32(int32_t nc, int32_t taps, int32_t kc, const float *const *a,
                      int32_t tap_stride, const float *w0, const float *w1, float *c, float lo,
                      float hi) {
  __m512 acc0 = _mm512_loadu_ps(w0), acc1 = _mm512_loadu_ps(w1);
  w0 += 16;
  w1 += 16;
  for (int32_t t = 0; t < taps; ++t, a += tap_stride) {
    const float *x = a[0];
    for (int32_t k = 0; k < kc; ++k, w0 += 16, w1 += 16) {
      const __m512 xk = _mm512_set1_ps(x[k]);
      acc0 = _mm512_fmadd_ps(xk, _mm512_loadu_ps(w0), acc0);
      acc1 = _mm512_fmadd_ps(xk, _mm512_loadu_ps(w1), acc1);
    }
  }
  const __m512 vlo = _mm512_set1_ps(lo), vhi = _mm512_set1_ps(hi);
  _mm512_storeu_ps(c, clamp16(acc0, vlo, vhi));
  _mm512_mask_storeu_ps(c + 16, (__mmask16)((1u << (nc - 16)) - 1u), clamp16(acc1, vlo, vhi));
}

/* The 7-row tile over `blocks` (1 or 2) packed blocks. Rows come from pointers a[t * MR + i]
 * or, when `strided`, from a[t] + i * a_step (rows past mr repeat row mr - 1). */
static inline __attribute__((always_inline)) void gemm_tile(
    const int strided, const int blocks, int32_t mr, int32_t nc, int32_t taps, int32_t kc,
    const float *const *a, int64_t a_step, const float *w, float *c, int64_t c_stride, float lo,
    float hi) {
  const float *w0 = w, *w1 = w + ((int64_t)taps * kc + 1) * EQ_F32_GEMM_NR;
  __m512 acc0[MR], acc1[MR];
  {
    const __m512 b0 = _mm512_loadu_ps(w0), b1 = blocks == 2 ? _mm512_loadu_ps(w1) : b0;
#pragma GCC unroll 7
    for (int32_t i = 0; i < MR; ++i) {
      acc0[i] = b0;
      acc1[i] = b1;
    }
  }
  w0 += 16;
  w1 += 16;
  for (int32_t t = 0; t < taps; ++t) {
    const float *r[MR];
#pragma GCC unroll 7
    for (int32_t i = 0; i < MR; ++i)
      r[i] = strided ? a[t] + (i < mr ? i : mr - 1) * a_step : a[t * MR + i];
    for (int32_t k = 0; k < kc; ++k, w0 += 16, w1 += 16) {
      const __m512 v0 = _mm512_loadu_ps(w0);
      const __m512 v1 = blocks == 2 ? _mm512_loadu_ps(w1) : v0;
#pragma GCC unroll 7
      for (int32_t i = 0; i < MR; ++i) {
        const __m512 x = _mm512_set1_ps(r[i][k]);
        acc0[i] = _mm512_fmadd_ps(x, v0, acc0[i]);
        if (blocks == 2) acc1[i] = _mm512_fmadd_ps(x, v1, acc1[i]);
      }
    }
  }
  const __m512 vlo = _mm512_set1_ps(lo), vhi = _mm512_set1_ps(hi);
  const int32_t last = blocks == 2 ? nc - 16 : nc;  /* live columns of the last block */
  const __mmask16 m = (__mmask16)((1u << last) - 1u);
#pragma GCC unroll 7
  for (int32_t i = 0; i < MR; ++i) {
    if (i < mr) {
      float *ci = c + i * c_stride;
      if (blocks == 2) {
        _mm512_storeu_ps(ci, clamp16(acc0[i], vlo, vhi));
        ci += 16;
      }
      const __m512 v = clamp16(blocks == 2 ? acc1[i] : acc0[i], vlo, vhi);
      if (last == 16) {  /* a full block stores without a mask */
        _mm512_storeu_ps(ci, v);
      } else {
        _mm512_mask_storeu_ps(ci, m, v);
      }
    }
  }
}

void eq_f32_gemm_7x32__avx512(int32_t mr, int32_t nc, int32_t taps, int32_t kc,
                              const float *const *a, const float *w, float *c, int64_t c_stride,
                              float lo, float hi) {
  if (nc <= 16) {
    eq_f32_gemm_7x16__avx512(mr, nc, taps, kc, a, w, c, c_stride, lo, hi);
  } else if (mr == 1) {
    gemm_1x32(nc, taps, kc, a, MR, w, w + ((int64_t)taps * kc + 1) * EQ_F32_GEMM_NR, c, lo, hi);
  } else {
    gemm_tile(0, 2, mr, nc, taps, kc, a, 0, w, c, c_stride, lo, hi);
  }
}

void eq_f32_gemm_rows_7x32__avx512(int32_t mr, int32_t nc, int32_t taps, int32_t kc,
                                   const float *const *a, int64_t a_step, const float *w,
                                   float *c, int64_t c_stride, float lo, float hi) {
  if (nc <= 16) {
    gemm_tile(1, 1, mr, nc, taps, kc, a, a_step, w, c, c_stride, lo, hi);
  } else if (mr == 1) {
    gemm_1x32(nc, taps, kc, a, 1, w, w + ((int64_t)taps * kc + 1) * EQ_F32_GEMM_NR, c, lo, hi);
  } else {
    gemm_tile(1, 2, mr, nc, taps, kc, a, a_step, w, c, c_stride, lo, hi);
  }
}
