"""Parity never passes on outputs it could not compare (issue 14, case 8)."""
import numpy as np

from cat_deploy.validate.parity import TOLERANCES, compare_outputs

TOL = TOLERANCES["fp32"]


def _verdict(ref, out):
    return compare_outputs({"y": np.asarray(ref, np.float32)}, {"y": np.asarray(out, np.float32)}, TOL)["y"]


def test_all_nan_on_both_sides_fails():
    """Cosine over zero finite values was reported as 1.0 and passed."""
    nan = np.full((2, 8), np.nan)
    s = _verdict(nan, nan)
    assert not s["passed"] and "finite" in s["reason"]


def test_nan_where_pytorch_is_finite_fails_even_when_the_counts_match():
    rng = np.random.default_rng(0)
    ref = rng.standard_normal((4, 16))
    out = ref.copy()
    ref[0, 0] = np.nan  # PyTorch NaN here ...
    out[3, 5] = np.nan  # ... the artefact NaN elsewhere: equal counts, different places
    s = _verdict(ref, out)
    assert not s["passed"] and "NaN" in s["reason"]
    out2 = ref.copy()
    out2[1, 1] = np.inf
    assert not _verdict(ref, out2)["passed"]


def test_finite_and_equal_outputs_still_pass():
    x = np.random.default_rng(1).standard_normal((3, 5))
    assert _verdict(x, x)["passed"]
    ref = x.copy()
    ref[0, 0] = np.nan  # the same non-finite element on both sides is not the artefact's fault
    assert _verdict(ref, ref.copy())["passed"]
