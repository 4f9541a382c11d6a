"""Export: deploy graphs, ONNX, mixed precision, TensorRT engines, the versions a sidecar records.

The end-to-end job of ``export.py`` (export, parity against PyTorch, engine) joins this package
and :mod:`cat_deploy.validate`, so it sits above both: :mod:`cat_deploy.exporter`.
"""
from ..core.sidecar import ShapeProfile, read_sidecar, sidecar_path, write_sidecar
from ..layers import cat_module_names
from .deploy import DeployDetector, deploy_module, output_names
from .onnx import OPSET, export_onnx
from .versions import versions

__all__ = [
    "DeployDetector",
    "OPSET",
    "ShapeProfile",
    "cat_module_names",
    "deploy_module",
    "export_onnx",
    "output_names",
    "read_sidecar",
    "sidecar_path",
    "versions",
    "write_sidecar",
]
