"""Inputs of infer.py: folders, globs, list files, single images, videos."""
import numpy as np
import pytest
from PIL import Image

from cat_deploy.data.image import ImageReadError
from cat_deploy.runtime.source import SourceError, input_identity, open_source, output_name


def _img(path, value=100, size=(24, 16)):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((size[1], size[0], 3), value, np.uint8)).save(path)
    return path


@pytest.fixture
def tree(tmp_path):
    _img(tmp_path / "b.png")
    _img(tmp_path / "a.jpg")
    _img(tmp_path / "sub" / "c.bmp")
    (tmp_path / "notes.md").write_text("ignored")
    return tmp_path


def test_folder_sorted_with_ids(tree):
    src = open_source(tree)
    assert [(i.id, i.name) for i in src.items] == [(1, "a.jpg"), (2, "b.png")] and src.count == 2
    assert src.ignored == [("notes.md", "not an image (.md)")]  # listed, not silently dropped
    ident = src.items[0].identity
    st = (tree / "a.jpg").stat()
    assert ident == input_identity(tree / "a.jpg", "a.jpg") == {"name": "a.jpg", "size": st.st_size,
                                                                 "mtime_ns": st.st_mtime_ns}
    src = open_source(tree, recursive=True)
    assert [i.name for i in src.items] == ["a.jpg", "b.png", "sub/c.bmp"]
    rgb, seconds = dict((it.name, load) for it, load in src)["sub/c.bmp"]()
    assert rgb.shape == (16, 24, 3) and seconds >= 0


def test_folder_errors(tmp_path):
    _img(tmp_path / "deep" / "x.png")
    with pytest.raises(SourceError, match="--recursive"):
        open_source(tmp_path)
    (tmp_path / "empty").mkdir()
    with pytest.raises(SourceError, match="no images"):
        open_source(tmp_path / "empty")
    with pytest.raises(SourceError, match="not found"):
        open_source(tmp_path / "nope")
    (tmp_path / "model.bin").write_bytes(b"x")
    with pytest.raises(SourceError, match="is not an image"):
        open_source(tmp_path / "model.bin")


def test_glob_and_single_image(tree):
    src = open_source(f"{tree}/**/*.*", recursive=True)
    assert src.kind == "glob" and [i.name for i in src.items] == ["a.jpg", "b.png", "sub/c.bmp"]
    with pytest.raises(SourceError, match="match"):
        open_source(f"{tree}/*.webp")
    src = open_source(tree / "b.png")
    assert src.kind == "image" and [(i.id, i.name) for i in src.items] == [(1, "b.png")]


def test_list_file(tree):
    (tree / "list.txt").write_text(f"# eval set\nb.png\n\nsub/c.bmp\n{tree / 'a.jpg'}\nmissing.jpg\nb.png\n")
    src = open_source(tree / "list.txt")
    assert [i.name for i in src.items] == ["b.png", "sub/c.bmp", "a.jpg", "missing.jpg"]  # list order, no duplicates
    loads = dict((it.name, load) for it, load in src)
    with pytest.raises(ImageReadError, match="not found"):
        loads["missing.jpg"]()
    (tree / "blank.txt").write_text("# nothing\n")
    with pytest.raises(SourceError, match="names no images"):
        open_source(tree / "blank.txt")


def test_output_names_are_the_input_names():
    """One per input whatever else is in the folder: a function of the name alone."""
    names = ["a.jpg", "a.png", "a_jpg.jpg", "d/c.JPG", "clip/000001"]
    assert [output_name(n) for n in names] == ["a.jpg", "a.png", "a_jpg.jpg", "d/c.JPG", "clip/000001.jpg"]
    assert len({output_name(n) for n in names}) == len(names)


def test_video_frames(tmp_path):
    av = pytest.importorskip("av", reason="PyAV (pip install av) reads videos")
    path = tmp_path / "drive.mp4"
    with av.open(str(path), "w") as c:
        s = c.add_stream("mpeg4", rate=10)
        s.width, s.height, s.pix_fmt = 64, 32, "yuv420p"
        for i in range(4):
            frame = av.VideoFrame.from_ndarray(np.full((32, 64, 3), 40 + 50 * i, np.uint8), format="rgb24")
            for p in s.encode(frame):
                c.mux(p)
        for p in s.encode():
            c.mux(p)
    src = open_source(path)
    assert src.kind == "video" and src.count is None
    frames = [(it.id, it.name, load()[0]) for it, load in src]
    assert [(i, n) for i, n, _ in frames] == [(1, "drive/000000"), (2, "drive/000001"), (3, "drive/000002"),
                                               (4, "drive/000003")]
    assert frames[0][2].shape == (32, 64, 3) and frames[3][2].mean() > frames[0][2].mean() + 100
