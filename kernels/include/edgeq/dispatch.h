/* The one place that knows which kernels exist and which the CPU can run. */
#ifndef EDGEQ_DISPATCH_H
#define EDGEQ_DISPATCH_H

#include "edgeq/kernel.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct eq_kernel_info {
  const char *name;      /* "<op>_<dtype>[...]", e.g. "conv2d_f32" */
  eq_kernel_fn fn;
  size_t params_size;    /* sizeof the params struct the kernel reads; 0 when it reads none */
} eq_kernel_info;

/* Look a kernel up by name; NULL when no such kernel exists. */
const eq_kernel_info *eq_find_kernel(const char *name);

/* Iterate over all kernels (for `edgeq info` and tests): returns NULL past the end. */
const eq_kernel_info *eq_kernel_at(int index);

#ifdef __cplusplus
}
#endif
#endif
