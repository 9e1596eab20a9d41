"""The fused layer normalization (edgeq/graph/graph.py fuse_layer_norm, kernel layer_norm_f32):
the converter's ten-node MEAN / SQUARED_DIFFERENCE / MEAN / ADD / RSQRT / MUL / MUL / MUL / ADD
chain (plus a NEG) becomes one node where that is exact; each case runs in edgeq and in LiteRT
(which runs the chain as written); chains that must stay unfused stay, and stay correct."""
from __future__ import annotations

import numpy as np
import pytest

import edgeq
from edgeq.ops.reduce import LayerNormParams
from edgeq.runtime import cpu, run_kernel
from edgeq.tflite.schema import BuiltinOp
from edgeq.tflite.writer import ModelBuilder
from harness import assert_close_to_range, isa_fixture, run_edgeq, run_litert, shared_model

F32 = np.float32


def layer_norm_model(shape, gamma=True, beta=False, axis=-1, expose=None, eps=1e-3, seed=0):
    """The converter's chain over `axis` of x; expose names an intermediate to make a graph
    output too ("m", "v", "s")."""
    rng = np.random.default_rng(seed)
    depth = shape[-1]
    b = ModelBuilder()
    x = b.add_tensor("x", shape, F32)
    axes = b.add_tensor("axes", [1], np.int32, data=np.array([axis], np.int32))
    t = {name: b.add_tensor(name, [], F32) for name in "m n d v t r s a bb y".split()}
    b.add_operator(BuiltinOp.MEAN, [x, axes], [t["m"]], options={"keep_dims": True})
    b.add_operator(BuiltinOp.NEG, [t["m"]], [t["n"]])
    b.add_operator(BuiltinOp.SQUARED_DIFFERENCE, [x, t["m"]], [t["d"]])
    b.add_operator(BuiltinOp.MEAN, [t["d"], axes], [t["v"]], options={"keep_dims": True})
    e = b.add_tensor("eps", [], F32, data=np.array(eps, F32))
    b.add_operator(BuiltinOp.ADD, [t["v"], e], [t["t"]])
    b.add_operator(BuiltinOp.RSQRT, [t["t"]], [t["r"]])
    s = t["r"]
    if gamma:
        g = b.add_tensor("gamma", [1, 1, depth][-len(shape):], F32,
                         data=rng.uniform(0.5, 1.5, depth).astype(F32).reshape(
                             [1, 1, depth][-len(shape):]))
        b.add_operator(BuiltinOp.MUL, [s, g], [t["s"]])
        s = t["s"]
    b.add_operator(BuiltinOp.MUL, [x, s], [t["a"]])
    b.add_operator(BuiltinOp.MUL, [t["n"], s], [t["bb"]])
    b.add_operator(BuiltinOp.ADD, [t["a"], t["bb"]], [t["y"]])
    out = t["y"]
    if beta:
        bt = b.add_tensor("beta", [depth], F32, data=rng.standard_normal(depth).astype(F32))
        z = b.add_tensor("z", [], F32)
        b.add_operator(BuiltinOp.ADD, [out, bt], [z])
        out = z
    b.set_inputs([x])
    b.set_outputs([out] + ([t[expose]] if expose else []))
    return b.build()


def kernels(model):
    it = edgeq.Interpreter(model_content=model)
    it.allocate_tensors()
    return [n.call.kernel for n in it._get_plan().nodes]


@pytest.mark.parametrize("shape", [(1, 64, 128), (2, 5, 7), (3, 1), (1, 9, 333)], ids=str)
@pytest.mark.parametrize("gamma,beta", [(True, False), (False, False), (True, True)])
def test_fused_chain_matches_litert(shape, gamma, beta):
    model = layer_norm_model(shape, gamma, beta)
    assert kernels(model) == ["layer_norm_f32"]
    x = (np.random.default_rng(len(shape)).standard_normal(shape) * 3 + 1).astype(F32)
    (actual,) = run_edgeq(model, [x])
    (expected,) = run_litert(model, [x])
    assert_close_to_range(actual, expected, 1e-5, what="layer norm")


@pytest.mark.parametrize("case", ["axis", "exposed mean", "exposed scale"])
def test_chains_that_must_stay_unfused(case):
    shape = (2, 6, 16)
    kw = {"axis": {"axis": 1}, "exposed mean": {"expose": "m"},
          "exposed scale": {"expose": "s"}}[case]
    model = layer_norm_model(shape, **kw)
    assert "layer_norm_f32" not in kernels(model)
    x = np.random.default_rng(5).standard_normal(shape).astype(F32)
    actual, expected = run_edgeq(model, [x]), run_litert(model, [x])
    for a, e in zip(actual, expected):
        assert_close_to_range(a, e, 1e-5)


@pytest.mark.parametrize("name", ["tiny_bert.fp32", "tiny_bert.fp16", "tiny_bert.qd8"])
def test_tiny_bert_layer_norms_are_fused(name):
    it = edgeq.Interpreter(model_path=str(shared_model(f"{name}.tflite")))
    it.allocate_tensors()
    assert it._main.fused_layer_norms == 4
    assert sum(n.call.kernel == "layer_norm_f32" for n in it._get_plan().nodes) == 4


allowed = isa_fixture({"avx2": cpu.FEATURES["avx2"],
                       "avx512": cpu.FEATURES["avx2"] | cpu.FEATURES["avx512"],
                       "neon": cpu.FEATURES["neon"]})


@pytest.mark.parametrize("rows,depth", [(1, 1), (3, 7), (2, 8), (5, 9), (64, 128), (4, 333),
                                       (9, 16), (17, 48)])
@pytest.mark.parametrize("gamma,beta", [(True, True), (False, False)])
def test_kernel_variants_match_the_reference(allowed, rows, depth, gamma, beta):
    rng = np.random.default_rng(rows * depth)
    x = (rng.standard_normal((rows, depth)) * 2 + 0.5).astype(F32)
    g = rng.uniform(0.5, 1.5, depth).astype(F32) if gamma else None
    bt = rng.standard_normal(depth).astype(F32) if beta else None
    params = bytes(LayerNormParams(rows, depth, 1e-5))
    got, want = np.full_like(x, np.nan), np.empty_like(x)
    run_kernel("layer_norm_f32", params, [x, g, bt], [got], allowed=allowed)
    run_kernel("layer_norm_f32", params, [x, g, bt], [want], allowed=0)
    assert_close_to_range(got, want, 1e-6)
