"""edgeq vs LiteRT, side by side in one process, interleaved, same inputs and thread count.

    python benchmarks/compare_litert.py [MODEL ...] [--threads 1] [--runs 30]

With no MODEL it takes every model in ../shared/models that edgeq can load. Prints, per model,
the median invoke time of each runtime over `runs` interleaved invokes (after warm-up) and the
ratio edgeq / LiteRT (below 1.0: edgeq is faster), then the geometric mean of the ratios. The
ratio of the minimum times is printed too: on a machine shared with other work it is the steadier
of the two. `--clock cpu` times each invoke by the calling thread's CPU time
(time.thread_time) instead of the wall clock: with one thread both runtimes compute on the
calling thread, and the time the scheduler gives other jobs on a loaded machine is left out
(cache and memory contention stay in).
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "models"
RESIZE = {"mobilenet_v3_small": (1, 224, 224, 3)}


def prepare(interp, name, seed=0):
    shape = RESIZE.get(name.split(".")[0])
    if shape:
        interp.resize_tensor_input(interp.get_input_details()[0]["index"], shape)
    interp.allocate_tensors()
    fill_inputs(interp, seed)


def fill_inputs(interp, seed=0):
    """The same seeded random inputs for every runtime (token ids < 1000 for integer inputs)."""
    rng = np.random.default_rng(seed)
    for d in interp.get_input_details():
        s = tuple(int(v) for v in d["shape"])
        x = (rng.integers(0, 1000, s) if np.issubdtype(d["dtype"], np.integer)
             else rng.uniform(-1, 1, s)).astype(d["dtype"])
        interp.set_tensor(d["index"], x)


CLOCKS = {"wall": time.perf_counter, "cpu": time.thread_time}


def timed(interp, clock=time.perf_counter):
    t0 = clock()
    interp.invoke()
    return clock() - t0


def main(argv=None):
    from ai_edge_litert.interpreter import Interpreter as LiteRT

    import edgeq  # here, not at the top: compare_init.py's LiteRT children import this module

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("models", nargs="*")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--runs", type=int, default=30)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--clock", choices=sorted(CLOCKS), default="wall",
                    help="cpu: the calling thread's CPU time (one thread only)")
    args = ap.parse_args(argv)
    if args.clock == "cpu" and args.threads != 1:
        ap.error("--clock cpu measures the calling thread: use it with --threads 1")
    clock = CLOCKS[args.clock]
    paths = [Path(m) for m in args.models] or sorted(SHARED.glob("*.tflite"))
    ratios, min_ratios = [], []
    print(f"{'model':40s} {'edgeq ms':>10s} {'LiteRT ms':>10s} {'ratio':>7s} {'min ms':>15s} "
          f"{'ratio':>6s}")
    for path in paths:
        try:
            ours = edgeq.Interpreter(model_path=str(path), num_threads=args.threads)
            prepare(ours, path.name)
        except edgeq.ModelError as e:
            print(f"{path.name:40s} skipped: {e}"[:150])
            continue
        ref = LiteRT(model_path=str(path), num_threads=args.threads)
        prepare(ref, path.name)
        for _ in range(args.warmup):
            ours.invoke()
            ref.invoke()
        t_ours, t_ref = [], []
        for _ in range(args.runs):
            t_ours.append(timed(ours, clock))
            t_ref.append(timed(ref, clock))
        a, b = statistics.median(t_ours) * 1e3, statistics.median(t_ref) * 1e3
        low_a, low_b = min(t_ours) * 1e3, min(t_ref) * 1e3
        ratios.append(a / b)
        min_ratios.append(low_a / low_b)
        print(f"{path.name:40s} {a:10.3f} {b:10.3f} {a / b:7.2f} {low_a:7.3f} {low_b:7.3f} "
              f"{low_a / low_b:6.2f}")
    if ratios:
        print(f"geometric mean ratio: {float(np.exp(np.mean(np.log(ratios)))):.2f} (medians), "
              f"{float(np.exp(np.mean(np.log(min_ratios)))):.2f} (minima) over {len(ratios)} "
              f"models, {args.threads} thread(s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
