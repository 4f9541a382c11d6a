#!/usr/bin/env python
"""Detect objects in images or a video with a TensorRT engine, an ONNX file or a checkpoint.

    python infer.py --engine out/cat.engine --images assets/samples --out runs/infer
    python infer.py --engine out/cat.onnx --images 'data/**/*.png' --save-images --conf 0.3
    python infer.py --engine model.pth --images list.txt --classes car pedestrian --device cpu
    python infer.py --engine out/cat.onnx --images val/images --annotations val/annotations.json
    python infer.py --engine out/cat.engine --images s3://bucket/drive_0042/ --out runs/d42 --ray auto

The backend follows the file: .engine/.plan TensorRT, .onnx ONNX Runtime, .pth PyTorch.
Writes OUT/detections.json (COCO style, boxes in original image pixels) and OUT/summary.json;
optionally OUT/images/ (--save-images) and OUT/labels/ (--save-txt, --save-json). Images that
cannot be decoded are reported and skipped; other files of the folder (GIF, TIFF, text) are
listed as not read. Per-image files are named after the input's full name (a.jpg and a.png get
labels/a.jpg.txt and labels/a.png.txt). An interrupted run resumes where it stopped when the same
command is run again (progress in OUT/.partial/, keyed by each input's name, size and mtime: added,
removed or edited files are handled). --out must not hold the input images: outputs never replace
inputs. With --ray the same run is spread over a Ray cluster (a local one without ADDRESS) and also
writes OUT/detections.parquet; either mode resumes the other's journal. Exit status: 0 ok (also with
skipped images), 2 bad input, 3 missing backend or dependency (Ray for --ray), 4 internal error,
130 interrupted.
"""
import argparse
import sys

from cat_deploy import cli
from cat_deploy.runtime.detect import DetectOptions, InferError, run_detection
from cat_deploy.runtime.ray_batch import run_ray


def parse_args(argv=None) -> DetectOptions:
    d = DetectOptions(engine="", images="")
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--engine", required=True, help="model: .engine/.plan (TensorRT), .onnx or .pth")
    p.add_argument("--images", required=True,
                   help="folder, image, quoted glob ('dir/*.jpg'), .txt list of paths, or video (.mp4, ...)")
    p.add_argument("--out", default=d.out, help="output folder (default: %(default)s)")
    p.add_argument("--recursive", action="store_true", help="also take images from sub-folders")
    p.add_argument("--conf", type=float, default=d.conf, help="score threshold (default: %(default)s)")
    p.add_argument("--iou", type=float, default=d.iou, help="NMS IoU threshold (default: %(default)s)")
    p.add_argument("--max-det", type=int, default=d.max_det, help="detections per image (default: %(default)s)")
    p.add_argument("--batch", type=int, help="images per batch (default: the export batch; 1 for .pth)")
    p.add_argument("--classes", nargs="+", metavar="CLASS", help="keep only these classes (names or indices)")
    p.add_argument("--device", default=d.device, choices=["auto", "cpu", "cuda"])
    p.add_argument("--save-images", action="store_true", help="write annotated images to OUT/images/")
    p.add_argument("--save-txt", action="store_true",
                   help="write OUT/labels/NAME.txt: class_id class_name score x1 y1 x2 y2 per line")
    p.add_argument("--save-json", action="store_true", help="write OUT/labels/NAME.json per image")
    p.add_argument("--annotations", help="COCO json of the same images: also report COCO mAP (matched by file name)")
    p.add_argument("--no-resume", action="store_true", help="start over instead of resuming from OUT/.partial/")
    p.add_argument("--workers", type=int, default=d.workers, help="image reader threads (default: %(default)s)")
    p.add_argument("--quiet", action="store_true", help="no progress bar or table; errors only")
    p.add_argument("--ray", nargs="?", const="", metavar="ADDRESS",
                   help="run on Ray Data: a local cluster, or the cluster at ADDRESS (auto, HOST:6379, ray://HOST:10001)")
    p.add_argument("--ray-actors", type=int, metavar="N", help="with --ray: detection actors (default: one per GPU, else 1)")
    cli.add_debug_flag(p)
    a = p.parse_args(argv)
    return DetectOptions(
        engine=a.engine, images=a.images, out=a.out, recursive=a.recursive, conf=a.conf, iou=a.iou,
        max_det=a.max_det, batch=a.batch, classes=tuple(a.classes) if a.classes else None, device=a.device,
        save_images=a.save_images, save_txt=a.save_txt, save_json=a.save_json, annotations=a.annotations,
        resume=not a.no_resume, workers=a.workers, quiet=a.quiet, ray=a.ray, ray_actors=a.ray_actors,
    )


def main(argv=None) -> int:
    return cli.run("infer.py", _main, argv)


def _main(argv) -> int:
    opts = parse_args(argv)
    try:
        summary = run_ray(opts) if opts.ray is not None else run_detection(opts)
    except InferError as e:
        print(f"infer.py: error: {e}", file=sys.stderr)
        return e.code
    return cli.INTERRUPTED if summary.get("interrupted") else cli.OK


if __name__ == "__main__":
    sys.exit(main())
