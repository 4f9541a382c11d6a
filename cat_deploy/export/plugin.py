"""The fused CAT pooling operator for export (``gep="plugin"``).

Filled by the fused-pooling work: one custom ONNX node per CAT module whose
``op_type``/namespace match the TensorRT plugin registration in ``plugins/``.
"""
from __future__ import annotations

import torch

__all__ = ["fused_cat_pool", "PluginUnavailable"]


class PluginUnavailable(RuntimeError):
    pass


def fused_cat_pool(x: torch.Tensor, taps: torch.Tensor, gmp_filter: str):
    raise PluginUnavailable("--gep plugin: the fused CAT pooling plugin is not available in this build; "
                            "export with --gep stable (the default)")
