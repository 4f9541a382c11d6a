"""The paper's four backbones with an attention layer inserted where SE/CBAM go.

ResNet-50/101 come from timm, whose blocks call the attention layer after the
last norm and before the residual add (``block.se``). MobileNetV2 and
ShuffleNetV2 come from torchvision; the attention is appended to the end of the
block's convolution branch, i.e. after the last BatchNorm and before the residual
add (MobileNetV2) or the concat + channel shuffle (ShuffleNetV2, on branch2).
That position matches the paper's parameter counts (Table 3: SE adds ~0.03M to
MobileNetV2, which holds for attention on each block's output channels and not
for attention on the 6x expanded ones).
"""
from __future__ import annotations

from typing import Callable, Optional

import timm
import torch
import torch.nn as nn
from torchvision.models import mobilenet_v2
from torchvision.models import shufflenetv2 as tv_shufflenet
from torchvision.models.mobilenetv2 import InvertedResidual as MobileNetV2Block

BACKBONES = ("resnet50", "resnet101", "mobilenetv2", "shufflenetv2")

AttnFactory = Optional[Callable[[int], nn.Module]]

_SHUFFLENET_WIDTHS = {0.5: "shufflenet_v2_x0_5", 1.0: "shufflenet_v2_x1_0", 1.5: "shufflenet_v2_x1_5", 2.0: "shufflenet_v2_x2_0"}


def _block_out_channels(branch: nn.Sequential) -> int:
    return [m for m in branch if isinstance(m, nn.BatchNorm2d)][-1].num_features


def add_attention_mobilenetv2(model: nn.Module, attn: AttnFactory) -> nn.Module:
    """Append ``attn(C_out)`` to every inverted-residual block's conv branch (in place)."""
    if attn is not None:
        for block in model.modules():
            if isinstance(block, MobileNetV2Block):
                block.conv.append(attn(_block_out_channels(block.conv)))
    return model


def add_attention_shufflenetv2(model: nn.Module, attn: AttnFactory) -> nn.Module:
    """Append ``attn(C_branch)`` to every ShuffleNetV2 unit's branch2 (in place)."""
    if attn is not None:
        for block in model.modules():
            if isinstance(block, tv_shufflenet.InvertedResidual):
                block.branch2.append(attn(_block_out_channels(block.branch2)))
    return model


def _shufflenet(width_mult: float, num_classes: int) -> nn.Module:
    try:
        builder = getattr(tv_shufflenet, _SHUFFLENET_WIDTHS[width_mult])
    except KeyError:
        raise ValueError(f"shufflenetv2 width_mult must be one of {sorted(_SHUFFLENET_WIDTHS)}, got {width_mult}") from None
    return builder(weights=None, num_classes=num_classes)


def create_classifier(arch: str, attn: AttnFactory, num_classes: int, width_mult: float = 1.0) -> nn.Module:
    """Image classifier ``arch`` with ``attn`` in every block. Output: logits Tensor[B, num_classes]."""
    if arch in ("resnet50", "resnet101"):
        if width_mult != 1.0:
            raise ValueError(f"{arch} has no width multiplier; use width_mult=1.0")
        return timm.create_model(arch, pretrained=False, num_classes=num_classes, block_args=dict(attn_layer=attn))
    if arch == "mobilenetv2":
        return add_attention_mobilenetv2(mobilenet_v2(weights=None, num_classes=num_classes, width_mult=width_mult), attn)
    if arch == "shufflenetv2":
        return add_attention_shufflenetv2(_shufflenet(width_mult, num_classes), attn)
    raise ValueError(f"unknown backbone {arch!r}; choose one of {BACKBONES}")


class FeatureBackbone(nn.Module):
    """Backbone trunk returning feature maps at strides 8, 16 and 32 (C3, C4, C5).

    Attributes:
        channels (list[int]): channels of C3, C4, C5.
    """

    def __init__(self, arch: str, attn: AttnFactory, width_mult: float = 1.0):
        super().__init__()
        self.arch = arch
        if arch in ("resnet50", "resnet101"):
            self.body = timm.create_model(
                arch, pretrained=False, features_only=True, out_indices=(2, 3, 4), block_args=dict(attn_layer=attn)
            )
            self.channels = list(self.body.feature_info.channels())
            self.stages = None
        elif arch == "mobilenetv2":
            features = add_attention_mobilenetv2(mobilenet_v2(weights=None, width_mult=width_mult), attn).features
            # features[0..6] end at stride 8, [7..13] at 16, [14..17] at 32; [18] is the 1x1 classifier conv.
            self.stages = nn.ModuleList([features[:7], features[7:14], features[14:18]])
            self.channels = [self.stages[i][-1].out_channels for i in range(3)]
        elif arch == "shufflenetv2":
            net = add_attention_shufflenetv2(_shufflenet(width_mult, 1000), attn)
            self.stages = nn.ModuleList([nn.Sequential(net.conv1, net.maxpool, net.stage2), net.stage3, net.stage4])
            self.channels = list(net._stage_out_channels[1:4])
        else:
            raise ValueError(f"unknown backbone {arch!r}; choose one of {BACKBONES}")

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        if self.stages is None:
            return self.body(x)
        feats = []
        for stage in self.stages:
            x = stage(x)
            feats.append(x)
        return feats
