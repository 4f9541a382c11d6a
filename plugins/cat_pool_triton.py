"""Fused CAT pooling in Triton: the six pooled maps of one CAT module from one read of F.

Paper: "CAT: Learning to Collaborate Channel and Spatial Attention from
Multi-Information Fusion", Wu et al., IET Computer Vision 2022 (arXiv:2212.06335).

Computes exactly what :func:`cat_deploy.layers.pooling.cat_pool` returns (before any
min-max normalisation): channel statistics ``[B, 3, C]`` (GAP, GMP after the Gaussian
pre-filter, GEP over H*W) and spatial statistics ``[B, 3, H, W]`` (the same three over C).
FP32 or FP16 input, FP32 arithmetic, output in the input's dtype. GEP is ``log s - t/s``
with ``s = sum e^(x-m)``, ``t = sum (x-m) e^(x-m)``, accumulated as online
``(m, s, t)`` triples and merged across blocks, so no second pass over F.

Two launch plans share the same device functions (see ``docs/plugin.md``):

* :func:`cat_pool_fused` (PyTorch on a GPU, the benchmark): one read of F.
  ``_tiles_kernel``: each program owns a tile of positions (``TH`` rows x ``TW - 2R``
  columns, plus an ``R``-column halo on each side for the Gaussian) and a group of
  channels, which it walks in ``BLOCK_C`` chunks. From each ``[BLOCK_C, TH, TW]``
  tile it accumulates the spatial statistics of its positions over the channels
  (in registers) and writes the channel statistics of the tile (partials). A tiny
  ``_merge_kernel`` merges the partials (over tiles for channels, over channel groups
  for positions when C is split).
* :func:`cat_pool_single` / :func:`plugin_ptx` (the TensorRT AOT plugin): a TensorRT
  ahead-of-time plugin launches exactly one kernel and has no zeroed workspace, so
  nothing can merge partials. ``cat_pool_plugin_kernel`` runs two kinds of programs
  in one grid: position-tile programs (spatial statistics over all C) and
  channel-block programs (channel statistics over all positions). F is read twice
  (the second time partly from L2).

Gaussian pre-filter (replicate padding): the ``k x 1`` pass along H uses ``k`` row-shifted
loads of the tile (rows clamped; the shifted rows are cache hits), the ``1 x k`` pass
along W is computed in registers from the ``k x 1`` result with ``tl.gather`` over the
haloed columns (halo columns are loaded at clamped addresses, which is the replicate
padding). Taps are a runtime input ``taps[C, k]`` (row ``c`` filters channel ``c``);
``k`` is a compile-time constant.

Index arithmetic is int32 inside one sample (``C*H*W < 2**31``), int64 across the batch.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Optional

import torch
import triton
import triton.language as tl
from triton.backends.compiler import GPUTarget
from triton.compiler import ASTSource

from cat_deploy.core.plugin_ids import GMP_FILTER_CODES, GMP_FILTERS

__all__ = [
    "TileConfig",
    "PluginConfig",
    "cat_pool_fused",
    "cat_pool_single",
    "plugin_signature",
    "plugin_ptx",
    "PluginKernel",
    "cat_pool_plugin_kernel",
]


# --------------------------------------------------------------------------- device functions


@triton.jit
def _load_filtered(x_ptr, taps_ptr, xb, c, cm, h, hm, wl, H, W,
                   FILTER: tl.constexpr, K: tl.constexpr, TW: tl.constexpr, NEED_HW: tl.constexpr):
    """A [BLOCK_C, TH, TW] tile as FP32: ``x``, the channel-GMP source and the spatial-GMP source.

    ``c`` [BC,1,1] channels, ``h`` [1,TH,1] rows, ``wl`` [1,1,TW] columns (may lie outside
    [0, W): loaded clamped = replicate padding). FILTER 0 none, 1 paper (k x 1 for channel
    GMP, k x k for spatial GMP), 2 2d (k x k for both).
    """
    R: tl.constexpr = K // 2
    col = tl.minimum(tl.maximum(wl, 0), W - 1)
    mask = cm & hm
    base = x_ptr + xb + c * (H * W)
    x = tl.load(base + h * W + col, mask=mask, other=0.0).to(tl.float32)
    gc = x
    gs = x
    if FILTER != 0:
        vb = x * tl.load(taps_ptr + c * K + R, mask=cm, other=0.0).to(tl.float32)
        for i in tl.static_range(K):
            if i != R:
                hh = tl.minimum(tl.maximum(h + (i - R), 0), H - 1)
                xi = tl.load(base + hh * W + col, mask=mask, other=0.0).to(tl.float32)
                vb += xi * tl.load(taps_ptr + c * K + i, mask=cm, other=0.0).to(tl.float32)
        gc = vb
        if NEED_HW:
            jj = tl.arange(0, TW)[None, None, :] + tl.zeros(vb.shape, tl.int32)
            hw = vb * tl.load(taps_ptr + c * K + R, mask=cm, other=0.0).to(tl.float32)
            for j in tl.static_range(K):
                if j != R:
                    idx = tl.minimum(tl.maximum(jj + (j - R), 0), TW - 1)
                    tap = tl.load(taps_ptr + c * K + j, mask=cm, other=0.0).to(tl.float32)
                    hw += tl.gather(vb, idx, axis=2) * tap
            gs = hw
            if FILTER == 2:
                gc = hw
    return x, gc, gs


@triton.jit
def _spatial_tile(x_ptr, taps_ptr, b, tile, c_lo, c_hi, C, H, W, ch_part_ptr, sp_ptr, sp_stride_b,
                  FILTER: tl.constexpr, K: tl.constexpr, BLOCK_C: tl.constexpr, TH: tl.constexpr,
                  TW: tl.constexpr, WRITE_PARTIALS: tl.constexpr, SPATIAL_FINAL: tl.constexpr):
    """One position tile over channels [c_lo, c_hi): spatial stats (final or partial) and channel partials."""
    R: tl.constexpr = K // 2
    OUT_W: tl.constexpr = TW - 2 * R
    n_tw = tl.cdiv(W, OUT_W)
    th = tile // n_tw
    tw = tile % n_tw
    h = th * TH + tl.arange(0, TH)[None, :, None]
    j = tl.arange(0, TW)[None, None, :]
    wl = tw * OUT_W - R + j
    hm = h < H
    pos_ok = hm & (j >= R) & (j < TW - R) & (wl < W)
    xb = b.to(tl.int64) * C * H * W

    acc = tl.zeros((TH, TW), tl.float32)
    mx = tl.full((TH, TW), float("-inf"), tl.float32)
    m = tl.full((TH, TW), float("-inf"), tl.float32)
    s = tl.zeros((TH, TW), tl.float32)
    t = tl.zeros((TH, TW), tl.float32)
    for c0 in range(c_lo, c_hi, BLOCK_C):
        c1 = c0 + tl.arange(0, BLOCK_C)
        c = c1[:, None, None]
        cm = c < c_hi
        x, gc, gs = _load_filtered(x_ptr, taps_ptr, xb, c, cm, h, hm, wl, H, W, FILTER, K, TW, FILTER != 0)

        # spatial: reduce the chunk over channels, merge into the running (m, s, t)
        acc += tl.sum(tl.where(cm, x, 0.0), axis=0)
        mx = tl.maximum(mx, tl.max(tl.where(cm, gs, float("-inf")), axis=0))
        xm = tl.where(cm, x, float("-inf"))
        m_new = tl.maximum(m, tl.max(xm, axis=0))
        alpha = tl.exp(m - m_new)
        z = xm - m_new[None, :, :]
        e = tl.exp(z)
        t = alpha * (t + tl.where(s > 0, (m - m_new) * s, 0.0)) + tl.sum(tl.where(cm, z * e, 0.0), axis=0)
        s = alpha * s + tl.sum(e, axis=0)
        m = m_new

        if WRITE_PARTIALS:  # channel statistics of this tile: [BLOCK_C] each
            valid = cm & pos_ok
            xv = tl.where(valid, x, float("-inf"))
            pm = tl.max(tl.max(xv, axis=2), axis=1)
            z2 = xv - pm[:, None, None]
            e2 = tl.exp(z2)
            ps = tl.sum(tl.sum(tl.where(valid, e2, 0.0), axis=2), axis=1)
            pt = tl.sum(tl.sum(tl.where(valid, z2 * e2, 0.0), axis=2), axis=1)
            psum = tl.sum(tl.sum(tl.where(valid, x, 0.0), axis=2), axis=1)
            pmax = tl.max(tl.max(tl.where(valid, gc, float("-inf")), axis=2), axis=1)
            n_tiles = tl.num_programs(0)
            base = ch_part_ptr + ((b.to(tl.int64) * n_tiles + tile) * 5) * C + c1
            cmask = c1 < c_hi
            tl.store(base, psum, mask=cmask)
            tl.store(base + C, pmax, mask=cmask)
            tl.store(base + 2 * C, pm, mask=cmask)
            tl.store(base + 3 * C, ps, mask=cmask)
            tl.store(base + 4 * C, pt, mask=cmask)

    h2 = th * TH + tl.arange(0, TH)[:, None]
    j2 = tl.arange(0, TW)[None, :]
    w2 = tw * OUT_W - R + j2
    ok2 = (h2 < H) & (j2 >= R) & (j2 < TW - R) & (w2 < W)
    HW = H * W
    out = sp_ptr + b.to(tl.int64) * sp_stride_b + h2 * W + w2
    if SPATIAL_FINAL:
        ty = sp_ptr.dtype.element_ty
        tl.store(out, (acc / (c_hi - c_lo)).to(ty), mask=ok2)
        tl.store(out + HW, mx.to(ty), mask=ok2)
        tl.store(out + 2 * HW, (tl.log(s) - t / s).to(ty), mask=ok2)
    else:
        tl.store(out, acc, mask=ok2)
        tl.store(out + HW, mx, mask=ok2)
        tl.store(out + 2 * HW, m, mask=ok2)
        tl.store(out + 3 * HW, s, mask=ok2)
        tl.store(out + 4 * HW, t, mask=ok2)


@triton.jit
def _channel_block(x_ptr, taps_ptr, b, cb, C, H, W, ch_ptr,
                   FILTER: tl.constexpr, K: tl.constexpr, BLOCK_C: tl.constexpr, TH: tl.constexpr,
                   TW: tl.constexpr):
    """Channel statistics of BLOCK_C channels over all positions (online merge over position tiles)."""
    R: tl.constexpr = K // 2
    OUT_W: tl.constexpr = TW - 2 * R
    c1 = cb * BLOCK_C + tl.arange(0, BLOCK_C)
    c = c1[:, None, None]
    cm = c < C
    n_tw = tl.cdiv(W, OUT_W)
    n_tiles = tl.cdiv(H, TH) * n_tw
    xb = b.to(tl.int64) * C * H * W
    j = tl.arange(0, TW)[None, None, :]

    acc = tl.zeros((BLOCK_C,), tl.float32)
    mx = tl.full((BLOCK_C,), float("-inf"), tl.float32)
    m = tl.full((BLOCK_C,), float("-inf"), tl.float32)
    s = tl.zeros((BLOCK_C,), tl.float32)
    t = tl.zeros((BLOCK_C,), tl.float32)
    for tile in range(0, n_tiles):
        th = tile // n_tw
        tw = tile % n_tw
        h = th * TH + tl.arange(0, TH)[None, :, None]
        wl = tw * OUT_W - R + j
        hm = h < H
        pos_ok = hm & (j >= R) & (j < TW - R) & (wl < W)
        x, gc, gs = _load_filtered(x_ptr, taps_ptr, xb, c, cm, h, hm, wl, H, W, FILTER, K, TW, FILTER == 2)
        valid = cm & pos_ok
        xv = tl.where(valid, x, float("-inf"))
        m_new = tl.maximum(m, tl.max(tl.max(xv, axis=2), axis=1))
        alpha = tl.exp(m - m_new)
        z = xv - m_new[:, None, None]
        e = tl.where(valid, tl.exp(z), 0.0)
        t = alpha * (t + tl.where(s > 0, (m - m_new) * s, 0.0)) \
            + tl.sum(tl.sum(tl.where(valid, z * e, 0.0), axis=2), axis=1)
        s = alpha * s + tl.sum(tl.sum(e, axis=2), axis=1)
        m = m_new
        acc += tl.sum(tl.sum(tl.where(valid, x, 0.0), axis=2), axis=1)
        mx = tl.maximum(mx, tl.max(tl.max(tl.where(valid, gc, float("-inf")), axis=2), axis=1))

    ty = ch_ptr.dtype.element_ty
    out = ch_ptr + b.to(tl.int64) * 3 * C + c1
    cmask = c1 < C
    tl.store(out, (acc / (H * W)).to(ty), mask=cmask)
    tl.store(out + C, mx.to(ty), mask=cmask)
    tl.store(out + 2 * C, (tl.log(s) - t / s).to(ty), mask=cmask)


@triton.jit
def _merge_rows(part_ptr, n, stride_n, L, idx, count, out_ptr, BLOCK_N: tl.constexpr, BLOCK: tl.constexpr):
    """Merge ``n`` partial rows (sum, max, m, s, t; each ``L`` long, rows ``stride_n`` apart) at ``idx``."""
    im = idx < L
    acc = tl.zeros((BLOCK,), tl.float32)
    mx = tl.full((BLOCK,), float("-inf"), tl.float32)
    m = tl.full((BLOCK,), float("-inf"), tl.float32)
    s = tl.zeros((BLOCK,), tl.float32)
    t = tl.zeros((BLOCK,), tl.float32)
    for n0 in range(0, n, BLOCK_N):
        r = n0 + tl.arange(0, BLOCK_N)[:, None]
        msk = (r < n) & im[None, :]
        p = part_ptr + r.to(tl.int64) * stride_n + idx[None, :]
        acc += tl.sum(tl.load(p, mask=msk, other=0.0), axis=0)
        mx = tl.maximum(mx, tl.max(tl.load(p + L, mask=msk, other=float("-inf")), axis=0))
        mk = tl.load(p + 2 * L, mask=msk, other=float("-inf"))
        sk = tl.load(p + 3 * L, mask=msk, other=0.0)
        tk = tl.load(p + 4 * L, mask=msk, other=0.0)
        m_new = tl.maximum(m, tl.max(mk, axis=0))
        alpha = tl.exp(m - m_new)
        d = mk - m_new[None, :]
        wk = tl.exp(d)
        t = alpha * (t + tl.where(s > 0, (m - m_new) * s, 0.0)) \
            + tl.sum(tl.where(msk, wk * (tk + d * sk), 0.0), axis=0)
        s = alpha * s + tl.sum(tl.where(msk, wk * sk, 0.0), axis=0)
        m = m_new
    ty = out_ptr.dtype.element_ty
    tl.store(out_ptr + idx, (acc / count).to(ty), mask=im)
    tl.store(out_ptr + L + idx, mx.to(ty), mask=im)
    tl.store(out_ptr + 2 * L + idx, (tl.log(s) - t / s).to(ty), mask=im)


# --------------------------------------------------------------------------- kernels


@triton.jit
def _tiles_kernel(x_ptr, taps_ptr, C, H, W, CG, ch_part_ptr, sp_ptr, sp_stride_b,
                  FILTER: tl.constexpr, K: tl.constexpr, BLOCK_C: tl.constexpr, TH: tl.constexpr,
                  TW: tl.constexpr, SPATIAL_FINAL: tl.constexpr):
    """Grid (tiles, channel groups, B). One read of F; spatial stats final when there is one group."""
    tile = tl.program_id(0)
    g = tl.program_id(1)
    b = tl.program_id(2)
    c_lo = g * CG
    c_hi = tl.minimum(C, c_lo + CG)
    if SPATIAL_FINAL:
        sp = sp_ptr
    else:
        sp = sp_ptr + g.to(tl.int64) * 5 * H * W
    _spatial_tile(x_ptr, taps_ptr, b, tile, c_lo, c_hi, C, H, W, ch_part_ptr, sp, sp_stride_b,
                  FILTER, K, BLOCK_C, TH, TW, True, SPATIAL_FINAL)


@triton.jit
def _merge_kernel(ch_part_ptr, sp_part_ptr, C, HW, T, G, ch_ptr, sp_ptr,
                  BLOCK: tl.constexpr, BLOCK_N: tl.constexpr, MERGE_SPATIAL: tl.constexpr):
    """Grid (channel blocks [+ position blocks], B): partials -> final statistics."""
    pid = tl.program_id(0)
    b = tl.program_id(1).to(tl.int64)
    n_cb = tl.cdiv(C, BLOCK)
    if pid < n_cb:
        idx = pid * BLOCK + tl.arange(0, BLOCK)
        _merge_rows(ch_part_ptr + b * T * 5 * C, T, 5 * C, C, idx, HW, ch_ptr + b * 3 * C, BLOCK_N, BLOCK)
    elif MERGE_SPATIAL:
        idx = (pid - n_cb) * BLOCK + tl.arange(0, BLOCK)
        _merge_rows(sp_part_ptr + b * G * 5 * HW, G, 5 * HW, HW, idx, C, sp_ptr + b * 3 * HW, BLOCK_N, BLOCK)


@triton.jit
def cat_pool_plugin_kernel(x_ptr, taps_ptr, C, H, W, channel_ptr, spatial_ptr,
                           FILTER: tl.constexpr, K: tl.constexpr, BLOCK_C: tl.constexpr, TH: tl.constexpr,
                           TW: tl.constexpr, CH_BLOCK_C: tl.constexpr, CH_TH: tl.constexpr,
                           CH_TW: tl.constexpr):
    """Single-launch kernel of the TensorRT plugin: parameters (inputs..., scalars..., outputs...).

    Grid ``(n_tiles + cdiv(C, CH_BLOCK_C), B)`` with ``n_tiles = cdiv(H, TH) * cdiv(W, TW - 2*(K//2))``:
    the first ``n_tiles`` programs compute the spatial statistics of one position tile over
    all channels, the others the channel statistics of ``CH_BLOCK_C`` channels over all positions.
    """
    pid = tl.program_id(0)
    b = tl.program_id(1)
    R: tl.constexpr = K // 2
    n_tiles = tl.cdiv(H, TH) * tl.cdiv(W, TW - 2 * R)
    if pid < n_tiles:
        _spatial_tile(x_ptr, taps_ptr, b, pid, 0, C, C, H, W, channel_ptr, spatial_ptr, 3 * H * W,
                      FILTER, K, BLOCK_C, TH, TW, False, True)
    else:
        _channel_block(x_ptr, taps_ptr, b, pid - n_tiles, C, H, W, channel_ptr,
                       FILTER, K, CH_BLOCK_C, CH_TH, CH_TW)


# --------------------------------------------------------------------------- host side


@dataclass(frozen=True)
class TileConfig:
    """Tile shape of the one-read plan. ``TW`` includes the 2*(k//2) halo columns."""

    block_c: int = 8
    th: int = 4
    tw: int = 64
    num_warps: int = 4
    merge_block: int = 128
    merge_block_n: int = 8
    min_programs: Optional[int] = None  # below this many programs C is split into groups (None: 4 per SM)
    min_group_channels: int = 64  # keeps the spatial partials (5 floats per group) under ~8% of F


@dataclass(frozen=True)
class PluginConfig:
    """Tile shapes of the single-launch plugin kernel (position-tile and channel-block programs)."""

    block_c: int = 16
    th: int = 2
    tw: int = 64
    ch_block_c: int = 4
    ch_th: int = 8
    ch_tw: int = 64
    num_warps: int = 4

    def constexprs(self, gmp_filter: str, k: int) -> dict:
        return {"FILTER": GMP_FILTER_CODES[gmp_filter], "K": k, "BLOCK_C": self.block_c, "TH": self.th, "TW": self.tw,
                "CH_BLOCK_C": self.ch_block_c, "CH_TH": self.ch_th, "CH_TW": self.ch_tw}

    def grid(self, C: int, H: int, W: int, k: int) -> int:
        """Programs per sample (grid x); grid y is the batch."""
        r = k // 2
        return triton.cdiv(H, self.th) * triton.cdiv(W, self.tw - 2 * r) + triton.cdiv(C, self.ch_block_c)


def _prepare(x: torch.Tensor, taps: Optional[torch.Tensor], gmp_filter: str) -> tuple[torch.Tensor, torch.Tensor, int]:
    if gmp_filter not in GMP_FILTER_CODES:
        raise ValueError(f"gmp_filter must be one of {GMP_FILTERS}, got {gmp_filter!r}")
    if x.ndim != 4:
        raise ValueError(f"fused CAT pooling expects an NCHW tensor, got shape {tuple(x.shape)}")
    if x.dtype not in (torch.float32, torch.float16, torch.bfloat16):
        raise TypeError(f"fused CAT pooling supports float32/float16/bfloat16 input, got {x.dtype}")
    C = x.shape[1]
    if gmp_filter == "none" or taps is None:
        taps = torch.ones(C, 1, device=x.device, dtype=torch.float32)
    taps = taps.to(device=x.device, dtype=torch.float32)
    if taps.ndim == 1:
        taps = taps.expand(C, -1)
    k = taps.shape[-1]
    if taps.shape[0] != C or k % 2 == 0:
        raise ValueError(f"taps must be Tensor[k] or Tensor[C={C}, k] with odd k, got {tuple(taps.shape)}")
    return x.contiguous(), taps.contiguous(), k


def _check_tw(tw: int, k: int) -> None:
    if tw - 2 * (k // 2) < 1:
        raise ValueError(f"tile width {tw} leaves no output columns for a {k}-tap filter")


def cat_pool_fused(x: torch.Tensor, taps: Optional[torch.Tensor], gmp_filter: str = "paper",
                   config: TileConfig = TileConfig()) -> tuple[torch.Tensor, torch.Tensor]:
    """The six CAT statistics from one read of ``x`` (two launches: tiles + merge).

    Args:
        x (Tensor[B, C, H, W]): float32/float16/bfloat16 feature map (CUDA, or CPU under
            ``TRITON_INTERPRET=1``).
        taps (Tensor[k] | Tensor[C, k] | None): Gaussian taps; ignored for ``"none"``.
        gmp_filter: ``"paper"``, ``"2d"`` or ``"none"``, as :func:`cat_pool`.

    Returns:
        channel (Tensor[B, 3, C]) and spatial (Tensor[B, 3, H, W]) in ``x.dtype``: the same
        values as ``cat_pool(x, taps, gmp_filter, "stable")``, before normalisation.

    Example:
        >>> ch, sp = cat_pool_fused(feat, cat.gmp_taps, "paper")
    """
    x, taps, k = _prepare(x, taps, gmp_filter)
    cfg = config
    if gmp_filter == "none":
        k = 1
    _check_tw(cfg.tw, k)
    B, C, H, W = x.shape
    r = k // 2
    n_tiles = triton.cdiv(H, cfg.th) * triton.cdiv(W, cfg.tw - 2 * r)
    # Split C into groups only when the position tiles alone leave the GPU idle.
    min_programs = cfg.min_programs
    if min_programs is None:
        min_programs = 4 * torch.cuda.get_device_properties(x.device).multi_processor_count if x.is_cuda else 8
    groups = 1
    if B * n_tiles < min_programs:
        groups = min(triton.cdiv(min_programs, B * n_tiles), max(1, C // cfg.min_group_channels))
    cg = triton.cdiv(triton.cdiv(C, groups), cfg.block_c) * cfg.block_c
    groups = triton.cdiv(C, cg)

    dev = x.device
    channel = torch.empty(B, 3, C, device=dev, dtype=x.dtype)
    spatial = torch.empty(B, 3, H, W, device=dev, dtype=x.dtype)
    ch_part = torch.empty(B, n_tiles, 5, C, device=dev, dtype=torch.float32)
    if groups == 1:
        sp_part, sp_target, sp_stride = spatial, spatial, 3 * H * W
    else:
        sp_part = torch.empty(B, groups, 5, H, W, device=dev, dtype=torch.float32)
        sp_target, sp_stride = sp_part, groups * 5 * H * W
    _tiles_kernel[(n_tiles, groups, B)](
        x, taps, C, H, W, cg, ch_part, sp_target, sp_stride,
        FILTER=GMP_FILTER_CODES[gmp_filter], K=k, BLOCK_C=cfg.block_c, TH=cfg.th, TW=cfg.tw,
        SPATIAL_FINAL=groups == 1, num_warps=cfg.num_warps,
    )
    n_blocks = triton.cdiv(C, cfg.merge_block) + (triton.cdiv(H * W, cfg.merge_block) if groups > 1 else 0)
    _merge_kernel[(n_blocks, B)](
        ch_part, sp_part, C, H * W, n_tiles, groups, channel, spatial,
        BLOCK=cfg.merge_block, BLOCK_N=cfg.merge_block_n, MERGE_SPATIAL=groups > 1, num_warps=4,
    )
    return channel, spatial


def cat_pool_single(x: torch.Tensor, taps: Optional[torch.Tensor], gmp_filter: str = "paper",
                    config: PluginConfig = PluginConfig()) -> tuple[torch.Tensor, torch.Tensor]:
    """Same result as :func:`cat_pool_fused` with the TensorRT plugin's single-launch kernel."""
    x, taps, k = _prepare(x, taps, gmp_filter)
    if gmp_filter == "none":
        k = 1
    _check_tw(config.tw, k)
    _check_tw(config.ch_tw, k)
    B, C, H, W = x.shape
    channel = torch.empty(B, 3, C, device=x.device, dtype=x.dtype)
    spatial = torch.empty(B, 3, H, W, device=x.device, dtype=x.dtype)
    cat_pool_plugin_kernel[(config.grid(C, H, W, k), B)](
        x, taps, C, H, W, channel, spatial, **config.constexprs(gmp_filter, k), num_warps=config.num_warps,
    )
    return channel, spatial


# --------------------------------------------------------------------------- PTX for the plugin

_TRITON_DTYPES = {"float32": "fp32", "float16": "fp16"}


def plugin_signature(dtype: str) -> dict[str, str]:
    """Runtime parameters of :func:`cat_pool_plugin_kernel` in order: inputs, scalars, outputs."""
    ty = _TRITON_DTYPES[dtype]
    return {"x_ptr": f"*{ty}", "taps_ptr": f"*{ty}", "C": "i32", "H": "i32", "W": "i32",
            "channel_ptr": f"*{ty}", "spatial_ptr": f"*{ty}"}


@dataclass(frozen=True)
class PluginKernel:
    """A compiled plugin kernel: what ``tensorrt.plugin.aot_impl`` returns, plus facts for tests."""

    name: str
    ptx: str
    num_warps: int
    shared: int
    params: list[str]  # PTX parameter types in order, e.g. ".u64 .ptr .global .align 1"
    cc: int
    config: PluginConfig


_ENTRY = re.compile(r"\.visible\s+\.entry\s+(\w+)\s*\((.*?)\)", re.S)


def _entry_params(ptx: str) -> tuple[str, list[tuple[str, str]], tuple[int, int]]:
    m = _ENTRY.search(ptx)
    if m is None:
        raise RuntimeError("no .entry in the PTX Triton produced")
    params = []
    for decl in m.group(2).split(","):
        decl = " ".join(decl.split())
        if decl:
            kind, name = decl.rsplit(" ", 1)
            params.append((kind.replace(".param ", ""), name))
    return m.group(1), params, m.span(2)


def plugin_ptx(cc: int, dtype: str = "float32", gmp_filter: str = "paper", k: int = 5,
               config: PluginConfig = PluginConfig(), ptx_version: Optional[int] = None) -> PluginKernel:
    """PTX of the single-launch kernel for compute capability ``cc`` (e.g. 80, 87, 89, 90). No GPU needed.

    Triton >= 3.3 appends hidden ``global_scratch``/``profile_scratch`` pointer parameters after
    the declared ones; a TensorRT AOT plugin passes exactly (inputs..., extra scalars...,
    outputs...), so those trailing parameters are removed here after checking that the kernel
    needs no scratch memory and never reads them. Raises ``RuntimeError`` otherwise.
    """
    if gmp_filter == "none":
        k = 1
    _check_tw(config.tw, k)
    _check_tw(config.ch_tw, k)
    sig = plugin_signature(dtype)
    signature = {**sig, **{name: "constexpr" for name in config.constexprs(gmp_filter, k)}}
    # TensorRT device buffers are at least 256-byte aligned: allow vectorised accesses.
    attrs = {(i,): [["tt.divisibility", 16]] for i, ty in enumerate(sig.values()) if ty.startswith("*")}
    src = ASTSource(fn=cat_pool_plugin_kernel, signature=signature,
                    constexprs=config.constexprs(gmp_filter, k), attrs=attrs)
    options = {"num_warps": config.num_warps}
    if ptx_version is not None:
        options["ptx_version"] = ptx_version
    compiled = triton.compile(src, target=GPUTarget("cuda", cc, 32), options=options)
    meta = compiled.metadata
    for field in ("global_scratch_size", "profile_scratch_size"):
        if getattr(meta, field, 0):
            raise RuntimeError(f"the plugin kernel needs {field}={getattr(meta, field)}: a TensorRT AOT plugin "
                               "cannot pass scratch memory")
    ptx = compiled.asm["ptx"]
    name, params, (start, end) = _entry_params(ptx)
    n = len(sig)
    extra = params[n:]
    if len(params) < n:
        raise RuntimeError(f"PTX entry {name} has {len(params)} parameters, expected at least {n}")
    body = ptx[end:]
    for _, pname in extra:
        if re.search(rf"\b{pname}\b", body):
            raise RuntimeError(f"PTX entry {name} reads its hidden parameter {pname}; cannot drop it")
    kept = ",\n".join(f"\t.param {kind} {pname}" for kind, pname in params[:n])
    ptx = ptx[:start] + "\n" + kept + "\n" + ptx[end:]
    return PluginKernel(name=name, ptx=ptx, num_warps=meta.num_warps, shared=meta.shared,
                        params=[kind for kind, _ in params[:n]], cc=cc, config=config)
