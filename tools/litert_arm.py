"""LiteRT's aarch64 wheel under qemu-user: install it once, and run emulated programs where it
works.

    site = litert_site("3.11")                 # cached pip --target folder (no numpy: the root's)
    cmd = in_cpu_namespace(cmd, scratch)       # the command, wrapped so LiteRT can start

Why the wrapper: qemu-user 7.2 shows the guest the host's /sys/devices/system/cpu. LiteRT's CPU
probe (cpuinfo, for XNNPack) reads the per-CPU folders there, finds x86 facts and crashes
(SIGSEGV). With that folder replaced by one holding only the host's `possible`, `present` and
`online` lists, the probe reads the CPU count, takes the ISA features from getauxval (which
qemu answers for the emulated core), and XNNPack starts ("Created TensorFlow Lite XNNPACK
delegate"). An *empty* folder also stops the crash, but then the probe fails and LiteRT runs
without XNNPack: a different, slower LiteRT than the one users get. The replacement is a bind
mount in a private mount namespace (`unshare -m`), so only the wrapped command sees it; it
needs root (or a user namespace), hence `can_wrap()`.

Other programs in the namespace (edgeq, numpy, os.cpu_count) read the same three lists, so
they see this machine's CPU count as before.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

CACHE = Path.home() / ".cache" / "edgeq" / "litert-aarch64"
DEFAULT_VERSION = "2.3.0"
# LiteRT 2.x's aarch64 wheels are manylinux_2_27; a bookworm root has glibc 2.36.
PLATFORM = "manylinux_2_27_aarch64"
CPU_LISTS = ("possible", "present", "online")
HOST_CPU_DIR = Path("/sys/devices/system/cpu")


def host_litert_version() -> str:
    """The version the x86 tests use, so both architectures compare against the same LiteRT."""
    try:
        from importlib.metadata import version

        return version("ai-edge-litert")
    except Exception:
        return DEFAULT_VERSION


def litert_site(py_version: str, version: str | None = None) -> Path:
    """A folder with ai-edge-litert for aarch64 and its dependencies except numpy.

    numpy is left out on purpose: the root's numpy (the one edgeq's tests and benchmarks use)
    serves both runtimes, so neither pays for a different numpy. Built once per version and
    Python; a stamp file marks a complete folder.
    """
    version = version or host_litert_version()
    site = CACHE / f"{version}-cp{py_version.replace('.', '')}"
    stamp = site / ".edgeq-litert.json"
    if stamp.is_file():
        return site
    tmp = site.with_name(site.name + f".tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    cmd = [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
           "--no-compile", "--target", str(tmp), "--platform", PLATFORM,
           "--python-version", py_version, "--implementation", "cp", "--only-binary=:all:",
           f"ai-edge-litert=={version}"]
    print("+ " + " ".join(cmd), file=sys.stderr, flush=True)
    env = dict(os.environ, PIP_ROOT_USER_ACTION="ignore")
    try:
        subprocess.run(cmd, check=True, env=env)
        for entry in tmp.iterdir():
            if entry.name.startswith("numpy"):
                shutil.rmtree(entry) if entry.is_dir() else entry.unlink()
        (tmp / ".edgeq-litert.json").write_text(json.dumps(
            {"ai-edge-litert": version, "python": py_version, "platform": PLATFORM}) + "\n")
        if not stamp.is_file():
            shutil.rmtree(site, ignore_errors=True)  # an unfinished folder
        try:
            tmp.rename(site)
        except OSError:
            if not stamp.is_file():
                raise
            shutil.rmtree(tmp)  # a parallel run finished first: use its folder
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return site


def can_wrap() -> str | None:
    """None when in_cpu_namespace() can work here, else why not."""
    if not shutil.which("unshare"):
        return "unshare (util-linux) is not installed"
    if os.geteuid() != 0:
        return "a private mount needs root"
    return None


def fake_cpu_dir(scratch: Path) -> Path:
    """scratch/cpu: this machine's possible/present/online CPU lists and nothing else."""
    folder = scratch / "cpu"
    folder.mkdir(parents=True, exist_ok=True)
    for name in CPU_LISTS:
        try:
            text = (HOST_CPU_DIR / name).read_text()
        except OSError:
            text = f"0-{max((os.cpu_count() or 1) - 1, 0)}\n"
        (folder / name).write_text(text)
    return folder


def in_cpu_namespace(cmd: list, scratch: Path) -> list:
    """`cmd` run in a private mount namespace where /sys/devices/system/cpu is fake_cpu_dir."""
    why = can_wrap()
    if why:
        raise SystemExit(f"cannot run LiteRT under qemu here: {why}")
    fake = fake_cpu_dir(scratch)
    script = 'mount --bind "$0" /sys/devices/system/cpu && exec "$@"'
    return ["unshare", "--mount", "--propagation", "private", "sh", "-c", script, str(fake)] \
        + [str(c) for c in cmd]
