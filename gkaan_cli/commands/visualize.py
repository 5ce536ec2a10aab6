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

from ..config import MAX_GRID_FRAMES, SWITCH_COST
from ..errors import UsageError
from ..progress import ProgressEvent
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
    load_model,
    model_files,
    progress_bar,
    stdout,
)

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
    from ..fileio import check_output_path

    inputs = [video, *model_files(model)]  # the model's files are inputs too
    for target in (out, grid, save_maps):  # writable, never an input, before any work
        if target is not None:
            check_output_path(target, inputs=inputs)

    from ..engine.predict import Predictor
    from ..engine.timeline import predict_timeline, timeline_spec
    from ..video.reader import probe_video
    from ..viz import render

    info = probe_video(video)  # a bad video is reported before the model is loaded
    net = load_model(model)
    note = DecodeNote(enabled=not quiet)
    predictor = Predictor(
        net,
        device=device,
        precision=precision,
        threads=threads,
        decode=decode,
        on_decode_fallback=note,
    )
    note.release()
    if timeline:  # a window shorter than a clip is refused before any work
        timeline_spec(predictor.sampling, info.fps, window=options.window, hop=options.hop)
    with progress_bar(enabled=not quiet) as on_progress:
        prediction = predictor.predict_video(video, keep_attention=True, on_progress=on_progress)
        segments = None
        if timeline:
            segments = predict_timeline(
                predictor,
                video,
                window=options.window,
                hop=options.hop,
                smooth=options.smooth,
                min_duration=options.min_duration,
                switch_cost=options.switch_cost,
                on_progress=on_progress,
            ).segments
        render.render_overlay_video(
            video,
            prediction,
            out,
            normalize=normalize,
            segments=segments,
            progress=lambda done, total: on_progress(ProgressEvent("render", done, total)),
        )
        if grid is not None:
            render.render_grid(video, prediction, grid, n=grid_frames, normalize=normalize)
    if save_maps is not None:
        render.save_maps(prediction, save_maps)
    label, prob = prediction.top_k(1)[0]
    stdout.print(f"{video}: {label} ({prob:.1%})")
    for segment in segments or ():
        stdout.print(
            f"  {segment.start:8.2f}-{segment.end:.2f} s  {segment.label} {segment.prob:.1%}"
        )
    for kind, path in (("video", out), ("grid", grid), ("maps", save_maps)):
        if path is not None:
            stdout.print(f"  {kind:<5} {path}")
