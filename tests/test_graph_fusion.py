"""Graph rewrites: a zero PAD of H/W folded into the VALID convolution that alone reads it.

Each case is a small model run by edgeq and by LiteRT (which folds the same PADs in XNNPack);
the plan must have lost the pad node exactly where folding is exact."""
from __future__ import annotations

import numpy as np
import pytest

import edgeq
from types import SimpleNamespace

from edgeq.graph.graph import depthwise_fusion_pays, epilogue_fusion_pays
from edgeq.tflite.schema import BuiltinOp
from edgeq.tflite.writer import ModelBuilder
from harness import assert_close_to_range, run_edgeq, run_litert

RNG = np.random.default_rng(7)
F32 = np.float32
VALID, SAME = 1, 0
# Conv epilogues fold on x86 and ARM, but not on ARM under precision fp16; HARD_SWISH folds into
# depthwise convolutions on x86 only (edgeq/graph/graph.py epilogue_fusion_pays,
# depthwise_fusion_pays). Where they do not, the same models must run unfused, with the same
# results.
FUSES = epilogue_fusion_pays()
FUSES_FP16 = epilogue_fusion_pays(SimpleNamespace(precision="fp16"))
DW_FUSES = depthwise_fusion_pays()


def pad_conv_model(x_shape, paddings, conv="conv", k=3, stride=1, conv_padding=VALID,
                   pad_value=None, extra_reader=False, pad_is_output=False, qd8=False, seed=0):
    rng = np.random.default_rng(seed)
    b = ModelBuilder()
    c = x_shape[3] + sum(paddings[3])  # the conv reads the padded channels
    x = b.add_tensor("x", x_shape, F32)
    amounts = b.add_tensor("paddings", [4, 2], np.int32,
                           data=np.asarray(paddings, np.int32))
    padded = b.add_tensor("padded", [], F32)
    if pad_value is None:
        b.add_operator(BuiltinOp.PAD, [x, amounts], [padded])
    else:
        v = b.add_tensor("value", [], F32, data=np.array(pad_value, F32))
        b.add_operator(BuiltinOp.PADV2, [x, amounts, v], [padded])
    y = b.add_tensor("y", [], F32)
    opts = {"padding": conv_padding, "stride_w": stride, "stride_h": stride}
    if conv == "conv":
        w = rng.standard_normal((5, k, k, c)).astype(F32)
        out_c = 5
    else:
        w = rng.standard_normal((1, k, k, c)).astype(F32)
        out_c = c
        opts["depth_multiplier"] = 1
    if qd8:
        qdim = 0 if conv == "conv" else 3
        axes = tuple(a for a in range(4) if a != qdim)
        scales = (np.abs(w).max(axis=axes) / 127).astype(F32)
        shape = [1, 1, 1, 1]
        shape[qdim] = -1
        wq = np.round(w / scales.reshape(shape)).astype(np.int8)
        wt = b.add_tensor("w", w.shape, np.int8, data=wq,
                          quantization=dict(scale=scales, zero_point=np.zeros(len(scales),
                                                                              np.int64),
                                            quantized_dimension=qdim))
    else:
        wt = b.add_tensor("w", w.shape, F32, data=w)
    bias = b.add_tensor("bias", [out_c], F32, data=rng.standard_normal(out_c).astype(F32))
    op = BuiltinOp.CONV_2D if conv == "conv" else BuiltinOp.DEPTHWISE_CONV_2D
    b.add_operator(op, [padded, wt, bias], [y], options=opts)
    return finish_model(b, x, y, padded, extra_reader, pad_is_output)


def finish_model(b, x, y, inner, extra_reader, inner_is_output):
    """Input x, output y; with extra_reader a RELU of the intermediate tensor `inner` as a
    second output, with inner_is_output `inner` itself too."""
    outputs = [y]
    if extra_reader:
        z = b.add_tensor("z", [], F32)
        b.add_operator(BuiltinOp.RELU, [inner], [z])
        outputs.append(z)
    if inner_is_output:
        outputs.append(inner)
    b.set_inputs([x])
    b.set_outputs(outputs)
    return b.build()


def plan_kernels(model):
    it = edgeq.Interpreter(model_content=model, num_threads=1)
    it.allocate_tensors()
    return [p.call.kernel for p in it._main.plan.nodes]


def check(model, x_shape, folds):
    x = RNG.uniform(-1, 1, x_shape).astype(F32)
    expected = run_litert(model, [x])
    actual = run_edgeq(model, [x])
    assert len(actual) == len(expected)
    for a, e in zip(actual, expected):
        assert_close_to_range(a, e)
    has_pad = any(k.startswith("pad") for k in plan_kernels(model))
    assert has_pad != folds, plan_kernels(model)


@pytest.mark.parametrize("conv", ["conv", "depthwise"])
@pytest.mark.parametrize("paddings", [
    [[0, 0], [1, 1], [1, 1], [0, 0]],      # symmetric, as MediaPipe writes it
    [[0, 0], [0, 1], [0, 1], [0, 0]],      # bottom/right only (TF's SAME for stride 2)
    [[0, 0], [2, 0], [1, 3], [0, 0]],      # asymmetric both ways
])
@pytest.mark.parametrize("stride", [1, 2])
def test_zero_spatial_pad_folds_into_valid_conv(conv, paddings, stride):
    shape = (1, 9, 8, 6)
    check(pad_conv_model(shape, paddings, conv, stride=stride), shape, folds=True)


def test_pad_stays_before_a_1x1_conv():
    """Under QD8 a 1x1 conv over the padded image is a per-pixel FC; folded it would be a
    per-image conv with other rounding, so edgeq keeps such PADs as written."""
    shape = (1, 5, 4, 3)
    check(pad_conv_model(shape, [[0, 0], [0, 2], [1, 0], [0, 0]], k=1), shape, folds=False)


def test_padv2_with_zero_folds_and_nonzero_does_not():
    shape = (1, 6, 6, 4)
    pads = [[0, 0], [1, 1], [1, 1], [0, 0]]
    check(pad_conv_model(shape, pads, pad_value=0.0), shape, folds=True)
    check(pad_conv_model(shape, pads, pad_value=1.5), shape, folds=False)


@pytest.mark.parametrize("kwargs,paddings", [
    ({}, [[0, 0], [1, 1], [1, 1], [1, 1]]),                      # pads channels
    ({}, [[1, 0], [1, 1], [1, 1], [0, 0]]),                      # pads the batch
    ({"conv_padding": SAME}, [[0, 0], [1, 1], [1, 1], [0, 0]]),  # conv pads itself
    ({"extra_reader": True}, [[0, 0], [1, 1], [1, 1], [0, 0]]),  # the padded tensor is read twice
    ({"pad_is_output": True}, [[0, 0], [1, 1], [1, 1], [0, 0]]),  # and is visible
])
def test_pads_that_must_stay(kwargs, paddings):
    shape = (1, 6, 7, 4)
    check(pad_conv_model(shape, paddings, **kwargs), shape, folds=False)


@pytest.mark.parametrize("conv", ["conv", "depthwise"])
def test_pad_folds_into_qd8_convolutions_exactly(conv):
    """A QD8 conv pads with the image's zero point, which is the quantized 0.0: folding a zero
    PAD in gives the very same numbers as running the PAD."""
    shape = (1, 8, 8, 4)
    pads = [[0, 0], [1, 2], [2, 1], [0, 0]]
    model = pad_conv_model(shape, pads, conv, qd8=True)
    x = RNG.uniform(-1, 1, shape).astype(F32)
    folded = run_edgeq(model, [x])[0]
    assert not any(k.startswith("pad") for k in plan_kernels(model))
    kept = pad_conv_model(shape, pads, conv, qd8=True, pad_is_output=True)  # same weights
    assert any(k.startswith("pad") for k in plan_kernels(kept))
    np.testing.assert_array_equal(folded, run_edgeq(kept, [x])[0])
    assert_close_to_range(folded, run_litert(model, [x])[0], rel=0.02)


# --- PRELU / residual ADD folded into the GEMM convolution's epilogue -------------------------

def conv_epilogue_model(x_shape=(1, 6, 7, 5), out_c=20, k=1, stride=1, chain=("prelu",),
                        alpha_shape=None, add_act=0, conv_act=0, extra_reader=False,
                        conv_is_output=False, skip_is_input=False, seed=0):
    """x -> CONV_2D -> each of `chain` in turn ("add": + a skip tensor of the conv's shape,
    computed from x after the conv; "prelu": alpha of alpha_shape, default [1, 1, out_c])."""
    rng = np.random.default_rng(seed)
    b = ModelBuilder()
    x = b.add_tensor("x", x_shape, F32)
    w = b.add_tensor("w", [out_c, k, k, x_shape[3]], F32,
                     data=rng.standard_normal((out_c, k, k, x_shape[3])).astype(F32))
    bias = b.add_tensor("bias", [out_c], F32, data=rng.standard_normal(out_c).astype(F32))
    out_h = -(-x_shape[1] // stride)
    out_w = -(-x_shape[2] // stride)
    out_shape = [x_shape[0], out_h, out_w, out_c]
    y = b.add_tensor("y", out_shape, F32)
    opts = {"padding": SAME, "stride_w": stride, "stride_h": stride,
            "fused_activation_function": conv_act}
    b.add_operator(BuiltinOp.CONV_2D, [x, w, bias], [y], options=opts)
    inputs, outputs = [x], []
    if conv_is_output:
        outputs.append(y)
    if extra_reader:
        z = b.add_tensor("z", [], F32)
        b.add_operator(BuiltinOp.RELU, [y], [z])
        outputs.append(z)
    for step, op in enumerate(chain):
        nxt = b.add_tensor(f"t{step}", out_shape, F32)
        if op == "add":
            if skip_is_input:
                skip = b.add_tensor("skip", out_shape, F32)
                inputs.append(skip)
            else:  # computed after the conv: the fused node must run after it
                ws = b.add_tensor("ws", [out_c, 1, 1, x_shape[3]], F32,
                                  data=rng.standard_normal((out_c, 1, 1, x_shape[3])).astype(F32))
                bs = b.add_tensor("bs", [out_c], F32, data=np.zeros(out_c, F32))
                skip = b.add_tensor("skip", out_shape, F32)
                b.add_operator(BuiltinOp.CONV_2D, [x, ws, bs], [skip],
                               options={"padding": SAME, "stride_w": stride, "stride_h": stride,
                                        "fused_activation_function": 1})
            b.add_operator(BuiltinOp.ADD, [skip, y] if step % 2 else [y, skip], [nxt],
                           options={"fused_activation_function": add_act})
        elif op == "hswish":
            b.add_operator(BuiltinOp.HARD_SWISH, [y], [nxt])
        else:
            shape = alpha_shape or [1, 1, out_c]
            a = b.add_tensor("alpha", shape, F32,
                             data=rng.uniform(-1, 1, shape).astype(F32))
            b.add_operator(BuiltinOp.PRELU, [y, a], [nxt])
        y = nxt
    b.set_inputs(inputs)
    b.set_outputs(outputs + [y])
    return b.build()


def check_epilogue(model, fused_ops, feeds_shapes):
    feeds = [RNG.uniform(-1, 1, s).astype(F32) for s in feeds_shapes]
    expected = run_litert(model, feeds)
    actual = run_edgeq(model, feeds)
    for a, e in zip(actual, expected):
        assert_close_to_range(a, e)
    kernels = plan_kernels(model)
    left = [k for k in kernels if k.startswith(("prelu", "add", "hard_swish"))]
    assert (not left) == (fused_ops and FUSES), kernels
    return kernels


@pytest.mark.parametrize("k,stride", [(1, 1), (3, 1), (3, 2), (1, 2)])
@pytest.mark.parametrize("chain", [("prelu",), ("add",), ("add", "prelu"), ("hswish",)])
def test_prelu_and_residual_add_fold_into_the_conv(k, stride, chain):
    kernels = check_epilogue(conv_epilogue_model(k=k, stride=stride, chain=chain), True,
                             [(1, 6, 7, 5)])
    assert any(n.startswith("conv2d_f32_") and n.endswith("_residual") for n in kernels) == \
        ("add" in chain and FUSES), kernels
    assert any(n.startswith("conv2d_f32_") and n.endswith("_hswish") for n in kernels) == \
        ("hswish" in chain and FUSES), kernels


@pytest.mark.parametrize("kwargs", [{"add_act": 3}, {"alpha_shape": [20]},
                                    {"alpha_shape": [1, 1, 1, 1]}, {"skip_is_input": True},
                                    {"out_c": 37, "x_shape": (2, 9, 4, 16)}])
def test_epilogue_fold_variants(kwargs):
    x_shape = kwargs.get("x_shape", (1, 6, 7, 5))
    out_c = kwargs.get("out_c", 20)
    shapes = [x_shape] + ([x_shape[:3] + (out_c,)] if kwargs.get("skip_is_input") else [])
    check_epilogue(conv_epilogue_model(chain=("add", "prelu"), **kwargs), True, shapes)


def test_batch_zero_and_two_after_resize():
    model = conv_epilogue_model(chain=("add", "prelu"))
    for batch in (0, 2):
        x = RNG.uniform(-1, 1, (batch, 6, 7, 5)).astype(F32)
        it = edgeq.Interpreter(model_content=model, num_threads=1)
        it.resize_tensor_input(it.get_input_details()[0]["index"], x.shape)
        it.allocate_tensors()
        it.set_tensor(it.get_input_details()[0]["index"], x)
        it.invoke()
        got = it.get_tensor(it.get_output_details()[0]["index"])
        assert got.shape == (batch, 6, 7, 20)
        if batch:
            ref = [run_edgeq(model, [x[i:i + 1]])[0] for i in range(batch)]
            np.testing.assert_array_equal(got, np.concatenate(ref))


@pytest.mark.parametrize("shape", [[1, 1, 1, 8], [1, 4, 4, 8]])
def test_an_add_of_a_constant_stays(shape):
    """ADD of the conv's output and a constant (broadcast, or of the same shape, which a resize
    would turn into a broadcast): not a residual."""
    b = ModelBuilder()
    x = b.add_tensor("x", [1, 4, 4, 3], F32)
    w = b.add_tensor("w", [8, 1, 1, 3], F32, data=RNG.standard_normal((8, 1, 1, 3)).astype(F32))
    bias = b.add_tensor("bias", [8], F32, data=np.zeros(8, F32))
    y = b.add_tensor("y", [1, 4, 4, 8], F32)
    b.add_operator(BuiltinOp.CONV_2D, [x, w, bias], [y],
                   options={"padding": SAME, "stride_w": 1, "stride_h": 1})
    c = b.add_tensor("c", shape, F32, data=RNG.standard_normal(shape).astype(F32))
    z = b.add_tensor("z", [1, 4, 4, 8], F32)
    b.add_operator(BuiltinOp.ADD, [y, c], [z])
    b.set_inputs([x])
    b.set_outputs([z])
    check_epilogue(b.build(), False, [(1, 4, 4, 3)])


@pytest.mark.parametrize("kwargs", [
    {"conv_act": 1},                                   # RELU then PRELU: the conv's slot is used
    {"alpha_shape": [6, 7, 20]},                       # alpha varies over pixels
    {"extra_reader": True},                            # the conv's output is read twice
    {"conv_is_output": True},                          # and is visible
    {"chain": ("add", "hswish")},                      # no kernel ends in both
    {"chain": ("hswish", "prelu")},                    # nothing follows HARD_SWISH
])
def test_epilogues_that_must_stay(kwargs):
    check_epilogue(conv_epilogue_model(**kwargs), False, [(1, 6, 7, 5)])


def test_conv_epilogues_fold_on_every_isa_but_arm_fp16():
    from edgeq.runtime import cpu

    neon = bool(cpu.allowed() & cpu.FEATURES["neon"])
    assert FUSES
    assert FUSES_FP16 == (not neon)
    assert DW_FUSES == (not neon)


def test_edgeq_isa_scalar_keeps_the_reference_ops(monkeypatch):
    monkeypatch.setenv("EDGEQ_ISA", "scalar")
    check_epilogue(conv_epilogue_model(chain=("add", "prelu")), False, [(1, 6, 7, 5)])


def test_fused_epilogue_under_fp16_precision():
    """Slopes ride along the fp16 twin; the ADD stays (on fp16 natively: a residual conv would
    have no twin)."""
    model = conv_epilogue_model(x_shape=(1, 8, 8, 8), chain=("prelu", "add"))
    hswish = conv_epilogue_model(x_shape=(1, 8, 8, 8), chain=("hswish",))
    x = RNG.uniform(-1, 1, (1, 8, 8, 8)).astype(F32)
    it = edgeq.Interpreter(model_content=model, num_threads=1, precision="fp16")
    it.allocate_tensors()
    it.set_tensor(it.get_input_details()[0]["index"], x)
    it.invoke()
    got = it.get_tensor(it.get_output_details()[0]["index"])
    assert_close_to_range(got, run_litert(model, [x])[0], rel=0.02)
    kernels = set(it._get_plan().compiled.kernel_of_node)
    if FUSES_FP16:  # (unfused, the PRELU may run as a prelu_f16 kernel or as an f16_twin)
        assert not any(k.startswith("prelu") for k in kernels), kernels
    assert not any(k.endswith("_residual") for k in kernels), kernels
    it = edgeq.Interpreter(model_content=hswish, num_threads=1, precision="fp16")
    it.allocate_tensors()
    assert not any(k.endswith("_hswish") for k in it._get_plan().compiled.kernel_of_node)


# --- HARD_SWISH folded into the depthwise convolution before it ------------------------------

def depthwise_hswish_model(x_shape=(1, 9, 8, 24), k=3, stride=1, multiplier=1, dw_act=0,
                           extra_reader=False, dw_is_output=False, seed=0):
    """x -> DEPTHWISE_CONV_2D (SAME) -> HARD_SWISH, as MobileNetV3 has them."""
    rng = np.random.default_rng(seed)
    b = ModelBuilder()
    c = x_shape[3] * multiplier
    x = b.add_tensor("x", x_shape, F32)
    w = b.add_tensor("w", [1, k, k, c], F32,
                     data=(rng.standard_normal((1, k, k, c)) * 2).astype(F32))
    bias = b.add_tensor("bias", [c], F32, data=rng.standard_normal(c).astype(F32))
    out_shape = [x_shape[0], -(-x_shape[1] // stride), -(-x_shape[2] // stride), c]
    y = b.add_tensor("y", out_shape, F32)
    b.add_operator(BuiltinOp.DEPTHWISE_CONV_2D, [x, w, bias], [y],
                   options={"padding": SAME, "stride_w": stride, "stride_h": stride,
                            "depth_multiplier": multiplier, "fused_activation_function": dw_act})
    swished = b.add_tensor("swished", out_shape, F32)
    b.add_operator(BuiltinOp.HARD_SWISH, [y], [swished])
    return finish_model(b, x, swished, y, extra_reader, dw_is_output)


def check_depthwise_hswish(model, x_shape, fused, kernel="depthwise_conv2d_f32_dw_hswish"):
    x = RNG.uniform(-3, 3, x_shape).astype(F32)
    for a, e in zip(run_edgeq(model, [x]), run_litert(model, [x])):
        assert_close_to_range(a, e)
    kernels = plan_kernels(model)
    assert ("hard_swish_f32" not in kernels) == (fused and DW_FUSES), kernels
    assert (kernel in kernels) == (fused and DW_FUSES), kernels
    return kernels


@pytest.mark.parametrize("k,stride", [(3, 1), (3, 2), (5, 1), (5, 2), (1, 1)])
@pytest.mark.parametrize("dw_act", [0, 3])
def test_hard_swish_folds_into_the_depthwise_conv(k, stride, dw_act):
    check_depthwise_hswish(depthwise_hswish_model(k=k, stride=stride, dw_act=dw_act),
                           (1, 9, 8, 24), True)


def test_hard_swish_folds_into_mobilenet_v3_sized_and_batched_depthwise():
    check_depthwise_hswish(depthwise_hswish_model((2, 14, 14, 240), k=5), (2, 14, 14, 240), True)
    check_depthwise_hswish(depthwise_hswish_model((1, 28, 28, 96), k=5, stride=2),
                           (1, 28, 28, 96), True)


def test_hard_swish_folds_into_a_depthwise_multiplier_on_the_reference_kernel():
    check_depthwise_hswish(depthwise_hswish_model((1, 6, 5, 3), multiplier=2), (1, 6, 5, 3),
                           True, kernel="depthwise_conv2d_f32_hswish")


@pytest.mark.parametrize("kwargs", [{"extra_reader": True}, {"dw_is_output": True}])
def test_depthwise_hard_swish_that_must_stay(kwargs):
    check_depthwise_hswish(depthwise_hswish_model(**kwargs), (1, 9, 8, 24), False)


def test_depthwise_hard_swish_stays_with_edgeq_isa_scalar_and_under_fp16(monkeypatch):
    model = depthwise_hswish_model()
    x = RNG.uniform(-3, 3, (1, 9, 8, 24)).astype(F32)
    it = edgeq.Interpreter(model_content=model, num_threads=1, precision="fp16")
    it.allocate_tensors()
    it.set_tensor(it.get_input_details()[0]["index"], x)
    it.invoke()
    assert_close_to_range(it.get_tensor(it.get_output_details()[0]["index"]),
                          run_litert(model, [x])[0], rel=0.02)
    assert not any(k.endswith("_hswish") for k in it._get_plan().compiled.kernel_of_node)
    monkeypatch.setenv("EDGEQ_ISA", "scalar")
    check_depthwise_hswish(model, (1, 9, 8, 24), False)


def test_depthwise_hard_swish_after_resize():
    model = depthwise_hswish_model()
    for shape in ((2, 9, 8, 24), (1, 13, 4, 24)):
        x = RNG.uniform(-3, 3, shape).astype(F32)
        it = edgeq.Interpreter(model_content=model, num_threads=1)
        it.resize_tensor_input(it.get_input_details()[0]["index"], shape)
        it.allocate_tensors()
        it.set_tensor(it.get_input_details()[0]["index"], x)
        it.invoke()
        got = it.get_tensor(it.get_output_details()[0]["index"])
        want = [run_edgeq(model, [x[i:i + 1]])[0] for i in range(shape[0])] \
            if shape[1:] == (9, 8, 24) else None
        if want is not None:
            np.testing.assert_array_equal(got, np.concatenate(want))
        assert got.shape == shape
