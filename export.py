#!/usr/bin/env python
"""Export a cat-deploy checkpoint to ONNX or a TensorRT engine, with parity against PyTorch.

    python export.py --ckpt assets/demo/cat_retinanet_tiny.pth --format onnx
    python export.py --ckpt model.pth --format trt --precision fp16 --dynamic --batch 8
    python export.py --ckpt classifier.pth --imgsz 224                 # one size: a square
    python export.py --ckpt model.pth --format onnx --per-module      # localise a mismatch
    python export.py --ckpt model.pth --gep plugin --fuse-gate        # fused CAT nodes, for ONNX Runtime
    python export.py --ckpt model.pth --format trt --dynamic --batch 8 --triton-repo triton_repo

Writes into --out (default: a folder named after the checkpoint) NAME.onnx (and NAME.engine),
each with a sidecar NAME.<ext>.json. With parity on, a new artefact is written beside the
old one as NAME.unvalidated.onnx and replaces NAME.onnx only once parity passes; a failed or
interrupted re-export leaves the validated pair as it was. --triton-repo DIR also writes a Triton
model repository of the artefact once it is written (and validated).
Exit status: 0 ok, 1 parity failed (files kept), 2 bad input, 3 missing dependency
(TensorRT, ModelOpt, plugin runtime; the ONNX is kept), 4 internal error, 130 interrupted.
"""
import argparse
import sys
from pathlib import Path

from cat_deploy import cli
from cat_deploy.exporter import ExportFailed, ExportOptions, run_export


def parse_args(argv=None) -> ExportOptions:
    d = ExportOptions(ckpt="")
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--ckpt", required=True, help="checkpoint written by train.py / cat_deploy.save_checkpoint")
    p.add_argument("--format", default=d.format, choices=["onnx", "trt"])
    p.add_argument("--out", help="output folder (default: next to the checkpoint, named after it)")
    p.add_argument("--name", default=d.name, help="artefact file stem (default: %(default)s)")
    p.add_argument("--gep", default=d.gep, choices=["reference", "stable", "plugin"],
                   help="GEP formulation: stable (default), reference (paper's formula, for comparison), "
                        "plugin (fused pooling operator)")
    p.add_argument("--fuse-gate", action="store_true",
                   help="one FusedCatGate node per CAT module for its final re-weighting (ONNX Runtime only; "
                        "runs with the compiled cat-deploy ops library, or its Python twin)")
    p.add_argument("--precision", default=d.precision, choices=["fp32", "fp16", "int8"])
    p.add_argument("--calib-images", help="folder of calibration images for --precision int8")
    cli.add_imgsz_argument(p, "--imgsz", "input size (default: the model's)")
    p.add_argument("--batch", type=int, default=d.batch, help="batch (max batch with --dynamic)")
    p.add_argument("--dynamic", action="store_true", help="dynamic batch, height and width")
    cli.add_imgsz_argument(p, "--min-imgsz", "smallest input with --dynamic (default imgsz/2)")
    cli.add_imgsz_argument(p, "--max-imgsz", "largest input with --dynamic (default imgsz*2)")
    p.add_argument("--nms", default=d.nms, choices=["host", "graph"],
                   help="detectors: host = raw outputs, decode+NMS after the engine (default); "
                        "graph = fixed-size num_dets/boxes/scores/classes from the graph")
    p.add_argument("--conf", type=float, default=d.conf, help="score threshold baked in with --nms graph")
    p.add_argument("--iou", type=float, default=d.iou)
    p.add_argument("--max-det", type=int, default=d.max_det)
    p.add_argument("--opset", type=int, default=d.opset)
    p.add_argument("--no-simplify", action="store_true", help="skip onnxslim")
    p.add_argument("--no-validate", action="store_true", help="skip the parity check against PyTorch")
    p.add_argument("--per-module", action="store_true", help="also compare every CAT module's output")
    p.add_argument("--samples", help="image folder for parity (default: assets/samples)")
    p.add_argument("--val-images", type=int, default=d.val_images,
                   help="synthetic scenes for detector mAP parity (0 to skip)")
    p.add_argument("--workspace", type=float, default=d.workspace_gib, help="TensorRT workspace, GiB")
    p.add_argument("--timing-cache", help="TensorRT timing cache file (default: OUT/timing.cache)")
    p.add_argument("--tf32", action="store_true", help="TensorRT: let FP32 layers use TF32 (off: exact FP32 parity)")
    p.add_argument("--version-compatible", action="store_true",
                   help="TensorRT: engine also runs on later TensorRT versions of the same major")
    p.add_argument("--hardware-compatible", action="store_true",
                   help="TensorRT: engine runs on any GPU from Ampere (sm_80) on, not only the build GPU's kind")
    p.add_argument("--device", default=d.device, choices=["auto", "cpu", "cuda"], help="ONNX Runtime device for parity")
    p.add_argument("--triton-repo", metavar="DIR", help="also write a Triton model repository for the artefact (see "
                   "cat_deploy/serve/triton_repo.py): network + Python-backend pre/post-processing + ensemble")
    p.add_argument("--triton-backend", default=d.triton_backend, choices=["auto", "onnxruntime", "tensorrt", "python"],
                   help="the network's Triton backend (auto: tensorrt_plan for --format trt, else onnxruntime)")
    cli.add_debug_flag(p)
    a = p.parse_args(argv)
    return ExportOptions(
        ckpt=a.ckpt, format=a.format, out=a.out, name=a.name, gep=a.gep, fuse_gate=a.fuse_gate, precision=a.precision,
        imgsz=a.imgsz, batch=a.batch, dynamic=a.dynamic, min_imgsz=a.min_imgsz, max_imgsz=a.max_imgsz,
        nms=a.nms, conf=a.conf, iou=a.iou, max_det=a.max_det, opset=a.opset, simplify=not a.no_simplify,
        validate=not a.no_validate, per_module=a.per_module, samples=a.samples, val_images=a.val_images,
        calib_images=a.calib_images, workspace_gib=a.workspace, timing_cache=a.timing_cache, device=a.device,
        tf32=a.tf32, version_compatible=a.version_compatible, hardware_compatible=a.hardware_compatible,
        triton_repo=a.triton_repo, triton_backend=a.triton_backend,
    )


def summary(written, result=None) -> str:
    rows = [f"{'file':<44} {'size':>10}"]
    for f in written:
        f = Path(f)
        if f.exists():
            rows.append(f"{str(f):<44} {f.stat().st_size / 1e6:>8.2f} MB")
    if result is not None:
        prof = result["profile"]
        rows.append(f"input shape: opt {prof.opt}" + (f", min {prof.min}, max {prof.max}" if prof.dynamic else ""))
        parity = result["parity"]
        rows.append("parity: " + ("not run" if parity is None else "PASSED" if parity["passed"] else "FAILED"))
    return "\n".join(rows)


def main(argv=None) -> int:
    return cli.run("export.py", _main, argv)


def _main(argv) -> int:
    opts = parse_args(argv)
    try:
        result = run_export(opts)
    except ExportFailed as e:
        if e.written:
            print(summary(e.written), file=sys.stderr)
        print(f"export.py: error: {e}", file=sys.stderr)
        return e.code
    print(summary(result["artefacts"], result))
    target = result.get("engine") or result["onnx"]
    print(f"next: python infer.py --engine {target} --images assets/samples --out runs/infer")
    return 0


if __name__ == "__main__":
    sys.exit(main())
