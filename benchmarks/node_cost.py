"""Per-node fixed cost of the executor: chains of N tiny ops, edgeq vs LiteRT, interleaved.

    python benchmarks/node_cost.py [--op add|relu] [--width 8] [--threads 1] [--runs 400]

A chain of N ops on [1, width] tensors does almost no arithmetic, so the invoke time is the
fixed cost of an invoke plus N times the cost of running one node (the plan walk in
kernels/core/run.c, the kernel's call and its parameter reads). The slope between the shortest
and the longest chain is that per-node cost. (LiteRT's XNNPack may fuse chains of clamps, so
its relu slope can read as 0.)
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

import edgeq
from edgeq.tflite.schema import BuiltinOp
from edgeq.tflite.writer import ModelBuilder

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

LENGTHS = (1, 50, 200)


def chain(n, op, width):
    b = ModelBuilder(description="node cost chain")
    x = b.add_tensor("x", (1, width), np.float32)
    c = b.add_tensor("c", (1, width), np.float32, data=np.full((1, width), 0.5, np.float32))
    t = x
    for i in range(n):
        y = b.add_tensor(f"y{i}", (1, width), np.float32)
        if op == "add":
            b.add_operator(BuiltinOp.ADD, [t, c], [y])
        else:
            b.add_operator(BuiltinOp.RELU, [t], [y])
        t = y
    b.set_inputs([x])
    b.set_outputs([t])
    return b.build()


def best_ns(it, runs):
    best = None
    for _ in range(runs):
        t0 = time.perf_counter_ns()
        it.invoke()
        dt = time.perf_counter_ns() - t0
        best = dt if best is None else min(best, dt)
    return best


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--op", choices=["add", "relu"], default="add")
    ap.add_argument("--width", type=int, default=8)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--runs", type=int, default=400)
    args = ap.parse_args()
    try:
        from ai_edge_litert.interpreter import Interpreter as LiteRT
    except ImportError:
        LiteRT = None
    rows = []
    for n in LENGTHS:
        model = chain(n, args.op, args.width)
        its = {"edgeq": edgeq.Interpreter(model_content=model, num_threads=args.threads)}
        if LiteRT is not None:
            its["LiteRT"] = LiteRT(model_content=model, num_threads=args.threads)
        for it in its.values():
            it.allocate_tensors()
            it.set_tensor(it.get_input_details()[0]["index"],
                          np.ones((1, args.width), np.float32))
        best = {k: None for k in its}
        for _ in range(5):  # interleaved rounds
            for k, it in its.items():
                t = best_ns(it, args.runs)
                best[k] = t if best[k] is None else min(best[k], t)
        rows.append((n, best))
        print(f"{args.op} x {n:3d}: " + ", ".join(f"{k} {v / 1e3:.2f} us" for k, v in best.items()))
    (n0, b0), (n1, b1) = rows[0], rows[-1]
    print("per node (slope): " + ", ".join(f"{k} {(b1[k] - b0[k]) / (n1 - n0):.1f} ns"
                                           for k in b0))


if __name__ == "__main__":
    main()
