"""python -m cat_deploy.validate and cat_deploy.visualize: outputs never replace inputs, bad paths and a missing
--samples folder are one line, an unreadable sample image is skipped and named (issue 14, cases 7, 9)."""
import json
import os
import shutil
import tempfile
from pathlib import Path

import pytest

from cat_deploy import save_checkpoint
from cat_deploy.models import create_model

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "assets" / "samples"


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    from cat_deploy.exporter import ExportOptions, run_export

    tmp = tmp_path_factory.mktemp("small")
    ckpt = tmp / "small.pth"
    save_checkpoint(create_model("retinanet_tiny", num_classes=2, class_names=("a", "b"), input_size=(64, 128)), ckpt)
    res = run_export(ExportOptions(ckpt=str(ckpt), out=str(tmp / "out"), validate=False, simplify=False),
                     log=lambda s: None)
    return ckpt, Path(res["onnx"])


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


def _validate(argv, capsys):
    from cat_deploy.validate.__main__ import main

    rc = main([str(a) for a in argv] + ["--val-images", "0", "--device", "cpu"])
    out = capsys.readouterr()
    return rc, out.out, out.err.strip()


def _one_line(rc, err, prog, *words):
    assert rc == 2, err
    assert err.startswith(f"{prog}: error: ") and "\n" not in err and "Traceback" not in err, err
    for w in words:
        assert w in err, err


@pytest.mark.parametrize("where, words", [
    (lambda t, ckpt, onnx: t, ["--json", "folder"]),
    (lambda t, ckpt, onnx: unwritable_dir() / "report.json", ["--json"]),
    (lambda t, ckpt, onnx: onnx, ["--json", "input"]),
    (lambda t, ckpt, onnx: Path(str(onnx) + ".json"), ["--json", "input"]),
    (lambda t, ckpt, onnx: ckpt, ["--json", "input"]),
], ids=["folder", "unwritable", "artefact", "sidecar", "checkpoint"])
def test_validate_json_never_lands_on_an_input_or_a_folder(exported, tmp_path, capsys, where, words):
    ckpt, onnx = exported
    target = where(tmp_path, ckpt, onnx)
    before = {p: p.read_bytes() for p in (ckpt, onnx, Path(str(onnx) + ".json"))}
    rc, _, err = _validate(["--ckpt", ckpt, "--artefact", onnx, "--json", target], capsys)
    _one_line(rc, err, "cat_deploy.validate", *words)
    assert {p: p.read_bytes() for p in before} == before


def test_validate_samples_missing_bad_and_good(exported, tmp_path, capsys):
    ckpt, onnx = exported
    rc, _, err = _validate(["--ckpt", ckpt, "--artefact", onnx, "--samples", tmp_path / "nope"], capsys)
    _one_line(rc, err, "cat_deploy.validate", "--samples", "nope")  # case 9: it was silently ignored
    samples = tmp_path / "samples"
    samples.mkdir()
    shutil.copy(sorted(SAMPLES.glob("*.jpg"))[0], samples / "good.jpg")
    (samples / "bad.png").write_bytes(b"\x89PNG cut")
    report = tmp_path / "r" / "report.json"
    rc, out, err = _validate(["--ckpt", ckpt, "--artefact", onnx, "--samples", samples, "--json", report], capsys)
    assert rc == 0, err
    assert "skipped" in out and "bad.png" in out
    assert json.loads(report.read_text())["passed"] is True


def test_visualize_outputs_never_replace_inputs(exported, tmp_path, capsys):
    from cat_deploy.visualize import main

    ckpt, _ = exported
    out = tmp_path / "vis"
    out.mkdir()
    image = out / "attention_maps.png"  # the input image has the name of an output
    shutil.copy(sorted(SAMPLES.glob("*.jpg"))[0], image)
    before = image.read_bytes()
    rc = main(["--ckpt", str(ckpt), "--image", str(image), "--out", str(out)])
    _one_line(rc, capsys.readouterr().err.strip(), "cat_deploy.visualize", "--out", "attention_maps.png")
    assert image.read_bytes() == before
    (tmp_path / "taken").write_text("a file")
    for bad in (tmp_path / "taken", unwritable_dir()):
        rc = main(["--ckpt", str(ckpt), "--image", str(image), "--out", str(bad)])
        _one_line(rc, capsys.readouterr().err.strip(), "cat_deploy.visualize", "--out")
    rc = main(["--ckpt", str(ckpt), "--image", str(image), "--out", str(tmp_path / "fine")])
    assert rc == 0 and (tmp_path / "fine" / "attention_maps.png").is_file()
