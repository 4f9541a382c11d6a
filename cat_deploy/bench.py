"""Latency of attention variants side by side: what CAT costs in deployment.

    python -m cat_deploy.bench                       # full run (CPU: PyTorch eager + ONNX Runtime), ~5-8 min here
    python -m cat_deploy.bench --quick               # fewer repetitions
    python -m cat_deploy.bench --models resnet50 --variants none cat-stable --reps 10
    python -m cat_deploy.bench --models resnet50 --imgsz 160      # one size: a square

For each model (ResNet-50 classifier at 224x224; the demo detector at its input size) and
each variant (no attention, SE, ECA, CBAM, CAT with each GEP formulation, and with the fused
pooling node, alone or with the fused gate node: ``cat-plugin``, ``cat-plugin-gate``), on weights where
every CAT branch reaches the output (``exercise_cat``), it exports an ONNX
file, refuses to time it unless it passes parity against PyTorch (FP32 thresholds of
``cat_deploy.validate.parity``), then times every (model, variant, backend) round-robin,
one inference each per round, so machine drift hits all of them alike. Reports median and
p90 latency, ratios to the plain backbone on the same backend, ONNX Runtime's speed-up over
PyTorch eager, parameters and MACs, threads and machine.

The fused variants are timed on ONNX Runtime only, and only with the compiled ops library
(``plugins/lib/libcat_deploy_ort_ops.so``): in PyTorch they run cat-stable's arithmetic, and the
Python twins call PyTorch from inside ONNX Runtime, so either timing would say nothing about the
fused nodes. Otherwise the report lists them as "not timed" with the reason. Writes ``bench_cpu.md``/``.json``
and an ONNX Runtime profile of CAT (``cat_profile.md``) into ``--out``. Exit status: 0 ok,
1 a variant failed parity (not timed; the tables are still written), 2 bad input,
3 missing dependency, 4 internal error, 130 interrupted.
"""
from __future__ import annotations

import argparse
import collections
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Optional

import numpy as np
import onnxruntime
import torch

from . import cli
from .core.files import atomic_write
from .core.plugin_ids import ORT_OPS_LIBRARY
from .core.sidecar import ShapeProfile
from .export.onnx import export_onnx
from .layers import set_fuse_gate, set_gep
from .models import create_model, exercise_cat
from .models.profile import count_macs, count_params
from .paths import OutputPathError, output_dir
from .plugins.ort_library import library_path
from .validate.parity import TOLERANCES, compare_outputs

VARIANTS = {  # name -> (attn, gep, fused gate)
    "none": (None, None, False), "se": ("se", None, False), "eca": ("eca", None, False), "cbam": ("cbam", None, False),
    "cat-reference": ("cat", "reference", False), "cat-stable": ("cat", "stable", False),
    "cat-plugin": ("cat", "plugin", False), "cat-plugin-gate": ("cat", "plugin", True),
}
FUSED = ("cat-plugin", "cat-plugin-gate")  # custom ONNX nodes: timed on ONNX Runtime with the compiled library only
PROFILED = ("cat-stable", "cat-plugin-gate")
MODELS = {"resnet50": ("resnet50", (224, 224)), "detector": ("retinanet_tiny", (192, 640))}


def machine_info(threads: int) -> dict[str, Any]:
    cpu = platform.processor() or "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    return {"cpu": cpu, "logical_cores": os.cpu_count(), "threads": threads, "gpu": gpu,
            "torch": str(torch.__version__), "onnxruntime": onnxruntime.__version__,
            "python": platform.python_version(), "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}


def build(model_key: str, variant: str, size: Optional[tuple[int, int]] = None) -> torch.nn.Module:
    """The model of one (model, variant) entry, on weights where every CAT branch reaches the output.

    ``exercise_cat`` draws the colla-factors, MLP and conv of every CAT module (a fresh CAT outputs
    exactly ``0.5 * x``, so a parity gate on it would not see CAT at all) and re-estimates BatchNorm
    statistics, for every variant alike; latency does not depend on the values.
    """
    name, default_size = MODELS[model_key]
    attn, gep, fuse_gate = VARIANTS[variant]
    size = tuple(size or default_size)
    torch.manual_seed(0)
    model = create_model(name, attn=attn, num_classes=1000 if model_key == "resnet50" else 6, input_size=size)
    exercise_cat(model, seed=0, input_size=size)
    if gep:
        set_gep(model, gep)
    set_fuse_gate(model, fuse_gate)
    return model.eval()


def not_timed_reason(variant: str, backend: str, library: Optional[Path]) -> Optional[str]:
    """Why a (variant, backend) entry is not timed, or None when it is."""
    if variant not in FUSED:
        return None
    if backend == "torch-cpu":
        return "PyTorch runs cat-stable's arithmetic for the fused nodes (time cat-stable)"
    if library is None:
        return (f"needs the compiled ONNX Runtime ops library {ORT_OPS_LIBRARY} (not built); the Python twins "
                "would time PyTorch called from ONNX Runtime, not the fused nodes")
    return None


def _ort_session(path: Path, threads: int, profile_prefix: Optional[str] = None, library: Optional[Path] = None):
    opts = onnxruntime.SessionOptions()
    if library is not None:
        opts.register_custom_ops_library(str(library))
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    # No spin-waiting after a run: with several sessions interleaved, one session's spinning
    # threads would steal the cores from the next runner (measured: up to 7x on single ops).
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    if profile_prefix:
        opts.enable_profiling = True
        opts.profile_file_prefix = profile_prefix
    return onnxruntime.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


def run(models: list[str], variants: list[str], backends: list[str], reps: int, warmup: int, threads: int,
        out: Path, log=print, imgsz: Optional[tuple[int, int]] = None) -> dict[str, Any]:
    torch.set_num_threads(threads)
    info = machine_info(threads)
    entries: dict[tuple[str, str, str], Any] = {}
    meta: dict[tuple[str, str], dict[str, Any]] = {}
    not_timed: dict[str, str] = {}
    library = library_path()
    with tempfile.TemporaryDirectory(prefix="cat-bench-") as tmp:
        for mk in models:
            size = tuple(imgsz or MODELS[mk][1])
            x = np.random.default_rng(0).standard_normal((1, 3, *size)).astype(np.float32)
            for v in variants:
                model = build(mk, v, size)
                row = {"params_m": count_params(model) / 1e6, "gmacs": count_macs(model, size) / 1e9}
                with torch.no_grad():
                    ref = model(torch.from_numpy(x))
                ref = {f"out{i}": t.numpy() for i, t in enumerate(ref if isinstance(ref, tuple) else (ref,))}
                names = list(ref)
                for b in backends:
                    reason = not_timed_reason(v, b, library)
                    if reason:
                        not_timed[f"{mk}/{v}/{b}"] = reason
                        log(f"  {mk}/{v}/{b}: not timed: {reason}")
                if "torch-cpu" in backends and not not_timed_reason(v, "torch-cpu", library):
                    entries[(mk, v, "torch-cpu")] = lambda m=model, t=torch.from_numpy(x): m(t)
                if "ort-cpu" in backends and not not_timed_reason(v, "ort-cpu", library):
                    path = Path(tmp) / f"{mk}_{v}.onnx"
                    export_onnx(model, path, ShapeProfile.make(size), names)
                    sess = _ort_session(path, threads, library=library if v in FUSED else None)
                    got = dict(zip(names, sess.run(names, {"images": x})))
                    parity = compare_outputs(ref, got, TOLERANCES["fp32"])
                    row["parity"] = {n: {k: s[k] for k in ("max_abs", "cosine", "passed")} for n, s in parity.items()}
                    row["onnx_path"] = str(path)
                    if all(s["passed"] for s in parity.values()):
                        entries[(mk, v, "ort-cpu")] = lambda s=sess, n=names, xx=x: s.run(n, {"images": xx})
                    else:
                        log(f"  {mk}/{v}: ONNX fails parity, not timed")
                meta[(mk, v)] = row
                log(f"  prepared {mk}/{v}: {row['params_m']:.2f} M params, {row['gmacs']:.2f} GMACs")

        keys = list(entries)
        with torch.no_grad():
            for k in keys:
                for _ in range(warmup):
                    entries[k]()
            times = collections.defaultdict(list)
            for r in range(reps):
                order = keys if r % 2 == 0 else keys[::-1]  # alternate direction: no variant always runs first
                for k in order:
                    t0 = time.perf_counter()
                    entries[k]()
                    times[k].append(time.perf_counter() - t0)
                if (r + 1) % max(1, reps // 5) == 0:
                    log(f"  round {r + 1}/{reps}")

        profile = {}  # where CAT's time goes, unfused and fused (ResNet-50 on ONNX Runtime)
        for v in PROFILED:
            if ("resnet50", v, "ort-cpu") in entries:
                profile[v] = ort_profile(Path(meta[("resnet50", v)]["onnx_path"]), threads, Path(tmp),
                                         library=library if v in FUSED else None)

    results = []
    for (mk, v, b), ts in times.items():
        ms = np.asarray(ts) * 1e3
        results.append({"model": mk, "variant": v, "backend": b, "median_ms": float(np.median(ms)),
                        "p90_ms": float(np.percentile(ms, 90)), "reps": len(ms)})
    by = {(r["model"], r["variant"], r["backend"]): r for r in results}
    for r in results:
        base = by.get((r["model"], "none", r["backend"]))
        r["ratio_to_none"] = r["median_ms"] / base["median_ms"] if base else None
        if r["backend"] == "ort-cpu" and (r["model"], r["variant"], "torch-cpu") in by:
            r["ort_speedup_vs_torch"] = by[(r["model"], r["variant"], "torch-cpu")]["median_ms"] / r["median_ms"]
    report = {"machine": info, "reps": reps, "warmup": warmup, "results": results, "not_timed": not_timed,
              "variants": {f"{mk}/{v}": {k: val for k, val in row.items() if k != "onnx_path"}
                           for (mk, v), row in meta.items()},
              "profile": profile}
    out.mkdir(parents=True, exist_ok=True)
    atomic_write(out / "bench_cpu.json", lambda t: Path(t).write_text(json.dumps(report, indent=2)))
    atomic_write(out / "bench_cpu.md", lambda t: Path(t).write_text(markdown(report)))
    if profile:
        text = "\n".join(profile_markdown(p, info) for p in profile.values())
        atomic_write(out / "cat_profile.md", lambda t: Path(t).write_text(text))
    return report


def ort_profile(path: Path, threads: int, tmp: Path, runs: int = 10, library: Optional[Path] = None) -> dict[str, Any]:
    """ONNX Runtime's per-node profile of one model: time by op type inside CAT modules and outside."""
    sess = _ort_session(path, threads, str(tmp / f"ortprof_{path.stem}"), library=library)
    x = np.random.default_rng(1).standard_normal(tuple(sess.get_inputs()[0].shape)).astype(np.float32)
    for _ in range(runs):
        sess.run(None, {"images": x})
    with open(sess.end_profiling()) as f:
        events = json.load(f)
    by_op: dict[str, float] = collections.Counter()
    by_stage: dict[str, float] = collections.Counter()
    full_size: dict[str, float] = collections.Counter()
    total = 0.0
    for e in events:
        if e.get("cat") != "Node" or not e["name"].endswith("_kernel_time"):
            continue
        name = e["name"][: -len("_kernel_time")]
        op = e["args"].get("op_name", "?")
        dur = e["dur"] / runs / 1000.0
        total += dur
        in_cat = "/se/" in name  # timm's attention hook: layerN/layerN.i/se/
        by_op[("CAT " if in_cat else "net ") + op] += dur
        if in_cat:
            by_stage[name.split("/")[1]] += dur
            if int(e["args"].get("output_size", 0)) > 1 << 16:
                full_size[op] += dur
    cat_ms = sum(v for k, v in by_op.items() if k.startswith("CAT "))
    return {"model": path.stem, "total_ms": total, "cat_ms": cat_ms,
            "by_op": dict(sorted(by_op.items(), key=lambda kv: -kv[1])),
            "cat_by_stage": dict(by_stage), "cat_full_size_by_op": dict(sorted(full_size.items(), key=lambda kv: -kv[1]))}


def markdown(report: dict[str, Any]) -> str:
    m = report["machine"]
    lines = [
        "# Attention variants: latency side by side", "",
        f"Command: `python -m cat_deploy.bench` · {m['date']} · CPU: {m['cpu']} ({m['logical_cores']} logical cores), "
        f"{m['threads']} threads · torch {m['torch']}, onnxruntime {m['onnxruntime']} · batch 1, "
        f"{report['reps']} interleaved rounds after {report['warmup']} warm-up runs.", "",
        "| model | variant | backend | median ms | p90 ms | x plain | ORT speed-up vs eager | params (M) | GMACs |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in sorted(report["results"], key=lambda r: (r["model"], r["backend"], list(VARIANTS).index(r["variant"]))):
        v = report["variants"][f"{r['model']}/{r['variant']}"]
        ratio = f"{r['ratio_to_none']:.2f}" if r.get("ratio_to_none") else ""
        sp = f"{r['ort_speedup_vs_torch']:.2f}" if r.get("ort_speedup_vs_torch") else ""
        lines.append(f"| {r['model']} | {r['variant']} | {r['backend']} | {r['median_ms']:.1f} | {r['p90_ms']:.1f} | "
                     f"{ratio} | {sp} | {v['params_m']:.2f} | {v['gmacs']:.2f} |")
    if report.get("not_timed"):
        lines += ["", "Not timed:", ""] + [f"- {key}: {why}" for key, why in report["not_timed"].items()]
    lines += ["", "Parity of every timed ONNX file against PyTorch (FP32 thresholds):", "",
              "| model/variant | output | max abs | cosine | passed |", "|---|---|---:|---:|---|"]
    for key, v in report["variants"].items():
        for out, s in v.get("parity", {}).items():
            lines.append(f"| {key} | {out} | {s['max_abs']:.1e} | {s['cosine']:.7f} | {s['passed']} |")
    return "\n".join(lines) + "\n"


def profile_markdown(p: dict[str, Any], info: dict[str, Any]) -> str:
    lines = [
        f"# Where CAT's time goes: ONNX Runtime profile of {p['model']}", "",
        f"`python -m cat_deploy.bench` · {info['date']} · {info['cpu']}, {info['threads']} threads · "
        f"per inference, mean of 10 profiled runs (the profiler adds overhead; read shares, not absolutes).", "",
        f"Total node time {p['total_ms']:.1f} ms, of which CAT modules {p['cat_ms']:.1f} ms "
        f"({100 * p['cat_ms'] / max(p['total_ms'], 1e-9):.0f}%).", "",
        "| where | op type | ms |", "|---|---|---:|",
    ]
    for k, v in p["by_op"].items():
        if v >= 0.05:
            where, op = k.split(" ", 1)
            lines.append(f"| {where} | {op} | {v:.2f} |")
    lines += ["", "CAT time per ResNet stage:", "", "| stage | ms |", "|---|---:|"]
    lines += [f"| {k} | {v:.2f} |" for k, v in sorted(p["cat_by_stage"].items())]
    lines += ["", "CAT ops writing full-size tensors (> 64k elements):", "", "| op | ms |", "|---|---:|"]
    lines += [f"| {k} | {v:.2f} |" for k, v in p["cat_full_size_by_op"].items()]
    return "\n".join(lines) + "\n"


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    p.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    p.add_argument("--backends", nargs="+", default=["torch-cpu", "ort-cpu"], choices=["torch-cpu", "ort-cpu"])
    cli.add_imgsz_argument(p, "--imgsz", "input size of every model (default: 224 for ResNet-50, 192 640 for the detector)")
    p.add_argument("--reps", type=int, default=20)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--quick", action="store_true", help="5 rounds, 1 warm-up")
    p.add_argument("--out", default="docs/benchmarks")
    cli.add_debug_flag(p)
    return p.parse_args(argv)


def main(argv=None) -> int:
    return cli.run("cat_deploy.bench", _main, argv)


def _main(argv) -> int:
    a = parse_args(argv)
    reps, warmup = (5, 1) if a.quick else (a.reps, a.warmup)
    if reps < 1 or warmup < 0 or a.threads < 1:
        print("cat_deploy.bench: error: --reps and --threads must be >= 1, --warmup >= 0", file=sys.stderr)
        return cli.BAD_INPUT
    try:
        output_dir(a.out)
    except OutputPathError as e:
        print(f"cat_deploy.bench: error: {e}", file=sys.stderr)
        return cli.BAD_INPUT
    t0 = time.time()
    report = run(a.models, a.variants, a.backends, reps, warmup, a.threads, Path(a.out), imgsz=a.imgsz)
    print(markdown(report))
    print(f"wrote {a.out}/bench_cpu.md, bench_cpu.json, cat_profile.md in {time.time() - t0:.0f} s")
    failed = [key for key, v in report["variants"].items() if not all(s["passed"] for s in v.get("parity", {}).values())]
    if failed:
        print(f"cat_deploy.bench: {len(failed)} variant(s) failed parity and were not timed: {', '.join(failed)}",
              file=sys.stderr)
        return cli.CHECK_FAILED
    return cli.OK


if __name__ == "__main__":
    sys.exit(main())
