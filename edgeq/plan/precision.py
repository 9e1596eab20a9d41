"""precision="fp16": float activations stored as fp16 between ops (between prepare and plan).

Given the prepared nodes, the pass decides which float32 activations become fp16 storage and
rewrites the nodes around them; the arena planner then lays the arena out from the new dtypes
as usual. A node is fp16-capable when its kernel has an fp16 twin:

- QD8 kernels (fully_connected_qd8, conv2d_qd8, depthwise_conv2d_qd8 and the c8 forms) read
  fp16 and write fp16 themselves (kernels/include/edgeq/params/qd8.h), renamed `<name>_f16`;
- float32 kernels in F16_TWINS run through the `f16_twin` driver (kernels/include/edgeq/f16.h):
  their float32 kernel, chosen here for this CPU, runs slice by slice on float32 copies in
  scratch, and its output is rounded to fp16 once;
- ADD, SUB, MUL, PRELU, HARD_SWISH have kernels of their own on fp16 tensors (NATIVE_F16:
  F16C on x86, ARMv8.2 fp16 arithmetic on the ARM cores that have it, kernels/ref/f16.c);
- on ARMv8.2 FP16 cores, 1x1 convolutions, fully connected layers (F16_GEMMS) and depthwise
  convolutions (F16_DEPTHWISE) whose input and output are fp16 run fp16 kernels on fp16 copies
  of their packed weights / filter and bias (kernels/arm/f16-*__neonfp16.c), not twins;
- kernels that only move elements (RESHAPE's copy, TRANSPOSE, CONCATENATION, PAD, GATHER,
  slicing...) run on fp16 as they are, or under their 16-bit name (`_x32` -> `_x16`).

Every eligible tensor (float32, not constant, not a graph input/output, not a variable) that an
fp16-capable node reads or writes becomes fp16; movers follow their neighbours (a chain of
movers between two float32-only nodes stays float32). Where an fp16 tensor meets a node without a
twin, a convert_f16_f32 / convert_f32_f16 node is inserted. Graph inputs and outputs stay
float32 for the user: the twins read a float32 input and write a float32 output directly.
"""
from __future__ import annotations

import ctypes
from dataclasses import dataclass

import numpy as np

from edgeq.graph.prepare import PreparedNode
from edgeq.ops.registry import KernelCall, TensorInfo
from edgeq.runtime import cpu, find_kernel, kernel_address

PRECISIONS = ("fp32", "fp16", "auto")

F32 = np.dtype(np.float32)
F16 = np.dtype(np.float16)

# Mirrors of kernels/include/edgeq/f16.h.
KIND_CONV, KIND_POOL, KIND_ROWS, KIND_FLAT, KIND_BINARY, KIND_WHOLE = range(1, 7)
SLICE_BYTES = 128 * 1024  # float32 bytes of one slice, at most
MIN_SLICE_BYTES = 16 * 1024
INNER_PARAMS_MAX = 256
MAX_INPUTS = 8
QD8_MAX_F16_DW_CHANNELS = 2048  # EQ_QD8_MAX_F16_DW_CHANNELS
# Mirror of EQ_PARALLEL_MIN_WORK (kernels/include/edgeq/threadpool.h): a node with less work runs
# on the calling thread, so its twin needs one slot of scratch, not one per thread.
PARALLEL_MIN_WORK = 128 * 1024


class TwinParams(ctypes.Structure):
    """Mirror of eq_f16_twin_params."""

    _fields_ = [("inner", ctypes.c_uint64), ("inner_scratch", ctypes.c_int64),
                ("kind", ctypes.c_int32), ("slice", ctypes.c_int32),
                ("f16_inputs", ctypes.c_uint32), ("inner_params_size", ctypes.c_int32),
                ("slots", ctypes.c_int32), ("reserved", ctypes.c_int32),
                ("slot_bytes", ctypes.c_int64),
                ("inner_params", ctypes.c_uint8 * INNER_PARAMS_MAX)]


_UNARY = ("abs ceil cos elu exp floor gelu gelu_tanh hard_swish leaky_relu log logistic neg "
          "round rsqrt sin sqrt square tanh clamp clamp_by_compare").split()
_BINARY = "add sub mul div prelu squared_difference maximum minimum pow floor_div floor_mod".split()
_WHOLE = ("mean sum reduce_max reduce_min reduce_prod resize_bilinear resize_nearest batch_matmul "
          "concatenation transpose_conv2d").split()

# float32 kernel -> how its twin slices the work.
F16_TWINS = {
    "conv2d_f32_gemm": KIND_CONV, "conv2d_f32_igemm": KIND_CONV, "conv2d_f32": KIND_CONV,
    "depthwise_conv2d_f32_dw": KIND_CONV, "depthwise_conv2d_f32": KIND_CONV,
    "max_pool2d_f32": KIND_POOL, "avg_pool2d_f32": KIND_POOL, "l2_pool2d_f32": KIND_POOL,
    "fully_connected_f32_gemm": KIND_ROWS, "fully_connected_f32": KIND_ROWS,
    "softmax_f32": KIND_FLAT, "log_softmax_f32": KIND_FLAT,
    **{f"{op}_f32": KIND_FLAT for op in _UNARY},
    **{f"{op}_f32": KIND_BINARY for op in _BINARY},
    **{f"{op}_f32": KIND_WHOLE for op in _WHOLE},
}

# float32 kernels with a kernel of their own on fp16 tensors (kernels/ref/f16.c: one pass, no
# float32 copies; every operand fp16, so only where fp16 holds their constants exactly).
NATIVE_F16 = {f"{op}_f32": f"{op}_f16" for op in ("add", "sub", "mul", "prelu", "hard_swish")}

# Packed-weight float32 GEMMs with an fp16 GEMM of their own (edgeq/f16.h: fp16 input, output and
# packed weights, fp16 accumulation): used instead of the twin where the CPU has fp16
# arithmetic (the kernel found needs ISA bits: the portable one is the spec, slower than the
# twin), the node's input and output are fp16 and fp16 holds every packed weight and bias.
F16_GEMMS = {"conv2d_f32_gemm": "conv2d_f16_gemm",
             "fully_connected_f32_gemm": "fully_connected_f16_gemm"}
# The same for depthwise (multiplier 1, at most EQ_F16_DW_MAX_TAPS taps): fp16 filter and bias.
F16_DEPTHWISE = {"depthwise_conv2d_f32_dw": "depthwise_conv2d_f16_dw"}
F16_DW_MAX_TAPS = 64  # EQ_F16_DW_MAX_TAPS

QD8_KERNELS = ("fully_connected_qd8", "conv2d_qd8", "depthwise_conv2d_qd8",
               "fully_connected_qd8_c8", "conv2d_qd8_c8")

# Movers that learn the element size from the tensors (eq_dtype_size): fp16 as they are. Value:
# the inputs that carry elements (None = all); the others are indices, shapes, conditions.
MOVERS = {"copy_x": (0,), "concatenation_x": None, "pack_x": None, "split_x": None,
          "unpack_x": None, "pad_x": (0,), "padv2_x": (0,), "mirror_pad_x": (0,),
          "space_to_batch_nd_x": (0,), "batch_to_space_nd_x": (0,), "gather_x_i32": (0,),
          "gather_x_i64": (0,)}
# Movers named by element size: `_x32` -> `_x16`.
SIZED_MOVERS = {"transpose_x32": (0,), "slice_x32": (0,), "strided_slice_x32": (0,),
                "tile_x32": (0,), "broadcast_to_x32": (0,), "depth_to_space_x32": (0,),
                "space_to_depth_x32": (0,), "select_x32": (1, 2)}


# Why "auto" is fp32 on every CPU (edgeq info prints it). Guest instructions per invoke on
# cortex-a76 (benchmarks/README.md, "Precision fp16"): fp16 costs 0.93x fp32 on mobilenet_v2 but
# 1.02x on face_landmark (its 3x3 convolutions and pools still run as float32 twins), and 1.16x
# time on x86. fp16 is not cheaper on any CPU for every model, so auto does not pick it.
AUTO_WHY = ("fp16 is not cheaper than fp32 for every model on any CPU measured: ARMv8.2 FP16 "
            "0.93-1.02x the instructions, x86 1.1-1.4x the time")


def resolve(precision: str, allowed: int | None = None) -> str:
    """"fp32" or "fp16": what `precision` means on this CPU. "auto" = fp32 everywhere for now
    (AUTO_WHY); `allowed` is kept so that a measured per-CPU choice can use it."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision={precision!r}: expected one of {', '.join(PRECISIONS)}")
    if precision != "auto":
        return precision
    del allowed  # no CPU qualifies yet
    return "fp32"


@dataclass
class _Role:
    kind: str  # "qd8", "twin", "native", "mover"
    inputs: tuple  # input positions that carry float activations
    kernel: str  # the kernel name when rewritten


def _exact_in_f16(info) -> bool:
    """A float32 constant that fp16 holds exactly (or no constant). One that it does not (a
    Keras hard-sigmoid's 1/6) stays float32, read by the twin: rounding it would bias every
    product by the same relative error, which adds up through a network."""
    if info.value is None or info.dtype != F32:
        return True
    with np.errstate(over="ignore"):
        return bool(np.array_equal(info.value.astype(F16).astype(F32), info.value))


def _role(call, infos, allowed) -> _Role | None:
    k = call.kernel
    native = find_kernel(NATIVE_F16[k], allowed) if k in NATIVE_F16 else None
    # (the portable one converts by bits, slower than the twin's vector conversions)
    if (native is not None and native[1] != 0
            and all(_exact_in_f16(infos[t]) for t in call.inputs if t >= 0)):
        return _Role("native", tuple(range(len(call.inputs))), NATIVE_F16[k])
    if k in QD8_KERNELS:
        if k.startswith("depthwise") and infos[call.outputs[0]].shape[-1] > QD8_MAX_F16_DW_CHANNELS:
            return None
        return _Role("qd8", (0,), k)
    if k in F16_TWINS:
        if len(call.inputs) > MAX_INPUTS or len(call.outputs) != 1:
            return None
        if infos[call.outputs[0]].dtype != F32:
            return None
        return _Role("twin", tuple(range(len(call.inputs))), "f16_twin")
    if k in MOVERS or k in SIZED_MOVERS:
        ports = MOVERS.get(k, SIZED_MOVERS.get(k))
        ports = tuple(range(len(call.inputs))) if ports is None else ports
        return _Role("mover", ports, k.replace("_x32", "_x16") if k in SIZED_MOVERS else k)
    return None


class _Rewriter:
    def __init__(self, graph, infos, allowed, threads):
        self.graph = graph
        self.infos = infos
        self.allowed = allowed
        self.threads = threads
        self.pinned = set(graph.inputs) | set(graph.outputs)
        self.pinned |= {t for t, tdef in enumerate(graph.tensors) if tdef.is_variable}
        self.as_f32: dict = {}  # fp16 tensor -> its float32 copy (made once)
        self.as_f16: dict = {}  # float32 tensor or constant -> its fp16 copy

    def eligible(self, t) -> bool:
        return (t >= 0 and t not in self.pinned and self.infos[t].value is None
                and self.infos[t].dtype == F32)

    def new_tensor(self, like: int, dtype, value=None) -> int:
        info = self.infos[like]
        index = len(self.infos)
        self.infos.append(TensorInfo(index, f"{info.name}/{np.dtype(dtype).name}",
                                     tuple(info.shape), np.dtype(dtype), value))
        return index


def _ports(call, role):
    """(input positions, output positions) of float tensors the role moves as fp16."""
    return role.inputs, tuple(range(len(call.outputs)))


def apply_fp16(graph, infos: list, prepared: list, allowed: int | None = None,
               threads: int = 1) -> list:
    """Rewrites `prepared` for fp16 storage; appends the new tensors to `infos`. Returns the new
    node list (convert nodes included). `threads`: the plan's, which the twins split slices
    among."""
    allowed = cpu.allowed() if allowed is None else allowed
    rw = _Rewriter(graph, infos, allowed, threads)
    roles = [_role(p.call, infos, allowed) for p in prepared]

    f16: set = set()

    def float_ports(p, role):
        ins, outs = _ports(p.call, role)
        ts = [p.call.inputs[i] for i in ins if i < len(p.call.inputs)]
        ts += [p.call.outputs[i] for i in outs]
        return [t for t in ts if t >= 0 and infos[t].dtype == F32]

    for p, role in zip(prepared, roles):
        if role is not None and role.kind != "mover":
            f16.update(t for t in float_ports(p, role) if rw.eligible(t))
    changed = True
    while changed:  # movers follow their neighbours
        changed = False
        for p, role in zip(prepared, roles):
            if role is None or role.kind != "mover":
                continue
            ports = float_ports(p, role)
            if any(t in f16 for t in ports):
                new = {t for t in ports if rw.eligible(t)} - f16
                if new:
                    f16 |= new
                    changed = True
    for t in f16:
        infos[t].dtype = F16

    out: list = []
    for p, role in zip(prepared, roles):
        call = p.call
        touches = [t for t in call.inputs + call.outputs if t in f16]
        if role is None or not touches:
            out.extend(_around_f32_node(rw, p, f16))
        elif role.kind == "qd8":
            out.append(_qd8_node(rw, p))
        elif role.kind == "twin" and _f16_gemm_fits(rw, call, f16):
            out.append(_f16_gemm_node(rw, p))
        elif role.kind == "twin" and _f16_depthwise_fits(rw, call, f16):
            out.append(_f16_depthwise_node(rw, p))
        elif role.kind == "twin":
            out.append(_twin_node(rw, p, f16))
        else:  # movers and native fp16 kernels: every element tensor fp16
            out.extend(_mover_node(rw, p, role, f16))
    return out


def _convert(p, kernel, src, dst) -> PreparedNode:
    return PreparedNode(p.node, KernelCall(kernel, None, [src], [dst]))


def _around_f32_node(rw, p, f16) -> list:
    """A node without a twin: its fp16 inputs through float32 copies, its fp16 outputs written
    as float32 then converted."""
    call = p.call
    before, after = [], []
    inputs = []
    for t in call.inputs:
        if t in f16:
            if t not in rw.as_f32:
                rw.as_f32[t] = rw.new_tensor(t, F32)
                before.append(_convert(p, "convert_f16_f32", t, rw.as_f32[t]))
            t = rw.as_f32[t]
        inputs.append(t)
    outputs = []
    for t in call.outputs:
        if t in f16:
            t32 = rw.new_tensor(t, F32)
            after.append(_convert(p, "convert_f32_f16", t32, t))
            t = t32
        outputs.append(t)
    call.inputs, call.outputs = inputs, outputs
    return before + [p] + after


def _qd8_node(rw, p) -> PreparedNode:
    """The QD8 drivers read and write fp16 by the tensors' dtype; an fp16 input of FC / conv is
    converted into scratch past what the float32 path uses (params/qd8.h)."""
    call = p.call
    twin = call.kernel + "_f16"
    found, mine = find_kernel(call.kernel, rw.allowed), find_kernel(twin, rw.allowed)
    if mine is not None and found is not None and mine[1] == found[1]:
        call.kernel = twin  # else: the same driver under the ISA's own name
    x = rw.infos[call.inputs[0]]
    if x.dtype == F16 and not call.kernel.startswith("depthwise"):
        call.scratch_bytes = _align64(call.scratch_bytes) + 4 * x.size + 64
    return p


def _align64(n: int) -> int:
    return (n + 63) // 64 * 64


def _round16(n: int) -> int:
    return (n + 15) // 16 * 16


def _fp16_native(rw, kernel) -> bool:
    """Whether `kernel` runs here in a variant of its own (the portable one is the spec)."""
    found = find_kernel(kernel, rw.allowed)
    return found is not None and found[1] != 0


def _fits_f16(value) -> bool:
    with np.errstate(over="ignore"):
        return bool(np.isfinite(value.astype(F16)).all())


def _f16_gemm_fits(rw, call, f16) -> bool:
    if call.kernel not in F16_GEMMS or len(call.inputs) != 2:
        return False
    packed = rw.infos[call.inputs[1]].value
    return (_fp16_native(rw, F16_GEMMS[call.kernel]) and call.inputs[0] in f16
            and call.outputs[0] in f16 and packed is not None and _fits_f16(packed))


def _f16_depthwise_fits(rw, call, f16) -> bool:
    if call.kernel not in F16_DEPTHWISE or not 2 <= len(call.inputs) <= 3:
        return False
    q = call.params
    consts = [rw.infos[t].value for t in call.inputs[1:] if t >= 0]
    return (_fp16_native(rw, F16_DEPTHWISE[call.kernel]) and call.inputs[0] in f16
            and call.outputs[0] in f16 and q.in_c == q.out_c
            and 1 <= q.k_h * q.k_w <= F16_DW_MAX_TAPS
            and all(v is not None and _fits_f16(v) for v in consts)
            and len(consts) == len(call.inputs) - 1)


def _f16_depthwise_node(rw, p) -> PreparedNode:
    """The fp16 depthwise on fp16 copies of the filter and bias (zeros when there is none);
    scratch: one input row of fp16 zeros."""
    call = p.call
    q = call.params
    bias = call.inputs[2] if len(call.inputs) > 2 else -1
    if bias < 0:
        zeros = np.zeros(q.out_c, F16)
        zeros.flags.writeable = False
        bias16 = rw.new_tensor(call.inputs[1], F16, zeros)
    else:
        bias16 = _f16_constant(rw, bias)
    inputs = [call.inputs[0], _f16_constant(rw, call.inputs[1]), bias16]
    scratch = _align64(max(q.in_w, 1) * q.in_c * 2)
    return PreparedNode(p.node, KernelCall(F16_DEPTHWISE[call.kernel], call.params, inputs,
                                           list(call.outputs), scratch))


def _f16_gemm_node(rw, p) -> PreparedNode:
    """The fp16 GEMM on the fp16 copy of the packed weights (same layout, fp16 elements)."""
    call = p.call
    gemm = KernelCall(F16_GEMMS[call.kernel], call.params,
                      [call.inputs[0], _f16_constant(rw, call.inputs[1])], list(call.outputs))
    return PreparedNode(p.node, gemm)


def _twin_node(rw, p, f16) -> PreparedNode:
    call = p.call
    mask = sum(1 << i for i, t in enumerate(call.inputs) if t in f16)
    out_f16 = rw.infos[call.outputs[0]].dtype == F16
    return PreparedNode(p.node, make_twin(call, rw.infos, mask, out_f16, rw.allowed,
                                          rw.threads))


def make_twin(call, infos, mask: int, out_f16: bool, allowed: int,
              threads: int = 1) -> KernelCall:
    """The f16_twin call running `call`'s float32 kernel (as `allowed` picks it) with the inputs
    in `mask` (bit i = input i) read as fp16 and, if out_f16, the output written as fp16.
    With threads > 1 and at least two slices per thread, each thread takes slices of its own."""
    kind = F16_TWINS[call.kernel]
    inner = kernel_address(call.kernel, allowed)
    if not inner:
        raise RuntimeError(f"no kernel {call.kernel} for the allowed ISA features")
    raw = call.params_bytes() or b""
    if len(raw) > INNER_PARAMS_MAX:
        raise RuntimeError(f"{call.kernel}: params of {len(raw)} bytes do not fit the fp16 twin")
    slice_, buffers = _slicing(kind, call, infos, mask)
    if out_f16:
        buffers += _round16(_slice_out_count(kind, call, infos, slice_))
    inner_scratch = _band_scratch(call, kind, slice_)
    slot_bytes = _align64(_align64(inner_scratch) + 4 * buffers)
    slices = _slice_count(kind, call, infos, slice_)
    slots = (threads if threads > 1 and slices >= 2 * threads
             and _twin_work(kind, call, infos) >= PARALLEL_MIN_WORK else 1)
    params = TwinParams(inner=inner, inner_scratch=inner_scratch, kind=kind, slice=slice_,
                        f16_inputs=mask, inner_params_size=len(raw), slots=slots,
                        slot_bytes=slot_bytes)
    ctypes.memmove(params.inner_params, raw, len(raw))
    twin = KernelCall("f16_twin", params, list(call.inputs), list(call.outputs),
                      slots * slot_bytes)
    twin.twin_of = call.kernel  # what runs inside, for the op profile and tests
    return twin


def _band_scratch(call, kind, slice_) -> int:
    """The inner kernel's scratch for one band of `slice_` output rows (what the twin hands it),
    not for the whole tensor: the depthwise kernel's zero-padded input copy (edgeq/ops/conv.py)
    shrinks to the band's. The kernel checks the size it gets and, given less, reads the border
    through tap pointers instead, so this is only ever a size, never a correctness, question."""
    if kind != KIND_CONV or call.kernel != "depthwise_conv2d_f32_dw" or not call.scratch_bytes:
        return call.scratch_bytes
    q = call.params
    zero_row = max(q.in_w, 1) * q.in_c * 4
    if call.scratch_bytes <= zero_row:
        return call.scratch_bytes
    rows = max(1, min(slice_, q.out_h))
    padded_h = (rows - 1) * q.stride_h + (q.k_h - 1) * q.dilation_h + 1
    padded_w = (q.out_w - 1) * q.stride_w + (q.k_w - 1) * q.dilation_w + 1
    return zero_row + padded_h * padded_w * q.in_c * 4


def _twin_work(kind, call, infos) -> int:
    """Multiply-adds (or elements touched) of the twin's float32 kernel, as its driver counts
    them when it decides whether to split a node among threads."""
    q = call.params
    out = infos[call.outputs[0]].size
    if kind == KIND_CONV:
        per_output = q.k_h * q.k_w * (1 if "depthwise" in call.kernel else q.in_c)
        return out * per_output
    if kind == KIND_POOL:
        return out * q.filter_h * q.filter_w
    if kind == KIND_ROWS:
        return out * q.depth
    return out


def _slice_count(kind, call, infos, slice_) -> int:
    q = call.params
    if kind in (KIND_CONV, KIND_POOL):
        return q.batch * -(-q.out_h // slice_)
    if kind == KIND_ROWS:
        return -(-q.rows // slice_)
    if kind == KIND_FLAT:
        return -(-infos[call.outputs[0]].size // max(slice_, 1))
    if kind == KIND_BINARY:
        dims = list(q.out_dims)
        d = next((i for i, v in enumerate(dims[:-1]) if v != 1), len(dims) - 1)
        return -(-dims[d] // slice_)
    return 1


def _slice_out_count(kind, call, infos, slice_) -> int:
    out = infos[call.outputs[0]]
    if kind in (KIND_CONV, KIND_POOL):
        n, h, w, c = out.shape
        return slice_ * w * c
    if kind == KIND_ROWS:
        return slice_ * call.params.units
    if kind == KIND_FLAT:
        return min(slice_, out.size)
    if kind == KIND_BINARY:
        dims = list(call.params.out_dims)
        d = next((i for i, v in enumerate(dims[:-1]) if v != 1), len(dims) - 1)
        return slice_ * int(np.prod(dims[d + 1:]))
    return out.size


def _slicing(kind, call, infos, mask) -> tuple:
    """(slice, float32 input buffer elements) for the twin's kind; slices of about SLICE_BYTES."""
    q = call.params
    x = infos[call.inputs[0]]
    # Buffers of at most a quarter of the float32 tensors the node touches (so that the arena
    # shrinks even for small tensors), at least MIN_SLICE_BYTES (so that slices stay few).
    touched = sum(infos[t].size for t in call.inputs + call.outputs
                  if t >= 0 and infos[t].value is None)
    budget = max(MIN_SLICE_BYTES, min(SLICE_BYTES, touched)) // 4
    if kind in (KIND_CONV, KIND_POOL):
        if kind == KIND_CONV:
            in_row, out_row = q.in_w * q.in_c, q.out_w * q.out_c
            k_h, stride, dil = q.k_h, q.stride_h, q.dilation_h
        else:
            in_row, out_row = q.in_w * q.channels, q.out_w * q.channels
            k_h, stride, dil = q.filter_h, q.stride_h, 1
        rows = max(1, min(q.out_h, budget // max(1, out_row + stride * in_row)))
        in_rows = min(q.in_h, (rows - 1) * stride + (k_h - 1) * dil + 1)
        return rows, (_round16(in_rows * in_row) if mask & 1 else 0)
    if kind == KIND_ROWS:
        rows = max(1, min(q.rows, budget // max(1, q.depth + q.units)))
        return rows, (_round16(rows * q.depth) if mask & 1 else 0)
    if kind == KIND_FLAT:
        granule = q.depth if call.kernel.endswith("softmax_f32") and q.depth > 0 else 1
        n = max(granule, budget // 2 // granule * granule)
        n = min(n, max(x.size, 1))
        return n, (_round16(n) if mask & 1 else 0)
    if kind == KIND_BINARY:
        dims = list(q.out_dims)
        d = next((i for i, v in enumerate(dims[:-1]) if v != 1), len(dims) - 1)
        inner = int(np.prod(dims[d + 1:]))
        per_index = inner
        whole = 0
        for i, strides in enumerate((q.a_strides, q.b_strides)):
            if mask >> i & 1:
                if strides[d]:
                    per_index += strides[d]
                else:
                    whole += _round16(infos[call.inputs[i]].size)
        n = max(1, min(dims[d], budget // max(1, per_index)))
        buffers = whole
        for i, strides in enumerate((q.a_strides, q.b_strides)):
            if mask >> i & 1 and strides[d]:
                buffers += _round16(n * strides[d])
        return n, buffers
    return 0, sum(_round16(infos[t].size) for i, t in enumerate(call.inputs) if mask >> i & 1)


def _f16_constant(rw, t) -> int:
    if t not in rw.as_f16:
        value = rw.infos[t].value.astype(F16)
        value.flags.writeable = False
        rw.as_f16[t] = rw.new_tensor(t, F16, value)
    return rw.as_f16[t]


def _mover_node(rw, p, role, f16) -> list:
    """All the mover's element tensors become fp16: constants by an fp16 copy, graph inputs
    through a convert before, graph outputs through a convert after."""
    call = p.call
    before, after = [], []
    inputs = list(call.inputs)
    for i in role.inputs:
        if i >= len(inputs):
            continue
        t = inputs[i]
        if t < 0 or t in f16 or rw.infos[t].dtype != F32:
            continue
        if rw.infos[t].value is not None:
            inputs[i] = _f16_constant(rw, t)
        else:
            if t not in rw.as_f16:
                rw.as_f16[t] = rw.new_tensor(t, F16)
                before.append(_convert(p, "convert_f32_f16", t, rw.as_f16[t]))
            inputs[i] = rw.as_f16[t]
    outputs = []
    for t in call.outputs:
        if t not in f16 and rw.infos[t].dtype == F32:
            t16 = rw.new_tensor(t, F16)
            after.append(_convert(p, "convert_f16_f32", t16, t))
            t = t16
        outputs.append(t)
    call.inputs, call.outputs = inputs, outputs
    call.kernel = role.kernel
    if call.params is not None and hasattr(call.params, "value"):
        # A fill value is stored in the element's own representation (PAD, SPACE_TO_BATCH).
        v = np.frombuffer(bytes(call.params.value)[:4], np.float32)[0]
        raw = np.float16(v).tobytes().ljust(8, b"\0")
        call.params.value = (ctypes.c_uint8 * 8)(*raw)
    return before + [p] + after
