#!/usr/bin/env python
"""GPU check of the fused CAT pooling kernels: accuracy against float64 and speed against eager PyTorch.

    python tools/gpu_check.py --out docs/benchmarks            # on a CUDA machine (< 8 minutes)
    python tools/gpu_check.py --dry-run --out /tmp/bench        # no GPU: TRITON_INTERPRET, tiny shapes

For each CAT feature map of a ResNet-50 RetinaNet at a 512x1024 input (the block outputs of
its four stages: 256x128x256, 512x64x128, 1024x32x64, 2048x16x32) and one batch of 8, in
FP32 and FP16, on fresh random inputs:

* accuracy: the one-read plan (``cat_pool_fused``) and the TensorRT plugin's single-launch
  kernel (``cat_pool_single``) against ``cat_pool`` in float64; relative error per statistic
  = max |out - ref| / max(max |ref|, floor), floor 1e-3 (1 nat for GEP) (target <= 1e-5 for FP32 input);
* time (CUDA events, L2 flushed before every run, median): the kernels, the PyTorch eager
  pooling sequence (``cat_pool`` with gep="stable") and a device copy of F (the bandwidth
  ceiling). Effective bandwidth = (bytes of F read once + bytes of outputs) / kernel time;
  targets: >= 70% of copy bandwidth (copy moves 2x the bytes of F), >= 4x faster than eager.
  A few tile shapes are tried for the one-read plan; the best and the default are reported.

Writes ``gpu_fused_pool.json`` and ``gpu_fused_pool.md`` into ``--out``.
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

ROOT = Path(__file__).resolve().parents[1]

# ResNet-50 at 512x1024: the CAT maps of layer1..layer4 (strides 4..32); plus a batch of 8.
GPU_SHAPES = [(1, 256, 128, 256), (1, 512, 64, 128), (1, 1024, 32, 64), (1, 2048, 16, 32), (8, 512, 32, 64)]
DRY_SHAPES = [(1, 8, 5, 20), (2, 12, 3, 7)]
TARGETS = {"rel_err_fp32": 1e-5, "copy_ratio": 0.70, "speedup_vs_eager": 4.0}


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


def rel_errors(out, ref) -> list[float]:
    """Per statistic (avg, max, entropy) of out [B, 3, ...] vs float64: max |out - ref| / max(max |ref|, floor).

    Floors 1e-3 for avg/max and 1 nat for the entropy (in [0, log n]; FP32 resolves it to ~1e-7
    nats near 0, so for very peaked maps the error is absolute).
    """
    floors = (1e-3, 1e-3, 1.0)
    return [float((out[:, i].double() - ref[:, i]).abs().max() / ref[:, i].abs().max().clamp_min(floors[i]))
            for i in range(3)]


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.dry_run:
        os.environ["TRITON_INTERPRET"] = "1"  # before triton is imported
    sys.path.insert(0, str(ROOT))
    import numpy as np
    import torch
    import triton

    from cat_deploy.layers.pooling import cat_pool, gaussian_kernel1d
    from cat_deploy.plugins.cat_pool_triton import PluginConfig, TileConfig, cat_pool_fused, cat_pool_single

    np.seterr(all="ignore")
    cuda = torch.cuda.is_available() and not args.dry_run
    if not cuda and not args.dry_run:
        print("gpu_check.py: error: no CUDA GPU visible; run on a GPU machine or use --dry-run", file=sys.stderr)
        return 2
    dev = torch.device("cuda" if cuda else "cpu")
    seed = args.seed if args.seed is not None else int.from_bytes(os.urandom(4), "little")
    gen = torch.Generator(device=dev).manual_seed(seed)
    t_start = time.perf_counter()

    shapes = GPU_SHAPES if cuda else DRY_SHAPES
    iters = args.iters if cuda else 1
    if cuda:
        sweep = [TileConfig(), TileConfig(block_c=16, th=2, tw=64), TileConfig(block_c=8, th=8, tw=32),
                 TileConfig(block_c=4, th=4, tw=128, num_warps=8), TileConfig(block_c=8, th=4, tw=64, num_warps=8)]
        plugin_cfg = PluginConfig()
    else:
        sweep = [TileConfig(block_c=4, th=4, tw=16, min_programs=8, min_group_channels=4)]
        plugin_cfg = PluginConfig(block_c=4, th=2, tw=16, ch_block_c=4, ch_th=4, ch_tw=16)
    if args.no_sweep:
        sweep = sweep[:1]
    flush = torch.empty(256 << 20, dtype=torch.uint8, device=dev) if cuda else None

    def timed(fn) -> float:
        """Median seconds of ``fn()`` over ``iters`` runs, L2 flushed before each (CPU: wall clock)."""
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

    env = {
        "device": torch.cuda.get_device_name() if cuda else f"CPU ({platform.processor() or platform.machine()}), "
                                                             "TRITON_INTERPRET=1",
        "compute_capability": ".".join(map(str, torch.cuda.get_device_capability())) if cuda else None,
        "torch": torch.__version__, "triton": triton.__version__, "cuda": torch.version.cuda,
        "python": platform.python_version(), "dry_run": not cuda, "seed": seed, "iters": iters,
    }
    log(f"gpu_check: {env['device']}, torch {env['torch']}, triton {env['triton']}, seed {seed}")
    taps1 = gaussian_kernel1d(5)
    cases = []
    for shape in shapes:
        for dtype in (torch.float32, torch.float16):
            B, C, H, W = shape
            name = f"{list(shape)} {str(dtype).replace('torch.', '')}"
            x = (torch.randn(shape, generator=gen, device=dev) * 2.0).to(dtype)
            taps = taps1.to(dev).float().expand(C, -1).contiguous()
            ref_c, ref_s = cat_pool(x.double(), taps.double(), "paper", "stable")
            elem = x.element_size()
            io_bytes = x.numel() * elem + (B * 3 * C + B * 3 * H * W) * elem
            case = {"shape": list(shape), "dtype": str(dtype).replace("torch.", ""), "io_bytes": io_bytes}

            out_c, out_s = cat_pool_fused(x, taps, "paper", sweep[0])
            case["rel_err_fused"] = dict(zip(("ch_avg", "ch_max", "ch_ent", "sp_avg", "sp_max", "sp_ent"),
                                             rel_errors(out_c, ref_c) + rel_errors(out_s, ref_s)))
            out_c, out_s = cat_pool_single(x, taps, "paper", plugin_cfg)
            case["rel_err_plugin"] = dict(zip(("ch_avg", "ch_max", "ch_ent", "sp_avg", "sp_max", "sp_ent"),
                                              rel_errors(out_c, ref_c) + rel_errors(out_s, ref_s)))
            case["max_rel_err"] = max(max(case["rel_err_fused"].values()), max(case["rel_err_plugin"].values()))
            del ref_c, ref_s

            y = torch.empty_like(x)
            t_copy = timed(lambda: y.copy_(x))
            t_eager = timed(lambda: cat_pool(x, taps, "paper", "stable"))
            t_plugin = timed(lambda: cat_pool_single(x, taps, "paper", plugin_cfg))
            tiles = []
            for i, cfg in enumerate(sweep):
                if i and time.perf_counter() - t_start > args.budget:
                    log(f"  budget of {args.budget:.0f}s reached: tile sweep stopped")
                    break
                tiles.append({"config": cfg.__dict__, "time_s": timed(lambda: cat_pool_fused(x, taps, "paper", cfg))})
            best = min(tiles, key=lambda r: r["time_s"])
            t_fused = best["time_s"]
            copy_bw = 2 * x.numel() * elem / t_copy
            case.update({
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
            })
            cases.append(case)
            log(f"  {name:<28} err {case['max_rel_err']:.1e}  eager {t_eager * 1e6:8.1f} us  "
                f"fused {t_fused * 1e6:7.1f} us ({case['fused_copy_ratio']:.0%} of copy, "
                f"{case['speedup_fused_vs_eager']:.1f}x)  plugin {t_plugin * 1e6:7.1f} us "
                f"({case['plugin_copy_ratio']:.0%}, {case['speedup_plugin_vs_eager']:.1f}x)  "
                f"[{time.perf_counter() - t_start:.0f}s]")

    verdict = {  # speed targets are meaningless under the CPU interpreter: None there
        "rel_err_fp32_ok": all(c["max_rel_err"] <= TARGETS["rel_err_fp32"] for c in cases if c["dtype"] == "float32"),
        "copy_ratio_ok": all(c["fused_copy_ratio"] >= TARGETS["copy_ratio"] for c in cases) if cuda else None,
        "speedup_ok": all(c["speedup_fused_vs_eager"] >= TARGETS["speedup_vs_eager"] for c in cases) if cuda else None,
    }
    report = {"env": env, "targets": TARGETS, "verdict": verdict, "cases": cases,
              "wall_s": time.perf_counter() - t_start}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "gpu_fused_pool.json").write_text(json.dumps(report, indent=2))
    (out / "gpu_fused_pool.md").write_text(markdown(report))
    log(f"wrote {out / 'gpu_fused_pool.json'} and .md in {report['wall_s']:.0f}s; verdict {verdict}")
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
        f"Targets: relative error <= {t['rel_err_fp32']:g} (FP32 input) vs float64; "
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
