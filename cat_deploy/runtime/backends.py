"""Pick the backend for a model file by its suffix, and describe how to feed it.

``.engine``/``.plan`` -> TensorRT, ``.onnx`` -> ONNX Runtime, ``.pth`` -> PyTorch eager.
:class:`ModelSpec` holds what pre- and post-processing need: from the sidecar for
exported artefacts, from ``model.config`` for checkpoints (which export the same
raw ``cls_logits, box_deltas`` as a host-NMS ONNX file). Opening never loads the
heavy runtime: that happens when the runner is entered. Only checkpoints need PyTorch
(imported then, through :func:`~cat_deploy.core.optional.lazy_import`).
"""
from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np

from ..config import PAD_VALUE, DetectorOptions, ModelConfig
from ..core.errors import CheckpointError, MissingDependency, SidecarError
from ..core.optional import is_available, lazy_import
from ..core.sidecar import Sidecar, read_sidecar, sidecar_path
from .processing import preprocess
from .runners import OnnxRuntimeRunner, Runner, TorchRunner
from .tensorrt import TensorRTRunner, install_hint

__all__ = ["ModelSpec", "ModelError", "open_model", "spec_from_sidecar", "spec_from_config", "ENGINE_SUFFIXES"]

torch = lazy_import("torch", "python infer.py on a .pth checkpoint")
checkpoint = lazy_import("cat_deploy.checkpoint", "python infer.py on a .pth checkpoint",
                         "or run the exported .onnx/.engine, which needs no PyTorch")

ENGINE_SUFFIXES = (".engine", ".plan")
MODEL_SUFFIXES = ENGINE_SUFFIXES + (".onnx", ".pth", ".pt")


class ModelError(ValueError):
    """The model file cannot be used; one line saying what to do."""


@dataclass(frozen=True)
class ModelSpec:
    """How to feed a detector and read its outputs (the same for every backend)."""

    backend: str  # "tensorrt" | "onnxruntime" | "pytorch"
    input_name: str
    output_names: tuple[str, ...]
    input_hw: tuple[int, int]
    class_names: tuple[str, ...]
    detector: DetectorOptions
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    letterbox: bool = True
    pad_value: int = PAD_VALUE
    channel_order: str = "RGB"
    nms: str = "host"  # "host": raw outputs, decode + NMS here; "graph": fixed-size outputs from the model
    batch_range: tuple[int, int] = (1, 1 << 16)  # (min, max) batch the model accepts
    default_batch: int = 1
    baked: Optional[dict[str, Any]] = None  # conf/iou/max_det fixed at export (nms="graph")
    plugin: bool = False  # the graph holds the fused CAT pooling node (gep="plugin")

    @property
    def static_batch(self) -> bool:
        return self.batch_range[0] == self.batch_range[1]

    def preprocess(self, image: np.ndarray):
        """RGB uint8 [H, W, 3] -> (float32 [3, h, w], letterbox map)."""
        if self.channel_order == "BGR":
            image = np.ascontiguousarray(image[:, :, ::-1])
        return preprocess(image, self.input_hw, self.mean, self.std, self.letterbox, self.pad_value)


def _check_task(path, task: str) -> None:
    if task != "detect":
        raise ModelError(f"'{path}' is a {task} model; infer.py runs detectors (task 'detect')")


def spec_from_sidecar(path: str | os.PathLike, sidecar: Sidecar, backend: str) -> ModelSpec:
    """:class:`ModelSpec` of an exported artefact from its (already checked) :class:`Sidecar`."""
    config = sidecar.model
    _check_task(path, config.task)
    if abs(sidecar.normalize.scale * 255 - 1) > 1e-6:
        raise ModelError(f"sidecar of '{path}' asks for input scale {sidecar.normalize.scale}; this runner feeds "
                         "(x/255 - mean)/std: re-export with export.py")
    profile = sidecar.profile
    return ModelSpec(
        backend=backend,
        input_name=sidecar.input_name,
        output_names=sidecar.output_names,
        input_hw=sidecar.input_size,
        class_names=sidecar.class_names or config.class_names or tuple(str(i) for i in range(config.num_classes)),
        detector=config.detector or DetectorOptions(),
        mean=sidecar.normalize.mean,
        std=sidecar.normalize.std,
        letterbox=sidecar.letterbox,
        pad_value=sidecar.pad_value,
        channel_order=sidecar.channel_order,
        nms=sidecar.nms or "host",
        batch_range=(profile.min[0], profile.max[0]),
        default_batch=profile.opt[0],
        baked=dataclasses.asdict(sidecar.postprocess) if sidecar.nms == "graph" and sidecar.postprocess else None,
        plugin=sidecar.gep == "plugin",
    )


def spec_from_config(config: ModelConfig) -> ModelSpec:
    """:class:`ModelSpec` of a checkpoint: raw outputs like a host-NMS export, any batch."""
    return ModelSpec(
        backend="pytorch",
        input_name="images",
        output_names=("cls_logits", "box_deltas"),
        input_hw=tuple(config.input_size),
        class_names=tuple(config.class_names) or tuple(str(i) for i in range(config.num_classes)),
        detector=config.detector or DetectorOptions(),
        mean=tuple(config.mean),
        std=tuple(config.std),
        letterbox=config.letterbox,
    )


def _sidecar_or_fail(path: Path, engine: bool) -> Sidecar:
    if not sidecar_path(path).is_file():
        flags = " --format trt" if engine else ""
        raise ModelError(f"'{path}' has no sidecar '{sidecar_path(path).name}' (input size, normalisation, classes): "
                         f"re-export with python export.py --ckpt MODEL.pth{flags} and keep the .json beside it, "
                         "or run the checkpoint itself: python infer.py --engine MODEL.pth")
    try:
        return read_sidecar(path)
    except SidecarError as e:
        raise ModelError(str(e)) from None


def open_model(path: str | os.PathLike, device: str = "auto") -> tuple[Runner, ModelSpec]:
    """The runner (not yet entered) and :class:`ModelSpec` for ``path``, picked by suffix.

    ``device``: ``auto`` (GPU when there is one), ``cpu`` or ``cuda``. Raises
    :class:`ModelError` with one line for a missing or unusable file.

    Example::

        runner, spec = open_model("out/cat.onnx")
        with runner:
            out = runner.infer({spec.input_name: batch})
    """
    p = Path(path)
    suffix = p.suffix.lower()
    if suffix not in MODEL_SUFFIXES:
        raise ModelError(f"'{p}': unknown model file type {suffix or '(none)'!r}; pass a TensorRT engine "
                         "(.engine/.plan), an ONNX file (.onnx) or a checkpoint (.pth)")
    if not p.is_file():
        what = "engine" if suffix in ENGINE_SUFFIXES else "model"
        raise ModelError(f"{what} '{p}' not found" + (
            "; build one with python export.py --ckpt MODEL.pth --format trt, or pass the .onnx or .pth"
            if suffix in ENGINE_SUFFIXES else "; check the path (export.py writes OUT/cat.onnx)"))
    if device not in ("auto", "cpu", "cuda"):
        raise ModelError(f"--device must be auto, cpu or cuda, got {device!r}")

    if suffix in (".pth", ".pt"):
        try:
            model = checkpoint.load_model(p)
        except (CheckpointError, MissingDependency) as e:
            raise ModelError(str(e)) from None
        _check_task(p, model.config.task)
        gpu = torch.cuda.is_available()
        if device == "cuda" and not gpu:
            raise ModelError("--device cuda: PyTorch sees no CUDA GPU here; use --device cpu")
        dev = "cuda" if device in ("auto", "cuda") and gpu else "cpu"
        spec = spec_from_config(model.config)
        return TorchRunner(model, spec.output_names, spec.input_name, device=dev), spec

    if suffix == ".onnx":
        sidecar = _sidecar_or_fail(p, engine=False)
        spec = spec_from_sidecar(p, sidecar, "onnxruntime")
        return OnnxRuntimeRunner(p, device=device, plugin=spec.plugin), spec

    if device == "cpu":
        raise ModelError(f"'{p}' is a TensorRT engine, which runs on the GPU only; for --device cpu pass the "
                         f"ONNX file: python infer.py --engine {p.with_suffix('.onnx')} --device cpu")
    sidecar = _sidecar_or_fail(p, engine=True)
    spec = spec_from_sidecar(p, sidecar, "tensorrt")
    if not is_available("tensorrt"):  # say so before listing thousands of images
        raise ModelError(install_hint(p))

    return TensorRTRunner(p, sidecar=sidecar), spec


def choose_batch(requested: Optional[int], spec: ModelSpec, artefact: str | os.PathLike = "") -> int:
    """The batch to run: ``requested`` if the model accepts it, else one line saying what to do."""
    lo, hi = spec.batch_range
    if requested is None:
        return spec.default_batch
    if requested < 1:
        raise ModelError(f"--batch must be >= 1, got {requested}")
    if spec.static_batch and requested != lo:
        raise ModelError(f"'{artefact}' was exported for batch {lo} only (static shape): pass --batch {lo}, or "
                         f"re-export with python export.py --dynamic --batch {requested}")
    if not lo <= requested <= hi:
        raise ModelError(f"--batch {requested} is outside what '{artefact}' accepts ({lo}..{hi}): pass --batch {hi} "
                         f"or less, or re-export with python export.py --dynamic --batch {requested}")
    return requested


def parse_classes(values: Optional[Sequence[str]], class_names: Sequence[str]) -> Optional[list[int]]:
    """``--classes``: names or indices (space- or comma-separated) -> sorted class indices."""
    if not values:
        return None
    out = set()
    for v in values:
        for tok in str(v).split(","):
            tok = tok.strip()
            if not tok:
                continue
            if tok.isdigit() and int(tok) < len(class_names):
                out.add(int(tok))
            elif tok in class_names:
                out.add(list(class_names).index(tok))
            else:
                raise ModelError(f"--classes: unknown class {tok!r}; the model has "
                                 + ", ".join(f"{i}={n}" for i, n in enumerate(class_names)))
    return sorted(out)
