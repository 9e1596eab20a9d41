"""Build edgeq: the Cython executor plus every C kernel under kernels/.

Kernel files named `*__<isa>.c` (XNNPack's convention: op-dtype-tile__isa) are compiled with
that ISA's flags only, so one binary runs on the oldest CPU of its architecture and dispatches
to newer instructions at run time. Everything else is portable C11.
"""
import os
import platform
import sys
from pathlib import Path

from Cython.Build import cythonize
from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent
KERNELS = ROOT / "kernels"

# Flags per ISA suffix. An ISA absent for the target architecture is simply not built.
ISA_FLAGS = {
    "x86_64": {
        "avx2": ["-mavx2", "-mfma", "-mf16c"],
        "avx512": ["-mavx512f", "-mavx512bw", "-mavx512dq", "-mavx512vl", "-mfma", "-mf16c"],
        "avxvnni": ["-mavx2", "-mfma", "-mf16c", "-mavxvnni"],
        "avx512vnni": ["-mavx512f", "-mavx512bw", "-mavx512dq", "-mavx512vl", "-mavx512vnni",
                       "-mfma", "-mf16c"],
    },
    "aarch64": {
        "neon": [],
        "neondot": ["-march=armv8.2-a+dotprod"],
        "neonfp16": ["-march=armv8.2-a+fp16"],
        "neoni8mm": ["-march=armv8.2-a+dotprod+i8mm"],
    },
}


def target_arch():
    arch = os.environ.get("EDGEQ_TARGET_ARCH") or platform.machine().lower()
    return {"amd64": "x86_64", "arm64": "aarch64"}.get(arch, arch)


def kernel_sources():
    """Portable sources and ISA-specific sources (with their flags) for the target."""
    arch_flags = ISA_FLAGS.get(target_arch(), {})
    portable, per_isa = [], []
    for path in sorted(KERNELS.rglob("*.c")):
        rel = path.relative_to(ROOT).as_posix()
        stem = path.stem
        if "__" in stem:
            isa = stem.rsplit("__", 1)[1]
            if isa in arch_flags:
                per_isa.append((rel, arch_flags[isa]))
        else:
            portable.append(rel)
    return portable, per_isa


COMMON_FLAGS = ["-O2", "-std=c11", "-fno-strict-aliasing", "-Wall", "-Wno-unused-function"]
if sys.platform != "win32":
    COMMON_FLAGS.append("-fvisibility=hidden")


class BuildExt(build_ext):
    """Compiles ISA-specific kernel files separately, each with its own flags."""

    def build_extension(self, ext):
        if ext.name != "edgeq.runtime.executor":  # the kernels link into the executor only
            super().build_extension(ext)
            return
        _, per_isa = kernel_sources()
        objects = []
        for source, flags in per_isa:
            objects += self.compiler.compile(
                [source], output_dir=self.build_temp, include_dirs=ext.include_dirs,
                extra_postargs=COMMON_FLAGS + flags, depends=ext.depends)
        ext.extra_objects = list(ext.extra_objects or []) + objects
        # The extension is relinked only when a listed source or dependency changed; the ISA
        # files are neither, so name them here or an edit to one alone would not reach the .so.
        ext.depends = list(ext.depends or []) + [source for source, _ in per_isa]
        super().build_extension(ext)


class BuildPy(build_py):
    """Ships board_configs/*.json (the source of truth) inside the package as edgeq/data/boards/,
    where edgeq.board finds them in an installed copy."""

    def run(self):
        super().run()
        target = Path(self.build_lib) / "edgeq" / "data" / "boards"
        self.mkpath(str(target))
        for config in sorted((ROOT / "board_configs").glob("*.json")):
            self.copy_file(str(config), str(target / config.name))


def link_libraries():
    """libm, and libpthread where it is a separate library. Android's libc (Bionic, Termux)
    has pthreads built in and no libpthread to link: `-lpthread` fails there."""
    if sys.platform == "win32":
        return []
    android = hasattr(sys, "getandroidapilevel") or "ANDROID_ROOT" in os.environ
    return ["m"] if android else ["m", "pthread"]


portable, _ = kernel_sources()
extensions = [
    Extension(
        "edgeq.runtime.executor",
        sources=["edgeq/runtime/executor.pyx"] + portable,
        include_dirs=["kernels/include"],
        depends=[p.relative_to(ROOT).as_posix() for p in KERNELS.rglob("*.h")],
        extra_compile_args=COMMON_FLAGS,
        libraries=link_libraries(),
    ),
    # The .tflite reader's bounds-checked flatbuffer access (edgeq/tflite/reader.py uses it).
    Extension("edgeq.tflite.flatbuffer", sources=["edgeq/tflite/flatbuffer.pyx"],
              extra_compile_args=["-O2"]),
]

setup(
    ext_modules=cythonize(extensions, compiler_directives={"language_level": 3}),
    cmdclass={"build_ext": BuildExt, "build_py": BuildPy},
)
