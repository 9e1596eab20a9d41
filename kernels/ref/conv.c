/* Reference conv kernels. */
#include "edgeq/dispatch.h"

const eq_kernel_info eq_ref_conv_kernels[] = {
    {NULL, NULL, 0},
};
