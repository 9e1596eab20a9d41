/* The one place that knows which kernels exist and which the CPU can run. */
#ifndef EDGEQ_DISPATCH_H
#define EDGEQ_DISPATCH_H

#include "edgeq/cpu.h"
#include "edgeq/kernel.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct eq_kernel_info {
  const char *name;      /* "<op>_<dtype>[...]", e.g. "conv2d_f32" */
  eq_kernel_fn fn;
  size_t params_size;    /* sizeof the params struct the kernel reads; 0 when it reads none */
  uint32_t isa;          /* eq_isa_feature bits the kernel needs; 0 for portable C */
} eq_kernel_info;

/* The best kernel called `name` that needs no feature outside `allowed`: optimized tables are
 * searched before the reference ones, so an ISA variant with the same name, params and data
 * layout replaces the reference kernel transparently. NULL when there is none. */
const eq_kernel_info *eq_find_kernel(const char *name, uint32_t allowed);

/* Iterate over all kernels (for `edgeq info` and tests): returns NULL past the end. */
const eq_kernel_info *eq_kernel_at(int index);

#ifdef __cplusplus
}
#endif
#endif
