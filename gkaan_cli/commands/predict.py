"""``gkaan predict``: classify the actions in videos (docs/predict.md).

Exit codes: 0 every input predicted, 1 some input failed (one ``error: <file>: <reason>``
line each on stderr, the others still predicted), 2 usage error. Options and input paths are
checked before torch is imported, so a mistyped name is reported at once. Under ``torchrun``
each process predicts its share and rank 0 alone prints and writes the merged results
(docs/predict.md#distributed).
``--timeline`` (and a live source: ``-`` or a URL) scores windows over whole videos and prints
segments (docs/predict.md#timeline): one flushed line per window for a live source, then the
segments so far at its end, on Ctrl-C (exit 130) or when it drops (exit 1).

The work is :mod:`gkaan_cli.apis.predict` and :mod:`gkaan_cli.apis.timeline`; this module
parses the options, prints (tables: :mod:`.tables`) and chooses the exit code.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import RenderableType
from rich.text import Text

from ..apis.options import PredictorOptions, SamplingOverrides, TimelineOptions
from ..apis.predict import PredictJob, PredictRequest
from ..config import SWITCH_COST
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
    WindowOption,
    progress_bar,
    stderr,
    stdout,
)
from .predict_options import (
    BatchSizeOption,
    ClipLenOption,
    ClipsOption,
    Format,
    FormatOption,
    MaxClipsOption,
    NoOodOption,
    OodThresholdOption,
    OutputOption,
    ReportOption,
    SamplingModeOption,
    SaveVideoOption,
    StrideOption,
    TimelineFlagOption,
    TopKOption,
    output_format,
)
from .tables import (
    clips_timeline,
    predictions_table,
    print_table,
    segments_table,
    table_text,
    window_line,
)

if TYPE_CHECKING:
    from ..engine.predict import Predictor
    from ..engine.timeline import TimelinePrediction
    from ..model.gkaan import GKAAN

__all__ = ["output_format", "predict", "print_model_line", "say_model"]


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
    top_k: TopKOption = None,
    fmt: FormatOption = None,
    output: OutputOption = None,
    clips: ClipsOption = False,
    device: DeviceOption = "auto",
    precision: PrecisionOption = "auto",
    decode: DecodeOption = "auto",
    threads: ThreadsOption = None,
    batch_size: BatchSizeOption = 32,
    save_video: SaveVideoOption = None,
    report: ReportOption = None,
    clip_len: ClipLenOption = None,
    stride: StrideOption = None,
    max_clips: MaxClipsOption = None,
    sampling_mode: SamplingModeOption = None,
    quiet: QuietOption = False,
    ood_threshold: OodThresholdOption = 1.0,
    no_ood: NoOodOption = False,
    timeline: TimelineFlagOption = False,
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
    timeline_options = TimelineOptions(
        window=window,
        hop=hop,
        smooth=smooth,
        min_duration=min_duration,
        switch_cost=switch_cost,
    )
    request = PredictRequest(
        inputs,
        model=model,
        top_k=top_k,
        clips=clips,
        output=output,
        report=report,
        save_video=save_video,
        predictor=PredictorOptions(
            device=device,
            precision=precision,
            decode=decode,
            batch_size=batch_size,
            threads=threads,
            ood=not no_ood,
            ood_threshold=ood_threshold,
        ),
        sampling=SamplingOverrides(
            mode=sampling_mode, clip_len=clip_len, stride=stride, max_clips=max_clips
        ),
        timeline=timeline_options,
    )
    if timeline or request.live is not None:  # docs/predict.md#timeline
        _timeline_command(request, fmt=fmt, quiet=quiet)  # plan_predict checks the request
        return
    timeline_options.require_timeline(timeline)
    _videos_command(replace(request, timeline=None), fmt=fmt, quiet=quiet)


def _videos_command(request: PredictRequest, *, fmt: Format, quiet: bool) -> None:
    """One answer per video (and its clips with ``--clips``); exit 1 when an input failed."""
    from ..apis.predict import (
        RecordStream,
        overlay_renderer,
        plan_predict,
        predict_videos,
        render_overlays,
        throughput_line,
        write_predict_report,
    )
    from ..engine.shard import launch_rank

    main = launch_rank() == 0  # rank 0 checks and writes the outputs, and reports once
    job = plan_predict(request, main=main)  # the same videos in every torchrun process
    for failure in job.failures if main else []:
        _error(str(failure))
    if not job.paths:
        raise typer.Exit(1)  # nothing to predict: the model is never loaded
    render = overlay_renderer() if request.save_video is not None else None
    net, top_k = _open_model(job, say=main)
    # JSONL/CSV on stdout stream a record per video as it finishes (one process)
    stream = None
    if fmt in ("jsonl", "csv") and request.output is None:
        stream = RecordStream(fmt, top_k, request.clips, lambda text: typer.echo(text, nl=False))
    note = DecodeNote(enabled=main and not quiet)
    with progress_bar(enabled=main and not quiet) as on_progress:
        try:
            run = predict_videos(
                job,
                net,
                keep_attention=render is not None,
                on_ready=lambda predictor: say_model(
                    predictor, note, quiet=quiet, ood_asked=request.predictor.ood
                ),
                on_progress=on_progress,
                on_error=lambda error: _error(str(error)),
                on_result=stream,
                on_decode_fallback=note,
            )
        except KeyboardInterrupt:
            if stream is not None and main:
                stderr.print(f"interrupted: {plural(stream.written, 'video')} written")
            raise
    if not run.complete:
        return  # another torchrun process: its errors are printed, rank 0 writes the rest
    predictions, output = run.predictions, request.output
    if not quiet:
        stderr.print(throughput_line(predictions, run.seconds))
    overlays = {}
    if render is not None and request.save_video is not None:
        overlays = render_overlays(
            predictions,
            request.save_video,
            render,
            on_saved=lambda target: stderr.print(f"saved {target}"),
        )
    if fmt == "table":
        width = stdout.width if stdout.is_terminal and output is None else None
        tables: list[RenderableType] = []
        if predictions:
            path_width = max(24, width // 3) if width is not None else None
            tables.append(
                predictions_table(predictions, top_k=top_k, path_width=path_width, width=width)
            )
        tables += [clips_timeline(p, width=width) for p in predictions] if request.clips else []
        _emit_tables(tables, output, plural(len(predictions), "prediction"))
    elif not (output is None and stream is not None and stream.written == len(predictions)):
        from ..engine.outputs import format_predictions

        text = format_predictions(predictions, fmt, top_k=top_k, clips=request.clips)
        _emit_text(text, output, plural(len(predictions), "prediction"))
    if request.report is not None:
        write_predict_report(
            request.report, predictions, top_k=top_k, overlays=overlays, model=run.model
        )
        stderr.print(f"wrote report to {request.report}")
    if run.failed:
        raise typer.Exit(1)


def _open_model(job: PredictJob, *, say: bool = True) -> tuple[GKAAN, int]:
    """The job's model and the labels a result shows (a note when ``--top-k`` asks more
    than the model's classes)."""
    from ..apis.predict import shown_top_k

    net = job.open_model()
    classes, asked = net.config.num_classes, job.request.top_k
    if say and asked is not None and asked > classes:
        stderr.print(
            f"note: the model has {plural(classes, 'class')}: --top-k {asked} shows {classes}"
        )
    return net, shown_top_k(asked, classes)


def say_model(
    predictor: Predictor, note: DecodeNote, *, quiet: bool, ood_asked: bool = True
) -> None:
    """The model line (:func:`print_model_line`), then why CUDA decoding cannot be used
    (when it was asked for)."""
    if not quiet:
        print_model_line(predictor.model_info, ood_asked=ood_asked)
    if predictor.decode_fallback is not None:
        note(predictor.decode_fallback)


def _emit_tables(tables: Sequence[RenderableType], output: Path | None, what: str) -> None:
    """Print ``tables`` on stdout, or write them in full to ``output``."""
    if output is None:
        for table in tables:
            print_table(table)
    else:
        _emit_text("".join(table_text(t) for t in tables), output, what)


def _emit_text(text: str, output: Path | None, what: str) -> None:
    """Print ``text`` on stdout, or write it to ``output``."""
    if output is None:
        typer.echo(text, nl=False)
    else:
        from ..fileio import atomic_write_text

        atomic_write_text(output, text)
        stderr.print(f"wrote {what} to {output}")


def print_model_line(block: dict[str, object], *, ood_asked: bool = True) -> None:
    """The ``model:`` line on stderr, then, when a verdict was asked for and the model has
    no OOD statistics, a note saying none can be given and how to get one."""
    from ..model.describe import NO_OOD_WORDS, model_summary

    stderr.print(model_summary(block))
    if ood_asked and block.get("ood") is None:
        stderr.print(f"note: out-of-distribution verdict: {NO_OOD_WORDS}")


def _error(message: str) -> None:
    stderr.print(Text.assemble(("error: ", "bold red"), " ".join(message.split())))


def _timeline_command(request: PredictRequest, *, fmt: Format, quiet: bool) -> None:
    """``predict --timeline``: the timeline of each file, or of the one live source; exit 1
    when an input failed or the stream dropped (docs/predict.md#timeline)."""
    from ..apis.predict import open_predictor, plan_predict, throughput_line
    from ..apis.timeline import predict_timelines

    job = plan_predict(request)
    for failure in job.failures:
        _error(str(failure))
    if not job.paths and request.live is None:
        raise typer.Exit(1)  # nothing to predict: the model is never loaded
    net, top_k = _open_model(job)
    note = DecodeNote(enabled=not quiet)
    predictor = open_predictor(net, request.predictor, request.sampling, on_decode_fallback=note)
    say_model(predictor, note, quiet=quiet, ood_asked=request.predictor.ood)
    render = {"fmt": fmt, "output": request.output, "report": request.report, "top_k": top_k}
    if request.live is not None:
        failed = _live_timeline(predictor, request, quiet=quiet, **render)
    else:
        with progress_bar(enabled=not quiet) as on_progress:
            run = predict_timelines(
                predictor,
                job.paths,
                request.timeline,
                on_progress=on_progress,
                on_error=lambda error: _error(str(error)),
            )
        if not quiet:
            stderr.print(throughput_line(run.timelines, run.seconds))
        _render_timelines(run.timelines, **render)
        failed = len(job.failures) + run.failed
    if failed:
        raise typer.Exit(1)


def _live_timeline(
    predictor: Predictor,
    request: PredictRequest,
    *,
    fmt: Format,
    output: Path | None,
    report: Path | None,
    top_k: int,
    quiet: bool,
) -> int:
    """The live source's timeline: one flushed line per window, then the segments so far;
    returns 1 when the stream dropped. Ctrl-C renders the segments, then re-raises."""
    from ..apis.timeline import open_live_timeline

    source, options = str(request.live), request.timeline or TimelineOptions()
    live = open_live_timeline(predictor, source, options)
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
                typer.echo(window_line(window), err=lines_to_stderr)
    except KeyboardInterrupt:
        interrupted = True
    finally:
        live.close()
    timeline = live.result(**options.merge())
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


def _render_timelines(
    timelines: Sequence[TimelinePrediction],
    *,
    fmt: Format,
    output: Path | None,
    report: Path | None,
    top_k: int,
) -> None:
    """The timelines as segment tables or ``fmt`` text, then the report page."""
    from ..apis.timeline import write_timeline_report
    from ..engine.outputs import format_timelines

    what = plural(len(timelines), "timeline")
    if fmt == "table":
        width = stdout.width if stdout.is_terminal and output is None else None
        _emit_tables([segments_table(t, width=width) for t in timelines], output, what)
    else:
        _emit_text(format_timelines(timelines, fmt, top_k=top_k), output, what)
    if report is not None:
        write_timeline_report(report, timelines, top_k=top_k)
        stderr.print(f"wrote report to {report}")
