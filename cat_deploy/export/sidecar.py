"""Sidecar JSON beside every artefact: how to feed it, what it computes, and with which versions.

``cat.onnx`` -> ``cat.onnx.json``, ``cat.engine`` -> ``cat.engine.json``. The engine
itself stays a plain TensorRT plan (loadable by trtexec and Triton); the runner
reads the sidecar for pre-processing, post-processing and compatibility checks.
"""
from __future__ import annotations

import json
import os
import platform
from pathlib import Path
from typing import Any, Optional

__all__ = ["sidecar_path", "write_sidecar", "read_sidecar", "versions", "SidecarError"]

SIDECAR_FORMAT = "cat-deploy-artefact"


class SidecarError(ValueError):
    pass


def sidecar_path(artefact: str | os.PathLike) -> Path:
    return Path(str(artefact) + ".json")


def versions() -> dict[str, Optional[str]]:
    """Library and device versions of this process (TensorRT and GPU fields are None when absent)."""
    import importlib.util

    import onnx
    import onnxruntime
    import torch

    v: dict[str, Optional[str]] = {
        "cat_deploy": __import__("cat_deploy").__version__,
        "python": platform.python_version(),
        "torch": str(torch.__version__),
        "onnx": onnx.__version__,
        "onnxruntime": onnxruntime.__version__,
        "tensorrt": None,
        "cuda": torch.version.cuda,
        "gpu": None,
        "compute_capability": None,
    }
    if importlib.util.find_spec("onnxslim"):
        import onnxslim

        v["onnxslim"] = getattr(onnxslim, "__version__", None)
    if importlib.util.find_spec("tensorrt"):
        try:
            import tensorrt

            v["tensorrt"] = tensorrt.__version__
        except ImportError:
            pass
    if torch.cuda.is_available():
        v["gpu"] = torch.cuda.get_device_name(0)
        v["compute_capability"] = "%d.%d" % torch.cuda.get_device_capability(0)
    return v


def write_sidecar(artefact: str | os.PathLike, info: dict[str, Any]) -> Path:
    from ..checkpoint import atomic_write

    payload = {"format": SIDECAR_FORMAT, "version": 1, "artefact": Path(artefact).name, **info}

    def write(tmp):
        with open(tmp, "w") as f:
            json.dump(payload, f, indent=2, default=_jsonable)

    return atomic_write(sidecar_path(artefact), write)


def _jsonable(o):
    if hasattr(o, "tolist"):
        return o.tolist()
    if isinstance(o, (set, tuple)):
        return list(o)
    return str(o)


def read_sidecar(artefact: str | os.PathLike) -> dict[str, Any]:
    """The sidecar of ``artefact``; one-line :class:`SidecarError` when missing or unreadable."""
    path = sidecar_path(artefact)
    if not path.is_file():
        raise SidecarError(
            f"'{artefact}' has no sidecar '{path.name}' (input size, normalisation, classes); re-export with "
            f"python export.py --ckpt MODEL.pth, or place the sidecar written by export.py beside it")
    try:
        with open(path) as f:
            data = json.load(f)
    except (OSError, json.JSONDecodeError) as e:
        raise SidecarError(f"sidecar '{path}' is not valid JSON ({e}); re-export with export.py") from None
    if not isinstance(data, dict):
        raise SidecarError(f"sidecar '{path}' holds a JSON {type(data).__name__}, not an object: it is not a "
                           "cat-deploy sidecar; re-export with export.py")
    if data.get("format") != SIDECAR_FORMAT:
        raise SidecarError(f"'{path}' is not a cat-deploy sidecar; re-export with export.py")
    return data
