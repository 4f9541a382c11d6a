#!/usr/bin/env python
"""GPU check of the fused CAT pooling kernels: accuracy against float64 and speed against eager PyTorch.

    python tools/gpu_check.py --out docs/benchmarks            # on a CUDA machine (< 8 minutes)
    python tools/gpu_check.py --dry-run --out /tmp/bench        # no GPU: TRITON_INTERPRET, tiny shapes

For each CAT feature map of a ResNet-50 RetinaNet at a 512x1024 input (the block outputs of
its four stages: 256x128x256, 512x64x128, 1024x32x64, 2048x16x32) and one batch of 8, in
FP32 and FP16, on fresh random inputs:

* accuracy: the one-read plan (``cat_pool_fused``) and the TensorRT plugin's single-launch
  kernel (``cat_pool_single``) against the independent float64 reference
  ``tests/cat_reference.py::cat_pool_ref`` (numpy, written from docs/cat_spec.md), element by
  element: per statistic the worst ``rel_err`` = |out - ref| / max(|ref|, floor), floor the mean
  |x| averaged for GAP, 1e-3 for GMP, none for GEP (1e-6 guards exact zeros only) (target <= 1e-5 for FP32 input);
* time (CUDA events, L2 flushed before every run, median): the kernels, the PyTorch eager
  pooling sequence (``cat_pool`` with gep="stable") and a device copy of F (the bandwidth
  ceiling). Effective bandwidth = (bytes of F read once + bytes of outputs) / kernel time;
  targets: >= 70% of copy bandwidth (copy moves 2x the bytes of F), >= 4x faster than eager.
  A few tile shapes are tried for the one-read plan; the best and the default are reported.

Writes ``gpu_fused_pool.json`` and ``gpu_fused_pool.md`` into ``--out``. torch and triton are
imported in the functions, after ``main`` has chosen the interpreter (``--dry-run``).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parents[1]

# ResNet-50 at 512x1024: the CAT maps of layer1..layer4 (strides 4..32); plus a batch of 8.
GPU_SHAPES = [(1, 256, 128, 256), (1, 512, 64, 128), (1, 1024, 32, 64), (1, 2048, 16, 32), (8, 512, 32, 64)]
DRY_SHAPES = [(1, 8, 5, 20), (2, 12, 3, 7)]
TARGETS = {"rel_err_fp32": 1e-5, "copy_ratio": 0.70, "speedup_vs_eager": 4.0}
STATS = ("ch_avg", "ch_max", "ch_ent", "sp_avg", "sp_max", "sp_ent")


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default=str(ROOT / "docs" / "benchmarks"), help="folder for the JSON and markdown")
    p.add_argument("--dry-run", action="store_true", help="CPU: TRITON_INTERPRET=1, tiny shapes, no timing targets")
    p.add_argument("--iters", type=int, default=30, help="timed runs per measurement (GPU)")
    p.add_argument("--budget", type=float, default=420.0, help="seconds; tile sweeps stop when exceeded")
    p.add_argument("--no-sweep", action="store_true", help="only the default tile shapes")
    p.add_argument("--seed", type=int, default=None, help="input seed (default: fresh)")
    return p.parse_args(argv)


def log(msg: str) -> None:
    print(msg, flush=True)


def rel_errors(out, ref, x64) -> list[float]:
    """Worst elementwise relative error per statistic of ``out`` [B, 3, ...] against the float64 reference.

    ``rel_err(out, ref, floor)`` = ``|out - ref| / max(|ref|, floor)`` (``tests/cat_reference.py``), with the
    floor at the statistic's own resolution: for the average, the mean |x| it averages (a mean near 0 is a
    cancellation, resolved to a few roundoffs of the summed magnitudes, not of itself); 1e-3 for the max;
    none for the entropy (only 1e-6 against exact zeros: a floor of 1 nat would hide errors in small entropies;
    on these random inputs every entropy is several nats, so the plain relative error applies). ``x64`` is the input
    [B, C, H, W] as float64; channel statistics [B, 3, C] and spatial ones [B, 3, H, W] are told apart by shape.
    """
    import numpy as np
    from cat_reference import rel_err

    out = out.double().cpu().numpy()
    avg_floor = np.abs(x64).mean(axis=(2, 3) if out.ndim == 3 else 1)
    return [float(rel_err(out[:, i], ref[:, i], floor).max()) for i, floor in enumerate((avg_floor, 1e-3, 1e-6))]


def tile_configs(cuda: bool, no_sweep: bool) -> tuple[list, object]:
    """The one-read plan's tile shapes to sweep (default first) and the plugin kernel's configuration;
    tiny tiles under the interpreter, so the dry-run maps still span several tiles."""
    from cat_deploy.plugins.cat_pool_triton import PluginConfig, TileConfig

    if cuda:
        sweep = [TileConfig(), TileConfig(block_c=16, th=2, tw=64), TileConfig(block_c=8, th=8, tw=32),
                 TileConfig(block_c=4, th=4, tw=128, num_warps=8), TileConfig(block_c=8, th=4, tw=64, num_warps=8)]
        plugin_cfg = PluginConfig()
    else:
        sweep = [TileConfig(block_c=4, th=4, tw=16, min_programs=8, min_group_channels=4)]
        plugin_cfg = PluginConfig(block_c=4, th=2, tw=16, ch_block_c=4, ch_th=4, ch_tw=16)
    return (sweep[:1] if no_sweep else sweep), plugin_cfg


def make_timer(cuda: bool, iters: int, dev) -> Callable[[Callable[[], object]], float]:
    """``timed(fn)``: median seconds of ``fn()`` over ``iters`` runs (CUDA events, L2 flushed before each,
    after 3 warm-up runs); on the CPU one wall-clock run."""
    import torch

    flush = torch.empty(256 << 20, dtype=torch.uint8, device=dev) if cuda else None

    def timed(fn) -> float:
        if not cuda:
            t = time.perf_counter()
            fn()
            return time.perf_counter() - t
        for _ in range(3):
            fn()
        times = []
        for _ in range(iters):
            flush.zero_()
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            fn()
            end.record()
            end.synchronize()
            times.append(start.elapsed_time(end) / 1e3)
        return statistics.median(times)

    return timed


def environment(cuda: bool, seed: int, iters: int) -> dict:
    """Device, library versions and run settings, for the report."""
    import torch
    import triton

    return {
        "device": torch.cuda.get_device_name() if cuda else f"CPU ({platform.processor() or platform.machine()}), "
                                                             "TRITON_INTERPRET=1",
        "compute_capability": ".".join(map(str, torch.cuda.get_device_capability())) if cuda else None,
        "torch": torch.__version__, "triton": triton.__version__, "cuda": torch.version.cuda,
        "python": platform.python_version(), "dry_run": not cuda, "seed": seed, "iters": iters,
    }


def accuracy(x, taps, tile_cfg, plugin_cfg) -> dict:
    """Both kernels against ``cat_pool_ref`` (float64 numpy, written from docs/cat_spec.md) on the same input
    values: the worst elementwise relative error per statistic (:func:`rel_errors`) and over all of them."""
    from cat_reference import cat_pool_ref

    from cat_deploy.plugins.cat_pool_triton import cat_pool_fused, cat_pool_single

    x64 = x.double().cpu().numpy()
    ref_c, ref_s = cat_pool_ref(x64, "paper", taps=taps.double().cpu().numpy())
    res = {}
    for key, fn, cfg in (("rel_err_fused", cat_pool_fused, tile_cfg), ("rel_err_plugin", cat_pool_single, plugin_cfg)):
        out_c, out_s = fn(x, taps, "paper", cfg)
        res[key] = dict(zip(STATS, rel_errors(out_c, ref_c, x64) + rel_errors(out_s, ref_s, x64)))
    res["max_rel_err"] = max(max(res["rel_err_fused"].values()), max(res["rel_err_plugin"].values()))
    return res


def speed(x, taps, sweep, plugin_cfg, timed, t_start: float, budget: float) -> dict:
    """Times of a device copy of ``x``, eager PyTorch, the plugin kernel and the one-read plan per tile shape
    (the sweep stops once ``budget`` seconds have passed since ``t_start``), and the bandwidths and speed-ups."""
    import torch

    from cat_deploy.layers.pooling import cat_pool
    from cat_deploy.plugins.cat_pool_triton import cat_pool_fused, cat_pool_single

    B, C, H, W = x.shape
    elem = x.element_size()
    io_bytes = x.numel() * elem + (B * 3 * C + B * 3 * H * W) * elem
    y = torch.empty_like(x)
    t_copy = timed(lambda: y.copy_(x))
    t_eager = timed(lambda: cat_pool(x, taps, "paper", "stable"))
    t_plugin = timed(lambda: cat_pool_single(x, taps, "paper", plugin_cfg))
    tiles = []
    for i, cfg in enumerate(sweep):
        if i and time.perf_counter() - t_start > budget:
            log(f"  budget of {budget:.0f}s reached: tile sweep stopped")
            break
        tiles.append({"config": cfg.__dict__, "time_s": timed(lambda: cat_pool_fused(x, taps, "paper", cfg))})
    best = min(tiles, key=lambda r: r["time_s"])
    t_fused = best["time_s"]
    copy_bw = 2 * x.numel() * elem / t_copy
    return {
        "io_bytes": io_bytes,
        "time_copy_s": t_copy, "time_eager_s": t_eager, "time_fused_default_s": tiles[0]["time_s"],
        "time_fused_best_s": t_fused, "best_tile_config": best["config"], "tile_sweep": tiles,
        "time_plugin_s": t_plugin,
        "copy_bandwidth_gbs": copy_bw / 1e9,
        "fused_bandwidth_gbs": io_bytes / t_fused / 1e9,
        "plugin_bandwidth_gbs": io_bytes / t_plugin / 1e9,
        "fused_copy_ratio": io_bytes / t_fused / copy_bw,
        "plugin_copy_ratio": io_bytes / t_plugin / copy_bw,
        "speedup_fused_vs_eager": t_eager / t_fused,
        "speedup_plugin_vs_eager": t_eager / t_plugin,
    }


def verdict(cases: list[dict], cuda: bool) -> dict:
    """Which targets every case meets; speed targets are meaningless under the CPU interpreter: None there."""
    return {
        "rel_err_fp32_ok": all(c["max_rel_err"] <= TARGETS["rel_err_fp32"] for c in cases if c["dtype"] == "float32"),
        "copy_ratio_ok": all(c["fused_copy_ratio"] >= TARGETS["copy_ratio"] for c in cases) if cuda else None,
        "speedup_ok": all(c["speedup_fused_vs_eager"] >= TARGETS["speedup_vs_eager"] for c in cases) if cuda else None,
    }


def log_case(c: dict, elapsed: float) -> None:
    """One line per case: worst error, times, share of copy bandwidth, speed-ups."""
    name = f"{c['shape']} {c['dtype']}"
    log(f"  {name:<28} err {c['max_rel_err']:.1e}  eager {c['time_eager_s'] * 1e6:8.1f} us  "
        f"fused {c['time_fused_best_s'] * 1e6:7.1f} us ({c['fused_copy_ratio']:.0%} of copy, "
        f"{c['speedup_fused_vs_eager']:.1f}x)  plugin {c['time_plugin_s'] * 1e6:7.1f} us "
        f"({c['plugin_copy_ratio']:.0%}, {c['speedup_plugin_vs_eager']:.1f}x)  [{elapsed:.0f}s]")


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.dry_run:
        os.environ["TRITON_INTERPRET"] = "1"  # before triton is imported
    sys.path.insert(0, str(ROOT))
    sys.path.append(str(ROOT / "tests"))  # cat_reference.py: the float64 reference
    import numpy as np
    import torch

    from cat_deploy.layers.pooling import gaussian_kernel1d

    np.seterr(all="ignore")
    cuda = torch.cuda.is_available() and not args.dry_run
    if not cuda and not args.dry_run:
        print("gpu_check.py: error: no CUDA GPU visible; run on a GPU machine or use --dry-run", file=sys.stderr)
        return 2
    dev = torch.device("cuda" if cuda else "cpu")
    seed = args.seed if args.seed is not None else int.from_bytes(os.urandom(4), "little")
    gen = torch.Generator(device=dev).manual_seed(seed)
    t_start = time.perf_counter()
    iters = args.iters if cuda else 1
    sweep, plugin_cfg = tile_configs(cuda, args.no_sweep)
    timed = make_timer(cuda, iters, dev)
    env = environment(cuda, seed, iters)
    log(f"gpu_check: {env['device']}, torch {env['torch']}, triton {env['triton']}, seed {seed}")
    cases = []
    for shape in GPU_SHAPES if cuda else DRY_SHAPES:
        for dtype in (torch.float32, torch.float16):
            x = (torch.randn(shape, generator=gen, device=dev) * 2.0).to(dtype)
            taps = gaussian_kernel1d(5).to(dev).float().expand(shape[1], -1).contiguous()
            case = {"shape": list(shape), "dtype": str(dtype).replace("torch.", "")}
            case.update(accuracy(x, taps, sweep[0], plugin_cfg))
            case.update(speed(x, taps, sweep, plugin_cfg, timed, t_start, args.budget))
            cases.append(case)
            log_case(case, time.perf_counter() - t_start)
    report = {"env": env, "targets": TARGETS, "verdict": verdict(cases, cuda), "cases": cases,
              "wall_s": time.perf_counter() - t_start}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "gpu_fused_pool.json").write_text(json.dumps(report, indent=2))
    (out / "gpu_fused_pool.md").write_text(markdown(report))
    log(f"wrote {out / 'gpu_fused_pool.json'} and .md in {report['wall_s']:.0f}s; verdict {report['verdict']}")
    return 0


def markdown(report: dict) -> str:
    env, t = report["env"], report["targets"]
    lines = [
        "# Fused CAT pooling on the GPU (`tools/gpu_check.py`)",
        "",
        f"{env['device']} (cc {env['compute_capability']}), torch {env['torch']}, triton {env['triton']}, "
        f"CUDA {env['cuda']}; seed {env['seed']}, median of {env['iters']} runs, L2 flushed before each."
        + (" **Dry run (CPU interpreter): times are meaningless.**" if env["dry_run"] else ""),
        "",
        f"Targets: relative error <= {t['rel_err_fp32']:g} (FP32 input), elementwise vs the float64 reference; "
        f">= {t['copy_ratio']:.0%} of copy bandwidth; >= {t['speedup_vs_eager']:g}x faster than eager.",
        "fused = one read of F (tiles + merge kernels, best tile shape); plugin = the TensorRT plugin's "
        "single-launch kernel (reads F twice).",
        "",
        "| F | dtype | max rel err | copy GB/s | eager us | fused us | fused GB/s | % copy | x eager "
        "| plugin us | plugin % copy | plugin x eager |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for c in report["cases"]:
        lines.append(
            f"| {'x'.join(map(str, c['shape']))} | {c['dtype']} | {c['max_rel_err']:.1e} | "
            f"{c['copy_bandwidth_gbs']:.0f} | {c['time_eager_s'] * 1e6:.1f} | {c['time_fused_best_s'] * 1e6:.1f} | "
            f"{c['fused_bandwidth_gbs']:.0f} | {c['fused_copy_ratio']:.0%} | {c['speedup_fused_vs_eager']:.1f} | "
            f"{c['time_plugin_s'] * 1e6:.1f} | {c['plugin_copy_ratio']:.0%} | {c['speedup_plugin_vs_eager']:.1f} |")
    v = report["verdict"]
    word = {True: "yes", False: "NO", None: "n/a"}
    lines += ["", "Verdict: " + ", ".join(f"{k}={word[ok]}" for k, ok in v.items()), ""]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
