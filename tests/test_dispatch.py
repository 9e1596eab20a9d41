"""The dispatch point: CPU features, EDGEQ_ISA lowering them, and kernel lookup honouring it."""
import numpy as np
import pytest

import edgeq
from edgeq.runtime import cpu, find_kernel, kernel_names


def test_levels_only_grow():
    order = cpu._ORDER[cpu._family()]
    masks = [cpu.level_mask(level) for level in order]
    assert masks[0] == 0
    for low, high in zip(masks, masks[1:]):
        assert low & high == low and high != low


def test_edgeq_isa_lowers_and_never_raises_features(monkeypatch):
    monkeypatch.setenv("EDGEQ_ISA", "scalar")
    assert cpu.allowed() == 0
    assert edgeq.cpu_info()["allowed"] == []
    top = cpu._ORDER[cpu._family()][-1]
    monkeypatch.setenv("EDGEQ_ISA", top)
    assert cpu.allowed() == cpu.detected()  # a high level cannot add what the CPU lacks


def test_bad_edgeq_isa_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("EDGEQ_ISA", "sse9")
    with pytest.raises(ValueError, match="EDGEQ_ISA"):
        cpu.allowed()


def test_every_kernel_has_a_portable_reference():
    # Optimized variants replace a reference kernel of the same name; none may exist alone,
    # or EDGEQ_ISA=scalar (and old CPUs) would lose the op.
    for name in kernel_names():
        assert find_kernel(name, 0) is not None, name


def test_scalar_level_still_runs_a_model(monkeypatch):
    from edgeq.tflite.schema import BuiltinOp
    from harness import run_edgeq, single_op_model

    monkeypatch.setenv("EDGEQ_ISA", "scalar")
    model = single_op_model(BuiltinOp.ADD, [((3, 5), np.float32), ((5,), np.float32)])
    a, b = np.ones((3, 5), np.float32), np.arange(5, dtype=np.float32)
    np.testing.assert_array_equal(run_edgeq(model, [a, b])[0], a + b)
