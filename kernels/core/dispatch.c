/* Kernel lookup. Each kernel family file ends with a table of the kernels it defines; this file
 * lists the tables, optimized ISA tables first, so that eq_find_kernel picks the best variant the
 * allowed features (CPU features found at start-up, lowered by EDGEQ_ISA) can run. */
#include <string.h>

#include "edgeq/dispatch.h"

/* One table per reference family, each terminated by an entry whose name is NULL. */
extern const eq_kernel_info eq_ref_elementwise_kernels[];
extern const eq_kernel_info eq_ref_conv_kernels[];
extern const eq_kernel_info eq_ref_pool_kernels[];
extern const eq_kernel_info eq_ref_reduce_kernels[];
extern const eq_kernel_info eq_ref_movement_kernels[];
extern const eq_kernel_info eq_ref_slicing_kernels[];

extern const eq_kernel_info eq_ref_qd8_kernels[];
extern const eq_kernel_info eq_ref_f32_gemm_kernels[];
extern const eq_kernel_info eq_core_f16_kernels[];  /* fp16 storage: kernels/core/f16_drivers.c */
extern const eq_kernel_info eq_ref_f16_kernels[];
#if defined(__x86_64__) || defined(_M_X64)
/* ISA tables: built only for their architecture (setup.py compiles `*__<isa>.c` per target). */
extern const eq_kernel_info eq_x86_avx512_kernels[];
extern const eq_kernel_info eq_x86_avx2_kernels[];
extern const eq_kernel_info eq_x86_avx512vnni_qd8_kernels[];
extern const eq_kernel_info eq_x86_avxvnni_qd8_kernels[];
extern const eq_kernel_info eq_x86_avx2_qd8_kernels[];
extern const eq_kernel_info eq_x86_avx2_f16_kernels[];
#elif defined(__aarch64__)
extern const eq_kernel_info eq_arm_neoni8mm_qd8_kernels[];
extern const eq_kernel_info eq_arm_neondot_qd8_kernels[];
extern const eq_kernel_info eq_arm_neon_qd8_kernels[];
extern const eq_kernel_info eq_arm_neon_kernels[];
extern const eq_kernel_info eq_arm_neonfp16_f16_kernels[];
extern const eq_kernel_info eq_arm_neonfp16_gemm_kernels[];
extern const eq_kernel_info eq_arm_neon_f16_kernels[];
#endif

static const eq_kernel_info *const kTables[] = {
#if defined(__x86_64__) || defined(_M_X64)
    eq_x86_avx512vnni_qd8_kernels,
    eq_x86_avxvnni_qd8_kernels,
    eq_x86_avx2_qd8_kernels,
    eq_x86_avx512_kernels,
    eq_x86_avx2_kernels,
    eq_x86_avx2_f16_kernels,
#elif defined(__aarch64__)
    eq_arm_neoni8mm_qd8_kernels,
    eq_arm_neondot_qd8_kernels,
    eq_arm_neon_qd8_kernels,
    eq_arm_neon_kernels,
    eq_arm_neonfp16_f16_kernels,
    eq_arm_neonfp16_gemm_kernels,
    eq_arm_neon_f16_kernels,
#endif
    eq_ref_elementwise_kernels, eq_ref_conv_kernels,     eq_ref_pool_kernels,
    eq_ref_reduce_kernels,      eq_ref_movement_kernels, eq_ref_slicing_kernels,
    eq_ref_qd8_kernels,         eq_ref_f32_gemm_kernels, eq_core_f16_kernels,
    eq_ref_f16_kernels,
};

const eq_kernel_info *eq_kernel_at(int index) {
  if (index < 0) return NULL;
  for (size_t t = 0; t < sizeof kTables / sizeof kTables[0]; ++t) {
    for (const eq_kernel_info *k = kTables[t]; k->name != NULL; ++k) {
      if (index-- == 0) return k;
    }
  }
  return NULL;
}

const eq_kernel_info *eq_find_kernel(const char *name, uint32_t allowed) {
  for (size_t t = 0; t < sizeof kTables / sizeof kTables[0]; ++t) {
    for (const eq_kernel_info *k = kTables[t]; k->name != NULL; ++k) {
      if ((k->isa & ~allowed) == 0 && strcmp(k->name, name) == 0) return k;
    }
  }
  return NULL;
}
