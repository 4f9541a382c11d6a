"""Detector training: COCO-format data, focal + GIoU loss, EMA weights, COCO mAP each epoch, resume.

The top-level ``train.py`` parses flags into a :class:`TrainConfig` and calls :func:`train`.
Each epoch writes ``last.pth`` (weights + optimizer/scheduler/EMA state, for
``--resume``) and, when validation mAP@0.5 improves, ``best.pth`` (EMA weights
only); both atomically, so an interrupted run loses at most the current epoch.
A run never replaces an earlier run's results: an ``--out`` that already holds
``last.pth``, ``best.pth`` or ``history.json`` is refused unless ``resume`` (continue
it) or ``exist_ok`` (replace it) says otherwise.
"""
from __future__ import annotations

import dataclasses
import json
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np
import torch
from timm.utils import ModelEmaV3
from torch.utils.data import DataLoader
from tqdm import tqdm

from .checkpoint import load_checkpoint, save_checkpoint
from .config import ModelConfig
from .core.errors import CheckpointError
from .core.files import atomic_write
from .data.coco import CocoDetection, collate_detection
from .data.synthetic import generate_dataset
from .models import build_model, create_model, detection_loss
from .paths import output_dir
from .validate.coco_eval import evaluate_detector

__all__ = ["TrainConfig", "TrainError", "train", "prepare_synthetic", "RESULT_FILES"]

RESULT_FILES = ("last.pth", "best.pth", "history.json")


class TrainError(ValueError):
    """The run cannot start as configured; one line saying what to change."""


@dataclass(frozen=True)
class TrainConfig:
    """Flags of ``train.py``; stored in every checkpoint's meta."""

    model: str = "retinanet_tiny"
    attn: Optional[str] = "cat"
    train_ann: Optional[str] = None
    train_images: Optional[str] = None
    val_ann: Optional[str] = None
    val_images: Optional[str] = None
    synthetic: Optional[str] = None  # directory: generate (if absent) and train on synthetic scenes
    synthetic_train: int = 2000
    synthetic_val: int = 200
    input_size: Optional[tuple[int, int]] = None  # (h, w); default: the model's
    epochs: int = 12
    batch_size: int = 16
    lr: float = 2e-3
    weight_decay: float = 0.05
    warmup_iters: int = 200
    ema_decay: float = 0.999
    workers: int = 2
    threads: Optional[int] = None
    seed: int = 0
    out: str = "runs/train"
    resume: bool = False
    exist_ok: bool = False  # replace the results of an earlier run in ``out``
    max_train_images: Optional[int] = None  # for smoke tests
    max_val_images: Optional[int] = None


def prepare_synthetic(root: str | os.PathLike, num_train: int, num_val: int, size_wh: tuple[int, int],
                      seed: int = 0) -> tuple[Path, Path]:
    """Generate (once) ``root/train`` and ``root/val`` synthetic scene sets; return their annotation files.

    The validation scenes use a different seed, so they are held out from training.
    """
    root = Path(root)
    anns = []
    for split, num, split_seed in (("train", num_train, seed), ("val", num_val, seed + 1_000_003)):
        ann = root / split / "annotations.json"
        if ann.is_file():
            with open(ann) as f:
                d = json.load(f)
            w, h = d["images"][0]["width"], d["images"][0]["height"]
            if len(d["images"]) == num and (w, h) == tuple(size_wh):
                anns.append(ann)
                continue
        anns.append(Path(generate_dataset(root / split, num, size=size_wh, seed=split_seed)))
    return anns[0], anns[1]


def _lr_lambda(warmup: int, total: int, final: float = 0.05):
    def f(it: int) -> float:
        if it < warmup:
            return (it + 1) / warmup
        t = (it - warmup) / max(1, total - warmup)
        return final + (1 - final) * 0.5 * (1 + math.cos(math.pi * min(1.0, t)))

    return f


def _datasets(cfg: TrainConfig, input_size: tuple[int, int], mean, std):
    train_ann, val_ann = cfg.train_ann, cfg.val_ann
    train_images, val_images = cfg.train_images, cfg.val_images
    if cfg.synthetic:
        train_ann, val_ann = prepare_synthetic(cfg.synthetic, cfg.synthetic_train, cfg.synthetic_val,
                                               (input_size[1], input_size[0]), cfg.seed)
    if not train_ann or not val_ann:
        raise ValueError("give --train-ann and --val-ann (COCO json), or --synthetic DIR")
    train_images = train_images or str(Path(train_ann).parent / "images")
    val_images = val_images or str(Path(val_ann).parent / "images")
    train_set = CocoDetection(train_images, train_ann, input_size, train=True, mean=mean, std=std, seed=cfg.seed)
    val_set = CocoDetection(val_images, val_ann, input_size, train=False, mean=mean, std=std)
    if cfg.max_train_images:
        train_set.images = train_set.images[: cfg.max_train_images]
    if cfg.max_val_images:
        val_set.images = val_set.images[: cfg.max_val_images]
    return train_set, val_set


def _check_out(cfg: TrainConfig) -> Path:
    """The run folder, refusing to replace an earlier run's results without ``resume`` or ``exist_ok``."""
    out = Path(cfg.out)
    earlier = [n for n in RESULT_FILES if (out / n).exists()]
    if earlier and not (cfg.resume or cfg.exist_ok):
        raise TrainError(f"--out '{out}' holds an earlier run ({', '.join(earlier)}): pass --resume to continue it, "
                         "--exist-ok to replace it, or another --out")
    return output_dir(out)


def _start_config(cfg: TrainConfig, last_path: Path) -> tuple[ModelConfig, Optional[dict]]:
    """The model config to train, and the checkpoint to resume from (``None`` for a fresh start)."""
    if cfg.resume:
        if not last_path.is_file():
            raise CheckpointError(f"nothing to resume: '{last_path}' does not exist; drop --resume to start fresh")
        resume_ckpt = load_checkpoint(last_path)
        return ModelConfig.from_dict(resume_ckpt["config"]), resume_ckpt
    config = create_model(cfg.model, attn=cfg.attn).config
    if cfg.input_size:
        config = config.replace(input_size=tuple(cfg.input_size))
    return config, None


def _with_classes(cfg: TrainConfig, config: ModelConfig, train_set, val_set, last_path: Path, log) -> ModelConfig:
    """Check the datasets against ``cfg`` and a resumed config; ``config`` with the data's class names."""
    for ds in (train_set, val_set):
        if ds.describe_dropped():
            log(f"warning: {ds.describe_dropped()}")
    if len(train_set) < cfg.batch_size:  # every batch is full (drop_last): there would be no step at all
        raise TrainError(f"{len(train_set)} training images, fewer than --batch {cfg.batch_size}: pass --batch "
                         f"{max(1, len(train_set))} or less, or add images")
    class_names = tuple(train_set.class_names)
    if not cfg.resume:
        return config.replace(num_classes=len(class_names), class_names=class_names)
    if tuple(config.class_names) != class_names:
        raise ValueError(f"'{last_path}' was trained on classes {config.class_names}, the data has {class_names}")
    return config


def _optimizer(model: torch.nn.Module, cfg: TrainConfig, total_iters: int):
    """AdamW (no weight decay on norms, biases and colla-factors) and its warm-up + cosine schedule."""
    decay, no_decay = [], []
    for p in model.parameters():
        (no_decay if p.ndim <= 1 else decay).append(p)
    optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": cfg.weight_decay},
                                   {"params": no_decay, "weight_decay": 0.0}], lr=cfg.lr)
    return optimizer, torch.optim.lr_scheduler.LambdaLR(optimizer, _lr_lambda(cfg.warmup_iters, total_iters))


def _resume_state(resume_ckpt: Optional[dict], model, ema, optimizer, scheduler, last_path: Path, epochs: int,
                  log) -> tuple[int, float, list]:
    """Load the training state of a resumed run; returns (first epoch, best mAP@0.5, history)."""
    if resume_ckpt is None:
        return 0, -1.0, []
    ts = resume_ckpt["train_state"]
    model.load_state_dict(ts["model"])
    ema.module.load_state_dict(resume_ckpt["state_dict"])
    optimizer.load_state_dict(ts["optimizer"])
    scheduler.load_state_dict(ts["scheduler"])
    log(f"resumed from {last_path} at epoch {ts['epoch']}/{epochs}")
    return ts["epoch"], ts["best_map50"], list(ts.get("history", []))


def _train_epoch(model, ema, loader: DataLoader, optimizer, scheduler, anchors, epoch: int,
                 epochs: int) -> dict[str, float]:
    """One pass over ``loader`` (clipped gradients, EMA update per step); returns the mean losses."""
    model.train()
    if hasattr(loader.dataset, "set_epoch"):
        loader.dataset.set_epoch(epoch)  # new augmentations each epoch, independent of worker count
    sums = {"cls": 0.0, "box": 0.0}
    bar = tqdm(loader, desc=f"epoch {epoch + 1}/{epochs}", dynamic_ncols=True, leave=False)
    for i, (images, targets) in enumerate(bar):
        cls_logits, box_deltas = model(images)
        losses = detection_loss(cls_logits, box_deltas, anchors, targets)
        loss = losses["cls"] + losses["box"]
        if not torch.isfinite(loss):
            raise FloatingPointError(f"loss is {loss.item()} at epoch {epoch + 1}, step {i}; lower --lr")
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 10.0)
        optimizer.step()
        scheduler.step()
        ema.update(model, step=epoch * len(loader) + i + 1)
        for k in sums:
            sums[k] += float(losses[k].detach())
        bar.set_postfix(cls=f"{sums['cls'] / (i + 1):.3f}", box=f"{sums['box'] / (i + 1):.3f}",
                        lr=f"{scheduler.get_last_lr()[0]:.1e}")
    return {k: v / len(loader) for k, v in sums.items()}


def train(cfg: TrainConfig, log=print) -> dict:
    """Train a detector as ``cfg`` says; returns the final metrics dict.

    Writes ``OUT/last.pth`` (EMA weights plus the training state, for ``--resume``) after every
    epoch, ``OUT/best.pth`` when the validation mAP@0.5 improves, and ``OUT/history.json``.

    Example:
        >>> train(TrainConfig(synthetic="data/synth", epochs=1, out="runs/smoke"))
    """
    torch.manual_seed(cfg.seed)
    np.random.seed(cfg.seed)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    out = _check_out(cfg)
    last_path, best_path = out / "last.pth", out / "best.pth"
    config, resume_ckpt = _start_config(cfg, last_path)
    train_set, val_set = _datasets(cfg, config.input_size, config.mean, config.std)
    config = _with_classes(cfg, config, train_set, val_set, last_path, log)
    model = build_model(config)
    ema = ModelEmaV3(model, decay=cfg.ema_decay, use_warmup=True)
    loader = DataLoader(train_set, batch_size=cfg.batch_size, shuffle=True, num_workers=cfg.workers,
                        collate_fn=collate_detection, drop_last=True)
    optimizer, scheduler = _optimizer(model, cfg, cfg.epochs * len(loader))
    start_epoch, best, history = _resume_state(resume_ckpt, model, ema, optimizer, scheduler, last_path,
                                               cfg.epochs, log)
    anchors = model.anchors(config.input_size)
    meta_cfg = {k: (list(v) if isinstance(v, tuple) else v) for k, v in dataclasses.asdict(cfg).items()}
    for epoch in range(start_epoch, cfg.epochs):
        t0 = time.time()
        losses = _train_epoch(model, ema, loader, optimizer, scheduler, anchors, epoch, cfg.epochs)
        train_time = time.time() - t0
        metrics = evaluate_detector(lambda x: ema.module.predict(x), val_set, batch_size=cfg.batch_size)
        record = {"epoch": epoch + 1, "loss_cls": losses["cls"], "loss_box": losses["box"],
                  "train_s": round(train_time, 1), **{k: round(v, 4) for k, v in metrics.items()}}
        history.append(record)
        log(json.dumps(record))
        improved = metrics["map50"] > best
        best = max(best, metrics["map50"])
        ema_model = ema.module
        ema_model.config = config
        meta = {"train_config": meta_cfg, "epoch": epoch + 1, "metrics": metrics}
        if improved:
            save_checkpoint(ema_model, best_path, meta=meta)
        save_checkpoint(ema_model, last_path, meta=meta, train_state={
            "epoch": epoch + 1, "best_map50": best, "history": history, "model": model.state_dict(),
            "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
        })  # the checkpoint's weights are the EMA (what inference uses); training resumes from "model"
        atomic_write(out / "history.json", lambda tmp: Path(tmp).write_text(json.dumps(history, indent=1)))
    return history[-1] if history else {}
