/* The table of AVX-512 (F, BW, DQ, VL) kernels; searched before the AVX2 table. */
#include "edgeq/dispatch.h"
#include "edgeq/f32_gemm.h"
#include "edgeq/params/conv.h"
#include "edgeq/params/elementwise.h"
#include "edgeq/params/reduce.h"

int eq_f32_gelu__avx512(const eq_node *node, eq_ctx *ctx);
int eq_f32_batch_matmul__avx512(const eq_node *node, eq_ctx *ctx);
int eq_f32_softmax__avx512(const eq_node *node, eq_ctx *ctx);
int eq_f32_layer_norm__avx512(const eq_node *node, eq_ctx *ctx);
int eq_f32_vadd__avx512(const eq_node *node, eq_ctx *ctx);
int eq_f32_vsub__avx512(const eq_node *node, eq_ctx *ctx);
int eq_f32_vmul__avx512(const eq_node *node, eq_ctx *ctx);
int eq_f32_vprelu__avx512(const eq_node *node, eq_ctx *ctx);

EQ_F32_GEMM_KERNELS_TILE(avx512, eq_f32_gemm_7x32__avx512, eq_f32_gemm_rows_7x32__avx512, 7, 32,
                         eq_f32_dwconv__avx512, eq_f32_dwconv_row__avx512,
                         eq_f32_dwconv_image__avx512)

static int conv2d_f32_direct__avx512(const eq_node *node, eq_ctx *ctx) {
  return eq_f32_conv2d_direct(node, ctx, eq_f32_conv_direct__avx512);
}

const eq_kernel_info eq_x86_avx512_kernels[] = {
    EQ_F32_GEMM_ENTRIES(avx512, EQ_ISA_AVX512),
    {"conv2d_f32_direct", conv2d_f32_direct__avx512, sizeof(eq_conv_params), EQ_ISA_AVX512},
    {"gelu_f32", eq_f32_gelu__avx512, 0, EQ_ISA_AVX512},
    {"batch_matmul_f32", eq_f32_batch_matmul__avx512, sizeof(eq_matmul_params), EQ_ISA_AVX512},
    {"softmax_f32", eq_f32_softmax__avx512, sizeof(eq_softmax_params), EQ_ISA_AVX512},
    {"layer_norm_f32", eq_f32_layer_norm__avx512, sizeof(eq_layer_norm_params), EQ_ISA_AVX512},
    {"add_f32", eq_f32_vadd__avx512, sizeof(eq_binary_params), EQ_ISA_AVX512},
    {"sub_f32", eq_f32_vsub__avx512, sizeof(eq_binary_params), EQ_ISA_AVX512},
    {"mul_f32", eq_f32_vmul__avx512, sizeof(eq_binary_params), EQ_ISA_AVX512},
    {"prelu_f32", eq_f32_vprelu__avx512, sizeof(eq_binary_params), EQ_ISA_AVX512},
    {NULL, NULL, 0, 0},
};
