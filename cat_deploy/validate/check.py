"""Parity of an exported artefact against its PyTorch checkpoint: the work behind ``--validate``.

Inputs: the sample images (letterboxed like inference) at the profile's opt shape, and
seeded random inputs at each profile shape (min, opt, max). For detectors also
synthetic validation scenes: detection agreement and mAP@0.5 of artefact vs PyTorch.
The sidecar's pre-processing fields are checked against the checkpoint, and with
``per_module`` every CAT module's output. A report with nothing compared fails.

Standalone::

    python -m cat_deploy.validate --ckpt model.pth --artefact out/cat.onnx
"""
from __future__ import annotations

import copy
import json
import tempfile
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

import numpy as np
import torch
import torch.nn as nn

from ..config import PAD_VALUE, ModelConfig
from ..core.sidecar import PostprocessOptions, ShapeProfile, Sidecar
from ..data.coco import CocoDetection
from ..data.image import ImageReadError, list_images, read_image
from ..data.synthetic import generate_dataset
from ..export.deploy import deploy_module, output_names
from ..layers import cat_module_names, set_fuse_gate, set_gep
from ..runtime.processing import detections_from_outputs, preprocess
from ..runtime.runners import OnnxRuntimeRunner, Runner, TorchRunner
from ..runtime.tensorrt import TensorRTRunner
from .coco_eval import evaluate_detector
from .localize import localize
from .parity import TOLERANCES, compare_outputs, detection_verdict, match_detections, module_tolerances

__all__ = ["validate_artefact", "open_runner", "sample_batch", "run_batched", "sidecar_mismatches", "VAL_SEED",
           "DEFAULT_SAMPLES"]

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
    """The PyTorch FP32 deploy module an artefact is compared with (``plugin`` compares with ``stable``, a
    fused gate with the unfused one: the fused operators compute the same in PyTorch, without custom nodes)."""
    ref = copy.deepcopy(model).float().eval()
    set_gep(ref, "stable" if gep == "plugin" else gep)
    set_fuse_gate(ref, False)
    return deploy_module(ref, nms, conf, iou, max_det)


def _synthetic_scenes(config: ModelConfig, count: int, workdir: Path, hw: Sequence[int]):
    h, w = hw
    ann = generate_dataset(workdir / "val", count, size=(w, h), seed=VAL_SEED)
    return CocoDetection(workdir / "val" / "images", ann, (h, w), train=False, mean=config.mean, std=config.std)


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, (int, float)) and isinstance(b, (int, float)) and not isinstance(a, bool) and not isinstance(b, bool):
        return bool(np.isclose(a, b, rtol=1e-6, atol=0))
    return a == b


def _differing_keys(a: dict, b: dict, prefix: str = "") -> list[str]:
    keys = []
    for k in sorted(set(a) | set(b)):
        x, y = a.get(k), b.get(k)
        if isinstance(x, dict) and isinstance(y, dict):
            keys += _differing_keys(x, y, f"{prefix}{k}.")
        elif not _same(x, y):
            keys.append(prefix + k)
    return keys


def sidecar_mismatches(config: ModelConfig, sidecar: Sidecar | dict[str, Any], names: Sequence[str],
                       profile: ShapeProfile) -> list[str]:
    """Sidecar fields that contradict the checkpoint, one line each (empty when consistent).

    The runtime feeds and decodes an artefact from its sidecar alone (normalisation, letterbox,
    padding, input size, classes, output names, the anchors inside ``model``), while parity feeds
    PyTorch from the checkpoint: a sidecar field that disagrees makes every deployment differ from
    what parity compared, so it is a parity failure.
    """
    sidecar = json.loads(sidecar.to_json()) if isinstance(sidecar, Sidecar) else sidecar  # as written to disk
    norm = sidecar.get("normalize") or {}
    want = {"task": config.task, "normalize.mean": list(config.mean), "normalize.std": list(config.std),
            "normalize.scale": 1 / 255, "letterbox": config.letterbox, "pad_value": PAD_VALUE,
            "channel_order": "RGB", "input_size": list(profile.opt[2:]), "class_names": list(config.class_names),
            "output_names": list(names)}
    got = {k: norm.get(k.split(".")[1]) if k.startswith("normalize.") else sidecar.get(k) for k in want}
    out = [f"{k} is {got[k]!r} in the sidecar but {v!r} for the checkpoint" for k, v in want.items()
           if not _same(got[k], v)]
    try:
        side_model = ModelConfig.from_dict(sidecar.get("model") or {}).to_dict()
    except (TypeError, ValueError) as e:
        return out + [f"model config unreadable ({e})"]
    mine = json.loads(config.to_json())
    out += [f"model.{k} differs from the checkpoint's" for k in _differing_keys(json.loads(json.dumps(side_model)), mine)]
    return out


def _cases(profile: ShapeProfile, sample: Optional[np.ndarray], rng) -> list[tuple[str, np.ndarray]]:
    """Inputs compared element-wise: the sample images at the opt shape, seeded noise at min, opt and max."""
    cases = []
    if sample is not None:
        cases.append(("samples@" + "x".join(map(str, profile.opt)), sample[: profile.opt[0]]))
    for shape in profile.shapes():
        cases.append(("random@" + "x".join(map(str, shape)), rng.standard_normal(shape).astype(np.float32)))
    return cases


def _detections(torch_runner, runner, config, profile, sample, val_images, tol, post, report) -> None:
    """Detection agreement on the sample images and synthetic scenes, and mAP@0.5 parity on the scenes.

    Each input runs once per backend; agreement and mAP are both read from those outputs.
    """
    batch, static = profile.opt[0], not profile.dynamic
    hw = tuple(profile.opt[2:])
    with tempfile.TemporaryDirectory(prefix="cat-deploy-val-") as tmp:
        ref_dets, out_dets = [], []
        det_inputs = [] if sample is None else [sample]
        dataset = _synthetic_scenes(config, val_images, Path(tmp), hw) if val_images > 0 else None
        if dataset is not None:
            det_inputs.append(np.stack([dataset[i][0].numpy() for i in range(len(dataset))]))
        outputs = []
        for imgs in det_inputs:
            outputs.append((_concat(run_batched(torch_runner, imgs, batch, static)),
                            _concat(run_batched(runner, imgs, batch, static))))
            ref_dets += detections_from_outputs(outputs[-1][0], hw, config.detector, *post)
            out_dets += detections_from_outputs(outputs[-1][1], hw, config.detector, *post)
        report["detections"] = detection_verdict(match_detections(ref_dets, out_dets), tol)
        if dataset is not None:
            report["accuracy"] = _map_parity(*outputs[-1], dataset, config, hw, tol)


def _per_module(artefact, ref_module, model, x, precision, providers, device) -> dict[str, Any]:
    modules = cat_module_names(model)
    stats_tol, out_tol = module_tolerances(precision, providers)
    loc = {**localize(artefact, ref_module, x, out_tol, modules, device, stats_tol),
           "tolerance": {"statistics": stats_tol.__dict__, "output": out_tol.__dict__}}
    first = loc["first_divergent"]
    if first is not None:
        row = next(r for r in loc["modules"] if r["module"] == first)
        return {**loc, "passed": False, "reason": f"CAT module {first} diverges first ({row.get('reason', '')})"}
    if not loc["modules"]:
        return {**loc, "passed": False, "reason": f"none of the {len(modules)} CAT modules' outputs found in the graph"}
    return {**loc, "passed": True}


def _verdict(report: dict[str, Any]) -> bool:
    """All checks passed, and at least one comparison of outputs or detections was made."""
    compared = [s["passed"] for c in report["cases"] for s in c["outputs"].values()]
    compared += [report[k]["passed"] for k in ("detections", "accuracy") if k in report]
    if not compared:
        report["reason"] = ("no comparison was made (no element-wise output, no detections): give sample images "
                            "(--samples DIR) or synthetic scenes (--val-images N)")
        return False
    return all(compared) and all(report[k]["passed"] for k in ("sidecar", "per_module") if k in report)


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
    """Compare ``artefact`` with PyTorch as the sidecar describes it; returns the parity report (``passed``).

    A report passes only when something was compared and every check passed: each output
    element-wise, detections (at least ``MIN_MATCHED_DETECTIONS`` matched), mAP, the sidecar's
    pre-processing fields against the checkpoint and, with ``per_module``, every CAT module.
    """
    config: ModelConfig = model.config
    precision = sidecar.precision_mode
    tol = TOLERANCES[precision]
    profile = sidecar.profile
    nms = sidecar.nms or "host"  # classifiers: None
    post = sidecar.postprocess or PostprocessOptions()  # classifiers: None
    conf, iou, max_det = post.conf, post.iou, post.max_det
    ref_module = reference_module(model, sidecar.gep, nms, conf, iou, max_det)
    names = output_names(model, nms)
    torch_runner = TorchRunner(ref_module, names)
    elementwise = names if nms == "host" or config.task == "classify" else []

    mismatches = sidecar_mismatches(config, sidecar, names, profile)
    report: dict[str, Any] = {"precision": precision, "tolerance": tol.__dict__, "cases": [],
                              "sidecar": {"passed": not mismatches, "mismatches": mismatches,
                                          **({"reason": "; ".join(mismatches)} if mismatches else {})}}
    rng = np.random.default_rng(0)
    with open_runner(artefact, device) as runner:
        report["backend"] = getattr(runner, "providers", [runner.name])
        sample = sample_batch(config, profile.opt, samples, log)
        for name, x in _cases(profile, sample, rng):
            ref = torch_runner.infer({"images": x})
            out = runner.infer({runner.input_names[0]: x})
            stats = compare_outputs(ref, out, tol, elementwise) if elementwise else {}
            report["cases"].append({"name": name, "shape": list(x.shape), "outputs": stats})
            log(f"  parity {name}: " + ", ".join(
                f"{k} max_abs={v.get('max_abs', float('nan')):.1e} cos={v.get('cosine', float('nan')):.6f}"
                for k, v in stats.items()))
        if config.task == "detect":
            _detections(torch_runner, runner, config, profile, sample, val_images, tol, (conf, iou, max_det), report)
        if per_module and Path(artefact).suffix == ".onnx" and cat_module_names(model):
            x = sample if sample is not None else rng.standard_normal(profile.opt).astype(np.float32)
            report["per_module"] = _per_module(artefact, ref_module, model, x[: profile.opt[0]], precision,
                                               report["backend"], device)
            log(f"  per-module: first divergent CAT module: {report['per_module']['first_divergent'] or 'none'} "
                f"({len(report['per_module']['modules'])} compared)")
    report["passed"] = _verdict(report)
    return report


def _map_parity(ref_outputs, art_outputs, dataset, config, hw, tol) -> dict[str, Any]:
    """mAP@0.5 of PyTorch and of the artefact on ``dataset``, from their raw outputs on it (in dataset order)."""
    def predictor(outputs: dict[str, np.ndarray]):
        seen = 0

        def predict(images: torch.Tensor):
            nonlocal seen
            chunk = {k: v[seen:seen + len(images)] for k, v in outputs.items()}
            seen += len(images)
            dets = detections_from_outputs(chunk, hw, config.detector, conf=0.05, iou=0.5, max_det=100)
            return [{k: torch.from_numpy(v) for k, v in d.items()} for d in dets]
        return predict

    m_ref = evaluate_detector(predictor(ref_outputs), dataset, batch_size=8)
    m_out = evaluate_detector(predictor(art_outputs), dataset, batch_size=8)
    drop = m_ref["map50"] - m_out["map50"]
    res = {"images": len(dataset), "map50_ref": m_ref["map50"], "map50_out": m_out["map50"],
           "map_ref": m_ref["map"], "map_out": m_out["map"], "passed": drop <= tol.max_map_drop}
    if not res["passed"]:
        res["reason"] = f"mAP@0.5 drops by {drop:.4f} > {tol.max_map_drop}"
    return res
