/* Float32 GEMM and depthwise microkernels, and the portable drivers that tile, thread and feed
 * them (kernels/core/f32_drivers.c).
 *
 * Packed GEMM weights (made once at prepare, edgeq/ops/common.py pack_f32_gemm_weights): the N
 * output channels in blocks of EQ_F32_GEMM_NR, each block laid out as NR bias values followed
 * by K rows of NR weights, zero-padded past N. Every ISA reads this one layout, so prepare never
 * needs to know which variant will run.
 *
 * Every output is computed the same way whatever the tile or thread split: it starts from its
 * bias and adds its K products in increasing k, so the thread count never changes a result. */
#ifndef EDGEQ_F32_GEMM_H
#define EDGEQ_F32_GEMM_H
#include <stddef.h>
#include <stdint.h>

#include "edgeq/kernel.h"

#ifdef __cplusplus
extern "C" {
#endif

#define EQ_F32_GEMM_NR 16
/* Tap pointers of one tile live on the stack: tile height x taps at most this many (prepare
 * sends larger filters to the reference kernel; edgeq/ops/conv.py IGEMM_MAX_POINTERS). */
#define EQ_F32_GEMM_MAX_POINTERS 4096
#define EQ_F32_GEMM_MAX_MR 8

/* What a microkernel does to each output after its sums (in this order): adds the residual
 * (an ADD fused after the convolution), clamps to [lo, hi] (the fused activation), then applies
 * PRELU's per-channel slope (x >= 0 ? x : x * slope; a NaN gives x * slope, a NaN too) or,
 * with hard_swish set, x * clamp(x + 3, 0, 6) / 6 (HARD_SWISH's operations in its order, so
 * the fused result is the unfused one bit for bit; a NaN stays NaN). The driver points slope
 * and residual at the tile's first column / output (NULL = none); slopes are zero-padded to a
 * whole number of NR blocks, so a block may load all NR of them; the residual is laid out as c
 * (same c_stride) and read only where c is stored. */
typedef struct eq_f32_gemm_epilogue {
  float lo, hi;
  const float *slope;
  const float *residual;
  int32_t hard_swish;
} eq_f32_gemm_epilogue;

/* Indirect GEMM over one packed NR block w: c[i][0..nc) = epilogue(bias + sum over taps t and
 * k < kc of a[t * MR + i][k] * w[t * kc + k][..]) for rows i < mr. Row i of tap t is read from
 * the pointer a[t * MR + i] (MR = the microkernel's tile height; rows past mr repeat a valid
 * pointer and are computed but not stored). A plain GEMM is one tap; a convolution points its
 * taps at input pixels, or at a zero row where the patch covers padding. */
typedef void (*eq_f32_gemm_fn)(int32_t mr, int32_t nc, int32_t taps, int32_t kc,
                               const float *const *a, const float *w, float *c, int64_t c_stride,
                               const eq_f32_gemm_epilogue *ep);

/* The same GEMM with evenly spaced rows: row i of tap t is read at a[t] + i * a_step (one pointer
 * per tap; rows past mr repeat row mr - 1). A convolution's tile within one output row, its
 * filter rows inside the image, is this: the pixels' filter rows are stride * channels apart. */
typedef void (*eq_f32_gemm_rows_fn)(int32_t mr, int32_t nc, int32_t taps, int32_t kc,
                                    const float *const *a, int64_t a_step, const float *w,
                                    float *c, int64_t c_stride, const eq_f32_gemm_epilogue *ep);

/* Whether the epilogue is the clamp alone (the microkernels' fast path). */
static inline int eq_f32_gemm_clamp_only(const eq_f32_gemm_epilogue *ep) {
  return ep->slope == NULL && ep->residual == NULL && !ep->hard_swish;
}

/* The scalar steps after the clamp. */
static inline float eq_f32_gemm_activate(float v, const eq_f32_gemm_epilogue *ep, int32_t j) {
  if (ep->slope && !(v >= 0.0f)) return v * ep->slope[j];
  if (ep->hard_swish) {
    const float g = v + 3.0f;
    return v * (g < 0.0f ? 0.0f : (g > 6.0f ? 6.0f : g)) / 6.0f;
  }
  return v;
}

/* The epilogue's residual and slope over outputs already stored and clamped to [-inf, inf]
 * (a tile's mr x nc outputs at c): for a microkernel that computes the clamp-only epilogue
 * itself and leaves the rest to this portable pass. */
static inline void eq_f32_gemm_epilogue_pass(int32_t mr, int32_t nc, float *c, int64_t c_stride,
                                             const eq_f32_gemm_epilogue *ep) {
  for (int32_t i = 0; i < mr; ++i) {
    float *row = c + i * c_stride;
    const float *res = ep->residual ? ep->residual + i * c_stride : NULL;
    for (int32_t j = 0; j < nc; ++j) {
      float v = res ? row[j] + res[j] : row[j];
      v = v < ep->lo ? ep->lo : (v > ep->hi ? ep->hi : v);
      row[j] = eq_f32_gemm_activate(v, ep, j);
    }
  }
}

/* A microkernel with a tile of mr rows and nr columns: nr is EQ_F32_GEMM_NR, or a multiple of it
 * when the kernel reads that many consecutive packed blocks (the first at w, the next one block
 * of (taps * kc + 1) * EQ_F32_GEMM_NR floats further), nc then ranging up to nr. `rows`, when
 * not NULL, is its strided entry. */
typedef struct eq_f32_gemm_ukernel {
  eq_f32_gemm_fn fn;
  int32_t mr;
  int32_t nr;
  eq_f32_gemm_rows_fn rows;
} eq_f32_gemm_ukernel;

/* Depthwise microkernel: `pixels` output pixels of `channels` channels, pixel p reading its taps
 * from ptrs[p * taps + t] (a zero row stands in for padding); weights [taps][channels], bias
 * [channels] (never NULL: zeros when the model has none); the clamp [lo, hi], then HARD_SWISH
 * where hard_swish is set (as eq_conv_params.hard_swish, which the row and image microkernels
 * below read from p). */
typedef void (*eq_f32_dwconv_fn)(int32_t pixels, int32_t channels, int32_t taps,
                                 const float *const *ptrs, const float *weights,
                                 const float *bias, float *out, float lo, float hi,
                                 int32_t hard_swish);

/* Depthwise microkernel for the interior of one output row: output pixels [ox0, ox1), whose
 * taps all fall inside the row's width. rows[ky] is input row oy * stride_h - pad_top +
 * ky * dilation_h (a zero row when outside the image); p gives strides, dilations, channels. */
struct eq_conv_params;
typedef void (*eq_f32_dwconv_row_fn)(const struct eq_conv_params *p, const float *const *rows,
                                     int32_t ox0, int32_t ox1, const float *weights,
                                     const float *bias, float *out_row);

/* Depthwise microkernel for whole output rows [oy0, oy1) of one image, its padding included
 * (taps outside the image read as zeros, without a zero row or a padded copy): in_image and
 * out_image are that image's [H, W, C]. Only for the shapes eq_f32_dwconv_image_fits accepts. */
typedef void (*eq_f32_dwconv_image_fn)(const struct eq_conv_params *p, const float *in_image,
                                       int32_t oy0, int32_t oy1, const float *weights,
                                       const float *bias, float *out_image);

/* The shapes an image microkernel takes: 3 or 5 taps wide, stride 1 or 2 across, no dilation
 * across (any height, vertical stride and dilation); but 3x3-wide at stride 2 onto rows 16 or
 * more wide stays with the row kernel, which ran those 3-14% faster (AVX-512, Zen 5:
 * MobileNetV2's 112x112x96 and 56x56x144; narrower maps ran as fast or faster). */
#define EQ_F32_DWCONV_IMAGE_FITS(p)                                                         \
  (((p)->k_w == 3 || (p)->k_w == 5) && ((p)->stride_w == 1 || (p)->stride_w == 2) &&        \
   (p)->dilation_w == 1 && !((p)->k_w == 3 && (p)->stride_w == 2 && (p)->out_w >= 16))

typedef struct eq_f32_dwconv_ukernel {
  eq_f32_dwconv_fn pixels;    /* border pixels (and rows of any shape) */
  eq_f32_dwconv_row_fn row;   /* interior of a row */
  eq_f32_dwconv_image_fn image;  /* whole rows, padding included (NULL: the two above only) */
} eq_f32_dwconv_ukernel;

/* Direct convolution microkernel: output rows [oy0, oy1) of one image of a one-group
 * convolution, p the geometry of the image's zero-padded copy in_image (no padding left),
 * packed the packed GEMM weights of the filter seen as [OC, KH * KW * C]. */
typedef void (*eq_f32_conv_direct_fn)(const struct eq_conv_params *p, const float *in_image,
                                      int32_t oy0, int32_t oy1, const float *packed,
                                      float *out_image);

/* Drivers: each is the body of an eq_kernel_fn, given the ISA's microkernel. */
/* hard_swish: the epilogue's (the `_hswish` kernels). */
int eq_f32_conv2d_gemm(const eq_node *node, eq_ctx *ctx, const eq_f32_gemm_ukernel *uk,
                       int32_t hard_swish);
int eq_f32_conv2d_igemm(const eq_node *node, eq_ctx *ctx, const eq_f32_gemm_ukernel *uk,
                        int32_t hard_swish);
int eq_f32_fully_connected_gemm(const eq_node *node, eq_ctx *ctx, const eq_f32_gemm_ukernel *uk);
/* hard_swish: HARD_SWISH after the clamp (the `depthwise_conv2d_f32_dw_hswish` kernel). */
int eq_f32_depthwise(const eq_node *node, eq_ctx *ctx, const eq_f32_dwconv_ukernel *dw,
                     int32_t hard_swish);
int eq_f32_conv2d_direct(const eq_node *node, eq_ctx *ctx, eq_f32_conv_direct_fn uk);

/* The kernel functions of one ISA, named as prepare asks for them (edgeq/ops/conv.py). */
#define EQ_F32_GEMM_KERNELS(isa, gemm_fn, gemm_mr, ...)                                     \
  EQ_F32_GEMM_KERNELS_TILE(isa, gemm_fn, NULL, gemm_mr, EQ_F32_GEMM_NR, __VA_ARGS__)

/* The same, for a GEMM microkernel whose tile spans gemm_nr columns (several packed blocks),
 * with a strided entry gemm_rows_fn (or NULL). The trailing arguments are the depthwise
 * microkernels in eq_f32_dwconv_ukernel's order (pixels, row, optionally image). */
#define EQ_F32_GEMM_KERNELS_TILE(isa, gemm_fn, gemm_rows_fn, gemm_mr, gemm_nr, ...)         \
  static const eq_f32_gemm_ukernel isa##_gemm = {gemm_fn, gemm_mr, gemm_nr, gemm_rows_fn}; \
  static const eq_f32_dwconv_ukernel isa##_dw = {__VA_ARGS__};                             \
  static int conv2d_f32_gemm_##isa(const eq_node *n, eq_ctx *c) {                          \
    return eq_f32_conv2d_gemm(n, c, &isa##_gemm, 0);                                       \
  }                                                                                        \
  static int conv2d_f32_igemm_##isa(const eq_node *n, eq_ctx *c) {                         \
    return eq_f32_conv2d_igemm(n, c, &isa##_gemm, 0);                                      \
  }                                                                                        \
  static int conv2d_f32_gemm_hswish_##isa(const eq_node *n, eq_ctx *c) {                   \
    return eq_f32_conv2d_gemm(n, c, &isa##_gemm, 1);                                       \
  }                                                                                        \
  static int conv2d_f32_igemm_hswish_##isa(const eq_node *n, eq_ctx *c) {                  \
    return eq_f32_conv2d_igemm(n, c, &isa##_gemm, 1);                                      \
  }                                                                                        \
  static int fully_connected_f32_gemm_##isa(const eq_node *n, eq_ctx *c) {                 \
    return eq_f32_fully_connected_gemm(n, c, &isa##_gemm);                                 \
  }                                                                                        \
  static int depthwise_conv2d_f32_dw_##isa(const eq_node *n, eq_ctx *c) {                  \
    return eq_f32_depthwise(n, c, &isa##_dw, 0);                                           \
  }                                                                                        \
  static int depthwise_conv2d_f32_dw_hswish_##isa(const eq_node *n, eq_ctx *c) {           \
    return eq_f32_depthwise(n, c, &isa##_dw, 1);                                           \
  }

/* Table entries for the kernels above, needing ISA bits `bits`. The `_residual` names are the
 * same kernels given a residual input (an activation: edgeq/ops/conv.py keeps such calls apart
 * from the fp16 twins, which would not slice it); `_hswish` ones end in HARD_SWISH (no fp16
 * twin either). */
#define EQ_F32_GEMM_ENTRIES(isa, bits)                                                     \
  {"conv2d_f32_gemm", conv2d_f32_gemm_##isa, sizeof(eq_conv_params), bits},                \
  {"conv2d_f32_igemm", conv2d_f32_igemm_##isa, sizeof(eq_conv_params), bits},              \
  {"conv2d_f32_gemm_residual", conv2d_f32_gemm_##isa, sizeof(eq_conv_params), bits},       \
  {"conv2d_f32_igemm_residual", conv2d_f32_igemm_##isa, sizeof(eq_conv_params), bits},     \
  {"conv2d_f32_gemm_hswish", conv2d_f32_gemm_hswish_##isa, sizeof(eq_conv_params), bits},  \
  {"conv2d_f32_igemm_hswish", conv2d_f32_igemm_hswish_##isa, sizeof(eq_conv_params), bits},\
  {"fully_connected_f32_gemm", fully_connected_f32_gemm_##isa, sizeof(eq_fc_params), bits},\
  {"depthwise_conv2d_f32_dw", depthwise_conv2d_f32_dw_##isa, sizeof(eq_conv_params), bits},\
  {"depthwise_conv2d_f32_dw_hswish", depthwise_conv2d_f32_dw_hswish_##isa,                  \
   sizeof(eq_conv_params), bits}

/* Microkernels, one per ISA file (kernels/ref, kernels/x86, kernels/arm). */
void eq_f32_gemm_4x16__scalar(int32_t, int32_t, int32_t, int32_t, const float *const *,
                              const float *, float *, int64_t, const eq_f32_gemm_epilogue *);
void eq_f32_dwconv__scalar(int32_t, int32_t, int32_t, const float *const *, const float *,
                           const float *, float *, float, float, int32_t);
void eq_f32_dwconv_row__scalar(const struct eq_conv_params *, const float *const *, int32_t,
                               int32_t, const float *, const float *, float *);
#if defined(__x86_64__) || defined(_M_X64)
void eq_f32_gemm_6x16__avx2(int32_t, int32_t, int32_t, int32_t, const float *const *,
                            const float *, float *, int64_t, const eq_f32_gemm_epilogue *);
/* Walking over up to EQ_F32_GEMM_AVX2_WALK_NR columns (kernels/x86/f32-gemm-6x16__avx2.c). */
#define EQ_F32_GEMM_AVX2_WALK_NR (64 * EQ_F32_GEMM_NR)
void eq_f32_gemm_6xN__avx2(int32_t, int32_t, int32_t, int32_t, const float *const *,
                           const float *, float *, int64_t, const eq_f32_gemm_epilogue *);
void eq_f32_gemm_rows_6xN__avx2(int32_t, int32_t, int32_t, int32_t, const float *const *,
                                int64_t, const float *, float *, int64_t,
                                const eq_f32_gemm_epilogue *);
void eq_f32_dwconv__avx2(int32_t, int32_t, int32_t, const float *const *, const float *,
                         const float *, float *, float, float, int32_t);
void eq_f32_dwconv_row__avx2(const struct eq_conv_params *, const float *const *, int32_t,
                             int32_t, const float *, const float *, float *);
void eq_f32_dwconv_image__avx2(const struct eq_conv_params *, const float *, int32_t, int32_t,
                               const float *, const float *, float *);
void eq_f32_gemm_7x16__avx512(int32_t, int32_t, int32_t, int32_t, const float *const *,
                              const float *, float *, int64_t, const eq_f32_gemm_epilogue *);
void eq_f32_gemm_7x32__avx512(int32_t, int32_t, int32_t, int32_t, const float *const *,
                              const float *, float *, int64_t, const eq_f32_gemm_epilogue *);
void eq_f32_gemm_rows_7x32__avx512(int32_t, int32_t, int32_t, int32_t, const float *const *,
                                   int64_t, const float *, float *, int64_t,
                                   const eq_f32_gemm_epilogue *);
void eq_f32_dwconv__avx512(int32_t, int32_t, int32_t, const float *const *, const float *,
                           const float *, float *, float, float, int32_t);
void eq_f32_dwconv_row__avx512(const struct eq_conv_params *, const float *const *, int32_t,
                               int32_t, const float *, const float *, float *);
void eq_f32_conv_direct__avx512(const struct eq_conv_params *, const float *, int32_t, int32_t,
                                const float *, float *);
void eq_f32_dwconv_image__avx512(const struct eq_conv_params *, const float *, int32_t, int32_t,
                                 const float *, const float *, float *);
#endif
#if defined(__aarch64__)
void eq_f32_gemm_6x16__neon(int32_t, int32_t, int32_t, int32_t, const float *const *,
                            const float *, float *, int64_t, const eq_f32_gemm_epilogue *);
void eq_f32_dwconv__neon(int32_t, int32_t, int32_t, const float *const *, const float *,
                         const float *, float *, float, float, int32_t);
void eq_f32_dwconv_row__neon(const struct eq_conv_params *, const float *const *, int32_t,
                             int32_t, const float *, const float *, float *);
#endif

#ifdef __cplusplus
}
#endif
#endif
