"""Operators: one module per family, each registering prepare functions (see registry.py)."""
from edgeq.ops.registry import KernelCall, PrepareContext, TensorInfo, lookup, register, supported_ops

__all__ = ["KernelCall", "PrepareContext", "TensorInfo", "lookup", "register", "supported_ops"]
