/* The row quantization parameters of the x86 QD8 quantizers (included by the AVX2, AVX-VNNI
 * and AVX-512 VNNI files; SSE4.1 intrinsics). */
#ifndef EDGEQ_X86_QD8_QUANT_PARAMS_H
#define EDGEQ_X86_QD8_QUANT_PARAMS_H
#include <immintrin.h>
#include <stdint.h>

#include "edgeq/params/qd8.h"

/* eq_qd8_quant_params (params/qd8.h), the same operations in the same order, with its choices
 * made by blends instead of branches: the side the zero point is taken from depends on each
 * row's data, and a mispredicted branch per row stopped the next rows' quantization from
 * overlapping this one's divisions. */
static inline float qd8_x86_quant_params(float min, float max, eq_qd8_row_quant *quant) {
  const __m128 zero = _mm_setzero_ps(), qmin = _mm_set_ss(-128.0f), qmax = _mm_set_ss(127.0f);
  const __m128 rmin = _mm_min_ss(_mm_set_ss(min), zero);  /* min < 0 ? min : 0 */
  const __m128 rmax = _mm_max_ss(_mm_set_ss(max), zero);  /* max > 0 ? max : 0 */
  const __m128 q = _mm_blendv_ps(_mm_div_ss(_mm_sub_ss(qmax, qmin), _mm_sub_ss(rmax, rmin)),
                                 _mm_set_ss(1.0f), _mm_cmpeq_ss(rmin, rmax));
  const __m128 rmin_q = _mm_mul_ss(rmin, q), rmax_q = _mm_mul_ss(rmax, q);
  const __m128 side = _mm_add_ss(_mm_add_ss(qmin, rmin_q), _mm_add_ss(qmax, rmax_q));
  __m128 zp = _mm_blendv_ps(_mm_sub_ss(qmax, rmax_q), _mm_sub_ss(qmin, rmin_q),
                            _mm_cmpgt_ss(side, zero));
  zp = _mm_blendv_ps(zp, qmax, _mm_cmpgt_ss(zp, qmax));
  zp = _mm_blendv_ps(zp, qmin, _mm_cmplt_ss(zp, qmin));
  /* nearbyintf: the current rounding mode (to nearest, ties to even), no inexact flag */
  quant->zero_point = (int32_t)_mm_cvtss_f32(
      _mm_round_ss(zp, zp, _MM_FROUND_CUR_DIRECTION | _MM_FROUND_NO_EXC));
  const float qs = _mm_cvtss_f32(q);
  quant->scale = 1.0f / qs;
  return qs;
}

#endif
