"""``gkaan predict``: classify the actions in videos (docs/predict.md).

Exit codes: 0 every input predicted, 1 some input failed (one ``error: <file>: <reason>``
line each on stderr, the others still predicted), 2 usage error. Options and input paths are
checked before torch is imported, so a mistyped name is reported at once. Under ``torchrun``
each process predicts its share and rank 0 alone prints and writes the merged results
(docs/predict.md#distributed).
``--timeline`` (and a live source: ``-`` or a URL) scores windows over whole videos and prints
segments (docs/predict.md#timeline): one flushed line per window for a live source, then the
segments so far at its end, on Ctrl-C (exit 130) or when it drops (exit 1).
"""

from __future__ import annotations

import io
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal, get_args

import typer
from rich.console import Console, Group, RenderableType
from rich.table import Table
from rich.text import Text

from ..config import (
    MAX_BATCH,
    MAX_CLASSES,
    MAX_CLIP_FRAMES,
    MAX_CLIPS,
    MAX_OOD_THRESHOLD,
    MAX_STRIDE,
    STREAM_TITLES,
    SWITCH_COST,
    OutputFormat,
    SamplingMode,
)
from ..errors import UsageError
from ..progress import ProgressEvent
from ..words import plural
from .common import (
    DecodeNote,
    DecodeOption,
    DeviceOption,
    HopOption,
    MinDurationOption,
    ModelOption,
    PrecisionOption,
    QuietOption,
    SmoothOption,
    SwitchCostOption,
    ThreadsOption,
    TimelineOptions,
    WindowOption,
    check_sampling_memory,
    finite,
    fit_width,
    load_model,
    model_files,
    natural_width,
    pack_entries,
    packed_width,
    progress_bar,
    shorten_path,
    stderr,
    stdout,
)

if TYPE_CHECKING:
    from ..engine.predict import Predictor, VideoPrediction
    from ..engine.timeline import TimelinePrediction, WindowPrediction

#: ``render_overlay_video(video_path, prediction, out_path)`` from gkaan_cli.viz.render.
Renderer = Callable[[Path, "VideoPrediction", Path], object]

__all__ = [
    "clips_timeline",
    "output_format",
    "predict",
    "predictions_table",
    "print_model_line",
    "print_table",
    "segments_table",
    "table_text",
    "verdict",
    "window_line",
]

Format = Literal["table", OutputFormat]

#: ``--output`` file suffix -> format (``.txt`` is the table as plain text).
SUFFIX_FORMATS: dict[str, Format] = {f".{fmt}": fmt for fmt in get_args(OutputFormat)} | {
    ".txt": "table"
}

_DEFAULT_TOP_K = 5


def output_format(fmt: Format | None, output: Path | None) -> Format:
    """The format to write: ``--format``, else ``--output``'s suffix, else the table (also
    for a character device or FIFO such as ``/dev/null`` or ``/dev/stdout``).

    Raises:
        UsageError: a suffix that disagrees with ``--format``, or an unknown suffix without it.
    """
    from ..fileio import is_stream_output

    known = SUFFIX_FORMATS.get(output.suffix.lower()) if output is not None else None
    if fmt is None:
        if output is None or (known is None and is_stream_output(output)):
            return "table"
        if known is None:
            suffixes = " ".join(SUFFIX_FORMATS)
            raise UsageError(f"--output {output}: give a suffix ({suffixes}) or --format")
        return known
    if known is not None and known != fmt:
        raise UsageError(f"--output {output} is a {known} file name but --format is {fmt}")
    return fmt


def predict(
    inputs: Annotated[
        list[str],
        typer.Argument(
            metavar="INPUT",
            help="Video files, folders (searched recursively) or glob patterns; or one live "
            "source: - (stdin) or an http(s)/rtsp/udp URL.",
            show_default=False,
        ),
    ],
    model: ModelOption = None,
    top_k: Annotated[
        int | None,
        typer.Option(
            "--top-k",
            "-k",
            min=1,
            max=MAX_CLASSES,
            help=f"Labels per video (default: {_DEFAULT_TOP_K}; at most the model's classes).",
            show_default=False,
        ),
    ] = None,
    fmt: Annotated[
        Format | None,
        typer.Option(
            "--format",
            "-f",
            help="Output format (default: the --output file's suffix, else table).",
            show_default=False,
        ),
    ] = None,
    output: Annotated[
        Path | None,
        typer.Option(
            "--output",
            "-o",
            help="Write the results to this file instead of stdout; its suffix (.json .jsonl "
            ".csv .txt) sets the format (default: stdout).",
            show_default=False,
        ),
    ] = None,
    clips: Annotated[
        bool,
        typer.Option("--clips", help="Add each clip's time span and top labels (a timeline)."),
    ] = False,
    device: DeviceOption = "auto",
    precision: PrecisionOption = "auto",
    decode: DecodeOption = "auto",
    threads: ThreadsOption = None,
    batch_size: Annotated[
        int,
        typer.Option(
            "--batch-size", min=1, max=MAX_BATCH, help="Frames per backbone batch (not clips)."
        ),
    ] = 32,
    save_video: Annotated[
        Path | None,
        typer.Option(
            "--save-video",
            help="Folder for one MP4 per input with the attention overlaid (default: none).",
            show_default=False,
        ),
    ] = None,
    report: Annotated[
        Path | None,
        typer.Option(
            "--report",
            help="Also write a self-contained HTML page: top-k, clip timeline plot, and the "
            "overlay videos of --save-video (default: none).",
            show_default=False,
        ),
    ] = None,
    clip_len: Annotated[
        int | None,
        typer.Option(
            "--clip-len",
            min=1,
            max=MAX_CLIP_FRAMES,
            help="Frames per clip (default: the model's).",
            show_default=False,
        ),
    ] = None,
    stride: Annotated[
        int | None,
        typer.Option(
            min=1,
            max=MAX_STRIDE,
            help="Frames between dense clip starts (default: the model's).",
            show_default=False,
        ),
    ] = None,
    max_clips: Annotated[
        int | None,
        typer.Option(
            "--max-clips",
            min=1,
            max=MAX_CLIPS,
            help="Most clips per video (default: the model's).",
            show_default=False,
        ),
    ] = None,
    sampling_mode: Annotated[
        SamplingMode | None,
        typer.Option(
            "--sampling-mode", help="Clip sampling (default: the model's).", show_default=False
        ),
    ] = None,
    quiet: QuietOption = False,
    ood_threshold: Annotated[
        float,
        typer.Option(
            "--ood-threshold",
            min=0.0,
            max=MAX_OOD_THRESHOLD,
            callback=finite,
            help="Out-of-distribution scores above this are 'unknown' (1.0: the limit "
            "calibrated on the training data; larger flags fewer videos).",
        ),
    ] = 1.0,
    no_ood: Annotated[
        bool,
        typer.Option(
            "--no-ood",
            help="No out-of-distribution verdict (default: a verdict when the model has "
            "OOD statistics).",
        ),
    ] = False,
    timeline: Annotated[
        bool,
        typer.Option(
            "--timeline",
            help="Score sliding windows over the whole video and merge them into segments of "
            "one action (default: off; implied for a live source: - for stdin, or an "
            "http(s)/rtsp/udp URL).",
        ),
    ] = False,
    window: WindowOption = None,
    hop: HopOption = None,
    smooth: SmoothOption = 1,
    min_duration: MinDurationOption = 0.0,
    switch_cost: SwitchCostOption = SWITCH_COST,
) -> None:
    """Classify the actions in videos with a GKAAN model.

    The table shows the fused top-k and each stream's top-1: global (GP) pools the whole
    frame, the SA stream adds the statistic attention, the LA stream the learned attention.
    """
    fmt = output_format(fmt, output)
    if report is not None and report.suffix.lower() not in (".html", ".htm"):
        raise UsageError(f"--report {report}: the file name must end in .html")
    from ..video.formats import is_live_source

    options = TimelineOptions(
        window=window,
        hop=hop,
        smooth=smooth,
        min_duration=min_duration,
        switch_cost=switch_cost,
    )
    if timeline or any(is_live_source(item) for item in inputs):  # docs/predict.md#timeline
        _timeline_command(
            inputs,
            options,
            model=model,
            top_k=top_k,
            fmt=fmt,
            output=output,
            report=report,
            save_video=save_video,
            clips=clips,
            predictor_options={
                "device": device,
                "precision": precision,
                "decode": decode,
                "batch_size": batch_size,
                "threads": threads,
                "ood": not no_ood,
                "ood_threshold": ood_threshold,
            },
            sampling_options={
                "mode": sampling_mode,
                "clip_len": clip_len,
                "stride": stride,
                "max_clips": max_clips,
            },
            quiet=quiet,
        )
        return
    options.require_timeline(timeline)

    from ..engine.inputs import expand_inputs
    from ..engine.shard import launch_rank
    from ..fileio import check_output_path

    paths, failures = expand_inputs(inputs)  # the same list in every torchrun process
    main = launch_rank() == 0  # rank 0 checks and writes the outputs, and reports once
    writes = main and (output is not None or report is not None)
    paths_and_model = [*paths, *model_files(model)] if writes else paths  # the model's too
    if main and output is not None:  # before any work; never over an input (e.g. -o x.mp4)
        check_output_path(output, inputs=paths_and_model)
    if main and save_video is not None:
        check_output_path(save_video, kind="dir")
    if main and report is not None:
        check_output_path(report, inputs=paths_and_model)
    for failure in failures if main else []:
        _error(str(failure))
    if not paths:
        raise typer.Exit(1)  # nothing to predict: the model is never loaded
    render = _overlay_renderer() if save_video is not None else None

    net = load_model(model)  # first: a wrong model name is reported before torch loads

    from ..config import SamplingConfig
    from ..engine.distributed import distributed_context
    from ..engine.outputs import format_predictions
    from ..engine.predict import Predictor
    from ..engine.shard import SHARD_TIMEOUT, predict_sharded, rank_device
    from ..fileio import atomic_write_text

    classes = net.config.num_classes
    if main and top_k is not None and top_k > classes:
        stderr.print(
            f"note: the model has {plural(classes, 'class')}: --top-k {top_k} shows {classes}"
        )
    top_k = min(top_k or _DEFAULT_TOP_K, classes)
    overrides = {
        key: value
        for key, value in {
            "mode": sampling_mode,
            "clip_len": clip_len,
            "stride": stride,
            "max_clips": max_clips,
        }.items()
        if value is not None
    }
    sampling = SamplingConfig(**(net.config.sampling.model_dump() | overrides))
    check_sampling_memory(net.config, sampling)
    with distributed_context(device, timeout=SHARD_TIMEOUT) as ctx:  # one process: no-op
        note = DecodeNote(enabled=main and not quiet)
        predictor = Predictor(
            net,
            device=rank_device(ctx, device),
            precision=precision,
            batch_size=batch_size,
            threads=threads,
            sampling=sampling,
            ood=not no_ood,
            ood_threshold=ood_threshold,
            decode=decode,
            on_decode_fallback=note,
        )
        if main and not quiet:
            print_model_line(predictor.model_info, ood_asked=not no_ood)
        note.release()
        started = time.perf_counter()
        # JSONL/CSV on stdout stream a record per video as it finishes (one process)
        stream = (
            _RecordStream(fmt, top_k, clips) if fmt in ("jsonl", "csv") and not output else None
        )
        with progress_bar(enabled=main and not quiet) as on_progress:
            try:
                run = predict_sharded(
                    predictor,
                    paths,
                    ctx,
                    keep_attention=render is not None,
                    on_progress=on_progress,
                    on_error=lambda error: _error(str(error)),
                    on_result=stream,
                )
            except KeyboardInterrupt:
                if stream is not None and not ctx.active:
                    stderr.print(f"interrupted: {plural(stream.written, 'video')} written")
                raise
    if not run.complete:
        return  # another torchrun process: its errors are printed, rank 0 writes the rest
    predictions, failed = run.predictions, run.failed + len(failures)
    if not quiet:
        stderr.print(_throughput(predictions, time.perf_counter() - started))
    overlays: dict[str, Path] = {}
    if render is not None and save_video is not None:
        for prediction, target in zip(
            predictions, _overlay_paths(predictions, save_video), strict=True
        ):
            render(Path(prediction.path), prediction, target)
            overlays[prediction.path] = target
            stderr.print(f"saved {target}")
    if fmt == "table":
        if predictions and output is None:
            width = stdout.width if stdout.is_terminal else None
            path_width = max(24, width // 3) if width is not None else None
            print_table(
                predictions_table(predictions, top_k=top_k, path_width=path_width, width=width)
            )
            if clips:
                for prediction in predictions:
                    print_table(clips_timeline(prediction, width=width))
        elif output is not None:
            tables: list[RenderableType] = (
                [predictions_table(predictions, top_k=top_k)] if predictions else []
            )
            tables += [clips_timeline(p) for p in predictions] if clips else []
            atomic_write_text(output, "".join(table_text(t) for t in tables))
            stderr.print(f"wrote {plural(len(predictions), 'prediction')} to {output}")
    else:
        text = format_predictions(predictions, fmt, top_k=top_k, clips=clips)
        if output is None and stream is not None and stream.written == len(predictions):
            pass  # already streamed, record by record
        elif output is None:
            typer.echo(text, nl=False)
        else:
            atomic_write_text(output, text)
            stderr.print(f"wrote {plural(len(predictions), 'prediction')} to {output}")
    if report is not None:
        _write_report(
            report,
            predictions,
            top_k=top_k,
            overlays=overlays,
            model=predictor.model_info,
        )
    if failed:
        raise typer.Exit(1)


def _stream_header(name: str) -> str:
    return STREAM_TITLES.get(name, name.upper())


def predictions_table(
    predictions: Sequence[VideoPrediction],
    *,
    top_k: int = _DEFAULT_TOP_K,
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


#: The compact tables cut a file name to no fewer characters than this (when it is longer).
_LEAST_NAME = 20
#: The columns a two-column table's borders and padding take.
_TWO_COLUMN_FRAME = 7


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
        table.add_row(str(number), span, Text(clip.verdict(prediction.labels)), f"{prob:.1%}")
    return Group(_path_line("clips of ", prediction.path, "", width), table)


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


def _write_report(
    path: Path,
    predictions: Sequence[VideoPrediction],
    *,
    top_k: int,
    overlays: dict[str, Path],
    model: dict[str, object] | None,
) -> None:
    """The ``--report`` page: records with every class's clip probabilities, overlays linked
    relative to the page."""
    import os

    from ..engine.outputs import prediction_record
    from ..fileio import atomic_write_text
    from ..viz.report import report_html

    records = []
    for prediction in predictions:
        record = prediction_record(prediction, top_k=len(prediction.labels), clips=True)
        record["top_k"] = record["top_k"][:top_k]
        overlay = overlays.get(prediction.path)
        if overlay is not None:
            record["overlay"] = Path(
                os.path.relpath(overlay.resolve(), path.resolve().parent)
            ).as_posix()
        records.append(record)
    atomic_write_text(path, report_html(records, model=model))
    stderr.print(f"wrote report to {path}")


class _RecordStream:
    """``on_result`` for JSONL/CSV on stdout: each video's record (CSV: the header first)
    written and flushed as soon as the video is done, so a reader (or Ctrl-C) keeps what
    finished."""

    def __init__(self, fmt: str, top_k: int, clips: bool) -> None:
        self.fmt, self.top_k, self.clips = fmt, top_k, clips
        self.written = 0

    def __call__(self, prediction: VideoPrediction) -> None:
        from ..engine.outputs import format_predictions

        text = format_predictions([prediction], self.fmt, top_k=self.top_k, clips=self.clips)
        if self.fmt == "csv" and self.written:
            text = text.split("\n", 1)[1]  # the header once
        typer.echo(text, nl=False)  # flushed: a reader sees each record at once
        self.written += 1


def print_model_line(block: dict[str, Any], *, ood_asked: bool = True) -> None:
    """The ``model:`` line on stderr, then, when a verdict was asked for and the model has
    no OOD statistics, a note saying none can be given and how to get one."""
    from ..model.describe import NO_OOD_WORDS, model_summary

    stderr.print(model_summary(block))
    if ood_asked and block.get("ood") is None:
        stderr.print(f"note: out-of-distribution verdict: {NO_OOD_WORDS}")


def verdict(prediction: VideoPrediction) -> str:
    """``unknown (closest: jogging 56%)`` (:attr:`VideoPrediction.verdict`) for a video judged
    out of distribution, else ''."""
    return prediction.verdict if prediction.in_distribution is False else ""


def _verdicts(predictions: Sequence[VideoPrediction]) -> list[str | None] | None:
    """The column of videos judged unknown (their :attr:`VideoPrediction.verdict`; blank
    where the top-1 beside it is the answer), or None when no video is judged unknown."""
    verdicts = [verdict(p) or None for p in predictions]
    return verdicts if any(verdicts) else None


def _throughput(
    predictions: Sequence[VideoPrediction] | Sequence[TimelinePrediction], seconds: float
) -> str:
    """``3 videos, 720 frames in 9.1 s (79.1 frames/s)``: frames decoded and classified."""
    frames = sum(p.processed_frames for p in predictions)
    rate = frames / seconds if seconds > 0 else 0.0
    noun = "video" if len(predictions) == 1 else "videos"
    return f"{len(predictions)} {noun}, {frames} frames in {seconds:.1f} s ({rate:.1f} frames/s)"


def _error(message: str) -> None:
    stderr.print(Text.assemble(("error: ", "bold red"), " ".join(message.split())))


def _overlay_renderer() -> Renderer:
    """``render_overlay_video`` from gkaan_cli.viz.render, or a UsageError when absent."""
    try:
        from ..viz.render import render_overlay_video
    except ImportError:
        raise UsageError("--save-video: attention overlay rendering is not available yet") from None
    return render_overlay_video


def _overlay_paths(predictions: list[VideoPrediction], folder: Path) -> list[Path]:
    """``<folder>/<stem>.gkaan.mp4`` per prediction, numbered when stems repeat."""
    from ..fileio import same_file

    taken: set[str] = set()
    targets: list[Path] = []
    inputs = [Path(prediction.path) for prediction in predictions]
    for prediction in predictions:
        stem = Path(prediction.path).stem
        name, n = f"{stem}.gkaan.mp4", 1
        while name in taken or any(same_file(folder / name, video) for video in inputs):
            n += 1
            name = f"{stem}-{n}.gkaan.mp4"
        taken.add(name)
        targets.append(folder / name)
    return targets


def _timeline_command(
    inputs: Sequence[str],
    options: TimelineOptions,
    *,
    model: str | None,
    top_k: int | None,
    fmt: Format,
    output: Path | None,
    report: Path | None,
    save_video: Path | None,
    clips: bool,
    predictor_options: dict[str, Any],
    sampling_options: dict[str, Any],
    quiet: bool,
) -> None:
    """``predict --timeline``: the timeline of each file, or of the one live source; exit 1
    when an input failed or the stream dropped (docs/predict.md#timeline)."""
    from ..video.formats import is_live_source

    live = [item for item in inputs if is_live_source(item)]
    if live and len(inputs) > 1:
        raise UsageError("a live source (- or a URL) must be the only input")
    if save_video is not None:
        raise UsageError("--save-video does not apply to --timeline")
    if clips:
        raise UsageError("--clips does not apply to --timeline (the windows are the timeline)")

    from ..engine.inputs import expand_inputs
    from ..fileio import check_output_path

    paths, failures = expand_inputs([] if live else inputs)
    for target in (output, report):
        if target is not None:  # before any work; never over an input or the model's files
            check_output_path(target, inputs=[*paths, *model_files(model)])
    for failure in failures:
        _error(str(failure))
    if not paths and not live:
        raise typer.Exit(1)  # nothing to predict: the model is never loaded

    from ..config import SamplingConfig
    from ..engine.predict import Predictor

    net = load_model(model)
    classes = net.config.num_classes
    if top_k is not None and top_k > classes:
        stderr.print(
            f"note: the model has {plural(classes, 'class')}: --top-k {top_k} shows {classes}"
        )
    top_k = min(top_k or _DEFAULT_TOP_K, classes)
    overrides = {key: value for key, value in sampling_options.items() if value is not None}
    sampling = SamplingConfig(**(net.config.sampling.model_dump() | overrides))
    check_sampling_memory(net.config, sampling)
    note = DecodeNote(enabled=not quiet)
    predictor = Predictor(net, sampling=sampling, on_decode_fallback=note, **predictor_options)
    if not quiet:
        print_model_line(predictor.model_info, ood_asked=predictor_options.get("ood", True))
    note.release()
    render = {"fmt": fmt, "output": output, "report": report, "top_k": top_k}
    if live:
        failed = _live_timeline(predictor, live[0], options, quiet=quiet, **render)
    else:
        failed = len(failures) + _file_timelines(predictor, paths, options, quiet=quiet, **render)
    if failed:
        raise typer.Exit(1)


def _file_timelines(
    predictor: Predictor,
    paths: Sequence[Path],
    options: TimelineOptions,
    *,
    fmt: Format,
    output: Path | None,
    report: Path | None,
    top_k: int,
    quiet: bool,
) -> int:
    """Each file's timeline, rendered; returns the number of files that failed."""
    from ..engine.timeline import predict_timeline
    from ..errors import BadVideoError

    timelines: list[TimelinePrediction] = []
    failed = 0
    started = time.perf_counter()
    with progress_bar(enabled=not quiet) as on_progress:
        on_progress(ProgressEvent("videos", 0, len(paths)))
        for done, path in enumerate(paths, start=1):
            try:
                timelines.append(
                    predict_timeline(
                        predictor,
                        path,
                        window=options.window,
                        hop=options.hop,
                        smooth=options.smooth,
                        min_duration=options.min_duration,
                        switch_cost=options.switch_cost,
                        on_progress=on_progress,
                    )
                )
            except BadVideoError as error:
                failed += 1
                _error(str(error))
            on_progress(ProgressEvent("videos", done, len(paths)))
    if not quiet:
        stderr.print(_throughput(timelines, time.perf_counter() - started))
    _render_timelines(timelines, fmt=fmt, output=output, report=report, top_k=top_k)
    return failed


def _live_timeline(
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
    """The live source's timeline: one flushed line per window, then the segments so far;
    returns 1 when the stream dropped. Ctrl-C renders the segments, then re-raises."""
    from ..engine.timeline import stream_timeline

    live = stream_timeline(predictor, source, window=options.window, hop=options.hop)
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
    timeline = live.result(
        smooth=options.smooth,
        min_duration=options.min_duration,
        switch_cost=options.switch_cost,
    )
    if live.dropped is not None and source == "-" and not timeline.processed_frames:
        _error(  # nothing decoded from a pipe: most often an MP4, which needs seeking
            f"-: nothing could be decoded from stdin ({live.dropped}); a pipe cannot be "
            "seeked, and MP4/MOV keep their index at the end: pipe a streamable format "
            "instead (ffmpeg -i video.mp4 -f mpegts - | gkaan predict -), or pass the file"
        )
        raise typer.Exit(1)  # no window: no table to show
    elif live.dropped is not None:
        _error(
            f"{source}: the stream dropped after {timeline.info.duration:.1f} s "
            f"({live.dropped}); the segments so far follow"
        )
    elif interrupted and not quiet:
        stderr.print(
            f"interrupted after {timeline.info.duration:.1f} s; the segments so far follow"
        )
    _render_timelines([timeline], fmt=fmt, output=output, report=report, top_k=top_k)
    if interrupted:
        raise KeyboardInterrupt
    return int(live.dropped is not None)


def window_line(window: WindowPrediction, labels: Sequence[str]) -> str:
    """One live line: ``  12.00-13.20 s  boxing 93.1%``, or the window's verdict
    (``unknown (closest: boxing 41%)``) when it is judged out of distribution."""
    from ..engine.predict import verdict_line

    label, prob = window.top_k(labels, 1)[0]
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


def _render_timelines(
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
        width = stdout.width if stdout.is_terminal and output is None else None
        tables = [segments_table(t, width=width) for t in timelines]
        if output is None:
            for table in tables:
                print_table(table)
        else:
            atomic_write_text(output, "".join(table_text(t) for t in tables))
            stderr.print(f"wrote {plural(len(timelines), 'timeline')} to {output}")
    else:
        text = format_timelines(timelines, fmt, top_k=top_k)
        if output is None:
            typer.echo(text, nl=False)
        else:
            atomic_write_text(output, text)
            stderr.print(f"wrote {plural(len(timelines), 'timeline')} to {output}")
    if report is not None:
        _write_timeline_report(report, timelines, top_k=top_k)


#: Above a timeline page's ranked labels: they are the windows' mean, not the video's answer.
TIMELINE_MEAN_NOTE = (
    "Mean over the timeline's windows, not the video's answer: the answer for the whole "
    "video is gkaan predict without --timeline (the clips of the model's own sampling)."
)


def _write_timeline_report(
    path: Path, timelines: Sequence[TimelinePrediction], *, top_k: int
) -> None:
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
        record["top_k_note"] = TIMELINE_MEAN_NOTE
        record["clips"] = record.pop("windows")
        records.append(record)
    model = timelines[0].model if timelines else None
    atomic_write_text(path, report_html(records, model=model, title="gkaan timeline"))
    stderr.print(f"wrote report to {path}")
