/* f32 ADD / SUB / MUL / PRELU / SQUARED_DIFFERENCE with broadcasting, AVX2: the reference
 * kernels' walk over the collapsed broadcast dims (same params, same results), with the innermost
 * dim vectorised when both operands are contiguous along it or one of them is broadcast (a bias,
 * a per-channel scale). */
#include <immintrin.h>

#include "edgeq/dispatch.h"
#include "edgeq/params/elementwise.h"
#include "f32_vbinary.h"

static inline float clampf(float v, float lo, float hi) { return v < lo ? lo : (v > hi ? hi : v); }

/* min/max return their second operand for NaN: a NaN passes through as in the reference.
 * PRELU and SQUARED_DIFFERENCE have no fused activation: they ignore the bounds (CLAMPED 0). */
#define VCLAMP(v) (clamped ? _mm256_min_ps(vhi, _mm256_max_ps(vlo, (v))) : (v))
#define SCLAMP(v) (clamped ? clampf((v), lo, hi) : (v))

#define DEFINE_VBINARY(NAME, VOP, SOP, CLAMPED)                                              \
  EQ_F32_VBINARY_BEGIN(NAME, CLAMPED)                                                        \
    const __m256 vlo = _mm256_set1_ps(lo), vhi = _mm256_set1_ps(hi);                         \
    EQ_F32_VBINARY_RUNS(p, A, B, out, {                                                      \
      int32_t i = 0;                                                                         \
      if (sa[5] == 1 && sb[5] == 1) {                                                        \
        for (; i + 8 <= n; i += 8)                                                           \
          _mm256_storeu_ps(out + i, VCLAMP(VOP(_mm256_loadu_ps(a + i),                       \
                                               _mm256_loadu_ps(b + i))));                    \
      } else if (sa[5] == 1 && sb[5] == 0) {                                                 \
        const __m256 y = _mm256_set1_ps(*b);                                                 \
        for (; i + 8 <= n; i += 8)                                                           \
          _mm256_storeu_ps(out + i, VCLAMP(VOP(_mm256_loadu_ps(a + i), y)));                 \
      } else if (sa[5] == 0 && sb[5] == 1) {                                                 \
        const __m256 x = _mm256_set1_ps(*a);                                                 \
        for (; i + 8 <= n; i += 8)                                                           \
          _mm256_storeu_ps(out + i, VCLAMP(VOP(x, _mm256_loadu_ps(b + i))));                 \
      }                                                                                      \
      for (; i < n; ++i) {                                                                   \
        const float x = a[(int64_t)i * sa[5]], y = b[(int64_t)i * sb[5]];                    \
        out[i] = SCLAMP(SOP);                                                                \
      }                                                                                      \
    });                                                                                      \
    return 0;                                                                                \
  }

/* x >= 0 ? x : x * alpha; a NaN x fails the compare and gives x * alpha, a NaN too. */
static inline __m256 prelu8(__m256 x, __m256 alpha) {
  const __m256 keep = _mm256_cmp_ps(x, _mm256_setzero_ps(), _CMP_GE_OQ);
  return _mm256_blendv_ps(_mm256_mul_ps(x, alpha), x, keep);
}

DEFINE_VBINARY(eq_f32_vadd__avx2, _mm256_add_ps, x + y, 1)
DEFINE_VBINARY(eq_f32_vsub__avx2, _mm256_sub_ps, x - y, 1)
DEFINE_VBINARY(eq_f32_vmul__avx2, _mm256_mul_ps, x * y, 1)
DEFINE_VBINARY(eq_f32_vprelu__avx2, prelu8, x >= 0 ? x : x * y, 0)

static inline __m256 squared_difference8(__m256 x, __m256 y) {
  const __m256 d = _mm256_sub_ps(x, y);
  return _mm256_mul_ps(d, d);
}
DEFINE_VBINARY(eq_f32_vsquared_difference__avx2, squared_difference8, (x - y) * (x - y), 0)
