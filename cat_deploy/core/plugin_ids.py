"""Names of the fused CAT nodes (pooling, gate), shared by everything that writes, runs or builds them.

One ONNX node ``FusedCatPool`` (domain ``ai.onnx.contrib``) stands for the six pooled
statistics of one CAT module. The PyTorch op that exports it (``cat_deploy.layers.fused``),
the ONNX Runtime CPU twin (``cat_deploy.plugins.cat_pool_ort``) and the TensorRT plugin
(``cat_deploy.plugins.cat_pool_trt``, id ``cat_deploy::FusedCatPool``) all take their names here.
"""
from __future__ import annotations

__all__ = ["OP_TYPE", "GATE_OP_TYPE", "DOMAIN", "PLUGIN_NAMESPACE", "PLUGIN_ID", "GMP_FILTERS", "GMP_FILTER_CODES",
           "FUSION_CODES", "GEP_FORMULATIONS", "ORT_OPS_LIBRARY", "GATE_OP", "graph_custom_ops"]

OP_TYPE = "FusedCatPool"
DOMAIN = "ai.onnx.contrib"  # onnxruntime-extensions' PyOp domain
PLUGIN_NAMESPACE = "cat_deploy"
PLUGIN_ID = f"{PLUGIN_NAMESPACE}::{OP_TYPE}"  # what TensorRT's ONNX parser looks up

# The fused gate of a CAT module (``export.py --fuse-gate``, ONNX Runtime only: TensorRT fuses the
# gate's pointwise ops itself): y = FusedCatGate(x, channel_logits, spatial_logits, exterior) with
# attribute ``fusion`` (FUSION_CODES): 0 y = x*(cw*sigmoid(c) + sw*sigmoid(s)) (Algorithm 1),
# 1 y = x*sigmoid(cw*c) + x*sigmoid(sw*sigmoid(s)) (eq. 1); (cw, sw) = exterior.
GATE_OP_TYPE = "FusedCatGate"
FUSION_CODES = {"algorithm1": 0, "eq1": 1}
GATE_OP = f"{DOMAIN}::{GATE_OP_TYPE}"  # as the sidecar's custom_ops lists it

# The compiled ONNX Runtime operator library (C++, ``plugins/cpp``) that runs both nodes on the CPU.
ORT_OPS_LIBRARY = "libcat_deploy_ort_ops.so"

# CAT's Gaussian pre-filter before GMP (the ``gmp_filter`` option and node attribute), and the
# code of each in the Triton kernels (a compile-time constant there).
GMP_FILTERS = ("paper", "2d", "none")
GMP_FILTER_CODES = {"none": 0, "paper": 1, "2d": 2}

# GEP formulations a CAT module can run (``gep`` option; recorded in the sidecar).
GEP_FORMULATIONS = ("reference", "stable", "plugin")


def graph_custom_ops(graph) -> list[str]:
    """``"domain::op_type"`` of the nodes of an ONNX ``GraphProto`` in our custom domain, sorted, each once."""
    return sorted({f"{n.domain}::{n.op_type}" for n in graph.node if n.domain == DOMAIN})
