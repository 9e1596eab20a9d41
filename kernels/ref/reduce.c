/* Reference reduce kernels. */
#include "edgeq/dispatch.h"

const eq_kernel_info eq_ref_reduce_kernels[] = {
    {NULL, NULL, 0},
};
