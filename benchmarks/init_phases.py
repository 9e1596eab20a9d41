"""Instructions (callgrind) or CPU time of edgeq's read and graph phases of init, per model.

    python benchmarks/init_phases.py [MODEL ...] [--time] [--reps 20]

read: read_model (verify + parse the flatbuffer). graph: Graph() plus the structural passes
(fuse_activations, fold_padding, fuse_layer_norm), as edgeq.Interpreter runs them. Each phase is
counted in a fresh process under callgrind, collecting only inside operator.call (a C function
nothing else here calls), after the imports and one warm-up run of both phases, so the figure
is the steady cost of one phase, independent of machine load. --time instead prints the
minimum process CPU time of --reps runs per phase (in one process).
"""
from __future__ import annotations

import argparse
import operator
import os
import re
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MODELS = ROOT.parent / "shared" / "models"
DEFAULT = ("iris_landmark", "palm_detection_lite", "mobilenet_v2.fp32", "tiny_bert.fp32",
           "ds_cnn_kws.fp32")
VALGRIND = ["valgrind", "--tool=callgrind", "--collect-atstart=no",
            "--toggle-collect=_operator_call", "--callgrind-out-file=/dev/null"]


def _phases():
    from edgeq.graph.graph import Graph, fold_padding, fuse_activations, fuse_layer_norm
    from edgeq.tflite.reader import read_model

    def graph(model):
        g = Graph(model, 0)
        fuse_activations(g)
        fold_padding(g)
        fuse_layer_norm(g)
        return g

    return read_model, graph


def child(path: str, phase: str):
    read, graph = _phases()
    model = read(path)
    graph(model)  # warm-up: lazy imports and caches
    if phase == "read":
        operator.call(read, path)
    else:
        operator.call(graph, model)


def _count(path: Path, phase: str) -> float:
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""),
               PYTHONHASHSEED="0")
    proc = subprocess.run(VALGRIND + [sys.executable, __file__, "--child", str(path), phase],
                          capture_output=True, text=True, env=env)
    got = re.search(r"Collected : (\d+)", proc.stderr)
    if proc.returncode or not got:
        raise SystemExit(f"{path.name} {phase}: {proc.stderr.strip().splitlines()[-1:]}")
    return int(got.group(1)) / 1e6


def _times(path: Path, reps: int):
    read, graph = _phases()
    best = [float("inf")] * 2
    for _ in range(reps):
        t0 = time.process_time()
        model = read(str(path))
        t1 = time.process_time()
        graph(model)
        t2 = time.process_time()
        best = [min(best[0], t1 - t0), min(best[1], t2 - t1)]
    return [b * 1e3 for b in best]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("models", nargs="*")
    ap.add_argument("--time", action="store_true", help="CPU milliseconds instead")
    ap.add_argument("--reps", type=int, default=20)
    ap.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        return child(*args.child)
    paths = [Path(m) for m in args.models] or [MODELS / f"{m}.tflite" for m in DEFAULT]
    unit = f"CPU ms, min of {args.reps}" if args.time else "M instructions (callgrind)"
    print(f"{'model':28s} {'read':>8s} {'graph':>8s}   ({unit})")
    for path in paths:
        got = _times(path, args.reps) if args.time else [_count(path, p) for p in ("read", "graph")]
        print(f"{path.name:28s} {got[0]:8.2f} {got[1]:8.2f}")


if __name__ == "__main__":
    main()
