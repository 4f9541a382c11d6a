"""The fused CAT pooling operator for export (``gep="plugin"``).

With ``gep="plugin"`` each CAT module's six pooled statistics come from one custom ONNX
node instead of 33 standard ones (blurs, reductions, exponentials, logs):

    channel, spatial = FusedCatPool(x, taps)        # domain ai.onnx.contrib
    x        (Tensor[B, C, H, W])   feature map
    taps     (Tensor[C, k])         Gaussian taps of the GMP pre-filter (row c filters channel c)
    channel  (Tensor[B, 3, C])      GAP, GMP, GEP over H*W      } exactly cat_pool(x, taps, gmp_filter),
    spatial  (Tensor[B, 3, H, W])   GAP, GMP, GEP over C        } before min-max normalisation
    attributes: gmp_filter (int: 0 none, 1 paper, 2 2d), plugin_namespace="cat_deploy" (string), aot=1 (int)

One node serves both backends (``docs/plugin.md``):

* TensorRT's ONNX parser maps it to the plugin ``cat_deploy::FusedCatPool`` (``op_type`` is
  the plugin name, ``plugin_namespace`` its namespace, ``aot=1`` selects the ahead-of-time
  implementation; the parser passes the plugin only the attributes it declares, here
  ``gmp_filter``): ``plugins/cat_pool_trt.py``. ``gmp_filter`` is an INT because the parser
  hands a STRING attribute over with its C terminator counted (``"paper\\0"``).
* ONNX Runtime runs it through an onnxruntime-extensions Python operator (PyOps live in
  domain ``ai.onnx.contrib``) that computes the reference :func:`cat_pool`: the CPU twin
  that lets ``export.py --gep plugin --validate`` check the graph surgery without a GPU.
  :func:`ort_session_options` registers it for a graph that contains the node.

In PyTorch the operator computes ``cat_pool(x, taps, gmp_filter, "stable")``, so a model
with ``gep="plugin"`` gives the same outputs as with ``gep="stable"`` (export-only: no backward).
"""
from __future__ import annotations

import os
from typing import TYPE_CHECKING, Optional, Union

import torch

from ..layers.pooling import GMP_FILTERS, cat_pool

if TYPE_CHECKING:
    import onnx

__all__ = [
    "fused_cat_pool",
    "FusedCatPool",
    "PluginUnavailable",
    "OP_TYPE",
    "DOMAIN",
    "PLUGIN_NAMESPACE",
    "GMP_FILTER_CODES",
    "gmp_filter_name",
    "graph_has_plugin",
    "register_ort_twin",
    "ort_session_options",
]

OP_TYPE = "FusedCatPool"
GMP_FILTER_CODES = {"none": 0, "paper": 1, "2d": 2}  # the INT attribute; same codes as plugins/cat_pool_triton.FILTERS
DOMAIN = "ai.onnx.contrib"  # onnxruntime-extensions' PyOp domain
PLUGIN_NAMESPACE = "cat_deploy"  # TensorRT plugin id: cat_deploy::FusedCatPool

ORT_HINT = ("ONNX Runtime needs onnxruntime-extensions to run the fused CAT pooling node (--gep plugin): "
            "pip install 'cat-deploy[plugin]' (or export with --gep stable)")


class PluginUnavailable(RuntimeError):
    """The fused pooling operator cannot be used here; the message says what to install or use instead."""


class FusedCatPool(torch.autograd.Function):
    """``cat_pool`` in PyTorch, one ``FusedCatPool`` node in ONNX."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, taps: torch.Tensor, gmp_filter: str):
        return cat_pool(x, taps, gmp_filter, "stable")

    @staticmethod
    def symbolic(g, x, taps, gmp_filter: str):
        from torch.onnx import symbolic_helper

        channel, spatial = g.op(f"{DOMAIN}::{OP_TYPE}", x, taps, gmp_filter_i=GMP_FILTER_CODES[gmp_filter],
                                plugin_namespace_s=PLUGIN_NAMESPACE, aot_i=1, outputs=2)
        sizes = symbolic_helper._get_tensor_sizes(x)
        if sizes is not None and len(sizes) == 4:
            b, c, h, w = sizes
            channel.setType(x.type().with_sizes([b, 3, c]))
            spatial.setType(x.type().with_sizes([b, 3, h, w]))
        return channel, spatial

    @staticmethod
    def backward(ctx, *grads):
        raise RuntimeError("gep='plugin' is for export only; train with gep='stable' (same values, differentiable)")


def fused_cat_pool(x: torch.Tensor, taps: Optional[torch.Tensor], gmp_filter: str) -> tuple[torch.Tensor, torch.Tensor]:
    """The six CAT statistics as one exportable operator (``CAT.pool`` with ``gep="plugin"``).

    Args:
        x (Tensor[B, C, H, W]): feature map.
        taps (Tensor[C, k] | Tensor[k] | None): Gaussian taps (``CAT.gmp_taps``); ``None`` only
            with ``gmp_filter="none"``.
        gmp_filter: ``"paper"``, ``"2d"`` or ``"none"``.

    Returns:
        channel (Tensor[B, 3, C]) and spatial (Tensor[B, 3, H, W]), as :func:`cat_pool`.

    Example:
        >>> channel, spatial = fused_cat_pool(feat, cat.gmp_taps, "paper")
    """
    if gmp_filter not in GMP_FILTERS:
        raise ValueError(f"gmp_filter must be one of {GMP_FILTERS}, got {gmp_filter!r}")
    C = x.shape[1]
    if taps is None:
        if gmp_filter != "none":
            raise ValueError(f"gmp_filter={gmp_filter!r} needs Gaussian taps")
        taps = torch.ones(C, 1, dtype=x.dtype, device=x.device)
    if taps.ndim == 1:
        taps = taps.expand(C, -1)
    return FusedCatPool.apply(x, taps.to(dtype=x.dtype, device=x.device), gmp_filter)


# --------------------------------------------------------------------------- ONNX Runtime twin


def gmp_filter_name(value: Union[int, str, bytes]) -> str:
    """Filter name of a node's ``gmp_filter`` attribute: an INT code, or a string (trailing NULs stripped)."""
    names = {code: name for name, code in GMP_FILTER_CODES.items()}
    if isinstance(value, (str, bytes)):
        name = (value.decode(errors="replace") if isinstance(value, bytes) else value).rstrip("\x00")
        if name in GMP_FILTER_CODES:
            return name
    elif int(value) in names:
        return names[int(value)]
    raise ValueError(f"FusedCatPool: gmp_filter must be one of {names} (INT attribute), got {value!r}")

_ORT_TWIN_REGISTERED = False


def graph_has_plugin(model: Union[str, os.PathLike, bytes, "onnx.ModelProto"]) -> bool:
    """Whether an ONNX model (path, bytes or ModelProto) contains a ``FusedCatPool`` node.

    A file that cannot be read or parsed gives ``False``: the caller's loader reports it.
    """
    import onnx

    try:
        if isinstance(model, (str, os.PathLike)):
            model = onnx.load(str(model), load_external_data=False)
        elif isinstance(model, bytes):
            model = onnx.load_from_string(model)
    except Exception:  # missing file, not ONNX: ONNX Runtime gives the error message
        return False
    return any(n.op_type == OP_TYPE and n.domain == DOMAIN for n in model.graph.node)


def register_ort_twin() -> None:
    """Register the ONNX Runtime Python operator for ``ai.onnx.contrib::FusedCatPool`` (idempotent).

    It computes :func:`cat_pool` (``gep="stable"``) in FP32 on the CPU, the same function
    PyTorch runs, so parity checks the exported graph around the node.
    """
    global _ORT_TWIN_REGISTERED
    if _ORT_TWIN_REGISTERED:
        return
    try:
        from onnxruntime_extensions import PyCustomOpDef, onnx_op
    except ImportError:
        raise PluginUnavailable(ORT_HINT) from None

    f32, s, i64 = PyCustomOpDef.dt_float, PyCustomOpDef.dt_string, PyCustomOpDef.dt_int64

    @onnx_op(op_type=OP_TYPE, inputs=[f32, f32], outputs=[f32, f32],
             attrs={"gmp_filter": i64, "plugin_namespace": s, "aot": i64})
    def _fused_cat_pool(x, taps, gmp_filter=GMP_FILTER_CODES["paper"], **_):
        with torch.no_grad():
            channel, spatial = cat_pool(torch.from_numpy(x), torch.from_numpy(taps), gmp_filter_name(gmp_filter),
                                        "stable")
        return channel.numpy(), spatial.numpy()

    _ORT_TWIN_REGISTERED = True


def ort_session_options(model, options=None):
    """``options`` (or new SessionOptions) with the twin's library registered when ``model`` needs it.

    Returns ``options`` unchanged (possibly ``None``) for graphs without the fused node.
    Raises :class:`PluginUnavailable` when the graph has the node and onnxruntime-extensions
    is missing.
    """
    if not graph_has_plugin(model):
        return options
    register_ort_twin()
    import onnxruntime as ort
    from onnxruntime_extensions import get_library_path

    options = options or ort.SessionOptions()
    options.register_custom_ops_library(get_library_path())
    return options
