"""Transposed-convolution layers, edgeq vs LiteRT (XNNPack), one-op models, float32 and QD8
(int8 weights), side by side in one process, interleaved.

    python benchmarks/compare_deconv.py [--runs N]

Prints per layer the minimum invoke time of each runtime and their ratio, and the kernel edgeq
chose (edgeq/ops/conv.py transpose_conv_call, edgeq/ops/qd8.py prepare_transpose_conv).
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

import edgeq

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from test_qd8_transpose_conv import model  # noqa: E402  (the tests' one-op model builder)

LAYERS = [  # input size, in channels, out channels, kernel, stride (SAME padding)
    (32, 64, 32, 3, 2), (64, 32, 16, 4, 2), (128, 16, 1, 2, 2)]


def best_of(interp, runs):
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        interp.invoke()
        times.append(time.perf_counter() - t)
    return min(times)


def main(argv=None):
    from ai_edge_litert.interpreter import Interpreter as LiteRT

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=25)
    args = ap.parse_args(argv)
    rng = np.random.default_rng(0)
    print(f"{'layer':34s} {'kernel':28s} {'edgeq us':>9s} {'LiteRT us':>9s} {'ratio':>6s}")
    for h, ic, oc, k, s in LAYERS:
        w = rng.integers(-127, 128, (oc, k, k, ic)).astype(np.int8)
        scale = rng.uniform(0.001, 0.03, oc).astype(np.float32)
        x = rng.standard_normal((1, h, h, ic)).astype(np.float32)
        for float_weights in (True, False):
            m = model([1, h, h, ic], w, scale, None, [1, h * s, h * s, oc], (s, s), True,
                      float_weights=float_weights)
            ours = edgeq.Interpreter(model_content=m, num_threads=1)
            ref = LiteRT(model_content=m, num_threads=1)
            for it in (ours, ref):
                it.allocate_tensors()
                it.set_tensor(it.get_input_details()[0]["index"], x)
                it.invoke()
            a, b = [], []
            for _ in range(args.runs):  # interleaved
                a.append(best_of(ours, 1))
                b.append(best_of(ref, 1))
            kind = "f32" if float_weights else "qd8"
            name = f"{kind} {h}x{h}x{ic} -> {oc}, {k}x{k} s{s}"
            kernel = ours._get_plan().nodes[0].call.kernel
            print(f"{name:34s} {kernel:28s} {min(a) * 1e6:9.0f} {min(b) * 1e6:9.0f} "
                  f"{min(a) / min(b):6.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
