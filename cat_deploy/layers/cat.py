"""CAT: collaborative channel and spatial attention with GAP, GMP and GEP.

Paper: "CAT: Learning to Collaborate Channel and Spatial Attention from
Multi-Information Fusion", Wu et al., IET Computer Vision 2022 (arXiv:2212.06335).

No official code exists; this module is the project's reference. Every point
where the paper is ambiguous or contradicts itself, and the choice made here,
is listed in ``docs/cat_spec.md``; the choices that change the output are
constructor arguments.

Follows timm's attention-layer contract (``channels`` first, ``device``/``dtype``,
``forward(x)`` returns ``x`` re-weighted), so it plugs into timm's ResNet::

    timm.create_model("resnet50", block_args=dict(attn_layer=CAT))
"""
from __future__ import annotations

from typing import Optional, Type, Union

import torch
import torch.nn as nn
from timm.layers import create_act_layer, get_act_layer, make_divisible

from .fused import cat_gate, fused_cat_gate, fused_cat_pool
from .pooling import GEP_FORMULATIONS, GMP_FILTERS, cat_pool, gaussian_kernel1d, minmax_normalize

__all__ = ["CAT", "ENTROPY_NORMS", "FUSIONS", "INTERIOR_NORMS", "cat_module_names", "set_fuse_gate", "set_gep"]

ENTROPY_NORMS = ("minmax", "minmax_signed", "none")
FUSIONS = ("algorithm1", "eq1")
INTERIOR_NORMS = ("none", "softmax")


def _require_choice(name: str, value: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ValueError(f"CAT {name} must be one of {allowed}, got {value!r}")


def _check_activation(act_layer) -> None:
    if isinstance(act_layer, str):
        try:
            get_act_layer(act_layer)
        except KeyError:
            raise ValueError(f"CAT act_layer {act_layer!r} is not an activation name timm knows "
                             "(e.g. 'relu', 'silu', 'gelu')") from None


class CAT(nn.Module):
    """CAT attention for an NCHW feature map.

    Channel branch: GAP, GMP (after a Gaussian low-pass) and GEP over H*W, the
    entropy min-max normalised over channels (eq. 4), each through one shared
    MLP (eq. 2), mixed by interior colla-factors C_alpha, C_beta, C_gamma (eq. 5).
    Spatial branch: GAP, GMP (after a Gaussian low-pass) and GEP over C, the
    entropy min-max normalised over positions, mixed as
    ``-S_alpha*S_avg + S_beta*S_max + S_gamma*S_ent`` and passed through a 7x7
    convolution (eq. 7). Exterior colla-factors C_w, S_w (softmax-normalised)
    combine the two gates (eq. 1 / Algorithm 1). All colla-factors start at 0.

    Args:
        channels: input channels C.
        rd_ratio, rd_channels, rd_divisor, act_layer: shared-MLP reduction
            (``r = 16``) and activation (a class or a timm name such as ``"silu"``), as in timm's CBAM.
        gmp_filter: ``"paper"`` (k x 1 before channel GMP, k x k before
            spatial GMP), ``"2d"`` (k x k before both) or ``"none"``.
        gmp_kernel_size, gmp_sigma: Gaussian pre-filter size (paper: 5) and sigma
            (paper: unspecified; ``None`` gives 1.1 for k=5).
        entropy_norm: ``"minmax"`` (eq. 4, [0, 1]), ``"minmax_signed"`` ([-1, 1]
            as the text says) or ``"none"``.
        channel_mlp: apply the shared MLP (eq. 2); Algorithm 1 has none.
        interior_norm: ``"none"`` (raw interior factors, as the paper says) or
            ``"softmax"`` over the three.
        fusion: ``"algorithm1"``: ``F * (C_w*sigmoid(C'_A) + S_w*sigmoid(conv(.)))``;
            ``"eq1"``: ``F*sigmoid(C'_A*C_w) + F*sigmoid(S'_A*S_w)`` with
            ``S'_A = sigmoid(conv(.))`` as eq. 7 writes it (two sigmoids).
        spatial_kernel_size: the spatial convolution (paper: 7).
        gep: ``"reference"`` (paper's formula), ``"stable"`` (equal, one exp,
            no NaN) or ``"plugin"`` (the fused pooling operator, for export).
        fuse_gate: compute the final re-weighting with the fused gate operator
            (:func:`~cat_deploy.layers.fused.fused_cat_gate`: the same values in PyTorch, one
            ``FusedCatGate`` node in ONNX, for ONNX Runtime; export only). Independent of ``gep``.
    """

    def __init__(
        self,
        channels: int,
        rd_ratio: float = 1.0 / 16,
        rd_channels: Optional[int] = None,
        rd_divisor: int = 1,
        act_layer: Union[str, Type[nn.Module]] = nn.ReLU,
        gmp_filter: str = "paper",
        gmp_kernel_size: int = 5,
        gmp_sigma: Optional[float] = None,
        entropy_norm: str = "minmax",
        channel_mlp: bool = True,
        interior_norm: str = "none",
        fusion: str = "algorithm1",
        spatial_kernel_size: int = 7,
        gep: str = "stable",
        fuse_gate: bool = False,
        device=None,
        dtype=None,
        **kwargs,  # timm passes e.g. gate_layer/norm_layer to attention layers; CAT's gates are fixed sigmoids
    ):
        super().__init__()
        dd = {"device": device, "dtype": dtype}
        _require_choice("gmp_filter", gmp_filter, GMP_FILTERS)
        _require_choice("entropy_norm", entropy_norm, ENTROPY_NORMS)
        _require_choice("interior_norm", interior_norm, INTERIOR_NORMS)
        _require_choice("fusion", fusion, FUSIONS)
        _require_choice("gep", gep, GEP_FORMULATIONS)
        self.channels = channels
        self.gmp_filter = gmp_filter
        self.entropy_norm = entropy_norm
        self.interior_norm = interior_norm
        self.fusion = fusion
        self.gep = gep
        self.fuse_gate = fuse_gate

        _check_activation(act_layer)
        if not rd_channels:
            rd_channels = make_divisible(channels * rd_ratio, rd_divisor, round_limit=0.0)
        if channel_mlp:
            self.mlp = nn.Sequential(
                nn.Linear(channels, rd_channels, bias=False, **dd),
                create_act_layer(act_layer, inplace=True),
                nn.Linear(rd_channels, channels, bias=False, **dd),
            )
        else:
            self.mlp = nn.Identity()
        self.conv = nn.Conv2d(1, 1, spatial_kernel_size, padding=spatial_kernel_size // 2, bias=False, **dd)

        # Colla-factors, all initialised to 0 (paper, sections 3.1-3.3).
        self.channel_factors = nn.Parameter(torch.zeros(3, **dd))  # C_alpha, C_beta, C_gamma
        self.spatial_factors = nn.Parameter(torch.zeros(3, **dd))  # S_alpha, S_beta, S_gamma
        self.exterior_factors = nn.Parameter(torch.zeros(2, **dd))  # C_w, S_w (softmax-normalised)

        # Fixed Gaussian taps, repeated per channel so the depthwise convs export with static weights.
        self._gmp_kernel = (gmp_kernel_size, gmp_sigma)
        self.register_buffer("gmp_taps", self._taps(dtype or torch.get_default_dtype(), device), persistent=False)
        # -S_avg: the paper negates spatial GAP (eq. 7).
        self.register_buffer("spatial_sign", torch.tensor([-1.0, 1.0, 1.0], **dd), persistent=False)

    def _taps(self, dtype: torch.dtype, device=None) -> torch.Tensor:
        """Gaussian taps Tensor[C, k], computed in float64 and rounded once to ``dtype``."""
        taps = gaussian_kernel1d(*self._gmp_kernel).to(dtype=dtype, device=device)
        return taps.expand(self.channels, -1).contiguous()

    def _apply(self, fn, *args, **kwargs):
        # The taps are not learned: after a cast (.double(), .half()) re-derive them from float64, so a
        # float64 CAT computes its filter exactly instead of with the float32 rounding it was built with.
        super()._apply(fn, *args, **kwargs)
        self.gmp_taps = self._taps(self.gmp_taps.dtype, self.gmp_taps.device)
        return self

    def pool(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Raw statistics: channel Tensor[B, 3, C] and spatial Tensor[B, 3, H, W]."""
        if self.gep == "plugin":  # one exportable node (export only)
            return fused_cat_pool(x, self.gmp_taps, self.gmp_filter)
        return cat_pool(x, self.gmp_taps, self.gmp_filter, self.gep)

    def _normalize_entropy(self, stats: torch.Tensor, dim) -> torch.Tensor:
        if self.entropy_norm == "none":
            return stats
        ent = minmax_normalize(stats[:, 2:3], dim, signed=self.entropy_norm == "minmax_signed")
        return torch.cat([stats[:, :2], ent], dim=1)

    def _interior(self, factors: torch.Tensor) -> torch.Tensor:
        return factors.softmax(0) if self.interior_norm == "softmax" else factors

    def attention_maps(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Intermediate maps for inspection (paper Figs 3-5).

        Returns ``channel`` Tensor[B, 3, C] (after normalisation and MLP),
        ``spatial_raw`` Tensor[B, 3, H, W] as ``(-S_avg, S_max, S_ent)``,
        ``channel_logits`` Tensor[B, C], ``spatial_logits`` Tensor[B, 1, H, W]
        and ``exterior`` Tensor[2] (softmax of C_w, S_w).
        """
        channel, spatial = self.pool(x)
        channel = self.mlp(self._normalize_entropy(channel, 2))  # [B, 3, C]: one batched MLP call
        spatial = self._normalize_entropy(spatial, (2, 3)) * self.spatial_sign.view(1, 3, 1, 1)
        channel_logits = (channel * self._interior(self.channel_factors).view(1, 3, 1)).sum(1)
        spatial_mix = (spatial * self._interior(self.spatial_factors).view(1, 3, 1, 1)).sum(1, keepdim=True)
        return {
            "channel": channel,
            "spatial_raw": spatial,
            "channel_logits": channel_logits,
            "spatial_logits": self.conv(spatial_mix),
            "exterior": self.exterior_factors.softmax(0),
        }

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        m = self.attention_maps(x)
        gate = fused_cat_gate if self.fuse_gate else cat_gate
        return gate(x, m["channel_logits"], m["spatial_logits"], m["exterior"], self.fusion)

    def extra_repr(self) -> str:
        return (
            f"channels={self.channels}, gep={self.gep!r}, gmp_filter={self.gmp_filter!r}, "
            f"entropy_norm={self.entropy_norm!r}, fusion={self.fusion!r}, interior_norm={self.interior_norm!r}"
            + (", fuse_gate=True" if self.fuse_gate else "")
        )


def set_gep(model: nn.Module, gep: str) -> int:
    """Select the GEP formulation of every CAT module in ``model`` (in place); returns how many.

    The swap is a plain attribute on the modules: weights and every other option stay.

    Example:
        >>> set_gep(model, "reference")  # the paper's formula, for comparison
    """
    _require_choice("gep", gep, GEP_FORMULATIONS)
    count = 0
    for m in model.modules():
        if isinstance(m, CAT):
            m.gep = gep
            count += 1
    return count


def set_fuse_gate(model: nn.Module, on: bool) -> int:
    """Switch the fused gate operator of every CAT module in ``model`` on or off (in place); returns how many.

    Example:
        >>> set_fuse_gate(model, True)  # one FusedCatGate node per module in the ONNX export
    """
    count = 0
    for m in model.modules():
        if isinstance(m, CAT):
            m.fuse_gate = bool(on)
            count += 1
    return count


def cat_module_names(model: nn.Module) -> list[str]:
    """Qualified names of the CAT modules, in forward order for the zoo's sequential backbones."""
    return [name for name, m in model.named_modules() if isinstance(m, CAT)]
