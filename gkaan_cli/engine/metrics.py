"""Classification metrics on clip probabilities (numpy only).

Video-level scores average the probabilities of a video's clips (docs/protocol.md#scores);
attention entropy shows how peaked the SA/LA maps are (docs/model.md#sa-peaked).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

__all__ = [
    "AccuracyScores",
    "attention_peakedness",
    "confusion_image",
    "confusion_matrix",
    "mean_class_accuracy",
    "score",
    "top_k_accuracy",
    "video_average",
]


@dataclass(frozen=True)
class AccuracyScores:
    """Top-1, top-5 and mean class accuracy (fractions in [0, 1]) over ``count`` samples."""

    top1: float
    top5: float
    mean_class: float
    count: int

    def to_dict(self) -> dict[str, float | int]:
        return asdict(self)


def top_k_accuracy(probs: np.ndarray, labels: np.ndarray, k: int) -> float:
    """Fraction of rows whose label is among the ``k`` highest probabilities.

    Args:
        probs: (N, K) scores.
        labels: (N,) true class indices.
        k: how many guesses count (capped at K).
    """
    if len(labels) == 0:
        return 0.0
    k = min(k, probs.shape[1])
    top = np.argsort(-probs, axis=1, kind="stable")[:, :k]
    return float((top == labels[:, None]).any(axis=1).mean())


def confusion_matrix(predicted: np.ndarray, labels: np.ndarray, num_classes: int) -> np.ndarray:
    """(K, K) int64 counts: row = true class, column = predicted class."""
    matrix = np.zeros((num_classes, num_classes), np.int64)
    np.add.at(matrix, (labels, predicted), 1)
    return matrix


def mean_class_accuracy(matrix: np.ndarray) -> float:
    """Mean over classes that have samples of their recall (diagonal / row sum)."""
    totals = matrix.sum(axis=1)
    present = totals > 0
    if not present.any():
        return 0.0
    return float((np.diag(matrix)[present] / totals[present]).mean())


def score(probs: np.ndarray, labels: np.ndarray) -> AccuracyScores:
    """Top-1, top-5 and mean class accuracy of (N, K) ``probs`` against (N,) ``labels``."""
    matrix = confusion_matrix(probs.argmax(axis=1), labels, probs.shape[1])
    return AccuracyScores(
        top1=top_k_accuracy(probs, labels, 1),
        top5=top_k_accuracy(probs, labels, 5),
        mean_class=mean_class_accuracy(matrix),
        count=len(labels),
    )


def video_average(
    probs: np.ndarray, labels: np.ndarray, video_index: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-video mean of clip probabilities.

    Args:
        probs: (N, K) clip probabilities.
        labels: (N,) clip labels (the same for all clips of a video).
        video_index: (N,) the video each clip comes from.

    Returns:
        (video ids (V,) sorted, (V, K) mean probabilities, (V,) labels).
    """
    videos, inverse = np.unique(video_index, return_inverse=True)
    sums = np.zeros((len(videos), probs.shape[1]), np.float64)
    np.add.at(sums, inverse, probs)
    counts = np.bincount(inverse, minlength=len(videos))[:, None]
    video_labels = np.zeros(len(videos), np.int64)
    video_labels[inverse] = labels
    return videos, sums / counts, video_labels


def attention_peakedness(maps: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Entropy (nats) and largest weight of each attention map (uniform entropy is log(h*w)).

    Args:
        maps: (N, h, w) maps, each summing to 1.

    Returns:
        ((N,) entropies, (N,) peak weights).
    """
    flat = maps.reshape(len(maps), -1).astype(np.float64)
    entropy = -(flat * np.log(np.clip(flat, 1e-30, None))).sum(axis=1)
    return entropy, flat.max(axis=1)


def confusion_image(matrix: np.ndarray, *, cell: int = 24) -> np.ndarray:
    """Draw a confusion matrix as an (H, W, 3) uint8 image without text.

    Each cell is a ``cell`` x ``cell`` block shaded white -> blue by its share of the row;
    the diagonal is shaded white -> green. A strip on the left and top marks class index
    parity (alternating grey) so rows and columns can be counted; class names live in
    ``report.json``.
    """
    k = matrix.shape[0]
    rows = matrix.sum(axis=1, keepdims=True).astype(np.float64)
    share = np.divide(matrix, rows, out=np.zeros(matrix.shape), where=rows > 0)
    off = np.array([255, 255, 255], np.float64) - share[..., None] * np.array([225, 155, 25])
    diag = np.array([255, 255, 255], np.float64) - share[..., None] * np.array([215, 75, 215])
    colours = np.where(np.eye(k, dtype=bool)[..., None], diag, off).astype(np.uint8)
    grid = np.repeat(np.repeat(colours, cell, axis=0), cell, axis=1)
    grid[::cell, :] = grid[:, ::cell] = 128  # cell borders
    margin = max(4, cell // 3)
    side = k * cell + margin
    image = np.full((side, side, 3), 255, np.uint8)
    image[margin:, margin:] = grid
    shades = np.where(np.arange(k) % 2 == 0, 90, 180).astype(np.uint8)
    strip = np.repeat(shades, cell)
    image[margin:, : margin - 1] = strip[:, None, None]
    image[: margin - 1, margin:] = strip[None, :, None]
    return image
