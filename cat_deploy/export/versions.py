"""Library and device versions of the exporting process, recorded in every sidecar."""
from __future__ import annotations

import platform
from typing import Optional

import onnx
import onnxruntime
import onnxslim
import torch

from .. import __version__
from ..core.errors import MissingDependency
from ..core.optional import is_available, require

__all__ = ["versions"]


def versions() -> dict[str, Optional[str]]:
    """Library and device versions of this process (TensorRT and GPU fields are None when absent)."""
    v: dict[str, Optional[str]] = {
        "cat_deploy": __version__,
        "python": platform.python_version(),
        "torch": str(torch.__version__),
        "onnx": onnx.__version__,
        "onnxruntime": onnxruntime.__version__,
        "tensorrt": None,
        "cuda": torch.version.cuda,
        "gpu": None,
        "compute_capability": None,
        "onnxslim": getattr(onnxslim, "__version__", None),
    }
    if is_available("tensorrt"):
        try:
            v["tensorrt"] = require("tensorrt").__version__  # a lazy module refuses dunder names
        except MissingDependency:  # installed but its libraries cannot be loaded
            pass
    if torch.cuda.is_available():
        v["gpu"] = torch.cuda.get_device_name(0)
        v["compute_capability"] = "%d.%d" % torch.cuda.get_device_capability(0)
    return v
