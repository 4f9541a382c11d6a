"""Parity of an exported artefact against its checkpoint (what ``export.py --validate`` runs).

    python -m cat_deploy.validate --ckpt model.pth --artefact out/cat.onnx [--per-module]

Exit status: 0 passed, 1 failed (report printed), 2 bad input.
"""
import argparse
import json
import sys

from ..checkpoint import load_model
from ..core.errors import BackendUnavailable, CheckpointError, SidecarError
from ..core.sidecar import read_sidecar
from .check import DEFAULT_SAMPLES, validate_artefact
from .parity import summarize


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--ckpt", required=True)
    p.add_argument("--artefact", required=True, help=".onnx, .engine or .plan written by export.py")
    p.add_argument("--samples", help="image folder (default: assets/samples when present)")
    p.add_argument("--val-images", type=int, default=50, help="synthetic scenes for detector mAP (0 to skip)")
    p.add_argument("--per-module", action="store_true")
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    p.add_argument("--json", help="also write the report to this file")
    a = p.parse_args(argv)
    try:
        model = load_model(a.ckpt)
        sidecar = read_sidecar(a.artefact)
        report = validate_artefact(model, a.artefact, sidecar, a.samples or (DEFAULT_SAMPLES if DEFAULT_SAMPLES.is_dir()
                                   else None), a.val_images, a.per_module, a.device)
    except (CheckpointError, SidecarError, BackendUnavailable, ValueError) as e:
        print(f"cat_deploy.validate: error: {e}", file=sys.stderr)
        return 2
    for line in summarize(report):
        print(line)
    if a.json:
        with open(a.json, "w") as f:
            json.dump(report, f, indent=2)
    print("parity: PASSED" if report["passed"] else "parity: FAILED")
    return 0 if report["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
