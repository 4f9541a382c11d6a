"""One request's path through the detector, shared by every server (and equal to ``infer.py``'s).

    IMAGE bytes --decode_request--> images float32 [3, h, w] + letterbox float64 [5]
    network outputs (cls_logits [B, N, K], box_deltas [B, N, 4], or NMS-in-graph outputs)
        --detections--> per image num_dets int32 [1], boxes float32 [max_det, 4] (xyxy, original
                        image pixels), scores float32 [max_det], classes int32 [max_det] (0-based)

Decoding is :func:`cat_deploy.data.image.decode_image` (the same pixels as ``read_image`` gives
for the file), pre-processing is ``ModelSpec.preprocess``, post-processing is
:func:`cat_deploy.runtime.processing.detections_from_outputs` and ``boxes_to_original``: the
code ``infer.py`` runs. Detections are padded to ``max_det`` rows so that a batch of requests
is one tensor; ``num_dets`` says how many rows are real.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any, Optional, Sequence

import numpy as np

from ..data.image import DEFAULT_MAX_PIXELS, ImageReadError, decode_image
from ..data.transforms import Letterbox, boxes_to_original
from ..runtime.backends import ModelSpec
from ..runtime.processing import detections_from_outputs

__all__ = ["ServeConfig", "RequestError", "decode_request", "detections", "letterbox_vector", "letterbox_from_vector", "OUTPUTS", "INPUT", "NET_PREFIX"]

INPUT = "IMAGE"
OUTPUTS = ("num_dets", "boxes", "scores", "classes")
NET_PREFIX = "net_"  # post-processing's inputs are the network's outputs renamed (those may be num_dets, ...)


class RequestError(ValueError):
    """A request the server refuses; ``str()`` is the one line the client receives."""


@dataclass(frozen=True)
class ServeConfig:
    """Post-processing thresholds and request limits of a served detector (fixed per deployment)."""

    conf: float = 0.25
    iou: float = 0.5
    max_det: int = 100
    max_bytes: int = 32 * 2**20  # encoded image size limit per request
    max_pixels: int = DEFAULT_MAX_PIXELS  # decompression-bomb guard, as in infer.py
    version: int = 1

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> "ServeConfig":
        d = json.loads(text)
        if d.get("version") != 1:
            raise ValueError(f"serve config version {d.get('version')!r} is not 1; regenerate the repository")
        return cls(**d)


def letterbox_vector(lb: Letterbox) -> np.ndarray:
    """``Letterbox`` -> float64 [5]: scale, pad_x, pad_y, source height, source width (float64, so that
    boxes map back with the very scale ``infer.py`` uses)."""
    return np.array([lb.scale, lb.pad_x, lb.pad_y, *lb.src_size], np.float64)


def letterbox_from_vector(v: np.ndarray, spec: ModelSpec) -> Letterbox:
    """Inverse of :func:`letterbox_vector`."""
    v = np.asarray(v, np.float64).reshape(-1)
    return Letterbox(float(v[0]), float(v[1]), float(v[2]), (int(v[3]), int(v[4])), tuple(spec.input_hw))


def decode_request(data: Any, spec: ModelSpec, cfg: ServeConfig, label: str = "request"
                   ) -> tuple[np.ndarray, np.ndarray, Letterbox]:
    """Encoded image bytes -> (float32 [3, h, w], letterbox float64 [5], ``Letterbox``).

    Raises :class:`RequestError` with one line for anything that is not an image this server takes.
    """
    if isinstance(data, np.ndarray):
        data = data.item() if data.size == 1 else data
    if isinstance(data, str):
        data = data.encode("latin-1")
    if not isinstance(data, (bytes, bytearray)):
        raise RequestError(f"IMAGE must be the encoded image file's bytes (BYTES tensor), got {type(data).__name__}")
    if len(data) > cfg.max_bytes:
        raise RequestError(f"image is {len(data)} bytes, more than this server's limit of {cfg.max_bytes} bytes: "
                           "send a smaller (re-encoded or downscaled) image")
    try:
        image = decode_image(bytes(data), label, cfg.max_pixels)
    except ImageReadError as e:
        raise RequestError(f"{label}: {e.reason} — send a JPEG, PNG, BMP or WebP file's bytes") from None
    tensor, lb = spec.preprocess(image)
    return tensor, letterbox_vector(lb), lb


def detections(outputs: dict[str, np.ndarray], letterboxes: Sequence[Letterbox], spec: ModelSpec, cfg: ServeConfig,
               classes: Optional[Sequence[int]] = None) -> dict[str, np.ndarray]:
    """Raw network outputs of a batch -> padded detections per image (see the module docstring)."""
    n = len(letterboxes)
    dets = detections_from_outputs({k: v[:n] for k, v in outputs.items()}, spec.input_hw, spec.detector, cfg.conf,
                                   cfg.iou, cfg.max_det, classes)
    out = {"num_dets": np.zeros((n, 1), np.int32), "boxes": np.zeros((n, cfg.max_det, 4), np.float32),
           "scores": np.zeros((n, cfg.max_det), np.float32), "classes": np.zeros((n, cfg.max_det), np.int32)}
    for i, (d, lb) in enumerate(zip(dets, letterboxes)):
        k = min(len(d["scores"]), cfg.max_det)
        out["num_dets"][i, 0] = k
        out["boxes"][i, :k] = boxes_to_original(d["boxes"][:k], lb)
        out["scores"][i, :k] = d["scores"][:k]
        out["classes"][i, :k] = d["labels"][:k]
    return out

