"""A real Triton server (the one bundled with nvidia-pytriton) serving the repository ``export.py --triton-repo``
writes, on 127.0.0.1, talked to with tritonclient over HTTP and gRPC.

The server runs in the serve environment (``.venv-serve``, made by ``scripts/setup.sh``: NumPy 1.x,
nvidia-pytriton, the torch-free runtime; ``$CAT_DEPLOY_SERVE_PYTHON`` names another), the clients in
this process's environment (NumPy 2). Without a serve environment these tests skip, except under
``scripts/test.sh`` (CI), which sets ``$CAT_DEPLOY_SERVE_PYTHON``: there a missing one fails.

One server per test process (its start takes most of the time here; under ``pytest -n 2`` each worker
running some of these tests starts its own, on its own ports); every wait is bounded. The
network runs on the Python backend (cat_deploy's ONNX Runtime runner): the bundled server has
no onnxruntime backend; the ensemble, the pre/post-processing models, the batcher and the
error paths are Triton's own.
"""
import io
import json
import os
import subprocess
import threading
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cat_deploy.runtime.detect import DetectOptions, run_detection
from cat_deploy.serve.client import RequestFailed, TritonDetector
from cat_deploy.serve.detector import ServeConfig
from cat_deploy.serve.loadtest import run_load
from cat_deploy.serve.server import CHECKOUT_SERVE_PYTHON, SERVE_PYTHON_ENV, TritonServer, probe_environment
from cat_deploy.serve.triton_repo import TritonRepoOptions, write_triton_repository

pytest.importorskip("tritonclient.grpc", reason="tritonclient is not installed (pip install '.[serve-client]')")

ROOT = Path(__file__).resolve().parents[2]
DEMO_CKPT = ROOT / "assets" / "demo" / "cat_retinanet_tiny.pth"
SAMPLES = ROOT / "assets" / "samples"
SERVE = ServeConfig(conf=0.05, max_det=50, max_bytes=2_000_000, max_pixels=30_000_000)

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def serve_python():
    """The serve environment's interpreter; skip (fail under scripts/test.sh) when there is none."""
    given = os.environ.get(SERVE_PYTHON_ENV)
    python = Path(given) if given else CHECKOUT_SERVE_PYTHON
    if not python.is_file():
        if given:
            pytest.fail(f"${SERVE_PYTHON_ENV} names '{given}', which does not exist: run scripts/setup.sh")
        pytest.skip(f"no serve environment ('{python}' is missing): run scripts/setup.sh, which makes .venv-serve "
                    "with nvidia-pytriton (NumPy<2)")
    return python


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """The demo detector exported by export.py with --triton-repo (dynamic batch 8, network on the Python backend)."""
    from cat_deploy import save_checkpoint
    from cat_deploy.data.synthetic import CLASSES
    from cat_deploy.exporter import ExportOptions, run_export
    from cat_deploy.models import create_model

    tmp = tmp_path_factory.mktemp("serve")
    ckpt = DEMO_CKPT
    if not ckpt.is_file():
        ckpt = tmp / "tiny.pth"
        save_checkpoint(create_model("retinanet_tiny", num_classes=6, class_names=CLASSES), ckpt)
    result = run_export(ExportOptions(ckpt=str(ckpt), out=str(tmp / "export"), validate=False, simplify=False,
                                      dynamic=True, batch=8, conf=SERVE.conf, iou=SERVE.iou, max_det=SERVE.max_det,
                                      triton_repo=str(tmp / "repo"), triton_backend="python"), log=lambda s: None)
    return tmp, Path(result["onnx"]), result["triton"]


@pytest.fixture(scope="module")
def server(serve_python, exported):
    tmp, onnx, _ = exported
    # The test's limits and a 50 ms batching window (on this shared 2-core machine, concurrent requests then
    # reliably meet in the queue): the repository written again over export.py's, as a deployment would tune it.
    repo = write_triton_repository(onnx, tmp / "repo", TritonRepoOptions(backend="python", serve=SERVE, pre_instances=1,
                                                                          max_queue_delay_us=50_000))["repository"]
    with TritonServer(repo, log_path=tmp / "tritonserver.log", start_timeout=600, python=serve_python) as s:
        yield s


def test_the_server_runs_in_its_own_environment(server, serve_python):
    """The server's environment has NumPy 1.x (nvidia-pytriton's stub needs it) and its models import no PyTorch;
    the clients here talk to it from this environment, whatever its NumPy."""
    env = server.environment
    assert env.python == serve_python and env.numpy.startswith("1.") and not env.imports_torch
    r = subprocess.run([str(serve_python), "-c", "import importlib.util as u; print(u.find_spec('torch') is None)"],
                       capture_output=True, text=True, timeout=60)
    assert r.stdout.strip() == "True", "the serve environment is the torch-free runtime"
    assert probe_environment(serve_python).binary == env.binary


@pytest.fixture(scope="module")
def reference(exported):
    """infer.py on the sample images, batch 1: the journal holds each image's boxes at full precision."""
    tmp, onnx, _ = exported
    out = tmp / "infer"
    run_detection(DetectOptions(engine=str(onnx), images=str(SAMPLES), out=str(out), conf=SERVE.conf, iou=SERVE.iou,
                                max_det=SERVE.max_det, batch=1, device="cpu", quiet=True))
    lines = (out / ".partial" / "journal.jsonl").read_text().splitlines()[1:]
    return {r["name"]: r for r in map(json.loads, lines)}


def _same(det, rec, exact=True):
    boxes = np.asarray(rec["boxes"], np.float32).reshape(-1, 4)
    assert len(det.scores) == len(rec["scores"]) > 0
    if exact:  # same batch (1) as infer.py: the same float32 numbers
        assert np.array_equal(det.boxes, boxes) and np.array_equal(det.scores, np.float32(rec["scores"]))
    else:  # merged into a larger batch: ONNX Runtime may round differently in the last bits
        assert np.allclose(det.boxes, boxes, rtol=1e-4, atol=1e-2) and np.allclose(det.scores, rec["scores"], atol=1e-4)
    assert det.classes.tolist() == rec["labels"]


@pytest.mark.parametrize("protocol", ["http", "grpc"])
def test_detections_equal_infer_py(server, reference, protocol):
    url = server.http_url if protocol == "http" else server.grpc_url
    with TritonDetector(url, protocol) as client:
        for name, rec in sorted(reference.items()):
            _same(client.detect([(SAMPLES / name).read_bytes()])[0], rec)
        both = client.detect([(SAMPLES / n).read_bytes() for n in sorted(reference)[:2]])  # one request, batch 2
        for det, name in zip(both, sorted(reference)[:2]):
            _same(det, reference[name], exact=False)


def test_dynamic_batching_merges_concurrent_requests(server, reference):
    names = sorted(reference)
    results, errors = {}, []

    def send(k):
        try:
            with TritonDetector(server.grpc_url, "grpc") as c:
                results[k] = c.detect([(SAMPLES / names[k % len(names)]).read_bytes()])[0]
        except Exception as e:  # noqa: BLE001 - collected and asserted below
            errors.append(e)

    with TritonDetector(server.http_url) as c:
        before = c.statistics("cat_detect_net")
        threads = [threading.Thread(target=send, args=(k,)) for k in range(12)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=300)
        after = c.statistics("cat_detect_net")
    assert not errors and len(results) == 12
    images = after["inference_count"] - before["inference_count"]
    runs = after["execution_count"] - before["execution_count"]
    assert images == 12 and runs < images, f"{images} images in {runs} network runs: nothing was batched"
    for k, det in results.items():
        _same(det, reference[names[k % len(names)]], exact=False)


def _png_of_size(w, h) -> bytes:
    buf = io.BytesIO()
    Image.new("L", (w, h)).save(buf, format="PNG", optimize=True)
    return buf.getvalue()


@pytest.mark.parametrize("case, words", [
    ("wrong_dtype", "data"),
    ("wrong_shape", "shape"),
    ("too_many", "batch"),
    ("not_an_image", "not an image in a known format"),
    ("oversized", "more than this server's limit of 2000000 bytes"),
    ("too_many_pixels", "exceeds max_pixels"),
])
def test_malformed_requests_get_a_clear_error_and_the_server_keeps_serving(server, reference, case, words):
    import tritonclient.http as httpclient

    name = sorted(reference)[0]
    with TritonDetector(server.http_url) as client:
        if case in ("wrong_dtype", "wrong_shape", "too_many"):
            arr = {"wrong_dtype": np.zeros((1, 1), np.float32),
                   "wrong_shape": np.array([[b"a", b"b"]], dtype=object),
                   "too_many": np.array([[(SAMPLES / name).read_bytes()]] * 9, dtype=object)}[case]
            inp = httpclient.InferInput("IMAGE", list(arr.shape), "FP32" if arr.dtype == np.float32 else "BYTES")
            inp.set_data_from_numpy(arr)
            with pytest.raises(RequestFailed, match=words) as e:
                client.infer_raw([inp])
        else:
            data = {"not_an_image": b"GET / HTTP/1.1\r\n\r\n",
                    "oversized": np.random.default_rng(0).bytes(2_100_000),
                    "too_many_pixels": _png_of_size(6000, 6000)}[case]
            with pytest.raises(RequestFailed, match=words) as e:
                client.detect([data])
        assert "\n" not in str(e.value).strip()
        _same(client.detect([(SAMPLES / name).read_bytes()])[0], reference[name])  # still serving
    with TritonDetector(server.grpc_url, "grpc") as client:
        _same(client.detect([(SAMPLES / name).read_bytes()])[0], reference[name])


def test_bounded_load_loses_nothing(server):
    images = [p.read_bytes() for p in sorted(SAMPLES.glob("*.jpg"))]
    r = run_load(server.grpc_url, "grpc", images, clients=4, requests=3, timeout_s=300)
    assert (r["sent"], r["ok"], r["failed"], r["lost"]) == (12, 12, 0, 0)
    assert r["p50_ms"] <= r["p90_ms"] <= r["p99_ms"] and r["throughput_rps"] > 0
    assert r["network_images"] == 12
