"""TensorRT runner: the pure-Python parts without TensorRT; the pipelined run loop with a stand-in async runner.

The end-to-end engine test (build, run, compare with ONNX Runtime) is in
``test_infer_runner.py`` and carries the ``tensorrt`` and ``gpu`` markers.
"""
import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pytest
import trt_core
from PIL import Image

from cat_deploy.config import DetectorOptions, ModelConfig
from cat_deploy.core.sidecar import Normalize, ShapeProfile, Sidecar
from cat_deploy.runtime.backends import ModelSpec
from cat_deploy.runtime.detect import DetectOptions, detect_source
from cat_deploy.runtime.outputs import Journal
from cat_deploy.runtime.runners import BackendUnavailable, Runner
from cat_deploy.runtime.source import open_source
from cat_deploy.runtime.tensorrt import (BufferRing, EngineMismatch, TensorRTRunner, binding_layout,
                                         check_input_shape, engine_compatibility, volume)

HOST_NMS = [("images", "input", (-1, 3, -1, -1), np.float32),
            ("cls_logits", "output", (-1, -1, 6), np.float32),
            ("box_deltas", "output", (-1, -1, 4), np.float32)]


def test_binding_layout():
    layout = binding_layout(HOST_NMS, ["box_deltas", "cls_logits"])
    assert layout.input.name == "images" and layout.input.shape == (-1, 3, -1, -1)
    assert [t.name for t in layout.outputs] == ["cls_logits", "box_deltas"]  # engine order kept
    assert layout.names == ["images", "cls_logits", "box_deltas"]
    graph = [("images", "TensorIOMode.INPUT", (2, 3, 192, 640), np.float16),
             ("num_dets", "TensorIOMode.OUTPUT", (2, 1), np.int32)]
    assert binding_layout(graph).input.dtype == np.float16


@pytest.mark.parametrize("tensors, expected, words", [
    (HOST_NMS + [("extra", "input", (1, 3), np.float32)], None, "one input"),
    ([("images", "input", (1, 192, 640), np.float32)] + HOST_NMS[1:], None, "[batch, 3, height, width]"),
    ([("images", "input", (1, 1, 192, 640), np.float32)] + HOST_NMS[1:], None, "[batch, 3, height, width]"),
    (HOST_NMS[:1], None, "no outputs"),
    (HOST_NMS, ["num_dets", "boxes", "scores", "classes"], "another export"),
    (HOST_NMS[:2] + [("box_deltas", "output", (-1, -1, 4), "DataType.FP8")], None, "BF16/FP8"),
    ([("images", "weird", (1, 3, 8, 8), np.float32)], None, "I/O mode"),
])
def test_binding_layout_rejects(tensors, expected, words):
    with pytest.raises(ValueError, match=None) as e:
        binding_layout(tensors, expected)
    assert words in str(e.value) and "\n" not in str(e.value)


def test_check_input_shape():
    profile = ((1, 3, 96, 320), (4, 3, 192, 640), (8, 3, 384, 1280))
    assert check_input_shape((8, 3, 192, 640), (-1, 3, -1, -1), profile) == (8, 3, 192, 640)
    assert check_input_shape([1, 3, 96, 320], (-1, 3, -1, -1), profile) == (1, 3, 96, 320)
    with pytest.raises(ValueError, match="outside the engine's profile"):
        check_input_shape((9, 3, 192, 640), (-1, 3, -1, -1), profile)
    with pytest.raises(ValueError, match="outside"):
        check_input_shape((1, 3, 64, 640), (-1, 3, -1, -1), profile)
    with pytest.raises(ValueError, match="static shape"):
        check_input_shape((2, 3, 192, 640), (1, 3, 192, 640))
    with pytest.raises(ValueError, match="axes"):
        check_input_shape((3, 192, 640), (1, 3, 192, 640))
    with pytest.raises(ValueError, match="no optimization profile"):
        check_input_shape((1, 3, 192, 640), (-1, 3, 192, 640))
    assert volume((2, 3, 4)) == 24
    with pytest.raises(ValueError):
        volume((-1, 3))


def _make_sidecar(output_names=("cls_logits", "box_deltas"), versions=None, engine=None) -> Sidecar:
    model = ModelConfig(arch="shufflenetv2", task="detect", num_classes=6, input_size=(192, 640), letterbox=True,
                        detector=DetectorOptions())
    return Sidecar(artefact="cat.engine", model=model, input_size=(192, 640), profile=ShapeProfile.make((192, 640)),
                   normalize=Normalize(model.mean, model.std), precision={"precision": "fp32"},
                   output_names=tuple(output_names), versions=versions or {}, engine=engine)


def _sidecar(trt="10.13.2.6", cc="9.0", gpu="NVIDIA H200", **engine):
    return _make_sidecar(versions={"tensorrt": trt, "compute_capability": cc, "gpu": gpu},
                         engine={"tensorrt": trt, **engine})


def test_engine_compatibility():
    assert engine_compatibility(_sidecar(), "10.13.2.6", "NVIDIA H200", "9.0") == ([], [])
    assert engine_compatibility(_sidecar(), "10.13.2", "NVIDIA H200", "9.0") == ([], [])  # build number ignored

    errors, _ = engine_compatibility(_sidecar(), "10.14.1", "NVIDIA H200", "9.0")
    assert len(errors) == 1 and "TensorRT 10.13.2.6" in errors[0] and "10.14.1" in errors[0]
    assert "python export.py" in errors[0] and "--format trt" in errors[0] and "\n" not in errors[0]

    errors, _ = engine_compatibility(_sidecar(), "10.13.2.6", "NVIDIA A100-SXM4-80GB", "8.0")
    assert "compute capability 9.0" in errors[0] and "8.0" in errors[0]
    errors, _ = engine_compatibility(_sidecar(trt="11.4.0"), "10.13.2", "NVIDIA L4", "8.9")
    assert len(errors) == 1 and "TensorRT" in errors[0] and "compute capability" in errors[0]

    errors, warnings = engine_compatibility(_sidecar(), "10.13.2.6", "NVIDIA H100 80GB HBM3", "9.0")
    assert errors == [] and "H100" in warnings[0]

    assert engine_compatibility(_sidecar(version_compatible=True), "10.14.1", "NVIDIA H200", "9.0")[0] == []
    assert engine_compatibility(_sidecar(hardware_compatibility="ampere+"), "10.13.2.6", "NVIDIA L4", "8.9")[0] == []

    errors, warnings = engine_compatibility(_make_sidecar(), "10.13.2", "NVIDIA H200", "9.0")
    assert errors == [] and len(warnings) == 2


def test_buffer_ring_rotation():
    ring = BufferRing(2)
    assert [ring.acquire(), ring.acquire()] == [0, 1] and ring.full and ring.in_flight == 2
    with pytest.raises(RuntimeError, match="collect"):
        ring.acquire()
    assert ring.oldest() == 0 and ring.release() == 0
    assert ring.acquire() == 0 and ring.release() == 1 and ring.release() == 0
    with pytest.raises(RuntimeError, match="no batch"):
        ring.release()
    seq = []
    ring = BufferRing(3)
    for _ in range(7):  # steady state: submit k+1 .. k+2, collect k
        if ring.full:
            ring.release()
        seq.append(ring.acquire())
    assert seq == [0, 1, 2, 0, 1, 2, 0]
    with pytest.raises(ValueError):
        BufferRing(0)


@pytest.mark.skipif(importlib.util.find_spec("tensorrt") is not None, reason="TensorRT is installed")
def test_runner_without_tensorrt_says_what_to_install(tmp_path):
    engine = tmp_path / "cat.engine"
    engine.write_bytes(b"plan")
    with pytest.raises(BackendUnavailable) as e:
        with TensorRTRunner(engine):
            pass
    msg = str(e.value)
    assert "pip install 'cat-deploy[trt]'" in msg and "cat.onnx" in msg and "\n" not in msg
    assert issubclass(EngineMismatch, BackendUnavailable)


class _AsyncRunner(Runner):
    """Stand-in for TensorRT's runner: two buffer sets, results handed back by collect() in order."""

    name = "async"
    max_in_flight = 2

    def __init__(self):
        super().__init__()
        self.ring = BufferRing(2)
        self.events = []
        self.max_seen = 0

    def _infer(self, feed):
        x = feed["images"]
        n = len(x)
        return {"num_dets": np.zeros((n, 1), np.int32), "boxes": np.zeros((n, 1, 4), np.float32),
                "scores": np.zeros((n, 1), np.float32), "classes": np.zeros((n, 1), np.int32)}

    def submit(self, feed):
        slot = self.ring.acquire()
        self.max_seen = max(self.max_seen, self.ring.in_flight)
        self.events.append(("submit", slot))
        return slot, self._infer(feed)

    def collect(self, ticket):
        slot, out = ticket
        assert self.ring.release() == slot, "collected out of order"
        self.events.append(("collect", slot))
        return out


def test_run_loop_keeps_one_batch_ahead(tmp_path):
    folder = tmp_path / "imgs"
    folder.mkdir()
    for i in range(7):
        Image.fromarray(np.full((40, 60, 3), i * 30, np.uint8)).save(folder / f"{i}.png")
    spec = ModelSpec(backend="async", input_name="images", output_names=("num_dets", "boxes", "scores", "classes"),
                     input_hw=(32, 64), class_names=("a",), detector=DetectorOptions(), mean=(0.5,) * 3,
                     std=(0.25,) * 3, nms="graph")
    runner = _AsyncRunner()
    opts = DetectOptions(engine="x", images=str(folder), out=str(tmp_path / "out"), quiet=True, workers=2)
    journal = Journal(tmp_path / "out" / ".partial" / "journal.jsonl", {})
    summary = detect_source(open_source(folder), runner, spec, opts, journal, batch=2)
    journal.close()
    assert summary["images"]["done"] == 7 and runner.max_seen == 2
    kinds = [k for k, _ in runner.events]
    assert kinds[:3] == ["submit", "submit", "collect"]  # batch 2 was enqueued before batch 1 was collected
    assert kinds.count("submit") == kinds.count("collect") == 4
    doc = json.loads((tmp_path / "out" / "detections.json").read_text())
    assert [im["id"] for im in doc["images"]] == list(range(1, 8))



def test_run_loop_on_a_video_resumes_by_frame(tmp_path):
    av = pytest.importorskip("av", reason="PyAV (pip install av) reads videos")
    path = tmp_path / "clip.mp4"
    with av.open(str(path), "w") as c:
        s = c.add_stream("mpeg4", rate=10)
        s.width, s.height, s.pix_fmt = 64, 32, "yuv420p"
        for i in range(5):
            for p in s.encode(av.VideoFrame.from_ndarray(np.full((32, 64, 3), 50 * i, np.uint8), format="rgb24")):
                c.mux(p)
        for p in s.encode():
            c.mux(p)
    spec = ModelSpec(backend="async", input_name="images", output_names=("num_dets", "boxes", "scores", "classes"),
                     input_hw=(32, 64), class_names=("a",), detector=DetectorOptions(), mean=(0.5,) * 3,
                     std=(0.25,) * 3, nms="graph")
    opts = DetectOptions(engine="x", images=str(path), out=str(tmp_path / "out"), quiet=True)
    for stop_after, done in ((2, None), (None, 5)):
        journal = Journal(tmp_path / "out" / ".partial" / "journal.jsonl", {"video": 1})
        summary = detect_source(open_source(path), _AsyncRunner(), spec,
                                DetectOptions(**{**opts.__dict__, "stop_after": stop_after}), journal, batch=2)
        journal.close()
    assert summary["images"]["done"] == 5 and summary["processed"] == 3
    doc = json.loads((tmp_path / "out" / "detections.json").read_text())
    assert [im["file_name"] for im in doc["images"]] == [f"clip/{i:06d}" for i in range(5)]


# ----------------------------------------------------------------------------- the runner's own code, on stand-ins
# TensorRT: NVIDIA's real ``tensorrt/__init__.py`` of 10.9 and 11.4 (its ``nptype``, logger set-up) on the
# stand-in core of tests/trt_core.py, with an engine whose every method name is a name of those bindings.
# cuda-python: host memory plays the GPU, and every call the runner makes is first checked against the
# installed ``cuda.bindings.runtime`` (function exists, arguments bind to its signature, and, on a machine
# without a CUDA driver where the real call only returns an error, the real result tuple has the length
# the stand-in returns). This checks the runner's bookkeeping and its API use, not TensorRT itself: that
# is the job of the tensorrt-marked test in test_infer_runner.py.


def _real_cudart():
    try:
        from cuda.bindings import runtime
    except ImportError:
        return None
    return runtime


class _CheckedCudart:
    """cuda-python stand-in: host memory as device memory, copies done at once, calls checked against cuda-bindings."""

    class _Props:
        name, major, minor = b"Fake GPU 9000", 9, 0

    def __init__(self):
        import ctypes

        self.real = _real_cudart()
        self.no_driver = self.real is not None and int(self.real.cudaGetDeviceCount()[0]) != 0
        self.ctypes, self.blocks, self.freed, self.checked = ctypes, {}, 0, set()
        self.cudaMemcpyKind = self.real.cudaMemcpyKind if self.real else _MemcpyKind

    def _call(self, name, args, result):
        if self.real is not None:
            import inspect

            fn = getattr(self.real, name)
            inspect.signature(fn).bind(*args)
            if self.no_driver:  # the real call fails at once with cudaErrorInsufficientDriver
                real = fn(*args)
                assert isinstance(real, tuple) and len(real) == len(result), (name, real, result)
            self.checked.add(name)
        return result

    def _handle(self, kind):
        return getattr(self.real, kind)() if self.real else object()

    def cudaMallocHost(self, size):
        buf = (self.ctypes.c_uint8 * size)()
        addr = self.ctypes.addressof(buf)
        self.blocks[addr] = buf
        return self._call("cudaMallocHost", (size,), (0, addr))

    def cudaMalloc(self, size):
        result = self.cudaMallocHost(size)
        return self._call("cudaMalloc", (size,), result)

    def cudaFreeHost(self, ptr):
        self.freed += 1
        return self._call("cudaFreeHost", (ptr,), (0,))

    def cudaFree(self, devPtr):
        self.freed += 1
        return self._call("cudaFree", (devPtr,), (0,))

    def cudaMemcpyAsync(self, dst, src, count, kind, stream):
        self.ctypes.memmove(dst, src, count)
        return self._call("cudaMemcpyAsync", (dst, src, count, kind, stream), (0,))

    def cudaSetDevice(self, device):
        return self._call("cudaSetDevice", (device,), (0,))

    def cudaGetDeviceProperties(self, device):
        return self._call("cudaGetDeviceProperties", (device,), (0, self._Props()))

    def cudaStreamCreate(self):
        return self._call("cudaStreamCreate", (), (0, self._handle("cudaStream_t")))

    def cudaStreamSynchronize(self, stream):
        return self._call("cudaStreamSynchronize", (stream,), (0,))

    def cudaStreamDestroy(self, stream):
        return self._call("cudaStreamDestroy", (stream,), (0,))

    def cudaEventCreate(self):
        return self._call("cudaEventCreate", (), (0, self._handle("cudaEvent_t")))

    def cudaEventRecord(self, event, stream):
        return self._call("cudaEventRecord", (event, stream), (0,))

    def cudaEventSynchronize(self, event):
        return self._call("cudaEventSynchronize", (event,), (0,))

    def cudaEventDestroy(self, event):
        return self._call("cudaEventDestroy", (event,), (0,))

    def cudaEventElapsedTime(self, start, end):
        return self._call("cudaEventElapsedTime", (start, end), (0, 2.5))


class _MemcpyKind:
    cudaMemcpyHostToDevice, cudaMemcpyDeviceToHost = 1, 2


def _engine_classes(trt):
    """Engine ``images [-1, 3, -1, -1] -> total [-1, 1]`` (sum of each image), profile batch 1..4."""

    class Engine(trt.ICudaEngine):
        num_io_tensors = 2
        _names = ["images", "total"]

        def get_tensor_name(self, index):
            return self._names[index]

        def get_tensor_mode(self, name):
            return trt.TensorIOMode.INPUT if name == "images" else trt.TensorIOMode.OUTPUT

        def get_tensor_shape(self, name):
            return (-1, 3, -1, -1) if name == "images" else (-1, 1)

        def get_tensor_dtype(self, name):
            return trt.float32

        def get_tensor_profile_shape(self, name, profile_index):
            return [(1, 3, 8, 8), (2, 3, 16, 16), (4, 3, 32, 32)]

        def create_execution_context(self):
            return Context()

    class Context(trt.IExecutionContext):
        def __init__(self):
            self._shape, self._addr, self._runs = None, {}, []

        def set_input_shape(self, name, shape):
            self._shape = tuple(shape)
            return True

        def get_tensor_shape(self, name):
            return self._shape if name == "images" else (self._shape[0], 1)

        def set_tensor_address(self, name, memory):
            self._addr[name] = memory
            return True

        def execute_async_v3(self, stream_handle):
            import ctypes

            assert isinstance(stream_handle, int)
            n = int(np.prod(self._shape))
            x = np.ctypeslib.as_array(ctypes.cast(self._addr["images"], ctypes.POINTER(ctypes.c_float)), (n,))
            y = np.ctypeslib.as_array(ctypes.cast(self._addr["total"], ctypes.POINTER(ctypes.c_float)),
                                      (self._shape[0],))
            y[:] = x.reshape(self._shape).sum(axis=(1, 2, 3))
            self._runs.append(self._shape)
            return True

    return Engine, Context


@pytest.fixture(params=trt_core.FRONT_END_VERSIONS)
def fake_trt(request, monkeypatch, tmp_path):
    import cat_deploy.runtime.tensorrt as mod

    saved = {k: m for k, m in sys.modules.items() if k == "tensorrt" or k.startswith("tensorrt.")}
    trt = trt_core.load_tensorrt(request.param, sys.modules)
    engine_cls, context_cls = _engine_classes(trt)
    for cls in (engine_cls, context_cls):
        lacking = [n for n in vars(cls) if not n.startswith("_") and not trt_core.has_name(request.param, n)]
        assert not lacking, f"the stand-in engine uses names TensorRT {request.param} lacks: {lacking}"
    trt.Runtime._plans[b"plan"] = engine_cls
    cudart = _CheckedCudart()
    monkeypatch.setattr(mod, "_import_cudart", lambda: cudart)
    engine = tmp_path / "cat.engine"
    engine.write_bytes(b"plan")
    try:
        yield engine, cudart, trt
    finally:
        trt_core.restore_modules(saved)


def test_runner_pipelines_on_fakes(fake_trt):
    engine, cudart, trt = fake_trt
    sidecar = _make_sidecar(["total"], {"compute_capability": "9.0", "gpu": "Fake GPU 9000"}, {"tensorrt": trt.__version__})
    rng = np.random.default_rng(0)
    xs = [rng.standard_normal((b, 3, h, w)).astype(np.float32) for b, h, w in ((4, 32, 32), (1, 8, 8), (3, 16, 24))]
    with TensorRTRunner(engine, buffers=2, warmup=1, sidecar=sidecar) as r:
        assert r.input_names == ["images"] and r.output_names == ["total"] and r.max_in_flight == 2
        assert r._context._runs == [(2, 3, 16, 16)]  # warm-up at the profile's opt shape
        assert r.layout.input.dtype == np.float32  # NVIDIA's trt.nptype
        t0 = r.submit({"images": xs[0]})
        t1 = r.submit({"images": xs[1]})  # second buffer set while the first is in flight
        with pytest.raises(RuntimeError, match="collect"):
            r.submit({"images": xs[2]})  # both sets busy
        with pytest.raises(RuntimeError, match="order"):
            r.collect(t1)
        out0 = r.collect(t0)
        t2 = r.submit({"images": xs[2]})
        out1, out2 = r.collect(t1), r.collect(t2)
        for x, out in zip(xs, (out0, out1, out2)):
            assert out["total"].shape == (len(x), 1)
            np.testing.assert_allclose(out["total"][:, 0], x.sum(axis=(1, 2, 3)), rtol=1e-5)
        assert r.last_inference_time() == pytest.approx(0.0025)
        np.testing.assert_allclose(r.infer({"images": xs[1]})["total"][:, 0], xs[1].sum(axis=(1, 2, 3)), rtol=1e-5)
        with pytest.raises(BackendUnavailable, match="outside the engine's profile"):
            r.infer({"images": np.zeros((5, 3, 8, 8), np.float32)})
        assert not r._runtime.engine_host_code_allowed
    assert cudart.freed == 2 * 2 * 2  # 2 sets x (images, total) x (host, device)


def test_cuda_python_calls_match_cuda_bindings(fake_trt):
    """Every cuda-python function the runner calls exists in cuda-bindings with that arity and result length."""
    real = pytest.importorskip("cuda.bindings.runtime", reason="cuda-bindings (a torch dependency) is not installed")
    engine, cudart, trt = fake_trt
    with TensorRTRunner(engine, buffers=2, warmup=1, sidecar=_make_sidecar(["total"])) as r:
        r.infer({"images": np.ones((1, 3, 8, 8), np.float32)})
    used = set(trt_core.trt_names_used(Path(mod_path()), roots=("cudart",)))
    assert used and used - {"cudaMemcpyKind", "cudaMemcpyHostToDevice", "cudaMemcpyDeviceToHost"} <= cudart.checked
    props = real.cudaDeviceProp()
    assert isinstance(props.name, bytes) and isinstance(props.major, int) and isinstance(props.minor, int)


def mod_path():
    import cat_deploy.runtime.tensorrt as mod

    return mod.__file__


def test_version_compatible_engine_allows_host_code(fake_trt):
    engine, _, trt = fake_trt
    sidecar = _make_sidecar(["total"], engine={"tensorrt": trt.__version__, "version_compatible": True})
    with TensorRTRunner(engine, warmup=0, sidecar=sidecar) as r:
        assert r._runtime.engine_host_code_allowed


def test_runner_refuses_a_mismatched_engine(fake_trt):
    engine, _, trt = fake_trt
    other = _make_sidecar(versions={"compute_capability": "8.6", "gpu": "NVIDIA RTX A6000"}, engine={"tensorrt": "10.8.0"})
    with pytest.raises(EngineMismatch) as e:
        TensorRTRunner(engine, sidecar=other).activate()
    msg = str(e.value)
    assert "10.8.0" in msg and "8.6" in msg and "export.py" in msg and "\n" not in msg
    engine.write_bytes(b"damaged")
    with pytest.raises(EngineMismatch, match="could not load"):
        TensorRTRunner(engine, sidecar=_make_sidecar(["total"])).activate()
    wrong = _make_sidecar(engine={"tensorrt": trt.__version__})
    engine.write_bytes(b"plan")
    with pytest.raises(BackendUnavailable, match="another export"):
        TensorRTRunner(engine, sidecar=wrong).activate()


def test_plugin_registration_failure_is_reported_not_swallowed(fake_trt, monkeypatch):
    """A --gep plugin engine: a failed plugin registration is a warning, and part of the error if loading fails."""
    import types

    import cat_deploy.runtime.tensorrt as mod

    def register_plugin():
        raise ImportError("the FusedCatPool TensorRT plugin needs TensorRT >= 10.9 with tensorrt.plugin")

    monkeypatch.setattr(mod, "cat_pool_trt", types.SimpleNamespace(register_plugin=register_plugin))
    engine, _, trt = fake_trt
    sidecar = _make_sidecar(["total"], {"compute_capability": "9.0", "gpu": "Fake GPU 9000"},
                            {"tensorrt": trt.__version__}).replace(gep="plugin")
    with TensorRTRunner(engine, buffers=1, warmup=0, sidecar=sidecar) as r:
        assert any("FusedCatPool plugin definitions not registered" in w for w in r.warnings)
    engine.write_bytes(b"damaged")
    with pytest.raises(EngineMismatch, match="FusedCatPool plugin was not registered.*tensorrt.plugin"):
        TensorRTRunner(engine, sidecar=sidecar).activate()
