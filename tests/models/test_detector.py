import torch
from torchvision.models.detection._utils import BoxCoder

from cat_deploy.models import create_model, decode_boxes, detection_loss, make_anchors, postprocess
from cat_deploy.models.detector import level_shapes


def test_anchor_layout_matches_head_order():
    model = create_model("retinanet_tiny", num_classes=3)
    opts = model.options
    anchors = make_anchors((192, 640), opts)
    shapes = level_shapes((192, 640), opts.levels)
    assert shapes == [(24, 80), (12, 40), (6, 20)]
    assert anchors.shape[0] == sum(h * w for h, w in shapes) * model.num_anchors
    # first cell of P3: A anchors centred at (4, 4); next cell centred at (12, 4)
    a = model.num_anchors
    centers = (anchors[:, :2] + anchors[:, 2:]) / 2
    assert torch.allclose(centers[:a], torch.tensor([4.0, 4.0]).expand(a, 2))
    assert torch.allclose(centers[a : 2 * a], torch.tensor([12.0, 4.0]).expand(a, 2))


def test_decode_inverts_encode():
    anchors = torch.tensor([[10.0, 10, 50, 30], [0, 0, 16, 16]])
    gt = torch.tensor([[12.0, 8, 60, 33], [2, 1, 10, 20]])
    deltas = BoxCoder(weights=(1.0, 1.0, 1.0, 1.0)).encode_single(gt, anchors)  # torchvision's, as the oracle
    assert torch.allclose(decode_boxes(deltas, anchors), gt, atol=1e-4)
    assert torch.allclose(decode_boxes(deltas[None], anchors)[0], gt, atol=1e-4)


def test_postprocess_finds_planted_box():
    opts = create_model("retinanet_tiny", num_classes=3).options
    anchors = make_anchors((192, 640), opts)
    n = anchors.shape[0]
    logits = torch.full((1, n, 3), -10.0)
    deltas = torch.zeros(1, n, 4)
    logits[0, 100, 2] = 5.0
    logits[0, 101, 2] = 4.0  # overlapping neighbour: removed by NMS
    deltas[0, 101] = torch.tensor([0.05, 0.0, 0.0, 0.0])
    det = postprocess(logits, deltas, anchors, (192, 640), conf=0.3, iou=0.5)[0]
    assert det["labels"].tolist() == [2]
    expected = anchors[100].clone()
    expected[0::2] = expected[0::2].clamp(0, 640)
    expected[1::2] = expected[1::2].clamp(0, 192)
    assert torch.allclose(det["boxes"][0], expected, atol=1e-4)
    assert postprocess(logits, deltas, anchors, (192, 640), conf=0.3, classes=[0])[0]["boxes"].shape == (0, 4)


def test_loss_finite_with_empty_and_crowd_targets():
    model = create_model("retinanet_tiny", num_classes=3)
    x = torch.randn(2, 3, 96, 160)
    cls, box = model(x)
    anchors = model.anchors((96, 160))
    targets = [
        {"boxes": torch.tensor([[10.0, 10, 40, 60], [80, 20, 120, 50]]), "labels": torch.tensor([0, 2]),
         "iscrowd": torch.tensor([False, True])},
        {"boxes": torch.zeros(0, 4), "labels": torch.zeros(0, dtype=torch.long)},
    ]
    losses = detection_loss(cls, box, anchors, targets)
    assert all(torch.isfinite(v) for v in losses.values()) and losses["box"] > 0
    (losses["cls"] + losses["box"]).backward()


def test_local_matcher_equals_torchvision():
    """match_anchors against torchvision's (private) Matcher, ties and low-quality matches included."""
    from torchvision.models.detection._utils import Matcher

    from cat_deploy.models.detector import match_anchors

    g = torch.Generator().manual_seed(0)
    ref = Matcher(0.5, 0.4, allow_low_quality_matches=True)
    for m, n in ((1, 10), (5, 300), (20, 4000)):
        iou = torch.rand(m, n, generator=g) * 0.8
        iou[:, :5] = torch.round(iou[:, :5] * 4) / 4  # ties, values exactly at the thresholds
        iou[0, 7] = iou[0].max()  # a box whose best IoU is shared by two anchors
        iou[-1] *= 0.4  # a box no anchor reaches 0.4 with: only the low-quality rule gives it anchors
        iou[:-1, iou[-1].argmax()] = 0.0
        got = match_anchors(iou.clone(), 0.5, 0.4)
        assert torch.equal(got, ref(iou.clone())) and (got == m - 1).any()
