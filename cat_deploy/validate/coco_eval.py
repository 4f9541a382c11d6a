"""COCO mAP of a detector over a dataset, with any backend's predictions."""
from __future__ import annotations

import torch
from torch.utils.data import DataLoader, Subset

from ..data.coco import collate_detection
from ..data.coco_eval import coco_map, to_coco_results
from ..data.transforms import boxes_to_original

__all__ = ["coco_map", "evaluate_detector", "to_coco_results"]


def evaluate_detector(predict, dataset, batch_size: int = 8, conf: float = 0.05) -> dict[str, float]:
    """COCO mAP of ``predict`` over a :class:`~cat_deploy.data.coco.CocoDetection` (or a ``Subset`` of one).

    ``predict(images Tensor[B, 3, h, w]) -> list[dict(boxes, scores, labels)]`` in
    letterboxed input coordinates (any backend: PyTorch, ONNX Runtime, TensorRT);
    boxes are mapped back to each image's original coordinates before scoring.
    """
    base = dataset.dataset if isinstance(dataset, Subset) else dataset
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, collate_fn=collate_detection)
    results, image_ids = [], []
    with torch.no_grad():
        for images, targets in loader:
            for det, tgt in zip(predict(images), targets):
                keep = det["scores"] >= conf
                boxes = boxes_to_original(det["boxes"][keep].cpu().numpy(), tgt["letterbox"])
                results += to_coco_results(tgt["image_id"], boxes, det["scores"][keep].cpu().numpy(),
                                           det["labels"][keep].cpu().numpy(), base.category_ids)
                image_ids.append(int(tgt["image_id"]))
    return coco_map(base.ann_file, results, image_ids=image_ids)
