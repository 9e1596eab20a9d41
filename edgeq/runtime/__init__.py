"""Where the plan runs: the Cython executor, CPU dispatch, and a helper to run one kernel."""
from __future__ import annotations

import numpy as np

from edgeq.runtime import cpu
from edgeq.runtime.executor import (HUGE_PAGE, CompiledPlan, KernelFailure, PageBlock,
                                    data_address, find_kernel, kernel_address, kernel_table)
from edgeq.tflite.schema import TENSOR_TYPE_OF

__all__ = ["CompiledPlan", "ConstantMemory", "KernelFailure", "cpu", "find_kernel",
           "kernel_address", "kernel_available", "kernel_names", "page_array", "run_kernel"]


def page_array(shape, dtype, zeroed: bool = True) -> np.ndarray:
    """A C-contiguous array for memory filled once and then read (the plan's arena, weights
    prepare computes): from HUGE_PAGE bytes up a PageBlock of its own, in huge pages where the
    system has them, so that filling it faults once per 2 MiB instead of once per 4 KiB (and it
    is zero, as fresh pages are); smaller, the C heap (np.zeros, or np.empty when not
    `zeroed`)."""
    dtype = np.dtype(dtype)
    shape = (shape,) if isinstance(shape, (int, np.integer)) else tuple(shape)
    nbytes = dtype.itemsize * int(np.prod(shape, dtype=np.int64))
    if nbytes < HUGE_PAGE:
        return (np.zeros if zeroed else np.empty)(shape, dtype)
    return np.frombuffer(PageBlock(nbytes), dtype).reshape(shape)


class ConstantMemory:
    """Where prepare puts the constants it makes (packed weights): carved one after another,
    64-byte aligned, from a few large PageBlocks instead of one heap allocation per constant,
    so that filling them faults per huge page where the system has them. Blocks grow from
    FIRST (small models keep a small footprint) by GROWTH up to LARGEST; a constant larger than
    the next block gets a block of its own. A block lives while any array carved from it does:
    the plan that keeps the constants frees it."""

    ALIGN = 64
    FIRST = 256 << 10
    GROWTH = 4
    LARGEST = 16 << 20

    def __init__(self):
        self._block = None
        self._used = 0
        self._next = self.FIRST

    def empty(self, shape, dtype) -> np.ndarray:
        """An uninitialised C-contiguous array of `shape` and `dtype` (writable)."""
        dtype = np.dtype(dtype)
        shape = tuple(int(d) for d in shape)
        nbytes = dtype.itemsize * int(np.prod(shape, dtype=np.int64))
        if nbytes == 0:
            return np.empty(shape, dtype)
        at = -(-self._used // self.ALIGN) * self.ALIGN
        if self._block is not None and at + nbytes <= self._block.size:
            block = self._block
            self._used = at + nbytes
        elif nbytes > self._next:
            block, at = PageBlock(nbytes), 0  # its own block; the current one keeps its room
        else:
            block, at = PageBlock(self._next), 0
            self._block, self._used = block, nbytes
            self._next = min(max(self._next * self.GROWTH, HUGE_PAGE), self.LARGEST)
        return np.frombuffer(block, np.uint8, nbytes, at).view(dtype).reshape(shape)


def kernel_names() -> list:
    """Names of every kernel compiled into this build (an ISA variant shares its op's name)."""
    return sorted({name for name, _ in kernel_table()})


def kernel_available(name: str, allowed: int | None = None) -> bool:
    """Whether a kernel called `name` exists that this CPU (and EDGEQ_ISA) lets us run."""
    return find_kernel(name, cpu.allowed() if allowed is None else allowed) is not None


def _add_array(arr, keep: list, tensors: list) -> int:
    """Describe one array to the executor (copied first when not C-contiguous or not 16-byte
    aligned: kernels may assume aligned element access); returns its tensor id."""
    arr = np.ascontiguousarray(arr)
    address = data_address(arr)
    if address % 16:
        arr = arr.copy()
        address = data_address(arr)
    keep.append(arr)
    tensors.append((address, TENSOR_TYPE_OF[arr.dtype], arr.shape))
    return len(tensors) - 1


def run_kernel(kernel: str, params: bytes | None, inputs, outputs, scratch_bytes: int = 0,
               allowed: int | None = None):
    """Run one kernel on numpy arrays (inputs may contain None for absent optional inputs).

    Used to evaluate constant subgraphs at prepare time and by the kernel tests (which pass
    `allowed` to pick a variant: 0 = the portable reference). Writes into the given output
    arrays, which must be C-contiguous and writable.
    """
    keep: list = []
    tensors: list = []
    in_ids = [_add_array(a, keep, tensors) if a is not None else -1 for a in inputs]
    out_ids = []
    for o in outputs:
        if not (o.flags.c_contiguous and o.flags.writeable):
            raise ValueError("outputs must be C-contiguous and writable")
        out_ids.append(_add_array(o, keep, tensors))
    scratch_at = 0
    if scratch_bytes:
        scratch = np.zeros(scratch_bytes + 64, np.uint8)
        keep.append(scratch)
        scratch_at = (data_address(scratch) + 63) & ~63
    plan = CompiledPlan(tensors, [(kernel, params, in_ids, out_ids, scratch_at, scratch_bytes,
                                   -1)],
                        cpu.allowed() if allowed is None else allowed)
    try:
        plan.invoke()
    except KernelFailure as e:
        raise RuntimeError(f"kernel {kernel}: {e}") from None
    return outputs
