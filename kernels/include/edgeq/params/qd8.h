/* QD8: float32 activations quantized to int8 at run time, times int8 per-channel weights
 * packed at prepare (edgeq/ops/qd8.py), with a float32 epilogue. The arithmetic follows what
 * XNNPack does, since LiteRT runs dynamic-range models through it:
 *
 *   row quantization  rmin = min(0, min x), rmax = max(0, max x), q = 255 / (rmax - rmin)
 *                     (1 when equal), zero point from the side whose error is smaller, clamped
 *                     to [-128, 127] and rounded to nearest even; x_q = sat8(rint(x * q) + zp)
 *                     with x * q the float32 product; the row's scale is 1 / q. Depthwise convs
 *                     alone round the exact product instead (eq_qd8_round_product): LiteRT
 *                     does each, measured at ties on the shared TinyBERT (FC) and MobileNetV3
 *                     (depthwise).
 *   product           acc[n] = sum_k x_q[k] * w[n][k] - zp * ksum[n]   (exact, int32)
 *   epilogue          out = clamp(float(acc) * (scale * w_scale[n]) + bias[n], act_min, act_max)
 *                     (two roundings, no FMA; given the same inputs, LiteRT's QD8 layers of
 *                     the shared models agree with it to the last bit or within one ulp)
 *
 * A "row" is one row of the FC input, or one whole image for CONV_2D / DEPTHWISE_CONV_2D
 * (whose padding then reads as that image's zero point, i.e. as real 0); a pointwise CONV_2D
 * is run as an FC over its pixels, one row per pixel, as LiteRT does (edgeq/ops/qd8.py).
 *
 * Packed GEMM weights (the c4 layout: every x86 and NEON variant and the reference;
 * EQ_QD8_NR = 16 output channels per block, EQ_QD8_KR = 4 consecutive k per channel):
 *   kc = K rounded up to a multiple of 4; blocks = ceil(N / 16); per block, in this order:
 *     int32 ksum[16]                 sum over k of the channel's weights
 *     int8  w[kc / 4][16][4]         w[g][j][i] = weight of channel 16 * block + j at k = 4g + i
 *     float scale[16]                per-channel weight scale
 *     float bias[16]                 0 where the op has no bias
 *   Channels past N and k past K are zero (scale and bias too), so kernels never branch on
 *   them inside the loop; block stride = EQ_QD8_BLOCK_BYTES(kc).
 * A 4-byte group of one channel is what vpdpbusd / sdot multiply with one 4-byte group of an
 * activation row; the AVX2 kernel sign-extends the same bytes to int16 for vpmaddwd.
 */
#ifndef EDGEQ_PARAMS_QD8_H
#define EDGEQ_PARAMS_QD8_H
#include <math.h>
#include <stddef.h>
#include <stdint.h>

#include "edgeq/kernel.h"

#define EQ_QD8_NR 16
#define EQ_QD8_KR 4
#define EQ_QD8_MAX_MR 16
#define EQ_QD8_BLOCK_BYTES(kc) ((size_t)EQ_QD8_NR * (4 + (size_t)(kc) + 4 + 4))

/* How one row (or image) was quantized. */
typedef struct eq_qd8_row_quant {
  int32_t zero_point;
  float scale;  /* 1 / q: real = scale * (x_q - zero_point) */
} eq_qd8_row_quant;

/* rint(x * q) of the exact product: x and q have 24-bit significands, so the double product is
 * exact and one rounding to an integer follows. */
static inline float eq_qd8_round_product(float x, float q) {
  return (float)nearbyint((double)x * (double)q);
}

/* The SIMD form: fma(x, q, 1.5 * 2^23) rounds the exact x * q + 1.5 * 2^23 once to a float whose
 * ulp is 1, so its low bits hold rint(x * q) (for |x * q| < 2^22, true within a row). */
#define EQ_QD8_MAGIC_BIAS 12582912.0f
#define EQ_QD8_MAGIC_BITS 0x4B400000

/* Quantize x[0, n) into q[0, n) and report how (one row; n >= 1); bytes as the level's a_xor
 * says. */
typedef void (*eq_qd8_quantize_fn)(size_t n, const float *x, int8_t *q, eq_qd8_row_quant *quant);

/* Optional: `rows` rows of n floats, x_stride floats apart, each quantized as eq_qd8_quantize_fn
 * does into q + r * q_stride and quant[r] (a level may then share the per-row work: the
 * FULLY_CONNECTED driver, whose rows are a pointwise conv's pixels, calls it on its rows). */
typedef void (*eq_qd8_quantize_rows_fn)(size_t rows, size_t n, const float *x, size_t x_stride,
                                        int8_t *q, size_t q_stride, eq_qd8_row_quant *quant);

/* The c8 variant (kernels named `..._c8`, for smmla): the same blocks with KR = 8, i.e.
 * kc = K rounded up to 8 and w[kc / 8][16][8]. Prepare packs c8 when this process will run a
 * `_c8` kernel (edgeq/ops/qd8.py). */

/* out rows i < mr (mr <= the kernel's MR), columns j < nc: the product of activation rows
 * a + i * a_stride (kc bytes each, kc a multiple of EQ_QD8_KR, bytes past K arbitrary; x_q as
 * int8, or x_q + 128 as uint8 where the level's a_xor says so) with the
 * packed weights (blocks of EQ_QD8_NR channels, as above; nc need not be a multiple of it),
 * row i quantized as quant[i], written to c + i * c_stride (floats). */
typedef void (*eq_qd8_gemm_fn)(size_t mr, size_t nc, size_t kc, const int8_t *a, size_t a_stride,
                               const void *packed_w, float *c, size_t c_stride,
                               const eq_qd8_row_quant *quant, float act_min, float act_max);

/* Depthwise: the image is quantized and kept on the integer grid, x_q - zero_point as floats
 * (exact), so that the int32 sums of the spec can be formed by float FMAs, exactly, in any
 * order: |sum| <= taps * 255 * 128 < 2^24 for taps <= EQ_QD8_MAX_DW_TAPS. */
#define EQ_QD8_MAX_DW_TAPS 512
typedef void (*eq_qd8_quantize_grid_fn)(size_t n, const float *x, float *grid,
                                        eq_qd8_row_quant *quant);

/* One output pixel of a depthwise conv (depth multiplier 1): rows[t] is the grid pixel under
 * tap t (NULL in the padding, which adds nothing), weights [taps][channels] the int8 weights as
 * floats; out[c] = clamp(sum_t rows[t][c] * weights[t][c] * (scale * w_scale[c]) + bias[c]),
 * the product as in the GEMM epilogue. */
typedef void (*eq_qd8_dwconv_fn)(size_t channels, size_t taps, const float *const *rows,
                                 const float *weights, float *out, float scale,
                                 const float *w_scale, const float *bias, float act_min,
                                 float act_max);

/* Optional: a run of `pixels` consecutive output pixels of one row whose taps all lie inside the
 * image along x. rows[t] is tap t's grid pixel for the first pixel (NULL, for the whole run, in
 * the padding above or below), each next pixel's taps lie `step` floats further on, and its
 * outputs `channels` further on; each pixel as eq_qd8_dwconv_fn computes it. A level without
 * one (NULL) gets dwconv called per pixel, which is also the reference. */
typedef void (*eq_qd8_dwconv_run_fn)(size_t pixels, size_t step, size_t channels, size_t taps,
                                     const float *const *rows, const float *weights, float *out,
                                     float scale, const float *w_scale, const float *bias,
                                     float act_min, float act_max);

/* The microkernels one ISA level provides; the op drivers (kernels/ref/qd8.c) run on them. */
typedef struct eq_qd8_ukernels {
  eq_qd8_gemm_fn gemm;
  int32_t mr;     /* rows per gemm call, <= EQ_QD8_MAX_MR */
  uint8_t a_xor;  /* what this level's quantize xors into every activation byte, and so what
                     the gemm expects: 0x80 stores x_q + 128 as uint8 (for u8 x s8 dot
                     products), 0 stores x_q */
  eq_qd8_quantize_fn quantize;
  eq_qd8_dwconv_fn dwconv;
  eq_qd8_quantize_grid_fn quantize_grid;
  eq_qd8_dwconv_run_fn dwconv_run;  /* may be NULL */
  int32_t chunk_blocks;  /* weight blocks per GEMM call (one task); 0: the drivers' default */
  eq_qd8_quantize_rows_fn quantize_rows;  /* may be NULL: quantize called per row */
} eq_qd8_ukernels;

/* Node parameters of fully_connected_qd8 (also BATCH_MATMUL with a constant 2-D rhs).
 * Inputs: x [rows, depth] float, packed weights (uint8 blob). Scratch: rows * kc int8, then
 * rows eq_qd8_row_quant. */
typedef struct eq_qd8_fc_params {
  int32_t rows, depth, units, kc;
  float act_min, act_max;
} eq_qd8_fc_params;

/* Node parameters of conv2d_qd8: eq_conv_params' geometry plus kc = k_h * k_w * in_c rounded up
 * to EQ_QD8_KR. Inputs: x NHWC float, packed weights. Scratch: one eq_qd8_row_quant (64 bytes),
 * the quantized image (in_h * in_w * in_c, 64-byte rounded), the image framed by its zero point
 * as far as the filter reaches (64-byte rounded; qd8_framed_bytes in kernels/ref/qd8.c), then
 * out_h * out_w * kc for the im2col rows. */
typedef struct eq_qd8_conv_params {
  int32_t batch, in_h, in_w, in_c, out_h, out_w, out_c, k_h, k_w;
  int32_t stride_h, stride_w, dilation_h, dilation_w, pad_top, pad_left;
  int32_t kc;
  int32_t depth_multiplier;  /* depthwise only */
  float act_min, act_max;
} eq_qd8_conv_params;

/* depthwise_conv2d_qd8 uses eq_qd8_conv_params too (kc unused). Inputs: x NHWC float,
 * weights [k_h * k_w, out_c] (int8 values as floats), scale float [out_c], bias float [out_c].
 * Scratch: the image on the integer grid (in_h * in_w * in_c floats). */

/* fp16 tensors (precision="fp16"): every QD8 node kernel also reads an fp16 input and writes an
 * fp16 output, telling them by the tensors' dtype; the same arithmetic on the fp16 values, the
 * result rounded to fp16 once. An fp16 input of fully_connected_qd8 / conv2d_qd8 is converted to
 * float32 into scratch after the scratch above (rows * depth or in_h * in_w * in_c floats, at a
 * 64-byte boundary); depthwise converts into its grid. Depthwise with fp16 output keeps one
 * output pixel on the stack: out_c <= EQ_QD8_MAX_F16_DW_CHANNELS (the planner checks). The
 * table names them `<kernel>_f16` too, so a plan says which storage it uses. */
#define EQ_QD8_MAX_F16_DW_CHANNELS 2048

int eq_qd8_fully_connected(const eq_node *node, eq_ctx *ctx, const eq_qd8_ukernels *uk);
int eq_qd8_conv2d(const eq_node *node, eq_ctx *ctx, const eq_qd8_ukernels *uk);
int eq_qd8_depthwise_conv2d(const eq_node *node, eq_ctx *ctx, const eq_qd8_ukernels *uk);

/* Every ISA level runs the same three node kernels on its own microkernels: a file defines its
 * eq_qd8_ukernels, then EQ_QD8_NODE_KERNELS(that) and, in its table, EQ_QD8_TABLE_ENTRIES(isa). */
#define EQ_QD8_NODE_KERNELS(uk)                                                  \
  static int fully_connected_qd8(const eq_node *node, eq_ctx *ctx) {              \
    return eq_qd8_fully_connected(node, ctx, &(uk));                              \
  }                                                                               \
  static int conv2d_qd8(const eq_node *node, eq_ctx *ctx) {                       \
    return eq_qd8_conv2d(node, ctx, &(uk));                                       \
  }                                                                               \
  static int depthwise_conv2d_qd8(const eq_node *node, eq_ctx *ctx) {             \
    return eq_qd8_depthwise_conv2d(node, ctx, &(uk));                             \
  }
#define EQ_QD8_TABLE_ENTRIES(isa)                                                      \
  {"fully_connected_qd8", fully_connected_qd8, sizeof(eq_qd8_fc_params), (isa)},       \
  {"conv2d_qd8", conv2d_qd8, sizeof(eq_qd8_conv_params), (isa)},                       \
  {"depthwise_conv2d_qd8", depthwise_conv2d_qd8, sizeof(eq_qd8_conv_params), (isa)},     \
  {"fully_connected_qd8_f16", fully_connected_qd8, sizeof(eq_qd8_fc_params), (isa)},   \
  {"conv2d_qd8_f16", conv2d_qd8, sizeof(eq_qd8_conv_params), (isa)},                   \
  {"depthwise_conv2d_qd8_f16", depthwise_conv2d_qd8, sizeof(eq_qd8_conv_params), (isa)}

/* The scalar microkernels (the spec every ISA variant is tested against). */
void eq_qd8_quantize__scalar(size_t n, const float *x, int8_t *q, eq_qd8_row_quant *quant);
void eq_qd8_quantize_grid__scalar(size_t n, const float *x, float *grid,
                                  eq_qd8_row_quant *quant);
void eq_qd8_dwconv__scalar(size_t channels, size_t taps, const float *const *rows,
                           const float *weights, float *out, float scale, const float *w_scale,
                           const float *bias, float act_min, float act_max);
/* The quantization parameters of a row with this minimum and maximum; returns q, the factor
 * that quantizes (x_q = sat8(rint(x * q) + zero_point)). Inline, as the quantizers of every ISA
 * call it once per row (a QD8 FULLY_CONNECTED quantizes each of its rows: 64 for tiny_bert). */
static inline float eq_qd8_quant_params(float min, float max, eq_qd8_row_quant *quant) {
  const float qmin = -128.0f, qmax = 127.0f;
  const float rmin = min < 0.0f ? min : 0.0f, rmax = max > 0.0f ? max : 0.0f;
  const float q = rmin == rmax ? 1.0f : (qmax - qmin) / (rmax - rmin);
  const float rmin_q = rmin * q, rmax_q = rmax * q;
  /* Both sides give the same zero point in exact arithmetic; take the one whose rounding
   * error is smaller (the sum below compares |qmin + rmin_q| with |qmax + rmax_q|). */
  float zp = (qmin + rmin_q) + (qmax + rmax_q) > 0.0f ? qmin - rmin_q : qmax - rmax_q;
  zp = zp < qmin ? qmin : (zp > qmax ? qmax : zp);
  quant->zero_point = (int32_t)nearbyintf(zp);  /* default rounding: to nearest, ties to even */
  quant->scale = 1.0f / q;
  return q;
}

#endif
