import re
from pathlib import Path

import pytest
import torch

from cat_deploy.layers import CAT
from cat_deploy.models import create_model, model_names
from cat_deploy.models.profile import count_params

CLASSIFIERS = ["resnet50", "resnet101", "mobilenetv2", "shufflenetv2"]
DETECTORS = [n for n in model_names() if n.startswith("retinanet_")]


@pytest.mark.parametrize("name", CLASSIFIERS)
@pytest.mark.parametrize("attn", ["cat", "se", "eca", "cbam", None])
def test_classifier_two_sizes(name, attn):
    model = create_model(name, attn=attn, num_classes=7).eval()
    with torch.no_grad():
        for size in ((64, 64), (96, 80)):
            y = model(torch.randn(2, 3, *size))
            assert y.shape == (2, 7) and torch.isfinite(y).all()
    n_cat = sum(isinstance(m, CAT) for m in model.modules())
    assert (n_cat > 0) == (attn == "cat")


@pytest.mark.parametrize("name", DETECTORS)
def test_detector_two_sizes(name):
    model = create_model(name, num_classes=6).eval()
    with torch.no_grad():
        for size in ((128, 192), (96, 161)):
            cls, box = model(torch.randn(1, 3, *size))
            n = model.anchors(size).shape[0]
            assert cls.shape == (1, n, 6) and box.shape == (1, n, 4)
            assert torch.isfinite(cls).all() and torch.isfinite(box).all()


def test_attention_position_matches_paper_table3():
    """Attention on block outputs (not on 6x expanded channels) reproduces Table 3's parameter deltas."""
    base = count_params(create_model("mobilenetv2", attn=None, num_classes=100))
    se = count_params(create_model("mobilenetv2", attn="se", num_classes=100))
    assert 0.02e6 < se - base < 0.06e6  # paper: 2.37M -> 2.40M


def test_doc_table_matches_code():
    doc = Path(__file__).parents[2] / "docs" / "model_zoo.md"
    text = doc.read_text()
    for attn in ("none", "se", "cbam", "eca", "cat"):
        m = re.search(rf"\| resnet50 \| {attn} \| ([\d.]+) \|", text)
        assert m, f"docs/model_zoo.md lacks the resnet50/{attn} row"
        want = count_params(create_model("resnet50", attn=None if attn == "none" else attn)) / 1e6
        assert float(m.group(1)) == pytest.approx(want, abs=0.006)


def test_unknown_names():
    with pytest.raises(ValueError, match="unknown model"):
        create_model("resnet18")
    with pytest.raises(ValueError, match="unknown attention"):
        create_model("resnet50", attn="nonlocal")
