"""Export: deploy graphs, ONNX, mixed precision, the fused-pooling plugin, TensorRT engines, sidecars."""
from .deploy import DeployDetector, deploy_module, output_names
from .onnx import OPSET, ShapeProfile, cat_module_names, export_onnx
from .sidecar import read_sidecar, sidecar_path, versions, write_sidecar

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
