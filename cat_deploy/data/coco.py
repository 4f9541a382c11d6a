"""COCO-format detection dataset: a folder of images plus one COCO json.

Works for the synthetic demo data (:mod:`cat_deploy.data.synthetic`), converted
KITTI (:mod:`cat_deploy.data.kitti`) or any real COCO-style export.

Category ids are mapped to contiguous 0-based labels in sorted id order;
``category_ids[label]`` gives the COCO id back (for writing results). COCO boxes
``[x, y, w, h]`` become ``x1, y1, x2, y2``. Boxes that cannot be trained on are
dropped and counted by reason in ``CocoDetection.dropped`` (``describe_dropped()``
is the line ``train.py`` prints): not finite (NaN/Inf), negative size, empty (zero
width or height), entirely outside the image. ``iscrowd`` boxes are kept and
flagged: evaluation ignores them and training should ignore anchors on them. A file
whose structure is wrong (an image without ``file_name``, a ``bbox`` that is not
four numbers) is refused with one line naming the entry (:func:`check_coco`).

Eval mode letterboxes to ``input_size``; train mode uses a random zoom/crop
(:func:`~cat_deploy.data.transforms.random_scale_crop`), a horizontal flip and
colour jitter. Randomness comes from ``default_rng([seed, epoch, index])``, so a
sample is the same whatever the number of DataLoader workers; call
:meth:`CocoDetection.set_epoch` each epoch (without ``persistent_workers``) to
get new augmentations.
"""
from __future__ import annotations

import os
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from ..config import IMAGENET_MEAN, IMAGENET_STD
from .coco_json import box_problem, check_coco, load_coco_json
from .image import read_image
from .transforms import boxes_to_letterbox, color_jitter, hflip, letterbox, normalize, random_scale_crop

__all__ = ["CocoDetection", "collate_detection", "load_coco_json", "check_coco", "box_problem"]


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
        known = {im["id"]: im for im in self.images}
        per_image: dict[int, list] = defaultdict(list)
        self.dropped: Counter = Counter()  # boxes not trained on, by reason (see the module docstring)
        for a in data["annotations"]:
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
            im = known[a["image_id"]]
            problem = box_problem(x, y, w, h, im.get("width"), im.get("height"))
            if problem:
                self.dropped[problem] += 1
                continue
            crowd = int(bool(a.get("iscrowd", 0)))
            per_image[a["image_id"]].append((x, y, x + w, y + h, label_of[a["category_id"]], crowd))
        self.num_boxes = len(data["annotations"])
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

    def describe_dropped(self) -> str:
        """One line on the boxes not used, by reason; empty when every box is used."""
        if not self.dropped:
            return ""
        reasons = ", ".join(f"{r} {n}" for r, n in sorted(self.dropped.items()))
        return (f"'{self.ann_file}': dropped {sum(self.dropped.values())} of {self.num_boxes} boxes ({reasons}); "
                "fix them in the json to train on them")

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
