"""Machine-readable renderings of :class:`~gkaan_cli.engine.predict.VideoPrediction` lists.

One record per video: the file, its top-k labels with probabilities, each stream's top-1, its
out-of-distribution verdict (``ood_score``, ``in_distribution``; null without one) and, when
asked, a timeline of its clips (start/end seconds, top labels, verdict). ``json`` is one array,
``jsonl`` one record per line, ``csv`` one row per video (``level=video``) followed, with
clips, by one row per clip (``level=clip``); the columns are the same for every row. The
terminal table is the command's (:mod:`gkaan_cli.commands.predict`).

Every JSON/JSONL record carries the ``model`` block (docs/predict.md#model-block), so each
line read alone, filtered or concatenated with another run's still names its model. CSV rows
carry the model's name and the SHA-256 of its weights in two columns (``model``,
``model_sha256``): any CSV reader parses them, and the two pin the checkpoint, whose
``config.json`` holds the rest.

Timelines (:class:`~gkaan_cli.engine.timeline.TimelinePrediction`, docs/predict.md#timeline)
have their own records (:func:`timeline_record`: the window settings, ``segments`` and
``windows``) and the same three formats (:func:`format_timelines`); their CSV has the columns
of the predictions' CSV, with ``level=segment`` rows (the label and its mean probability in
``label_1``/``prob_1``) followed by ``level=window`` rows.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ..config import OutputFormat
from .predict import VideoPrediction, rank_labels

if TYPE_CHECKING:
    from .timeline import TimelinePrediction

__all__ = ["format_predictions", "format_timelines", "prediction_record", "timeline_record"]

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
        "ood_score": _rounded(prediction.ood_score),
        "in_distribution": prediction.in_distribution,
        "verdict": prediction.verdict,
        "model": prediction.model,
    }
    if clips:
        record["clips"] = [
            {
                "start": round(clip.start, _DIGITS),
                "end": round(clip.end, _DIGITS),
                "top_k": _labelled(rank_labels(labels, clip.probs, top_k)),
                "streams": _stream_top1(labels, clip.stream_probs),
                "ood_score": _rounded(clip.ood_score),
                "in_distribution": clip.in_distribution,
                "verdict": clip.verdict,
            }
            for clip in prediction.clips
        ]
    return record


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, _DIGITS)


def _csv_rows(record: dict[str, Any], top_k: int) -> list[list[Any]]:
    model = record["model"] or {}
    model_columns = [model.get("name", ""), model.get("sha256") or ""]
    video = record | {"start": 0.0, "end": record["duration"]}
    rows = [_csv_part_row(record["file"], "video", video, top_k, model_columns)]
    rows += [
        _csv_part_row(record["file"], "clip", clip, top_k, model_columns)
        for clip in record.get("clips", [])
    ]
    return rows


def _json_text(records: list[dict[str, Any]], fmt: OutputFormat) -> str | None:
    """``records`` as ``json`` or ``jsonl`` text; None for ``csv`` (the caller writes rows)."""
    if fmt == "json":
        return json.dumps(records, indent=2) + "\n"
    if fmt == "jsonl":
        return "".join(json.dumps(r) + "\n" for r in records)
    if fmt != "csv":
        raise ValueError(f"unknown format {fmt!r}")
    return None


def format_predictions(
    predictions: Sequence[VideoPrediction],
    fmt: OutputFormat,
    *,
    top_k: int = 5,
    clips: bool = False,
) -> str:
    """Render predictions as ``json``, ``jsonl`` or ``csv`` text (ends with a newline)."""
    records = [prediction_record(p, top_k=top_k, clips=clips) for p in predictions]
    text = _json_text(records, fmt)
    if text is not None:
        return text
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    streams = list(records[0]["streams"]) if records else []
    writer.writerow(_csv_header(streams, top_k))
    for record in records:
        writer.writerows(_csv_rows(record, top_k))
    return buffer.getvalue()


def _csv_header(streams: list[str], top_k: int) -> list[str]:
    ranks = [f"{key}_{i}" for i in range(1, top_k + 1) for key in ("label", "prob")]
    stream_columns = [f"{name}_{key}" for name in streams for key in ("label", "prob")]
    return [
        "file",
        "level",
        "start",
        "end",
        *ranks,
        *stream_columns,
        "ood_score",
        "in_distribution",
        "verdict",
        "model",
        "model_sha256",
    ]


def timeline_record(timeline: TimelinePrediction, *, top_k: int = 5) -> dict[str, Any]:
    """A JSON-ready dict: file, video facts, window settings, ``segments``, ``windows``."""
    labels = timeline.labels
    spec = timeline.spec
    return {
        "file": timeline.path,
        "num_frames": timeline.info.num_frames,
        "fps": round(timeline.info.fps, _DIGITS),
        "duration": round(timeline.info.duration, _DIGITS),
        "timeline": {
            "window": round(spec.window_seconds, _DIGITS),
            "hop": round(spec.hop_seconds, _DIGITS),
            "window_frames": spec.window,
            "hop_frames": spec.hop,
            "smooth": timeline.smooth,
            "min_duration": timeline.min_duration,
            "switch_cost": timeline.switch_cost,
        },
        "segments": [
            {
                "start": round(segment.start, _DIGITS),
                "end": round(segment.end, _DIGITS),
                "label": segment.label,
                "prob": round(segment.prob, _DIGITS),
                "in_distribution": segment.in_distribution,
                "verdict": segment.verdict,
            }
            for segment in timeline.segments
        ],
        "windows": [
            {
                "start": round(window.start, _DIGITS),
                "end": round(window.end, _DIGITS),
                "top_k": _labelled(window.top_k(top_k)),
                "streams": _stream_top1(labels, window.stream_probs),
                "ood_score": _rounded(window.ood_score),
                "in_distribution": window.in_distribution,
                "verdict": window.verdict,
            }
            for window in timeline.windows
        ],
        "dropped": timeline.dropped,
        "model": timeline.model,
    }


def format_timelines(
    timelines: Sequence[TimelinePrediction], fmt: OutputFormat, *, top_k: int = 5
) -> str:
    """Render timelines as ``json``, ``jsonl`` or ``csv`` text (ends with a newline)."""
    records = [timeline_record(t, top_k=top_k) for t in timelines]
    text = _json_text(records, fmt)
    if text is not None:
        return text
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    windows = [w for t in timelines for w in t.windows]
    # the model's streams; a timeline built without them names its windows' streams
    streams = list(timelines[0].streams) if timelines else []
    streams = streams or (list(windows[0].stream_probs) if windows else [])
    writer.writerow(_csv_header(streams, top_k))
    for record in records:
        model = record["model"] or {}
        model_columns = [model.get("name", ""), model.get("sha256") or ""]
        blank_streams = [""] * (2 * len(streams))
        for segment in record["segments"]:
            ranked = [segment["label"], segment["prob"]] + [""] * (2 * top_k - 2)
            span = [segment["start"], segment["end"]]
            verdict = ["", _csv_bool(segment["in_distribution"]), segment["verdict"]]
            writer.writerow(
                [
                    record["file"],
                    "segment",
                    *span,
                    *ranked,
                    *blank_streams,
                    *verdict,
                    *model_columns,
                ]
            )
        for window in record["windows"]:
            writer.writerow(_csv_part_row(record["file"], "window", window, top_k, model_columns))
    return buffer.getvalue()


def _csv_part_row(
    file: str, level: str, part: dict[str, Any], top_k: int, model_columns: list[str]
) -> list[Any]:
    """One CSV row of a clip or window record (ranked labels, stream top-1s, verdict)."""
    ranked = [value for item in part["top_k"] for value in (item["label"], item["prob"])]
    ranked += [""] * (2 * top_k - len(ranked))
    streams = [v for item in part["streams"].values() for v in (item["label"], item["prob"])]
    verdict = [
        "" if part["ood_score"] is None else part["ood_score"],
        _csv_bool(part["in_distribution"]),
        part["verdict"],
    ]
    return [file, level, part["start"], part["end"], *ranked, *streams, *verdict, *model_columns]


def _csv_bool(value: bool | None) -> str:
    return "" if value is None else str(value).lower()
