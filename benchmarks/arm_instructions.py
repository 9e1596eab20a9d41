"""ARM cost per inference, as executed guest instructions: edgeq vs LiteRT on emulated cores.

    python benchmarks/arm_instructions.py [MODEL ...] [--cpu cortex-a72 --cpu cortex-a76]
                                          [--runs 3] [--warmup 1] [--threads 1] [--check]
    python benchmarks/arm_instructions.py --per-op [MODEL ...] [--cpu cortex-a72]

Wall time under qemu says little about a board, but the number of aarch64 instructions an
inference executes is exact, repeatable and machine-independent: a cost figure for ARM code
measured on an x86 machine. (It is not a time: it ignores memory stalls, issue width and the
difference between a cheap add and a division. Compare runtimes by it, not cores.)

How: both runtimes' aarch64 builds (edgeq's cross-built wheel for the core's board, LiteRT's
manylinux aarch64 wheel) run in the arm64 root's emulated Python under
`qemu-aarch64 -cpu CORE -plugin insn_count.so` (tools/qemu_plugin/insn_count.c, built here with
the host gcc). The guest loads the model, sets the inputs once, runs `warmup` invokes, then
marks, runs `runs` invokes, marks again. Marks are a system call no program makes, which the
plugin answers by writing its running instruction count; the per-invoke figure is the
difference of the two marks over `runs`, so interpreter start, imports, model loading and
first-invoke work (weight packing) never count. `--check` validates that on the first model:
it also runs with `runs + 2` invokes and compares the difference of whole-process totals over
the two extra invokes. Threads default to 1: spinning or idle worker threads would add
instructions that do no work.

Inputs are benchmarks/compare_litert.py's (same seeds and resize table); the outputs of both
runtimes are compared and the largest difference (relative to the output's range) printed, so
a table row is known to describe the same computation. LiteRT runs in a private mount namespace
(tools/litert_arm.py: it crashes on the host's /sys/devices/system/cpu), which needs root.

`--per-op` (edgeq only) says where the instructions go: the guest runs the plan one node at a
time (`CompiledPlan.invoke_node`, as `edgeq bench --op-profile` does) with a mark before and
after each node, and the host prints instructions per node and per op type, with the
multiply-accumulates of CONV_2D / DEPTHWISE_CONV_2D / FULLY_CONNECTED and instructions per MAC.
The cost of an empty pair of marks is measured in the guest and taken off every node; what is
left includes the few hundred instructions of one `invoke_node` call from Python, which a
whole-plan invoke does not pay (the table prints both totals).

Not part of CI: one model on two cores takes minutes of emulation.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

# Marker protocol shared with tools/qemu_plugin/insn_count.c: lseek(-1, MARK_MAGIC + tag, 0).
MARK_MAGIC = 0x6564676571000000
MARK_START, MARK_STOP = 1, 2
MARK_NODE_BEGIN, MARK_NODE_END = 3, 4  # --per-op: around each node (repeated, read in order)
DEFAULT_CPUS = ("cortex-a72", "cortex-a76")
DEFAULT_MODELS = ("mobilenet_v2.fp32.tflite", "mobilenet_v2.fp16.tflite",
                  "hand_landmark_lite.tflite")
UNSUPPORTED = 3  # guest exit status: edgeq refuses the model


# ----------------------------------------------------------------------------- guest side
# Runs inside the emulated Python: standard library, numpy and the runtime under test only.

def mark(tag: int) -> None:
    try:
        os.lseek(-1, MARK_MAGIC + tag, os.SEEK_SET)
    except OSError:
        pass  # EBADF, always: the call exists only for the plugin to see


def guest(args) -> int:
    import numpy as np

    from compare_litert import prepare  # the x86 benchmark's inputs, exactly

    if args.runtime == "edgeq":
        import edgeq

        try:
            interp = edgeq.Interpreter(model_path=args.model, num_threads=args.threads,
                                       precision=args.precision)
            prepare(interp, Path(args.model).name)
        except edgeq.ModelError as e:
            print(f"edgeq refuses the model: {e}", file=sys.stderr)
            return UNSUPPORTED
    else:
        from ai_edge_litert.interpreter import Interpreter

        interp = Interpreter(model_path=args.model, num_threads=args.threads)
        prepare(interp, Path(args.model).name)
    for _ in range(args.warmup):
        interp.invoke()
    if args.per_op:
        per_op_guest(interp, args)
    mark(MARK_START)
    for _ in range(args.runs):
        interp.invoke()
    mark(MARK_STOP)
    outputs = [interp.get_tensor(d["index"]) for d in interp.get_output_details()]
    np.savez(args.outputs, *outputs)
    return 0


def node_macs(session, node) -> int:
    """Multiply-accumulates of a CONV_2D / DEPTHWISE_CONV_2D / FULLY_CONNECTED node, else 0."""
    from edgeq.tflite.schema import BuiltinOp

    if node.op not in (BuiltinOp.CONV_2D, BuiltinOp.DEPTHWISE_CONV_2D,
                       BuiltinOp.FULLY_CONNECTED) or len(node.inputs) < 2:
        return 0
    out = 1
    for v in session.current_shape(node.outputs[0]):
        out *= int(v)
    w = session.current_shape(node.inputs[1])
    if node.op == BuiltinOp.CONV_2D:       # OHWI: each output sums H*W*I products
        per = int(w[1]) * int(w[2]) * int(w[3])
    elif node.op == BuiltinOp.DEPTHWISE_CONV_2D:  # [1, H, W, C*mult]
        per = int(w[1]) * int(w[2])
    else:                                   # [out, in]
        per = int(w[-1])
    return out * per


def per_op_guest(interp, args) -> None:
    """Marks around each node of `runs` node-by-node passes; node labels to args.nodes."""
    plan = interp._get_plan()
    compiled = plan.compiled
    session = interp._main
    for _ in range(8):  # the cost of the marks themselves (the host takes it off)
        mark(MARK_NODE_BEGIN)
        mark(MARK_NODE_END)
    for _ in range(args.runs):
        for i in range(compiled.num_nodes):
            mark(MARK_NODE_BEGIN)
            compiled.invoke_node(i)
            mark(MARK_NODE_END)
    nodes = [{"op": p.node.op_name, "index": p.node.index, "kernel": compiled.kernel_of_node[i],
              "macs": node_macs(session, p.node)} for i, p in enumerate(plan.nodes)]
    Path(args.nodes).write_text(json.dumps(nodes))


# ----------------------------------------------------------------------------- host side

ROOT = Path(__file__).resolve().parents[1]
PLUGIN_SOURCE = ROOT / "tools" / "qemu_plugin" / "insn_count.c"
PLUGIN_CACHE = Path.home() / ".cache" / "edgeq" / "qemu-plugin"


def build_plugin() -> Path:
    """insn_count.so for the host's qemu, cached by the source's hash."""
    import hashlib
    import shutil
    import subprocess

    cc = os.environ.get("CC") or shutil.which("gcc") or shutil.which("cc")
    if not cc:
        raise SystemExit("no host C compiler (gcc) to build the qemu plugin")
    key = hashlib.sha256(PLUGIN_SOURCE.read_bytes()).hexdigest()[:16]
    lib = PLUGIN_CACHE / f"insn_count-{key}.so"
    if not lib.exists():
        PLUGIN_CACHE.mkdir(parents=True, exist_ok=True)
        tmp = lib.with_suffix(f".tmp{os.getpid()}")
        subprocess.run([cc, "-shared", "-fPIC", "-O2", "-Wall", "-fvisibility=hidden",
                        "-o", str(tmp), str(PLUGIN_SOURCE)], check=True)
        tmp.replace(lib)
    return lib


def read_counts(path: Path) -> dict:
    """{tag: count of its last mark, 'total': ..., 'marks': [(tag, count), ...] in order}."""
    counts = {"marks": []}
    for line in path.read_text().splitlines():
        parts = line.split()
        if parts[:1] == ["mark"] and len(parts) == 3:
            counts[int(parts[1])] = int(parts[2])
            counts["marks"].append((int(parts[1]), int(parts[2])))
        elif parts[:1] == ["total"] and len(parts) == 2:
            counts["total"] = int(parts[1])
    return counts


class Emulator:
    """Everything needed to run the guest on one core: root, wheels, plugin, scratch."""

    def __init__(self, scratch: Path, threads: int):
        sys.path.insert(0, str(ROOT / "tools"))
        import litert_arm
        import sysroot

        why = litert_arm.can_wrap()
        if why:
            raise SystemExit(f"LiteRT cannot run under qemu here: {why}")
        self.litert_arm = litert_arm
        self.root = sysroot.ensure_sysroot()
        self.py = sysroot.python_info(self.root)
        self.clean_env = sysroot.clean_env
        self.litert = litert_arm.litert_site(self.py["version"])
        self.plugin = build_plugin()
        self.scratch = scratch
        self.threads = threads
        self.precision = "fp32"  # edgeq's precision= (the host's --precision)
        self.sites = {}

    def edgeq_site(self, cpu: str) -> Path:
        """edgeq's wheel for the core's board, installed once per board."""
        import cross_build
        import qemu_pytest

        board = qemu_pytest.BOARD_FOR_CPU.get(cpu, "generic-aarch64")
        if board not in self.sites:
            wheel = cross_build.build_wheel(board, self.scratch / f"dist-{board}", self.root)
            site = self.scratch / f"site-{board}"
            qemu_pytest.install_wheel(wheel, site, self.py["version"])
            self.sites[board] = site
        return self.sites[board]

    def run(self, cpu: str, runtime: str, model: Path, warmup: int, runs: int,
            per_op: bool = False) -> dict:
        """Counts of one emulated process: {1: at start mark, 2: at stop mark, 'total': ...};
        with per_op (edgeq), also 'nodes': the guest's node labels."""
        import subprocess

        tag = f"{cpu}-{runtime}-{model.stem}-{runs}{'-per-op' if per_op else ''}"
        counts_file = self.scratch / f"{tag}.counts"
        outputs = self.scratch / f"{tag}.npz"
        nodes = self.scratch / f"{tag}.nodes.json"
        # compare_litert.py (the inputs) imports edgeq, so LiteRT's runs see it too.
        sites = [self.edgeq_site(cpu)] if runtime == "edgeq" else [self.litert,
                                                                     self.edgeq_site(cpu)]
        cmd = ["qemu-aarch64", "-cpu", cpu, "-L", self.root,
               "-plugin", f"{self.plugin},out={counts_file}",
               self.root / "usr/bin/python3", Path(__file__).resolve(), "--guest",
               "--runtime", runtime, "--model", model, "--warmup", warmup, "--runs", runs,
               "--threads", self.threads, "--outputs", outputs, "--precision", self.precision]
        if per_op:
            cmd += ["--per-op", "--nodes", nodes]
        cmd = self.litert_arm.in_cpu_namespace(cmd, self.scratch)
        env = self.clean_env({"PYTHONPATH": os.pathsep.join(map(str, sites)),
                              "PYTHONHASHSEED": "0"})
        start = time.monotonic()
        done = subprocess.run(cmd, env=env, capture_output=True, text=True)
        seconds = time.monotonic() - start
        if done.returncode == UNSUPPORTED:
            return {"unsupported": done.stderr.strip().splitlines()[-1]}
        if done.returncode != 0:
            raise SystemExit(f"{tag}: the emulated run failed ({done.returncode}):\n"
                             + done.stderr[-3000:])
        counts = read_counts(counts_file)
        counts.update(seconds=seconds, outputs=outputs)
        if per_op:
            counts["nodes"] = json.loads(nodes.read_text())
        return counts


def output_difference(a: Path, b: Path) -> float:
    """Largest |a - b| over all outputs, relative to b's range (0 = identical)."""
    import numpy as np

    worst = 0.0
    with np.load(a) as x, np.load(b) as y:
        for key in y.files:
            ref = y[key].astype(np.float64)
            span = float(ref.max() - ref.min()) if ref.size else 0.0
            err = float(np.max(np.abs(x[key].astype(np.float64) - ref))) if ref.size else 0.0
            worst = max(worst, err / (span or 1.0))
    return worst


def per_invoke(counts: dict, runs: int) -> float:
    return (counts[MARK_STOP] - counts[MARK_START]) / runs


def host(args) -> int:
    import shutil
    import tempfile

    shared = ROOT.parent / "shared" / "models"
    models = [Path(m) for m in args.models] or [shared / m for m in DEFAULT_MODELS]
    missing = [str(m) for m in models if not m.is_file()]
    if missing:
        raise SystemExit(f"no such model: {', '.join(missing)}")
    scratch = Path(tempfile.mkdtemp(prefix="edgeq-arm-insns-"))
    results = []
    try:
        emu = Emulator(scratch, args.threads)
        emu.precision = args.precision
        if args.per_op:
            results = [per_op_host(emu, cpu, model, args) for model in models
                       for cpu in args.cpu]
        else:
            for model in models:
                results += compare_model(emu, model, args, check=args.check
                                         and model == models[0])
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1) + "\n")
    return 0


def compare_model(emu, model: Path, args, check: bool) -> list:
    """edgeq against LiteRT on every core: prints the table, returns its rows as dicts."""
    rows, results = [], []
    for cpu in args.cpu:
        ours = emu.run(cpu, "edgeq", model, args.warmup, args.runs)
        if "unsupported" in ours:
            print(f"{model.name}: skipped, {ours['unsupported']}")
            break
        ref = emu.run(cpu, "litert", model, args.warmup, args.runs)
        a, b = per_invoke(ours, args.runs), per_invoke(ref, args.runs)
        diff = output_difference(ours["outputs"], ref["outputs"])
        rows.append((cpu, a, b, diff, ours["seconds"], ref["seconds"]))
        results.append({"model": model.name, "cpu": cpu, "edgeq": a, "litert": b,
                        "output_difference": diff})
        if check and cpu == args.cpu[0]:
            check_difference(emu, cpu, model, args, ours, ref)
    if rows:
        print_table(model, rows, args)
    return results


def node_costs(counts: dict, n_nodes: int, runs: int) -> tuple[list, float]:
    """Instructions per node (average over runs, minus an empty mark pair) and that pair's
    cost, from the ordered BEGIN/END marks."""
    pairs = []
    marks = [m for m in counts["marks"] if m[0] in (MARK_NODE_BEGIN, MARK_NODE_END)]
    for (tag0, c0), (tag1, c1) in zip(marks[0::2], marks[1::2]):
        if (tag0, tag1) != (MARK_NODE_BEGIN, MARK_NODE_END):
            raise SystemExit("per-op marks out of order")
        pairs.append(c1 - c0)
    calibration, pairs = pairs[:8], pairs[8:]
    if len(pairs) != n_nodes * runs:
        raise SystemExit(f"per-op: {len(pairs)} node marks for {n_nodes} nodes x {runs} runs")
    empty = min(calibration)
    per_node = [0.0] * n_nodes
    for k, cost in enumerate(pairs):
        per_node[k % n_nodes] += (cost - empty) / runs
    return per_node, empty


def per_op_host(emu, cpu: str, model: Path, args) -> dict:
    counts = emu.run(cpu, "edgeq", model, args.warmup, args.runs, per_op=True)
    if "unsupported" in counts:
        print(f"{model.name}: skipped, {counts['unsupported']}")
        return {"model": model.name, "cpu": cpu, "unsupported": counts["unsupported"]}
    nodes = counts["nodes"]
    per_node, empty = node_costs(counts, len(nodes), args.runs)
    whole = per_invoke(counts, args.runs)
    total = sum(per_node) or 1.0
    print(f"\n{model.name} on {cpu}: edgeq guest instructions per node ({args.runs} node-by-node "
          f"passes after {args.warmup} warm-up invoke(s); an empty mark pair, {empty:,} "
          f"instructions, taken off each)")
    print(f"  {'node':>4s}  {'op':28s} {'kernel':28s} {'insns':>13s} {'%':>6s} "
          f"{'MMAC':>8s} {'insn/MAC':>9s}")
    by_type: dict = {}
    for i, (node, cost) in enumerate(zip(nodes, per_node)):
        label = f"{node['op']} (op {node['index']})"
        macs = node["macs"]
        ratio = f"{cost / macs:9.3f}" if macs else " " * 9
        mmac = f"{macs / 1e6:8.2f}" if macs else " " * 8
        print(f"  {i:4d}  {label:28s} {node['kernel']:28s} {cost:13,.0f} "
              f"{100 * cost / total:6.1f} {mmac} {ratio}")
        key = (node["op"], node["kernel"])
        n, c, m = by_type.get(key, (0, 0.0, 0))
        by_type[key] = (n + 1, c + cost, m + macs)
    print("  per op type:")
    print(f"  {'op':28s} {'kernel':28s} {'count':>5s} {'insns':>13s} {'%':>6s} {'MMAC':>8s} "
          f"{'insn/MAC':>9s}")
    for (op, kernel), (n, c, m) in sorted(by_type.items(), key=lambda kv: -kv[1][1]):
        ratio = f"{c / m:9.3f}" if m else " " * 9
        mmac = f"{m / 1e6:8.2f}" if m else " " * 8
        print(f"  {op:28s} {kernel:28s} {n:5d} {c:13,.0f} {100 * c / total:6.1f} {mmac} {ratio}")
    print(f"  {'sum of nodes':57s} {len(nodes):5d} {total:13,.0f}")
    print(f"  {'whole-plan invoke':57s} {'':5s} {whole:13,.0f}")
    sys.stdout.flush()
    return {"model": model.name, "cpu": cpu, "invoke": whole, "mark_pair": empty,
            "nodes": [dict(node, insns=cost) for node, cost in zip(nodes, per_node)]}


def check_difference(emu, cpu, model, args, ours, ref) -> None:
    """The marker figure against the (N+k) - N whole-process difference, k = 2."""
    k = 2
    for runtime, first in (("edgeq", ours), ("litert", ref)):
        more = emu.run(cpu, runtime, model, args.warmup, args.runs + k)
        by_total = (more["total"] - first["total"]) / k
        by_marks = per_invoke(first, args.runs)
        print(f"check {runtime} on {cpu}: marks {by_marks:,.0f}, (N+{k})-N totals "
              f"{by_total:,.0f} per invoke ({(by_total / by_marks - 1) * 100:+.3f}%)")


def print_table(model: Path, rows: list, args) -> None:
    print(f"\n{model.name}: guest instructions per invoke ({args.threads} thread(s), "
          f"edgeq precision {args.precision}, "
          f"{args.runs} counted invokes after {args.warmup} warm-up)")
    print(f"{'core':12s} {'edgeq':>16s} {'LiteRT':>16s} {'edgeq/LiteRT':>13s} "
          f"{'max out diff':>13s} {'emulated s':>11s}")
    for cpu, a, b, diff, s_ours, s_ref in rows:
        print(f"{cpu:12s} {a:16,.0f} {b:16,.0f} {a / b:13.2f} {diff:13.2e} "
              f"{s_ours:5.0f} +{s_ref:4.0f}")
    sys.stdout.flush()


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("models", nargs="*", help=f"default: {', '.join(DEFAULT_MODELS)}")
    p.add_argument("--cpu", action="append", help=f"qemu core (repeatable; default "
                   f"{' and '.join(DEFAULT_CPUS)})")
    p.add_argument("--runs", type=int, default=3, help="counted invokes (default 3)")
    p.add_argument("--warmup", type=int, default=1, help="uncounted invokes first (default 1)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--check", action="store_true",
                   help="validate the marks against an (N+2)-N run on the first model")
    p.add_argument("--json", help="also write the results to this file")
    p.add_argument("--precision", choices=("fp32", "fp16", "auto"), default="fp32",
                   help="edgeq's activation storage (Interpreter precision=; default fp32)")
    p.add_argument("--per-op", action="store_true",
                   help="edgeq only: instructions per node and per op type")
    # Inside the emulated Python (started by the host side):
    p.add_argument("--guest", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--runtime", choices=("edgeq", "litert"), help=argparse.SUPPRESS)
    p.add_argument("--model", help=argparse.SUPPRESS)
    p.add_argument("--outputs", help=argparse.SUPPRESS)
    p.add_argument("--nodes", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.guest:
        return guest(args)
    args.cpu = args.cpu or list(DEFAULT_CPUS)
    if args.runs < 1 or args.warmup < 0 or args.threads < 1:
        raise SystemExit("--runs and --threads must be >= 1, --warmup >= 0")
    return host(args)


if __name__ == "__main__":
    sys.exit(main())
