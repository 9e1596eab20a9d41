"""edgeq.Interpreter behaves like ai_edge_litert's Interpreter: same calls, same details, same
errors for misuse, plus the GIL released during invoke so threads run side by side."""
from __future__ import annotations

import threading

import numpy as np
import pytest

import edgeq
from edgeq.tflite.schema import BuiltinOp
from edgeq.tflite.writer import ModelBuilder
from harness import litert_interpreter


def add_model(shape=(2, 3), signature=None, relu=False) -> bytes:
    """out = in0 + in1 (+ RELU), with a signature 'serving_default'."""
    b = ModelBuilder()
    x = b.add_tensor("x", shape, np.float32, shape_signature=signature)
    y = b.add_tensor("y", shape, np.float32, shape_signature=signature)
    out = b.add_tensor("sum", shape, np.float32, shape_signature=signature)
    b.add_operator(BuiltinOp.ADD, [x, y], [out],
                   options={"fused_activation_function": 1 if relu else 0})
    b.set_inputs([x, y])
    b.set_outputs([out])
    b.add_signature("serving_default", {"x": x, "y": y}, {"sum": out})
    return b.build()


def test_details_have_litert_keys_and_values():
    model = add_model()
    ours, ref = edgeq.Interpreter(model_content=model), litert_interpreter(model_content=model)
    for mine, theirs in zip(ours.get_input_details() + ours.get_output_details(),
                            ref.get_input_details() + ref.get_output_details()):
        assert set(mine) == set(theirs)
        assert mine["name"] == theirs["name"] and mine["index"] == theirs["index"]
        assert mine["dtype"] == theirs["dtype"]
        np.testing.assert_array_equal(mine["shape"], theirs["shape"])
    assert ours.get_signature_list() == ref.get_signature_list()
    assert len(ours.get_tensor_details()) == len(ref.get_tensor_details())


def test_invoke_before_allocate_is_an_error():
    it = edgeq.Interpreter(model_content=add_model())
    with pytest.raises(RuntimeError, match="allocate_tensors"):
        it.invoke()


def test_set_tensor_checks_dtype_and_shape():
    it = edgeq.Interpreter(model_content=add_model())
    it.allocate_tensors()
    index = it.get_input_details()[0]["index"]
    with pytest.raises(ValueError, match="type"):
        it.set_tensor(index, np.zeros((2, 3), np.int32))
    with pytest.raises(ValueError, match="dimension mismatch"):
        it.set_tensor(index, np.zeros((3, 2), np.float32))
    with pytest.raises(ValueError, match="out of range"):
        it.set_tensor(99, np.zeros((2, 3), np.float32))


def test_get_tensor_copies_and_tensor_is_a_view():
    it = edgeq.Interpreter(model_content=add_model(relu=True))
    it.allocate_tensors()
    xi, yi = (d["index"] for d in it.get_input_details())
    oi = it.get_output_details()[0]["index"]
    it.tensor(xi)()[...] = np.arange(6, dtype=np.float32).reshape(2, 3) - 3
    it.set_tensor(yi, np.ones((2, 3), np.float32))
    it.invoke()
    out = it.get_tensor(oi)
    np.testing.assert_array_equal(out, np.maximum(np.arange(6).reshape(2, 3) - 2, 0))
    out[...] = 42  # a copy: the interpreter's memory is untouched
    assert it.get_tensor(oi)[0, 0] == 0
    view = it.tensor(oi)()
    assert np.shares_memory(view, it.tensor(oi)())


def test_resize_unknown_dims_and_strict():
    it = edgeq.Interpreter(model_content=add_model((1, 3), signature=(-1, 3)))
    xi, yi = (d["index"] for d in it.get_input_details())
    it.resize_tensor_input(xi, [4, 3], strict=True)
    it.resize_tensor_input(yi, [4, 3])
    it.allocate_tensors()
    assert list(it.get_output_details()[0]["shape"]) == [4, 3]
    it.set_tensor(xi, np.full((4, 3), 2, np.float32))
    it.set_tensor(yi, np.full((4, 3), 3, np.float32))
    it.invoke()
    np.testing.assert_array_equal(it.get_tensor(it.get_output_details()[0]["index"]), 5)
    with pytest.raises(ValueError, match="strict"):
        it.resize_tensor_input(xi, [4, 5], strict=True)


def test_signature_runner():
    it = edgeq.Interpreter(model_content=add_model())
    runner = it.get_signature_runner("serving_default")
    x = np.ones((2, 3), np.float32)
    out = runner(x=x, y=2 * x)
    assert set(out) == {"sum"}
    np.testing.assert_array_equal(out["sum"], 3 * x)
    with pytest.raises(ValueError, match="unknown"):
        runner(x=x, y=x, z=x)
    with pytest.raises(ValueError, match="signature"):
        it.get_signature_runner("nope")


def test_delegates_are_ignored_with_a_warning():
    with pytest.warns(RuntimeWarning, match="delegates"):
        edgeq.Interpreter(model_content=add_model(), experimental_delegates=[object()])


def test_bad_num_threads():
    with pytest.raises(ValueError, match="num_threads"):
        edgeq.Interpreter(model_content=add_model(), num_threads=0)


def test_two_interpreters_on_two_threads_agree():
    shape = (64, 1024)
    model = add_model(shape)
    rng = np.random.default_rng(3)
    feeds = [rng.standard_normal(shape).astype(np.float32) for _ in range(2)]
    expected = feeds[0] + feeds[1]
    results, errors = {}, []

    def work(k):
        try:
            it = edgeq.Interpreter(model_content=model)
            it.allocate_tensors()
            for _ in range(50):
                for d, x in zip(it.get_input_details(), feeds):
                    it.set_tensor(d["index"], x)
                it.invoke()
            results[k] = it.get_tensor(it.get_output_details()[0]["index"])
        except Exception as e:  # surfaced below
            errors.append(e)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    for k in range(2):
        np.testing.assert_array_equal(results[k], expected)


def test_model_path_and_content_are_exclusive(tmp_path):
    p = tmp_path / "m.tflite"
    p.write_bytes(add_model())
    with pytest.raises(ValueError):
        edgeq.Interpreter(model_path=str(p), model_content=p.read_bytes())
    it = edgeq.Interpreter(model_path=p)
    it.allocate_tensors()


def test_corrupt_model_raises_model_error():
    data = bytearray(add_model())
    data[4:8] = b"XXXX"
    with pytest.raises(edgeq.ModelError):
        edgeq.Interpreter(model_content=bytes(data))


def test_reallocating_after_resizes_does_not_grow_and_stays_right():
    """Each allocate packs weights anew; the previous plan's packed constants must not pile up."""
    from edgeq.tflite.schema import BuiltinOp
    from edgeq.tflite.writer import ModelBuilder

    rng = np.random.default_rng(3)
    w = rng.standard_normal((8, 3, 3, 4)).astype(np.float32)
    b = ModelBuilder()
    x = b.add_tensor("x", [1, 6, 6, 4], np.float32, shape_signature=[1, -1, -1, 4])
    wt = b.add_tensor("w", w.shape, np.float32, data=w)
    y = b.add_tensor("y", [1, 6, 6, 8], np.float32)
    b.add_operator(BuiltinOp.CONV_2D, [x, wt], [y], options={"padding": 0, "stride_w": 1,
                                                            "stride_h": 1})
    b.set_inputs([x])
    b.set_outputs([y])
    it = edgeq.Interpreter(model_content=b.build(), num_threads=1)
    graph = it._main.graph
    sizes = []
    for side in (6, 9, 6, 9, 12):
        it.resize_tensor_input(0, (1, side, side, 4))
        it.allocate_tensors()
        sizes.append(len(graph.tensors))
        inp = rng.standard_normal((1, side, side, 4)).astype(np.float32)
        it.set_tensor(0, inp)
        it.invoke()
        padded = np.pad(inp[0], ((1, 1), (1, 1), (0, 0)))
        want = np.einsum("hwc,ohwc->o", np.lib.stride_tricks.sliding_window_view(
            padded, (3, 3), axis=(0, 1))[0, 0].transpose(1, 2, 0), w)
        np.testing.assert_allclose(it.get_tensor(y)[0, 0, 0], want, rtol=1e-4, atol=1e-4)
    assert len(set(sizes)) == 1, sizes
