/* The table of AVX2 (+FMA, F16C) kernels. Each entry needs EQ_ISA_AVX2 and shares its name with
 * the reference kernel it replaces (same params, same data layout) unless prepare asks for it by
 * its own name. */
#include "edgeq/dispatch.h"
#include "edgeq/f32_gemm.h"
#include "edgeq/params/conv.h"
#include "edgeq/params/elementwise.h"
#include "edgeq/params/movement.h"
#include "edgeq/params/pool.h"
#include "edgeq/params/reduce.h"

int eq_f32_vadd__avx2(const eq_node *node, eq_ctx *ctx);
int eq_f32_vsub__avx2(const eq_node *node, eq_ctx *ctx);
int eq_f32_vmul__avx2(const eq_node *node, eq_ctx *ctx);
int eq_f32_vprelu__avx2(const eq_node *node, eq_ctx *ctx);
int eq_f32_vsquared_difference__avx2(const eq_node *node, eq_ctx *ctx);
int eq_f32_max_pool__avx2(const eq_node *node, eq_ctx *ctx);
int eq_f32_hard_swish__avx2(const eq_node *node, eq_ctx *ctx);
int eq_f32_gelu__avx2(const eq_node *node, eq_ctx *ctx);
int eq_dequantize_i8_f32__avx2(const eq_node *node, eq_ctx *ctx);
int eq_transpose_x32__avx2(const eq_node *node, eq_ctx *ctx);
int eq_f32_softmax__avx2(const eq_node *node, eq_ctx *ctx);
int eq_f32_mean__avx2(const eq_node *node, eq_ctx *ctx);
int eq_f32_batch_matmul__avx2(const eq_node *node, eq_ctx *ctx);
int eq_f32_avg_pool__avx2(const eq_node *node, eq_ctx *ctx);
int eq_f32_resize_bilinear__avx2(const eq_node *node, eq_ctx *ctx);
int eq_f32_layer_norm__avx2(const eq_node *node, eq_ctx *ctx);
int eq_f32_logistic__avx2(const eq_node *node, eq_ctx *ctx);
int eq_f32_transpose_conv__avx2(const eq_node *node, eq_ctx *ctx);
int eq_f32_transpose_conv_packed__avx2(const eq_node *node, eq_ctx *ctx);
int eq_qd8_transpose_conv_grid__avx2(const eq_node *node, eq_ctx *ctx);
int eq_qd8_transpose_conv__avx2(const eq_node *node, eq_ctx *ctx);

EQ_F32_GEMM_KERNELS_TILE(avx2, eq_f32_gemm_6xN__avx2, eq_f32_gemm_rows_6xN__avx2, 6,
                         EQ_F32_GEMM_AVX2_WALK_NR, eq_f32_dwconv__avx2, eq_f32_dwconv_row__avx2,
                         eq_f32_dwconv_image__avx2)

const eq_kernel_info eq_x86_avx2_kernels[] = {
    EQ_F32_GEMM_ENTRIES(avx2, EQ_ISA_AVX2),
    {"add_f32", eq_f32_vadd__avx2, sizeof(eq_binary_params), EQ_ISA_AVX2},
    {"sub_f32", eq_f32_vsub__avx2, sizeof(eq_binary_params), EQ_ISA_AVX2},
    {"mul_f32", eq_f32_vmul__avx2, sizeof(eq_binary_params), EQ_ISA_AVX2},
    {"prelu_f32", eq_f32_vprelu__avx2, sizeof(eq_binary_params), EQ_ISA_AVX2},
    {"squared_difference_f32", eq_f32_vsquared_difference__avx2, sizeof(eq_binary_params),
     EQ_ISA_AVX2},
    {"max_pool2d_f32", eq_f32_max_pool__avx2, sizeof(eq_pool2d_params), EQ_ISA_AVX2},
    {"avg_pool2d_f32", eq_f32_avg_pool__avx2, sizeof(eq_pool2d_params), EQ_ISA_AVX2},
    {"hard_swish_f32", eq_f32_hard_swish__avx2, 0, EQ_ISA_AVX2},
    {"gelu_f32", eq_f32_gelu__avx2, 0, EQ_ISA_AVX2},
    {"dequantize_i8_f32", eq_dequantize_i8_f32__avx2, sizeof(eq_dequantize_params), EQ_ISA_AVX2},
    {"softmax_f32", eq_f32_softmax__avx2, sizeof(eq_softmax_params), EQ_ISA_AVX2},
    {"mean_f32", eq_f32_mean__avx2, sizeof(eq_reduce_params), EQ_ISA_AVX2},
    {"batch_matmul_f32", eq_f32_batch_matmul__avx2, sizeof(eq_matmul_params), EQ_ISA_AVX2},
    {"resize_bilinear_f32", eq_f32_resize_bilinear__avx2, sizeof(eq_resize_params), EQ_ISA_AVX2},
    {"layer_norm_f32", eq_f32_layer_norm__avx2, sizeof(eq_layer_norm_params), EQ_ISA_AVX2},
    {"logistic_f32", eq_f32_logistic__avx2, 0, EQ_ISA_AVX2},
    {"transpose_conv2d_f32", eq_f32_transpose_conv__avx2, sizeof(eq_conv_params), EQ_ISA_AVX2},
    {"transpose_conv2d_f32_packed", eq_f32_transpose_conv_packed__avx2, sizeof(eq_conv_params),
     EQ_ISA_AVX2},
    {"transpose_conv2d_qd8_grid", eq_qd8_transpose_conv_grid__avx2, sizeof(eq_conv_params),
     EQ_ISA_AVX2},
    {"transpose_conv2d_qd8", eq_qd8_transpose_conv__avx2, sizeof(eq_conv_params), EQ_ISA_AVX2},
    {"transpose_x32", eq_transpose_x32__avx2, sizeof(eq_strided_copy_params), EQ_ISA_AVX2},
    {NULL, NULL, 0, 0},
};
