/* Reference movement kernels. */
#include "edgeq/dispatch.h"

const eq_kernel_info eq_ref_movement_kernels[] = {
    {NULL, NULL, 0},
};
