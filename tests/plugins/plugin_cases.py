"""Cases of the interpreter kernel tests (no triton import: shared by the test and its subprocess)."""
import torch

# name: (shape, gmp_filter, dtype, scale, shift, taps kind, tiles)
CASES = {
    "paper_odd": ((2, 13, 9, 11), "paper", torch.float32, 1.0, 0.0, "gauss5", "small"),
    "2d_odd": ((1, 21, 7, 5), "2d", torch.float32, 1.0, 0.0, "gauss5", "small"),
    "none": ((2, 6, 6, 9), "none", torch.float32, 1.0, 0.0, "gauss5", "small"),
    "paper_wide": ((2, 19, 5, 36), "paper", torch.float32, 1.0, 0.0, "gauss5", "small"),
    "paper_1x1": ((2, 5, 1, 1), "paper", torch.float32, 1.0, 0.0, "gauss5", "small"),
    "paper_k3_random_taps": ((1, 10, 11, 6), "paper", torch.float32, 1.0, 0.0, "random3", "small"),
    "2d_k7": ((1, 7, 12, 13), "2d", torch.float32, 1.0, 0.0, "gauss7", "small"),
    "large_magnitude": ((2, 11, 9, 10), "paper", torch.float32, 300.0, 1e4, "gauss5", "small"),
    "large_logit_gaps": ((1, 9, 6, 7), "2d", torch.float32, 1e3, 0.0, "gauss5", "small"),
    "fp16": ((2, 12, 7, 9), "paper", torch.float16, 3.0, 0.0, "gauss5", "small"),
    "fp16_large": ((1, 8, 5, 6), "2d", torch.float16, 2e3, 0.0, "gauss5", "small"),
    "default_tiles": ((1, 20, 9, 70), "paper", torch.float32, 1.0, 0.0, "gauss5", "default"),
}


# --------------------------------------------------------------------------- per-element error bound
# An implementation that computes in FP32 and writes FP32 or FP16, compared with the float64 reference
# on the same input values, element by element: |out - ref| <= rtol * |ref| + floor. The floor is FP32's
# resolution of the quantity the statistic is computed from (not a fixed 1 nat): 32 unit roundoffs of
# mean |x| for GAP (a sum of n terms), of max |x| for GMP (a weighted sum of the window), and of 1 nat
# for GEP (log s with s >= 1 is resolved to about one roundoff, whatever H is). Measured for PyTorch's
# FP32 cat_pool on these cases: at most 9 roundoffs.
STATS = ("ch_avg", "ch_max", "ch_ent", "sp_avg", "sp_max", "sp_ent")
U32 = 2.0 ** -24
ROUNDOFFS = 32
RTOL = {"float32": ROUNDOFFS * U32, "float16": 2.0 ** -11 + ROUNDOFFS * U32}  # FP16 adds its output rounding


def error_ratios(out: tuple, ref: tuple, x64, out_dtype: str) -> list[float]:
    """Worst ``|out - ref| / (rtol * |ref| + floor)`` per statistic (<= 1 passes): channel avg, max, entropy
    [B, 3, C] then spatial avg, max, entropy [B, 3, H, W]; ``x64`` the input [B, C, H, W] as float64.

    Non-finite outputs give ``inf``.
    """
    import numpy as np

    ax = abs(x64)
    scales = [(ax.mean(axis=(2, 3)), ax.max(axis=(2, 3))), (ax.mean(axis=1), ax.max(axis=1))]
    ratios = []
    for (o, r), (mean_abs, max_abs) in zip(zip(out, ref), scales):
        o, r = np.asarray(o, dtype=np.float64), np.asarray(r, dtype=np.float64)
        for i, scale in enumerate((mean_abs, max_abs, np.ones_like(mean_abs))):
            bound = RTOL[out_dtype] * np.abs(r[:, i]) + ROUNDOFFS * U32 * scale
            err = np.abs(o[:, i] - r[:, i])
            ratios.append(float(np.max(np.where(np.isfinite(err), err / bound, np.inf))))
    return ratios


def max_rel_errors(out: tuple, ref: tuple) -> list[float]:
    """Per statistic, the worst per-element relative error ``|out - ref| / |ref|`` (for reports)."""
    import numpy as np

    res = []
    for o, r in zip(out, ref):
        o, r = np.asarray(o, dtype=np.float64), np.asarray(r, dtype=np.float64)
        for i in range(3):
            with np.errstate(divide="ignore", invalid="ignore"):
                rel = np.abs(o[:, i] - r[:, i]) / np.abs(r[:, i])
            res.append(float(np.nanmax(np.where(r[:, i] == 0, np.abs(o[:, i]), rel))))
    return res
