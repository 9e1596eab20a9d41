# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""Bounds-checked flatbuffer access for edgeq.tflite.reader, compiled: every offset, vtable,
vector length, string and table is checked against the buffer size before it is read, and every
table and element walked is charged against a work budget (see Buf.charge).

Same checks and messages as a plain-Python walk, at a fraction of the cost per field: model
loading reads tens of thousands of fields, and at Python speed that was a large part of init.
Values are decoded byte by byte as little-endian (the flatbuffer byte order), whatever the host.
Flatbuffer layout (FlatBuffers' "internals" documentation): a table starts with an int32 offset
back to its vtable; the vtable holds its own size and the table's size (uint16 each), then one
uint16 offset per field slot (0 = absent); vectors and strings are a uint32 count followed by
the elements (strings end with a NUL); offsets to tables, vectors and strings are uint32,
relative to where they are stored.
"""
from cpython.unicode cimport PyUnicode_DecodeUTF8
from libc.stdint cimport int8_t, int16_t, int32_t, int64_t, uint8_t, uint16_t, uint32_t, uint64_t
from libc.string cimport memcpy

import numpy as np

from edgeq.errors import ModelError

# Scalar kinds for Table.scalar (and their widths in bytes); the other kinds of Table.fields.
U8, I8, U16, I16, U32, I32, U64, I64, F32 = range(9)
BOOL, INT32S, FLOAT32S, STRING = range(9, 13)
cdef int _WIDTH[9]
_WIDTH[:] = [1, 1, 2, 2, 4, 4, 8, 8, 4]

cdef dict _DTYPES = {}


cdef inline uint16_t _u16(const uint8_t* p) noexcept nogil:
    return <uint16_t>(p[0] | (p[1] << 8))


cdef inline uint32_t _u32(const uint8_t* p) noexcept nogil:
    return (<uint32_t>p[0]) | (<uint32_t>p[1] << 8) | (<uint32_t>p[2] << 16) | \
        (<uint32_t>p[3] << 24)


cdef inline uint64_t _u64(const uint8_t* p) noexcept nogil:
    return (<uint64_t>_u32(p)) | (<uint64_t>_u32(p + 4) << 32)


cdef class Buf:
    """The file as a read-only memoryview plus the work budget."""

    cdef readonly object mv
    cdef readonly Py_ssize_t size
    cdef public long long budget
    cdef const uint8_t* data
    cdef object view  # keeps the typed view (and so `data`) alive

    def __init__(self, mv):
        cdef const uint8_t[::1] view
        self.mv = mv
        self.size = len(mv)
        # Flatbuffer tables may be shared (the format is a DAG), so a few hundred crafted bytes
        # can make a naive reader walk, or copy, the same big vector millions of times. An
        # honest file's structure is read once and is a fraction of its bytes; every table and
        # every element read or copied is charged against an allowance of twice the file size,
        # which bounds both time and memory linearly in the file size. Views are free.
        self.budget = 2 * self.size + (1 << 16)
        if self.size:
            view = mv
            self.view = view
            self.data = &view[0]
        else:
            self.data = NULL

    cpdef charge(self, long long n, where):
        self.budget -= n
        if self.budget < 0:
            raise ModelError(f"{where}: the model's tables refer to the same data far more "
                             f"often than a {self.size}-byte file can honestly hold (shared or "
                             f"overlapping tables); refusing to walk it")

    cpdef unsigned int u32(self, long long pos, where) except? 0xFFFFFFFF:
        if pos < 0 or pos + 4 > self.size:
            raise ModelError(f"{where}: offset {pos} lies outside the {self.size}-byte file")
        return _u32(self.data + pos)

    cpdef Table table(self, long long pos, where):
        """The table starting at `pos`, with its vtable and extent verified."""
        cdef long long size = self.size
        cdef long long vt
        cdef unsigned int vtsize, tsize
        if pos < 0 or pos + 4 > size:
            raise ModelError(f"{where}: table at offset {pos} lies outside the {size}-byte file")
        vt = pos - <int32_t>_u32(self.data + pos)
        if vt < 0 or vt + 4 > size:
            raise ModelError(f"{where}: vtable at offset {vt} lies outside the {size}-byte "
                             f"file")
        vtsize = _u16(self.data + vt)
        tsize = _u16(self.data + vt + 2)
        if vtsize < 4 or vtsize & 1 or vt + vtsize > size:
            raise ModelError(f"{where}: vtable at offset {vt} has a bad size {vtsize}")
        if tsize < 4 or pos + tsize > size:
            raise ModelError(f"{where}: table at offset {pos} of {tsize} bytes runs past the "
                             f"end of the {size}-byte file")
        self.charge(8 + (vtsize >> 1), where)
        cdef Table t = Table.__new__(Table)
        t.buf, t.pos, t.vt, t.vtsize, t.tsize, t.where = self, pos, vt, vtsize, tsize, where
        return t


cdef class Table:
    """Field access into one verified table. Every accessor checks before it reads."""

    cdef readonly Buf buf
    cdef readonly long long pos, vt
    cdef readonly unsigned int vtsize, tsize
    cdef public object where

    cpdef long long _field(self, int slot, int width, name) except -1:
        """Absolute position of a field's inline value, or 0 when the field is absent."""
        cdef unsigned int k = 4 + 2 * slot
        cdef unsigned int off
        if k >= self.vtsize:  # written by an older schema: the field takes its default
            return 0
        off = _u16(self.buf.data + self.vt + k)
        if off == 0:
            return 0
        # The first 4 bytes of a table are its vtable offset, so no field can start there.
        if off < 4 or off + width > self.tsize:
            raise ModelError(f"{self.where}: field '{name}' at offset {off} lies outside its "
                             f"{self.tsize}-byte table")
        return self.pos + off

    cpdef scalar(self, int slot, int kind, default, name):
        if not 0 <= kind <= F32:
            raise ValueError(f"unknown scalar kind {kind}")
        cdef long long p = self._field(slot, _WIDTH[kind], name)
        cdef const uint8_t* q
        cdef uint32_t bits
        cdef float f
        if not p:
            return default
        q = self.buf.data + p
        if kind == U8:
            return q[0]
        if kind == I8:
            return <int8_t>q[0]
        if kind == U16:
            return _u16(q)
        if kind == I16:
            return <int16_t>_u16(q)
        if kind == U32:
            return _u32(q)
        if kind == I32:
            return <int32_t>_u32(q)
        if kind == U64:
            return _u64(q)
        if kind == I64:
            return <int64_t>_u64(q)
        bits = _u32(q)
        memcpy(&f, &bits, 4)
        return f

    cpdef bint boolean(self, int slot, bint default, name) except -1:
        cdef long long p = self._field(slot, 1, name)
        return self.buf.data[p] != 0 if p else default

    cpdef long long _target(self, int slot, name) except -1:
        """Where a field's uoffset points, or 0 when the field is absent."""
        cdef long long p = self._field(slot, 4, name)
        cdef long long t
        if not p:
            return 0
        t = p + _u32(self.buf.data + p)
        if t + 4 > self.buf.size:  # t > p > 0, so only the upper bound can fail
            raise ModelError(f"{self.where}: field '{name}' points to offset {t}, outside the "
                             f"{self.buf.size}-byte file")
        return t

    cpdef subtable(self, int slot, name, where):
        cdef long long t = self._target(slot, name)
        return self.buf.table(t, where) if t else None

    cdef long long _vector(self, int slot, int elem_size, name, bint charge,
                           long long* count) except -1:
        """Start of a vector field's elements (0 when absent) after checking it fits."""
        cdef long long t = self._target(slot, name)
        cdef long long n, start
        cdef Buf buf = self.buf
        if not t:
            return 0
        n = _u32(buf.data + t)
        start = t + 4
        if n * elem_size > buf.size - start:
            raise ModelError(f"{self.where}: vector '{name}' of {n} elements at offset {t} runs "
                             f"past the end of the {buf.size}-byte file")
        buf.charge(n if charge else 1, self.where)
        count[0] = n
        return start

    def vector(self, int slot, int elem_size, name, bint charge=True):
        """(start, count) of a vector field after checking it fits in the file, or None.
        charge=False for vectors only viewed, never walked or copied."""
        cdef long long n = 0
        cdef long long start = self._vector(slot, elem_size, name, charge, &n)
        return (start, n) if start else None

    cpdef int32s(self, int slot, name):
        cdef long long n = 0, i
        cdef long long start = self._vector(slot, 4, name, True, &n)
        cdef const uint8_t* q
        if not start:
            return None
        q = self.buf.data + start
        out = [None] * n
        for i in range(n):
            out[i] = <int32_t>_u32(q + 4 * i)
        return tuple(out)

    cpdef tuple indices(self, int slot, name, long long low, long long n, what):
        """A vector of tensor indices (int32; () when absent), each checked to lie in
        [low, n): low -1 where -1 means "left out"."""
        cdef long long count = 0, i, v
        cdef long long start = self._vector(slot, 4, name, True, &count)
        cdef const uint8_t* q
        if not start:
            return ()
        q = self.buf.data + start
        out = [None] * count
        for i in range(count):
            v = <int32_t>_u32(q + 4 * i)
            if v < low or v >= n:
                raise ModelError(f"{self.where}: {what} tensor index {v} is out of range (the "
                                 f"subgraph has {n} tensors)")
            out[i] = v
        return tuple(out)

    cpdef array(self, int slot, dtype, name):
        """A numeric vector as a read-only numpy view (dtype given little-endian, e.g. '<f4')."""
        dt = _DTYPES.get(dtype)
        if dt is None:
            dt = _DTYPES[dtype] = np.dtype(dtype)
        cdef long long n = 0
        cdef long long start = self._vector(slot, dt.itemsize, name, True, &n)
        if not start:
            return None
        return np.frombuffer(self.buf.mv, dt, n, start)

    cpdef raw(self, int slot, name, bint copied=True):
        """A ubyte vector as a view; copied=False when the caller keeps only the view."""
        cdef long long n = 0
        cdef long long start = self._vector(slot, 1, name, copied, &n)
        if not start:
            return None
        return self.buf.mv[start:start + n]

    cpdef string(self, int slot, name):
        cdef long long n = 0
        cdef long long start = self._vector(slot, 1, name, True, &n)
        cdef Buf buf = self.buf
        if not start:
            return None
        # Flatbuffer strings carry a NUL after their bytes; its absence means a bad length.
        if start + n >= buf.size or buf.data[start + n] != 0:
            raise ModelError(f"{self.where}: string '{name}' at offset {start - 4} is not "
                             f"NUL-terminated")
        try:
            return PyUnicode_DecodeUTF8(<const char*>buf.data + start, n, NULL)
        except UnicodeDecodeError:
            raise ModelError(f"{self.where}: string '{name}' is not valid UTF-8") from None

    cpdef list tables(self, int slot, name, label):
        """A vector of tables; element i is called f"{label} {i}" in messages."""
        cdef long long n = 0, i, p
        cdef long long start = self._vector(slot, 4, name, True, &n)
        cdef Buf buf = self.buf
        out = []
        if not start:
            return out
        for i in range(n):
            p = start + 4 * i
            out.append(buf.table(p + _u32(buf.data + p), f"{label} {i}"))
        return out

    cpdef dict fields(self, tuple specs):
        """Several fields at once: specs holds (name, slot, kind, default) per field, kind a
        scalar kind or BOOL, INT32S, FLOAT32S (a tuple of floats), STRING. Absent fields take
        their default."""
        cdef dict out = {}
        cdef int kind
        for name, slot, kind, default in specs:
            if kind <= F32:
                value = self.scalar(slot, kind, default, name)
            elif kind == BOOL:
                value = self.boolean(slot, default, name)
            elif kind == INT32S:
                value = self.int32s(slot, name)
            elif kind == FLOAT32S:
                value = self.array(slot, "<f4", name)
                if value is not None:
                    value = tuple(value.tolist())
            elif kind == STRING:
                value = self.string(slot, name)
            else:
                raise ValueError(f"unknown field kind {kind}")
            out[name] = default if value is None else value
        return out


# A tensor may hold at most this many elements (edgeq.tflite.reader.MAX_ELEMENTS): far beyond
# any edge model, and it keeps every later size computation (bytes, strides) inside int64.
MAX_ELEMENTS = 1 << 31
cdef long long _MAX_ELEMENTS = MAX_ELEMENTS


def fmt_shape(shape) -> str:
    """[3,3,8,16]; a corrupt rank-100000 shape is cut short rather than printed whole."""
    if len(shape) > 12:
        return "[" + ",".join(str(d) for d in shape[:12]) + f",...] (rank {len(shape)})"
    return "[" + ",".join(str(d) for d in shape) + "]"


cpdef tuple tensor_header(Table t, str where, tuple slots, list buffers, known_types):
    """The plain fields of a Tensor table, read and checked in one call (a model has hundreds
    of tensors; per-field calls from Python were most of the read phase). `slots` holds the
    field slots (shape, type, buffer, name, is_variable, shape_signature, external_buffer,
    quantization); `buffers` the model's buffer views, `known_types` the TensorType codes.
    Returns (where, name, shape, element count, shape_signature or None, type, buffer, the
    buffer's view or None, is_variable, quantization table or None), where = `where` plus the
    tensor's name, which the table's messages use from then on. Shapes are checked here: no
    negative dimension, at most MAX_ELEMENTS elements (also counting 0 dims as 1: large dims
    next to a 0 are absurd too), a signature of the same rank that differs only by -1; then a
    known type, a buffer index in range, no external buffer."""
    cdef int s_shape, s_type, s_buffer, s_name, s_var, s_sig, s_ext, s_quant
    s_shape, s_type, s_buffer, s_name, s_var, s_sig, s_ext, s_quant = slots
    cdef long long count = 1, bound = 1, d, s
    cdef long long n_buffers = len(buffers)
    cdef Py_ssize_t i
    t.where = where
    name = t.string(s_name, "name") or ""
    where = t.where = f"{where} '{name}'"
    shape = t.int32s(s_shape, "shape") or ()
    for d in shape:
        if d < 0:
            raise ModelError(f"{where}: shape {fmt_shape(shape)} has a negative dimension")
        count *= d
        bound *= d if d else 1
        if bound > _MAX_ELEMENTS:  # stop before the product grows without limit
            raise ModelError(f"{where}: shape {fmt_shape(shape)} has more than 2**31 "
                             f"elements")
    signature = t.int32s(s_sig, "shape_signature")
    if signature is not None:
        if len(signature) != len(shape):
            raise ModelError(f"{where}: shape_signature {fmt_shape(signature)} and shape "
                             f"{fmt_shape(shape)} differ in rank")
        for i in range(len(shape)):
            s = signature[i]
            if s != -1 and s != shape[i]:
                raise ModelError(f"{where}: shape_signature {fmt_shape(signature)} does not "
                                 f"match shape {fmt_shape(shape)} (only -1 may differ)")
    type_code = t.scalar(s_type, I8, 0, "type")
    cdef long long buffer = t.scalar(s_buffer, U32, 0, "buffer")
    external = t.scalar(s_ext, U32, 0, "external_buffer")
    is_variable = t.boolean(s_var, False, "is_variable")
    if type_code not in known_types:
        raise ModelError(f"{where}: unknown tensor type {type_code}")
    if buffer >= n_buffers and buffer != 0:  # a model without buffers may still use 0
        raise ModelError(f"{where}: buffer index {buffer} is out of range (the model has "
                         f"{n_buffers} buffers)")
    view = buffers[buffer] if buffer < n_buffers else None
    if external:
        raise ModelError(f"{where}: its data lives in an external file (external_buffer "
                         f"{external}), which edgeq does not load")
    quantization = t.subtable(s_quant, "quantization", f"{where} quantization")
    return (where, name, shape, count, signature, type_code, buffer, view, is_variable,
            quantization)


cpdef list buffer_views(Table root, int slot, tuple slots):
    """The model's Buffer tables (the vector at `slot` of `root`) as views into the file, None
    for an empty buffer; `slots` holds the Buffer field slots (data, offset, size). Models over
    2 GB keep buffer data after the flatbuffer: offset (from the file start) and size; offset 0
    or 1 means "not used" (1 is the converter's placeholder)."""
    cdef int s_data, s_offset, s_size
    s_data, s_offset, s_size = slots
    cdef Buf buf = root.buf
    cdef Table t
    cdef unsigned long long offset, nbytes
    cdef Py_ssize_t i = 0
    out = []
    for t in root.tables(slot, "buffers", "buffer"):
        data = t.raw(s_data, "data", False)
        offset = t.scalar(s_offset, U64, 0, "offset")
        if offset > 1:
            if data is not None and len(data):
                raise ModelError(f"buffer {i}: has both inline data and an outside offset")
            nbytes = t.scalar(s_size, U64, 0, "size")
            # Written as a subtraction so the check itself cannot overflow.
            if offset > <unsigned long long>buf.size or \
                    nbytes > <unsigned long long>buf.size - offset:
                raise ModelError(f"buffer {i}: data stored outside the flatbuffer at offset "
                                 f"{offset} with size {nbytes} runs past the end of the "
                                 f"{buf.size}-byte file")
            data = buf.mv[offset:offset + nbytes]
        out.append(data if data is not None and len(data) else None)
        i += 1
    return out


cpdef tuple operator_header(Table o, str where, tuple slots, long long n_tensors, list labels,
                            list expected, list options_names):
    """The leading fields of an Operator table, read and checked in one call (a model has
    hundreds of operators). `slots` holds the field slots (opcode_index, inputs, outputs,
    intermediates, builtin_options_type, builtin_options); per operator code, `labels` holds
    the name messages use and `expected` the BuiltinOptions tag the op takes (-1: none);
    `options_names` names each BuiltinOptions tag (its length bounds them). Returns (where,
    opcode_index, inputs, outputs, intermediates, options_type, options table or None), where =
    `where` plus the op's name, which the table's messages use from then on; options_type is
    the expected tag where the file left the options out (their defaults apply), and the
    options table is bounds-checked whether or not the tag makes it meaningful."""
    cdef int s_code, s_in, s_out, s_inter, s_type, s_options
    s_code, s_in, s_out, s_inter, s_type, s_options = slots
    cdef long long index, options_type, want
    o.where = where
    index = o.scalar(s_code, U32, 0, "opcode_index")
    if index >= len(labels):
        raise ModelError(f"{where}: opcode_index {index} is out of range (the model has "
                         f"{len(labels)} operator codes)")
    where = o.where = f"{where} ({labels[index]})"
    inputs = o.indices(s_in, "inputs", -1, n_tensors, "input")  # -1: optional input left out
    outputs = o.indices(s_out, "outputs", 0, n_tensors, "output")
    intermediates = o.indices(s_inter, "intermediates", -1, n_tensors, "intermediate")
    # builtin options: the tag must name the table TFLite pairs with this op.
    options_type = o.scalar(s_type, U8, 0, "builtin_options_type")
    want = expected[index]
    if options_type >= len(options_names):
        raise ModelError(f"{where}: field builtin_options_type has unknown value {options_type}")
    if options_type and want >= 0 and options_type != want:
        raise ModelError(f"{where}: field builtin_options_type is "
                         f"{options_names[options_type]}, but this operator takes "
                         f"{options_names[want]}")
    # A union value is meaningful only under a non-NONE tag; verify its bounds either way.
    table = o.subtable(s_options, "builtin_options", f"{where} builtin_options")
    if not options_type:
        table = None
        if want >= 0:
            options_type = want  # options left out: the table's defaults apply
    return (where, index, inputs, outputs, intermediates, options_type, table)


cpdef operator_tail(Table o, tuple slots, long long max_options2_type):
    """The trailing fields of an Operator table (after its builtin options), read and checked:
    `slots` holds (builtin_options_2_type, builtin_options_2, custom_options,
    large_custom_options_offset, large_custom_options_size). builtin_options_2 (StableHLO ops)
    is not decoded, but it must lie inside the file. Returns the custom options as bytes, or
    None."""
    cdef int s_type2, s_options2, s_custom, s_offset, s_size
    s_type2, s_options2, s_custom, s_offset, s_size = slots
    cdef Buf buf = o.buf
    cdef unsigned long long large_offset, large_size
    where = o.where
    options2_type = o.scalar(s_type2, U8, 0, "builtin_options_2_type")
    if options2_type > max_options2_type:
        raise ModelError(f"{where}: field builtin_options_2_type has unknown value "
                         f"{options2_type}")
    o.subtable(s_options2, "builtin_options_2", f"{where} builtin_options_2")
    custom = o.raw(s_custom, "custom_options")
    custom_options = bytes(custom) if custom is not None else None
    large_offset = o.scalar(s_offset, U64, 0, "large_custom_options_offset")
    if large_offset > 1:  # as for buffers: custom options stored after the flatbuffer
        large_size = o.scalar(s_size, U64, 0, "large_custom_options_size")
        # Written as a subtraction so the check itself cannot overflow.
        if large_offset > <unsigned long long>buf.size or \
                large_size > <unsigned long long>buf.size - large_offset:
            raise ModelError(f"{where}: custom options at offset {large_offset} with size "
                             f"{large_size} run past the end of the {buf.size}-byte file")
        buf.charge(large_size, where)  # copied, like inline custom options
        custom_options = bytes(buf.mv[large_offset:large_offset + large_size])
    return custom_options
