"""Parity of an exported artefact against its checkpoint (what ``export.py --validate`` runs).

    python -m cat_deploy.validate --ckpt model.pth --artefact out/cat.onnx [--per-module]

Exit status: 0 passed, 1 failed (report printed), 2 bad input, 3 missing backend,
4 internal error, 130 interrupted. ``--json`` must not name an input (checkpoint, artefact,
sidecar) or a folder; it is written atomically.
"""
import argparse
import json
import sys
from pathlib import Path

from .. import cli
from ..checkpoint import load_model
from ..core.errors import BackendUnavailable, CheckpointError, SidecarError
from ..core.files import atomic_write
from ..core.sidecar import read_sidecar, sidecar_path
from ..paths import output_file
from .check import DEFAULT_SAMPLES, validate_artefact
from .parity import summarize

PROG = "cat_deploy.validate"


def main(argv=None) -> int:
    return cli.run(PROG, _main, argv)


def _main(argv) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--ckpt", required=True)
    p.add_argument("--artefact", required=True, help=".onnx, .engine or .plan written by export.py")
    p.add_argument("--samples", help="image folder (default: assets/samples when present)")
    p.add_argument("--val-images", type=int, default=50, help="synthetic scenes for detector mAP (0 to skip)")
    p.add_argument("--per-module", action="store_true")
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    p.add_argument("--json", help="also write the report to this file")
    cli.add_debug_flag(p)
    a = p.parse_args(argv)
    try:
        if a.samples and not Path(a.samples).is_dir():
            raise ValueError(f"--samples '{a.samples}' is not a folder: pass a folder of images, or leave the flag "
                             "out to use assets/samples")
        if a.json:
            output_file(a.json, "--json", [a.ckpt, a.artefact, sidecar_path(a.artefact)])
        model = load_model(a.ckpt)
        sidecar = read_sidecar(a.artefact)
        report = validate_artefact(model, a.artefact, sidecar, a.samples or (DEFAULT_SAMPLES if DEFAULT_SAMPLES.is_dir()
                                   else None), a.val_images, a.per_module, a.device)
    except (CheckpointError, SidecarError, ValueError) as e:
        print(f"{PROG}: error: {e}", file=sys.stderr)
        return cli.BAD_INPUT
    except BackendUnavailable as e:
        print(f"{PROG}: error: {e}", file=sys.stderr)
        return cli.MISSING_DEPENDENCY
    for line in summarize(report):
        print(line)
    if a.json:
        atomic_write(a.json, lambda tmp: Path(tmp).write_text(json.dumps(report, indent=2)))
    print("parity: PASSED" if report["passed"] else "parity: FAILED")
    return cli.OK if report["passed"] else cli.CHECK_FAILED


if __name__ == "__main__":
    sys.exit(main())
