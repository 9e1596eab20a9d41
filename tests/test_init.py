"""The load / allocate path made faster: the compiled flatbuffer accessor, one-pass weight packing,
and prepare dropping the constants it computed once nothing reads them.

Each fast path is checked against a plain definition, and the verifier against the errors it
must still give.
"""
from __future__ import annotations

import struct

import numpy as np
import pytest

import edgeq
from edgeq.errors import ModelError
from edgeq.ops import qd8
from edgeq.ops.common import F32_GEMM_NR, pack_f32_gemm_weights
from edgeq.tflite.flatbuffer import F32, I8, I16, I32, I64, U8, U16, U32, U64, Buf
from edgeq.tflite.reader import read_model
from edgeq.tflite.schema import BuiltinOp
from edgeq.tflite.writer import ModelBuilder


# --- weight packing against its definition -------------------------------------------------

def _f32_packed_by_definition(weights, bias):
    """[ceil(N/NR), K + 1, NR]: per block of NR output channels the biases, then K rows of
    weights; zeros past N."""
    n, k = weights.shape
    blocks = -(-n // F32_GEMM_NR)
    out = np.zeros((blocks, k + 1, F32_GEMM_NR), np.float32)
    for c in range(n):
        b, j = divmod(c, F32_GEMM_NR)
        out[b, 0, j] = 0 if bias is None else bias[c]
        out[b, 1:, j] = weights[c]
    return out


@pytest.mark.parametrize("n", [1, 5, F32_GEMM_NR - 1, F32_GEMM_NR, F32_GEMM_NR + 1,
                               3 * F32_GEMM_NR, 100])
@pytest.mark.parametrize("k", [0, 1, 3, 27])
def test_f32_gemm_packing_matches_its_definition(n, k):
    rng = np.random.default_rng(n * 31 + k)
    w = rng.standard_normal((n, k)).astype(np.float32)
    for bias in (None, rng.standard_normal(n).astype(np.float32), rng.standard_normal(n)):
        got = pack_f32_gemm_weights(w, bias)
        assert got.dtype == np.float32 and got.flags.c_contiguous
        np.testing.assert_array_equal(got, _f32_packed_by_definition(w, bias))


def _qd8_packed_by_definition(w, scales, bias, kr):
    """params/qd8.h per block of NR channels: int32 weight sums, kc/kr groups of NR x kr int8
    (zero padded), float32 scales, float32 biases."""
    n, k = w.shape
    nr = qd8.NR
    kc = -(-k // kr) * kr
    blocks = -(-n // nr)
    out = bytearray()
    for b in range(blocks):
        rows = [np.zeros(kc, np.int8) for _ in range(nr)]
        for j in range(nr):
            if b * nr + j < n:
                rows[j][:k] = w[b * nr + j]
        out += struct.pack(f"<{nr}i", *(int(r.astype(np.int64).sum()) for r in rows))
        for g in range(kc // kr):
            for j in range(nr):
                out += rows[j][g * kr:(g + 1) * kr].tobytes()
        for values in (scales, bias):
            out += struct.pack(f"<{nr}f", *(float(values[b * nr + j]) if b * nr + j < n else 0.0
                                            for j in range(nr)))
    return np.frombuffer(bytes(out), np.uint8)


def _qd8_weights(n, k, seed):
    """Random int8 weights [n, k], per-channel scales and biases: a QD8 GEMM's inputs."""
    rng = np.random.default_rng(seed)
    w = rng.integers(-127, 128, (n, k)).astype(np.int8)
    return w, rng.random(n).astype(np.float32), rng.standard_normal(n).astype(np.float32)


@pytest.mark.parametrize("n", [1, 7, qd8.NR, qd8.NR + 1, 40])
@pytest.mark.parametrize("k", [1, 3, 4, 8, 9, 67])
@pytest.mark.parametrize("kr", [4, 8])
def test_qd8_gemm_packing_matches_its_definition(n, k, kr):
    w, scales, bias = _qd8_weights(n, k, seed=n * 100 + k * 10 + kr)
    got = qd8.pack_gemm_weights(w, scales, bias, kr)
    assert got.dtype == np.uint8 and got.ndim == 1 and got.flags.c_contiguous
    np.testing.assert_array_equal(got, _qd8_packed_by_definition(w, scales, bias, kr))


def _f32_packed_by_numpy(weights, bias):
    """The numpy packing that kernels/core/pack.c replaced (one pass through a transposed view),
    kept as the byte-for-byte reference."""
    nr = F32_GEMM_NR
    n, k = weights.shape
    full, tail = divmod(n, nr)
    out = np.empty((full + (tail > 0), k + 1, nr), np.float32)
    by_channel = out.transpose(0, 2, 1)
    b = None if bias is None else np.asarray(bias, np.float32).reshape(-1)
    out[:full, 0, :] = 0 if b is None else b[:full * nr].reshape(full, nr)
    by_channel[:full, :, 1:] = weights[:full * nr].reshape(full, nr, k)
    if tail:
        out[full] = 0
        by_channel[full, :tail, 1:] = weights[full * nr:]
        if b is not None:
            out[full, 0, :tail] = b[full * nr:]
    return out


def _qd8_packed_by_numpy(w, scales, bias, kr):
    """The numpy QD8 packing that kernels/core/pack.c replaced, as the byte-for-byte reference."""
    nr = qd8.NR
    n, k = w.shape
    kc, blocks = -(-k // kr) * kr, -(-n // nr)
    wp = np.zeros((blocks * nr, kc), np.int8)
    wp[:n, :k] = w
    out = np.empty((blocks, 4 * nr + nr * kc + 8 * nr), np.uint8)
    out[:, :4 * nr].view("<i4")[...] = wp.sum(axis=1, dtype=np.int32).reshape(blocks, nr)
    group = np.dtype({4: np.uint32, 8: np.uint64}[kr])
    tiles = out[:, 4 * nr:4 * nr + nr * kc].view(group).reshape(blocks, kc // kr, nr)
    tiles[...] = wp.view(group).reshape(blocks, nr, kc // kr).transpose(0, 2, 1)
    tail = out[:, 4 * nr + nr * kc:].view("<f4").reshape(blocks, 2, nr)
    for part, values in enumerate((scales, bias)):
        padded = np.zeros(blocks * nr, np.float32)
        padded[:n] = values
        tail[:, part] = padded.reshape(blocks, nr)
    return out.reshape(-1)


@pytest.mark.parametrize("n", [1, 15, 16, 17, 33, 1280])
@pytest.mark.parametrize("k", [0, 1, 7, 8, 9, 24, 320])
def test_f32_gemm_packing_in_c_is_byte_identical_to_numpy(n, k):
    rng = np.random.default_rng(n * 7 + k)
    w = rng.standard_normal((n, k)).astype(np.float32)
    w[::3, ::2] = -0.0  # signed zeros and NaN payloads must move as bits
    if w.size:
        w.reshape(-1)[0] = np.frombuffer(struct.pack("<I", 0x7FC01234), np.float32)[0]
    strided = np.asfortranarray(w)  # a non-contiguous source (a transposed weight view)
    for bias in (None, rng.standard_normal(n).astype(np.float32), rng.standard_normal(n)):
        want = _f32_packed_by_numpy(w, bias).tobytes()
        assert pack_f32_gemm_weights(w, bias).tobytes() == want
        assert pack_f32_gemm_weights(strided, bias).tobytes() == want


@pytest.mark.parametrize("n", [1, 15, 16, 17, 100])
@pytest.mark.parametrize("k", [1, 3, 4, 5, 8, 13, 576])
@pytest.mark.parametrize("kr", [4, 8])
def test_qd8_gemm_packing_in_c_is_byte_identical_to_numpy(n, k, kr):
    w, scales, bias = _qd8_weights(n, k, seed=n * 1000 + k * 10 + kr)
    want = _qd8_packed_by_numpy(w, scales, bias, kr).tobytes()
    assert qd8.pack_gemm_weights(w, scales, bias, kr).tobytes() == want
    assert qd8.pack_gemm_weights(np.asfortranarray(w), scales, bias, kr).tobytes() == want
    # a per-tensor scale broadcasts over the channels, as the numpy code did
    assert qd8.pack_gemm_weights(w, scales[:1], bias, kr).tobytes() == \
        _qd8_packed_by_numpy(w, scales[:1], bias, kr).tobytes()


def test_packing_refuses_mismatched_sizes():
    from edgeq.runtime.executor import pack_f32_gemm, pack_qd8_gemm

    w = np.zeros(12, np.float32)
    with pytest.raises(ValueError, match="12 weights are not 3 x 5"):
        pack_f32_gemm(w, None, 3, 5, np.empty(16 * 6, np.float32))
    with pytest.raises(ValueError, match="2 biases for 3 channels"):
        pack_f32_gemm(w, np.zeros(2, np.float32), 3, 4, np.empty(16 * 5, np.float32))
    with pytest.raises(ValueError, match="out holds 10 floats"):
        pack_f32_gemm(w, None, 3, 4, np.empty(10, np.float32))
    q = np.zeros(12, np.int8)
    f = np.zeros(3, np.float32)
    with pytest.raises(ValueError, match="kr 5 is not 4 or 8"):
        pack_qd8_gemm(q, f, f, 3, 4, 5, np.empty(16 * 16, np.uint8))
    with pytest.raises(ValueError, match="out holds 7 bytes"):
        pack_qd8_gemm(q, f, f, 3, 4, 4, np.empty(7, np.uint8))


# --- the compiled accessor -----------------------------------------------------------------

def _table_bytes(fields: bytes, vtable_slots: list) -> bytes:
    """A buffer with one table at offset 8: root offset, pad, the table's vtable offset and
    its inline fields; the vtable follows."""
    table_size = 4 + len(fields)
    vtable = struct.pack("<HH", 4 + 2 * len(vtable_slots), table_size)
    vtable += b"".join(struct.pack("<H", s) for s in vtable_slots)
    table_at, vtable_at = 8, 8 + table_size
    return (struct.pack("<I", table_at) + b"\0" * 4 + struct.pack("<i", table_at - vtable_at)
            + fields + vtable)


def test_scalar_kinds_decode_little_endian():
    fields = (struct.pack("<B", 0xF0) + struct.pack("<b", -3) + struct.pack("<H", 0xBEEF)
              + struct.pack("<h", -2) + struct.pack("<I", 0xDEADBEEF) + struct.pack("<i", -7)
              + struct.pack("<Q", (1 << 64) - 2) + struct.pack("<q", -(1 << 40))
              + struct.pack("<f", 1.5))
    offsets, at = [], 4
    for width in (1, 1, 2, 2, 4, 4, 8, 8, 4):
        offsets.append(at)
        at += width
    buf = Buf(memoryview(_table_bytes(fields, offsets)))
    t = buf.table(buf.u32(0, "root"), "root")
    got = [t.scalar(slot, kind, None, "f") for slot, kind in
           enumerate((U8, I8, U16, I16, U32, I32, U64, I64, F32))]
    assert got == [0xF0, -3, 0xBEEF, -2, 0xDEADBEEF, -7, (1 << 64) - 2, -(1 << 40), 1.5]
    assert t.scalar(20, I32, 42, "absent") == 42  # beyond the vtable: the default


def test_field_past_its_table_is_refused():
    # slot 1 claims offset 2, which is inside the table's own vtable offset
    data = _table_bytes(struct.pack("<i", 5), [4, 2])
    buf = Buf(memoryview(data))
    t = buf.table(buf.u32(0, "root"), "the table")
    assert t.scalar(0, I32, 0, "ok") == 5
    with pytest.raises(ModelError, match=r"the table: field 'bad' at offset 2 lies outside"):
        t.scalar(1, I32, 0, "bad")
    with pytest.raises(ModelError, match=r"field 'wide' at offset 4 lies outside its 8-byte"):
        t.scalar(0, I64, 0, "wide")


def test_empty_and_truncated_buffers_give_clear_errors():
    with pytest.raises(ModelError, match="too small"):
        read_model(b"")
    with pytest.raises(ModelError, match="offset 0 lies outside the 2-byte file"):
        Buf(memoryview(b"\0\0")).u32(0, "root")


def _fp16_fc_model():
    """x [1, 32] -> FULLY_CONNECTED with fp16 weights behind DEQUANTIZE -> y [1, 24]: (bytes,
    tensor indices of x, the fp16 weights, the dequantized weights, y)."""
    rng = np.random.default_rng(3)
    b = ModelBuilder()
    x = b.add_tensor("x", [1, 32], np.float32)
    w16 = b.add_tensor("w16", [24, 32], np.float16,
                       data=rng.standard_normal((24, 32)).astype(np.float16))
    w = b.add_tensor("w", [24, 32], np.float32)
    y = b.add_tensor("y", [1, 24], np.float32)
    b.add_operator(BuiltinOp.DEQUANTIZE, [w16], [w])
    b.add_operator(BuiltinOp.FULLY_CONNECTED, [x, w, -1], [y])
    b.set_inputs([x])
    b.set_outputs([y])
    return b.build(), x, w16, w, y


def test_corrupted_model_still_names_the_field():
    data, *_ = _fp16_fc_model()
    model = read_model(data)
    assert len(model.subgraphs[0].operators) == 2
    with pytest.raises(ModelError, match="file identifier"):
        read_model(data[:4] + b"XXXX" + data[8:])
    # Every cut of the file is refused with a ModelError (never a crash or another error).
    for cut in range(0, len(data), 7):
        try:
            read_model(data[:cut])
        except ModelError:
            pass


# --- prepare drops the constants it computed -------------------------------------------------

def test_dequantized_weights_are_not_kept_after_packing():
    data, x, w16, w, y = _fp16_fc_model()
    interp = edgeq.Interpreter(model_content=data, num_threads=1)
    interp.allocate_tensors()
    session = interp._main
    assert session.infos[w].value is None  # dequantized, packed, then dropped
    assert session.infos[w16].value is not None  # the model's own bytes: a view, kept
    x_value = np.random.default_rng(0).standard_normal((1, 32)).astype(np.float32)
    interp.set_tensor(x, x_value)
    interp.invoke()
    weights = read_model(data).subgraphs[0].tensors[w16].data.astype(np.float32)
    np.testing.assert_allclose(interp.get_tensor(y), x_value @ weights.T, rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="not kept by edgeq's plan"):
        interp.get_tensor(w)
    np.testing.assert_array_equal(interp.get_tensor(w16), read_model(data).subgraphs[0]
                                  .tensors[w16].data)
    # A resize re-runs prepare from the model's bytes: the dropped value is made again.
    interp.allocate_tensors()
    interp.set_tensor(x, x_value)
    interp.invoke()
    np.testing.assert_allclose(interp.get_tensor(y), x_value @ weights.T, rtol=1e-5, atol=1e-5)


# --- DEQUANTIZE of fp16 weights runs the vectorized converter ----------------------------------

@pytest.mark.parametrize("allowed", [None, 0])
def test_f16_converter_matches_the_dequantize_reference_bit_for_bit(allowed):
    """fp16-weight models dequantize every weight at load with convert_f16_f32 (F16C / NEON);
    it must give exactly the reference DEQUANTIZE's bits for all 65536 fp16 values."""
    from edgeq.runtime import run_kernel

    x = np.arange(1 << 16, dtype=np.uint16).view(np.float16)
    want = np.empty(x.shape, np.float32)
    got = np.empty(x.shape, np.float32)
    run_kernel("dequantize_f16_f32", None, [x], [want], allowed=0)
    run_kernel("convert_f16_f32", None, [x], [got], allowed=allowed)
    np.testing.assert_array_equal(got.view(np.uint32), want.view(np.uint32))
    for n in (1, 7, 8, 15, 16, 17, 33):  # vector tails
        got = np.empty(n, np.float32)
        run_kernel("convert_f16_f32", None, [x[1000:1000 + n]], [got], allowed=allowed)
        np.testing.assert_array_equal(got.view(np.uint32), want[1000:1000 + n].view(np.uint32))


@pytest.mark.parametrize("fill", [127, -128, None])
def test_qd8_weight_sums_over_long_rows(fill):
    # kernels/core/pack.c sums eight bytes per word in 16-bit lanes, folded every 1024 bytes:
    # rows longer than that, at the extreme values, must still sum exactly.
    rng = np.random.default_rng(3)
    n, k = 17, 2 * 1024 + 13
    w = (np.full((n, k), fill, np.int8) if fill is not None
         else rng.integers(-128, 128, (n, k)).astype(np.int8))
    scales, bias = np.ones(n, np.float32), np.zeros(n, np.float32)
    got = qd8.pack_gemm_weights(w, scales, bias, 4)
    assert got.tobytes() == _qd8_packed_by_numpy(w, scales, bias, 4).tobytes()
    sums = got[:4 * qd8.NR].view("<i4")
    np.testing.assert_array_equal(sums, w[:qd8.NR].astype(np.int64).sum(axis=1))
