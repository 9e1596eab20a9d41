"""edgeq.tflite.reader: real models parse and agree with LiteRT; hostile bytes are refused.

Three references keep the reader honest: LiteRT's Interpreter (tensors, ops, weights, signatures
as the reference runtime sees them), LiteRT's generated flatbuffers module
(ai_edge_litert.schema_py_generated: enum values, field slots, defaults, option values — an
independent reading of the same schema), and hostile inputs, which must parse or raise
ModelError and nothing else.
"""
from __future__ import annotations

import inspect
import re
import struct
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from edgeq.errors import ModelError
from edgeq.tflite import schema
from edgeq.tflite.flatbuffer import Buf
from edgeq.tflite.reader import read_model
from edgeq.tflite.schema import OPTIONS, BuiltinOp, BuiltinOptionsType, Slot, TensorType
from edgeq.tflite.writer import ModelBuilder

SHARED_MODELS = Path(__file__).resolve().parents[1].parent / "shared" / "models"
MODEL_NAMES = (sorted(p.name for p in SHARED_MODELS.glob("*.tflite"))
               if SHARED_MODELS.is_dir() else [])


def shared(name: str) -> Path:
    path = SHARED_MODELS / name
    if not path.exists():
        pytest.skip(f"{path} is absent (the shared model folder ships with CI, not with clones)")
    return path


def generated():
    return pytest.importorskip("ai_edge_litert.schema_py_generated",
                               reason="ai-edge-litert (the reference) is not installed")


def litert_interpreter(**kwargs):
    litert = pytest.importorskip("ai_edge_litert.interpreter",
                                 reason="ai-edge-litert (the reference) is not installed")
    # Without the default XNNPack delegate LiteRT keeps the file's tensors and ops as they are.
    return litert.Interpreter(
        num_threads=1,
        experimental_op_resolver_type=litert.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES,
        **kwargs)


def camel(name: str) -> str:
    return "".join(p[:1].upper() + p[1:] for p in name.split("_"))


# --- the schema against LiteRT's generated module ------------------------------------------------

ENUM_PAIRS = [
    ("BuiltinOp", "BuiltinOperator"), ("TensorType", "TensorType"),
    ("BuiltinOptionsType", "BuiltinOptions"), ("BuiltinOptions2Type", "BuiltinOptions2"),
    ("Padding", "Padding"), ("Activation", "ActivationFunctionType"),
    ("MirrorPadMode", "MirrorPadMode"), ("QuantizationDetailsType", "QuantizationDetails"),
    ("SparseIndexVectorType", "SparseIndexVector"), ("DimensionType", "DimensionType"),
    ("FullyConnectedWeightsFormat", "FullyConnectedOptionsWeightsFormat"),
    ("LSHProjectionType", "LSHProjectionType"), ("LSTMKernelType", "LSTMKernelType"),
    ("CombinerType", "CombinerType"), ("CustomOptionsFormat", "CustomOptionsFormat"),
]


@pytest.mark.parametrize("mine,theirs", ENUM_PAIRS)
def test_enum_matches_reference(mine, theirs):
    g = generated()
    ours = {m.name: int(m) for m in getattr(schema, mine)}
    ref = {k: v for k, v in vars(getattr(g, theirs)).items() if not k.startswith("_")}
    assert ours == ref


def _slot_of(cls, method_name: str) -> int:
    """The field slot a generated accessor reads: it calls Offset(4 + 2 * slot)."""
    src = inspect.getsource(getattr(cls, method_name))
    return (int(re.search(r"Offset\((\d+)\)", src).group(1)) - 4) // 2


def test_options_tables_match_reference_slots_and_defaults():
    g = generated()
    import flatbuffers

    # An empty table: every generated accessor then returns its schema default.
    fb = flatbuffers.Builder(64)
    fb.StartObject(0)
    fb.Finish(fb.EndObject())
    empty = bytes(fb.Output())
    root = struct.unpack_from("<I", empty, 0)[0]
    assert set(OPTIONS) == {int(t) for t in BuiltinOptionsType if t}
    for type_id, table in OPTIONS.items():
        assert BuiltinOptionsType(type_id).name == table.name
        cls = getattr(g, table.name)
        obj = cls()
        obj.Init(empty, root)
        for f in table.fields:
            assert hasattr(cls, camel(f.name)), f"{table.name}.{f.name}"
            assert _slot_of(cls, camel(f.name)) == f.slot, f"{table.name}.{f.name}"
            if not f.kind.endswith("[]") and f.kind != "string":
                assert getattr(obj, camel(f.name))() == f.default, f"{table.name}.{f.name}"


def test_structural_slots_match_reference():
    g = generated()
    expect = {
        "Model": {"Version": Slot.MODEL_VERSION, "OperatorCodes": Slot.MODEL_OPERATOR_CODES,
                  "Subgraphs": Slot.MODEL_SUBGRAPHS, "Description": Slot.MODEL_DESCRIPTION,
                  "Buffers": Slot.MODEL_BUFFERS, "Metadata": Slot.MODEL_METADATA,
                  "SignatureDefs": Slot.MODEL_SIGNATURE_DEFS},
        "SubGraph": {"Tensors": Slot.SUBGRAPH_TENSORS, "Inputs": Slot.SUBGRAPH_INPUTS,
                     "Outputs": Slot.SUBGRAPH_OUTPUTS, "Operators": Slot.SUBGRAPH_OPERATORS,
                     "Name": Slot.SUBGRAPH_NAME},
        "Tensor": {"Shape": Slot.TENSOR_SHAPE, "Type": Slot.TENSOR_TYPE,
                   "Buffer": Slot.TENSOR_BUFFER, "Name": Slot.TENSOR_NAME,
                   "Quantization": Slot.TENSOR_QUANTIZATION,
                   "IsVariable": Slot.TENSOR_IS_VARIABLE, "Sparsity": Slot.TENSOR_SPARSITY,
                   "ShapeSignature": Slot.TENSOR_SHAPE_SIGNATURE,
                   "ExternalBuffer": Slot.TENSOR_EXTERNAL_BUFFER},
        "Operator": {"OpcodeIndex": Slot.OP_OPCODE_INDEX, "Inputs": Slot.OP_INPUTS,
                     "Outputs": Slot.OP_OUTPUTS, "BuiltinOptionsType": Slot.OP_OPTIONS_TYPE,
                     "BuiltinOptions": Slot.OP_OPTIONS, "CustomOptions": Slot.OP_CUSTOM_OPTIONS,
                     "Intermediates": Slot.OP_INTERMEDIATES,
                     "LargeCustomOptionsOffset": Slot.OP_LARGE_CUSTOM_OPTIONS_OFFSET,
                     "LargeCustomOptionsSize": Slot.OP_LARGE_CUSTOM_OPTIONS_SIZE,
                     "BuiltinOptions2Type": Slot.OP_OPTIONS2_TYPE,
                     "BuiltinOptions2": Slot.OP_OPTIONS2},
        "OperatorCode": {"DeprecatedBuiltinCode": Slot.OPCODE_DEPRECATED_BUILTIN_CODE,
                         "CustomCode": Slot.OPCODE_CUSTOM_CODE, "Version": Slot.OPCODE_VERSION,
                         "BuiltinCode": Slot.OPCODE_BUILTIN_CODE},
        "Buffer": {"Data": Slot.BUFFER_DATA, "Offset": Slot.BUFFER_OFFSET,
                   "Size": Slot.BUFFER_SIZE},
        "QuantizationParameters": {"Min": Slot.QUANT_MIN, "Max": Slot.QUANT_MAX,
                                   "Scale": Slot.QUANT_SCALE, "ZeroPoint": Slot.QUANT_ZERO_POINT,
                                   "DetailsType": Slot.QUANT_DETAILS_TYPE,
                                   "Details": Slot.QUANT_DETAILS,
                                   "QuantizedDimension": Slot.QUANT_QUANTIZED_DIMENSION},
        "SparsityParameters": {"TraversalOrder": Slot.SPARSITY_TRAVERSAL_ORDER,
                               "BlockMap": Slot.SPARSITY_BLOCK_MAP,
                               "DimMetadata": Slot.SPARSITY_DIM_METADATA},
        "DimensionMetadata": {"Format": Slot.DIM_FORMAT, "DenseSize": Slot.DIM_DENSE_SIZE,
                              "ArraySegmentsType": Slot.DIM_ARRAY_SEGMENTS_TYPE,
                              "ArraySegments": Slot.DIM_ARRAY_SEGMENTS,
                              "ArrayIndicesType": Slot.DIM_ARRAY_INDICES_TYPE,
                              "ArrayIndices": Slot.DIM_ARRAY_INDICES},
        "Int32Vector": {"Values": Slot.INDEX_VECTOR_VALUES},
        "Metadata": {"Name": Slot.METADATA_NAME, "Buffer": Slot.METADATA_BUFFER},
        "SignatureDef": {"Inputs": Slot.SIGNATURE_INPUTS, "Outputs": Slot.SIGNATURE_OUTPUTS,
                         "SignatureKey": Slot.SIGNATURE_KEY,
                         "SubgraphIndex": Slot.SIGNATURE_SUBGRAPH_INDEX},
        "TensorMap": {"Name": Slot.TENSORMAP_NAME, "TensorIndex": Slot.TENSORMAP_TENSOR_INDEX},
    }
    for table, fields in expect.items():
        for method, slot in fields.items():
            assert _slot_of(getattr(g, table), method) == slot, f"{table}.{method}"


def test_dtype_maps():
    assert schema.TENSOR_TYPE_OF[np.dtype(np.float32)] == TensorType.FLOAT32
    assert schema.TENSOR_TYPE_OF[np.int8] == TensorType.INT8  # scalar types work as keys too
    assert schema.NUMPY_DTYPE[TensorType.FLOAT16] == np.float16
    assert schema.NUMPY_DTYPE.get(TensorType.INT4) is None
    assert TensorType.STRING not in schema.NUMPY_DTYPE
    for code, dtype in schema.NUMPY_DTYPE.items():
        if dtype is not None:
            assert schema.TENSOR_TYPE_OF[dtype] == code


# --- real models against LiteRT ------------------------------------------------------------------

def reference_options(g, op, type_id):
    """An operator's options read by the generated accessors (None when absent)."""
    table = op.BuiltinOptions()
    if table is None or type_id not in OPTIONS:
        return None
    obj = getattr(g, OPTIONS[type_id].name)()
    obj.Init(table.Bytes, table.Pos)
    out = {}
    for f in OPTIONS[type_id].fields:
        if f.kind == "int32[]":
            v = getattr(obj, camel(f.name) + "AsNumpy")()
            out[f.name] = tuple(int(x) for x in v) if isinstance(v, np.ndarray) else ()
        elif f.kind == "string":
            v = getattr(obj, camel(f.name))()
            out[f.name] = v.decode() if v is not None else ""
        else:
            out[f.name] = getattr(obj, camel(f.name))()
    return out


@pytest.mark.parametrize("name", MODEL_NAMES or ["(none)"])
def test_shared_model_matches_litert(name):
    path = shared(name)
    g = generated()
    model = read_model(path)
    data = path.read_bytes()
    it = litert_interpreter(model_path=str(path))
    sub = model.subgraphs[0]

    details = it.get_tensor_details()
    assert len(details) == len(sub.tensors)
    for d, t in zip(details, sub.tensors):
        assert (d["index"], d["name"]) == (t.index, t.name)
        assert tuple(d["shape"]) == t.shape, t.name
        assert tuple(d["shape_signature"]) == (t.shape_signature or t.shape), t.name
        assert np.dtype(d["dtype"]) == t.dtype, t.name
        q = d["quantization_parameters"]
        if len(q["scales"]):
            np.testing.assert_array_equal(q["scales"], t.quantization.scale)
            np.testing.assert_array_equal(q["zero_points"], t.quantization.zero_point)
            assert q["quantized_dimension"] == t.quantization.quantized_dimension
        else:
            assert t.quantization is None or len(t.quantization.scale) == 0

    ops = it._get_ops_details()
    assert len(ops) == len(sub.operators)
    for ref, op in zip(ops, sub.operators):
        expected = op.custom_code if op.builtin_code == BuiltinOp.CUSTOM else \
            BuiltinOp(op.builtin_code).name
        assert ref["op_name"] == expected
        assert tuple(ref["inputs"]) == op.inputs and tuple(ref["outputs"]) == op.outputs

    # Option values against the generated accessors, op by op.
    gm = g.Model.GetRootAs(data, 0)
    gsub = gm.Subgraphs(0)
    for j, op in enumerate(sub.operators):
        gop = gsub.Operators(j)
        type_id = gop.BuiltinOptionsType()
        ref = reference_options(g, gop, type_id)
        if ref is None:  # absent: the reader fills the defaults of the op's own table
            table = OPTIONS.get(op.options_type)
            assert op.options == ({f.name: f.default for f in table.fields} if table else {})
        else:
            assert op.options_type == type_id
            assert op.options == ref, f"operator {j}"
        custom = gop.CustomOptionsAsNumpy()
        if isinstance(custom, np.ndarray):
            assert op.custom_options == custom.tobytes()

    assert {s.signature_key: {"inputs": sorted(s.inputs), "outputs": sorted(s.outputs)}
            for s in model.signature_defs} == {
        k: {"inputs": sorted(v["inputs"]), "outputs": sorted(v["outputs"])}
        for k, v in it.get_signature_list().items()}
    for k in range(gm.MetadataLength()):
        assert gm.Metadata(k).Name().decode() in model.metadata

    # Weights: the zero-copy views equal what LiteRT holds (constants are readable before
    # allocate_tensors, which some models cannot do at their declared input shapes).
    constants = [t for t in sub.tensors if t.data is not None]
    assert constants
    for t in constants:
        assert not t.data.flags.writeable
        if t.sparsity is None:
            np.testing.assert_array_equal(it.get_tensor(t.index), t.data, err_msg=t.name)


def test_parse_time_mobilenet_v2():
    path = shared("mobilenet_v2.fp32.tflite")
    read_model(path)
    times = []
    for _ in range(7):
        start = time.perf_counter()
        read_model(path)
        times.append(time.perf_counter() - start)
    median = sorted(times)[len(times) // 2]
    print(f"mobilenet_v2.fp32 parse: median {median * 1e3:.1f} ms")
    assert median < 0.1


def test_sources_path_bytes_bytearray_memoryview(tmp_path):
    path = shared("ds_cnn_kws.qd8.tflite")
    raw = path.read_bytes()
    models = [read_model(path), read_model(str(path)), read_model(raw),
              read_model(bytearray(raw)), read_model(memoryview(raw)),
              read_model(np.frombuffer(raw, np.uint8))]
    ref = models[0]
    for m in models[1:]:
        assert [t.name for t in m.subgraphs[0].tensors] == [t.name for t in
                                                            ref.subgraphs[0].tensors]
        for a, b in zip(m.subgraphs[0].tensors, ref.subgraphs[0].tensors):
            if a.data is not None:
                assert not a.data.flags.writeable
                np.testing.assert_array_equal(a.data, b.data)
    # Zero copy: the weights of a model read from bytes live inside those bytes.
    m = read_model(raw)
    t = next(t for t in m.subgraphs[0].tensors if t.data is not None)
    assert np.shares_memory(t.data, np.frombuffer(raw, np.uint8))


def test_bad_source_kinds():
    with pytest.raises(TypeError):
        read_model(12345)
    with pytest.raises(ModelError, match="cannot read"):
        read_model("/nonexistent/model.tflite")


# --- small models and byte patching -------------------------------------------------------------

def small_model(**overrides) -> bytes:
    """conv -> add(relu) -> reshape -> softmax, with a signature and metadata."""
    rng = np.random.default_rng(0)
    b = ModelBuilder(description="small")
    x = b.add_tensor("x", [1, 6, 6, 3], np.float32, shape_signature=[-1, 6, 6, 3])
    w = b.add_tensor("w", [4, 3, 3, 3], np.float32,
                     data=rng.standard_normal((4, 3, 3, 3)).astype(np.float32))
    bias = b.add_tensor("bias", [4], np.float32, data=np.ones(4, np.float32))
    c = b.add_tensor("c", [1, 3, 3, 4], np.float32)
    b.add_operator(BuiltinOp.CONV_2D, [x, w, bias], [c],
                   options=overrides.get("conv", {"padding": 0, "stride_w": 2, "stride_h": 2}))
    k = b.add_tensor("k", [1, 3, 3, 4], np.int8, data=np.ones((1, 3, 3, 4), np.int8),
                     quantization={"scale": [0.5], "zero_point": [0]})
    d = b.add_tensor("d", [1, 3, 3, 4], np.float32)
    b.add_operator(BuiltinOp.DEQUANTIZE, [k], [d])
    a = b.add_tensor("a", [1, 3, 3, 4], np.float32)
    b.add_operator(BuiltinOp.ADD, [c, d], [a], options={"fused_activation_function": 1})
    shape = b.add_tensor("shape", [2], np.int32, data=np.array([1, 36], np.int32))
    r = b.add_tensor("r", [1, 36], np.float32)
    b.add_operator(BuiltinOp.RESHAPE, [a, shape], [r])
    s = b.add_tensor("s", [1, 36], np.float32)
    b.add_operator(BuiltinOp.SOFTMAX, [r], [s], options={"beta": 1.0})
    b.set_inputs([x])
    b.set_outputs([s])
    b.add_signature("serving_default", {"x": x}, {"s": s})
    b.add_metadata("min_runtime_version", b"1.5.0\0")
    return b.build()


def field_pos(data: bytes, path) -> int:
    """Byte position of a field, found by walking tables with the reader's own accessor.
    path: (slot, index) steps through vectors of tables, ending with a scalar's slot."""
    buf = Buf(memoryview(data))
    table = buf.table(buf.u32(0, "root"), "root")
    *steps, last = path
    for slot, index in steps:
        table = table.tables(slot, "x", "x")[index]
    pos = table._field(last, 1, "x")
    assert pos, f"field {path} is not written"
    return pos


def patched(data: bytes, pos: int, fmt: str, value) -> bytes:
    out = bytearray(data)
    struct.pack_into(fmt, out, pos, value)
    return bytes(out)


def refuses(data, match):
    with pytest.raises(ModelError, match=match) as info:
        read_model(data)
    return str(info.value)


def test_small_model_parses():
    m = read_model(small_model())
    sub = m.subgraphs[0]
    assert [op.builtin_code for op in sub.operators] == [3, 6, 0, 22, 25]
    assert sub.tensors[0].shape_signature == (-1, 6, 6, 3)
    assert m.metadata == {"min_runtime_version": b"1.5.0\0"}
    assert sub.tensors[4].quantization.scale.tolist() == [0.5]


def test_bad_file_identifier():
    data = bytearray(small_model())
    data[4:8] = b"TFL2"
    refuses(bytes(data), "identifier")
    refuses(b"", "too small")
    refuses(b"1234567", "too small")


def test_schema_version_other_than_3():
    data = small_model()
    refuses(patched(data, field_pos(data, [Slot.MODEL_VERSION]), "<I", 7), "version 7")


def test_vtable_out_of_range():
    data = small_model()
    root = struct.unpack_from("<I", data, 0)[0]
    refuses(patched(data, root, "<i", -0x7FFFFFF0), "vtable")
    refuses(patched(data, root, "<i", 0x7FFFFFF0), "vtable")
    # A subgraph table's vtable
    sub = field_pos(data, [Slot.MODEL_SUBGRAPHS])  # the uoffset to the subgraphs vector
    vec = sub + struct.unpack_from("<I", data, sub)[0]
    first = vec + 4 + struct.unpack_from("<I", data, vec + 4)[0]
    refuses(patched(data, first, "<i", len(data) * -2), "subgraph 0: vtable")


def test_root_offset_past_end():
    data = small_model()
    refuses(patched(data, 0, "<I", len(data) + 100), "outside")


def test_vector_length_past_end():
    data = small_model()
    pos = field_pos(data, [Slot.MODEL_SUBGRAPHS])
    vec = pos + struct.unpack_from("<I", data, pos)[0]
    refuses(patched(data, vec, "<I", 0xFFFFFFFF), "runs past the end")


def test_tensor_index_out_of_range():
    b = ModelBuilder()
    x = b.add_tensor("x", [2], np.float32)
    y = b.add_tensor("y", [2], np.float32)
    b.add_operator(BuiltinOp.ADD, [x, 99], [y])
    b.set_inputs([x])
    b.set_outputs([y])
    refuses(b.build(), r"operator 0 \(ADD\): input tensor index 99 is out of range")
    b = ModelBuilder()
    x = b.add_tensor("x", [2], np.float32)
    b.set_inputs([x])
    b.set_outputs([5])
    refuses(b.build(), "output tensor index 5")


def test_buffer_index_out_of_range():
    data = small_model()
    pos = field_pos(data, [(Slot.MODEL_SUBGRAPHS, 0), (Slot.SUBGRAPH_TENSORS, 1),
                           Slot.TENSOR_BUFFER])
    refuses(patched(data, pos, "<I", 999), r"tensor 1 'w': buffer index 999 is out of range")


def test_opcode_index_out_of_range():
    data = small_model()
    pos = field_pos(data, [(Slot.MODEL_SUBGRAPHS, 0), (Slot.SUBGRAPH_OPERATORS, 1),
                           Slot.OP_OPCODE_INDEX])
    refuses(patched(data, pos, "<I", 77), "operator 1: opcode_index 77 is out of range")


def test_negative_dim():
    b = ModelBuilder()
    x = b.add_tensor("neg", [2, -3], np.float32)
    b.set_inputs([x])
    b.set_outputs([x])
    refuses(b.build(), r"tensor 0 'neg': shape \[2,-3\] has a negative dimension")


def test_product_overflow_and_huge_dims():
    for shape in ([1 << 30, 1 << 30, 1 << 30], [2**31 - 1] * 40, [0, 2**31 - 1, 2**31 - 1],
                  [65536, 65536]):
        b = ModelBuilder()
        x = b.add_tensor("big", shape, np.float32)
        b.set_inputs([x])
        b.set_outputs([x])
        refuses(b.build(), "'big': shape .* more than 2\\*\\*31 elements")


def test_shape_signature_mismatch():
    b = ModelBuilder()
    x = b.add_tensor("x", [1, 4], np.float32, shape_signature=[-1, 5])
    b.set_inputs([x])
    b.set_outputs([x])
    refuses(b.build(), "'x': shape_signature")
    b = ModelBuilder()
    x = b.add_tensor("x", [1, 4], np.float32, shape_signature=[-2, 4])
    b.set_inputs([x])
    b.set_outputs([x])
    refuses(b.build(), "'x': shape_signature")


def test_unknown_tensor_type():
    b = ModelBuilder()
    x = b.add_tensor("x", [2], 100)
    b.set_inputs([x])
    b.set_outputs([x])
    refuses(b.build(), "'x': unknown tensor type 100")


def test_data_too_short_and_too_long():
    for nbytes in (100, 4 * 3 * 3 * 8 * 16 + 4):
        b = ModelBuilder()
        b.add_tensor("conv1/weights", [3, 3, 8, 16], np.float32, data=bytes(nbytes))
        msg = refuses(b.build(), "tensor 0 'conv1/weights'")
        assert f"buffer 1 holds {nbytes} bytes, shape [3,3,8,16] float32 needs 4608" in msg


def test_outside_buffer_offset_past_eof_and_overflow():
    b = ModelBuilder()
    w = b.add_tensor("w", [4], np.float32, data=np.arange(4, dtype=np.float32))
    b.set_outputs([w])
    data = b.build(buffers_outside=True)
    assert read_model(data).subgraphs[0].tensors[0].data.tolist() == [0, 1, 2, 3]
    off = field_pos(data, [(Slot.MODEL_BUFFERS, 1), Slot.BUFFER_OFFSET])
    size = field_pos(data, [(Slot.MODEL_BUFFERS, 1), Slot.BUFFER_SIZE])
    refuses(patched(data, off, "<Q", len(data) + 8), "buffer 1: .*runs past the end")
    refuses(patched(data, off, "<Q", len(data) - 8), "buffer 1: .*runs past the end")
    refuses(patched(data, size, "<Q", 2**64 - 1), "buffer 1: .*runs past the end")
    refuses(patched(data, off, "<Q", 2**64 - 16), "buffer 1: .*runs past the end")
    # A shorter size is a well-formed buffer, but no longer fits the tensor.
    refuses(patched(data, size, "<Q", 8), "'w': buffer 1 holds 8 bytes")
    # A file cut inside the outside data.
    refuses(data[:-4], "buffer 1")


def quant_model(quantization, shape=(4, 2, 2, 3), dtype=np.int8) -> bytes:
    b = ModelBuilder()
    w = b.add_tensor("wq", shape, dtype, data=np.zeros(shape, dtype), quantization=quantization)
    b.set_outputs([w])
    return b.build()


def test_quantization_checks():
    assert read_model(quant_model({"scale": [0.1] * 4, "zero_point": [0] * 4})) \
        .subgraphs[0].tensors[0].quantization.scale.shape == (4,)
    refuses(quant_model({"scale": [0.1] * 4, "zero_point": [0] * 3}),
            "'wq': quantization has 4 scales but 3 zero points")
    refuses(quant_model({"scale": [0.1] * 3, "zero_point": [0] * 3}),
            "'wq': 3 per-channel scales, but quantized_dimension 0")
    refuses(quant_model({"scale": [1.0, 2.0], "zero_point": [0, 0]}, shape=()),
            "'wq': 2 per-channel scales, but quantized_dimension 0 of shape \\[\\] has no")
    refuses(quant_model({"scale": [0.1], "zero_point": [0], "quantized_dimension": 4}),
            "'wq': quantized_dimension 4 is out of range")
    refuses(quant_model({"scale": [0.1], "zero_point": [0], "quantized_dimension": -1}),
            "quantized_dimension -1")
    refuses(quant_model({"scale": [float("nan")], "zero_point": [0]}),
            "'wq': quantization scale nan")
    refuses(quant_model({"scale": [float("inf")] * 4, "zero_point": [0] * 4}), "scale inf")
    refuses(quant_model({"scale": [0.5], "zero_point": [300]}), "'wq': zero point outside int8")
    # per-channel on the last dim
    q = read_model(quant_model({"scale": [1, 2, 3], "zero_point": [0, 0, 0],
                                "quantized_dimension": 3})).subgraphs[0].tensors[0].quantization
    assert q.quantized_dimension == 3 and q.scale.dtype == np.float32
    assert q.zero_point.dtype == np.int64
    # min/max only (no scale): kept; nothing at all: None
    q = read_model(quant_model({"scale": [], "zero_point": [], "min": [-1.0], "max": [1.0]},
                               dtype=np.float32)).subgraphs[0].tensors[0].quantization
    assert q.min.tolist() == [-1.0] and len(q.scale) == 0
    assert read_model(quant_model({"scale": [], "zero_point": []}, dtype=np.float32)) \
        .subgraphs[0].tensors[0].quantization is None


def one_op(op, options, inputs=((1, 8, 8, 3),), n_out=1) -> bytes:
    b = ModelBuilder()
    ins = [b.add_tensor(f"in{k}", s, np.float32) for k, s in enumerate(inputs)]
    outs = [b.add_tensor(f"out{k}", [], np.float32) for k in range(n_out)]
    b.add_operator(op, ins, outs, options=options)
    b.set_inputs(ins)
    b.set_outputs(outs)
    return b.build()


def test_option_values_checked():
    conv = {"padding": 0, "stride_w": 1, "stride_h": 1}
    read_model(one_op(BuiltinOp.CONV_2D, conv))
    refuses(one_op(BuiltinOp.CONV_2D, {**conv, "stride_w": 0}),
            r"operator 0 \(CONV_2D\): option stride_w=0 must be > 0")
    refuses(one_op(BuiltinOp.CONV_2D, {"padding": 0}), "stride_w=0")  # strides left out
    refuses(one_op(BuiltinOp.CONV_2D, {**conv, "stride_h": -2}), "stride_h=-2")
    refuses(one_op(BuiltinOp.CONV_2D, {**conv, "dilation_h_factor": 0}),
            "option dilation_h_factor=0 must be > 0")
    refuses(one_op(BuiltinOp.CONV_2D, {**conv, "padding": 7}), "option padding=7 is not a Padding")
    refuses(one_op(BuiltinOp.CONV_2D, {**conv, "fused_activation_function": 9}),
            "fused_activation_function=9 is not a Activation")
    refuses(one_op(BuiltinOp.DEPTHWISE_CONV_2D, {**conv, "depth_multiplier": -1}),
            "depth_multiplier=-1")
    refuses(one_op(BuiltinOp.MAX_POOL_2D, {**conv, "filter_width": 0, "filter_height": 2}),
            "filter_width=0")
    refuses(one_op(BuiltinOp.MIRROR_PAD, {"mode": 2}), "mode=2 is not a MirrorPadMode")
    refuses(one_op(BuiltinOp.SOFTMAX, {"beta": float("nan")}), "beta=nan must be finite")
    refuses(one_op(BuiltinOp.CAST, {"out_data_type": 77}), "out_data_type=77")
    refuses(one_op(BuiltinOp.RESHAPE, {"new_shape": [1, -2]}), "new_shape")
    refuses(one_op(BuiltinOp.CALL_ONCE, {"init_subgraph_index": 3}),
            "init_subgraph_index=3 must name one of")


def test_options_type_mismatch_and_defaults():
    b = ModelBuilder()
    x = b.add_tensor("x", [2], np.float32)
    y = b.add_tensor("y", [2], np.float32)
    b.add_operator(BuiltinOp.ADD, [x, x], [y], options_type=BuiltinOptionsType.Conv2DOptions)
    b.set_inputs([x])
    b.set_outputs([y])
    refuses(b.build(), r"operator 0 \(ADD\): field builtin_options_type is Conv2DOptions, but "
                       r"this operator takes AddOptions")
    # Options left out entirely: the op's own table with its defaults.
    b = ModelBuilder()
    x = b.add_tensor("x", [2], np.float32)
    y = b.add_tensor("y", [2], np.float32)
    b.add_operator(BuiltinOp.ADD, [x, x], [y], options_type=0)
    b.set_inputs([x])
    b.set_outputs([y])
    op = read_model(b.build()).subgraphs[0].operators[0]
    assert op.options_type == BuiltinOptionsType.AddOptions
    assert op.options == {"fused_activation_function": 0, "pot_scale_int16": True}


def test_unknown_builtin_and_custom_ops_parse():
    b = ModelBuilder()
    x = b.add_tensor("x", [2], np.float32)
    y = b.add_tensor("y", [2], np.float32)
    z = b.add_tensor("z", [2], np.float32)
    b.add_operator(999, [x], [y])
    b.add_operator("MyCustomOp", [y], [z], custom_options=b"\x01\x02\x03", version=2)
    b.set_inputs([x])
    b.set_outputs([z])
    ops = read_model(b.build()).subgraphs[0].operators
    assert ops[0].builtin_code == 999 and ops[0].options == {} and ops[0].options_type == 0
    assert ops[1].builtin_code == BuiltinOp.CUSTOM and ops[1].custom_code == "MyCustomOp"
    assert ops[1].custom_options == b"\x01\x02\x03" and ops[1].version == 2


def chain(ops, inputs=(0,), outputs=None, n=4, constants=()) -> bytes:
    """Tensors t0..t{n-1} (constants get data); ops as (inputs, outputs) with ADD."""
    b = ModelBuilder()
    for k in range(n):
        b.add_tensor(f"t{k}", [2], np.float32,
                     data=np.ones(2, np.float32) if k in constants else None)
    for ins, outs in ops:
        b.add_operator(BuiltinOp.ADD, ins, outs)
    b.set_inputs(list(inputs))
    b.set_outputs(list(outputs) if outputs is not None else [ops[-1][1][0]])
    return b.build()


def test_graph_order():
    read_model(chain([([0, 0], [1]), ([1, 0], [2])]))
    read_model(chain([([0, 3], [1])], constants=(3,)))
    refuses(chain([([0, 2], [1])]),
            r"operator 0 \(ADD\): reads tensor 2 't2' before it is written: no operator writes")
    # cycle: op 0 reads t2, written by op 1, which reads op 0's output
    refuses(chain([([0, 2], [1]), ([1, 0], [2])]),
            "operator 0 .*reads tensor 2 't2' before it is written: operator 1 writes it later")
    refuses(chain([([0, 0], [3])], constants=(3,)), "writes tensor 3 't3', which is a constant")
    refuses(chain([([0, 0], [1]), ([1, 1], [1])]),
            "operator 1 .*writes tensor 1 't1', which an earlier operator already wrote")
    refuses(chain([([0, 0], [1, 1])]), "already wrote")
    refuses(chain([([0, 0], [0])]), "writes tensor 0 't0', which is a graph input")
    refuses(chain([([0, 0], [1])], outputs=[2]), "output tensor 2 't2' is never written")
    # optional inputs (-1) are fine
    read_model(chain([([0, -1], [1])]))


def test_signature_and_metadata_indices():
    data = small_model()
    sig_tensor = field_pos(data, [(Slot.MODEL_SIGNATURE_DEFS, 0), (Slot.SIGNATURE_OUTPUTS, 0),
                                  Slot.TENSORMAP_TENSOR_INDEX])
    refuses(patched(data, sig_tensor, "<I", 500), "signature 0 'serving_default': output 's'")
    meta = field_pos(data, [(Slot.MODEL_METADATA, 0), Slot.METADATA_BUFFER])
    refuses(patched(data, meta, "<I", 500), "metadata 0 'min_runtime_version': buffer index 500")


def test_shared_tables_cannot_make_the_reader_walk_forever():
    # 2000 tensor entries all pointing at one tensor whose shape vector has 20000 entries:
    # honest reading would visit 40 million dims. The work budget refuses it.
    b = ModelBuilder()
    b.add_tensor("wide", [1] * 20000, np.float32)
    for k in range(2000):
        b.add_tensor(f"t{k}", [1], np.float32)
    data = bytearray(b.build())
    read_model(bytes(data))
    pos = field_pos(bytes(data), [(Slot.MODEL_SUBGRAPHS, 0), Slot.SUBGRAPH_TENSORS])
    vec = pos + struct.unpack_from("<I", data, pos)[0]
    n = struct.unpack_from("<I", data, vec)[0]
    target = vec + 4 + struct.unpack_from("<I", data, vec + 4)[0]
    for k in range(1, n):
        entry = vec + 4 + 4 * k
        struct.pack_into("<I", data, entry, target - entry)
    start = time.perf_counter()
    refuses(bytes(data), "refer to the same data")
    assert time.perf_counter() - start < 2


def test_shared_metadata_buffer_cannot_make_the_reader_copy_without_limit():
    b = ModelBuilder()
    x = b.add_tensor("x", [1], np.float32)
    b.set_inputs([x])
    b.set_outputs([x])
    b.add_metadata("big", bytes(1 << 16))
    for k in range(500):
        b.add_metadata(f"m{k}", b"small")
    data = b.build()
    read_model(data)
    big = struct.unpack_from("<I", data, field_pos(data, [(Slot.MODEL_METADATA, 0),
                                                          Slot.METADATA_BUFFER]))[0]
    for k in range(1, 501):
        pos = field_pos(data, [(Slot.MODEL_METADATA, k), Slot.METADATA_BUFFER])
        data = patched(data, pos, "<I", big)
    refuses(data, "refer to the same data")


def test_external_buffer_refused():
    b = ModelBuilder()
    b.add_tensor("w", [2], np.float32, data=np.ones(2, np.float32))
    data = b.build()
    # The writer has no external buffers; re-pack the model through the generated object API.
    g = generated()
    import flatbuffers
    m = g.ModelT.InitFromPackedBuf(data, 0)
    m.subgraphs[0].tensors[0].externalBuffer = 3
    fb = flatbuffers.Builder(256)
    fb.Finish(m.Pack(fb), file_identifier=b"TFL3")
    refuses(bytes(fb.Output()), "'w': its data lives in an external file")


# --- hostile bytes: truncation, single-byte corruption, random mutation -------------------------

def parse_or_refuse(data: bytes):
    """The contract: a model parses, or ModelError is raised. Returns True when it parsed."""
    try:
        read_model(data)
        return True
    except ModelError:
        return False


def test_truncation_small_model():
    data = small_model()
    for n in range(len(data)):
        assert not parse_or_refuse(data[:n]), n


def test_truncation_real_model():
    data = shared("ds_cnn_kws.fp32.tflite").read_bytes()
    lengths = sorted(set(list(range(0, 256)) + list(range(256, len(data), 97)) +
                         [len(data) - k for k in range(1, 64)]))
    for n in lengths:
        assert not parse_or_refuse(data[:n]), n


def test_every_single_byte_corruption_of_a_small_model():
    data = small_model()
    parsed = refused = 0
    for pos in range(len(data)):
        original = data[pos]
        for value in {0x00, 0xFF, 0x80, 0x7F, original ^ 0x01, (original + 4) & 0xFF}:
            if value == original:
                continue
            mutated = bytearray(data)
            mutated[pos] = value
            if parse_or_refuse(bytes(mutated)):
                parsed += 1
            else:
                refused += 1
    assert parsed and refused  # both outcomes happen: weights change freely, structure does not


def mutate(rng, base: bytes, region: int) -> bytes:
    data = bytearray(base)
    for _ in range(int(rng.integers(1, 5))):
        pos = int(rng.integers(0, min(region, len(data))))
        kind = rng.integers(0, 3)
        if kind == 0:
            data[pos] = int(rng.integers(0, 256))
        elif kind == 1 and pos + 4 <= len(data):  # a whole 32-bit word: offsets, lengths, dims
            words = [0, 1, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF, len(data),
                     int(rng.integers(0, 2**32))]
            struct.pack_into("<I", data, pos, int(rng.choice(words)))
        else:
            data[pos] ^= 1 << int(rng.integers(0, 8))
    return bytes(data)


@pytest.mark.parametrize("name,count", [("ds_cnn_kws.fp32.tflite", 1500),
                                        ("ds_cnn_kws.qd8.tflite", 1000),
                                        ("face_detection_short_range.tflite", 600),
                                        ("tiny_bert.fp16.tflite", 300)])
def test_random_mutations_of_real_models(name, count):
    base = shared(name).read_bytes()
    rng = np.random.default_rng(1234)
    # Converters put the structure (tables, shapes, options) before or after the weights; mutate
    # both the first and the last 64 KB, where a mistake would matter, and anywhere now and then.
    outcomes = [0, 0]
    for k in range(count):
        region = len(base) if k % 4 == 0 else min(len(base), 1 << 16)
        data = mutate(rng, base, region)
        if k % 2:  # mirror: mutate near the end
            data = mutate(rng, base[::-1], region)[::-1]
        outcomes[parse_or_refuse(data)] += 1
    assert outcomes[0] > 0


CHILD = textwrap.dedent(r"""
    import struct, sys
    import numpy as np
    from edgeq.errors import ModelError
    from edgeq.tflite.reader import read_model
    base = open(sys.argv[1], "rb").read()
    rng = np.random.default_rng(int(sys.argv[2]))
    refused = 0
    for k in range(int(sys.argv[3])):
        data = bytearray(base)
        for _ in range(int(rng.integers(1, 4))):
            pos = int(rng.integers(0, min(len(data), 1 << 16)))
            data[pos] = int(rng.integers(0, 256))
        try:
            read_model(bytes(data))
        except ModelError:
            refused += 1
    print("refused", refused)
""")


def test_subprocess_smoke_interpreter_survives_mutations():
    path = shared("face_detection_short_range.tflite")
    root = Path(__file__).resolve().parents[1]
    proc = subprocess.run([sys.executable, "-c", CHILD, str(path), "7", "300"], cwd=root,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "refused" in proc.stdout


def repack(data: bytes, edit) -> bytes:
    """Re-pack a model through LiteRT's generated object API after edit(ModelT): for fields
    ModelBuilder does not write (large custom options, quantization details)."""
    g = generated()
    import flatbuffers
    m = g.ModelT.InitFromPackedBuf(data, 0)
    edit(m, g)
    fb = flatbuffers.Builder(1024)
    fb.Finish(m.Pack(fb), file_identifier=b"TFL3")
    return bytes(fb.Output())


def test_large_custom_options_stored_after_the_flatbuffer():
    b = ModelBuilder()
    x = b.add_tensor("x", [2], np.float32)
    y = b.add_tensor("y", [2], np.float32)
    b.add_operator("Big", [x], [y])
    b.set_inputs([x])
    b.set_outputs([y])
    payload = b"custom-options-payload"

    def with_offset(offset, size):
        def edit(m, g):
            op = m.subgraphs[0].operators[0]
            op.largeCustomOptionsOffset, op.largeCustomOptionsSize = offset, size
        return repack(b.build(), edit)

    head = with_offset(2, len(payload))  # the layout does not depend on the values
    data = with_offset(len(head), len(payload)) + payload
    assert read_model(data).subgraphs[0].operators[0].custom_options == payload
    refuses(with_offset(len(head), len(payload) + 1) + payload,
            r"operator 0 \(custom Big\): custom options at offset .* run past the end")
    refuses(with_offset(2**64 - 1, 5) + payload, "run past the end")


def test_quantization_details_refused_or_ignored():
    data = quant_model({"scale": [0.5], "zero_point": [0]})

    def details(kind):
        def edit(m, g):
            q = m.subgraphs[0].tensors[0].quantization
            q.detailsType = kind
            q.details = g.CustomQuantizationT() if kind == 1 else g.BlockwiseQuantizationT()
        return edit

    t = read_model(repack(data, details(1))).subgraphs[0].tensors[0]
    assert t.quantization.scale.tolist() == [0.5]  # opaque custom details are ignored
    refuses(repack(data, details(2)), "'wq': quantization details BlockwiseQuantization")


def test_sparsity_checked():
    def model(**sp):
        base = {"traversal_order": [0, 1], "block_map": [],
                "dim_metadata": [{"format": 0, "dense_size": 2},
                                 {"format": 1, "array_segments": np.array([0, 1, 2], np.int32),
                                  "array_indices": np.array([1, 0], np.int32)}]}
        base.update(sp)
        b = ModelBuilder()
        t = b.add_tensor("sp", [2, 2], np.float32, data=np.ones(2, np.float32), sparsity=base)
        b.set_outputs([t])
        return b.build()

    t = read_model(model()).subgraphs[0].tensors[0]
    assert t.data.shape == (2,) and t.sparsity.dim_metadata[1].array_indices.tolist() == [1, 0]
    refuses(model(traversal_order=[0, 0]), "'sp': sparsity traversal_order")
    refuses(model(block_map=[5]), "'sp': sparsity traversal_order")
    refuses(model(dim_metadata=[{"format": 0, "dense_size": 2}]), "dim_metadata levels")
    refuses(model(dim_metadata=[{"format": 0, "dense_size": 2}, {"format": 3}]),
            "level 1 has unknown format 3")
    refuses(model(dim_metadata=[{"format": 0, "dense_size": -2}, {"format": 0}]),
            "dense_size -2")
    refuses(model(dim_metadata=[{"format": 0, "dense_size": 2}, {"format": 1}]),
            "level 1 is SPARSE_CSR without")


def test_operator_code_checks():
    def model(op, version=1):
        b = ModelBuilder()
        x = b.add_tensor("x", [2], np.float32)
        y = b.add_tensor("y", [2], np.float32)
        b.add_operator(op, [x], [y], version=version)
        b.set_inputs([x])
        b.set_outputs([y])
        return b.build()

    refuses(model(int(BuiltinOp.CUSTOM)), "CUSTOM operator without a custom_code")
    refuses(model(BuiltinOp.RELU, version=0), r"operator code 0 \(RELU\): version 0")
    refuses(model(-5), "builtin_code -5 is negative")


def test_names_with_format_characters_and_unicode():
    b = ModelBuilder()
    x = b.add_tensor("in{0}/{name} é", [2], np.float32)
    y = b.add_tensor("out{}", [2], np.float32)
    b.add_operator(BuiltinOp.RELU, [x], [y])
    b.set_inputs([x])
    b.set_outputs([y])
    data = b.build()
    assert [t.name for t in read_model(data).subgraphs[0].tensors] == ["in{0}/{name} é", "out{}"]
    # Invalid UTF-8 in a name is refused, naming the field.
    pos = data.index("é".encode())
    refuses(data[:pos] + b"\xff" + data[pos + 1:], "string 'name' is not valid UTF-8")


def test_absent_output_refused():
    b = ModelBuilder()
    x = b.add_tensor("x", [2], np.float32)
    y = b.add_tensor("y", [2], np.float32)
    b.add_operator(BuiltinOp.SPLIT, [x], [y, -1], options={"num_splits": 2})
    b.set_inputs([x])
    b.set_outputs([y])
    refuses(b.build(), r"operator 0 \(SPLIT\): output tensor index -1 is out of range")
