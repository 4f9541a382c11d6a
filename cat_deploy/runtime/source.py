"""Inputs of the detection runner: a folder, a glob, a list file, one image or a video.

Every input becomes a sequence of :class:`Item` with a deterministic id (1-based
position in the sorted input list, or frame index + 1 for a video) and a relative
name used for output files and as the COCO ``file_name``. Iterating a
:class:`Source` yields ``(item, load)``; ``load()`` returns ``(rgb uint8 [H, W, 3],
decode seconds)`` or raises :class:`~cat_deploy.data.image.ImageReadError`, so a bad
file is reported and skipped by the caller while the run goes on.

Videos need PyAV (``pip install av``) or OpenCV (``pip install opencv-python-headless``),
imported only when a video is given.
"""
from __future__ import annotations

import glob
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, Optional

import numpy as np

from ..core.errors import MissingDependency
from ..core.optional import is_available, require
from ..data.image import DEFAULT_MAX_PIXELS, IMAGE_EXTENSIONS, ImageReadError, is_image_file, read_image

__all__ = ["Item", "Source", "open_source", "unique_stems", "SourceError", "VIDEO_EXTENSIONS", "LIST_EXTENSIONS"]

VIDEO_EXTENSIONS = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg")
LIST_EXTENSIONS = (".txt", ".lst")
_EXT_TEXT = " ".join(IMAGE_EXTENSIONS)

Loader = Callable[[], tuple[np.ndarray, float]]


class SourceError(ValueError):
    """The input cannot be used at all (missing, empty, unknown kind); one line for people."""


@dataclass(frozen=True)
class Item:
    id: int
    name: str
    path: Path
    frame: Optional[int] = None


@dataclass
class Source:
    """``items`` is known up front for images; for a video it is ``None`` (frames are counted while decoding)."""

    kind: str  # "folder" | "glob" | "list" | "image" | "video"
    description: str
    items: Optional[list[Item]] = None
    count: Optional[int] = None
    max_pixels: int = DEFAULT_MAX_PIXELS

    def __iter__(self) -> Iterator[tuple[Item, Loader]]:
        if self.kind == "video":
            yield from _video_frames(self.items[0].path if self.items else Path(self.description))
            return
        for item in self.items:
            yield item, _image_loader(item.path, self.max_pixels)


def _image_loader(path: Path, max_pixels: int) -> Loader:
    def load():
        t0 = time.perf_counter()
        img = read_image(path, max_pixels=max_pixels)
        return img, time.perf_counter() - t0

    return load


def _items(paths: list[Path], root: Path) -> list[Item]:
    out, seen = [], set()
    for p in paths:
        try:
            name = p.relative_to(root).as_posix()
        except ValueError:
            name = p.as_posix()
        if name in seen:
            continue
        seen.add(name)
        out.append(Item(len(out) + 1, name, p))
    return out


def _common_root(paths: list[Path]) -> Path:
    parents = [str(p.parent.absolute()) for p in paths]
    return Path(os.path.commonpath(parents)) if parents else Path(".")


def open_source(spec: str | os.PathLike, recursive: bool = False, max_pixels: int = DEFAULT_MAX_PIXELS) -> Source:
    """Resolve ``--images``: a folder (``recursive`` for sub-folders), a glob, a ``.txt`` list of paths
    (relative to the list's folder; ``#`` comments), one image or a video file.

    Raises :class:`SourceError` when nothing usable is found.

    Example::

        src = open_source("assets/samples")
        for item, load in src:
            rgb, seconds = load()
    """
    text = str(spec)
    p = Path(text)
    if p.is_dir():
        found = sorted((f for f in (p.rglob("*") if recursive else p.iterdir()) if f.is_file() and is_image_file(f)),
                       key=lambda f: f.relative_to(p).as_posix())
        if not found:
            hint = ""
            if not recursive and any(f.is_file() and is_image_file(f) for f in p.rglob("*")):
                hint = "; its sub-folders have images: add --recursive"
            raise SourceError(f"no images ({_EXT_TEXT}) in folder '{p}'{hint}")
        items = _items(found, p)
        return Source("folder", str(p), items, len(items), max_pixels)
    if p.is_file():
        suffix = p.suffix.lower()
        if suffix in LIST_EXTENSIONS:
            return _list_source(p, max_pixels)
        if suffix in VIDEO_EXTENSIONS:
            return Source("video", str(p), [Item(1, p.stem, p)], None, max_pixels)
        if is_image_file(p):
            return Source("image", str(p), [Item(1, p.name, p)], 1, max_pixels)
        raise SourceError(f"'{p}' is not an image ({_EXT_TEXT}), a video ({' '.join(VIDEO_EXTENSIONS)}), "
                          "a folder or a .txt list of image paths")
    if glob.has_magic(text):
        found = [Path(f) for f in glob.glob(text, recursive=True) if Path(f).is_file() and is_image_file(f)]
        if not found:
            raise SourceError(f"no images ({_EXT_TEXT}) match '{text}'")
        root = _common_root(found)
        found = sorted(found, key=lambda f: f.absolute().relative_to(root).as_posix())
        items = _items([f.absolute() for f in found], root)
        return Source("glob", text, items, len(items), max_pixels)
    raise SourceError(f"'{text}' not found: pass a folder, an image, a glob (quoted, e.g. 'dir/*.jpg'), "
                      "a .txt list of image paths or a video")


def _list_source(path: Path, max_pixels: int) -> Source:
    try:
        lines = path.read_text().splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise SourceError(f"cannot read list file '{path}': {e}") from None
    paths = []
    for line in lines:
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        f = Path(line)
        paths.append(f if f.is_absolute() else (path.parent / f))
    if not paths:
        raise SourceError(f"list file '{path}' names no images (one path per line)")
    items = _items([f.absolute() for f in paths], _common_root(paths))
    return Source("list", str(path), items, len(items), max_pixels)


def unique_stems(names: list[str]) -> dict[str, str]:
    """Output file stem for each input name: the name without its suffix, unless two names share it
    (``a.jpg`` and ``a.png``), then the suffix joins the stem (``a_jpg``, ``a_png``)."""
    stems = {n: (n.rsplit(".", 1)[0] if "." in n.rsplit("/", 1)[-1] else n) for n in names}
    counts: dict[str, int] = {}
    for s in stems.values():
        counts[s] = counts.get(s, 0) + 1
    return {n: (s if counts[s] == 1 else n.replace(".", "_")) for n, s in stems.items()}


# ----------------------------------------------------------------------------- video


def _video_frames(path: Path) -> Iterator[tuple[Item, Loader]]:
    """Frames of ``path`` in order as RGB arrays (PyAV, else OpenCV)."""
    try:
        if is_available("av") or not is_available("cv2"):
            yield from _av_frames(require("av", f"reading video '{path}'"), path)
        else:
            yield from _cv2_frames(require("cv2", f"reading video '{path}'"), path)
    except MissingDependency as e:
        raise SourceError(f"{e} (or opencv-python-headless); or extract the frames to a folder first") from None


def _frame_item(path: Path, index: int, rgb: np.ndarray, seconds: float) -> tuple[Item, Loader]:
    item = Item(index + 1, f"{path.stem}/{index:06d}", path, index)
    return item, (lambda: (rgb, seconds))


def _av_frames(av, path: Path):
    try:
        container = av.open(str(path))
    except Exception as e:  # av raises its own error hierarchy (av.error.*)
        raise SourceError(f"cannot open video '{path}': {str(e).splitlines()[0][:200]}") from None
    with container:
        if not container.streams.video:
            raise SourceError(f"'{path}' has no video stream")
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        frames = container.decode(stream)
        index = 0
        while True:
            t0 = time.perf_counter()
            try:
                frame = next(frames)
            except StopIteration:
                return
            except Exception as e:  # damaged data mid-stream: report one failed frame and stop
                reason = str(e).splitlines()[0][:200] if str(e) else type(e).__name__
                item = Item(index + 1, f"{path.stem}/{index:06d}", path, index)
                yield item, _failing(path, f"video decode error ({reason})")
                return
            rgb = frame.to_ndarray(format="rgb24")
            yield _frame_item(path, index, rgb, time.perf_counter() - t0)
            index += 1


def _cv2_frames(cv2, path: Path):
    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        raise SourceError(f"cannot open video '{path}' with OpenCV")
    index = 0
    try:
        while True:
            t0 = time.perf_counter()
            ok, bgr = cap.read()
            if not ok:
                return
            yield _frame_item(path, index, np.ascontiguousarray(bgr[:, :, ::-1]), time.perf_counter() - t0)
            index += 1
    finally:
        cap.release()


def _failing(path: Path, reason: str) -> Loader:
    def load():
        raise ImageReadError(path, reason, "re-encode the video")

    return load
