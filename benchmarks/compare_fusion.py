"""edgeq with and without the convolution epilogue fusion, interleaved in one process.

    python benchmarks/compare_fusion.py [--runs 300] [--fusion conv|depthwise|both] MODEL ...

Two interpreters per model, one built with edgeq/graph/graph.py fuse_conv_epilogues (residual
ADD, PRELU, HARD_SWISH folded into the GEMM convolutions; `--fusion depthwise`:
fuse_depthwise_hard_swish, HARD_SWISH folded into the depthwise convolutions; `both`) and one
without, invoked in turn on
the same input. Prints the minimum and median invoke time of each and fused / unfused: both
builds share the machine's load, so the ratio holds on a busy machine where ratios against a
build measured at another time do not.
"""
from __future__ import annotations

import argparse
import statistics
import sys

import numpy as np

import edgeq
import edgeq.graph.graph as graph
from compare_litert import CLOCKS, RESIZE, timed


PASSES = {"conv": ("fuse_conv_epilogues",), "depthwise": ("fuse_depthwise_hard_swish",),
          "both": ("fuse_conv_epilogues", "fuse_depthwise_hard_swish")}


def interpreter(path: str, fused: bool, fusion: str = "conv"):
    real = {name: getattr(graph, name) for name in PASSES[fusion]}
    if not fused:
        for name in real:
            setattr(graph, name, lambda g: 0)
    try:
        it = edgeq.Interpreter(model_path=path, num_threads=1)
    finally:
        for name, fn in real.items():
            setattr(graph, name, fn)
    detail = it.get_input_details()[0]
    shape = RESIZE.get(path.rsplit("/", 1)[-1].split(".")[0])
    if shape:
        it.resize_tensor_input(detail["index"], shape)
    it.allocate_tensors()
    detail = it.get_input_details()[0]
    x = np.random.default_rng(0).uniform(-1, 1, detail["shape"]).astype(np.float32)
    it.set_tensor(detail["index"], x)
    it.invoke()
    return it


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("models", nargs="+")
    ap.add_argument("--runs", type=int, default=300)
    ap.add_argument("--fusion", choices=sorted(PASSES), default="conv",
                    help="the pass(es) the unfused interpreter goes without")
    ap.add_argument("--clock", choices=sorted(CLOCKS), default="wall",
                    help="cpu: the calling thread's CPU time (compare_litert.py --clock)")
    args = ap.parse_args(argv)
    print(f"{'model':34s} {'unfused ms':>16s} {'fused ms':>16s}  fused/unfused (min, median)")
    for path in args.models:
        runners = [interpreter(path, False, args.fusion), interpreter(path, True, args.fusion)]
        times = [[], []]
        for _ in range(args.runs):
            for k, it in enumerate(runners):
                times[k].append(timed(it, CLOCKS[args.clock]))
        low = [min(t) * 1e3 for t in times]
        mid = [statistics.median(t) * 1e3 for t in times]
        print(f"{path.rsplit('/', 1)[-1]:34s} {low[0]:7.3f} / {mid[0]:7.3f} {low[1]:7.3f} / "
              f"{mid[1]:7.3f}  {low[1] / low[0]:.3f} {mid[1] / mid[0]:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
