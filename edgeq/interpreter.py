"""edgeq.Interpreter: a drop-in for ai_edge_litert.interpreter.Interpreter.

Loading reads and verifies the file; allocate_tensors prepares the graph (shapes, constant
folding) and builds the plan (arena, kernels); invoke runs the plan in C with the GIL released.
"""
from __future__ import annotations

import os
import threading
import warnings
from typing import Optional

import numpy as np

from edgeq.errors import InvokeError
from edgeq.graph.graph import Graph, fold_padding, fuse_activations, fuse_layer_norm
from edgeq.graph.prepare import prepare_graph
from edgeq.plan.planner import build_plan
from edgeq.runtime import KernelFailure
from edgeq.tflite.reader import read_model


_default_threads = None


def default_num_threads() -> int:
    """The board's default (its big cores; edgeq.board), found once per process."""
    global _default_threads
    if _default_threads is None:
        from edgeq.board import detect_board

        _default_threads = max(1, int(detect_board().default_threads))
    return _default_threads


class _Session:
    """One subgraph's graph, current input shapes and (once allocated) its plan."""

    def __init__(self, model, subgraph_index: int, num_threads: int, quantize=None,
                 precision: str = "fp32"):
        self.graph = Graph(model, subgraph_index)
        self.precision = precision  # "fp32" or "fp16" (resolved)
        self.graph.quantize = quantize  # read by edgeq/ops/qd8.py
        self.graph.precision = precision  # read by edgeq/graph/graph.py fuse_conv_epilogues
        self.fused = fuse_activations(self.graph)
        self.folded_pads = fold_padding(self.graph)
        self.fused_layer_norms = fuse_layer_norm(self.graph)
        self.num_threads = num_threads
        self.input_shapes: dict = {}
        self.infos = None
        self.plan = None
        self.lock = threading.Lock()

    # -- shapes ---------------------------------------------------------------------------
    def current_shape(self, index: int) -> tuple:
        if self.infos is not None:
            return tuple(self.infos[index].shape)
        if index in self.input_shapes:
            return tuple(self.input_shapes[index])
        return tuple(self.graph.tensors[index].shape)

    def resize(self, index: int, shape, strict: bool):
        if index not in self.graph.inputs:
            raise ValueError(f"tensor {index} is not an input of the model; only inputs can be "
                             f"resized")
        shape = tuple(int(d) for d in np.asarray(shape).reshape(-1))
        t = self.graph.tensors[index]
        if any(d < 0 for d in shape):
            raise ValueError(f"input '{t.name}': dimensions must be >= 0, got {list(shape)}")
        signature = t.shape_signature or t.shape
        if strict:
            if len(shape) != len(signature) or any(
                    s != -1 and s != d for s, d in zip(signature, shape)):
                raise ValueError(f"input '{t.name}': strict resize to {list(shape)} does not "
                                 f"match the signature {list(signature)}")
        if shape != self.current_shape(index):
            self.input_shapes[index] = shape
            self.infos = None
            self.plan = None

    def allocate(self):
        infos, prepared = prepare_graph(self.graph, self.input_shapes)
        if self.precision == "fp16":
            from edgeq.plan.precision import apply_fp16

            prepared = apply_fp16(self.graph, infos, prepared, threads=self.num_threads)
        self.plan = build_plan(self.graph, infos, prepared, self.num_threads)
        self.infos = infos

    def require_plan(self):
        if self.plan is None:
            raise RuntimeError("allocate_tensors() must be called before this (and again after "
                               "resize_tensor_input)")
        return self.plan

    # -- data -----------------------------------------------------------------------------
    def view(self, index: int) -> np.ndarray:
        """The tensor's memory (zero-copy): float16 for an activation stored as fp16."""
        plan = self.require_plan()
        if index in plan.views:
            return plan.views[index]
        info = self.infos[index] if 0 <= index < len(self.infos) else None
        if info is not None and info.value is not None:
            return info.value
        raise ValueError(f"tensor {index} is not kept by edgeq's plan (it was fused away or is "
                         f"an intermediate that no step reads)")

    def set(self, index: int, value):
        plan = self.require_plan()
        if index not in plan.views or self.infos[index].value is not None:
            raise ValueError(f"tensor {index} cannot be set: only inputs and activations can")
        dst = plan.views[index]
        value = np.asarray(value)
        name = self.graph.tensors[index].name
        if dst.dtype == np.float16 and value.dtype == np.float32:
            value = value.astype(np.float16)  # an fp16-stored activation takes its model dtype
        if value.dtype != dst.dtype:
            raise ValueError(f"Cannot set tensor: got value of type {value.dtype.name} but "
                             f"expected type {dst.dtype.name} for input {index}, name: {name}")
        if value.shape != dst.shape:
            raise ValueError(f"Cannot set tensor: dimension mismatch. Got {list(value.shape)} "
                             f"but expected {list(dst.shape)} for input {index}, name: {name}")
        dst[...] = value

    def invoke(self):
        plan = self.require_plan()
        with self.lock:
            try:
                plan.compiled.invoke()
            except KernelFailure as e:
                node = plan.nodes[e.node].node
                raise InvokeError(f"{node.describe()}: {e}") from None

    # -- details --------------------------------------------------------------------------
    def details(self, index: int, name: Optional[str] = None) -> dict:
        t = self.graph.tensors[index]
        q = t.quantization
        if q is not None and len(q.scale):
            scales = np.asarray(q.scale, np.float32)
            zero_points = np.asarray(q.zero_point, np.int32)
            qdim = int(q.quantized_dimension)
            quant = (float(scales[0]), int(zero_points[0])) if len(scales) else (0.0, 0)
        else:
            scales = np.zeros(0, np.float32)
            zero_points = np.zeros(0, np.int32)
            qdim = 0
            quant = (0.0, 0)
        shape = self.current_shape(index)
        signature = t.shape_signature if t.shape_signature else t.shape
        return {
            "name": t.name if name is None else name,
            "index": index,
            "shape": np.array(shape, np.int32),
            "shape_signature": np.array(signature, np.int32),
            "dtype": t.dtype.type,
            "quantization": quant,
            "quantization_parameters": {"scales": scales, "zero_points": zero_points,
                                        "quantized_dimension": qdim, "block_size": 0},
            "sparsity_parameters": _sparsity_details(t.sparsity),
        }


def _sparsity_details(sparsity) -> dict:
    if sparsity is None:
        return {}
    dims = []
    for d in sparsity.dim_metadata:
        if d.format == 0:
            dims.append({"format": 0, "dense_size": d.dense_size})
        else:
            dims.append({"format": 1, "array_segments": d.array_segments,
                         "array_indices": d.array_indices})
    return {"traversal_order": np.array(sparsity.traversal_order, np.int32),
            "block_map": np.array(sparsity.block_map, np.int32), "dim_metadata": dims}


class Interpreter:
    """Runs a .tflite model. Same constructor and methods as LiteRT's Interpreter."""

    def __init__(self, model_path=None, model_content=None, experimental_delegates=None,
                 num_threads: Optional[int] = None, quantize: Optional[str] = None,
                 precision: str = "fp32", **kwargs):
        """quantize="qd8" (an edgeq extension) runs a float model the way a dynamic-range one
        runs: CONV_2D / DEPTHWISE_CONV_2D / FULLY_CONNECTED / BATCH_MATMUL weights of 1024
        elements or more are quantized per channel to int8 at load, as TensorFlow's converter
        does with Optimize.DEFAULT, and run on the QD8 kernels.

        precision="fp16" (an edgeq extension) stores float activations between ops as fp16
        (half the activation memory and traffic; arithmetic stays float32, results rounded to
        fp16 when stored; edgeq/plan/precision.py). Inputs and outputs stay float32.
        On ARMv8.2 FP16 cores 1x1 convolutions, FC and depthwise layers compute in fp16.
        precision="auto" is fp32 on every CPU for now (fp16 is not cheaper for every model
        anywhere: precision.AUTO_WHY); the `precision` property says what was chosen."""
        if (model_path is None) == (model_content is None):
            raise ValueError("give exactly one of model_path or model_content")
        if experimental_delegates:
            warnings.warn("edgeq ignores experimental_delegates: it runs its own kernels",
                          RuntimeWarning, stacklevel=2)
        for key in kwargs:
            if not key.startswith("experimental_"):
                raise TypeError(f"Interpreter() got an unexpected keyword argument '{key}'")
        if num_threads is not None and (not isinstance(num_threads, int) or num_threads < -1
                                        or num_threads == 0):
            raise ValueError("num_threads should be >= 1, or -1 / None for the default")
        if quantize not in (None, "qd8"):
            raise ValueError(f"quantize={quantize!r}: the only mode is 'qd8' (or None)")
        self._quantize = quantize
        # edgeq.plan.precision (a sizeable import) only when fp32 is not what was asked for.
        if precision != "fp32":
            from edgeq.plan.precision import resolve as resolve_precision

            precision = resolve_precision(precision)  # ValueError naming a bad value
        self._precision = precision
        self._num_threads = default_num_threads() if num_threads in (None, -1) else num_threads
        source = os.fspath(model_path) if model_path is not None else model_content
        self._model = read_model(source)
        self._sessions: dict = {0: _Session(self._model, 0, self._num_threads, quantize,
                                            self._precision)}

    @property
    def _main(self) -> _Session:
        return self._sessions[0]

    def _session(self, subgraph_index: int) -> _Session:
        if subgraph_index not in self._sessions:
            self._sessions[subgraph_index] = _Session(self._model, subgraph_index,
                                                      self._num_threads, self._quantize,
                                                      self._precision)
        return self._sessions[subgraph_index]

    # -- lifecycle ------------------------------------------------------------------------
    def allocate_tensors(self):
        self._main.allocate()

    def invoke(self):
        self._main.invoke()

    def resize_tensor_input(self, input_index, tensor_size, strict=False):
        self._main.resize(int(input_index), tensor_size, strict)

    def reset_all_variables(self):
        s = self._main
        plan = s.require_plan()
        for t in s.graph.tensors:
            if t.is_variable:
                plan.views[t.index][...] = t.data if t.data is not None else 0

    # -- tensors --------------------------------------------------------------------------
    def get_input_details(self):
        return [self._main.details(i) for i in self._main.graph.inputs]

    def get_output_details(self):
        return [self._main.details(i) for i in self._main.graph.outputs]

    def get_tensor_details(self):
        n = len(self._model.subgraphs[0].tensors)
        return [self._main.details(i) for i in range(n)]

    def _check_index(self, index):
        n = len(self._model.subgraphs[0].tensors)
        if not 0 <= int(index) < n:
            raise ValueError(f"tensor index {index} is out of range (the model has {n})")
        return int(index)

    def set_tensor(self, tensor_index, value):
        self._main.set(self._check_index(tensor_index), value)

    def get_tensor(self, tensor_index, subgraph_index=0):
        """A copy in the model's dtype: an activation stored as fp16 (precision="fp16") comes
        back as float32 holding its fp16 values; tensor(i) gives the float16 memory itself."""
        index = self._check_index(tensor_index)
        session = self._session(subgraph_index)
        value = session.view(index)
        if value.dtype == np.float16 and session.graph.tensors[index].dtype == np.float32:
            return value.astype(np.float32)
        return np.array(value, copy=True)

    def tensor(self, tensor_index):
        """A function returning a zero-copy numpy view of the tensor's current memory."""
        index = self._check_index(tensor_index)
        session = self._main
        session.require_plan()
        return lambda: session.view(index)

    # -- signatures -----------------------------------------------------------------------
    def get_signature_list(self):
        return {s.signature_key: {"inputs": list(s.inputs), "outputs": list(s.outputs)}
                for s in self._model.signature_defs}

    def get_signature_runner(self, signature_key=None):
        sigs = self._model.signature_defs
        if signature_key is None:
            if len(sigs) != 1:
                raise ValueError("the model has %d signatures; name one of %s" %
                                 (len(sigs), [s.signature_key for s in sigs]))
            sig = sigs[0]
        else:
            matches = [s for s in sigs if s.signature_key == signature_key]
            if not matches:
                raise ValueError(f"Invalid signature_key provided: '{signature_key}'; the model "
                                 f"has {[s.signature_key for s in sigs]}")
            sig = matches[0]
        return SignatureRunner(self, sig)

    # -- edgeq extras ---------------------------------------------------------------------
    @property
    def num_threads(self) -> int:
        return self._num_threads

    @property
    def precision(self) -> str:
        """The activation storage in use: "fp32" or "fp16" ("auto" resolved for this CPU)."""
        return self._precision

    def _get_plan(self):
        return self._main.require_plan()


class SignatureRunner:
    """Runs one signature: runner(**inputs) -> {output name: array}."""

    def __init__(self, interpreter: Interpreter, signature):
        self._sig = signature
        self._session = interpreter._session(signature.subgraph_index)

    def get_input_details(self):
        return {k: self._session.details(i) for k, i in self._sig.inputs.items()}

    def get_output_details(self):
        return {k: self._session.details(i) for k, i in self._sig.outputs.items()}

    def allocate_tensors(self):
        self._session.allocate()

    def __call__(self, **kwargs):
        s = self._session
        unknown = set(kwargs) - set(self._sig.inputs)
        if unknown:
            raise ValueError(f"unknown signature inputs {sorted(unknown)}; expected "
                             f"{sorted(self._sig.inputs)}")
        missing = set(self._sig.inputs) - set(kwargs)
        if missing:
            raise ValueError(f"missing signature inputs {sorted(missing)}")
        for name, value in kwargs.items():
            index = self._sig.inputs[name]
            value = np.asarray(value)
            if value.shape != s.current_shape(index):
                s.resize(index, value.shape, strict=False)
        if s.plan is None:
            s.allocate()
        for name, value in kwargs.items():
            s.set(self._sig.inputs[name], np.asarray(value))
        s.invoke()
        return {name: np.array(s.view(i), copy=True) for name, i in self._sig.outputs.items()}
