"""Where the prepared graph becomes a plan: one activation arena laid out by tensor lifetimes,
constants placed, and the C-level description handed to the executor.

Arena layout follows TFLite Micro's greedy planner: tensors sorted largest first, each placed at
the lowest offset that overlaps no already-placed tensor whose lifetime intersects its own.
Graph inputs and outputs live for the whole invoke (so they can be set before and read after).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from edgeq.runtime import CompiledPlan, cpu, page_array
from edgeq.runtime.executor import data_address, plan_arena_layout
from edgeq.tflite.schema import TENSOR_TYPE_OF

ALIGN = 64


def _align(n: int) -> int:
    return (n + ALIGN - 1) // ALIGN * ALIGN


@dataclass
class Plan:
    compiled: CompiledPlan
    arena: np.ndarray  # uint8, owns all activations
    arena_bytes: int
    tensor_slot: dict  # model tensor index -> C tensor index
    views: dict  # model tensor index -> numpy view (arena or constant)
    nodes: list  # PreparedNode per compiled node, in order
    constants: list = field(default_factory=list)  # arrays kept alive for the plan


def _aligned_constant(value: np.ndarray) -> np.ndarray:
    if value.flags.c_contiguous and data_address(value) % 16 == 0:
        return value
    out = np.empty(value.shape, value.dtype)  # numpy aligns fresh allocations to 16+
    out[...] = value
    out.flags.writeable = False
    return out


def plan_arena(sizes: dict, lifetimes: dict) -> tuple[dict, int]:
    """Lifetime-aware placement, largest first (kernels/core/arena.c). sizes/lifetimes keyed
    alike; lifetime = (first, last). Both the lowest offset that fits (TFLite Micro's rule) and
    the smallest gap that fits are tried; the smaller arena wins, first-fit on a tie."""
    keys = list(sizes)
    raw = [sizes[k] for k in keys]
    aligned = [_align(max(size, 1)) for size in raw]
    firsts = [lifetimes[k][0] for k in keys]
    lasts = [lifetimes[k][1] for k in keys]
    order = sorted(range(len(keys)), key=lambda i: (-raw[i], firsts[i]))
    offsets, total = plan_arena_layout(aligned, firsts, lasts, order, False)
    best, best_total = plan_arena_layout(aligned, firsts, lasts, order, True)
    if best_total < total:
        offsets, total = best, best_total
    return dict(zip(keys, offsets)), total


def _alias_dying_copies(graph, prepared: list, lifetimes: dict) -> dict:
    """Lets a RESHAPE-like copy (kernel copy_x) write into its input's bytes when the input is
    read by no later node: the copy then sees the same pointer and moves nothing. Returns
    {aliased tensor: tensor that owns the bytes}; the owner's lifetime grows to cover the alias,
    which drops out of `lifetimes`. Graph inputs/outputs and variables keep their own bytes
    (they are set or read between invokes)."""
    pinned = set(graph.inputs) | set(graph.outputs)
    pinned |= {t for t, tdef in enumerate(graph.tensors) if tdef.is_variable}
    alias: dict = {}
    for step, p in enumerate(prepared):
        if p.call.kernel != "copy_x":  # reads input 0 only (RESHAPE's shape is a constant)
            continue
        source, target = p.call.inputs[0], p.call.outputs[0]
        owner = alias.get(source, source)
        if (owner in pinned or target in pinned or owner not in lifetimes
                or target not in lifetimes or lifetimes[owner][1] != step):
            continue
        alias[target] = owner
        lifetimes[owner] = (lifetimes[owner][0], lifetimes.pop(target)[1])
    return alias


def build_plan(graph, infos: list, prepared: list, num_threads: int = 1) -> Plan:
    n = len(prepared)
    # Lifetimes of non-constant tensors, in node steps; graph inputs/outputs span everything.
    lifetimes: dict = {}

    def touch(t, step):
        first, last = lifetimes.get(t, (step, step))
        lifetimes[t] = (min(first, step), max(last, step))

    for t in graph.inputs:
        touch(t, -1)
    for step, p in enumerate(prepared):
        for t in p.call.inputs + p.call.outputs:
            if t >= 0 and infos[t].value is None:
                touch(t, step)
    for t in graph.outputs:
        if infos[t].value is None:
            touch(t, -1)
            touch(t, n)
    for t in graph.inputs:
        touch(t, n)
    for t, tdef in enumerate(graph.tensors):  # state carried between invokes
        if tdef.is_variable:
            touch(t, -1)
            touch(t, n)

    alias = _alias_dying_copies(graph, prepared, lifetimes)
    sizes = {t: infos[t].nbytes for t in lifetimes}
    for step, p in enumerate(prepared):
        if p.call.scratch_bytes:
            key = ("scratch", step)
            sizes[key] = p.call.scratch_bytes
            lifetimes[key] = (step, step)
    offsets, arena_bytes = plan_arena(sizes, lifetimes)

    arena = page_array(arena_bytes + ALIGN, np.uint8)
    base = (-data_address(arena)) % ALIGN  # first aligned byte
    address0 = data_address(arena) + base

    slot: dict = {}
    c_tensors = []
    views = {}
    constants = []

    def add_tensor(t):
        if t in slot:
            return slot[t]
        info = infos[t]
        if info.value is not None:
            value = _aligned_constant(info.value)
            constants.append(value)
            address = data_address(value)
            views[t] = value
        else:
            offset = offsets[alias.get(t, t)]
            # (one call, where slice + view + reshape took three: a plan has hundreds)
            views[t] = np.ndarray(info.shape, info.dtype, arena, base + offset)
            address = address0 + offset
        slot[t] = len(c_tensors)
        c_tensors.append((address, TENSOR_TYPE_OF[info.dtype], info.shape))
        return slot[t]

    for t in list(graph.inputs) + list(graph.outputs):
        add_tensor(t)
    for t, tdef in enumerate(graph.tensors):
        if tdef.is_variable:
            add_tensor(t)
            if tdef.data is not None:
                views[t][...] = tdef.data

    c_nodes = []
    for step, p in enumerate(prepared):
        ins = [add_tensor(t) if t >= 0 else -1 for t in p.call.inputs]
        outs = [add_tensor(t) for t in p.call.outputs]
        scratch = address0 + offsets[("scratch", step)] if p.call.scratch_bytes else 0
        c_nodes.append((p.call.kernel, p.call.params_bytes(), ins, outs, scratch,
                        p.call.scratch_bytes, p.node.index))
    compiled = CompiledPlan(c_tensors, c_nodes, cpu.allowed(), num_threads)
    return Plan(compiled, arena, arena_bytes, slot, views, prepared, constants)
