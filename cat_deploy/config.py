"""Model configuration: one frozen dataclass, written into checkpoints and sidecars as JSON."""
from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field
from typing import Any, Optional

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
PAD_VALUE = 114  # letterbox padding gray (the YOLO convention); also the background behind transparent images
BBOX_CLIP = math.log(1000.0 / 16)  # largest box delta dw/dh decoded (torchvision's RetinaNet), in training and deployment


@dataclass(frozen=True)
class CATOptions:
    """Constructor options of :class:`cat_deploy.layers.CAT` (see ``docs/cat_spec.md``)."""

    rd_ratio: float = 1.0 / 16
    gmp_filter: str = "paper"
    gmp_kernel_size: int = 5
    gmp_sigma: Optional[float] = None
    entropy_norm: str = "minmax"
    channel_mlp: bool = True
    interior_norm: str = "none"
    fusion: str = "algorithm1"
    spatial_kernel_size: int = 7
    gep: str = "stable"

    def kwargs(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class DetectorOptions:
    """RetinaNet-style head, FPN and anchors."""

    fpn_channels: int = 256
    head_convs: int = 4
    levels: tuple[int, ...] = (3, 4, 5, 6, 7)  # pyramid levels P3..P7 (stride 2**level)
    anchor_sizes: tuple[float, ...] = (32.0, 64.0, 128.0, 256.0, 512.0)  # one base size per level
    anchor_scales: tuple[float, ...] = (1.0, 2 ** (1 / 3), 2 ** (2 / 3))
    anchor_ratios: tuple[float, ...] = (0.5, 1.0, 2.0)  # height / width
    head_norm: str = "gn"  # "gn" | "bn" | "none"


@dataclass(frozen=True)
class ModelConfig:
    """Everything needed to rebuild a model and pre-process its input.

    ``input_size`` is (height, width); ``letterbox`` says whether images are
    resized with preserved aspect ratio and padded (detectors) or stretched.
    """

    arch: str
    task: str  # "classify" | "detect"
    attn: Optional[str] = "cat"
    num_classes: int = 1000
    class_names: tuple[str, ...] = ()
    input_size: tuple[int, int] = (224, 224)
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    letterbox: bool = False
    width_mult: float = 1.0
    cat: CATOptions = field(default_factory=CATOptions)
    detector: Optional[DetectorOptions] = None

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "ModelConfig":
        d = dict(d)
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown model config fields {sorted(unknown)}")
        d["cat"] = CATOptions(**d.get("cat") or {})
        if d.get("detector") is not None:
            det = {k: tuple(v) if isinstance(v, list) else v for k, v in d["detector"].items()}
            d["detector"] = DetectorOptions(**det)
        for key in ("class_names", "input_size", "mean", "std"):
            if key in d and d[key] is not None:
                d[key] = tuple(d[key])
        return cls(**d)

    def replace(self, **changes) -> "ModelConfig":
        return dataclasses.replace(self, **changes)
