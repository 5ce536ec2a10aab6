"""The small set of exceptions gkaan raises on bad input.

The CLI catches :class:`GkaanError` once and prints ``str(error)`` as a single line;
library callers get the typed exception. Every message names the file and the reason.
"""

from __future__ import annotations

from pathlib import Path

__all__ = [
    "BadCheckpointError",
    "BadVideoError",
    "GkaanError",
    "HubError",
    "MissingDependencyError",
    "MissingWeightsError",
    "UsageError",
]


class GkaanError(Exception):
    """Base class: an error caused by input, shown to users as one line."""


class BadVideoError(GkaanError):
    """A video file that cannot be used (missing, not decodable, no video stream...)."""

    def __init__(self, path: str | Path, reason: str) -> None:
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


class BadCheckpointError(GkaanError):
    """A checkpoint that is refused (pickle file, missing/extra tensors, invalid config)."""

    def __init__(self, path: str | Path, reason: str) -> None:
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


class MissingWeightsError(GkaanError):
    """Pretrained weights were asked for but are not available offline."""


class MissingDependencyError(GkaanError):
    """An optional package is needed for this feature."""


class HubError(GkaanError):
    """The Hugging Face Hub could not be reached or refused the request."""


class UsageError(GkaanError):
    """Arguments that do not make sense together (CLI exit code 2)."""
