/* f32 direct convolution of few-channel inputs, AVX-512F: a keyword spotter's first layer
 * (a 10x4 filter on a one-channel spectrogram, 64 outputs). A run of up to 6 output pixels of
 * one row, for up to 64 output channels (four blocks of 16), sums its taps straight from the
 * zero-padded input: each tap loads one weight vector per block and broadcasts one input value
 * per pixel into 4 x 6 accumulators. The indirect GEMM spent two loads (a tap pointer and the
 * value) per broadcast on these one-channel taps and ran the layer at half the FMA peak.
 *
 * Weights are the packed GEMM weights (edgeq/f32_gemm.h), K = KH * KW * C in the filter's
 * [ky][kx][c] order; every output starts from its bias and adds its taps in increasing k, as
 * the GEMM kernels do. */
#include <immintrin.h>

#include "edgeq/f32_gemm.h"
#include "edgeq/params/conv.h"

#define RUN_MAX 6

static inline __attribute__((always_inline)) void direct_run(
    const int32_t pixels, const int32_t blocks, const int64_t c, const eq_conv_params *p,
    const float *in,
    int32_t oy, int32_t ox, const float *packed, int64_t block_stride, __mmask16 last,
    __m512 vlo, __m512 vhi, float *o) {
  const int64_t row = (int64_t)p->in_w * c, step = (int64_t)p->stride_w * c;
  const int64_t tap_step = (int64_t)p->dilation_w * c;
  __m512 acc[4][RUN_MAX];
#pragma GCC unroll 4
  for (int32_t b = 0; b < blocks; ++b) {
    const __m512 bias = _mm512_loadu_ps(packed + b * block_stride);
#pragma GCC unroll 6
    for (int32_t i = 0; i < pixels; ++i) acc[b][i] = bias;
  }
  const float *w = packed + EQ_F32_GEMM_NR;
  for (int32_t ky = 0; ky < p->k_h; ++ky) {
    const float *x_row = in + ((int64_t)oy * p->stride_h + (int64_t)ky * p->dilation_h) * row +
                         (int64_t)ox * step;
    for (int32_t kx = 0; kx < p->k_w; ++kx) {
      const float *x = x_row + kx * tap_step;
      for (int64_t ic = 0; ic < c; ++ic, w += EQ_F32_GEMM_NR) {
        __m512 wv[4];
#pragma GCC unroll 4
        for (int32_t b = 0; b < blocks; ++b) wv[b] = _mm512_loadu_ps(w + b * block_stride);
#pragma GCC unroll 6
        for (int32_t i = 0; i < pixels; ++i) {
          const __m512 xv = _mm512_set1_ps(x[i * step + ic]);
#pragma GCC unroll 4
          for (int32_t b = 0; b < blocks; ++b)
            acc[b][i] = _mm512_fmadd_ps(xv, wv[b], acc[b][i]);
        }
      }
    }
  }
  const int64_t out_c = p->out_c;
#pragma GCC unroll 6
  for (int32_t i = 0; i < pixels; ++i) {
#pragma GCC unroll 4
    for (int32_t b = 0; b < blocks; ++b) {
      const __m512 v = _mm512_min_ps(vhi, _mm512_max_ps(vlo, acc[b][i]));
      if (b + 1 < blocks) {
        _mm512_storeu_ps(o + i * out_c + 16 * b, v);
      } else {
        _mm512_mask_storeu_ps(o + i * out_c + 16 * b, last, v);
      }
    }
  }
}

#define RUN(pixels, blocks) \
  direct_run(pixels, blocks, c, p, in, oy, ox, w, block_stride, last, vlo, vhi, o)
#define RUN_BLOCKS(pixels)            \
  do {                                \
    switch (blocks) {                 \
      case 4: RUN(pixels, 4); break;  \
      case 3: RUN(pixels, 3); break;  \
      case 2: RUN(pixels, 2); break;  \
      default: RUN(pixels, 1); break; \
    }                                 \
  } while (0)

static inline __attribute__((always_inline)) void direct_rows(
    const int64_t c, const eq_conv_params *p, const float *in, int32_t oy0, int32_t oy1,
    const float *packed, float *out) {
  const int64_t depth = (int64_t)p->k_h * p->k_w * p->in_c;
  const int64_t block_stride = (depth + 1) * EQ_F32_GEMM_NR;
  const __m512 vlo = _mm512_set1_ps(p->act_min), vhi = _mm512_set1_ps(p->act_max);
  for (int32_t oy = oy0; oy < oy1; ++oy) {
    float *out_row = out + (int64_t)oy * p->out_w * p->out_c;
    for (int32_t oc = 0; oc < p->out_c; oc += 64) {
      const int32_t left = p->out_c - oc < 64 ? p->out_c - oc : 64;
      const int32_t blocks = (left + 15) / 16, tail = left - 16 * (blocks - 1);
      const __mmask16 last = (__mmask16)(tail == 16 ? 0xffffu : (1u << tail) - 1u);
      const float *w = packed + (int64_t)(oc / 16) * block_stride;
      int32_t ox = 0;
      for (; ox + RUN_MAX <= p->out_w; ox += RUN_MAX) {
        float *o = out_row + (int64_t)ox * p->out_c + oc;
        RUN_BLOCKS(6);
      }
      float *o = out_row + (int64_t)ox * p->out_c + oc;
      switch (p->out_w - ox) {
        case 5: RUN_BLOCKS(5); break;
        case 4: RUN_BLOCKS(4); break;
        case 3: RUN_BLOCKS(3); break;
        case 2: RUN_BLOCKS(2); break;
        case 1: RUN_BLOCKS(1); break;
        default: break;
      }
    }
  }
}

/* Output rows [oy0, oy1) of one image; p is the geometry of its zero-padded copy `in` (no
 * padding left to apply). One channel (a filter row's taps side by side in the input) gets
 * its own copy of the loops. */
void eq_f32_conv_direct__avx512(const eq_conv_params *p, const float *in, int32_t oy0,
                                int32_t oy1, const float *packed, float *out) {
  if (p->in_c == 1) {
    direct_rows(1, p, in, oy0, oy1, packed, out);
  } else {
    direct_rows(p->in_c, p, in, oy0, oy1, packed, out);
  }
}
