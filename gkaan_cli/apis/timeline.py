"""``gkaan predict --timeline`` as a library: the timelines of video files, a live source's
windows, and the timeline report page (docs/predict.md#timeline)."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import BadVideoError
from ..progress import ProgressEvent
from .options import TimelineOptions

if TYPE_CHECKING:
    from ..engine.predict import Predictor
    from ..engine.timeline import LiveTimeline, TimelinePrediction
    from ..progress import ProgressCallback

__all__ = [
    "TIMELINE_MEAN_NOTE",
    "TimelineRun",
    "open_live_timeline",
    "predict_timelines",
    "timeline_report_records",
    "write_timeline_report",
]

#: Above a timeline page's ranked labels: they are the windows' mean, not the video's answer.
TIMELINE_MEAN_NOTE = (
    "Mean over the timeline's windows, not the video's answer: the answer for the whole "
    "video is gkaan predict without --timeline (the clips of the model's own sampling)."
)


@dataclass
class TimelineRun:
    """What :func:`predict_timelines` returns: the timelines in input order, the number of
    files that failed, and the time it took."""

    timelines: list[TimelinePrediction]
    failed: int
    seconds: float


def predict_timelines(
    predictor: Predictor,
    paths: Sequence[Path],
    options: TimelineOptions | None = None,
    *,
    on_progress: ProgressCallback | None = None,
    on_error: Callable[[BadVideoError], object] | None = None,
) -> TimelineRun:
    """Each file's timeline; a bad video goes to ``on_error`` and the others go on.
    ``on_progress`` hears ``ProgressEvent("videos", done, total)`` around each file and the
    frames within it."""
    from ..engine.timeline import predict_timeline

    options = options if options is not None else TimelineOptions()
    timelines: list[TimelinePrediction] = []
    failed = 0
    started = time.perf_counter()
    if on_progress is not None:
        on_progress(ProgressEvent("videos", 0, len(paths)))
    for done, path in enumerate(paths, start=1):
        try:
            timelines.append(
                predict_timeline(
                    predictor,
                    path,
                    window=options.window,
                    hop=options.hop,
                    on_progress=on_progress,
                    **options.merge(),
                )
            )
        except BadVideoError as error:
            failed += 1
            if on_error is not None:
                on_error(error)
        if on_progress is not None:
            on_progress(ProgressEvent("videos", done, len(paths)))
    return TimelineRun(timelines, failed, time.perf_counter() - started)


def open_live_timeline(
    predictor: Predictor, source: str, options: TimelineOptions | None = None
) -> LiveTimeline:
    """The live source's windows as they come (iterate, then ``close()`` and
    ``result(**options.merge())`` for the segments so far)."""
    from ..engine.timeline import stream_timeline

    options = options if options is not None else TimelineOptions()
    return stream_timeline(predictor, source, window=options.window, hop=options.hop)


def timeline_report_records(
    timelines: Sequence[TimelinePrediction], *, top_k: int
) -> list[dict[str, Any]]:
    """The report's records: per video the windows' class probabilities (as the page's
    clips), the segments, and the top ``top_k`` of the windows' mean."""
    import numpy as np

    from ..engine.outputs import timeline_record
    from ..engine.predict import rank_labels

    records = []
    for timeline in timelines:
        record = timeline_record(timeline, top_k=len(timeline.labels))
        mean = (
            np.mean([w.probs for w in timeline.windows], axis=0)
            if timeline.windows
            else np.zeros(len(timeline.labels))
        )
        record["top_k"] = [
            {"label": label, "prob": round(prob, 6)}
            for label, prob in rank_labels(timeline.labels, mean, top_k)
        ]
        record["top_k_note"] = TIMELINE_MEAN_NOTE
        record["clips"] = record.pop("windows")
        records.append(record)
    return records


def write_timeline_report(
    path: Path, timelines: Sequence[TimelinePrediction], *, top_k: int
) -> None:
    """Write the timeline page: per video the windows' class probabilities over time, the
    segments drawn on the same timeline, and the top-k of the windows' mean."""
    from ..fileio import atomic_write_text
    from ..viz.report import report_html

    records = timeline_report_records(timelines, top_k=top_k)
    model = timelines[0].model if timelines else None
    atomic_write_text(path, report_html(records, model=model, title="gkaan timeline"))
