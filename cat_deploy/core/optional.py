"""Optional heavy dependencies, imported on first use through one helper (after Polygraphy's ``mod.lazy_import``).

The deployment runtime stands on numpy, Pillow and ONNX Runtime; PyTorch, TensorRT,
cuda-python, Triton, ModelOpt, PyAV and onnxruntime-extensions are optional. A module
that needs one binds it at the top with :func:`lazy_import`; the real import happens on
the first attribute access, and a missing package then raises :class:`MissingDependency`
with one line naming the extra to install::

    trt = lazy_import("tensorrt")        # nothing imported yet
    trt.Builder(logger)                  # imports tensorrt, or: "... pip install 'cat-deploy[trt]'"

No other module of the package imports inside a function (``tests/test_layering.py``).
"""
from __future__ import annotations

import importlib
import importlib.util
from types import ModuleType
from typing import Optional

from .errors import MissingDependency

__all__ = ["EXTRAS", "MIN_TENSORRT", "LazyModule", "lazy_import", "require", "is_available", "require_tensorrt",
           "require_cudart", "version_tuple"]

# top-level module -> (what to pip install, what it is called in messages)
EXTRAS: dict[str, tuple[str, str]] = {
    "torch": ("cat-deploy[export]", "PyTorch"),
    "torchvision": ("cat-deploy[export]", "torchvision"),
    "timm": ("cat-deploy[export]", "timm"),
    "onnx": ("cat-deploy[export]", "the onnx package"),
    "onnxslim": ("cat-deploy[export]", "onnxslim"),
    "onnxruntime": ("cat-deploy[runtime]", "ONNX Runtime"),
    "faster_coco_eval": ("cat-deploy[runtime]", "faster-coco-eval"),
    "tensorrt": ("cat-deploy[trt]", "TensorRT"),
    "cuda": ("cat-deploy[trt]", "cuda-python"),
    "triton": ("cat-deploy[plugin]", "Triton"),
    "onnxruntime_extensions": ("cat-deploy[plugin]", "onnxruntime-extensions"),
    "matplotlib": ("cat-deploy[export]", "matplotlib"),
    "modelopt": ("nvidia-modelopt[onnx]", "NVIDIA ModelOpt"),
    "av": ("cat-deploy[video]", "PyAV"),
    "cv2": ("opencv-python-headless", "OpenCV"),
    "ray": ("cat-deploy[ray]", "Ray Data"),
    "pyarrow": ("cat-deploy[ray]", "pyarrow"),
    "tritonclient": ("cat-deploy[serve-client]", "tritonclient"),
    "pytriton": ("cat-deploy[serve]", "nvidia-pytriton (in an environment of its own: it needs NumPy<2)"),
}

MIN_TENSORRT = (10, 9)


def version_tuple(version: str, n: int = 3) -> tuple[int, ...]:
    """``"10.13.2.6"`` -> ``(10, 13, 2)``; non-numeric parts end the tuple."""
    out = []
    for part in str(version).split(".")[:n]:
        digits = "".join(ch for ch in part if ch.isdigit())
        if not digits:
            break
        out.append(int(digits))
    return tuple(out)


def _missing_message(missing: str, what: str, instead: str) -> str:
    spec, display = EXTRAS.get(missing.split(".")[0], (missing.split(".")[0], missing))
    line = f"{what} needs {display}, which is not installed: pip install '{spec}'"
    return line + (f"; {instead}" if instead else "")


def require(name: str, what: Optional[str] = None, instead: str = "") -> ModuleType:
    """Import ``name`` now; raise :class:`MissingDependency` (one line, the extra to install) if it is absent.

    ``what`` names what needs it (default: the module), ``instead`` says what to do otherwise.
    For a ``cat_deploy`` module that needs an optional package, the message names that package.
    """
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as e:
        missing = e.name or name
        if missing.split(".")[0] in EXTRAS or missing == name:
            raise MissingDependency(_missing_message(missing, what or name, instead)) from None
        raise
    except ImportError as e:  # installed but broken (e.g. a shared library missing)
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        spec = EXTRAS.get(name.split(".")[0], (name,))[0]
        raise MissingDependency(f"{what or name}: '{name}' is installed but cannot be imported ({first[:200]}); "
                                f"reinstall it: pip install --force-reinstall '{spec}'") from None


def is_available(name: str) -> bool:
    """Whether ``name`` can be found (without importing it; a dotted name imports its parents)."""
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


class LazyModule:
    """Stand-in for a module, imported by :func:`require` on first attribute access."""

    def __init__(self, name: str, what: Optional[str] = None, instead: str = ""):
        self._name, self._what, self._instead = name, what, instead

    def __getattr__(self, attr: str):
        if attr.startswith("__") and attr.endswith("__"):
            raise AttributeError(attr)  # keep copy/pickle/inspect from importing the module
        return getattr(require(self._name, self._what, self._instead), attr)

    def __repr__(self) -> str:
        return f"<lazy module {self._name!r}>"


def lazy_import(name: str, what: Optional[str] = None, instead: str = "") -> LazyModule:
    """``name`` bound now, imported on first use (see the module docstring)."""
    return LazyModule(name, what, instead)


def require_tensorrt(what: str = "this", instead: str = "") -> ModuleType:
    """The ``tensorrt`` module, >= 10.9 (ahead-of-time plugins, strongly typed networks), or one line saying what to do."""
    if not is_available("tensorrt"):
        raise MissingDependency(
            f"{what} needs TensorRT, which is not installed: on a machine with an NVIDIA GPU run "
            "pip install 'cat-deploy[trt]' (TensorRT >= 10.9 and cuda-python)" + (f"; {instead}" if instead else ""))
    trt = require("tensorrt", what, instead)
    if version_tuple(trt.__version__, 2) < MIN_TENSORRT:
        raise MissingDependency(f"TensorRT {trt.__version__} is too old for {what}: cat-deploy needs >= 10.9 "
                                "(ahead-of-time Python plugins, strongly typed networks); pip install -U 'cat-deploy[trt]'")
    return trt


def require_cudart() -> ModuleType:
    """cuda-python's runtime API (``cuda.bindings.runtime``; ``cuda.cudart`` before cuda-python 12.8)."""
    for name in ("cuda.bindings.runtime", "cuda.cudart"):
        if is_available(name):
            return require(name)
    raise MissingDependency("cuda-python is not installed (TensorRT's runner needs it for GPU memory and streams): "
                            "pip install 'cat-deploy[trt]'")
