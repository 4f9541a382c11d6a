"""Global pooling operators of CAT: average (GAP), maximum (GMP) and entropy (GEP).

Paper: "CAT: Learning to Collaborate Channel and Spatial Attention from
Multi-Information Fusion", Wu et al., IET Computer Vision 2022 (arXiv:2212.06335).

Each operator reduces ``x`` over ``dim`` (an int or a tuple of ints), the way
``torch.mean``/``torch.amax`` do. GEP comes in two numerically different but
algebraically equal forms:

* :func:`global_entropy_pool` -- the paper's form (eq. 3 and 6),
  ``H = -sum(p * log p)`` with ``p = softmax(x)`` over ``dim``. It needs two
  exponentials per element (softmax, then a log of the result) and gives NaN
  when a probability underflows to exactly zero (``0 * log 0``): logit gaps
  above ~103 in FP32, above ~17 in FP16.
* :func:`stable_entropy_pool` -- ``H = log s - t / s`` with ``z = x - max(x)``,
  ``s = sum(exp z)``, ``t = sum(z * exp z)``: one exponential per element, no
  log of a probability, finite for any finite input. Computed in FP32 (or the
  input's precision if higher) whatever the input dtype.

:func:`cat_pool` computes all six statistics one CAT module consumes; it is the
operation the fused kernel in ``plugins/`` replaces.
"""
from __future__ import annotations

from typing import Sequence, Union

import torch
import torch.nn.functional as F

from ..core.plugin_ids import GEP_FORMULATIONS, GMP_FILTERS

Dim = Union[int, Sequence[int]]

__all__ = [
    "global_avg_pool",
    "global_max_pool",
    "global_entropy_pool",
    "stable_entropy_pool",
    "gaussian_kernel1d",
    "gaussian_blur",
    "minmax_normalize",
    "cat_pool",
    "GEP_FORMULATIONS",
    "GMP_FILTERS",
]


def _dims(x: torch.Tensor, dim: Dim) -> tuple[int, ...]:
    dims = (dim,) if isinstance(dim, int) else tuple(dim)
    return tuple(sorted(d % x.ndim for d in dims))


def global_avg_pool(x: torch.Tensor, dim: Dim, keepdim: bool = False) -> torch.Tensor:
    """GAP: mean of ``x`` over ``dim``."""
    return x.mean(_dims(x, dim), keepdim=keepdim)


def global_max_pool(x: torch.Tensor, dim: Dim, keepdim: bool = False) -> torch.Tensor:
    """GMP: maximum of ``x`` over ``dim`` (no pre-filter; see :func:`cat_pool`)."""
    return x.amax(_dims(x, dim), keepdim=keepdim)


def _flatten_dims(x: torch.Tensor, dims: tuple[int, ...]) -> tuple[torch.Tensor, list[int]]:
    """Move ``dims`` to the end and flatten them into one axis (softmax needs a single axis)."""
    keep = [d for d in range(x.ndim) if d not in dims]
    x = x.permute(*keep, *dims)
    out_shape = [x.shape[i] for i in range(len(keep))]
    return x.reshape(*out_shape, -1), out_shape


def _restore(h: torch.Tensor, x: torch.Tensor, dims: tuple[int, ...], keepdim: bool) -> torch.Tensor:
    if not keepdim:
        return h
    for d in dims:
        h = h.unsqueeze(d)
    return h


def global_entropy_pool(x: torch.Tensor, dim: Dim, keepdim: bool = False) -> torch.Tensor:
    """GEP in the paper's form: ``-sum(p * log p)``, ``p = softmax(x)`` over ``dim``.

    Unnormalised: the result lies in ``[0, log n]`` with ``n`` the number of
    pooled elements. Runs in the input's dtype, literally as written (softmax,
    log, product, sum), so it reproduces the form's failure modes; use
    :func:`stable_entropy_pool` for deployment.

    Args:
        x (Tensor[...]): input.
        dim: axis or axes to pool over, e.g. ``(2, 3)`` for spatial positions
            of an NCHW map (channel GEP) or ``1`` for its channels (spatial GEP).
        keepdim: keep the pooled axes with size 1.

    Example:
        >>> global_entropy_pool(torch.zeros(2, 8, 4, 4), dim=(2, 3))  # log(16) each
    """
    dims = _dims(x, dim)
    flat, _ = _flatten_dims(x, dims)
    p = torch.softmax(flat, dim=-1)
    h = -(p * torch.log(p)).sum(-1)
    return _restore(h, x, dims, keepdim)


def stable_entropy_pool(x: torch.Tensor, dim: Dim, keepdim: bool = False) -> torch.Tensor:
    """GEP as ``log s - t / s`` (max-shifted), equal to :func:`global_entropy_pool` in exact arithmetic.

    With ``z = x - max(x)``: ``p = e^z / s``, ``log p = z - log s``, so
    ``-sum(p log p) = log s - sum(z e^z) / s``. One exponential per element,
    ``s >= 1`` (the maximum contributes ``e^0``), so nothing underflows into a
    log or a division. Accumulates in FP32 when ``x`` is FP16/BF16 and returns
    the input dtype. Works on any number of pooled elements (dynamic H, W).
    """
    dims = _dims(x, dim)
    out_dtype = x.dtype
    if x.dtype in (torch.float16, torch.bfloat16):
        x = x.float()
    z = x - x.amax(dims, keepdim=True)
    e = torch.exp(z)
    s = e.sum(dims)
    t = (z * e).sum(dims)
    h = torch.log(s) - t / s
    return _restore(h, x, dims, keepdim).to(out_dtype)


def gaussian_kernel1d(kernel_size: int = 5, sigma: float | None = None) -> torch.Tensor:
    """Normalised 1-D Gaussian taps (Tensor[kernel_size], float64).

    ``sigma=None`` uses OpenCV's rule for a kernel size, ``0.3 * ((k - 1) / 2 - 1) + 0.8``
    (1.1 for k=5): the paper gives k=5 and no sigma.
    """
    if kernel_size < 1 or kernel_size % 2 == 0:
        raise ValueError(f"Gaussian kernel_size must be odd and positive, got {kernel_size}")
    if sigma is None:
        sigma = 0.3 * ((kernel_size - 1) * 0.5 - 1) + 0.8
    r = torch.arange(kernel_size, dtype=torch.float64) - (kernel_size - 1) / 2
    g = torch.exp(-(r**2) / (2 * sigma**2))
    return g / g.sum()


def gaussian_blur(x: torch.Tensor, taps: torch.Tensor, axes: str = "hw") -> torch.Tensor:
    """Depthwise Gaussian low-pass of an NCHW map with replicate ("edge") padding.

    Args:
        x (Tensor[B, C, H, W]): input.
        taps (Tensor[k] or Tensor[C, k]): 1-D kernel from :func:`gaussian_kernel1d`, or the
            same taps already repeated per channel (what :class:`CAT` stores, so exported
            convolutions have static weight shapes).
        axes: ``"h"`` for the 1-D ``k x 1`` filter along H, ``"hw"`` for the
            separable 2-D ``k x k`` filter (along H, then along W).
    """
    k = taps.shape[-1]
    w = taps.to(dtype=x.dtype, device=x.device)
    w = w.view(-1, 1, k).expand(x.shape[1], 1, k) if w.ndim == 1 else w.view(-1, 1, k)
    groups = w.shape[0]
    out = x
    if "h" in axes:
        out = F.conv2d(F.pad(out, (0, 0, k // 2, k // 2), mode="replicate"), w.unsqueeze(3), groups=groups)
    if "w" in axes:
        out = F.conv2d(F.pad(out, (k // 2, k // 2, 0, 0), mode="replicate"), w.unsqueeze(2), groups=groups)
    return out


def minmax_normalize(x: torch.Tensor, dim: Dim, signed: bool = False, eps: float = 1e-3) -> torch.Tensor:
    """Equation 4: ``(x - min) / (max - min + eps)`` over ``dim``; ``signed`` maps to ``[-1, 1]``.

    ``eps=1e-3`` (nats) keeps a nearly constant entropy map from turning rounding noise into
    O(1) values (see docs/cat_spec.md, row 4).
    """
    dims = _dims(x, dim)
    lo = x.amin(dims, keepdim=True)
    hi = x.amax(dims, keepdim=True)
    y = (x - lo) / (hi - lo + eps)
    return 2.0 * y - 1.0 if signed else y


def cat_pool(
    x: torch.Tensor,
    taps: torch.Tensor | None,
    gmp_filter: str = "paper",
    gep: str = "stable",
) -> tuple[torch.Tensor, torch.Tensor]:
    """The six pooled statistics of one CAT module, before any normalisation.

    Args:
        x (Tensor[B, C, H, W]): feature map.
        taps (Tensor[k] | Tensor[C, k] | None): Gaussian taps for the GMP pre-filter.
        gmp_filter: ``"paper"`` (channel GMP after a ``k x 1`` filter, spatial
            GMP after ``k x k``; the ``k x k`` is computed as the ``1 x k`` pass
            over the ``k x 1`` result), ``"2d"`` (both after ``k x k``) or
            ``"none"``.
        gep: ``"reference"`` or ``"stable"`` entropy.

    Returns:
        channel (Tensor[B, 3, C]): GAP, GMP, GEP over H*W of each channel.
        spatial (Tensor[B, 3, H, W]): GAP, GMP, GEP over C at each position.
    """
    if gmp_filter not in GMP_FILTERS:
        raise ValueError(f"gmp_filter must be one of {GMP_FILTERS}, got {gmp_filter!r}")
    entropy = {"reference": global_entropy_pool, "stable": stable_entropy_pool}.get(gep)
    if entropy is None:
        raise ValueError(f"cat_pool computes gep='reference' or 'stable', got {gep!r}")

    if gmp_filter == "none" or taps is None:
        blur_c = blur_s = x
    elif gmp_filter == "paper":
        blur_c = gaussian_blur(x, taps, "h")
        blur_s = gaussian_blur(blur_c, taps, "w")
    else:
        blur_c = blur_s = gaussian_blur(x, taps, "hw")

    channel = torch.stack(
        [global_avg_pool(x, (2, 3)), global_max_pool(blur_c, (2, 3)), entropy(x, (2, 3))], dim=1
    )
    if gep == "stable":
        # Reductions over C on a channels-last view: ONNX Runtime reduces an innermost axis ~5x faster
        # than a strided one, which pays for the Transpose (measured: spatial stats 3.6 -> 2.8 ms at 256x56x56).
        xt = x.permute(0, 2, 3, 1)
        s_avg, s_ent = global_avg_pool(xt, -1), entropy(xt, -1)
    else:
        s_avg, s_ent = global_avg_pool(x, 1), entropy(x, 1)
    spatial = torch.stack([s_avg, global_max_pool(blur_s, 1), s_ent], dim=1)
    return channel, spatial

