"""Inputs of the detection runner: a folder, a glob, a list file, one image or a video.

Every input becomes a sequence of :class:`Item` with a deterministic id (1-based
position in the sorted input list, or frame index + 1 for a video), a relative
name used for output files and as the COCO ``file_name``, and its identity (name,
size, mtime) by which an interrupted run recognises the inputs it already did
(:func:`input_identity`). Iterating a :class:`Source` yields ``(item, load)``;
``load()`` returns ``(rgb uint8 [H, W, 3], decode seconds)`` or raises
:class:`~cat_deploy.data.image.ImageReadError`, so a bad file is reported and skipped
by the caller while the run goes on. Files of a folder or glob that are not read
(GIF, TIFF, text ...) are listed in ``Source.ignored`` with the reason.

Videos need PyAV (``pip install av``) or OpenCV (``pip install opencv-python-headless``),
imported only when a video is given.
"""
from __future__ import annotations

import glob
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Optional

import numpy as np

from ..core.errors import MissingDependency
from ..core.optional import is_available, require
from ..data.image import DEFAULT_MAX_PIXELS, IMAGE_EXTENSIONS, ImageReadError, is_image_file, read_image

__all__ = ["Item", "Source", "open_source", "input_identity", "output_name", "SourceError", "VIDEO_EXTENSIONS",
           "LIST_EXTENSIONS"]

VIDEO_EXTENSIONS = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg")
LIST_EXTENSIONS = (".txt", ".lst")
_EXT_TEXT = " ".join(IMAGE_EXTENSIONS)
# Image formats people keep beside their JPEGs that this runner does not read: named when skipped.
OTHER_IMAGE_EXTENSIONS = (".gif", ".tif", ".tiff", ".heic", ".heif", ".avif", ".jp2", ".ico", ".ppm", ".pgm",
                          ".pbm", ".svg", ".dng", ".raw", ".cr2", ".nef", ".exr", ".hdr")

Loader = Callable[[], tuple[np.ndarray, float]]


class SourceError(ValueError):
    """The input cannot be used at all (missing, empty, unknown kind); one line for people."""


def input_identity(path: str | os.PathLike, name: str) -> dict[str, Any]:
    """How a rerun recognises an input it already processed: ``{"name", "size", "mtime_ns"}``.

    ``name`` is the input's path relative to the source (unique within it); a file
    replaced or edited between runs changes its size or modification time, so it is
    processed again, and a file that cannot be read has ``size`` and ``mtime_ns`` None.
    The one definition every resumable runner uses (journal records carry these keys).
    """
    try:
        st = os.stat(path)
    except OSError:
        return {"name": name, "size": None, "mtime_ns": None}
    return {"name": name, "size": int(st.st_size), "mtime_ns": int(st.st_mtime_ns)}


def output_name(name: str) -> str:
    """Relative path of the annotated image written for input ``name`` (labels add ``.txt``/``.json`` to
    ``name``). A function of the name alone, so unique per input and stable when inputs are added:
    ``a.jpg`` and ``a.png`` give ``a.jpg`` (JPEG) and ``a.png`` (PNG); a video frame ``clip/000001``
    gives ``clip/000001.jpg``."""
    return name if name.lower().endswith(IMAGE_EXTENSIONS) else name + ".jpg"


@dataclass(frozen=True)
class Item:
    id: int
    name: str
    path: Path
    frame: Optional[int] = None
    size: Optional[int] = None
    mtime_ns: Optional[int] = None

    @property
    def identity(self) -> dict[str, Any]:
        return {"name": self.name, "size": self.size, "mtime_ns": self.mtime_ns}


def _item(index: int, name: str, path: Path, frame: Optional[int] = None) -> Item:
    ident = input_identity(path, name)
    return Item(index, name, path, frame, ident["size"], ident["mtime_ns"])


@dataclass
class Source:
    """``items`` is known up front for images; for a video it is ``None`` (frames are counted while decoding)."""

    kind: str  # "folder" | "glob" | "list" | "image" | "video"
    description: str
    items: Optional[list[Item]] = None
    count: Optional[int] = None
    max_pixels: int = DEFAULT_MAX_PIXELS
    ignored: list[tuple[str, str]] = field(default_factory=list)  # (file, reason) not read from a folder or glob
    scan_root: Optional[Path] = None  # the folder read (with ``recursive``: every folder below it too)
    recursive: bool = False

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
        name = _name(p, root)
        if name in seen:
            continue
        seen.add(name)
        out.append(_item(len(out) + 1, name, p))
    return out


def _absolute(p: Path) -> Path:
    """Absolute and normalised (``a/../b`` -> ``b``, links kept), so names never climb out of the source."""
    return Path(os.path.normpath(p.absolute()))


def _common_root(paths: list[Path]) -> Path:
    parents = [str(_absolute(p).parent) for p in paths]
    return Path(os.path.commonpath(parents)) if parents else Path(".")


def _name(p: Path, root: Path) -> str:
    try:
        return p.relative_to(root).as_posix()
    except ValueError:
        return p.as_posix()


def _glob_scan(pattern: str, root: Path) -> tuple[Path, bool]:
    """(root, recursive) of a glob: with a wildcard in a folder part ('data/**/*.jpg', 'data/*/x.png') the
    pattern reads every folder below its fixed prefix, which is then the root that outputs must stay out of."""
    parts = Path(pattern).parts
    if not any(glob.has_magic(part) for part in parts[:-1]):
        return root, False
    fixed = next(i for i, part in enumerate(parts) if glob.has_magic(part))
    return _absolute(Path(*parts[:fixed]) if fixed else Path(".")), True


def _why_ignored(f: Path) -> str:
    suffix = f.suffix.lower()
    if suffix in OTHER_IMAGE_EXTENSIONS:
        return f"{suffix} images are not read: convert to {'/'.join(e[1:] for e in IMAGE_EXTENSIONS)}"
    if suffix in VIDEO_EXTENSIONS:
        return "a video: pass it on its own (--images FILE)"
    return f"not an image ({suffix or 'no suffix'})"


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
        files = sorted((f for f in (p.rglob("*") if recursive else p.iterdir()) if f.is_file()),
                       key=lambda f: f.relative_to(p).as_posix())
        found = [f for f in files if is_image_file(f)]
        if not found:
            hint = ""
            if not recursive and any(f.is_file() and is_image_file(f) for f in p.rglob("*")):
                hint = "; its sub-folders have images: add --recursive"
            raise SourceError(f"no images ({_EXT_TEXT}) in folder '{p}'{hint}")
        items = _items(found, p)
        ignored = [(f.relative_to(p).as_posix(), _why_ignored(f)) for f in files if not is_image_file(f)]
        return Source("folder", str(p), items, len(items), max_pixels, ignored, _absolute(p), recursive)
    if p.is_file():
        suffix = p.suffix.lower()
        if suffix in LIST_EXTENSIONS:
            return _list_source(p, max_pixels)
        if suffix in VIDEO_EXTENSIONS:
            return Source("video", str(p), [_item(1, p.stem, p)], None, max_pixels, scan_root=_absolute(p).parent)
        if is_image_file(p):
            return Source("image", str(p), [_item(1, p.name, p)], 1, max_pixels, scan_root=_absolute(p).parent)
        raise SourceError(f"'{p}' is not an image ({_EXT_TEXT}), a video ({' '.join(VIDEO_EXTENSIONS)}), "
                          "a folder or a .txt list of image paths")
    if glob.has_magic(text):
        matched = [_absolute(Path(f)) for f in glob.glob(text, recursive=True) if Path(f).is_file()]
        found = [f for f in matched if is_image_file(f)]
        if not found:
            raise SourceError(f"no images ({_EXT_TEXT}) match '{text}'")
        root = _common_root(found)
        found = sorted(found, key=lambda f: f.relative_to(root).as_posix())
        items = _items(found, root)
        ignored = sorted((_name(f, root), _why_ignored(f)) for f in matched if not is_image_file(f))
        return Source("glob", text, items, len(items), max_pixels, ignored, *_glob_scan(text, root))
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
    root = _common_root(paths)
    items = _items([_absolute(f) for f in paths], root)
    return Source("list", str(path), items, len(items), max_pixels, scan_root=root)


# ----------------------------------------------------------------------------- video


def _video_frames(path: Path) -> Iterator[tuple[Item, Loader]]:
    """Frames of ``path`` in order as RGB arrays (PyAV, else OpenCV)."""
    try:
        if is_available("av") or not is_available("cv2"):
            yield from _av_frames(require("av", f"reading video '{path}'"), path)
        else:
            yield from _cv2_frames(require("cv2", f"reading video '{path}'"), path)
    except MissingDependency as e:  # exit 3 (cli): a missing dependency, not bad input
        raise MissingDependency(f"{e} (or opencv-python-headless); or extract the frames to a folder first") from None


def _frame(path: Path, index: int) -> Item:
    """Frame ``index`` of a video: its identity is the video file's (a replaced video runs again)."""
    return _item(index + 1, f"{path.stem}/{index:06d}", path, index)


def _frame_item(path: Path, index: int, rgb: np.ndarray, seconds: float) -> tuple[Item, Loader]:
    return _frame(path, index), (lambda: (rgb, seconds))


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
                yield _frame(path, index), _failing(path, f"video decode error ({reason})")
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
