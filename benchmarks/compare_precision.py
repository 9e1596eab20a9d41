"""edgeq precision="fp16" vs edgeq fp32 vs LiteRT, in one process, interleaved, same inputs.

    python benchmarks/compare_precision.py [MODEL ...] [--threads 1] [--runs 30] [--quantize qd8]

Per model: the median and minimum invoke time of each (ms), the ratios fp16 / fp32 and
fp16 / LiteRT, the arena bytes of both edgeq plans, and how far the fp16 outputs are from the fp32
ones (max |difference| over the output's range). With no MODEL: every shared model edgeq loads.
"""
from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

import numpy as np

import edgeq

sys.path.insert(0, str(Path(__file__).resolve().parent))
from compare_litert import SHARED, prepare, timed  # noqa: E402


def _deviation(a, b) -> float:
    return max(float(np.abs(x.astype(np.float64) - y).max() / (np.ptp(y) or 1.0))
               for x, y in zip(a, b))


def main(argv=None):
    from ai_edge_litert.interpreter import Interpreter as LiteRT

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("models", nargs="*")
    for flag, default in (("--threads", 1), ("--runs", 30), ("--warmup", 3)):
        ap.add_argument(flag, type=int, default=default)
    ap.add_argument("--quantize", choices=("qd8",), default=None,
                    help="both edgeq runs with quantize=qd8")
    args = ap.parse_args(argv)
    paths = [Path(m) for m in args.models] or sorted(SHARED.glob("*.tflite"))
    print(f"{'model':36s} {'fp32 ms':>8s} {'fp16 ms':>8s} {'LiteRT':>8s} {'16/32':>6s} "
          f"{'16/Lite':>7s} {'(min)':>11s} {'arena32 KB':>10s} {'arena16 KB':>10s} {'dev':>8s}")
    for path in paths:
        name = path.name
        try:
            runs = {p: edgeq.Interpreter(model_path=str(path), num_threads=args.threads,
                                         quantize=args.quantize, precision=p)
                    for p in ("fp32", "fp16")}
        except edgeq.ModelError as e:
            print(f"{name:36s} skipped: {str(e).splitlines()[0]}")
            continue
        runs["litert"] = LiteRT(model_path=str(path), num_threads=args.threads)
        for interp in runs.values():
            prepare(interp, name)
        outs = {}
        for key in ("fp32", "fp16"):
            runs[key].invoke()
            outs[key] = [runs[key].get_tensor(d["index"])
                         for d in runs[key].get_output_details()]
        times = {k: [] for k in runs}
        for _ in range(args.warmup):
            for interp in runs.values():
                interp.invoke()
        for _ in range(args.runs):
            for k, interp in runs.items():
                times[k].append(timed(interp))
        med = {k: statistics.median(v) * 1e3 for k, v in times.items()}
        low = {k: min(v) * 1e3 for k, v in times.items()}
        arena = {k: runs[k]._get_plan().arena_bytes / 1024 for k in ("fp32", "fp16")}
        print(f"{name:36s} {med['fp32']:8.3f} {med['fp16']:8.3f} {med['litert']:8.3f} "
              f"{med['fp16'] / med['fp32']:6.2f} {med['fp16'] / med['litert']:7.2f} "
              f"{low['fp16'] / low['fp32']:5.2f}/{low['fp16'] / low['litert']:5.2f} "
              f"{arena['fp32']:10.0f} {arena['fp16']:10.0f} "
              f"{_deviation(outs['fp16'], outs['fp32']):8.1e}", flush=True)


if __name__ == "__main__":
    main()
