"""infer.py end to end on CPU: PyTorch and ONNX Runtime backends, bad files, resume, box geometry, CLI errors."""
import io
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cat_deploy.core.sidecar import read_sidecar
from cat_deploy.data.synthetic import CLASSES, render_scene
from cat_deploy.runtime.backends import ModelError, ModelSpec, choose_batch, open_model, parse_classes
from cat_deploy.runtime.detect import DetectOptions, InferError, detect_source, run_detection
from cat_deploy.runtime.outputs import Journal
from cat_deploy.runtime.runners import Runner
from cat_deploy.runtime.source import open_source

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "assets" / "samples"
DEMO_CKPT = ROOT / "assets" / "demo" / "cat_retinanet_tiny.pth"


def _load_cli():
    import importlib.util

    spec = importlib.util.spec_from_file_location("infer_cli", ROOT / "infer.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


infer = _load_cli()


@pytest.fixture(scope="session")
def detector(tmp_path_factory):
    """(checkpoint, onnx with dynamic batch 1..2, conf): the shipped demo detector when present, else an
    untrained tiny one.

    Untrained heads score every anchor near the focal-loss prior 0.01 (max ~0.03), so they
    need a lower threshold to produce detections at all.
    """
    from cat_deploy import save_checkpoint
    from cat_deploy.exporter import ExportOptions, run_export
    from cat_deploy.models import create_model

    tmp = tmp_path_factory.mktemp("detector")
    if DEMO_CKPT.is_file():
        ckpt, conf = DEMO_CKPT, 0.05
    else:
        ckpt, conf = tmp / "tiny.pth", 0.02
        save_checkpoint(create_model("retinanet_tiny", num_classes=6, class_names=CLASSES), ckpt)
    # Parity and onnxslim are covered by export.py's own tests; here only the runner matters.
    opts = ExportOptions(ckpt=str(ckpt), out=str(tmp / "export"), val_images=0, validate=False, simplify=False,
                         dynamic=True, batch=2)
    result = run_export(opts, log=lambda s: None)
    return ckpt, result["onnx"], conf


@pytest.fixture(scope="session")
def samples(tmp_path_factory):
    """The shipped sample images (KITTI-sized synthetic scenes), rendered here if missing."""
    if SAMPLES.is_dir() and len(list(SAMPLES.glob("*.jpg"))) >= 3:
        return SAMPLES
    out = tmp_path_factory.mktemp("samples")
    for i in range(3):
        render_scene(np.random.default_rng([777, i]), 1242, 375)[0].save(out / f"scene_{i + 1:02d}.jpg", quality=90)
    return out


def _dets(path):
    doc = json.loads(Path(path).read_text())
    by_image = {im["file_name"]: [] for im in doc["images"]}
    for a in doc["annotations"]:
        x, y, w, h = a["bbox"]
        by_image[a["file_name"]].append((a["category_id"], a["score"], (x, y, x + w, y + h)))
    return by_image


def _match(a, b, conf, box_rtol=1e-3, score_atol=1e-4):
    """Every detection of ``a`` clear of the threshold has one in ``b`` with the same class and box
    (to ``box_rtol``, plus 0.02 px for the 2-decimal rounding of COCO boxes) and score (to ``score_atol``)."""
    a = [d for d in a if d[1] >= conf + 1e-3]  # nearer the threshold they may fall either side in the other backend
    if not a:
        return
    assert b, f"{len(a)} detections have no counterpart"
    ca, sa, ba = (np.array([d[i] for d in a], float) for i in range(3))
    cb, sb, bb = (np.array([d[i] for d in b], float) for i in range(3))
    same_box = (np.abs(ba[:, None] - bb[None]) <= 0.02 + box_rtol * np.abs(bb[None])).all(-1)
    same = same_box & (ca[:, None] == cb[None]) & (np.abs(sa[:, None] - sb[None]) <= score_atol)
    missing = np.where(~same.any(1))[0]
    assert not len(missing), f"no match for class {ca[missing[0]]} score {sa[missing[0]]} box {ba[missing[0]]}"


@pytest.fixture
def one_torch_thread():
    """PyTorch's OpenMP threads spin-wait: on a shared 2-core runner (pytest -n 2, reader threads) two of them
    can make a 60 ms batch take seconds. One thread keeps the test's time predictable."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def test_pth_and_onnx_give_the_same_detections(detector, samples, tmp_path, one_torch_thread):
    ckpt, onnx, conf = detector
    runs = {}
    ann = Path(samples) / "annotations.json"
    for name, model, batch in (("pth", ckpt, 2), ("onnx", onnx, 1)):  # also: batch size must not matter
        s = run_detection(DetectOptions(engine=str(model), images=str(samples), out=str(tmp_path / name), conf=conf,
                                        batch=batch, device="cpu", quiet=True,
                                        annotations=str(ann) if ann.is_file() else None))
        assert s["images"]["done"] == len(list(Path(samples).glob("*.jpg"))) and not s["skipped"]
        assert s["backend"] == {"pth": "pytorch", "onnx": "onnxruntime"}[name]
        assert set(s["stages"]) == {"decode", "preprocess", "inference", "postprocess"}
        assert s["stages"]["inference"]["p99"] >= s["stages"]["inference"]["p50"] > 0
        if ann.is_file():  # COCO mAP against the samples' annotations, images matched by file name
            assert s["accuracy"]["images_matched"] == s["images"]["done"] and 0 <= s["accuracy"]["map50"] <= 1
        runs[name] = _dets(tmp_path / name / "detections.json")
    assert sum(len(v) for v in runs["pth"].values()) > 0, "no detections at all"
    assert runs["pth"].keys() == runs["onnx"].keys()
    for f in runs["pth"]:
        _match(runs["pth"][f], runs["onnx"][f], conf)
        _match(runs["onnx"][f], runs["pth"][f], conf)
    doc = json.loads((tmp_path / "onnx" / "detections.json").read_text())
    a = doc["annotations"][0]
    assert {"image_id", "file_name", "category_id", "category_name", "bbox", "score"} <= set(a)
    assert a["category_name"] == CLASSES[a["category_id"] - 1]
    im = next(i for i in doc["images"] if i["id"] == a["image_id"])
    assert (im["width"], im["height"]) == (1242, 375)  # original size, not the 640x192 input
    x, y, w, h = a["bbox"]
    assert 0 <= x and x + w <= 1242.01 and 0 <= y and y + h <= 375.01


def _bad_folder(root: Path, samples: Path) -> Path:
    d = root / "mixed"
    d.mkdir()
    shutil.copy(next(iter(sorted(Path(samples).glob("*.jpg")))), d / "a_scene.jpg")
    scene = np.asarray(Image.open(d / "a_scene.jpg"))
    buf = io.BytesIO()
    Image.fromarray(scene).save(buf, format="JPEG", quality=90)
    (d / "b_truncated.jpg").write_bytes(buf.getvalue()[: len(buf.getvalue()) // 3])
    (d / "c_text.jpg").write_text("not an image at all\n")
    (d / "d_empty.png").write_bytes(b"")
    Image.fromarray((scene[..., 0].astype(np.uint16) * 257)).save(d / "e_16bit.png")
    Image.fromarray(scene[..., 1], "L").save(d / "f_gray.png")
    Image.fromarray(np.dstack([scene, np.full(scene.shape[:2], 200, np.uint8)]), "RGBA").save(d / "g_rgba.png")
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 CW for display: stored 1242x375, shown 375x1242
    Image.fromarray(scene).save(d / "h_exif.jpg", exif=exif, quality=90)
    big = Image.fromarray(scene).resize((6000, 1812))
    big.save(d / "i_large.jpg", quality=70)
    return d


def test_bad_files_are_reported_and_the_rest_detected(detector, samples, tmp_path, capsys):
    _, onnx, conf = detector
    folder = _bad_folder(tmp_path, Path(samples))
    rc = infer.main(["--engine", str(onnx), "--images", str(folder), "--out", str(tmp_path / "out"),
                     "--conf", str(conf), "--device", "cpu", "--batch", "2", "--save-images", "--save-txt"])
    assert rc == 0
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    skipped = {s["file"]: s["reason"] for s in summary["skipped"]}
    assert set(skipped) == {"b_truncated.jpg", "c_text.jpg", "d_empty.png"}
    assert "truncated" in skipped["b_truncated.jpg"]
    assert "not an image" in skipped["c_text.jpg"]
    assert "empty" in skipped["d_empty.png"]
    doc = json.loads((tmp_path / "out" / "detections.json").read_text())
    sizes = {im["file_name"]: (im["width"], im["height"]) for im in doc["images"]}
    assert set(sizes) == {"a_scene.jpg", "e_16bit.png", "f_gray.png", "g_rgba.png", "h_exif.jpg", "i_large.jpg"}
    assert sizes["h_exif.jpg"] == (375, 1242)  # EXIF orientation honoured
    assert sizes["i_large.jpg"] == (6000, 1812)
    assert [im["id"] for im in doc["images"]] == [1, 5, 6, 7, 8, 9]  # ids: position in the sorted folder
    for a in doc["annotations"]:
        w, h = sizes[a["file_name"]]
        x, y, bw, bh = a["bbox"]
        assert x >= 0 and y >= 0 and x + bw <= w + 0.01 and y + bh <= h + 0.01
    assert sorted(p.name for p in (tmp_path / "out" / "images").iterdir()) == sorted(sizes)  # one each, own format
    assert sorted(p.name for p in (tmp_path / "out" / "labels").glob("*.txt")) == sorted(f"{n}.txt" for n in sizes)
    out = capsys.readouterr()
    assert "skipped c_text.jpg" in out.err and "p99" in out.out


def test_interrupted_run_resumes_to_the_same_json(detector, samples, tmp_path):
    _, onnx, conf = detector
    folder = _bad_folder(tmp_path, Path(samples))
    for f in ("h_exif.jpg", "i_large.jpg", "e_16bit.png"):
        (folder / f).unlink()  # keep it quick: 3 good + 3 bad images
    for i, f in enumerate(sorted(Path(samples).glob("*.jpg"))[:3]):
        shutil.copy(f, folder / f"s{i}.jpg")
    opts = dict(engine=str(onnx), images=str(folder), conf=conf, device="cpu", batch=2, quiet=True, save_json=True)

    whole = run_detection(DetectOptions(out=str(tmp_path / "whole"), **opts))
    assert not whole["interrupted"] and whole["images"]["done"] == 6

    first = run_detection(DetectOptions(out=str(tmp_path / "split"), stop_after=2, **opts))
    assert first["interrupted"] and not (tmp_path / "split" / "detections.json").exists()
    journal = tmp_path / "split" / ".partial" / "journal.jsonl"
    with open(journal, "a") as f:
        f.write('{"id": 99, "name": "cut by the interr')  # a line cut by the interrupt
    second = run_detection(DetectOptions(out=str(tmp_path / "split"), **opts))
    assert not second["interrupted"]
    assert second["images"]["resumed"] >= 2 and second["processed"] == 6 - first["processed"]
    final = [(tmp_path / d / "detections.json").read_bytes() for d in ("split", "whole")]
    assert final[0] == final[1]
    assert [s["file"] for s in second["skipped"]] == [s["file"] for s in whole["skipped"]]
    assert len(list((tmp_path / "split" / "labels").glob("*.json"))) == 6

    third = run_detection(DetectOptions(out=str(tmp_path / "split"), **opts))  # all done: nothing to run
    assert third["processed"] == 0 and third["images"]["done"] == 6

    changed = run_detection(DetectOptions(out=str(tmp_path / "split"), **{**opts, "conf": conf + 0.01}))
    assert changed["processed"] == 6 and any("started over" in w for w in changed["warnings"])


class _PlantedRunner(Runner):
    """Finds the magenta patch in the (letterboxed, normalised) input and reports it as a car, NMS-in-graph style."""

    name = "planted"
    output_names = ["num_dets", "boxes", "scores", "classes"]

    def __init__(self, mean, std):
        super().__init__()
        self.mean, self.std = np.asarray(mean)[:, None, None], np.asarray(std)[:, None, None]
        self.batches = []

    def _infer(self, feed):
        x = feed["images"]
        self.batches.append(x.shape[0])
        n = len(x)
        num, boxes = np.zeros((n, 1), np.int32), np.zeros((n, 4, 4), np.float32)
        for i, img in enumerate(x):
            rgb = (img * self.std + self.mean) * 255
            mask = (rgb[0] > 200) & (rgb[1] < 60) & (rgb[2] > 200)
            if mask.any():
                ys, xs = np.nonzero(mask)
                num[i, 0] = 1
                boxes[i, 0] = (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1)
        scores = np.where(np.arange(4)[None] < num, 0.9, 0.0).astype(np.float32)
        return {"num_dets": num, "boxes": boxes, "scores": scores, "classes": np.zeros((n, 4), np.int32)}


def test_boxes_map_back_to_original_image_coordinates(tmp_path):
    """A magenta patch planted at a known place in scenes of other sizes than the 192x640 input."""
    from cat_deploy.config import DetectorOptions

    folder = tmp_path / "planted"
    folder.mkdir()
    truth = {}
    for name, (w, h), box in (("wide.png", (1242, 375), (600, 100, 700, 200)),
                              ("tall.png", (300, 900), (40, 500, 140, 700)),
                              ("small.png", (320, 96), (10, 20, 60, 90))):
        img = np.array(render_scene(np.random.default_rng(777), w, h)[0])
        x1, y1, x2, y2 = box
        img[y1:y2, x1:x2] = (255, 0, 255)
        Image.fromarray(img).save(folder / name)
        truth[name] = box
    spec = ModelSpec(backend="planted", input_name="images", output_names=tuple(_PlantedRunner.output_names),
                     input_hw=(192, 640), class_names=CLASSES, detector=DetectorOptions(), mean=(0.485, 0.456, 0.406),
                     std=(0.229, 0.224, 0.225), nms="graph", batch_range=(2, 2), default_batch=2)
    runner = _PlantedRunner(spec.mean, spec.std)
    opts = DetectOptions(engine="planted", images=str(folder), out=str(tmp_path / "out"), quiet=True)
    journal = Journal(tmp_path / "out" / ".partial" / "journal.jsonl", {"test": 1})
    summary = detect_source(open_source(folder), runner, spec, opts, journal, batch=2)
    journal.close()
    assert summary["images"]["done"] == 3
    assert set(runner.batches) == {2}  # 3 images on a static batch of 2: the last batch is padded
    dets = _dets(tmp_path / "out" / "detections.json")
    for name, box in truth.items():
        (cls, score, got), = dets[name]
        scale = min(192 / Image.open(folder / name).height, 640 / Image.open(folder / name).width)
        assert cls == 1 and score == pytest.approx(0.9)
        np.testing.assert_allclose(got, box, atol=1.5 / scale + 0.5)  # within about a pixel of the input grid


@pytest.mark.parametrize("argv, words", [
    (["--engine", "missing.engine", "--images", "."], ["not found", "export.py"]),
    (["--engine", "{tmp}/model.tflite", "--images", "."], ["unknown model file type", ".onnx"]),
    (["--engine", "{tmp}/bare.onnx", "--images", "."], ["no sidecar", "export.py"]),
    (["--engine", "{tmp}/cat.engine", "--images", "{tmp}/empty"], ["pip install", "cat.onnx"]),
    (["--engine", "{ckpt}", "--images", "{tmp}/empty"], ["no images", "empty"]),
    (["--engine", "{ckpt}", "--images", "{tmp}/nothing_here/*.jpg"], ["no images", "match"]),
    (["--engine", "{ckpt}", "--images", "{tmp}", "--classes", "dragon"], ["unknown class", "car"]),
    (["--engine", "{onnx}", "--images", "{tmp}", "--batch", "4"], ["outside", "1..2", "--dynamic --batch 4"]),
])
def test_cli_errors_are_one_line(detector, tmp_path, capsys, argv, words):
    pytest.importorskip("onnxruntime")
    ckpt, onnx, _ = detector
    (tmp_path / "model.tflite").write_bytes(b"x")
    (tmp_path / "bare.onnx").write_bytes(b"x")
    (tmp_path / "empty").mkdir()
    engine = tmp_path / "cat.engine"
    engine.write_bytes(b"plan")
    shutil.copy(str(onnx) + ".json", str(engine) + ".json")
    if "cat.engine" in " ".join(argv):
        import importlib.util

        if importlib.util.find_spec("tensorrt"):
            pytest.skip("TensorRT is installed: this case checks the install hint")
    argv = [a.format(tmp=tmp_path, ckpt=ckpt, onnx=onnx) for a in argv]
    assert infer.main(argv) == (3 if "pip install" in words else 2)  # 3: a missing backend
    err = capsys.readouterr().err.strip()
    assert err.startswith("infer.py: error: ") and "\n" not in err and "Traceback" not in err
    for w in words:
        assert w in err, err


def test_helpers(detector):
    ckpt, onnx, _ = detector
    _, spec = open_model(onnx, "cpu")
    assert spec.batch_range == (1, 2) and choose_batch(None, spec) == 2 and spec.input_hw == (192, 640)
    with pytest.raises(ModelError, match="outside"):
        choose_batch(3, spec, onnx)
    static = ModelSpec(**{**spec.__dict__, "batch_range": (4, 4), "default_batch": 4})
    with pytest.raises(ModelError, match="batch 4 only"):
        choose_batch(2, static, onnx)
    assert parse_classes(["car,2", "traffic_sign"], CLASSES) == [0, 2, 5]
    assert parse_classes(None, CLASSES) is None
    _, pspec = open_model(ckpt, "cpu")
    assert pspec.output_names == spec.output_names and pspec.class_names == spec.class_names
    assert choose_batch(8, pspec) == 8
    with pytest.raises(InferError, match="--conf"):
        run_detection(DetectOptions(engine=str(ckpt), images=".", conf=2.0))


@pytest.mark.tensorrt
@pytest.mark.gpu
def test_tensorrt_engine_matches_onnx(detector, samples, tmp_path):
    """Build a dynamic-batch engine, run infer.py with it (pipelined, batch 4) and compare with ONNX Runtime."""
    from cat_deploy.exporter import ExportOptions, run_export
    from cat_deploy.runtime.tensorrt import EngineMismatch, TensorRTRunner

    ckpt, onnx, conf = detector
    res = run_export(ExportOptions(ckpt=str(ckpt), out=str(tmp_path / "trt"), format="trt", dynamic=True, batch=4,
                                   val_images=0, validate=False), log=lambda s: None)  # parity: export's tests
    engine = res["engine"]
    runs = {}
    for name, model, batch in (("trt", engine, 4), ("onnx", onnx, 1)):
        s = run_detection(DetectOptions(engine=str(model), images=str(samples), out=str(tmp_path / name), conf=conf,
                                        batch=batch, device="cpu" if name == "onnx" else "auto", quiet=True))
        assert s["images"]["done"] == len(list(Path(samples).glob("*.jpg")))
        runs[name] = _dets(tmp_path / name / "detections.json")
    for f in runs["onnx"]:  # TF32 tactics: looser than the FP32 CPU backends
        _match(runs["onnx"][f], runs["trt"][f], conf + 2e-3, box_rtol=1e-2, score_atol=2e-3)

    x = np.random.default_rng(0).standard_normal((3, 3, 192, 640)).astype(np.float32)
    with TensorRTRunner(engine) as r:
        ref = r.infer({"images": x})
        t1 = r.submit({"images": x[:1]})
        t2 = r.submit({"images": x})
        a, b = r.collect(t1), r.collect(t2)
    for k in ref:
        np.testing.assert_allclose(b[k], ref[k], rtol=1e-5, atol=1e-5)  # same shape, same tactics
        np.testing.assert_allclose(a[k], ref[k][:1], rtol=1e-2, atol=1e-2)  # batch 1 may use other (TF32) tactics

    side = read_sidecar(engine)
    side = side.replace(engine={**side.engine, "tensorrt": "10.0.0"})
    with pytest.raises(EngineMismatch, match="rebuild"):
        TensorRTRunner(engine, sidecar=side).activate()
