/* f32 (indirect) GEMM microkernel, 7 rows x 32 columns, AVX-512F: two consecutive packed NR=16
 * blocks at once, fourteen zmm accumulators. Zen 5 keeps two 512-bit FMAs in flight per cycle
 * at four cycles of latency, so it needs at least eight independent chains (the 7x16 tile has
 * seven), and each broadcast of A now feeds two FMAs. Blocks of at most 16 live columns go to
 * the 7x16 kernel. The second block starts one block (bias + taps * kc rows of 16) after the
 * first: the layout of edgeq/f32_gemm.h, unchanged.
 *
 * The strided entry (eq_f32_gemm_rows_fn) reads row i of tap t at a[t] + i * a_step: the
 * convolution driver then builds one pointer per filter row instead of one per pixel.
 *
 * Zen 4 issues a 512-bit FMA as two 256-bit halves, one per cycle, which the 7x16 tile's seven
 * chains already keep busy: there, for depths (taps * kc) in [HALVES_MIN_DEPTH,
 * HALVES_MAX_DEPTH), the two blocks run as two 16-column passes of the 7x16 kernels. Per node of
 * one-thread MobileNetV2 (minima, Zen 4) that was 4-7% faster for K = 64 and 96 at 14x14, 11-13%
 * for K = 160 at 7x7, even for K = 32 and 192; but 3-6% slower for K = 16 and 24 at 112x112 and
 * 56x56, and 3-13% slower for K = 320 and 960, where the one pass reading A once for both blocks
 * wins. The sums run in the same order either way. */
#include <immintrin.h>

#include "edgeq/cpu.h"
#include "edgeq/f32_gemm.h"
#include "f32_gemm_avx512.h"

#define MR 7
#define HALVES_MIN_DEPTH 48
#define HALVES_MAX_DEPTH 256

static inline int two_passes(int32_t taps, int32_t kc) {
  const int64_t depth = (int64_t)taps * kc;
  return depth >= HALVES_MIN_DEPTH && depth < HALVES_MAX_DEPTH && eq_cpu_avx512_halves();
}

/* The epilogue of the second block, 16 columns on. */
static inline eq_f32_gemm_epilogue second_block(const eq_f32_gemm_epilogue *ep) {
  eq_f32_gemm_epilogue e = *ep;
  if (e.slope) e.slope += 16;
  if (e.residual) e.residual += 16;
  return e;
}

/* One row (a FULLY_CONNECTED of one input row): two chains, no FMAs spent on repeated rows.
 * Tap t's row is a[t * tap_stride]. */
static void gemm_1x32(int32_t nc, int32_t taps, int32_t kc, const float *const *a,
                      int32_t tap_stride, const float *w0, const float *w1, float *c,
                      const eq_f32_gemm_epilogue *ep) {
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
  const __m512 vlo = _mm512_set1_ps(ep->lo), vhi = _mm512_set1_ps(ep->hi);
  const __mmask16 m = (__mmask16)((1u << (nc - 16)) - 1u);
  const __m512 s0 = ep->slope ? _mm512_loadu_ps(ep->slope) : vlo;
  const __m512 s1 = ep->slope ? _mm512_loadu_ps(ep->slope + 16) : vlo;
  _mm512_storeu_ps(c, epilogue16(acc0, ep, 0, 0xffff, vlo, vhi, s0));
  _mm512_mask_storeu_ps(c + 16, m, epilogue16(acc1, ep, 16, m, vlo, vhi, s1));
}

/* The 7-row tile over `blocks` (1 or 2) packed blocks. Rows come from pointers a[t * MR + i]
 * or, when `strided`, from a[t] + i * a_step (rows past mr repeat row mr - 1). */
static inline __attribute__((always_inline)) void gemm_tile(
    const int strided, const int blocks, int32_t mr, int32_t nc, int32_t taps, int32_t kc,
    const float *const *a, int64_t a_step, const float *w, float *c, int64_t c_stride,
    const eq_f32_gemm_epilogue *ep) {
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
  const __m512 vlo = _mm512_set1_ps(ep->lo), vhi = _mm512_set1_ps(ep->hi);
  const int32_t last = blocks == 2 ? nc - 16 : nc;  /* live columns of the last block */
  const __mmask16 m = (__mmask16)((1u << last) - 1u);
  if (eq_f32_gemm_clamp_only(ep)) {
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
    return;
  }
  const __m512 s0 = ep->slope ? _mm512_loadu_ps(ep->slope) : vlo;
  const __m512 s1 = ep->slope && blocks == 2 ? _mm512_loadu_ps(ep->slope + 16) : s0;
#pragma GCC unroll 7
  for (int32_t i = 0; i < MR; ++i) {
    if (i < mr) {
      const int64_t at = i * c_stride;
      if (blocks == 2) {
        _mm512_storeu_ps(c + at, epilogue16(acc0[i], ep, at, 0xffff, vlo, vhi, s0));
        _mm512_mask_storeu_ps(c + at + 16, m, epilogue16(acc1[i], ep, at + 16, m, vlo, vhi, s1));
      } else {
        _mm512_mask_storeu_ps(c + at, m, epilogue16(acc0[i], ep, at, m, vlo, vhi, s0));
      }
    }
  }
}

void eq_f32_gemm_7x32__avx512(int32_t mr, int32_t nc, int32_t taps, int32_t kc,
                              const float *const *a, const float *w, float *c, int64_t c_stride,
                              const eq_f32_gemm_epilogue *ep) {
  if (nc <= 16) {
    eq_f32_gemm_7x16__avx512(mr, nc, taps, kc, a, w, c, c_stride, ep);
  } else if (mr > 1 && two_passes(taps, kc)) {
    const eq_f32_gemm_epilogue e1 = second_block(ep);
    eq_f32_gemm_7x16__avx512(mr, 16, taps, kc, a, w, c, c_stride, ep);
    eq_f32_gemm_7x16__avx512(mr, nc - 16, taps, kc, a,
                             w + ((int64_t)taps * kc + 1) * EQ_F32_GEMM_NR, c + 16, c_stride,
                             &e1);
  } else if (mr == 1) {
    gemm_1x32(nc, taps, kc, a, MR, w, w + ((int64_t)taps * kc + 1) * EQ_F32_GEMM_NR, c, ep);
  } else {
    gemm_tile(0, 2, mr, nc, taps, kc, a, 0, w, c, c_stride, ep);
  }
}

void eq_f32_gemm_rows_7x32__avx512(int32_t mr, int32_t nc, int32_t taps, int32_t kc,
                                   const float *const *a, int64_t a_step, const float *w,
                                   float *c, int64_t c_stride,
                                   const eq_f32_gemm_epilogue *ep) {
  if (nc <= 16) {
    gemm_tile(1, 1, mr, nc, taps, kc, a, a_step, w, c, c_stride, ep);
  } else if (mr > 1 && two_passes(taps, kc)) {
    const eq_f32_gemm_epilogue e1 = second_block(ep);
    gemm_tile(1, 1, mr, 16, taps, kc, a, a_step, w, c, c_stride, ep);
    gemm_tile(1, 1, mr, nc - 16, taps, kc, a, a_step,
              w + ((int64_t)taps * kc + 1) * EQ_F32_GEMM_NR, c + 16, c_stride, &e1);
  } else if (mr == 1) {
    gemm_1x32(nc, taps, kc, a, 1, w, w + ((int64_t)taps * kc + 1) * EQ_F32_GEMM_NR, c, ep);
  } else {
    gemm_tile(1, 2, mr, nc, taps, kc, a, a_step, w, c, c_stride, ep);
  }
}
