"""Hostile models through the whole runtime (read, prepare, plan, invoke).

Mutated models must load and run or be refused with ModelError (or fail an invoke with
InvokeError): any other exception is a bug, and a crash kills the child process this test runs
them in — which fails the test instead of the whole suite.
"""
from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from harness import SHARED_MODELS

CHILD = textwrap.dedent(r"""
    import sys, traceback
    import numpy as np
    import edgeq

    def feed(it, rng):
        for d in it.get_input_details():
            shape = tuple(int(s) for s in d["shape"])
            if np.prod(shape) > 1 << 22:
                return False
            if np.issubdtype(d["dtype"], np.integer):
                x = rng.integers(-3, 1000, shape).astype(d["dtype"])
            elif d["dtype"] == np.bool_:
                x = rng.integers(0, 2, shape).astype(bool)
            else:
                x = rng.standard_normal(shape).astype(d["dtype"])
            it.set_tensor(d["index"], x)
        return True

    path, seed, count, region = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    base = open(path, "rb").read()
    rng = np.random.default_rng(seed)
    outcomes = {"ok": 0, "refused": 0, "invoke_error": 0}
    for k in range(count):
        data = bytearray(base)
        for _ in range(int(rng.integers(1, 4))):
            pos = int(rng.integers(0, min(region, len(data))))
            data[pos] = int(rng.integers(0, 256))
        try:
            it = edgeq.Interpreter(model_content=bytes(data), num_threads=1)
            it.allocate_tensors()
            if feed(it, rng):
                it.invoke()
            outcomes["ok"] += 1
        except edgeq.ModelError:
            outcomes["refused"] += 1
        except edgeq.InvokeError:
            outcomes["invoke_error"] += 1
        except Exception:
            print("UNEXPECTED on mutation", k)
            traceback.print_exc()
            sys.exit(3)
    print(outcomes)
""")


def run_child(path: Path, seed: int, count: int, region: int):
    proc = subprocess.run([sys.executable, "-c", CHILD, str(path), str(seed), str(count),
                           str(region)], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, (f"child died or raised (exit {proc.returncode}):\n"
                                  f"{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return proc.stdout


@pytest.mark.parametrize("name", ["ds_cnn_kws.fp32.tflite", "tiny_bert.fp16.tflite",
                                  "face_detection_short_range.tflite"])
def test_mutated_shared_models_never_crash(name):
    path = SHARED_MODELS / name
    if not path.exists():
        pytest.skip(f"{path} is absent (the shared model folder ships with CI, not with clones)")
    # Structure (tables, shapes, options) sits in the first part of converter-written files;
    # mutate there, where a mistake would matter.
    out = run_child(path, seed=11, count=300, region=16384)
    assert "refused" in out


def test_mutated_small_models_never_crash(tmp_path):
    import numpy as np

    from edgeq.tflite.schema import BuiltinOp
    from edgeq.tflite.writer import ModelBuilder

    b = ModelBuilder()
    x = b.add_tensor("x", [1, 8, 8, 3], np.float32)
    w = b.add_tensor("w", [4, 3, 3, 3], np.float32,
                     data=np.random.default_rng(0).standard_normal((4, 3, 3, 3)).astype("f4"))
    bias = b.add_tensor("b", [4], np.float32, data=np.ones(4, np.float32))
    c = b.add_tensor("c", [1, 4, 4, 4], np.float32)
    b.add_operator(BuiltinOp.CONV_2D, [x, w, bias], [c],
                   options={"padding": 0, "stride_w": 2, "stride_h": 2})
    shape = b.add_tensor("shape", [2], np.int32, data=np.array([1, 64], np.int32))
    r = b.add_tensor("r", [1, 64], np.float32)
    b.add_operator(BuiltinOp.RESHAPE, [c, shape], [r])
    s = b.add_tensor("s", [1, 64], np.float32)
    b.add_operator(BuiltinOp.SOFTMAX, [r], [s], options={"beta": 1.0})
    b.set_inputs([x])
    b.set_outputs([s])
    path = tmp_path / "small.tflite"
    path.write_bytes(b.build())
    out = run_child(path, seed=5, count=1500, region=1 << 20)
    assert "refused" in out
