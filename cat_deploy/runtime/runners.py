"""One runner interface for every backend (after Polygraphy's runners).

A runner is a context manager with ``infer(feed: dict[str, np.ndarray]) -> dict[str, np.ndarray]``
and ``last_inference_time()`` (seconds of the last ``infer``). Heavy backends are bound
with :func:`~cat_deploy.core.optional.lazy_import` and imported when first used, so the
package imports without them: ONNX Runtime needs neither PyTorch nor the onnx package.
"""
from __future__ import annotations

import ctypes
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Optional, Sequence

import numpy as np

from ..core.errors import BackendUnavailable
from ..core.optional import lazy_import
from ..plugins.ort_library import fused_session_options

if TYPE_CHECKING:
    import torch.nn as nn

__all__ = ["Runner", "TorchRunner", "OnnxRuntimeRunner", "BackendUnavailable", "ort_providers", "cuda_device_count"]

torch = lazy_import("torch", "running a PyTorch checkpoint")
ort = lazy_import("onnxruntime", "running an ONNX file")


class Runner:
    name = "runner"
    input_names: list[str] = []
    output_names: list[str] = []
    max_in_flight = 1  # batches that may be submitted before the first is collected

    def __init__(self):
        self._last = 0.0

    def __enter__(self):
        self.activate()
        return self

    def __exit__(self, *exc):
        self.deactivate()

    def activate(self) -> None:  # load sessions/engines
        pass

    def deactivate(self) -> None:
        pass

    def last_inference_time(self) -> float:
        return self._last

    def infer(self, feed: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        t0 = time.perf_counter()
        out = self._infer(feed)
        self._last = time.perf_counter() - t0
        return out

    def _infer(self, feed: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        raise NotImplementedError

    # Pipelined use: submit batch k+1, then collect batch k. Synchronous backends run in
    # submit() and hand the outputs back as the ticket; asynchronous ones (TensorRT) override both.
    def submit(self, feed: dict[str, np.ndarray]):
        return self.infer(feed)

    def collect(self, ticket) -> dict[str, np.ndarray]:
        return ticket


class TorchRunner(Runner):
    """PyTorch eager (FP32 on CPU, or the given device/dtype)."""

    name = "pytorch"

    def __init__(self, module: "nn.Module", output_names: Sequence[str], input_name: str = "images",
                 device: str = "cpu", dtype: Optional["torch.dtype"] = None):
        super().__init__()
        dtype = dtype or torch.float32
        self.module = module.eval().to(device=device, dtype=dtype)
        self.input_names, self.output_names = [input_name], list(output_names)
        self.device, self.dtype = device, dtype

    def _infer(self, feed):
        x = torch.from_numpy(np.ascontiguousarray(feed[self.input_names[0]])).to(self.device, self.dtype)
        with torch.no_grad():
            out = self.module(x)
        out = out if isinstance(out, (tuple, list)) else (out,)
        return {n: o.detach().float().cpu().numpy() if o.is_floating_point() else o.cpu().numpy()
                for n, o in zip(self.output_names, out)}


def cuda_device_count() -> int:
    """CUDA GPUs the driver sees (0 without a driver), asked of the driver itself: no PyTorch needed."""
    for name in ("libcuda.so.1", "libcuda.so", "nvcuda.dll"):
        try:
            cuda = ctypes.CDLL(name)
        except OSError:
            continue
        count = ctypes.c_int(0)
        if cuda.cuInit(0) != 0 or cuda.cuDeviceGetCount(ctypes.byref(count)) != 0:
            return 0
        return count.value
    return 0


def ort_providers(device: str = "auto") -> list[str]:
    """``device``: ``"cpu"``, ``"cuda"`` or ``"auto"`` (CUDA when onnxruntime-gpu sees a GPU, else CPU)."""
    available = ort.get_available_providers()
    if device == "cpu":
        return ["CPUExecutionProvider"]
    cuda_ok = "CUDAExecutionProvider" in available and cuda_device_count() > 0
    if device == "cuda" and not cuda_ok:
        raise BackendUnavailable("ONNX Runtime cannot use CUDA here (no GPU or onnxruntime-gpu's CUDA libraries "
                                 "missing); use --device cpu")
    return ["CUDAExecutionProvider", "CPUExecutionProvider"] if cuda_ok else ["CPUExecutionProvider"]


class OnnxRuntimeRunner(Runner):
    """ONNX Runtime session.

    ``plugin`` says whether the graph holds fused CAT nodes (the sidecar's ``gep == "plugin"``),
    whose compiled CPU operators (or, when those are not built, the Python twin) are then registered;
    ``None`` looks for them in the serialized graph. After :meth:`activate`, ``fused_ops`` says which
    implementation runs them: ``"compiled"``, ``"twin"`` or None.
    """

    name = "onnxruntime"

    def __init__(self, path: str | os.PathLike, device: str = "auto", threads: Optional[int] = None,
                 model_bytes: Optional[bytes] = None, session_options=None, plugin: Optional[bool] = None):
        super().__init__()
        self.path = Path(path)
        self.device, self.threads, self.model_bytes = device, threads, model_bytes
        self.session_options, self.plugin = session_options, plugin
        self.session, self.fused_ops = None, None

    def activate(self):
        opts, self.fused_ops = fused_session_options(self.model_bytes or self.path, self.session_options, self.plugin)
        opts = opts or ort.SessionOptions()
        if self.threads:
            opts.intra_op_num_threads = self.threads
            opts.inter_op_num_threads = 1
        src = self.model_bytes if self.model_bytes is not None else str(self.path)
        try:
            self.session = ort.InferenceSession(src, sess_options=opts, providers=ort_providers(self.device))
        except Exception as e:  # ORT raises its own exception types for invalid/unsupported graphs
            first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise BackendUnavailable(f"ONNX Runtime cannot load '{self.path}': {first[:300]}") from None
        self.input_names = [i.name for i in self.session.get_inputs()]
        self.output_names = [o.name for o in self.session.get_outputs()]
        self.providers = self.session.get_providers()

    def deactivate(self):
        self.session = None

    def _infer(self, feed):
        outs = self.session.run(self.output_names, {k: np.ascontiguousarray(v) for k, v in feed.items()})
        return dict(zip(self.output_names, outs))
