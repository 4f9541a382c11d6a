"""``infer.py --ray``: the same outputs as the single-process run, resume (by input identity, across modes and
after the folder changed), a killed actor, bad images.

The Ray tests start their own local cluster (2 CPUs, 128 MiB object store, no dashboard) once per test
process (under ``pytest -n 2`` each worker that runs some of them has its own) and stop it at the end;
every wait on the cluster is bounded.
"""
import io
import json
import os
import shutil
import signal
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from cat_deploy.data.synthetic import render_scene
from cat_deploy.runtime.detect import DetectOptions, InferError, run_detection
from cat_deploy.runtime.source import SourceError
from cat_deploy.runtime.ray_batch import INSTALL_HINT, _prepare, _source, parquet_table, plan_actors

ROOT = Path(__file__).resolve().parents[2]
DEMO_CKPT = ROOT / "assets" / "demo" / "cat_retinanet_tiny.pth"
SAMPLES = ROOT / "assets" / "samples"


@pytest.fixture(scope="module")
def onnx_model(tmp_path_factory):
    """The demo detector exported to ONNX at static batch 1 (parity is export.py's business, not tested here)."""
    from cat_deploy import save_checkpoint
    from cat_deploy.data.synthetic import CLASSES
    from cat_deploy.exporter import ExportOptions, run_export
    from cat_deploy.models import create_model

    tmp = tmp_path_factory.mktemp("ray_model")
    ckpt = DEMO_CKPT
    if not ckpt.is_file():
        ckpt = tmp / "tiny.pth"
        save_checkpoint(create_model("retinanet_tiny", num_classes=6, class_names=CLASSES), ckpt)
    result = run_export(ExportOptions(ckpt=str(ckpt), out=str(tmp / "export"), val_images=0, validate=False,
                                      simplify=False), log=lambda s: None)
    return str(result["onnx"]), 0.05 if ckpt == DEMO_CKPT else 0.02


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """Sixteen scenes (three of them KITTI-sized) and two files that are not images."""
    d = tmp_path_factory.mktemp("ray_images")
    for i in range(13):
        img, _ = render_scene(np.random.default_rng([4242, i]), 640, 192)
        img.save(d / f"s{i:02d}.jpg", quality=90)
    for i in range(3):
        img, _ = render_scene(np.random.default_rng([4343, i]), 1242, 375)
        img.save(d / f"k{i}.jpg", quality=90)
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=90)
    (d / "t_truncated.jpg").write_bytes(buf.getvalue()[: len(buf.getvalue()) // 3])
    (d / "u_text.png").write_text("not an image\n")
    return d


def _opts(onnx_model, folder, out, **kw):
    onnx, conf = onnx_model
    return DetectOptions(engine=onnx, images=str(folder), out=str(out), conf=conf, device="cpu", quiet=True,
                         save_json=True, save_txt=True, **kw)


@pytest.fixture(scope="module")
def reference(onnx_model, folder, tmp_path_factory):
    """The single-process run (plain infer.py) that every Ray run must reproduce."""
    out = tmp_path_factory.mktemp("ray_reference")
    s = run_detection(_opts(onnx_model, folder, out))
    assert s["images"]["done"] == 16 and s["images"]["skipped"] == 2
    return out


@pytest.fixture(scope="module")
def cluster():
    ray = pytest.importorskip("ray", reason="Ray is not installed (pip install '.[ray]')")
    import logging

    ray.init(num_cpus=2, object_store_memory=128 * 2**20, include_dashboard=False, log_to_driver=False,
             logging_level=logging.WARNING, configure_logging=False)
    try:
        yield ray
    finally:
        ray.shutdown()


def _journal(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / ".partial" / "journal.jsonl").read_text().splitlines()[1:]]


def _same_outputs(ray_out: Path, ref: Path, n: int = 16) -> None:
    """Same detections.json bytes and label files as infer.py's run in ``ref``; every input journaled once."""
    assert (ray_out / "detections.json").read_bytes() == (ref / "detections.json").read_bytes()
    for pattern in ("labels/*.json", "labels/*.txt"):
        theirs = {p.name: p.read_bytes() for p in ref.glob(pattern)}
        mine = {p.name: p.read_bytes() for p in ray_out.glob(pattern) if p.name in theirs}
        assert mine == theirs and len(mine) == n
    names = [r["name"] for r in _journal(ray_out)]
    assert sorted(names) == sorted(r["name"] for r in _journal(ref)), "journal: every input exactly once"


@pytest.mark.slow
def test_ray_run_writes_what_infer_py_writes(cluster, onnx_model, folder, reference, tmp_path):
    out = tmp_path / "ray"
    s = _opts(onnx_model, folder, out, ray="")
    from cat_deploy.runtime.ray_batch import run_ray

    summary = run_ray(s)
    _same_outputs(out, reference)
    ref_summary = json.loads((reference / "summary.json").read_text())
    assert summary["skipped"] == ref_summary["skipped"]  # bad images reported, not fatal
    assert {k["file"] for k in summary["skipped"]} == {"t_truncated.jpg", "u_text.png"}
    assert summary["ray"]["actors"] == 1 and summary["ray"]["actor_processes"] == 1
    assert summary["stages"]["inference"]["count"] == 16 and summary["processed"] == 16

    import pyarrow.parquet as pq

    table = pq.read_table(out / "detections.parquet")
    doc = json.loads((out / "detections.json").read_text())
    assert table.num_rows == len(doc["annotations"]) > 0
    assert table.to_pylist() == parquet_table(doc).to_pylist()
    first = table.slice(0, 1).to_pylist()[0]
    a = doc["annotations"][0]
    assert (first["image_id"], first["file_name"], first["score"]) == (a["image_id"], a["file_name"], a["score"])
    assert [first[k] for k in "xywh"] == a["bbox"]


@pytest.mark.slow
def test_ray_resumes_by_input_identity_across_modes(cluster, onnx_model, folder, reference, tmp_path):
    """Interrupted Ray run -> Ray resumes it -> infer.py finds nothing left -> the folder changes (one file edited,
    one added, one removed) -> Ray runs exactly the new and edited ones, as infer.py would."""
    from cat_deploy.runtime.ray_batch import run_ray

    images = tmp_path / "images"
    shutil.copytree(folder, images)
    out = tmp_path / "split"
    first = run_ray(_opts(onnx_model, images, out, ray="", stop_after=5))
    assert first["interrupted"] and not (out / "detections.json").exists()
    journaled = len(_journal(out))
    assert 5 <= journaled < 18

    second = run_ray(_opts(onnx_model, images, out, ray=""))
    assert not second["interrupted"] and second["images"]["resumed"] == journaled
    assert second["ray"]["submitted"] == 18 - journaled, "frames already written must not run again"
    assert second["processed"] == 16 - first["processed"] and second["ray"]["duplicates_dropped"] == 0
    _same_outputs(out, reference)

    third = run_detection(_opts(onnx_model, images, out))  # infer.py without --ray finds nothing left to do
    assert third["processed"] == 0 and third["images"]["done"] == 16

    render_scene(np.random.default_rng([4444, 1]), 640, 192)[0].save(images / "s00.jpg", quality=80)  # edited
    render_scene(np.random.default_rng([4444, 2]), 640, 192)[0].save(images / "s99.jpg", quality=90)  # added
    (images / "k0.jpg").unlink()  # removed
    fourth = run_ray(_opts(onnx_model, images, out, ray=""))
    assert fourth["source_changes"] == {"added": ["s99.jpg"], "removed": ["k0.jpg"], "modified": ["s00.jpg"]}
    assert fourth["ray"]["submitted"] == 2 and fourth["processed"] == 2
    assert any("1 added, 1 removed, 1 modified" in w for w in fourth["warnings"])
    changed_ref = tmp_path / "changed_reference"
    run_detection(_opts(onnx_model, images, changed_ref))
    _same_outputs(out, changed_ref)


def _descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                stat = Path(f"/proc/{d}/stat").read_text()
            except OSError:
                continue
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            children.setdefault(ppid, []).append(int(d))
    out, todo = [], [pid]
    while todo:
        for c in children.get(todo.pop(), []):
            out.append(c)
            todo.append(c)
    return out


def _actor_pids() -> list[int]:
    pids = []
    for p in _descendants(os.getpid()):
        try:
            if b"MapBatches(_Detector)" in Path(f"/proc/{p}/cmdline").read_bytes():
                pids.append(p)
        except OSError:
            pass
    return pids


@pytest.mark.slow
def test_killed_actor_is_replaced_and_nothing_is_lost_or_duplicated(cluster, onnx_model, folder, reference, tmp_path):
    """SIGKILL the detection actor's process once 4 images are journaled: Ray restarts it, retries the batch
    it held, and the run ends with every image exactly once and the same files as infer.py."""
    from cat_deploy.runtime.ray_batch import run_ray

    out = tmp_path / "killed"
    journal = out / ".partial" / "journal.jsonl"
    killed: dict = {}
    stop = threading.Event()

    def killer():
        deadline = time.monotonic() + 240
        while not stop.is_set() and time.monotonic() < deadline:
            done = len(journal.read_text().splitlines()) - 1 if journal.is_file() else 0
            if done >= 4:
                pids = _actor_pids()
                if pids:
                    os.kill(pids[0], signal.SIGKILL)
                    killed.update(pid=pids[0], journaled=done)
                    return
            time.sleep(0.005)

    t = threading.Thread(target=killer, daemon=True)
    t.start()
    try:
        summary = run_ray(_opts(onnx_model, folder, out, ray="", ray_actors=1))
    finally:
        stop.set()
        t.join(timeout=10)
    assert killed, "the actor was never killed"
    assert killed["journaled"] < 18, "killed too late: no work left to retry"
    assert summary["ray"]["actor_processes"] == 2, "the restarted actor finished the run"
    assert summary["processed"] == 16 and not summary["interrupted"]
    _same_outputs(out, reference)


def test_uri_inputs_are_listed_and_decoded_like_local_files(onnx_model, folder):
    """``file://`` goes through pyarrow.fs (as s3:// would): same ids, names and tensors as the local path."""
    from cat_deploy.runtime.backends import open_model

    _, spec = open_model(onnx_model[0], "cpu")
    local, local_where = _source(DetectOptions(engine="", images=str(folder)))
    remote, remote_where = _source(DetectOptions(engine="", images=f"file://{folder}"))
    assert remote.kind == "uri" and remote.count == 18
    assert [(it.id, it.identity) for it in remote.items] == [(it.id, it.identity) for it in local.items], \
        "a URI's inputs have the identities (name, size, mtime) of the same files read locally"
    assert next(iter(remote_where.values())).startswith("file://")

    def cols(src, where):
        rows = [{"identity": json.dumps(it.identity), "name": it.name, "uri": where[it.name]} for it in src.items]
        return {k: np.array([r[k] for r in rows], dtype=object) for k in rows[0]}

    a, b = _prepare(cols(local, local_where), spec, 10**8), _prepare(cols(remote, remote_where), spec, 10**8)
    assert np.array_equal(a["tensor"], b["tensor"]) and np.array_equal(a["lb"], b["lb"])
    assert list(a["error"]) == list(b["error"])
    assert sum(bool(e) for e in a["error"]) == 2
    with pytest.raises(SourceError, match="not found"):
        _source(DetectOptions(engine="", images=f"file://{folder}/missing/"))


def test_actor_plan():
    cpu1 = plan_actors(2, 0)
    assert cpu1["actors"] == 1 and cpu1["threads"] == 2 and cpu1["prepare_cpus"] >= 1
    cpu2 = plan_actors(2, 0, 2)
    assert cpu2["threads"] == 1 and 2 * cpu2["actor_resources"]["num_cpus"] + cpu2["prepare_cpus"] <= 2
    for p in (cpu1, cpu2, plan_actors(1, 0), plan_actors(64, 0, 8)):
        assert p["prepare_cpus"] > 0, "decoding must always have a CPU left"
        assert p["prepare_concurrency"] != p["actors"], "equal sizes let Ray Data fuse decoding into the actors"
    gpu = plan_actors(32, 4)
    assert gpu["actors"] == 4 and gpu["actor_resources"] == {"num_gpus": 1, "num_cpus": 1}
    with pytest.raises(InferError, match="--ray-actors"):
        plan_actors(2, 0, 0)


def test_missing_ray_is_one_line_and_exit_3(onnx_model, folder, tmp_path, monkeypatch, capsys):
    import importlib.util
    import sys

    spec = importlib.util.spec_from_file_location("infer_cli_ray", ROOT / "infer.py")
    infer = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(infer)
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError
    rc = infer.main(["--engine", onnx_model[0], "--images", str(folder), "--out", str(tmp_path), "--ray"])
    err = capsys.readouterr().err.strip()
    assert rc == 3 and err == f"infer.py: error: {INSTALL_HINT}"


def test_outputs_never_land_on_the_inputs(onnx_model, folder, tmp_path, capsys):
    """The output checks of infer.py run before any cluster starts: --out on the input folder is refused (exit 2)
    and nothing is written there."""
    import importlib.util

    before = sorted(p.name for p in folder.iterdir())
    spec = importlib.util.spec_from_file_location("infer_cli_ray_out", ROOT / "infer.py")
    infer = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(infer)
    for images in (str(folder), f"file://{folder}"):
        rc = infer.main(["--engine", onnx_model[0], "--images", images, "--out", str(folder), "--ray", "--quiet"])
        err = capsys.readouterr().err.strip()
        assert rc == 2 and "holds the input images" in err and "\n" not in err
    assert sorted(p.name for p in folder.iterdir()) == before
