"""Shared test helpers: build small models with edgeq's own writer, run them in edgeq and in
LiteRT (the reference), compare.

Tolerance: fp32 paths must agree within 1e-4 of the reference output's range (the brief's rule).
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from edgeq.tflite.writer import ModelBuilder

SHARED_MODELS = Path(os.environ.get(
    "EDGEQ_SHARED_MODELS", Path(__file__).resolve().parents[1].parent / "shared" / "models"))


def shared_model(name: str) -> Path:
    path = SHARED_MODELS / name
    if not path.exists():
        pytest.skip(f"{path} is absent (the shared model folder ships with CI, not with clones)")
    return path


def isa_fixture(variants: dict):
    """A fixture `allowed` parametrized over {name: ISA feature bits}: each kernel test runs
    once per variant with those bits, skipped (saying which) where this CPU lacks them."""
    from edgeq.runtime import cpu

    @pytest.fixture(params=list(variants))
    def allowed(request):
        bits = variants[request.param]
        if bits & ~cpu.detected():
            pytest.skip(f"this CPU lacks {request.param}")
        return bits

    return allowed


def litert_interpreter(**kwargs):
    litert = pytest.importorskip("ai_edge_litert.interpreter",
                                 reason="ai-edge-litert (the reference) is not installed")
    return litert.Interpreter(num_threads=1, **kwargs)


def single_op_model(op, inputs, output_dtype=np.float32, options=None, constants=None,
                    n_outputs=1, output_shapes=None, version=1) -> bytes:
    """A model with one operator.

    inputs: list of (shape, dtype) for runtime inputs, or numpy arrays for constant inputs, or
            None for an absent optional input. Constants may also be given through `constants`.
    Output shapes are written as given (or left empty) — both runtimes infer them.
    """
    b = ModelBuilder(description="edgeq test")
    ids, graph_inputs = [], []
    for k, spec in enumerate(inputs):
        if spec is None:
            ids.append(-1)
        elif isinstance(spec, np.ndarray):
            ids.append(b.add_tensor(f"const{k}", spec.shape, spec.dtype, data=spec))
        else:
            shape, dtype = spec
            t = b.add_tensor(f"in{k}", shape, np.dtype(dtype))
            ids.append(t)
            graph_inputs.append(t)
    dtypes = output_dtype if isinstance(output_dtype, (list, tuple)) else [output_dtype] * n_outputs
    outs = []
    for k in range(n_outputs):
        shape = output_shapes[k] if output_shapes else []
        outs.append(b.add_tensor(f"out{k}", shape, np.dtype(dtypes[k])))
    b.add_operator(op, ids, outs, options=options, version=version)
    b.set_inputs(graph_inputs)
    b.set_outputs(outs)
    return b.build()


def _feed_and_run(it, feeds: list):
    """Resize inputs to the feeds, allocate, set, invoke; the outputs (either runtime)."""
    for d, x in zip(it.get_input_details(), feeds):
        if tuple(d["shape"]) != x.shape:
            it.resize_tensor_input(d["index"], x.shape)
    it.allocate_tensors()
    for d, x in zip(it.get_input_details(), feeds):
        it.set_tensor(d["index"], x)
    it.invoke()
    return [it.get_tensor(d["index"]) for d in it.get_output_details()]


def run_edgeq(model: bytes, feeds: list):
    from edgeq import Interpreter

    return _feed_and_run(Interpreter(model_content=model, num_threads=1), feeds)


def expect_model_error(op, inputs, feeds=(), **kwargs) -> str:
    """Build a one-op model that edgeq must refuse with ModelError; returns the message."""
    import edgeq

    model = single_op_model(op, inputs, **kwargs)
    with pytest.raises(edgeq.ModelError) as info:
        run_edgeq(model, list(feeds))
    return str(info.value)


def run_litert(model: bytes, feeds: list, kernels: str = "xnnpack"):
    """Run LiteRT: kernels="xnnpack" (its default path), "reference" (BUILTIN_REF, the bit-exact
    reference kernels) or "builtin" (its optimized builtin kernels, no XNNPack)."""
    kwargs = {}
    if kernels != "xnnpack":
        litert = pytest.importorskip("ai_edge_litert.interpreter",
                                     reason="ai-edge-litert (the reference) is not installed")
        resolvers = litert.OpResolverType
        kwargs["experimental_op_resolver_type"] = {
            "reference": resolvers.BUILTIN_REF,
            "builtin": resolvers.BUILTIN_WITHOUT_DEFAULT_DELEGATES}[kernels]
    return _feed_and_run(litert_interpreter(model_content=model, **kwargs), feeds)


def assert_close_to_range(actual, expected, rel=1e-4, what="output"):
    """|actual - expected| <= rel * range(expected) elementwise (exact for non-float dtypes)."""
    actual, expected = np.asarray(actual), np.asarray(expected)
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape} != {expected.shape}"
    assert actual.dtype == expected.dtype, f"{what}: dtype {actual.dtype} != {expected.dtype}"
    if not np.issubdtype(expected.dtype, np.floating):
        np.testing.assert_array_equal(actual, expected, err_msg=what)
        return
    finite = np.isfinite(expected)
    np.testing.assert_array_equal(np.isfinite(actual), finite, err_msg=f"{what}: non-finite")
    if not finite.any():
        return
    span = float(np.max(expected[finite]) - np.min(expected[finite]))
    tol = rel * max(span, 1.0 if span == 0 else span) + 1e-6
    err = np.max(np.abs(actual[finite].astype(np.float64) - expected[finite]))
    assert err <= tol, f"{what}: max error {err:.3g} exceeds {tol:.3g} (range {span:.3g})"


def check_against_litert(op, inputs, feeds, rel=1e-4, kernels="xnnpack", **kwargs):
    """Build a one-op model, run both runtimes on `feeds`, compare every output."""
    model = single_op_model(op, inputs, **kwargs)
    expected = run_litert(model, feeds, kernels)
    actual = run_edgeq(model, feeds)
    assert len(actual) == len(expected)
    for k, (a, e) in enumerate(zip(actual, expected)):
        assert_close_to_range(a, e, rel, what=f"output {k}")
    return actual
