"""QD8 GEMM throughput: int8 GMAC/s of the kernel edgeq picks, one thread, against this machine's
peak (a vpdpbusd loop with independent accumulators, compiled and run here).

    python benchmarks/gemm_qd8.py [--m 1024 --n 1024 --k 1024] [--runs 10] [--no-peak]

The GEMM runs as a one-op FULLY_CONNECTED model with int8 weights through edgeq's public API,
so the figure includes the per-row quantization of the activations and the float epilogue.
EDGEQ_ISA=... picks a lower kernel, as everywhere.
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

import edgeq  # noqa: E402
from edgeq.runtime import cpu  # noqa: E402
from edgeq.tflite.schema import BuiltinOp  # noqa: E402
from edgeq.tflite.writer import ModelBuilder  # noqa: E402

# 10 independent vpdpbusd chains (latency 5 x 2 ports), each 64 int8 MACs per instruction.
PEAK_C = r"""
#include <immintrin.h>
#include <stdio.h>
#include <time.h>
#define STEP(r) r = _mm512_dpbusd_epi32(r, a, b)
int main(void) {
  __m512i r0 = _mm512_set1_epi32(0), r1 = _mm512_set1_epi32(1), r2 = _mm512_set1_epi32(2),
          r3 = _mm512_set1_epi32(3), r4 = _mm512_set1_epi32(4), r5 = _mm512_set1_epi32(5),
          r6 = _mm512_set1_epi32(6), r7 = _mm512_set1_epi32(7), r8 = _mm512_set1_epi32(8),
          r9 = _mm512_set1_epi32(9);
  __m512i a = _mm512_set1_epi32(0x01010101), b = _mm512_set1_epi32(0x02020202);
  const long iters = 20000000;
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  for (long n = 0; n < iters; ++n) {
    STEP(r0); STEP(r1); STEP(r2); STEP(r3); STEP(r4);
    STEP(r5); STEP(r6); STEP(r7); STEP(r8); STEP(r9);
    __asm__ volatile("" : "+v"(a), "+v"(b));  /* keeps the loop from being folded */
  }
  clock_gettime(CLOCK_MONOTONIC, &t1);
  __m512i sum = _mm512_add_epi32(_mm512_add_epi32(_mm512_add_epi32(r0, r1), r2),
                                 _mm512_add_epi32(_mm512_add_epi32(r3, r4), r5));
  sum = _mm512_add_epi32(_mm512_add_epi32(sum, _mm512_add_epi32(r6, r7)),
                         _mm512_add_epi32(r8, r9));
  const double s = (t1.tv_sec - t0.tv_sec) + 1e-9 * (t1.tv_nsec - t0.tv_nsec);
  printf("%.1f %d\n", iters * 10 * 64 / s / 1e9, _mm512_reduce_add_epi32(sum) & 1);
  return 0;
}
"""


def peak_gmacs():
    """Measured vpdpbusd zmm peak (G int8 MAC/s), or None without a compiler / AVX-512 VNNI."""
    if not cpu.detected() & cpu.FEATURES["avx512vnni"] or shutil.which("gcc") is None:
        return None
    with tempfile.TemporaryDirectory() as tmp:
        src, exe = os.path.join(tmp, "peak.c"), os.path.join(tmp, "peak")
        Path(src).write_text(PEAK_C)
        subprocess.run(["gcc", "-O2", "-mavx512f", "-mavx512vnni", src, "-o", exe], check=True)
        runs = [float(subprocess.run([exe], capture_output=True, text=True,
                                     check=True).stdout.split()[0]) for _ in range(3)]
    return max(runs)


def fc_model(m, n, k, rng):
    b = ModelBuilder(description="qd8 gemm benchmark")
    x = b.add_tensor("x", (m, k), np.float32)
    w = b.add_tensor("w", (n, k), np.int8, data=rng.integers(-127, 128, (n, k)).astype(np.int8),
                     quantization=dict(scale=np.full(n, 0.01, np.float32),
                                       zero_point=np.zeros(n, np.int64)))
    y = b.add_tensor("y", [], np.float32)
    b.add_operator(BuiltinOp.FULLY_CONNECTED, [x, w], [y])
    b.set_inputs([x])
    b.set_outputs([y])
    return b.build()


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--m", type=int, default=1024)
    ap.add_argument("--n", type=int, default=1024)
    ap.add_argument("--k", type=int, default=1024)
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--no-peak", action="store_true")
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    it = edgeq.Interpreter(model_content=fc_model(args.m, args.n, args.k, rng), num_threads=1)
    it.allocate_tensors()
    it.set_tensor(it.get_input_details()[0]["index"],
                  rng.standard_normal((args.m, args.k)).astype(np.float32))
    it.invoke()
    times = []
    for _ in range(args.runs):
        t0 = time.perf_counter()
        it.invoke()
        times.append(time.perf_counter() - t0)
    best, median = min(times), statistics.median(times)
    macs = args.m * args.n * args.k
    print(f"qd8 GEMM {args.m}x{args.n}x{args.k}, 1 thread, allowed ISA "
          f"{cpu.names(cpu.allowed())}: median {median * 1e3:.2f} ms = "
          f"{macs / median / 1e9:.1f} GMAC/s (best {macs / best / 1e9:.1f})")
    if not args.no_peak:
        peak = peak_gmacs()
        if peak is None:
            print("peak: not measured (needs gcc and AVX-512 VNNI)")
        else:
            print(f"peak vpdpbusd zmm: {peak:.1f} GMAC/s; best run at "
                  f"{100 * macs / best / 1e9 / peak:.0f}% of it, median at "
                  f"{100 * macs / median / 1e9 / peak:.0f}%")


if __name__ == "__main__":
    main()
