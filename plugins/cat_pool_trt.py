"""TensorRT plugin ``cat_deploy::FusedCatPool``: fused CAT pooling as an ahead-of-time plugin.

Importing this module registers the plugin when TensorRT is installed (what
``cat_deploy.export.tensorrt.build_engine(register_plugin=True)`` relies on); without
TensorRT the import succeeds and :func:`register_plugin` raises ``ImportError`` with the
install command. Written against the documented ``tensorrt.plugin`` API of TensorRT >= 10.9
(``/work/shared/TENSORRT_NOTES.md``); NOT YET RUN ON TensorRT.

The ONNX node ``FusedCatPool`` (``cat_deploy.layers.fused``; ids in ``cat_deploy.core.plugin_ids``) maps
onto it: inputs ``x`` ``[B, C, H, W]`` and ``taps`` ``[C, k]`` (a constant), INT attribute ``gmp_filter``
(``GMP_FILTER_CODES``: 0 none, 1 paper, 2 2d); outputs channel ``[B, 3, C]`` and spatial
``[B, 3, H, W]`` in ``x``'s dtype (FP32 or FP16). TensorRT's ONNX parser hands the plugin only
the attributes it declares (``gmp_filter``), an INT as one int32 in a 1-element array;
``plugin_namespace`` and ``aot`` are read by the parser itself. The plugin declares
``gmp_filter`` as ``numpy.typing.NDArray[np.int32]``, not ``int``: TensorRT 10.x's front end
converts a declared ``int`` with ``int(array)``, which NumPy >= 2.4 refuses for a 1-element
array (11.x takes ``array[0]``); an int32 array decodes the same way on every version.

Ahead of time: at engine build, :func:`cat_deploy.plugins.cat_pool_triton.plugin_ptx` compiles the
single-launch Triton kernel to PTX for the GPU at hand, and the engine embeds it; the engine
then runs on the plain TensorRT runtime (trtexec, C++) without Python or this file.
Kernel parameters: ``(x, taps, C, H, W, channel, spatial)`` = (inputs..., extra scalars...,
outputs...). Grid ``(cdiv(H, TH) * cdiv(W, TW - 2*(k//2)) + cdiv(C, CH_BLOCK_C), B)``.

Environment: ``CAT_DEPLOY_CC`` overrides the compute capability (e.g. ``87`` when building
for a Jetson Orin elsewhere), ``CAT_DEPLOY_PTX_VERSION`` the PTX ISA version (default 8.0 for
sm_80..sm_90, so drivers from CUDA 12.0 on can JIT it; Triton's own default needs CUDA 12.9).
"""
# No "from __future__ import annotations": tensorrt.plugin inspects the annotations of the
# decorated functions, which must be real objects (trtp.TensorDesc, str, ...), not strings.
import os
from typing import List, Optional, Tuple, Union

import numpy as np
import numpy.typing as npt

from cat_deploy.core.errors import MissingDependency
from cat_deploy.core.optional import is_available, lazy_import, require, require_cudart
from cat_deploy.core.plugin_ids import GMP_FILTER_CODES, PLUGIN_ID

__all__ = ["PLUGIN_ID", "register_plugin", "device_cc", "compile_for", "filter_name", "INSTALL_HINT"]

INSTALL_HINT = ("the FusedCatPool TensorRT plugin needs TensorRT >= 10.9 with tensorrt.plugin and Triton: "
                "pip install 'cat-deploy[trt,plugin]' on a machine with an NVIDIA GPU")

torch = lazy_import("torch", "finding the GPU's compute capability")
cat_pool_triton = lazy_import("cat_deploy.plugins.cat_pool_triton", "the FusedCatPool TensorRT plugin")

_registered = False


def device_cc() -> int:
    """Compute capability of the build GPU as an int (``90`` for sm_90); ``CAT_DEPLOY_CC`` overrides."""
    if os.environ.get("CAT_DEPLOY_CC"):
        return int(os.environ["CAT_DEPLOY_CC"])
    if is_available("torch") and torch.cuda.is_available():
        major, minor = torch.cuda.get_device_capability()
        return 10 * major + minor
    try:
        err, prop = require_cudart().cudaGetDeviceProperties(0)
        if int(err) == 0:
            return 10 * prop.major + prop.minor
    except MissingDependency:
        pass
    raise RuntimeError("cannot find the GPU's compute capability for the FusedCatPool plugin: "
                       "no CUDA device visible to torch or cuda-python; set CAT_DEPLOY_CC (e.g. 90)")


def _ptx_version(cc: int) -> Optional[int]:
    if os.environ.get("CAT_DEPLOY_PTX_VERSION"):
        return int(os.environ["CAT_DEPLOY_PTX_VERSION"])
    return 80 if cc <= 90 else None


def filter_name(value) -> str:
    """The GMP pre-filter name for a ``gmp_filter`` attribute as TensorRT delivers it.

    Accepts the int32 array of an INT attribute (``[1]`` -> ``"paper"``), an int, or a string
    (trailing NULs stripped: the ONNX parser counts a C string's terminator in its length).
    Raises ``ValueError`` with one line naming the valid codes otherwise (e.g. for an ONNX file
    exported before ``gmp_filter`` became an INT attribute).
    """
    names = {code: name for name, code in GMP_FILTER_CODES.items()}
    if isinstance(value, (bytes, str)):
        text = value.decode(errors="replace") if isinstance(value, bytes) else value
        value = text.rstrip("\x00")
        if value in GMP_FILTER_CODES:
            return value
    else:
        codes = np.asarray(value).reshape(-1)
        if codes.size == 1 and int(codes[0]) in names:
            return names[int(codes[0])]
        value = codes.tolist()
    raise ValueError(f"FusedCatPool: gmp_filter must be an INT attribute with one of "
                     f"{', '.join(f'{c} ({n})' for c, n in names.items())}, got {value!r}; "
                     "re-export the ONNX file with this version of cat-deploy")


def compile_for(cc: int, dtype: str, gmp_filter: str, k: int):
    """The plugin kernel for one configuration (:class:`cat_deploy.plugins.cat_pool_triton.PluginKernel`)."""
    return cat_pool_triton.plugin_ptx(cc, dtype, gmp_filter, k, ptx_version=_ptx_version(cc))


def register_plugin() -> None:
    """Register ``cat_deploy::FusedCatPool`` with ``tensorrt.plugin`` (idempotent)."""
    global _registered
    if _registered:
        return
    try:
        trt = require("tensorrt")
        trtp = require("tensorrt.plugin")
    except ImportError:
        raise MissingDependency(INSTALL_HINT) from None

    @trtp.register(PLUGIN_ID)
    def _describe(x: trtp.TensorDesc, taps: trtp.TensorDesc,
                  gmp_filter: npt.NDArray[np.int32]) -> Tuple[trtp.TensorDesc, trtp.TensorDesc]:
        b, c, h, w = x.shape_expr
        return (trtp.from_shape_expr((b, 3, c), dtype=x.dtype),
                trtp.from_shape_expr((b, 3, h, w), dtype=x.dtype))

    @trtp.autotune(PLUGIN_ID)
    def _formats(x: trtp.TensorDesc, taps: trtp.TensorDesc,
                 outputs: Tuple[trtp.TensorDesc, trtp.TensorDesc]) -> List[trtp.AutoTuneCombination]:
        # Position-wise: (x, taps, channel, spatial) all FP32 or all FP16, linear (NCHW) layout.
        return [trtp.AutoTuneCombination("FP32|FP16, FP32|FP16, FP32|FP16, FP32|FP16", "LINEAR")]

    @trtp.aot_impl(PLUGIN_ID)
    def _aot(x: trtp.TensorDesc, taps: trtp.TensorDesc, gmp_filter: npt.NDArray[np.int32],
             outputs: Tuple[trtp.TensorDesc, trtp.TensorDesc], tactic: int,
             ) -> Tuple[Union[str, bytes], Union[str, bytes], trtp.KernelLaunchParams, trtp.SymIntExprs]:
        filt = filter_name(gmp_filter)
        k = 1
        if filt != "none":
            kdim = taps.shape_expr[1]
            if not kdim.is_constant:
                raise ValueError("FusedCatPool: the taps input must have a build-time constant shape [C, k]")
            k = int(kdim.constant_value())
        dtype = "float16" if x.dtype == trt.float16 else "float32"
        cfg = cat_pool_triton.PluginConfig()
        kernel = compile_for(device_cc(), dtype, filt, k)
        b, c, h, w = x.shape_expr
        r = k // 2
        launch = trtp.KernelLaunchParams()
        launch.grid_x = trtp.cdiv(h, cfg.th) * trtp.cdiv(w, cfg.tw - 2 * r) + trtp.cdiv(c, cfg.ch_block_c)
        launch.grid_y = b
        launch.block_x = kernel.num_warps * 32
        launch.shared_mem = kernel.shared
        extra = trtp.SymIntExprs.from_tuple([trtp.SymInt32(e) for e in (c, h, w)])
        return kernel.name.encode(), kernel.ptx.encode(), launch, extra

    _registered = True


if is_available("tensorrt"):
    register_plugin()
