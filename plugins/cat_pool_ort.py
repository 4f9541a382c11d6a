"""The ONNX Runtime CPU twins of the fused CAT nodes (``FusedCatPool``, ``FusedCatGate``; domain ``ai.onnx.contrib``).

ONNX Runtime runs each node through an onnxruntime-extensions Python operator that computes
the function PyTorch runs, in FP32 on the CPU: :func:`cat_deploy.layers.pooling.cat_pool`
(``gep="stable"``) for ``FusedCatPool`` (``export.py --gep plugin``) and
:func:`cat_deploy.layers.fused.cat_gate` for ``FusedCatGate`` (``export.py --fuse-gate``).
So the graph surgery around the nodes can be checked without a GPU or the compiled library
(``libcat_deploy_ort_ops.so``), but the twins are a convenience, not independent evidence for
any kernel (``docs/plugin.md``); they call PyTorch and copy through Python, so never time them.

:func:`twin_session_options` registers both; ``cat_deploy.plugins.ort_library`` calls it for a graph with
either node when the compiled library is not built (through ``cat_deploy.core.optional``, as this module
needs PyTorch).
"""
from __future__ import annotations

import os
from typing import TYPE_CHECKING, Union

import onnxruntime as ort
import torch

from cat_deploy.core.errors import MissingDependency, PluginUnavailable
from cat_deploy.core.optional import lazy_import
from cat_deploy.core.plugin_ids import (DOMAIN, FUSION_CODES, GATE_OP, GATE_OP_TYPE, GMP_FILTER_CODES, OP_TYPE,
                                        graph_custom_ops)
from cat_deploy.layers.fused import cat_gate
from cat_deploy.layers.pooling import cat_pool

if TYPE_CHECKING:
    import onnx as onnx_types

__all__ = ["ORT_HINT", "graph_has_plugin", "gmp_filter_name", "fusion_name", "register_ort_twin", "twin_session_options"]

ORT_HINT = ("ONNX Runtime needs onnxruntime-extensions to run the fused CAT nodes (--gep plugin, --fuse-gate): "
            "pip install 'cat-deploy[plugin]' (or export with --gep stable and without --fuse-gate)")

onnx = lazy_import("onnx", "reading the ONNX graph")
ortx = lazy_import("onnxruntime_extensions", "the fused CAT nodes on ONNX Runtime",
                   "or export with --gep stable and without --fuse-gate")

_ORT_TWIN_REGISTERED = False


def graph_has_plugin(model: Union[str, os.PathLike, bytes, "onnx_types.ModelProto"]) -> bool:
    """Whether an ONNX model (path, bytes or ModelProto) contains a ``FusedCatPool`` or ``FusedCatGate`` node.

    A file that cannot be read or parsed gives ``False``: the caller's loader reports it.
    """
    try:
        if isinstance(model, (str, os.PathLike)):
            model = onnx.load(str(model), load_external_data=False)
        elif isinstance(model, bytes):
            model = onnx.load_from_string(model)
    except MissingDependency:
        raise
    except Exception:  # missing file, not ONNX: ONNX Runtime gives the error message
        return False
    return bool({f"{DOMAIN}::{OP_TYPE}", GATE_OP} & set(graph_custom_ops(model.graph)))


def gmp_filter_name(value) -> str:
    """Filter name of a node's ``gmp_filter`` attribute: an INT code, or a string (trailing NULs stripped)."""
    names = {code: name for name, code in GMP_FILTER_CODES.items()}
    if isinstance(value, (str, bytes)):
        name = (value.decode(errors="replace") if isinstance(value, bytes) else value).rstrip("\x00")
        if name in GMP_FILTER_CODES:
            return name
    elif int(value) in names:
        return names[int(value)]
    raise ValueError(f"FusedCatPool: gmp_filter must be one of {names} (INT attribute), got {value!r}")


def fusion_name(value) -> str:
    """Fusion name of a ``FusedCatGate`` node's ``fusion`` attribute (an INT code of ``FUSION_CODES``)."""
    names = {code: name for name, code in FUSION_CODES.items()}
    if int(value) not in names:
        raise ValueError(f"FusedCatGate: fusion must be one of {names} (INT attribute), got {value!r}")
    return names[int(value)]


def register_ort_twin() -> None:
    """Register the ONNX Runtime Python operators for ``ai.onnx.contrib::FusedCatPool`` and
    ``ai.onnx.contrib::FusedCatGate`` (idempotent)."""
    global _ORT_TWIN_REGISTERED
    if _ORT_TWIN_REGISTERED:
        return
    try:
        f32, s, i64 = ortx.PyCustomOpDef.dt_float, ortx.PyCustomOpDef.dt_string, ortx.PyCustomOpDef.dt_int64
    except MissingDependency:
        raise PluginUnavailable(ORT_HINT) from None

    @ortx.onnx_op(op_type=OP_TYPE, inputs=[f32, f32], outputs=[f32, f32],
                  attrs={"gmp_filter": i64, "plugin_namespace": s, "aot": i64})
    def _fused_cat_pool(x, taps, gmp_filter=GMP_FILTER_CODES["paper"], **_):
        with torch.no_grad():
            channel, spatial = cat_pool(torch.from_numpy(x), torch.from_numpy(taps), gmp_filter_name(gmp_filter),
                                        "stable")
        return channel.numpy(), spatial.numpy()

    @ortx.onnx_op(op_type=GATE_OP_TYPE, inputs=[f32, f32, f32, f32], outputs=[f32], attrs={"fusion": i64})
    def _fused_cat_gate(x, channel_logits, spatial_logits, exterior, fusion=FUSION_CODES["algorithm1"]):
        with torch.no_grad():
            y = cat_gate(torch.from_numpy(x), torch.from_numpy(channel_logits), torch.from_numpy(spatial_logits),
                         torch.from_numpy(exterior), fusion_name(fusion))
        return y.numpy()

    _ORT_TWIN_REGISTERED = True


def twin_session_options(options=None):
    """``options`` (or new SessionOptions) with the twin registered, whatever the graph holds."""
    register_ort_twin()
    options = options or ort.SessionOptions()
    options.register_custom_ops_library(ortx.get_library_path())
    return options
