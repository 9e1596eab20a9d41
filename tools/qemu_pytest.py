#!/usr/bin/env python3
"""Run edgeq's test suite on an emulated ARM core.

    python tools/qemu_pytest.py --cpu cortex-a53 [--board rpi3] [pytest args ...]
    python tools/qemu_pytest.py --cpu cortex-a76 tests/test_planner.py tests/test_interpreter.py -q

Steps: cross-build a wheel for the board (tools/cross_build.py; the board defaults to the one
built around that core: cortex-a53 -> rpi3, cortex-a72 -> rpi4, cortex-a76 -> rpi5, anything
else -> generic-aarch64), install it with pip into a scratch folder, copy tests/ beside it, and
run

    qemu-aarch64 -cpu CPU -L SYSROOT SYSROOT/usr/bin/python3 -m pytest ...

with PYTHONPATH pointing at the installed wheel, so the tests exercise exactly what a user's
`pip install` would put on a board. An instruction the emulated core lacks raises SIGILL, so a
kernel dispatched to the wrong ISA fails the run.

LiteRT has no place in the arm64 root: tests that need it skip (pytest.importorskip), and the
model tests compare against the outputs recorded on x86 under tests/reference/
(tools/record_references.py). The shared model folder is linked into the scratch layout where
tests/harness.py looks for it (../shared/models from the project root).

Prints the wall time of the emulated run; exits with pytest's status.
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TOOLS = Path(__file__).resolve().parent
ROOT = TOOLS.parent
sys.path.insert(0, str(TOOLS))
import cross_build  # noqa: E402
import litert_arm  # noqa: E402
import sysroot as sysroot_tool  # noqa: E402

BOARD_FOR_CPU = {"cortex-a53": "rpi3", "cortex-a72": "rpi4", "cortex-a76": "rpi5"}
# Tests that mean nothing under emulation, left to the native run (--all keeps them): the demo
# model's trainer (25 s natively, over 10 min under qemu; its output is plain data, the same on
# every architecture), and wall-time bounds (an emulated core's speed is not a board's;
# benchmarks/arm_instructions.py measures ARM cost). A node id also deselects its parameters.
TOO_SLOW_EMULATED = ("tests/test_demo_model.py::test_script_regenerates_an_equivalent_model",
                     "tests/test_ops_conv.py::test_mobilenet_sized_layers_are_fast")
CPUS = ("cortex-a35", "cortex-a53", "cortex-a57", "cortex-a72", "cortex-a76", "neoverse-n1",
        "a64fx", "max")


def find_models(start: Path) -> Path | None:
    """The nearest shared/models folder above the project (CI: ../shared/models)."""
    for parent in [start] + list(start.parents):
        candidate = parent / "shared" / "models"
        if candidate.is_dir():
            return candidate
    return None


def install_wheel(wheel: Path, site: Path, py_version: str) -> None:
    """pip checks the wheel's tags against the emulated Python, as on a board."""
    cmd = [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-compile",
           "--disable-pip-version-check", "--target", str(site), "--platform", "linux_aarch64",
           "--python-version", py_version, "--implementation", "cp", "--only-binary=:all:",
           str(wheel)]
    env = dict(os.environ, PIP_ROOT_USER_ACTION="ignore")
    subprocess.run(cmd, check=True, env=env)


def stage_project(scratch: Path, site: Path, models: Path | None) -> Path:
    """scratch/project/{tests,tools,board_configs,pyproject.toml}, project/edgeq/data -> the
    installed package's data; scratch/shared/models -> models."""
    project = scratch / "project"
    project.mkdir()
    # Tests read the demo model's files by their source path and import tools/ scripts. The
    # data link leads into the installed wheel, so they read what the wheel ships; project/edgeq
    # has no __init__.py, so the installed package still wins the import.
    (project / "edgeq").mkdir()
    (project / "edgeq" / "data").symlink_to(site / "edgeq" / "data")
    (project / "tools").mkdir()
    for script in sorted(TOOLS.glob("*.py")):
        shutil.copy2(script, project / "tools" / script.name)
    shutil.copytree(ROOT / "tests", project / "tests",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc", ".pytest_cache"))
    # README.md and .ci/run: tests/test_readme.py checks them against the code.
    for name in ("pyproject.toml", "conftest.py", "pytest.ini", "setup.cfg", "README.md"):
        if (ROOT / name).is_file():
            shutil.copy2(ROOT / name, project / name)
    if (ROOT / ".ci").is_dir():
        shutil.copytree(ROOT / ".ci", project / ".ci")
    # tests/test_board.py checks the source configs too (the wheel carries its own copy).
    if (ROOT / "board_configs").is_dir():
        shutil.copytree(ROOT / "board_configs", project / "board_configs")
    if models is not None:
        (scratch / "shared").mkdir()
        (scratch / "shared" / "models").symlink_to(models.resolve())
    return project


SITECUSTOMIZE = """\
# Written by tools/qemu_pytest.py. Tests that start sys.executable in a child process would
# exec an aarch64 binary the host kernel cannot run (no binfmt_misc needed or touched): point
# sys.executable at a host script that starts the same emulated Python instead.
import os, sys
_wrapper = os.environ.get("EDGEQ_QEMU_PYTHON")
if _wrapper:
    sys.executable = _wrapper
"""


def write_hooks(scratch: Path, qemu: str, cpu: str, root: Path) -> tuple[Path, Path]:
    """A host script running the emulated Python, and the sitecustomize that advertises it."""
    hooks = scratch / "hooks"
    hooks.mkdir()
    (hooks / "sitecustomize.py").write_text(SITECUSTOMIZE)
    wrapper = scratch / "python3-aarch64"
    wrapper.write_text(f'#!/bin/sh\nexec "{qemu}" -cpu {cpu} -L "{root}" '
                       f'"{root}/usr/bin/python3" "$@"\n')
    wrapper.chmod(0o755)
    return hooks, wrapper


def run_pytest(cpu: str, root: Path, site: Path, project: Path, pytest_args: list,
               timeout: float | None, litert: Path | None) -> tuple[int, float]:
    qemu = shutil.which("qemu-aarch64")
    if not qemu:
        raise SystemExit("qemu-aarch64 not found: apt-get install qemu-user")
    hooks, wrapper = write_hooks(project.parent, qemu, cpu, root)
    path = [hooks, site] + ([litert] if litert else [])
    # EDGEQ_QEMU_CPU lets tests know which core they run on (tests/test_board.py checks it).
    env = sysroot_tool.clean_env({"PYTHONPATH": os.pathsep.join(map(str, path)),
                                  "EDGEQ_QEMU_CPU": cpu, "EDGEQ_QEMU_PYTHON": str(wrapper)})
    cmd = [str(wrapper), "-m", "pytest", "-p", "no:cacheprovider"] + pytest_args
    if litert:
        cmd = litert_arm.in_cpu_namespace(cmd, project.parent)
    print("+ " + " ".join(cmd), file=sys.stderr, flush=True)
    start = time.monotonic()
    try:
        code = subprocess.run(cmd, cwd=project, env=env, timeout=timeout).returncode
    except subprocess.TimeoutExpired:
        code = 124
        print(f"timed out after {timeout:.0f} s", file=sys.stderr)
    return code, time.monotonic() - start


def find_litert(mode: str, py_version: str) -> Path | None:
    """LiteRT's aarch64 install, or None when not wanted or (auto) not possible here."""
    if mode == "off":
        return None
    why = litert_arm.can_wrap()
    if why is None:
        try:
            return litert_arm.litert_site(py_version)
        except (subprocess.CalledProcessError, OSError) as e:
            why = f"installing it failed ({e})"
    if mode == "on":
        raise SystemExit(f"--litert on: {why}")
    print(f"LiteRT not used under emulation ({why}): tests needing it skip, model tests use "
          "tests/reference/", file=sys.stderr)
    return None


def main(argv=None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        usage="%(prog)s --cpu CPU [--board B] [--wheel W] [...] [pytest args]",
        allow_abbrev=False)  # never swallow an abbreviated pytest option
    p.add_argument("--cpu", required=True, choices=CPUS, help="the core qemu emulates")
    p.add_argument("--board", help="board config to build for (default: the CPU's board)")
    p.add_argument("--wheel", help="use this wheel instead of building one")
    p.add_argument("--sysroot", help="arm64 root (default: tools/sysroot.py's cache)")
    p.add_argument("--models", help="shared model folder (default: nearest shared/models above)")
    p.add_argument("--run-timeout", type=float, default=None,
                   help="seconds before the emulated run is stopped")
    p.add_argument("--keep", action="store_true", help="keep the scratch folder")
    p.add_argument("--litert", choices=("auto", "on", "off"), default="auto",
                   help="install LiteRT's aarch64 wheel so tests compare against it on the "
                   "emulated core (needs root for a private mount; auto: when possible)")
    p.add_argument("--all", action="store_true",
                   help="also run the tests skipped as too slow under emulation")
    args, pytest_args = p.parse_known_args(argv)
    # Paths into this checkout name the same files in the scratch copy.
    pytest_args = [os.path.relpath(a, ROOT) if os.path.isabs(a) and Path(a).resolve()
                   .is_relative_to(ROOT) else a for a in pytest_args]
    if not args.all:
        print("deselected as meaningless under emulation (--all runs them): "
              + ", ".join(TOO_SLOW_EMULATED), file=sys.stderr)
        pytest_args = pytest_args + [f"--deselect={t}" for t in TOO_SLOW_EMULATED]
    board = args.board or BOARD_FOR_CPU.get(args.cpu, "generic-aarch64")
    root = sysroot_tool.ensure_sysroot(args.sysroot)
    py = sysroot_tool.python_info(root)
    models = Path(args.models) if args.models else find_models(ROOT.parent)

    scratch = Path(tempfile.mkdtemp(prefix=f"edgeq-qemu-{args.cpu}-"))
    try:
        start = time.monotonic()
        wheel = Path(args.wheel) if args.wheel else cross_build.build_wheel(
            board, scratch / "dist", root)
        site = scratch / "site"
        install_wheel(wheel, site, py["version"])
        litert = find_litert(args.litert, py["version"])
        project = stage_project(scratch, site, models)
        prepared = time.monotonic() - start
        code, seconds = run_pytest(args.cpu, root, site, project, pytest_args or ["-q"],
                                   args.run_timeout, litert)
        print(f"qemu {args.cpu} (board {board}): pytest exit {code}, build+install "
              f"{prepared:.1f} s, tests {seconds:.1f} s", file=sys.stderr)
        return code
    finally:
        if args.keep:
            print(f"kept {scratch}", file=sys.stderr)
        else:
            shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
