"""infer.py never loses data: outputs never land on inputs, one output per input, resume by identity,
files it does not read are listed (issue 14, cases 1, 2, 3, 12)."""
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cat_deploy.runtime.detect import DetectOptions, run_detection

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "assets" / "samples"
DEMO_CKPT = ROOT / "assets" / "demo" / "cat_retinanet_tiny.pth"


def _load_cli():
    import importlib.util

    spec = importlib.util.spec_from_file_location("infer_cli_safety", ROOT / "infer.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


infer = _load_cli()
SCENES = sorted(SAMPLES.glob("scene_*.jpg"))


@pytest.fixture(autouse=True)
def one_torch_thread():
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def _tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _coco_layout(tmp_path: Path) -> Path:
    """The README's COCO layout: data/images/*.jpg, data/labels/*.txt, data/annotations.json."""
    data = tmp_path / "data"
    (data / "images").mkdir(parents=True)
    (data / "labels").mkdir()
    for f in SCENES[:2]:
        shutil.copy(f, data / "images" / f.name)
        (data / "labels" / f"{f.stem}.txt").write_text("0 0.5 0.5 0.1 0.1\n")
    shutil.copy(SAMPLES / "annotations.json", data / "annotations.json")
    return data


def _run(argv, capsys):
    rc = infer.main([str(a) for a in argv] + ["--device", "cpu", "--quiet"])
    return rc, capsys.readouterr().err.strip()


def test_out_holding_the_inputs_is_refused_and_nothing_is_touched(tmp_path, capsys):
    """Case 1: --images data/images --out data --save-images --save-txt overwrote the source images and labels."""
    data = _coco_layout(tmp_path)
    before = _tree(data)
    for argv in (
        ["--images", data / "images", "--out", data, "--save-images", "--save-txt"],  # the sweep's command
        ["--images", data / "images", "--out", data / "images"],  # out is the input folder
        ["--images", data, "--recursive", "--out", data / "runs"],  # out inside a recursively read folder
        ["--images", data / "images", "--out", data / "runs",  # detections.json would replace the ground truth
         "--annotations", data / "runs" / "detections.json"],
    ):
        if "--annotations" in argv:
            (data / "runs").mkdir(exist_ok=True)
            shutil.copy(data / "annotations.json", data / "runs" / "detections.json")
            before = _tree(data)
        rc, err = _run(["--engine", DEMO_CKPT, *argv], capsys)
        assert rc == 2, (argv, err)
        assert err.startswith("infer.py: error: ") and "\n" not in err and "--out" in err, err
        assert _tree(data) == before, f"{argv}: inputs changed"
    # a dedicated output folder beside (or even inside) the data is fine and leaves the inputs alone
    rc, err = _run(["--engine", DEMO_CKPT, "--images", data / "images", "--out", data / "runs" / "pred",
                    "--save-images", "--save-txt"], capsys)
    assert rc == 0, err
    after = _tree(data)
    assert {k: v for k, v in after.items() if not k.startswith("runs/pred/")} == before
    assert len([k for k in after if k.startswith("runs/pred/images/")]) == 2


def test_every_input_gets_its_own_stable_output_files(tmp_path, capsys):
    """Case 2: a.jpg, a.png and a_jpg.jpg gave 2 output files for 3 images."""
    folder = tmp_path / "imgs"
    folder.mkdir()
    scenes = [np.asarray(Image.open(f).convert("RGB")) for f in SCENES[:4]]
    Image.fromarray(scenes[0]).save(folder / "a.jpg", quality=90)
    Image.fromarray(scenes[1]).save(folder / "a.png")
    Image.fromarray(scenes[2]).save(folder / "a_jpg.jpg", quality=90)
    out = tmp_path / "out"
    argv = ["--engine", DEMO_CKPT, "--images", folder, "--out", out, "--save-images", "--save-txt", "--save-json"]
    rc, err = _run(argv, capsys)
    assert rc == 0, err
    images = sorted(p.relative_to(out / "images").as_posix() for p in (out / "images").rglob("*") if p.is_file())
    texts = sorted(p.name for p in (out / "labels").glob("*.txt"))
    jsons = sorted((out / "labels").glob("*.json"))
    assert len(images) == len(texts) == len(jsons) == 3, (images, texts)
    assert sorted(json.loads(p.read_text())["file_name"] for p in jsons) == ["a.jpg", "a.png", "a_jpg.jpg"]
    for p in (out / "images").iterdir():  # a readable image in the format its name says
        with Image.open(p) as im:
            assert im.format == {".jpg": "JPEG", ".png": "PNG"}[p.suffix]
    names_before = (images, texts)
    # stable: adding a file that shares a stem does not rename the outputs of the others
    Image.fromarray(scenes[3]).save(folder / "a.bmp")
    rc, err = _run(argv, capsys)
    assert rc == 0, err
    images2 = sorted(p.relative_to(out / "images").as_posix() for p in (out / "images").rglob("*") if p.is_file())
    texts2 = sorted(p.name for p in (out / "labels").glob("*.txt"))
    assert set(names_before[0]) < set(images2) and set(names_before[1]) < set(texts2) and len(texts2) == 4


def _write_scene(path: Path, scene: Path, quality: int = 90):
    Image.open(scene).convert("RGB").save(path, quality=quality)


def test_resume_follows_input_identity_when_the_folder_changes(tmp_path):
    """Case 3: resume keyed by position lost one image and duplicated another after a file was added."""
    folder = tmp_path / "imgs"
    folder.mkdir()
    for name, scene in zip(("b.jpg", "c.jpg", "d.jpg", "e.jpg"), SCENES):
        _write_scene(folder / name, scene)
    opts = dict(engine=str(DEMO_CKPT), images=str(folder), conf=0.05, device="cpu", batch=1, quiet=True,
                save_json=True)
    first = run_detection(DetectOptions(out=str(tmp_path / "split"), stop_after=2, **opts))
    assert first["interrupted"] and first["processed"] == 2  # b.jpg and c.jpg are journaled
    _write_scene(folder / "a.jpg", SCENES[4])  # added: sorts first, so every position shifts
    (folder / "b.jpg").unlink()  # removed after it was processed
    _write_scene(folder / "c.jpg", SCENES[5], quality=70)  # modified after it was processed
    st = os.stat(folder / "c.jpg")
    os.utime(folder / "c.jpg", ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    second = run_detection(DetectOptions(out=str(tmp_path / "split"), **opts))
    assert not second["interrupted"]
    assert second["processed"] == 4  # a (new), c (modified), d, e (not yet run); b dropped
    assert second["images"]["done"] == 4 and second["images"]["resumed"] == 0
    changes = second["source_changes"]
    assert (changes["added"], changes["removed"], changes["modified"]) == (["a.jpg"], ["b.jpg"], ["c.jpg"])
    assert any("changed" in w for w in second["warnings"])
    clean = run_detection(DetectOptions(out=str(tmp_path / "clean"), **opts))
    assert clean["processed"] == 4
    split_doc = (tmp_path / "split" / "detections.json").read_bytes()
    assert split_doc == (tmp_path / "clean" / "detections.json").read_bytes()
    doc = json.loads(split_doc)
    assert [im["file_name"] for im in doc["images"]] == ["a.jpg", "c.jpg", "d.jpg", "e.jpg"]
    assert sum(len(json.loads(p.read_text())["detections"]) for p in (tmp_path / "split" / "labels").glob("c.jpg*")) \
        == sum(len(json.loads(p.read_text())["detections"]) for p in (tmp_path / "clean" / "labels").glob("c.jpg*"))
    again = run_detection(DetectOptions(out=str(tmp_path / "split"), **opts))  # unchanged folder: nothing to run
    assert again["processed"] == 0 and again["images"]["resumed"] == 4 and not again["warnings"]


def test_files_that_are_not_read_are_listed_by_reason(tmp_path, capsys):
    """Case 12: GIF/TIFF files in a folder were silently not counted."""
    folder = tmp_path / "imgs"
    folder.mkdir()
    scene = Image.open(SCENES[0]).convert("RGB")
    scene.save(folder / "a.jpg", quality=90)
    scene.save(folder / "b.gif")
    scene.save(folder / "c.tif")
    (folder / "notes.md").write_text("not an image\n")
    out = tmp_path / "out"
    rc = infer.main(["--engine", str(DEMO_CKPT), "--images", str(folder), "--out", str(out), "--device", "cpu"])
    assert rc == 0
    summary = json.loads((out / "summary.json").read_text())
    ignored = {i["file"]: i["reason"] for i in summary["ignored"]}
    assert set(ignored) == {"b.gif", "c.tif", "notes.md"}
    assert ".gif" in ignored["b.gif"] and ".tif" in ignored["c.tif"] and "not an image" in ignored["notes.md"]
    assert summary["images"]["ignored"] == 3 and summary["images"]["done"] == 1
    table = capsys.readouterr().out
    assert "b.gif" in table and "c.tif" in table
