"""The graph's cached port index (Graph.consumers / Graph.producer): always what a fresh scan of
the nodes says, after every kind of edit the passes make, and the passes that keep it up to date
mid-pass give the graphs the scans gave."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edgeq.graph.graph import (Graph, Node, fold_padding, fuse_activations, fuse_layer_norm)
from edgeq.tflite.reader import read_model
from edgeq.tflite.schema import BuiltinOp
from edgeq.tflite.writer import ModelBuilder
from harness import assert_close_to_range, run_edgeq, run_litert

F32 = np.float32
MODELS = Path(__file__).resolve().parents[2] / "shared" / "models"
VALID = 1


def scanned(graph):
    """The index computed from scratch: tensor -> ids of its readers (with multiplicity, in
    any order), tensor -> id of its first writer."""
    readers, writer = {}, {}
    for n in graph.nodes:
        for t in n.inputs:
            if t >= 0:
                readers.setdefault(t, []).append(id(n))
        for t in n.outputs:
            writer.setdefault(t, id(n))
    return {t: sorted(v) for t, v in readers.items()}, writer


def assert_index_true(graph):
    readers, writer = scanned(graph)
    got = {t: sorted(id(n) for n in v) for t, v in graph.consumers().items()}
    assert got == readers
    tensors = set(writer) | {t for n in graph.nodes for t in n.inputs if t >= 0}
    for t in tensors:
        p = graph.producer(t)
        assert (None if p is None else id(p)) == writer.get(t), t


def chain_model():
    """x -> PAD -> PAD -> CONV_2D (VALID) -> RELU -> y, plus a second RELU of x."""
    rng = np.random.default_rng(3)
    b = ModelBuilder()
    x = b.add_tensor("x", [1, 6, 6, 3], F32)
    amounts = b.add_tensor("paddings", [4, 2], np.int32,
                           data=np.array([[0, 0], [1, 1], [1, 0], [0, 0]], np.int32))
    p1 = b.add_tensor("p1", [1, 8, 7, 3], F32)
    p2 = b.add_tensor("p2", [1, 10, 8, 3], F32)
    c, y, z = (b.add_tensor(n, [], F32) for n in ("c", "y", "z"))
    b.add_operator(BuiltinOp.PAD, [x, amounts], [p1])
    b.add_operator(BuiltinOp.PAD, [p1, amounts], [p2])
    w = b.add_tensor("w", [4, 3, 3, 3], F32, data=rng.standard_normal((4, 3, 3, 3)).astype(F32))
    bias = b.add_tensor("bias", [4], F32, data=rng.standard_normal(4).astype(F32))
    b.add_operator(BuiltinOp.CONV_2D, [p2, w, bias], [c],
                   options={"padding": VALID, "stride_w": 1, "stride_h": 1})
    b.add_operator(BuiltinOp.RELU, [c], [y])
    b.add_operator(BuiltinOp.RELU, [x], [z])
    b.set_inputs([x])
    b.set_outputs([y, z])
    return b.build()


def test_index_follows_node_list_assignment_and_in_place_edits():
    g = Graph(read_model(chain_model()))
    assert_index_true(g)
    pad1, pad2, conv, relu, relu_x = g.nodes
    assert [id(n) for n in g.consumers()[g.inputs[0]]] == [id(pad1), id(relu_x)]
    assert g.producer(conv.outputs[0]) is conv

    g.nodes = [n for n in g.nodes if n is not relu]  # assignment drops the index
    assert relu.inputs[0] not in g.consumers()
    assert g.producer(relu.outputs[0]) is None
    assert_index_true(g)

    conv.inputs[0] = pad1.outputs[0]  # an in-place edit, announced
    g.ports_changed()
    assert [id(n) for n in g.consumers()[pad1.outputs[0]]] == [id(pad2), id(conv)]
    assert pad2.outputs[0] not in g.consumers()
    assert_index_true(g)


def test_unindex_reindex_keep_the_index_true_without_a_rebuild():
    g = Graph(read_model(chain_model()))
    pad1, pad2, conv, relu, relu_x = g.nodes
    g.consumers()  # built now, then only edited
    ports = g._ports
    g.unindex(pad2)
    g.unindex(conv)
    conv.inputs = [pad1.outputs[0], pad1.outputs[0]] + conv.inputs[1:]  # read twice
    g.reindex(conv)
    g.unindex(relu)
    g.unindex(conv)
    conv.outputs = list(relu.outputs)
    g.reindex(conv)
    nodes = [pad1, conv, relu_x]
    assert g._ports is ports  # edited in place, not rebuilt
    g._nodes = nodes  # as if spliced, without the setter's reset: the index must agree
    assert_index_true(g)
    assert [id(n) for n in g.consumers()[pad1.outputs[0]]] == [id(conv), id(conv)]
    new = Node(99, BuiltinOp.RELU, [relu_x.outputs[0]], [1000])
    g.reindex(new)
    g._nodes = nodes + [new]
    assert_index_true(g)


def test_pad_chain_folds_both_pads_in_one_pass_and_matches_litert():
    model = chain_model()
    g = Graph(read_model(model))
    assert fuse_activations(g) == 1
    assert fold_padding(g) == 2
    assert [n.op for n in g.nodes] == [BuiltinOp.CONV_2D, BuiltinOp.RELU]
    conv = g.nodes[0]
    assert conv.inputs[0] == g.inputs[0]
    assert conv.options["explicit_padding"] == (2, 2, 2, 0)
    assert conv.options["fused_activation_function"] == 1
    assert_index_true(g)
    x = np.random.default_rng(1).uniform(-1, 1, (1, 6, 6, 3)).astype(F32)
    for a, e in zip(run_edgeq(model, [x]), run_litert(model, [x])):
        assert_close_to_range(a, e)


@pytest.mark.parametrize("name", ["iris_landmark", "palm_detection_lite", "mobilenet_v2.fp32",
                                  "tiny_bert.fp32", "mobilenet_v3_small.fp32"])
def test_passes_on_models_leave_a_true_index_and_a_graph_in_order(name):
    path = MODELS / f"{name}.tflite"
    if not path.exists():
        pytest.skip(f"{path} not present")
    g = Graph(read_model(path))
    before = len(g.nodes)
    # (what folds depends on the CPU: conv epilogues fold on x86 only)
    folded = fuse_activations(g) + fold_padding(g) + fuse_layer_norm(g)
    assert (folded > 0) == (len(g.nodes) < before)
    assert_index_true(g)
    # Every node reads only tensors that are inputs, constants or written by an earlier node.
    ready = set(g.inputs) | {t.index for t in g.tensors if t.data is not None or t.is_variable
                             or 0 in t.shape}
    for n in g.nodes:
        assert all(t < 0 or t in ready for t in n.inputs), n.describe()
        ready.update(n.outputs)
    assert set(g.outputs) <= ready
