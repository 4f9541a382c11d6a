"""Independent float64 reference of CAT, written from ``docs/cat_spec.md`` alone.

numpy only: nothing here imports ``cat_deploy`` or torch, so a test that compares
``cat_deploy.layers.CAT`` (or an exported graph, a Triton kernel, a C++ operator) with these
functions compares two implementations written separately. The formulas are the
spec's, computed the direct way wherever the code under test uses a trick:

* GEP: ``-sum p log p`` with ``log p = x - logsumexp(x)`` (the code uses ``log s - t/s``);
* the ``k x k`` Gaussian: one 2-D filter with the outer-product kernel on a replicate-padded
  map (the code runs two separable 1-D passes);
* reductions over the named axes of an NCHW array (the code uses a channels-last view);
* the 7x7 convolution: a direct sum over the kernel window with zero padding.

Weights come in as plain arrays (read from a module's ``state_dict`` by the caller).
"""
from __future__ import annotations

import math
from typing import Optional

import numpy as np

__all__ = [
    "gaussian_taps",
    "blur",
    "entropy",
    "minmax",
    "cat_pool_ref",
    "cat_forward_ref",
    "cat_params",
    "rel_err",
]

ACTS = {
    "relu": lambda v: np.maximum(v, 0.0),
    "silu": lambda v: v / (1.0 + np.exp(-v)),
    "swish": lambda v: v / (1.0 + np.exp(-v)),
    "gelu": lambda v: 0.5 * v * (1.0 + np.vectorize(math.erf)(v / math.sqrt(2.0))),
    "tanh": np.tanh,
    "sigmoid": lambda v: 1.0 / (1.0 + np.exp(-v)),
}


def _sigmoid(v):
    return 1.0 / (1.0 + np.exp(-v))


def _softmax(v):
    e = np.exp(v - v.max())
    return e / e.sum()


def gaussian_taps(k: int = 5, sigma: Optional[float] = None) -> np.ndarray:
    """Spec row 7: k taps, sigma = 0.3*((k-1)/2 - 1) + 0.8 when not given, normalised to sum 1."""
    if sigma is None:
        sigma = 0.3 * ((k - 1) / 2 - 1) + 0.8
    r = np.arange(k, dtype=np.float64) - (k - 1) / 2
    g = np.exp(-r * r / (2 * sigma * sigma))
    return g / g.sum()


def blur(x: np.ndarray, taps: np.ndarray, mode: str) -> np.ndarray:
    """Depthwise Gaussian of x [B, C, H, W] with replicate padding (spec rows 6, 8).

    ``taps``: [k] for every channel, or [C, k] one row per channel (the fused operator's taps input).
    ``mode``: ``"kx1"`` (k taps along H, 1 along W) or ``"kxk"`` (the 2-D outer-product kernel).
    """
    t = np.atleast_2d(np.asarray(taps, dtype=np.float64))              # [1 or C, k]
    k = t.shape[1]
    r = k // 2
    kern = t[:, :, None] * t[:, None, :] if mode == "kxk" else t[:, :, None]   # [1 or C, kh, kw]
    kh, kw = kern.shape[1:]
    pad = ((0, 0), (0, 0), (r, r), (r if kw > 1 else 0, r if kw > 1 else 0))
    xp = np.pad(x, pad, mode="edge")
    H, W = x.shape[2:]
    out = np.zeros_like(x, dtype=np.float64)
    for i in range(kh):
        for j in range(kw):
            out += kern[:, i, j][None, :, None, None] * xp[:, :, i:i + H, j:j + W]
    return out


def entropy(x: np.ndarray, axes) -> np.ndarray:
    """Eq. 3 / 6: -sum p log p with p = softmax(x) over ``axes``, log p taken as x - logsumexp."""
    m = x.max(axis=axes, keepdims=True)
    lse = m + np.log(np.exp(x - m).sum(axis=axes, keepdims=True))
    logp = x - lse
    return -(np.exp(logp) * logp).sum(axis=axes)


def minmax(v: np.ndarray, axes, signed: bool = False, eps: float = 1e-3) -> np.ndarray:
    """Eq. 4 per sample over ``axes``: (v - min) / (max - min + eps); ``signed`` maps to [-1, 1]."""
    lo = v.min(axis=axes, keepdims=True)
    hi = v.max(axis=axes, keepdims=True)
    y = (v - lo) / (hi - lo + eps)
    return 2 * y - 1 if signed else y


def cat_pool_ref(x, gmp_filter: str = "paper", k: int = 5, sigma: Optional[float] = None, taps=None):
    """The six raw statistics: channel [B, 3, C] = (GAP, GMP, GEP over H, W), spatial [B, 3, H, W] = (over C).

    ``gmp_filter``: ``"paper"`` (k x 1 before channel GMP, k x k before spatial GMP), ``"2d"`` (k x k
    before both) or ``"none"``. ``taps`` ([k] or [C, k]) replaces the spec's Gaussian, for operators
    that take their taps as an input (the fused pooling node); ``k`` and ``sigma`` are then unused.
    """
    x = np.asarray(x, dtype=np.float64)
    taps = gaussian_taps(k, sigma) if taps is None else np.asarray(taps, dtype=np.float64)
    if gmp_filter == "paper":
        bc, bs = blur(x, taps, "kx1"), blur(x, taps, "kxk")
    elif gmp_filter == "2d":
        bc = bs = blur(x, taps, "kxk")
    elif gmp_filter == "none":
        bc = bs = x
    else:
        raise ValueError(gmp_filter)
    channel = np.stack([x.mean(axis=(2, 3)), bc.max(axis=(2, 3)), entropy(x, (2, 3))], axis=1)
    spatial = np.stack([x.mean(axis=1), bs.max(axis=1), entropy(x, 1)], axis=1)
    return channel, spatial


def _conv_same(m: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Single-channel 'same' cross-correlation with zero padding: m [B, H, W], w [k, k]."""
    k = w.shape[0]
    r = k // 2
    mp = np.pad(m, ((0, 0), (r, r), (r, r)))
    H, W = m.shape[1:]
    out = np.zeros_like(m)
    for i in range(k):
        for j in range(k):
            out += w[i, j] * mp[:, i:i + H, j:j + W]
    return out


def cat_forward_ref(
    x,
    params: dict,
    gmp_filter: str = "paper",
    gmp_kernel_size: int = 5,
    gmp_sigma: Optional[float] = None,
    entropy_norm: str = "minmax",
    channel_mlp: bool = True,
    interior_norm: str = "none",
    fusion: str = "algorithm1",
    act: str = "relu",
) -> np.ndarray:
    """CAT's output F_A [B, C, H, W] in float64, following the spec's "What CAT computes".

    ``params``: ``fc1`` [rd, C] and ``fc2`` [C, rd] (the shared MLP, no bias; ignored without
    ``channel_mlp``), ``conv`` [k, k] (the spatial convolution, no bias), ``channel_factors``
    (C_alpha, C_beta, C_gamma), ``spatial_factors`` (S_alpha, S_beta, S_gamma), ``exterior`` (C_w, S_w).
    """
    x = np.asarray(x, dtype=np.float64)
    p = {k: np.asarray(v, dtype=np.float64) for k, v in params.items()}
    channel, spatial = cat_pool_ref(x, gmp_filter, gmp_kernel_size, gmp_sigma)
    if entropy_norm != "none":
        signed = entropy_norm == "minmax_signed"
        channel[:, 2] = minmax(channel[:, 2], 1, signed)          # over the C channels of each sample
        spatial[:, 2] = minmax(spatial[:, 2], (1, 2), signed)     # over the H x W positions of each sample
    if channel_mlp:
        f = ACTS[act]
        channel = np.einsum("cr,bsr->bsc", p["fc2"], f(np.einsum("rc,bsc->bsr", p["fc1"], channel)))
    ci = _softmax(p["channel_factors"]) if interior_norm == "softmax" else p["channel_factors"]
    si = _softmax(p["spatial_factors"]) if interior_norm == "softmax" else p["spatial_factors"]
    c_logits = ci[0] * channel[:, 0] + ci[1] * channel[:, 1] + ci[2] * channel[:, 2]          # [B, C]
    s_mix = -si[0] * spatial[:, 0] + si[1] * spatial[:, 1] + si[2] * spatial[:, 2]           # [B, H, W]
    s_logits = _conv_same(s_mix, p["conv"])                                                  # [B, H, W]
    cw, sw = _softmax(p["exterior"])
    c = c_logits[:, :, None, None]
    s = s_logits[:, None]
    if fusion == "algorithm1":
        return x * (cw * _sigmoid(c) + sw * _sigmoid(s))
    if fusion == "eq1":
        return x * _sigmoid(cw * c) + x * _sigmoid(sw * _sigmoid(s))
    raise ValueError(fusion)


def cat_params(state_dict: dict) -> dict:
    """Reference parameters from a CAT module's ``state_dict`` (tensors or arrays); keys as in the layer."""
    def a(v):
        return np.asarray(v.detach().double().numpy() if hasattr(v, "detach") else v, dtype=np.float64)

    out = {
        "conv": a(state_dict["conv.weight"])[0, 0],
        "channel_factors": a(state_dict["channel_factors"]),
        "spatial_factors": a(state_dict["spatial_factors"]),
        "exterior": a(state_dict["exterior_factors"]),
    }
    if "mlp.0.weight" in state_dict:
        out["fc1"], out["fc2"] = a(state_dict["mlp.0.weight"]), a(state_dict["mlp.2.weight"])
    return out


def rel_err(got, want, floor: float = 1e-6) -> np.ndarray:
    """Elementwise |got - want| / max(|want|, floor) (floor only guards exact zeros)."""
    got = np.asarray(got, dtype=np.float64)
    want = np.asarray(want, dtype=np.float64)
    return np.abs(got - want) / np.maximum(np.abs(want), floor)
