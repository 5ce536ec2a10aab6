"""The one way clips are scored, for a video's clips (``predict``) and a timeline's windows
alike: backbone maps cached by frame, stacked into clips, run through the heads in fp32,
their OOD embeddings, and the checks every result passes (docs/predict.md#pipeline).

A video's prediction is the mean over its clips, a window's the mean over the clips of its
span (:meth:`ClipScorer.aggregate`); both are made here, so a window over a whole video is
that video's prediction.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from torch import Tensor

from ..errors import BadVideoError
from ..model.ood import clip_embedding

if TYPE_CHECKING:
    from ..model.gkaan import GKAAN
    from ..model.ood import OODStats

__all__ = ["Aggregate", "ClipScorer", "ClipScores"]


@dataclass
class ClipScores:
    """Some clips' outputs, one row per clip: fused and per-stream probabilities (fp32, on
    the CPU), OOD embeddings (None without OOD statistics) and, when asked for, the
    attention maps (name -> (N, T, h, w), on the compute device)."""

    probs: Tensor
    stream_probs: dict[str, Tensor]
    embeddings: Tensor | None
    attention: dict[str, Tensor] | None


@dataclass
class Aggregate:
    """The mean of some clips' probabilities, per stream too, with the OOD score of those
    clips together (None without one) and each clip's own score (relative to the bank)."""

    probs: Tensor
    stream_probs: dict[str, Tensor]
    score: float | None
    clip_scores: list[float | None]


class ClipScorer:
    """Backbone maps of one video or stream, cached by frame index until dropped, and the
    clips made of them scored by the model's heads.

    Args:
        model: the network whose heads score the clips (``forward_heads``).
        ood: the OOD statistics in use (None: no verdict).
        source: the video or stream, as named in errors.
        fps: the frame rate the GM stream measures motion at.
    """

    def __init__(self, model: GKAAN, ood: OODStats | None, source: str | Path, fps: float) -> None:
        self.model, self.ood = model, ood
        self.source = str(source)
        self.fps = fps
        #: Frame index -> backbone map, and -> time (seconds), for frames not yet dropped.
        self.maps: dict[int, Tensor] = {}
        self.times: dict[int, float] = {}
        #: The last frame index received (-1: none) and how many frames were received.
        self.received = -1
        self.processed = 0

    def add_maps(self, indices: Sequence[int], times: Sequence[float], maps: Tensor) -> None:
        """Take the backbone maps of some frames, in index order."""
        for row, (index, time) in enumerate(zip(indices, times, strict=True)):
            self.maps[index] = maps[row]
            self.times[index] = time
        self.received = indices[-1]
        self.processed += len(indices)

    def drop(self, indices: Iterable[int], *, keep_times: bool = False) -> None:
        """Forget the maps of frames no later clip uses (and their times, unless kept: a
        video's clips are retimed by them at its end)."""
        for index in indices:
            del self.maps[index]
            if not keep_times:
                del self.times[index]

    def missing(self, clips: Iterable[Sequence[int]]) -> BadVideoError | None:
        """The error for the first frame of ``clips`` that never arrived, else None."""
        absent = {i for clip in clips for i in clip} - set(self.maps)
        return self.stopped_early(min(absent)) if absent else None

    def stopped_early(self, frame: int) -> BadVideoError:
        """The error for a video whose decoding ended before ``frame``."""
        return BadVideoError(self.source, f"decoding stopped early (frame {frame} not decoded)")

    def score(self, clips: Sequence[Sequence[int]], *, keep_attention: bool = False) -> ClipScores:
        """Run ``clips`` (each a sequence of frame indices) through the heads, in fp32."""
        stacked = torch.stack([torch.stack([self.maps[i] for i in c]) for c in clips]).float()
        output = self.model.forward_heads(stacked, self.fps)  # heads, fusion in fp32
        embeddings = clip_embedding(stacked) if self.ood is not None else None
        return ClipScores(
            probs=output.probs.float().cpu(),
            stream_probs={name: value.float().cpu() for name, value in output.stream_probs.items()},
            embeddings=embeddings,
            attention=output.attention if keep_attention else None,
        )

    def aggregate(
        self,
        probs: Sequence[Tensor],
        stream_probs: Sequence[dict[str, Tensor]],
        embeddings: Sequence[Tensor] | None,
    ) -> Aggregate:
        """The mean of some clips (a video's, or a window's) and their OOD score.

        Raises:
            BadVideoError: a non-finite probability (never a NaN in an output).
        """
        stacked = torch.stack(list(probs))
        if not torch.isfinite(stacked).all():
            raise BadVideoError(self.source, "the model gave non-finite probabilities (NaN/Inf)")
        names = list(stream_probs[0])
        streams = {n: torch.stack([c[n] for c in stream_probs]).mean(dim=0) for n in names}
        score: float | None = None
        clip_scores: list[float | None] = [None] * len(stacked)
        if self.ood is not None and embeddings is not None:
            relative, score = self.ood.scores(torch.stack(list(embeddings)))  # one pass
            clip_scores = relative.tolist()
        return Aggregate(stacked.mean(dim=0), streams, score, clip_scores)
