"""CPU features and the ISA level kernels may use: found once, lowered by EDGEQ_ISA.

EDGEQ_ISA names a level (below); kernels needing anything above it are never chosen. It can only
lower what the CPU has — for tests of the fallbacks, and for users whose CPU reports features
it does not really have.
"""
from __future__ import annotations

import functools
import os
import platform

from edgeq.runtime.executor import cpu_features

# Feature bits, as kernels/include/edgeq/cpu.h defines them.
FEATURES = {
    "avx2": 1 << 0, "avxvnni": 1 << 1, "avx512": 1 << 2, "avx512vnni": 1 << 3,
    "neon": 1 << 8, "neondot": 1 << 9, "neonfp16": 1 << 10, "i8mm": 1 << 11,
}

# Levels from lowest to highest: each allows the features listed and those of every level below.
LEVELS = {
    "scalar": [],
    "avx2": ["avx2"],
    "avxvnni": ["avxvnni"],
    "avx512": ["avx512"],
    "avx512vnni": ["avx512vnni"],
    "neon": ["neon"],
    "neondot": ["neondot", "neonfp16"],
    "i8mm": ["i8mm"],
}
_ORDER = {"x86": ["scalar", "avx2", "avxvnni", "avx512", "avx512vnni"],
          "arm": ["scalar", "neon", "neondot", "i8mm"]}


def _family() -> str:
    machine = platform.machine().lower()
    return "arm" if machine.startswith(("aarch64", "arm")) else "x86"


@functools.lru_cache(maxsize=None)
def detected() -> int:
    """The CPU's feature bits, probed once (cpuid traps to the hypervisor in a VM: ~30 us)."""
    return cpu_features()


# os.environ's own dict and the key EDGEQ_ISA has in it, where os.environ is CPython's _Environ.
try:
    _ISA_KEY = os.environ.encodekey("EDGEQ_ISA")
except AttributeError:
    _ISA_KEY = None


def _isa_setting() -> str:
    """EDGEQ_ISA as set now, normalized. Read on every call (tests and users change it at run
    time), but from os.environ's own dict where it has one: os.environ.get raises and catches a
    KeyError when the variable is unset (~2 us), and an init asks a hundred times."""
    data = getattr(os.environ, "_data", None) if _ISA_KEY is not None else None
    if data is None:
        return os.environ.get("EDGEQ_ISA", "").strip().lower()
    raw = data.get(_ISA_KEY)
    return os.environ.decodevalue(raw).strip().lower() if raw is not None else ""


@functools.lru_cache(maxsize=None)
def level_mask(level: str) -> int:
    """Feature bits a level allows (itself and every lower level of its family)."""
    order = _ORDER[_family()]
    if level not in order:
        raise ValueError(f"EDGEQ_ISA={level!r} is not one of {', '.join(order)}")
    mask = 0
    for name in order[:order.index(level) + 1]:
        for feature in LEVELS[name]:
            mask |= FEATURES[feature]
    return mask


def allowed() -> int:
    """Features kernels may use in this process: the CPU's, capped by EDGEQ_ISA if set."""
    mask = detected()
    level = _isa_setting()
    if level:
        mask &= level_mask(level)
    return mask


def reference_only() -> bool:
    """EDGEQ_ISA=scalar: prepare picks the reference kernels (the spec), not the packed-weight
    paths whose portable microkernels would otherwise run where no ISA variant exists."""
    return _isa_setting() == "scalar"


def names(mask: int) -> list:
    return [n for n, bit in FEATURES.items() if mask & bit]


def cpu_info() -> dict:
    """What edgeq found and what it will use (also printed by `edgeq info`)."""
    return {
        "machine": platform.machine(),
        "features": names(detected()),
        "allowed": names(allowed()),
        "EDGEQ_ISA": os.environ.get("EDGEQ_ISA") or None,
    }
