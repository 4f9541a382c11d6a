"""Convert KITTI object-detection labels (``label_2/*.txt``) to a COCO json.

Each label line is ``type truncated occluded alpha x1 y1 x2 y2 h w l x y z ry``
(a 16th ``score`` column, as in result files, is ignored). Categories are the
synthetic data's six ``CLASSES`` (ids 1..6), so models trained on either share a head:

- Car, Van -> car; Truck -> truck; Pedestrian, Person_sitting -> pedestrian;
  Cyclist -> cyclist. KITTI has no traffic lights or signs: those categories exist
  with zero instances.
- Tram and Misc are dropped.
- DontCare regions become ``iscrowd = 1`` boxes, one per KITTI-backed category
  (car, truck, pedestrian, cyclist), because COCO evaluation only lets a crowd box
  absorb detections of its own category.
- Same ignore policy as the synthetic data: an object becomes ``iscrowd = 1`` when
  it is largely occluded or unknown (``occluded >= 2``), truncated more than 60 %,
  or its box is under 8 px tall.

Image ids follow the sorted label-file order starting at 1; ``file_name`` is the
image's name inside ``--images``.

CLI::

    python -m cat_deploy.data.kitti --images training/image_2 --labels training/label_2 --out kitti_coco.json
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Iterator, Optional, Sequence

from PIL import Image

from ..core.files import write_json
from .image import IMAGE_EXTENSIONS
from .synthetic import CLASSES

__all__ = ["KITTI_TO_CLASS", "convert_kitti", "main"]

KITTI_TO_CLASS = {
    "Car": "car",
    "Van": "car",
    "Truck": "truck",
    "Pedestrian": "pedestrian",
    "Person_sitting": "pedestrian",
    "Cyclist": "cyclist",
}
DROPPED = ("Tram", "Misc")
DONTCARE = "DontCare"
_CATEGORY_ID = {name: i + 1 for i, name in enumerate(CLASSES)}
_KITTI_CATEGORIES = sorted({_CATEGORY_ID[c] for c in KITTI_TO_CLASS.values()})  # DontCare boxes cover these


def _find_image(images_dir: Path, stem: str) -> Path:
    for ext in IMAGE_EXTENSIONS + tuple(e.upper() for e in IMAGE_EXTENSIONS):
        p = images_dir / f"{stem}{ext}"
        if p.is_file():
            return p
    raise FileNotFoundError(
        f"no image for label '{stem}.txt' in '{images_dir}' (looked for {stem}.png/.jpg/...) "
        "— check that --images and --labels belong to the same split"
    )


def convert_kitti(
    images_dir: str | os.PathLike,
    labels_dir: str | os.PathLike,
    out_file: str | os.PathLike,
    max_occluded: int = 1,
    max_truncated: float = 0.6,
    min_height: float = 8.0,
) -> dict:
    """Write ``out_file`` (COCO json) from KITTI labels and return the dict written.

    Args:
        images_dir: ``image_2`` folder (read only for image sizes).
        labels_dir: ``label_2`` folder of ``<stem>.txt`` files.
        max_occluded, max_truncated, min_height: objects beyond these become
            ``iscrowd = 1`` (see the module docstring).
    """
    images_dir, labels_dir = Path(images_dir), Path(labels_dir)
    images, annotations = [], []
    for image_id, label_file in enumerate(_label_files(images_dir, labels_dir), start=1):
        image_path = _find_image(images_dir, label_file.stem)
        width, height = _image_size(image_path)
        images.append(dict(id=image_id, file_name=image_path.name, width=width, height=height))
        for category, (x1, y1, x2, y2), crowd in _objects(label_file, width, height, max_occluded, max_truncated,
                                                           min_height):
            w, h = x2 - x1, y2 - y1
            annotations.append(dict(id=len(annotations) + 1, image_id=image_id, category_id=category,
                                    bbox=[x1, y1, w, h], area=w * h, iscrowd=int(crowd)))
    coco = dict(
        info=dict(description=f"KITTI labels from {labels_dir}"),
        images=images,
        annotations=annotations,
        categories=[dict(id=i + 1, name=n, supercategory="object") for i, n in enumerate(CLASSES)],
    )
    write_json(out_file, coco)
    return coco


def _label_files(images_dir: Path, labels_dir: Path) -> list[Path]:
    """The sorted ``*.txt`` files of ``labels_dir``, after checking that both folders exist."""
    if not labels_dir.is_dir():
        raise NotADirectoryError(f"KITTI label folder '{labels_dir}' does not exist — pass training/label_2")
    if not images_dir.is_dir():
        raise NotADirectoryError(f"KITTI image folder '{images_dir}' does not exist — pass training/image_2")
    label_files = sorted(labels_dir.glob("*.txt"))
    if not label_files:
        raise FileNotFoundError(f"no .txt label files in '{labels_dir}' — pass the label_2 folder")
    return label_files


def _image_size(image_path: Path) -> tuple[int, int]:
    """(width, height) from the image header."""
    try:
        with Image.open(image_path) as im:
            return im.size
    except OSError as e:
        raise ValueError(f"cannot read image '{image_path}' ({e}) — re-download or remove it") from None


def _objects(label_file: Path, width: int, height: int, max_occluded: int, max_truncated: float,
             min_height: float) -> Iterator[tuple[int, tuple[float, float, float, float], bool]]:
    """The boxes of one label file, clipped to the image: ``(category id, (x1, y1, x2, y2), crowd)``.

    A DontCare region gives one crowd box per KITTI-backed category; Tram and Misc give none;
    empty boxes (after clipping) are left out.
    """
    for line_no, line in enumerate(label_file.read_text().splitlines(), start=1):
        fields = line.split()
        if not fields:
            continue
        kind, truncated, occluded, (x1, y1, x2, y2) = _parse_line(fields, f"{label_file}:{line_no}")
        x1, x2 = max(0.0, min(x1, width)), max(0.0, min(x2, width))
        y1, y2 = max(0.0, min(y1, height)), max(0.0, min(y2, height))
        if x2 <= x1 or y2 <= y1:
            continue
        if kind == DONTCARE:
            for c in _KITTI_CATEGORIES:
                yield c, (x1, y1, x2, y2), True
        elif kind in KITTI_TO_CLASS:
            crowd = occluded > max_occluded or truncated > max_truncated or (y2 - y1) < min_height
            yield _CATEGORY_ID[KITTI_TO_CLASS[kind]], (x1, y1, x2, y2), crowd
        elif kind not in DROPPED:
            raise ValueError(f"{label_file}:{line_no}: unknown KITTI object type {kind!r} — is this a KITTI label file?")


def _parse_line(fields: list[str], where: str) -> tuple[str, float, int, tuple[float, float, float, float]]:
    """(type, truncated, occluded, (x1, y1, x2, y2)) of one label line's fields; ``where`` is ``file:line``."""
    try:
        if len(fields) not in (15, 16):
            raise ValueError(f"expected 15 fields, got {len(fields)}")
        truncated, occluded = float(fields[1]), int(float(fields[2]))
        x1, y1, x2, y2 = (float(v) for v in fields[4:8])
        return fields[0], truncated, occluded, (x1, y1, x2, y2)
    except ValueError as e:
        raise ValueError(f"{where}: bad KITTI label line ({e}) — fix or remove the line") from None


def main(argv: Optional[Sequence[str]] = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m cat_deploy.data.kitti", description=__doc__.split("\n")[0])
    ap.add_argument("--images", required=True, help="KITTI training/image_2 folder")
    ap.add_argument("--labels", required=True, help="KITTI training/label_2 folder")
    ap.add_argument("--out", required=True, help="output COCO json")
    args = ap.parse_args(argv)
    coco = convert_kitti(args.images, args.labels, args.out)
    print(f"wrote {args.out}: {len(coco['images'])} images, {len(coco['annotations'])} annotations")
    return 0


if __name__ == "__main__":
    sys.exit(main())
