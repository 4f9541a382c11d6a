"""``export.py``'s work: checkpoint -> ONNX (-> mixed precision) -> parity -> TensorRT engine.

It joins :mod:`cat_deploy.export` (the artefacts) and :mod:`cat_deploy.validate` (parity
against PyTorch), so it sits above both, beside the other command modules (``train``,
``bench``); ``export.py`` only parses flags and calls :func:`run_export`.

Every file is written atomically and kept when a later step fails: a failed parity
check or a missing TensorRT never deletes the ONNX already written. A validated
artefact is never replaced by one that has not passed parity: with parity on, the new
artefact and its sidecar are written beside the old pair as ``NAME.unvalidated.onnx``
(``.json``, ``"validated": false``) and renamed onto ``NAME.onnx`` only once parity
passes (artefact first, then its sidecar with ``"validated": true``). A failed or
interrupted re-export leaves the old pair as it was and the new one beside it. With
``--no-validate`` the artefact is written in place, marked ``"validated": false``, and
infer.py warns when it uses it. Options, paths and inputs are checked before the
export starts; no output may replace the checkpoint.
"""
from __future__ import annotations

import copy
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Optional

import numpy as np

from .checkpoint import load_model
from .core.errors import BackendUnavailable, CheckpointError, PluginUnavailable
from .core.optional import is_available
from .core.plugin_ids import GEP_FORMULATIONS, ORT_OPS_LIBRARY
from .core.sidecar import PRECISIONS, Normalize, PostprocessOptions, ShapeProfile, Sidecar, sidecar_path
from .data.image import ImageReadError, list_images, read_image
from .export.deploy import deploy_module, output_names
from .export.onnx import OPSET, custom_ops, export_onnx, opset_range
from .export.precision import MODELOPT_HINT, PrecisionError, convert_fp16, quantize_int8
from .export.tensorrt import BuildFlags, EngineBuildError, build_engine
from .export.versions import versions
from .layers import cat_module_names, set_fuse_gate, set_gep
from .paths import OutputPathError, output_dir, refuse_inputs
from .runtime.processing import preprocess
from .serve.detector import ServeConfig
from .serve.triton_repo import TritonRepoError, TritonRepoOptions, check_servable, write_triton_repository
from .validate.check import DEFAULT_SAMPLES, validate_artefact
from .validate.parity import summarize

__all__ = ["ExportOptions", "run_export", "ExportFailed"]

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
    fuse_gate: bool = False  # one FusedCatGate node per CAT module (ONNX Runtime only)
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
    tf32: bool = False
    version_compatible: bool = False
    hardware_compatible: bool = False
    triton_repo: Optional[str] = None  # also write a Triton model repository (cat_deploy.serve.triton_repo) here
    triton_backend: str = "auto"  # its network's backend: auto, onnxruntime, tensorrt, python


def _validate_options(opts: ExportOptions) -> None:
    """Every option and input path, before anything is loaded or written (exit 2)."""
    if opts.format not in ("onnx", "trt"):
        raise ExportFailed(f"--format must be onnx or trt, got {opts.format!r}")
    if opts.gep not in GEP_FORMULATIONS:
        raise ExportFailed(f"--gep must be one of {GEP_FORMULATIONS}, got {opts.gep!r}")
    if opts.fuse_gate and opts.format == "trt":
        raise ExportFailed("--fuse-gate is for ONNX Runtime only: TensorRT fuses the gate's pointwise ops itself; "
                           "drop --fuse-gate for --format trt")
    if opts.precision not in PRECISIONS:
        raise ExportFailed(f"--precision must be one of {PRECISIONS}, got {opts.precision!r}")
    if opts.precision == "int8" and not opts.calib_images:
        raise ExportFailed("--precision int8 needs --calib-images DIR (a few hundred representative images)")
    if opts.batch < 1:
        raise ExportFailed(f"--batch must be >= 1, got {opts.batch}")
    if not 0.0 <= opts.conf <= 1.0:  # also baked into the graph with --nms graph
        raise ExportFailed(f"--conf must lie in 0..1, got {opts.conf}")
    if not 0.0 < opts.iou <= 1.0:
        raise ExportFailed(f"--iou must lie in (0, 1], got {opts.iou}")
    if opts.max_det < 1:
        raise ExportFailed(f"--max-det must be >= 1, got {opts.max_det}")
    lo, hi = opset_range()
    if not lo <= opts.opset <= hi:
        raise ExportFailed(f"--opset {opts.opset} is not supported by this exporter: choose {lo}..{hi} "
                           f"(default {OPSET})")
    if opts.val_images < 0:
        raise ExportFailed(f"--val-images must be >= 0, got {opts.val_images}")
    if opts.samples and not Path(opts.samples).is_dir():
        raise ExportFailed(f"--samples '{opts.samples}' is not a folder: pass a folder of images for parity, "
                           "or leave the flag out to use assets/samples")
    if opts.triton_repo:
        engine = opts.format == "trt" and opts.triton_backend != "onnxruntime"
        try:
            check_servable(f"{opts.name}.{'engine' if engine else 'onnx'}", engine, opts.gep,
                           (1 if opts.dynamic else opts.batch, opts.batch), opts.triton_backend, opts.fuse_gate)
            output_dir(opts.triton_repo, "--triton-repo")
            refuse_inputs([Path(opts.triton_repo)], [opts.ckpt], "--triton-repo", what="checkpoint")
        except (TritonRepoError, OutputPathError) as e:
            raise ExportFailed(str(e)) from None
    if opts.precision == "int8":
        if not Path(opts.calib_images).is_dir() or not list_images(opts.calib_images):
            what = "holds no images (jpg, png, bmp, webp)" if Path(opts.calib_images).is_dir() else "is not a folder"
            raise ExportFailed(f"--calib-images '{opts.calib_images}' {what}: pass a folder of a few hundred "
                               "representative images")


def _output_folder(opts: ExportOptions) -> Path:
    """``--out``, or a folder beside the checkpoint named after it (``model.pth`` -> ``model/``,
    ``model`` -> ``model_export/``); created and checked writable, and holding no output that
    would replace the checkpoint."""
    ckpt = Path(opts.ckpt)
    out = Path(opts.out) if opts.out else (ckpt.with_suffix("") if ckpt.suffix else ckpt.with_name(ckpt.name + "_export"))
    try:
        out = output_dir(out)
        names = [f"{opts.name}.onnx", f"{opts.name}.fp32.onnx", f"{opts.name}.engine"]
        files = [out / n for n in names] + [_staged(out / n) for n in names]
        files += [sidecar_path(f) for f in files] + [Path(opts.timing_cache or out / "timing.cache")]
        refuse_inputs(files, [ckpt], "--out/--name", what="checkpoint")
    except OutputPathError as e:
        raise ExportFailed(str(e)) from None
    return out


def _staged(path: Path) -> Path:
    """Where a new artefact waits for parity: ``cat.onnx`` -> ``cat.unvalidated.onnx``."""
    return path.with_name(f"{path.stem}.unvalidated{path.suffix}")


def _write_sidecar(artefact: Path, sidecar: Sidecar, validated: bool) -> Sidecar:
    # artefact_bytes: infer.py refuses a sidecar beside another artefact
    sidecar = sidecar.replace(validated=validated, artefact_bytes=artefact.stat().st_size)
    sidecar.write(artefact)
    return sidecar


def _promote(staged: Path, final: Path, sidecar: Sidecar) -> Sidecar:
    """Put the validated ``staged`` pair in place of ``final``'s: the artefact, then its sidecar."""
    os.replace(staged, final)
    sidecar = _write_sidecar(final, sidecar, validated=True)
    sidecar_path(staged).unlink(missing_ok=True)
    return sidecar


def _samples(opts: ExportOptions) -> Optional[str]:
    return opts.samples or (str(DEFAULT_SAMPLES) if DEFAULT_SAMPLES.is_dir() else None)


def _calibration(config, folder: str, log: Callable[[str], None], limit: int = 256):
    """Calibration batch [N, 3, H, W] from the first ``limit`` images of ``folder``; unreadable ones are named."""
    files = list_images(folder)[:limit]
    arrays, bad = [], []
    for f in files:
        try:
            arrays.append(preprocess(read_image(f), config.input_size, config.mean, config.std, config.letterbox)[0])
        except ImageReadError as e:
            bad.append(e)
    if not arrays:
        raise ExportFailed(f"--calib-images '{folder}': none of its {len(files)} images could be read "
                           f"(e.g. {bad[0].path.name}: {bad[0].reason})")
    if bad:
        log(f"      calibration: skipped {len(bad)} unreadable images, e.g. {bad[0].path.name}: {bad[0].reason}")
    return np.stack(arrays)


def run_export(opts: ExportOptions, log: Callable[[str], None] = print) -> dict[str, Any]:
    """Run the export; returns ``{"artefacts": [...], "parity": report | None, "passed": bool}``.

    Raises :class:`ExportFailed` with a one-line message (and the exit code) on bad input
    or a failed step. With parity on, the artefacts land on their final names only after
    passing it (see the module docstring).
    """
    _validate_options(opts)
    try:
        model = load_model(opts.ckpt)
    except CheckpointError as e:
        raise ExportFailed(str(e)) from None
    config = model.config
    imgsz = tuple(opts.imgsz) if opts.imgsz else tuple(config.input_size)
    try:
        profile = ShapeProfile.make(imgsz, opts.batch, opts.dynamic, opts.min_imgsz, opts.max_imgsz)
    except ValueError as e:
        raise ExportFailed(str(e)) from None
    out_dir = _output_folder(opts)
    calibration = None
    if opts.precision == "int8":
        calibration = _calibration(config, opts.calib_images, log)
    if opts.precision in ("fp16", "int8") and not is_available("modelopt"):
        raise ExportFailed(MODELOPT_HINT.format(p=opts.precision), code=3)  # said before the export, not after it
    set_gep(model, opts.gep)
    set_fuse_gate(model, opts.fuse_gate)
    names = output_names(model, opts.nms)
    module = deploy_module(copy.deepcopy(model), opts.nms, opts.conf, opts.iou, opts.max_det)
    onnx_path = out_dir / f"{opts.name}.onnx"
    target = _staged(onnx_path) if opts.validate else onnx_path
    written: list[Path] = []

    log(f"[1/4] exporting {config.arch} {config.task} (attn={config.attn}, gep={opts.gep}, "
        f"{'fused gate, ' if opts.fuse_gate else ''}nms={opts.nms}) "
        f"to ONNX opset {opts.opset}, input {'x'.join(map(str, profile.opt))}"
        + (f", dynamic {profile.min} .. {profile.max}" if profile.dynamic else ""))
    fp32_path = target if opts.precision == "fp32" else out_dir / f"{opts.name}.fp32.onnx"
    try:
        export_onnx(module, fp32_path, profile, names, opset=opts.opset, simplify=opts.simplify)
    except Exception as e:  # exporter errors are long; keep the first line
        if isinstance(e, PluginUnavailable):
            raise ExportFailed(str(e), code=3) from None
        raise ExportFailed(f"ONNX export of '{opts.ckpt}' failed: {str(e).strip().splitlines()[0][:300]}") from None
    written.append(fp32_path)
    precision_report = _precision(opts, fp32_path, target, cat_module_names(model), calibration, written, log)

    sidecar = _sidecar(config, opts, names, imgsz, profile, precision_report, custom_ops(target))
    sidecar = _write_sidecar(target, sidecar, validated=False)
    written.append(sidecar_path(target))
    report = None
    if opts.validate:
        log(f"[3/4] parity of {target.name} against PyTorch (ONNX Runtime)")
        report = _parity(model, target, sidecar, opts, opts.per_module, log)
        sidecar = sidecar.replace(parity=report)
        if not report["passed"]:
            _write_sidecar(target, sidecar, validated=False)
            raise ExportFailed(_parity_failed(target, onnx_path), code=1, written=written)
        sidecar = _promote(target, onnx_path, sidecar)
        written = [onnx_path if w == target else sidecar_path(onnx_path) if w == sidecar_path(target) else w
                   for w in written]
    else:
        log("[3/4] parity check skipped (--no-validate): the sidecar says validated: false")

    result = {"artefacts": written, "parity": report, "passed": True, "onnx": onnx_path, "profile": profile,
              "precision": opts.precision}
    if opts.format == "trt":
        result["engine"] = _engine(model, onnx_path, sidecar, profile, opts, written, log)
    else:
        log("[4/4] no engine requested (--format onnx)")
    result["artefacts"] = written
    if opts.triton_repo:
        result["triton"] = _triton(opts, result, log)
    return result


def _triton(opts: ExportOptions, result: dict[str, Any], log: Callable[[str], None]) -> dict[str, Any]:
    """``--triton-repo``: the Triton model repository of the artefact just written (and validated, unless
    ``--no-validate``); the engine unless the network goes on the onnxruntime backend."""
    artefact = result["onnx"] if opts.triton_backend == "onnxruntime" else result.get("engine") or result["onnx"]
    serve = ServeConfig(opts.conf, opts.iou, opts.max_det)
    try:
        info = write_triton_repository(artefact, opts.triton_repo, TritonRepoOptions(backend=opts.triton_backend,
                                                                                     serve=serve))
    except TritonRepoError as e:
        raise ExportFailed(str(e), written=result["artefacts"]) from None
    log(f"      Triton repository {info['repository']} ({', '.join(info['models'])}; network on {info['backend']}, "
        f"max batch {info['max_batch_size']})")
    for note in info["notes"]:
        log(f"      note: {note}")
    return info


def _precision(opts: ExportOptions, fp32_path: Path, target: Path, cat_modules: list[str], calibration,
               written: list[Path], log: Callable[[str], None]) -> dict[str, Any]:
    """Step 2: write the FP16 or INT8 graph to ``target`` (FP32: ``fp32_path`` is the target); its report."""
    if opts.precision == "fp16":
        log("[2/4] mixed precision: FP16 with an explicit FP32 list (ModelOpt AutoCast)")
        try:
            report = convert_fp16(fp32_path, target, cat_modules)
        except PrecisionError as e:
            raise ExportFailed(str(e), code=e.code, written=written) from None
        written.append(target)
        log(f"      kept FP32: {len(report['fp32_nodes'])} nodes {report['fp32_ops']}; "
            f"{report['casts']} Casts, {report['cast_round_trips']} FP32->FP16->FP32 round trips")
        return report
    if opts.precision == "int8":
        log("[2/4] INT8: explicit Q/DQ from calibration images (ModelOpt)")
        try:
            report = quantize_int8(fp32_path, target, calibration, cat_modules)
        except PrecisionError as e:
            raise ExportFailed(str(e), code=e.code, written=written) from None
        written.append(target)
        log(f"      {report['quantize_linear']} Q / {report['dequantize_linear']} DQ nodes, "
            f"{len(report['fp32_nodes'])} nodes kept FP32, {report['calibration_images']} calibration images")
        return report
    log("[2/4] precision fp32")
    return {"precision": "fp32", "policy": "all FP32", "fp32_nodes": "all"}


def _sidecar(config, opts: ExportOptions, names: list[str], imgsz, profile: ShapeProfile,
             precision_report: dict[str, Any], ops: list[str]) -> Sidecar:
    """``ops``: the custom nodes in the graph; ONNX Runtime runs them with the compiled ``ORT_OPS_LIBRARY``."""
    detect = config.task == "detect"
    return Sidecar(
        artefact=f"{opts.name}.onnx", model=config, input_size=tuple(imgsz), profile=profile,
        normalize=Normalize(config.mean, config.std), precision=precision_report, gep=opts.gep,
        output_names=tuple(names), class_names=tuple(config.class_names), letterbox=config.letterbox,
        nms=opts.nms if detect else None,
        postprocess=PostprocessOptions(opts.conf, opts.iou, opts.max_det) if detect else None,
        opset=opts.opset, checkpoint=str(opts.ckpt), versions=versions(), options=asdict(opts),
        custom_ops=tuple(ops), custom_ops_library=ORT_OPS_LIBRARY if ops else None,
    )


def _parity(model, artefact: Path, sidecar: Sidecar, opts: ExportOptions, per_module: bool,
            log: Callable[[str], None]) -> dict[str, Any]:
    """Parity of ``artefact`` against ``model``: the report (the caller records it in the sidecar)."""
    samples = _samples(opts)
    if samples is None:
        log("      no sample images (assets/samples is missing): parity on random inputs and synthetic scenes")
    report = validate_artefact(model, artefact, sidecar, samples, opts.val_images, per_module, opts.device, log)
    for line in summarize(report):
        log("      " + line)
    return report


def _parity_failed(staged: Path, final: Path) -> str:
    kept = f"the validated '{final.name}' was left as it was" if final.exists() else f"'{final.name}' was not written"
    return (f"parity check failed for '{staged}' (report in {sidecar_path(staged).name}); {kept}; "
            "rerun with --per-module to find the first diverging CAT module")


def _engine(model, onnx_path: Path, sidecar: Sidecar, profile: ShapeProfile, opts: ExportOptions,
            written: list[Path], log: Callable[[str], None]) -> Path:
    """Step 4: build the TensorRT engine from the (validated) ONNX; staged and promoted like the ONNX."""
    engine_path = onnx_path.with_suffix(".engine")
    target = _staged(engine_path) if opts.validate else engine_path
    log(f"[4/4] TensorRT engine {engine_path.name}")
    try:
        info = build_engine(onnx_path, target, profile, precision=opts.precision, workspace_gib=opts.workspace_gib,
                            timing_cache=opts.timing_cache or str(onnx_path.parent / "timing.cache"),
                            register_plugin=opts.gep == "plugin", log=log,
                            flags=BuildFlags(opts.tf32, opts.version_compatible, opts.hardware_compatible))
    except (BackendUnavailable, EngineBuildError) as e:
        raise ExportFailed(str(e), code=3, written=written) from None
    # the engine carries its plugin kernels (TensorRT AOT): no ONNX Runtime custom-op library to name
    engine_sidecar = sidecar.replace(engine=info, onnx=onnx_path.name, versions=versions(), parity=None, custom_ops=(),
                                     custom_ops_library=None)
    engine_sidecar = _write_sidecar(target, engine_sidecar, validated=False)
    written += [target, sidecar_path(target)]
    if opts.validate:
        report = _parity(model, target, engine_sidecar, opts, False, log)
        engine_sidecar = engine_sidecar.replace(parity=report)
        if not report["passed"]:
            _write_sidecar(target, engine_sidecar, validated=False)
            raise ExportFailed(_parity_failed(target, engine_path), code=1, written=written)
        _promote(target, engine_path, engine_sidecar)
        written[-2:] = [engine_path, sidecar_path(engine_path)]
    return engine_path
