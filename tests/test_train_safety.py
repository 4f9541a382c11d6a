"""train.py keeps earlier runs, and refuses or reports bad training data in one line (issue 14, cases 4, 7, 10)."""
import importlib.util
import json
from pathlib import Path

import pytest

from cat_deploy.data.coco import CocoDetection
from cat_deploy.data.synthetic import generate_dataset

ROOT = Path(__file__).resolve().parents[1]


def _load_cli():
    spec = importlib.util.spec_from_file_location("train_cli_safety", ROOT / "train.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


train_cli = _load_cli()


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    root = tmp_path_factory.mktemp("synth")
    return (generate_dataset(root / "train", 8, size=(320, 96), seed=0),
            generate_dataset(root / "val", 2, size=(320, 96), seed=1))


def _argv(tiny, out, *extra):
    train_ann, val_ann = tiny
    return ["--train-ann", str(train_ann), "--val-ann", str(val_ann), "--imgsz", "96", "320", "--epochs", "1",
            "--batch", "4", "--workers", "0", "--warmup-iters", "1", "--out", str(out), *extra]


def _one_line(rc, err, *words):
    assert rc == 2, err
    assert err.startswith("train.py: error: ") and "\n" not in err and "Traceback" not in err, err
    for w in words:
        assert w in err, err


@pytest.mark.slow
def test_existing_run_is_not_replaced(tiny, tmp_path, capsys):
    """Case 4: a second run into the same --out silently replaced best.pth, last.pth and history.json."""
    out = tmp_path / "run"
    out.mkdir()
    earlier = {"best.pth": b"earlier best", "last.pth": b"earlier last", "history.json": b"[]"}
    for name, data in earlier.items():
        (out / name).write_bytes(data)
    rc = train_cli.main(_argv(tiny, out))
    _one_line(rc, capsys.readouterr().err.strip(), "--out", "--exist-ok", "--resume")
    assert {n: (out / n).read_bytes() for n in earlier} == earlier
    rc = train_cli.main(_argv(tiny, out, "--exist-ok"))  # the user says so: the run replaces them
    assert rc == 0, capsys.readouterr().err
    assert (out / "best.pth").read_bytes() != earlier["best.pth"]
    assert len(json.loads((out / "history.json").read_text())) == 1


def _edit_ann(tiny, tmp_path, edit) -> Path:
    train_ann, _ = tiny
    doc = json.loads(Path(train_ann).read_text())
    edit(doc)
    path = Path(train_ann).parent / f"edited_{len(list(Path(train_ann).parent.glob('edited_*')))}.json"
    path.write_text(json.dumps(doc))
    return path


@pytest.mark.parametrize("edit, extra, words", [
    (lambda d: None, ["--batch", "16"], ["8 training images", "--batch 16"]),  # fewer images than --batch
    (lambda d: d["images"][0].pop("file_name"), [], ["file_name", "image"]),
    (lambda d: d["annotations"][0].update(bbox=[1, 2, 3]), [], ["bbox", "annotation"]),
    (lambda d: d["annotations"][0].update(bbox=None), [], ["bbox", "annotation"]),
], ids=["batch", "file_name", "bbox-3", "bbox-none"])
def test_bad_training_data_is_one_line(tiny, tmp_path, capsys, edit, extra, words):
    ann = _edit_ann(tiny, tmp_path, edit)
    argv = _argv(tiny, tmp_path / "run", *extra)
    argv[1] = str(ann)
    argv += ["--train-images", str(Path(ann).parent / "images")]
    rc = train_cli.main(argv)
    _one_line(rc, capsys.readouterr().err.strip(), *words)


def test_dropped_boxes_are_counted_by_reason(tiny, tmp_path):
    """Case 10: negative, NaN, outside-the-image and empty boxes were dropped without a word."""
    train_ann, _ = tiny
    doc = json.loads(Path(train_ann).read_text())
    im = doc["images"][0]
    base = dict(image_id=im["id"], category_id=doc["categories"][0]["id"], iscrowd=0, area=1)
    bad = [[float("nan"), 5, 10, 10], [5, 5, -4, 10], [5, 5, 0, 10], [im["width"] + 50, 5, 10, 10],
           [-40, -40, 20, 20]]
    for i, bbox in enumerate(bad):
        doc["annotations"].append({**base, "id": 10_000 + i, "bbox": bbox})
    path = Path(train_ann).parent / "with_bad_boxes.json"
    path.write_text(json.dumps(doc, allow_nan=True))
    ds = CocoDetection(Path(train_ann).parent / "images", path, (96, 320), train=True)
    assert ds.dropped == {"not finite": 1, "negative size": 1, "empty": 1, "outside the image": 2}
    kept = sum(len(t) for t in ds._targets.values())
    assert kept == len(doc["annotations"]) - len(bad)  # the synthetic boxes themselves are all valid
    note = ds.describe_dropped()
    assert "5 of" in note and "not finite 1" in note and "outside the image 2" in note

    from cat_deploy.train import TrainConfig, train

    lines = []
    cfg = TrainConfig(train_ann=str(path), val_ann=str(tiny[1]), train_images=str(Path(train_ann).parent / "images"),
                      input_size=(96, 320), epochs=1, batch_size=64, workers=0, out=str(tmp_path / "run"))
    with pytest.raises(ValueError, match="--batch"):  # stops before training; the data report came first
        train(cfg, log=lines.append)
    assert any("outside the image 2" in line for line in lines), lines
