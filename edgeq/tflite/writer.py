"""Write small .tflite models: the project's tests and tools build models with this.

    b = ModelBuilder(description="two adds")
    x = b.add_tensor("x", [1, 4], np.float32)
    c = b.add_tensor("c", [1, 4], np.float32, data=np.ones((1, 4), np.float32))
    y = b.add_tensor("y", [1, 4], np.float32)
    b.add_operator(BuiltinOp.ADD, [x, c], [y], options={"fused_activation_function": 1})
    b.set_inputs([x]); b.set_outputs([y])
    model_bytes = b.build()

Built on the `flatbuffers` package's Builder, with slots and defaults taken from
edgeq.tflite.schema (the same tables the reader uses). The writer checks what the caller can get
wrong by accident (unknown option names, data that does not fit its shape, unknown dtypes) but
otherwise writes what it is given — indices, shapes and option values are not validated, so
tests can build hostile models with it and watch the reader refuse them.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Optional, Sequence, Union

import flatbuffers
import numpy as np

from edgeq.tflite.schema import (FILE_IDENTIFIER, NUMPY_DTYPE, OPTIONS, OPTIONS_FOR_OP,
                                 SCHEMA_VERSION, TENSOR_TYPE_OF, BuiltinOp, SparseIndexVectorType,
                                 Slot, TensorType)

# Buffer data is 16-byte aligned, as schema.fbs asks (Buffer.data force_align: 16) and as SIMD
# kernels reading weights in place like.
DATA_ALIGNMENT = 16


@dataclass
class _TensorSpec:
    name: str
    shape: tuple
    type: int
    buffer: int
    quantization: Optional[dict]
    shape_signature: Optional[tuple]
    is_variable: bool
    sparsity: Optional[dict]


@dataclass
class _OperatorSpec:
    opcode_index: int
    inputs: tuple
    outputs: tuple
    options_type: int
    options: dict
    custom_options: Optional[bytes]


@dataclass
class _SubgraphSpec:
    name: str = ""
    tensors: list = field(default_factory=list)
    operators: list = field(default_factory=list)
    inputs: tuple = ()
    outputs: tuple = ()


def _type_code(dtype) -> int:
    """TensorType code from a TensorType / int or anything np.dtype() accepts."""
    if isinstance(dtype, (TensorType, int)) and not isinstance(dtype, bool):
        return int(dtype)
    try:
        return TENSOR_TYPE_OF[np.dtype(dtype)]
    except (TypeError, KeyError):
        raise TypeError(f"no TFLite tensor type for dtype {dtype!r}") from None


def _get(obj, key, default=None):
    """Field of a dict or of a reader dataclass (so parsed models can be written back)."""
    if isinstance(obj, dict):
        return obj.get(key, default)
    return getattr(obj, key, default)


class ModelBuilder:
    """Collects subgraphs, tensors, operators, buffers, signatures and metadata, then writes a
    .tflite flatbuffer with build(). A first subgraph exists implicitly; add_subgraph() adds more
    and makes the new one current (tensors and operators go to the current subgraph)."""

    def __init__(self, description: str = "edgeq"):
        self.description = description
        self._subgraphs: list = []
        self._current = -1
        self._buffers: list = [b""]  # buffer 0: the empty sentinel every model starts with
        self._opcodes: dict = {}  # (code, custom name, version) -> index
        self._metadata: list = []  # (name, buffer index)
        self._signatures: list = []  # (key, subgraph index, inputs, outputs)

    # -- building up ---------------------------------------------------------------------------
    @property
    def _sg(self) -> _SubgraphSpec:
        if self._current < 0:
            self.add_subgraph()
        return self._subgraphs[self._current]

    def add_subgraph(self, name: str = "") -> int:
        """Start a new subgraph (the first call creates subgraph 0); returns its index."""
        self._subgraphs.append(_SubgraphSpec(name=name))
        self._current = len(self._subgraphs) - 1
        return self._current

    def select_subgraph(self, index: int):
        """Make an existing subgraph current again."""
        if not 0 <= index < len(self._subgraphs):
            raise IndexError(f"no subgraph {index}")
        self._current = index

    def add_buffer(self, data: bytes) -> int:
        """A raw buffer; returns its index (add_tensor(data=...) does this for you)."""
        self._buffers.append(bytes(data))
        return len(self._buffers) - 1

    def add_tensor(self, name: str, shape: Sequence[int], dtype, data=None, quantization=None,
                   shape_signature: Optional[Sequence[int]] = None, is_variable: bool = False,
                   sparsity=None) -> int:
        """Add a tensor to the current subgraph; returns its index.

        dtype: a numpy dtype (or anything np.dtype() takes) or a TensorType.
        data: a numpy array (cast to the tensor's dtype; its size must match the shape, or for a
              sparse tensor it is the stored values) or raw bytes written verbatim.
        quantization: dict(scale=..., zero_point=..., quantized_dimension=0, min=..., max=...)
              (zero_point defaults to zeros) or a reader Quantization.
        sparsity: dict(traversal_order=..., block_map=..., dim_metadata=[dict(format=...,
              dense_size=..., array_segments=..., array_indices=...)]) or a reader Sparsity.
        """
        type_code = _type_code(dtype)
        shape = tuple(int(d) for d in shape)
        buffer = 0
        if data is not None:
            if isinstance(data, (bytes, bytearray, memoryview)):
                raw = bytes(data)
            else:
                np_dtype = NUMPY_DTYPE.get(type_code)
                if np_dtype is None:
                    raise TypeError(f"tensor '{name}': give data of type "
                                    f"{TensorType(type_code).name} as raw bytes")
                arr = np.asarray(data, dtype=np_dtype.newbyteorder("<"))
                if sparsity is None and arr.size != math.prod(shape):
                    raise ValueError(f"tensor '{name}': data has {arr.size} elements, shape "
                                     f"{list(shape)} has {math.prod(shape)}")
                raw = np.ascontiguousarray(arr).tobytes()
            buffer = self.add_buffer(raw)
        sg = self._sg
        sg.tensors.append(_TensorSpec(
            name=name or "", shape=shape, type=type_code, buffer=buffer,
            quantization=quantization,
            shape_signature=None if shape_signature is None else tuple(int(d) for d in
                                                                        shape_signature),
            is_variable=bool(is_variable), sparsity=sparsity))
        return len(sg.tensors) - 1

    def _opcode(self, code: int, custom: Optional[str], version: int) -> int:
        key = (code, custom, version)
        if key not in self._opcodes:
            self._opcodes[key] = len(self._opcodes)
        return self._opcodes[key]

    def add_operator(self, op: Union[BuiltinOp, int, str], inputs: Sequence[int],
                     outputs: Sequence[int], options: Optional[dict] = None,
                     custom_options: Optional[bytes] = None, version: int = 1,
                     options_type: Optional[int] = None) -> int:
        """Add an operator to the current subgraph; returns its index.

        op: a BuiltinOp / int code, or a str naming a custom operator.
        options: snake_case field -> value for the op's options table (schema.OPTIONS); an
              unknown field is a TypeError. The table is always written for ops that take one
              (as TFLite's converter does); fields left out take the schema defaults.
        options_type: write a different BuiltinOptions table than the op's own (for tests of
              mismatched models).
        """
        if isinstance(op, str):
            code, custom = int(BuiltinOp.CUSTOM), op
        else:
            code, custom = int(op), None
        options = dict(options or {})
        if options_type is None:
            expected = OPTIONS_FOR_OP.get(code) if custom is None else None
            options_type = int(expected) if expected is not None else 0
        table = OPTIONS.get(int(options_type))
        known = {f.name for f in table.fields} if table else set()
        unknown = sorted(set(options) - known)
        if unknown:
            where = table.name if table else "this operator (it takes no builtin options)"
            raise TypeError(f"unknown option(s) {unknown} for {where}; known: {sorted(known)}")
        sg = self._sg
        sg.operators.append(_OperatorSpec(
            opcode_index=self._opcode(code, custom, int(version)),
            inputs=tuple(int(i) for i in inputs), outputs=tuple(int(i) for i in outputs),
            options_type=int(options_type), options=options,
            custom_options=None if custom_options is None else bytes(custom_options)))
        return len(sg.operators) - 1

    def set_inputs(self, inputs: Sequence[int]):
        self._sg.inputs = tuple(int(i) for i in inputs)

    def set_outputs(self, outputs: Sequence[int]):
        self._sg.outputs = tuple(int(i) for i in outputs)

    def add_signature(self, key: str, inputs: dict, outputs: dict,
                      subgraph_index: Optional[int] = None):
        """A SignatureDef: name -> tensor index maps (of the current subgraph by default)."""
        if subgraph_index is None:
            subgraph_index = max(self._current, 0)
        self._signatures.append((key, int(subgraph_index), dict(inputs), dict(outputs)))

    def add_metadata(self, name: str, data: bytes):
        self._metadata.append((name, self.add_buffer(data)))

    # -- writing -------------------------------------------------------------------------------
    def build(self, buffers_outside: bool = False) -> bytes:
        """The model as .tflite bytes.

        buffers_outside: store buffer data after the flatbuffer, located by Buffer.offset/size
        (as TFLite's converter does for models over 2 GB) instead of inside Buffer.data.
        """
        if self._current < 0:
            self.add_subgraph()
        if not buffers_outside:
            return self._build(None)
        # The flatbuffer's size does not depend on the offset values (each is a fixed-width
        # uint64 that is always written), so build once with placeholders to learn where the
        # data will start, then again with the real offsets.
        placeholder = [2 if data else 0 for data in self._buffers]
        head = self._build(placeholder)
        offsets, pos = [], _align(len(head))
        for data in self._buffers:
            if data:
                offsets.append(pos)
                pos = _align(pos + len(data))
            else:
                offsets.append(0)
        flat = self._build(offsets)
        assert len(flat) == len(head)
        out = bytearray(flat)
        for data, offset in zip(self._buffers, offsets):
            if data:
                out.extend(b"\0" * (offset - len(out)))
                out.extend(data)
        return bytes(out)

    def _build(self, outside_offsets: Optional[list]) -> bytes:
        fb = flatbuffers.Builder(1024)
        buffers = [self._write_buffer(fb, data, outside_offsets[i] if outside_offsets else None)
                   for i, data in enumerate(self._buffers)]
        opcodes = [self._write_opcode(fb, code, custom, version)
                   for (code, custom, version) in self._opcodes]
        subgraphs = [self._write_subgraph(fb, sg) for sg in self._subgraphs]
        metadata = []
        for name, buffer in self._metadata:
            name_off = fb.CreateString(name)
            fb.StartObject(2)
            fb.PrependUOffsetTRelativeSlot(Slot.METADATA_NAME, name_off, 0)
            fb.PrependUint32Slot(Slot.METADATA_BUFFER, buffer, 0)
            metadata.append(fb.EndObject())
        signatures = [self._write_signature(fb, *s) for s in self._signatures]
        description = fb.CreateString(self.description)

        vectors = {Slot.MODEL_OPERATOR_CODES: _offsets(fb, opcodes),
                   Slot.MODEL_SUBGRAPHS: _offsets(fb, subgraphs),
                   Slot.MODEL_BUFFERS: _offsets(fb, buffers)}
        if metadata:
            vectors[Slot.MODEL_METADATA] = _offsets(fb, metadata)
        if signatures:
            vectors[Slot.MODEL_SIGNATURE_DEFS] = _offsets(fb, signatures)
        fb.StartObject(8)
        fb.PrependUint32Slot(Slot.MODEL_VERSION, SCHEMA_VERSION, 0)
        fb.PrependUOffsetTRelativeSlot(Slot.MODEL_DESCRIPTION, description, 0)
        for slot, off in vectors.items():
            fb.PrependUOffsetTRelativeSlot(slot, off, 0)
        fb.Finish(fb.EndObject(), file_identifier=FILE_IDENTIFIER)
        return bytes(fb.Output())

    @staticmethod
    def _write_buffer(fb, data: bytes, outside_offset: Optional[int]) -> int:
        data_off = None
        if data and outside_offset is None:
            # Align the data start (not just the length prefix) to DATA_ALIGNMENT: flatbuffers
            # aligns from the end of the buffer, and Finish pads the total to the largest
            # alignment used, so this is absolute alignment in the file.
            fb.Prep(DATA_ALIGNMENT, len(data))
            data_off = fb.CreateNumpyVector(np.frombuffer(data, np.uint8))
        fb.StartObject(3)
        if data_off is not None:
            fb.PrependUOffsetTRelativeSlot(Slot.BUFFER_DATA, data_off, 0)
        if data and outside_offset is not None:
            fb.PrependUint64Slot(Slot.BUFFER_OFFSET, outside_offset, 0)
            fb.PrependUint64Slot(Slot.BUFFER_SIZE, len(data), 0)
        return fb.EndObject()

    @staticmethod
    def _write_opcode(fb, code: int, custom: Optional[str], version: int) -> int:
        custom_off = fb.CreateString(custom) if custom is not None else None
        fb.StartObject(4)
        # Readers older than the int32 field only see the int8 one; codes above 127 put the
        # placeholder 127 there (schema.fbs OperatorCode).
        fb.PrependInt8Slot(Slot.OPCODE_DEPRECATED_BUILTIN_CODE, min(code, 127), 0)
        if custom_off is not None:
            fb.PrependUOffsetTRelativeSlot(Slot.OPCODE_CUSTOM_CODE, custom_off, 0)
        fb.PrependInt32Slot(Slot.OPCODE_VERSION, version, 1)
        fb.PrependInt32Slot(Slot.OPCODE_BUILTIN_CODE, code, 0)
        return fb.EndObject()

    def _write_subgraph(self, fb, sg: _SubgraphSpec) -> int:
        tensors = [self._write_tensor(fb, t) for t in sg.tensors]
        operators = [self._write_operator(fb, op) for op in sg.operators]
        tensors_off = _offsets(fb, tensors)
        operators_off = _offsets(fb, operators)
        inputs_off = _ints(fb, sg.inputs, "<i4")
        outputs_off = _ints(fb, sg.outputs, "<i4")
        name_off = fb.CreateString(sg.name)
        fb.StartObject(5)
        fb.PrependUOffsetTRelativeSlot(Slot.SUBGRAPH_TENSORS, tensors_off, 0)
        fb.PrependUOffsetTRelativeSlot(Slot.SUBGRAPH_INPUTS, inputs_off, 0)
        fb.PrependUOffsetTRelativeSlot(Slot.SUBGRAPH_OUTPUTS, outputs_off, 0)
        fb.PrependUOffsetTRelativeSlot(Slot.SUBGRAPH_OPERATORS, operators_off, 0)
        fb.PrependUOffsetTRelativeSlot(Slot.SUBGRAPH_NAME, name_off, 0)
        return fb.EndObject()

    def _write_tensor(self, fb, t: _TensorSpec) -> int:
        shape_off = _ints(fb, t.shape, "<i4")
        sig_off = _ints(fb, t.shape_signature, "<i4") if t.shape_signature is not None else None
        name_off = fb.CreateString(t.name)
        quant_off = self._write_quantization(fb, t.quantization) if t.quantization else None
        sparsity_off = self._write_sparsity(fb, t.sparsity) if t.sparsity else None
        fb.StartObject(8)
        fb.PrependUOffsetTRelativeSlot(Slot.TENSOR_SHAPE, shape_off, 0)
        fb.PrependInt8Slot(Slot.TENSOR_TYPE, t.type, 0)
        fb.PrependUint32Slot(Slot.TENSOR_BUFFER, t.buffer, 0)
        fb.PrependUOffsetTRelativeSlot(Slot.TENSOR_NAME, name_off, 0)
        if quant_off is not None:
            fb.PrependUOffsetTRelativeSlot(Slot.TENSOR_QUANTIZATION, quant_off, 0)
        fb.PrependBoolSlot(Slot.TENSOR_IS_VARIABLE, t.is_variable, False)
        if sparsity_off is not None:
            fb.PrependUOffsetTRelativeSlot(Slot.TENSOR_SPARSITY, sparsity_off, 0)
        if sig_off is not None:
            fb.PrependUOffsetTRelativeSlot(Slot.TENSOR_SHAPE_SIGNATURE, sig_off, 0)
        return fb.EndObject()

    @staticmethod
    def _write_quantization(fb, q) -> int:
        scale = np.asarray(_get(q, "scale", ()), np.float32).reshape(-1)
        zp = _get(q, "zero_point")
        zp = np.zeros(scale.size, np.int64) if zp is None else np.asarray(zp, np.int64).reshape(-1)
        qmin, qmax = _get(q, "min"), _get(q, "max")
        vectors = {Slot.QUANT_SCALE: _ints(fb, scale, "<f4"),
                   Slot.QUANT_ZERO_POINT: _ints(fb, zp, "<i8")}
        if qmin is not None:
            vectors[Slot.QUANT_MIN] = _ints(fb, np.asarray(qmin).reshape(-1), "<f4")
        if qmax is not None:
            vectors[Slot.QUANT_MAX] = _ints(fb, np.asarray(qmax).reshape(-1), "<f4")
        fb.StartObject(7)
        for slot, off in vectors.items():
            fb.PrependUOffsetTRelativeSlot(slot, off, 0)
        fb.PrependInt32Slot(Slot.QUANT_QUANTIZED_DIMENSION,
                            int(_get(q, "quantized_dimension", 0) or 0), 0)
        return fb.EndObject()

    @staticmethod
    def _write_sparsity(fb, sp) -> int:
        levels = []
        for d in _get(sp, "dim_metadata", ()):
            unions = []
            for key in ("array_segments", "array_indices"):
                values = _get(d, key)
                if values is None:
                    unions.append(None)
                    continue
                values = np.asarray(values)
                if values.dtype == np.uint8:
                    vtype, le = SparseIndexVectorType.Uint8Vector, "u1"
                elif values.dtype == np.uint16:
                    vtype, le = SparseIndexVectorType.Uint16Vector, "<u2"
                else:
                    vtype, le = SparseIndexVectorType.Int32Vector, "<i4"
                vec = _ints(fb, values.reshape(-1), le)
                fb.StartObject(1)
                fb.PrependUOffsetTRelativeSlot(Slot.INDEX_VECTOR_VALUES, vec, 0)
                unions.append((vtype, fb.EndObject()))
            fb.StartObject(6)
            fb.PrependInt8Slot(Slot.DIM_FORMAT, int(_get(d, "format", 0)), 0)
            fb.PrependInt32Slot(Slot.DIM_DENSE_SIZE, int(_get(d, "dense_size", 0) or 0), 0)
            union_slots = ((Slot.DIM_ARRAY_SEGMENTS_TYPE, Slot.DIM_ARRAY_SEGMENTS),
                           (Slot.DIM_ARRAY_INDICES_TYPE, Slot.DIM_ARRAY_INDICES))
            for (type_slot, slot), u in zip(union_slots, unions):
                if u is not None:
                    fb.PrependUint8Slot(type_slot, int(u[0]), 0)
                    fb.PrependUOffsetTRelativeSlot(slot, u[1], 0)
            levels.append(fb.EndObject())
        order = _ints(fb, _get(sp, "traversal_order", ()), "<i4")
        block_map = _get(sp, "block_map")
        block_off = (_ints(fb, block_map, "<i4") if block_map is not None and len(block_map)
                     else None)
        levels_off = _offsets(fb, levels)
        fb.StartObject(3)
        fb.PrependUOffsetTRelativeSlot(Slot.SPARSITY_TRAVERSAL_ORDER, order, 0)
        if block_off is not None:
            fb.PrependUOffsetTRelativeSlot(Slot.SPARSITY_BLOCK_MAP, block_off, 0)
        fb.PrependUOffsetTRelativeSlot(Slot.SPARSITY_DIM_METADATA, levels_off, 0)
        return fb.EndObject()

    def _write_operator(self, fb, op: _OperatorSpec) -> int:
        inputs_off = _ints(fb, op.inputs, "<i4")
        outputs_off = _ints(fb, op.outputs, "<i4")
        custom_off = (fb.CreateNumpyVector(np.frombuffer(op.custom_options, np.uint8))
                      if op.custom_options is not None else None)
        options_off = (_write_options(fb, OPTIONS[op.options_type], op.options)
                       if op.options_type in OPTIONS else None)
        fb.StartObject(9)
        fb.PrependUint32Slot(Slot.OP_OPCODE_INDEX, op.opcode_index, 0)
        fb.PrependUOffsetTRelativeSlot(Slot.OP_INPUTS, inputs_off, 0)
        fb.PrependUOffsetTRelativeSlot(Slot.OP_OUTPUTS, outputs_off, 0)
        if options_off is not None:
            fb.PrependUint8Slot(Slot.OP_OPTIONS_TYPE, op.options_type, 0)
            fb.PrependUOffsetTRelativeSlot(Slot.OP_OPTIONS, options_off, 0)
        if custom_off is not None:
            fb.PrependUOffsetTRelativeSlot(Slot.OP_CUSTOM_OPTIONS, custom_off, 0)
        return fb.EndObject()

    @staticmethod
    def _write_signature(fb, key: str, subgraph_index: int, inputs: dict, outputs: dict) -> int:
        maps = []
        for m in (inputs, outputs):
            entries = []
            for name, index in m.items():
                name_off = fb.CreateString(name)
                fb.StartObject(2)
                fb.PrependUOffsetTRelativeSlot(Slot.TENSORMAP_NAME, name_off, 0)
                fb.PrependUint32Slot(Slot.TENSORMAP_TENSOR_INDEX, int(index), 0)
                entries.append(fb.EndObject())
            maps.append(_offsets(fb, entries))
        key_off = fb.CreateString(key)
        fb.StartObject(5)
        fb.PrependUOffsetTRelativeSlot(Slot.SIGNATURE_INPUTS, maps[0], 0)
        fb.PrependUOffsetTRelativeSlot(Slot.SIGNATURE_OUTPUTS, maps[1], 0)
        fb.PrependUOffsetTRelativeSlot(Slot.SIGNATURE_KEY, key_off, 0)
        fb.PrependUint32Slot(Slot.SIGNATURE_SUBGRAPH_INDEX, subgraph_index, 0)
        return fb.EndObject()


_SCALAR_PREPEND = {
    "bool": "PrependBoolSlot", "int8": "PrependInt8Slot", "uint8": "PrependUint8Slot",
    "int16": "PrependInt16Slot", "int32": "PrependInt32Slot", "uint32": "PrependUint32Slot",
    "int64": "PrependInt64Slot", "float32": "PrependFloat32Slot",
}


def _write_options(fb, table, values: dict) -> int:
    """An options table from snake_case values; fields left out are not written (defaults)."""
    offsets = {}
    for f in table.fields:  # vectors and strings go in before the table starts
        if f.name not in values:
            continue
        if f.kind == "int32[]":
            offsets[f.name] = _ints(fb, values[f.name], "<i4")
        elif f.kind == "float32[]":
            offsets[f.name] = _ints(fb, values[f.name], "<f4")
        elif f.kind == "string":
            offsets[f.name] = fb.CreateString(values[f.name])
    fb.StartObject(max((f.slot for f in table.fields), default=-1) + 1)
    for f in table.fields:
        if f.name not in values:
            continue
        if f.name in offsets:
            fb.PrependUOffsetTRelativeSlot(f.slot, offsets[f.name], 0)
        elif f.kind == "bool":
            fb.PrependBoolSlot(f.slot, bool(values[f.name]), f.default)
        elif f.kind == "float32":
            fb.PrependFloat32Slot(f.slot, float(values[f.name]), f.default)
        else:
            getattr(fb, _SCALAR_PREPEND[f.kind])(f.slot, int(values[f.name]), f.default)
    return fb.EndObject()


def _ints(fb, values, le_dtype: str) -> int:
    """A numeric vector (any numeric dtype, little-endian as given)."""
    return fb.CreateNumpyVector(np.asarray(values, dtype=np.dtype(le_dtype)).reshape(-1))


def _offsets(fb, offsets: list) -> int:
    """A vector of table offsets."""
    fb.StartVector(4, len(offsets), 4)
    for off in reversed(offsets):
        fb.PrependUOffsetTRelative(off)
    return fb.EndVector()


def _align(n: int) -> int:
    return (n + DATA_ALIGNMENT - 1) // DATA_ALIGNMENT * DATA_ALIGNMENT
