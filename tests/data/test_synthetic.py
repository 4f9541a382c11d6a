import json

import numpy as np
import pytest

from cat_deploy.data.synthetic import CLASSES, generate_dataset, main, parse_size, render_scene
from cat_deploy.data.synthetic.annotations import _annotate
from cat_deploy.data.synthetic.scene import _composite
from cat_deploy.data.synthetic.sprites import _Thing

W, H = 640, 192


@pytest.fixture(scope="module")
def scenes():
    return [render_scene(np.random.default_rng([7, i]), W, H) for i in range(50)]


def test_same_seed_same_scene():
    a_img, a_anns = render_scene(np.random.default_rng(123), W, H)
    b_img, b_anns = render_scene(np.random.default_rng(123), W, H)
    c_img, _ = render_scene(np.random.default_rng(124), W, H)
    assert a_img.size == (W, H) and a_img.mode == "RGB"
    np.testing.assert_array_equal(np.asarray(a_img), np.asarray(b_img))
    assert a_anns == b_anns
    assert not np.array_equal(np.asarray(a_img), np.asarray(c_img))


def test_annotations_valid(scenes):
    counts = np.zeros(len(CLASSES), int)
    heights = []
    for img, anns in scenes:
        for a in anns:
            assert set(a) == {"category_id", "bbox", "area", "iscrowd"}
            x, y, w, h = a["bbox"]
            assert all(isinstance(v, float) for v in a["bbox"])
            assert w > 0 and h > 0 and x >= 0 and y >= 0 and x + w <= W and y + h <= H
            assert 1 <= a["category_id"] <= 6 and a["iscrowd"] in (0, 1)
            assert a["area"] == pytest.approx(w * h)
            if h < 8:
                assert a["iscrowd"] == 1
            counts[a["category_id"] - 1] += 1
            if not a["iscrowd"]:
                heights.append(h)
    share = counts / counts.sum()
    assert (share >= 0.08).all(), dict(zip(CLASSES, share.round(3)))
    heights = np.array(heights)
    assert (heights >= 10).mean() > 0.85 and heights.max() > 80


def test_objects_per_image(scenes):
    n = np.array([len(anns) for _, anns in scenes])
    assert n.max() <= 12 and np.median(n) >= 3 and (n >= 2).mean() > 0.9


def _rect_thing(z, category, box):
    def draw(d, f):
        d.rectangle(f.r(0, 0, 1, 1), fill=(200, 30, 30, 255))

    return _Thing(z, category, box, draw)


def test_occlusion_and_frame_edge_make_ignore_boxes():
    from PIL import Image

    scene, ids = Image.new("RGB", (100, 60)), Image.new("L", (100, 60))
    things = [
        _rect_thing(30.0, 1, (10, 10, 50, 40)),  # far car, mostly behind the truck
        _rect_thing(20.0, 4, (70, 10, 130, 40)),  # cyclist, half outside the frame
        _rect_thing(10.0, 2, (0, 0, 45, 45)),  # near truck
        _rect_thing(5.0, 0, (80, 0, 82, 60)),  # pole (scenery): hides a strip of the cyclist
    ]
    placed = []
    for t in things:
        inst = len(placed) + 1 if t.category else 0
        res = _composite(scene, ids, t, inst)
        if t.category:
            placed.append((t.category, res))
    car, cyclist, truck = _annotate(np.asarray(ids), placed)
    assert truck == dict(category_id=2, bbox=[0.0, 0.0, 45.0, 45.0], area=2025.0, iscrowd=0)
    assert car["bbox"] == [45.0, 10.0, 5.0, 30.0] and car["iscrowd"] == 1  # 5/40 visible
    assert cyclist["bbox"] == [70.0, 10.0, 30.0, 30.0] and cyclist["iscrowd"] == 0  # 28/60 columns visible
    assert (np.asarray(ids)[10:40, 80:82] == 0).all()


def test_other_size():
    img, anns = render_scene(np.random.default_rng(0), 1242, 375)
    assert img.size == (1242, 375)
    for a in anns:
        x, y, w, h = a["bbox"]
        assert x + w <= 1242 and y + h <= 375


def test_generate_dataset_is_loadable_coco(synth_coco):
    from faster_coco_eval import COCO

    images_dir, ann = synth_coco
    coco = COCO(str(ann))
    assert len(coco.getImgIds()) == 8
    assert [c["name"] for c in coco.loadCats(coco.getCatIds())] == list(CLASSES)
    for img in coco.loadImgs(coco.getImgIds()):
        assert (images_dir / img["file_name"]).is_file() and (img["width"], img["height"]) == (320, 96)
    anns = coco.loadAnns(coco.getAnnIds())
    assert anns and min(a["id"] for a in anns) == 1 and len({a["id"] for a in anns}) == len(anns)
    assert not list(ann.parent.glob("*.tmp"))


def test_workers_do_not_change_output(tmp_path):
    a = generate_dataset(tmp_path / "a", 4, size=(160, 48), seed=5, workers=1)
    b = generate_dataset(tmp_path / "b", 4, size=(160, 48), seed=5, workers=2, image_format="png")
    ja, jb = json.loads(a.read_text()), json.loads(b.read_text())
    assert ja["annotations"] == jb["annotations"]
    assert [i["file_name"].replace(".png", ".jpg") for i in jb["images"]] == [i["file_name"] for i in ja["images"]]


def test_cli(tmp_path, capsys):
    assert main(["--out", str(tmp_path / "s"), "--num", "2", "--size", "160x48", "--seed", "1"]) == 0
    data = json.loads((tmp_path / "s" / "annotations.json").read_text())
    assert len(data["images"]) == 2 and data["images"][0]["width"] == 160
    assert parse_size("640x192") == (640, 192)
    with pytest.raises(Exception, match="WIDTHxHEIGHT"):
        parse_size("640")
