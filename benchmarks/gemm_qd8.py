"""QD8 GEMM throughput: int8 GMAC/s of the kernel edgeq picks, one thread, against this machine's
peak (a vpdpbusd loop with independent accumulators, compiled and run here).

    python benchmarks/gemm_qd8.py [--m 1024 --n 1024 --k 1024] [--runs 10] [--no-peak]
                                  [--levels all | avx2,avxvnni,...]

The GEMM runs as a one-op FULLY_CONNECTED model with int8 weights through edgeq's public API,
so the figure includes the per-row quantization of the activations and the float epilogue.
EDGEQ_ISA=... picks a lower kernel, as everywhere; --levels measures several one after the
other, each against the peak of the vpdpbusd form it uses (zmm for avx512vnni, VEX ymm for
avxvnni).
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

# CHAINS independent vpdpbusd chains in registers (inline asm, so the compiler neither spills
# nor folds them); operand values do not change the timing. REG is zmm (AVX-512 VNNI, 64 int8
# multiply-adds per instruction; 16 chains, sources zmm30/31) or ymm with the {vex} encoding
# (AVX-VNNI, 32; VEX reaches only ymm0-15, so 14 chains and sources ymm14/15).
PEAK_C = r"""
#include <stdio.h>
#include <time.h>
#define OP(i) PREFIX "vpdpbusd %%" REG SRC0 ", %%" REG SRC1 ", %%" REG #i "\n\t"
#if CHAINS == 16
#define LAST_TWO OP(14) OP(15)
#else
#define LAST_TWO
#endif
int main(void) {
  const long iters = 20000000;
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  for (long n = 0; n < iters; ++n) {
    __asm__ volatile(OP(0) OP(1) OP(2) OP(3) OP(4) OP(5) OP(6) OP(7) OP(8) OP(9) OP(10) OP(11)
                     OP(12) OP(13) LAST_TWO
                     :
                     :
                     : "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8",
                       "xmm9", "xmm10", "xmm11", "xmm12", "xmm13", "xmm14", "xmm15");
  }
  clock_gettime(CLOCK_MONOTONIC, &t1);
  const double s = (t1.tv_sec - t0.tv_sec) + 1e-9 * (t1.tv_nsec - t0.tv_nsec);
  printf("%.1f\n", iters * (double)CHAINS * LANES / s / 1e9);
  return 0;
}
"""

# ISA level -> (feature it needs, register, int8 MACs per instruction, gcc flags and defines)
PEAKS = {
    "avx512vnni": ("avx512vnni", "zmm", 64, ["-mavx512f", "-mavx512vnni", "-DPREFIX=\"\"",
                                             "-DSRC0=\"30\"", "-DSRC1=\"31\"", "-DCHAINS=16"]),
    # %{ %} put literal braces into a GCC asm template
    "avxvnni": ("avxvnni", "ymm", 32, ["-mavx2", "-mavxvnni", "-DPREFIX=\"%{vex%} \"",
                                       "-DSRC0=\"14\"", "-DSRC1=\"15\"", "-DCHAINS=14"]),
}


def peak_gmacs(level):
    """Measured vpdpbusd peak (G int8 MAC/s) of the instruction form `level`'s kernel uses, or
    None (no VNNI form for that level, no such feature, or no compiler)."""
    if level not in PEAKS or shutil.which("gcc") is None:
        return None
    feature, reg, lanes, flags = PEAKS[level]
    if not cpu.detected() & cpu.FEATURES[feature]:
        return None
    with tempfile.TemporaryDirectory() as tmp:
        src, exe = os.path.join(tmp, "peak.c"), os.path.join(tmp, "peak")
        Path(src).write_text(PEAK_C)
        subprocess.run(["gcc", "-O2", *flags, f'-DREG="{reg}"', f"-DLANES={lanes}", src, "-o",
                        exe], check=True)
        runs = [float(subprocess.run([exe], capture_output=True, text=True,
                                     check=True).stdout.split()[0]) for _ in range(3)]
    return max(runs)


def top_level():
    """The highest level EDGEQ_ISA allows here (what edgeq picks by default)."""
    order = cpu._ORDER[cpu._family()]
    return [lv for lv in order if cpu.level_mask(lv) & ~cpu.allowed() == 0][-1]


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


def measure(level, args, rng):
    """(median, best) seconds per invoke of the m x n x k FC with kernels up to `level`."""
    old = os.environ.get("EDGEQ_ISA")
    os.environ["EDGEQ_ISA"] = level
    try:
        it = edgeq.Interpreter(model_content=fc_model(args.m, args.n, args.k, rng), num_threads=1)
        it.allocate_tensors()
    finally:
        if old is None:
            del os.environ["EDGEQ_ISA"]
        else:
            os.environ["EDGEQ_ISA"] = old
    it.set_tensor(it.get_input_details()[0]["index"],
                  rng.standard_normal((args.m, args.k)).astype(np.float32))
    it.invoke()
    times = []
    for _ in range(args.runs):
        t0 = time.perf_counter()
        it.invoke()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), min(times)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--m", type=int, default=1024)
    ap.add_argument("--n", type=int, default=1024)
    ap.add_argument("--k", type=int, default=1024)
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--no-peak", action="store_true")
    ap.add_argument("--levels", default=None,
                    help="comma-separated EDGEQ_ISA levels to measure one after the other "
                         "(default: the one edgeq picks here); 'all' = every SIMD level this CPU runs")
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    if args.levels == "all":
        order = cpu._ORDER[cpu._family()]
        levels = [lv for lv in order[1:] if cpu.level_mask(lv) & ~cpu.allowed() == 0]
    else:
        levels = args.levels.split(",") if args.levels else [top_level()]
    macs = args.m * args.n * args.k
    for level in levels:
        median, best = measure(level, args, rng)
        print(f"qd8 GEMM {args.m}x{args.n}x{args.k}, 1 thread, EDGEQ_ISA={level} "
              f"{cpu.names(cpu.level_mask(level) & cpu.detected())}: median "
              f"{median * 1e3:.2f} ms = {macs / median / 1e9:.1f} GMAC/s "
              f"(best {macs / best / 1e9:.1f})")
        peak = None if args.no_peak else peak_gmacs(level)
        if peak is not None:
            reg = PEAKS[level][1]
            print(f"  peak vpdpbusd {reg}: {peak:.1f} GMAC/s; best run at "
                  f"{100 * macs / best / 1e9 / peak:.0f}% of it, median at "
                  f"{100 * macs / median / 1e9 / peak:.0f}%")


if __name__ == "__main__":
    main()
