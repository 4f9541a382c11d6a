"""cat-deploy: export, verify and serve CNNs with CAT attention.

Pipeline, one sub-package each, imports pointing down only: ``core`` (errors, atomic
writes, optional imports, the sidecar type) -> ``data`` -> ``layers`` (CAT, its pooling,
the fused-pooling op) -> ``plugins`` (its kernels) -> ``models`` -> ``checkpoint`` ->
``export`` -> ``runtime`` (torch-free) -> ``validate`` -> ``exporter``, ``train``, ``bench``.

Importing the package needs neither PyTorch nor ONNX Runtime; the checkpoint functions
below load PyTorch on first use.
"""
from .config import CATOptions, DetectorOptions, ModelConfig
from .core.errors import CheckpointError
from .core.optional import lazy_import

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

_checkpoint = lazy_import("cat_deploy.checkpoint", "cat_deploy's checkpoint functions")
_CHECKPOINT_API = ("load_checkpoint", "load_model", "save_checkpoint")


def __getattr__(name: str):
    """``load_checkpoint``, ``load_model``, ``save_checkpoint``: PyTorch, imported on first use (PEP 562)."""
    if name in _CHECKPOINT_API:
        return getattr(_checkpoint, name)
    raise AttributeError(f"module 'cat_deploy' has no attribute {name!r}")
