/* f32 ADD / SUB / MUL / PRELU with broadcasting, AVX-512F: the walk of the AVX2 kernels
 * (f32-vbinary__avx2.c, the reference's collapsed broadcast dims, same params and results) with
 * 16 lanes and the innermost tail as one masked step instead of a scalar loop: MediaPipe's
 * PRELU and residual ADD over 64 channels are four steps per pixel, no tail. */
#include <immintrin.h>

#include "edgeq/dispatch.h"
#include "edgeq/params/elementwise.h"
#include "f32_vbinary.h"

static inline float clamp1(float v, float lo, float hi) { return v < lo ? lo : (v > hi ? hi : v); }

/* min/max return their second operand for NaN: a NaN passes through as in the reference.
 * PRELU has no fused activation: it ignores the bounds (CLAMPED 0). */
#define ZCLAMP(v) (clamped ? _mm512_min_ps(vhi, _mm512_max_ps(vlo, (v))) : (v))

/* One innermost run of n outputs; LOAD_A / LOAD_B: CONT_ (contiguous) or BCAST_ (the scalar). */
#define ZRUN(VOP, LOAD_A, LOAD_B)                                                            \
  do {                                                                                       \
    int32_t i = 0;                                                                           \
    for (; i + 16 <= n; i += 16)                                                             \
      _mm512_storeu_ps(out + i, ZCLAMP(VOP(LOAD_A(0xffff, i), LOAD_B(0xffff, i))));          \
    if (i < n) {                                                                             \
      const __mmask16 m = (__mmask16)((1u << (n - i)) - 1u);                                 \
      _mm512_mask_storeu_ps(out + i, m, ZCLAMP(VOP(LOAD_A(m, i), LOAD_B(m, i))));            \
    }                                                                                        \
  } while (0)
#define CONT_A(m, i) _mm512_maskz_loadu_ps((m), a + (i))
#define CONT_B(m, i) _mm512_maskz_loadu_ps((m), b + (i))
#define BCAST_A(m, i) _mm512_set1_ps(*a)
#define BCAST_B(m, i) _mm512_set1_ps(*b)

#define DEFINE_VBINARY(NAME, VOP, SOP, CLAMPED)                                              \
  EQ_F32_VBINARY_BEGIN(NAME, CLAMPED)                                                        \
    const __m512 vlo = _mm512_set1_ps(lo), vhi = _mm512_set1_ps(hi);                         \
    const int kind = sa[5] == 1 && sb[5] == 1 ? 0 : sa[5] == 1 && sb[5] == 0 ? 1            \
                     : sa[5] == 0 && sb[5] == 1 ? 2 : 3;                                     \
    EQ_F32_VBINARY_RUNS(p, A, B, out, {                                                      \
      if (kind == 0) {                                                                       \
        ZRUN(VOP, CONT_A, CONT_B);                                                           \
      } else if (kind == 1) {                                                                \
        ZRUN(VOP, CONT_A, BCAST_B);                                                          \
      } else if (kind == 2) {                                                                \
        ZRUN(VOP, BCAST_A, CONT_B);                                                          \
      } else {                                                                               \
        for (int32_t i = 0; i < n; ++i) {                                                    \
          const float x = a[(int64_t)i * sa[5]], y = b[(int64_t)i * sb[5]];                  \
          out[i] = clamped ? clamp1(SOP, lo, hi) : SOP;                                      \
        }                                                                                    \
      }                                                                                      \
    });                                                                                      \
    return 0;                                                                                \
  }

/* x >= 0 ? x : x * alpha; a NaN x fails the compare and gives x * alpha, a NaN too. */
static inline __m512 prelu16(__m512 x, __m512 alpha) {
  const __mmask16 keep = _mm512_cmp_ps_mask(x, _mm512_setzero_ps(), _CMP_GE_OQ);
  return _mm512_mask_blend_ps(keep, _mm512_mul_ps(x, alpha), x);
}

DEFINE_VBINARY(eq_f32_vadd__avx512, _mm512_add_ps, x + y, 1)
DEFINE_VBINARY(eq_f32_vsub__avx512, _mm512_sub_ps, x - y, 1)
DEFINE_VBINARY(eq_f32_vmul__avx512, _mm512_mul_ps, x * y, 1)
DEFINE_VBINARY(eq_f32_vprelu__avx512, prelu16, x >= 0 ? x : x * y, 0)
