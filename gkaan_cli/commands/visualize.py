"""``gkaan visualize``: where the SA and LA attention look, as a video, a contact sheet, raw maps.

Writes ``<video stem>.gkaan.mp4`` (input | SA | LA panels, the paper's Fig. 1) in the current
folder unless ``--output`` says otherwise; ``--grid`` adds a PNG contact sheet (Fig. 8) and
``--save-maps`` the raw maps as ``.npz``; ``--timeline`` captions each frame with the label
of the timeline segment playing (docs/predict.md#timeline) and prints the segments. Bad inputs
raise the typed errors that the CLI's error boundary prints as one line.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import typer

from ..apis.options import PredictorOptions, TimelineOptions
from ..config import MAX_GRID_FRAMES, SWITCH_COST
from ..errors import UsageError
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
    stdout,
)
from .predict import say_model

__all__ = ["visualize"]


def _check_suffix(option: str, path: Path | None, suffix: str) -> None:
    if path is not None and path.suffix.lower() != suffix:
        raise UsageError(f"{option} {path}: the file name must end in {suffix}")


def visualize(
    video: Annotated[Path, typer.Argument(help="The video file.", show_default=False)],
    model: ModelOption = None,
    out: Annotated[
        Path | None,
        typer.Option(
            "--output",
            "-o",
            help="Overlay video to write (default: <video stem>.gkaan.mp4 in the current "
            "folder); --out also works.",
            show_default=False,
        ),
    ] = None,
    grid: Annotated[
        Path | None,
        typer.Option(
            "--grid",
            help="Also write a contact sheet PNG: input / SA / LA rows (default: none).",
            show_default=False,
        ),
    ] = None,
    grid_frames: Annotated[
        int,
        typer.Option(
            "--grid-frames",
            min=1,
            max=MAX_GRID_FRAMES,
            help="Columns (frames) of the contact sheet.",
        ),
    ] = 8,
    save_maps: Annotated[
        Path | None,
        typer.Option(
            "--save-maps",
            help="Also save the raw maps, frame indices and times as .npz (default: none).",
            show_default=False,
        ),
    ] = None,
    normalize: Annotated[
        Literal["frame", "global"],
        typer.Option(help="Stretch each map to full range (frame) or all maps alike (global)."),
    ] = "frame",
    device: DeviceOption = "auto",
    precision: PrecisionOption = "auto",
    decode: DecodeOption = "auto",
    threads: ThreadsOption = None,
    quiet: QuietOption = False,
    timeline: Annotated[
        bool,
        typer.Option(
            "--timeline",
            help="Caption each frame with the label of the timeline segment it falls in "
            "(sliding windows over the whole video, as predict --timeline) and print the "
            "segments (default: off).",
        ),
    ] = False,
    window: WindowOption = None,
    hop: HopOption = None,
    smooth: SmoothOption = 1,
    min_duration: MinDurationOption = 0.0,
    switch_cost: SwitchCostOption = SWITCH_COST,
) -> None:
    """Show where the model's statistic (SA) and learned (LA) attention look in a video."""
    options = TimelineOptions(
        window=window,
        hop=hop,
        smooth=smooth,
        min_duration=min_duration,
        switch_cost=switch_cost,
    )
    options.require_timeline(timeline)
    out = out if out is not None else Path.cwd() / f"{video.stem}.gkaan.mp4"
    _check_suffix("--output", out, ".mp4")
    _check_suffix("--grid", grid, ".png")
    _check_suffix("--save-maps", save_maps, ".npz")
    if out.resolve() == video.resolve():
        raise UsageError(f"--output {out}: would overwrite the input video")
    from ..apis.model import find_model
    from ..fileio import check_output_path

    source = find_model(model)
    inputs = [video, *source.files]  # the model's files are inputs too
    for target in (out, grid, save_maps):  # writable, never an input, before any work
        if target is not None:
            check_output_path(target, inputs=inputs)

    from ..apis.model import open_model
    from ..apis.predict import open_predictor
    from ..apis.visualize import visualize_video
    from ..engine.predict import verdict_line
    from ..video.reader import probe_video

    info = probe_video(video)  # a bad video is reported before the model is loaded
    note = DecodeNote(enabled=not quiet)
    predictor = open_predictor(
        open_model(source),
        PredictorOptions(device=device, precision=precision, decode=decode, threads=threads),
        on_decode_fallback=note,
    )
    say_model(predictor, note, quiet=quiet)
    with progress_bar(enabled=not quiet) as on_progress:
        done = visualize_video(
            predictor,
            video,
            out,
            grid=grid,
            grid_frames=grid_frames,
            save_maps=save_maps,
            normalize=normalize,
            timeline=options if timeline else None,
            info=info,
            on_progress=on_progress,
        )
    prediction, segments = done.prediction, done.segments
    label, prob = prediction.top_k(1)[0]
    stdout.print(f"{video}: {verdict_line(label, prob, prediction.in_distribution)}", markup=False)
    for segment in segments or ():
        said = verdict_line(segment.label, segment.prob, segment.in_distribution)
        stdout.print(f"  {segment.start:8.2f}-{segment.end:.2f} s  {said}", markup=False)
    for kind, path in (("video", out), ("grid", grid), ("maps", save_maps)):
        if path is not None:
            stdout.print(f"  {kind:<5} {path}")
