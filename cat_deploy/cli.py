"""Exit codes and the one top-level handler every command (export.py, infer.py, train.py,
``python -m cat_deploy.validate|visualize|bench``) runs under.

=====  ==========================================================================
code   meaning
=====  ==========================================================================
0      done
1      a check failed (parity of an artefact against PyTorch); files are kept
2      bad input: a path, a flag, a file's content; the message says what to do
3      a dependency or backend is missing (TensorRT, ModelOpt, PyAV, a GPU ...)
4      internal error: a bug; one line, rerun with ``--debug`` for the traceback
130    interrupted (Ctrl-C); what was finished is kept, a rerun resumes
=====  ==========================================================================

Each command catches the errors it expects (they carry their own one-line message
and code); :func:`run` turns anything else into one line and a distinct code, so a
crash never reads as "parity failed".
"""
from __future__ import annotations

import argparse
import errno
import sys
from typing import Callable, Optional, Sequence

__all__ = ["OK", "CHECK_FAILED", "BAD_INPUT", "MISSING_DEPENDENCY", "INTERNAL_ERROR", "INTERRUPTED",
           "add_debug_flag", "run"]

OK, CHECK_FAILED, BAD_INPUT, MISSING_DEPENDENCY, INTERNAL_ERROR, INTERRUPTED = 0, 1, 2, 3, 4, 130

_PIP_NAMES = {"tensorrt": "tensorrt", "cuda": "cuda-python", "modelopt": "nvidia-modelopt[onnx]", "av": "av",
              "cv2": "opencv-python-headless", "onnxruntime": "onnxruntime-gpu", "onnxruntime_extensions":
              "onnxruntime-extensions", "triton": "triton", "matplotlib": "matplotlib", "PIL": "pillow"}


def add_debug_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--debug", action="store_true",
                        help="on an unexpected error, show the full traceback instead of one line")


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return (text.splitlines()[0] if text else type(e).__name__)[:300]


_ENVIRONMENT_ERRNOS = (errno.ENOSPC, errno.EACCES, errno.EROFS, errno.EDQUOT, errno.EPERM)


def _missing(e: ImportError) -> str:
    name = (e.name or "").split(".")[0]
    hint = f": pip install {_PIP_NAMES.get(name, name)}" if name else ""
    return f"missing dependency ({_first_line(e)}){hint}"


def _classify(e: Exception) -> tuple[int, str]:
    """Exit code and the one line for an exception no command expected."""
    if isinstance(e, ImportError):
        return MISSING_DEPENDENCY, f"error: {_missing(e)}"
    if isinstance(e, OSError) and e.errno in _ENVIRONMENT_ERRNOS:  # a full disk or a permission is not a bug
        where = f" '{e.filename}'" if e.filename else ""
        return BAD_INPUT, f"error: {e.strerror}{where}: free space or fix the permissions, then rerun"
    if isinstance(e, MemoryError):
        return INTERNAL_ERROR, "error: out of memory: use smaller inputs or a smaller --batch"
    return INTERNAL_ERROR, f"internal error: {type(e).__name__}: {_first_line(e)} (rerun with --debug for the trace)"


def run(prog: str, main: Callable[[Sequence[str]], Optional[int]], argv: Optional[Sequence[str]] = None) -> int:
    """Call ``main(argv)`` and return its exit code; unexpected exceptions become one line on stderr.

    ``--debug`` in ``argv`` re-raises them instead, with the full traceback. ``SystemExit``
    (argparse: 0 for ``--help``, 2 for a bad flag) passes through.

    Example::

        def main(argv=None) -> int:
            return cli.run("infer.py", _main, argv)
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        return int(main(argv) or 0)
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return INTERRUPTED
    except Exception as e:  # the one place that catches everything: a bug gets one line and its own code
        if "--debug" in argv:
            raise
        code, line = _classify(e)
        print(f"{prog}: {line}", file=sys.stderr)
        return code
