"""TensorRT engine building: the only module of the exporter that imports ``tensorrt``.

Written against the documented TensorRT 10.9+/11.x Python API; every TensorRT name used
here is checked against the 10.9, 10.16 and 11.4 bindings (``tests/trt_bindings``). NOT YET
RUN ON TensorRT (see README's verification table).

Networks are always strongly typed (the flag exists in every version from 10.9 and is
implied on 11.x): the ONNX graph carries the precision, FP16 as a mixed-precision graph and
INT8 as explicit Q/DQ nodes (``cat_deploy.export.precision``). TF32 is cleared unless asked
for, since FP32 parity tolerances assume true FP32 (TensorRT enables TF32 by default).
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import onnx

from ..core import optional
from ..core.files import atomic_write
from ..core.optional import lazy_import
from ..core.plugin_ids import GATE_OP, graph_custom_ops
from ..core.sidecar import ShapeProfile

__all__ = ["require_tensorrt", "build_engine", "BuildFlags", "EngineBuildError", "TIMING_CACHE_REFUSED"]

_INSTEAD = ("then rerun with --format trt; the ONNX file runs as it is with ONNX Runtime "
                "(python infer.py --engine FILE.onnx)")

cat_pool_trt = lazy_import("cat_deploy.plugins.cat_pool_trt", "--gep plugin engines")


class EngineBuildError(RuntimeError):
    pass


def require_tensorrt():
    """The ``tensorrt`` module (>= 10.9), or :class:`~cat_deploy.core.errors.MissingDependency` saying what to do."""
    return optional.require_tensorrt("--format trt", _INSTEAD)


TIMING_CACHE_REFUSED = "timing cache ignored: from another device/version"


@dataclass(frozen=True)
class BuildFlags:
    """Builder options that change what the engine computes or where it runs (all recorded in the sidecar).

    ``tf32``: let FP32 layers use TF32 tensor cores (10-bit mantissa; off by default).
    ``version_compatible``: the engine also runs on later TensorRT versions of the same major
    (``BuilderFlag.VERSION_COMPATIBLE``; the runtime must allow engine host code).
    ``hardware_compatible``: the engine runs on every GPU from Ampere on, not only on the build
    GPU's compute capability (``HardwareCompatibilityLevel.AMPERE_PLUS``; may be slower).
    """

    tf32: bool = False
    version_compatible: bool = False
    hardware_compatible: bool = False


def _timing_cache(trt, config, path: Optional[str | os.PathLike], log):
    """Attach the cache stored at ``path`` (or a new one); one that TensorRT refuses is replaced by a new one."""
    blob = Path(path).read_bytes() if path and Path(path).is_file() else b""
    cache = config.create_timing_cache(blob)
    if cache is not None and config.set_timing_cache(cache, False):
        return False
    log(f"{TIMING_CACHE_REFUSED} ('{path}' left as it is; building without it)")
    config.set_timing_cache(config.create_timing_cache(b""), False)
    return True


def _parse_onnx(trt, builder, logger, onnx_path: str | os.PathLike):
    """A strongly typed network parsed from ``onnx_path``, and its parser (which owns the weights)."""
    network = builder.create_network(1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED))
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(onnx_path)):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise EngineBuildError(f"TensorRT could not parse '{onnx_path}': {errors[:500]}")
    return network, parser


def _save_timing_cache(config, timing_cache: str | os.PathLike, log) -> None:
    """Write the build's timing cache atomically to ``timing_cache`` (a warning when TensorRT returns none)."""
    cache = config.get_timing_cache()
    if cache is None:
        log(f"{TIMING_CACHE_REFUSED}: TensorRT returned no cache to save; '{timing_cache}' not written")
        return
    blob = bytes(cache.serialize())
    atomic_write(timing_cache, lambda tmp: Path(tmp).write_bytes(blob))


def _has_fused_gate(onnx_path) -> bool:
    """Whether the ONNX file holds FusedCatGate nodes; a file onnx cannot read is left to TensorRT's parser."""
    try:
        model = onnx.load(str(onnx_path), load_external_data=False)
    except Exception:  # missing or not ONNX: the parser's error names it
        return False
    return GATE_OP in graph_custom_ops(model.graph)


def build_engine(
    onnx_path: str | os.PathLike,
    engine_path: str | os.PathLike,
    profile: ShapeProfile,
    input_name: str = "images",
    precision: str = "fp32",
    workspace_gib: float = 4.0,
    timing_cache: Optional[str | os.PathLike] = None,
    register_plugin: bool = False,
    flags: BuildFlags = BuildFlags(),
    log=print,
) -> dict[str, Any]:
    """Parse ``onnx_path``, build a serialized engine for ``profile``, write it atomically to ``engine_path``.

    ``precision`` only labels the sidecar: the (strongly typed) graph decides every tensor's
    dtype. Reuses and updates ``timing_cache`` when given; a cache TensorRT refuses (another
    GPU or version) is left untouched and the build goes on without it. Returns facts for
    the sidecar's ``engine`` entry. A graph with fused-gate nodes (``--fuse-gate``, ONNX Runtime
    only) is refused before TensorRT is needed.
    """
    if _has_fused_gate(onnx_path):
        raise EngineBuildError(f"'{onnx_path}' has FusedCatGate nodes (export.py --fuse-gate), which are for ONNX "
                               "Runtime only: TensorRT fuses the gate's pointwise ops itself; re-export without "
                               "--fuse-gate")
    trt = require_tensorrt()
    if register_plugin:
        cat_pool_trt.register_plugin()  # cat_deploy::FusedCatPool, before the parser meets the node

    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    network, parser = _parse_onnx(trt, builder, logger, onnx_path)  # the parser holds the weights: keep it alive

    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(workspace_gib * (1 << 30)))
    if flags.tf32:
        config.set_flag(trt.BuilderFlag.TF32)
    else:
        config.clear_flag(trt.BuilderFlag.TF32)
    if flags.version_compatible:
        config.set_flag(trt.BuilderFlag.VERSION_COMPATIBLE)
    if flags.hardware_compatible:
        config.hardware_compatibility_level = trt.HardwareCompatibilityLevel.AMPERE_PLUS
    cache_refused = _timing_cache(trt, config, timing_cache, log)
    opt_profile = builder.create_optimization_profile()
    opt_profile.set_shape(input_name, profile.min, profile.opt, profile.max)
    config.add_optimization_profile(opt_profile)

    log(f"building TensorRT {trt.__version__} engine (this takes minutes)...")
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise EngineBuildError(f"TensorRT failed to build an engine from '{onnx_path}' (see its log above)")
    data = bytes(serialized)
    atomic_write(engine_path, lambda tmp: Path(tmp).write_bytes(data))
    if timing_cache and not cache_refused:
        _save_timing_cache(config, timing_cache, log)
    return {
        "tensorrt": trt.__version__,
        "precision": precision,
        "strongly_typed": True,
        "tf32": flags.tf32,
        "version_compatible": flags.version_compatible,
        "hardware_compatibility": "ampere_plus" if flags.hardware_compatible else "none",
        "engine_bytes": len(data),
        "workspace_gib": workspace_gib,
        "timing_cache": str(timing_cache) if timing_cache else None,
        "timing_cache_used": bool(timing_cache) and not cache_refused,
        "profile": profile.to_dict(),
    }
