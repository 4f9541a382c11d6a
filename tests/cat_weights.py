"""Test helpers: CAT-sensitive weights and the check that CAT's pooling reaches the output."""
from __future__ import annotations

import contextlib

import torch
import torch.nn as nn

from cat_deploy.layers import CAT
from cat_deploy.models import exercise_cat

__all__ = ["exercise_cat", "perturbed_pooling", "pooling_sensitivity", "assert_cat_reaches_output", "STATS"]

STATS = ("channel_avg", "channel_max", "channel_ent", "spatial_avg", "spatial_max", "spatial_ent")


@contextlib.contextmanager
def perturbed_pooling(model: nn.Module, stat: str | None = None, seed: int = 0):
    """Within the block, every CAT module's pooled statistic ``stat`` (all six when None) gets seeded
    noise of half its own standard deviation added: a non-affine change that min-max normalisation
    cannot undo."""
    g = torch.Generator().manual_seed(seed)
    mods = [m for m in model.modules() if isinstance(m, CAT)]
    originals = [m.pool for m in mods]

    def wrap(orig):
        def pool(x):
            channel, spatial = orig(x)
            channel, spatial = channel.clone(), spatial.clone()
            for i, name in enumerate(STATS):
                if stat is not None and name != stat:
                    continue
                t = channel[:, i % 3] if i < 3 else spatial[:, i % 3]
                noise = torch.randn(t.shape, generator=g).to(t) * (0.5 * t.float().std().clamp_min(1e-3)).to(t)
                t.add_(noise)
            return channel, spatial
        return pool

    try:
        for m, o in zip(mods, originals):
            m.pool = wrap(o)
        yield
    finally:
        for m in mods:
            del m.pool  # back to the class method


@torch.no_grad()
def pooling_sensitivity(model: nn.Module, x: torch.Tensor, stat: str | None = None) -> float:
    """Relative change of the model's (first) output when CAT's pooled statistic ``stat`` is perturbed."""
    def first(o):
        return o[0] if isinstance(o, (tuple, list)) else o

    ref = first(model(x)).double()
    with perturbed_pooling(model, stat):
        out = first(model(x)).double()
    return float((out - ref).norm() / ref.norm().clamp_min(1e-12))


def assert_cat_reaches_output(model: nn.Module, x: torch.Tensor, min_all: float = 1e-3, min_each: float = 5e-5) -> float:
    """Fail unless CAT's pooling reaches ``model``'s output on ``x``: perturbing all six statistics must
    change it by more than ``min_all`` (relative), each statistic alone by more than ``min_each``.

    The check a parity test makes on its model before it counts as evidence about CAT: on a fresh
    CAT model (colla-factors 0) every sensitivity is exactly 0. Returns the all-statistics value.
    """
    model.eval()
    total = pooling_sensitivity(model, x)
    assert total > min_all, f"perturbing CAT's pooling changes the output by {total:.1e} only: CAT is inert here"
    for stat in STATS:
        s = pooling_sensitivity(model, x, stat)
        assert s > min_each, f"perturbing CAT's {stat} changes the output by {s:.1e} only (< {min_each:g})"
    return total
