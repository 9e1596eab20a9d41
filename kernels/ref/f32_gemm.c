/* Portable microkernels behind the packed-weight GEMM and depthwise kernels (conv2d_f32_gemm,
 * conv2d_f32_igemm, fully_connected_f32_gemm, depthwise_conv2d_f32_dw, conv2d_f32_direct):
 * what runs where no ISA variant exists or EDGEQ_ISA=scalar, written as plainly as the
 * reference kernels. */
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
                           float *out, float lo, float hi, int32_t hard_swish) {
  for (int32_t px = 0; px < pixels; ++px, ptrs += taps, out += channels) {
    for (int32_t ch = 0; ch < channels; ++ch) {
      float acc = 0.0f;
      for (int32_t t = 0; t < taps; ++t) acc += ptrs[t][ch] * weights[t * channels + ch];
      const float v = clampf(acc + bias[ch], lo, hi);
      out[ch] = hard_swish ? eq_hard_swish_f32(v) : v;
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
      const float v = clampf(acc + bias[ch], p->act_min, p->act_max);
      out[ch] = p->hard_swish ? eq_hard_swish_f32(v) : v;
    }
  }
}

/* Output pixel by output pixel: its bias, then its taps in increasing k (the packed order). */
static void conv_direct__scalar(const eq_conv_params *p, const float *in, int32_t oy0,
                                int32_t oy1, const float *packed, float *out) {
  const int64_t c = p->in_c, depth = (int64_t)p->k_h * p->k_w * c;
  const int64_t block_stride = (depth + 1) * EQ_F32_GEMM_NR;
  for (int32_t oy = oy0; oy < oy1; ++oy) {
    for (int32_t ox = 0; ox < p->out_w; ++ox) {
      float *o = out + ((int64_t)oy * p->out_w + ox) * p->out_c;
      for (int32_t oc = 0; oc < p->out_c; ++oc) {
        const float *w = packed + (oc / EQ_F32_GEMM_NR) * block_stride + oc % EQ_F32_GEMM_NR;
        float acc = w[0];
        w += EQ_F32_GEMM_NR;
        for (int32_t ky = 0; ky < p->k_h; ++ky) {
          const int64_t iy = (int64_t)oy * p->stride_h + (int64_t)ky * p->dilation_h;
          for (int32_t kx = 0; kx < p->k_w; ++kx) {
            const int64_t ix = (int64_t)ox * p->stride_w + (int64_t)kx * p->dilation_w;
            const float *x = in + (iy * p->in_w + ix) * c;
            for (int64_t ic = 0; ic < c; ++ic, w += EQ_F32_GEMM_NR) acc += x[ic] * w[0];
          }
        }
        o[oc] = clampf(acc, p->act_min, p->act_max);
      }
    }
  }
}

static int conv2d_f32_direct_scalar(const eq_node *node, eq_ctx *ctx) {
  return eq_f32_conv2d_direct(node, ctx, conv_direct__scalar);
}

EQ_F32_GEMM_KERNELS(scalar, eq_f32_gemm_4x16__scalar, 4, eq_f32_dwconv__scalar,
                    eq_f32_dwconv_row__scalar)

const eq_kernel_info eq_ref_f32_gemm_kernels[] = {
    EQ_F32_GEMM_ENTRIES(scalar, 0),
    {"conv2d_f32_direct", conv2d_f32_direct_scalar, sizeof(eq_conv_params), 0},
    {NULL, NULL, 0, 0},
};
