"""The builtin twin of a model: a copy in which MediaPipe's Convolution2DTransposeBias custom
ops are rewritten as builtin TRANSPOSE_CONV (bias input, an output_shape constant). LiteRT
runs the custom op only through its XNNPack delegate; the twin runs on its own kernels too
(the tests compare edgeq against LiteRT's reference kernels on it), and in any TFLite build.

    from edgeq.tflite.twin import builtin_twin
    open("selfie_builtin.tflite", "wb").write(builtin_twin(open("selfie.tflite", "rb").read()))
"""
from __future__ import annotations

import struct

import numpy as np

from edgeq.errors import ModelError
from edgeq.tflite.reader import read_model
from edgeq.tflite.schema import BuiltinOp
from edgeq.tflite.writer import ModelBuilder

TRANSPOSE_CONV_BIAS = "Convolution2DTransposeBias"
_C_PADDING = {1: 0, 2: 1}  # TfLitePadding SAME / VALID -> the schema's Padding


def builtin_twin(model: bytes, builtin: bool = True, expose_custom_outputs: bool = False) -> bytes:
    """A copy of a one-subgraph model; with builtin=True each Convolution2DTransposeBias becomes
    TRANSPOSE_CONV(output_shape, weights, input, bias) with the output shape the model declares.
    expose_custom_outputs adds those ops' outputs to the graph outputs (in both forms, so that
    the two can be compared there). Signatures and metadata are not copied."""
    m = read_model(model)
    if len(m.subgraphs) != 1:
        raise ModelError(f"builtin_twin: the model has {len(m.subgraphs)} subgraphs; only "
                         f"one-subgraph models are rewritten")
    (sg,) = m.subgraphs
    b = ModelBuilder(description=m.description or "builtin twin")
    for t in sg.tensors:
        data = None if t.data is None else np.ascontiguousarray(t.data).tobytes()
        b.add_tensor(t.name, t.shape, t.type, data=data, quantization=t.quantization,
                     shape_signature=t.shape_signature, is_variable=t.is_variable,
                     sparsity=t.sparsity)
    exposed = []
    for op in sg.operators:
        if op.custom_code == TRANSPOSE_CONV_BIAS:
            exposed += list(op.outputs)
            if builtin:
                raw = op.custom_options or b""
                if len(raw) < 12:
                    raise ModelError(f"builtin_twin: operator {op.index} ({TRANSPOSE_CONV_BIAS})"
                                     f" has {len(raw)} bytes of custom_options, not 12")
                padding, stride_w, stride_h = struct.unpack_from("<iii", raw)
                if padding not in _C_PADDING:
                    raise ModelError(f"builtin_twin: operator {op.index} has padding {padding}")
                out = sg.tensors[op.outputs[0]]
                shape = b.add_tensor(f"{out.name}/output_shape", [4], np.int32,
                                     data=np.array(out.shape, np.int32))
                x, w, bias = op.inputs
                b.add_operator(BuiltinOp.TRANSPOSE_CONV, [shape, w, x, bias], op.outputs,
                               options={"padding": _C_PADDING[padding], "stride_w": stride_w,
                                        "stride_h": stride_h})
                continue
        if op.custom_code is not None:
            b.add_operator(op.custom_code, op.inputs, op.outputs,
                           custom_options=op.custom_options, version=op.version)
        else:
            b.add_operator(op.builtin_code, op.inputs, op.outputs, options=op.options,
                           version=op.version, options_type=op.options_type)
    b.set_inputs(list(sg.inputs))
    b.set_outputs(list(sg.outputs) + (exposed if expose_custom_outputs else []))
    return b.build()
