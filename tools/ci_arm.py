#!/usr/bin/env python3
"""CI's ARM stage: the test suite on four emulated cores, two at a time.

    python tools/ci_arm.py [--jobs 2] [--run-timeout 1500] [--only cortex-a53 ...]

Runs tools/qemu_pytest.py with LiteRT's aarch64 wheel (`--litert on`: tests compare against
LiteRT on the emulated core itself; a missing LiteRT fails the stage rather than quietly
skipping half the suite):

    cortex-a53  (Pi 3, plain NEON)           the whole suite
    cortex-a76  (Pi 5, dotprod + fp16)       the whole suite
    cortex-a72  (Pi 4, plain NEON)           kernels (QD8 too), dispatch, threads + a few models
    max         (everything, i8mm included)  the same subset

Each run's output goes to a log, printed whole when the run fails and as its last lines when
it passes, so parallel runs never interleave. Ends with one line per run (wall time and
pytest's summary) and a total `arm: N passed, N failed, N skipped` line; exits 1 when any run
failed or timed out. Needs what tools/README.md's setup installs (cross gcc, qemu-user,
the arm64 root) and root for LiteRT's private mount.
"""
from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

TOOLS = Path(__file__).resolve().parent
ROOT = TOOLS.parent
sys.path.insert(0, str(TOOLS))
import litert_arm  # noqa: E402
import sysroot as sysroot_tool  # noqa: E402

# The models in the subset: small ones edgeq runs today, covering conv, depthwise and fp16.
SUBSET_MODELS = ("mobilenet_v2", "hand_landmark")
# Longest first: with two workers the two full runs start together.
RUNS = (("cortex-a53", "full"), ("cortex-a76", "full"), ("cortex-a72", "subset"),
        ("max", "subset"))
SUMMARY = re.compile(r"^=*\s*(\d+ (passed|failed|skipped|deselected|error|errors|xfailed|"
                     r"xpassed|warnings?)\b.*?)\s*=*$")


def subset_args() -> list:
    """Kernel-level tests (every op file, so new ones join by themselves; the QD8 kernels, whose
    i8mm variants only `max` runs) + a few models."""
    files = sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / "tests").glob("test_ops_*.py"))
    files += [f"tests/{name}" for name in ("test_dispatch.py", "test_arm_cores.py",
                                           "test_threads.py", "test_qd8_kernels.py",
                                           "test_models.py")
              if (ROOT / "tests" / name).is_file()]
    keep_models = " or ".join(SUBSET_MODELS)
    return files + ["-k", f"not test_model_matches_litert or {keep_models}"]


def summary_line(log: str) -> str:
    for line in reversed(log.splitlines()):
        m = SUMMARY.match(line.strip())
        if m:
            return m.group(1)
    return "no pytest summary"


def counts(summary: str) -> dict:
    found = {}
    for number, word in re.findall(r"(\d+) (passed|failed|skipped|errors?)", summary):
        key = "failed" if word.startswith("error") else word
        found[key] = found.get(key, 0) + int(number)
    return found


def run_one(cpu: str, scope: str, logs: Path, timeout: float) -> dict:
    cmd = [sys.executable, str(TOOLS / "qemu_pytest.py"), "--cpu", cpu, "--litert", "on",
           "--run-timeout", str(timeout), "-q"]
    cmd += subset_args() if scope == "subset" else []
    log_path = logs / f"{cpu}.log"
    start = time.monotonic()
    with open(log_path, "w") as log:
        code = subprocess.run(cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
                              stdin=subprocess.DEVNULL).returncode
    text = log_path.read_text(errors="replace")
    return {"cpu": cpu, "scope": scope, "code": code, "seconds": time.monotonic() - start,
            "log": text, "summary": summary_line(text)}


def report(result: dict, tail: int = 15) -> None:
    lines = result["log"].splitlines()
    status = "passed" if result["code"] == 0 else f"FAILED (exit {result['code']})"
    print(f"\n===== ARM {result['cpu']} ({result['scope']}): {status}, "
          f"{result['seconds']:.0f} s =====")
    print("\n".join(lines if result["code"] != 0 else lines[-tail:]), flush=True)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--jobs", type=int, default=min(2, os.cpu_count() or 1),
                   help="runs at a time (default 2: each emulated run uses about one core)")
    p.add_argument("--run-timeout", type=float, default=1500,
                   help="seconds before one emulated pytest run is stopped (default 1500)")
    p.add_argument("--only", nargs="+", metavar="CPU", help="run just these cores")
    args = p.parse_args(argv)
    runs = [r for r in RUNS if not args.only or r[0] in args.only]

    start = time.monotonic()
    # Done once up front so parallel runs never race to create them.
    root = sysroot_tool.ensure_sysroot()
    why = litert_arm.can_wrap()
    if why:
        print(f"ARM stage cannot run LiteRT under qemu: {why}", file=sys.stderr)
        return 1
    litert_arm.litert_site(sysroot_tool.python_info(root)["version"])
    print(f"ARM stage: setup {time.monotonic() - start:.0f} s; running "
          + ", ".join(f"{c} ({s})" for c, s in runs) + f", {args.jobs} at a time", flush=True)

    with tempfile.TemporaryDirectory(prefix="edgeq-ci-arm-") as tmp:
        with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
            futures = [pool.submit(run_one, cpu, scope, Path(tmp), args.run_timeout)
                       for cpu, scope in runs]
            results = []
            for future in futures:
                results.append(future.result())
                report(results[-1])

    print("\nARM stage summary:")
    total = {"passed": 0, "failed": 0, "skipped": 0}
    for r in results:
        print(f"  {r['cpu']:11s} {r['scope']:7s} {r['seconds']:6.0f} s  exit {r['code']}  "
              f"{r['summary']}")
        for key, value in counts(r["summary"]).items():
            total[key] = total.get(key, 0) + value
    failed_runs = [r["cpu"] for r in results if r["code"] != 0]
    if failed_runs and total["failed"] == 0:
        total["failed"] = len(failed_runs)  # a crash or timeout before pytest's summary
    print(f"  wall time {time.monotonic() - start:.0f} s")
    print(f"arm: {total['passed']} passed, {total['failed']} failed, "
          f"{total['skipped']} skipped")
    return 1 if failed_runs else 0


if __name__ == "__main__":
    sys.exit(main())
