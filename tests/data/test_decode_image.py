"""``decode_image``: bytes (a Triton request, a file read through pyarrow.fs) decode exactly as ``read_image`` decodes
the file, and fail with the same reasons."""
import io

import numpy as np
import pytest
from PIL import Image

from cat_deploy.data.image import ImageReadError, decode_image, read_image


def _files(tmp_path):
    rng = np.random.default_rng(5)
    rgb = rng.integers(0, 256, (37, 53, 3), np.uint8)
    files = {}
    for name, img, kw in (("a.jpg", Image.fromarray(rgb), {"quality": 90}), ("b.png", Image.fromarray(rgb), {}),
                          ("c.png", Image.fromarray(np.dstack([rgb, rgb[..., :1]]), "RGBA"), {}),
                          ("d.png", Image.fromarray((rgb[..., 0].astype(np.uint16) * 257)), {}),
                          ("e.webp", Image.fromarray(rgb), {"quality": 80})):
        img.save(tmp_path / name, **kw)
        files[name] = tmp_path / name
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(rgb).save(tmp_path / "f.jpg", exif=exif)
    files["f.jpg"] = tmp_path / "f.jpg"
    return files


def test_bytes_decode_like_the_file(tmp_path):
    for name, path in _files(tmp_path).items():
        a, b = read_image(path), decode_image(path.read_bytes(), name)
        assert a.dtype == b.dtype == np.uint8 and np.array_equal(a, b), name
    assert decode_image((tmp_path / "f.jpg").read_bytes()).shape == (53, 37, 3)  # EXIF rotation applied


@pytest.mark.parametrize("data, words", [
    (b"", "empty"),
    (b"GET / HTTP/1.1\r\n", "not an image in a known format"),
])
def test_bad_bytes(data, words):
    with pytest.raises(ImageReadError, match=words) as e:
        decode_image(data, "req-7")
    assert "req-7" in str(e.value)


def test_truncated_and_too_large_bytes():
    buf = io.BytesIO()
    Image.fromarray(np.zeros((300, 400, 3), np.uint8) + 77).save(buf, format="JPEG")
    with pytest.raises(ImageReadError, match="truncated or corrupt JPEG"):
        decode_image(buf.getvalue()[: len(buf.getvalue()) // 2])
    with pytest.raises(ImageReadError, match="exceeds max_pixels"):
        decode_image(buf.getvalue(), max_pixels=100_000)
