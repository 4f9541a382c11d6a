"""Localise a parity failure to the first CAT module that diverges (``export.py --per-module``).

The artefact itself is inspected, not a fresh export: each CAT module's output tensor
and its pooled statistics (the channel ``[B, 3, C]`` and spatial ``[B, 3, H, W]`` stacks of
GAP, GMP, GEP, or the two outputs of the fused pooling node) are found in the ONNX graph
by their scope name and marked as extra graph outputs (as Polygraphy's ``--onnx-outputs
mark all`` does); ONNX Runtime returns them beside the normal outputs, and each is compared
with what the PyTorch module computed (a forward hook for the output, a wrapper of
``CAT.pool`` for the statistics), in forward order. Comparing the statistics names faults
inside the pooling (a filter, an FP16 reduction) that barely move a module's output.
"""
from __future__ import annotations

import contextlib
import os
from typing import Any, Sequence

import numpy as np
import torch
import torch.nn as nn

from ..export.precision import node_module_map
from ..runtime.runners import OnnxRuntimeRunner
from .parity import Tolerance, _stats

__all__ = ["module_outputs", "module_statistics", "localize", "STATISTICS"]

STATISTICS = ("channel_avg", "channel_max", "channel_ent", "spatial_avg", "spatial_max", "spatial_ent")


def module_outputs(graph, module_names: Sequence[str]) -> dict[str, str]:
    """Module name -> name of the tensor it outputs in ``graph`` (consumed outside its scope)."""
    owner = node_module_map(graph, module_names)
    consumed_by: dict[str, set[str]] = {}
    for node in graph.node:
        for i in node.input:
            consumed_by.setdefault(i, set()).add(owner.get(node.name, ""))
    graph_outputs = {o.name for o in graph.output}
    found: dict[str, str] = {}
    for node in graph.node:
        m = owner.get(node.name)
        if m is None:
            continue
        for o in node.output:
            if o in graph_outputs or any(c != m for c in consumed_by.get(o, ())):
                found[m] = o
    return found


def module_statistics(graph, module_names: Sequence[str]) -> dict[str, list[str]]:
    """Module name -> candidate tensors of its pooled statistics.

    Stable and reference GEP: outputs of three-input ``Concat`` nodes (the stacks of GAP, GMP and
    GEP, and in dynamic graphs some shape arithmetic, told apart at run time by dtype and shape);
    ``gep="plugin"``: the outputs of the ``FusedCatPool`` node.
    """
    owner = node_module_map(graph, module_names)
    found: dict[str, list[str]] = {}
    for node in graph.node:
        m = owner.get(node.name)
        if m is not None and ((node.op_type == "Concat" and len(node.input) == 3) or node.op_type == "FusedCatPool"):
            found.setdefault(m, []).extend(node.output)
    return found


def _pooled(arrays: list[np.ndarray]) -> list[np.ndarray] | None:
    """The channel [B, 3, C] and spatial [B, 3, H, W] statistics among ``arrays``; None unless exactly one each."""
    stats = [a for a in arrays if a.dtype.kind == "f" and a.ndim in (3, 4) and a.shape[1] == 3]
    ranks = sorted(a.ndim for a in stats)
    return sorted(stats, key=np.ndim) if ranks == [3, 4] else None


@contextlib.contextmanager
def _captured(module: nn.Module, names: Sequence[str]):
    """Record each named CAT module's output and pooled statistics during a forward of ``module``."""
    named = dict(module.named_modules())
    outputs: dict[str, np.ndarray] = {}
    statistics: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    order: list[str] = []
    hooks, wrapped = [], []
    for name in names:
        target = named.get(name, named.get(f"model.{name}"))  # deploy wrappers prefix the model with "model."

        def hook(_mod, _inp, out, name=name):
            outputs[name] = out.detach().float().cpu().numpy()
            order.append(name)

        def pool(x, name=name, orig=target.pool):
            channel, spatial = orig(x)
            statistics[name] = (channel.detach().float().cpu().numpy(), spatial.detach().float().cpu().numpy())
            return channel, spatial

        hooks.append(target.register_forward_hook(hook))
        target.pool = pool
        wrapped.append(target)
    try:
        yield outputs, statistics, order
    finally:
        for h in hooks:
            h.remove()
        for target in wrapped:
            del target.pool  # back to the class method


def _compare_statistics(ref: tuple[np.ndarray, np.ndarray], got: list[np.ndarray], tol: Tolerance) -> dict[str, Any]:
    channel, spatial = got
    pairs = [(ref[0][:, i], channel[:, i]) for i in range(3)] + [(ref[1][:, i], spatial[:, i]) for i in range(3)]
    return {name: _stats(r, o.astype(np.float32), tol) for name, (r, o) in zip(STATISTICS, pairs)}


def _row(module: str, tensor: str, ref_out: np.ndarray, out: np.ndarray, stats_ref, stats_out, tol) -> dict[str, Any]:
    row = {"module": module, "tensor": tensor, **_stats(ref_out, out.astype(np.float32), tol)}
    failures = [f"output: {row['reason']}"] if not row["passed"] else []
    if stats_ref is not None and stats_out is not None:
        row["statistics"] = _compare_statistics(stats_ref, stats_out, tol)
        failures += [f"{k}: {s['reason']}" for k, s in row["statistics"].items() if not s["passed"]]
    row["passed"] = not failures
    if failures:
        row["reason"] = "; ".join(failures)
    return row


def localize(onnx_path: str | os.PathLike, module: nn.Module, images: np.ndarray, tol: Tolerance,
             module_names: Sequence[str], device: str = "cpu") -> dict[str, Any]:
    """Compare every CAT module's output and pooled statistics between the ONNX artefact and PyTorch.

    ``images`` [B, 3, H, W]. Returns ``{"modules": [{"module", "tensor", max_abs, cosine, passed,
    "statistics": {name: stats}, ...}, ...], "first_divergent": name or None, "not_found": [...]}``
    in forward order.
    """
    import onnx

    model = onnx.load(str(onnx_path))
    tensors = module_outputs(model.graph, module_names)
    stat_tensors = module_statistics(model.graph, list(tensors))
    missing = [m for m in module_names if m not in tensors]
    existing = {o.name for o in model.graph.output}
    wanted = list(dict.fromkeys([*tensors.values(), *(t for ts in stat_tensors.values() for t in ts)]))
    for t in wanted:
        if t not in existing:
            model.graph.output.append(onnx.helper.make_empty_tensor_value_info(t))

    with _captured(module, list(tensors)) as (captured, pooled, order):
        with torch.no_grad():
            module.eval()(torch.from_numpy(images))
    with OnnxRuntimeRunner(onnx_path, device=device, model_bytes=model.SerializeToString()) as runner:
        by_tensor = dict(zip(wanted, runner.session.run(wanted, {runner.input_names[0]: images})))

    rows = []
    for m in order:
        got_stats = _pooled([by_tensor[t] for t in stat_tensors.get(m, [])])
        rows.append(_row(m, tensors[m], captured[m], by_tensor[tensors[m]], pooled.get(m), got_stats, tol))
    first = next((r["module"] for r in rows if not r["passed"]), None)
    return {"modules": rows, "first_divergent": first, "not_found": missing}
