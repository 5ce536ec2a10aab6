"""``gkaan predict`` as a library: a typed request, its inputs and outputs checked before any
work, the videos predicted (sharded under ``torchrun``), overlays rendered and the report
page written (docs/predict.md#library).

>>> job = plan_predict(PredictRequest(["clips/"], report=Path("out.html")))
>>> model = job.open_model()
>>> run = predict_videos(job, model)
>>> write_predict_report(job.request.report, run.predictions, top_k=5, model=run.model)

Nothing here prints: progress, errors and results reach the caller through callbacks and
return values, and the caller words them.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import BadVideoError, UsageError
from .model import ModelSource, find_model, open_model
from .options import PredictorOptions, SamplingOverrides, TimelineOptions

if TYPE_CHECKING:
    from ..config import OutputFormat
    from ..engine.predict import Predictor, VideoPrediction
    from ..engine.timeline import TimelinePrediction
    from ..model.gkaan import GKAAN
    from ..progress import ProgressCallback

__all__ = [
    "DEFAULT_TOP_K",
    "PredictJob",
    "PredictRequest",
    "PredictRun",
    "RecordStream",
    "open_predictor",
    "overlay_paths",
    "overlay_renderer",
    "plan_predict",
    "predict_report_records",
    "predict_videos",
    "render_overlays",
    "shown_top_k",
    "throughput_line",
    "write_predict_report",
]

#: Labels per video when the request gives no ``top_k``.
DEFAULT_TOP_K = 5

#: ``render_overlay_video(video_path, prediction, out_path)`` from gkaan_cli.viz.render.
Renderer = Callable[[Path, "VideoPrediction", Path], object]


@dataclass(frozen=True)
class PredictRequest:
    """What to predict and where the results go.

    Attributes:
        inputs: video files, folders (searched recursively) or glob patterns; or one live
            source (``-`` or a URL) for a timeline.
        model: the model spec (None: the registry's default model).
        top_k: labels per video (None: :data:`DEFAULT_TOP_K`, at most the model's classes).
        clips: add each clip's span and labels to the results.
        output: the results file (None: the caller shows them).
        report: the HTML page to write (None: none).
        save_video: the folder for one overlay MP4 per input (None: none).
        predictor: how the Predictor runs.
        sampling: clip sampling overrides.
        timeline: sliding windows merged into segments (None: one answer per video).
    """

    inputs: Sequence[str]
    model: str | None = None
    top_k: int | None = None
    clips: bool = False
    output: Path | None = None
    report: Path | None = None
    save_video: Path | None = None
    predictor: PredictorOptions = field(default_factory=PredictorOptions)
    sampling: SamplingOverrides = field(default_factory=SamplingOverrides)
    timeline: TimelineOptions | None = None

    @property
    def live(self) -> str | None:
        """The live source (``-`` or a URL) among the inputs, else None."""
        from ..video.formats import is_live_source

        return next((item for item in self.inputs if is_live_source(item)), None)

    def check(self) -> None:
        """Refuse combinations that cannot work, before anything is read.

        Raises:
            UsageError: a report that is not ``.html``, a live source beside other inputs,
                or overlays or clips asked of a timeline.
        """
        if self.report is not None and self.report.suffix.lower() not in (".html", ".htm"):
            raise UsageError(f"--report {self.report}: the file name must end in .html")
        if self.timeline is None:
            return
        if self.live is not None and len(self.inputs) > 1:
            raise UsageError("a live source (- or a URL) must be the only input")
        if self.save_video is not None:
            raise UsageError("--save-video does not apply to --timeline")
        if self.clips:
            raise UsageError("--clips does not apply to --timeline (the windows are the timeline)")


@dataclass
class PredictJob:
    """A checked request: its videos found, its output paths checked (never over an input
    or the model's files), and its model resolved once (:attr:`source`)."""

    request: PredictRequest
    paths: list[Path]
    #: Inputs that are no video (missing, unreadable, not a regular file), one error each.
    failures: list[BadVideoError]
    source: ModelSource | None = None

    def open_model(self) -> GKAAN:
        """The request's model (resolved here unless :func:`plan_predict` did).

        Raises:
            GkaanError: the spec names no model, or its files are no valid checkpoint.
        """
        if self.source is None:
            self.source = find_model(self.request.model)
        return open_model(self.source)


def plan_predict(request: PredictRequest, *, main: bool = True) -> PredictJob:
    """Find the request's videos and check where it writes, before any work.

    ``main``: this process writes the outputs (rank 0 under ``torchrun``; the others find
    the same videos and check nothing). The model is resolved here when there is a file to
    write (its files are inputs an output may not replace), else by
    :meth:`PredictJob.open_model`, so nothing is downloaded when no video is found.

    Raises:
        UsageError: an unwritable output, or one that is an input or the model's file.
    """
    from ..engine.inputs import expand_inputs
    from ..fileio import check_output_path

    request.check()
    paths, failures = expand_inputs([] if request.live is not None else request.inputs)
    writes = main and (request.output is not None or request.report is not None)
    source = find_model(request.model) if writes else None
    protected = [*paths, *(source.files if source is not None else [])]
    if main and request.output is not None:
        check_output_path(request.output, inputs=protected)
    if main and request.save_video is not None:
        check_output_path(request.save_video, kind="dir")
    if main and request.report is not None:
        check_output_path(request.report, inputs=protected)
    return PredictJob(request, paths, failures, source)


def shown_top_k(requested: int | None, classes: int) -> int:
    """The labels a result shows: ``requested`` (default :data:`DEFAULT_TOP_K`), at most
    ``classes``."""
    return min(requested or DEFAULT_TOP_K, classes)


def open_predictor(
    model: GKAAN,
    options: PredictorOptions | None = None,
    sampling: SamplingOverrides | None = None,
    *,
    device: str | None = None,
    on_decode_fallback: Callable[[str], object] | None = None,
) -> Predictor:
    """A :class:`~gkaan_cli.engine.predict.Predictor` for ``model`` with ``options`` and
    the model's sampling with ``sampling``'s overrides; ``device`` replaces the options'
    (a torchrun process's own). Why CUDA decoding cannot be used is
    ``predictor.decode_fallback``; ``on_decode_fallback`` hears each file that falls back.

    Raises:
        UsageError: sampling this machine cannot hold, or what the Predictor refuses.
    """
    from ..engine.predict import Predictor

    options = options if options is not None else PredictorOptions()
    sampling = sampling if sampling is not None else SamplingOverrides()
    return Predictor(
        model,
        device=device if device is not None else options.device,
        precision=options.precision,
        batch_size=options.batch_size,
        threads=options.threads,
        sampling=sampling.apply(model.config),
        ood=options.ood,
        ood_threshold=options.ood_threshold,
        decode=options.decode,
        on_decode_fallback=on_decode_fallback,
    )


@dataclass
class PredictRun:
    """What :func:`predict_videos` returns.

    Attributes:
        predictions: in input order (under torchrun, on rank 0: every process's).
        failed: videos that could not be predicted, the request's bad inputs included.
        complete: whether this process holds every result (False on a torchrun rank > 0,
            which only predicted its share).
        seconds: the time predicting took.
        model: the model block every prediction carries.
    """

    predictions: list[VideoPrediction]
    failed: int
    complete: bool
    seconds: float
    model: dict[str, Any]


def predict_videos(
    job: PredictJob,
    model: GKAAN,
    *,
    keep_attention: bool = False,
    on_ready: Callable[[Predictor], object] | None = None,
    on_progress: ProgressCallback | None = None,
    on_error: Callable[[BadVideoError], object] | None = None,
    on_result: Callable[[VideoPrediction], object] | None = None,
    on_decode_fallback: Callable[[str], object] | None = None,
) -> PredictRun:
    """Predict the job's videos with ``model``, each ``torchrun`` process its share.

    Args:
        keep_attention: keep the attention maps (for overlays).
        on_ready: called on rank 0 with the Predictor once it is built, before any video.
        on_progress, on_error, on_result: as :func:`~gkaan_cli.engine.shard.predict_sharded`.
        on_decode_fallback: as :func:`open_predictor`.
    """
    from ..engine.distributed import distributed_context
    from ..engine.shard import SHARD_TIMEOUT, predict_sharded, rank_device

    options = job.request.predictor
    with distributed_context(options.device, timeout=SHARD_TIMEOUT) as ctx:  # one process: no-op
        predictor = open_predictor(
            model,
            options,
            job.request.sampling,
            device=rank_device(ctx, options.device),
            on_decode_fallback=on_decode_fallback,
        )
        if on_ready is not None and ctx.is_main:
            on_ready(predictor)
        started = time.perf_counter()
        run = predict_sharded(
            predictor,
            job.paths,
            ctx,
            keep_attention=keep_attention,
            on_progress=on_progress,
            on_error=on_error,
            on_result=on_result,
        )
    return PredictRun(
        run.predictions,
        run.failed + len(job.failures),
        run.complete,
        time.perf_counter() - started,
        predictor.model_info,
    )


def throughput_line(
    results: Sequence[VideoPrediction] | Sequence[TimelinePrediction], seconds: float
) -> str:
    """``3 videos, 720 frames in 9.1 s (79.1 frames/s)``: frames decoded and classified."""
    from ..words import plural

    frames = sum(p.processed_frames for p in results)
    rate = frames / seconds if seconds > 0 else 0.0
    videos = plural(len(results), "video")
    return f"{videos}, {frames} frames in {seconds:.1f} s ({rate:.1f} frames/s)"


class RecordStream:
    """``on_result`` for JSONL or CSV: each video's record (CSV: the header first) handed to
    ``write`` as soon as the video is done, so a reader (or Ctrl-C) keeps what finished."""

    def __init__(
        self, fmt: OutputFormat, top_k: int, clips: bool, write: Callable[[str], object]
    ) -> None:
        self.fmt, self.top_k, self.clips, self.write = fmt, top_k, clips, write
        #: Records written so far.
        self.written = 0

    def __call__(self, prediction: VideoPrediction) -> None:
        from ..engine.outputs import format_predictions

        text = format_predictions([prediction], self.fmt, top_k=self.top_k, clips=self.clips)
        if self.fmt == "csv" and self.written:
            text = text.split("\n", 1)[1]  # the header once
        self.write(text)
        self.written += 1


def overlay_renderer() -> Renderer:
    """``render_overlay_video`` from gkaan_cli.viz.render.

    Raises:
        UsageError: overlay rendering is not available in this installation.
    """
    try:
        from ..viz.render import render_overlay_video
    except ImportError:
        raise UsageError("--save-video: attention overlay rendering is not available yet") from None
    return render_overlay_video


def overlay_paths(predictions: Sequence[VideoPrediction], folder: Path) -> list[Path]:
    """``<folder>/<stem>.gkaan.mp4`` per prediction, numbered when stems repeat or a name
    is one of the input videos."""
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


def render_overlays(
    predictions: Sequence[VideoPrediction],
    folder: Path,
    render: Renderer,
    *,
    on_saved: Callable[[Path], object] | None = None,
) -> dict[str, Path]:
    """Render each prediction's overlay video into ``folder`` (:func:`overlay_paths`);
    returns video path -> overlay file."""
    overlays: dict[str, Path] = {}
    for prediction, target in zip(predictions, overlay_paths(predictions, folder), strict=True):
        render(Path(prediction.path), prediction, target)
        overlays[prediction.path] = target
        if on_saved is not None:
            on_saved(target)
    return overlays


def predict_report_records(
    page: Path,
    predictions: Sequence[VideoPrediction],
    *,
    top_k: int,
    overlays: Mapping[str, Path] | None = None,
) -> list[dict[str, Any]]:
    """The report's records: every class's clip probabilities, the top ``top_k``, and each
    overlay linked relative to ``page``."""
    from ..engine.outputs import prediction_record

    records = []
    for prediction in predictions:
        record = prediction_record(prediction, top_k=len(prediction.labels), clips=True)
        record["top_k"] = record["top_k"][:top_k]
        overlay = (overlays or {}).get(prediction.path)
        if overlay is not None:
            record["overlay"] = Path(
                os.path.relpath(overlay.resolve(), page.resolve().parent)
            ).as_posix()
        records.append(record)
    return records


def write_predict_report(
    path: Path,
    predictions: Sequence[VideoPrediction],
    *,
    top_k: int,
    overlays: Mapping[str, Path] | None = None,
    model: Mapping[str, Any] | None = None,
) -> None:
    """Write the self-contained HTML page of ``predictions`` (temp-then-rename)."""
    from ..fileio import atomic_write_text
    from ..viz.report import report_html

    records = predict_report_records(path, predictions, top_k=top_k, overlays=overlays)
    atomic_write_text(path, report_html(records, model=model))
