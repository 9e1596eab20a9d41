/* CPU features that kernels may require. Found once (cpu.c); the planner restricts them further
 * when EDGEQ_ISA asks for a lower level. */
#ifndef EDGEQ_CPU_H
#define EDGEQ_CPU_H
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

enum eq_isa_feature {
  /* x86-64 */
  EQ_ISA_AVX2 = 1u << 0,        /* with FMA and F16C, as every AVX2 CPU we target has them */
  EQ_ISA_AVXVNNI = 1u << 1,     /* VEX-encoded vpdpbusd (Alder Lake, Zen 5) */
  EQ_ISA_AVX512 = 1u << 2,      /* F + BW + DQ + VL */
  EQ_ISA_AVX512VNNI = 1u << 3,
  /* aarch64 */
  EQ_ISA_NEON = 1u << 8,        /* ASIMD: every aarch64 CPU */
  EQ_ISA_NEON_DOT = 1u << 9,    /* ASIMDDP: sdot/udot (Cortex-A55/A76 and later) */
  EQ_ISA_NEON_FP16 = 1u << 10,  /* ASIMDHP: fp16 arithmetic */
  EQ_ISA_NEON_I8MM = 1u << 11,  /* I8MM: smmla */
};

/* Features of the CPU this process runs on (and that the OS has enabled). */
uint32_t eq_cpu_features(void);

/* Not a feature but a tuning fact, for kernels that already run: whether this CPU issues a
 * 512-bit FMA as two 256-bit halves, one zmm FMA per cycle (AMD Zen 4), so that fewer
 * accumulators keep it busy than on CPUs with full-width units (Zen 5). Asked once, cached. */
int eq_cpu_avx512_halves(void);

#ifdef __cplusplus
}
#endif
#endif
