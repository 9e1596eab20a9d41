/* Reference slicing kernels. */
#include "edgeq/dispatch.h"

const eq_kernel_info eq_ref_slicing_kernels[] = {
    {NULL, NULL, 0},
};
