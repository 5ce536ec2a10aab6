"""The tables ``gkaan predict`` prints: predictions (wide, or compact for a narrow
terminal), each video's clips, a timeline's segments and a live source's lines
(docs/predict.md#outputs). Every table fits the terminal's width without breaking a label;
redirected, it is printed in full.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console, Group, RenderableType
from rich.table import Table
from rich.text import Text

from ..apis.predict import DEFAULT_TOP_K
from ..config import STREAM_TITLES
from .common import fit_width, natural_width, pack_entries, packed_width, shorten_path, stdout

if TYPE_CHECKING:
    from ..engine.predict import VideoPrediction
    from ..engine.timeline import TimelinePrediction, WindowPrediction

__all__ = [
    "clips_timeline",
    "predictions_table",
    "print_table",
    "segments_table",
    "table_text",
    "verdict",
    "window_line",
]

#: The compact tables cut a file name to no fewer characters than this (when it is longer).
_LEAST_NAME = 20


#: The columns a two-column table's borders and padding take.
_TWO_COLUMN_FRAME = 7


def _stream_header(name: str) -> str:
    return STREAM_TITLES.get(name, name.upper())


def verdict(prediction: VideoPrediction) -> str:
    """``unknown (closest: jogging 56%)`` (:attr:`VideoPrediction.verdict`) for a video judged
    out of distribution, else ''."""
    return prediction.verdict if prediction.in_distribution is False else ""


def _verdicts(predictions: Sequence[VideoPrediction]) -> list[str | None] | None:
    """The column of videos judged unknown (their :attr:`VideoPrediction.verdict`; blank
    where the top-1 beside it is the answer), or None when no video is judged unknown."""
    verdicts = [verdict(p) or None for p in predictions]
    return verdicts if any(verdicts) else None


def predictions_table(
    predictions: Sequence[VideoPrediction],
    *,
    top_k: int = DEFAULT_TOP_K,
    verdicts: Sequence[str | None] | None = None,
    path_width: int | None = None,
    width: int | None = None,
) -> RenderableType:
    """A Rich table: file, top-k labels with probabilities, and each stream's top-1.

    Files are shown by name (full paths when two names clash), cut from the left to
    ``path_width`` characters when given; structured outputs always carry the full path.
    ``verdicts`` (one per prediction, ``None`` for none; default: each prediction's
    :func:`verdict`) adds a "verdict" column when one is not empty, e.g.
    ``unknown (closest: boxing 56%)``.

    ``width`` (a terminal's columns; None: as wide as the table needs) chooses the layout:
    the table above where it fits whole, else a compact one (:func:`_compact_predictions`):
    per video the file name on one line (cut from the left, never wrapped), the verdict, and
    the top-k packed on as few lines as fit, then a second table with each stream's top-1.
    A label is never broken.
    """
    if verdicts is None:
        verdicts = _verdicts(predictions)
    names = _shown_names(predictions)
    wide = _wide_predictions(
        predictions, names, top_k=top_k, verdicts=verdicts, path_width=path_width
    )
    if width is None or natural_width(wide) <= width:
        return wide
    compact = _compact_predictions(predictions, names, top_k=top_k, verdicts=verdicts, width=width)
    streams = _streams_table(predictions, names, width=width)
    return compact if streams is None else Group(compact, streams)


def _shown_names(predictions: Sequence[VideoPrediction]) -> list[str]:
    """Each file's name, or its full path where two names would be ambiguous."""
    names = [Path(prediction.path).name for prediction in predictions]
    if len(set(names)) == len(names):
        return names
    return [prediction.path for prediction in predictions]


def _stream_tops(prediction: VideoPrediction) -> dict[str, tuple[str, float]]:
    """Each stream's top-1 label and probability."""
    from ..engine.predict import rank_labels

    return {
        stream: rank_labels(prediction.labels, probs, 1)[0]
        for stream, probs in prediction.stream_probs.items()
    }


def _wide_predictions(
    predictions: Sequence[VideoPrediction],
    names: Sequence[str],
    *,
    top_k: int,
    verdicts: Sequence[str | None] | None,
    path_width: int | None,
) -> Table:
    """The full table: file, [verdict,] top-k (one label a line), one column per stream."""
    streams = list(predictions[0].stream_probs) if predictions else []
    table = Table(title="gkaan predict")
    table.add_column("file", overflow="fold")
    if verdicts is not None:
        table.add_column("verdict", overflow="fold")
    table.add_column(f"top-{top_k}", overflow="fold")
    for name in streams:
        table.add_column(_stream_header(name), overflow="fold")
    for index, (prediction, name) in enumerate(zip(predictions, names, strict=True)):
        ranked = "\n".join(f"{label} {prob:.1%}" for label, prob in prediction.top_k(top_k))
        tops = _stream_tops(prediction)
        shown = name if path_width is None else shorten_path(name, path_width)
        verdict = [] if verdicts is None else [verdicts[index] or ""]
        table.add_row(
            Text(shown),
            *verdict,
            Text(ranked),
            *(Text(f"{tops[stream][0]} {tops[stream][1]:.1%}") for stream in streams),
        )
    return table


def _compact_predictions(
    predictions: Sequence[VideoPrediction],
    names: Sequence[str],
    *,
    top_k: int,
    verdicts: Sequence[str | None] | None,
    width: int,
) -> Table:
    """Two columns: the file name and the verdict over the top-k (:func:`_packed_table`)."""
    return _packed_table(
        "gkaan predict",
        f"top-{top_k}" if verdicts is None else f"verdict, top-{top_k}",
        names,
        [[f"{label} {prob:.1%}" for label, prob in p.top_k(top_k)] for p in predictions],
        width=width,
        first=[v or "" for v in verdicts] if verdicts is not None else None,
    )


def _packed_table(
    title: str,
    header: str,
    names: Sequence[str],
    entries: Sequence[Sequence[str]],
    *,
    width: int,
    first: Sequence[str] | None = None,
) -> Table:
    """A file column and a ``header`` column in ``width`` columns: per row the file name on
    one line (cut from the left, never wrapped), the row's ``first`` line when not empty,
    then its ``entries`` packed on the fewest lines that leave the name ``_LEAST_NAME``
    characters (:func:`~gkaan_cli.commands.common.pack_entries`: an entry is never split)."""
    room = width - _TWO_COLUMN_FRAME
    longest = max((len(name) for name in names), default=0)
    least = min(longest, _LEAST_NAME)
    packed = len(header)
    for lines in range(1, max((len(e) for e in entries), default=1) + 1):
        packed = max(len(header), *(packed_width(e, lines) for e in entries))
        if packed + least <= room:
            break
    said = max((len(line) for line in first or []), default=0)
    if max(packed, said) + least <= room:  # the first line whole where it fits
        packed = max(packed, said)
    name_width = max(min(longest, room - packed), min(longest, 8))
    table = Table(title=title)
    table.add_column("file", no_wrap=True)
    table.add_column(header, overflow="fold")
    for index, (name, row) in enumerate(zip(names, entries, strict=True)):
        lines_shown = [first[index]] if first is not None and first[index] else []
        lines_shown += pack_entries(row, packed)
        table.add_row(Text(shorten_path(name, name_width)), Text("\n".join(lines_shown)))
    return table


def _streams_table(
    predictions: Sequence[VideoPrediction], names: Sequence[str], *, width: int
) -> Table | None:
    """Each stream's top-1 in ``width`` columns (None for a model without streams): a column
    per stream where the names keep ``_LEAST_NAME`` characters, else ``GS label 99.0%``
    entries packed beside the name (:func:`_packed_table`)."""
    streams = list(predictions[0].stream_probs) if predictions else []
    if not streams:
        return None
    tops = [_stream_tops(prediction) for prediction in predictions]
    title = "top-1 per stream: " + ", ".join(_stream_header(name) for name in streams)

    def columns(path_width: int | None) -> Table:
        table = Table(title=title)
        table.add_column("file", no_wrap=True)
        for stream in streams:
            table.add_column(stream.upper(), no_wrap=True)
        for name, top in zip(names, tops, strict=True):
            shown = name if path_width is None else shorten_path(name, path_width)
            cells = (f"{top[s][0]} {top[s][1]:.1%}" for s in streams)
            table.add_row(Text(shown), *(Text(cell) for cell in cells))
        return table

    longest = max(len(name) for name in names)
    fitted = fit_width(columns, longest, width, least=_LEAST_NAME)
    if isinstance(fitted, Table):
        return fitted
    entries = [[f"{s.upper()} {top[s][0]} {top[s][1]:.1%}" for s in streams] for top in tops]
    return _packed_table(title, "top-1", names, entries, width=width)


def clips_timeline(prediction: VideoPrediction, *, width: int | None = None) -> Group:
    """One video's clips as a text timeline: a ``clips of PATH`` line, then a table of each
    clip's span (seconds) and top label. In ``width`` columns (None: any) the path is cut
    from the left to keep the line whole, and a label is never broken."""
    from ..engine.predict import rank_labels

    table = Table()
    table.add_column("clip", justify="right")
    table.add_column("span (s)", justify="right")
    table.add_column("verdict", no_wrap=True, overflow="fold")
    table.add_column("prob", justify="right")
    for number, clip in enumerate(prediction.clips, start=1):
        _, prob = rank_labels(prediction.labels, clip.probs, 1)[0]
        span = f"{clip.start:.2f}-{clip.end:.2f}"
        table.add_row(str(number), span, Text(clip.verdict), f"{prob:.1%}")
    return Group(_path_line("clips of ", prediction.path, "", width), table)


def window_line(window: WindowPrediction) -> str:
    """One live line: ``  12.00-13.20 s  boxing 93.1%``, or the window's verdict
    (``unknown (closest: boxing 41%)``) when it is judged out of distribution."""
    from ..engine.predict import verdict_line

    label, prob = window.top_k(1)[0]
    shown = verdict_line(label, prob, window.in_distribution)
    return f"{window.start:8.2f}-{window.end:.2f} s  {shown}"


def segments_table(timeline: TimelinePrediction, *, width: int | None = None) -> Group:
    """One timeline as a ``segments of PATH (...)`` line and a table: each segment's span,
    label, mean probability and windows. In ``width`` columns (None: any) the path is cut
    from the left to keep the line whole, and a label is never broken."""
    spec = timeline.spec
    table = Table()
    table.add_column("segment", justify="right")
    table.add_column("span (s)", justify="right")
    table.add_column("verdict", no_wrap=True, overflow="fold")
    table.add_column("mean prob", justify="right")
    table.add_column("windows", justify="right")
    for number, segment in enumerate(timeline.segments, start=1):
        table.add_row(
            str(number),
            f"{segment.start:.2f}-{segment.end:.2f}",
            Text(segment.verdict),
            f"{segment.prob:.1%}",
            str(segment.last_window - segment.first_window + 1),
        )
    count = len(timeline.windows)
    after = (
        f" ({count} window{'' if count == 1 else 's'} of "
        f"{spec.window_seconds:.2f} s every {spec.hop_seconds:.2f} s)"
    )
    return Group(_path_line("segments of ", timeline.path, after, width), table)


def _path_line(before: str, path: str, after: str, width: int | None) -> Text:
    """``before + path + after`` on one line of ``width`` columns (None: any): the path cut
    from the left to fit, to no fewer than ``_LEAST_NAME`` characters."""
    if width is not None and len(before) + len(path) + len(after) > width:
        path = shorten_path(path, max(width - len(before) - len(after), _LEAST_NAME))
    return Text(before + path + after)


def table_text(table: RenderableType) -> str:
    """``table`` as plain text at its natural width: every row in full, nothing cut."""
    measure = Console(width=100_000).measure(table)
    console = Console(
        file=io.StringIO(), width=max(measure.maximum, 20), color_system=None, markup=False
    )
    console.print(table)
    return console.file.getvalue()  # type: ignore[attr-defined]


def print_table(table: RenderableType) -> None:
    """Print ``table`` on stdout: fitted and wrapped in a terminal, else every row in full."""
    if stdout.is_terminal:
        stdout.print(table)
    else:
        stdout.file.write(table_text(table))
