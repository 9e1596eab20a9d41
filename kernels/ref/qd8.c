/* Reference QD8 kernels: dynamically quantized int8 activations x int8 weights. */
#include "edgeq/dispatch.h"

const eq_kernel_info eq_ref_qd8_kernels[] = {
    {NULL, NULL, 0, 0},
};
