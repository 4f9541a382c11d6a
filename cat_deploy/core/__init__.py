"""The shared bottom of cat-deploy: what two or more layers need, so no layer imports another sideways or up.

* :mod:`.errors` -- the error types (one line for people each);
* :mod:`.files` -- :func:`atomic_write`, the one way files are written;
* :mod:`.optional` -- :func:`lazy_import` and :func:`require_tensorrt`, the one route to optional heavy
  dependencies (PyTorch for the runtime, TensorRT, cuda-python, Triton, ModelOpt, PyAV, onnxruntime-extensions);
* :mod:`.plugin_ids` -- the names of the fused CAT pooling node, its TensorRT plugin and their attributes;
* :mod:`.sidecar` -- :class:`Sidecar`, the typed JSON beside every artefact.

Imports nothing of cat-deploy but :mod:`cat_deploy.config`, and no third-party package.
"""
from .errors import BackendUnavailable, CheckpointError, MissingDependency, PluginUnavailable, SidecarError
from .files import atomic_write, write_json
from .optional import is_available, lazy_import, require, require_cudart, require_tensorrt
from .sidecar import Normalize, PostprocessOptions, ShapeProfile, Sidecar, read_sidecar, sidecar_path, write_sidecar

__all__ = [
    "BackendUnavailable", "CheckpointError", "MissingDependency", "PluginUnavailable", "SidecarError",
    "atomic_write", "write_json",
    "is_available", "lazy_import", "require", "require_cudart", "require_tensorrt",
    "Normalize", "PostprocessOptions", "ShapeProfile", "Sidecar", "read_sidecar", "sidecar_path", "write_sidecar",
]
