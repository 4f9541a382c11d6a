"""Numerical parity of an exported artefact against PyTorch.

Per output: max absolute and relative error, mean absolute error, cosine
similarity, NaN/Inf counts on both sides, and the fraction of elements outside
``atol * max|ref| + rtol * |ref|``. For detectors also: detection agreement (detections
matched at IoU >= 0.9 with the same class, both ways) and score drift. Thresholds
depend on the precision (``TOLERANCES``, documented in ``docs/parity.md``).
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Sequence

import numpy as np
import torch
from torchvision.ops import box_iou

__all__ = ["Tolerance", "TOLERANCES", "compare_outputs", "match_detections", "summarize"]


@dataclass(frozen=True)
class Tolerance:
    atol: float
    rtol: float
    min_cosine: float
    max_outside: float  # fraction of elements allowed outside atol + rtol*|ref|
    min_agreement: float  # detection agreement (both ways)
    max_score_drift: float
    max_map_drop: float  # mAP@0.5 of artefact below PyTorch's


TOLERANCES = {
    "fp32": Tolerance(atol=1e-3, rtol=1e-3, min_cosine=0.99999, max_outside=0.0, min_agreement=0.99,
                      max_score_drift=1e-3, max_map_drop=0.005),
    "fp16": Tolerance(atol=2e-2, rtol=2e-2, min_cosine=0.999, max_outside=1e-3, min_agreement=0.95,
                      max_score_drift=2e-2, max_map_drop=0.02),
    "int8": Tolerance(atol=math.inf, rtol=math.inf, min_cosine=0.98, max_outside=1.0, min_agreement=0.8,
                      max_score_drift=0.1, max_map_drop=0.02),
}


def _stats(ref: np.ndarray, out: np.ndarray, tol: Tolerance) -> dict[str, Any]:
    ref64 = np.asarray(ref, dtype=np.float64)
    out64 = np.asarray(out, dtype=np.float64)
    s: dict[str, Any] = {
        "shape": list(out64.shape),
        "nan_ref": int(np.isnan(ref64).sum()), "inf_ref": int(np.isinf(ref64).sum()),
        "nan_out": int(np.isnan(out64).sum()), "inf_out": int(np.isinf(out64).sum()),
    }
    if ref64.shape != out64.shape:
        return {**s, "passed": False, "reason": f"shape {list(out64.shape)} != reference {list(ref64.shape)}"}
    finite = np.isfinite(ref64) & np.isfinite(out64)
    diff = np.abs(out64 - ref64)[finite]
    r = np.abs(ref64[finite])
    s["max_abs"] = float(diff.max()) if diff.size else 0.0
    s["mean_abs"] = float(diff.mean()) if diff.size else 0.0
    s["max_rel"] = float((diff / np.maximum(r, 1e-6)).max()) if diff.size else 0.0
    a, b = out64[finite].ravel(), ref64[finite].ravel()
    na, nb = np.linalg.norm(a), np.linalg.norm(b)
    s["cosine"] = (float(a @ b / (na * nb)) if na > 0 and nb > 0 else float(na == nb)) if a.size else float("nan")
    scale = max(float(r.max()), 1e-12) if r.size else 1.0  # atol is relative to the output's range
    outside = (diff > tol.atol * scale + tol.rtol * r).sum() if diff.size else 0
    s["outside_frac"] = float(outside / max(1, ref64.size))
    reasons = []
    new_nonfinite = int((~np.isfinite(out64) & np.isfinite(ref64)).sum())  # by position, not by count
    if new_nonfinite:
        reasons.append(f"NaN/Inf in the artefact's output where PyTorch's is finite ({new_nonfinite} elements)")
    if not finite.any():
        reasons.append("no finite values to compare (cosine and errors over an empty set prove nothing)")
    if s["cosine"] < tol.min_cosine:
        reasons.append(f"cosine {s['cosine']:.6f} < {tol.min_cosine}")
    if s["outside_frac"] > tol.max_outside:
        reasons.append(f"{s['outside_frac']:.2e} of elements outside atol={tol.atol:g}*max|ref|+rtol={tol.rtol:g}*|ref|")
    s["passed"] = not reasons
    if reasons:
        s["reason"] = "; ".join(reasons)
    return s


def compare_outputs(ref: dict[str, np.ndarray], out: dict[str, np.ndarray], tol: Tolerance,
                    names: Sequence[str] | None = None) -> dict[str, dict[str, Any]]:
    """Per-output statistics of ``out`` against ``ref`` for the outputs in ``names`` (default: all of ref)."""
    return {n: _stats(ref[n], out[n], tol) for n in (names or ref.keys())}


def match_detections(ref: Sequence[dict], out: Sequence[dict], iou: float = 0.9) -> dict[str, float]:
    """Greedy same-class matching at IoU >= ``iou`` over images; dicts of boxes/scores/labels (numpy).

    Returns ``agreement_ref`` (matched fraction of PyTorch's detections), ``agreement_out``
    (of the artefact's), ``max_score_drift`` and ``mean_score_drift`` over matches, and counts.
    """
    n_ref = n_out = matched = 0
    drifts: list[float] = []
    for r, o in zip(ref, out):
        rb, ob = np.asarray(r["boxes"], float).reshape(-1, 4), np.asarray(o["boxes"], float).reshape(-1, 4)
        rs, os_ = np.asarray(r["scores"], float), np.asarray(o["scores"], float)
        rl, ol = np.asarray(r["labels"]), np.asarray(o["labels"])
        n_ref += len(rb)
        n_out += len(ob)
        ious = np.nan_to_num(box_iou(torch.from_numpy(rb), torch.from_numpy(ob)).numpy())  # 0/0 for empty boxes
        ious[rl[:, None] != ol[None, :]] = 0
        used = np.zeros(len(ob), bool)
        for i in np.argsort(-rs):
            if len(ob) == 0:
                break
            cand = np.where(~used & (ious[i] >= iou))[0]
            if len(cand):
                j = cand[np.argmax(ious[i, cand])]
                used[j] = True
                matched += 1
                drifts.append(abs(rs[i] - os_[j]))
    return {
        "detections_ref": n_ref, "detections_out": n_out, "matched": matched,
        "agreement_ref": matched / n_ref if n_ref else 1.0,
        "agreement_out": matched / n_out if n_out else 1.0,
        "max_score_drift": float(max(drifts)) if drifts else 0.0,
        "mean_score_drift": float(np.mean(drifts)) if drifts else 0.0,
    }


def detection_verdict(agreement: dict[str, float], tol: Tolerance) -> dict[str, Any]:
    reasons = []
    low = min(agreement["agreement_ref"], agreement["agreement_out"])
    if low < tol.min_agreement:
        reasons.append(f"detection agreement {low:.4f} < {tol.min_agreement}")
    if agreement["max_score_drift"] > tol.max_score_drift:
        reasons.append(f"score drift {agreement['max_score_drift']:.2e} > {tol.max_score_drift:g}")
    return {**agreement, "passed": not reasons, **({"reason": "; ".join(reasons)} if reasons else {})}


def summarize(report: dict[str, Any]) -> list[str]:
    """Human-readable lines for a parity report (what export.py prints)."""
    lines = []
    for case in report.get("cases", []):
        for name, s in case["outputs"].items():
            verdict = "ok  " if s["passed"] else "FAIL"
            lines.append(
                f"{verdict} {case['name']:<24} {name:<12} max_abs={s.get('max_abs', float('nan')):.2e} "
                f"max_rel={s.get('max_rel', float('nan')):.2e} cos={s.get('cosine', float('nan')):.7f} "
                f"nan/inf={s['nan_out']}/{s['inf_out']}" + (f"  ({s['reason']})" if not s["passed"] else ""))
    det = report.get("detections")
    if det:
        verdict = "ok  " if det["passed"] else "FAIL"
        lines.append(f"{verdict} detections: agreement {det['agreement_ref']:.4f}/{det['agreement_out']:.4f} "
                     f"(of {det['detections_ref']}/{det['detections_out']}), max score drift "
                     f"{det['max_score_drift']:.2e}" + (f"  ({det['reason']})" if not det["passed"] else ""))
    acc = report.get("accuracy")
    if acc:
        verdict = "ok  " if acc["passed"] else "FAIL"
        lines.append(f"{verdict} mAP@0.5 on {acc['images']} synthetic val scenes: pytorch {acc['map50_ref']:.4f}, "
                     f"artefact {acc['map50_out']:.4f}" + (f"  ({acc['reason']})" if not acc["passed"] else ""))
    return lines


def tolerance_dict(precision: str) -> dict[str, float]:
    return asdict(TOLERANCES[precision])
