"""Command-line argument types shared by the CLIs (export.py, train.py, ``python -m cat_deploy.bench``).

Imports nothing of cat-deploy, so any layer's command line can use it.
"""
from __future__ import annotations

import argparse

__all__ = ["add_imgsz_argument"]


class _ImageSize(argparse.Action):
    """One value (a square, as ``yolo export imgsz=640``) or two (H W) -> ``(h, w)``."""

    def __call__(self, parser, namespace, values, option_string=None):
        if len(values) not in (1, 2):
            parser.error(f"argument {option_string}: give one size (a square) or two (H W), got {len(values)} values")
        if min(values) < 1:
            parser.error(f"argument {option_string}: sizes must be positive, got {' '.join(map(str, values))}")
        setattr(namespace, self.dest, (values[0], values[-1]))


def add_imgsz_argument(parser: argparse.ArgumentParser, flag: str = "--imgsz", help: str = "input size") -> None:
    """Add ``flag`` taking ``SIZE`` or ``H W``; the parsed value is ``(h, w)`` or None when absent.

    Example:
        >>> add_imgsz_argument(p, "--imgsz", "input size (default: the model's)")
        >>> p.parse_args(["--imgsz", "224"]).imgsz
        (224, 224)
    """
    parser.add_argument(flag, type=int, nargs="+", action=_ImageSize, metavar="SIZE",
                        help=f"{help}; one value for a square, two for H W")
