/* Half precision (IEEE binary16) storage for float activations: precision="fp16"
 * (edgeq/plan/precision.py). Activations between ops are stored as fp16; arithmetic stays in
 * float32 (on x86 via F16C conversions, on ARM via fcvtl/fcvtn), so a twin kernel's result is
 * its float32 kernel's result on the fp16 values, rounded once to fp16 when stored.
 *
 * Conversion is round-to-nearest-even, overflow to inf, NaN kept quiet with its payload's top
 * bits, subnormals exact (IEEE 754-2008 binary16: 1 sign, 5 exponent bits with bias 15, 10
 * fraction bits; this is what F16C's vcvtps2ph with imm 0 and ARM's fcvtn under the default
 * FPCR do, so every variant agrees bit for bit with the scalar one below). */
#ifndef EDGEQ_F16_H
#define EDGEQ_F16_H
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "edgeq/kernel.h"
#include "edgeq/params/conv.h"

#ifdef __cplusplus
extern "C" {
#endif

static inline float eq_f32_from_bits(uint32_t u) {
  float f;
  memcpy(&f, &u, sizeof f);
  return f;
}

static inline uint32_t eq_f32_bits(float f) {
  uint32_t u;
  memcpy(&u, &f, sizeof u);
  return u;
}

static inline float eq_half_to_float(uint16_t h) {
  const uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
  const uint32_t em = h & 0x7fffu;  /* exponent and mantissa */
  uint32_t bits;
  if (em >= 0x7c00u) {
    /* inf, or a NaN keeping its payload, quieted (as F16C's vcvtph2ps and fcvtl do) */
    bits = 0x7f800000u | ((em & 0x3ffu) << 13) | ((em & 0x3ffu) ? 0x00400000u : 0u);
  } else if (em >= 0x0400u) {
    bits = (em << 13) + ((127u - 15u) << 23);  /* normal: rebias the exponent */
  } else {
    /* zero or subnormal: em * 2^-24 is exact in float */
    bits = eq_f32_bits((float)em * 0x1p-24f);
  }
  return eq_f32_from_bits(bits | sign);
}

/* Round to nearest, ties to even; overflow gives inf, NaN stays a (quiet) NaN. */
static inline uint16_t eq_float_to_half(float f) {
  const uint32_t u = eq_f32_bits(f);
  const uint16_t sign = (uint16_t)((u >> 16) & 0x8000u);
  const uint32_t a = u & 0x7fffffffu;
  if (a > 0x7f800000u) return (uint16_t)(sign | 0x7e00u | ((a >> 13) & 0x3ffu));
  if (a >= 0x477ff000u) return (uint16_t)(sign | 0x7c00u);  /* >= 65520 rounds past 65504 */
  if (a < 0x38800000u) {
    /* Below 2^-14: a half subnormal, value = q * 2^-24 with q = a's significand shifted. */
    const uint32_t e = a >> 23;
    if (e < 102u) return sign;  /* < 2^-25: rounds to zero (2^-25 itself ties to even 0) */
    const uint32_t m = (a & 0x7fffffu) | 0x800000u;
    const uint32_t shift = 126u - e;  /* 14..24 */
    uint32_t q = m >> shift;
    const uint32_t rem = m & ((1u << shift) - 1u), half = 1u << (shift - 1u);
    if (rem > half || (rem == half && (q & 1u))) ++q;  /* may carry into the smallest normal */
    return (uint16_t)(sign | q);
  }
  uint32_t h = ((a >> 23) - 112u) << 10 | ((a >> 13) & 0x3ffu);
  const uint32_t rem = a & 0x1fffu;
  if (rem > 0x1000u || (rem == 0x1000u && (h & 1u))) ++h;  /* a carry bumps the exponent */
  return (uint16_t)(sign | h);
}

/* Conversion microkernels: n elements, any n, unaligned pointers. */
typedef void (*eq_f16_to_f32_fn)(size_t n, const uint16_t *in, float *out);
typedef void (*eq_f32_to_f16_fn)(size_t n, const float *in, uint16_t *out);

typedef struct eq_f16_converters {
  eq_f16_to_f32_fn to_f32;
  eq_f32_to_f16_fn to_f16;
} eq_f16_converters;

/* The best converters the features `isa` allow (kernels/core/f16_drivers.c). */
eq_f16_converters eq_f16_converters_for(uint32_t isa);

void eq_f16_to_f32__scalar(size_t n, const uint16_t *in, float *out);
void eq_f32_to_f16__scalar(size_t n, const float *in, uint16_t *out);
#if defined(__x86_64__) || defined(_M_X64)
void eq_f16_to_f32__avx2(size_t n, const uint16_t *in, float *out);
void eq_f32_to_f16__avx2(size_t n, const float *in, uint16_t *out);
void eq_f16_to_f32__avx512(size_t n, const uint16_t *in, float *out);
void eq_f32_to_f16__avx512(size_t n, const float *in, uint16_t *out);
#elif defined(__aarch64__)
void eq_f16_to_f32__neon(size_t n, const uint16_t *in, float *out);
void eq_f32_to_f16__neon(size_t n, const float *in, uint16_t *out);
#endif

/* Node kernels convert_f16_f32 / convert_f32_f16 (no params): inputs[0] -> outputs[0], same
 * count. One body for every ISA, on that ISA's converters. */
int eq_f16_convert_node(const eq_node *node, eq_ctx *ctx, eq_f16_to_f32_fn to_f32,
                        eq_f32_to_f16_fn to_f16);

/* --- fp16 twins of float32 node kernels -------------------------------------------------
 *
 * A twin runs its float32 kernel (found at plan time for this process's ISA, and named in the
 * params by address, edgeq/plan/precision.py) on one slice of the problem at a time: the fp16
 * inputs of the slice are converted into float32 scratch, the kernel runs on shadow tensors
 * over that scratch, and its float32 slice is converted into the fp16 output. Slices are small
 * (the planner sizes them: 16-128 KB of float32 data), so they stay in cache and the arena
 * holds only fp16 activations. The slicing, per `kind`:
 *
 *   EQ_F16_CONV     conv / depthwise / pool geometry (eq_conv_params first in the inner
 *                   params): bands of `slice` output rows of one image; the band's input rows
 *                   (its receptive field) are converted and the geometry shifted to them.
 *   EQ_F16_POOL     the same with eq_pool2d_params.
 *   EQ_F16_ROWS     inputs[0] [rows, depth] -> outputs[0] [rows, units] (eq_fc_params first):
 *                   `slice` rows at a time.
 *   EQ_F16_FLAT     elementwise with every fp16 operand of the output's count: `slice`
 *                   elements at a time (inner params untouched).
 *   EQ_F16_BINARY   eq_binary_params: slices of `slice` indices along the outermost output dim
 *                   of size > 1; an operand broadcast along it is converted whole.
 *   EQ_F16_WHOLE    anything else: whole tensors (slice unused).
 *
 * With several threads and enough slices, each of `slots` threads takes every slots-th slice in
 * its own scratch slot and runs the float32 kernel single-threaded on it (one fork per node
 * rather than one per slice); otherwise slices run in order, each kernel using the threads.
 *
 * Inputs listed in f16_inputs (bit i = input i) are fp16 tensors; the others (weights, packed
 * blobs, constant operands) are passed through. The output is outputs[0], fp16. */
enum eq_f16_kind { EQ_F16_CONV = 1, EQ_F16_POOL = 2, EQ_F16_ROWS = 3, EQ_F16_FLAT = 4,
                   EQ_F16_BINARY = 5, EQ_F16_WHOLE = 6 };

#define EQ_F16_INNER_PARAMS_MAX 256
#define EQ_F16_MAX_INPUTS 8

typedef struct eq_f16_twin_params {
  uint64_t inner;           /* eq_kernel_fn of the float32 kernel, for this process */
  int64_t inner_scratch;    /* the float32 kernel's own scratch bytes, at the start of scratch */
  int32_t kind;             /* enum eq_f16_kind */
  int32_t slice;            /* rows / elements / indices per slice */
  uint32_t f16_inputs;      /* bit i: input i is fp16 */
  int32_t inner_params_size;
  int32_t slots;            /* threads that take slices (each with one-thread inner kernels) */
  int32_t reserved;
  int64_t slot_bytes;       /* scratch of one slot: inner scratch (64-aligned), then buffers */
  uint8_t inner_params[EQ_F16_INNER_PARAMS_MAX];  /* the float32 kernel's params */
} eq_f16_twin_params;

int eq_f16_twin(const eq_node *node, eq_ctx *ctx);

/* --- elementwise kernels on fp16 tensors ------------------------------------------------
 *
 * add_f16, sub_f16, mul_f16, prelu_f16 (eq_binary_params, every operand fp16) and
 * hard_swish_f16 (no params) read and write fp16 in one pass. The spec (kernels/ref/f16.c): the
 * float32 operation on the fp16 values, clamped, rounded once, which is also what the x86 F16C
 * variants compute. The ARMv8.2 FP16 variants (`__neonfp16.c`) compute in fp16 arithmetic: ADD
 * and SUB may then differ from the spec by one ulp (a second rounding), HARD_SWISH by a few.
 *
 * A row kernel computes out[i] = op(a[i * sa], b[i * sb]) for i < n (strides in elements, 0 for
 * a broadcast operand); the driver walks the outer broadcast dims and splits them among
 * threads. */
typedef void (*eq_f16_vbinary_fn)(size_t n, const uint16_t *a, ptrdiff_t sa, const uint16_t *b,
                                  ptrdiff_t sb, uint16_t *out, float lo, float hi);
typedef void (*eq_f16_vunary_fn)(size_t n, const uint16_t *in, uint16_t *out);

/* The scalar rows (kernels/ref/f16.c): the spec, and the vector rows' tails. */
void eq_f16_add__scalar(size_t, const uint16_t *, ptrdiff_t, const uint16_t *, ptrdiff_t,
                        uint16_t *, float, float);
void eq_f16_sub__scalar(size_t, const uint16_t *, ptrdiff_t, const uint16_t *, ptrdiff_t,
                        uint16_t *, float, float);
void eq_f16_mul__scalar(size_t, const uint16_t *, ptrdiff_t, const uint16_t *, ptrdiff_t,
                        uint16_t *, float, float);
void eq_f16_prelu__scalar(size_t, const uint16_t *, ptrdiff_t, const uint16_t *, ptrdiff_t,
                          uint16_t *, float, float);
void eq_f16_hard_swish__scalar(size_t n, const uint16_t *in, uint16_t *out);

int eq_f16_binary(const eq_node *node, eq_ctx *ctx, eq_f16_vbinary_fn row);
int eq_f16_unary(const eq_node *node, eq_ctx *ctx, eq_f16_vunary_fn row);

/* The node kernels of one ISA from its row kernels NAME_<op>: add sub mul prelu hard_swish. */
#define EQ_F16_ELEMENTWISE_KERNELS(NAME)                                                   \
  static int add_f16_##NAME(const eq_node *n, eq_ctx *c) {                                \
    return eq_f16_binary(n, c, NAME##_add);                                               \
  }                                                                                        \
  static int sub_f16_##NAME(const eq_node *n, eq_ctx *c) {                                \
    return eq_f16_binary(n, c, NAME##_sub);                                               \
  }                                                                                        \
  static int mul_f16_##NAME(const eq_node *n, eq_ctx *c) {                                \
    return eq_f16_binary(n, c, NAME##_mul);                                               \
  }                                                                                        \
  static int prelu_f16_##NAME(const eq_node *n, eq_ctx *c) {                              \
    return eq_f16_binary(n, c, NAME##_prelu);                                             \
  }                                                                                        \
  static int hard_swish_f16_##NAME(const eq_node *n, eq_ctx *c) {                         \
    return eq_f16_unary(n, c, NAME##_hard_swish);                                         \
  }
#define EQ_F16_ELEMENTWISE_ENTRIES(NAME, bits)                                             \
  {"add_f16", add_f16_##NAME, sizeof(eq_binary_params), (bits)},                           \
  {"sub_f16", sub_f16_##NAME, sizeof(eq_binary_params), (bits)},                           \
  {"mul_f16", mul_f16_##NAME, sizeof(eq_binary_params), (bits)},                           \
  {"prelu_f16", prelu_f16_##NAME, sizeof(eq_binary_params), (bits)},                       \
  {"hard_swish_f16", hard_swish_f16_##NAME, 0, (bits)}

/* --- fp16 GEMM (QD8-F16's float GEMM in fp16 arithmetic) --------------------------------
 *
 * conv2d_f16_gemm (1x1 stride-1 convolution, eq_conv_params) and fully_connected_f16_gemm
 * (eq_fc_params) read an fp16 input and write an fp16 output, with the packed float32 GEMM
 * weights (edgeq/f32_gemm.h: per block of EQ_F32_GEMM_NR output channels, NR biases then K rows
 * of NR weights) converted once at prepare to fp16, same layout (edgeq/plan/precision.py).
 * The spec (kernels/ref/f16.c): bias plus the K products in increasing k, summed in float32,
 * clamped, rounded once. The ARMv8.2 FP16 microkernel (kernels/arm/f16-gemm-3x16__neonfp16.c)
 * sums the products in fp16 (a rounding per fused multiply-add, 8 lanes per instruction) over
 * chunks of EQ_F16_GEMM_CHUNK k and adds each chunk's sums to float32 accumulators, so it is
 * within about EQ_F16_GEMM_CHUNK fp16 half-ulps of the chunks' sums of |products| of the spec,
 * not bit-equal; only cores with ASIMDHP run it, and the precision pass uses these nodes only
 * where it does.
 *
 * A microkernel computes c[i][0..nc) = clamp(bias + sum_k a[i][k] * w[k][..]) for rows i < mr
 * of one packed block w, row i of A at a + i * a_stride (elements), row i of C at
 * c + i * c_stride. */
typedef void (*eq_f16_gemm_fn)(int32_t mr, int32_t nc, int32_t kc, const uint16_t *a,
                               int64_t a_stride, const uint16_t *w, uint16_t *c,
                               int64_t c_stride, float lo, float hi);

typedef struct eq_f16_gemm_ukernel {
  eq_f16_gemm_fn fn;
  int32_t mr;  /* tile height, <= EQ_F16_GEMM_MAX_MR; the tile is EQ_F32_GEMM_NR wide */
} eq_f16_gemm_ukernel;

#define EQ_F16_GEMM_MAX_MR 8
#define EQ_F16_GEMM_CHUNK 8  /* k summed in fp16 before a float32 add (the NEON FP16 kernel) */

void eq_f16_gemm_4x16__scalar(int32_t mr, int32_t nc, int32_t kc, const uint16_t *a,
                              int64_t a_stride, const uint16_t *w, uint16_t *c,
                              int64_t c_stride, float lo, float hi);
#if defined(__aarch64__)
void eq_f16_gemm_3x16__neonfp16(int32_t mr, int32_t nc, int32_t kc, const uint16_t *a,
                                int64_t a_stride, const uint16_t *w, uint16_t *c,
                                int64_t c_stride, float lo, float hi);
#endif

/* Drivers (kernels/core/f16_drivers.c): tiles of mr rows by one packed block, split among
 * threads. Inputs: the fp16 input (as [rows, depth]), the fp16 packed weights. */
int eq_f16_conv2d_gemm(const eq_node *node, eq_ctx *ctx, const eq_f16_gemm_ukernel *uk);
int eq_f16_fully_connected_gemm(const eq_node *node, eq_ctx *ctx,
                                const eq_f16_gemm_ukernel *uk);

/* The node kernels of one ISA from its microkernel, and their table entries. */
#define EQ_F16_GEMM_KERNELS(NAME, fn_, mr_)                                                \
  static const eq_f16_gemm_ukernel NAME##_f16_gemm = {fn_, mr_};                           \
  static int conv2d_f16_gemm_##NAME(const eq_node *n, eq_ctx *c) {                         \
    return eq_f16_conv2d_gemm(n, c, &NAME##_f16_gemm);                                     \
  }                                                                                        \
  static int fully_connected_f16_gemm_##NAME(const eq_node *n, eq_ctx *c) {                \
    return eq_f16_fully_connected_gemm(n, c, &NAME##_f16_gemm);                            \
  }
#define EQ_F16_GEMM_ENTRIES(NAME, bits)                                                    \
  {"conv2d_f16_gemm", conv2d_f16_gemm_##NAME, sizeof(eq_conv_params), (bits)},             \
  {"fully_connected_f16_gemm", fully_connected_f16_gemm_##NAME, sizeof(eq_fc_params), (bits)}

/* --- fp16 depthwise ----------------------------------------------------------------------
 *
 * depthwise_conv2d_f16_dw (eq_conv_params, multiplier 1, any size, stride, dilation, padding):
 * fp16 input [N, H, W, C], fp16 filter [1, KH, KW, C] (= weights [taps][C]), fp16 bias [C]
 * (always given: zeros where the model has none), fp16 output; scratch: in_w * C fp16 zeros.
 * The spec (kernels/ref/f16.c): bias plus the taps' products in tap order, in float32, clamped,
 * rounded once; the ARMv8.2 FP16 microkernel accumulates in fp16 (one rounding per tap).
 *
 * A microkernel computes `pixels` output pixels of `channels` channels: pixel p's tap t reads
 * ptrs[t] + p * step (elements); out pixel p at out + p * channels. */
typedef void (*eq_f16_dwconv_fn)(int32_t pixels, int32_t channels, int32_t taps,
                                 const uint16_t *const *ptrs, int64_t step,
                                 const uint16_t *weights, const uint16_t *bias, uint16_t *out,
                                 float lo, float hi);

#define EQ_F16_DW_MAX_TAPS 64  /* larger filters stay on the float32 twin */

void eq_f16_dwconv__scalar(int32_t pixels, int32_t channels, int32_t taps,
                           const uint16_t *const *ptrs, int64_t step, const uint16_t *weights,
                           const uint16_t *bias, uint16_t *out, float lo, float hi);
#if defined(__aarch64__)
void eq_f16_dwconv__neonfp16(int32_t pixels, int32_t channels, int32_t taps,
                             const uint16_t *const *ptrs, int64_t step, const uint16_t *weights,
                             const uint16_t *bias, uint16_t *out, float lo, float hi);
#endif

int eq_f16_depthwise(const eq_node *node, eq_ctx *ctx, eq_f16_dwconv_fn dw);

#define EQ_F16_DW_KERNELS(NAME, fn_)                                                       \
  static int depthwise_conv2d_f16_dw_##NAME(const eq_node *n, eq_ctx *c) {                 \
    return eq_f16_depthwise(n, c, fn_);                                                    \
  }
#define EQ_F16_DW_ENTRIES(NAME, bits)                                                      \
  {"depthwise_conv2d_f16_dw", depthwise_conv2d_f16_dw_##NAME, sizeof(eq_conv_params), (bits)}

#ifdef __cplusplus
}
#endif
#endif
