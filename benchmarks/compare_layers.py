"""Single MobileNet-sized layers, edgeq vs LiteRT (XNNPack), side by side in one process.

    python benchmarks/compare_layers.py [--runs 200]

Each layer is a one-op model with static shapes (so that LiteRT hands it to XNNPack), run
interleaved on the same input; prints the minimum invoke time of each and the ratio. Shows
where the whole-model ratio comes from, kernel by kernel.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

import edgeq
from edgeq.tflite.schema import BuiltinOp

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from harness import single_op_model  # noqa: E402

F32 = np.float32
RELU6 = 3


def conv_options(stride, **extra):
    return {"padding": 0, "stride_h": stride, "stride_w": stride,
            "fused_activation_function": RELU6, **extra}


def layers(rng):
    """(name, op, inputs, options, input shape, output shape)."""
    out = []
    for shape, stride, k in [((1, 112, 112, 32), 1, 3), ((1, 112, 112, 96), 2, 3),
                             ((1, 56, 56, 144), 1, 3), ((1, 14, 14, 576), 1, 3),
                             ((1, 14, 14, 384), 1, 5), ((1, 7, 7, 672), 1, 5),
                             # MobileNetV3's: few channels at 112x112, 5x5 with stride 2
                             ((1, 112, 112, 16), 2, 3), ((1, 28, 28, 96), 2, 5)]:
        c = shape[3]
        o = (1, -(-shape[1] // stride), -(-shape[2] // stride), c)
        out.append((f"depthwise {k}x{k} s{stride} {shape[1:]}", BuiltinOp.DEPTHWISE_CONV_2D,
                    [(shape, F32), rng.standard_normal((1, k, k, c)).astype(F32),
                     rng.standard_normal(c).astype(F32)],
                    conv_options(stride, depth_multiplier=1), shape, o))
    for shape, oc in [((1, 112, 112, 16), 96), ((1, 56, 56, 24), 144), ((1, 56, 56, 144), 24),
                      ((1, 14, 14, 96), 576), ((1, 7, 7, 320), 1280)]:
        out.append((f"conv 1x1 {shape[1:]}->{oc}", BuiltinOp.CONV_2D,
                    [(shape, F32), rng.standard_normal((oc, 1, 1, shape[3])).astype(F32),
                     rng.standard_normal(oc).astype(F32)], conv_options(1), shape,
                    shape[:3] + (oc,)))
    first = (1, 224, 224, 3)
    out.append(("conv 3x3 s2 (224, 224, 3)->32", BuiltinOp.CONV_2D,
                [(first, F32), rng.standard_normal((32, 3, 3, 3)).astype(F32),
                 rng.standard_normal(32).astype(F32)], conv_options(2), first, (1, 112, 112, 32)))
    # MediaPipe first layers whose output width (32, 96) is no multiple of the 7-row tile
    for size, oc in [(64, 64), (192, 16)]:
        shape = (1, size, size, 3)
        out.append((f"conv 3x3 s2 {shape[1:]}->{oc}", BuiltinOp.CONV_2D,
                    [(shape, F32), rng.standard_normal((oc, 3, 3, 3)).astype(F32),
                     rng.standard_normal(oc).astype(F32)], conv_options(2), shape,
                    (1, size // 2, size // 2, oc)))
    # hand_landmark_lite's depthwise layers (the ones main's list lacks), then its first conv
    for shape, stride, k in [((1, 112, 112, 24), 1, 3), ((1, 112, 112, 64), 2, 3),
                             ((1, 56, 56, 96), 1, 3), ((1, 56, 56, 96), 2, 5),
                             ((1, 28, 28, 144), 1, 5), ((1, 28, 28, 144), 2, 3),
                             ((1, 14, 14, 288), 1, 3), ((1, 14, 14, 288), 1, 5),
                             ((1, 14, 14, 384), 2, 5), ((1, 7, 7, 672), 1, 3)]:
        c = shape[3]
        o = (1, -(-shape[1] // stride), -(-shape[2] // stride), c)
        out.append((f"hand depthwise {k}x{k} s{stride} {shape[1:]}",
                    BuiltinOp.DEPTHWISE_CONV_2D,
                    [(shape, F32), rng.standard_normal((1, k, k, c)).astype(F32),
                     rng.standard_normal(c).astype(F32)],
                    conv_options(stride, depth_multiplier=1), shape, o))
    out.append(("hand conv 3x3 s2 (224, 224, 3)->24", BuiltinOp.CONV_2D,
                [(first, F32), rng.standard_normal((24, 3, 3, 3)).astype(F32),
                 rng.standard_normal(24).astype(F32)], conv_options(2), first, (1, 112, 112, 24)))
    out.append(("fully connected 1280->1000", BuiltinOp.FULLY_CONNECTED,
                [((1, 1280), F32), rng.standard_normal((1000, 1280)).astype(F32),
                 rng.standard_normal(1000).astype(F32)], {}, (1, 1280), (1, 1000)))
    # ds_cnn_kws (keyword spotting): 10x4 first filter on one channel, then 64 channels at 25x5
    kws = (1, 49, 10, 1)
    out.append(("conv 10x4 s2 (49, 10, 1)->64", BuiltinOp.CONV_2D,
                [(kws, F32), rng.standard_normal((64, 10, 4, 1)).astype(F32),
                 rng.standard_normal(64).astype(F32)], conv_options(2), kws, (1, 25, 5, 64)))
    small = (1, 25, 5, 64)
    out.append(("depthwise 3x3 s1 (25, 5, 64)", BuiltinOp.DEPTHWISE_CONV_2D,
                [(small, F32), rng.standard_normal((1, 3, 3, 64)).astype(F32),
                 rng.standard_normal(64).astype(F32)], conv_options(1, depth_multiplier=1),
                small, small))
    out.append(("conv 1x1 (25, 5, 64)->64", BuiltinOp.CONV_2D,
                [(small, F32), rng.standard_normal((64, 1, 1, 64)).astype(F32),
                 rng.standard_normal(64).astype(F32)], conv_options(1), small, small))
    same = (1, 56, 56, 24)
    out.append(("add (56, 56, 24)", BuiltinOp.ADD,
                [(same, F32), rng.standard_normal(same).astype(F32)], {}, same, same))
    # iris_landmark's residual blocks: PRELU with per-channel slopes, ADD of two activations
    iris = (1, 32, 32, 64)
    out.append(("prelu (32, 32, 64)", BuiltinOp.PRELU,
                [(iris, F32), rng.standard_normal((1, 1, 64)).astype(F32)], {}, iris, iris))
    out.append(("add (32, 32, 64)", BuiltinOp.ADD,
                [(iris, F32), rng.standard_normal(iris).astype(F32)], {}, iris, iris))
    return out


def main(argv=None):
    from ai_edge_litert.interpreter import Interpreter as LiteRT

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=200)
    ap.add_argument("--only", default="", help="run only the layers whose name contains this")
    args = ap.parse_args(argv)
    rng = np.random.default_rng(0)
    print(f"{'layer':34s} {'edgeq us':>9s} {'LiteRT us':>9s} {'ratio':>6s}")
    for name, op, inputs, options, in_shape, out_shape in layers(rng):
        if args.only not in name:
            continue
        model = single_op_model(op, inputs, options=options, output_shapes=[out_shape])
        x = rng.standard_normal(in_shape).astype(F32)
        runtimes = [edgeq.Interpreter(model_content=model, num_threads=1),
                    LiteRT(model_content=model, num_threads=1)]
        for it in runtimes:
            it.allocate_tensors()
            it.set_tensor(it.get_input_details()[0]["index"], x)
            it.invoke()
        best = [float("inf")] * 2
        for _ in range(args.runs):
            for k, it in enumerate(runtimes):
                start = time.perf_counter()
                it.invoke()
                best[k] = min(best[k], time.perf_counter() - start)
        print(f"{name:34s} {best[0] * 1e6:9.1f} {best[1] * 1e6:9.1f} {best[0] / best[1]:6.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
