/* The exported f32 depthwise pixel and row microkernels of an x86 ISA file (f32-dwconv__avx2.c,
 * f32-dwconv__avx512.c), from that file's always-inline templates
 *   dw_pixels(pixels, channels, taps, ptrs, weights, bias, out, lo, hi, hs) and
 *   dw_row(p, rows, ox0, ox1, weights, bias, out_row, k_h, k_w, hs):
 * 3x3 and 5x5 compiled with their tap loops unrolled, each with the fused HARD_SWISH (hs) and
 * without it, so that neither the clamp-only path nor the fused one tests the flag per output. */
#ifndef EDGEQ_X86_F32_DWCONV_ENTRIES_H
#define EDGEQ_X86_F32_DWCONV_ENTRIES_H

#define EQ_DW_PIXELS_HS(hs)                                                                 \
  do {                                                                                      \
    if (taps == 9) {                                                                        \
      dw_pixels(pixels, channels, 9, ptrs, weights, bias, out, lo, hi, hs);                 \
    } else if (taps == 25) {                                                                \
      dw_pixels(pixels, channels, 25, ptrs, weights, bias, out, lo, hi, hs);                \
    } else {                                                                                \
      dw_pixels(pixels, channels, taps, ptrs, weights, bias, out, lo, hi, hs);              \
    }                                                                                       \
  } while (0)

#define EQ_DW_ROW_HS(hs)                                                                    \
  do {                                                                                      \
    if (p->k_h == 3 && p->k_w == 3) {                                                       \
      dw_row(p, rows, ox0, ox1, weights, bias, out_row, 3, 3, hs);                          \
    } else if (p->k_h == 5 && p->k_w == 5) {                                                \
      dw_row(p, rows, ox0, ox1, weights, bias, out_row, 5, 5, hs);                          \
    } else {                                                                                \
      dw_row(p, rows, ox0, ox1, weights, bias, out_row, p->k_h, p->k_w, hs);                \
    }                                                                                       \
  } while (0)

#define EQ_F32_DWCONV_ENTRIES(isa)                                                          \
  void eq_f32_dwconv__##isa(int32_t pixels, int32_t channels, int32_t taps,                 \
                            const float *const *ptrs, const float *weights,                 \
                            const float *bias, float *out, float lo, float hi,              \
                            int32_t hard_swish) {                                           \
    if (hard_swish) {                                                                       \
      EQ_DW_PIXELS_HS(1);                                                                   \
    } else {                                                                                \
      EQ_DW_PIXELS_HS(0);                                                                   \
    }                                                                                       \
  }                                                                                         \
  void eq_f32_dwconv_row__##isa(const eq_conv_params *p, const float *const *rows,          \
                                int32_t ox0, int32_t ox1, const float *weights,             \
                                const float *bias, float *out_row) {                        \
    if (p->hard_swish) {                                                                    \
      EQ_DW_ROW_HS(1);                                                                      \
    } else {                                                                                \
      EQ_DW_ROW_HS(0);                                                                      \
    }                                                                                       \
  }

#endif
