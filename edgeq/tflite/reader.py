"""Read a .tflite file into plain dataclasses, verifying every byte it relies on.

The generated flatbuffers accessors trust the file: a corrupt offset makes them read out of
bounds, loop or allocate without limit. This module instead walks the flatbuffer through a small
accessor of its own (edgeq/tflite/flatbuffer.pyx, compiled) that checks every offset, vtable,
vector length, string and table against the buffer size before use, then checks the model's
meaning (indices, shapes, buffer sizes, quantization, option values, graph order).

Every problem raises edgeq.errors.ModelError naming the subgraph / tensor / operator / field.
No input can crash the process, recurse, hang, or make the reader allocate memory in proportion to
a corrupt length: lengths are checked against the bytes that are actually there first, and the
total work is bounded by a budget proportional to the file size (see Buf.charge).

Weights are not copied: Tensor.data is a read-only numpy view into the file (mmap'd when read
from a path, or the caller's bytes).
"""
from __future__ import annotations

import functools
import math
import mmap
import os
import sys
from dataclasses import dataclass, field
from typing import Optional, Union

import numpy as np

from edgeq.errors import ModelError
from edgeq.tflite.flatbuffer import (BOOL, F32, FLOAT32S, I8, I16, I32, I64, INT32S,
                                     MAX_ELEMENTS, STRING, U8, U32, Buf, Table,
                                     buffer_views, operator_header, operator_tail,
                                     tensor_header)
from edgeq.tflite.flatbuffer import fmt_shape as _fmt_shape
from edgeq.tflite.schema import (FILE_IDENTIFIER, NUMPY_DTYPE, OPTIONS, OPTIONS_FOR_OP,
                                 PACKED_NBYTES, SCHEMA_VERSION, BuiltinOp, BuiltinOptions2Type,
                                 BuiltinOptionsType, DimensionType, QuantizationDetailsType,
                                 Slot, SparseIndexVectorType, TensorType, op_name)

# Python 3.9 (still supported by the package) has no dataclass(slots=True).
_dataclass = dataclass(slots=True) if sys.version_info >= (3, 10) else dataclass



# --- the data model ----------------------------------------------------------------------------

@_dataclass
class Quantization:
    """Affine quantization: real = scale * (q - zero_point), per tensor (one scale) or per
    channel along quantized_dimension. scale/zero_point are empty when only min/max are known."""

    scale: np.ndarray  # float32
    zero_point: np.ndarray  # int64
    quantized_dimension: int
    min: Optional[np.ndarray] = None
    max: Optional[np.ndarray] = None


@_dataclass
class DimMetadata:
    """One traversal level of a sparse tensor: DENSE (dense_size positions) or SPARSE_CSR
    (array_segments / array_indices, int32, uint16 or uint8 arrays as stored)."""

    format: int
    dense_size: int
    array_segments: Optional[np.ndarray]
    array_indices: Optional[np.ndarray]


@_dataclass
class Sparsity:
    traversal_order: tuple
    block_map: tuple
    dim_metadata: list


@_dataclass
class Tensor:
    """A tensor as the file declares it.

    `data` is the constant value, or None when the tensor's buffer is empty (activations,
    graph inputs). It is a read-only numpy view straight into the model file, shaped to `shape`,
    in the file's little-endian byte order. It is not copied, so its address is wherever the
    converter put it: usually 16-byte aligned, but nothing guarantees it, and code that needs
    alignment must copy. For a sparse tensor `data` is the raw 1-D array of stored values (the
    runtime densifies it); for types numpy cannot hold (STRING, INT4 and other packed types,
    BFLOAT16, FLOAT8) it is the raw 1-D uint8 bytes.
    """

    index: int
    name: str
    shape: tuple
    shape_signature: Optional[tuple]
    type: int
    dtype: Optional[np.dtype]
    buffer: int
    data: Optional[np.ndarray]
    quantization: Optional[Quantization]
    is_variable: bool
    sparsity: Optional[Sparsity]


@_dataclass
class Operator:
    """One operator. `options` holds every field of its builtin options table with the schema's
    defaults filled in ({} for ops without options); `options_type` is the BuiltinOptions tag —
    the table the op takes, also when the file left the options out."""

    index: int
    opcode_index: int
    builtin_code: int
    custom_code: Optional[str]
    version: int
    inputs: tuple
    outputs: tuple
    options_type: int
    options: dict
    custom_options: Optional[bytes]
    intermediates: tuple = ()


@_dataclass
class OperatorCode:
    builtin_code: int  # max(builtin_code, deprecated_builtin_code); may be a code edgeq lacks
    custom_code: Optional[str]
    version: int


@_dataclass
class Subgraph:
    index: int
    name: str
    tensors: list
    inputs: tuple
    outputs: tuple
    operators: list


@_dataclass
class SignatureDef:
    signature_key: str
    subgraph_index: int
    inputs: dict  # signature name -> tensor index in subgraph `subgraph_index`
    outputs: dict


@_dataclass
class Model:
    version: int
    description: str
    operator_codes: list
    subgraphs: list
    buffers: list  # memoryview into the file, or None for an empty buffer
    metadata: dict  # name -> bytes
    signature_defs: list
    source: object = field(repr=False)  # the mmap / bytes the views point into, kept alive


# --- parsing -----------------------------------------------------------------------------------

def read_model(source: Union[str, os.PathLike, bytes, bytearray, memoryview]) -> Model:
    """Parse and verify a .tflite model.

    source: a path (the file is mmap'd read-only and kept open by the returned Model) or any
    bytes-like object (used in place, not copied). Raises ModelError for anything wrong with the
    model, TypeError for a source of the wrong kind.
    """
    mv, keep = _open(source)
    try:
        return _parse_model(Buf(mv), keep)
    except ModelError:
        raise
    except Exception as e:  # last line of defence: every check above should come first
        raise ModelError(f"malformed model: {type(e).__name__}: {e}") from e


def _open(source):
    if isinstance(source, (str, os.PathLike)):
        path = os.fspath(source)
        try:
            with open(path, "rb") as f:
                if os.fstat(f.fileno()).st_size == 0:
                    raise ModelError(f"{path}: the file is empty, not a TFLite model")
                mm = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        except OSError as e:
            raise ModelError(f"cannot read model file {path}: {e}") from e
        return memoryview(mm), mm
    try:
        mv = memoryview(source)
    except TypeError:
        raise TypeError(f"read_model() needs a path or a bytes-like object, not "
                        f"{type(source).__name__}") from None
    if mv.ndim != 1 or mv.itemsize != 1:
        if not mv.c_contiguous:
            raise TypeError("read_model() needs a contiguous bytes-like object")
        mv = mv.cast("B")
    # Read-only, so the numpy views handed out can never write into the caller's buffer.
    return mv.toreadonly(), source


def _parse_model(buf: Buf, keep) -> Model:
    mv, size = buf.mv, buf.size
    if size < 8:
        raise ModelError(f"the model is {size} bytes: too small to be a TFLite flatbuffer")
    ident = bytes(mv[4:8])
    if ident != FILE_IDENTIFIER:
        raise ModelError(f"file identifier is {ident!r}, not {FILE_IDENTIFIER!r}: not a TFLite "
                         f"model")
    root = buf.table(buf.u32(0, "model root"), "model")
    version = root.scalar(Slot.MODEL_VERSION, U32, 0, "version")
    if version != SCHEMA_VERSION:
        raise ModelError(f"model: schema version {version}, but TFLite models are version "
                         f"{SCHEMA_VERSION}")
    description = root.string(Slot.MODEL_DESCRIPTION, "description") or ""
    buffers = _parse_buffers(buf, root)
    opcodes = _parse_opcodes(root)
    sub_tables = root.tables(Slot.MODEL_SUBGRAPHS, "subgraphs", "subgraph")
    if not sub_tables:
        raise ModelError("model: it has no subgraphs")
    subgraphs = [_parse_subgraph(buf, t, i, buffers, opcodes, len(sub_tables))
                 for i, t in enumerate(sub_tables)]
    metadata = _parse_metadata(root, buffers)
    signatures = _parse_signatures(root, subgraphs)
    return Model(version=version, description=description, operator_codes=opcodes,
                 subgraphs=subgraphs, buffers=buffers, metadata=metadata,
                 signature_defs=signatures, source=keep)


def _parse_buffers(buf: Buf, root: Table) -> list:
    return buffer_views(root, Slot.MODEL_BUFFERS,
                        (Slot.BUFFER_DATA, Slot.BUFFER_OFFSET, Slot.BUFFER_SIZE))


def _parse_opcodes(root: Table) -> list:
    out = []
    for i, t in enumerate(root.tables(Slot.MODEL_OPERATOR_CODES, "operator_codes",
                                      "operator code")):
        deprecated = t.scalar(Slot.OPCODE_DEPRECATED_BUILTIN_CODE, I8, 0,
                              "deprecated_builtin_code")
        code = t.scalar(Slot.OPCODE_BUILTIN_CODE, I32, 0, "builtin_code")
        custom = t.string(Slot.OPCODE_CUSTOM_CODE, "custom_code")
        version = t.scalar(Slot.OPCODE_VERSION, I32, 1, "version")
        # Old writers fill only the int8 field, new ones both (the int8 capped at 127): the
        # real code is the larger (FACTS.md; schema.fbs OperatorCode comments).
        real = max(code, deprecated)
        if real < 0:
            raise ModelError(f"operator code {i}: builtin_code {real} is negative")
        if real == BuiltinOp.CUSTOM and not custom:
            raise ModelError(f"operator code {i}: a CUSTOM operator without a custom_code name")
        if version < 1:
            raise ModelError(f"operator code {i} ({op_name(real, custom)}): version {version} "
                             f"(versions start at 1)")
        out.append(OperatorCode(builtin_code=real, custom_code=custom, version=version))
    return out


def _type_name(code: int) -> str:
    try:
        return TensorType(code).name.lower()
    except ValueError:
        return f"type {code}"


# Little-endian views of each dtype: the file is little-endian whatever the host is.
_LE_DTYPE = {code: dt.newbyteorder("<") for code, dt in NUMPY_DTYPE.items() if dt is not None}
_KNOWN_TYPES = frozenset(int(t) for t in TensorType)
# Zero point ranges of the integer storage types.
_ZP_RANGE = {TensorType.INT8: (-128, 127), TensorType.UINT8: (0, 255),
             TensorType.INT16: (-32768, 32767), TensorType.INT4: (-8, 7),
             TensorType.UINT4: (0, 15)}


_TENSOR_SLOTS = (Slot.TENSOR_SHAPE, Slot.TENSOR_TYPE, Slot.TENSOR_BUFFER, Slot.TENSOR_NAME,
                 Slot.TENSOR_IS_VARIABLE, Slot.TENSOR_SHAPE_SIGNATURE,
                 Slot.TENSOR_EXTERNAL_BUFFER, Slot.TENSOR_QUANTIZATION)


def _parse_tensor(t: Table, index: int, sg: int, buffers: list) -> Tensor:
    # (shape, signature, type, buffer index and external buffer checked there)
    (where, name, shape, count, signature, type_code, buffer, view, is_variable,
     qt) = tensor_header(t, f"subgraph {sg} tensor {index}", _TENSOR_SLOTS, buffers,
                         _KNOWN_TYPES)
    dtype = NUMPY_DTYPE.get(type_code)
    quant = _parse_quantization(qt, shape, type_code, where) if qt is not None else None
    st = t.subtable(Slot.TENSOR_SPARSITY, "sparsity", f"{where} sparsity")
    sparsity = _parse_sparsity(st, len(shape), where) if st is not None else None
    data = None
    if view is not None:
        nbytes = len(view)
        if sparsity is not None:
            if dtype is None:
                raise ModelError(f"{where}: a sparse tensor of type {_type_name(type_code)}")
            if nbytes % dtype.itemsize or nbytes // dtype.itemsize > count:
                raise ModelError(f"{where}: buffer {buffer} holds {nbytes} bytes, not a whole "
                                 f"number of at most {count} {dtype.name} values")
            data = np.frombuffer(view, _LE_DTYPE[type_code], nbytes // dtype.itemsize)
        elif dtype is None:
            packed = PACKED_NBYTES.get(type_code)
            if packed is not None and nbytes != packed(count):
                raise ModelError(f"{where}: buffer {buffer} holds {nbytes} bytes, shape "
                                 f"{_fmt_shape(shape)} {_type_name(type_code)} needs "
                                 f"{packed(count)}")
            data = np.frombuffer(view, np.uint8)
        else:
            expected = count * dtype.itemsize
            if nbytes != expected:
                raise ModelError(f"{where}: buffer {buffer} holds {nbytes} bytes, shape "
                                 f"{_fmt_shape(shape)} {_type_name(type_code)} needs "
                                 f"{expected}")
            # (one call, where frombuffer + reshape took two: init reads hundreds)
            data = np.ndarray(shape, _LE_DTYPE[type_code], view)

    # Positional: keyword arguments cost a dataclass __init__ three times as much.
    return Tensor(index, name, shape, signature, type_code, dtype, buffer, data, quant,
                  is_variable, sparsity)


def _parse_quantization(q: Table, shape: tuple, type_code: int, where: str):
    details_type = q.scalar(Slot.QUANT_DETAILS_TYPE, U8, 0, "details_type")
    if details_type not in (QuantizationDetailsType.NONE,
                            QuantizationDetailsType.CustomQuantization):
        # Blockwise / multi-axis schemes change what scale means; reading them as plain affine
        # quantization would compute wrong numbers, and edgeq has no kernels for them.
        try:
            kind = QuantizationDetailsType(details_type).name
        except ValueError:
            kind = f"type {details_type}"
        raise ModelError(f"{where}: quantization details {kind} are not supported")
    if details_type:  # opaque custom details: ignored, but must lie inside the file
        q.subtable(Slot.QUANT_DETAILS, "details", f"{where} quantization details")

    scale = q.array(Slot.QUANT_SCALE, "<f4", "scale")
    zero_point = q.array(Slot.QUANT_ZERO_POINT, "<i8", "zero_point")
    qmin = q.array(Slot.QUANT_MIN, "<f4", "min")
    qmax = q.array(Slot.QUANT_MAX, "<f4", "max")
    qdim = q.scalar(Slot.QUANT_QUANTIZED_DIMENSION, I32, 0, "quantized_dimension")
    n = 0 if scale is None else len(scale)
    nzp = 0 if zero_point is None else len(zero_point)
    has_range = (qmin is not None and len(qmin)) or (qmax is not None and len(qmax))
    if n == 0 and nzp == 0 and not has_range:
        return None
    if nzp != n:
        raise ModelError(f"{where}: quantization has {n} scales but {nzp} zero points")
    rank = len(shape)
    if rank == 0 and qdim != 0 or rank and not 0 <= qdim < rank:
        raise ModelError(f"{where}: quantized_dimension {qdim} is out of range for shape "
                         f"{_fmt_shape(shape)}")
    if n > 1 and (rank == 0 or shape[qdim] != n):
        channels = shape[qdim] if rank else "no"
        raise ModelError(f"{where}: {n} per-channel scales, but quantized_dimension {qdim} of "
                         f"shape {_fmt_shape(shape)} has {channels} channels")
    if n:
        if not np.all(np.isfinite(scale)) or np.any(scale < 0):
            bad = scale[~(np.isfinite(scale) & (scale >= 0))][0]
            raise ModelError(f"{where}: quantization scale {bad} is not a finite value >= 0")
        zp_range = _ZP_RANGE.get(type_code)
        if zp_range is not None and (zero_point.min() < zp_range[0]
                                     or zero_point.max() > zp_range[1]):
            raise ModelError(f"{where}: zero point outside {_type_name(type_code)} range "
                             f"{list(zp_range)}")
    if qmin is not None and qmax is not None and len(qmin) != len(qmax):
        raise ModelError(f"{where}: quantization has {len(qmin)} min but {len(qmax)} max values")
    return Quantization(
        scale=np.array(scale if n else (), np.float32),
        zero_point=np.array(zero_point if n else (), np.int64),
        quantized_dimension=qdim,
        min=None if qmin is None else np.array(qmin, np.float32),
        max=None if qmax is None else np.array(qmax, np.float32))


_INDEX_VECTOR_DTYPE = {SparseIndexVectorType.Int32Vector: "<i4",
                       SparseIndexVectorType.Uint16Vector: "<u2",
                       SparseIndexVectorType.Uint8Vector: "u1"}


def _parse_sparsity(st: Table, rank: int, where: str) -> Sparsity:
    order = st.int32s(Slot.SPARSITY_TRAVERSAL_ORDER, "traversal_order") or ()
    block_map = st.int32s(Slot.SPARSITY_BLOCK_MAP, "block_map") or ()
    levels = st.tables(Slot.SPARSITY_DIM_METADATA, "dim_metadata",
                       where + " sparsity dim_metadata")
    if sorted(order) != list(range(len(order))) or len(order) != rank + len(block_map):
        raise ModelError(f"{where}: sparsity traversal_order {_fmt_shape(order)} is not a "
                         f"permutation of the {rank} dims and {len(block_map)} block dims")
    if any(not 0 <= b < rank for b in block_map):
        raise ModelError(f"{where}: sparsity block_map {_fmt_shape(block_map)} names a dim outside "
                         f"rank {rank}")
    if len(levels) != len(order):
        raise ModelError(f"{where}: sparsity has {len(levels)} dim_metadata levels for "
                         f"{len(order)} traversal dims")
    dims = []
    for k, d in enumerate(levels):
        fmt = d.scalar(Slot.DIM_FORMAT, I8, 0, "format")
        if fmt not in (DimensionType.DENSE, DimensionType.SPARSE_CSR):
            raise ModelError(f"{where}: sparsity level {k} has unknown format {fmt}")
        dense_size = d.scalar(Slot.DIM_DENSE_SIZE, I32, 0, "dense_size")
        if dense_size < 0:
            raise ModelError(f"{where}: sparsity level {k} has dense_size {dense_size}")
        arrays = []
        for type_slot, slot, label in ((Slot.DIM_ARRAY_SEGMENTS_TYPE, Slot.DIM_ARRAY_SEGMENTS,
                                        "array_segments"),
                                       (Slot.DIM_ARRAY_INDICES_TYPE, Slot.DIM_ARRAY_INDICES,
                                        "array_indices")):
            vtype = d.scalar(type_slot, U8, 0, label + "_type")
            if vtype == SparseIndexVectorType.NONE:
                arrays.append(None)
                continue
            if vtype not in _INDEX_VECTOR_DTYPE:
                raise ModelError(f"{where}: sparsity level {k} {label} has unknown vector "
                                 f"type {vtype}")
            vt = d.subtable(slot, label, f"{where} sparsity level {k} {label}")
            arrays.append(None if vt is None else
                          vt.array(Slot.INDEX_VECTOR_VALUES, _INDEX_VECTOR_DTYPE[vtype], "values"))
        if fmt == DimensionType.SPARSE_CSR and (arrays[0] is None or arrays[1] is None):
            raise ModelError(f"{where}: sparsity level {k} is SPARSE_CSR without "
                             f"array_segments and array_indices")
        dims.append(DimMetadata(format=fmt, dense_size=dense_size, array_segments=arrays[0],
                                array_indices=arrays[1]))
    return Sparsity(traversal_order=tuple(order), block_map=tuple(block_map), dim_metadata=dims)


def _parse_subgraph(buf: Buf, st: Table, sg: int, buffers: list, opcodes: list,
                    n_subgraphs: int) -> Subgraph:
    where = f"subgraph {sg}"
    name = st.string(Slot.SUBGRAPH_NAME, "name") or ""
    tensors = [_parse_tensor(t, i, sg, buffers)
               for i, t in enumerate(st.tables(Slot.SUBGRAPH_TENSORS, "tensors",
                                               where + " tensor"))]
    nt = len(tensors)
    st.where = where
    inputs = st.indices(Slot.SUBGRAPH_INPUTS, "inputs", 0, nt, "input")
    outputs = st.indices(Slot.SUBGRAPH_OUTPUTS, "outputs", 0, nt, "output")
    opcode_tables = _opcode_tables(opcodes)
    operators = [_parse_operator(o, j, sg, nt, opcodes, opcode_tables, n_subgraphs)
                 for j, o in enumerate(st.tables(Slot.SUBGRAPH_OPERATORS, "operators",
                                                 where + " operator"))]
    _check_graph_order(sg, tensors, inputs, outputs, operators)
    return Subgraph(index=sg, name=name, tensors=tensors, inputs=inputs, outputs=outputs,
                    operators=operators)


_MAX_OPTIONS2_TYPE = max(BuiltinOptions2Type)
# BuiltinOptions tag -> its name, for messages (the tags run 0..max without a gap).
_OPTIONS_NAMES = [BuiltinOptionsType(k).name for k in range(max(BuiltinOptionsType) + 1)]
_OPERATOR_SLOTS = (Slot.OP_OPCODE_INDEX, Slot.OP_INPUTS, Slot.OP_OUTPUTS, Slot.OP_INTERMEDIATES,
                   Slot.OP_OPTIONS_TYPE, Slot.OP_OPTIONS)
_OPERATOR_TAIL_SLOTS = (Slot.OP_OPTIONS2_TYPE, Slot.OP_OPTIONS2, Slot.OP_CUSTOM_OPTIONS,
                        Slot.OP_LARGE_CUSTOM_OPTIONS_OFFSET, Slot.OP_LARGE_CUSTOM_OPTIONS_SIZE)


def _opcode_tables(opcodes: list) -> tuple:
    """Per operator code: the name messages use, and the BuiltinOptions tag the op takes (-1:
    none), as operator_header reads them."""
    labels = [_cached_op_name(oc.builtin_code, oc.custom_code) for oc in opcodes]
    expected = [-1 if oc.builtin_code == BuiltinOp.CUSTOM
                else int(OPTIONS_FOR_OP.get(oc.builtin_code, -1)) for oc in opcodes]
    return labels, expected


def _parse_operator(o: Table, j: int, sg: int, nt: int, opcodes: list, opcode_tables: tuple,
                    n_subgraphs: int) -> Operator:
    (where, opcode_index, inputs, outputs, intermediates, options_type,
     table) = operator_header(o, f"subgraph {sg} operator {j}", _OPERATOR_SLOTS, nt,
                              opcode_tables[0], opcode_tables[1], _OPTIONS_NAMES)
    oc = opcodes[opcode_index]
    spec = OPTIONS.get(options_type)
    options = _read_options(table, spec, where, n_subgraphs) if spec else {}
    custom_options = operator_tail(o, _OPERATOR_TAIL_SLOTS, _MAX_OPTIONS2_TYPE)
    return Operator(j, opcode_index, oc.builtin_code, oc.custom_code, oc.version, inputs,
                    outputs, options_type, options, custom_options, intermediates)


_FIELD_KIND = {"int8": I8, "uint8": U8, "int16": I16, "int32": I32, "uint32": U32,
               "int64": I64, "float32": F32, "bool": BOOL, "int32[]": INT32S,
               "float32[]": FLOAT32S, "string": STRING}
_OPTION_SPECS: dict = {}  # options type id -> (Table.fields specs, defaults, checked fields)


def _option_specs(spec) -> tuple:
    got = _OPTION_SPECS.get(spec.type_id)
    if got is None:
        specs = tuple((f.name, f.slot, _FIELD_KIND[f.kind], f.default) for f in spec.fields)
        defaults = {f.name: f.default for f in spec.fields}
        # (field, the values an enum field allows or None): enums, most of the checks, pass by
        # set membership alone; the rest, and every failure, go through _check_option.
        checked = tuple((f, _enum_values(f.check) if isinstance(f.check, type) else None)
                        for f in spec.fields if f.check is not None)
        got = _OPTION_SPECS[spec.type_id] = (specs, defaults, checked)
    return got


def _read_options(table: Optional[Table], spec, where: str, n_subgraphs: int) -> dict:
    specs, defaults, checked = _option_specs(spec)
    out = dict(defaults) if table is None else table.fields(specs)
    for f, allowed in checked:
        value = out[f.name]
        if allowed is None or value not in allowed:
            _check_option(f, value, where, n_subgraphs)
    return out


_cached_op_name = functools.lru_cache(maxsize=1024)(op_name)


@functools.lru_cache(maxsize=None)
def _enum_values(enum_class) -> frozenset:
    return frozenset(int(m) for m in enum_class)


def _check_option(f, value, where: str, n_subgraphs: int):
    check = f.check
    if check == "positive":
        ok, want = value > 0, "must be > 0"
    elif check == "nonneg":
        ok, want = value >= 0, "must be >= 0"
    elif check == "finite":
        ok, want = math.isfinite(value), "must be finite"
    elif check == "dims":
        ok, want = all(d >= -1 for d in value), "entries must be >= -1"
    elif check == "subgraph":
        ok = 0 <= value < n_subgraphs
        want = f"must name one of the model's {n_subgraphs} subgraphs"
    else:  # an IntEnum class
        ok = value in _enum_values(check)
        want = ""
        if not ok:
            want = f"is not a {check.__name__} value ({', '.join(m.name for m in check)})"
    if not ok:
        raise ModelError(f"{where}: option {f.name}={value} {want}")


class _OperatorLabel:
    """"subgraph S operator J (NAME)", formatted only when a message needs it."""

    __slots__ = ("where", "op")

    def __init__(self, where: str, op: Operator):
        self.where, self.op = where, op

    def __format__(self, spec) -> str:
        op = self.op
        return f"{self.where} operator {op.index} ({op_name(op.builtin_code, op.custom_code)})"


def _check_graph_order(sg: int, tensors: list, inputs: tuple, outputs: tuple, operators: list):
    """Operators run in file order: each may read only tensors that exist by then (graph inputs,
    constants, variables, or an earlier operator's outputs), and each tensor gets at most one
    writer, which must not be a constant or a graph input. This also refuses cycles."""
    where = f"subgraph {sg}"
    n = len(tensors)
    writer = [-1] * n
    for op in operators:  # first pass only to name the late writer in messages
        for t in op.outputs:
            if writer[t] == -1:
                writer[t] = op.index
    readable = bytearray(n)
    for t in tensors:
        # Zero-element tensors hold nothing to read (the converter writes e.g. an empty shape
        # operand with no buffer data), so they are readable without a writer.
        if t.data is not None or t.is_variable or 0 in t.shape:
            readable[t.index] = 1
    is_input = bytearray(n)
    for i in inputs:
        readable[i] = is_input[i] = 1
    written = bytearray(n)

    def label(i):
        return f"tensor {i} '{tensors[i].name}'"

    for op in operators:
        desc = _OperatorLabel(where, op)
        for i in op.inputs:
            if i >= 0 and not readable[i]:
                later = writer[i]
                why = (f"operator {later} writes it later (a cycle, or operators out of order)"
                       if later >= 0 else
                       "no operator writes it and it is not a graph input, constant or variable")
                raise ModelError(f"{desc}: reads {label(i)} before it is written: {why}")
        for i in op.outputs:
            if tensors[i].data is not None:
                raise ModelError(f"{desc}: writes {label(i)}, which is a constant")
            if is_input[i]:
                raise ModelError(f"{desc}: writes {label(i)}, which is a graph input")
            if written[i]:
                raise ModelError(f"{desc}: writes {label(i)}, which an earlier operator already "
                                 f"wrote (a tensor is written once)")
            written[i] = readable[i] = 1
    for i in outputs:
        if not readable[i]:
            raise ModelError(f"{where}: output {label(i)} is never written")


def _parse_metadata(root: Table, buffers: list) -> dict:
    out = {}
    for k, t in enumerate(root.tables(Slot.MODEL_METADATA, "metadata", "metadata")):
        name = t.string(Slot.METADATA_NAME, "name") or ""
        b = t.scalar(Slot.METADATA_BUFFER, U32, 0, "buffer")
        if b >= len(buffers):
            raise ModelError(f"metadata {k} '{name}': buffer index {b} is out of range (the "
                             f"model has {len(buffers)} buffers)")
        data = buffers[b]
        if data is not None:
            root.buf.charge(len(data), f"metadata {k} '{name}'")  # copied out
        out[name] = bytes(data) if data is not None else b""
    return out


def _parse_signatures(root: Table, subgraphs: list) -> list:
    out = []
    for k, t in enumerate(root.tables(Slot.MODEL_SIGNATURE_DEFS, "signature_defs",
                                      "signature")):
        key = t.string(Slot.SIGNATURE_KEY, "signature_key") or ""
        where = t.where = f"signature {k} '{key}'"
        sg = t.scalar(Slot.SIGNATURE_SUBGRAPH_INDEX, U32, 0, "subgraph_index")
        if sg >= len(subgraphs):
            raise ModelError(f"{where}: subgraph_index {sg} is out of range (the model has "
                             f"{len(subgraphs)} subgraphs)")
        nt = len(subgraphs[sg].tensors)
        maps = []
        for slot, what in ((Slot.SIGNATURE_INPUTS, "inputs"), (Slot.SIGNATURE_OUTPUTS, "outputs")):
            m = {}
            for i, tm in enumerate(t.tables(slot, what, f"{where} {what}")):
                name = tm.string(Slot.TENSORMAP_NAME, "name") or ""
                index = tm.scalar(Slot.TENSORMAP_TENSOR_INDEX, U32, 0, "tensor_index")
                if index >= nt:
                    raise ModelError(f"{where}: {what[:-1]} '{name}' names tensor {index}, out "
                                     f"of range (subgraph {sg} has {nt} tensors)")
                m[name] = index
            maps.append(m)
        out.append(SignatureDef(signature_key=key, subgraph_index=sg, inputs=maps[0],
                                outputs=maps[1]))
    return out
