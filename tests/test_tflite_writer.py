"""edgeq.tflite.writer: what ModelBuilder writes reads back the same, and LiteRT (the reference
runtime) loads and runs it with the results numpy computes."""
from __future__ import annotations

import numpy as np
import pytest

from edgeq.tflite import (Activation, BuiltinOp, ModelBuilder, Padding, TensorType,
                          read_model)
from edgeq.tflite.schema import OPTIONS, OPTIONS_FOR_OP, BuiltinOptionsType


def litert_interpreter(**kwargs):
    litert = pytest.importorskip("ai_edge_litert.interpreter",
                                 reason="ai-edge-litert (the reference) is not installed")
    return litert.Interpreter(num_threads=1, **kwargs)


def run_litert(model: bytes, feeds: dict) -> dict:
    it = litert_interpreter(model_content=model)
    it.allocate_tensors()
    for index, value in feeds.items():
        it.set_tensor(index, value)
    it.invoke()
    return {d["index"]: it.get_tensor(d["index"]) for d in it.get_output_details()}


# --- round trips ----------------------------------------------------------------------------------

def feature_model(buffers_outside=False):
    rng = np.random.default_rng(3)
    b = ModelBuilder(description="round trip")
    x = b.add_tensor("x", [1, 4, 4, 2], np.float32, shape_signature=[-1, 4, 4, 2])
    w = b.add_tensor("w", [3, 1, 1, 2], np.int8, data=rng.integers(-127, 128, (3, 1, 1, 2)),
                     quantization={"scale": [0.1, 0.2, 0.3], "zero_point": [0, 0, 0],
                                   "quantized_dimension": 0})
    bias = b.add_tensor("bias", [3], TensorType.FLOAT32, data=[1.0, 2.0, 3.0])
    y = b.add_tensor("y", [1, 4, 4, 3], np.float32)
    b.add_operator(BuiltinOp.CONV_2D, [x, w, bias], [y],
                   options={"padding": Padding.VALID, "stride_w": 1, "stride_h": 1,
                            "fused_activation_function": Activation.RELU6,
                            "dilation_w_factor": 2})
    g = b.add_tensor("g", [1, 4, 4, 3], np.float32)
    b.add_operator(BuiltinOp.GELU, [y], [g], options={"approximate": True})
    perm = b.add_tensor("perm", [4], np.int32, data=np.array([0, 3, 1, 2], np.int32))
    t = b.add_tensor("t", [1, 3, 4, 4], np.float32)
    b.add_operator(BuiltinOp.TRANSPOSE, [g, perm], [t])
    sq = b.add_tensor("sq", [3, 4, 4], np.float32)
    b.add_operator(BuiltinOp.SQUEEZE, [t], [sq], options={"squeeze_dims": [0]})
    state = b.add_tensor("state", [3, 4, 4], np.float32, is_variable=True)
    out = b.add_tensor("out", [3, 4, 4], np.float32)
    b.add_operator("MyOp", [sq, state, -1], [out], custom_options=b"\x00flex", version=3)
    h = b.add_tensor("half", [2, 2], np.float16, data=np.ones((2, 2), np.float16),
                     quantization={"scale": [], "zero_point": [], "min": [-1.0], "max": [1.0]})
    b.set_inputs([x])
    b.set_outputs([out])
    b.add_signature("serving_default", {"input": x}, {"output": out})
    b.add_metadata("min_runtime_version", b"2.3.0")
    b.add_metadata("note", bytes(range(40)))
    second = b.add_subgraph("cond")
    a = b.add_tensor("a", [], np.int32)
    c = b.add_tensor("c", [], np.int32, data=np.array(5, np.int32))
    lt = b.add_tensor("lt", [], np.bool_)
    b.add_operator(BuiltinOp.LESS, [a, c], [lt])
    b.set_inputs([a])
    b.set_outputs([lt])
    b.add_signature("cond", {"a": a}, {"lt": lt})
    return b.build(buffers_outside=buffers_outside), dict(x=x, w=w, bias=bias, h=h, second=second)


@pytest.mark.parametrize("outside", [False, True])
def test_round_trip_fields(outside):
    data, ids = feature_model(outside)
    m = read_model(data)
    assert m.version == 3 and m.description == "round trip"
    assert m.buffers[0] is None  # the empty sentinel
    assert m.metadata == {"min_runtime_version": b"2.3.0", "note": bytes(range(40))}
    assert [(s.signature_key, s.subgraph_index, s.inputs, s.outputs) for s in m.signature_defs] \
        == [("serving_default", 0, {"input": 0}, {"output": 9}), ("cond", 1, {"a": 0}, {"lt": 2})]
    sub, cond = m.subgraphs
    assert (sub.index, cond.index, cond.name) == (0, 1, "cond")
    assert sub.inputs == (0,) and sub.outputs == (9,)
    names = [t.name for t in sub.tensors]
    assert names == ["x", "w", "bias", "y", "g", "perm", "t", "sq", "state", "out", "half"]
    x, w, bias = sub.tensors[:3]
    assert x.shape == (1, 4, 4, 2) and x.shape_signature == (-1, 4, 4, 2) and x.data is None
    assert x.dtype == np.float32 and x.type == TensorType.FLOAT32 and x.quantization is None
    assert w.dtype == np.int8 and w.data.shape == (3, 1, 1, 2) and not w.data.flags.writeable
    assert w.quantization.scale.tolist() == pytest.approx([0.1, 0.2, 0.3])
    assert w.quantization.zero_point.tolist() == [0, 0, 0]
    assert bias.data.tolist() == [1.0, 2.0, 3.0]
    assert sub.tensors[8].is_variable and not x.is_variable
    half = sub.tensors[10]
    assert half.dtype == np.float16 and half.quantization.min.tolist() == [-1.0]
    assert len(half.quantization.scale) == 0

    ops = sub.operators
    assert [op.builtin_code for op in ops] == [BuiltinOp.CONV_2D, BuiltinOp.GELU,
                                               BuiltinOp.TRANSPOSE, BuiltinOp.SQUEEZE,
                                               BuiltinOp.CUSTOM]
    assert ops[0].options == {"padding": 1, "stride_w": 1, "stride_h": 1,
                              "fused_activation_function": 3, "dilation_w_factor": 2,
                              "dilation_h_factor": 1, "quantized_bias_type": 0}
    assert ops[0].options_type == BuiltinOptionsType.Conv2DOptions
    assert ops[1].options == {"approximate": True} and ops[1].builtin_code == 150
    assert ops[2].options == {} and ops[2].options_type == BuiltinOptionsType.TransposeOptions
    assert ops[3].options == {"squeeze_dims": (0,)}
    assert ops[4].custom_code == "MyOp" and ops[4].custom_options == b"\x00flex"
    assert ops[4].version == 3 and ops[4].inputs == (7, 8, -1)
    assert [oc.builtin_code for oc in m.operator_codes] == [3, 150, 39, 43, 32, 58]
    assert cond.tensors[1].data.shape == () and int(cond.tensors[1].data) == 5


def test_buffer_data_is_16_byte_aligned():
    for outside in (False, True):
        data, _ = feature_model(outside)
        base = np.frombuffer(data, np.uint8).__array_interface__["data"][0]
        m = read_model(data)
        for t in m.subgraphs[0].tensors:
            if t.data is not None:
                assert (t.data.__array_interface__["data"][0] - base) % 16 == 0, t.name


def test_opcode_fields_as_written():
    g = pytest.importorskip("ai_edge_litert.schema_py_generated")
    data, _ = feature_model()
    gm = g.Model.GetRootAs(data, 0)
    codes = [(gm.OperatorCodes(k).DeprecatedBuiltinCode(), gm.OperatorCodes(k).BuiltinCode())
             for k in range(gm.OperatorCodesLength())]
    # deprecated_builtin_code is min(code, 127): GELU (150) carries the placeholder 127.
    assert codes == [(3, 3), (127, 150), (39, 39), (43, 43), (32, 32), (58, 58)]
    assert gm.Buffers(0).DataLength() == 0


def test_buffers_outside_layout():
    data, _ = feature_model(buffers_outside=True)
    m = read_model(data)
    inline, _ = feature_model(buffers_outside=False)
    m2 = read_model(inline)
    for a, b in zip(m.subgraphs[0].tensors, m2.subgraphs[0].tensors):
        assert (a.data is None) == (b.data is None)
        if a.data is not None:
            np.testing.assert_array_equal(a.data, b.data)
    g = pytest.importorskip("ai_edge_litert.schema_py_generated")
    gm = g.Model.GetRootAs(data, 0)
    for k in range(1, gm.BuffersLength()):
        buf = gm.Buffers(k)
        assert buf.DataLength() == 0 and buf.Offset() > 1 and buf.Size() > 0
        assert buf.Offset() + buf.Size() <= len(data)


def test_writer_rejects_mistakes():
    b = ModelBuilder()
    x = b.add_tensor("x", [2], np.float32)
    with pytest.raises(TypeError, match="strides"):
        b.add_operator(BuiltinOp.CONV_2D, [x], [x], options={"strides": 2})
    with pytest.raises(TypeError, match="takes no builtin options"):
        b.add_operator(BuiltinOp.RELU, [x], [x], options={"alpha": 1.0})
    with pytest.raises(TypeError, match="dtype"):
        b.add_tensor("s", [1], np.dtype("U4"))
    with pytest.raises(ValueError, match="elements"):
        b.add_tensor("d", [2, 2], np.float32, data=np.zeros(3, np.float32))
    with pytest.raises(TypeError, match="raw bytes"):
        b.add_tensor("q", [4], TensorType.INT4, data=np.zeros(4))
    # raw bytes go in verbatim (how tests build packed or hostile tensors)
    q = b.add_tensor("q", [4], TensorType.INT4, data=b"\x12\x34")
    b.set_inputs([x])
    b.set_outputs([x])
    t = read_model(b.build()).subgraphs[0].tensors[q]
    assert t.dtype is None and t.data.tobytes() == b"\x12\x34"


def test_every_options_table_round_trips():
    """Each op with an options table: write non-default values, read them back."""
    for op, type_id in OPTIONS_FOR_OP.items():
        table = OPTIONS[type_id]
        values = {}
        for f in table.fields:
            if f.kind == "bool":
                values[f.name] = not f.default
            elif f.kind == "float32":
                values[f.name] = 0.5
            elif f.kind == "int32[]":
                values[f.name] = (1, 2, 3)
            elif f.kind == "float32[]":
                values[f.name] = (0.5, 1.5)
            elif f.kind == "string":
                values[f.name] = "v"
            elif f.check == "subgraph":
                values[f.name] = 0
            else:
                values[f.name] = 1
        b = ModelBuilder()
        x = b.add_tensor("x", [2], np.float32)
        y = b.add_tensor("y", [2], np.float32)
        b.add_operator(op, [x], [y], options=values)
        b.set_inputs([x])
        b.set_outputs([y])
        got = read_model(b.build()).subgraphs[0].operators[0]
        assert got.options_type == type_id, op
        assert got.options == {f.name: values[f.name] for f in table.fields}, op.name


def test_sparse_tensor_round_trip_and_litert_densify():
    dense = np.array([[1, 0, 0, 2], [0, 0, 0, 0], [0, 3, 4, 0], [5, 0, 0, 0]], np.float32)
    rows, cols = np.nonzero(dense)
    segments = np.concatenate([[0], np.cumsum(np.count_nonzero(dense, axis=1))]).astype(np.int32)
    sparsity = {"traversal_order": [0, 1], "block_map": [],
                "dim_metadata": [{"format": 0, "dense_size": 4},
                                 {"format": 1, "array_segments": segments,
                                  "array_indices": cols.astype(np.uint8)}]}
    b = ModelBuilder()
    s = b.add_tensor("sparse", [4, 4], np.float32, data=dense[rows, cols], sparsity=sparsity)
    d = b.add_tensor("dense", [4, 4], np.float32)
    b.add_operator(BuiltinOp.DENSIFY, [s], [d])
    x = b.add_tensor("x", [4, 4], np.float32)
    y = b.add_tensor("y", [4, 4], np.float32)
    b.add_operator(BuiltinOp.ADD, [x, d], [y])
    b.set_inputs([x])
    b.set_outputs([y])
    model = b.build()
    t = read_model(model).subgraphs[0].tensors[s]
    assert t.data.tolist() == [1, 2, 3, 4, 5]
    assert t.sparsity.traversal_order == (0, 1) and t.sparsity.block_map == ()
    dim0, dim1 = t.sparsity.dim_metadata
    assert (dim0.format, dim0.dense_size, dim0.array_segments) == (0, 4, None)
    assert dim1.format == 1 and dim1.array_indices.dtype == np.uint8
    assert dim1.array_segments.tolist() == segments.tolist()
    feed = np.arange(16, dtype=np.float32).reshape(4, 4)
    np.testing.assert_array_equal(run_litert(model, {x: feed})[y], feed + dense)


# --- LiteRT runs what the writer makes -------------------------------------------------------

def test_litert_runs_add_with_fused_relu():
    rng = np.random.default_rng(1)
    b = ModelBuilder()
    x = b.add_tensor("x", [2, 3, 4], np.float32)
    c = b.add_tensor("c", [4], np.float32, data=np.array([0.5, -0.5, 1.0, -2.0], np.float32))
    y = b.add_tensor("y", [2, 3, 4], np.float32)
    b.add_operator(BuiltinOp.ADD, [x, c], [y], options={"fused_activation_function": 1})
    b.set_inputs([x])
    b.set_outputs([y])
    feed = rng.standard_normal((2, 3, 4)).astype(np.float32)
    for outside in (False, True):
        got = run_litert(b.build(buffers_outside=outside), {x: feed})[y]
        np.testing.assert_allclose(got, np.maximum(feed + c_value(b, c), 0), rtol=1e-6)


def c_value(builder, index):
    return read_model(builder.build()).subgraphs[0].tensors[index].data


def conv2d_reference(x, w, bias, stride, dilation, padding, act):
    """NHWC input, OHWI filter; TFLite's SAME/VALID arithmetic."""
    n, h, wd, cin = x.shape
    cout, kh, kw, _ = w.shape
    (sh, sw), (dh, dw) = stride, dilation
    ekh, ekw = (kh - 1) * dh + 1, (kw - 1) * dw + 1
    if padding == Padding.SAME:
        oh, ow = -(-h // sh), -(-wd // sw)
        ph = max((oh - 1) * sh + ekh - h, 0) // 2
        pw = max((ow - 1) * sw + ekw - wd, 0) // 2
    else:
        oh, ow = (h - ekh) // sh + 1, (wd - ekw) // sw + 1
        ph = pw = 0
    xp = np.zeros((n, h + 2 * ekh, wd + 2 * ekw, cin), np.float64)
    xp[:, ph:ph + h, pw:pw + wd] = x
    out = np.zeros((n, oh, ow, cout), np.float64)
    for i in range(kh):
        for j in range(kw):
            patch = xp[:, i * dh: i * dh + (oh - 1) * sh + 1: sh,
                       j * dw: j * dw + (ow - 1) * sw + 1: sw]
            out += np.einsum("nhwc,oc->nhwo", patch, w[:, i, j, :])
    out += bias
    if act == Activation.RELU:
        out = np.maximum(out, 0)
    elif act == Activation.RELU6:
        out = np.clip(out, 0, 6)
    return out.astype(np.float32)


@pytest.mark.parametrize("padding,stride,dilation,act", [
    (Padding.SAME, (1, 1), (1, 1), Activation.NONE),
    (Padding.SAME, (2, 2), (1, 1), Activation.RELU),
    (Padding.VALID, (1, 2), (1, 1), Activation.RELU6),
    (Padding.VALID, (1, 1), (2, 2), Activation.NONE),
    (Padding.SAME, (1, 1), (2, 1), Activation.RELU),
])
def test_litert_runs_conv2d_with_options(padding, stride, dilation, act):
    rng = np.random.default_rng(7)
    x_val = rng.standard_normal((1, 9, 8, 3)).astype(np.float32)
    w_val = rng.standard_normal((5, 3, 3, 3)).astype(np.float32)
    b_val = rng.standard_normal(5).astype(np.float32)
    expected = conv2d_reference(x_val, w_val, b_val, stride, dilation, padding, act)
    b = ModelBuilder()
    x = b.add_tensor("x", x_val.shape, np.float32)
    w = b.add_tensor("w", w_val.shape, np.float32, data=w_val)
    bias = b.add_tensor("b", b_val.shape, np.float32, data=b_val)
    y = b.add_tensor("y", expected.shape, np.float32)
    b.add_operator(BuiltinOp.CONV_2D, [x, w, bias], [y], options={
        "padding": padding, "stride_h": stride[0], "stride_w": stride[1],
        "dilation_h_factor": dilation[0], "dilation_w_factor": dilation[1],
        "fused_activation_function": act})
    b.set_inputs([x])
    b.set_outputs([y])
    got = run_litert(b.build(), {x: x_val})[y]
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4)


def test_litert_runs_signature_of_writer_model():
    b = ModelBuilder()
    x = b.add_tensor("x", [3], np.float32)
    y = b.add_tensor("y", [3], np.float32)
    b.add_operator(BuiltinOp.MUL, [x, x], [y])
    b.set_inputs([x])
    b.set_outputs([y])
    b.add_signature("square", {"inp": x}, {"outp": y})
    it = litert_interpreter(model_content=b.build())
    runner = it.get_signature_runner("square")
    out = runner(inp=np.array([1, 2, 3], np.float32))
    np.testing.assert_array_equal(out["outp"], [1, 4, 9])
