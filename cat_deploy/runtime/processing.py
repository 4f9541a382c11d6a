"""Pre- and post-processing shared by every backend (PyTorch, ONNX Runtime, TensorRT).

Pre-processing follows the artefact's sidecar: letterbox (detectors) or resize
(classifiers) to the input size, RGB, ``(x/255 - mean) / std``, CHW float32.
Post-processing turns raw detector outputs into detections with the numpy
:func:`cat_deploy.runtime.boxes.postprocess` (``nms="host"``) or unpads the fixed-size
outputs of ``nms="graph"``. Numpy only: the deployment runtime needs no PyTorch.
"""
from __future__ import annotations

from functools import lru_cache
from typing import Optional, Sequence

import numpy as np

from ..config import PAD_VALUE, DetectorOptions
from ..data.transforms import Letterbox, letterbox, normalize, resize
from .boxes import make_anchors, postprocess

__all__ = ["preprocess", "detections_from_outputs", "anchors_for"]


def preprocess(image: np.ndarray, input_size: Sequence[int], mean: Sequence[float], std: Sequence[float],
               use_letterbox: bool = True, pad_value: int = PAD_VALUE) -> tuple[np.ndarray, Letterbox]:
    """RGB uint8 image [H, W, 3] -> (float32 [3, h, w], geometry to map boxes back)."""
    h, w = int(input_size[0]), int(input_size[1])
    if use_letterbox:
        img, lb = letterbox(image, (h, w), pad_value)
    else:
        img = resize(image, (h, w))
        lb = Letterbox(scale=w / image.shape[1], pad_x=0.0, pad_y=0.0, src_size=image.shape[:2], dst_size=(h, w))
    return normalize(img, mean, std), lb


@lru_cache(maxsize=16)
def anchors_for(input_hw: tuple[int, int], options: DetectorOptions) -> np.ndarray:
    """Anchors float32 [N, 4] for one input size, computed once per size and options."""
    anchors = make_anchors(input_hw, options)
    anchors.flags.writeable = False
    return anchors


def detections_from_outputs(
    outputs: dict[str, np.ndarray],
    input_hw: Sequence[int],
    options: DetectorOptions,
    conf: float = 0.25,
    iou: float = 0.5,
    max_det: int = 100,
    classes: Optional[Sequence[int]] = None,
) -> list[dict[str, np.ndarray]]:
    """Per image ``{"boxes": [M, 4] xyxy in input pixels, "scores": [M], "labels": [M]}`` (numpy)."""
    if "num_dets" in outputs:  # nms="graph": fixed-size, zero-padded, conf/iou fixed at export
        dets = []
        for n, b, s, c in zip(outputs["num_dets"], outputs["boxes"], outputs["scores"], outputs["classes"]):
            n = int(np.asarray(n).reshape(-1)[0])
            keep = s[:n] > conf
            if classes is not None:
                keep &= np.isin(c[:n], list(classes))
            keep_idx = np.where(keep)[0][:max_det]
            dets.append({"boxes": b[keep_idx].astype(np.float32), "scores": s[keep_idx].astype(np.float32),
                         "labels": c[keep_idx].astype(np.int64)})
        return dets
    hw = (int(input_hw[0]), int(input_hw[1]))
    return postprocess(outputs["cls_logits"], outputs["box_deltas"], anchors_for(hw, options), hw, conf, iou, max_det,
                       classes=classes)
