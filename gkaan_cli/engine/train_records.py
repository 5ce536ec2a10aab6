"""A training run's records: what each epoch measured (:class:`EpochRecord`), and the sums
one epoch adds up batch by batch (:class:`BatchSums`).

An epoch record is written as one line of ``metrics.jsonl`` and kept in ``state.pt``'s
history as plain values (``torch.load(weights_only=True)`` reads them). Both go through
:meth:`EpochRecord.to_json` and come back through :meth:`EpochRecord.from_json`, so a run
folder written by an earlier gkaan resumes and reports unchanged.
"""

from __future__ import annotations

from dataclasses import asdict, astuple, dataclass, fields
from typing import Any

__all__ = ["BatchSums", "EpochDone", "EpochRecord", "EpochTime", "EvalScores", "TrainScores"]


@dataclass
class BatchSums:
    """What one process adds up over an epoch's batches: each loss term times the batch's
    clips, the clips predicted right, the clips seen. ``+=`` adds another batch's sums."""

    loss: float = 0.0
    nll: float = 0.0
    ga_sa: float = 0.0
    ga_la: float = 0.0
    correct: float = 0.0
    clips: float = 0.0

    def __iadd__(self, other: BatchSums) -> BatchSums:
        for name, value in zip(_SUM_FIELDS, astuple(other), strict=True):
            setattr(self, name, getattr(self, name) + value)
        return self

    def to_list(self) -> list[float]:
        """The sums in field order (what ``all_reduce_sum`` takes)."""
        return [float(value) for value in astuple(self)]

    @classmethod
    def from_list(cls, values: list[float]) -> BatchSums:
        """Sums from :meth:`to_list`'s order (e.g. all-reduced over processes)."""
        return cls(*values)

    def scores(self) -> TrainScores:
        """The epoch's train scores: each loss term and the top-1 per clip."""
        clips = max(self.clips, 1.0)
        return TrainScores(
            loss=self.loss / clips,
            nll=self.nll / clips,
            ga_sa=self.ga_sa / clips,
            ga_la=self.ga_la / clips,
            top1=self.correct / clips,
            clips=int(self.clips),
        )


_SUM_FIELDS = tuple(f.name for f in fields(BatchSums))


@dataclass(frozen=True)
class TrainScores:
    """The train split's scores of one epoch, means over its clips (``clips`` of them)."""

    loss: float
    nll: float
    ga_sa: float
    ga_la: float
    top1: float
    clips: int


@dataclass(frozen=True)
class EvalScores:
    """The eval (val or test) split's scores of one epoch.

    Attributes:
        split: ``"val"`` or ``"test"``.
        clip_top1: fused clip-level top-1.
        video_top1, video_top5, mean_class: fused video-level scores.
        video_nll: fused video-level NLL (``None`` in records written before gkaan 0.2).
        streams: video-level top-1 of each stream.
    """

    split: str
    clip_top1: float
    video_top1: float
    video_top5: float
    mean_class: float
    video_nll: float | None
    streams: dict[str, float]


@dataclass(frozen=True)
class EpochTime:
    """The epoch's wall-clock part (the only part of a record that is not reproducible)."""

    train_seconds: float
    clips_per_s: float


@dataclass(frozen=True)
class EpochRecord:
    """One epoch of a run: a line of ``metrics.jsonl``.

    Attributes:
        epoch: epochs done (1-based); step: optimizer steps done.
        lr: the learning rate of the epoch's last step.
        train: the train split's scores.
        time: how long the epoch's training took.
        eval: the eval split's scores, on epochs that evaluated (else ``None``).
    """

    epoch: int
    step: int
    lr: float
    train: TrainScores
    time: EpochTime
    eval: EvalScores | None = None

    def to_json(self) -> dict[str, Any]:
        """The record as ``metrics.jsonl`` and ``state.pt`` keep it (plain values; no
        ``eval`` key on epochs that did not evaluate)."""
        record = asdict(self)
        if record["eval"] is None:
            del record["eval"]
        elif record["eval"]["video_nll"] is None:
            del record["eval"]["video_nll"]
        return record

    @classmethod
    def from_json(cls, record: dict[str, Any]) -> EpochRecord:
        """A record :meth:`to_json` wrote (also those of earlier gkaan versions)."""
        scores = record.get("eval")
        return cls(
            epoch=record["epoch"],
            step=record["step"],
            lr=record["lr"],
            train=TrainScores(**record["train"]),
            time=EpochTime(**record["time"]),
            eval=EvalScores(**{"video_nll": None, **scores}) if scores is not None else None,
        )


@dataclass(frozen=True)
class EpochDone:
    """What ``train``'s ``on_epoch`` is told after each epoch.

    Attributes:
        record: the epoch's record.
        epochs: the run's total epochs.
        best: ``best/`` now holds this epoch.
    """

    record: EpochRecord
    epochs: int
    best: bool
