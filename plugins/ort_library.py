"""ONNX Runtime session options for graphs with the fused CAT nodes (``FusedCatPool``, ``FusedCatGate``).

The compiled operator library (``plugins/cpp``, built by ``python -m cat_deploy.plugins.build`` into
``plugins/lib``) runs both nodes on the CPU; this module finds it and registers it. It imports neither
PyTorch nor the onnx package, so the deployment runtime (``cat-deploy[runtime]``) uses it as it is.
Without the library, a graph that holds a fused node falls back to the Python twin
(:mod:`cat_deploy.plugins.cat_pool_ort`, which needs PyTorch and onnxruntime-extensions).

Example::

    options, ops = fused_session_options("out/cat.onnx")       # ops: "compiled", "twin" or None
    session = onnxruntime.InferenceSession("out/cat.onnx", sess_options=options)
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Optional, Union

from cat_deploy.core.errors import MissingDependency, PluginUnavailable
from cat_deploy.core.optional import lazy_import
from cat_deploy.core.plugin_ids import DOMAIN, GATE_OP_TYPE, OP_TYPE, ORT_OPS_LIBRARY

__all__ = ["ENV", "BUILD_HINT", "library_path", "mentions_fused_nodes", "fused_session_options"]

ENV = "CAT_DEPLOY_ORT_OPS"  # path of the library, overriding the built one
BUILD_HINT = "build it: python -m cat_deploy.plugins.build (or bash scripts/setup.sh)"

ort = lazy_import("onnxruntime", "running an ONNX file")
cat_pool_ort = lazy_import("cat_deploy.plugins.cat_pool_ort", "the Python twin of the fused CAT pooling node",
                           BUILD_HINT)


def library_path() -> Optional[Path]:
    """The compiled operator library: ``$CAT_DEPLOY_ORT_OPS``, else ``lib/libcat_deploy_ort_ops.so`` next to
    this module (where the build writes it); None when it is not built.

    Raises :class:`PluginUnavailable` when ``$CAT_DEPLOY_ORT_OPS`` names no file.
    """
    override = os.environ.get(ENV)
    if override:
        if not Path(override).is_file():
            raise PluginUnavailable(f"{ENV}='{override}' is not a file: unset it, or {BUILD_HINT}")
        return Path(override)
    built = Path(__file__).resolve().parent / "lib" / ORT_OPS_LIBRARY
    return built if built.is_file() else None


def mentions_fused_nodes(model: Union[str, os.PathLike, bytes]) -> bool:
    """Whether a serialized ONNX graph (bytes, or the path of one) names a fused node's op type and its domain.

    A byte search, not a parse (no onnx package): a graph with such a node always contains both strings,
    so a miss is certain; a hit without the node only registers a library that is then unused.
    A file that cannot be read gives False: ONNX Runtime reports it.
    """
    if not isinstance(model, bytes):
        try:
            model = Path(model).read_bytes()
        except OSError:
            return False
    return DOMAIN.encode() in model and (OP_TYPE.encode() in model or GATE_OP_TYPE.encode() in model)


def fused_session_options(model: Union[str, os.PathLike, bytes], options=None, plugin: Optional[bool] = None):
    """``(options, ops)``: ``options`` (or new SessionOptions) able to run the fused CAT nodes, and which
    implementation runs them: ``"compiled"`` (the C++ library), ``"twin"`` (the Python twin) or None.

    ``plugin`` says whether the graph holds a fused node (the sidecar's ``gep == "plugin"``); None looks
    for one in ``model`` (:func:`mentions_fused_nodes`). The compiled library, when built, is registered for
    such graphs; without it the twin is, and without PyTorch or onnxruntime-extensions this raises
    :class:`PluginUnavailable` saying how to build the library. Graphs without fused nodes get ``options``
    unchanged (possibly None).
    """
    if not (mentions_fused_nodes(model) if plugin is None else plugin):
        return options, None
    library = library_path()
    if library is not None:
        options = options or ort.SessionOptions()
        options.register_custom_ops_library(str(library))
        return options, "compiled"
    try:
        return cat_pool_ort.twin_session_options(options), "twin"
    except MissingDependency as e:
        raise PluginUnavailable(f"ONNX Runtime needs the compiled operator library {ORT_OPS_LIBRARY} for the fused "
                                f"CAT nodes of this graph, and it is not built: {BUILD_HINT} "
                                f"(the Python fallback cannot run: {e})") from None
