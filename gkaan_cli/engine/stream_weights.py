"""Stream weights of the fused prediction (docs/model.md#eq-19), chosen on the val split.

The paper fuses its streams with equal weights. On a small dataset one stream can be far
better than the others (the GS stream of the paper's hard-argmax SA often is the weakest), and
equal weights then let the weak streams outvote it. At the end of a run with a val split,
:func:`choose_stream_weights` scores a few candidate weightings on the val split's videos and
keeps the best; the test split never takes part (docs/protocol.md#model-selection).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .metrics import video_average

__all__ = ["StreamChoice", "choose_stream_weights"]


@dataclass(frozen=True)
class StreamChoice:
    """The chosen weights (one per stream, in the model's stream order) and why.

    Attributes:
        weights: the stream weights to use for fusion.
        name: which candidate they are (``"config"``, ``"only <stream>"`` or ``"val accuracy"``).
        accuracy: each candidate's val video top-1.
    """

    weights: tuple[float, ...]
    name: str
    accuracy: dict[str, float]


def _video_top1(
    probs: dict[str, np.ndarray],
    weights: Sequence[float],
    streams: Sequence[str],
    labels: np.ndarray,
    video_index: np.ndarray,
) -> tuple[float, float]:
    """(video top-1, mean true-class probability) of the weighted mean of stream probabilities."""
    total = sum(weights)
    fused = sum(w * probs[s] for w, s in zip(weights, streams, strict=True)) / total
    _, video_probs, video_labels = video_average(fused, labels, video_index)
    top1 = float(np.mean(video_probs.argmax(axis=1) == video_labels))
    true_prob = float(np.mean(video_probs[np.arange(len(video_labels)), video_labels]))
    return top1, true_prob


def choose_stream_weights(
    probs: dict[str, np.ndarray],
    labels: np.ndarray,
    video_index: np.ndarray,
    streams: Sequence[str],
    current: Sequence[float],
) -> StreamChoice:
    """The candidate weighting with the best val video top-1.

    Candidates: the config's weights, weights proportional to each stream's own val video
    top-1, and each stream alone. The config's weights stay unless another candidate has a
    strictly higher val video top-1: on a val split where every candidate is right (common
    when val holds the training people's own videos) the most confident stream is not
    evidence, and picking it overfits (on ps7-arms it chose GS, the stream that was wrong on
    the unseen person). Among strictly better candidates the highest top-1 wins, ties broken
    by the mean probability of the true class, then by the order above.

    Args:
        probs: each stream -> (N, K) clip probabilities on the val split.
        labels: (N,) true classes of the clips.
        video_index: (N,) the video each clip comes from.
        streams: the model's streams, in order.
        current: the config's weights for those streams.
    """
    singles = {s: _video_top1(probs, [1.0], [s], labels, video_index)[0] for s in streams}
    candidates: dict[str, tuple[float, ...]] = {"config": tuple(float(w) for w in current)}
    if sum(singles.values()) > 0:
        candidates["val accuracy"] = tuple(singles[s] for s in streams)
    for s in streams:
        candidates[f"only {s}"] = tuple(1.0 if t == s else 0.0 for t in streams)
    scored = {
        name: _video_top1(probs, weights, streams, labels, video_index)
        for name, weights in candidates.items()
    }
    order = list(candidates)
    best = max(order, key=lambda name: (*scored[name], -order.index(name)))
    if scored[best][0] <= scored["config"][0]:
        best = "config"
    return StreamChoice(
        weights=candidates[best],
        name=best,
        accuracy={name: top1 for name, (top1, _) in scored.items()},
    )
