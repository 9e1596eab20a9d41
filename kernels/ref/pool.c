/* Reference pool kernels. */
#include "edgeq/dispatch.h"

const eq_kernel_info eq_ref_pool_kernels[] = {
    {NULL, NULL, 0},
};
