/* fp16 ADD / SUB / MUL / PRELU / HARD_SWISH with F16C: 8 halves widened (vcvtph2ps), the
 * float32 operation, clamped, narrowed once (vcvtps2ph, round to nearest even). The same values
 * as the reference (kernels/ref/f16.c) bit for bit; rows with a stride other than 0 or 1 take the
 * scalar formula. */
#include <immintrin.h>

#include "edgeq/dispatch.h"
#include "edgeq/f16.h"
#include "edgeq/params/elementwise.h"

static inline __m256 load8(const uint16_t *p) {
  return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)p));
}

static inline void store8(uint16_t *p, __m256 v) {
  _mm_storeu_si128((__m128i *)p, _mm256_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT));
}

/* max/min return their second operand for NaN, so a NaN passes through as in the reference. */
#define DEFINE_F16C_BINARY(NAME, VOP, TAIL, CLAMPED)                                          \
  static void NAME(size_t n, const uint16_t *a, ptrdiff_t sa, const uint16_t *b,             \
                   ptrdiff_t sb, uint16_t *out, float lo, float hi) {                        \
    const __m256 vlo = _mm256_set1_ps(lo), vhi = _mm256_set1_ps(hi);                         \
    size_t i = 0;                                                                            \
    if (sa == 1 && (sb == 1 || sb == 0)) {                                                   \
      const __m256 yb = _mm256_set1_ps(eq_half_to_float(*b));                                \
      for (; i + 8 <= n; i += 8) {                                                           \
        const __m256 x = load8(a + i), y = sb ? load8(b + i) : yb;                           \
        const __m256 r = VOP(x, y);                                                          \
        store8(out + i, (CLAMPED) ? _mm256_min_ps(vhi, _mm256_max_ps(vlo, r)) : r);          \
      }                                                                                      \
    } else if (sa == 0 && sb == 1) {                                                         \
      const __m256 x = _mm256_set1_ps(eq_half_to_float(*a));                                 \
      for (; i + 8 <= n; i += 8) {                                                           \
        const __m256 r = VOP(x, load8(b + i));                                               \
        store8(out + i, (CLAMPED) ? _mm256_min_ps(vhi, _mm256_max_ps(vlo, r)) : r);          \
      }                                                                                      \
    }                                                                                        \
    if (i < n) /* the tail, and strides other than 0 and 1 */                               \
      TAIL(n - i, a + (ptrdiff_t)i * sa, sa, b + (ptrdiff_t)i * sb, sb, out + i, lo, hi);    \
  }

/* x >= 0 ? x : x * alpha; a NaN x fails the compare and gives x * alpha, a NaN too. */
static inline __m256 prelu8(__m256 x, __m256 alpha) {
  const __m256 keep = _mm256_cmp_ps(x, _mm256_setzero_ps(), _CMP_GE_OQ);
  return _mm256_blendv_ps(_mm256_mul_ps(x, alpha), x, keep);
}

DEFINE_F16C_BINARY(f16c_add, _mm256_add_ps, eq_f16_add__scalar, 1)
DEFINE_F16C_BINARY(f16c_sub, _mm256_sub_ps, eq_f16_sub__scalar, 1)
DEFINE_F16C_BINARY(f16c_mul, _mm256_mul_ps, eq_f16_mul__scalar, 1)
DEFINE_F16C_BINARY(f16c_prelu, prelu8, eq_f16_prelu__scalar, 0)

/* x * clamp(x + 3, 0, 6) / 6, with the reference's operation order (a true division). */
static void f16c_hard_swish(size_t n, const uint16_t *in, uint16_t *out) {
  const __m256 three = _mm256_set1_ps(3.0f), six = _mm256_set1_ps(6.0f);
  const __m256 zero = _mm256_setzero_ps();
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256 x = load8(in + i);
    const __m256 c = _mm256_min_ps(six, _mm256_max_ps(zero, _mm256_add_ps(x, three)));
    store8(out + i, _mm256_div_ps(_mm256_mul_ps(x, c), six));
  }
  if (i < n) eq_f16_hard_swish__scalar(n - i, in + i, out + i);
}

EQ_F16_ELEMENTWISE_KERNELS(f16c)

const eq_kernel_info eq_x86_avx2_f16_kernels[] = {
    EQ_F16_ELEMENTWISE_ENTRIES(f16c, EQ_ISA_AVX2),
    {NULL, NULL, 0, 0},
};
