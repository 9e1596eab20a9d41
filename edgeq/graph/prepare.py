"""Shape inference and constant evaluation: the graph's ops prepared in order.

For each node: its prepare function sets the output shapes/dtypes and returns a KernelCall.
A node whose inputs are all known at prepare time (weights, shapes, Keras' SHAPE -> STRIDED_SLICE
-> PACK -> RESHAPE chains, fp16/int8 weights behind DEQUANTIZE) is run once, right here, by its
own C kernel, and its outputs become constants: such nodes never reach the plan.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from edgeq.errors import ModelError
from edgeq.ops import registry
from edgeq.ops.registry import PrepareContext, TensorInfo
from edgeq.runtime import page_array, run_kernel
from edgeq.tflite.schema import BuiltinOp

MAX_ELEMENTS = 1 << 31  # refuse absurd intermediate tensors before allocating anything

# Windowed ops whose output shrinks with the input: an empty output from a non-empty input
# means the input is too small for the model (LiteRT refuses to allocate such a graph).
_WINDOWED = {BuiltinOp.CONV_2D, BuiltinOp.DEPTHWISE_CONV_2D, BuiltinOp.AVERAGE_POOL_2D,
             BuiltinOp.MAX_POOL_2D, BuiltinOp.L2_POOL_2D}


@dataclass
class PreparedNode:
    node: object  # edgeq.graph.Node
    call: registry.KernelCall


def densify(tdef) -> np.ndarray:
    from edgeq.graph.sparse import densify_tensor

    return densify_tensor(tdef)


def prepare_graph(graph, input_shapes: dict) -> tuple[list, list]:
    """Returns (infos, prepared): a TensorInfo per tensor and the nodes left to run.

    input_shapes maps graph input tensor index -> shape in use (after resize_tensor_input).
    """
    graph.drop_prepared_constants()
    nodes = graph.nodes
    tensors = graph.tensors
    # One pass over the nodes: what they write, and the last step that reads each tensor.
    # Constants computed here (weights dequantized from fp16 or int8, ...) are dropped once no
    # later node reads them and no kernel uses them: the packed copy made from them is what the
    # plan keeps, and holding both would raise peak memory by the size of the weights.
    produced = set()
    last_read = {}
    for step, node in enumerate(nodes):
        produced.update(node.outputs)
        for t in node.inputs:
            last_read[t] = step
    consumed = last_read  # (keys: every tensor some node reads)

    infos: list = []
    shape_of = input_shapes.get
    for t in tensors:
        value = t.data
        if value is not None:
            if t.sparsity is not None:
                value = densify(t)
        elif (0 in t.shape and t.index not in produced and t.index not in graph.inputs
              and not t.is_variable):
            value = np.zeros(t.shape, t.dtype)  # an empty constant has no buffer to point at
        infos.append(TensorInfo(t.index, t.name, tuple(shape_of(t.index, t.shape)), t.dtype,
                                value, t.quantization))

    keep = set(graph.outputs)
    prepared = []
    for step, node in enumerate(nodes):
        ins = [infos[i] if i >= 0 else None for i in node.inputs]
        outs = [infos[i] for i in node.outputs]
        for o in outs:
            o.value = None
        prepare = registry.lookup(node.op)
        call = prepare(PrepareContext(graph, node, ins, outs))
        # prepare may have added constants (packed weights): make infos for them.
        if len(tensors) > len(infos):
            for t in tensors[len(infos):]:
                infos.append(TensorInfo(t.index, t.name, t.shape, t.dtype, t.data))
        computed = True
        for o in outs:
            if o.size > MAX_ELEMENTS:
                raise ModelError(f"{node.describe()}: output '{o.name}' would have "
                                 f"{o.size} elements (shape {list(o.shape)})")
            if o.value is None:
                computed = False
        if node.op in _WINDOWED:
            _check_not_vanishing(node, ins, outs, consumed)
        if computed:
            continue  # prepare computed the outputs itself (SHAPE, ...)
        if call is None:
            raise ModelError(f"{node.describe()}: prepare produced no kernel")
        if call.inputs is None:
            call.inputs = list(node.inputs)
        if call.outputs is None:
            call.outputs = list(node.outputs)
        # Run now when every input the kernel reads is a constant (and none is a variable).
        constant = None
        for i in call.inputs:
            if i >= 0:
                constant = infos[i].value is not None and not tensors[i].is_variable
                if not constant:
                    break
        if constant:
            _evaluate(node, call, infos)
        else:
            prepared.append(PreparedNode(node, call))
            keep.update(call.inputs)
        _drop_dead_constants(graph, node, step, infos, last_read, keep)
    return infos, prepared


def _drop_dead_constants(graph, node, step, infos, last_read, keep):
    for t in node.inputs:
        if (t >= 0 and last_read[t] == step and t not in keep and infos[t].value is not None
                and graph.tensors[t].data is None):
            infos[t].value = None


def _check_not_vanishing(node, ins, outs, consumed):
    """An intermediate that a window op empties would make every later result meaningless
    (a MEAN over nothing is NaN): refuse it, naming the op and the sizes."""
    if node.op not in _WINDOWED or not ins or ins[0] is None or ins[0].size == 0:
        return
    out = outs[0]
    if out.size == 0 and out.index in consumed:
        raise ModelError(f"{node.describe()}: input '{ins[0].name}' of shape {list(ins[0].shape)} "
                         f"is too small for this model: the op leaves an empty output of shape "
                         f"{list(out.shape)}; give the model a larger input")


def _evaluate(node, call, infos):
    """Run one node now, on constants, and store its outputs as constants."""
    inputs = [infos[i].value if i >= 0 else None for i in call.inputs]
    outputs = [page_array(infos[i].shape, infos[i].dtype, False) for i in call.outputs]
    try:
        run_kernel(call.kernel, call.params_bytes(), inputs, outputs, call.scratch_bytes)
    except RuntimeError as e:
        raise ModelError(f"{node.describe()}: evaluating on constants failed: {e}") from None
    for i, value in zip(call.outputs, outputs):
        value.flags.writeable = False
        infos[i].value = value
