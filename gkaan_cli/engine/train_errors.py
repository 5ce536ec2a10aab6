"""Why ``train`` refuses or stops a run, as data: each error keeps what went wrong in fields,
and its message speaks of ``train``'s arguments and settings (``resume=True``, ``epochs``,
``amp``). The command line words them again with its own flag names (commands/train.py).

Each is a :class:`~gkaan_cli.errors.UsageError` (CLI exit code 2) or, for a run that cannot
go on, a :class:`~gkaan_cli.errors.TrainingError` (exit 1).
"""

from __future__ import annotations

import json
from pathlib import Path

from ..config import SamplingConfig
from ..errors import TrainingError, UsageError

__all__ = [
    "FeatureMapsMismatchError",
    "LossNotFiniteError",
    "NothingToResumeError",
    "PrecisionDeviceError",
    "ResumeChangedError",
    "ResumeEpochsError",
    "RunExistsError",
    "SamplingMismatchError",
    "sampling_config_json",
]


def sampling_config_json(sampling: SamplingConfig) -> str:
    """A train config file's text that sets only the model's ``sampling``."""
    return json.dumps({"model": {"sampling": sampling.model_dump()}})


class RunExistsError(UsageError):
    """``out`` already holds a run and it was not asked to resume."""

    def __init__(self, out: Path) -> None:
        self.out = out
        super().__init__(
            f"{out}: already holds a run; resume it (resume=True), or train into another folder"
        )


class NothingToResumeError(UsageError):
    """A resume was asked for, but ``path`` (the run's state or config) does not exist."""

    def __init__(self, path: Path) -> None:
        self.path = path
        super().__init__(f"{path}: not found; nothing to resume (train without resume)")


class ResumeChangedError(UsageError):
    """A resume of the run in ``out`` with ``changed`` settings (TrainConfig field names);
    only the ``resumable`` ones may change."""

    def __init__(self, out: Path, changed: tuple[str, ...], resumable: tuple[str, ...]) -> None:
        self.out, self.changed, self.resumable = out, changed, resumable
        super().__init__(
            f"{out}: cannot resume with changed settings ({', '.join(changed)}); only "
            f"{', '.join(resumable)} may change"
        )


class ResumeEpochsError(UsageError):
    """A resume whose ``epochs`` are not above the ``done`` epochs of the run in ``out``."""

    def __init__(self, out: Path, done: int, epochs: int) -> None:
        self.out, self.done, self.epochs = out, done, epochs
        if epochs < done:
            message = f"{out}: already trained {done} epochs; epochs={epochs} is fewer"
        else:
            message = (
                f"{out}: the run already finished {done} of {epochs} epochs; to train further, "
                f"resume with epochs above {done}"
            )
        super().__init__(message)


class PrecisionDeviceError(UsageError):
    """Autocast precision ``amp`` that the run's ``device`` (a type: ``cpu``, ``mps``) lacks."""

    def __init__(self, amp: str, device: str) -> None:
        self.amp, self.device = amp, device
        super().__init__(
            f"{amp} training (amp: {amp}) needs a CUDA device; use amp bf16 or none on {device}"
        )


class SamplingMismatchError(UsageError):
    """The prepared ``data`` lacks frames the run's sampling needs (``video`` is one).

    Attributes:
        data: the prepared directory.
        prepared: the sampling it was prepared for; wanted: the run's.
        video: the id of a video that lacks frames.
    """

    def __init__(
        self, data: Path, prepared: SamplingConfig, wanted: SamplingConfig, video: str
    ) -> None:
        self.data, self.prepared, self.wanted, self.video = data, prepared, wanted, video
        super().__init__(
            f"{data}: prepared for {prepared.describe()} sampling; this run samples "
            f"{wanted.describe()} and {video} lacks its frames: prepare it for this sampling "
            "(or train from the video folder), or train as prepared with a config holding "
            + sampling_config_json(prepared)
        )


class FeatureMapsMismatchError(UsageError):
    """Frozen-trunk training on prepared ``data`` without the conv maps it needs.

    Attributes:
        data: the prepared directory.
        backbone: the run's trunk.
        weights: the run's trunk weights, in words (``ImageNet``, a path).
        cached: the weights of the trunk whose maps ``data`` holds, in words; ``None``
            when it holds no maps of pretrained ``backbone``. The same words as ``weights``:
            the weights they name have changed since the maps were cached.
    """

    def __init__(self, data: Path, backbone: str, weights: str, cached: str | None) -> None:
        self.data, self.backbone, self.weights, self.cached = data, backbone, weights, cached
        if cached is None:
            message = (
                f"{data}: frozen-backbone training needs the conv maps of pretrained {backbone}; "
                f"prepare it with {backbone} features (or train from the video folder)"
            )
        elif cached == weights:
            message = (
                f"{data}: holds {backbone} maps of {cached} weights, which have changed since: "
                "prepare it again, or train from the video folder"
            )
        else:
            message = (
                f"{data}: holds {backbone} maps of {cached} weights, but this run's trunk is "
                f"{weights}: prepare it with {backbone} features of {weights} weights, or "
                "train from the video folder"
            )
        super().__init__(message)


class LossNotFiniteError(TrainingError):
    """The loss became NaN or infinite; the run stopped, its checkpoints keep ``kept``
    finished epochs (0: none).

    Attributes:
        out: the run folder; value: the loss; epoch, batch: where (1-based).
    """

    def __init__(self, out: Path, value: float, epoch: int, batch: int, kept: int) -> None:
        self.out, self.value, self.epoch, self.batch, self.kept = out, value, epoch, batch, kept
        super().__init__(
            f"{out}: the loss became {value} at epoch {epoch}, batch {batch}; training "
            f"stopped, {self.checkpoints()} (try a lower learning rate, or amp none)"
        )

    def checkpoints(self) -> str:
        """What the run's checkpoints hold now, in words."""
        kept = f"epoch {self.kept}" if self.kept else "nothing (no epoch finished)"
        return f"last/ and best/ keep {kept}"
