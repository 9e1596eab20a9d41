"""Under tools/qemu_pytest.py: dispatch sees exactly the emulated core's features, and picks
for every kernel the most capable variant that core can run.

qemu raises SIGILL for an instruction the core lacks, so a kernel dispatched too high fails
any test that runs it; these tests also catch the opposite (a Cortex-A76 left on plain NEON
kernels because a feature bit was misread) and say which feature is wrong.
"""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

import edgeq
from edgeq import board as B
from edgeq import cli
from edgeq.runtime import cpu, find_kernel, kernel_table

CORE = os.environ.get("EDGEQ_QEMU_CPU")
# Public core specs: A53/A72 are ARMv8.0 (NEON only); A76 and Neoverse N1 are ARMv8.2 with
# dot product and fp16 arithmetic; qemu's "max" enables every feature qemu implements,
# I8MM (ARMv8.6) included.
BOARD_FEATURES = {
    "cortex-a35": ("neon",), "cortex-a53": ("neon",), "cortex-a57": ("neon",),
    "cortex-a72": ("neon",),
    "cortex-a76": ("neon", "dotprod", "fp16"), "neoverse-n1": ("neon", "dotprod", "fp16"),
    "max": ("neon", "dotprod", "fp16", "i8mm"),
}
# The same in edgeq.runtime.cpu's names (the eq_isa_feature bits dispatch uses).
DISPATCH_NAMES = {"neon": "neon", "dotprod": "neondot", "fp16": "neonfp16", "i8mm": "i8mm"}

pytestmark = pytest.mark.skipif(not CORE, reason="runs only on an emulated core "
                                "(tools/qemu_pytest.py sets EDGEQ_QEMU_CPU)")


def expected():
    if CORE not in BOARD_FEATURES:
        pytest.skip(f"no expectation written down for {CORE}")
    return BOARD_FEATURES[CORE]


def test_dispatch_detects_exactly_the_cores_features(monkeypatch):
    monkeypatch.delenv("EDGEQ_ISA", raising=False)
    want = [DISPATCH_NAMES[f] for f in expected()]
    info = edgeq.cpu_info()
    assert info["machine"] == "aarch64"
    assert info["features"] == want
    assert info["allowed"] == want


def test_board_detection_agrees_with_dispatch():
    assert B.cpu_features() == expected()
    assert B.detect_board().detected_features == expected()


def test_every_kernel_gets_the_best_variant_the_core_runs(monkeypatch):
    monkeypatch.delenv("EDGEQ_ISA", raising=False)
    have = cpu.allowed()
    variants = {}
    for name, isa in kernel_table():
        variants.setdefault(name, []).append(isa)
    assert variants, "no kernels compiled"
    for name, isas in variants.items():
        chosen = find_kernel(name, have)
        assert chosen is not None, f"{name}: no variant runs on {CORE}"
        isa = chosen[1]
        assert isa & ~have == 0, f"{name}: picked ISA bits {isa:#x}, {CORE} has {have:#x}"
        runnable = [v for v in isas if v & ~have == 0]
        better = [v for v in runnable if v != isa and v & isa == isa]
        assert not better, f"{name}: picked {isa:#x} although {better} also run on {CORE}"


def test_edgeq_info_reports_the_emulated_core(capsys, monkeypatch):
    monkeypatch.delenv("EDGEQ_ISA", raising=False)
    want = ", ".join(DISPATCH_NAMES[f] for f in expected())
    assert cli.main(["info"]) == 0
    out = capsys.readouterr().out
    assert "machine aarch64" in out
    assert f"cpu features: {want}\n" in out
    assert f"kernels may use: {want}\n" in out


def test_child_python_runs_on_the_same_core():
    """Tests that start sys.executable (test_hostile.py) must land on the same emulated core."""
    env = {k: v for k, v in os.environ.items() if k != "EDGEQ_ISA"}
    done = subprocess.run([sys.executable, "-m", "edgeq", "info"], capture_output=True,
                          text=True, timeout=300, env=env)
    assert done.returncode == 0, done.stderr
    want = ", ".join(DISPATCH_NAMES[f] for f in expected())
    assert f"cpu features: {want}\n" in done.stdout
