/* The table of AArch64 NEON kernels (every AArch64 CPU has NEON). */
#include "edgeq/dispatch.h"
#include "edgeq/f32_gemm.h"
#include "edgeq/params/conv.h"
#include "edgeq/params/elementwise.h"
#include "edgeq/params/pool.h"
#include "edgeq/params/reduce.h"

int eq_f32_vadd__neon(const eq_node *node, eq_ctx *ctx);
int eq_f32_vsub__neon(const eq_node *node, eq_ctx *ctx);
int eq_f32_vmul__neon(const eq_node *node, eq_ctx *ctx);
int eq_f32_vprelu__neon(const eq_node *node, eq_ctx *ctx);
int eq_f32_vsquared_difference__neon(const eq_node *node, eq_ctx *ctx);
int eq_f32_max_pool__neon(const eq_node *node, eq_ctx *ctx);
int eq_f32_avg_pool__neon(const eq_node *node, eq_ctx *ctx);
int eq_f32_mean__neon(const eq_node *node, eq_ctx *ctx);
int eq_f32_hard_swish__neon(const eq_node *node, eq_ctx *ctx);
int eq_f32_gelu__neon(const eq_node *node, eq_ctx *ctx);
int eq_f32_softmax__neon(const eq_node *node, eq_ctx *ctx);
int eq_f32_batch_matmul__neon(const eq_node *node, eq_ctx *ctx);
int eq_f32_layer_norm__neon(const eq_node *node, eq_ctx *ctx);
int eq_f32_logistic__neon(const eq_node *node, eq_ctx *ctx);
int eq_f32_tanh__neon(const eq_node *node, eq_ctx *ctx);
int eq_f32_resize_bilinear__neon(const eq_node *node, eq_ctx *ctx);
int eq_f32_transpose_conv__neon(const eq_node *node, eq_ctx *ctx);
int eq_f32_transpose_conv_packed__neon(const eq_node *node, eq_ctx *ctx);
int eq_qd8_transpose_conv_grid__neon(const eq_node *node, eq_ctx *ctx);

EQ_F32_GEMM_KERNELS(neon, eq_f32_gemm_6x16__neon, 6, eq_f32_dwconv__neon,
                    eq_f32_dwconv_row__neon)

const eq_kernel_info eq_arm_neon_kernels[] = {
    EQ_F32_GEMM_ENTRIES(neon, EQ_ISA_NEON),
    {"add_f32", eq_f32_vadd__neon, sizeof(eq_binary_params), EQ_ISA_NEON},
    {"sub_f32", eq_f32_vsub__neon, sizeof(eq_binary_params), EQ_ISA_NEON},
    {"mul_f32", eq_f32_vmul__neon, sizeof(eq_binary_params), EQ_ISA_NEON},
    {"prelu_f32", eq_f32_vprelu__neon, sizeof(eq_binary_params), EQ_ISA_NEON},
    {"squared_difference_f32", eq_f32_vsquared_difference__neon, sizeof(eq_binary_params),
     EQ_ISA_NEON},
    {"max_pool2d_f32", eq_f32_max_pool__neon, sizeof(eq_pool2d_params), EQ_ISA_NEON},
    {"avg_pool2d_f32", eq_f32_avg_pool__neon, sizeof(eq_pool2d_params), EQ_ISA_NEON},
    {"mean_f32", eq_f32_mean__neon, sizeof(eq_reduce_params), EQ_ISA_NEON},
    {"hard_swish_f32", eq_f32_hard_swish__neon, 0, EQ_ISA_NEON},
    {"gelu_f32", eq_f32_gelu__neon, 0, EQ_ISA_NEON},
    {"softmax_f32", eq_f32_softmax__neon, sizeof(eq_softmax_params), EQ_ISA_NEON},
    {"batch_matmul_f32", eq_f32_batch_matmul__neon, sizeof(eq_matmul_params), EQ_ISA_NEON},
    {"layer_norm_f32", eq_f32_layer_norm__neon, sizeof(eq_layer_norm_params), EQ_ISA_NEON},
    {"logistic_f32", eq_f32_logistic__neon, 0, EQ_ISA_NEON},
    {"tanh_f32", eq_f32_tanh__neon, 0, EQ_ISA_NEON},
    {"resize_bilinear_f32", eq_f32_resize_bilinear__neon, sizeof(eq_resize_params), EQ_ISA_NEON},
    {"transpose_conv2d_f32", eq_f32_transpose_conv__neon, sizeof(eq_conv_params), EQ_ISA_NEON},
    {"transpose_conv2d_f32_packed", eq_f32_transpose_conv_packed__neon, sizeof(eq_conv_params),
     EQ_ISA_NEON},
    /* the same float kernel on the QD8 integer grid (exact sums) */
    {"transpose_conv2d_qd8_grid", eq_qd8_transpose_conv_grid__neon, sizeof(eq_conv_params),
     EQ_ISA_NEON},
    {NULL, NULL, 0, 0},
};
