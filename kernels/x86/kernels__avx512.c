/* The table of AVX-512 (F, BW, DQ, VL) kernels; searched before the AVX2 table. */
#include "edgeq/dispatch.h"
#include "edgeq/f32_gemm.h"
#include "edgeq/params/conv.h"

EQ_F32_GEMM_KERNELS_TILE(avx512, eq_f32_gemm_7x32__avx512, eq_f32_gemm_rows_7x32__avx512, 7, 32,
                         eq_f32_dwconv__avx512, eq_f32_dwconv_row__avx512)

const eq_kernel_info eq_x86_avx512_kernels[] = {
    EQ_F32_GEMM_ENTRIES(avx512, EQ_ISA_AVX512),
    {NULL, NULL, 0, 0},
};
