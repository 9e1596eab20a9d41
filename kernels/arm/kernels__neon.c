/* The table of AArch64 NEON kernels (every AArch64 CPU has NEON). */
#include "edgeq/dispatch.h"
#include "edgeq/f32_gemm.h"
#include "edgeq/params/conv.h"

EQ_F32_GEMM_KERNELS(neon, eq_f32_gemm_6x16__neon, 6, eq_f32_dwconv__neon,
                    eq_f32_dwconv_row__neon)

const eq_kernel_info eq_arm_neon_kernels[] = {
    EQ_F32_GEMM_ENTRIES(neon, EQ_ISA_NEON),
    {NULL, NULL, 0, 0},
};
