"""Parity verdicts that cannot pass without evidence: finite INT8 tolerances, NaN/Inf by position,
nothing compared is a failure, too few matched detections is a failure."""
import numpy as np
import pytest

from cat_deploy.validate.parity import MIN_MATCHED_DETECTIONS, TOLERANCES, compare_outputs, detection_verdict, \
    match_detections

RNG = np.random.default_rng(0)
REF = {"logits": RNG.standard_normal((8, 100)).astype(np.float32) * 4}


def verdict(out, precision="int8"):
    return compare_outputs(REF, {"logits": out}, TOLERANCES[precision])["logits"]


def test_int8_tolerances_are_finite():
    for precision, tol in TOLERANCES.items():
        for field, value in vars(tol).items():
            assert np.isfinite(value), f"{precision}.{field} is {value}"
    assert TOLERANCES["int8"].min_cosine >= 0.98 and TOLERANCES["int8"].max_map_drop <= 0.02


def test_int8_accepts_quantisation_noise():
    noisy = REF["logits"] + RNG.standard_normal(REF["logits"].shape).astype(np.float32) * 0.01 * 4
    s = verdict(noisy)
    assert s["passed"], s


@pytest.mark.parametrize("name,broken", [
    ("output scale off by 25% (cosine stays 1)", lambda r: r * 1.25),
    ("zero point off by 1/8 of the range", lambda r: r + 0.125 * np.abs(r).max()),
    ("noise that bends the output", lambda r: r + RNG.standard_normal(r.shape).astype(np.float32) * 1.0),
    ("one output row garbage", lambda r: np.concatenate([r[:1] * 0 + 9, r[1:]])),
])
def test_int8_rejects_broken_quantisation(name, broken):
    s = verdict(broken(REF["logits"]))
    assert not s["passed"], f"{name}: {s}"


def test_nan_where_reference_is_finite_fails_even_with_equal_counts():
    ref = REF["logits"].copy()
    ref[0, 0] = np.nan  # PyTorch NaN here ...
    out = ref.copy()
    out[0, 0], out[3, 7] = 1.0, np.nan  # ... the artefact NaN elsewhere: same count, different place
    s = compare_outputs({"logits": ref}, {"logits": out}, TOLERANCES["fp32"])["logits"]
    assert not s["passed"] and s["nonfinite_where_ref_finite"] == 1 and "NaN/Inf" in s["reason"]


@pytest.mark.parametrize("ref,out", [(np.zeros((1, 0)), np.zeros((1, 0))), (np.full(4, np.nan), np.full(4, np.nan))])
def test_nothing_to_compare_fails(ref, out):
    s = compare_outputs({"y": ref}, {"y": out}, TOLERANCES["fp32"])["y"]
    assert not s["passed"] and "no finite element" in s["reason"]


def dets(n, shift=0.0):
    boxes = np.array([[10.0 * i, 0, 10.0 * i + 8, 8] for i in range(n)]) + shift
    return [{"boxes": boxes, "scores": np.full(n, 0.9), "labels": np.zeros(n, int)}]


@pytest.mark.parametrize("n", [0, 1, MIN_MATCHED_DETECTIONS - 1])
def test_too_few_detections_fail(n):
    v = detection_verdict(match_detections(dets(n), dets(n)), TOLERANCES["fp32"])
    assert not v["passed"] and f"only {n} detections matched" in v["reason"]


def test_enough_identical_detections_pass_and_moved_ones_fail():
    n = MIN_MATCHED_DETECTIONS + 5
    assert detection_verdict(match_detections(dets(n), dets(n)), TOLERANCES["fp32"])["passed"]
    assert not detection_verdict(match_detections(dets(n), dets(n, shift=2.0)), TOLERANCES["fp32"])["passed"]
