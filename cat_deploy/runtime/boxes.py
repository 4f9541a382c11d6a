"""Detector box maths in numpy: anchors, delta decoding, IoU, class-wise NMS, post-processing.

The deployment runtime runs without PyTorch, so the host half of the detector lives here
as plain numpy, written after ``torchvision.ops.boxes``. It computes what the PyTorch side
computes (:mod:`cat_deploy.models.detector`, ``torchvision.ops.batched_nms``) and
``tests/runtime/test_boxes.py`` checks it against them on the same inputs, ties included:

* anchors in the head's output order (level, row-major position, (ratio, scale));
* RetinaNet deltas (dx, dy, dw, dh), unit weights, dw/dh clipped at ``log(1000/16)``;
* greedy NMS in descending score order, ties by index (a stable sort), suppressing
  ``IoU > threshold``; boxes of different classes never suppress each other.

All functions take and return float32 arrays in input-image pixels, boxes as xyxy.
"""
from __future__ import annotations

from typing import Optional, Sequence

import numpy as np

from ..config import BBOX_CLIP, DetectorOptions

__all__ = ["make_anchors", "decode_boxes", "box_iou", "nms", "batched_nms", "postprocess"]


def make_anchors(image_size: Sequence[int], options: DetectorOptions) -> np.ndarray:
    """All anchors for an input of ``image_size`` (h, w): float32 [N, 4] xyxy.

    Feature map of level ``l``: ``ceil(h / 2**l) x ceil(w / 2**l)`` cells; each cell holds the
    level's anchor shapes (ratio-major, then scale) centred at ``(x + 0.5, y + 0.5) * 2**l``.
    """
    h, w = int(image_size[0]), int(image_size[1])
    out = []
    for level, size in zip(options.levels, options.anchor_sizes):
        stride = 2**level
        shapes = []
        for ratio in options.anchor_ratios:  # ratio = height / width
            for scale in options.anchor_scales:
                aw = ((size * scale) ** 2 / ratio) ** 0.5
                ah = aw * ratio
                shapes.append([-aw / 2, -ah / 2, aw / 2, ah / 2])
        base = np.asarray(shapes, np.float32)
        ys = (np.arange(-(-h // stride), dtype=np.float32) + np.float32(0.5)) * np.float32(stride)
        xs = (np.arange(-(-w // stride), dtype=np.float32) + np.float32(0.5)) * np.float32(stride)
        cy, cx = np.meshgrid(ys, xs, indexing="ij")
        centers = np.stack([cx, cy, cx, cy], axis=-1).reshape(-1, 1, 4)
        out.append((centers + base[None]).reshape(-1, 4))
    return np.concatenate(out, axis=0)


def decode_boxes(deltas: np.ndarray, anchors: np.ndarray, clip: float = BBOX_CLIP) -> np.ndarray:
    """Apply RetinaNet deltas [..., 4] (dx, dy, dw, dh) to anchors [..., 4] xyxy (broadcast): boxes [..., 4] xyxy."""
    deltas = np.asarray(deltas, np.float32)
    anchors = np.asarray(anchors, np.float32)
    widths = anchors[..., 2] - anchors[..., 0]
    heights = anchors[..., 3] - anchors[..., 1]
    ctr_x = anchors[..., 0] + np.float32(0.5) * widths
    ctr_y = anchors[..., 1] + np.float32(0.5) * heights
    dw = np.minimum(deltas[..., 2], np.float32(clip))
    dh = np.minimum(deltas[..., 3], np.float32(clip))
    pred_x = deltas[..., 0] * widths + ctr_x
    pred_y = deltas[..., 1] * heights + ctr_y
    with np.errstate(over="ignore"):
        half_w = np.float32(0.5) * (np.exp(dw) * widths)
        half_h = np.float32(0.5) * (np.exp(dh) * heights)
    return np.stack([pred_x - half_w, pred_y - half_h, pred_x + half_w, pred_y + half_h], axis=-1)


def _area(boxes: np.ndarray) -> np.ndarray:
    return (boxes[..., 2] - boxes[..., 0]) * (boxes[..., 3] - boxes[..., 1])


def box_iou(boxes1: np.ndarray, boxes2: np.ndarray) -> np.ndarray:
    """Pairwise IoU of boxes1 [N, 4] and boxes2 [M, 4] (xyxy): [N, M], as ``torchvision.ops.box_iou``."""
    boxes1 = np.asarray(boxes1, np.float32).reshape(-1, 4)
    boxes2 = np.asarray(boxes2, np.float32).reshape(-1, 4)
    lt = np.maximum(boxes1[:, None, :2], boxes2[None, :, :2])
    rb = np.minimum(boxes1[:, None, 2:], boxes2[None, :, 2:])
    wh = np.clip(rb - lt, 0, None)
    inter = wh[..., 0] * wh[..., 1]
    with np.errstate(divide="ignore", invalid="ignore"):
        return inter / (_area(boxes1)[:, None] + _area(boxes2)[None, :] - inter)


def nms(boxes: np.ndarray, scores: np.ndarray, iou_threshold: float) -> np.ndarray:
    """Greedy NMS: indices (int64) of the kept boxes, by descending score (ties: lower index first).

    A box is dropped when its IoU with a higher-scoring kept box exceeds ``iou_threshold``.
    """
    boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
    order = np.argsort(-np.asarray(scores, np.float32), kind="stable")
    areas = _area(boxes)
    suppressed = np.zeros(len(boxes), dtype=bool)
    keep = []
    for pos, i in enumerate(order):
        if suppressed[i]:
            continue
        keep.append(i)
        rest = order[pos + 1:]
        rest = rest[~suppressed[rest]]
        if rest.size == 0:
            continue
        w = np.maximum(np.minimum(boxes[i, 2], boxes[rest, 2]) - np.maximum(boxes[i, 0], boxes[rest, 0]), 0)
        h = np.maximum(np.minimum(boxes[i, 3], boxes[rest, 3]) - np.maximum(boxes[i, 1], boxes[rest, 1]), 0)
        inter = w * h
        with np.errstate(divide="ignore", invalid="ignore"):
            iou = inter / (areas[i] + areas[rest] - inter)
        suppressed[rest[iou > iou_threshold]] = True
    return np.asarray(keep, dtype=np.int64)


def batched_nms(boxes: np.ndarray, scores: np.ndarray, labels: np.ndarray, iou_threshold: float) -> np.ndarray:
    """NMS within each label: kept indices (int64) by descending score, ties by index (as ``torchvision.ops.batched_nms``)."""
    scores = np.asarray(scores, np.float32)
    labels = np.asarray(labels)
    kept = [idx[nms(boxes[idx], scores[idx], iou_threshold)] for idx in
            (np.flatnonzero(labels == c) for c in np.unique(labels))]
    if not kept:
        return np.zeros(0, dtype=np.int64)
    keep = np.concatenate(kept)
    return keep[np.lexsort((keep, -scores[keep]))]


def _sigmoid(x: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore"):
        return np.float32(1) / (np.float32(1) + np.exp(-x))


def postprocess(
    cls_logits: np.ndarray,
    box_deltas: np.ndarray,
    anchors: np.ndarray,
    image_size: Sequence[int],
    conf: float = 0.05,
    iou: float = 0.5,
    max_det: int = 100,
    pre_nms_topk: int = 1000,
    classes: Optional[Sequence[int]] = None,
) -> list[dict[str, np.ndarray]]:
    """Decode, threshold, class-wise NMS: the host-side half of the detector (``--nms host``).

    Args:
        cls_logits [B, N, K], box_deltas [B, N, 4], anchors [N, 4] (:func:`make_anchors`).
        image_size: (h, w) of the network input; boxes are clipped to it.
        conf: minimum sigmoid score. iou: NMS IoU threshold. max_det: detections kept per image.
        pre_nms_topk: candidates kept per image before NMS. classes: keep only these class indices.

    Returns:
        per image, ``{"boxes": float32 [M, 4] xyxy, "scores": float32 [M], "labels": int64 [M]}``.
    """
    h, w = int(image_size[0]), int(image_size[1])
    scores_all = _sigmoid(np.asarray(cls_logits, np.float32))
    num_classes = scores_all.shape[-1]
    if classes is not None:
        mask = np.zeros(num_classes, dtype=np.float32)
        mask[list(classes)] = 1
        scores_all = scores_all * mask
    results = []
    for scores, deltas in zip(scores_all, np.asarray(box_deltas, np.float32)):
        flat = scores.reshape(-1)
        keep = np.flatnonzero(flat > conf)
        if keep.size > pre_nms_topk:
            keep = keep[np.argsort(-flat[keep], kind="stable")[:pre_nms_topk]]
        anchor_idx, labels = keep // num_classes, keep % num_classes
        boxes = decode_boxes(deltas[anchor_idx], anchors[anchor_idx])
        boxes[:, 0::2] = np.clip(boxes[:, 0::2], 0, w)
        boxes[:, 1::2] = np.clip(boxes[:, 1::2], 0, h)
        sc = flat[keep]
        kept = batched_nms(boxes, sc, labels, iou)[:max_det]
        results.append({"boxes": boxes[kept], "scores": sc[kept], "labels": labels[kept].astype(np.int64)})
    return results
