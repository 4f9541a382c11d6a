"""TensorRT engine building: the only module of the exporter that imports ``tensorrt``.

Written against the documented TensorRT 10.9+/11.x Python API
(``../shared/TENSORRT_NOTES.md``); NOT YET RUN ON TensorRT (see README's
verification table). Networks are strongly typed: the ONNX graph carries the
precision (``cat_deploy.export.precision``). On TensorRT 10.x without the
strongly-typed flag, ``--precision fp16`` falls back to ``BuilderFlag.FP16``.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Optional

from ..core import optional
from ..core.files import atomic_write
from ..core.optional import lazy_import
from ..core.sidecar import ShapeProfile

__all__ = ["require_tensorrt", "build_engine", "EngineBuildError"]

_INSTEAD = ("then rerun with --format trt; the ONNX file runs as it is with ONNX Runtime "
                "(python infer.py --engine FILE.onnx)")

cat_pool_trt = lazy_import("cat_deploy.plugins.cat_pool_trt", "--gep plugin engines")


class EngineBuildError(RuntimeError):
    pass


def require_tensorrt():
    """The ``tensorrt`` module (>= 10.9), or :class:`~cat_deploy.core.errors.MissingDependency` saying what to do."""
    return optional.require_tensorrt("--format trt", _INSTEAD)


def trt_major() -> int:
    return int(require_tensorrt().__version__.split(".")[0])


def build_engine(
    onnx_path: str | os.PathLike,
    engine_path: str | os.PathLike,
    profile: ShapeProfile,
    input_name: str = "images",
    precision: str = "fp32",
    workspace_gib: float = 4.0,
    timing_cache: Optional[str | os.PathLike] = None,
    register_plugin: bool = False,
    log=print,
) -> dict[str, Any]:
    """Parse ``onnx_path``, build a serialized engine for ``profile``, write it atomically to ``engine_path``.

    Reuses and updates ``timing_cache`` when given. Returns facts for the sidecar.
    """
    trt = require_tensorrt()
    if register_plugin:
        cat_pool_trt.register_plugin()  # cat_deploy::FusedCatPool, before the parser meets the node

    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    flags = 0
    strongly_typed = hasattr(trt.NetworkDefinitionCreationFlag, "STRONGLY_TYPED")
    if strongly_typed and trt_major() < 11:  # always strongly typed (and the flag ignored) on 11.x
        flags |= 1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED)
    network = builder.create_network(flags)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(onnx_path)):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise EngineBuildError(f"TensorRT could not parse '{onnx_path}': {errors[:500]}")

    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(workspace_gib * (1 << 30)))
    if precision == "fp16" and not strongly_typed:
        config.set_flag(trt.BuilderFlag.FP16)  # TensorRT 10.x weak-typing fallback
    if precision == "int8" and not strongly_typed:
        raise EngineBuildError("INT8 engines need explicit Q/DQ in the ONNX and a strongly typed network")
    cache_bytes = Path(timing_cache).read_bytes() if timing_cache and Path(timing_cache).is_file() else b""
    cache = config.create_timing_cache(cache_bytes)
    config.set_timing_cache(cache, False)
    opt_profile = builder.create_optimization_profile()
    opt_profile.set_shape(input_name, profile.min, profile.opt, profile.max)
    config.add_optimization_profile(opt_profile)

    log(f"building TensorRT {trt.__version__} engine (this takes minutes)...")
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise EngineBuildError(f"TensorRT failed to build an engine from '{onnx_path}' (see its log above)")
    data = bytes(serialized)
    atomic_write(engine_path, lambda tmp: Path(tmp).write_bytes(data))
    if timing_cache:
        blob = bytes(config.get_timing_cache().serialize())
        atomic_write(timing_cache, lambda tmp: Path(tmp).write_bytes(blob))
    return {
        "tensorrt": trt.__version__,
        "strongly_typed": bool(strongly_typed),
        "engine_bytes": len(data),
        "workspace_gib": workspace_gib,
        "timing_cache": str(timing_cache) if timing_cache else None,
        "profile": profile.to_dict(),
    }
