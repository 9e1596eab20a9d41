"""Where the plan runs: the Cython executor and helpers to run single kernels."""
from __future__ import annotations

import numpy as np

from edgeq.runtime.executor import CompiledPlan, KernelFailure, kernel_names, kernel_params_size
from edgeq.tflite.schema import TENSOR_TYPE_OF

__all__ = ["CompiledPlan", "KernelFailure", "kernel_names", "kernel_params_size", "run_kernel"]


def run_kernel(kernel: str, params: bytes | None, inputs, outputs, scratch_bytes: int = 0):
    """Run one kernel on numpy arrays (inputs may contain None for absent optional inputs).

    Used to evaluate constant subgraphs at prepare time and by the kernel tests. Writes into the
    given output arrays, which must be C-contiguous and writable.
    """
    keep = []
    tensors = []

    def add(arr):
        arr = np.ascontiguousarray(arr)
        if arr.ctypes.data % 16:  # kernels may assume aligned element access
            arr = arr.copy()
        keep.append(arr)
        tensors.append((arr.ctypes.data, TENSOR_TYPE_OF[arr.dtype], arr.shape))
        return len(tensors) - 1

    in_ids = [add(a) if a is not None else -1 for a in inputs]
    out_ids = []
    for o in outputs:
        if not (o.flags.c_contiguous and o.flags.writeable):
            raise ValueError("outputs must be C-contiguous and writable")
        out_ids.append(add(o))
    scratch = np.zeros(max(scratch_bytes, 1) + 64, np.uint8)
    scratch_at = (scratch.ctypes.data + 63) & ~63
    plan = CompiledPlan(tensors, [(kernel, params, in_ids, out_ids, scratch_at if scratch_bytes
                                   else 0, scratch_bytes, -1)])
    try:
        plan.invoke()
    except KernelFailure as e:
        raise RuntimeError(f"kernel {kernel}: {e}") from None
    return outputs
