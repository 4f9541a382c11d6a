"""infer.py: bad --out, bad annotations and bad sidecars end in one line before any image is run;
an artefact that has not passed parity is used with a warning (issue 14, cases 5, 7, 11)."""
import json
import os
import shutil
import tempfile
from pathlib import Path

import pytest

from cat_deploy.runtime.detect import DetectOptions, run_detection

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "assets" / "samples"
DEMO_CKPT = ROOT / "assets" / "demo" / "cat_retinanet_tiny.pth"


def _load_cli():
    import importlib.util

    spec = importlib.util.spec_from_file_location("infer_cli_checks", ROOT / "infer.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


infer = _load_cli()


@pytest.fixture(scope="module")
def unvalidated_onnx(tmp_path_factory):
    """The demo detector exported without parity (static batch 1): its sidecar says it is unvalidated."""
    from cat_deploy.exporter import ExportOptions, run_export

    out = tmp_path_factory.mktemp("export")
    res = run_export(ExportOptions(ckpt=str(DEMO_CKPT), out=str(out), validate=False, simplify=False),
                     log=lambda s: None)
    return Path(res["onnx"])


@pytest.fixture
def images(tmp_path):
    d = tmp_path / "imgs"
    d.mkdir()
    shutil.copy(sorted(SAMPLES.glob("*.jpg"))[0], d / "one.jpg")
    return d


def unwritable_dir() -> Path:
    """An existing folder this process cannot create files in (root ignores permission bits: use /sys)."""
    if os.geteuid() != 0:
        d = Path(tempfile.mkdtemp())
        d.chmod(0o500)
        return d
    try:
        tempfile.mkstemp(dir="/sys")
    except OSError:
        return Path("/sys")
    pytest.skip("no unwritable folder on this machine")


def _one_line_error(rc, err, *words):
    assert rc == 2, err
    assert err.startswith("infer.py: error: ") and "\n" not in err and "Traceback" not in err, err
    for w in words:
        assert w in err, err


def _main(argv, capsys):
    rc = infer.main([str(a) for a in argv] + ["--device", "cpu", "--quiet"])
    return rc, capsys.readouterr().err.strip()


def test_out_that_is_a_file_or_unwritable_is_one_line(tmp_path, images, capsys):
    (tmp_path / "taken").write_text("a file")
    rc, err = _main(["--engine", DEMO_CKPT, "--images", images, "--out", tmp_path / "taken"], capsys)
    _one_line_error(rc, err, "--out", "taken")
    ro = unwritable_dir()
    for out in (ro, ro / "sub"):
        rc, err = _main(["--engine", DEMO_CKPT, "--images", images, "--out", out], capsys)
        _one_line_error(rc, err, "--out")


def _coco(images: Path, **image_fields) -> dict:
    doc = json.loads((SAMPLES / "annotations.json").read_text())
    first = doc["images"][0]
    first.update(file_name="one.jpg", **image_fields)
    doc["images"] = [first]
    doc["annotations"] = [a for a in doc["annotations"] if a["image_id"] == first["id"]]
    return doc


@pytest.mark.parametrize("edit, words", [
    (lambda d: d["annotations"][0].update(bbox=[10, 20, 30]), ["bbox", "annotation"]),
    (lambda d: d["annotations"][0].update(bbox=["a", 1, 2, 3]), ["bbox"]),
    (lambda d: d["images"][0].pop("file_name"), ["file_name"]),
    (lambda d: d.update(images={"id": 1}), ["images"]),
])
def test_bad_annotations_are_refused_before_the_run(tmp_path, images, capsys, edit, words):
    doc = _coco(images)
    edit(doc)
    ann = tmp_path / "ann.json"
    ann.write_text(json.dumps(doc))
    out = tmp_path / "out"
    rc, err = _main(["--engine", DEMO_CKPT, "--images", images, "--out", out, "--annotations", ann], capsys)
    _one_line_error(rc, err, "--annotations", *words)
    assert not (out / "summary.json").exists() and not (out / ".partial").exists()  # checked before, not after


def _edited_sidecar(onnx: Path, tmp_path: Path, edit) -> Path:
    folder = tmp_path / "model"
    folder.mkdir(exist_ok=True)
    shutil.copy(onnx, folder / "cat.onnx")
    side = json.loads(Path(str(onnx) + ".json").read_text())
    side = edit(side) or side
    (folder / "cat.onnx.json").write_text(json.dumps(side))
    return folder / "cat.onnx"


def _set(path, value):
    def edit(side):
        node = side
        for k in path[:-1]:
            node = node[k]
        node[path[-1]] = value
    return edit


@pytest.mark.parametrize("edit, words", [
    (lambda s: ["not", "an", "object"], ["sidecar", "object"]),
    (_set(["class_names"], ["car", "truck"]), ["class"]),
    (_set(["input_size"], [320, 320]), ["input"]),
    (_set(["profile", "min"], [4, 3, 192, 640]), ["batch"]),
    (lambda s: s["profile"].update(min=[4, 3, 192, 640], opt=[4, 3, 192, 640], max=[4, 3, 192, 640]), ["batch"]),
    (_set(["model", "detector", "levels"], [3, 4]), ["level"]),
    (_set(["model", "num_classes"], 9), ["class"]),
    (_set(["normalize", "std"], [0.229, 0.0, 0.225]), ["std"]),  # case 11: std 0 ran
    (_set(["normalize", "mean"], [0.5, "x", 0.5]), ["mean"]),
])
def test_sidecar_that_contradicts_the_model_is_one_line(unvalidated_onnx, tmp_path, images, capsys, edit, words):
    model = _edited_sidecar(unvalidated_onnx, tmp_path, edit)
    out = tmp_path / "out"
    rc, err = _main(["--engine", model, "--images", images, "--out", out], capsys)
    _one_line_error(rc, err, *words)
    assert not (out / "detections.json").exists()


def test_unvalidated_artefact_runs_with_a_warning(unvalidated_onnx, tmp_path, images):
    """Case 5, the runner's side: an artefact whose sidecar does not record passed parity is named as such."""
    side = json.loads(Path(str(unvalidated_onnx) + ".json").read_text())
    assert side["validated"] is False
    s = run_detection(DetectOptions(engine=str(unvalidated_onnx), images=str(images), out=str(tmp_path / "o"),
                                    device="cpu", quiet=True))
    assert s["images"]["done"] == 1
    assert any("parity" in w and "unvalidated" in w for w in s["warnings"]), s["warnings"]
    # an ONNX file beside a sidecar from another export (size recorded in the sidecar differs) is refused
    model = _edited_sidecar(unvalidated_onnx, tmp_path, _set(["validated"], True))
    with open(model, "ab") as f:
        f.write(b"\0")
    rc = infer.main(["--engine", str(model), "--images", str(images), "--out", str(tmp_path / "o2"), "--quiet"])
    assert rc == 2
