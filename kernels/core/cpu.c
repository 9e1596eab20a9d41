/* The one place that asks the CPU what it can do: cpuid (+ xgetbv for OS-enabled register
 * state) on x86-64, getauxval(AT_HWCAP/AT_HWCAP2) on aarch64 Linux and Android. */
#include "edgeq/cpu.h"

#include <stdatomic.h>

#if defined(__x86_64__) || defined(_M_X64)
#include <cpuid.h>

static uint64_t read_xcr0(void) {
  uint32_t lo, hi;
  __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
  return ((uint64_t)hi << 32) | lo;
}

uint32_t eq_cpu_features(void) {
  unsigned a, b, c, d;
  if (!__get_cpuid(1, &a, &b, &c, &d)) return 0;
  const int fma = (c >> 12) & 1, osxsave = (c >> 27) & 1, avx = (c >> 28) & 1,
            f16c = (c >> 29) & 1;
  if (!osxsave || !avx) return 0;
  const uint64_t xcr0 = read_xcr0();
  if ((xcr0 & 0x6) != 0x6) return 0; /* the OS does not save YMM state */
  if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return 0;
  uint32_t f = 0;
  const int avx2 = (b >> 5) & 1;
  if (avx2 && fma && f16c) f |= EQ_ISA_AVX2;
  const int avx512f = (b >> 16) & 1, avx512dq = (b >> 17) & 1, avx512bw = (b >> 30) & 1,
            avx512vl = (b >> 31) & 1, avx512vnni = (c >> 11) & 1;
  const int zmm_state = (xcr0 & 0xe6) == 0xe6; /* opmask + upper ZMM + hi16 ZMM */
  if ((f & EQ_ISA_AVX2) && zmm_state && avx512f && avx512dq && avx512bw && avx512vl) {
    f |= EQ_ISA_AVX512;
    if (avx512vnni) f |= EQ_ISA_AVX512VNNI;
  }
  if (__get_cpuid_count(7, 1, &a, &b, &c, &d) && ((a >> 4) & 1) && (f & EQ_ISA_AVX2))
    f |= EQ_ISA_AVXVNNI;
  return f;
}

int eq_cpu_avx512_halves(void) {
  static _Atomic int cached = -1;
  int halves = atomic_load_explicit(&cached, memory_order_relaxed);
  if (halves >= 0) return halves;
  unsigned a, b, c, d;
  halves = 0;
  /* vendor "AuthenticAMD" (ebx, edx, ecx) and family 0x19 (base 0xF + extended 0x0A): Zen 3
   * and Zen 4, of which only Zen 4 has AVX-512 */
  if (__get_cpuid(0, &a, &b, &c, &d) && b == 0x68747541u && d == 0x69746e65u &&
      c == 0x444d4163u && __get_cpuid(1, &a, &b, &c, &d)) {
    const unsigned family = ((a >> 8) & 0xf) == 0xf ? 0xf + ((a >> 20) & 0xff) : (a >> 8) & 0xf;
    halves = family == 0x19;
  }
  atomic_store_explicit(&cached, halves, memory_order_relaxed);
  return halves;
}

#elif defined(__aarch64__)
#if defined(__linux__) || defined(__ANDROID__)
#include <sys/auxv.h>
#endif
/* Bit numbers from the Linux arm64 hwcap ABI (asm/hwcap.h), spelled out so that old headers
 * (and Android NDKs) without the names still build. */
#define HWCAP_ASIMD_BIT (1ul << 1)
#define HWCAP_ASIMDHP_BIT (1ul << 10)
#define HWCAP_ASIMDDP_BIT (1ul << 20)
#define HWCAP2_I8MM_BIT (1ul << 13)

uint32_t eq_cpu_features(void) {
  uint32_t f = EQ_ISA_NEON; /* mandatory in AArch64 */
#if defined(__linux__) || defined(__ANDROID__)
  const unsigned long hw = getauxval(AT_HWCAP);
#ifdef AT_HWCAP2
  const unsigned long hw2 = getauxval(AT_HWCAP2);
#else
  const unsigned long hw2 = 0;
#endif
  if (hw & HWCAP_ASIMDDP_BIT) f |= EQ_ISA_NEON_DOT;
  if (hw & HWCAP_ASIMDHP_BIT) f |= EQ_ISA_NEON_FP16;
  if (hw2 & HWCAP2_I8MM_BIT) f |= EQ_ISA_NEON_I8MM;
#endif
  return f;
}

#else
uint32_t eq_cpu_features(void) { return 0; }
#endif

#if !defined(__x86_64__) && !defined(_M_X64)
int eq_cpu_avx512_halves(void) { return 0; }
#endif
