"""PyTorch -> ONNX: trace the deploy graph, check it, simplify it with onnxslim.

Opset 17: the newest opset that TensorRT 10.x/11.x, ONNX Runtime >= 1.14 and
torch's TorchScript-based exporter all support fully, and it has every operator
the deploy graphs need (Pad "edge", Reduce* with axes as inputs, NonMaxSuppression,
ScatterND, TopK). The TorchScript exporter (``dynamo=False``) is used because it
exports these models in seconds (the dynamo exporter takes about a minute for the
demo detector on 2 CPU cores) and because custom operators (the fused pooling
plugin) are expressed with a one-line ``symbolic``.
"""
from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence

import torch
import torch.nn as nn

from ..checkpoint import atomic_write

__all__ = ["OPSET", "ShapeProfile", "export_onnx", "cat_module_names", "opset_range"]

OPSET = 17


def opset_range() -> tuple[int, int]:
    """Opsets the TorchScript exporter writes (7..20 with torch 2.x); others are refused before exporting."""
    from torch.onnx import _constants

    return (getattr(_constants, "ONNX_MIN_OPSET", 7),
            getattr(_constants, "ONNX_TORCHSCRIPT_EXPORTER_MAX_OPSET", getattr(_constants, "ONNX_MAX_OPSET", 20)))


@dataclass(frozen=True)
class ShapeProfile:
    """Input shapes (B, 3, H, W): ``opt`` is what the graph is traced at; min/max bound dynamic axes."""

    min: tuple[int, int, int, int]
    opt: tuple[int, int, int, int]
    max: tuple[int, int, int, int]

    @property
    def dynamic(self) -> bool:
        return self.min != self.max

    @classmethod
    def make(cls, imgsz: Sequence[int], batch: int = 1, dynamic: bool = False,
             min_imgsz: Optional[Sequence[int]] = None, max_imgsz: Optional[Sequence[int]] = None) -> "ShapeProfile":
        h, w = int(imgsz[0]), int(imgsz[1])
        opt = (batch, 3, h, w)
        lo = tuple(min_imgsz) if min_imgsz else (max(32, h // 2), max(32, w // 2))
        hi = tuple(max_imgsz) if max_imgsz else (h * 2, w * 2)
        for flag, size in (("--imgsz", (h, w)), ("--min-imgsz", lo), ("--max-imgsz", hi)):
            if len(size) != 2 or min(size) < 1:
                raise ValueError(f"{flag} {' '.join(map(str, size))}: give a height and a width of at least 1 pixel")
        if not dynamic:
            return cls(opt, opt, opt)
        if not (lo[0] <= h <= hi[0] and lo[1] <= w <= hi[1]):
            raise ValueError(f"--imgsz {h} {w} must lie between --min-imgsz {lo} and --max-imgsz {hi}")
        return cls((1, 3, *lo), opt, (batch, 3, *hi))

    def shapes(self) -> list[tuple[int, int, int, int]]:
        """Distinct shapes to validate: min, opt, max."""
        return list(dict.fromkeys([self.min, self.opt, self.max]))

    def to_dict(self) -> dict:
        return {"min": list(self.min), "opt": list(self.opt), "max": list(self.max)}


def cat_module_names(model: nn.Module) -> list[str]:
    """Qualified names of the CAT modules, in forward order for the zoo's sequential backbones."""
    from ..layers import CAT

    return [name for name, m in model.named_modules() if isinstance(m, CAT)]


def export_onnx(
    module: nn.Module,
    path: str | os.PathLike,
    profile: ShapeProfile,
    output_names: Sequence[str],
    input_name: str = "images",
    opset: int = OPSET,
    simplify: bool = True,
) -> Path:
    """Export ``module`` to ``path`` (written atomically), check it with ``onnx.checker``, slim it.

    Batch, height and width are dynamic axes when ``profile.dynamic``; the graph is
    traced at ``profile.opt``. Returns the path.
    """
    import onnx

    module = module.eval()
    example = torch.zeros(profile.opt)
    dynamic_axes = None
    if profile.dynamic:
        dynamic_axes = {input_name: {0: "batch", 2: "height", 3: "width"}}
        for name in output_names:
            dynamic_axes[name] = {0: "batch"}

    def write(tmp: str) -> None:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)
            warnings.filterwarnings("ignore", category=UserWarning)
            warnings.filterwarnings("ignore", category=DeprecationWarning)
            with torch.no_grad():
                torch.onnx.export(
                    module, (example,), tmp, dynamo=False, opset_version=opset, input_names=[input_name],
                    output_names=list(output_names), dynamic_axes=dynamic_axes, do_constant_folding=True,
                )
        model = onnx.load(tmp)
        if simplify:
            import onnxslim

            model = onnxslim.slim(model)
        onnx.checker.check_model(model, full_check=True)
        onnx.save(model, tmp)

    return atomic_write(path, write)
