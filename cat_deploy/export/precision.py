"""Mixed precision and INT8 for strongly typed TensorRT: the ONNX graph itself says which nodes run in FP16/INT8.

TensorRT 11 builds only strongly typed networks (every tensor keeps the dtype the ONNX
declares; ``BuilderFlag.FP16`` and the INT8 calibrators are gone), so ``--precision fp16``
means an ONNX file that is already mixed precision and ``--precision int8`` one with explicit
Q/DQ nodes. Both are made with NVIDIA ModelOpt (``pip install 'cat-deploy[quant]'``), the
route NVIDIA documents for TensorRT 11:

* FP16: ``modelopt.onnx.autocast.convert_to_mixed_precision`` (``keep_io_types=True``). It casts
  once at each FP32/FP16 boundary, so no value makes an FP32 -> FP16 -> FP32 round trip
  between FP32 nodes (:func:`cast_round_trips`; ONNX Runtime's float16 converter, used before,
  left about a thousand such lossy pairs in the demo detector).
* INT8: ``modelopt.onnx.quantization.quantize`` (explicit Q/DQ, ``max`` calibration on
  ONNX Runtime's CPU provider, INT8 weights stored as DQ-only, everything not quantized FP32).

Both keep the same nodes out of low precision (:func:`fp32_keep_list`), by node name and
op type:

* every node of every CAT module (pooling, GEP exponentials and reductions, min-max
  normalisation, shared MLP, 7x7 conv, sigmoids), except the final re-weighting
  (``F * gate`` and the add that forms the gate, which stay FP16 so no full-size
  FP32 tensor is written): the input is cast up once per module. A fused gate node
  (``FusedCatGate``, ``--fuse-gate``) stays FP32 with its module: its ONNX Runtime twin takes
  FP32 only, and its logits come from FP32 nodes;
* everything under ``/postprocess/`` (decoding, NMS, top-k of ``nms="graph"``);
* any ``Softmax``, ``Sigmoid`` and ``NonMaxSuppression`` node elsewhere;
* INT8 only: CAT's final re-weighting too (a Q/DQ pair there would round the feature map
  that CAT's pooling reads), and the layers that read the network input or whose result
  reaches a network output through data movement alone (stem and prediction convolutions).
"""
from __future__ import annotations

import collections
import contextlib
import importlib.util
import io
import logging
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Sequence

import numpy as np
import onnx

from ..core.files import atomic_write
from ..core.plugin_ids import DOMAIN, GATE_OP_TYPE, OP_TYPE
from ..core.sidecar import PRECISIONS

__all__ = ["PRECISIONS", "PrecisionError", "MODELOPT_HINT", "fp32_keep_list", "edge_layers", "convert_fp16",
           "quantize_int8", "cast_round_trips", "scope_module", "node_module_map"]

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
    outs = [n for n in nodes_in_module if any(o in consumers_outside or o in graph_outputs for o in n.output)
            and n.op_type != GATE_OP_TYPE]
    keep16 = set()
    for out in outs:
        keep16.add(out.name)
        if out.op_type in ("Mul", "Add"):
            for i in out.input:
                p = producers.get(i)
                if p is not None and p.op_type in ("Add", "Mul"):
                    keep16.add(p.name)
    return keep16


def fp32_keep_list(model, cat_modules: Sequence[str], reweighting: bool = False) -> list[str]:
    """Names of the nodes that stay FP32 (policy in the module docstring).

    ``reweighting=True`` also keeps each CAT module's final re-weighting (``F * gate``): INT8
    needs it, since quantizing that Mul would put one Q/DQ pair on ``F``, which CAT's pooling
    reads too.
    """
    graph = model.graph
    owner = node_module_map(graph, cat_modules)
    by_module: dict[str, list] = collections.defaultdict(list)
    for node in graph.node:
        if node.name in owner:
            by_module[owner[node.name]].append(node)
    keep: list[str] = []
    for nodes in by_module.values():
        gating = _gating_nodes(graph, nodes)
        keep += [n.name for n in nodes if (reweighting or n.name not in gating) and n.op_type != "Constant"]
    for node in graph.node:
        path = scope_module(node.name)
        if node.op_type in ALWAYS_FP32_OPS or path == POSTPROCESS_SCOPE or path.startswith(POSTPROCESS_SCOPE + "."):
            keep.append(node.name)
    return list(dict.fromkeys(keep))


class PrecisionError(RuntimeError):
    """FP16/INT8 conversion cannot run; the message says what to install or do instead.

    ``code`` is export.py's exit status: 3 for a missing dependency, 4 when ModelOpt itself failed.
    """

    def __init__(self, message: str, code: int = 3):
        super().__init__(message)
        self.code = code


MODELOPT_HINT = ("--precision {p} needs NVIDIA ModelOpt: pip install 'cat-deploy[quant]' "
                 "(nvidia-modelopt without its [onnx] pins, plus onnx-graphsurgeon, onnxconverter-common, ml_dtypes, "
                 "lief, cppimport), or export fp32")
MOVEMENT_OPS = ("Reshape", "Transpose", "Flatten", "Squeeze", "Unsqueeze", "Identity", "Concat", "Slice", "Gather",
                "Split", "Expand", "Tile")
COMPUTE_OPS = ("Conv", "ConvTranspose", "MatMul", "Gemm")


def _require_modelopt(precision: str):
    try:
        import modelopt.onnx  # noqa: F401
    except ImportError as e:
        raise PrecisionError(MODELOPT_HINT.format(p=precision) + f" [{e}]") from None
    import modelopt

    return modelopt


def _name_pattern(names: Sequence[str]) -> list[str]:
    """One anchored regex for a list of node names (ModelOpt tries every pattern on every node)."""
    return ["^(?:" + "|".join(re.escape(n) for n in names) + ")$"] if names else []


def _check_plugin(model, precision: str) -> None:
    has_plugin = any(n.op_type in (OP_TYPE, GATE_OP_TYPE) and n.domain == DOMAIN for n in model.graph.node)
    if has_plugin and importlib.util.find_spec("tensorrt") is None:
        raise PrecisionError(f"--precision {precision} with --gep plugin or --fuse-gate needs TensorRT on this machine "
                             "(ModelOpt types custom nodes with TensorRT); export fp32, or without these options")


def _restore_plugin_domain(model) -> None:
    """ModelOpt moves custom nodes to its TensorRT plugin domain; the nodes keep ours (ONNX Runtime, parser)."""
    for node in model.graph.node:
        if node.op_type in (OP_TYPE, GATE_OP_TYPE):
            node.domain = DOMAIN


@contextlib.contextmanager
def _quiet(precision: str):
    """Silence ModelOpt's and ONNX Runtime's progress output; a failure becomes one line with its last message."""
    from modelopt.onnx.logging_config import configure_logging

    buf = io.StringIO()
    try:
        with contextlib.redirect_stdout(buf), contextlib.redirect_stderr(buf):
            configure_logging(logging.WARNING)  # its handler writes to the sys.stdout of the moment: buf
            yield
    except PrecisionError:
        raise
    except Exception as e:
        last = (str(e).strip().splitlines() or [type(e).__name__])[-1][:300]
        raise PrecisionError(f"ModelOpt {precision} conversion failed: {last}", code=4) from None
    finally:
        configure_logging(logging.WARNING)


def _float_types(model) -> dict[str, int]:
    inferred = onnx.shape_inference.infer_shapes(model)
    g = inferred.graph
    return {v.name: v.type.tensor_type.elem_type for v in list(g.value_info) + list(g.input) + list(g.output)}


def cast_round_trips(model) -> list[tuple[str, str]]:
    """``(cast_to_fp16, cast_to_fp32)`` node pairs through which an FP32 value goes to FP16 and back.

    Only data movement (reshape, transpose, slicing, concatenation...) may lie between the two
    casts: the value is not computed in FP16, it just loses precision (and overflows past 65504).
    """
    consumers: dict[str, list] = collections.defaultdict(list)
    for node in model.graph.node:
        for i in node.input:
            consumers[i].append(node)
    to = {n.name: next((a.i for a in n.attribute if a.name == "to"), None) for n in model.graph.node if n.op_type == "Cast"}
    pairs = []
    for node in model.graph.node:
        if node.op_type != "Cast" or to[node.name] != onnx.TensorProto.FLOAT16:
            continue
        stack, seen = list(node.output), set()
        while stack:
            value = stack.pop()
            for c in consumers.get(value, []):
                if c.name in seen:
                    continue
                seen.add(c.name)
                if c.op_type == "Cast" and to[c.name] == onnx.TensorProto.FLOAT:
                    pairs.append((node.name, c.name))
                elif c.op_type in MOVEMENT_OPS:
                    stack.extend(c.output)
    return pairs


def convert_fp16(src: str | os.PathLike, dst: str | os.PathLike, cat_modules: Sequence[str]) -> dict:
    """Write the mixed-precision version of ``src`` to ``dst`` (ModelOpt AutoCast); return the sidecar's precision report."""
    modelopt = _require_modelopt("fp16")
    model = onnx.load(str(src))
    _check_plugin(model, "fp16")
    keep = fp32_keep_list(model, cat_modules)
    from modelopt.onnx.autocast import convert_to_mixed_precision

    with _quiet("fp16"):
        half = convert_to_mixed_precision(onnx_path=str(src), low_precision_type="fp16",
                                          nodes_to_exclude=_name_pattern(keep), op_types_to_exclude=list(ALWAYS_FP32_OPS),
                                          keep_io_types=True)
    _restore_plugin_domain(half)
    onnx.checker.check_model(half)
    atomic_write(dst, lambda tmp: onnx.save(half, tmp))
    types = _float_types(half)
    fp16_nodes = sum(1 for n in half.graph.node if n.op_type != "Cast"
                     and any(types.get(o) == onnx.TensorProto.FLOAT16 for o in n.output))
    casts = sum(1 for n in half.graph.node if n.op_type == "Cast")
    return {
        "precision": "fp16",
        "tool": f"nvidia-modelopt {modelopt.__version__} AutoCast (convert_to_mixed_precision, keep_io_types)",
        "policy": "CAT modules except the final re-weighting, post-processing, Softmax/Sigmoid/NMS stay FP32; "
                  "inputs and outputs FP32",
        "fp32_nodes": keep,
        "fp32_ops": dict(sorted(collections.Counter(n.op_type for n in model.graph.node if n.name in set(keep)).items())),
        "fp16_nodes": fp16_nodes,
        "casts": casts,
        "casts_inserted": casts - sum(1 for n in model.graph.node if n.op_type == "Cast"),
        "cast_round_trips": len(cast_round_trips(half)),
    }


def edge_layers(model) -> list[str]:
    """Compute nodes that read a graph input, or whose output reaches a graph output through data movement only."""
    graph = model.graph
    inputs = {i.name for i in graph.input}
    producer = {o: n for n in graph.node for o in n.output}
    edge = [n.name for n in graph.node if n.op_type in COMPUTE_OPS and inputs & set(n.input)]
    stack, seen = [o.name for o in graph.output], set()
    while stack:
        node = producer.get(stack.pop())
        if node is None or node.name in seen:
            continue
        seen.add(node.name)
        if node.op_type in COMPUTE_OPS:
            edge.append(node.name)
        elif node.op_type in MOVEMENT_OPS:
            stack.extend(node.input)
    return list(dict.fromkeys(edge))


def quantize_int8(src: str | os.PathLike, dst: str | os.PathLike, calibration: np.ndarray, cat_modules: Sequence[str],
                  input_name: str = "images") -> dict:
    """Explicit-quantisation INT8 ONNX (Q/DQ) with ModelOpt, calibrated on ``calibration`` [N, 3, H, W] (float32).

    CAT modules, post-processing and the edge layers (:func:`edge_layers`) are excluded from
    quantisation; every node that is not quantized stays FP32.
    """
    modelopt = _require_modelopt("int8")
    model = onnx.load(str(src))
    _check_plugin(model, "int8")
    keep, edge = fp32_keep_list(model, cat_modules, reweighting=True), edge_layers(model)
    from modelopt.onnx.quantization import quantize

    with tempfile.TemporaryDirectory(prefix="cat-deploy-int8-") as tmp:  # ModelOpt writes files beside its input
        work = Path(tmp) / "model.onnx"
        shutil.copyfile(src, work)
        with _quiet("int8"):
            quantize(onnx_path=str(work), quantize_mode="int8", calibration_data={input_name: calibration},
                     calibration_method="max", calibration_eps=["cpu"], nodes_to_exclude=_name_pattern(keep + edge),
                     op_types_to_exclude=list(ALWAYS_FP32_OPS), high_precision_dtype="fp32", dq_only=True,
                     output_path=str(Path(tmp) / "int8.onnx"), log_level="WARNING")
        q = onnx.load(str(Path(tmp) / "int8.onnx"))
    _restore_plugin_domain(q)
    atomic_write(dst, lambda t: onnx.save(q, t))
    ops = collections.Counter(n.op_type for n in q.graph.node)
    return {
        "precision": "int8",
        "tool": f"nvidia-modelopt {modelopt.__version__} quantize (int8, explicit Q/DQ, max calibration, ONNX Runtime CPU)",
        "policy": "INT8 Q/DQ as ModelOpt places them, except whole CAT modules (their input stays unquantized), "
                  "post-processing, Softmax/Sigmoid/NMS and edge layers; everything else FP32; inputs and outputs FP32",
        "calibration_images": int(calibration.shape[0]),
        "fp32_nodes": keep + edge,
        "quantize_linear": ops.get("QuantizeLinear", 0),
        "dequantize_linear": ops.get("DequantizeLinear", 0),
    }
