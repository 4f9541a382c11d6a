#!/usr/bin/env python
"""Train a CAT detector on COCO-format data or generated driving scenes.

    # the demo detector (generates 2000+200 synthetic scenes at 640x192 first)
    python train.py --synthetic data/synth --out runs/demo
    # your data in COCO format (e.g. KITTI converted with python -m cat_deploy.data.kitti)
    python train.py --model retinanet_resnet50 --train-ann train.json --val-ann val.json --imgsz 384 1248

An --out that holds an earlier run (last.pth, best.pth, history.json) is refused: continue it
with --resume, replace it with --exist-ok, or pick another --out.
Exit status: 0 done, 2 bad input, 3 missing dependency, 4 internal error, 130 interrupted
(finished epochs are kept: resume with --resume).
"""
import argparse
import sys

from cat_deploy import cli
from cat_deploy.checkpoint import CheckpointError
from cat_deploy.train import TrainConfig, train


def parse_args(argv=None) -> TrainConfig:
    d = TrainConfig()
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default=d.model, help="zoo name (default: %(default)s)")
    p.add_argument("--attn", default=d.attn, choices=["cat", "se", "eca", "cbam", "none"])
    p.add_argument("--train-ann", help="COCO json of the training set")
    p.add_argument("--train-images", help="image folder of the training set (default: images/ beside the json)")
    p.add_argument("--val-ann", help="COCO json of the validation set")
    p.add_argument("--val-images", help="image folder of the validation set (default: images/ beside the json)")
    p.add_argument("--synthetic", metavar="DIR", help="generate synthetic driving scenes into DIR (once) and train on them")
    p.add_argument("--synthetic-train", type=int, default=d.synthetic_train)
    p.add_argument("--synthetic-val", type=int, default=d.synthetic_val)
    p.add_argument("--imgsz", type=int, nargs=2, metavar=("H", "W"), help="input size (default: the model's)")
    p.add_argument("--epochs", type=int, default=d.epochs)
    p.add_argument("--batch", type=int, default=d.batch_size)
    p.add_argument("--lr", type=float, default=d.lr)
    p.add_argument("--weight-decay", type=float, default=d.weight_decay)
    p.add_argument("--warmup-iters", type=int, default=d.warmup_iters)
    p.add_argument("--workers", type=int, default=d.workers)
    p.add_argument("--threads", type=int, help="torch intra-op threads (default: torch's choice)")
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--out", default=d.out, help="run folder: last.pth, best.pth, history.json")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its last.pth")
    p.add_argument("--exist-ok", action="store_true", help="replace the results of an earlier run in --out")
    cli.add_debug_flag(p)
    a = p.parse_args(argv)
    return TrainConfig(
        model=a.model, attn=None if a.attn == "none" else a.attn, train_ann=a.train_ann, train_images=a.train_images,
        val_ann=a.val_ann, val_images=a.val_images, synthetic=a.synthetic, synthetic_train=a.synthetic_train,
        synthetic_val=a.synthetic_val, input_size=tuple(a.imgsz) if a.imgsz else None, epochs=a.epochs,
        batch_size=a.batch, lr=a.lr, weight_decay=a.weight_decay, warmup_iters=a.warmup_iters, workers=a.workers,
        threads=a.threads, seed=a.seed, out=a.out, resume=a.resume, exist_ok=a.exist_ok,
    )


def main(argv=None) -> int:
    return cli.run("train.py", _main, argv)


def _main(argv) -> int:
    cfg = parse_args(argv)
    try:
        train(cfg)
    except (CheckpointError, ValueError, FileNotFoundError, FloatingPointError) as e:  # ValueError: data, paths
        print(f"train.py: error: {e}", file=sys.stderr)
        return cli.BAD_INPUT
    except KeyboardInterrupt:
        print(f"\ntrain.py: interrupted; resume with the same command plus --resume (state in {cfg.out}/last.pth)",
              file=sys.stderr)
        return cli.INTERRUPTED
    return 0


if __name__ == "__main__":
    sys.exit(main())
