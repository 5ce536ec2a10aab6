"""The typed options of the inference workflows: how a Predictor runs, which clips it takes,
and how a timeline cuts a video (docs/predict.md#library)."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import TYPE_CHECKING

from ..config import SWITCH_COST, SamplingMode
from ..errors import UsageError

if TYPE_CHECKING:
    from ..config import GKAANConfig, SamplingConfig

__all__ = ["PredictorOptions", "SamplingOverrides", "TimelineOptions"]


@dataclass(frozen=True)
class PredictorOptions:
    """The :class:`~gkaan_cli.engine.predict.Predictor`'s settings (its arguments of the
    same names; ``device`` may be replaced per torchrun process)."""

    device: str = "auto"
    precision: str = "auto"
    decode: str = "auto"
    batch_size: int = 32
    threads: int | None = None
    ood: bool = True
    ood_threshold: float = 1.0


@dataclass(frozen=True)
class SamplingOverrides:
    """``--sampling-mode``, ``--clip-len``, ``--stride``, ``--max-clips``: None keeps the
    model's own."""

    mode: SamplingMode | None = None
    clip_len: int | None = None
    stride: int | None = None
    max_clips: int | None = None

    def apply(self, config: GKAANConfig) -> SamplingConfig:
        """The model's sampling with these overrides.

        Raises:
            UsageError: the model's clips with them would be more than this machine can
                hold (checked before a frame is decoded).
        """
        from ..config import SamplingConfig, memory_problem

        given = {f.name: getattr(self, f.name) for f in fields(self)}
        overrides = {key: value for key, value in given.items() if value is not None}
        if self.max_clips is not None:  # the clips a video is tested on: exactly these
            overrides["test_max_clips"] = 0
        sampling = SamplingConfig(**(config.sampling.model_dump() | overrides))
        problem = memory_problem(config.model_copy(update={"sampling": sampling}))
        if problem is not None:
            raise UsageError(f"the sampling options: the model with them {problem}")
        return sampling


@dataclass(frozen=True)
class TimelineOptions:
    """The ``--window``/``--hop`` (seconds, None: the defaults), ``--smooth``,
    ``--min-duration`` and ``--switch-cost`` options."""

    window: float | None = None
    hop: float | None = None
    smooth: int = 1
    min_duration: float = 0.0
    switch_cost: float = SWITCH_COST

    def require_timeline(self, timeline: bool) -> None:
        """Raise UsageError when an option differs from its default without ``--timeline``."""
        if not timeline and self != TimelineOptions():
            raise UsageError(
                "--window, --hop, --smooth, --min-duration and --switch-cost need --timeline"
            )

    def merge(self) -> dict[str, float]:
        """The segment-merging arguments (``smooth``, ``min_duration``, ``switch_cost``)."""
        return {
            "smooth": self.smooth,
            "min_duration": self.min_duration,
            "switch_cost": self.switch_cost,
        }
