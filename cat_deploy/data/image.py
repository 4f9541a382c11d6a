"""Read any image a user points us at into one array layout: uint8 H x W x 3 RGB.

Shared by training, export calibration and the inference runner, so that a file
decodes to the same pixels everywhere. Decisions:

- EXIF orientation is applied (``PIL.ImageOps.exif_transpose``): a phone photo
  stored sideways comes out the way it is displayed.
- Transparency (RGBA, LA, palette with a transparent index) is composited over
  neutral gray 114, the letterbox pad value, so transparent areas look like padding
  instead of whatever colour the encoder left under alpha 0.
- 16-bit images (PNG mode "I;16"/"I") are reduced to 8 bits with ``>> 8``
  (values outside 0..65535 are clipped first), i.e. the full 16-bit range maps
  to 0..255; no per-image contrast stretch.
- The whole file is decoded (``img.load()``) so truncated files fail here, and
  ``PIL.ImageFile.LOAD_TRUNCATED_IMAGES`` is never set: a half-gray image would
  silently poison training or skew a benchmark.

Every failure raises :class:`ImageReadError`, one line naming the file, the cause
and what to do.
"""
from __future__ import annotations

import io
import os
import struct
import zlib
from pathlib import Path
from typing import Union

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from ..config import PAD_VALUE

__all__ = ["IMAGE_EXTENSIONS", "ImageReadError", "is_image_file", "list_images", "read_image", "decode_image"]

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp")
ALPHA_BACKGROUND = PAD_VALUE
DEFAULT_MAX_PIXELS = 100_000_000

PathLike = Union[str, os.PathLike]

# What PIL raises for damaged data varies by codec (zlib for PNG, struct for BMP headers...).
_DECODE_ERRORS = (OSError, SyntaxError, ValueError, EOFError, IndexError, struct.error, zlib.error)


class ImageReadError(ValueError):
    """An image file that cannot be decoded; ``str()`` is one line for people.

    Example: ``cannot read image 'x.jpg': empty file (0 bytes) — skip it or re-export the file``
    """

    def __init__(self, path: PathLike, reason: str, fix: str = "skip it or re-export the file"):
        self.path = Path(path)
        self.reason = reason
        self.fix = fix
        super().__init__(f"cannot read image '{path}': {reason} — {fix}")

    def __reduce__(self):  # keep picklable across DataLoader worker processes
        return (type(self), (self.path, self.reason, self.fix))


def is_image_file(path: PathLike) -> bool:
    """True when ``path`` has one of :data:`IMAGE_EXTENSIONS` (case-insensitive)."""
    return str(path).lower().endswith(IMAGE_EXTENSIONS)


def list_images(folder: PathLike) -> list[Path]:
    """Image files directly inside ``folder``, sorted by name."""
    folder = Path(folder)
    if not folder.is_dir():
        raise NotADirectoryError(f"image folder '{folder}' does not exist — check the path")
    return sorted(p for p in folder.iterdir() if p.is_file() and is_image_file(p))


def _to_rgb(img: Image.Image) -> np.ndarray:
    """Any PIL mode -> uint8 H x W x 3 RGB (see the module docstring for the rules)."""
    mode = img.mode
    if mode.startswith("I;16") or mode in ("I", "F"):
        a = np.asarray(img)
        if mode == "F":
            a8 = np.clip(a, 0, 255).astype(np.uint8)
        else:
            a8 = (np.clip(a.astype(np.int64), 0, 65535) >> 8).astype(np.uint8)
        return np.repeat(a8[:, :, None], 3, axis=2)
    if mode == "P" and "transparency" in img.info:
        img, mode = img.convert("RGBA"), "RGBA"
    if mode in ("RGBA", "LA", "PA", "La", "RGBa"):
        img = img.convert("RGBA")
        background = Image.new("RGBA", img.size, (ALPHA_BACKGROUND,) * 3 + (255,))
        img = Image.alpha_composite(background, img)
    if img.mode != "RGB":
        img = img.convert("RGB")
    return np.asarray(img).copy()  # writable, owns its memory


def read_image(path: PathLike, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Decode ``path`` to a uint8 RGB array ``(H, W, 3)``.

    Args:
        path: JPEG, PNG (8/16-bit, gray, gray+alpha, RGBA, palette), BMP or WebP file.
        max_pixels: refuse images with more pixels than this (decompression-bomb
            guard). PIL's own hard limit (``2 * PIL.Image.MAX_IMAGE_PIXELS``,
            about 179 MP) still applies on top; raise that global to go beyond it.

    Raises:
        ImageReadError: missing, empty, not an image, truncated/corrupt, too large.

    Example::

        rgb = read_image("street.jpg")   # np.uint8, shape (375, 1242, 3)
    """
    p = Path(path)
    if not p.exists():
        raise ImageReadError(path, "file not found", "check the path")
    if p.is_dir():
        raise ImageReadError(path, "is a directory, not a file", "pass an image file")
    try:
        size = p.stat().st_size
    except OSError as e:
        raise ImageReadError(path, f"cannot stat file ({e.strerror})", "check permissions") from None
    if size == 0:
        raise ImageReadError(path, "empty file (0 bytes)")
    return _decode(p, path, size, p.suffix, max_pixels)


def decode_image(data: bytes, name: str = "<bytes>", max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Decode encoded image bytes (a JPEG/PNG/... file's content) exactly as :func:`read_image` decodes the file.

    ``name`` labels errors (a URI, a request id). Raises :class:`ImageReadError` like :func:`read_image`.
    Used where images arrive as bytes: Ray Data reading remote files, a Triton request.
    """
    if not data:
        raise ImageReadError(name, "empty file (0 bytes)")
    return _decode(io.BytesIO(data), name, len(data), "", max_pixels)


def _decode(src, label: PathLike, size: int, suffix: str, max_pixels: int) -> np.ndarray:
    """Open, check the size of and fully decode ``src`` (a path or a binary file object) to RGB."""
    try:
        img = Image.open(src)
    except PermissionError:
        raise ImageReadError(label, "permission denied", "check the file permissions") from None
    except UnidentifiedImageError:
        if isinstance(src, io.BytesIO):
            head = src.getvalue()[:8]
        else:
            with open(src, "rb") as f:
                head = f.read(8)
        raise ImageReadError(
            label, f"not an image in a known format (starts with {head!r}, {size} bytes)",
            "skip it or convert it to " + "/".join(e[1:] for e in IMAGE_EXTENSIONS),
        ) from None
    except Image.DecompressionBombError:
        raise ImageReadError(
            label, "image is larger than PIL's decompression-bomb limit",
            "downscale it, or raise PIL.Image.MAX_IMAGE_PIXELS if you trust the file",
        ) from None
    except _DECODE_ERRORS as e:
        raise ImageReadError(label, f"corrupt header ({e})") from None
    with img:
        w, h = img.size
        if w * h > max_pixels:
            raise ImageReadError(
                label, f"{w}x{h} = {w * h / 1e6:.0f} MP exceeds max_pixels={max_pixels / 1e6:.0f} MP",
                "downscale it or pass a larger max_pixels",
            )
        fmt = img.format or suffix.lstrip(".").upper()
        try:
            img.load()
        except _DECODE_ERRORS as e:
            raise ImageReadError(label, f"truncated or corrupt {fmt} data ({size} bytes: {e})") from None
        try:
            img = ImageOps.exif_transpose(img)
        except _DECODE_ERRORS + (KeyError, TypeError, AttributeError):
            pass  # malformed EXIF: the pixels are fine, keep them as stored
        return _to_rgb(img)
