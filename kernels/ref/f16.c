/* Reference elementwise kernels on fp16 tensors (edgeq/f16.h): the float32 operation on the
 * fp16 values, clamped, rounded to fp16 once. The spec of the F16C and FP16 variants. */
#include "edgeq/dispatch.h"
#include "edgeq/f16.h"
#include "edgeq/f32_gemm.h"
#include "edgeq/params/elementwise.h"

/* NaN passes through (both comparisons fail), as in the float32 kernels. */
static inline float clamp_f16_ref(float v, float lo, float hi) {
  return v < lo ? lo : (v > hi ? hi : v);
}

#define DEFINE_SCALAR_BINARY(NAME, EXPR, CLAMPED)                                           \
  void NAME(size_t n, const uint16_t *a, ptrdiff_t sa, const uint16_t *b,            \
                   ptrdiff_t sb, uint16_t *out, float lo, float hi) {                       \
    for (size_t i = 0; i < n; ++i) {                                                        \
      const float x = eq_half_to_float(a[(ptrdiff_t)i * sa]);                               \
      const float y = eq_half_to_float(b[(ptrdiff_t)i * sb]);                               \
      const float r = (EXPR);                                                               \
      out[i] = eq_float_to_half((CLAMPED) ? clamp_f16_ref(r, lo, hi) : r);                  \
    }                                                                                       \
  }

DEFINE_SCALAR_BINARY(eq_f16_add__scalar, x + y, 1)
DEFINE_SCALAR_BINARY(eq_f16_sub__scalar, x - y, 1)
DEFINE_SCALAR_BINARY(eq_f16_mul__scalar, x * y, 1)
DEFINE_SCALAR_BINARY(eq_f16_prelu__scalar, x >= 0 ? x : x * y, 0)

void eq_f16_hard_swish__scalar(size_t n, const uint16_t *in, uint16_t *out) {
  for (size_t i = 0; i < n; ++i) {
    const float x = eq_half_to_float(in[i]);
    out[i] = eq_float_to_half(x * clamp_f16_ref(x + 3.0f, 0.0f, 6.0f) / 6.0f);
  }
}

#define scalar_add eq_f16_add__scalar
#define scalar_sub eq_f16_sub__scalar
#define scalar_mul eq_f16_mul__scalar
#define scalar_prelu eq_f16_prelu__scalar
#define scalar_hard_swish eq_f16_hard_swish__scalar
EQ_F16_ELEMENTWISE_KERNELS(scalar)

/* The fp16 GEMM spec: float32 sums of the fp16 values in increasing k from the bias, clamped,
 * rounded once. */
void eq_f16_gemm_4x16__scalar(int32_t mr, int32_t nc, int32_t kc, const uint16_t *a,
                              int64_t a_stride, const uint16_t *w, uint16_t *c,
                              int64_t c_stride, float lo, float hi) {
  for (int32_t i = 0; i < mr; ++i) {
    const uint16_t *row = a + i * a_stride;
    for (int32_t j = 0; j < nc; ++j) {
      float acc = eq_half_to_float(w[j]);
      for (int32_t k = 0; k < kc; ++k) {
        const uint16_t wk = w[(int64_t)(k + 1) * EQ_F32_GEMM_NR + j];
        acc += eq_half_to_float(row[k]) * eq_half_to_float(wk);
      }
      c[i * c_stride + j] = eq_float_to_half(clamp_f16_ref(acc, lo, hi));
    }
  }
}

EQ_F16_GEMM_KERNELS(scalar, eq_f16_gemm_4x16__scalar, 4)

/* The fp16 depthwise spec: float32 sums in tap order from the bias, clamped, rounded once. */
void eq_f16_dwconv__scalar(int32_t pixels, int32_t channels, int32_t taps,
                           const uint16_t *const *ptrs, int64_t step, const uint16_t *weights,
                           const uint16_t *bias, uint16_t *out, float lo, float hi) {
  for (int32_t px = 0; px < pixels; ++px) {
    for (int32_t ch = 0; ch < channels; ++ch) {
      float acc = eq_half_to_float(bias[ch]);
      for (int32_t t = 0; t < taps; ++t) {
        acc += eq_half_to_float(ptrs[t][px * step + ch]) *
               eq_half_to_float(weights[(int64_t)t * channels + ch]);
      }
      out[(int64_t)px * channels + ch] = eq_float_to_half(clamp_f16_ref(acc, lo, hi));
    }
  }
}

EQ_F16_DW_KERNELS(scalar, eq_f16_dwconv__scalar)

const eq_kernel_info eq_ref_f16_kernels[] = {
    EQ_F16_ELEMENTWISE_ENTRIES(scalar, 0),
    EQ_F16_GEMM_ENTRIES(scalar, 0),
    EQ_F16_DW_ENTRIES(scalar, 0),
    {NULL, NULL, 0, 0},
};
