"""Single-stage RetinaNet-style detector: backbone + FPN + shared class/box heads.

Reference: Lin et al., "Focal Loss for Dense Object Detection", ICCV 2017.

The network (:meth:`RetinaNet.forward`) stops at raw outputs, so it exports
cleanly: ``cls_logits`` Tensor[B, N, K] and ``box_deltas`` Tensor[B, N, 4] over
all N anchors of all levels. Anchors depend only on the input size
(:func:`make_anchors`); decoding (:func:`decode_boxes`) and NMS
(:func:`postprocess`) are separate functions used by training, evaluation and
every runtime backend. torchvision supplies the FPN, focal loss, GIoU loss, IoU and
NMS; the box coder (:func:`decode_boxes`) and the anchor matcher (:func:`match_anchors`)
are local, as torchvision's are private API (the tests compare them). The
deployment runtime has the same host half in numpy (:mod:`cat_deploy.runtime.boxes`),
checked against these functions.
"""
from __future__ import annotations

import math
from collections import OrderedDict
from typing import Optional, Sequence

import torch
import torch.nn as nn
from torchvision.ops import FeaturePyramidNetwork, batched_nms, box_iou, generalized_box_iou_loss, sigmoid_focal_loss
from torchvision.ops.feature_pyramid_network import LastLevelP6P7

from ..config import BBOX_CLIP, DetectorOptions
from .backbones import FeatureBackbone

__all__ = ["RetinaNet", "RetinaHead", "anchors_for_levels", "make_anchors", "decode_boxes", "match_anchors",
           "postprocess", "detection_loss"]

BELOW_LOW_THRESHOLD, BETWEEN_THRESHOLDS = -1, -2



def level_shapes(image_size: Sequence[int], levels: Sequence[int]) -> list[tuple[int, int]]:
    """Feature-map (h, w) of each pyramid level: every stride-2 layer rounds up."""
    h, w = image_size
    return [(-(-h // 2**lvl), -(-w // 2**lvl)) for lvl in levels]


def cell_anchors(options: DetectorOptions) -> list[torch.Tensor]:
    """Per level, the A anchor shapes centred at 0: Tensor[A, 4] xyxy, ordered (ratio, scale)."""
    out = []
    for size in options.anchor_sizes:
        shapes = []
        for ratio in options.anchor_ratios:  # ratio = height / width
            for scale in options.anchor_scales:
                area = (size * scale) ** 2
                w = math.sqrt(area / ratio)
                h = w * ratio
                shapes.append([-w / 2, -h / 2, w / 2, h / 2])
        out.append(torch.tensor(shapes, dtype=torch.float32))
    return out


def anchors_for_levels(sizes: Sequence[tuple], options: DetectorOptions, device=None, dtype=torch.float32) -> torch.Tensor:
    """Anchors for pyramid levels of the given (h, w) sizes: Tensor[N, 4] xyxy in input pixels.

    Ordered level by level, then row-major over positions, then over the A
    anchors of a cell: the order of the head's flattened outputs. Sizes may be
    traced tensors, so an exported graph computes anchors for its dynamic input size.
    """
    anchors = []
    for (fh, fw), lvl, base in zip(sizes, options.levels, cell_anchors(options)):
        stride = 2**lvl
        ys = (torch.arange(fh, device=device, dtype=dtype) + 0.5) * stride
        xs = (torch.arange(fw, device=device, dtype=dtype) + 0.5) * stride
        cy, cx = torch.meshgrid(ys, xs, indexing="ij")
        centers = torch.stack([cx, cy, cx, cy], dim=-1).reshape(-1, 1, 4)
        anchors.append((centers + base.to(device=device, dtype=dtype)).reshape(-1, 4))
    return torch.cat(anchors, dim=0)


def make_anchors(
    image_size: Sequence[int], options: DetectorOptions, device=None, dtype=torch.float32
) -> torch.Tensor:
    """All anchors for an input of ``image_size`` (h, w): Tensor[N, 4] xyxy (see :func:`anchors_for_levels`)."""
    return anchors_for_levels(level_shapes(image_size, options.levels), options, device, dtype)


def decode_boxes(box_deltas: torch.Tensor, anchors: torch.Tensor, clip: float = BBOX_CLIP) -> torch.Tensor:
    """Apply RetinaNet deltas to anchors: boxes Tensor[..., N, 4] xyxy.

    ``box_deltas`` (Tensor[..., N, 4]) are (dx, dy, dw, dh) with unit weights, relative to the
    anchor's centre and size; dw, dh are clipped at ``clip`` before the exponential. ``anchors``
    (Tensor[N, 4] xyxy) broadcast over the leading axes. Same maths as torchvision's
    ``BoxCoder(weights=(1, 1, 1, 1)).decode_single`` (the tests compare them).
    """
    anchors = anchors.to(box_deltas.dtype)
    widths = anchors[..., 2] - anchors[..., 0]
    heights = anchors[..., 3] - anchors[..., 1]
    ctr_x = anchors[..., 0] + 0.5 * widths
    ctr_y = anchors[..., 1] + 0.5 * heights
    dx, dy, dw, dh = box_deltas.unbind(-1)
    pred_x = dx * widths + ctr_x
    pred_y = dy * heights + ctr_y
    half_w = 0.5 * (torch.exp(dw.clamp(max=clip)) * widths)
    half_h = 0.5 * (torch.exp(dh.clamp(max=clip)) * heights)
    return torch.stack([pred_x - half_w, pred_y - half_h, pred_x + half_w, pred_y + half_h], dim=-1)


class RetinaHead(nn.Module):
    """Class and box subnets shared over pyramid levels.

    Args:
        in_channels: FPN channels.
        num_anchors: anchors per cell (A).
        num_classes: K.
        num_convs: 3x3 convs in each subnet (paper: 4).
        norm: ``"gn"`` (GroupNorm, torchvision's RetinaNet v2), ``"bn"`` or ``"none"``.
    """

    def __init__(self, in_channels: int, num_anchors: int, num_classes: int, num_convs: int = 4, norm: str = "gn",
                 prior_probability: float = 0.01):
        super().__init__()
        self.num_anchors = num_anchors
        self.num_classes = num_classes

        def tower() -> nn.Sequential:
            layers = []
            for _ in range(num_convs):
                layers.append(nn.Conv2d(in_channels, in_channels, 3, padding=1, bias=norm == "none"))
                if norm == "gn":
                    layers.append(nn.GroupNorm(min(32, in_channels // 4), in_channels))
                elif norm == "bn":
                    layers.append(nn.BatchNorm2d(in_channels))
                layers.append(nn.ReLU(inplace=True))
            return nn.Sequential(*layers)

        self.cls_tower = tower()
        self.box_tower = tower()
        self.cls_logits = nn.Conv2d(in_channels, num_anchors * num_classes, 3, padding=1)
        self.box_deltas = nn.Conv2d(in_channels, num_anchors * 4, 3, padding=1)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.normal_(m.weight, std=0.01)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
        nn.init.constant_(self.cls_logits.bias, -math.log((1 - prior_probability) / prior_probability))

    def _flatten(self, x: torch.Tensor, width: int) -> torch.Tensor:
        b, _, h, w = x.shape
        return x.view(b, self.num_anchors, width, h, w).permute(0, 3, 4, 1, 2).reshape(b, -1, width)

    def forward(self, features: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        cls = [self._flatten(self.cls_logits(self.cls_tower(f)), self.num_classes) for f in features]
        box = [self._flatten(self.box_deltas(self.box_tower(f)), 4) for f in features]
        return torch.cat(cls, dim=1), torch.cat(box, dim=1)


class RetinaNet(nn.Module):
    """RetinaNet on a :class:`FeatureBackbone` (C3-C5), FPN P3-P5 plus optional P6/P7.

    ``forward(images Tensor[B, 3, H, W]) -> (cls_logits Tensor[B, N, K], box_deltas Tensor[B, N, 4])``.

    Example:
        >>> model = create_model("retinanet_tiny", num_classes=6).eval()
        >>> logits, deltas = model(torch.zeros(1, 3, 192, 640))
        >>> detections = model.predict(torch.zeros(1, 3, 192, 640))
    """

    def __init__(self, backbone: FeatureBackbone, num_classes: int, options: Optional[DetectorOptions] = None):
        super().__init__()
        options = options or DetectorOptions()
        extra = [lvl for lvl in options.levels if lvl > 5]
        if sorted(options.levels) != list(options.levels) or options.levels[:3] != (3, 4, 5) or extra not in ([], [6, 7]):
            raise ValueError(f"levels must be (3, 4, 5) or (3, 4, 5, 6, 7), got {options.levels}")
        if len(options.anchor_sizes) != len(options.levels):
            raise ValueError("anchor_sizes needs one size per pyramid level")
        self.options = options
        self.num_classes = num_classes
        self.backbone = backbone
        c = options.fpn_channels
        self.fpn = FeaturePyramidNetwork(backbone.channels, c, extra_blocks=LastLevelP6P7(c, c) if extra else None)
        self.num_anchors = len(options.anchor_ratios) * len(options.anchor_scales)
        self.head = RetinaHead(c, self.num_anchors, num_classes, options.head_convs, options.head_norm)

    def pyramid(self, images: torch.Tensor) -> list[torch.Tensor]:
        """FPN features P3.. (one Tensor[B, fpn_channels, h_l, w_l] per level)."""
        feats = self.backbone(images)
        return list(self.fpn(OrderedDict((str(i), f) for i, f in enumerate(feats))).values())

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.head(self.pyramid(images))

    def anchors(self, image_size: Sequence[int], device=None) -> torch.Tensor:
        return make_anchors(image_size, self.options, device=device)

    @torch.no_grad()
    def predict(self, images: torch.Tensor, conf: float = 0.05, iou: float = 0.5, max_det: int = 100) -> list[dict]:
        """Detections per image in input coordinates: dicts of boxes [M, 4], scores [M], labels [M]."""
        cls_logits, box_deltas = self(images)
        anchors = self.anchors(images.shape[-2:], device=images.device)
        return postprocess(cls_logits, box_deltas, anchors, images.shape[-2:], conf, iou, max_det)


def postprocess(
    cls_logits: torch.Tensor,
    box_deltas: torch.Tensor,
    anchors: torch.Tensor,
    image_size: Sequence[int],
    conf: float = 0.05,
    iou: float = 0.5,
    max_det: int = 100,
    pre_nms_topk: int = 1000,
    classes: Optional[Sequence[int]] = None,
) -> list[dict[str, torch.Tensor]]:
    """Decode, threshold, class-wise NMS. The host-side half of the detector, shared by every backend.

    Args:
        cls_logits (Tensor[B, N, K]), box_deltas (Tensor[B, N, 4]), anchors (Tensor[N, 4]).
        image_size: (h, w) of the network input; boxes are clipped to it.
        conf: minimum sigmoid score. iou: NMS IoU threshold. max_det: detections kept per image.
        pre_nms_topk: candidates kept per image before NMS.
        classes: keep only these class indices.

    Returns:
        per image, ``{"boxes": Tensor[M, 4] xyxy, "scores": Tensor[M], "labels": Tensor[M] int64}``.
    """
    h, w = int(image_size[0]), int(image_size[1])
    scores_all = torch.sigmoid(cls_logits.float())
    if classes is not None:
        mask = torch.zeros(scores_all.shape[-1], dtype=torch.bool, device=scores_all.device)
        mask[list(classes)] = True
        scores_all = scores_all * mask
    results = []
    num_classes = scores_all.shape[-1]
    for scores, deltas in zip(scores_all, box_deltas.float()):
        flat = scores.flatten()
        keep = torch.nonzero(flat > conf).squeeze(1)
        if keep.numel() > pre_nms_topk:
            keep = keep[flat[keep].topk(pre_nms_topk).indices]
        anchor_idx, labels = keep // num_classes, keep % num_classes
        boxes = decode_boxes(deltas[anchor_idx], anchors[anchor_idx])
        boxes[:, 0::2] = boxes[:, 0::2].clamp(0, w)
        boxes[:, 1::2] = boxes[:, 1::2].clamp(0, h)
        sc = flat[keep]
        kept = batched_nms(boxes, sc, labels, iou)[:max_det]
        results.append({"boxes": boxes[kept], "scores": sc[kept], "labels": labels[kept]})
    return results


def match_anchors(iou: torch.Tensor, fg_iou: float = 0.5, bg_iou: float = 0.4) -> torch.Tensor:
    """Assign each anchor to a ground-truth box (RetinaNet): Tensor[N] of gt indices, -1 or -2.

    ``iou`` (Tensor[M, N]) is the IoU of M ground-truth boxes with N anchors. An anchor takes
    its best box when that IoU is >= ``fg_iou``, is background (-1) below ``bg_iou`` and
    ignored (-2) in between; each box also keeps the anchors of its highest IoU whatever
    the threshold ("low-quality matches"). Same rule as torchvision's ``Matcher`` with
    ``allow_low_quality_matches=True``.
    """
    best, matches = iou.max(dim=0)
    all_matches = matches.clone()
    matches[best < bg_iou] = BELOW_LOW_THRESHOLD
    matches[(best >= bg_iou) & (best < fg_iou)] = BETWEEN_THRESHOLDS
    best_per_gt = iou.max(dim=1).values
    anchors_of_best = torch.where(iou == best_per_gt[:, None])[1]
    matches[anchors_of_best] = all_matches[anchors_of_best]
    return matches


def detection_loss(
    cls_logits: torch.Tensor,
    box_deltas: torch.Tensor,
    anchors: torch.Tensor,
    targets: list[dict[str, torch.Tensor]],
    fg_iou: float = 0.5,
    bg_iou: float = 0.4,
) -> dict[str, torch.Tensor]:
    """Focal loss on classes and GIoU loss on boxes, normalised by the number of foreground anchors.

    ``targets[i]`` has ``boxes`` Tensor[M, 4] xyxy, ``labels`` Tensor[M] and optionally
    ``iscrowd`` Tensor[M] (bool): anchors whose best match is a crowd/ignore box
    take no classification loss.
    """
    cls_losses, box_losses, num_fg = [], [], 0
    for logits, deltas, tgt in zip(cls_logits, box_deltas, targets):
        gt_boxes, gt_labels = tgt["boxes"], tgt["labels"]
        crowd = tgt.get("iscrowd")
        crowd = torch.zeros_like(gt_labels, dtype=torch.bool) if crowd is None else crowd.bool()
        cls_target = torch.zeros_like(logits)
        if gt_boxes.numel() == 0:
            cls_losses.append(sigmoid_focal_loss(logits, cls_target, reduction="sum"))
            continue
        matches = match_anchors(box_iou(gt_boxes, anchors), fg_iou, bg_iou)  # [N]: gt index, -1 background, -2 ignored
        fg = matches >= 0
        crowd_hit = fg & crowd[matches.clamp(min=0)]
        fg = fg & ~crowd_hit
        valid = (matches != BETWEEN_THRESHOLDS) & ~crowd_hit
        cls_target[fg, gt_labels[matches[fg]]] = 1.0
        cls_losses.append(sigmoid_focal_loss(logits[valid], cls_target[valid], reduction="sum"))
        if fg.any():
            pred = decode_boxes(deltas[fg], anchors[fg])
            box_losses.append(generalized_box_iou_loss(pred, gt_boxes[matches[fg]], reduction="sum"))
        num_fg += int(fg.sum())
    norm = max(1.0, float(num_fg))
    box_loss = torch.stack(box_losses).sum() / norm if box_losses else box_deltas.sum() * 0.0
    return {"cls": torch.stack(cls_losses).sum() / norm, "box": box_loss}
