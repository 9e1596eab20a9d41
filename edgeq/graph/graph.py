"""Where a parsed .tflite subgraph becomes edgeq's graph: nodes, tensors, and graph rewrites.

The graph is the model's own operators and tensors (same indices as the file, so tensor indices
seen through the Interpreter match LiteRT's), plus constants that prepare adds (packed weights).
Rewrites that only look at structure happen here (activation fusion); everything that needs
shapes happens in edgeq.graph.prepare.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

import numpy as np

from edgeq.errors import ModelError
from edgeq.ops import registry
from edgeq.ops.registry import op_name
from edgeq.tflite.schema import BuiltinOp, TensorType


@dataclass
class Node:
    index: int  # operator index in the model (for messages)
    op: object  # builtin code (int) or custom op name (str)
    inputs: list
    outputs: list
    options: dict = field(default_factory=dict)
    version: int = 1
    custom_options: Optional[bytes] = None

    @property
    def op_name(self) -> str:
        return op_name(self.op)

    def describe(self) -> str:
        return f"op {self.index} ({self.op_name})"


@dataclass
class TensorDef:
    """A tensor as the model declares it (before any resize)."""

    index: int
    name: str
    shape: tuple
    shape_signature: Optional[tuple]
    dtype: Optional[np.dtype]
    type_code: int
    data: Optional[np.ndarray]
    quantization: object = None
    sparsity: object = None
    is_variable: bool = False


class Graph:
    def __init__(self, model, subgraph_index: int = 0):
        if not 0 <= subgraph_index < len(model.subgraphs):
            raise ModelError(f"subgraph {subgraph_index} does not exist (the model has "
                             f"{len(model.subgraphs)})")
        sub = model.subgraphs[subgraph_index]
        self.model = model
        self.subgraph_index = subgraph_index
        self.name = sub.name
        self.tensors: list[TensorDef] = []
        for t in sub.tensors:
            if t.dtype is None:
                raise ModelError(f"tensor {t.index} '{t.name}': type "
                                 f"{_type_name(t.type)} is not supported")
            self.tensors.append(TensorDef(t.index, t.name, tuple(t.shape),
                                          tuple(t.shape_signature) if t.shape_signature else None,
                                          np.dtype(t.dtype), t.type, t.data, t.quantization,
                                          t.sparsity, t.is_variable))
        self.model_tensors = len(self.tensors)  # beyond: constants added by prepare
        self.inputs = list(sub.inputs)
        self.outputs = list(sub.outputs)
        self.nodes: list[Node] = []
        for op in sub.operators:
            key = op.custom_code if op.builtin_code == BuiltinOp.CUSTOM else op.builtin_code
            self.nodes.append(Node(op.index, key, list(op.inputs), list(op.outputs),
                                   dict(op.options), op.version, op.custom_options))
        self._check_supported()

    def _check_supported(self):
        unsupported = [n for n in self.nodes if registry.lookup(n.op) is None]
        if unsupported:
            names = sorted({n.op_name for n in unsupported})
            first = unsupported[0]
            kind = "custom op" if isinstance(first.op, str) else "op"
            kind += "s" if len(names) > 1 else ""
            verb = "are" if len(names) > 1 else "is"
            raise ModelError(f"{kind} {', '.join(names)} {verb} not supported by edgeq "
                             f"(first at {first.describe()}); supported ops: see "
                             f"`edgeq inspect` or edgeq.supported_ops()")

    def drop_prepared_constants(self):
        """Forget the constants the last prepare added (packed weights): a new prepare, after a
        resize, makes its own, and the old ones live on only as long as the old plan."""
        del self.tensors[self.model_tensors:]

    def add_constant(self, value: np.ndarray, name: str) -> int:
        from edgeq.tflite.schema import TENSOR_TYPE_OF

        index = len(self.tensors)
        self.tensors.append(TensorDef(index, name, tuple(value.shape), None, value.dtype,
                                      TENSOR_TYPE_OF[value.dtype], value))
        return index

    def consumers(self) -> dict:
        uses: dict[int, list] = {}
        for n in self.nodes:
            for t in n.inputs:
                if t >= 0:
                    uses.setdefault(t, []).append(n)
        return uses


def _type_name(code: int) -> str:
    try:
        return TensorType(code).name
    except ValueError:
        return str(code)


# Standalone activations that a producer with a fused_activation_function can absorb.
_FUSABLE = {BuiltinOp.RELU: 1, BuiltinOp.RELU_N1_TO_1: 2, BuiltinOp.RELU6: 3}


def fuse_activations(graph: Graph) -> int:
    """Fold RELU/RELU6/RELU_N1_TO_1 into the op that produces their input when that op has a
    fused activation slot left empty and nothing else reads the intermediate. Returns the count."""
    uses = graph.consumers()
    producer = {t: n for n in graph.nodes for t in n.outputs}
    keep_visible = set(graph.outputs)
    fused = 0
    removed = set()
    for act in graph.nodes:
        code = _FUSABLE.get(act.op) if isinstance(act.op, int) else None
        if code is None or len(act.inputs) != 1:
            continue
        src = act.inputs[0]
        prod = producer.get(src)
        if (prod is None or id(prod) in removed or src in keep_visible
                or len(uses.get(src, [])) != 1
                or prod.options.get("fused_activation_function", None) != 0
                or len(prod.outputs) != 1):
            continue
        if graph.tensors[src].dtype != np.float32:
            continue
        prod.options["fused_activation_function"] = code
        prod.outputs = [act.outputs[0]]
        producer[act.outputs[0]] = prod
        removed.add(id(act))
        fused += 1
    graph.nodes = [n for n in graph.nodes if id(n) not in removed]
    return fused


# Convolutions that can take a preceding zero PAD as their own padding (input 0).
_PADDABLE = (BuiltinOp.CONV_2D, BuiltinOp.DEPTHWISE_CONV_2D)
_PADDING_VALID = 1


def _spatial_zero_padding(graph: Graph, pad: Node):
    """(top, bottom, left, right) when `pad` is a constant zero padding of H and W only of a
    float32 NHWC tensor, else None (anything prepare would refuse stays for prepare to refuse)."""
    if pad.op not in (BuiltinOp.PAD, BuiltinOp.PADV2) or len(pad.outputs) != 1:
        return None
    if not 2 <= len(pad.inputs) <= (3 if pad.op == BuiltinOp.PADV2 else 2):
        return None
    src, amounts = graph.tensors[pad.inputs[0]], graph.tensors[pad.inputs[1]]
    if src.dtype != np.float32 or len(src.shape) != 4 or amounts.data is None:
        return None
    if len(pad.inputs) == 3 and pad.inputs[2] >= 0:
        fill = graph.tensors[pad.inputs[2]]
        value = None if fill.data is None else np.asarray(fill.data).reshape(-1)
        # -0.0 would be a different fill; only the exact +0.0 the conv pads with folds.
        if fill.dtype != np.float32 or value is None or value.size != 1 or value[0] != 0 \
                or np.signbit(value[0]):
            return None
    pairs = np.asarray(amounts.data)
    if pairs.shape != (4, 2) or pairs.dtype.kind != "i" or (pairs < 0).any() \
            or pairs[0].any() or pairs[3].any():
        return None
    return tuple(int(v) for v in (pairs[1, 0], pairs[1, 1], pairs[2, 0], pairs[2, 1]))


def fold_padding(graph: Graph) -> int:
    """Fold a zero PAD of H/W into the VALID CONV_2D / DEPTHWISE_CONV_2D that alone reads it:
    the conv reads the unpadded tensor with node.options["explicit_padding"] = (top, bottom,
    left, right) added to its own, and the padded copy is never made. Returns the count."""
    keep_visible = set(graph.outputs)
    folded = 0
    changed = True
    while changed:  # a PAD feeding a PAD feeding a conv folds both, one per pass
        changed = False
        uses = graph.consumers()
        for pad in graph.nodes:
            amounts = _spatial_zero_padding(graph, pad)
            if amounts is None:
                continue
            out = pad.outputs[0]
            readers = uses.get(out, [])
            if out in keep_visible or len(readers) != 1:
                continue
            conv = readers[0]
            if conv.op not in _PADDABLE or conv.inputs.count(out) != 1 or \
                    conv.inputs[0] != out or \
                    int(conv.options.get("padding", -1)) != _PADDING_VALID:
                continue
            # A 1x1 filter over a padded input is a pointwise FC under QD8 (quantized per
            # pixel) but a convolution (per image) once folded: it stays as written.
            if tuple(graph.tensors[conv.inputs[1]].shape[1:3]) == (1, 1):
                continue
            before = conv.options.get("explicit_padding", (0, 0, 0, 0))
            conv.options["explicit_padding"] = tuple(a + b for a, b in zip(before, amounts))
            conv.inputs[0] = pad.inputs[0]
            graph.nodes = [n for n in graph.nodes if n is not pad]
            folded += 1
            changed = True
            break
    return folded
