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
from pathlib import Path
from typing import Sequence

import onnx
import onnxslim
import torch
import torch.nn as nn
from torch.onnx import _constants

from ..core.files import atomic_write
from ..core.plugin_ids import graph_custom_ops
from ..core.sidecar import ShapeProfile
from ..layers import cat_module_names

__all__ = ["OPSET", "ShapeProfile", "export_onnx", "cat_module_names", "custom_ops", "opset_range"]

OPSET = 17


def opset_range() -> tuple[int, int]:
    """Opsets the TorchScript exporter writes (7..20 with torch 2.x); others are refused before exporting."""
    return (getattr(_constants, "ONNX_MIN_OPSET", 7),
            getattr(_constants, "ONNX_TORCHSCRIPT_EXPORTER_MAX_OPSET", getattr(_constants, "ONNX_MAX_OPSET", 20)))


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
            model = onnxslim.slim(model)
        onnx.checker.check_model(model, full_check=True)
        onnx.save(model, tmp)

    return atomic_write(path, write)


def custom_ops(path: str | os.PathLike) -> list[str]:
    """``"domain::op_type"`` of the fused CAT nodes in the ONNX file at ``path`` (what its sidecar records)."""
    return graph_custom_ops(onnx.load(str(path), load_external_data=False).graph)
