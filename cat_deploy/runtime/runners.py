"""One runner interface for every backend (after Polygraphy's runners).

A runner is a context manager with ``infer(feed: dict[str, np.ndarray]) -> dict[str, np.ndarray]``
and ``last_inference_time()`` (seconds of the last ``infer``). Heavy backends are
imported inside the runner, so the package imports without them.
"""
from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
import torch
import torch.nn as nn

__all__ = ["Runner", "TorchRunner", "OnnxRuntimeRunner", "BackendUnavailable", "ort_providers"]


class BackendUnavailable(RuntimeError):
    """A backend's library or device is missing; the message says what to install or use instead."""


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

    def __init__(self, module: nn.Module, output_names: Sequence[str], input_name: str = "images",
                 device: str = "cpu", dtype: torch.dtype = torch.float32):
        super().__init__()
        self.module = module.eval().to(device=device, dtype=dtype)
        self.input_names, self.output_names = [input_name], list(output_names)
        self.device, self.dtype = device, dtype

    @torch.no_grad()
    def _infer(self, feed):
        x = torch.from_numpy(np.ascontiguousarray(feed[self.input_names[0]])).to(self.device, self.dtype)
        out = self.module(x)
        out = out if isinstance(out, (tuple, list)) else (out,)
        return {n: o.detach().float().cpu().numpy() if o.is_floating_point() else o.cpu().numpy()
                for n, o in zip(self.output_names, out)}


def ort_providers(device: str = "auto") -> list[str]:
    """``device``: ``"cpu"``, ``"cuda"`` or ``"auto"`` (CUDA when onnxruntime-gpu sees a GPU, else CPU)."""
    import onnxruntime as ort

    available = ort.get_available_providers()
    if device == "cpu":
        return ["CPUExecutionProvider"]
    cuda_ok = "CUDAExecutionProvider" in available and torch.cuda.is_available()
    if device == "cuda" and not cuda_ok:
        raise BackendUnavailable("ONNX Runtime cannot use CUDA here (no GPU or onnxruntime-gpu's CUDA libraries "
                                 "missing); use --device cpu")
    return ["CUDAExecutionProvider", "CPUExecutionProvider"] if cuda_ok else ["CPUExecutionProvider"]


class OnnxRuntimeRunner(Runner):
    """ONNX Runtime session. ``extra_outputs`` exposes intermediate tensors (for per-module localisation)."""

    name = "onnxruntime"

    def __init__(self, path: str | os.PathLike, device: str = "auto", threads: Optional[int] = None,
                 model_bytes: Optional[bytes] = None, session_options=None):
        super().__init__()
        self.path = Path(path)
        self.device, self.threads, self.model_bytes = device, threads, model_bytes
        self.session_options = session_options
        self.session = None

    def activate(self):
        import onnxruntime as ort

        from ..export.plugin import ort_session_options  # registers the FusedCatPool twin if the graph has it

        opts = ort_session_options(self.model_bytes or self.path, self.session_options) or ort.SessionOptions()
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
