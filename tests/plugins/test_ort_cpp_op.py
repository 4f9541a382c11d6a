"""The compiled ONNX Runtime CPU operators (``plugins/cpp``) against independent float64 references.

``FusedCatPool`` is compared with ``tests/cat_reference.cat_pool_ref`` (numpy, float64, written from
docs/cat_spec.md, no cat_deploy import) per element, with the bound of ``plugin_cases.error_ratios``
(32 FP32 roundoffs relative, plus 32 roundoffs of what each statistic is computed from; FP16 adds its
output rounding); ``FusedCatGate`` with the gate formula of docs/cat_spec.md in float64, per element.
FP16 inputs are compared with references computed on the FP16-rounded values.
"""
import re
import zlib

import numpy as np
import onnxruntime as ort
import pytest
from cat_reference import cat_pool_ref, gaussian_taps, rel_err
from ort_graphs import gate_model, pool_model, session
from plugin_cases import RTOL, STATS, error_ratios

from cat_deploy.core.plugin_ids import FUSION_CODES, GMP_FILTER_CODES

# name: (shape, gmp_filter, dtype, scale, shift, taps)
POOL_CASES = {
    **{f"stage{i}_b{b}": ((b, c, s, s), "paper", np.float32, 1.0, 0.0, "gauss5")
       for i, (c, s) in enumerate([(256, 56), (512, 28), (1024, 14), (2048, 7)], 1) for b in (1, 2)},
    **{f"odd_{f}": ((1, 3, 5, 7), f, np.float32, 1.0, 0.0, "gauss5") for f in GMP_FILTER_CODES},
    **{f"odd_b2_{f}": ((2, 13, 9, 11), f, np.float32, 1.0, 0.0, "gauss5") for f in GMP_FILTER_CODES},
    "h_below_k_paper": ((2, 7, 2, 9), "paper", np.float32, 1.0, 0.0, "gauss5"),
    "h_below_k_2d": ((2, 7, 2, 9), "2d", np.float32, 1.0, 0.0, "gauss5"),
    "w_below_k_2d": ((1, 6, 9, 3), "2d", np.float32, 1.0, 0.0, "gauss5"),
    "1x1_paper": ((2, 5, 1, 1), "paper", np.float32, 1.0, 0.0, "gauss5"),
    "1x1_2d": ((2, 5, 1, 1), "2d", np.float32, 1.0, 0.0, "gauss5"),
    "one_channel": ((2, 1, 4, 6), "paper", np.float32, 1.0, 0.0, "gauss5"),
    "group_tail": ((1, 67, 6, 10), "paper", np.float32, 1.0, 0.0, "gauss5"),  # 3 channel groups, blocks of 4 + 3
    "k3_random_taps": ((1, 10, 11, 6), "paper", np.float32, 1.0, 0.0, "random3"),
    "k7": ((1, 7, 12, 13), "2d", np.float32, 1.0, 0.0, "gauss7"),
    "k1": ((1, 9, 5, 4), "paper", np.float32, 1.0, 0.0, "random1"),
    "scale_1e3": ((2, 40, 6, 5), "paper", np.float32, 1e3, 0.0, "gauss5"),  # logit gaps of 1e3
    "offset_500": ((1, 300, 7, 7), "2d", np.float32, 1.0, 500.0, "gauss5"),  # e^x overflows without the shift
    "offset_1e4": ((2, 11, 9, 10), "paper", np.float32, 300.0, 1e4, "gauss5"),
    "fp16": ((2, 12, 7, 9), "paper", np.float16, 3.0, 0.0, "gauss5"),
    "fp16_large": ((1, 64, 14, 14), "2d", np.float16, 2e3, 0.0, "gauss5"),
    "fp16_stage1": ((1, 256, 56, 56), "paper", np.float16, 1.0, 0.0, "gauss5"),
    # maps over 64x64 positions take the row-by-row path, smaller ones the whole-plane path
    "rows_paper": ((2, 9, 70, 72), "paper", np.float32, 1.0, 0.0, "gauss5"),
    "rows_2d_k7": ((1, 37, 65, 66), "2d", np.float32, 1.0, 0.0, "gauss7"),
    "rows_none": ((1, 5, 80, 61), "none", np.float32, 1.0, 0.0, "gauss5"),
    "rows_fp16_k3": ((1, 6, 66, 70), "paper", np.float16, 1.0, 0.0, "random3"),
    "rows_offset_1e4": ((1, 33, 90, 47), "2d", np.float32, 300.0, 1e4, "gauss5"),
    "planes_64x64": ((1, 20, 64, 64), "paper", np.float32, 1.0, 0.0, "gauss5"),
}


def make_taps(kind: str, channels: int, gen: np.random.Generator) -> np.ndarray:
    if kind.startswith("gauss"):
        return np.tile(gaussian_taps(int(kind[5:])), (channels, 1))
    return gen.uniform(0.05, 1.0, (channels, int(kind[6:])))  # per-channel, not normalised, not symmetric


def pool_inputs(case: str):
    shape, filt, dtype, scale, shift, kind = POOL_CASES[case]
    gen = np.random.default_rng(zlib.crc32(case.encode()))
    x = (gen.standard_normal(shape) * scale + shift).astype(dtype)
    return x, make_taps(kind, shape[1], gen).astype(dtype), filt, dtype


@pytest.mark.parametrize("case", POOL_CASES)
def test_pool_matches_float64_reference(ort_ops_library, case):
    x, taps, filt, dtype = pool_inputs(case)
    out = session(pool_model(GMP_FILTER_CODES[filt], dtype), ort_ops_library).run(None, {"x": x, "taps": taps})
    assert [o.dtype for o in out] == [dtype, dtype]
    assert out[0].shape == (x.shape[0], 3, x.shape[1]) and out[1].shape == (x.shape[0], 3, *x.shape[2:])
    x64 = x.astype(np.float64)
    ref = cat_pool_ref(x64, filt, taps=taps.astype(np.float64))
    ratios = error_ratios(out, ref, x64, "float16" if dtype == np.float16 else "float32")
    assert max(ratios) <= 1.0, dict(zip(STATS, ratios))


def test_pool_threads_give_identical_results(ort_ops_library):
    """The work split does not depend on the thread count: 1 and 2 threads give the same bits."""
    x, taps, filt, _ = pool_inputs("stage1_b2")
    model = pool_model(GMP_FILTER_CODES[filt])
    one, two = (session(model, ort_ops_library, t).run(None, {"x": x, "taps": taps}) for t in (1, 2))
    assert all(np.array_equal(a, b) for a, b in zip(one, two))


def gate_ref(x, c, s, exterior, fusion: str) -> np.ndarray:
    """docs/cat_spec.md's fusion of the two gates, float64 (as tests/cat_reference.cat_forward_ref ends)."""
    sig = lambda v: 1.0 / (1.0 + np.exp(-v))  # noqa: E731
    cw, sw = exterior
    c = c.reshape(*c.shape[:2], 1, 1)
    if fusion == "algorithm1":
        return x * (cw * sig(c) + sw * sig(s))
    return x * sig(cw * c) + x * sig(sw * sig(s))


@pytest.mark.parametrize("dtype", [np.float32, np.float16], ids=["fp32", "fp16"])
@pytest.mark.parametrize("fusion", FUSION_CODES)
@pytest.mark.parametrize("shape", [(2, 13, 9, 11), (1, 256, 56, 56), (2, 3, 1, 1), (1, 5, 3, 17)], ids=str)
def test_gate_matches_float64_formula(ort_ops_library, shape, fusion, dtype):
    gen = np.random.default_rng(shape[1])
    B, C, H, W = shape
    x = gen.standard_normal(shape).astype(dtype)
    c = (gen.standard_normal((B, C)) * 3).astype(dtype)
    s = (gen.standard_normal((B, 1, H, W)) * 3).astype(dtype)
    c.flat[0], s.flat[0] = 60.0, -60.0  # saturated gates
    exterior = np.array([0.62, 0.38] if fusion == "algorithm1" else [2.5, -1.75], dtype=dtype)
    sess = session(gate_model(FUSION_CODES[fusion], dtype), ort_ops_library)
    y = sess.run(None, {"x": x, "c": c, "s": s, "exterior": exterior})[0]
    assert y.dtype == dtype and y.shape == shape
    ref = gate_ref(*(a.astype(np.float64) for a in (x, c, s, exterior)), fusion)
    # per element: relative, plus FP16's absolute resolution below its normal range (half a subnormal step)
    floor = 2.0**-25 if dtype == np.float16 else 0.0
    ratio = np.abs(y - ref) / (RTOL["float16" if dtype == np.float16 else "float32"] * np.abs(ref) + floor)
    assert ratio.max() <= 1.0, (ratio.max(), rel_err(y, ref).max())


def _run_error(model, library, feed):
    with pytest.raises(Exception) as info:
        session(model, library).run(None, feed)
    return str(info.value)


@pytest.mark.parametrize("x_shape, taps_shape, message", [
    ((3, 5, 5), (3, 5), "FusedCatPool: x must be 4-D [B, C, H, W], got rank 3"),
    ((1, 4, 5, 5), (3, 5), "FusedCatPool: taps must be [C, k] = [4, k] with k odd and <= 31, got [3, 5]"),
    ((1, 4, 5, 5), (4, 4), "FusedCatPool: taps must be [C, k] = [4, k] with k odd and <= 31, got [4, 4]"),
    ((1, 4, 0, 5), (4, 5), "FusedCatPool: x must have C, H, W >= 1, got [1, 4, 0, 5]"),
])
def test_pool_bad_shapes_are_one_line(ort_ops_library, x_shape, taps_shape, message):
    err = _run_error(pool_model(1), ort_ops_library, {"x": np.zeros(x_shape, np.float32),
                                                      "taps": np.ones(taps_shape, np.float32)})
    assert message in err and "\n" not in err.strip(), err


@pytest.mark.parametrize("c_shape, s_shape, exterior, message", [
    ((1, 3), (1, 3, 4, 5), 2, "FusedCatGate: spatial_logits must be [B, 1, H, W] = [1, 1, 4, 5], got [1, 3, 4, 5]"),
    ((1, 4), (1, 1, 4, 5), 2, "FusedCatGate: channel_logits must be [B, C] = [1, 3], got [1, 4]"),
    ((1, 3), (1, 1, 4, 5), 3, "FusedCatGate: exterior must hold 2 values (cw, sw), got [3]"),
])
def test_gate_bad_shapes_are_one_line(ort_ops_library, c_shape, s_shape, exterior, message):
    feed = {"x": np.zeros((1, 3, 4, 5), np.float32), "c": np.zeros(c_shape, np.float32),
            "s": np.zeros(s_shape, np.float32), "exterior": np.ones(exterior, np.float32)}
    err = _run_error(gate_model(0), ort_ops_library, feed)
    assert message in err and "\n" not in err.strip(), err


@pytest.mark.parametrize("model, message", [
    (pool_model(7), "FusedCatPool: gmp_filter must be 0 (none), 1 (paper) or 2 (2d), got 7"),
    (gate_model(2), "FusedCatGate: fusion must be 0 (algorithm1) or 1 (eq1), got 2"),
])
def test_bad_attributes_fail_at_load(ort_ops_library, model, message):
    opts = ort.SessionOptions()
    opts.register_custom_ops_library(str(ort_ops_library))
    with pytest.raises(Exception, match=re.escape(message)):
        ort.InferenceSession(model, sess_options=opts, providers=["CPUExecutionProvider"])
