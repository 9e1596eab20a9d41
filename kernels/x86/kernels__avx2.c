/* The table of AVX2 (+FMA, F16C) kernels. Each entry needs EQ_ISA_AVX2 and shares its name with
 * the reference kernel it replaces (same params, same data layout) unless prepare asks for it by
 * its own name. */
#include "edgeq/dispatch.h"

const eq_kernel_info eq_x86_avx2_kernels[] = {
    {NULL, NULL, 0, 0},
};
