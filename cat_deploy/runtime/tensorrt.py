"""TensorRT runner: a serialized engine behind the common :class:`~cat_deploy.runtime.runners.Runner` interface.

The only runtime module that uses ``tensorrt`` and cuda-python, both imported in
:meth:`TensorRTRunner.activate` through :mod:`cat_deploy.core.optional`, so the package
imports without them. Memory and
streams come from cuda-python (``cuda.bindings.runtime``) as in TensorRT's own samples:
pinned host buffers, device buffers, one stream, tensor addresses set by name
(``context.set_tensor_address``), ``context.set_input_shape`` per batch for dynamic
shapes, ``context.execute_async_v3``.

Pipelining: the runner holds ``buffers`` (>= 2) buffer sets. :meth:`submit` copies a
batch into a free set and enqueues copy-in, execution and copy-out; :meth:`collect`
waits for the oldest set and returns its outputs. The caller submits batch k+1
before collecting batch k, so host-side decoding, pre-processing and
post-processing overlap the engine's work.

The pure-Python parts (binding layout, shape/profile checks, engine/sidecar
compatibility, buffer-set rotation) are plain functions, unit-tested without
TensorRT. Written against the documented TensorRT 10.9+/11.x API; the TensorRT names used
are checked against the 10.9, 10.16 and 11.4 bindings and the cuda-python calls against
the installed ``cuda-bindings`` (``tests/runtime/test_infer_tensorrt.py``). NOT YET RUN ON
TensorRT.
"""
from __future__ import annotations

import ctypes
import os
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np

from ..core.errors import BackendUnavailable, SidecarError
from ..core.optional import lazy_import, require_cudart, require_tensorrt, version_tuple
from ..core.sidecar import Sidecar, read_sidecar
from .runners import Runner

__all__ = [
    "TensorRTRunner",
    "EngineMismatch",
    "TensorSpec",
    "BindingLayout",
    "BufferRing",
    "binding_layout",
    "check_input_shape",
    "engine_compatibility",
    "volume",
    "INSTALL_HINT",
]

cat_pool_trt = lazy_import("cat_deploy.plugins.cat_pool_trt", "engines with the fused CAT pooling plugin")


def _instead(engine: str | os.PathLike) -> str:
    return f"or run the ONNX file with ONNX Runtime instead: python infer.py --engine {Path(engine).with_suffix('.onnx')}"


def install_hint(engine: str | os.PathLike = "ENGINE") -> str:
    return (f"TensorRT is not installed, and '{engine}' needs it: on a machine with an NVIDIA GPU run "
            f"pip install 'cat-deploy[trt]' (TensorRT >= 10.9 and cuda-python), {_instead(engine)}")


INSTALL_HINT = install_hint()


class EngineMismatch(BackendUnavailable):
    """The engine was built for another TensorRT version or GPU; the message says to rebuild it."""


# ----------------------------------------------------------------------------- pure parts


@dataclass(frozen=True)
class TensorSpec:
    """One engine I/O tensor: ``shape`` as the engine reports it (-1 for dynamic axes)."""

    name: str
    is_input: bool
    shape: tuple[int, ...]
    dtype: np.dtype


@dataclass(frozen=True)
class BindingLayout:
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]

    @property
    def input(self) -> TensorSpec:
        return self.inputs[0]

    @property
    def names(self) -> list[str]:
        return [t.name for t in self.inputs + self.outputs]


def binding_layout(tensors: Sequence[tuple[str, str, Sequence[int], Any]],
                   expected_outputs: Optional[Sequence[str]] = None) -> BindingLayout:
    """Engine I/O from ``(name, mode, shape, dtype)`` tuples, ``mode`` ``"input"``/``"output"``.

    Checks what the detector runner relies on: one image input ``[B, 3, H, W]``, and
    (when the sidecar lists them) exactly the expected output names. Outputs keep
    the engine's order. Raises ``ValueError`` with one line otherwise.

    Example::

        binding_layout([("images", "input", (-1, 3, 192, 640), np.float32),
                        ("cls_logits", "output", (-1, -1, 6), np.float32),
                        ("box_deltas", "output", (-1, -1, 4), np.float32)])
    """
    specs = []
    for name, mode, shape, dtype in tensors:
        mode = str(mode).lower().rsplit(".", 1)[-1]  # accepts "input" and "TensorIOMode.INPUT"
        if mode not in ("input", "output"):
            raise ValueError(f"tensor '{name}' has I/O mode {mode!r}; expected input or output")
        try:
            dt = np.dtype(dtype)
        except TypeError:
            raise ValueError(f"tensor '{name}' has dtype {dtype!r}, which has no numpy equivalent "
                             "(BF16/FP8/INT4 I/O); re-export keeping FP32 inputs and outputs") from None
        specs.append(TensorSpec(str(name), mode == "input", tuple(int(s) for s in shape), dt))
    inputs = tuple(s for s in specs if s.is_input)
    outputs = tuple(s for s in specs if not s.is_input)
    if len(inputs) != 1:
        raise ValueError(f"expected one input tensor (images), the engine has {[s.name for s in inputs]}")
    shape = inputs[0].shape
    if len(shape) != 4 or shape[1] not in (3, -1):
        raise ValueError(f"input '{inputs[0].name}' has shape {list(shape)}; expected [batch, 3, height, width]")
    if not outputs:
        raise ValueError("the engine has no outputs")
    if expected_outputs is not None and sorted(expected_outputs) != sorted(s.name for s in outputs):
        raise ValueError(f"engine outputs {[s.name for s in outputs]} differ from the sidecar's "
                         f"{list(expected_outputs)}: the sidecar belongs to another export")
    return BindingLayout(inputs, outputs)


def volume(shape: Sequence[int]) -> int:
    n = 1
    for s in shape:
        if s < 0:
            raise ValueError(f"shape {list(shape)} still has a dynamic (-1) axis")
        n *= int(s)
    return n


def check_input_shape(shape: Sequence[int], engine_shape: Sequence[int],
                      profile: Optional[tuple[Sequence[int], Sequence[int], Sequence[int]]] = None) -> tuple[int, ...]:
    """``shape`` if the engine accepts it, else ``ValueError`` naming the allowed range.

    ``engine_shape`` has -1 on dynamic axes; ``profile`` is (min, opt, max) of the
    optimization profile (required when any axis is dynamic).
    """
    shape = tuple(int(s) for s in shape)
    if len(shape) != len(engine_shape):
        raise ValueError(f"input shape {list(shape)} has {len(shape)} axes; the engine takes {len(engine_shape)}")
    for axis, (s, e) in enumerate(zip(shape, engine_shape)):
        if e >= 0 and s != e:
            raise ValueError(f"input shape {list(shape)} does not match the engine's static shape "
                             f"{list(engine_shape)} (axis {axis})")
    if any(e < 0 for e in engine_shape):
        if profile is None:
            raise ValueError(f"the engine's input {list(engine_shape)} is dynamic but has no optimization profile")
        lo, _, hi = profile
        if any(not (a <= s <= b) for s, a, b in zip(shape, lo, hi)):
            raise ValueError(f"input shape {list(shape)} is outside the engine's profile {list(lo)} .. {list(hi)}; "
                             "rebuild the engine with python export.py --format trt --dynamic --batch N "
                             "(--min-imgsz/--max-imgsz), or pass a smaller --batch")
    return shape


def _version_tuple(v: Optional[str], parts: int = 3) -> Optional[tuple[int, ...]]:
    return (version_tuple(v, parts) or None) if v else None


def engine_compatibility(sidecar: Sidecar, tensorrt_version: str, gpu_name: Optional[str],
                         compute_capability: Optional[str]) -> tuple[list[str], list[str]]:
    """``(errors, warnings)`` from comparing an engine's sidecar with this process.

    A plan runs only on the TensorRT version (major.minor.patch) that built it, unless built
    version-compatible (``export.py --version-compatible``: then on that version and later
    ones of the same major), and only on GPUs of the compute capability it was built for,
    unless built hardware-compatible (``--hardware-compatible``: any GPU from Ampere, sm_80,
    on). The build facts come from the sidecar's ``engine`` entry (written by
    ``cat_deploy.export.tensorrt.build_engine``) and ``versions`` (the export process). A
    different GPU name with the same compute capability runs but may be slower: a warning.
    """
    engine = sidecar.engine or {}
    built = sidecar.versions or {}
    errors, warnings = [], []
    rebuild = "rebuild it here with python export.py --ckpt MODEL.pth --format trt"

    built_trt = engine.get("tensorrt") or built.get("tensorrt")
    here, there = _version_tuple(tensorrt_version), _version_tuple(built_trt)
    if not built_trt:
        warnings.append("the sidecar does not say which TensorRT version built the engine")
    elif engine.get("version_compatible"):
        if here is None or there is None or here[0] != there[0] or here < there:
            errors.append(f"engine built version-compatible with TensorRT {built_trt} runs on {there[0] if there else '?'}.x "
                          f"from {built_trt} on, this is TensorRT {tensorrt_version}")
    elif there != here:
        errors.append(f"engine built with TensorRT {built_trt}, this is TensorRT {tensorrt_version}")

    built_cc = engine.get("compute_capability") or built.get("compute_capability")
    built_gpu = engine.get("gpu") or built.get("gpu")
    hw_level = str(engine.get("hardware_compatibility", "none")).lower()
    hw_compat = hw_level not in ("none", "", "false")
    cc_here = _version_tuple(compute_capability, 2)
    if hw_compat:
        if cc_here is not None and cc_here < (8, 0):
            errors.append(f"engine built hardware-compatible ({hw_level}) runs on GPUs from compute capability 8.0 "
                          f"on, this GPU is {gpu_name or 'unknown'} with {compute_capability}")
    elif built_cc and compute_capability:
        if _version_tuple(built_cc, 2) != cc_here:
            errors.append(f"engine built for compute capability {built_cc} ({built_gpu or 'unknown GPU'}), "
                          f"this GPU is {gpu_name or 'unknown'} with {compute_capability}")
    elif not built_cc:
        warnings.append("the sidecar does not say which GPU the engine was built for")
    if not errors and built_gpu and gpu_name and built_gpu != gpu_name and not hw_compat:
        warnings.append(f"engine built on {built_gpu}, running on {gpu_name} (same compute capability: it runs, "
                        "but tactics were timed on the other GPU; rebuild for best speed)")
    if errors:
        errors = ["; ".join(errors) + f": {rebuild}"]
    return errors, warnings


class BufferRing:
    """Rotation of ``n`` buffer sets between the host and the engine, oldest first.

    ``acquire()`` hands out the next free set (raises when all are in flight: collect
    first); ``release()`` returns the oldest in-flight set, which is the one whose work
    finishes first on the single stream.

    Example::

        ring = BufferRing(2)
        a = ring.acquire(); b = ring.acquire()   # 0, 1: two batches in flight
        ring.release()                           # 0 is done
        ring.acquire()                           # 0 again
    """

    def __init__(self, n: int):
        if n < 1:
            raise ValueError(f"need at least one buffer set, got {n}")
        self.n = n
        self._free = deque(range(n))
        self._in_flight: deque[int] = deque()

    @property
    def in_flight(self) -> int:
        return len(self._in_flight)

    @property
    def full(self) -> bool:
        return not self._free

    def acquire(self) -> int:
        if not self._free:
            raise RuntimeError(f"all {self.n} buffer sets are in flight: collect a result before submitting more")
        slot = self._free.popleft()
        self._in_flight.append(slot)
        return slot

    def oldest(self) -> int:
        if not self._in_flight:
            raise RuntimeError("no batch in flight")
        return self._in_flight[0]

    def release(self) -> int:
        slot = self.oldest()
        self._in_flight.popleft()
        self._free.append(slot)
        return slot


# ----------------------------------------------------------------------------- TensorRT / CUDA


def _import_tensorrt(path):
    return require_tensorrt(f"'{path}'", _instead(path))


def _import_cudart():
    return require_cudart()


def _cuda_call(cudart, result, what: str):
    """cuda-python calls return ``(err, *values)``; raise one line on error, return the value(s)."""
    err, rest = result[0], result[1:]
    if int(err) != 0:
        name = getattr(err, "name", str(err))
        raise BackendUnavailable(f"CUDA error in {what}: {name}")
    return rest[0] if len(rest) == 1 else rest if rest else None


@dataclass
class _Ticket:
    slot: int
    shapes: dict[str, tuple[int, ...]]
    batch: int


class TensorRTRunner(Runner):
    """Run a serialized TensorRT engine (``.engine``/``.plan``) on the GPU.

    Args:
        path: the engine; its sidecar ``<path>.json`` (written by ``export.py``) is checked
            against this TensorRT version and GPU when present.
        buffers: buffer sets (>= 2 lets :meth:`submit` run ahead of :meth:`collect`).
        warmup: executions at the profile's opt shape after loading.
        device: CUDA device index.

    Example::

        with TensorRTRunner("out/cat.engine") as r:
            out = r.infer({"images": x})           # x: float32 [B, 3, H, W]
    """

    name = "tensorrt"

    def __init__(self, path: str | os.PathLike, buffers: int = 2, warmup: int = 3, device: int = 0,
                 sidecar: Optional[Sidecar] = None):
        super().__init__()
        self.path = Path(path)
        self.buffers, self.warmup_iters, self.device = max(1, int(buffers)), int(warmup), int(device)
        self.sidecar = sidecar
        self.max_in_flight = self.buffers
        self.warnings: list[str] = []
        self._plugin_error: Optional[str] = None
        self._engine = self._context = self._stream = None
        self._sets: list[dict[str, tuple[int, np.ndarray, int]]] = []
        self._events: list[tuple[Any, Any]] = []
        self._tickets: deque[_Ticket] = deque()

    # -- loading
    def activate(self):
        trt = _import_tensorrt(self.path)
        cudart = self._cudart = _import_cudart()
        if not self.path.is_file():
            raise BackendUnavailable(f"engine '{self.path}' not found; build one with python export.py --format trt")
        sidecar = self.sidecar
        if sidecar is None:
            try:
                sidecar = read_sidecar(self.path)
            except SidecarError:
                sidecar = None
        _cuda_call(cudart, cudart.cudaSetDevice(self.device), "cudaSetDevice")
        props = _cuda_call(cudart, cudart.cudaGetDeviceProperties(self.device), "cudaGetDeviceProperties")
        gpu = props.name.decode(errors="replace").rstrip("\x00") if isinstance(props.name, bytes) else str(props.name)
        cc = f"{props.major}.{props.minor}"
        if sidecar is not None:
            errors, self.warnings = engine_compatibility(sidecar, trt.__version__, gpu, cc)
            if errors:
                raise EngineMismatch(f"'{self.path}' cannot run here: {errors[0]}")
            if sidecar.gep == "plugin":
                self._register_plugin()

        self._logger = trt.Logger(trt.Logger.WARNING)
        self._runtime = trt.Runtime(self._logger)
        if sidecar is not None and (sidecar.engine or {}).get("version_compatible"):
            self._runtime.engine_host_code_allowed = True  # a version-compatible plan embeds its lean runtime
        engine = self._runtime.deserialize_cuda_engine(self.path.read_bytes())
        if engine is None:
            plugin = f"; the FusedCatPool plugin was not registered ({self._plugin_error})" if self._plugin_error else ""
            raise EngineMismatch(f"TensorRT {trt.__version__} could not load '{self.path}' (built by another TensorRT "
                                 f"version or for another GPU, or damaged{plugin}): rebuild it here with "
                                 "python export.py --ckpt MODEL.pth --format trt")
        self._engine = engine
        tensors = []
        for i in range(engine.num_io_tensors):
            name = engine.get_tensor_name(i)
            mode = "input" if engine.get_tensor_mode(name) == trt.TensorIOMode.INPUT else "output"
            try:
                dtype = trt.nptype(engine.get_tensor_dtype(name))
            except TypeError:  # BF16/FP8/INT4 have no numpy type: binding_layout says what to do
                dtype = str(engine.get_tensor_dtype(name))
            tensors.append((name, mode, tuple(engine.get_tensor_shape(name)), dtype))
        expected = sidecar.output_names if sidecar else None
        try:
            self.layout = binding_layout(tensors, expected)
        except ValueError as e:
            raise BackendUnavailable(f"'{self.path}': {e}") from None
        inp = self.layout.input
        self.input_names = [inp.name]
        self.output_names = [t.name for t in self.layout.outputs]
        if any(d < 0 for d in inp.shape):
            self.profile = tuple(tuple(int(v) for v in s) for s in engine.get_tensor_profile_shape(inp.name, 0))
        else:
            self.profile = (inp.shape, inp.shape, inp.shape)
        self._context = engine.create_execution_context()
        self._stream = _cuda_call(cudart, cudart.cudaStreamCreate(), "cudaStreamCreate")
        self._allocate(cudart, self.profile[2])
        for _ in range(self.warmup_iters):
            self.infer({inp.name: np.zeros(self.profile[1], inp.dtype)})

    def _register_plugin(self):
        """Register the FusedCatPool plugin definitions for a ``gep="plugin"`` engine.

        An ahead-of-time engine carries its kernel and deserializes without them, so a failure
        is a warning here, and part of the error if the engine then cannot be loaded.
        """
        try:
            cat_pool_trt.register_plugin()
        except ImportError as e:
            self._plugin_error = str(e)
            self.warnings.append(f"FusedCatPool plugin definitions not registered ({e}); an engine built "
                                 "ahead of time runs without them")

    def _allocate(self, cudart, max_shape):
        """``buffers`` sets of pinned host + device memory, sized for the profile's max input shape."""
        ctx = self._context
        if not ctx.set_input_shape(self.layout.input.name, tuple(max_shape)):
            raise BackendUnavailable(f"'{self.path}': TensorRT refused input shape {list(max_shape)}")
        shapes = {self.layout.input.name: tuple(max_shape)}
        for t in self.layout.outputs:
            shape = tuple(ctx.get_tensor_shape(t.name))
            if any(s < 0 for s in shape):
                raise BackendUnavailable(f"'{self.path}': output '{t.name}' has a data-dependent shape {list(shape)}; "
                                         "re-export with --nms host (raw outputs) or --nms graph (fixed-size outputs)")
            shapes[t.name] = shape
        specs = {t.name: t for t in self.layout.inputs + self.layout.outputs}
        for _ in range(self.buffers):
            bufs = {}
            for name, shape in shapes.items():
                dtype, size = specs[name].dtype, max(1, volume(shape))
                nbytes = size * dtype.itemsize
                host_ptr = _cuda_call(cudart, cudart.cudaMallocHost(nbytes), "cudaMallocHost")
                raw = np.ctypeslib.as_array(ctypes.cast(host_ptr, ctypes.POINTER(ctypes.c_uint8)), (nbytes,))
                host = raw.view(dtype)  # bytes viewed as the tensor's dtype (ctypes has no float16)
                dev = _cuda_call(cudart, cudart.cudaMalloc(nbytes), "cudaMalloc")
                bufs[name] = (int(host_ptr), host, int(dev))
            self._sets.append(bufs)
            self._events.append((_cuda_call(cudart, cudart.cudaEventCreate(), "cudaEventCreate"),
                                 _cuda_call(cudart, cudart.cudaEventCreate(), "cudaEventCreate")))
        self._ring = BufferRing(self.buffers)

    def deactivate(self):
        cudart = getattr(self, "_cudart", None)
        if cudart is None:
            return
        if self._stream is not None:
            cudart.cudaStreamSynchronize(self._stream)
        for bufs in self._sets:
            for host_ptr, _, dev in bufs.values():
                cudart.cudaFreeHost(host_ptr)
                cudart.cudaFree(dev)
        for a, b in self._events:
            cudart.cudaEventDestroy(a)
            cudart.cudaEventDestroy(b)
        if self._stream is not None:
            cudart.cudaStreamDestroy(self._stream)
        self._sets, self._events, self._tickets = [], [], deque()
        self._context = self._engine = self._stream = None

    # -- running
    def submit(self, feed: dict[str, np.ndarray]) -> _Ticket:
        """Copy ``feed`` into a free buffer set and enqueue copy-in, execution and copy-out; returns at once."""
        cudart, ctx, inp = self._cudart, self._context, self.layout.input
        x = np.asarray(feed[inp.name] if inp.name in feed else next(iter(feed.values())))
        try:
            shape = check_input_shape(x.shape, inp.shape, self.profile)
        except ValueError as e:
            raise BackendUnavailable(f"'{self.path}': {e}") from None
        slot = self._ring.acquire()
        bufs = self._sets[slot]
        host_in = bufs[inp.name][1][: x.size].reshape(shape)
        np.copyto(host_in, x, casting="unsafe")  # engine input dtype (FP32, or FP16 for FP16 I/O)
        ctx.set_input_shape(inp.name, shape)
        shapes = {t.name: tuple(ctx.get_tensor_shape(t.name)) for t in self.layout.outputs}
        for name, (_, _, dev) in bufs.items():
            ctx.set_tensor_address(name, dev)
        start, end = self._events[slot]
        stream = self._stream
        h2d, d2h = cudart.cudaMemcpyKind.cudaMemcpyHostToDevice, cudart.cudaMemcpyKind.cudaMemcpyDeviceToHost
        _cuda_call(cudart, cudart.cudaEventRecord(start, stream), "cudaEventRecord")
        host_ptr, _, dev = bufs[inp.name]
        _cuda_call(cudart, cudart.cudaMemcpyAsync(dev, host_ptr, host_in.nbytes, h2d, stream), "cudaMemcpyAsync")
        if not ctx.execute_async_v3(int(stream)):
            raise BackendUnavailable(f"TensorRT failed to run '{self.path}' on input {list(shape)}")
        for t in self.layout.outputs:
            host_ptr, _, dev = bufs[t.name]
            nbytes = volume(shapes[t.name]) * t.dtype.itemsize
            _cuda_call(cudart, cudart.cudaMemcpyAsync(host_ptr, dev, nbytes, d2h, stream), "cudaMemcpyAsync")
        _cuda_call(cudart, cudart.cudaEventRecord(end, stream), "cudaEventRecord")
        ticket = _Ticket(slot, shapes, shape[0])
        self._tickets.append(ticket)
        return ticket

    def collect(self, ticket: _Ticket) -> dict[str, np.ndarray]:
        """Wait for ``ticket`` (the oldest in flight) and return copies of its outputs."""
        cudart = self._cudart
        if not self._tickets or self._tickets[0] is not ticket:
            raise RuntimeError("collect() results in the order they were submitted")
        start, end = self._events[ticket.slot]
        _cuda_call(cudart, cudart.cudaEventSynchronize(end), "cudaEventSynchronize")
        self._last = _cuda_call(cudart, cudart.cudaEventElapsedTime(start, end), "cudaEventElapsedTime") / 1000.0
        bufs = self._sets[ticket.slot]
        out = {t.name: bufs[t.name][1][: volume(ticket.shapes[t.name])].reshape(ticket.shapes[t.name]).copy()
               for t in self.layout.outputs}
        self._tickets.popleft()
        self._ring.release()
        return out

    def infer(self, feed: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        if self._tickets:
            raise RuntimeError("infer() while submitted batches are pending: collect() them first")
        return self.collect(self.submit(feed))
