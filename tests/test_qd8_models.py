"""The dynamic-range int8 (QD8) shared models against LiteRT, which runs them through XNNPack's
QD8 path.

Tolerance, from measurement (seed 1 inputs, see the report in benchmarks/README.md): edgeq's
outputs differ from LiteRT's by at most ~5% of the output range on mobilenet_v2 and ~1e-7 on
ds_cnn_kws. These random-weight networks are that sensitive: perturbing the input by one float
ulp moves LiteRT's own qd8 output by up to 11% of its range (a single activation rounding to the
other int8 neighbour is amplified by every later layer). QD8_REL sits above that noise floor but
far below what a wrong kernel gives (a wrong zero point or scale is off by the whole range).

The accuracy target is the one that matters to users: edgeq's deviation from the fp32 model is at
most 1.25x LiteRT's own qd8 deviation from it.
"""
from __future__ import annotations

import importlib.util

import numpy as np
import pytest

import edgeq
from harness import assert_close_to_range, litert_interpreter, shared_model
from test_models import QD8_MODELS, recorded_outputs, run

QD8_REL = 0.15
ACCURACY_FACTOR = 1.25


def _edgeq_outputs(name):
    path = shared_model(name)
    try:
        ours = edgeq.Interpreter(model_path=str(path), num_threads=1)
    except edgeq.ModelError as e:
        # Only ops outside the QD8 family may be missing (they land from other branches).
        if "not supported by edgeq" in str(e) and "CONV" not in str(e).split("(first")[0] \
                and "FULLY_CONNECTED" not in str(e).split("(first")[0]:
            pytest.skip(f"{name} needs an op this build lacks: {e}")
        raise
    return ours, run(ours, name, seed=1)


def _litert_outputs(name, ran):
    if importlib.util.find_spec("ai_edge_litert") is None:
        return recorded_outputs(name, ran)
    return run(litert_interpreter(model_path=str(shared_model(name))), name, seed=1)


@pytest.mark.parametrize("name", QD8_MODELS)
def test_qd8_model_matches_litert(name):
    ours, actual = _edgeq_outputs(name)
    expected = _litert_outputs(name, ours)
    assert len(actual) == len(expected)
    for k, (a, e) in enumerate(zip(actual, expected)):
        assert_close_to_range(a, e, QD8_REL, what=f"{name} output {k}")


@pytest.mark.parametrize("name", QD8_MODELS)
def test_qd8_model_is_as_accurate_as_litert(name):
    ours, actual = _edgeq_outputs(name)
    litert_qd8 = _litert_outputs(name, ours)
    fp32_name = name.replace(".qd8.", ".fp32.")
    fp32 = _litert_outputs(fp32_name, ours)
    for k, (a, q, f) in enumerate(zip(actual, litert_qd8, fp32)):
        ours_dev = float(np.max(np.abs(a.astype(np.float64) - f)))
        litert_dev = float(np.max(np.abs(q.astype(np.float64) - f)))
        assert ours_dev <= ACCURACY_FACTOR * litert_dev + 1e-6, (
            f"{name} output {k}: edgeq deviates {ours_dev:.3g} from fp32, LiteRT's qd8 "
            f"{litert_dev:.3g}")
