"""``curves.png``: a training run's loss, top-1 and learning rate per epoch, drawn with Pillow.

Pillow comes with torchvision, so the picture needs no plotting library. :func:`write_curves`
redraws the whole picture from the run's epoch records after every epoch and writes it
temp-then-rename, so a reader never sees half a file.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw

from ..fileio import atomic_write_bytes
from .train_records import EpochRecord

__all__ = ["CURVES_NAME", "CURVES_SIZE", "curve_series", "render_curves", "write_curves"]

CURVES_NAME = "curves.png"
CURVES_SIZE = (960, 720)  # width, height in pixels

_COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2")
_MARGIN = (60, 28, 150, 30)  # left, top, right (legend), bottom of each panel


Series = dict[str, list[tuple[int, float]]]


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


def curve_series(history: Sequence[EpochRecord]) -> tuple[Series, Series, Series]:
    """The (loss, top-1, lr) series of a run's epoch records, each ``name -> [(epoch, y)]``.

    Top-1 holds the train clip top-1 and, on epochs that evaluated, the val/test split's video
    top-1 of each stream and of the fused prediction.
    """
    loss: Series = {}
    top1: Series = {}
    lr: Series = {}

    def add(series: Series, name: str, epoch: int, value: Any) -> None:
        y = _number(value)
        if y is not None:
            series.setdefault(name, []).append((epoch, y))

    for record in history:
        epoch = record.epoch
        add(loss, "train loss", epoch, record.train.loss)
        add(top1, "train clip", epoch, record.train.top1)
        add(lr, "lr", epoch, record.lr)
        scores = record.eval
        if scores is not None:
            split = scores.split
            add(loss, f"{split} video nll", epoch, scores.video_nll)
            for stream, value in sorted(scores.streams.items()):
                add(top1, f"{split} {stream}", epoch, value)
            add(top1, f"{split} fused", epoch, scores.video_top1)
    return loss, top1, lr


def _panel(
    draw: ImageDraw.ImageDraw,
    box: tuple[int, int, int, int],
    title: str,
    series: Series,
    epochs: int,
    fixed: tuple[float, float] | None = None,
) -> None:
    x0, y0, x1, y1 = box
    left, top, right, bottom = _MARGIN
    px0, py0, px1, py1 = x0 + left, y0 + top, x1 - right, y1 - bottom
    draw.text((x0 + left, y0 + 6), title, fill="black")
    draw.rectangle((px0, py0, px1, py1), outline="#888888")
    values = [y for points in series.values() for _, y in points]
    if fixed is not None:
        low, high = fixed
    elif values:
        low, high = min(values), max(values)
    else:
        low, high = 0.0, 1.0
    if high - low < 1e-12:
        low, high = low - 0.5 * (abs(low) or 1.0), high + 0.5 * (abs(high) or 1.0)
    span_x = max(epochs - 1, 1)

    def at(epoch: int, y: float) -> tuple[float, float]:
        fx = (epoch - 1) / span_x if epochs > 1 else 0.5
        return px0 + fx * (px1 - px0), py1 - (y - low) / (high - low) * (py1 - py0)

    for i in range(5):  # y grid and labels
        y = low + (high - low) * i / 4
        _, gy = at(1, y)
        draw.line((px0, gy, px1, gy), fill="#eeeeee")
        draw.text((x0 + 4, gy - 6), f"{y:.3g}", fill="#444444")
    for epoch in sorted({1, epochs, *range(1, epochs + 1, max(1, epochs // 8))}):
        gx, _ = at(epoch, low)
        draw.text((gx - 4, py1 + 4), str(epoch), fill="#444444")
    for k, (name, points) in enumerate(series.items()):
        colour = _COLOURS[k % len(_COLOURS)]
        xy = [at(e, y) for e, y in points]
        if len(xy) > 1:
            draw.line(xy, fill=colour, width=2)
        for x, y in xy:
            draw.ellipse((x - 2.5, y - 2.5, x + 2.5, y + 2.5), fill=colour)
        ly = py0 + 4 + 14 * k
        draw.line((px1 + 10, ly + 6, px1 + 28, ly + 6), fill=colour, width=3)
        draw.text((px1 + 32, ly), name, fill="black")


def render_curves(history: Sequence[EpochRecord]) -> Image.Image:
    """The picture of ``history`` (a run's epoch records): loss, top-1 and lr panels."""
    width, height = CURVES_SIZE
    image = Image.new("RGB", CURVES_SIZE, "white")
    draw = ImageDraw.Draw(image)
    loss, top1, lr = curve_series(history)
    epochs = max((record.epoch for record in history), default=1) or 1
    third = height // 3
    _panel(draw, (0, 0, width, third), "loss", loss, epochs)
    _panel(draw, (0, third, width, 2 * third), "top-1", top1, epochs, fixed=(0.0, 1.0))
    _panel(draw, (0, 2 * third, width, height), "learning rate (x: epoch)", lr, epochs)
    return image


def write_curves(out: str | Path, history: Sequence[EpochRecord]) -> Path:
    """Draw ``history`` into ``out/curves.png`` (temp-then-rename); returns the path."""
    buffer = io.BytesIO()
    render_curves(history).save(buffer, format="PNG")
    return atomic_write_bytes(Path(out) / CURVES_NAME, buffer.getvalue())
