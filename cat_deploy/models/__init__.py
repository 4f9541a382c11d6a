"""Model zoo: classifiers on the paper's four backbones and a RetinaNet-style detector.

``create_model(name, attn=..., num_classes=...)`` builds a model and attaches its
:class:`~cat_deploy.config.ModelConfig` as ``model.config`` (what checkpoints store).

Names:
    classifiers: ``resnet50``, ``resnet101``, ``mobilenetv2``, ``shufflenetv2``
    detectors:   ``retinanet_<backbone>`` for each backbone above, and
                 ``retinanet_tiny`` (ShuffleNetV2 x0.5, 64-channel FPN P3-P5,
                 2-conv heads, 6 anchors per cell; 640x192 input) for CPU demos.
"""
from __future__ import annotations

import dataclasses
from typing import Optional

import torch.nn as nn

from ..config import CATOptions, DetectorOptions, ModelConfig
from ..layers import get_attn
from .backbones import BACKBONES, FeatureBackbone, create_classifier
from .detector import RetinaNet, decode_boxes, detection_loss, make_anchors, postprocess
from .weights import exercise_cat

__all__ = [
    "create_model",
    "build_model",
    "model_names",
    "RetinaNet",
    "decode_boxes",
    "exercise_cat",
    "detection_loss",
    "make_anchors",
    "postprocess",
]

# CPU demo: ShuffleNetV2 x0.5 trunk (3x cheaper than MobileNetV2 x0.5 to train here), FPN P3-P5.
# Anchors for 192-px-high driving frames: base sizes 16/32/64 at two scales; ratios (h/w) for
# wide cars (0.5), boxy trucks/signs (1.0) and tall pedestrians / traffic lights (2.5).
_TINY = dict(
    arch="shufflenetv2",
    width_mult=0.5,
    input_size=(192, 640),
    detector=DetectorOptions(
        fpn_channels=64,
        head_convs=2,
        levels=(3, 4, 5),
        anchor_sizes=(16.0, 32.0, 64.0),
        anchor_scales=(1.0, 2**0.5),
        anchor_ratios=(0.5, 1.0, 2.5),
        head_norm="gn",
    ),
)


def model_names() -> list[str]:
    return list(BACKBONES) + [f"retinanet_{b}" for b in BACKBONES] + ["retinanet_tiny"]


def _config_for(name: str, attn: Optional[str], num_classes: Optional[int], **overrides) -> ModelConfig:
    if name in BACKBONES:
        base = dict(arch=name, task="classify", num_classes=1000, input_size=(224, 224))
    elif name == "retinanet_tiny":
        base = dict(task="detect", num_classes=80, letterbox=True, **_TINY)
    elif name.startswith("retinanet_") and name[len("retinanet_"):] in BACKBONES:
        base = dict(arch=name[len("retinanet_"):], task="detect", num_classes=80, input_size=(512, 1024),
                    letterbox=True, detector=DetectorOptions())
    else:
        raise ValueError(f"unknown model {name!r}; choose one of {model_names()}")
    if num_classes is not None:
        base["num_classes"] = num_classes
    base["attn"] = None if attn in (None, "none") else attn
    cat = overrides.pop("cat", None)
    if isinstance(cat, dict):
        cat = CATOptions(**cat)
    base["cat"] = cat or CATOptions()
    det = overrides.pop("detector", None)
    if isinstance(det, dict):
        det = dataclasses.replace(base["detector"], **det)
    if det is not None:
        base["detector"] = det
    base.update(overrides)
    return ModelConfig(**base)


def build_model(config: ModelConfig) -> nn.Module:
    """Build the (untrained) network described by ``config``; sets ``model.config``."""
    attn = get_attn(config.attn, **config.cat.kwargs()) if config.attn == "cat" else get_attn(config.attn)
    if config.task == "classify":
        model = create_classifier(config.arch, attn, config.num_classes, config.width_mult)
    elif config.task == "detect":
        model = RetinaNet(FeatureBackbone(config.arch, attn, config.width_mult), config.num_classes, config.detector)
    else:
        raise ValueError(f"unknown task {config.task!r}; expected 'classify' or 'detect'")
    model.config = config
    return model


def create_model(name: str, attn: Optional[str] = "cat", num_classes: Optional[int] = None, **overrides) -> nn.Module:
    """Build a zoo model by name.

    Args:
        name: see :func:`model_names`.
        attn: ``"cat"``, ``"se"``, ``"eca"``, ``"cbam"`` or ``None``.
        num_classes: classes of the classifier / detector.
        overrides: any :class:`ModelConfig` field; ``cat=dict(...)`` sets CAT
            options (``docs/cat_spec.md``), ``detector=dict(...)`` head/anchor options.

    Example:
        >>> model = create_model("resnet50", attn="cat", num_classes=100)
        >>> det = create_model("retinanet_tiny", num_classes=6, cat=dict(gep="reference"))
    """
    return build_model(_config_for(name, attn, num_classes, **overrides))
