"""Init cost, edgeq vs LiteRT: load + allocate, first invoke, peak RSS, each in a fresh process.

    python benchmarks/compare_init.py [MODEL ...] [--threads 1] [--reps 5] [--phases]

With no MODEL it takes every model in ../shared/models. Every measurement runs in a new Python
process of its own (so neither the page cache of the other runtime, its imports nor its
allocations are shared), and the processes are interleaved: repetition by repetition, model by
model, edgeq and LiteRT alternating which goes first, so both see the same machine load.

In each child, the runtime's modules are imported before the clock starts (edgeq's op modules
too, as LiteRT's library loads at its import); that import time is printed apart. Then:
  init  = Interpreter(model_path=...) + resize of open input dims + allocate_tensors()
  first = the first invoke() (inputs set beforehand, untimed)
  peak RSS = the child's ru_maxrss after the first invoke (imports included), and the growth
  over the RSS measured just before init ("model" column: what loading and running cost).
Prints minimum and median over the repetitions, and the ratios edgeq / LiteRT of init, of init +
first invoke ("sum ratio"), and of init in process CPU time ("cpu r", the steadier figure on a
machine shared with other work), all by minima; below 1.0: edgeq is faster. --phases adds, per model, the minimum of edgeq's
own phase times (read+verify, graph passes, prepare, plan, first invoke) measured in the children.
--instructions instead counts the instructions each runtime's init executes (valgrind's
callgrind, one run per model and runtime): the same figure however loaded the machine is.
"""
from __future__ import annotations

import argparse
import json
import math
import operator
import os
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

from compare_litert import SHARED, fill_inputs  # noqa: E402 (benchmarks/ is on sys.path)

ROOT = Path(__file__).resolve().parents[1]


def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / (1 << 20)


def _peak_rss_mb() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def _resize_open_dims(interp):
    """Open dims (-1 in shape_signature) as compare_litert.py and `edgeq run` use them: batch 1,
    spatial dims 224."""
    for d in interp.get_input_details():
        sig = [int(v) for v in d["shape_signature"]]
        if any(v < 0 for v in sig):
            shape = [1 if k == 0 else 224 for k, v in enumerate(sig)]
            shape = [s if v < 0 else v for s, v in zip(shape, sig)]
            interp.resize_tensor_input(d["index"], shape)


def child(runtime: str, model: str, threads: int, phases: bool) -> dict:
    start = time.perf_counter()
    if runtime == "edgeq":
        import edgeq
        from edgeq.ops.registry import supported_ops

        supported_ops()
        Interpreter = edgeq.Interpreter
    else:
        from ai_edge_litert.interpreter import Interpreter
    imports = time.perf_counter() - start
    rss0 = _rss_mb()
    result = {"imports": imports * 1e3}
    cpu = time.process_time()
    start = time.perf_counter()
    loaded = 0.0

    def init():
        nonlocal loaded
        interp = Interpreter(model_path=model, num_threads=threads)
        loaded = time.perf_counter()
        _resize_open_dims(interp)
        interp.allocate_tensors()
        return interp

    # Through operator.call, a C function called nowhere else: --instructions counts what
    # runs inside it (valgrind --toggle-collect=_operator_call).
    interp = operator.call(init) if hasattr(operator, "call") else init()  # Python >= 3.11
    end = time.perf_counter()
    result.update(load=(loaded - start) * 1e3, init=(end - start) * 1e3,
                  init_cpu=(time.process_time() - cpu) * 1e3)
    fill_inputs(interp)
    start = time.perf_counter()
    interp.invoke()
    result["first"] = (time.perf_counter() - start) * 1e3
    peak = _peak_rss_mb()
    result.update(peak=peak, model_rss=peak - rss0)
    if phases and runtime == "edgeq":
        result["phases"] = _edgeq_phases(model, threads)
    return result


def _edgeq_phases(model: str, threads: int) -> dict:
    """edgeq's init once more, phase by phase (the process is warm by now: the figures are the
    steady cost of each phase, a lower bound for the cold one above)."""
    from edgeq.graph.graph import Graph, fold_padding, fuse_activations, fuse_layer_norm
    from edgeq.graph.prepare import prepare_graph
    from edgeq.plan.planner import build_plan
    from edgeq.tflite.reader import read_model

    t = [time.perf_counter()]
    m = read_model(model)
    t.append(time.perf_counter())
    g = Graph(m, 0)
    fuse_activations(g)
    fold_padding(g)
    fuse_layer_norm(g)
    t.append(time.perf_counter())
    shapes = {}
    for i in g.inputs:
        sig = g.tensors[i].shape_signature or g.tensors[i].shape
        if any(v < 0 for v in sig):
            shapes[i] = tuple(v if v >= 0 else (1 if k == 0 else 224) for k, v in enumerate(sig))
    infos, prepared = prepare_graph(g, shapes)
    t.append(time.perf_counter())
    plan = build_plan(g, infos, prepared, threads)
    t.append(time.perf_counter())
    plan.compiled.invoke()
    t.append(time.perf_counter())
    names = ("read", "graph", "prepare", "plan", "invoke")
    return {n: (b - a) * 1e3 for n, a, b in zip(names, t, t[1:])}


VALGRIND = ["valgrind", "--tool=callgrind", "--collect-atstart=no",
            "--toggle-collect=_operator_call", "--callgrind-out-file=/dev/null"]


def _run_child(runtime: str, model: Path, threads: int, phases: bool, instructions=False):
    cmd = [sys.executable, __file__, "--child", runtime, str(model), "--threads", str(threads)]
    if instructions:
        cmd = VALGRIND + cmd
    if phases:
        cmd.append("--phases")
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    env.setdefault("PYTHONHASHSEED", "0")  # the same work in every run
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        lines = (proc.stderr.strip() or proc.stdout.strip() or "no output").splitlines()
        return lines[-1]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    if instructions:
        counted = re.search(r"Collected : (\d+)", proc.stderr)
        result["instructions"] = int(counted.group(1)) if counted else float("nan")
    return result


def _instructions_table(paths, threads: int):
    print(f"instructions of init (load + allocate), millions, one fresh process each under "
          f"callgrind (independent of machine load), {threads} thread(s)")
    print(f"{'model':34s} {'edgeq':>8s} {'LiteRT':>8s} {'ratio':>6s}")
    for path in paths:
        got = [_run_child(rt, path, threads, False, True) for rt in ("edgeq", "litert")]
        if any(isinstance(r, str) for r in got):
            why = next(r for r in got if isinstance(r, str))
            print(f"{path.name:34s} skipped: {why}"[:160])
            continue
        ours, theirs = (r["instructions"] / 1e6 for r in got)
        print(f"{path.name:34s} {ours:8.1f} {theirs:8.1f} {ours / theirs:6.2f}")


def _stats(values):
    return min(values), statistics.median(values)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("models", nargs="*")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--phases", action="store_true", help="edgeq's phase times too")
    ap.add_argument("--instructions", action="store_true",
                    help="instead: instructions of init under valgrind (one run per model)")
    ap.add_argument("--child", nargs=2, metavar=("RUNTIME", "MODEL"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        print(json.dumps(child(args.child[0], args.child[1], args.threads, args.phases)))
        return 0

    paths = [Path(m) for m in args.models] or sorted(SHARED.glob("*.tflite"))
    if args.instructions:
        _instructions_table(paths, args.threads)
        return 0
    runs = {(p, rt): [] for p in paths for rt in ("edgeq", "litert")}
    failed = {}
    for rep in range(args.reps):
        for k, path in enumerate(paths):
            order = ("edgeq", "litert") if (rep + k) % 2 == 0 else ("litert", "edgeq")
            for rt in order:
                if (path, rt) in failed:
                    continue
                r = _run_child(rt, path, args.threads, args.phases)
                if isinstance(r, str):
                    failed[(path, rt)] = r
                else:
                    runs[(path, rt)].append(r)

    try:
        load = os.getloadavg()[0]
    except OSError:
        load = float("nan")
    print(f"{args.reps} fresh processes per runtime and model, {args.threads} thread(s), "
          f"load average now {load:.2f}; times in ms, min / median; RSS in MB (peak of the "
          f"process / growth over the RSS before init), median")
    print(f"{'model':34s} {'edgeq init':>13s} {'LiteRT init':>13s} {'ratio':>5s} "
          f"{'edgeq 1st':>13s} {'LiteRT 1st':>13s} {'sum ratio':>9s} "
          f"{'edgeq RSS':>11s} {'LiteRT RSS':>11s} {'cpu r':>5s}")
    sums = []
    for path in paths:
        ours, theirs = runs[(path, "edgeq")], runs[(path, "litert")]
        why = failed.get((path, "edgeq")) or failed.get((path, "litert"))
        if why or not ours or not theirs:
            print(f"{path.name:34s} skipped: {why}"[:160])
            continue

        def col(rs, key):
            lo, med = _stats([r[key] for r in rs])
            return lo, med, f"{lo:6.2f}/{med:6.2f}"

        ei, eim, ei_s = col(ours, "init")
        li, lim, li_s = col(theirs, "init")
        ef, efm, ef_s = col(ours, "first")
        lf, lfm, lf_s = col(theirs, "first")
        total = min(r["init"] + r["first"] for r in ours) / min(
            r["init"] + r["first"] for r in theirs)
        sums.append(total)
        rss = []
        for rs in (ours, theirs):
            rss.append(f"{statistics.median(r['peak'] for r in rs):5.1f}/"
                       f"{statistics.median(r['model_rss'] for r in rs):5.1f}")
        cpu_ratio = min(r["init_cpu"] for r in ours) / min(r["init_cpu"] for r in theirs)
        print(f"{path.name:34s} {ei_s:>13s} {li_s:>13s} {ei / li:5.2f} {ef_s:>13s} {lf_s:>13s} "
              f"{total:9.2f} {rss[0]:>11s} {rss[1]:>11s} {cpu_ratio:5.2f}")
        if args.phases:
            ph = {n: min(r["phases"][n] for r in ours) for n in ours[0]["phases"]}
            print("    edgeq phases (warm, min): " + ", ".join(f"{n} {v:.2f}"
                                                              for n, v in ph.items()))
    if sums:
        geo = math.exp(sum(math.log(s) for s in sums) / len(sums))
        print(f"geomean of (init + first) edgeq / LiteRT by minima over {len(sums)} models: "
              f"{geo:.2f}")
    imports = [r["imports"] for rs in runs.values() for r in rs]
    if imports:
        e = [r["imports"] for p in paths for r in runs[(p, "edgeq")]]
        t = [r["imports"] for p in paths for r in runs[(p, "litert")]]
        if e and t:
            print(f"imports (not in init), median: edgeq {statistics.median(e):.1f} ms, "
                  f"LiteRT {statistics.median(t):.1f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
