"""Parity of an exported artefact against its PyTorch checkpoint: the work behind ``--validate``.

Inputs: the sample images (letterboxed like inference) at the profile's opt shape, and
seeded random inputs at each profile shape (min, opt, max). For detectors also
synthetic validation scenes: detection agreement and mAP@0.5 of artefact vs PyTorch.

Standalone::

    python -m cat_deploy.validate --ckpt model.pth --artefact out/cat.onnx
"""
from __future__ import annotations

import copy
import tempfile
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

import numpy as np
import torch
import torch.nn as nn

from ..config import ModelConfig
from ..core.sidecar import PostprocessOptions, Sidecar
from ..data.coco import CocoDetection
from ..data.image import ImageReadError, list_images, read_image
from ..data.synthetic import generate_dataset
from ..export.deploy import deploy_module, output_names
from ..layers import cat_module_names, set_gep
from ..runtime.processing import detections_from_outputs, preprocess
from ..runtime.runners import OnnxRuntimeRunner, Runner, TorchRunner
from ..runtime.tensorrt import TensorRTRunner
from .coco_eval import evaluate_detector
from .localize import localize
from .parity import TOLERANCES, compare_outputs, detection_verdict, match_detections

__all__ = ["validate_artefact", "open_runner", "sample_batch", "run_batched", "VAL_SEED", "DEFAULT_SAMPLES"]

VAL_SEED = 20261128  # synthetic validation scenes for export parity: not the training or training-val seeds
DEFAULT_SAMPLES = Path(__file__).resolve().parents[2] / "assets" / "samples"  # parity images of a source checkout


def open_runner(path: str | Path, device: str = "auto") -> Runner:
    """Runner for an artefact file, picked by suffix (``.onnx``; ``.engine``/``.plan``)."""
    suffix = Path(path).suffix.lower()
    if suffix == ".onnx":
        return OnnxRuntimeRunner(path, device=device)
    if suffix in (".engine", ".plan"):
        return TensorRTRunner(path)
    raise ValueError(f"'{path}': unknown artefact type {suffix!r}; expected .onnx, .engine or .plan")


def sample_batch(config: ModelConfig, shape: Sequence[int], samples: Optional[str | Path],
                 log: Callable[[str], None] = print) -> Optional[np.ndarray]:
    """Sample images pre-processed to ``shape`` (B, 3, H, W), cycling files to fill the batch; None if none.

    Images that cannot be read are skipped and named through ``log``."""
    if not samples or not Path(samples).is_dir():
        return None
    imgs = []
    for f in list_images(samples):
        try:
            imgs.append(preprocess(read_image(f), shape[2:], config.mean, config.std, config.letterbox)[0])
        except ImageReadError as e:
            log(f"  samples: skipped {f.name}: {e.reason}")
    if not imgs:
        log(f"  samples: no readable image in '{samples}': parity on random inputs only")
        return None
    return np.stack([imgs[i % len(imgs)] for i in range(max(shape[0], len(imgs)))]).astype(np.float32)


def run_batched(runner: Runner, images: np.ndarray, batch: int, static: bool) -> list[dict[str, np.ndarray]]:
    """Run ``images`` [N, ...] in chunks of ``batch`` (padded when the artefact's batch is static); per-chunk outputs."""
    outs = []
    for i in range(0, len(images), batch):
        chunk = images[i:i + batch]
        n = len(chunk)
        if static and n < batch:
            chunk = np.concatenate([chunk, np.repeat(chunk[-1:], batch - n, axis=0)])
        out = runner.infer({runner.input_names[0]: chunk})
        outs.append({k: v[:n] for k, v in out.items()})
    return outs


def _concat(outs: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    return {k: np.concatenate([o[k] for o in outs]) for k in outs[0]}


def reference_module(model: nn.Module, gep: str, nms: str, conf: float, iou: float, max_det: int) -> nn.Module:
    """The PyTorch FP32 deploy module an artefact is compared with (``plugin`` compares with ``stable``)."""
    ref = copy.deepcopy(model).float().eval()
    set_gep(ref, "stable" if gep == "plugin" else gep)
    return deploy_module(ref, nms, conf, iou, max_det)


def _synthetic_scenes(config: ModelConfig, count: int, workdir: Path):
    h, w = config.input_size
    ann = generate_dataset(workdir / "val", count, size=(w, h), seed=VAL_SEED)
    return CocoDetection(workdir / "val" / "images", ann, (h, w), train=False, mean=config.mean, std=config.std)


def validate_artefact(
    model: nn.Module,
    artefact: str | Path,
    sidecar: Sidecar,
    samples: Optional[str | Path] = None,
    val_images: int = 50,
    per_module: bool = False,
    device: str = "auto",
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Compare ``artefact`` with PyTorch as the sidecar describes it; returns the parity report (``passed``)."""
    config: ModelConfig = model.config
    precision = sidecar.precision_mode
    tol = TOLERANCES[precision]
    profile = sidecar.profile
    nms = sidecar.nms or "host"
    post = sidecar.postprocess or PostprocessOptions()
    conf, iou, max_det = post.conf, post.iou, post.max_det
    ref_module = reference_module(model, sidecar.gep, nms, conf, iou, max_det)
    names = output_names(model, nms)
    torch_runner = TorchRunner(ref_module, names)
    elementwise = names if nms == "host" or config.task == "classify" else []

    report: dict[str, Any] = {"precision": precision, "tolerance": tol.__dict__, "cases": []}
    rng = np.random.default_rng(0)
    with open_runner(artefact, device) as runner:
        report["backend"] = getattr(runner, "providers", [runner.name])
        cases = []
        sample = sample_batch(config, profile.opt, samples, log)
        if sample is not None:
            cases.append(("samples@" + "x".join(map(str, profile.opt)), sample[: profile.opt[0]]))
        for shape in profile.shapes():
            cases.append(("random@" + "x".join(map(str, shape)), rng.standard_normal(shape).astype(np.float32)))
        for name, x in cases:
            ref = torch_runner.infer({"images": x})
            out = runner.infer({runner.input_names[0]: x})
            stats = compare_outputs(ref, out, tol, elementwise) if elementwise else {}
            report["cases"].append({"name": name, "shape": list(x.shape), "outputs": stats})
            log(f"  parity {name}: " + ", ".join(
                f"{k} max_abs={v.get('max_abs', float('nan')):.1e} cos={v.get('cosine', float('nan')):.6f}"
                for k, v in stats.items()))

        if config.task == "detect":
            batch, static = profile.opt[0], not profile.dynamic
            with tempfile.TemporaryDirectory(prefix="cat-deploy-val-") as tmp:
                ref_dets, out_dets = [], []
                det_inputs = [] if sample is None else [sample]
                dataset = _synthetic_scenes(config, val_images, Path(tmp)) if val_images > 0 else None
                if dataset is not None:
                    det_inputs.append(np.stack([dataset[i][0].numpy() for i in range(len(dataset))]))
                hw = tuple(profile.opt[2:])
                for imgs in det_inputs:
                    r = _concat(run_batched(torch_runner, imgs, batch, static))
                    o = _concat(run_batched(runner, imgs, batch, static))
                    ref_dets += detections_from_outputs(r, hw, config.detector, conf, iou, max_det)
                    out_dets += detections_from_outputs(o, hw, config.detector, conf, iou, max_det)
                report["detections"] = detection_verdict(match_detections(ref_dets, out_dets), tol)
                if dataset is not None:
                    report["accuracy"] = _map_parity(torch_runner, runner, dataset, config, hw, batch, static, tol)

        if per_module and Path(artefact).suffix == ".onnx" and cat_module_names(model):
            x = sample if sample is not None else rng.standard_normal(profile.opt).astype(np.float32)
            loc = localize(artefact, ref_module, x[: profile.opt[0]], tol, cat_module_names(model), device)
            report["per_module"] = loc
            log(f"  per-module: first divergent CAT module: {loc['first_divergent'] or 'none'} "
                f"({len(loc['modules'])} compared)")

    verdicts = [s["passed"] for c in report["cases"] for s in c["outputs"].values()]
    verdicts += [report[k]["passed"] for k in ("detections", "accuracy") if k in report]
    report["passed"] = all(verdicts)
    return report


def _map_parity(torch_runner, runner, dataset, config, hw, batch, static, tol) -> dict[str, Any]:
    def predictor(r: Runner):
        def predict(images: torch.Tensor):
            outs = _concat(run_batched(r, images.numpy(), batch, static))
            dets = detections_from_outputs(outs, hw, config.detector, conf=0.05, iou=0.5, max_det=100)
            return [{k: torch.from_numpy(v) for k, v in d.items()} for d in dets]
        return predict

    m_ref = evaluate_detector(predictor(torch_runner), dataset, batch_size=8)
    m_out = evaluate_detector(predictor(runner), dataset, batch_size=8)
    drop = m_ref["map50"] - m_out["map50"]
    res = {"images": len(dataset), "map50_ref": m_ref["map50"], "map50_out": m_out["map50"],
           "map_ref": m_ref["map"], "map_out": m_out["map"], "passed": drop <= tol.max_map_drop}
    if not res["passed"]:
        res["reason"] = f"mAP@0.5 drops by {drop:.4f} > {tol.max_map_drop}"
    return res
