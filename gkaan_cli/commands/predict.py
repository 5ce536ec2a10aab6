"""``gkaan predict``: classify the actions in videos (docs/predict.md).

Exit codes: 0 every input predicted, 1 some input failed (one ``error: <file>: <reason>``
line each on stderr, the others still predicted), 2 usage error.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal, get_args

import typer
from rich.table import Table
from rich.text import Text

from ..config import OutputFormat, SamplingMode
from ..errors import UsageError
from ..progress import ProgressEvent
from .common import (
    DeviceOption,
    ModelOption,
    PrecisionOption,
    ThreadsOption,
    load_model,
    progress_bar,
    stderr,
    stdout,
)

if TYPE_CHECKING:
    from ..engine.predict import VideoPrediction

#: ``render_overlay_video(video_path, prediction, out_path)`` from gkaan_cli.viz.render.
Renderer = Callable[[Path, "VideoPrediction", Path], object]

__all__ = ["predict", "predictions_table", "verdict"]

#: ``--output`` file suffix -> format, for every machine-readable format.
_SUFFIX_FORMATS: dict[str, OutputFormat] = {f".{fmt}": fmt for fmt in get_args(OutputFormat)}


def predict(
    inputs: Annotated[
        list[str],
        typer.Argument(
            help="Video files, folders (searched recursively) or glob patterns.",
            show_default=False,
        ),
    ],
    model: ModelOption = None,
    top_k: Annotated[int, typer.Option("--top-k", "-k", min=1, help="Labels per video.")] = 5,
    fmt: Annotated[
        Literal["table", OutputFormat] | None,
        typer.Option(
            "--format",
            "-f",
            help="Output format (default: table, or the --output file's suffix).",
            show_default=False,
        ),
    ] = None,
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="Write json/jsonl/csv here instead of stdout."),
    ] = None,
    clips: Annotated[
        bool, typer.Option("--clips", help="Add each clip's start/end and top labels.")
    ] = False,
    device: DeviceOption = "auto",
    precision: PrecisionOption = "fp32",
    threads: ThreadsOption = None,
    batch_size: Annotated[
        int, typer.Option("--batch-size", min=1, help="Frames per backbone batch.")
    ] = 32,
    save_video: Annotated[
        Path | None,
        typer.Option(
            "--save-video", help="Folder for one MP4 per input with the attention overlaid."
        ),
    ] = None,
    clip_len: Annotated[
        int | None, typer.Option("--clip-len", min=1, help="Frames per clip (default: model's).")
    ] = None,
    stride: Annotated[
        int | None, typer.Option(min=1, help="Frames between dense clip starts (model's).")
    ] = None,
    max_clips: Annotated[
        int | None, typer.Option("--max-clips", min=1, help="Most clips per video (model's).")
    ] = None,
    sampling_mode: Annotated[
        SamplingMode | None,
        typer.Option("--sampling-mode", help="Clip sampling (default: the model's)."),
    ] = None,
    ood_threshold: Annotated[
        float,
        typer.Option(
            "--ood-threshold",
            help="Out-of-distribution scores above this are 'unknown' (1.0: the limit "
            "calibrated on the training data; larger flags fewer videos).",
        ),
    ] = 1.0,
    no_ood: Annotated[
        bool, typer.Option("--no-ood", help="No out-of-distribution verdict.")
    ] = False,
) -> None:
    """Classify the actions in videos with a GKAAN model."""
    fmt = fmt or (_SUFFIX_FORMATS.get(output.suffix.lower(), "json") if output else "table")
    if output is not None and fmt == "table":
        raise UsageError("--output needs --format json, jsonl or csv")
    render = _overlay_renderer() if save_video is not None else None

    from ..config import SamplingConfig
    from ..engine.outputs import format_predictions
    from ..engine.predict import Predictor, VideoPrediction, expand_inputs
    from ..fileio import atomic_write_text
    from ..model.describe import model_summary

    paths, failures = expand_inputs(inputs)
    for failure in failures:
        _error(str(failure))
    net = load_model(model)
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
    predictor = Predictor(
        net,
        device=device,
        precision=precision,
        batch_size=batch_size,
        threads=threads,
        sampling=sampling,
        ood=not no_ood,
        ood_threshold=ood_threshold,
    )
    stderr.print(model_summary(predictor.model_info))
    predictions: list[VideoPrediction] = []
    failed = len(failures)
    started = time.perf_counter()
    with progress_bar() as on_progress:
        on_progress(ProgressEvent("videos", 0, len(paths)))
        results = predictor.predict_many(
            paths, keep_attention=render is not None, on_progress=on_progress
        )
        for done, result in enumerate(results, start=1):
            on_progress(ProgressEvent("videos", done, len(paths)))
            if isinstance(result, VideoPrediction):
                predictions.append(result)
            else:
                failed += 1
                _error(str(result))
    stderr.print(_throughput(predictions, time.perf_counter() - started))
    if render is not None and save_video is not None:
        for prediction, target in zip(
            predictions, _overlay_paths(predictions, save_video), strict=True
        ):
            render(Path(prediction.path), prediction, target)
            stderr.print(f"saved {target}")
    if fmt == "table":
        if predictions:
            stdout.print(predictions_table(predictions, top_k=top_k))
    else:
        text = format_predictions(predictions, fmt, top_k=top_k, clips=clips)
        if output is None:
            typer.echo(text, nl=False)
        else:
            atomic_write_text(output, text)
            stderr.print(f"wrote {len(predictions)} predictions to {output}")
    if failed:
        raise typer.Exit(1)


def predictions_table(predictions: Sequence[VideoPrediction], *, top_k: int = 5) -> Table:
    """A Rich table: file, top-k labels with probabilities, and each stream's top-1.

    Files are shown by name (full paths when two names clash); structured outputs always
    carry the full path.
    """
    from ..engine.predict import rank_labels

    streams = list(predictions[0].stream_probs) if predictions else []
    table = Table(title="gkaan predict")
    table.add_column("file", overflow="fold")
    table.add_column(f"top-{top_k}")
    for name in streams:
        table.add_column(name.upper())
    names = [Path(prediction.path).name for prediction in predictions]
    unique = len(set(names)) == len(names)  # the full path only where names would be ambiguous
    for prediction, name in zip(predictions, names, strict=True):
        ranked = "\n".join(f"{label} {prob:.1%}" for label, prob in prediction.top_k(top_k))
        ranked = "\n".join(filter(None, (verdict(prediction), ranked)))
        tops = {
            stream: rank_labels(prediction.labels, probs, 1)[0]
            for stream, probs in prediction.stream_probs.items()
        }
        table.add_row(
            name if unique else prediction.path,
            ranked,
            *(f"{tops[stream][0]} {tops[stream][1]:.1%}" for stream in streams),
        )
    return table


def verdict(prediction: VideoPrediction) -> str:
    """``unknown (closest: jogging 56%)`` for a video judged out of distribution, else ''."""
    if prediction.in_distribution is not False:
        return ""
    label, prob = prediction.top_k(1)[0]
    return f"unknown (closest: {label} {prob:.0%})"


def _throughput(predictions: Sequence[VideoPrediction], seconds: float) -> str:
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
    taken: set[str] = set()
    targets: list[Path] = []
    for prediction in predictions:
        stem = Path(prediction.path).stem
        name, n = f"{stem}.gkaan.mp4", 1
        while name in taken:
            n += 1
            name = f"{stem}-{n}.gkaan.mp4"
        taken.add(name)
        targets.append(folder / name)
    return targets
