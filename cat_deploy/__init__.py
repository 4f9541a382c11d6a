"""cat-deploy: export, verify and serve CNNs with CAT attention.

Pipeline, one sub-package each: ``layers`` (CAT and its pooling) -> ``models``
(backbones, detector) -> ``export`` (ONNX, precision, plugin, TensorRT build) ->
``runtime`` (backends, pre/post-processing) -> ``validate`` (parity, accuracy).
"""
from .checkpoint import CheckpointError, load_checkpoint, load_model, save_checkpoint
from .config import CATOptions, DetectorOptions, ModelConfig

__version__ = "0.1.0"

__all__ = [
    "CATOptions",
    "CheckpointError",
    "DetectorOptions",
    "ModelConfig",
    "load_checkpoint",
    "load_model",
    "save_checkpoint",
    "__version__",
]
