"""The pictures the paper draws, for your checkpoint and image.

    python -m cat_deploy.visualize --ckpt assets/demo/cat_retinanet_tiny.pth \\
        --image assets/samples/scene_01.jpg --out runs/vis

Writes ``attention_maps.png`` (paper Figs 3-4: the raw spatial maps -S_avg, S_max, S_ent of
the first CAT module at each resolution, i.e. each backbone stage) and ``colla_factors.png``
(Fig 5: the exterior colla-factors C_w, S_w after softmax, and the interior factors, against
depth), plus ``colla_factors.json`` with the numbers. The files are written atomically and
never onto the checkpoint or the image (``--out`` is checked first). Exit status: 0 ok,
2 bad input, 3 missing dependency (matplotlib), 4 internal error, 130 interrupted.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

from . import cli
from .checkpoint import load_model
from .core.errors import CheckpointError
from .core.files import atomic_write
from .core.optional import lazy_import
from .data.image import ImageReadError, read_image
from .layers import CAT
from .paths import output_dir, refuse_inputs
from .runtime.processing import preprocess

mpl_figure = lazy_import("matplotlib.figure", "python -m cat_deploy.visualize")

OUTPUTS = ("attention_maps.png", "colla_factors.png", "colla_factors.json")

__all__ = ["attention_maps_by_stage", "colla_factors", "render"]


def attention_maps_by_stage(model: torch.nn.Module, image: torch.Tensor) -> list[tuple[str, np.ndarray]]:
    """(module name, maps [3, h, w] = -S_avg, S_max, S_ent) for the first CAT module at each resolution."""
    inputs: dict[str, torch.Tensor] = {}
    order: list[str] = []
    hooks = []
    for name, m in model.named_modules():
        if isinstance(m, CAT):
            def hook(mod, args, name=name):
                inputs[name] = args[0].detach()
                order.append(name)
            hooks.append(m.register_forward_pre_hook(hook))
    try:
        with torch.no_grad():
            model(image)
    finally:
        for h in hooks:
            h.remove()
    modules = dict(model.named_modules())
    seen, out = set(), []
    for name in order:
        size = tuple(inputs[name].shape[-2:])
        if size in seen:
            continue
        seen.add(size)
        with torch.no_grad():
            maps = modules[name].attention_maps(inputs[name])["spatial_raw"][0]
        out.append((name, maps.numpy()))
    return out


def colla_factors(model: torch.nn.Module) -> list[dict]:
    """Per CAT module in forward order: softmax(C_w, S_w) and the raw interior factors."""
    rows = []
    for name, m in model.named_modules():
        if isinstance(m, CAT):
            cw, sw = m.exterior_factors.detach().softmax(0).tolist()
            rows.append({"module": name, "channels": m.channels, "Cw": cw, "Sw": sw,
                         "C_alpha_beta_gamma": m.channel_factors.detach().tolist(),
                         "S_alpha_beta_gamma": m.spatial_factors.detach().tolist()})
    return rows


def render(ckpt: str, image_path: str, out: str | Path) -> list[Path]:
    """Draw the figures for ``ckpt`` on ``image_path`` into ``out``; returns the files written."""
    out = output_dir(out)
    refuse_inputs([out / name for name in OUTPUTS], [ckpt, image_path], "--out")
    model = load_model(ckpt)
    cfg = model.config
    rgb = read_image(image_path)
    x, lb = preprocess(rgb, cfg.input_size, cfg.mean, cfg.std, cfg.letterbox)
    stages = attention_maps_by_stage(model, torch.from_numpy(x)[None])
    if not stages:
        raise ValueError(f"'{ckpt}' has no CAT modules (attention: {cfg.attn}); nothing to draw")
    shown = ((x.transpose(1, 2, 0) * np.array(cfg.std) + np.array(cfg.mean)).clip(0, 1))

    fig = mpl_figure.Figure(figsize=(4 * 3.2, len(stages) * 3.2 * cfg.input_size[0] / cfg.input_size[1] + 0.6))
    axes = fig.subplots(len(stages), 4, squeeze=False)
    titles = ["input", "-S_avg (GAP)", "S_max (GMP)", "S_ent (GEP)"]
    for row, (name, maps) in enumerate(stages):
        axes[row, 0].imshow(shown)
        short = ".".join(name.split(".")[-3:])
        axes[row, 0].set_ylabel(f"{maps.shape[1]}x{maps.shape[2]}\n{short}", fontsize=7)
        for col in range(3):
            axes[row, col + 1].imshow(maps[col], cmap="jet", interpolation="bilinear",
                                      extent=(0, cfg.input_size[1], cfg.input_size[0], 0))
        for col in range(4):
            axes[row, col].set_xticks([])
            axes[row, col].set_yticks([])
            if row == 0:
                axes[row, col].set_title(titles[col], fontsize=9)
    fig.suptitle(f"Raw spatial attention maps, first CAT module per stage (cf. paper Figs 3-4)\n{Path(image_path).name}",
                 fontsize=9)
    fig.tight_layout()
    maps_png = out / "attention_maps.png"
    atomic_write(maps_png, lambda tmp: fig.savefig(tmp, dpi=110, format="png"))

    rows = colla_factors(model)
    depth = np.arange(1, len(rows) + 1)
    fig = mpl_figure.Figure(figsize=(11, 3.6))
    a0, a1 = fig.subplots(1, 2)
    a0.plot(depth, [r["Cw"] for r in rows], "o-", label="C_w (channel)")
    a0.plot(depth, [r["Sw"] for r in rows], "s-", label="S_w (spatial)")
    a0.set_xlabel("CAT module (depth)")
    a0.set_ylabel("softmax weight")
    a0.set_title("Exterior colla-factors vs depth (cf. Fig 5)")
    a0.legend()
    inner = np.array([r["C_alpha_beta_gamma"] + r["S_alpha_beta_gamma"] for r in rows])
    for i, lab in enumerate(["Cα (GAP)", "Cβ (GMP)", "Cγ (GEP)", "Sα (GAP)", "Sβ (GMP)", "Sγ (GEP)"]):
        a1.plot(depth, inner[:, i], "-" if i < 3 else "--", label=lab)
    a1.set_xlabel("CAT module (depth)")
    a1.set_title("Interior colla-factors")
    a1.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    factors_png = out / "colla_factors.png"
    atomic_write(factors_png, lambda tmp: fig.savefig(tmp, dpi=110, format="png"))
    atomic_write(out / "colla_factors.json", lambda tmp: Path(tmp).write_text(json.dumps(rows, indent=1)))
    return [maps_png, factors_png, out / "colla_factors.json"]


def main(argv=None) -> int:
    return cli.run("cat_deploy.visualize", _main, argv)


def _main(argv) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--ckpt", required=True)
    p.add_argument("--image", required=True)
    p.add_argument("--out", default="runs/visualize")
    cli.add_debug_flag(p)
    a = p.parse_args(argv)
    try:
        files = render(a.ckpt, a.image, a.out)
    except (CheckpointError, ImageReadError, ValueError) as e:  # ValueError: also OutputPathError
        print(f"cat_deploy.visualize: error: {e}", file=sys.stderr)
        return cli.BAD_INPUT
    for f in files:
        print(f"wrote {f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
