/* f32 (indirect) GEMM microkernel, 7 rows x 32 columns, AVX-512F: two consecutive packed NR=16
 * blocks at once, fourteen zmm accumulators. Zen 5 keeps two 512-bit FMAs in flight per cycle
 * at four cycles of latency, so it needs at least eight independent chains (the 7x16 tile has
 * seven), and each broadcast of A now feeds two FMAs. Blocks of at most 16 live columns go to
 * the 7x16 kernel. The second block starts one block (bias + taps * kc rows of 16) after the
 * first: the layout of edgeq/f32_gemm.h, unchanged. */
#include <immintrin.h>

#include "edgeq/f32_gemm.h"

#define MR 7

static inline __m512 clamp16(__m512 v, __m512 lo, __m512 hi) {
  /* max/min return their second operand for NaN, so a NaN passes through as in the reference */
  return _mm512_min_ps(hi, _mm512_max_ps(lo, v));
}

/* One row (a FULLY_CONNECTED of one input row): two chains, no FMAs spent on repeated rows. */
static void gemm_1x32(int32_t nc, int32_t taps, int32_t kc, const float *const *a,
                      const float *w0, const float *w1, float *c, float lo, float hi) {
  __m512 acc0 = _mm512_loadu_ps(w0), acc1 = _mm512_loadu_ps(w1);
  w0 += 16;
  w1 += 16;
  for (int32_t t = 0; t < taps; ++t, a += MR) {
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

void eq_f32_gemm_7x32__avx512(int32_t mr, int32_t nc, int32_t taps, int32_t kc,
                              const float *const *a, const float *w, float *c, int64_t c_stride,
                              float lo, float hi) {
  if (nc <= 16) {
    eq_f32_gemm_7x16__avx512(mr, nc, taps, kc, a, w, c, c_stride, lo, hi);
    return;
  }
  const float *w0 = w, *w1 = w + ((int64_t)taps * kc + 1) * EQ_F32_GEMM_NR;
  if (mr == 1) {
    gemm_1x32(nc, taps, kc, a, w0, w1, c, lo, hi);
    return;
  }
  __m512 acc0[MR], acc1[MR];
  {
    const __m512 b0 = _mm512_loadu_ps(w0), b1 = _mm512_loadu_ps(w1);
#pragma GCC unroll 7
    for (int32_t i = 0; i < MR; ++i) {
      acc0[i] = b0;
      acc1[i] = b1;
    }
  }
  w0 += 16;
  w1 += 16;
  for (int32_t t = 0; t < taps; ++t, a += MR) {
    const float *a0 = a[0], *a1 = a[1], *a2 = a[2], *a3 = a[3], *a4 = a[4], *a5 = a[5];
    const float *a6 = a[6];
    for (int32_t k = 0; k < kc; ++k, w0 += 16, w1 += 16) {
      const __m512 v0 = _mm512_loadu_ps(w0), v1 = _mm512_loadu_ps(w1);
      __m512 x;
#define ROW(i)                                        \
  x = _mm512_set1_ps(a##i[k]);                        \
  acc0[i] = _mm512_fmadd_ps(x, v0, acc0[i]);          \
  acc1[i] = _mm512_fmadd_ps(x, v1, acc1[i]);
      ROW(0) ROW(1) ROW(2) ROW(3) ROW(4) ROW(5) ROW(6)
#undef ROW
    }
  }
  const __m512 vlo = _mm512_set1_ps(lo), vhi = _mm512_set1_ps(hi);
  const __mmask16 m = (__mmask16)((1u << (nc - 16)) - 1u);
#pragma GCC unroll 7
  for (int32_t i = 0; i < MR; ++i) {
    if (i < mr) {
      _mm512_storeu_ps(c + i * c_stride, clamp16(acc0[i], vlo, vhi));
      if (nc == 32) {  /* a full tile stores without a mask */
        _mm512_storeu_ps(c + i * c_stride + 16, clamp16(acc1[i], vlo, vhi));
      } else {
        _mm512_mask_storeu_ps(c + i * c_stride + 16, m, clamp16(acc1[i], vlo, vhi));
      }
    }
  }
}
