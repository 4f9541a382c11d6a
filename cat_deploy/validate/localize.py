"""Localise a parity failure to the first CAT module whose output diverges (``export.py --per-module``).

The artefact itself is inspected, not a fresh export: each CAT module's output
tensor is found in the ONNX graph by its scope name and marked as an extra graph
output (as Polygraphy's ``--onnx-outputs mark all`` does); ONNX Runtime then
returns them beside the normal outputs, and each is compared with the PyTorch
module's output captured by a forward hook, in forward order.
"""
from __future__ import annotations

import os
from typing import Any, Sequence

import numpy as np
import onnx
import torch
import torch.nn as nn

from ..export.precision import node_module_map
from ..runtime.runners import OnnxRuntimeRunner
from .parity import Tolerance, _stats

__all__ = ["module_outputs", "localize"]


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


def localize(onnx_path: str | os.PathLike, module: nn.Module, images: np.ndarray, tol: Tolerance,
             module_names: Sequence[str], device: str = "cpu") -> dict[str, Any]:
    """Compare every CAT module's output between the ONNX artefact and PyTorch on ``images`` [B, 3, H, W].

    Returns ``{"modules": [{"module", "tensor", max_abs, cosine, passed, ...}, ...],
    "first_divergent": name or None}`` in forward order.
    """
    model = onnx.load(str(onnx_path))
    tensors = module_outputs(model.graph, module_names)
    missing = [m for m in module_names if m not in tensors]
    existing = {o.name for o in model.graph.output}
    for m, t in tensors.items():
        if t not in existing:
            model.graph.output.append(onnx.helper.make_empty_tensor_value_info(t))

    captured: dict[str, np.ndarray] = {}
    order: list[str] = []
    named = dict(module.named_modules())
    hooks = []
    for m in tensors:
        def hook(_mod, _inp, out, name=m):
            captured[name] = out.detach().float().cpu().numpy()
            order.append(name)
        target = named.get(m)
        if target is None:  # deploy wrappers prefix the model with "model."
            target = named.get(f"model.{m}")
        hooks.append(target.register_forward_hook(hook))
    try:
        with torch.no_grad():
            module.eval()(torch.from_numpy(images))
    finally:
        for h in hooks:
            h.remove()

    with OnnxRuntimeRunner(onnx_path, device=device, model_bytes=model.SerializeToString()) as runner:
        ort_out = runner.session.run(list(tensors.values()), {runner.input_names[0]: images})
    by_tensor = dict(zip(tensors.values(), ort_out))

    rows = []
    first = None
    for m in order:
        s = _stats(captured[m], by_tensor[tensors[m]].astype(np.float32), tol)
        rows.append({"module": m, "tensor": tensors[m], **s})
        if not s["passed"] and first is None:
            first = m
    return {"modules": rows, "first_divergent": first, "not_found": missing}
