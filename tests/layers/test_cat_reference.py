"""CAT's forward against the independent float64 reference written from docs/cat_spec.md alone.

``tests/cat_reference.py`` is numpy only and imports nothing of cat_deploy, so these tests compare
two implementations written separately: every switch that changes the output (both fusions, the
entropy norms, the interior norms, the GMP filters, MLP on/off, the MLP's size and activation, the
Gaussian and spatial kernel sizes), both GEP formulations, odd shapes and batches > 1. Weights come
from ``exercise_cat`` (every colla-factor off 0, MLP and conv redrawn), so every branch reaches the
output. The error is relative, per element.
"""
import itertools
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from cat_reference import cat_forward_ref, cat_params, cat_pool_ref, rel_err  # noqa: E402

from cat_deploy.layers import CAT, cat_pool  # noqa: E402
from cat_deploy.models import exercise_cat  # noqa: E402

F64_TOL = 1e-12  # float64 against float64: only the order of the operations differs (measured: 9e-15)
F32_TOL = 1e-5  # the float32 module against float64, on the same float32 input values (measured: 5e-7)

REF_KEYS = ("gmp_filter", "gmp_kernel_size", "gmp_sigma", "entropy_norm", "channel_mlp", "interior_norm", "fusion")


def build(C: int, seed: int = 0, dtype=torch.float64, **opts) -> CAT:
    return exercise_cat(CAT(C, **opts), seed).to(dtype).eval()


def reference(m: CAT, x: torch.Tensor, opts: dict, act: str = "relu") -> np.ndarray:
    kw = {k: opts[k] for k in REF_KEYS if k in opts}
    return cat_forward_ref(x.double().numpy(), cat_params(m.state_dict()), act=act, **kw)


def feature_map(shape, seed=0, dtype=torch.float64) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(shape, generator=g, dtype=torch.float64) * 2 + 0.3).to(dtype)


COMBOS = [dict(zip(("gmp_filter", "entropy_norm", "fusion", "interior_norm", "channel_mlp"), v))
          for v in itertools.product(("paper", "2d", "none"), ("minmax", "minmax_signed", "none"),
                                     ("algorithm1", "eq1"), ("none", "softmax"), (True, False))]


@pytest.mark.parametrize("opts", COMBOS, ids=lambda o: "-".join(str(v) for v in o.values()))
def test_switch_combinations_float64(opts):
    x = feature_map((2, 24, 9, 13))
    for gep in ("reference", "stable"):
        m = build(24, gep=gep, **opts)
        with torch.no_grad():
            got = m(x).numpy()
        err = rel_err(got, reference(m, x, opts))
        assert err.max() <= F64_TOL, f"gep={gep}: worst relative error {err.max():.2e}"


MORE = [
    ((1, 1, 1, 1), dict()),
    ((3, 5, 1, 7), dict(gmp_filter="2d")),
    ((2, 7, 6, 1), dict(gmp_filter="paper", fusion="eq1")),
    ((2, 1, 5, 5), dict(entropy_norm="minmax_signed")),
    ((1, 16, 1, 1), dict(interior_norm="softmax")),
    ((2, 33, 17, 3), dict(gmp_kernel_size=3, spatial_kernel_size=3)),
    ((2, 12, 11, 14), dict(gmp_kernel_size=7, gmp_sigma=0.7, spatial_kernel_size=5)),
    ((4, 40, 5, 6), dict(rd_channels=5, act_layer="silu")),
    ((2, 40, 7, 5), dict(rd_ratio=0.25, rd_divisor=4, act_layer="gelu")),
    ((2, 20, 3, 31), dict(gmp_filter="none", entropy_norm="none", channel_mlp=False, fusion="eq1")),
]


@pytest.mark.parametrize("shape,opts", MORE, ids=lambda v: "x".join(map(str, v)) if isinstance(v, tuple) else None)
def test_odd_shapes_and_options_float64(shape, opts):
    x = feature_map(shape, seed=1)
    m = build(shape[1], seed=2, **opts)
    if "rd_channels" in opts:
        assert m.mlp[0].out_features == opts["rd_channels"]
    with torch.no_grad():
        got = m(x).numpy()
    err = rel_err(got, reference(m, x, opts, act=opts.get("act_layer", "relu")))
    assert err.max() <= F64_TOL, f"worst relative error {err.max():.2e}"


@pytest.mark.parametrize("opts", [dict(), dict(gmp_filter="2d", fusion="eq1", entropy_norm="minmax_signed"),
                                  dict(interior_norm="softmax", gmp_filter="none")], ids=str)
def test_float32_module(opts):
    """The float32 layer (what is trained and exported) on float32 inputs, against float64."""
    x = feature_map((2, 32, 10, 9), seed=3, dtype=torch.float32)
    m = build(32, seed=4, dtype=torch.float32, **opts)
    with torch.no_grad():
        got = m(x).numpy()
    err = rel_err(got, reference(m, x, opts))
    assert err.max() <= F32_TOL, f"worst relative error {err.max():.2e}"


@pytest.mark.parametrize("filt", ["paper", "2d", "none"])
@pytest.mark.parametrize("gep", ["reference", "stable"])
def test_cat_pool_statistics_float64(filt, gep):
    x = feature_map((3, 11, 7, 10), seed=5)
    m = CAT(11, gmp_filter=filt).double()
    got = cat_pool(x, m.gmp_taps, filt, gep)
    for g, w in zip(got, cat_pool_ref(x.numpy(), filt)):
        err = rel_err(g.numpy(), w)
        assert err.max() <= F64_TOL, f"worst relative error {err.max():.2e}"


DIFFERENT = [("gmp_filter", "2d"), ("gmp_filter", "none"), ("entropy_norm", "minmax_signed"), ("entropy_norm", "none"),
             ("fusion", "eq1"), ("interior_norm", "softmax"), ("channel_mlp", False), ("gmp_kernel_size", 3),
             ("gmp_sigma", 2.0)]


@pytest.mark.parametrize("name,value", DIFFERENT)
def test_comparison_sees_every_switch(name, value):
    """The check can fail: the default module misses the reference computed with one switch changed."""
    x = feature_map((2, 24, 9, 13))
    m = build(24)
    with torch.no_grad():
        got = m(x).numpy()
    assert rel_err(got, reference(m, x, {name: value})).max() > 1e-3, f"{name}={value} is invisible to the comparison"


def test_taps_exact_after_cast_to_float64():
    """CAT built in float32 then .double(): the Gaussian taps are the float64 ones, not float32 rounded up."""
    from cat_reference import gaussian_taps

    m = CAT(8, gmp_kernel_size=5).double()
    np.testing.assert_array_equal(m.gmp_taps[0].numpy(), gaussian_taps(5))
    assert m.half().gmp_taps.dtype == torch.float16
