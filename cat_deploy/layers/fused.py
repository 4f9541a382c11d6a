"""The fused CAT operators: the pooling (``gep="plugin"``) and the gate (``fuse_gate``) as exportable nodes.

With ``gep="plugin"`` each CAT module's six pooled statistics come from one custom ONNX
node instead of 33 standard ones (blurs, reductions, exponentials, logs)::

    channel, spatial = FusedCatPool(x, taps)        # domain ai.onnx.contrib
    x        (Tensor[B, C, H, W])   feature map
    taps     (Tensor[C, k])         Gaussian taps of the GMP pre-filter (row c filters channel c)
    channel  (Tensor[B, 3, C])      GAP, GMP, GEP over H*W      } exactly cat_pool(x, taps, gmp_filter),
    spatial  (Tensor[B, 3, H, W])   GAP, GMP, GEP over C        } before min-max normalisation
    attributes: gmp_filter (int: 0 none, 1 paper, 2 2d), plugin_namespace="cat_deploy" (string), aot=1 (int)

One node serves both backends (``docs/plugin.md``): TensorRT's ONNX parser maps it to the
plugin ``cat_deploy::FusedCatPool`` (``cat_deploy.plugins.cat_pool_trt``), ONNX Runtime runs
it through the CPU twin (``cat_deploy.plugins.cat_pool_ort``). In PyTorch the operator
computes ``cat_pool(x, taps, gmp_filter, "stable")``, so a model with ``gep="plugin"`` gives
the same outputs as with ``gep="stable"`` (export-only: no backward). ``gmp_filter`` is an INT
because TensorRT's ONNX parser hands a STRING attribute to a plugin with its C terminator
counted (``"paper\\0"``, onnx/onnx-tensorrt#921).

With ``fuse_gate`` (``export.py --fuse-gate``, ONNX Runtime only) each module's final
re-weighting of ``x`` by its two sigmoid gates is one node as well::

    y = FusedCatGate(x, channel_logits, spatial_logits, exterior)   # domain ai.onnx.contrib
    x               (Tensor[B, C, H, W])  feature map; y has its shape and dtype
    channel_logits  (Tensor[B, C])        C'_A before the sigmoid
    spatial_logits  (Tensor[B, 1, H, W])  the 7x7 convolution's output before the sigmoid
    exterior        (Tensor[2])           softmax(C_w, S_w) (constant-folded to an initializer)
    attribute: fusion (int: 0 algorithm1, 1 eq1)

In PyTorch it computes :func:`cat_gate`, the gate ``CAT.forward`` runs unfused, so the
outputs do not change. TensorRT fuses these pointwise ops itself, so the node is for ONNX
Runtime alone (the compiled library ``libcat_deploy_ort_ops.so``, or the Python twin).
"""
from __future__ import annotations

from typing import Optional

import torch
from torch.onnx import symbolic_helper

from ..core.plugin_ids import DOMAIN, FUSION_CODES, GATE_OP_TYPE, GMP_FILTER_CODES, GMP_FILTERS, OP_TYPE, PLUGIN_NAMESPACE
from .pooling import cat_pool

__all__ = ["FusedCatPool", "fused_cat_pool", "FusedCatGate", "fused_cat_gate", "cat_gate"]


class FusedCatPool(torch.autograd.Function):
    """``cat_pool`` in PyTorch, one ``FusedCatPool`` node in ONNX."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, taps: torch.Tensor, gmp_filter: str):
        return cat_pool(x, taps, gmp_filter, "stable")

    @staticmethod
    def symbolic(g, x, taps, gmp_filter: str):
        channel, spatial = g.op(f"{DOMAIN}::{OP_TYPE}", x, taps, gmp_filter_i=GMP_FILTER_CODES[gmp_filter],
                                plugin_namespace_s=PLUGIN_NAMESPACE, aot_i=1, outputs=2)
        sizes = symbolic_helper._get_tensor_sizes(x)
        if sizes is not None and len(sizes) == 4:
            b, c, h, w = sizes
            channel.setType(x.type().with_sizes([b, 3, c]))
            spatial.setType(x.type().with_sizes([b, 3, h, w]))
        return channel, spatial

    @staticmethod
    def backward(ctx, *grads):
        raise RuntimeError("gep='plugin' is for export only; train with gep='stable' (same values, differentiable)")


def fused_cat_pool(x: torch.Tensor, taps: Optional[torch.Tensor], gmp_filter: str) -> tuple[torch.Tensor, torch.Tensor]:
    """The six CAT statistics as one exportable operator (``CAT.pool`` with ``gep="plugin"``).

    Args:
        x (Tensor[B, C, H, W]): feature map.
        taps (Tensor[C, k] | Tensor[k] | None): Gaussian taps (``CAT.gmp_taps``); ``None`` only
            with ``gmp_filter="none"``.
        gmp_filter: ``"paper"``, ``"2d"`` or ``"none"``.

    Returns:
        channel (Tensor[B, 3, C]) and spatial (Tensor[B, 3, H, W]), as :func:`cat_pool`.

    Example:
        >>> channel, spatial = fused_cat_pool(feat, cat.gmp_taps, "paper")
    """
    if gmp_filter not in GMP_FILTERS:
        raise ValueError(f"gmp_filter must be one of {GMP_FILTERS}, got {gmp_filter!r}")
    C = x.shape[1]
    if taps is None:
        if gmp_filter != "none":
            raise ValueError(f"gmp_filter={gmp_filter!r} needs Gaussian taps")
        taps = torch.ones(C, 1, dtype=x.dtype, device=x.device)
    if taps.ndim == 1:
        taps = taps.expand(C, -1)
    return FusedCatPool.apply(x, taps.to(dtype=x.dtype, device=x.device), gmp_filter)


def cat_gate(x: torch.Tensor, channel_logits: torch.Tensor, spatial_logits: torch.Tensor, exterior: torch.Tensor,
             fusion: str) -> torch.Tensor:
    """CAT's output: ``x`` re-weighted by its channel and spatial gates (eq. 1 / Algorithm 1).

    Args:
        x (Tensor[B, C, H, W]): feature map.
        channel_logits (Tensor[B, C]): C'_A, before the sigmoid.
        spatial_logits (Tensor[B, 1, H, W]): the spatial convolution's output, before the sigmoid.
        exterior (Tensor[2]): ``softmax(C_w, S_w)``.
        fusion: ``"algorithm1"``: ``x * (cw*sigmoid(c) + sw*sigmoid(s))``;
            ``"eq1"``: ``x*sigmoid(cw*c) + x*sigmoid(sw*sigmoid(s))``.

    Returns:
        Tensor[B, C, H, W].
    """
    cw, sw = exterior.unbind(0)
    c = channel_logits[:, :, None, None]
    if fusion == "algorithm1":
        return x * (cw * torch.sigmoid(c) + sw * torch.sigmoid(spatial_logits))
    return x * torch.sigmoid(cw * c) + x * torch.sigmoid(sw * torch.sigmoid(spatial_logits))


class FusedCatGate(torch.autograd.Function):
    """``cat_gate`` in PyTorch, one ``FusedCatGate`` node in ONNX."""

    @staticmethod
    def forward(ctx, x, channel_logits, spatial_logits, exterior, fusion: str):
        return cat_gate(x, channel_logits, spatial_logits, exterior, fusion)

    @staticmethod
    def symbolic(g, x, channel_logits, spatial_logits, exterior, fusion: str):
        y = g.op(f"{DOMAIN}::{GATE_OP_TYPE}", x, channel_logits, spatial_logits, exterior,
                 fusion_i=FUSION_CODES[fusion])
        y.setType(x.type())
        return y

    @staticmethod
    def backward(ctx, *grads):
        raise RuntimeError("the fused CAT gate is for export only; train without fuse_gate (same values, "
                           "differentiable)")


def fused_cat_gate(x: torch.Tensor, channel_logits: torch.Tensor, spatial_logits: torch.Tensor,
                   exterior: torch.Tensor, fusion: str) -> torch.Tensor:
    """:func:`cat_gate` as one exportable operator (``CAT.forward`` with ``fuse_gate=True``).

    Same arguments and result as :func:`cat_gate`; the logits and ``exterior`` are cast to
    ``x``'s dtype, as the node takes them.

    Example:
        >>> m = cat.attention_maps(feat)
        >>> y = fused_cat_gate(feat, m["channel_logits"], m["spatial_logits"], m["exterior"], "algorithm1")
    """
    if fusion not in FUSION_CODES:
        raise ValueError(f"fusion must be one of {tuple(FUSION_CODES)}, got {fusion!r}")
    return FusedCatGate.apply(x, channel_logits.to(x.dtype), spatial_logits.to(x.dtype), exterior.to(x.dtype), fusion)
