"""Mixed precision for strongly typed TensorRT: the ONNX graph itself says which nodes run in FP16.

TensorRT 11 builds only strongly typed networks (every tensor keeps the dtype the
ONNX declares; ``BuilderFlag.FP16`` is gone), so ``--precision fp16`` means an ONNX
file that is already mixed precision. This pass converts the FP32 graph with
ONNX Runtime's float16 converter (``onnxruntime.transformers.float16``), blocking an
explicit FP32 list:

* every node of every CAT module (pooling, GEP exponentials and reductions, min-max
  normalisation, shared MLP, 7x7 conv, sigmoids), except the final re-weighting
  (``F * gate`` and the add that forms the gate, which stay FP16 so no full-size
  FP32 tensor is written): the input is cast up once per module;
* everything under ``/postprocess/`` (decoding, NMS, top-k of ``nms="graph"``);
* any ``Softmax`` and ``Sigmoid`` node elsewhere.

Inputs and outputs stay FP32 (``keep_io_types``). INT8 means explicit Q/DQ nodes
from NVIDIA ModelOpt calibration (TensorRT 11 removed implicit INT8 calibrators).
"""
from __future__ import annotations

import collections
import os
from pathlib import Path
from typing import Sequence

import numpy as np
import onnx
from onnxruntime.transformers.float16 import convert_float_to_float16
from onnxruntime.transformers.onnx_model import OnnxModel

from ..core.files import atomic_write
from ..core.optional import lazy_import
from ..core.sidecar import PRECISIONS

__all__ = ["PRECISIONS", "fp32_keep_list", "convert_fp16", "quantize_int8", "scope_module", "node_module_map"]

modelopt_quantization = lazy_import("modelopt.onnx.quantization", "--precision int8", "or export fp16")
ALWAYS_FP32_OPS = ("Softmax", "Sigmoid", "NonMaxSuppression")
POSTPROCESS_SCOPE = "postprocess"


def scope_module(node_name: str) -> str:
    """Qualified module name of an exported node, from its TorchScript scope name.

    ``/backbone/stages.0/stages.0.2/branch2/branch2.8/Exp_1`` -> ``backbone.stages.0.2.branch2.8``:
    each scope element either starts a new attribute or extends the previous one by an index.
    """
    parts = node_name.strip("/").split("/")[:-1]
    qual: list[str] = []
    prev = ""
    for element in parts:
        if prev and element.startswith(prev + "."):
            qual.extend(element[len(prev) + 1:].split("."))
        else:
            qual.extend(element.split("."))
        prev = element
    return ".".join(qual)


def node_module_map(graph, module_names: Sequence[str]) -> dict[str, str]:
    """Node name -> the module (from ``module_names``) it belongs to, for nodes inside one."""
    out = {}
    for node in graph.node:
        path = scope_module(node.name)
        for m in module_names:
            if path == m or path.startswith(m + "."):
                out[node.name] = m
                break
    return out


def _gating_nodes(graph, nodes_in_module: list) -> set[str]:
    """The module's output node and, through Add/Mul, the full-size gate that feeds it."""
    names = {n.name for n in nodes_in_module}
    producers = {o: n for n in nodes_in_module for o in n.output}
    consumers_outside = set()
    for n in graph.node:
        if n.name in names:
            continue
        consumers_outside.update(n.input)
    graph_outputs = {o.name for o in graph.output}
    outs = [n for n in nodes_in_module if any(o in consumers_outside or o in graph_outputs for o in n.output)]
    keep16 = set()
    for out in outs:
        keep16.add(out.name)
        if out.op_type in ("Mul", "Add"):
            for i in out.input:
                p = producers.get(i)
                if p is not None and p.op_type in ("Add", "Mul"):
                    keep16.add(p.name)
    return keep16


def fp32_keep_list(model, cat_modules: Sequence[str]) -> list[str]:
    """Names of the nodes that stay FP32 in the mixed-precision graph (policy in the module docstring)."""
    graph = model.graph
    owner = node_module_map(graph, cat_modules)
    by_module: dict[str, list] = collections.defaultdict(list)
    for node in graph.node:
        if node.name in owner:
            by_module[owner[node.name]].append(node)
    keep: list[str] = []
    for nodes in by_module.values():
        gating = _gating_nodes(graph, nodes)
        keep += [n.name for n in nodes if n.name not in gating and n.op_type != "Constant"]
    for node in graph.node:
        path = scope_module(node.name)
        if node.op_type in ALWAYS_FP32_OPS or path == POSTPROCESS_SCOPE or path.startswith(POSTPROCESS_SCOPE + "."):
            keep.append(node.name)
    return list(dict.fromkeys(keep))


def _dedupe_casts(model) -> None:
    """The converter adds one identical Cast per FP32 consumer of an FP16 tensor, all with the same
    output name; keep the first of each (they compute the same value) so the graph stays SSA."""
    seen: set[str] = set()
    nodes = []
    for node in model.graph.node:
        if node.op_type == "Cast" and node.output[0] in seen:
            continue
        seen.update(node.output)
        nodes.append(node)
    del model.graph.node[:]
    model.graph.node.extend(nodes)
    infos, names = [], set()
    for vi in model.graph.value_info:
        if vi.name not in names:
            names.add(vi.name)
            infos.append(vi)
    del model.graph.value_info[:]
    model.graph.value_info.extend(infos)


def convert_fp16(src: str | os.PathLike, dst: str | os.PathLike, cat_modules: Sequence[str]) -> dict:
    """Write the mixed-precision version of ``src`` to ``dst``; return the precision report for the sidecar."""
    model = onnx.load(str(src))
    keep = fp32_keep_list(model, cat_modules)
    half = convert_float_to_float16(model, keep_io_types=True, node_block_list=keep, disable_shape_infer=False)
    _dedupe_casts(half)
    OnnxModel(half).topological_sort()  # the converter appends its Cast nodes at the end
    onnx.checker.check_model(half)
    atomic_write(dst, lambda tmp: onnx.save(half, tmp))
    kept_ops = collections.Counter(n.op_type for n in model.graph.node if n.name in set(keep))
    return {
        "precision": "fp16",
        "policy": "CAT modules except the final re-weighting, post-processing, Softmax/Sigmoid stay FP32; "
                  "inputs and outputs FP32",
        "fp32_nodes": keep,
        "fp32_ops": dict(sorted(kept_ops.items())),
        "fp16_nodes": sum(1 for n in half.graph.node if n.op_type != "Cast") - len(keep),
        "casts_inserted": sum(1 for n in half.graph.node if n.op_type == "Cast")
        - sum(1 for n in model.graph.node if n.op_type == "Cast"),
    }


def quantize_int8(src: str | os.PathLike, dst: str | os.PathLike, calibration: np.ndarray,
                  input_name: str = "images") -> dict:
    """Explicit-quantisation INT8 ONNX (Q/DQ nodes) with NVIDIA ModelOpt, calibrated on ``calibration`` [N, 3, H, W]."""
    modelopt_quantization.quantize(onnx_path=str(src), quantize_mode="int8", calibration_data={input_name: calibration},
             output_path=str(dst), calibration_method="entropy")
    return {"precision": "int8", "policy": "ModelOpt explicit Q/DQ, entropy calibration",
            "calibration_images": int(calibration.shape[0]), "output": str(Path(dst).name)}
