"""Where a command may write: never onto one of its inputs, never into a folder that holds them.

Every command checks its output paths before it starts work (standard library only, so
the deployment runtime can use it): the output folder must be a folder it can create
and write (:func:`output_dir`), a single output file must not be a folder
(:func:`output_file`), and no output may be an input (:func:`refuse_inputs`). Paths
are compared after resolving links, so ``data/../data/x.jpg`` and a symlinked folder
are recognised as the same file.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Iterable, Optional

__all__ = ["OutputPathError", "output_dir", "output_file", "refuse_inputs", "resolved", "is_within"]


class OutputPathError(ValueError):
    """An output path cannot be used; ``str()`` is one line naming the flag, the path and what to do."""


def resolved(path: str | os.PathLike) -> Path:
    """``path`` absolute with links and ``..`` resolved (works for paths that do not exist yet)."""
    return Path(os.path.realpath(os.fspath(path)))


def is_within(path: str | os.PathLike, folder: str | os.PathLike) -> bool:
    """True when ``path`` is ``folder`` or lies anywhere below it (both resolved)."""
    p, f = resolved(path), resolved(folder)
    return p == f or f in p.parents


def output_dir(path: str | os.PathLike, flag: str = "--out") -> Path:
    """Create the output folder ``path`` (with parents) and prove that files can be written in it.

    Raises :class:`OutputPathError` when ``path`` is an existing file, cannot be created, or is
    read-only, before any work is done.
    """
    p = Path(path)
    if p.exists() and not p.is_dir():
        raise OutputPathError(f"{flag} '{p}' is an existing file, not a folder: pass a folder path for the outputs")
    try:
        p.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        what = "a part of it is a file" if isinstance(e, (FileExistsError, NotADirectoryError)) else e.strerror
        raise OutputPathError(f"{flag} '{p}' cannot be created ({what}): pass a folder you can write to") from None
    try:
        fd, probe = tempfile.mkstemp(prefix=".write-test-", dir=p)
        os.close(fd)
        os.unlink(probe)
    except OSError as e:
        raise OutputPathError(f"{flag} '{p}' is not writable ({e.strerror}): pass a folder you can write to") from None
    return p


def output_file(path: str | os.PathLike, flag: str, inputs: Iterable[Optional[str | os.PathLike]] = ()) -> Path:
    """Check one output file: not a folder, not one of ``inputs``, in a folder that can be written."""
    p = Path(path)
    if p.is_dir():
        raise OutputPathError(f"{flag} '{p}' is a folder: pass a file path, e.g. {p / 'report.json'}")
    refuse_inputs([p], inputs, flag)
    output_dir(p.parent if str(p.parent) else ".", flag)
    return p


def refuse_inputs(outputs: Iterable[str | os.PathLike], inputs: Iterable[Optional[str | os.PathLike]],
                  flag: str = "--out", what: str = "input") -> None:
    """Raise :class:`OutputPathError` when one of ``outputs`` is one of ``inputs`` (``None`` inputs ignored);
    ``what`` names the inputs in the message."""
    given = {resolved(i): Path(i) for i in inputs if i is not None and str(i)}
    for out in outputs:
        hit = given.get(resolved(out))
        if hit is None and Path(out).exists():  # hard links: another name for the same file
            hit = next((g for r, g in given.items() if r.exists() and os.path.samefile(r, out)), None)
        if hit is not None:
            raise OutputPathError(f"{flag}: writing '{out}' would replace the {what} '{hit}': "
                                  "choose another output folder or name")
