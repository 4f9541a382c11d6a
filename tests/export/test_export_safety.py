"""export.py: a re-export replaces the validated artefact only after parity passes; bad options and
paths end in one line before the export starts (issue 14, cases 5, 7, 9, 11)."""
import json
import os
import shutil
import tempfile
from pathlib import Path

import pytest

from cat_deploy import save_checkpoint
from cat_deploy.exporter import ExportOptions, run_export
from cat_deploy.models import create_model

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "assets" / "samples"
CLASSES = ("car", "person")


def _load_cli():
    import importlib.util

    spec = importlib.util.spec_from_file_location("export_cli_safety", ROOT / "export.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


export = _load_cli()


@pytest.fixture(scope="module")
def small_ckpt(tmp_path_factory):
    """A small detector (64x128 input) so that an export with parity takes seconds."""
    path = tmp_path_factory.mktemp("ckpt") / "small.pth"
    save_checkpoint(create_model("retinanet_tiny", num_classes=2, class_names=CLASSES, input_size=(64, 128)), path)
    return path


def _opts(ckpt, out, **kw):
    return ExportOptions(ckpt=str(ckpt), out=str(out), val_images=0, simplify=False, **kw)


def _pair(out: Path, name="cat.onnx"):
    return (out / name).read_bytes(), json.loads((out / f"{name}.json").read_text())


@pytest.mark.slow
def test_interrupted_reexport_keeps_the_validated_pair(small_ckpt, tmp_path, monkeypatch):
    """Case 5: interrupting a re-export during parity left an unvalidated artefact where a validated one was."""
    from cat_deploy.runtime.detect import DetectOptions, run_detection
    from cat_deploy import exporter  # run_export's parity step calls exporter.validate_artefact

    out = tmp_path / "out"
    res = run_export(_opts(small_ckpt, out), log=lambda s: None)
    assert res["passed"]
    old_bytes, old_side = _pair(out)
    assert old_side["validated"] is True and old_side["parity"]["passed"]

    def interrupted(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(exporter, "validate_artefact", interrupted)
    with pytest.raises(KeyboardInterrupt):  # another GEP formulation: other bytes
        run_export(_opts(small_ckpt, out, gep="reference"), log=lambda s: None)
    assert _pair(out) == (old_bytes, old_side), "the validated pair was replaced"
    staged = json.loads((out / "cat.unvalidated.onnx.json").read_text())
    assert staged["validated"] is False and staged["gep"] == "reference"
    s = run_detection(DetectOptions(engine=str(out / "cat.onnx"), images=str(SAMPLES), out=str(tmp_path / "i"),
                                    device="cpu", quiet=True))
    assert not any("parity" in w for w in s["warnings"]), s["warnings"]

    def failing(*a, **k):
        return {"passed": False, "cases": []}

    monkeypatch.setattr(exporter, "validate_artefact", failing)  # a parity miss: exit 1, old pair kept, new one beside
    rc = export.main(["--ckpt", str(small_ckpt), "--out", str(out), "--gep", "reference", "--val-images", "0",
                      "--no-simplify"])
    assert rc == 1
    assert _pair(out) == (old_bytes, old_side)
    assert json.loads((out / "cat.unvalidated.onnx.json").read_text())["validated"] is False

    monkeypatch.undo()  # a passing re-export replaces both files and clears the staged pair
    res = run_export(_opts(small_ckpt, out, gep="reference"), log=lambda s: None)
    new_bytes, new_side = _pair(out)
    assert new_bytes != old_bytes and new_side["validated"] is True and new_side["gep"] == "reference"
    assert new_side["artefact"] == "cat.onnx" and new_side["artefact_bytes"] == len(new_bytes)
    assert not (out / "cat.unvalidated.onnx").exists() and not (out / "cat.unvalidated.onnx.json").exists()


def _cli(argv, capsys):
    rc = export.main([str(a) for a in argv])
    return rc, capsys.readouterr().err.strip()


def _one_line(rc, err, code=2, *words):
    assert rc == code, err
    last = err.splitlines()[-1] if err else ""
    assert err.count("\n") == 0 and last.startswith("export.py: error: ") and "Traceback" not in err, err
    for w in words:
        assert w in err, err


@pytest.mark.slow
def test_checkpoint_is_never_an_output_and_a_suffixless_one_exports(small_ckpt, tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    named = out / "cat.onnx"  # a checkpoint that happens to carry the artefact's name
    shutil.copy(small_ckpt, named)
    before = named.read_bytes()
    rc, err = _cli(["--ckpt", named, "--out", out, "--no-validate", "--no-simplify"], capsys)
    _one_line(rc, err, 2, "checkpoint")
    assert named.read_bytes() == before
    bare = tmp_path / "model"  # no suffix: the default --out (named after the checkpoint) is the checkpoint itself
    shutil.copy(small_ckpt, bare)
    rc, err = _cli(["--ckpt", bare, "--no-validate", "--no-simplify"], capsys)
    assert rc == 0, err
    assert bare.read_bytes() == small_ckpt.read_bytes()
    assert (tmp_path / "model_export" / "cat.onnx").is_file()


def unwritable_dir() -> Path:
    if os.geteuid() != 0:
        d = Path(tempfile.mkdtemp())
        d.chmod(0o500)
        return d
    try:
        tempfile.mkstemp(dir="/sys")
    except OSError:
        return Path("/sys")
    pytest.skip("no unwritable folder on this machine")


def _corrupt_folder(tmp_path):
    corrupt = tmp_path / "corrupt"
    corrupt.mkdir()
    for i in range(3):
        (corrupt / f"{i}.jpg").write_bytes(b"not a jpeg")
    return corrupt


def _taken(tmp_path):
    (tmp_path / "taken").write_text("a file")
    return tmp_path / "taken"


@pytest.mark.parametrize("extra, words", [
    (lambda t: ["--out", _taken(t)], ["--out"]),
    (lambda t: ["--out", unwritable_dir()], ["--out"]),
    (lambda t: ["--out", unwritable_dir() / "sub"], ["--out"]),
    (lambda t: ["--precision", "int8", "--calib-images", t / "nope"], ["--calib-images", "nope"]),
    (lambda t: ["--precision", "int8", "--calib-images", _corrupt_folder(t)], ["--calib-images", "3"]),
    (lambda t: ["--dynamic", "--min-imgsz", "-32", "-64"], ["--min-imgsz"]),
    (lambda t: ["--opset", "99"], ["--opset", "99"]),
    (lambda t: ["--samples", t / "missing_samples"], ["--samples", "missing_samples"]),  # case 9
    (lambda t: ["--nms", "graph", "--conf", "2"], ["--conf"]),  # case 11
    (lambda t: ["--nms", "graph", "--iou", "-1"], ["--iou"]),
    (lambda t: ["--nms", "graph", "--max-det", "0"], ["--max-det"]),
], ids=["out-file", "out-readonly", "out-uncreatable", "calib-missing", "calib-corrupt", "min-imgsz", "opset",
        "samples-missing", "conf", "iou", "max-det"])
def test_bad_paths_and_options_are_one_line_before_exporting(small_ckpt, tmp_path, capsys, extra, words):
    extra = extra(tmp_path)
    out = tmp_path / "o"
    argv = ["--ckpt", small_ckpt, "--val-images", "0", "--no-simplify"]
    if "--out" not in extra:
        argv += ["--out", out]
    rc, err = _cli(argv + extra, capsys)
    _one_line(rc, err, 2, *words)
    assert not (out / "cat.onnx").exists(), f"{extra}: exported before refusing"


@pytest.mark.slow
def test_unreadable_sample_image_is_skipped_and_named(small_ckpt, tmp_path, capsys):
    """Case 7: a bad image inside --samples crashed parity with a traceback."""
    samples = tmp_path / "samples"
    samples.mkdir()
    shutil.copy(sorted(SAMPLES.glob("*.jpg"))[0], samples / "good.jpg")
    (samples / "bad.jpg").write_bytes(b"\xff\xd8 truncated")
    out = tmp_path / "out"
    rc = export.main(["--ckpt", str(small_ckpt), "--out", str(out), "--samples", str(samples), "--val-images", "0",
                      "--no-simplify"])
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    assert "bad.jpg" in captured.out and "skipped" in captured.out
    side = json.loads((out / "cat.onnx.json").read_text())
    assert side["validated"] is True and any(c["name"].startswith("samples@") for c in side["parity"]["cases"])
