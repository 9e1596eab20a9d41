/* Portable microkernels behind the packed-weight GEMM and depthwise kernels (conv2d_f32_gemm,
 * conv2d_f32_igemm, fully_connected_f32_gemm, depthwise_conv2d_f32_dw): what runs where no ISA
 * variant exists or EDGEQ_ISA=scalar, written as plainly as the reference kernels. */
#include "edgeq/dispatch.h"
#include "edgeq/f32_gemm.h"
#include "edgeq/params/conv.h"

static inline float clampf(float v, float lo, float hi) { return v < lo ? lo : (v > hi ? hi : v); }

void eq_f32_gemm_4x16__scalar(int32_t mr, int32_t nc, int32_t taps, int32_t kc,
                              const float *const *a, const float *w, float *c, int64_t c_stride,
                              const eq_f32_gemm_epilogue *ep) {
  for (int32_t i = 0; i < mr; ++i) {
    float acc[EQ_F32_GEMM_NR];
    for (int32_t j = 0; j < EQ_F32_GEMM_NR; ++j) acc[j] = w[j];
    const float *wk = w + EQ_F32_GEMM_NR;
    for (int32_t t = 0; t < taps; ++t) {
      const float *x = a[t * 4 + i];
      for (int32_t k = 0; k < kc; ++k, wk += EQ_F32_GEMM_NR) {
        for (int32_t j = 0; j < EQ_F32_GEMM_NR; ++j) acc[j] += x[k] * wk[j];
      }
    }
    const float *res = ep->residual ? ep->residual + i * c_stride : NULL;
    for (int32_t j = 0; j < nc; ++j) {
      const float v = clampf(res ? acc[j] + res[j] : acc[j], ep->lo, ep->hi);
      c[i * c_stride + j] = eq_f32_gemm_activate(v, ep, j);
    }
  }
}

void eq_f32_dwconv__scalar(int32_t pixels, int32_t channels, int32_t taps,
                           const float *const *ptrs, const float *weights, const float *bias,
                           float *out, float lo, float hi) {
  for (int32_t px = 0; px < pixels; ++px, ptrs += taps, out += channels) {
    for (int32_t ch = 0; ch < channels; ++ch) {
      float acc = 0.0f;
      for (int32_t t = 0; t < taps; ++t) acc += ptrs[t][ch] * weights[t * channels + ch];
      out[ch] = clampf(acc + bias[ch], lo, hi);
    }
  }
}

void eq_f32_dwconv_row__scalar(const eq_conv_params *p, const float *const *rows, int32_t ox0,
                               int32_t ox1, const float *weights, const float *bias,
                               float *out_row) {
  const int32_t channels = p->in_c;
  for (int32_t ox = ox0; ox < ox1; ++ox) {
    const int64_t ix0 = (int64_t)ox * p->stride_w - p->pad_left;
    float *out = out_row + (int64_t)ox * channels;
    for (int32_t ch = 0; ch < channels; ++ch) {
      float acc = 0.0f;
      for (int32_t ky = 0; ky < p->k_h; ++ky) {
        for (int32_t kx = 0; kx < p->k_w; ++kx) {
          const float *x = rows[ky] + (ix0 + (int64_t)kx * p->dilation_w) * channels;
          acc += x[ch] * weights[(ky * p->k_w + kx) * channels + ch];
        }
      }
      out[ch] = clampf(acc + bias[ch], p->act_min, p->act_max);
    }
  }
}

EQ_F32_GEMM_KERNELS(scalar, eq_f32_gemm_4x16__scalar, 4, eq_f32_dwconv__scalar,
                    eq_f32_dwconv_row__scalar)

const eq_kernel_info eq_ref_f32_gemm_kernels[] = {
    EQ_F32_GEMM_ENTRIES(scalar, 0),
    {NULL, NULL, 0, 0},
};
