/* f32 (indirect) GEMM microkernels, 6 rows x 16 columns, AVX2 + FMA: twelve ymm accumulators
 * (two per row) hide the FMA latency; one broadcast of A per row and two loads of packed W per
 * k. A block with at most 8 live columns does half the FMAs.
 *
 * The walking entries (eq_f32_gemm_6xN__avx2, and eq_f32_gemm_rows_6xN__avx2 reading row i of
 * tap t at a[t] + i * a_step) take nc up to EQ_F32_GEMM_AVX2_WALK_NR columns, several
 * consecutive packed blocks, one after the other with the tile's A rows kept in L1: one call
 * per tile instead of one per tile and block. A last 17..24 columns run as two 3x24 tiles
 * (nine accumulators: 9 FMAs a k against 6x16 + 6x8's 12 + 6, whose six 8-column chains wait
 * on the FMA latency); one row walks up to four blocks at once (eight chains). Every tile keeps
 * its accumulators in named registers: an array indexed in a store loop went to the stack
 * (the 6x8 tile ran at half speed so, 395 -> 203 ns at K = 144). */
#include <immintrin.h>

#include "edgeq/f32_gemm.h"

#define MR 6

/* 8 set lanes then 8 clear ones: loadu at (8 - n) gives a mask of the first n lanes. */
static const int32_t kMaskTable[16] = {-1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0};

static inline __m256 clamp8(__m256 v, __m256 lo, __m256 hi) {
  /* max/min return their second operand for NaN, so a NaN passes through as in the reference */
  return _mm256_min_ps(hi, _mm256_max_ps(lo, v));
}

static inline __m256i mask8(int32_t n) {
  return _mm256_loadu_si256((const __m256i *)(kMaskTable + 8 - n));
}

static inline void store8(float *c, int32_t n, __m256 v) {
  if (n == 8) {
    _mm256_storeu_ps(c, v);
  } else {
    _mm256_maskstore_ps(c, mask8(n), v);
  }
}

/* The epilogue (edgeq/f32_gemm.h) of n <= 8 outputs at c, column j of the tile (the residual
 * read at the same place as c), then their store. x >= 0 ? x : x * slope, with a NaN x failing
 * the ordered compare and giving x * slope; HARD_SWISH's max/min keep a NaN. */
static inline void epilogue_store8(float *c, int32_t n, __m256 v, const eq_f32_gemm_epilogue *ep,
                                   int64_t offset, int32_t j, __m256 vlo, __m256 vhi) {
  if (ep->residual) {
    const float *r = ep->residual + offset + j;
    v = _mm256_add_ps(v, n == 8 ? _mm256_loadu_ps(r) : _mm256_maskload_ps(r, mask8(n)));
  }
  v = clamp8(v, vlo, vhi);
  if (ep->slope) {
    const __m256 keep = _mm256_cmp_ps(v, _mm256_setzero_ps(), _CMP_GE_OQ);
    v = _mm256_blendv_ps(_mm256_mul_ps(v, _mm256_loadu_ps(ep->slope + j)), v, keep);
  } else if (ep->hard_swish) {
    const __m256 g = _mm256_min_ps(_mm256_set1_ps(6.0f),
                                   _mm256_max_ps(_mm256_setzero_ps(),
                                                 _mm256_add_ps(v, _mm256_set1_ps(3.0f))));
    v = _mm256_div_ps(_mm256_mul_ps(v, g), _mm256_set1_ps(6.0f));
  }
  store8(c + offset + j, n, v);
}

/* Row i (< MR) of tap t: a pointer per row and tap, or, when `strided`, a[t] + i * a_step with
 * rows past mr repeating row mr - 1. */
static inline __attribute__((always_inline)) const float *row_at(
    const int strided, const float *const *a, int64_t a_step, int32_t t, int32_t i, int32_t mr) {
  return strided ? a[t] + (int64_t)(i < mr ? i : mr - 1) * a_step : a[t * MR + i];
}

/* Rows 0..MR-1 of tap t into r. */
static inline __attribute__((always_inline)) void tap_rows(
    const int strided, const float *const *a, int64_t a_step, int32_t t, int32_t mr,
    const float **r) {
#pragma GCC unroll 6
  for (int32_t i = 0; i < MR; ++i) r[i] = row_at(strided, a, a_step, t, i, mr);
}

/* The epilogue moved to column col of the tile. */
static inline eq_f32_gemm_epilogue epilogue_at(const eq_f32_gemm_epilogue *ep, int32_t col) {
  eq_f32_gemm_epilogue e = *ep;
  if (e.slope) e.slope += col;
  if (e.residual) e.residual += col;
  return e;
}

/* One block of at most 8 live columns, all MR rows. Named accumulators: as an array indexed
 * in the epilogue loop GCC kept them on the stack, through memory every k (twice as slow). */
static inline __attribute__((always_inline)) void tile_6x8(
    const int strided, int32_t mr, int32_t nc, int32_t taps, int32_t kc, const float *const *a,
    int64_t a_step, const float *w, float *c, int64_t c_stride, const eq_f32_gemm_epilogue *ep) {
  __m256 c0 = _mm256_loadu_ps(w), c1 = c0, c2 = c0, c3 = c0, c4 = c0, c5 = c0;
  w += 16;
  for (int32_t t = 0; t < taps; ++t) {
    const float *r[MR];
    tap_rows(strided, a, a_step, t, mr, r);
    const float *a0 = r[0], *a1 = r[1], *a2 = r[2], *a3 = r[3], *a4 = r[4], *a5 = r[5];
    for (int32_t k = 0; k < kc; ++k, w += 16) {
      const __m256 wk = _mm256_loadu_ps(w);
      c0 = _mm256_fmadd_ps(_mm256_broadcast_ss(a0 + k), wk, c0);
      c1 = _mm256_fmadd_ps(_mm256_broadcast_ss(a1 + k), wk, c1);
      c2 = _mm256_fmadd_ps(_mm256_broadcast_ss(a2 + k), wk, c2);
      c3 = _mm256_fmadd_ps(_mm256_broadcast_ss(a3 + k), wk, c3);
      c4 = _mm256_fmadd_ps(_mm256_broadcast_ss(a4 + k), wk, c4);
      c5 = _mm256_fmadd_ps(_mm256_broadcast_ss(a5 + k), wk, c5);
    }
  }
  const __m256 vlo = _mm256_set1_ps(ep->lo), vhi = _mm256_set1_ps(ep->hi);
  const __m256 r[MR] = {c0, c1, c2, c3, c4, c5};
  for (int32_t i = 0; i < mr; ++i) epilogue_store8(c, nc, r[i], ep, i * c_stride, 0, vlo, vhi);
}

/* One block of 9..16 live columns, all MR rows. */
static inline __attribute__((always_inline)) void tile_6x16(
    const int strided, int32_t mr, int32_t nc, int32_t taps, int32_t kc, const float *const *a,
    int64_t a_step, const float *w, float *c, int64_t c_stride, const eq_f32_gemm_epilogue *ep) {
  __m256 c00 = _mm256_loadu_ps(w), c01 = _mm256_loadu_ps(w + 8);
  __m256 c10 = c00, c11 = c01, c20 = c00, c21 = c01;
  __m256 c30 = c00, c31 = c01, c40 = c00, c41 = c01, c50 = c00, c51 = c01;
  w += 16;
  for (int32_t t = 0; t < taps; ++t) {
    const float *r[MR];
    tap_rows(strided, a, a_step, t, mr, r);
    const float *a0 = r[0], *a1 = r[1], *a2 = r[2], *a3 = r[3], *a4 = r[4], *a5 = r[5];
    for (int32_t k = 0; k < kc; ++k, w += 16) {
      const __m256 w0 = _mm256_loadu_ps(w), w1 = _mm256_loadu_ps(w + 8);
      __m256 x = _mm256_broadcast_ss(a0 + k);
      c00 = _mm256_fmadd_ps(x, w0, c00);
      c01 = _mm256_fmadd_ps(x, w1, c01);
      x = _mm256_broadcast_ss(a1 + k);
      c10 = _mm256_fmadd_ps(x, w0, c10);
      c11 = _mm256_fmadd_ps(x, w1, c11);
      x = _mm256_broadcast_ss(a2 + k);
      c20 = _mm256_fmadd_ps(x, w0, c20);
      c21 = _mm256_fmadd_ps(x, w1, c21);
      x = _mm256_broadcast_ss(a3 + k);
      c30 = _mm256_fmadd_ps(x, w0, c30);
      c31 = _mm256_fmadd_ps(x, w1, c31);
      x = _mm256_broadcast_ss(a4 + k);
      c40 = _mm256_fmadd_ps(x, w0, c40);
      c41 = _mm256_fmadd_ps(x, w1, c41);
      x = _mm256_broadcast_ss(a5 + k);
      c50 = _mm256_fmadd_ps(x, w0, c50);
      c51 = _mm256_fmadd_ps(x, w1, c51);
    }
  }
  const __m256 vlo = _mm256_set1_ps(ep->lo), vhi = _mm256_set1_ps(ep->hi);
  const int32_t tail = nc - 8;
  __m256 r[MR][2] = {{c00, c01}, {c10, c11}, {c20, c21}, {c30, c31}, {c40, c41}, {c50, c51}};
  if (eq_f32_gemm_clamp_only(ep)) {
    for (int32_t i = 0; i < mr; ++i) {
      _mm256_storeu_ps(c + i * c_stride, clamp8(r[i][0], vlo, vhi));
      store8(c + i * c_stride + 8, tail, clamp8(r[i][1], vlo, vhi));
    }
    return;
  }
  for (int32_t i = 0; i < mr; ++i) {
    epilogue_store8(c, 8, r[i][0], ep, i * c_stride, 0, vlo, vhi);
    epilogue_store8(c, tail, r[i][1], ep, i * c_stride, 8, vlo, vhi);
  }
}

/* Rows [r0, r0 + 3) (those below mr stored) of 17..24 live columns: the block at w and the
 * first 8 columns of the next one, at w1. */
static inline __attribute__((always_inline)) void tile_3x24(
    const int strided, int32_t r0, int32_t mr, int32_t nc, int32_t taps, int32_t kc,
    const float *const *a, int64_t a_step, const float *w, const float *w1, float *c,
    int64_t c_stride, const eq_f32_gemm_epilogue *ep) {
  __m256 c00 = _mm256_loadu_ps(w), c01 = _mm256_loadu_ps(w + 8), c02 = _mm256_loadu_ps(w1);
  __m256 c10 = c00, c11 = c01, c12 = c02, c20 = c00, c21 = c01, c22 = c02;
  w += 16;
  w1 += 16;
  for (int32_t t = 0; t < taps; ++t) {
    const float *a0 = row_at(strided, a, a_step, t, r0, mr);
    const float *a1 = row_at(strided, a, a_step, t, r0 + 1, mr);
    const float *a2 = row_at(strided, a, a_step, t, r0 + 2, mr);
    for (int32_t k = 0; k < kc; ++k, w += 16, w1 += 16) {
      const __m256 w0 = _mm256_loadu_ps(w), wb = _mm256_loadu_ps(w + 8);
      const __m256 wc = _mm256_loadu_ps(w1);
      __m256 x = _mm256_broadcast_ss(a0 + k);
      c00 = _mm256_fmadd_ps(x, w0, c00);
      c01 = _mm256_fmadd_ps(x, wb, c01);
      c02 = _mm256_fmadd_ps(x, wc, c02);
      x = _mm256_broadcast_ss(a1 + k);
      c10 = _mm256_fmadd_ps(x, w0, c10);
      c11 = _mm256_fmadd_ps(x, wb, c11);
      c12 = _mm256_fmadd_ps(x, wc, c12);
      x = _mm256_broadcast_ss(a2 + k);
      c20 = _mm256_fmadd_ps(x, w0, c20);
      c21 = _mm256_fmadd_ps(x, wb, c21);
      c22 = _mm256_fmadd_ps(x, wc, c22);
    }
  }
  const __m256 vlo = _mm256_set1_ps(ep->lo), vhi = _mm256_set1_ps(ep->hi);
  const __m256 r[3][3] = {{c00, c01, c02}, {c10, c11, c12}, {c20, c21, c22}};
  for (int32_t i = 0; i < 3 && r0 + i < mr; ++i) {
    const int64_t at = (r0 + i) * c_stride;
    epilogue_store8(c, 8, r[i][0], ep, at, 0, vlo, vhi);
    epilogue_store8(c, 8, r[i][1], ep, at, 8, vlo, vhi);
    epilogue_store8(c, nc - 16, r[i][2], ep, at, 16, vlo, vhi);
  }
}

/* One row over `blocks` (1..4) consecutive blocks from w (block floats apart), nc live columns
 * in all: two chains per block. Tap t's row is a[t * tap_stride]. */
static inline __attribute__((always_inline)) void tile_1xb(
    const int blocks, int32_t nc, int32_t taps, int32_t kc, const float *const *a,
    int32_t tap_stride, const float *w, int64_t block, float *c, const eq_f32_gemm_epilogue *ep) {
  __m256 acc[8];
#pragma GCC unroll 4
  for (int32_t b = 0; b < blocks; ++b) {
    acc[2 * b] = _mm256_loadu_ps(w + b * block);
    acc[2 * b + 1] = _mm256_loadu_ps(w + b * block + 8);
  }
  w += 16;
  for (int32_t t = 0; t < taps; ++t, a += tap_stride) {
    const float *x = a[0];
    for (int32_t k = 0; k < kc; ++k, w += 16) {
      const __m256 xk = _mm256_broadcast_ss(x + k);
#pragma GCC unroll 4
      for (int32_t b = 0; b < blocks; ++b) {
        acc[2 * b] = _mm256_fmadd_ps(xk, _mm256_loadu_ps(w + b * block), acc[2 * b]);
        acc[2 * b + 1] = _mm256_fmadd_ps(xk, _mm256_loadu_ps(w + b * block + 8), acc[2 * b + 1]);
      }
    }
  }
  const __m256 vlo = _mm256_set1_ps(ep->lo), vhi = _mm256_set1_ps(ep->hi);
#pragma GCC unroll 8
  for (int32_t h = 0; h < 2 * blocks; ++h) {
    const int32_t live = nc - 8 * h;
    if (live > 0) epilogue_store8(c, live < 8 ? live : 8, acc[h], ep, 0, 8 * h, vlo, vhi);
  }
}

/* The tile over nc columns of consecutive blocks from w (see the top of the file). */
static inline __attribute__((always_inline)) void walk(
    const int strided, int32_t mr, int32_t nc, int32_t taps, int32_t kc, const float *const *a,
    int64_t a_step, const float *w, float *c, int64_t c_stride, const eq_f32_gemm_epilogue *ep) {
  const int64_t block = ((int64_t)taps * kc + 1) * EQ_F32_GEMM_NR;
  if (mr == 1) {
    const int32_t tap_stride = strided ? 1 : MR;
    for (int32_t col = 0; col < nc; col += 64, w += 4 * block) {
      const int32_t live = nc - col;
      const eq_f32_gemm_epilogue e = epilogue_at(ep, col);
      if (live > 48) {
        tile_1xb(4, live, taps, kc, a, tap_stride, w, block, c + col, &e);
      } else if (live > 32) {
        tile_1xb(3, live, taps, kc, a, tap_stride, w, block, c + col, &e);
      } else if (live > 16) {
        tile_1xb(2, live, taps, kc, a, tap_stride, w, block, c + col, &e);
      } else {
        tile_1xb(1, live, taps, kc, a, tap_stride, w, block, c + col, &e);
      }
    }
    return;
  }
  for (int32_t col = 0; col < nc; col += 16, w += block) {
    const int32_t live = nc - col;
    const eq_f32_gemm_epilogue e = epilogue_at(ep, col);
    if (live > 16 && live <= 24) {
      tile_3x24(strided, 0, mr, live, taps, kc, a, a_step, w, w + block, c + col, c_stride, &e);
      if (mr > 3)
        tile_3x24(strided, 3, mr, live, taps, kc, a, a_step, w, w + block, c + col, c_stride,
                  &e);
      return;
    }
    if (live <= 8) {
      tile_6x8(strided, mr, live, taps, kc, a, a_step, w, c + col, c_stride, &e);
    } else {
      tile_6x16(strided, mr, live < 16 ? live : 16, taps, kc, a, a_step, w, c + col, c_stride,
                &e);
    }
  }
}

void eq_f32_gemm_6x16__avx2(int32_t mr, int32_t nc, int32_t taps, int32_t kc,
                            const float *const *a, const float *w, float *c, int64_t c_stride,
                            const eq_f32_gemm_epilogue *ep) {
  walk(0, mr, nc < 16 ? nc : 16, taps, kc, a, 0, w, c, c_stride, ep);
}

void eq_f32_gemm_6xN__avx2(int32_t mr, int32_t nc, int32_t taps, int32_t kc,
                           const float *const *a, const float *w, float *c, int64_t c_stride,
                           const eq_f32_gemm_epilogue *ep) {
  walk(0, mr, nc, taps, kc, a, 0, w, c, c_stride, ep);
}

void eq_f32_gemm_rows_6xN__avx2(int32_t mr, int32_t nc, int32_t taps, int32_t kc,
                                const float *const *a, int64_t a_step, const float *w, float *c,
                                int64_t c_stride, const eq_f32_gemm_epilogue *ep) {
  walk(1, mr, nc, taps, kc, a, a_step, w, c, c_stride, ep);
}
