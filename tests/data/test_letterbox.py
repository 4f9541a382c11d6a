import numpy as np
import pytest

from cat_deploy.data.transforms import (
    Letterbox,
    boxes_to_letterbox,
    boxes_to_original,
    color_jitter,
    hflip,
    letterbox,
    normalize,
    random_scale_crop,
)


def _square_image(h, w, box):
    """Black image with a white rectangle covering pixel box (x1, y1, x2, y2)."""
    img = np.zeros((h, w, 3), np.uint8)
    x1, y1, x2, y2 = box
    img[y1:y2, x1:x2] = 255
    return img


def _bright_box(img):
    ys, xs = np.nonzero(img[..., 0] > 127)
    return np.array([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1], np.float32)


@pytest.mark.parametrize("src,dst", [((375, 1242), (192, 640)), ((480, 640), (192, 640)), ((100, 50), (64, 64))])
def test_letterbox_shape_and_centering(src, dst):
    out, lb = letterbox(np.full(src + (3,), 7, np.uint8), dst)
    assert out.shape == dst + (3,) and out.dtype == np.uint8
    assert lb.src_size == src and lb.dst_size == dst
    new_h, new_w = round(src[0] * lb.scale), round(src[1] * lb.scale)
    assert new_h == dst[0] or new_w == dst[1]
    assert abs(lb.pad_x - (dst[1] - new_w) / 2) <= 0.5 and abs(lb.pad_y - (dst[0] - new_h) / 2) <= 0.5
    inside = out[int(lb.pad_y) : int(lb.pad_y) + new_h, int(lb.pad_x) : int(lb.pad_x) + new_w]
    assert (inside == 7).all() and (out == 114).sum() == out.size - inside.size


@pytest.mark.parametrize("src,dst", [((375, 1242), (192, 640)), ((600, 400), (320, 320))])
def test_box_roundtrip(src, dst):
    rng = np.random.default_rng(0)
    h, w = src
    xy = rng.uniform(0, 1, (50, 4)) * [w, h, w, h]
    boxes = np.concatenate([np.minimum(xy[:, :2], xy[:, 2:]), np.maximum(xy[:, :2], xy[:, 2:])], 1).astype(np.float32)
    _, lb = letterbox(np.zeros(src + (3,), np.uint8), dst)
    lbx = boxes_to_letterbox(boxes, lb)
    assert lbx.dtype == np.float32
    assert (lbx[:, [0, 2]] >= lb.pad_x - 1e-3).all() and (lbx[:, [0, 2]] <= dst[1] - lb.pad_x + 1e-3).all()
    np.testing.assert_allclose(boxes_to_original(lbx, lb), boxes, atol=1e-4)


def test_boxes_follow_pixels():
    img = _square_image(375, 1242, (300, 100, 500, 250))
    out, lb = letterbox(img, (192, 640))
    np.testing.assert_allclose(_bright_box(out), boxes_to_letterbox(np.array([[300, 100, 500, 250]]), lb)[0], atol=1.0)


def test_boxes_to_original_clips():
    lb = Letterbox(scale=0.5, pad_x=10.0, pad_y=20.0, src_size=(100, 200), dst_size=(100, 120))
    out = boxes_to_original(np.array([[0.0, 0.0, 200.0, 100.0]], np.float32), lb)
    np.testing.assert_allclose(out, [[0, 0, 200, 100]])
    assert boxes_to_original(np.zeros((0, 4), np.float32), lb).shape == (0, 4)


def test_normalize_matches_formula():
    img = np.random.default_rng(0).integers(0, 256, (5, 7, 3), dtype=np.uint8)
    mean, std = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
    out = normalize(img, mean, std)
    expected = ((img / 255.0 - mean) / std).transpose(2, 0, 1)
    assert out.shape == (3, 5, 7) and out.dtype == np.float32 and out.flags.c_contiguous
    np.testing.assert_allclose(out, expected, atol=1e-5)


def test_hflip():
    img = _square_image(50, 80, (10, 5, 30, 20))
    boxes = np.array([[10, 5, 30, 20]], np.float32)
    out, fb = hflip(img, boxes)
    np.testing.assert_allclose(fb, [[50, 5, 70, 20]])
    np.testing.assert_allclose(_bright_box(out), fb[0])
    back, bb = hflip(out, fb)
    np.testing.assert_array_equal(back, img)
    np.testing.assert_allclose(bb, boxes)


def test_color_jitter():
    img = np.random.default_rng(0).integers(0, 256, (16, 16, 3), dtype=np.uint8)
    np.testing.assert_array_equal(color_jitter(np.random.default_rng(1), img, 0.0, 0.0, 0.0), img)
    out = color_jitter(np.random.default_rng(1), img, 0.4, 0.4, 0.4)
    assert out.shape == img.shape and out.dtype == np.uint8 and not np.array_equal(out, img)
    gray = np.full((4, 4, 3), 90, np.uint8)  # saturation cannot colour a gray image
    g = color_jitter(np.random.default_rng(2), gray, 0.0, 0.0, 0.5)
    assert (g == 90).all()


@pytest.mark.parametrize("seed", range(6))
def test_random_scale_crop_consistent(seed):
    rng = np.random.default_rng(seed)
    src = (200, 300)
    box = (120, 60, 180, 140)
    img = _square_image(*src, box)
    boxes = np.array([box, (0, 0, 40, 30), (280, 190, 300, 200)], np.float32)
    labels = np.array([[0, 0], [1, 0], [2, 1]])
    out, kb, kl, lb = random_scale_crop(rng, img, boxes, labels, (0.5, 2.0), (128, 160))
    assert out.shape == (128, 160, 3) and kb.dtype == np.float32 and len(kb) == len(kl)
    assert (kb[:, [0, 2]] >= 0).all() and (kb[:, [0, 2]] <= 160).all()
    assert (kb[:, [1, 3]] >= 0).all() and (kb[:, [1, 3]] <= 128).all()
    mapped = boxes_to_letterbox(boxes, lb)
    clipped = mapped.copy()
    clipped[:, 0::2] = clipped[:, 0::2].clip(0, 160)
    clipped[:, 1::2] = clipped[:, 1::2].clip(0, 128)
    area = lambda b: np.clip(b[:, 2] - b[:, 0], 0, None) * np.clip(b[:, 3] - b[:, 1], 0, None)  # noqa: E731
    keep = area(clipped) >= 0.4 * area(mapped)
    keep &= area(clipped) > 0
    np.testing.assert_allclose(kb, clipped[keep], atol=1e-4)
    np.testing.assert_array_equal(kl, labels[keep])
    if keep[0] and area(clipped[:1])[0] > 4:  # the white square is where its box says
        np.testing.assert_allclose(_bright_box(out), kb[0], atol=1.5)


def test_random_scale_crop_drops_mostly_hidden():
    img = np.zeros((100, 100, 3), np.uint8)
    boxes = np.array([[-70, 10, 30, 20], [-10, 10, 90, 20]], np.float32)  # 30 % and 90 % inside
    _, kb, kl, lb = random_scale_crop(np.random.default_rng(0), img, boxes, np.array([0, 1]), (1.0, 1.0), (100, 100))
    assert lb.scale == 1.0 and lb.pad_x == 0 and lb.pad_y == 0
    np.testing.assert_array_equal(kl, [1])
    np.testing.assert_allclose(kb, [[0, 10, 90, 20]])
