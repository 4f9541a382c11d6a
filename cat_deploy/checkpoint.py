"""Self-describing checkpoints: the model config and the weights in one ``.pth``.

Layout (a plain dict, so ``torch.load(weights_only=True)`` reads it and never
runs code)::

    {"format": "cat-deploy-checkpoint", "version": 1,
     "config": ModelConfig.to_dict(), "state_dict": {...}, "meta": {...},
     "train_state": {...}  # optional: optimizer/scheduler/epoch, for resume}
"""
from __future__ import annotations

import os
import pickle
from pathlib import Path
from typing import Any, Optional

import torch
import torch.nn as nn

from .config import ModelConfig
from .core.errors import CheckpointError
from .core.files import atomic_write
from .models import build_model

FORMAT = "cat-deploy-checkpoint"
VERSION = 1

__all__ = ["CheckpointError", "save_checkpoint", "load_checkpoint", "load_model"]


def save_checkpoint(
    model: nn.Module,
    path: str | os.PathLike,
    meta: Optional[dict[str, Any]] = None,
    train_state: Optional[dict[str, Any]] = None,
) -> Path:
    """Write ``model`` (which must carry ``model.config``) to ``path`` atomically.

    Example:
        >>> model = create_model("retinanet_tiny", num_classes=6)
        >>> save_checkpoint(model, "tiny.pth", meta={"map50": 0.61})
        >>> model = load_model("tiny.pth")
    """
    config = getattr(model, "config", None)
    if not isinstance(config, ModelConfig):
        raise TypeError("save_checkpoint needs a model built by cat_deploy.models.create_model (it has no .config)")
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    payload = {
        "format": FORMAT,
        "version": VERSION,
        "config": config.to_dict(),
        "state_dict": state,
        "meta": {"torch": str(torch.__version__), **(meta or {})},
    }
    if train_state is not None:
        payload["train_state"] = train_state
    return atomic_write(path, lambda tmp: torch.save(payload, tmp))


def _describe_format(path: Path) -> str:
    with open(path, "rb") as f:
        head = f.read(8)
    if not head:
        return "is empty (0 bytes)"
    if head.startswith(b"PK"):
        return "is truncated or corrupt (its zip archive is incomplete)"
    if head[:1] == b"\x80":
        return "is a legacy pickle that could not be read"
    if head.startswith(b"\x08") or b"onnx" in head.lower():
        return "looks like an ONNX model, not a PyTorch checkpoint"
    return "is not a PyTorch checkpoint"


def load_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """Read and check a checkpoint dict with ``torch.load(weights_only=True)``; never executes code."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint '{path}' not found; check the path (train one with train.py)")
    with open(path, "rb") as f:
        head = f.read(2)
    if not (head.startswith(b"PK") or head[:1] == b"\x80"):  # neither torch's zip format nor a pickle
        raise CheckpointError(f"checkpoint '{path}' {_describe_format(path)}; pass the .pth written by train.py "
                              "or cat_deploy.save_checkpoint")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        first = str(e).strip().splitlines()
        reason = next((ln.strip() for ln in first if "Unsupported global" in ln or "global" in ln.lower()), first[0] if first else "")
        raise CheckpointError(
            f"checkpoint '{path}' holds Python objects that safe loading refuses ({reason[:160]}); "
            "it could run code when unpickled, so it was not loaded: re-save it with cat_deploy.save_checkpoint "
            "from a trusted environment"
        ) from None
    except Exception as e:  # torch raises many types for non-checkpoint bytes (KeyError, RuntimeError, EOFError...)
        raise CheckpointError(f"checkpoint '{path}' {_describe_format(path)} ({type(e).__name__}); "
                              "re-download or re-save it") from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        hint = "a bare state_dict" if isinstance(ckpt, dict) else f"a {type(ckpt).__name__}"
        raise CheckpointError(
            f"checkpoint '{path}' is {hint}, not a cat-deploy checkpoint (no model config); build the model with "
            "cat_deploy.models.create_model, load the weights, and save it with cat_deploy.save_checkpoint"
        )
    if ckpt.get("version", 0) > VERSION:
        raise CheckpointError(f"checkpoint '{path}' has format version {ckpt['version']}, newer than this "
                              f"cat-deploy reads ({VERSION}); upgrade cat-deploy")
    return ckpt


def load_model(path: str | os.PathLike, **cat_overrides) -> nn.Module:
    """Rebuild the model a checkpoint describes, load its weights, return it in eval mode.

    ``cat_overrides`` replace CAT options that do not change the weights (for
    example ``gep="reference"`` to compare GEP formulations).
    """
    ckpt = load_checkpoint(path)
    try:
        config = ModelConfig.from_dict(ckpt["config"])
        if cat_overrides:
            config = config.replace(cat=config.cat.__class__(**{**config.cat.kwargs(), **cat_overrides}))
        model = build_model(config)
    except (TypeError, ValueError, KeyError) as e:
        raise CheckpointError(f"checkpoint '{path}' has an invalid model config: {e}") from None
    missing, unexpected = [], []
    try:
        result = model.load_state_dict(ckpt["state_dict"], strict=False)
        missing, unexpected = result.missing_keys, result.unexpected_keys
    except RuntimeError as e:
        shape_lines = [ln.strip() for ln in str(e).splitlines() if "size mismatch" in ln]
        raise CheckpointError(
            f"checkpoint '{path}': weights do not match its config ({(shape_lines[0] if shape_lines else str(e).splitlines()[0])}); "
            "the file was edited or written by another version: re-export it from the training run"
        ) from None
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing, e.g. {missing[0]}")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected, e.g. {unexpected[0]}")
        raise CheckpointError(
            f"checkpoint '{path}': weights do not match its config ({'; '.join(parts)}); "
            "the file was edited or written by another version: re-export it from the training run"
        )
    model.checkpoint_meta = ckpt.get("meta", {})
    return model.eval()
