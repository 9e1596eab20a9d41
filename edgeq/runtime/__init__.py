"""Where the plan runs: the Cython executor, CPU dispatch, and a helper to run one kernel."""
from __future__ import annotations

import numpy as np

from edgeq.runtime import cpu
from edgeq.runtime.executor import (CompiledPlan, KernelFailure, data_address, find_kernel,
                                    kernel_address, kernel_table)
from edgeq.tflite.schema import TENSOR_TYPE_OF

__all__ = ["CompiledPlan", "KernelFailure", "cpu", "find_kernel", "kernel_address",
           "kernel_available",
           "kernel_names", "run_kernel"]


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
