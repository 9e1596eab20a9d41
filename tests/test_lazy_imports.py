"""Loading and running a model imports neither the model writer nor the flatbuffers package
(they only build models), while edgeq.tflite.ModelBuilder still works on first use."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MODEL = ROOT.parent / "shared" / "models" / "mobilenet_v2.fp32.tflite"

_SCRIPT = """
import sys
import numpy as np
import edgeq
from edgeq.tflite import read_model
{load}
it.allocate_tensors()
it.set_tensor(it.get_input_details()[0]["index"],
              np.zeros(it.get_input_details()[0]["shape"], it.get_input_details()[0]["dtype"]))
it.invoke()
print(sorted(m for m in sys.modules if m == "edgeq.tflite.writer" or m == "flatbuffers"
             or m.startswith("flatbuffers.")))
import edgeq.tflite
print(edgeq.tflite.ModelBuilder.__module__)
"""


def _run(load: str) -> list:
    proc = subprocess.run([sys.executable, "-c", _SCRIPT.format(load=load)], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip().splitlines()


def test_running_a_built_model_imports_no_writer():
    # The model is built in the parent, so the child that loads it never needs the writer.
    from edgeq.tflite import ModelBuilder
    import numpy as np
    from edgeq.tflite.schema import BuiltinOp

    b = ModelBuilder()
    x = b.add_tensor("x", [1, 4], np.float32)
    y = b.add_tensor("y", [1, 4], np.float32)
    b.add_operator(BuiltinOp.RELU, [x], [y])
    b.set_inputs([x])
    b.set_outputs([y])
    path = ROOT / "build" / "lazy_imports_relu.tflite"
    path.parent.mkdir(exist_ok=True)
    path.write_bytes(b.build())
    modules, builder = _run(f"it = edgeq.Interpreter(model_path={str(path)!r})")
    assert modules == "[]"
    assert builder == "edgeq.tflite.writer"


def test_running_a_shared_model_imports_no_writer():
    if not MODEL.exists():
        import pytest

        pytest.skip(f"{MODEL} not present")
    modules, _ = _run(f"it = edgeq.Interpreter(model_path={str(MODEL)!r})")
    assert modules == "[]"
