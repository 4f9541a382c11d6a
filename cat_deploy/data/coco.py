"""COCO-format detection dataset: a folder of images plus one COCO json.

Works for the synthetic demo data (:mod:`cat_deploy.data.synthetic`), converted
KITTI (:mod:`cat_deploy.data.kitti`) or any real COCO-style export.

Category ids are mapped to contiguous 0-based labels in sorted id order;
``category_ids[label]`` gives the COCO id back (for writing results). COCO boxes
``[x, y, w, h]`` become ``x1, y1, x2, y2``; boxes with zero width or height are
dropped. ``iscrowd`` boxes are kept and flagged: evaluation ignores them and
training should ignore anchors on them.

Eval mode letterboxes to ``input_size``; train mode uses a random zoom/crop
(:func:`~cat_deploy.data.transforms.random_scale_crop`), a horizontal flip and
colour jitter. Randomness comes from ``default_rng([seed, epoch, index])``, so a
sample is the same whatever the number of DataLoader workers; call
:meth:`CocoDetection.set_epoch` each epoch (without ``persistent_workers``) to
get new augmentations.
"""
from __future__ import annotations

import json
import os
from collections import defaultdict
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from ..config import IMAGENET_MEAN, IMAGENET_STD
from .image import read_image
from .transforms import boxes_to_letterbox, color_jitter, hflip, letterbox, normalize, random_scale_crop

__all__ = ["CocoDetection", "collate_detection", "load_coco_json"]


def load_coco_json(ann_file: str | os.PathLike) -> dict[str, Any]:
    """Read a COCO json and check that it has ``images``, ``annotations`` and ``categories`` lists."""
    path = Path(ann_file)
    if not path.is_file():
        raise FileNotFoundError(f"COCO annotations '{path}' not found — check the path")
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except json.JSONDecodeError as e:
        raise ValueError(
            f"COCO annotations '{path}' is not valid JSON ({e.msg} at line {e.lineno}, column {e.colno})"
            " — fix or regenerate the file"
        ) from None
    except UnicodeDecodeError:
        raise ValueError(f"COCO annotations '{path}' is not UTF-8 text — pass the .json file") from None
    if not isinstance(data, dict):
        raise ValueError(f"COCO annotations '{path}' must hold a JSON object, got {type(data).__name__}")
    missing = [k for k in ("images", "categories") if not isinstance(data.get(k), list)]
    if missing:
        raise ValueError(f"COCO annotations '{path}' has no {' or '.join(missing)} list — is it a COCO detection file?")
    data.setdefault("annotations", [])
    return data


class CocoDetection(torch.utils.data.Dataset):
    """Images and boxes from a COCO json, letterboxed to ``input_size``.

    Args:
        images_dir: folder that the ``file_name`` fields are relative to.
        ann_file: COCO json.
        input_size: network input (h, w).
        train: apply augmentation (random zoom/crop, flip, colour jitter).
        mean, std: normalisation in 0..1 units.
        seed: base seed of the augmentation.
        scale_range: zoom range of the random crop (train only).

    ``__getitem__`` returns ``(image, target)``: ``image`` FloatTensor ``[3, h, w]``
    (normalised), ``target`` a dict with ``boxes`` FloatTensor ``[N, 4]`` (xyxy in
    input pixels), ``labels`` LongTensor ``[N]`` (0-based), ``iscrowd`` BoolTensor
    ``[N]``, ``image_id`` int and ``letterbox`` (the map from the original image to
    the input; in train mode it describes the zoom/crop, before any flip).

    Example::

        ds = CocoDetection("data/synth/val/images", "data/synth/val/annotations.json", (192, 640))
        loader = DataLoader(ds, batch_size=16, collate_fn=collate_detection)
    """

    def __init__(
        self,
        images_dir: str | os.PathLike,
        ann_file: str | os.PathLike,
        input_size: tuple[int, int] = (192, 640),
        train: bool = False,
        mean: Sequence[float] = IMAGENET_MEAN,
        std: Sequence[float] = IMAGENET_STD,
        seed: int = 0,
        scale_range: tuple[float, float] = (0.75, 1.5),
    ):
        self.images_dir = Path(images_dir)
        self.ann_file = Path(ann_file)
        self.input_size = (int(input_size[0]), int(input_size[1]))
        self.train = train
        self.mean, self.std = tuple(mean), tuple(std)
        self.seed = seed
        self.scale_range = scale_range
        self.epoch = 0

        data = load_coco_json(self.ann_file)
        cats = sorted(data["categories"], key=lambda c: c["id"])
        self.category_ids: tuple[int, ...] = tuple(int(c["id"]) for c in cats)
        self.class_names: tuple[str, ...] = tuple(str(c["name"]) for c in cats)
        label_of = {cid: i for i, cid in enumerate(self.category_ids)}

        self.images: list[dict] = sorted(data["images"], key=lambda im: im["id"])
        known = {im["id"] for im in self.images}
        per_image: dict[int, list] = defaultdict(list)
        for a in data["annotations"]:
            if not all(k in a for k in ("image_id", "category_id", "bbox")):
                raise ValueError(
                    f"COCO annotations '{self.ann_file}': annotation {a.get('id')} lacks image_id, category_id "
                    "or bbox — fix the file"
                )
            if a["category_id"] not in label_of:
                raise ValueError(
                    f"COCO annotations '{self.ann_file}': annotation {a.get('id')} has category_id "
                    f"{a['category_id']} that is not in 'categories' — add the category or drop the annotation"
                )
            if a["image_id"] not in known:
                raise ValueError(
                    f"COCO annotations '{self.ann_file}': annotation {a.get('id')} refers to image_id "
                    f"{a['image_id']} that is not in 'images' — fix the file"
                )
            x, y, w, h = (float(v) for v in a["bbox"])
            if w > 0 and h > 0:
                crowd = int(bool(a.get("iscrowd", 0)))
                per_image[a["image_id"]].append((x, y, x + w, y + h, label_of[a["category_id"]], crowd))
        self._targets = {
            im["id"]: np.asarray(per_image.get(im["id"], []), dtype=np.float32).reshape(-1, 6) for im in self.images
        }

        missing = [im["file_name"] for im in self.images if not (self.images_dir / im["file_name"]).is_file()]
        if missing:
            raise FileNotFoundError(
                f"{len(missing)} of {len(self.images)} images listed in '{self.ann_file}' are not in "
                f"'{self.images_dir}', e.g. '{self.images_dir / missing[0]}' — check images_dir or regenerate the json"
            )

    def __len__(self) -> int:
        return len(self.images)

    def set_epoch(self, epoch: int) -> None:
        """Change the augmentation stream (train mode)."""
        self.epoch = int(epoch)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, dict[str, Any]]:
        info = self.images[index]
        image = read_image(self.images_dir / info["file_name"])
        t = self._targets[info["id"]]
        boxes, extra = t[:, :4], t[:, 4:]  # extra: label, iscrowd
        if self.train:
            rng = np.random.default_rng([self.seed, self.epoch, index])
            image, boxes, extra, lb = random_scale_crop(rng, image, boxes, extra, self.scale_range, self.input_size)
            if rng.random() < 0.5:
                image, boxes = hflip(image, boxes)
            image = color_jitter(rng, image)
        else:
            image, lb = letterbox(image, self.input_size)
            h, w = self.input_size
            boxes = boxes_to_letterbox(boxes, lb)
            boxes[:, 0::2] = boxes[:, 0::2].clip(0, w)
            boxes[:, 1::2] = boxes[:, 1::2].clip(0, h)
        target = dict(
            boxes=torch.from_numpy(np.ascontiguousarray(boxes, dtype=np.float32)).reshape(-1, 4),
            labels=torch.from_numpy(extra[:, 0].astype(np.int64)),
            iscrowd=torch.from_numpy(extra[:, 1] > 0),
            image_id=int(info["id"]),
            letterbox=lb,
        )
        return torch.from_numpy(normalize(image, self.mean, self.std)), target


def collate_detection(batch: Sequence[tuple[torch.Tensor, dict]]) -> tuple[torch.Tensor, list[dict]]:
    """Stack images to ``[B, 3, h, w]``; keep targets as a list (their box counts differ)."""
    images, targets = zip(*batch)
    return torch.stack(images), list(targets)
