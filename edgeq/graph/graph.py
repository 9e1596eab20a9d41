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
        custom = BuiltinOp.CUSTOM
        self.nodes = [Node(op.index, op.custom_code if op.builtin_code == custom
                           else op.builtin_code, list(op.inputs), list(op.outputs),
                           dict(op.options), op.version, op.custom_options)
                      for op in sub.operators]
        self._check_supported()

    # The port index: which nodes read each tensor, which node writes it. Built on first use
    # and dropped whenever `nodes` is assigned; a pass that edits a node's inputs or outputs in
    # place, and keeps querying, must call ports_changed() (or assign `nodes`) after the edit.
    @property
    def nodes(self) -> list:
        return self._nodes

    @nodes.setter
    def nodes(self, value: list):
        self._nodes = value
        self._ports = None

    def ports_changed(self):
        """Forget the port index after an in-place edit of some node's inputs or outputs."""
        self._ports = None

    def _port_index(self) -> tuple:
        if self._ports is None:
            readers: dict[int, list] = {}
            writer: dict[int, Node] = {}
            for n in self._nodes:
                for t in n.inputs:
                    if t >= 0:
                        readers.setdefault(t, []).append(n)
                for t in n.outputs:
                    writer.setdefault(t, n)  # the first, should a bad graph have two
            self._ports = (readers, writer)
        return self._ports

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
        self._constant_memory = None

    def constant_memory(self):
        """Where this prepare's constants go (edgeq.runtime.ConstantMemory): a new prepare
        starts a new one; the old one's blocks live on as long as the old plan's arrays."""
        memory = self.__dict__.get("_constant_memory")
        if memory is None:
            from edgeq.runtime import ConstantMemory

            memory = self._constant_memory = ConstantMemory()
        return memory

    def add_constant(self, value: np.ndarray, name: str) -> int:
        from edgeq.tflite.schema import TENSOR_TYPE_OF

        index = len(self.tensors)
        self.tensors.append(TensorDef(index, name, tuple(value.shape), None, value.dtype,
                                      TENSOR_TYPE_OF[value.dtype], value))
        return index

    def unindex(self, node: Node):
        """Take node's reads and writes out of the port index: before a pass edits the node's
        ports in place (then reindex(node)) or drops it from `nodes`, so that the index stays
        true mid-pass without a rebuild."""
        readers, writer = self._port_index()
        for t in set(node.inputs):
            if t >= 0:
                left = [n for n in readers.get(t, ()) if n is not node]
                if left:
                    readers[t] = left
                else:
                    readers.pop(t, None)
        for t in node.outputs:
            if writer.get(t) is node:
                del writer[t]

    def reindex(self, node: Node):
        """Put node's (edited, or new) reads and writes into the port index."""
        readers, writer = self._port_index()
        for t in node.inputs:
            if t >= 0:
                readers.setdefault(t, []).append(node)
        for t in node.outputs:
            writer.setdefault(t, node)

    def absorb_reader(self, node: Node, reader: Node):
        """A fusion: `node` takes over `reader`, which reads node's output, and writes reader's
        (first) output instead; reader leaves the index (the caller drops it from `nodes`)."""
        self.unindex(reader)
        self.unindex(node)
        node.outputs = [reader.outputs[0]]
        self.reindex(node)

    def drop_nodes(self, ids: set):
        """Remove the nodes whose id() is in `ids`, keeping the order of the rest. The port
        index stays (a rebuild per pass was a sizeable part of the graph passes): the dropped
        nodes must be out of it already (unindex, absorb_reader), as every pass has them."""
        if ids:
            ports = self._ports
            self.nodes = [n for n in self._nodes if id(n) not in ids]
            self._ports = ports

    def consumers(self) -> dict:
        """tensor -> the nodes reading it (a node reading it twice is listed twice). The cached
        index itself, not a copy: read it, never edit it."""
        return self._port_index()[0]

    def producer(self, t: int) -> Optional[Node]:
        """The node writing tensor t, or None for graph inputs and constants."""
        return self._port_index()[1].get(t)


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
    keep_visible = set(graph.outputs)
    removed = set()
    for act in graph.nodes:
        code = _FUSABLE.get(act.op) if isinstance(act.op, int) else None
        if code is None or len(act.inputs) != 1:
            continue
        src = act.inputs[0]
        prod = graph.producer(src)
        if (prod is None or src in keep_visible
                or len(graph.consumers().get(src, [])) != 1
                or prod.options.get("fused_activation_function", None) != 0
                or len(prod.outputs) != 1):
            continue
        if graph.tensors[src].dtype != np.float32:
            continue
        prod.options["fused_activation_function"] = code
        graph.absorb_reader(prod, act)
        removed.add(id(act))
    graph.drop_nodes(removed)
    return len(removed) + fuse_conv_epilogues(graph) + fuse_depthwise_hard_swish(graph)


# node.options flags of a CONV_2D with a fused epilogue (edgeq/ops/conv.py FUSED_EPILOGUE,
# FUSED_HARD_SWISH).
_FUSED_EPILOGUE = "edgeq_fused_epilogue"
_FUSED_HARD_SWISH = "edgeq_fused_hard_swish"
_MAX_GEMM_TAPS = 4096 // 8  # edgeq/ops/conv.py IGEMM_MAX_POINTERS / GEMM_MAX_MR


def epilogue_fusion_pays(graph: Graph | None = None) -> bool:
    """Whether fuse_conv_epilogues folds anything on this CPU, for `graph` (its precision; None:
    fp32). The x86 and NEON GEMMs apply the epilogue to their accumulators before the store
    (kernels/arm/f32-gemm-6x16__neon.c: one instance per epilogue kind); with the NEON one
    storing raw sums and passing over the tile again, fusion had cost more guest instructions
    than the separate PRELU / ADD / HARD_SWISH kernels (cortex-a72: mobilenet_v3_small 0.97 ->
    1.02 of LiteRT's). Not on ARM under precision fp16: there only PRELU would fold (ADD and
    HARD_SWISH stay, see fuse_conv_epilogues), and a conv with slopes loses the fp16 GEMM
    (edgeq/plan/precision.py F16_GEMMS) for the float32 twin."""
    from edgeq.runtime import cpu

    if not cpu.allowed() & cpu.FEATURES["neon"]:
        return True
    return getattr(graph, "precision", "fp32") != "fp16"


def depthwise_fusion_pays() -> bool:
    """Whether fuse_depthwise_hard_swish folds anything on this CPU: not on ARM, whose NEON
    depthwise kernels apply HARD_SWISH after the store."""
    from edgeq.runtime import cpu

    return not cpu.allowed() & cpu.FEATURES["neon"]


def _gemm_conv(graph: Graph, node: Node) -> bool:
    """Whether prepare will run this CONV_2D on the packed-weight GEMM kernels, whose epilogue
    takes a residual and PRELU slopes: float32 weights known at load (or fp16 ones behind a
    DEQUANTIZE), one group, no activation yet, a tile's tap pointers within bounds."""
    from edgeq.runtime import cpu

    if node.op != BuiltinOp.CONV_2D or len(node.outputs) != 1 or not 2 <= len(node.inputs) <= 3 \
            or int(node.options.get("fused_activation_function", 0)) != 0 \
            or cpu.reference_only() or getattr(graph, "quantize", None) \
            or not epilogue_fusion_pays(graph):
        return False
    x, w = graph.tensors[node.inputs[0]], graph.tensors[node.inputs[1]]
    bias = node.inputs[2] if len(node.inputs) == 3 else -1
    if bias >= 0 and not _known_at_load(graph, bias):
        return False
    return (x.dtype == np.float32 and w.dtype == np.float32 and len(w.shape) == 4
            and len(x.shape) == 4 and x.shape[3] == w.shape[3] > 0
            and w.shape[1] * w.shape[2] <= _MAX_GEMM_TAPS and _known_at_load(graph, node.inputs[1]))


def _known_at_load(graph: Graph, t: int) -> bool:
    """Whether _float_constant(graph, t) has a value, without widening fp16 weights (init
    time)."""
    td = graph.tensors[t]
    return td.dtype == np.float32 and (td.data is not None or _fp16_source(graph, t) is not None)


def _per_channel(graph: Graph, alpha: int, channels: int) -> bool:
    """A constant PRELU alpha that broadcasts along the channels only: one value, or one per
    channel ([C], [1, 1, C], ...)."""
    value = _float_constant(graph, alpha)
    if value is None or value.ndim > 4:
        return False
    return value.size == 1 or (value.size == channels and value.shape[-1] == channels)


def _same_static_shape(a: TensorDef, b: TensorDef) -> bool:
    """Both float32 NHWC with the same declared shape and signature, only the batch left
    unknown: an ADD of them adds element by element whatever the batch (prepare checks it
    again: edgeq/ops/conv.py)."""
    def signature(t):
        return tuple(t.shape_signature) if t.shape_signature else tuple(t.shape)

    return (a.dtype == b.dtype == np.float32 and len(a.shape) == 4
            and tuple(a.shape) == tuple(b.shape) and signature(a) == signature(b)
            and -1 not in signature(a)[1:])


def fuse_conv_epilogues(graph: Graph) -> int:
    """Fold into a CONV_2D that runs on the GEMM kernels (_gemm_conv) what follows it in the
    GEMM's epilogue (kernels/include/edgeq/f32_gemm.h): an ADD of its output and another tensor
    of the same shape (the residual; the ADD's activation becomes the conv's), then a PRELU
    with per-channel alpha, or instead of both a HARD_SWISH; each only where it alone reads the
    intermediate, which is no graph output. Under precision fp16 neither ADD nor HARD_SWISH
    folds: such convs have no fp16 twin (edgeq/ops/conv.py), and those ops run on fp16 as they
    are. The conv takes the alpha as input 3 and the residual as input 4 and moves to the place
    of the last node it absorbed (every input is computed by then). Returns the count of nodes
    folded."""
    visible = set(graph.outputs)
    fp32_storage = getattr(graph, "precision", "fp32") != "fp16"
    folded = 0
    moved = {}  # id(last node absorbed) -> the conv that takes its place
    gone = set()  # ids of nodes no longer at their place: absorbed ones, moved convs
    for conv in graph.nodes:
        if not _gemm_conv(graph, conv):
            continue
        channels = graph.tensors[conv.inputs[1]].shape[0]
        alpha = residual = -1
        absorbed = []
        while True:
            out = conv.outputs[0]
            readers = graph.consumers().get(out, [])
            if out in visible or len(readers) != 1 or graph.tensors[out].dtype != np.float32:
                break
            nxt = readers[0]
            last = False
            if nxt.op == BuiltinOp.ADD and residual < 0 and alpha < 0 and fp32_storage \
                    and len(nxt.inputs) == 2 and nxt.inputs.count(out) == 1 \
                    and len(nxt.outputs) == 1:
                other = nxt.inputs[1] if nxt.inputs[0] == out else nxt.inputs[0]
                # (a constant operand keeps its shape when the input is resized: no residual)
                if graph.tensors[other].data is not None or graph.tensors[other].is_variable \
                        or not _same_static_shape(graph.tensors[other], graph.tensors[out]):
                    break
                residual = other
                conv.options["fused_activation_function"] = \
                    int(nxt.options.get("fused_activation_function", 0))
            elif nxt.op == BuiltinOp.PRELU and alpha < 0 and len(nxt.inputs) == 2 \
                    and nxt.inputs[0] == out and nxt.inputs[1] != out \
                    and _per_channel(graph, nxt.inputs[1], channels):
                alpha = nxt.inputs[1]
            elif nxt.op == BuiltinOp.HARD_SWISH and alpha < 0 and residual < 0 and fp32_storage \
                    and nxt.inputs == [out] and len(nxt.outputs) == 1:
                conv.options[_FUSED_HARD_SWISH] = True
                last = True  # nothing follows HARD_SWISH in the epilogue
            else:
                break
            graph.absorb_reader(conv, nxt)
            absorbed.append(nxt)
            if last:
                break
        if not absorbed:
            continue
        bias = conv.inputs[2] if len(conv.inputs) == 3 else -1
        graph.unindex(conv)
        conv.inputs = conv.inputs[:2] + [bias, alpha, residual]
        graph.reindex(conv)
        conv.options[_FUSED_EPILOGUE] = True
        # The conv moves to the place of the last node it absorbed (every input is computed
        # by then); the others absorbed go.
        gone.add(id(conv))
        gone.update(id(n) for n in absorbed)
        moved[id(absorbed[-1])] = conv
        folded += len(absorbed)
    if folded:
        graph.nodes = [moved.get(id(n), n) for n in graph.nodes
                       if id(n) not in gone or id(n) in moved]
    return folded


def fuse_depthwise_hard_swish(graph: Graph) -> int:
    """Fold a HARD_SWISH into the float32 DEPTHWISE_CONV_2D whose output it alone reads (no
    graph output): the depthwise kernels apply it in registers after the clamp
    (`depthwise_conv2d_f32*_hswish`, kernels/include/edgeq/params/conv.h), bit for bit the op.
    Off on ARM (depthwise_fusion_pays: the NEON depthwise kernels apply it in a second pass
    over their output), not under precision fp16 (the `_hswish` kernels have no fp16 twin), not
    for QD8 (graph.quantize) or dynamic-range weights, nor on the reference kernels alone. The
    depthwise node keeps its place (its inputs are those it had). Returns the count folded."""
    from edgeq.runtime import cpu

    if cpu.reference_only() or getattr(graph, "quantize", None) or not depthwise_fusion_pays() \
            or getattr(graph, "precision", "fp32") == "fp16":
        return 0
    visible = set(graph.outputs)
    uses = graph.consumers()
    removed = set()
    for dw in graph.nodes:
        if dw.op != BuiltinOp.DEPTHWISE_CONV_2D or len(dw.outputs) != 1 \
                or not 2 <= len(dw.inputs) <= 3 or dw.options.get(_FUSED_HARD_SWISH):
            continue
        out = dw.outputs[0]
        readers = uses.get(out, [])
        x = graph.tensors[dw.inputs[0]]
        if out in visible or len(readers) != 1 or readers[0].op != BuiltinOp.HARD_SWISH \
                or readers[0].inputs != [out] or len(readers[0].outputs) != 1 \
                or x.dtype != np.float32 or graph.tensors[out].dtype != np.float32 \
                or not _known_at_load(graph, dw.inputs[1]):
            continue
        hard_swish = readers[0]
        dw.options[_FUSED_HARD_SWISH] = True
        graph.absorb_reader(dw, hard_swish)
        removed.add(id(hard_swish))
    graph.drop_nodes(removed)
    return len(removed)


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
    removed = set()
    # From the last node back, so that in a PAD feeding a PAD feeding a conv the second folds
    # first and the conv is then the first one's only reader.
    for pad in reversed(graph.nodes):
        amounts = _spatial_zero_padding(graph, pad)
        if amounts is None:
            continue
        out = pad.outputs[0]
        readers = graph.consumers().get(out, [])
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
        graph.unindex(pad)
        graph.unindex(conv)
        conv.inputs[0] = pad.inputs[0]
        graph.reindex(conv)
        removed.add(id(pad))
    graph.drop_nodes(removed)
    return len(removed)


# --- layer normalization ---------------------------------------------------------------------

LAYER_NORM = "edgeq:LAYER_NORM"  # the fused op (edgeq/ops/reduce.py); not a model's op name


def _float_constant(graph: Graph, t: int):
    """The float32 value of tensor t known before prepare: its data, or for fp16 models (which
    keep weights as FLOAT16 behind a DEQUANTIZE that prepare evaluates) the FLOAT16 constant
    widened; None otherwise."""
    td = graph.tensors[t] if t >= 0 else None
    if td is None or td.dtype != np.float32:
        return None
    if td.data is not None:
        return np.asarray(td.data, np.float32)
    src = _fp16_source(graph, t)
    return None if src is None else np.asarray(src.data).astype(np.float32)


def _fp16_source(graph: Graph, t: int):
    """The FLOAT16 constant that a DEQUANTIZE widens into tensor t, or None."""
    producer = graph.producer(t)
    if producer is None or producer.op != BuiltinOp.DEQUANTIZE or len(producer.inputs) != 1:
        return None
    src = graph.tensors[producer.inputs[0]]
    return src if src.data is not None and src.dtype == np.float16 else None


def _scalar_constant(graph: Graph, t: int):
    value = _float_constant(graph, t)
    return None if value is None or value.size != 1 else float(value.reshape(-1)[0])


def _vector_constant(graph: Graph, t: int, depth: int):
    """t when it is a float32 constant of `depth` values along the last axis (leading dims 1)."""
    value = _float_constant(graph, t)
    if value is None or not value.shape or value.shape[-1] != depth or value.size != depth:
        return None
    return t


def _last_axis_mean(graph: Graph, node: Node) -> bool:
    if node.op != BuiltinOp.MEAN or len(node.inputs) != 2 or not node.options.get("keep_dims"):
        return False
    x, axes = graph.tensors[node.inputs[0]], graph.tensors[node.inputs[1]]
    if x.dtype != np.float32 or not x.shape or axes.data is None:
        return False
    values = np.asarray(axes.data).reshape(-1)
    return values.size == 1 and int(values[0]) in (-1, len(x.shape) - 1)


def fuse_layer_norm(graph: Graph) -> int:
    """Replace the ten-node chain TensorFlow's converter writes for a layer normalization over
    the last axis,
        m = MEAN(x) ; n = NEG(m) ; d = SQUARED_DIFFERENCE(x, m) ; v = MEAN(d) ; t = ADD(v, eps)
        r = RSQRT(t) ; s = MUL(r, gamma) ; a = MUL(x, s) ; b = MUL(n, s) ; y = ADD(a, b)
    (gamma optional, and an ADD of a constant beta after y folded too), by one LAYER_NORM node
    computing the same operations in one pass over each row. Every intermediate must be read
    only inside the chain and be no graph output. Returns the count."""
    visible = set(graph.outputs)
    gone = set()  # by identity: Node equality compares every field
    after = {}  # id(last node of a chain) -> the LAYER_NORM node that follows it
    position = {id(n): i for i, n in enumerate(graph.nodes)}
    for m1 in graph.nodes:
        if id(m1) in gone:
            continue
        match = _match_layer_norm(graph, m1, graph.consumers(), visible)
        if match is None:
            continue
        chain, x, gamma, beta, eps, out = match
        node = Node(chain[0].index, LAYER_NORM, [x, gamma, beta], [out], {"epsilon": eps})
        for n in chain:
            graph.unindex(n)
        graph.reindex(node)
        gone.update(id(n) for n in chain)
        after[id(max(chain, key=lambda n: position[id(n)]))] = node
    if gone:
        nodes = []
        for n in graph.nodes:
            if id(n) not in gone:
                nodes.append(n)
            if id(n) in after:
                nodes.append(after[id(n)])
        graph.nodes = nodes
    return len(after)


def _match_layer_norm(graph: Graph, m1: Node, uses: dict, visible: set):
    def only(t, count=1):
        """The readers of intermediate t when there are exactly `count` of them."""
        readers = uses.get(t, [])
        return readers if len(readers) == count and t not in visible else None

    def single_output(n, op):
        return n.op == op and len(n.outputs) == 1 and \
            int(n.options.get("fused_activation_function", 0)) == 0

    if not _last_axis_mean(graph, m1):
        return None
    x, m = m1.inputs[0], m1.outputs[0]
    depth = graph.tensors[x].shape[-1]
    readers = only(m, 2)
    if readers is None:
        return None
    neg = next((n for n in readers if n.op == BuiltinOp.NEG), None)
    sqd = next((n for n in readers if n.op == BuiltinOp.SQUARED_DIFFERENCE), None)
    if neg is None or sqd is None or sorted(sqd.inputs) != sorted([x, m]):
        return None
    r2 = only(sqd.outputs[0])
    if r2 is None or r2[0].op != BuiltinOp.MEAN or r2[0].inputs[1:] != m1.inputs[1:] or \
            not r2[0].options.get("keep_dims"):
        return None
    m2 = r2[0]
    r3 = only(m2.outputs[0])
    if r3 is None or not single_output(r3[0], BuiltinOp.ADD):
        return None
    add_eps = r3[0]
    other = [t for t in add_eps.inputs if t != m2.outputs[0]]
    eps = _scalar_constant(graph, other[0]) if len(other) == 1 else None
    if eps is None:
        return None
    r4 = only(add_eps.outputs[0])
    if r4 is None or r4[0].op != BuiltinOp.RSQRT:
        return None
    rsqrt = r4[0]
    chain = [m1, neg, sqd, m2, add_eps, rsqrt]
    def by_constant(t, op):
        """(constant, output, node) when t's one reader is `op` with a last-axis constant."""
        readers = only(t)
        if readers is None or not single_output(readers[0], op):
            return -1, t, None
        other = [i for i in readers[0].inputs if i != t]
        c = _vector_constant(graph, other[0], depth) if len(other) == 1 else None
        return (-1, t, None) if c is None else (c, readers[0].outputs[0], readers[0])

    gamma, s, scale = by_constant(rsqrt.outputs[0], BuiltinOp.MUL)
    chain += [scale] if scale is not None else []
    muls = only(s, 2)
    if muls is None or not all(single_output(n, BuiltinOp.MUL) for n in muls):
        return None
    by_x = next((n for n in muls if sorted(n.inputs) == sorted([x, s])), None)
    by_n = next((n for n in muls if sorted(n.inputs) == sorted([neg.outputs[0], s])), None)
    if by_x is None or by_n is None or by_x is by_n or only(neg.outputs[0]) is None:
        return None
    ra, rb = only(by_x.outputs[0]), only(by_n.outputs[0])
    if ra is None or rb is None or ra[0] is not rb[0] or not single_output(ra[0], BuiltinOp.ADD) \
            or sorted(ra[0].inputs) != sorted([by_x.outputs[0], by_n.outputs[0]]):
        return None
    final = ra[0]
    chain += [by_x, by_n, final]
    beta, out, shift = by_constant(final.outputs[0], BuiltinOp.ADD)
    chain += [shift] if shift is not None else []
    if graph.tensors[out].dtype != np.float32:
        return None
    return chain, x, gamma, beta, eps, out

