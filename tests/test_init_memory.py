"""Where init's memory comes from: packed constants carved from a few large page blocks
(edgeq.runtime.ConstantMemory over kernels/core/arena.c's eq_pages_alloc) and the arena in
page blocks too.

The carved arrays must hold exactly what the plain heap arrays held (bitwise, on edge sizes
and real models), never overlap, and go back to the system with the plan that uses them.
"""
from __future__ import annotations

import gc
import sys
from pathlib import Path

import numpy as np
import pytest

import edgeq
from edgeq.ops import qd8
from edgeq.ops.common import F32_GEMM_NR, pack_f32_gemm_weights
from edgeq.runtime import ConstantMemory, page_array
from edgeq.runtime.executor import HUGE_PAGE, PageBlock, data_address, pages_live

MODELS = Path(__file__).resolve().parents[2] / "shared" / "models"
DEMO = Path(edgeq.__file__).resolve().parent / "data" / "demo_shapes.tflite"


def _block_of(arr):
    """The PageBlock an array was carved from, or None (a heap array)."""
    while arr is not None and not isinstance(arr, PageBlock):
        arr = getattr(arr, "base", None)
    return arr


# --- the carving itself ------------------------------------------------------------------------

def test_carved_arrays_are_aligned_disjoint_and_keep_their_bytes():
    mem = ConstantMemory()
    sizes = [1, 3, 64, 65, 4096, ConstantMemory.FIRST - 64, ConstantMemory.FIRST,
             ConstantMemory.FIRST + 1, 5, 3 << 20, 7, 17 << 20, 100]
    arrays = []
    for i, n in enumerate(sizes):
        a = mem.empty((n,), np.uint8)
        assert a.shape == (n,) and a.flags.c_contiguous and a.flags.writeable
        assert data_address(a) % ConstantMemory.ALIGN == 0
        assert _block_of(a) is not None
        a[...] = i + 1
        arrays.append(a)
    spans = sorted((data_address(a), data_address(a) + a.nbytes) for a in arrays)
    assert all(end <= start for (_, end), (start, _) in zip(spans, spans[1:]))
    for i, a in enumerate(arrays):  # nothing carved later wrote into an earlier one
        assert (a == i + 1).all()
    # Few blocks for many constants: the small ones share.
    assert len({id(_block_of(a)) for a in arrays}) < len(arrays) // 2


def test_carved_arrays_take_any_shape_and_dtype():
    mem = ConstantMemory()
    a = mem.empty((3, 5, 16), np.float32)
    b = mem.empty((2, 3), np.float16)
    c = mem.empty((0, 4), np.float32)
    d = mem.empty((), np.int32)
    assert (a.shape, a.dtype, b.shape, b.dtype) == ((3, 5, 16), np.float32, (2, 3), np.float16)
    assert c.shape == (0, 4) and d.shape == ()
    a[...] = np.arange(a.size, dtype=np.float32).reshape(a.shape)
    b[...] = 1.5
    assert a.ravel()[-1] == a.size - 1 and (b == 1.5).all()


def test_page_blocks_are_zeroed_and_given_back():
    live = pages_live()
    z = page_array(HUGE_PAGE + 12345, np.uint8)
    assert z.dtype == np.uint8 and z.size == HUGE_PAGE + 12345 and not z.any()
    if sys.platform.startswith("linux"):  # mmap'd, huge-page aligned from HUGE_PAGE up
        assert data_address(z) % HUGE_PAGE == 0
    assert pages_live() >= live + z.size
    view = z[100:200]
    del z
    gc.collect()
    assert pages_live() > live  # the slice still holds the block
    del view
    gc.collect()
    assert pages_live() == live
    small = page_array(100, np.uint8)
    assert small.size == 100 and not small.any()
    f = page_array((3, HUGE_PAGE // 4), np.float32, zeroed=False)
    assert f.shape == (3, HUGE_PAGE // 4) and f.dtype == np.float32 and f.flags.writeable
    assert _block_of(f) is not None


def test_a_page_block_refuses_what_it_cannot_map():
    with pytest.raises((MemoryError, OverflowError)):
        PageBlock(1 << 62)


# --- packing into carved memory equals packing into the heap -----------------------------------

@pytest.mark.parametrize("n", [1, F32_GEMM_NR - 1, F32_GEMM_NR, F32_GEMM_NR + 1, 100])
@pytest.mark.parametrize("k", [0, 1, 3, 27, 1000])
def test_f32_packing_into_constant_memory_is_bitwise_the_heap_packing(n, k):
    rng = np.random.default_rng(n * 7 + k)
    w = rng.standard_normal((n, k)).astype(np.float32)
    if w.size >= 3:  # raw words move: NaN payloads, signed zeros, infinities as they are
        w.ravel()[:3] = [np.nan, -0.0, np.inf]
    bias = rng.standard_normal(n).astype(np.float32)
    mem = ConstantMemory()
    mem.empty((13,), np.uint8)  # not at the start of a block
    for b in (None, bias):
        got = pack_f32_gemm_weights(w, b, mem.empty)
        want = pack_f32_gemm_weights(w, b)
        assert _block_of(got) is not None and _block_of(want) is None
        assert got.shape == want.shape and got.tobytes() == want.tobytes()


@pytest.mark.parametrize("n,k", [(1, 1), (qd8.NR - 1, 7), (qd8.NR + 1, 33), (70, 300)])
@pytest.mark.parametrize("kr", [4, 8])
def test_qd8_packing_into_constant_memory_is_bitwise_the_heap_packing(n, k, kr):
    rng = np.random.default_rng(n + k * 3 + kr)
    w = rng.integers(-128, 128, (n, k), dtype=np.int8)
    scales = rng.random(n).astype(np.float32)
    bias = rng.standard_normal(n).astype(np.float32)
    mem = ConstantMemory()
    mem.empty((5,), np.uint8)
    got = qd8.pack_gemm_weights(w, scales, bias, kr, mem.empty)
    want = qd8.pack_gemm_weights(w, scales, bias, kr)
    assert _block_of(got) is not None
    assert got.tobytes() == want.tobytes()


def _real_models():
    names = ["mobilenet_v3_small.fp32", "mobilenet_v3_small.qd8", "mobilenet_v3_small.fp16",
             "tiny_bert.fp32", "palm_detection_lite"]
    return [pytest.param(MODELS / f"{n}.tflite", id=n) for n in names]


def _inputs(interp):
    rng = np.random.default_rng(0)
    feeds = []
    for d in interp.get_input_details():
        if np.issubdtype(d["dtype"], np.integer):
            feeds.append(rng.integers(0, 100, d["shape"]).astype(d["dtype"]))
        else:
            feeds.append(rng.standard_normal(d["shape"]).astype(d["dtype"]))
    return feeds


def _build(path, **kw):
    return _allocate(edgeq.Interpreter(model_path=str(path), num_threads=1, **kw))


def _allocate(interp):
    """Open dims as compare_init.py takes them (batch 1, spatial 224), then allocate."""
    for d in interp.get_input_details():
        sig = [int(v) for v in d["shape_signature"]]
        if any(v < 0 for v in sig):
            interp.resize_tensor_input(d["index"], [1 if i == 0 else 224 if v < 0 else v
                                                    for i, v in enumerate(sig)])
    interp.allocate_tensors()
    return interp


def _run(interp):
    for d, x in zip(interp.get_input_details(), _inputs(interp)):
        interp.set_tensor(d["index"], x)
    interp.invoke()
    return [interp.get_tensor(d["index"]) for d in interp.get_output_details()]


@pytest.mark.parametrize("path", _real_models())
@pytest.mark.parametrize("quantize", [None, "qd8"])
def test_real_models_pack_the_same_bytes_into_constant_memory(path, quantize, monkeypatch):
    if not path.exists():
        pytest.skip(f"{path} is absent (shared models are not in this checkout)")
    carved = _build(path, quantize=quantize)
    graph = carved._main.graph
    made = graph.tensors[graph.model_tensors:]
    assert any(_block_of(t.data) is not None for t in made), "no constant was carved"
    out = _run(carved)
    monkeypatch.setattr(ConstantMemory, "empty", lambda self, shape, dtype: np.empty(shape,
                                                                                     dtype))
    heap = _build(path, quantize=quantize)
    heap_graph = heap._main.graph
    theirs = heap_graph.tensors[heap_graph.model_tensors:]
    assert not any(_block_of(t.data) is not None for t in theirs)
    assert [t.name for t in made] == [t.name for t in theirs]
    for a, b in zip(made, theirs):
        assert a.data.dtype == b.data.dtype and a.data.shape == b.data.shape, a.name
        assert a.data.tobytes() == b.data.tobytes(), a.name
    for a, b in zip(out, _run(heap)):
        assert a.tobytes() == b.tobytes()


# --- the plan gives its memory back ------------------------------------------------------------

def _cycle_model():
    big = MODELS / "mobilenet_v3_small.fp32.tflite"
    return big if big.exists() else DEMO


def test_plans_give_their_pages_back_over_many_cycles():
    path = _cycle_model()
    gc.collect()
    live = pages_live()
    held = []
    for _ in range(12):
        interp = _build(path)
        _run(interp)
        held.append(pages_live() - live)
        assert held[-1] > 0  # the plan's constants (and arena) are in page blocks
        del interp
        gc.collect()
        assert pages_live() == live
    assert len(set(held)) == 1  # the same footprint every time


def test_resizing_gives_the_old_plans_pages_back():
    path = MODELS / "mobilenet_v3_small.fp32.tflite"
    if not path.exists():
        pytest.skip(f"{path} is absent (shared models are not in this checkout)")
    gc.collect()
    live = pages_live()
    interp = _build(path)
    first = pages_live() - live
    name = interp.get_input_details()[0]["index"]
    for side in (160, 192, 224, 160):
        interp.resize_tensor_input(name, [1, side, side, 3])
        interp.allocate_tensors()
        _run(interp)
        gc.collect()
        assert pages_live() - live <= 2 * first  # one plan's worth (plus the new arena size)
    del interp
    gc.collect()
    assert pages_live() == live


# --- the model given as bytes ------------------------------------------------------------------

@pytest.mark.parametrize("kind", [bytes, bytearray, memoryview])
def test_a_model_given_as_bytes_runs_as_from_its_file(kind):
    path = _cycle_model()
    from_file = _run(_build(path))
    content = kind(path.read_bytes())
    interp = _allocate(edgeq.Interpreter(model_content=content, num_threads=1))
    for a, b in zip(from_file, _run(interp)):
        assert a.tobytes() == b.tobytes()
    if isinstance(content, bytearray):  # the weights stay read-only views of the caller's bytes
        graph = interp._main.graph
        views = [t.data for t in graph.tensors[:graph.model_tensors] if t.data is not None]
        assert views and not any(v.flags.writeable for v in views)
