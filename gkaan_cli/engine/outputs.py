"""Machine-readable renderings of :class:`~gkaan_cli.engine.predict.VideoPrediction` lists.

One record per video: the file, its top-k labels with probabilities, each stream's top-1 and,
when asked, a timeline of its clips (start/end seconds and top labels). ``json`` is one array,
``jsonl`` one record per line, ``csv`` one row per video (``level=video``) followed, with
clips, by one row per clip (``level=clip``); the columns are the same for every row. The
terminal table is the command's (:mod:`gkaan_cli.commands.predict`).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from typing import Any

from ..config import OutputFormat
from .predict import VideoPrediction, rank_labels

__all__ = ["format_predictions", "prediction_record"]

_DIGITS = 6


def _labelled(pairs: list[tuple[str, float]]) -> list[dict[str, Any]]:
    return [{"label": label, "prob": round(prob, _DIGITS)} for label, prob in pairs]


def _stream_top1(labels: list[str], stream_probs: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        name: _labelled(rank_labels(labels, probs, 1))[0] for name, probs in stream_probs.items()
    }


def prediction_record(
    prediction: VideoPrediction, *, top_k: int = 5, clips: bool = False
) -> dict[str, Any]:
    """A JSON-ready dict: file, video facts, ``top_k``, ``streams`` top-1, optional ``clips``."""
    labels = prediction.labels
    record: dict[str, Any] = {
        "file": prediction.path,
        "num_frames": prediction.info.num_frames,
        "fps": round(prediction.info.fps, _DIGITS),
        "duration": round(prediction.info.duration, _DIGITS),
        "top_k": _labelled(prediction.top_k(top_k)),
        "streams": _stream_top1(labels, prediction.stream_probs),
    }
    if clips:
        record["clips"] = [
            {
                "start": round(clip.start, _DIGITS),
                "end": round(clip.end, _DIGITS),
                "top_k": _labelled(rank_labels(labels, clip.probs, top_k)),
                "streams": _stream_top1(labels, clip.stream_probs),
            }
            for clip in prediction.clips
        ]
    return record


def _csv_rows(record: dict[str, Any], top_k: int) -> list[list[Any]]:
    def row(level: str, start: float, end: float, part: dict[str, Any]) -> list[Any]:
        ranked = [value for item in part["top_k"] for value in (item["label"], item["prob"])]
        ranked += [""] * (2 * top_k - len(ranked))
        streams = [v for item in part["streams"].values() for v in (item["label"], item["prob"])]
        return [record["file"], level, start, end, *ranked, *streams]

    rows = [row("video", 0.0, record["duration"], record)]
    rows += [row("clip", c["start"], c["end"], c) for c in record.get("clips", [])]
    return rows


def format_predictions(
    predictions: Sequence[VideoPrediction],
    fmt: OutputFormat,
    *,
    top_k: int = 5,
    clips: bool = False,
) -> str:
    """Render predictions as ``json``, ``jsonl`` or ``csv`` text (ends with a newline)."""
    records = [prediction_record(p, top_k=top_k, clips=clips) for p in predictions]
    if fmt == "json":
        return json.dumps(records, indent=2) + "\n"
    if fmt == "jsonl":
        return "".join(json.dumps(r) + "\n" for r in records)
    if fmt != "csv":
        raise ValueError(f"unknown format {fmt!r}")
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    streams = list(records[0]["streams"]) if records else []
    ranks = [f"{key}_{i}" for i in range(1, top_k + 1) for key in ("label", "prob")]
    stream_columns = [f"{name}_{key}" for name in streams for key in ("label", "prob")]
    writer.writerow(["file", "level", "start", "end", *ranks, *stream_columns])
    for record in records:
        writer.writerows(_csv_rows(record, top_k))
    return buffer.getvalue()
