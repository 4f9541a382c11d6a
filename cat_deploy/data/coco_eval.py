"""COCO results and box mAP (faster-coco-eval): shared by the runtime (``--annotations``) and validation.

Numpy only; faster-coco-eval is imported on first use (``pip install 'cat-deploy[runtime]'``).
"""
from __future__ import annotations

import contextlib
import copy
import io
import os
from typing import Any, Sequence, Union

import numpy as np

from ..core.optional import lazy_import

__all__ = ["coco_map", "to_coco_results"]

faster_coco_eval = lazy_import("faster_coco_eval", "COCO mAP")


def to_coco_results(
    image_id: int, boxes: np.ndarray, scores: np.ndarray, labels: np.ndarray, category_ids: Sequence[int]
) -> list[dict[str, Any]]:
    """Detections of one image (xyxy boxes, 0-based labels) as COCO result dicts (xywh, category ids)."""
    out = []
    for (x1, y1, x2, y2), s, c in zip(np.asarray(boxes, float), np.asarray(scores, float), np.asarray(labels, int)):
        out.append({
            "image_id": int(image_id),
            "category_id": int(category_ids[c]),
            "bbox": [round(x1, 2), round(y1, 2), round(x2 - x1, 2), round(y2 - y1, 2)],
            "score": round(float(s), 5),
        })
    return out


def coco_map(ground_truth: Union[str, os.PathLike, dict], results: list[dict[str, Any]],
             image_ids: Sequence[int] | None = None) -> dict[str, float]:
    """Box AP of COCO ``results`` against ``ground_truth`` (a COCO json path or dict).

    Returns ``{"map": AP@[.5:.95], "map50": AP@.5, "map75": AP@.75, "map_small", "map_medium",
    "map_large"}``; all zeros when there are no results. ``image_ids`` limits the evaluation.
    """
    COCO, COCOeval_faster = faster_coco_eval.COCO, faster_coco_eval.COCOeval_faster
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(str(ground_truth)) if not isinstance(ground_truth, dict) else COCO(copy.deepcopy(ground_truth))
    if not results:
        return dict.fromkeys(("map", "map50", "map75", "map_small", "map_medium", "map_large"), 0.0)
    with contextlib.redirect_stdout(io.StringIO()):
        dt = gt.loadRes(copy.deepcopy(results))
        ev = COCOeval_faster(gt, dt, iouType="bbox", print_function=lambda *a, **k: None)
        if image_ids is not None:
            ev.params.imgIds = list(image_ids)
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    s = ev.stats
    return {"map": float(s[0]), "map50": float(s[1]), "map75": float(s[2]),
            "map_small": float(s[3]), "map_medium": float(s[4]), "map_large": float(s[5])}
