"""Runs the Triton kernels under TRITON_INTERPRET=1 on the CPU and prints their errors as JSON.

Run in a subprocess by ``test_plugin_kernel.py``: the interpreter has to be selected before
``triton`` is imported, which must not leak into the other tests' process.
Each case is compared element by element with the independent float64 reference
``tests/cat_reference.py::cat_pool_ref`` (numpy, from docs/cat_spec.md) on the same input values:
per statistic the worst ratio of the error to its bound (``plugin_cases.error_ratios``) and the
worst relative error.
"""
import json
import os
import sys
import warnings
from pathlib import Path

os.environ["TRITON_INTERPRET"] = "1"
HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parents[1]), str(HERE), str(HERE.parent)]
warnings.filterwarnings("ignore")

import numpy as np  # noqa: E402
import torch  # noqa: E402

from cat_deploy.layers.pooling import gaussian_kernel1d  # noqa: E402
from cat_deploy.plugins.cat_pool_triton import PluginConfig, TileConfig, cat_pool_fused, cat_pool_single  # noqa: E402
from cat_reference import cat_pool_ref  # noqa: E402
from plugin_cases import CASES, error_ratios, max_rel_errors  # noqa: E402

np.seterr(all="ignore")

# Small tiles so the tiny maps still span several tiles, channel chunks and channel groups.
SMALL_TILES = TileConfig(block_c=4, th=4, tw=16, min_programs=8, min_group_channels=4)
SMALL_PLUGIN = PluginConfig(block_c=4, th=2, tw=16, ch_block_c=4, ch_th=4, ch_tw=16)


def taps_for(kind: str, C: int, gen: torch.Generator) -> torch.Tensor:
    if kind.startswith("gauss"):
        return gaussian_kernel1d(int(kind[5:])).float().expand(C, -1).contiguous()
    k = int(kind[6:])
    t = torch.rand(C, k, generator=gen, dtype=torch.float64) + 0.1
    return (t / t.sum(1, keepdim=True)).float()


def run(names) -> dict:
    results = {}
    for name in names:
        shape, filt, dtype, scale, shift, kind, tiles = CASES[name]
        gen = torch.Generator().manual_seed(sum(map(ord, name)))
        x = (torch.randn(shape, generator=gen, dtype=torch.float64) * scale + shift).to(dtype)
        taps = taps_for(kind, shape[1], gen)
        x64 = x.double().numpy()
        ref = cat_pool_ref(x64, filt, taps=taps.double().numpy())
        res = {}
        for plan, fn, cfg in (("fused", cat_pool_fused, SMALL_TILES), ("single", cat_pool_single, SMALL_PLUGIN)):
            if tiles == "default":
                cfg = type(cfg)()
            c, s = fn(x, taps, filt, cfg)
            out = (c.double().numpy(), s.double().numpy())
            res[plan] = {"dtype": str(c.dtype), "shapes": [list(c.shape), list(s.shape)],
                         "ratios": error_ratios(out, ref, x64, str(c.dtype).replace("torch.", "")),
                         "max_rel": max_rel_errors(out, ref),
                         "finite": bool(torch.isfinite(c).all() and torch.isfinite(s).all())}
        results[name] = res
    return results


if __name__ == "__main__":
    names = sys.argv[1:] or list(CASES)
    print(json.dumps(run(names)))
