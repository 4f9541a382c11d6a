"""The runtime's numpy box maths against the PyTorch side on the same inputs.

Anchors and decoding against :mod:`cat_deploy.models.detector` (and torchvision's private
``BoxCoder`` as a second oracle), IoU against ``torchvision.ops.box_iou``, NMS against
``torchvision.ops.nms``/``batched_nms`` (ties and thousands of boxes included), and the whole
host post-processing against :func:`cat_deploy.models.postprocess`.
"""
import numpy as np
import pytest
import torch
from torchvision.models.detection._utils import BoxCoder
from torchvision.ops import batched_nms as tv_batched_nms
from torchvision.ops import box_iou as tv_box_iou
from torchvision.ops import nms as tv_nms

from cat_deploy.config import BBOX_CLIP, DetectorOptions
from cat_deploy.models import detector as torch_side
from cat_deploy.runtime import boxes


def _random_boxes(rng, n, size=640.0, max_wh=200.0):
    xy = rng.uniform(0, size, (n, 2))
    wh = rng.uniform(1, max_wh, (n, 2))
    return np.concatenate([xy, xy + wh], axis=1).astype(np.float32)


TINY = DetectorOptions(fpn_channels=64, head_convs=2, levels=(3, 4, 5), anchor_sizes=(16.0, 32.0, 64.0),
                       anchor_scales=(1.0, 2**0.5), anchor_ratios=(0.5, 1.0, 2.5))


@pytest.mark.parametrize("options, size", [(TINY, (192, 640)), (TINY, (101, 333)), (DetectorOptions(), (512, 1024)),
                                           (DetectorOptions(), (97, 250))])
def test_anchors_equal_the_pytorch_anchors(options, size):
    ref = torch_side.make_anchors(size, options).numpy()
    got = boxes.make_anchors(size, options)
    assert got.dtype == np.float32 and got.shape == ref.shape
    np.testing.assert_array_equal(got, ref)


def test_decode_equals_the_pytorch_decoder_and_torchvision():
    rng = np.random.default_rng(0)
    anchors = _random_boxes(rng, 5000)
    deltas = rng.normal(0, 1.5, (2, 5000, 4)).astype(np.float32)
    deltas[0, :50, 2:] = 9.0  # beyond the clip at log(1000/16) = 4.14
    got = boxes.decode_boxes(deltas, anchors)
    ref = torch_side.decode_boxes(torch.from_numpy(deltas), torch.from_numpy(anchors)).numpy()
    np.testing.assert_allclose(got, ref, rtol=1e-6, atol=1e-4)
    coder = BoxCoder(weights=(1.0, 1.0, 1.0, 1.0), bbox_xform_clip=BBOX_CLIP)
    tv = coder.decode_single(torch.from_numpy(deltas[0]), torch.from_numpy(anchors)).numpy()
    np.testing.assert_allclose(torch_side.decode_boxes(torch.from_numpy(deltas[0]), torch.from_numpy(anchors)).numpy(),
                               tv, rtol=1e-6, atol=1e-4)
    assert np.isfinite(got).all() and (got[0, :50, 2] - got[0, :50, 0] <= 1000 / 16 * 201).all()


def test_box_iou_equals_torchvision():
    rng = np.random.default_rng(1)
    a, b = _random_boxes(rng, 300), _random_boxes(rng, 200)
    b[:20] = a[:20]  # identical boxes: IoU 1
    np.testing.assert_allclose(boxes.box_iou(a, b), tv_box_iou(torch.from_numpy(a), torch.from_numpy(b)).numpy(),
                               rtol=1e-6, atol=1e-7)
    assert boxes.box_iou(a[:0], b).shape == (0, 200)


@pytest.mark.parametrize("n, thr", [(50, 0.5), (1000, 0.5), (3000, 0.3), (3000, 0.7)])
def test_nms_equals_torchvision(n, thr):
    rng = np.random.default_rng(n)
    b = _random_boxes(rng, n, size=400.0)  # dense: many overlaps
    s = rng.random(n).astype(np.float32)
    ref = tv_nms(torch.from_numpy(b), torch.from_numpy(s), thr).numpy()
    np.testing.assert_array_equal(boxes.nms(b, s, thr), ref)


def test_nms_ties_keep_the_lower_index_first():
    b = np.array([[0, 0, 10, 10], [0, 0, 10, 10], [1, 1, 11, 11], [50, 50, 60, 60], [50, 50, 60, 60]], np.float32)
    s = np.full(5, 0.5, np.float32)
    ref = tv_nms(torch.from_numpy(b), torch.from_numpy(s), 0.5).numpy()
    np.testing.assert_array_equal(boxes.nms(b, s, 0.5), ref)
    np.testing.assert_array_equal(boxes.nms(b, s, 0.5), [0, 3])
    half = np.array([[0, 0, 10, 10], [0, 0, 10, 5]], np.float32)  # IoU exactly 0.5: kept (suppression is IoU > thr)
    np.testing.assert_array_equal(boxes.nms(half, np.array([0.9, 0.8], np.float32), 0.5), [0, 1])
    assert tv_nms(torch.from_numpy(half), torch.tensor([0.9, 0.8]), 0.5).tolist() == [0, 1]


@pytest.mark.parametrize("n, classes, ties", [(200, 3, False), (1000, 6, True), (4000, 6, False), (4000, 2, True)])
def test_batched_nms_equals_torchvision(n, classes, ties):
    """1000 boxes take torchvision's coordinate-offset path, 4000 its per-class loop: both must agree."""
    rng = np.random.default_rng(n + classes)
    b = _random_boxes(rng, n, size=300.0)
    s = rng.random(n).astype(np.float32)
    if ties:
        s = np.round(s * 20) / 20  # 21 distinct scores: many exact ties
    labels = rng.integers(0, classes, n)
    ref = tv_batched_nms(torch.from_numpy(b), torch.from_numpy(s), torch.from_numpy(labels), 0.5).numpy()
    got = boxes.batched_nms(b, s, labels, 0.5)
    assert sorted(got.tolist()) == sorted(ref.tolist())
    np.testing.assert_array_equal(s[got], s[ref])  # same score order
    if n <= 1000:  # one stable sort in torchvision: ties in index order, as here
        np.testing.assert_array_equal(got, ref)


def test_classes_never_suppress_each_other():
    b = np.array([[0, 0, 10, 10]] * 3, np.float32)
    got = boxes.batched_nms(b, np.array([0.9, 0.8, 0.7], np.float32), np.array([0, 1, 0]), 0.5)
    np.testing.assert_array_equal(got, [0, 1])


@pytest.mark.parametrize("classes", [None, [1, 2]])
def test_postprocess_equals_the_pytorch_postprocess(classes):
    rng = np.random.default_rng(7)
    anchors = boxes.make_anchors((192, 640), TINY)
    n = anchors.shape[0]
    logits = rng.normal(-4, 2, (2, n, 3)).astype(np.float32)
    logits[0, :40] += 6  # a cluster of confident, overlapping candidates
    deltas = rng.normal(0, 0.3, (2, n, 4)).astype(np.float32)
    for conf, topk in ((0.05, 1000), (0.3, 1000), (0.05, 100)):
        ref = torch_side.postprocess(torch.from_numpy(logits), torch.from_numpy(deltas), torch.from_numpy(anchors),
                                     (192, 640), conf, 0.5, 100, pre_nms_topk=topk, classes=classes)
        got = boxes.postprocess(logits, deltas, anchors, (192, 640), conf, 0.5, 100, pre_nms_topk=topk,
                                classes=classes)
        for r, g in zip(ref, got):
            assert len(g["boxes"]) == len(r["boxes"]) > 0
            np.testing.assert_array_equal(g["labels"], r["labels"].numpy())
            np.testing.assert_allclose(g["scores"], r["scores"].numpy(), rtol=1e-6)
            np.testing.assert_allclose(g["boxes"], r["boxes"].numpy(), rtol=1e-6, atol=1e-4)
            assert g["boxes"].dtype == np.float32 and g["labels"].dtype == np.int64
