"""COCO detection json: read it and check its structure, without PyTorch (the runtime's ``--annotations`` uses it).

:mod:`cat_deploy.data.coco` (the PyTorch training dataset) builds on these checks.
"""
from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

__all__ = ["load_coco_json", "check_coco", "box_problem"]


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
    check_coco(data, path)
    return data


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def check_coco(data: dict[str, Any], path: str | os.PathLike) -> None:
    """Refuse, with one line naming the entry, a COCO document whose structure is wrong: an image without
    an id or ``file_name``, a repeated image id, a category without id or name, an annotation without
    ``image_id``/``category_id`` or whose ``bbox`` is not four numbers. Box *values* (NaN, negative...)
    are the dataset's to judge (:func:`box_problem`)."""
    if not isinstance(data.get("annotations", []), list):
        raise ValueError(f"COCO annotations '{path}': 'annotations' is not a list — fix the file")
    seen = set()
    for i, im in enumerate(data["images"]):
        if not isinstance(im, dict) or "id" not in im:
            raise ValueError(f"COCO annotations '{path}': image entry {i} has no id — fix the file")
        name = im.get("file_name")
        if not isinstance(name, str) or not name:
            raise ValueError(f"COCO annotations '{path}': image {im['id']} (entry {i}) has no file_name — add the "
                             "image's path relative to the image folder, or drop the entry")
        if im["id"] in seen:
            raise ValueError(f"COCO annotations '{path}': image id {im['id']} appears twice — ids must be unique")
        seen.add(im["id"])
    for i, c in enumerate(data["categories"]):
        if not isinstance(c, dict) or "id" not in c or "name" not in c:
            raise ValueError(f"COCO annotations '{path}': category entry {i} needs an id and a name — fix the file")
    for i, a in enumerate(data["annotations"]):
        if not isinstance(a, dict) or not all(k in a for k in ("image_id", "category_id", "bbox")):
            ident = a.get("id", f"entry {i}") if isinstance(a, dict) else f"entry {i}"
            raise ValueError(f"COCO annotations '{path}': annotation {ident} lacks image_id, category_id or bbox "
                             "— fix the file")
        box = a["bbox"]
        if not isinstance(box, (list, tuple)) or len(box) != 4 or not all(_is_number(v) for v in box):
            raise ValueError(f"COCO annotations '{path}': annotation {a.get('id', f'entry {i}')} has bbox "
                             f"{json.dumps(box)[:80]}; expected four numbers [x, y, width, height] — fix the file")


def box_problem(x: float, y: float, w: float, h: float, width: Any = None, height: Any = None) -> str | None:
    """Why a COCO box ``[x, y, w, h]`` cannot be trained on (``None`` when it can); ``width``/``height`` of
    the image, when known, also rule out boxes entirely outside it."""
    if not all(math.isfinite(v) for v in (x, y, w, h)):
        return "not finite"
    if w < 0 or h < 0:
        return "negative size"
    if w == 0 or h == 0:
        return "empty"
    if x + w <= 0 or y + h <= 0 or (_is_number(width) and x >= width) or (_is_number(height) and y >= height):
        return "outside the image"
    return None
