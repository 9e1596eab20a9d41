#!/usr/bin/env python3
"""Build (once) and cache an arm64 Debian root: python3, its headers, numpy, pytest, flatbuffers.

    python tools/sysroot.py [--dir DIR] [--suite SUITE] [--force]

The root serves two purposes: its Python headers and sysconfig data are what tools/cross_build.py
compiles edgeq against, and `qemu-aarch64 -L ROOT ROOT/usr/bin/python3` runs the test suite
on an emulated ARM core (tools/qemu_pytest.py).

How: `debootstrap --foreign --arch=arm64` resolves and downloads the packages (its first stage
only unpacks the essential set), then every downloaded .deb is unpacked with
`dpkg-deb --fsys-tarfile | tar -x`. Nothing runs inside the root (no chroot, no second stage),
so the work maintainer scripts would have done is done here by hand: byte-compiling the Python
libraries (a cold `import numpy, pytest` costs 7 s under emulation, 2 s with .pyc files), and
the update-alternatives links `libblas.so.3` / `liblapack.so.3` numpy loads BLAS/LAPACK by.

The suite defaults to this machine's Debian release, so the root's glibc matches the one the
cross compiler (gcc-aarch64-linux-gnu from the same release) links against.

Idempotent: a stamp file records what was built; when it matches, the command only prints the
path (milliseconds). The root is assembled in a temporary folder and renamed into place, so an
interrupted build never leaves a half-made root behind a valid stamp.
Needs root (debootstrap does), the debootstrap package, dpkg-deb and tar, and
qemu-user (optional) for the smoke test.
"""
from __future__ import annotations

import argparse
import ast
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

DEFAULT_DIR = Path.home() / ".cache" / "edgeq" / "sysroot-arm64"
DEFAULT_MIRROR = "http://deb.debian.org/debian"
# python3-flatbuffers: edgeq.tflite.writer (used by the tests) needs it.
PACKAGES = ["python3", "python3-dev", "python3-numpy", "python3-pytest", "python3-flatbuffers"]
STAMP = ".edgeq-sysroot.json"
# Bump when the way the root is assembled changes, so cached roots get rebuilt.
LAYOUT_VERSION = 2
TRIPLET = "aarch64-linux-gnu"
# Documentation and translations are not needed to compile or to run tests.
TRIM = ["usr/share/doc", "usr/share/man", "usr/share/info", "usr/share/locale",
        "usr/share/lintian", "var/cache/apt/archives"]


def os_release() -> dict:
    info = {}
    try:
        for line in Path("/etc/os-release").read_text().splitlines():
            key, sep, value = line.partition("=")
            if sep:
                info[key.strip()] = value.strip().strip('"')
    except OSError:
        pass
    return info


def host_suite() -> str:
    """The codename of this machine's release (bookworm on Debian 12)."""
    return os_release().get("VERSION_CODENAME") or "bookworm"


def default_mirror() -> str:
    """Debian's archive carries arm64 itself; Ubuntu keeps it on ports (untested here)."""
    if os_release().get("ID") == "ubuntu":
        return "http://ports.ubuntu.com/ubuntu-ports"
    return DEFAULT_MIRROR


def wanted(suite: str) -> dict:
    return {"layout": LAYOUT_VERSION, "suite": suite, "arch": "arm64", "packages": PACKAGES}


def read_stamp(root: Path) -> dict | None:
    try:
        return json.loads((root / STAMP).read_text())
    except (OSError, ValueError):
        return None


def is_ready(root: Path, suite: str) -> bool:
    stamp = read_stamp(root)
    if not stamp or not (root / "usr/bin/python3").exists():
        return False
    return {k: stamp.get(k) for k in wanted(suite)} == wanted(suite)


def run(cmd, **kwargs):
    print("+ " + " ".join(str(c) for c in cmd), file=sys.stderr, flush=True)
    return subprocess.run([str(c) for c in cmd], check=True, **kwargs)


def unpack_debs(root: Path) -> int:
    """Unpack every downloaded .deb over the root; returns how many there were.

    --keep-directory-symlink: bookworm roots are merged-/usr (/lib -> usr/lib), while packages
    still ship files under ./lib; tar must write through the link, never replace it by a folder.
    """
    debs = sorted((root / "var/cache/apt/archives").glob("*.deb"))
    if not debs:
        raise SystemExit(f"no .deb files under {root}/var/cache/apt/archives: debootstrap failed?")
    for deb in debs:
        tar_stream = subprocess.Popen(["dpkg-deb", "--fsys-tarfile", str(deb)],
                                      stdout=subprocess.PIPE)
        subprocess.run(["tar", "-x", "--keep-directory-symlink", "--no-same-owner",
                        "-C", str(root)], stdin=tar_stream.stdout, check=True)
        tar_stream.stdout.close()
        if tar_stream.wait() != 0:
            raise SystemExit(f"dpkg-deb failed on {deb}")
    return len(debs)


def make_alternative_links(root: Path) -> list[str]:
    """Create the update-alternatives links a normal install makes for BLAS and LAPACK.

    Debian's reference libblas3 / liblapack3 put the libraries in usr/lib/<triplet>/blas and
    .../lapack; the name the dynamic linker looks for is a link managed by update-alternatives.
    Points straight at the target (no /etc/alternatives hop) with a relative path, so the root
    works wherever it lives.
    """
    made = []
    libdir = root / "usr/lib" / TRIPLET
    for soname, subdirs in [("libblas.so.3", ["blas", "openblas-pthread"]),
                            ("liblapack.so.3", ["lapack", "openblas-pthread"])]:
        link = libdir / soname
        if link.exists():
            continue
        for sub in subdirs:
            if (libdir / sub / soname).exists():
                if link.is_symlink():
                    link.unlink()
                link.symlink_to(f"{sub}/{soname}")
                made.append(f"{link.relative_to(root)} -> {sub}/{soname}")
                break
    return made


def python_info(root: Path) -> dict:
    """The root's Python: version, ext suffix, SOABI, include folders (host paths).

    Read from its _sysconfigdata file (a dict literal, parsed, never executed).
    """
    candidates = sorted((root / "usr/lib").glob("python3.*/_sysconfigdata_*linux*.py"))
    candidates = [c for c in candidates if TRIPLET in c.name] or candidates
    if not candidates:
        raise SystemExit(f"{root}: no _sysconfigdata file; is the sysroot complete?")
    data = candidates[-1]
    tree = ast.parse(data.read_text())
    build_vars = None
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
                isinstance(t, ast.Name) and t.id == "build_time_vars" for t in node.targets):
            build_vars = ast.literal_eval(node.value)
    if not build_vars:
        raise SystemExit(f"{data}: no build_time_vars")
    version = build_vars["VERSION"]  # "3.11"
    include = root / build_vars["INCLUDEPY"].lstrip("/")
    return {
        "version": version,
        "tag": "cp" + version.replace(".", ""),
        "ext_suffix": build_vars["EXT_SUFFIX"],  # .cpython-311-aarch64-linux-gnu.so
        "soabi": build_vars.get("SOABI", ""),
        "include": str(include),
        # Debian's pyconfig.h is a wrapper including <aarch64-linux-gnu/python3.X/pyconfig.h>.
        "include_after": str(root / "usr/include"),
        "sysconfigdata": str(data),
    }


def precompile(root: Path, version: str) -> str:
    """Byte-compile the root's Python libraries, as Debian's postinst scripts would have.

    Without .pyc files every emulated start compiles numpy and pytest from source again:
    `import numpy, pytest` takes 7.4 s under qemu instead of 1.8 s. When the host Python has
    the root's version the host does it (same bytecode format, seconds); otherwise the
    emulated Python does, once.
    """
    dirs = [str(root / "usr/lib" / f"python{version}"), str(root / "usr/lib/python3/dist-packages")]
    if f"{sys.version_info[0]}.{sys.version_info[1]}" == version:
        cmd, how = [sys.executable], "host python"
    elif shutil.which("qemu-aarch64"):
        cmd, how = [shutil.which("qemu-aarch64"), "-L", str(root),
                    str(root / "usr/bin/python3")], "emulated python"
    else:
        return "skipped (no qemu-aarch64, host python differs)"
    # Some files are test data in other Python dialects and never compile: not an error.
    subprocess.run(cmd + ["-m", "compileall", "-q", "-j1"] + dirs, env=clean_env(),
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return how


def smoke_test(root: Path) -> str | None:
    """Import numpy and pytest in the emulated Python; None when qemu-aarch64 is absent."""
    qemu = shutil.which("qemu-aarch64")
    if not qemu:
        return None
    code = ("import sys, numpy, pytest; a = numpy.arange(9.0).reshape(3, 3); "
            "numpy.linalg.inv(a + numpy.eye(3)); "
            "print(sys.version.split()[0], numpy.__version__, pytest.__version__)")
    out = subprocess.run([qemu, "-L", str(root), str(root / "usr/bin/python3"), "-c", code],
                         env=clean_env(), capture_output=True, text=True, timeout=300)
    if out.returncode != 0:
        raise SystemExit(f"smoke test failed in {root}:\n{out.stderr}")
    return out.stdout.strip()


def clean_env(extra: dict | None = None) -> dict:
    """Environment for the emulated Python: nothing from the host's Python setup leaks in."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("PYTHON") and k not in ("VIRTUAL_ENV",)}
    env["PYTHONNOUSERSITE"] = "1"  # ~ is not in the root: the host's user site would be seen
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    env.update(extra or {})
    return env


def dir_size(root: Path) -> int:
    total = 0
    for dirpath, _, files in os.walk(root):
        for f in files:
            try:
                total += os.lstat(os.path.join(dirpath, f)).st_size
            except OSError:
                pass
    return total


def build(root: Path, suite: str, mirror: str, keep_debs: bool) -> None:
    if os.geteuid() != 0:
        raise SystemExit("debootstrap needs root (run as root, or with sudo)")
    for tool in ("debootstrap", "dpkg-deb", "tar"):
        if not shutil.which(tool):
            raise SystemExit(f"{tool} not found: apt-get install debootstrap")
    root.parent.mkdir(parents=True, exist_ok=True)
    tmp = root.with_name(root.name + f".tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    start = time.monotonic()
    try:
        # Ubuntu has python3-pytest in universe; Debian's main has everything.
        components = "main,universe" if "ubuntu" in mirror else "main"
        run(["debootstrap", "--foreign", "--arch=arm64", "--variant=minbase",
             f"--components={components}", "--include=" + ",".join(PACKAGES), suite, tmp,
             mirror],
            stdout=subprocess.DEVNULL)
        count = unpack_debs(tmp)
        links = make_alternative_links(tmp)
        for rel in TRIM if not keep_debs else TRIM[:-1]:
            shutil.rmtree(tmp / rel, ignore_errors=True)
        # The second stage would have run inside the root; never run it, and say so.
        shutil.rmtree(tmp / "debootstrap", ignore_errors=True)
        info = python_info(tmp)
        compiled = precompile(tmp, info["version"])
        smoke = smoke_test(tmp)
        stamp = dict(wanted(suite), mirror=mirror, debs=count, alternatives=links,
                     bytecode=compiled,
                     python=info["version"], smoke=smoke,
                     seconds=round(time.monotonic() - start, 1), bytes=dir_size(tmp))
        (tmp / STAMP).write_text(json.dumps(stamp, indent=1) + "\n")
        if root.exists() or root.is_symlink():
            old = root.with_name(root.name + f".old-{os.getpid()}")
            root.rename(old)
            shutil.rmtree(old, ignore_errors=True)
        tmp.rename(root)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    print(f"sysroot: {count} packages, python {info['version']}, "
          f"{stamp['bytes'] / 2**20:.0f} MiB, built in {stamp['seconds']:.0f} s; smoke: {smoke}",
          file=sys.stderr)


def ensure_sysroot(root: Path | str | None = None, suite: str | None = None,
                   mirror: str | None = None, force: bool = False,
                   keep_debs: bool = False) -> Path:
    """The sysroot's path, building it first when absent or stale."""
    root = Path(root or os.environ.get("EDGEQ_SYSROOT") or DEFAULT_DIR).expanduser().absolute()
    suite = suite or host_suite()
    if force or not is_ready(root, suite):
        build(root, suite, mirror or default_mirror(), keep_debs)
    return root


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--dir", help=f"where the root lives (default $EDGEQ_SYSROOT or {DEFAULT_DIR})")
    p.add_argument("--suite", help=f"Debian release (default this machine's: {host_suite()})")
    p.add_argument("--mirror", help=f"archive to fetch from (default {default_mirror()})")
    p.add_argument("--force", action="store_true", help="rebuild even when cached")
    p.add_argument("--keep-debs", action="store_true", help="keep the downloaded .deb files")
    p.add_argument("--info", action="store_true", help="also print the root's Python facts (JSON)")
    args = p.parse_args(argv)
    root = ensure_sysroot(args.dir, args.suite, args.mirror, args.force, args.keep_debs)
    if args.info:
        print(json.dumps(dict(python_info(root), stamp=read_stamp(root)), indent=1))
    print(root)
    return 0


if __name__ == "__main__":
    sys.exit(main())
