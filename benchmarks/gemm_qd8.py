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

# Each vpdpbusd zmm is 64 int8 multiply-adds.
PEAK_C = r"""
#include <stdio.h>
#include <time.h>
/* 16 independent vpdpbusd chains in registers (inline asm, so the compiler neither spills nor
 * folds them); operand values do not change the timing. */
int main(void) {
  const long iters = 20000000;
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  for (long n = 0; n < iters; ++n) {
    __asm__ volatile(
        "vpdpbusd %%zmm30, %%zmm31, %%zmm0\n\t"
        "vpdpbusd %%zmm30, %%zmm31, %%zmm1\n\t"
        "vpdpbusd %%zmm30, %%zmm31, %%zmm2\n\t"
        "vpdpbusd %%zmm30, %%zmm31, %%zmm3\n\t"
        "vpdpbusd %%zmm30, %%zmm31, %%zmm4\n\t"
        "vpdpbusd %%zmm30, %%zmm31, %%zmm5\n\t"
        "vpdpbusd %%zmm30, %%zmm31, %%zmm6\n\t"
        "vpdpbusd %%zmm30, %%zmm31, %%zmm7\n\t"
        "vpdpbusd %%zmm30, %%zmm31, %%zmm8\n\t"
        "vpdpbusd %%zmm30, %%zmm31, %%zmm9\n\t"
        "vpdpbusd %%zmm30, %%zmm31, %%zmm10\n\t"
        "vpdpbusd %%zmm30, %%zmm31, %%zmm11\n\t"
        "vpdpbusd %%zmm30, %%zmm31, %%zmm12\n\t"
        "vpdpbusd %%zmm30, %%zmm31, %%zmm13\n\t"
        "vpdpbusd %%zmm30, %%zmm31, %%zmm14\n\t"
        "vpdpbusd %%zmm30, %%zmm31, %%zmm15\n\t"
        :
        :
        : "zmm0", "zmm1", "zmm2", "zmm3", "zmm4", "zmm5", "zmm6", "zmm7", "zmm8", "zmm9",
          "zmm10", "zmm11", "zmm12", "zmm13", "zmm14", "zmm15");
  }
  clock_gettime(CLOCK_MONOTONIC, &t1);
  const double s = (t1.tv_sec - t0.tv_sec) + 1e-9 * (t1.tv_nsec - t0.tv_nsec);
  printf("%.1f\n", iters * 16.0 * 64 / s / 1e9);
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
