#!/usr/bin/env python3
"""Cross-build an installable aarch64 wheel of edgeq on an x86 machine.

    python tools/cross_build.py --board rpi5 --out dist/

What it does, and why not `pip wheel` with a cross compiler: setuptools takes the include
folder, the extension suffix and the compiler flags from the *running* interpreter's sysconfig,
i.e. the host's x86 Python. Patching all of that is fragile, so this script does the three
steps itself, each small:

1. Cython turns edgeq/runtime/executor.pyx into C (the generated C is architecture-neutral),
   and each other extension setup.py lists (edgeq/tflite/flatbuffer.pyx: one .pyx, no kernels).
2. aarch64-linux-gnu-gcc compiles it and every kernel with the flags setup.py defines
   (read by running setup.py with setup() stubbed out, so setup.py stays the one place that
   says which sources and which per-ISA flags), plus the board's flags from board_configs/,
   against the Python headers of the arm64 sysroot (tools/sysroot.py); then links the
   extension module with the sysroot Python's extension suffix
   (.cpython-3XX-aarch64-linux-gnu.so).
3. The wheel is zipped by hand: the pure-Python packages and package data listed in
   pyproject.toml, the module, the board configs as edgeq/data/boards/*.json, and a
   .dist-info (METADATA, WHEEL with tag cp3XX-cp3XX-linux_aarch64, entry_points, RECORD).
   Entries are sorted and time-stamped alike, so the same sources give the same bytes.

Kernel files named `*__<isa>.c` get setup.py's flags for that ISA (e.g. -march=armv8.2-a+dotprod);
the board's -mcpu=X becomes -mtune=X for them so the two never disagree about the ISA.
Objects are cached by content hash (~/.cache/edgeq/cross-objects), so rebuilding after a
one-file change recompiles one file. Compiles run one at a time on purpose.
"""
from __future__ import annotations

import argparse
import base64
import contextlib
import hashlib
import importlib.util
import io
import os
import re
import runpy
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

TOOLS = Path(__file__).resolve().parent
ROOT = TOOLS.parent
sys.path.insert(0, str(TOOLS))
import sysroot as sysroot_tool  # noqa: E402

OBJECT_CACHE = Path.home() / ".cache" / "edgeq" / "cross-objects"
CROSS_CC = "aarch64-linux-gnu-gcc"
EXT_MODULE = "edgeq.runtime.executor"
ZIP_DATE = (2020, 1, 1, 0, 0, 0)
EM_AARCH64 = 183


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# ----------------------------------------------------------------------------- project facts

def load_board_module():
    """edgeq/board.py by path: importing the edgeq package would need a host build."""
    spec = importlib.util.spec_from_file_location("_edgeq_board", ROOT / "edgeq" / "board.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while building
    spec.loader.exec_module(module)
    return module


def board_config(name: str) -> dict:
    board = load_board_module()
    cfg = board.board_config(name, [ROOT / "board_configs"])
    problems = board.validate_config(cfg)
    if problems:
        raise SystemExit(f"board_configs/{name}.json: " + "; ".join(problems))
    return cfg


def read_setup(target_arch: str) -> dict:
    """Run setup.py with setup() and cythonize() stubbed: its sources, flags and ISA table."""
    import Cython.Build
    import setuptools

    captured = {}
    saved = setuptools.setup, Cython.Build.cythonize, os.environ.get("EDGEQ_TARGET_ARCH")
    setuptools.setup = lambda **kw: captured.update(kw)
    Cython.Build.cythonize = lambda modules, **kw: list(modules)
    os.environ["EDGEQ_TARGET_ARCH"] = target_arch
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            ns = runpy.run_path(str(ROOT / "setup.py"), run_name="__edgeq_cross_build__")
        if "kernel_sources" not in ns:
            raise SystemExit("setup.py no longer defines kernel_sources(): update "
                             "tools/cross_build.py to match it")
        _, per_isa = ns["kernel_sources"]()  # reads EDGEQ_TARGET_ARCH: call it while set
    finally:
        setuptools.setup, Cython.Build.cythonize = saved[0], saved[1]
        if saved[2] is None:
            os.environ.pop("EDGEQ_TARGET_ARCH", None)
        else:
            os.environ["EDGEQ_TARGET_ARCH"] = saved[2]
    exts = [e for e in captured.get("ext_modules", []) if e.name == EXT_MODULE]
    missing = [k for k in ("COMMON_FLAGS",) if k not in ns]
    if not exts or missing:
        raise SystemExit(f"setup.py no longer defines {missing or EXT_MODULE}: update "
                         "tools/cross_build.py to match it")
    ext = exts[0]
    pyx = [s for s in ext.sources if s.endswith(".pyx")]
    # The other extensions (edgeq.tflite.flatbuffer): one .pyx each, no kernels.
    others = [(e.name, e.sources, list(e.extra_compile_args or []))
              for e in captured.get("ext_modules", []) if e.name != EXT_MODULE]
    for name, sources, _ in others:
        if len(sources) != 1 or not sources[0].endswith(".pyx"):
            raise SystemExit(f"setup.py's extension {name} is not one .pyx: update "
                             "tools/cross_build.py to match it")
    return {
        "others": [(name, sources[0], args) for name, sources, args in others],
        "pyx": pyx,
        "c_sources": [s for s in ext.sources if s.endswith(".c")],
        "per_isa": per_isa,  # [(source, isa flags)]
        "include_dirs": list(ext.include_dirs or []),
        "compile_args": list(ext.extra_compile_args or []),
        "libraries": list(ext.libraries or []),
        "common_flags": list(ns["COMMON_FLAGS"]),
        "depends": list(ext.depends or []),
    }


def read_pyproject() -> dict:
    try:
        import tomllib
    except ImportError:  # Python < 3.11
        try:
            import tomli as tomllib
        except ImportError:
            raise SystemExit("reading pyproject.toml needs Python 3.11+ or `pip install tomli`")
    with open(ROOT / "pyproject.toml", "rb") as f:
        return tomllib.load(f)


# ----------------------------------------------------------------------------- compilation

def file_hash(*parts) -> str:
    h = hashlib.sha256()
    for p in parts:
        h.update(p if isinstance(p, bytes) else str(p).encode())
        h.update(b"\0")
    return h.hexdigest()[:32]


def cythonize(pyx: str, build: Path, module_name: str = EXT_MODULE) -> Path:
    """A .pyx -> C, cached by the .pyx/.pxd contents, the module name and the Cython version."""
    import Cython

    src = ROOT / pyx
    pxds = sorted(src.parent.glob("*.pxd"))
    key = file_hash(Cython.__version__, module_name, src.read_bytes(),
                    *[p.read_bytes() for p in pxds])
    cached = OBJECT_CACHE / f"{src.stem}-{key}.c"
    if cached.exists():
        with contextlib.suppress(OSError):
            cached.touch()
    else:
        OBJECT_CACHE.mkdir(parents=True, exist_ok=True)
        tmp = cached.with_suffix(f".tmp{os.getpid()}.c")
        cmd = [sys.executable, "-m", "cython", "-3", "--module-name", module_name,
               "-o", str(tmp), str(src)]
        subprocess.run(cmd, cwd=ROOT, check=True)
        tmp.replace(cached)
    out = build / (src.stem + ".c")
    shutil.copyfile(cached, out)
    return out


def prune_cache(max_age_days: float = 14) -> None:
    """Forget cached objects nobody used for two weeks (hits refresh the time stamp)."""
    limit = time.time() - max_age_days * 86400
    for f in OBJECT_CACHE.glob("*") if OBJECT_CACHE.is_dir() else []:
        try:
            if f.stat().st_mtime < limit:
                f.unlink()
        except OSError:
            pass


def compile_one(cc: str, source: Path, flags: list, headers_key: str, verbose: bool) -> Path:
    """One object file, reused from the cache when source, flags and headers are unchanged."""
    key = file_hash(cc, source.read_bytes(), " ".join(flags), headers_key)
    obj = OBJECT_CACHE / f"{source.stem}-{key}.o"
    if obj.exists():
        with contextlib.suppress(OSError):
            obj.touch()
        return obj
    OBJECT_CACHE.mkdir(parents=True, exist_ok=True)
    tmp = obj.with_suffix(f".tmp{os.getpid()}.o")
    cmd = [cc, "-c", str(source), "-o", str(tmp)] + flags
    if verbose:
        log("+ " + " ".join(cmd))
    result = subprocess.run(cmd, capture_output=True, text=True)
    if result.stderr.strip():
        log(result.stderr.rstrip())
    if result.returncode != 0:
        raise SystemExit(f"compiling {source} failed")
    tmp.replace(obj)
    return obj


def isa_board_flags(board_flags: list) -> list:
    """Board flags for a per-ISA file: tune for the board, but let the file's -march decide."""
    out = []
    for f in board_flags:
        if f.startswith("-march="):
            continue
        out.append("-mtune=" + f[len("-mcpu="):] if f.startswith("-mcpu=") else f)
    return out


def check_elf(path: Path) -> None:
    head = path.read_bytes()[:20]
    if head[:4] != b"\x7fELF" or int.from_bytes(head[18:20], "little") != EM_AARCH64:
        raise SystemExit(f"{path} is not an aarch64 ELF file")


def build_extension(cfg: dict, root: Path, build: Path, cc: str, verbose: bool) -> list:
    """Compile and link edgeq.runtime.executor and the other extensions for aarch64; returns
    [(path inside the wheel, .so path)]."""
    if not shutil.which(cc):
        raise SystemExit(f"{cc} not found: apt-get install gcc-aarch64-linux-gnu")
    setup = read_setup(cfg["arch"])
    py = sysroot_tool.python_info(root)
    headers = sorted((ROOT / "kernels").rglob("*.h")) + [Path(d) for d in setup["depends"]]
    headers_key = file_hash(*[(ROOT / h).read_bytes() for h in headers if (ROOT / h).is_file()],
                            Path(py["include"]).joinpath("patchlevel.h").read_bytes())
    includes = [f"-I{ROOT / d}" for d in setup["include_dirs"]]
    includes += [f"-I{py['include']}", "-idirafter", py["include_after"]]
    # The root's own glibc headers and libraries (it has libc6-dev): the cross compiler then
    # needs no libc6-dev-arm64-cross (only a Recommends of gcc-aarch64-linux-gnu, so absent
    # after --no-install-recommends), and headers match the glibc the tests run against.
    sysroot_flag = f"--sysroot={root}"
    base = ["-fPIC", "-DNDEBUG", sysroot_flag] + includes
    board_flags = list(cfg["cflags"])

    sources = [cythonize(p, build) for p in setup["pyx"]] + [ROOT / s for s in setup["c_sources"]]
    objects = []
    start = time.monotonic()
    for src in sources:
        flags = base + setup["compile_args"] + board_flags
        objects.append(compile_one(cc, src, flags, headers_key, verbose))
    for src, isa_flags in setup["per_isa"]:
        flags = base + setup["common_flags"] + isa_board_flags(board_flags) + list(isa_flags)
        objects.append(compile_one(cc, ROOT / src, flags, headers_key, verbose))
    module = build / ("executor" + py["ext_suffix"])
    _link(cc, sysroot_flag, module, objects, setup["libraries"], verbose)
    modules = [(f"edgeq/runtime/{module.name}", module)]
    for name, pyx, compile_args in setup["others"]:
        obj = compile_one(cc, cythonize(pyx, build, name), base + compile_args + board_flags,
                          headers_key, verbose)
        path = build / (name.rsplit(".", 1)[1] + py["ext_suffix"])
        _link(cc, sysroot_flag, path, [obj], [], verbose)
        modules.append((name.rsplit(".", 1)[0].replace(".", "/") + "/" + path.name, path))
    log(f"compiled {len(objects) + len(setup['others'])} objects and linked "
        f"{', '.join(p.name for _, p in modules)} in {time.monotonic() - start:.1f} s")
    return modules


def _link(cc: str, sysroot_flag: str, out: Path, objects: list, libraries: list, verbose: bool):
    link = [cc, sysroot_flag, "-shared", "-o", str(out)] + [str(o) for o in objects]
    link += ["-Wl,-O1", "-Wl,-z,relro,-z,now", "-s"] + [f"-l{lib}" for lib in libraries]
    if verbose:
        log("+ " + " ".join(link))
    subprocess.run(link, check=True)
    check_elf(out)


# ----------------------------------------------------------------------------- the wheel

def package_files(pyproject: dict) -> list:
    """(archive name, file path) of the pure-Python files and package data setuptools ships."""
    st = pyproject.get("tool", {}).get("setuptools", {})
    packages = st.get("packages") or ["edgeq"]
    package_data = st.get("package-data", {})
    found = {}
    for pkg in packages:
        folder = ROOT / pkg.replace(".", "/")
        if not folder.is_dir():
            continue
        for f in sorted(folder.glob("*.py")):
            found[f.relative_to(ROOT).as_posix()] = f
        for pattern in package_data.get(pkg, []) + package_data.get("*", []):
            for f in sorted(folder.glob(pattern)):
                if f.is_file() and f.suffix not in (".so", ".o", ".pyd"):
                    found[f.relative_to(ROOT).as_posix()] = f
    return sorted(found.items())


def metadata(project: dict) -> str:
    lines = ["Metadata-Version: 2.1", f"Name: {project['name']}",
             f"Version: {project['version']}"]
    if project.get("description"):
        lines.append(f"Summary: {project['description']}")
    if project.get("requires-python"):
        lines.append(f"Requires-Python: {project['requires-python']}")
    lic = project.get("license")
    if isinstance(lic, dict) and lic.get("text"):
        lines.append(f"License: {lic['text']}")
    for dep in project.get("dependencies", []):
        lines.append(f"Requires-Dist: {dep}")
    for extra, deps in project.get("optional-dependencies", {}).items():
        lines.append(f"Provides-Extra: {extra}")
        for dep in deps:
            lines.append(f'Requires-Dist: {dep}; extra == "{extra}"')
    readme = ROOT / (project.get("readme") or "README.md")
    text = "\n".join(lines) + "\n"
    if isinstance(project.get("readme"), str) and readme.is_file():
        text += "Description-Content-Type: text/markdown\n\n" + readme.read_text(encoding="utf-8")
    return text


def record_line(name: str, data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{name},sha256={digest},{len(data)}"


def write_wheel(modules: list, py: dict, out: Path, board_name: str) -> Path:
    pyproject = read_pyproject()
    project = pyproject["project"]
    name = re.sub(r"[-_.]+", "_", project["name"]).lower()
    version = project["version"]
    tag = f"{py['tag']}-{py['tag']}-linux_aarch64"
    dist_info = f"{name}-{version}.dist-info"

    entries = [(arc, path.read_bytes()) for arc, path in package_files(pyproject)]
    entries += [(arc, path.read_bytes()) for arc, path in modules]
    for cfg in sorted((ROOT / "board_configs").glob("*.json")):
        entries.append((f"edgeq/data/boards/{cfg.name}", cfg.read_bytes()))
    scripts = project.get("scripts", {})
    meta = [
        (f"{dist_info}/METADATA", metadata(project).encode()),
        (f"{dist_info}/WHEEL", (f"Wheel-Version: 1.0\nGenerator: edgeq tools/cross_build.py "
                                f"(board {board_name})\nRoot-Is-Purelib: false\nTag: {tag}\n")
         .encode()),
        (f"{dist_info}/top_level.txt", b"edgeq\n"),
    ]
    if scripts:
        meta.append((f"{dist_info}/entry_points.txt", ("[console_scripts]\n" + "".join(
            f"{k} = {v}\n" for k, v in scripts.items())).encode()))
    entries = sorted(dict(entries).items()) + meta
    record = "\n".join(record_line(n, d) for n, d in entries) + f"\n{dist_info}/RECORD,,\n"
    entries.append((f"{dist_info}/RECORD", record.encode()))

    out.mkdir(parents=True, exist_ok=True)
    wheel = out / f"{name}-{version}-{tag}.whl"
    tmp = wheel.with_suffix(".tmp")
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as z:
        for arc, data in entries:
            info = zipfile.ZipInfo(arc, ZIP_DATE)
            info.external_attr = (0o755 if arc.endswith(".so") else 0o644) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            z.writestr(info, data)
    tmp.replace(wheel)
    return wheel


def build_wheel(board: str, out: Path | str, sysroot: Path | str | None = None,
                cc: str = CROSS_CC, verbose: bool = False) -> Path:
    """Build the wheel for `board` into `out`; returns its path."""
    cfg = board_config(board)
    if cfg["arch"] != "aarch64":
        raise SystemExit(f"board {board} is {cfg['arch']}: build natively with `pip wheel .`")
    if cfg["libc"] != "glibc":
        raise SystemExit(f"board {board} uses {cfg['libc']} (Termux): a glibc cross build would "
                         "not load there; build on the device with `pip install .`")
    root = sysroot_tool.ensure_sysroot(sysroot)
    py = sysroot_tool.python_info(root)
    prune_cache()
    with tempfile.TemporaryDirectory(prefix="edgeq-cross-") as tmp:
        modules = build_extension(cfg, root, Path(tmp), cc, verbose)
        wheel = write_wheel(modules, py, Path(out), board)
    log(f"wheel: {wheel} ({wheel.stat().st_size / 1024:.0f} KiB, board {board}, "
        f"flags {' '.join(cfg['cflags']) or '(none)'})")
    return wheel


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--board", default="generic-aarch64",
                   help="a name from board_configs/ (default generic-aarch64)")
    p.add_argument("--out", default=str(ROOT / "dist"), help="folder for the wheel (default dist/)")
    p.add_argument("--sysroot", help="arm64 root (default: tools/sysroot.py's cache)")
    p.add_argument("--cc", default=os.environ.get("EDGEQ_CROSS_CC", CROSS_CC))
    p.add_argument("-v", "--verbose", action="store_true", help="print every compiler command")
    args = p.parse_args(argv)
    start = time.monotonic()
    wheel = build_wheel(args.board, args.out, args.sysroot, args.cc, args.verbose)
    log(f"done in {time.monotonic() - start:.1f} s")
    print(wheel)
    return 0


if __name__ == "__main__":
    sys.exit(main())
