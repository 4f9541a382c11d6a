"""Atomic file writes: a file is either the old one or the complete new one, never half of one."""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any, Callable, Optional

__all__ = ["atomic_write", "write_json"]


def atomic_write(path: str | os.PathLike, write: Callable[[str], Any]) -> Path:
    """Call ``write(tmp_path)`` and move the result onto ``path`` only once complete.

    The temporary file sits in the same folder (so the move is atomic) and gets the
    permissions a plain ``open()`` would give. If ``write`` raises, ``path`` is untouched.

    Example:
        >>> atomic_write("out/model.onnx", lambda tmp: onnx.save(model, tmp))
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp creates 0600; give the file the permissions open() would
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def write_json(path: str | os.PathLike, obj: Any, indent: Optional[int] = None, default=None) -> Path:
    """``json.dump(obj)`` to ``path`` through :func:`atomic_write`."""
    def write(tmp: str) -> None:
        with open(tmp, "w") as f:
            json.dump(obj, f, indent=indent, default=default)

    return atomic_write(path, write)
