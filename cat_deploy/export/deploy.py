"""Deploy graphs: what goes into the ONNX file for each model and NMS choice.

* classifier: ``images -> logits [B, K]``.
* detector, ``nms="host"`` (default): ``images -> cls_logits [B, N, K], box_deltas [B, N, 4]``.
  Decoding and NMS run after the engine in :func:`cat_deploy.models.postprocess`,
  the same code for every backend; anchors follow from the input size. No
  data-dependent shapes in the engine, so every dynamic-shape profile works.
* detector, ``nms="graph"``: ``images -> num_dets [B, 1] int32, boxes [B, D, 4],
  scores [B, D], classes [B, D] int32`` with ``D = max_det``, padded with zeros.
  Built from standard ONNX ops (Sigmoid, anchor arithmetic, NonMaxSuppression,
  ScatterND, TopK, GatherElements), which TensorRT maps to its native ``INMSLayer``;
  no deprecated ``EfficientNMS_TRT``/``BatchedNMS`` plugins.
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torchvision

from ..models.detector import RetinaNet, anchors_for_levels, decode_boxes

__all__ = ["DeployDetector", "GraphNMS", "deploy_module", "output_names"]


class _OnnxNonMaxSuppression(torch.autograd.Function):
    """ONNX ``NonMaxSuppression``: boxes [B, N, 4] xyxy, scores [B, C, N] -> selected [M, 3] (batch, class, box).

    The eager forward gives the same selection with torchvision's NMS, so tracing
    and PyTorch-side parity use identical semantics (scores > threshold kept).
    """

    @staticmethod
    def forward(ctx, boxes, scores, max_per_class, iou_threshold, score_threshold):
        selected = []
        for b in range(scores.shape[0]):
            for c in range(scores.shape[1]):
                idx = torch.nonzero(scores[b, c] > score_threshold).squeeze(1)
                keep = idx[torchvision.ops.nms(boxes[b, idx], scores[b, c, idx], float(iou_threshold))]
                keep = keep[: int(max_per_class)]
                selected.append(torch.stack([torch.full_like(keep, b), torch.full_like(keep, c), keep], dim=1))
        return torch.cat(selected, dim=0) if selected else torch.zeros(0, 3, dtype=torch.long)

    @staticmethod
    def symbolic(g, boxes, scores, max_per_class, iou_threshold, score_threshold):
        return g.op("NonMaxSuppression", boxes, scores, max_per_class, iou_threshold, score_threshold,
                    center_point_box_i=0)


class GraphNMS(nn.Module):
    """Decode + class-wise NMS + top ``max_det`` with fixed-size outputs (kept FP32 in mixed precision)."""

    def __init__(self, conf: float = 0.25, iou: float = 0.5, max_det: int = 100, max_per_class: int = 1000):
        super().__init__()
        self.conf, self.iou, self.max_det, self.max_per_class = conf, iou, max_det, max_per_class

    def forward(self, cls_logits, box_deltas, anchors, image_hw):
        n = cls_logits.shape[1]
        boxes = decode_boxes(box_deltas.float(), anchors.float())  # [B, N, 4]
        w, h = image_hw[1].float(), image_hw[0].float()
        boxes = torch.stack([boxes[..., 0].clamp(min=0).minimum(w), boxes[..., 1].clamp(min=0).minimum(h),
                             boxes[..., 2].clamp(min=0).minimum(w), boxes[..., 3].clamp(min=0).minimum(h)], dim=-1)
        scores = torch.sigmoid(cls_logits.float()).transpose(1, 2)  # [B, K, N]
        sel = _OnnxNonMaxSuppression.apply(
            boxes, scores, torch.tensor([self.max_per_class]), torch.tensor([self.iou], dtype=torch.float32),
            torch.tensor([self.conf], dtype=torch.float32))
        bi, ci, ni = sel[:, 0], sel[:, 1], sel[:, 2]
        flat = ci * n + ni
        flat_scores = scores.flatten(1)  # [B, K*N]
        kept = torch.zeros_like(flat_scores).index_put((bi, flat), flat_scores[bi, flat])
        top_scores, top_idx = kept.topk(self.max_det, dim=1)
        valid = top_scores > 0
        classes = torch.div(top_idx, n, rounding_mode="floor")
        box_idx = top_idx - classes * n
        out_boxes = torch.gather(boxes, 1, box_idx.unsqueeze(-1).expand(-1, -1, 4)) * valid.unsqueeze(-1)
        num_dets = valid.sum(dim=1, keepdim=True).to(torch.int32)
        return num_dets, out_boxes, top_scores * valid, (classes * valid).to(torch.int32)


class DeployDetector(nn.Module):
    """RetinaNet + in-graph anchors, decoding and NMS (``nms="graph"``)."""

    def __init__(self, model: RetinaNet, conf: float = 0.25, iou: float = 0.5, max_det: int = 100):
        super().__init__()
        self.model = model
        self.postprocess = GraphNMS(conf, iou, max_det)

    def forward(self, images: torch.Tensor):
        pyramid = self.model.pyramid(images)
        cls_logits, box_deltas = self.model.head(pyramid)
        anchors = anchors_for_levels([p.shape[-2:] for p in pyramid], self.model.options, dtype=torch.float32)
        image_hw = torch._shape_as_tensor(images)[2:]  # traced as a Shape op: dynamic H, W
        return self.postprocess(cls_logits, box_deltas, anchors, image_hw)


def output_names(model: nn.Module, nms: str) -> list[str]:
    if getattr(model, "config", None) is not None and model.config.task == "classify":
        return ["logits"]
    return ["num_dets", "boxes", "scores", "classes"] if nms == "graph" else ["cls_logits", "box_deltas"]


def deploy_module(model: nn.Module, nms: str = "host", conf: float = 0.25, iou: float = 0.5,
                  max_det: int = 100) -> nn.Module:
    """The module whose forward is exported for ``model`` and the NMS choice."""
    if nms not in ("host", "graph"):
        raise ValueError(f"nms must be 'host' or 'graph', got {nms!r}")
    if isinstance(model, RetinaNet) and nms == "graph":
        return DeployDetector(model, conf, iou, max_det).eval()
    return model.eval()
