"""Parameter and multiply-accumulate counts, to set beside the paper's Tables 3-4.

    python -m cat_deploy.models.profile            # prints the markdown table of docs/model_zoo.md
"""
from __future__ import annotations

import argparse
from typing import Sequence

import torch
import torch.nn as nn
from torch.utils.flop_counter import FlopCounterMode

from . import create_model

# Paper, Table 4 (ImageNet, 224x224): Params (M), FLOPs (G).
PAPER_TABLE4 = {
    ("resnet50", None): (24.37, 3.86), ("resnet50", "se"): (26.77, 3.87), ("resnet50", "cbam"): (26.77, 3.87),
    ("resnet50", "eca"): (24.37, 3.86), ("resnet50", "cat"): (26.51, 3.95),
    ("resnet101", None): (42.49, 7.34), ("resnet101", "se"): (47.01, 7.35), ("resnet101", "cbam"): (47.01, 7.35),
    ("resnet101", "eca"): (42.49, 7.35), ("resnet101", "cat"): (44.15, 7.81),
}
# Paper, Table 3 (CIFAR-100, 100 classes): Params (M).
PAPER_TABLE3 = {
    ("mobilenetv2", None): 2.37, ("mobilenetv2", "se"): 2.40, ("mobilenetv2", "cbam"): 2.40,
    ("mobilenetv2", "eca"): 2.37, ("mobilenetv2", "cat"): 2.40,
    ("shufflenetv2", None): 1.40, ("shufflenetv2", "se"): 1.40, ("shufflenetv2", "cbam"): 1.40,
    ("shufflenetv2", "eca"): 1.36, ("shufflenetv2", "cat"): 1.40,
}
ATTNS = (None, "se", "cbam", "eca", "cat")


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@torch.no_grad()
def count_macs(model: nn.Module, input_size: Sequence[int]) -> float:
    """Multiply-accumulates of one forward pass at ``input_size`` (h, w), batch 1.

    torch's FlopCounterMode counts matmuls and convolutions (2 FLOPs per MAC), not
    element-wise work: pooling, softmax and exponentials are not in this figure.
    """
    counter = FlopCounterMode(display=False)
    with counter:
        model.eval()(torch.zeros(1, 3, *input_size))
    return counter.get_total_flops() / 2


def table(archs: Sequence[str], num_classes: int) -> str:
    """Markdown table of params and GMACs at 224x224 beside the paper's figures for the same class count."""
    rows = ["| model | attention | params (M) | GMACs (224x224) | paper params (M) | paper FLOPs (G) |",
            "|---|---|---:|---:|---:|---:|"]
    for arch in archs:
        for attn in ATTNS:
            m = create_model(arch, attn=attn, num_classes=num_classes)
            if num_classes == 1000:
                p_params, p_flops = PAPER_TABLE4.get((arch, attn), ("", ""))
            else:
                p_params, p_flops = PAPER_TABLE3.get((arch, attn), "") if num_classes == 100 else "", ""
            paper = " | ".join(f"{v:.2f}" if isinstance(v, float) else "" for v in (p_params, p_flops))
            rows.append(f"| {arch} | {attn or 'none'} | {count_params(m) / 1e6:.2f} | "
                        f"{count_macs(m, (224, 224)) / 1e9:.2f} | {paper} |")
    return "\n".join(rows)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.parse_args(argv)
    print("ImageNet heads (1000 classes), against the paper's Table 4:\n")
    print(table(["resnet50", "resnet101"], 1000))
    print("\nCIFAR-100 heads (100 classes), against the paper's Table 3 (params only; its GMac column is not at 224x224):\n")
    print(table(["mobilenetv2", "shufflenetv2"], 100))


if __name__ == "__main__":
    main()
