import io

import numpy as np
import pytest
from PIL import Image

from cat_deploy.data.image import ImageReadError, is_image_file, list_images, read_image


def _noise(h=32, w=48, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def _assert_one_line(err: ImageReadError, name: str):
    msg = str(err)
    assert "\n" not in msg and name in msg and " — " in msg


@pytest.mark.parametrize("ext", ["png", "bmp"])
def test_lossless_rgb_roundtrip(tmp_path, ext):
    a = _noise()
    Image.fromarray(a).save(tmp_path / f"x.{ext}")
    out = read_image(tmp_path / f"x.{ext}")
    assert out.dtype == np.uint8 and out.shape == (32, 48, 3)
    np.testing.assert_array_equal(out, a)


@pytest.mark.parametrize("ext", ["jpg", "JPEG", "webp"])
def test_lossy_formats(tmp_path, ext):
    a = np.full((32, 48, 3), (200, 40, 90), np.uint8)
    Image.fromarray(a).save(tmp_path / f"x.{ext}", quality=95)
    out = read_image(tmp_path / f"x.{ext}")
    assert out.shape == (32, 48, 3) and out.dtype == np.uint8
    assert np.abs(out.astype(int) - a).max() <= 6


def test_png_16bit_is_shifted_to_8bit(tmp_path):
    a = (np.arange(20 * 30) * 113 % 65536).astype(np.uint16).reshape(20, 30)
    Image.fromarray(a).save(tmp_path / "d.png")
    assert Image.open(tmp_path / "d.png").mode in ("I;16", "I")
    out = read_image(tmp_path / "d.png")
    assert out.shape == (20, 30, 3)
    np.testing.assert_array_equal(out[..., 0], (a >> 8).astype(np.uint8))
    np.testing.assert_array_equal(out[..., 0], out[..., 2])


def test_grayscale(tmp_path):
    g = _noise()[..., 0]
    Image.fromarray(g, "L").save(tmp_path / "g.png")
    out = read_image(tmp_path / "g.png")
    np.testing.assert_array_equal(out, np.repeat(g[..., None], 3, axis=2))


def test_rgba_composited_over_gray(tmp_path):
    a = np.zeros((4, 4, 4), np.uint8)
    a[..., :3] = (10, 200, 30)
    a[:, :2, 3] = 255  # left half opaque, right half fully transparent
    Image.fromarray(a, "RGBA").save(tmp_path / "a.png")
    out = read_image(tmp_path / "a.png")
    assert out.shape == (4, 4, 3)
    np.testing.assert_array_equal(out[:, :2], np.broadcast_to((10, 200, 30), (4, 2, 3)))
    np.testing.assert_array_equal(out[:, 2:], np.full((4, 2, 3), 114))


def test_gray_alpha(tmp_path):
    la = Image.merge("LA", [Image.new("L", (5, 3), 250), Image.new("L", (5, 3), 0)])
    la.save(tmp_path / "la.png")
    np.testing.assert_array_equal(read_image(tmp_path / "la.png"), np.full((3, 5, 3), 114))


def test_palette(tmp_path):
    a = _noise(16, 16)
    Image.fromarray(a).quantize(8).save(tmp_path / "p.png")
    out = read_image(tmp_path / "p.png")
    expected = np.asarray(Image.open(tmp_path / "p.png").convert("RGB"))
    np.testing.assert_array_equal(out, expected)


def test_palette_with_transparency(tmp_path):
    p = Image.new("P", (4, 4), 0)
    p.putpalette([255, 0, 0, 0, 0, 255] + [0] * 762)
    p.putpixel((0, 0), 1)
    p.save(tmp_path / "t.png", transparency=0)
    out = read_image(tmp_path / "t.png")
    assert tuple(out[0, 0]) == (0, 0, 255) and tuple(out[3, 3]) == (114, 114, 114)


def test_exif_orientation_is_applied(tmp_path):
    a = np.zeros((20, 40, 3), np.uint8)
    a[:, :20] = (255, 0, 0)  # stored: left red, right blue
    a[:, 20:] = (0, 0, 255)
    exif = Image.Exif()
    exif[0x0112] = 6  # display rotated 90 degrees clockwise
    Image.fromarray(a).save(tmp_path / "r.jpg", exif=exif, quality=95)
    out = read_image(tmp_path / "r.jpg").astype(int)
    assert out.shape == (40, 20, 3)
    top, bottom = out[:16].mean((0, 1)), out[24:].mean((0, 1))
    assert top[0] > 200 and top[2] < 50  # left (red) is now on top
    assert bottom[2] > 200 and bottom[0] < 50


def test_missing_file(tmp_path):
    with pytest.raises(ImageReadError, match="file not found") as e:
        read_image(tmp_path / "nope.jpg")
    _assert_one_line(e.value, "nope.jpg")


def test_zero_byte_file(tmp_path):
    (tmp_path / "empty.jpg").write_bytes(b"")
    with pytest.raises(ImageReadError, match="empty file") as e:
        read_image(tmp_path / "empty.jpg")
    _assert_one_line(e.value, "empty.jpg")
    assert isinstance(e.value, ValueError)


def test_text_named_jpg(tmp_path):
    (tmp_path / "notes.jpg").write_text("hello, this is not a picture\n")
    with pytest.raises(ImageReadError, match="not an image") as e:
        read_image(tmp_path / "notes.jpg")
    _assert_one_line(e.value, "notes.jpg")


@pytest.mark.parametrize("fmt", ["JPEG", "PNG"])
def test_truncated_file(tmp_path, fmt):
    buf = io.BytesIO()
    Image.fromarray(_noise(64, 64)).save(buf, format=fmt)
    data = buf.getvalue()
    path = tmp_path / f"cut.{fmt.lower()}"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageReadError, match="truncated or corrupt") as e:
        read_image(path)
    _assert_one_line(e.value, path.name)


def test_max_pixels(tmp_path):
    Image.fromarray(_noise(100, 100)).save(tmp_path / "big.png")
    with pytest.raises(ImageReadError, match="max_pixels") as e:
        read_image(tmp_path / "big.png", max_pixels=5000)
    _assert_one_line(e.value, "big.png")
    assert read_image(tmp_path / "big.png", max_pixels=10_000).shape == (100, 100, 3)


def test_pil_decompression_bomb(tmp_path, monkeypatch):
    Image.fromarray(_noise(20, 20)).save(tmp_path / "bomb.png")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)  # 400 px > 2 * 100: PIL refuses
    with pytest.raises(ImageReadError, match="decompression-bomb") as e:
        read_image(tmp_path / "bomb.png")
    _assert_one_line(e.value, "bomb.png")


def test_error_pickles():
    import pickle

    e = pickle.loads(pickle.dumps(ImageReadError("a.jpg", "empty file (0 bytes)")))
    assert str(e) == str(ImageReadError("a.jpg", "empty file (0 bytes)"))


def test_extensions_and_listing(tmp_path):
    assert is_image_file("A.JPG") and is_image_file("b.webp") and not is_image_file("c.txt")
    for name in ("b.PNG", "a.jpg", "c.txt"):
        (tmp_path / name).write_bytes(b"x")
    assert [p.name for p in list_images(tmp_path)] == ["a.jpg", "b.PNG"]
