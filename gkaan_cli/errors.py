"""The small set of exceptions gkaan raises on bad input.

The CLI catches :class:`GkaanError` once and prints ``str(error)`` as a single line;
library callers get the typed exception. Every message names the file and the reason.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pydantic import ValidationError

__all__ = [
    "PICKLE_REASON",
    "PICKLE_SUFFIXES",
    "BadCheckpointError",
    "BadDataError",
    "BadVideoError",
    "GkaanError",
    "HubError",
    "MissingDependencyError",
    "MissingWeightsError",
    "OutputError",
    "TrainingError",
    "UnknownModelError",
    "UsageError",
    "validation_problems",
]


#: Suffixes of pickle-based weight files, which gkaan never loads (unpickling runs code).
PICKLE_SUFFIXES = frozenset({".pt", ".pth", ".pkl", ".pickle", ".bin", ".ckpt"})
#: The one reason given wherever a pickle file is refused as a checkpoint.
PICKLE_REASON = (
    "pickle files are refused because loading them can execute arbitrary code; "
    "convert it to a checkpoint directory (config.json + model.safetensors)"
)


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


class BadDataError(GkaanError):
    """Prepared data (manifest, frame or feature shard) that is corrupt or does not fit the
    model; the message names the file and says to run ``gkaan prepare`` again."""

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


class OutputError(GkaanError):
    """A place gkaan cannot write to (read-only folder, full disk, a folder in the way...)."""

    def __init__(self, path: str | Path, reason: str) -> None:
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


class TrainingError(GkaanError):
    """A training run that cannot go on (e.g. its loss became NaN or infinite)."""


class UsageError(GkaanError):
    """Arguments that do not make sense together (CLI exit code 2)."""


class UnknownModelError(BadCheckpointError, UsageError):
    """A model spec that names no folder, registered model or Hub id (a usage error, exit 2)."""


def validation_problems(error: ValidationError, *, whole: str = "config") -> str:
    """A pydantic error as one line: ``field.sub: message; ...`` (``whole`` names the
    problems of the object itself, which have no field).

    Args:
        error: the error pydantic raised.
        whole: the name shown for problems of the whole object.
    """
    return "; ".join(
        f"{'.'.join(map(str, problem['loc'])) or whole}: {problem['msg']}"
        for problem in error.errors()
    )
