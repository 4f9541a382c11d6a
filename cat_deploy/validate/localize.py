"""Localise a parity failure to the CAT module that computes something else (``export.py --per-module``).

The artefact itself is inspected, not a fresh export: for each CAT module its input tensor,
its output tensor (the one used outside the module's scope: the last ``Mul``/``Add`` of the gate, or
the ``FusedCatGate`` node's output with ``--fuse-gate``) and its pooled statistics (the channel ``[B, 3, C]`` and spatial
``[B, 3, H, W]`` stacks of GAP, GMP, GEP, or the two outputs of the fused pooling node) are
found in the ONNX graph by their scope name and marked as extra graph outputs (as Polygraphy's
``--onnx-outputs mark all`` does). ONNX Runtime returns them beside the normal outputs; then the
PyTorch CAT module runs on **the input the artefact gave it**, so each comparison sees only that
module's own arithmetic, not the rounding accumulated by every layer before it: a fault is named
where it is, and rounding elsewhere cannot be mistaken for one. Comparing the statistics names
faults inside the pooling (a filter, an FP16 reduction) that barely move a module's output.
"""
from __future__ import annotations

import math
import os
from typing import Any, Optional, Sequence

import numpy as np
import onnx
import torch
import torch.nn as nn

from ..export.precision import node_module_map
from ..runtime.runners import OnnxRuntimeRunner
from .parity import Tolerance, _stats

__all__ = ["module_tensors", "localize", "STATISTICS"]

STATISTICS = ("channel_avg", "channel_max", "channel_ent", "spatial_avg", "spatial_max", "spatial_ent")


def module_tensors(graph, module_names: Sequence[str]) -> dict[str, dict[str, Any]]:
    """Per module: ``output`` (the tensor consumed outside its scope), ``inputs`` (tensors from outside
    it, initializers excluded; the feature map is the one shaped like the output) and ``statistics``
    (candidates: outputs of three-input ``Concat`` nodes, the stacks of GAP, GMP and GEP, plus shape
    arithmetic in dynamic graphs; or of the ``FusedCatPool`` node).
    """
    owner = node_module_map(graph, module_names)
    consumed_by: dict[str, set[str]] = {}
    for node in graph.node:
        for i in node.input:
            consumed_by.setdefault(i, set()).add(owner.get(node.name, ""))
    produced_in = {o: owner.get(n.name) for n in graph.node for o in n.output}
    initializers = {i.name for i in graph.initializer}
    graph_outputs = {o.name for o in graph.output}
    found: dict[str, dict[str, Any]] = {}
    for node in graph.node:
        m = owner.get(node.name)
        if m is None:
            continue
        entry = found.setdefault(m, {"output": None, "inputs": [], "statistics": []})
        for o in node.output:
            if o in graph_outputs or any(c != m for c in consumed_by.get(o, ())):
                entry["output"] = o
        entry["inputs"] += [i for i in node.input if i and i not in initializers and produced_in.get(i) != m
                            and i not in entry["inputs"]]
        if (node.op_type == "Concat" and len(node.input) == 3) or node.op_type == "FusedCatPool":
            entry["statistics"] += list(node.output)
    return {m: e for m, e in found.items() if e["output"] is not None}


def _pooled(arrays: list[np.ndarray]) -> Optional[list[np.ndarray]]:
    """The channel [B, 3, C] and spatial [B, 3, H, W] statistics among ``arrays``; None unless exactly one each."""
    stats = [a for a in arrays if a.dtype.kind == "f" and a.ndim in (3, 4) and a.shape[1] == 3]
    return sorted(stats, key=np.ndim) if sorted(a.ndim for a in stats) == [3, 4] else None


def _run_module(cat: nn.Module, x: np.ndarray) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray]]:
    """PyTorch's output and pooled statistics of one CAT module on ``x`` [B, C, H, W]."""
    captured = {}

    def pool(t, orig=cat.pool):
        captured["stats"] = orig(t)
        return captured["stats"]

    cat.pool = pool
    try:
        with torch.no_grad():
            out = cat(torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)))
    finally:
        del cat.pool  # back to the class method
    return out.float().numpy(), tuple(s.float().numpy() for s in captured["stats"])


def _compare_statistics(x: np.ndarray, ref, got, tol: Tolerance) -> dict[str, Any]:
    """Six statistics, each with atol relative to its natural scale: max |x| for GAP and GMP, log n for GEP."""
    xmax = float(np.abs(x).max())
    scales = (xmax, xmax, math.log(max(2, x.shape[2] * x.shape[3])), xmax, xmax, math.log(max(2, x.shape[1])))
    pairs = [(ref[0][:, i], got[0][:, i]) for i in range(3)] + [(ref[1][:, i], got[1][:, i]) for i in range(3)]
    return {name: _stats(r, o.astype(np.float32), tol, scale)
            for name, (r, o), scale in zip(STATISTICS, pairs, scales)}


def _row(name: str, tensors: dict, x: np.ndarray, out: np.ndarray, stats: Optional[list], cat: nn.Module,
         tol: Tolerance, stats_tol: Tolerance) -> dict[str, Any]:
    ref_out, ref_stats = _run_module(cat, x)
    row = {"module": name, "tensor": tensors["output"], **_stats(ref_out, out.astype(np.float32), tol)}
    failures = [f"output: {row['reason']}"] if not row["passed"] else []
    if stats is not None:
        row["statistics"] = _compare_statistics(x, ref_stats, stats, stats_tol)
        failures += [f"{k}: {s['reason']}" for k, s in row["statistics"].items() if not s["passed"]]
    row["passed"] = not failures
    if failures:
        row["reason"] = "; ".join(failures)
    return row


def localize(onnx_path: str | os.PathLike, module: nn.Module, images: np.ndarray, tol: Tolerance,
             module_names: Sequence[str], device: str = "cpu", stats_tol: Optional[Tolerance] = None) -> dict[str, Any]:
    """Compare every CAT module of the ONNX artefact with PyTorch's, on the input the artefact gave it.

    ``module``: the PyTorch model (or deploy wrapper) holding the CAT modules; ``images`` [B, 3, H, W];
    ``tol`` for module outputs, ``stats_tol`` (default ``tol``) for the pooled statistics. Returns
    ``{"modules": [{"module", "tensor", max_abs, cosine, passed, "statistics": {name: stats}}, ...],
    "first_divergent": name or None, "not_found": [...]}`` in ``module_names`` order.
    """
    model = onnx.load(str(onnx_path))
    tensors = module_tensors(model.graph, module_names)
    wanted = list(dict.fromkeys(t for e in tensors.values() for t in (e["output"], *e["inputs"], *e["statistics"])))
    existing = {o.name for o in model.graph.output}
    for t in wanted:
        if t not in existing:
            model.graph.output.append(onnx.helper.make_empty_tensor_value_info(t))
    with OnnxRuntimeRunner(onnx_path, device=device, model_bytes=model.SerializeToString()) as runner:
        values = dict(zip(wanted, runner.session.run(wanted, {runner.input_names[0]: images})))

    named = dict(module.eval().named_modules())
    rows, missing = [], [m for m in module_names if m not in tensors]
    for name in (m for m in module_names if m in tensors):
        e, out = tensors[name], values[tensors[name]["output"]]
        x = next((values[i] for i in e["inputs"] if values[i].dtype.kind == "f" and values[i].shape == out.shape), None)
        cat = named.get(name, named.get(f"model.{name}"))  # deploy wrappers prefix the model with "model."
        if x is None or cat is None:
            missing.append(name)
            continue
        stats = _pooled([values[t] for t in e["statistics"]])
        rows.append(_row(name, e, x.astype(np.float32), out, stats, cat, tol, stats_tol or tol))
    first = next((r["module"] for r in rows if not r["passed"]), None)
    return {"modules": rows, "first_divergent": first, "not_found": missing}
