"""Error types shared across the pipeline.

Each carries one line for people: what was wrong, with which file, and what to do.
They live at the bottom so any layer can raise or catch them without importing another.
"""
from __future__ import annotations

__all__ = ["BackendUnavailable", "CheckpointError", "MissingDependency", "PluginUnavailable", "SidecarError"]


class CheckpointError(ValueError):
    """A checkpoint could not be read; the message names the file and what to do."""


class SidecarError(ValueError):
    """An artefact's sidecar JSON is missing, unreadable, edited into nonsense or from a newer cat-deploy."""


class BackendUnavailable(RuntimeError):
    """A backend's library or device is missing; the message says what to install or use instead."""


class MissingDependency(BackendUnavailable, ImportError):
    """An optional dependency is not installed; the message names the extra to install.

    Also an :class:`ImportError`, so ``except ImportError`` keeps its usual meaning.
    """


class PluginUnavailable(MissingDependency):
    """The fused pooling operator cannot be used here; the message says what to install or use instead."""
