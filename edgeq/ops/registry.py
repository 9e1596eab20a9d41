"""The op registry: the one place that says which operators edgeq runs and how each is prepared.

An op is registered with `@register(BuiltinOp.X, ...)` (or a custom op's name string) on a
*prepare* function. Prepare runs once per allocate_tensors: it reads the input shapes, dtypes and
(where constant) values, checks the options, sets the output shapes and dtypes, and returns the
KernelCall that the planner compiles: which C kernel runs, with which parameter struct, on which
tensors, with how much scratch. Prepare raises ModelError (via ctx.fail) naming the op when the
model asks for something invalid or unsupported. Kernels then never re-check any of it.
"""
from __future__ import annotations

import ctypes
import functools
import math
from dataclasses import dataclass, field
from typing import Callable, Optional

import numpy as np

from edgeq.errors import ModelError
from edgeq.tflite.schema import BuiltinOp

PrepareFn = Callable[["PrepareContext"], Optional["KernelCall"]]

_OPS: dict[object, PrepareFn] = {}


def register(*codes):
    """Register a prepare function for builtin op codes (ints) and/or custom op names (str)."""

    def wrap(fn: PrepareFn) -> PrepareFn:
        for code in codes:
            key = int(code) if not isinstance(code, str) else code
            if key in _OPS:
                raise RuntimeError(f"op {op_name(key)} registered twice")
            _OPS[key] = fn
        return fn

    return wrap


def lookup(key) -> Optional[PrepareFn]:
    _load_op_modules()
    return _OPS.get(key)


def supported_ops() -> list[str]:
    """The model ops edgeq runs (its own fused ops, named "edgeq:...", are not model ops)."""
    _load_op_modules()
    return sorted(op_name(k) for k in _OPS if not (isinstance(k, str) and k.startswith("edgeq:")))


@functools.lru_cache(maxsize=1024)  # (node.describe() asks per message and constant name)
def op_name(key) -> str:
    if isinstance(key, str):
        return key
    try:
        return BuiltinOp(key).name
    except ValueError:
        return f"BUILTIN_{key}"


_loaded = False


def _load_op_modules():
    """Import every module that registers ops (each module registers its own family)."""
    global _loaded
    if _loaded:
        return
    _loaded = True
    import importlib
    import pkgutil

    import edgeq.ops as pkg

    for info in pkgutil.iter_modules(pkg.__path__):
        if info.name not in ("registry", "common"):
            importlib.import_module(f"edgeq.ops.{info.name}")


@dataclass
class TensorInfo:
    """What prepare knows about a tensor: its shape and dtype, and its value when constant."""

    index: int
    name: str
    shape: tuple
    dtype: np.dtype
    value: Optional[np.ndarray] = None
    quantization: object = None  # edgeq.tflite.reader.Quantization or None

    @property
    def is_constant(self) -> bool:
        return self.value is not None

    @property
    def size(self) -> int:
        return math.prod(self.shape)

    @property
    def nbytes(self) -> int:
        return self.size * self.dtype.itemsize


@dataclass
class KernelCall:
    """A prepared node: the C kernel to run and what to run it on.

    inputs/outputs are tensor indices (-1 = absent optional input); when left None they are the
    op's own inputs and outputs. params is a ctypes.Structure mirroring the kernel's C struct.
    """

    kernel: str
    params: Optional[ctypes.Structure] = None
    inputs: Optional[list] = None
    outputs: Optional[list] = None
    scratch_bytes: int = 0

    def params_bytes(self) -> Optional[bytes]:
        return bytes(self.params) if self.params is not None else None


@dataclass
class PrepareContext:
    """Handed to a prepare function: the op, its options and its tensors, plus helpers."""

    graph: object  # edgeq.graph.Graph
    node: object  # edgeq.graph.Node
    inputs: list = field(default_factory=list)  # TensorInfo or None (absent optional input)
    outputs: list = field(default_factory=list)  # TensorInfo (shape/dtype set by prepare)

    @property
    def options(self) -> dict:
        return self.node.options

    @property
    def name(self) -> str:
        return self.node.describe()

    def fail(self, message: str) -> ModelError:
        """Build the error to raise: `raise ctx.fail("...")`."""
        return ModelError(f"{self.name}: {message}")

    def require(self, condition, message: str):
        if not condition:
            raise self.fail(message)

    def expect_inputs(self, low: int, high: Optional[int] = None):
        high = low if high is None else high
        n = len(self.inputs)
        if not low <= n <= high:
            want = str(low) if low == high else f"{low} to {high}"
            raise self.fail(f"takes {want} inputs, the model gives {n}")
        for i in range(low):
            if self.inputs[i] is None:
                raise self.fail(f"input {i} is required but absent")

    def input(self, i: int) -> TensorInfo:
        if i >= len(self.inputs) or self.inputs[i] is None:
            raise self.fail(f"input {i} is required but absent")
        return self.inputs[i]

    def optional_input(self, i: int) -> Optional[TensorInfo]:
        return self.inputs[i] if i < len(self.inputs) else None

    def constant(self, i: int, what: str = "input") -> np.ndarray:
        """The value of input i, which must be known at prepare time."""
        t = self.input(i)
        if t.value is None:
            raise self.fail(f"{what} (tensor {t.index} '{t.name}') must be constant; edgeq "
                            f"evaluates shapes at prepare time")
        return t.value

    def set_output(self, i: int, shape, dtype, value: Optional[np.ndarray] = None):
        """Declare output i's shape and dtype; with value, the output is a prepare-time constant."""
        shape = tuple(map(int, shape))
        if shape and min(shape) < 0:
            raise self.fail(f"output {i} would have a negative dimension {list(shape)}")
        out = self.outputs[i]
        out.shape = shape
        out.dtype = np.dtype(dtype)
        if value is not None:
            value = np.ascontiguousarray(np.asarray(value, dtype=out.dtype).reshape(shape))
        out.value = value

    def empty_constant(self, shape, dtype) -> np.ndarray:
        """Uninitialised memory for a constant this prepare makes (packed weights), from the
        graph's ConstantMemory: few large allocations, not one per constant."""
        return self.graph.constant_memory().empty(shape, dtype)

    def add_constant(self, value: np.ndarray, name: str = "") -> int:
        """Add a constant tensor made at prepare time (packed weights, tables); returns its index."""
        return self.graph.add_constant(np.ascontiguousarray(value), f"{self.name}/{name}")
