#!/usr/bin/env python
"""FP32, FP16 and INT8 ONNX of one checkpoint side by side: file size, ONNX Runtime CPU latency, mAP@0.5.

    python tools/precision_bench.py --ckpt assets/demo/cat_retinanet_tiny.pth --out docs/benchmarks

Exports the checkpoint three times with ``cat_deploy.exporter.run_export`` (the code
behind ``export.py``): ``--precision fp32``, ``fp16`` (ModelOpt AutoCast) and ``int8`` (ModelOpt
PTQ, calibrated on ``--calib-num`` synthetic training-distribution scenes, seed 0, unless
``--calib-images`` is given). Each export runs its parity gate against PyTorch, which
includes mAP@0.5 on ``--val-images`` synthetic validation scenes (the validation seed,
not the calibration one). Then it times the three files round-robin on the ONNX Runtime CPU
provider (``--threads`` intra-op threads, no spinning, batch 1, a letterboxed sample image),
alternating the order each round, so machine drift hits all three alike.

Writes ``precision_cpu.md`` and ``precision_cpu.json`` into ``--out``.
"""
from __future__ import annotations

import argparse
import collections
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from cat_deploy.bench import _ort_session, machine_info  # noqa: E402
from cat_deploy.checkpoint import load_model  # noqa: E402
from cat_deploy.core.files import atomic_write  # noqa: E402
from cat_deploy.exporter import ExportFailed, ExportOptions, run_export  # noqa: E402
from cat_deploy.validate.check import sample_batch  # noqa: E402

PRECISIONS = ("fp32", "fp16", "int8")


def export_all(ckpt: str, work: Path, calib: str, val_images: int, log) -> dict[str, dict]:
    rows = {}
    for p in PRECISIONS:
        log(f"export {p}")
        try:
            result = run_export(ExportOptions(ckpt=ckpt, out=str(work / p), precision=p, calib_images=calib,
                                              val_images=val_images), log=lambda s: None)
        except ExportFailed as e:
            raise SystemExit(f"precision_bench: {p} export failed: {e}") from None
        side = json.loads((work / p / "cat.onnx.json").read_text())
        parity, prec = side["parity"], side["precision"]
        cos = [s["cosine"] for c in parity["cases"] for s in c["outputs"].values()]
        rows[p] = {
            "onnx": str(result["onnx"]), "size_mb": Path(result["onnx"]).stat().st_size / 1e6,
            "parity_passed": parity["passed"], "min_cosine": min(cos) if cos else None,
            "map50_pytorch": parity["accuracy"]["map50_ref"], "map50": parity["accuracy"]["map50_out"],
            "val_images": parity["accuracy"]["images"],
            "detail": {k: v for k, v in prec.items() if k not in ("fp32_nodes",)},
        }
        log(f"  {p}: {rows[p]['size_mb']:.2f} MB, mAP@0.5 {rows[p]['map50']:.4f} "
            f"(PyTorch {rows[p]['map50_pytorch']:.4f}), parity {'PASSED' if parity['passed'] else 'FAILED'}")
    return rows


def time_round_robin(paths: dict[str, str], x: np.ndarray, threads: int, reps: int, warmup: int) -> dict[str, dict]:
    sessions = {p: _ort_session(Path(f), threads) for p, f in paths.items()}
    for s in sessions.values():
        for _ in range(warmup):
            s.run(None, {"images": x})
    times = collections.defaultdict(list)
    keys = list(sessions)
    for r in range(reps):
        for p in keys if r % 2 == 0 else keys[::-1]:
            t0 = time.perf_counter()
            sessions[p].run(None, {"images": x})
            times[p].append(time.perf_counter() - t0)
    return {p: {"median_ms": float(np.median(ts) * 1e3), "p90_ms": float(np.percentile(ts, 90) * 1e3), "reps": reps}
            for p, ts in times.items()}


def markdown(report: dict) -> str:
    m = report["machine"]
    lines = [f"# FP32 / FP16 / INT8 ONNX of `{report['checkpoint']}` on ONNX Runtime CPU", "",
             f"`python tools/precision_bench.py --ckpt {report['checkpoint']}` — {m['date']}, {m['cpu']}, "
             f"{m['threads']} threads, onnxruntime {m['onnxruntime']}, batch 1, {report['reps']} round-robin rounds "
             f"after {report['warmup']} warm-up runs. mAP@0.5 on {report['val_images']} synthetic validation scenes "
             f"(PyTorch FP32: {report['rows']['fp32']['map50_pytorch']:.4f}); INT8 calibrated on "
             f"{report['calibration']}.", "",
             "| precision | file | ORT CPU median (p90) | vs FP32 | mAP@0.5 | min cosine vs PyTorch | parity gate |",
             "|---|---:|---:|---:|---:|---:|---|"]
    base = report["latency"]["fp32"]["median_ms"]
    for p in PRECISIONS:
        r, t = report["rows"][p], report["latency"][p]
        lines.append(f"| {p} | {r['size_mb']:.2f} MB | {t['median_ms']:.1f} ms ({t['p90_ms']:.1f}) | "
                     f"{t['median_ms'] / base:.2f}x | {r['map50']:.4f} | {r['min_cosine']:.7f} | "
                     f"{'passed' if r['parity_passed'] else 'FAILED'} |")
    d16, d8 = report["rows"]["fp16"]["detail"], report["rows"]["int8"]["detail"]
    lines += ["", f"FP16: {d16['fp16_nodes']} nodes in FP16, {d16['casts']} Casts, {d16['cast_round_trips']} "
              f"FP32->FP16->FP32 round trips ({d16['tool']}). INT8: {d8['quantize_linear']} QuantizeLinear / "
              f"{d8['dequantize_linear']} DequantizeLinear ({d8['tool']}).",
              "CPU latency is no proxy for TensorRT on a GPU, where FP16 and INT8 are meant to pay off: "
              "that is not measured here (no GPU, no TensorRT)."]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--ckpt", required=True)
    p.add_argument("--out", default="docs/benchmarks")
    p.add_argument("--calib-images", help="calibration image folder (default: --calib-num synthetic scenes)")
    p.add_argument("--calib-num", type=int, default=128)
    p.add_argument("--val-images", type=int, default=50)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--reps", type=int, default=50)
    p.add_argument("--warmup", type=int, default=5)
    a = p.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="cat-precision-") as tmp:
        work = Path(tmp)
        calib, calib_text = a.calib_images, f"images in {a.calib_images}"
        if not calib:
            from cat_deploy.data.synthetic import generate_dataset

            h, w = load_model(a.ckpt).config.input_size
            generate_dataset(work / "calib", a.calib_num, size=(w, h), seed=0)
            calib, calib_text = str(work / "calib" / "images"), f"{a.calib_num} synthetic scenes (seed 0)"
        rows = export_all(a.ckpt, work, calib, a.val_images, print)
        config = load_model(a.ckpt).config
        x = sample_batch(config, (1, 3, *config.input_size), ROOT / "assets" / "samples")[:1]
        print(f"timing {a.reps} rounds...")
        latency = time_round_robin({k: r["onnx"] for k, r in rows.items()}, x, a.threads, a.reps, a.warmup)
    report = {"checkpoint": a.ckpt, "machine": machine_info(a.threads), "reps": a.reps, "warmup": a.warmup,
              "val_images": a.val_images, "calibration": calib_text, "rows": rows, "latency": latency}
    out = Path(a.out)
    atomic_write(out / "precision_cpu.json", lambda t: Path(t).write_text(json.dumps(report, indent=2)))
    atomic_write(out / "precision_cpu.md", lambda t: Path(t).write_text(markdown(report)))
    print(markdown(report))
    return 0 if all(r["parity_passed"] for r in rows.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
