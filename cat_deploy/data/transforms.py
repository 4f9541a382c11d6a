"""Geometry and colour transforms on numpy images, shared by training, export and inference.

Conventions: images are ``np.uint8`` arrays ``(H, W, 3)`` RGB; boxes are
``(N, 4)`` float ``x1, y1, x2, y2`` in continuous pixel coordinates (pixel ``i``
spans ``[i, i + 1)``, so a box covering a whole W x H image is ``0, 0, W, H``);
sizes are ``(height, width)``.

The letterbox maps a source point to the network input by ``x' = x * scale + pad_x``
(same for y). :class:`Letterbox` records that map, so predictions can be sent back
to the original image with :func:`boxes_to_original`. Random scale/crop is the
same map with a random scale and a random (possibly negative) offset, so it
returns a :class:`Letterbox` too.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np
from PIL import Image

from ..config import PAD_VALUE

__all__ = [
    "Letterbox",
    "boxes_to_letterbox",
    "boxes_to_original",
    "color_jitter",
    "hflip",
    "letterbox",
    "normalize",
    "random_scale_crop",
    "resize",
]


@dataclass(frozen=True)
class Letterbox:
    """The affine map source image -> network input: ``x' = x * scale + pad_x``, ``y' = y * scale + pad_y``.

    ``pad_x``/``pad_y`` are the whole-pixel offsets at which the resized image was
    pasted (negative when it was cropped). ``src_size`` and ``dst_size`` are (h, w).
    """

    scale: float
    pad_x: float
    pad_y: float
    src_size: tuple[int, int]
    dst_size: tuple[int, int]


def resize(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Bilinear resize (PIL, antialiased when shrinking) of ``(H, W, 3)`` uint8 to ``size`` = (h, w)."""
    h, w = size
    if image.shape[:2] == (h, w):
        return image
    return np.asarray(Image.fromarray(image).resize((w, h), Image.BILINEAR))


def _paste(canvas: np.ndarray, image: np.ndarray, x: int, y: int) -> None:
    """Paste ``image`` into ``canvas`` with its top-left corner at (x, y); parts outside are cut."""
    ch, cw = canvas.shape[:2]
    ih, iw = image.shape[:2]
    x0, y0, x1, y1 = max(x, 0), max(y, 0), min(x + iw, cw), min(y + ih, ch)
    if x1 > x0 and y1 > y0:
        canvas[y0:y1, x0:x1] = image[y0 - y : y1 - y, x0 - x : x1 - x]


def letterbox(image: np.ndarray, size: tuple[int, int], pad_value: int = PAD_VALUE) -> tuple[np.ndarray, Letterbox]:
    """Resize keeping the aspect ratio so the image fits ``size`` = (h, w), then centre-pad.

    Args:
        image: ``(H, W, 3)`` uint8.
        size: output (h, w).
        pad_value: gray level of the padding.

    Returns:
        ``(out, lb)``: ``out`` is ``(h, w, 3)`` uint8, ``lb`` the map used.

    Example::

        x, lb = letterbox(read_image("f.jpg"), (192, 640))
        boxes = boxes_to_original(pred_boxes, lb)
    """
    src_h, src_w = image.shape[:2]
    h, w = size
    scale = min(h / src_h, w / src_w)
    new_w, new_h = max(1, round(src_w * scale)), max(1, round(src_h * scale))
    left, top = (w - new_w) // 2, (h - new_h) // 2
    out = np.full((h, w, 3), pad_value, dtype=np.uint8)
    _paste(out, resize(image, (new_h, new_w)), left, top)
    return out, Letterbox(float(scale), float(left), float(top), (src_h, src_w), (h, w))


def _as_float_boxes(boxes: np.ndarray) -> tuple[np.ndarray, np.dtype]:
    boxes = np.asarray(boxes)
    dtype = boxes.dtype if np.issubdtype(boxes.dtype, np.floating) else np.dtype(np.float32)
    return boxes.astype(np.float64).reshape(-1, 4), dtype


def boxes_to_letterbox(boxes: np.ndarray, lb: Letterbox) -> np.ndarray:
    """Map ``(N, 4)`` xyxy boxes from source-image to letterboxed coordinates (no clipping)."""
    b, dtype = _as_float_boxes(boxes)
    offset = np.array([lb.pad_x, lb.pad_y, lb.pad_x, lb.pad_y])
    return (b * lb.scale + offset).astype(dtype)


def boxes_to_original(boxes: np.ndarray, lb: Letterbox) -> np.ndarray:
    """Map ``(N, 4)`` xyxy boxes from letterboxed to source-image coordinates, clipped to the source image."""
    b, dtype = _as_float_boxes(boxes)
    offset = np.array([lb.pad_x, lb.pad_y, lb.pad_x, lb.pad_y])
    b = (b - offset) / lb.scale
    h, w = lb.src_size
    b[:, 0::2] = b[:, 0::2].clip(0, w)
    b[:, 1::2] = b[:, 1::2].clip(0, h)
    return b.astype(dtype)


def normalize(image: np.ndarray, mean: Sequence[float], std: Sequence[float]) -> np.ndarray:
    """uint8 ``(H, W, 3)`` -> float32 ``(3, H, W)``: ``(image / 255 - mean) / std``, mean/std in 0..1 units."""
    m = np.asarray(mean, dtype=np.float32) * 255.0
    s = 1.0 / (np.asarray(std, dtype=np.float32) * 255.0)
    x = (image.astype(np.float32) - m) * s
    return np.ascontiguousarray(x.transpose(2, 0, 1))


def hflip(image: np.ndarray, boxes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mirror left-right. ``boxes`` ``(N, 4)`` xyxy are mirrored to stay on their objects."""
    w = image.shape[1]
    out = np.asarray(boxes, dtype=np.float32).reshape(-1, 4).copy()
    out[:, [0, 2]] = w - out[:, [2, 0]]
    return np.ascontiguousarray(image[:, ::-1]), out


def color_jitter(
    rng: np.random.Generator,
    image: np.ndarray,
    brightness: float = 0.3,
    contrast: float = 0.3,
    saturation: float = 0.3,
) -> np.ndarray:
    """Random brightness, contrast and saturation, each a factor drawn from ``[1 - v, 1 + v]``.

    Contrast blends with the image's mean gray, saturation with its per-pixel gray
    (ITU-R 601 luma), as in torchvision's ``ColorJitter``. Returns uint8 ``(H, W, 3)``.
    """
    b, c, s = (rng.uniform(1 - v, 1 + v) for v in (brightness, contrast, saturation))
    x = image.astype(np.float32) * b
    gray = x @ np.array([0.299, 0.587, 0.114], dtype=np.float32)  # (H, W)
    x = (x - gray.mean()) * c + gray.mean()
    gray = gray[..., None] * c + gray.mean() * (1 - c)  # gray of the contrast-adjusted image
    x = (x - gray) * s + gray
    return np.clip(x + 0.5, 0, 255).astype(np.uint8)


def random_scale_crop(
    rng: np.random.Generator,
    image: np.ndarray,
    boxes: np.ndarray,
    labels: np.ndarray,
    scale_range: tuple[float, float],
    out_size: tuple[int, int],
    min_visible: float = 0.4,
    pad_value: int = PAD_VALUE,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, Letterbox]:
    """Letterbox with a random zoom and a random position: the training-time view of ``image``.

    The image is scaled by ``fit * z`` where ``fit`` is the letterbox scale for
    ``out_size`` and ``z`` is log-uniform in ``scale_range`` (``z > 1`` zooms in and
    crops, ``z < 1`` zooms out and pads), then placed at a uniformly random offset.
    Boxes are mapped and clipped to the output; a box is kept when its visible part
    is at least ``min_visible`` of its mapped area, and dropped otherwise.

    Args:
        image: ``(H, W, 3)`` uint8.
        boxes: ``(N, 4)`` xyxy in ``image`` coordinates.
        labels: ``(N, ...)`` per-box values, filtered with the boxes (class ids,
            or several columns such as class id and iscrowd).
        scale_range: (low, high) zoom factors relative to the letterbox fit.
        out_size: output (h, w).

    Returns:
        ``(out (h, w, 3) uint8, boxes (M, 4) float32, labels (M, ...), lb)``.
    """
    src_h, src_w = image.shape[:2]
    h, w = out_size
    lo, hi = scale_range
    scale = min(h / src_h, w / src_w) * math.exp(rng.uniform(math.log(lo), math.log(hi)))
    new_w, new_h = max(1, round(src_w * scale)), max(1, round(src_h * scale))
    x = int(rng.integers(min(0, w - new_w), max(0, w - new_w) + 1))
    y = int(rng.integers(min(0, h - new_h), max(0, h - new_h) + 1))
    out = np.full((h, w, 3), pad_value, dtype=np.uint8)
    _paste(out, resize(image, (new_h, new_w)), x, y)
    lb = Letterbox(float(scale), float(x), float(y), (src_h, src_w), (h, w))

    mapped = boxes_to_letterbox(np.asarray(boxes, dtype=np.float32), lb)
    clipped = mapped.copy()
    clipped[:, 0::2] = clipped[:, 0::2].clip(0, w)
    clipped[:, 1::2] = clipped[:, 1::2].clip(0, h)
    area = (mapped[:, 2] - mapped[:, 0]) * (mapped[:, 3] - mapped[:, 1])
    cw, ch = clipped[:, 2] - clipped[:, 0], clipped[:, 3] - clipped[:, 1]
    keep = (cw > 0) & (ch > 0) & (cw * ch >= min_visible * area)
    return out, clipped[keep], np.asarray(labels)[keep], lb
