import json

import pytest
from PIL import Image

from cat_deploy.data.kitti import convert_kitti, main
from cat_deploy.data.synthetic import CLASSES

LABELS = {
    "000000": [
        "Car 0.00 0 -1.58 10.00 20.00 60.00 45.00 1.5 1.6 3.9 1.0 1.7 20.0 -1.5",
        "Van 0.00 1 -1.58 70.00 20.00 90.00 40.00 2.0 1.8 4.5 3.0 1.7 30.0 -1.5",
        "Pedestrian 0.00 2 0.2 100.00 10.00 110.00 40.00 1.7 0.6 0.8 2.0 1.7 15.0 0.2",
        "DontCare -1 -1 -10 150.00 5.00 180.00 15.00 -1 -1 -1 -1000 -1000 -1000 -10",
        "Tram 0.00 0 0.0 0.00 0.00 20.00 20.00 3.0 2.5 15.0 -5.0 1.7 40.0 0.0",
        "Misc 0.00 0 0.0 0.00 0.00 20.00 20.00 1.0 1.0 1.0 -5.0 1.7 40.0 0.0",
    ],
    "000001": [
        "Truck 0.80 0 0.0 0.00 0.00 50.00 50.00 3.5 2.5 10.0 -4.0 1.7 12.0 0.0",
        "Person_sitting 0.00 0 0.0 60.00 30.00 70.00 48.00 1.2 0.6 0.8 1.0 1.7 10.0 0.0",
        "Cyclist 0.00 0 0.0 120.00 10.00 140.00 60.00 1.8 0.6 1.8 1.0 1.7 10.0 0.0 0.97",
        "",
    ],
}


def _kitti(tmp_path):
    img_dir, lab_dir = tmp_path / "image_2", tmp_path / "label_2"
    img_dir.mkdir()
    lab_dir.mkdir()
    for stem, lines in LABELS.items():
        Image.new("RGB", (200, 60)).save(img_dir / f"{stem}.png")
        (lab_dir / f"{stem}.txt").write_text("\n".join(lines) + "\n")
    return img_dir, lab_dir


def test_convert(tmp_path):
    from faster_coco_eval import COCO

    img_dir, lab_dir = _kitti(tmp_path)
    out = tmp_path / "kitti.json"
    coco = convert_kitti(img_dir, lab_dir, out)
    assert [c["name"] for c in coco["categories"]] == list(CLASSES)
    assert [(i["id"], i["file_name"], i["width"], i["height"]) for i in coco["images"]] == [
        (1, "000000.png", 200, 60), (2, "000001.png", 200, 60)]
    got = [(a["image_id"], CLASSES[a["category_id"] - 1], a["iscrowd"]) for a in coco["annotations"]]
    assert got == [
        (1, "car", 0), (1, "car", 0), (1, "pedestrian", 1),  # occluded == 2 -> ignore
        (1, "car", 1), (1, "truck", 1), (1, "pedestrian", 1), (1, "cyclist", 1),  # DontCare for each class
        (2, "truck", 1),  # truncated 0.8 -> ignore
        (2, "pedestrian", 0), (2, "cyclist", 0),
    ]
    car = coco["annotations"][0]
    assert car["bbox"] == [10.0, 20.0, 50.0, 25.0] and car["area"] == 1250.0
    cyclist = coco["annotations"][-1]
    assert cyclist["bbox"] == [120.0, 10.0, 20.0, 50.0]  # clipped to the 60 px image height
    loaded = COCO(str(out))
    assert len(loaded.getAnnIds()) == 10
    assert loaded.getAnnIds(catIds=[5, 6]) == []


def test_cli(tmp_path, capsys):
    img_dir, lab_dir = _kitti(tmp_path)
    assert main(["--images", str(img_dir), "--labels", str(lab_dir), "--out", str(tmp_path / "o.json")]) == 0
    assert len(json.loads((tmp_path / "o.json").read_text())["images"]) == 2
    assert "2 images" in capsys.readouterr().out


def test_missing_image(tmp_path):
    img_dir, lab_dir = _kitti(tmp_path)
    (img_dir / "000001.png").unlink()
    with pytest.raises(FileNotFoundError, match="000001"):
        convert_kitti(img_dir, lab_dir, tmp_path / "o.json")


def test_bad_line(tmp_path):
    img_dir, lab_dir = _kitti(tmp_path)
    (lab_dir / "000001.txt").write_text("Car 0 0\n")
    with pytest.raises(ValueError, match=r"000001.txt:1: bad KITTI label line"):
        convert_kitti(img_dir, lab_dir, tmp_path / "o.json")
