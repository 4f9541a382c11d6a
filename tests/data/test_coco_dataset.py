import json

import numpy as np
import pytest
import torch

from cat_deploy.data.coco import CocoDetection, collate_detection
from cat_deploy.data.synthetic import CLASSES
from cat_deploy.data.transforms import boxes_to_original

SIZE = (128, 384)


@pytest.mark.parametrize("train", [False, True])
def test_shapes(synth_coco, train):
    images_dir, ann = synth_coco
    ds = CocoDetection(images_dir, ann, SIZE, train=train)
    assert len(ds) == 8 and ds.class_names == CLASSES and ds.category_ids == (1, 2, 3, 4, 5, 6)
    for i in range(len(ds)):
        img, t = ds[i]
        assert img.shape == (3, *SIZE) and img.dtype == torch.float32
        n = len(t["labels"])
        assert t["boxes"].shape == (n, 4) and t["boxes"].dtype == torch.float32
        assert t["labels"].dtype == torch.int64 and t["iscrowd"].dtype == torch.bool and t["iscrowd"].shape == (n,)
        assert ((t["labels"] >= 0) & (t["labels"] < 6)).all()
        b = t["boxes"]
        assert (b[:, 2] > b[:, 0]).all() and (b[:, 3] > b[:, 1]).all()
        assert (b[:, 0::2] >= 0).all() and (b[:, 0::2] <= SIZE[1]).all() and (b[:, 1::2] <= SIZE[0]).all()
        assert t["image_id"] == ds.images[i]["id"] and t["letterbox"].dst_size == SIZE
    images, targets = collate_detection([ds[0], ds[1]])
    assert images.shape == (2, 3, *SIZE) and len(targets) == 2


def test_eval_boxes_map_back_to_annotations(synth_coco):
    images_dir, ann = synth_coco
    data = json.loads(ann.read_text())
    ds = CocoDetection(images_dir, ann, SIZE)
    _, t = ds[0]
    expected = [a["bbox"] for a in data["annotations"] if a["image_id"] == t["image_id"]]
    expected = np.array([[x, y, x + w, y + h] for x, y, w, h in expected], np.float32).reshape(-1, 4)
    np.testing.assert_allclose(boxes_to_original(t["boxes"].numpy(), t["letterbox"]), expected, atol=1e-3)


def test_train_augmentation_deterministic_per_epoch(synth_coco):
    ds = CocoDetection(*synth_coco, SIZE, train=True, seed=1)
    a, ta = ds[2]
    b, tb = ds[2]
    assert torch.equal(a, b) and torch.equal(ta["boxes"], tb["boxes"])
    ds.set_epoch(1)
    c, _ = ds[2]
    assert not torch.equal(a, c)


def test_dataloader(synth_coco):
    ds = CocoDetection(*synth_coco, SIZE, train=True)
    loader = torch.utils.data.DataLoader(ds, batch_size=4, collate_fn=collate_detection)
    images, targets = next(iter(loader))
    assert images.shape == (4, 3, *SIZE) and len(targets) == 4


def test_missing_image_is_named(synth_coco, tmp_path):
    images_dir, ann = synth_coco
    data = json.loads(ann.read_text())
    data["images"][1]["file_name"] = "gone.jpg"
    bad = tmp_path / "ann.json"
    bad.write_text(json.dumps(data))
    with pytest.raises(FileNotFoundError, match="gone.jpg") as e:
        CocoDetection(images_dir, bad, SIZE)
    assert "\n" not in str(e.value) and "ann.json" in str(e.value)


def test_bad_json_is_named(synth_coco, tmp_path):
    bad = tmp_path / "broken.json"
    bad.write_text('{"images": [')
    with pytest.raises(ValueError, match="broken.json.*not valid JSON") as e:
        CocoDetection(synth_coco[0], bad, SIZE)
    assert "\n" not in str(e.value)
    bad.write_text('{"foo": 1}')
    with pytest.raises(ValueError, match="broken.json.*no images"):
        CocoDetection(synth_coco[0], bad, SIZE)


def test_noncontiguous_category_ids(tmp_path):
    from PIL import Image

    (tmp_path / "im").mkdir()
    Image.new("RGB", (40, 20), (50, 60, 70)).save(tmp_path / "im" / "a.png")
    data = dict(
        images=[dict(id=7, file_name="a.png", width=40, height=20)],
        annotations=[
            dict(id=1, image_id=7, category_id=90, bbox=[0, 0, 10, 10], area=100, iscrowd=0),
            dict(id=2, image_id=7, category_id=3, bbox=[5, 5, 10, 10], area=100, iscrowd=1),
            dict(id=3, image_id=7, category_id=3, bbox=[5, 5, 0, 10], area=0, iscrowd=0),
        ],
        categories=[dict(id=90, name="z"), dict(id=3, name="a")],
    )
    (tmp_path / "a.json").write_text(json.dumps(data))
    ds = CocoDetection(tmp_path / "im", tmp_path / "a.json", (20, 40))
    assert ds.class_names == ("a", "z") and ds.category_ids == (3, 90)
    img, t = ds[0]
    assert t["labels"].tolist() == [1, 0] and t["iscrowd"].tolist() == [False, True]
    np.testing.assert_allclose(t["boxes"].numpy(), [[0, 0, 10, 10], [5, 5, 15, 15]])
