/* The exported f32 depthwise pixel, row and whole-row microkernels of an x86 ISA file
 * (f32-dwconv__avx2.c, f32-dwconv__avx512.c), from that file's always-inline templates
 *   dw_pixels(pixels, channels, taps, ptrs, weights, bias, out, lo, hi, hs),
 *   dw_row(p, rows, ox0, ox1, weights, bias, out_row, k_h, k_w, hs) and
 *   image_rows(p, in, oy0, oy1, weights, bias, out, k_w, stride, hs):
 * 3x3 and 5x5 compiled with their tap loops unrolled (image_rows: 3 or 5 wide at stride 1 or
 * 2), each with the fused HARD_SWISH (hs) and without it, so that neither the clamp-only path
 * nor the fused one tests the flag per output. */
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

/* The last `rest` (1..7) pixels of a row as one run of that many chains: RUN(pixels). */
#define EQ_DW_RUN_REST(rest, RUN) \
  do {                            \
    switch (rest) {               \
      case 7: RUN(7); break;      \
      case 6: RUN(6); break;      \
      case 5: RUN(5); break;      \
      case 4: RUN(4); break;      \
      case 3: RUN(3); break;      \
      case 2: RUN(2); break;      \
      case 1: RUN(1); break;      \
      default: break;             \
    }                             \
  } while (0)

#define EQ_DW_IMAGE_SIZES(hs)                                                               \
  do {                                                                                      \
    if (p->k_w == 3 && p->stride_w == 1) {                                                  \
      image_rows(p, in, oy0, oy1, weights, bias, out, 3, 1, hs);                            \
    } else if (p->k_w == 3) {                                                               \
      image_rows(p, in, oy0, oy1, weights, bias, out, 3, 2, hs);                            \
    } else if (p->stride_w == 1) {                                                          \
      image_rows(p, in, oy0, oy1, weights, bias, out, 5, 1, hs);                            \
    } else {                                                                                \
      image_rows(p, in, oy0, oy1, weights, bias, out, 5, 2, hs);                            \
    }                                                                                       \
  } while (0)

/* The whole-row microkernel (eq_f32_dwconv_image_fn) of the shapes EQ_F32_DWCONV_IMAGE_FITS
 * takes. */
#define EQ_F32_DWCONV_IMAGE_ENTRY(isa)                                                      \
  void eq_f32_dwconv_image__##isa(const eq_conv_params *p, const float *in, int32_t oy0,    \
                                  int32_t oy1, const float *weights, const float *bias,     \
                                  float *out) {                                             \
    if (p->hard_swish) {                                                                    \
      EQ_DW_IMAGE_SIZES(1);                                                                 \
    } else {                                                                                \
      EQ_DW_IMAGE_SIZES(0);                                                                 \
    }                                                                                       \
  }

#endif
