"""Which board are we on? Recognise it at run time and return its configuration.

    from edgeq.board import detect_board
    board = detect_board()
    board.name, board.default_threads, board.features, board.affinity

The configurations are JSON files, one per board (board_configs/ in a source checkout, shipped
as edgeq/data/boards/ inside the package): compiler flags for cross builds, the thread count
that suits the board, a thread affinity hint, the ISA features its CPU is expected to have.

Detection, first match wins:
1. Android (Termux): ANDROID_ROOT / ANDROID_DATA / TERMUX_VERSION in the environment, or
   /system/build.prop present.
2. The device-tree model string (/proc/device-tree/model, /sys/firmware/devicetree/base/model,
   else the "Model" line Raspberry Pi kernels add to /proc/cpuinfo), matched against each
   config's `detect.model_regex` ("Raspberry Pi 4 Model B Rev 1.4").
3. The "CPU implementer" / "CPU part" lines of /proc/cpuinfo: a machine whose cores are all one
   part listed in a config's `detect.cpu_parts` ("0x41:0xd08", a Cortex-A72) gets that config.
4. Otherwise generic-aarch64, or x86_64 on x86 machines.

The thread count then comes from the machine itself where the config's policy asks for it: the
big cores of a big.LITTLE CPU (by cpu_capacity, else maximum frequency, else known LITTLE core
part numbers), or the physical cores of an SMT x86 machine; never more than the CPUs this
process may run on, and never 1 unless only one CPU is available.

Pure standard library, and it never raises on odd systems: unreadable or missing files simply
give less information. Everything is read below a `root` folder so tests can fake a machine.
Run `python -m edgeq.board` to see what it finds.
"""
from __future__ import annotations

import json
import os
import platform
import re
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

__all__ = ["Board", "detect_board", "load_configs", "board_config", "cpu_features",
           "validate_config", "config_dirs"]

# ISA feature names a config may list, per architecture.
FEATURES = {
    "aarch64": ("neon", "dotprod", "fp16", "i8mm"),
    "x86_64": ("sse2", "avx2", "fma", "f16c", "avxvnni", "avx512vnni"),
}
THREAD_POLICIES = ("fixed", "big-cores", "physical-cores")
AFFINITY_HINTS = ("none", "big-cores")

# Linux's names for those features: the "Features" line of an arm64 /proc/cpuinfo (asimd,
# asimddp, asimdhp, i8mm) and the "flags" line on x86 (Documentation/arm64/elf_hwcaps).
_CPUINFO_FEATURE = {
    "asimd": "neon", "asimddp": "dotprod", "asimdhp": "fp16", "i8mm": "i8mm",
    "sse2": "sse2", "avx2": "avx2", "fma": "fma", "f16c": "f16c",
    "avx_vnni": "avxvnni", "avx512_vnni": "avx512vnni",
}
# The same bits in getauxval(): arm64 uapi asm/hwcap.h. Under qemu-user these describe the
# emulated core while /proc/cpuinfo may still be the host's, so they are preferred when live.
_AT_HWCAP, _AT_HWCAP2 = 16, 26
_HWCAP_BITS = {"neon": (_AT_HWCAP, 1), "fp16": (_AT_HWCAP, 10), "dotprod": (_AT_HWCAP, 20),
               "i8mm": (_AT_HWCAP2, 13)}

# "implementer:part" of the LITTLE cores found in big.LITTLE phones and boards: Cortex-A35,
# A53, A55, A510, A520 (Arm, 0x41) and the Kryo 2xx/3xx/4xx "Silver" cores (Qualcomm, 0x51).
LITTLE_PARTS = frozenset({"0x41:0xd04", "0x41:0xd03", "0x41:0xd05", "0x41:0xd46", "0x41:0xd80",
                          "0x51:0x801", "0x51:0x803", "0x51:0x805"})

# Used only when no config file can be found at all (a broken install): enough to keep going.
_BUILTIN = {
    "generic-aarch64": {
        "name": "generic-aarch64", "description": "64-bit ARM (built-in fallback)",
        "arch": "aarch64", "libc": "glibc", "cores": None, "cflags": ["-march=armv8-a"],
        "qemu_cpu": "cortex-a53", "default_threads": 4, "thread_policy": "big-cores",
        "affinity": "big-cores", "features": ["neon"],
        "detect": {"model_regex": [], "cpu_parts": []},
    },
    "x86_64": {
        "name": "x86_64", "description": "x86-64 (built-in fallback)",
        "arch": "x86_64", "libc": "glibc", "cores": None, "cflags": [], "qemu_cpu": None,
        "default_threads": 4, "thread_policy": "physical-cores", "affinity": "none",
        "features": ["sse2"], "detect": {"model_regex": [], "cpu_parts": []},
    },
}


@dataclass(frozen=True)
class Board:
    """A board's configuration, resolved for the machine it was detected on."""

    name: str
    description: str
    arch: str                       # the board's architecture (aarch64 / x86_64)
    default_threads: int            # threads to use when the caller does not say
    affinity: Tuple[int, ...]       # CPUs to pin worker threads to; () = no pinning
    features: Tuple[str, ...]       # ISA features the board's CPU is expected to have
    detected_features: Tuple[str, ...]  # what this CPU reports (empty when unknown)
    cflags: Tuple[str, ...]         # compiler flags for builds aimed at this board
    matched_by: str                 # "android", "model", "cpu part", "fallback"
    model: str = ""                 # the device-tree model string, when there is one
    cpu_parts: Tuple[str, ...] = ()  # "implementer:part" per CPU from /proc/cpuinfo
    machine: str = ""               # platform.machine() of this process
    config: Dict = field(default_factory=dict, repr=False, compare=False)

    def as_dict(self) -> dict:
        return asdict(self)


# --------------------------------------------------------------------------- configurations

def config_dirs() -> List[Path]:
    """Folders searched for <board>.json, highest priority first."""
    here = Path(__file__).resolve().parent
    dirs = []
    extra = os.environ.get("EDGEQ_BOARD_CONFIGS")
    if extra:
        dirs.append(Path(extra))
    dirs.append(here / "data" / "boards")             # installed package
    dirs.append(here.parent / "board_configs")        # source checkout
    return dirs


def load_configs(dirs: Optional[Sequence[Path]] = None) -> Dict[str, dict]:
    """Every readable, valid config by name; an earlier folder overrides a later one."""
    configs: Dict[str, dict] = {}
    for folder in reversed(list(dirs if dirs is not None else config_dirs())):
        try:
            paths = sorted(Path(folder).glob("*.json"))
        except OSError:
            continue
        for path in paths:
            try:
                cfg = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                continue
            if isinstance(cfg, dict) and not validate_config(cfg):
                configs[cfg["name"]] = cfg
    for name, cfg in _BUILTIN.items():
        configs.setdefault(name, cfg)
    return configs


def board_config(name: str, dirs: Optional[Sequence[Path]] = None) -> dict:
    """One board's raw config by name (KeyError listing the known names if absent)."""
    configs = load_configs(dirs)
    if name not in configs:
        raise KeyError(f"unknown board {name!r}; known: {', '.join(sorted(configs))}")
    return configs[name]


def validate_config(cfg: dict) -> List[str]:
    """Problems with one config (an empty list when it is valid)."""
    problems = []

    def need(key, typ, what):
        value = cfg.get(key)
        if not isinstance(value, typ) or isinstance(value, bool):  # True is an int too
            problems.append(f"{key}: expected {what}, got {value!r}")
            return False
        return True

    def str_list(value):
        return isinstance(value, list) and all(isinstance(v, str) for v in value)

    need("name", str, "a string")
    need("description", str, "a string")
    if need("arch", str, "a string") and cfg["arch"] not in FEATURES:
        problems.append(f"arch: {cfg['arch']!r} is not one of {sorted(FEATURES)}")
    if cfg.get("libc") not in ("glibc", "bionic"):
        problems.append(f"libc: {cfg.get('libc')!r} is not glibc or bionic")
    cores = cfg.get("cores")
    if cores is not None and (not isinstance(cores, int) or isinstance(cores, bool) or cores < 1):
        problems.append(f"cores: expected a positive integer or null, got {cores!r}")
    if not str_list(cfg.get("cflags")):
        problems.append(f"cflags: expected a list of strings, got {cfg.get('cflags')!r}")
    if cfg.get("qemu_cpu") is not None and not isinstance(cfg.get("qemu_cpu"), str):
        problems.append(f"qemu_cpu: expected a string or null, got {cfg.get('qemu_cpu')!r}")
    if need("default_threads", int, "an integer"):
        threads = cfg["default_threads"]
        if threads < 1 or (threads == 1 and cores != 1):
            problems.append(f"default_threads: {threads} (1 only for a single-core board)")
        if isinstance(cores, int) and threads > cores:
            problems.append(f"default_threads: {threads} exceeds the board's {cores} cores")
    if cfg.get("thread_policy") not in THREAD_POLICIES:
        problems.append(f"thread_policy: {cfg.get('thread_policy')!r} not in {THREAD_POLICIES}")
    if cfg.get("affinity") not in AFFINITY_HINTS:
        problems.append(f"affinity: {cfg.get('affinity')!r} not in {AFFINITY_HINTS}")
    features = cfg.get("features")
    if not str_list(features) or not features:
        problems.append(f"features: expected a non-empty list of strings, got {features!r}")
    else:
        known = FEATURES.get(cfg.get("arch"), ())
        unknown = [f for f in features if f not in known]
        if unknown:
            problems.append(f"features: {unknown} unknown for {cfg.get('arch')} (known: {known})")
    detect = cfg.get("detect")
    if not isinstance(detect, dict):
        problems.append(f"detect: expected an object, got {detect!r}")
    else:
        regexes = detect.get("model_regex", [])
        if not str_list(regexes):
            problems.append(f"detect.model_regex: expected a list of strings, got {regexes!r}")
        else:
            for rx in regexes:
                try:
                    re.compile(rx)
                except re.error as e:
                    problems.append(f"detect.model_regex: {rx!r} does not compile ({e})")
        parts = detect.get("cpu_parts", [])
        if not str_list(parts) or not all(re.fullmatch(r"0x[0-9a-f]{2}:0x[0-9a-f]{3}", p)
                                          for p in parts):
            problems.append(f"detect.cpu_parts: expected '0xII:0xPPP' strings, got {parts!r}")
    return problems


# ------------------------------------------------------------------------------- the machine

def _read(root: Path, rel: str, limit: int = 1 << 20) -> str:
    """A small text file below root, or "" when missing or unreadable."""
    try:
        with open(root / rel, "rb") as f:
            return f.read(limit).decode("utf-8", "replace")
    except (OSError, ValueError):
        return ""


def _normalize_machine(machine: str) -> str:
    m = (machine or "").lower()
    if m in ("x86_64", "amd64", "x64", "i386", "i686", "x86"):
        return "x86_64"
    if m in ("aarch64", "arm64", "armv8l", "armv8b", "aarch64_be") or m.startswith("armv8"):
        return "aarch64"
    return m


def _cpuinfo_records(text: str) -> List[Dict[str, str]]:
    """/proc/cpuinfo as one dict per blank-line-separated record."""
    records, current = [], {}
    for line in text.splitlines():
        if not line.strip():
            if current:
                records.append(current)
                current = {}
            continue
        key, sep, value = line.partition(":")
        if sep:
            current[key.strip().lower()] = value.strip()
    if current:
        records.append(current)
    return records


def _parse_int(text: str) -> Optional[int]:
    try:
        return int(text.strip(), 0)
    except (ValueError, AttributeError):
        return None


def _cpu_parts(records: List[Dict[str, str]]) -> Dict[int, str]:
    """CPU number -> "0xII:0xPPP" for each record carrying implementer and part."""
    parts = {}
    for k, rec in enumerate(records):
        impl, part = _parse_int(rec.get("cpu implementer", "")), _parse_int(rec.get("cpu part", ""))
        if impl is None or part is None:
            continue
        cpu = _parse_int(rec.get("processor", ""))
        parts[cpu if cpu is not None else k] = f"0x{impl:02x}:0x{part:03x}"
    return parts


def _parse_cpu_list(text: str) -> List[int]:
    """ "0-3,6" -> [0, 1, 2, 3, 6]; [] on anything malformed."""
    cpus = []
    for chunk in text.strip().split(","):
        if not chunk:
            continue
        lo, sep, hi = chunk.partition("-")
        a, b = _parse_int(lo), _parse_int(hi) if sep else _parse_int(lo)
        if a is None or b is None or b < a or b - a > 4096:
            return []
        cpus.extend(range(a, b + 1))
    return sorted(set(cpus))


def _online_cpus(root: Path, records, live: bool) -> List[int]:
    cpus = _parse_cpu_list(_read(root, "sys/devices/system/cpu/online"))
    if not cpus:
        numbers = [_parse_int(r.get("processor", "")) for r in records if "processor" in r]
        cpus = sorted({n for n in numbers if n is not None})
    if not cpus and live:
        cpus = list(range(os.cpu_count() or 1))
    return cpus or [0]


def _model(root: Path, records: List[Dict[str, str]]) -> str:
    for rel in ("proc/device-tree/model", "sys/firmware/devicetree/base/model"):
        text = _read(root, rel, 4096).replace("\x00", " ").strip()
        if text:
            return text
    # Raspberry Pi kernels also print "Model : Raspberry Pi ..." in /proc/cpuinfo; on x86 the
    # "model" key is a number, which never matches a board.
    for rec in records:
        value = rec.get("model", "")
        if value and not value.isdigit():
            return value
    return ""


def _is_android(root: Path, environ) -> bool:
    if any(environ.get(k) for k in ("ANDROID_ROOT", "ANDROID_DATA", "TERMUX_VERSION")):
        return True
    try:
        return (root / "system" / "build.prop").is_file()
    except OSError:
        return False


def _per_cpu_number(root: Path, cpus: List[int], rel: str) -> Dict[int, int]:
    values = {}
    for cpu in cpus:
        value = _parse_int(_read(root, f"sys/devices/system/cpu/cpu{cpu}/{rel}", 64))
        if value is not None and value > 0:
            values[cpu] = value
    return values


def big_cores(root: Path, cpus: List[int], parts: Dict[int, str]) -> List[int]:
    """The fast cores of a big.LITTLE CPU (all of them on a homogeneous one).

    Asks, in order: the scheduler's cpu_capacity (1024 = the fastest core), the cores' maximum
    frequencies, the part numbers of known LITTLE cores. Half the top capacity, or 80 % of the
    top frequency, separates prime + big cores from LITTLE ones on the SoCs we know.
    """
    capacity = _per_cpu_number(root, cpus, "cpu_capacity")
    if len(capacity) == len(cpus) and capacity:
        top = max(capacity.values())
        return [c for c in cpus if capacity[c] * 2 >= top]
    freq = _per_cpu_number(root, cpus, "cpufreq/cpuinfo_max_freq")
    if len(freq) == len(cpus) and freq:
        top = max(freq.values())
        return [c for c in cpus if freq[c] * 5 >= top * 4]
    if parts and all(c in parts for c in cpus):
        big = [c for c in cpus if parts[c] not in LITTLE_PARTS]
        if big:
            return big
    return list(cpus)


def physical_cores(root: Path, cpus: List[int]) -> int:
    """How many distinct cores carry these CPUs (SMT siblings count once)."""
    seen = set()
    for cpu in cpus:
        base = f"sys/devices/system/cpu/cpu{cpu}/topology/"
        core = _read(root, base + "core_id", 64).strip()
        package = _read(root, base + "physical_package_id", 64).strip()
        if not core:
            return len(cpus)
        seen.add((package, core))
    return len(seen) or len(cpus)


def cpu_features(root: Path | str = "/", machine: Optional[str] = None) -> Tuple[str, ...]:
    """ISA features this CPU reports, in the config vocabulary (neon, dotprod, fp16, i8mm...)."""
    root = Path(root)
    arch = _normalize_machine(machine if machine is not None else platform.machine())
    if arch == "aarch64" and root == Path("/") and sys.platform.startswith("linux"):
        found = _hwcap_features()
        if found is not None:
            return found
    records = _cpuinfo_records(_read(root, "proc/cpuinfo"))
    for rec in records:
        flags = rec.get("features") or rec.get("flags")
        if flags:
            names = {_CPUINFO_FEATURE[f] for f in flags.split() if f in _CPUINFO_FEATURE}
            return tuple(f for f in FEATURES.get(arch, ()) if f in names)
    return ()


def _hwcap_features() -> Optional[Tuple[str, ...]]:
    try:
        import ctypes

        getauxval = ctypes.CDLL(None).getauxval
        getauxval.restype = ctypes.c_ulong
        getauxval.argtypes = [ctypes.c_ulong]
        words = {_AT_HWCAP: getauxval(_AT_HWCAP), _AT_HWCAP2: getauxval(_AT_HWCAP2)}
    except Exception:  # no ctypes, no getauxval (old libc): fall back to /proc/cpuinfo
        return None
    if not words[_AT_HWCAP]:
        return None
    return tuple(f for f in FEATURES["aarch64"]
                 if words[_HWCAP_BITS[f][0]] >> _HWCAP_BITS[f][1] & 1)


def _available(root: Path, online: List[int], live: bool) -> List[int]:
    """Online CPUs this process may run on (taskset / cgroup cpusets shrink the set)."""
    if live and hasattr(os, "sched_getaffinity"):
        try:
            allowed = os.sched_getaffinity(0)
            picked = [c for c in online if c in allowed]
            if picked:
                return picked
            return sorted(allowed) or online
        except OSError:
            pass
    return online


# ------------------------------------------------------------------------------- detection

def detect_board(root: Path | str = "/", environ=None, machine: Optional[str] = None,
                 configs: Optional[Dict[str, dict]] = None) -> Board:
    """The configuration of the board this runs on (see the module docstring).

    root, environ, machine: where to read the machine from (tests point them at fake files).
    """
    try:
        return _detect(Path(root), os.environ if environ is None else environ,
                       platform.machine() if machine is None else machine, configs)
    except Exception as e:  # detection is advisory: a surprise must never stop inference
        cfg = _BUILTIN["x86_64" if _normalize_machine(str(machine or platform.machine()))
                       == "x86_64" else "generic-aarch64"]
        return Board(name=cfg["name"], description=cfg["description"], arch=cfg["arch"],
                     default_threads=max(1, min(cfg["default_threads"], os.cpu_count() or 1)),
                     affinity=(), features=tuple(cfg["features"]), detected_features=(),
                     cflags=tuple(cfg["cflags"]), matched_by=f"fallback after error: {e!r}",
                     machine=str(machine or ""), config=dict(cfg))


def _detect(root: Path, environ, machine: str, configs) -> Board:
    configs = configs if configs is not None else load_configs()
    live = root == Path("/")
    arch = _normalize_machine(machine)
    records = _cpuinfo_records(_read(root, "proc/cpuinfo"))
    parts = _cpu_parts(records)
    model = _model(root, records)

    name, matched_by = None, "fallback"
    if _is_android(root, environ) and "android-termux" in configs:
        name, matched_by = "android-termux", "android"
    if name is None and model:
        for cfg in configs.values():
            if any(re.search(rx, model) for rx in cfg.get("detect", {}).get("model_regex", [])):
                name, matched_by = cfg["name"], "model"
                break
    distinct = set(parts.values())
    if name is None and len(distinct) == 1:
        (part,) = distinct
        for cfg in configs.values():
            if part in cfg.get("detect", {}).get("cpu_parts", []):
                name, matched_by = cfg["name"], "cpu part"
                break
    if name is None:
        name = "x86_64" if arch == "x86_64" else "generic-aarch64"
    cfg = configs.get(name) or _BUILTIN[name if name in _BUILTIN else "generic-aarch64"]

    online = _online_cpus(root, records, live)
    usable = _available(root, online, live)
    big = [c for c in big_cores(root, online, parts) if c in usable] or usable
    policy = cfg.get("thread_policy", "fixed")
    if policy == "big-cores":
        threads = len(big)
    elif policy == "physical-cores":
        threads = physical_cores(root, usable)
    else:
        threads = int(cfg.get("default_threads", 1))
    # Never more threads than usable CPUs; never 1 when two or more are usable.
    threads = max(min(threads, len(usable)), min(2, len(usable)), 1)
    heterogeneous = 0 < len(big) < len(usable)
    affinity = tuple(big) if cfg.get("affinity") == "big-cores" and heterogeneous else ()

    return Board(
        name=cfg["name"], description=cfg.get("description", ""), arch=cfg.get("arch", arch),
        default_threads=threads, affinity=affinity, features=tuple(cfg.get("features", ())),
        detected_features=cpu_features(root, machine), cflags=tuple(cfg.get("cflags", ())),
        matched_by=matched_by, model=model, cpu_parts=tuple(parts[c] for c in sorted(parts)),
        machine=machine, config=dict(cfg))


def main() -> int:
    board = detect_board()
    info = board.as_dict()
    info.pop("config")
    print(json.dumps(info, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
