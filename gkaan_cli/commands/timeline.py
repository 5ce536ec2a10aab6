"""``gkaan predict --timeline``: windows and segments over whole videos or a live source
(docs/predict.md#timeline, docs/predict.md#live).

Files: one segments table per video (or json/jsonl/csv with windows and segments). A live
source (``-`` or a URL, always the only input) prints one line per scored window as it goes,
flushed, then the segments so far when the stream ends, drops (one ``error:`` line, exit 1)
or is interrupted (Ctrl-C, exit 130).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.console import Group
from rich.table import Table
from rich.text import Text

from ..errors import UsageError
from ..progress import ProgressEvent
from ..video.formats import is_live_source
from .common import progress_bar, stderr
from .predict import Format, _error, _throughput, print_table, table_text

if TYPE_CHECKING:
    from ..engine.predict import Predictor
    from ..engine.timeline import TimelinePrediction, WindowPrediction

__all__ = ["TimelineOptions", "predict_timelines", "segments_table", "window_line"]


@dataclass(frozen=True)
class TimelineOptions:
    """The ``--window``/``--hop`` (seconds, None: the defaults), ``--smooth`` and
    ``--min-duration`` options."""

    window: float | None = None
    hop: float | None = None
    smooth: int = 1
    min_duration: float = 0.0


def check_timeline_inputs(inputs: Sequence[str], *, save_video: Path | None, clips: bool) -> None:
    """Refuse what a timeline cannot do, before any work.

    Raises:
        UsageError: a live source beside other inputs, ``--save-video`` or ``--clips``.
    """
    if any(is_live_source(item) for item in inputs) and len(inputs) > 1:
        raise UsageError("a live source (- or a URL) must be the only input")
    if save_video is not None:
        raise UsageError("--save-video does not apply to --timeline")
    if clips:
        raise UsageError("--clips does not apply to --timeline (the windows are the timeline)")


def predict_timelines(
    predictor: Predictor,
    sources: Sequence[Path | str],
    options: TimelineOptions,
    *,
    fmt: Format,
    output: Path | None,
    report: Path | None,
    top_k: int,
    quiet: bool,
) -> int:
    """Run the timeline of each file, or of the one live source; render; return the number
    of failed inputs (a dropped stream counts as one).

    Raises:
        KeyboardInterrupt: after rendering the segments so far of an interrupted live source.
    """
    from ..errors import BadVideoError

    if len(sources) == 1 and isinstance(sources[0], str) and is_live_source(sources[0]):
        return _live(predictor, sources[0], options, fmt=fmt, output=output, report=report,
                     top_k=top_k, quiet=quiet)  # fmt: skip
    timelines: list[TimelinePrediction] = []
    failed = 0
    started = time.perf_counter()
    with progress_bar(enabled=not quiet) as on_progress:
        on_progress(ProgressEvent("videos", 0, len(sources)))
        for done, path in enumerate(sources, start=1):
            try:
                timelines.append(
                    predictor.predict_timeline(
                        path,
                        window=options.window,
                        hop=options.hop,
                        smooth=options.smooth,
                        min_duration=options.min_duration,
                        on_progress=on_progress,
                    )
                )
            except BadVideoError as error:
                failed += 1
                _error(str(error))
            on_progress(ProgressEvent("videos", done, len(sources)))
    if not quiet:
        stderr.print(_throughput(timelines, time.perf_counter() - started))  # type: ignore[arg-type]
    _render(timelines, fmt=fmt, output=output, report=report, top_k=top_k)
    return failed


def _live(
    predictor: Predictor,
    source: str,
    options: TimelineOptions,
    *,
    fmt: Format,
    output: Path | None,
    report: Path | None,
    top_k: int,
    quiet: bool,
) -> int:
    live = predictor.stream_timeline(source, window=options.window, hop=options.hop)
    info, spec = live.video.info, live.spec
    # the per-window lines are the result on stdout only when the table is
    lines_to_stderr = fmt != "table" or output is not None
    if not quiet:
        stderr.print(
            f"live: {source} ({info.width}x{info.height}, {info.fps:g} fps, {info.codec}); "
            f"window {spec.window_seconds:.2f} s, hop {spec.hop_seconds:.2f} s; Ctrl-C stops"
        )
    interrupted = False
    try:
        for window in live:
            if not (quiet and lines_to_stderr):
                typer.echo(window_line(window, predictor.labels), err=lines_to_stderr)
    except KeyboardInterrupt:
        interrupted = True
    finally:
        live.close()
    timeline = live.result(smooth=options.smooth, min_duration=options.min_duration)
    if live.dropped is not None:
        _error(
            f"{source}: the stream dropped after {timeline.info.duration:.1f} s "
            f"({live.dropped}); the segments so far follow"
        )
    elif interrupted and not quiet:
        stderr.print(
            f"interrupted after {timeline.info.duration:.1f} s; the segments so far follow"
        )
    _render([timeline], fmt=fmt, output=output, report=report, top_k=top_k)
    if interrupted:
        raise KeyboardInterrupt
    return int(live.dropped is not None)


def window_line(window: WindowPrediction, labels: Sequence[str]) -> str:
    """One live line: ``  12.00-13.20 s  boxing 93.1%`` (``unknown, closest:`` when the window
    is judged out of distribution)."""
    label, prob = window.top_k(labels, 1)[0]
    verdict = "unknown, closest: " if window.in_distribution is False else ""
    return f"{window.start:8.2f}-{window.end:.2f} s  {verdict}{label} {prob:.1%}"


def segments_table(timeline: TimelinePrediction) -> Group:
    """One timeline as a ``segments of PATH (...)`` line and a table: each segment's span,
    label, mean probability and windows."""
    spec = timeline.spec
    table = Table()
    table.add_column("segment", justify="right")
    table.add_column("span (s)", justify="right")
    table.add_column("label", overflow="fold")
    table.add_column("mean prob", justify="right")
    table.add_column("windows", justify="right")
    for number, segment in enumerate(timeline.segments, start=1):
        table.add_row(
            str(number),
            f"{segment.start:.2f}-{segment.end:.2f}",
            Text(segment.label),
            f"{segment.prob:.1%}",
            str(segment.last_window - segment.first_window + 1),
        )
    count = len(timeline.windows)
    title = (
        f"segments of {timeline.path} ({count} window{'' if count == 1 else 's'} of "
        f"{spec.window_seconds:.2f} s every {spec.hop_seconds:.2f} s)"
    )
    return Group(Text(title), table)


def _render(
    timelines: Sequence[TimelinePrediction],
    *,
    fmt: Format,
    output: Path | None,
    report: Path | None,
    top_k: int,
) -> None:
    from ..engine.outputs import format_timelines
    from ..fileio import atomic_write_text

    if fmt == "table":
        tables = [segments_table(t) for t in timelines]
        if output is None:
            for table in tables:
                print_table(table)
        else:
            atomic_write_text(output, "".join(table_text(t) for t in tables))
            stderr.print(f"wrote {len(timelines)} timelines to {output}")
    else:
        text = format_timelines(timelines, fmt, top_k=top_k)
        if output is None:
            typer.echo(text, nl=False)
        else:
            atomic_write_text(output, text)
            stderr.print(f"wrote {len(timelines)} timelines to {output}")
    if report is not None:
        _write_report(report, timelines, top_k=top_k)


def _write_report(path: Path, timelines: Sequence[TimelinePrediction], *, top_k: int) -> None:
    """The ``--report`` page: per video the windows' class probabilities over time, the
    segments drawn on the same timeline, and the top-k of the windows' mean."""
    import numpy as np

    from ..engine.outputs import timeline_record
    from ..engine.predict import rank_labels
    from ..fileio import atomic_write_text
    from ..viz.report import report_html

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
        record["clips"] = record.pop("windows")
        records.append(record)
    model = timelines[0].model if timelines else None
    atomic_write_text(path, report_html(records, model=model, title="gkaan timeline"))
    stderr.print(f"wrote report to {path}")
