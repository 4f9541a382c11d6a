"""A dataset on disk: ``images/`` and ``annotations.json`` (COCO), and the command line."""
from __future__ import annotations

import argparse
import multiprocessing
import os
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
from tqdm import tqdm

from ...core.files import write_json
from .layout import CLASSES
from .scene import render_scene


def _render_to_file(index: int, seed: int, size: tuple[int, int], images_dir: str, image_format: str):
    rng = np.random.default_rng([seed, index])
    img, anns = render_scene(rng, *size)
    name = f"{index + 1:06d}.{image_format}"
    if image_format == "jpg":
        img.save(os.path.join(images_dir, name), quality=92)
    else:
        img.save(os.path.join(images_dir, name))
    return index, name, anns


def _render_star(args):
    return _render_to_file(*args)


def generate_dataset(
    out_dir: str | os.PathLike,
    num_images: int,
    size: tuple[int, int] = (1242, 375),
    seed: int = 0,
    workers: int = 1,
    image_format: str = "jpg",
) -> Path:
    """Write ``num_images`` scenes to ``out_dir/images/`` and their COCO json to ``out_dir/annotations.json``.

    Args:
        size: (width, height) — note the order, as in ``--size WxH``.
        seed: image ``i`` is rendered from ``default_rng([seed, i])``, so output is
            identical for any ``workers``.
        image_format: ``"jpg"`` (quality 92) or ``"png"``.

    Returns:
        Path of the json file (written atomically: temp file + ``os.replace``).

    Example::

        ann = generate_dataset("data/synth/val", 200, size=(640, 192), seed=1)
    """
    if image_format not in ("jpg", "png"):
        raise ValueError(f"image_format must be 'jpg' or 'png', got {image_format!r}")
    out = Path(out_dir)
    images_dir = out / "images"
    images_dir.mkdir(parents=True, exist_ok=True)
    w, h = int(size[0]), int(size[1])
    jobs = [(i, seed, (w, h), str(images_dir), image_format) for i in range(num_images)]
    results: list = [None] * num_images
    bar = tqdm(total=num_images, desc=f"synthetic {w}x{h}", unit="img")
    if workers <= 1:
        for job in jobs:
            i, name, anns = _render_star(job)
            results[i] = (name, anns)
            bar.update()
    else:
        with multiprocessing.get_context().Pool(workers) as pool:
            for i, name, anns in pool.imap_unordered(_render_star, jobs, chunksize=8):
                results[i] = (name, anns)
                bar.update()
    bar.close()
    return write_json(out / "annotations.json", _coco_document(results, (w, h), seed))


def _coco_document(results: list[tuple[str, list[dict]]], size: tuple[int, int], seed: int) -> dict:
    """The COCO json of the images ``results[i] = (file name, annotations)``: image ``i`` gets id ``i + 1``,
    annotations are numbered from 1 in image order."""
    w, h = size
    images, annotations = [], []
    for i, (name, anns) in enumerate(results):
        images.append(dict(id=i + 1, file_name=name, width=w, height=h))
        for a in anns:
            annotations.append(dict(id=len(annotations) + 1, image_id=i + 1, **a))
    return dict(
        info=dict(description="cat-deploy synthetic driving scenes", seed=seed, size=[w, h]),
        images=images,
        annotations=annotations,
        categories=[dict(id=k + 1, name=n, supercategory="object") for k, n in enumerate(CLASSES)],
    )


def parse_size(text: str) -> tuple[int, int]:
    """``"640x192"`` -> ``(640, 192)`` (width, height)."""
    try:
        w, h = (int(v) for v in text.lower().split("x"))
        if w <= 0 or h <= 0:
            raise ValueError
    except ValueError:
        raise argparse.ArgumentTypeError(f"size must look like WIDTHxHEIGHT, e.g. 640x192, got {text!r}") from None
    return w, h


def main(argv: Optional[Sequence[str]] = None) -> int:
    """``python -m cat_deploy.data.synthetic --out DIR [--num N --size WxH --seed S --workers W --format jpg|png]``."""
    ap = argparse.ArgumentParser(prog="python -m cat_deploy.data.synthetic",
                                 description="Synthetic autonomous-driving scenes with COCO boxes: the project's demo data.")
    ap.add_argument("--out", required=True, help="output folder (gets images/ and annotations.json)")
    ap.add_argument("--num", type=int, default=2000, help="number of images")
    ap.add_argument("--size", type=parse_size, default=(1242, 375), help="WIDTHxHEIGHT (default 1242x375)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--format", choices=("jpg", "png"), default="jpg")
    args = ap.parse_args(argv)
    path = generate_dataset(args.out, args.num, args.size, args.seed, args.workers, args.format)
    print(f"wrote {args.num} images and {path}")
    return 0
