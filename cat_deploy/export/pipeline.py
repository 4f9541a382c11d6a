"""``export.py``'s work: checkpoint -> ONNX (-> mixed precision) -> parity -> TensorRT engine.

Every file is written atomically and kept when a later step fails: a failed parity
check or a missing TensorRT never deletes the ONNX already written.
"""
from __future__ import annotations

import copy
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Optional

from ..checkpoint import load_model
from ..layers import set_gep
from ..layers.pooling import GEP_FORMULATIONS
from .deploy import deploy_module, output_names
from .onnx import OPSET, ShapeProfile, cat_module_names, export_onnx
from .precision import PRECISIONS, convert_fp16, quantize_int8
from .sidecar import sidecar_path, versions, write_sidecar

__all__ = ["ExportOptions", "run_export", "ExportFailed"]

DEFAULT_SAMPLES = Path(__file__).resolve().parents[2] / "assets" / "samples"


class ExportFailed(RuntimeError):
    """Export stopped; ``code`` is the exit status, files already written are listed in ``written``."""

    def __init__(self, message: str, code: int = 2, written: Optional[list] = None):
        super().__init__(message)
        self.code, self.written = code, written or []


@dataclass(frozen=True)
class ExportOptions:
    ckpt: str
    format: str = "onnx"  # "onnx" | "trt"
    out: Optional[str] = None
    name: str = "cat"
    gep: str = "stable"
    precision: str = "fp32"
    imgsz: Optional[tuple[int, int]] = None
    batch: int = 1
    dynamic: bool = False
    min_imgsz: Optional[tuple[int, int]] = None
    max_imgsz: Optional[tuple[int, int]] = None
    nms: str = "host"
    conf: float = 0.25
    iou: float = 0.5
    max_det: int = 100
    opset: int = OPSET
    simplify: bool = True
    validate: bool = True
    per_module: bool = False
    samples: Optional[str] = None
    val_images: int = 50
    calib_images: Optional[str] = None
    workspace_gib: float = 4.0
    timing_cache: Optional[str] = None
    device: str = "auto"
    triton_repo: Optional[str] = None  # export.py --triton-repo: written by the CLI after the export (cat_deploy.serve)
    triton_backend: str = "auto"


def _check(opts: ExportOptions) -> None:
    if opts.format not in ("onnx", "trt"):
        raise ExportFailed(f"--format must be onnx or trt, got {opts.format!r}")
    if opts.gep not in GEP_FORMULATIONS:
        raise ExportFailed(f"--gep must be one of {GEP_FORMULATIONS}, got {opts.gep!r}")
    if opts.precision not in PRECISIONS:
        raise ExportFailed(f"--precision must be one of {PRECISIONS}, got {opts.precision!r}")
    if opts.precision == "int8" and not opts.calib_images:
        raise ExportFailed("--precision int8 needs --calib-images DIR (a few hundred representative images)")
    if opts.batch < 1:
        raise ExportFailed(f"--batch must be >= 1, got {opts.batch}")


def _samples(opts: ExportOptions) -> Optional[str]:
    return opts.samples or (str(DEFAULT_SAMPLES) if DEFAULT_SAMPLES.is_dir() else None)


def _calibration(config, folder: str, limit: int = 256):
    import numpy as np

    from ..data.image import ImageReadError, list_images, read_image
    from ..runtime.processing import preprocess

    files = list_images(folder)[:limit]
    if not files:
        raise ExportFailed(f"--calib-images '{folder}' holds no images (jpg, png, bmp, webp)")
    arrays = []
    for f in files:
        try:
            arrays.append(preprocess(read_image(f), config.input_size, config.mean, config.std, config.letterbox)[0])
        except ImageReadError:
            continue
    return np.stack(arrays)


def run_export(opts: ExportOptions, log: Callable[[str], None] = print) -> dict[str, Any]:
    """Run the export; returns ``{"artefacts": [...], "parity": report | None, "passed": bool}``.

    Raises :class:`ExportFailed` with a one-line message (and the exit code) on bad input
    or a failed step.
    """
    from ..checkpoint import CheckpointError

    _check(opts)
    try:
        model = load_model(opts.ckpt)
    except CheckpointError as e:
        raise ExportFailed(str(e)) from None
    config = model.config
    out_dir = Path(opts.out) if opts.out else Path(opts.ckpt).with_suffix("")
    out_dir.mkdir(parents=True, exist_ok=True)
    imgsz = tuple(opts.imgsz) if opts.imgsz else tuple(config.input_size)
    try:
        profile = ShapeProfile.make(imgsz, opts.batch, opts.dynamic, opts.min_imgsz, opts.max_imgsz)
    except ValueError as e:
        raise ExportFailed(str(e)) from None
    set_gep(model, opts.gep)
    names = output_names(model, opts.nms)
    module = deploy_module(copy.deepcopy(model), opts.nms, opts.conf, opts.iou, opts.max_det)
    cat_modules = cat_module_names(model)
    onnx_path = out_dir / f"{opts.name}.onnx"
    written: list[Path] = []

    log(f"[1/4] exporting {config.arch} {config.task} (attn={config.attn}, gep={opts.gep}, nms={opts.nms}) "
        f"to ONNX opset {opts.opset}, input {'x'.join(map(str, profile.opt))}"
        + (f", dynamic {profile.min} .. {profile.max}" if profile.dynamic else ""))
    fp32_path = onnx_path if opts.precision == "fp32" else out_dir / f"{opts.name}.fp32.onnx"
    try:
        export_onnx(module, fp32_path, profile, names, opset=opts.opset, simplify=opts.simplify)
    except Exception as e:  # exporter errors are long; keep the first line
        from .plugin import PluginUnavailable

        if isinstance(e, PluginUnavailable):
            raise ExportFailed(str(e)) from None
        raise ExportFailed(f"ONNX export of '{opts.ckpt}' failed: {str(e).strip().splitlines()[0][:300]}") from None
    written.append(fp32_path)

    precision_report: dict[str, Any] = {"precision": "fp32", "policy": "all FP32", "fp32_nodes": "all"}
    if opts.precision == "fp16":
        log("[2/4] mixed precision: FP16 with an explicit FP32 list")
        precision_report = convert_fp16(fp32_path, onnx_path, cat_modules)
        written.append(onnx_path)
        log(f"      kept FP32: {len(precision_report['fp32_nodes'])} nodes {precision_report['fp32_ops']}")
    elif opts.precision == "int8":
        log("[2/4] INT8: explicit Q/DQ from calibration images (ModelOpt)")
        try:
            precision_report = quantize_int8(fp32_path, onnx_path, _calibration(config, opts.calib_images))
        except RuntimeError as e:
            raise ExportFailed(str(e), written=written) from None
        written.append(onnx_path)
    else:
        log("[2/4] precision fp32")

    sidecar = {
        "model": config.to_dict(),
        "task": config.task,
        "class_names": list(config.class_names),
        "input_name": "images",
        "output_names": names,
        "input_size": list(imgsz),
        "letterbox": config.letterbox,
        "pad_value": 114,
        "channel_order": "RGB",
        "normalize": {"scale": 1 / 255, "mean": list(config.mean), "std": list(config.std)},
        "profile": profile.to_dict(),
        "dynamic": profile.dynamic,
        "gep": opts.gep,
        "nms": opts.nms if config.task == "detect" else None,
        "postprocess": {"conf": opts.conf, "iou": opts.iou, "max_det": opts.max_det} if config.task == "detect" else None,
        "precision": precision_report,
        "opset": opts.opset,
        "checkpoint": str(opts.ckpt),
        "versions": versions(),
        "options": asdict(opts),
    }
    write_sidecar(onnx_path, sidecar)
    written.append(sidecar_path(onnx_path))

    report = None
    if opts.validate:
        from ..validate.check import validate_artefact
        from ..validate.parity import summarize

        log(f"[3/4] parity of {onnx_path.name} against PyTorch (ONNX Runtime)")
        report = validate_artefact(model, onnx_path, sidecar, _samples(opts), opts.val_images, opts.per_module,
                                   opts.device, log)
        sidecar["parity"] = report
        write_sidecar(onnx_path, sidecar)
        for line in summarize(report):
            log("      " + line)
    else:
        log("[3/4] parity check skipped (--no-validate)")

    result = {"artefacts": written, "parity": report, "passed": report is None or report["passed"],
              "onnx": onnx_path, "profile": profile, "precision": opts.precision}
    if report is not None and not report["passed"]:
        raise ExportFailed(f"parity check failed for '{onnx_path}' (report in {sidecar_path(onnx_path).name}); "
                           "rerun with --per-module to find the first diverging CAT module", code=1, written=written)

    if opts.format == "trt":
        from ..runtime.runners import BackendUnavailable
        from .tensorrt import EngineBuildError, build_engine

        engine_path = out_dir / f"{opts.name}.engine"
        log(f"[4/4] TensorRT engine {engine_path.name}")
        try:
            info = build_engine(onnx_path, engine_path, profile, precision=opts.precision,
                                workspace_gib=opts.workspace_gib,
                                timing_cache=opts.timing_cache or str(out_dir / "timing.cache"),
                                register_plugin=opts.gep == "plugin", log=log)
        except (BackendUnavailable, EngineBuildError) as e:
            raise ExportFailed(str(e), code=3, written=written) from None
        engine_sidecar = {**sidecar, "engine": info, "onnx": onnx_path.name, "versions": versions()}
        engine_sidecar.pop("parity", None)
        write_sidecar(engine_path, engine_sidecar)
        written += [engine_path, sidecar_path(engine_path)]
        if opts.validate:
            from ..validate.check import validate_artefact
            from ..validate.parity import summarize

            eng_report = validate_artefact(model, engine_path, engine_sidecar, _samples(opts), opts.val_images,
                                           False, opts.device, log)
            engine_sidecar["parity"] = eng_report
            write_sidecar(engine_path, engine_sidecar)
            for line in summarize(eng_report):
                log("      " + line)
            if not eng_report["passed"]:
                raise ExportFailed(f"parity check failed for '{engine_path}'", code=1, written=written)
        result["engine"] = engine_path
    else:
        log("[4/4] no engine requested (--format onnx)")
    result["artefacts"] = written
    return result
