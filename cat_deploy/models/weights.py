"""Weights on which every CAT branch reaches the output: what parity evidence and benchmarks need.

A freshly built CAT model hides CAT from any comparison: its colla-factors start at 0, so
``C'_A = 0`` and the spatial conv sees 0, the gate is exactly 0.5 and the pooling, MLP and 7x7
conv never reach the output; and timm zero-initialises each ResNet block's last BatchNorm, so
every CAT input there is exactly 0. :func:`exercise_cat` draws seeded values for all of these.
"""
from __future__ import annotations

import torch
import torch.nn as nn

from ..layers import CAT

__all__ = ["exercise_cat"]


@torch.no_grad()
def exercise_cat(model: nn.Module, seed: int = 0, input_size: tuple[int, int] | None = None) -> nn.Module:
    """Make every CAT branch matter (in place) and return ``model``.

    * each CAT module: colla-factors (interior and exterior) drawn from N(0, 1) with magnitude at
      least 0.3, MLP weights and the spatial conv re-drawn (Kaiming-uniform, scaled so the gate
      logits are O(1));
    * every BatchNorm whose weight is all zero (timm's ``zero_init_last``) gets weights in [0.2, 0.5],
      so residual branches, and the CAT modules on them, carry signal;
    * BatchNorm running statistics re-estimated on one seeded random batch (2 images at
      ``input_size``, default ``model.config.input_size``), so every layer sees inputs of unit scale as in
      a trained network, instead of the vanishing or exploding activations of an untrained one in eval mode.

    Example:
        >>> model = exercise_cat(create_model("resnet50", num_classes=10), seed=0)
    """
    g = torch.Generator().manual_seed(seed)

    def draw(shape, lo=0.0, hi=1.0):
        return torch.rand(shape, generator=g) * (hi - lo) + lo

    for m in model.modules():
        if isinstance(m, CAT):
            for p in (m.channel_factors, m.spatial_factors, m.exterior_factors):
                v = torch.randn(p.shape, generator=g)
                v = torch.where(v.abs() < 0.3, 0.3 * torch.sign(v + 1e-12), v)
                p.copy_(v.to(p))
            for sub in m.modules():
                if isinstance(sub, (nn.Linear, nn.Conv2d)):
                    bound = (3.0 / sub.weight[0].numel()) ** 0.5
                    sub.weight.copy_(draw(sub.weight.shape, -bound, bound).to(sub.weight))
        elif isinstance(m, nn.modules.batchnorm._BatchNorm) and m.weight is not None and not m.weight.any():
            m.weight.copy_(draw(m.weight.shape, 0.2, 0.5).to(m.weight))
    _recalibrate_bn(model, g, input_size)
    return model


def _recalibrate_bn(model: nn.Module, g: torch.Generator, input_size) -> None:
    bns = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats]
    if not bns:
        return
    if input_size is None:
        config = getattr(model, "config", None)
        input_size = tuple(config.input_size) if config is not None else (224, 224)
    p = next(model.parameters())
    x = torch.randn((2, 3, *input_size), generator=g).to(p)
    was_training = model.training
    momenta = [m.momentum for m in bns]
    for m in bns:
        m.reset_running_stats()
        m.momentum = None  # cumulative average: one batch sets the statistics exactly
    model.train()
    model(x)
    for m, mom in zip(bns, momenta):
        m.momentum = mom
    model.train(was_training)
