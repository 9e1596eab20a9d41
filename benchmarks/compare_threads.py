"""Thread speedups of edgeq and LiteRT, side by side in one process, interleaved.

    python benchmarks/compare_threads.py [MODEL ...] [--threads 1,2] [--runs 40]

For each model, one interpreter per runtime and thread count, all invoked in turn `runs` times
(after warm-up) on the same inputs. Prints the minimum and median invoke time of each, and the
speedup of each thread count over the first one (minimum / minimum, median / median), with the
load average before and after: on a shared machine the minimum is the steadier figure.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
from pathlib import Path

import edgeq
from compare_litert import SHARED, prepare, timed

DEFAULT_MODELS = ("mobilenet_v2.fp32", "palm_detection_lite", "ds_cnn_kws.qd8")


def main(argv=None):
    from ai_edge_litert.interpreter import Interpreter as LiteRT

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("models", nargs="*")
    ap.add_argument("--threads", default="1,2", help="comma-separated thread counts")
    ap.add_argument("--runs", type=int, default=40)
    ap.add_argument("--warmup", type=int, default=5)
    args = ap.parse_args(argv)
    counts = [int(t) for t in args.threads.split(",")]
    paths = [Path(m) for m in args.models] or [SHARED / f"{m}.tflite" for m in DEFAULT_MODELS]
    print(f"load average {os.getloadavg()[0]:.2f}; threads {counts}; minimum / median of "
          f"{args.runs} interleaved runs, ms; speedup over {counts[0]} thread(s)")
    for path in paths:
        runners = {}
        for n in counts:
            runners["edgeq", n] = edgeq.Interpreter(model_path=str(path), num_threads=n)
            runners["LiteRT", n] = LiteRT(model_path=str(path), num_threads=n)
        for it in runners.values():
            prepare(it, path.name)
        for _ in range(args.warmup):
            for it in runners.values():
                it.invoke()
        times = {key: [] for key in runners}
        for _ in range(args.runs):
            for key, it in runners.items():
                times[key].append(timed(it) * 1e3)
        print(path.name)
        for runtime in ("edgeq", "LiteRT"):
            base = times[runtime, counts[0]]
            cells = []
            for n in counts:
                t = times[runtime, n]
                cells.append(f"{n}T {min(t):7.3f} / {statistics.median(t):7.3f}"
                             f" ({min(base) / min(t):.2f}x / "
                             f"{statistics.median(base) / statistics.median(t):.2f}x)")
            print(f"  {runtime:7s} " + "   ".join(cells))
    print(f"load average {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
