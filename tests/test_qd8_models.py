"""The dynamic-range int8 (QD8) shared models against LiteRT, which runs them through XNNPack's
QD8 path.

Tolerance, from measurement over 14 inputs (seeds 0-13): edgeq's outputs differ from LiteRT's by
at most 1e-5 of the output range on ds_cnn_kws, 3e-4 on tiny_bert, 12.5% on mobilenet_v2 and
12.7% on mobilenet_v3_small. The MobileNets are that sensitive: edgeq reproduces each of their
QD8 layers bit for bit given LiteRT's own input to it, but edgeq's float layers (HARD_SWISH,
ADD, the float convolutions) differ from XNNPack's in the last bit, which now and then sends an
activation to the other int8 neighbour, and these random-weight networks amplify that: perturbing
the input by one float ulp moves LiteRT's own mobilenet_v3_small output by up to 12% of its
range. QD8_REL sits above that noise floor and far below what a wrong kernel gives (a wrong zero
point, scale or rounding rule is off by the whole range).

The accuracy target is the one that matters to users: edgeq's deviation from the fp32 model is at
most 1.25x LiteRT's own qd8 deviation from it. On one input that ratio is dominated by which
activations happen to round the other way (per input on the MobileNets it ranges from 0.5x to
3x), so it is taken in RMS over ACCURACY_SEEDS inputs. Measured: ds_cnn_kws 1.00, mobilenet_v2
1.04, mobilenet_v3_small 0.66, tiny_bert 1.00.
"""
from __future__ import annotations

import importlib.util

import numpy as np
import pytest

import edgeq
from edgeq.ops import qd8
from harness import assert_close_to_range, litert_interpreter, shared_model
from test_models import QD8_MODELS, recorded_outputs, run

QD8_REL = 0.15
# On ARM cores without sdot the depthwise convs of a QD8 model (and shallow non-pointwise convs)
# run as float ones on their dequantized weights (edgeq/ops/qd8.py runs_float_layers): closer to the fp32 model than
# LiteRT's QD8 (test_float_depthwise_is_as_accurate_as_litert), but no longer LiteRT's rounding,
# and MobileNetV2's random weights amplify every activation that rounds the other way. Measured
# on x86 with that path forced, seeds 0-13: mobilenet_v2 within 33.4% of LiteRT's qd8 output
# range, mobilenet_v3_small 14.9%, ds_cnn_kws 0.3% (its first conv runs float), tiny_bert
# unchanged; mobilenet_v2's own distance from the fp32 model is 22-25% of that range.
FLOAT_DW_REL = 0.40
ACCURACY_FACTOR = 1.25
ACCURACY_SEEDS = range(14)


def _edgeq_outputs(name, seed=1):
    path = shared_model(name)
    try:
        ours = edgeq.Interpreter(model_path=str(path), num_threads=1)
    except edgeq.ModelError as e:
        # Only ops outside the QD8 family may be missing (they land from other branches).
        if "not supported by edgeq" in str(e) and "CONV" not in str(e).split("(first")[0] \
                and "FULLY_CONNECTED" not in str(e).split("(first")[0]:
            pytest.skip(f"{name} needs an op this build lacks: {e}")
        raise
    return ours, run(ours, name, seed=seed)


def _litert_outputs(name, ran, seed=1):
    if importlib.util.find_spec("ai_edge_litert") is None:
        if seed != 1:
            pytest.skip("LiteRT is not installed; only seed 1 outputs are recorded")
        return recorded_outputs(name, ran)
    return run(litert_interpreter(model_path=str(shared_model(name))), name, seed=seed)


@pytest.mark.parametrize("name", QD8_MODELS)
def test_qd8_model_matches_litert(name):
    ours, actual = _edgeq_outputs(name)
    expected = _litert_outputs(name, ours)
    assert len(actual) == len(expected)
    rel = FLOAT_DW_REL if qd8.runs_float_layers() else QD8_REL
    for k, (a, e) in enumerate(zip(actual, expected)):
        assert_close_to_range(a, e, rel, what=f"{name} output {k}")


@pytest.mark.parametrize("name", QD8_MODELS)
def test_qd8_model_is_as_accurate_as_litert(name):
    fp32_name = name.replace(".qd8.", ".fp32.")
    ours_sq = litert_sq = 0.0
    for seed in ACCURACY_SEEDS:
        ours, actual = _edgeq_outputs(name, seed)
        litert_qd8 = _litert_outputs(name, ours, seed)
        fp32 = _litert_outputs(fp32_name, ours, seed)
        for a, q, f in zip(actual, litert_qd8, fp32):
            ours_sq += float(np.mean((a.astype(np.float64) - f) ** 2))
            litert_sq += float(np.mean((q.astype(np.float64) - f) ** 2))
    ours_rms, litert_rms = np.sqrt(ours_sq), np.sqrt(litert_sq)
    assert ours_rms <= ACCURACY_FACTOR * litert_rms + 1e-9, (
        f"{name}: edgeq's RMS deviation from fp32 over {len(ACCURACY_SEEDS)} inputs is "
        f"{ours_rms:.3g}, LiteRT's qd8 {litert_rms:.3g}")


@pytest.mark.parametrize("name", ["ds_cnn_kws.qd8.tflite", "mobilenet_v2.qd8.tflite",
                                  "mobilenet_v3_small.qd8.tflite"])
def test_float_layers_are_as_accurate_as_litert(name, monkeypatch):
    """The plain-NEON path (float depthwise and shallow convs on dequantized weights) meets the
    accuracy target too; checked wherever LiteRT runs, forced on (measured ratio: ds_cnn_kws
    0.96, mobilenet_v2 1.03, mobilenet_v3_small 0.64)."""
    monkeypatch.setattr(qd8, "runs_float_layers", lambda: True)
    test_qd8_model_is_as_accurate_as_litert(name)


# --- Interpreter(quantize="qd8"): a float model run as the converter's dynamic-range one -------

# Measured (seeds 1-3): ds_cnn_kws gives the qd8 model's outputs bit for bit, mobilenet_v3_small
# within 5e-5 of the output range, mobilenet_v2 within 0.15-1.03% of it (a handful of weights
# round the other way, and MobileNetV2's random weights amplify each flipped int8 activation),
# so the weights and their scales are the converter's. tiny_bert is left out: its converter also
# quantizes the embedding table behind GATHER, which this mode leaves float.
@pytest.mark.parametrize("model,rel", [("ds_cnn_kws", 0.0), ("mobilenet_v2", 0.02),
                                       ("mobilenet_v3_small", 0.001)])
def test_quantize_qd8_reproduces_the_converter(model, rel):
    fp32, qd8 = f"{model}.fp32.tflite", f"{model}.qd8.tflite"
    ours = edgeq.Interpreter(model_path=str(shared_model(fp32)), num_threads=1, quantize="qd8")
    actual = run(ours, fp32, seed=1)
    expected = run(edgeq.Interpreter(model_path=str(shared_model(qd8)), num_threads=1), qd8,
                   seed=1)
    for a, e in zip(actual, expected):
        if rel == 0.0:
            np.testing.assert_array_equal(a, e)
        else:
            assert_close_to_range(a, e, rel)


def test_quantize_mode_is_checked():
    with pytest.raises(ValueError, match=r"quantize='int4': the only mode is 'qd8'"):
        edgeq.Interpreter(model_path=str(shared_model("ds_cnn_kws.fp32.tflite")),
                          quantize="int4")
