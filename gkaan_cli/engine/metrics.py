"""Classification metrics on clip probabilities (numpy only).

Video-level scores average the probabilities of a video's clips (docs/protocol.md#scores);
attention entropy shows how peaked the SA/LA maps are (docs/model.md#sa-peaked).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from ..config import MIN_PROB

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
    """Top-1, top-5 and mean class accuracy (fractions in [0, 1]) over ``count`` samples, and
    ``nll``: the mean negative log-probability of the true class (nats; lower is better)."""

    top1: float
    top5: float
    mean_class: float
    count: int
    nll: float = 0.0

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
    """Top-1, top-5, mean class accuracy and NLL of (N, K) ``probs`` against (N,) ``labels``."""
    matrix = confusion_matrix(probs.argmax(axis=1), labels, probs.shape[1])
    true_probs = probs[np.arange(len(labels)), labels] if len(labels) else np.ones(1)
    return AccuracyScores(
        top1=top_k_accuracy(probs, labels, 1),
        top5=top_k_accuracy(probs, labels, 5),
        mean_class=mean_class_accuracy(matrix),
        count=len(labels),
        nll=float(-np.log(np.clip(true_probs, MIN_PROB, None)).mean()),
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


def confusion_image(
    matrix: np.ndarray, classes: list[str] | None = None, *, cell: int = 56
) -> np.ndarray:
    """Draw a confusion matrix as an (H, W, 3) uint8 image with Pillow.

    Rows are true classes, columns predicted ones, both labelled with the class names (the
    columns' written upwards) under the axis titles. Each cell shows its count and is shaded
    white -> blue by its share of the row (row-normalised), the diagonal white -> green.
    """
    from PIL import Image, ImageDraw, ImageFont

    k = matrix.shape[0]
    names = classes if classes is not None else [str(i) for i in range(k)]
    font = ImageFont.load_default(size=max(10, cell // 4))
    title = ImageFont.load_default(size=max(12, cell // 3))
    probe = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    label_width = max(int(probe.textlength(name, font=font)) for name in names) + 12
    pad = cell // 2
    left = pad + label_width
    top = pad + label_width
    width, height = left + k * cell + pad, top + k * cell + pad
    image = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(image)
    rows = matrix.sum(axis=1, keepdims=True).astype(np.float64)
    share = np.divide(matrix, rows, out=np.zeros(matrix.shape), where=rows > 0)
    for i in range(k):
        for j in range(k):
            tint = np.array([215, 75, 215]) if i == j else np.array([225, 155, 25])
            colour = tuple(int(v) for v in np.array([255, 255, 255]) - share[i, j] * tint)
            x, y = left + j * cell, top + i * cell
            draw.rectangle([x, y, x + cell, y + cell], fill=colour, outline=(128, 128, 128))
            ink = "white" if share[i, j] > 0.6 else "black"
            draw.text(
                (x + cell / 2, y + cell / 2),
                str(int(matrix[i, j])),
                fill=ink,
                font=font,
                anchor="mm",
            )
        draw.text(
            (left - 6, top + i * cell + cell / 2), names[i], fill="black", font=font, anchor="rm"
        )
    # Column names written upwards: drawn on a strip, then rotated.
    strip = Image.new("RGB", (label_width, k * cell), "white")
    strip_draw = ImageDraw.Draw(strip)
    for j in range(k):
        strip_draw.text((6, j * cell + cell / 2), names[j], fill="black", font=font, anchor="lm")
    image.paste(strip.rotate(90, expand=True), (left, pad))
    draw.text(
        (left + k * cell / 2, pad / 2), "predicted class", fill="black", font=title, anchor="mm"
    )
    axis = Image.new("RGB", (k * cell, pad), "white")
    ImageDraw.Draw(axis).text(
        (k * cell / 2, pad / 2), "true class", fill="black", font=title, anchor="mm"
    )
    image.paste(axis.rotate(90, expand=True), (0, top))
    return np.asarray(image, dtype=np.uint8).copy()
