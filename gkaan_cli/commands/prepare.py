"""``gkaan prepare``: decode a dataset once into a manifest + frame cache (+ feature store)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import typer
from rich.console import Console

__all__ = ["prepare"]

_stdout = Console(highlight=False)


def prepare(
    source: Annotated[
        Path,
        typer.Argument(
            help="Folder with one sub-folder per class, a CSV (path,label[,split]), or the "
            "folder of UCF101 (classInd.txt) / HMDB51 (*_test_splitN.txt) split files.",
            show_default=False,
        ),
    ],
    out: Annotated[
        Path,
        typer.Argument(help="Output folder (an earlier run there is resumed).", show_default=False),
    ],
    video_root: Annotated[
        Path | None,
        typer.Option(help="Video folder for UCF101/HMDB51 split files (default: SOURCE)."),
    ] = None,
    split_id: Annotated[int, typer.Option(min=1, max=3, help="Official split number.")] = 1,
    split_by: Annotated[
        str | None,
        typer.Option(
            help="Regex whose first group, searched in file names, is a group id kept in one "
            "split (KTH 'person(\\d+)', UCF101 '_g(\\d+)_'). Default: each video its own group, "
            "stratified by class."
        ),
    ] = None,
    val_fraction: Annotated[
        float,
        typer.Option(
            min=0.0,
            max=0.95,
            help="Fraction of groups (of train groups with official splits) for val.",
        ),
    ] = 0.2,
    test_fraction: Annotated[
        float,
        typer.Option(
            min=0.0, max=0.95, help="Fraction of groups for test when the source has no test split."
        ),
    ] = 0.2,
    seed: Annotated[int, typer.Option(help="Seed of the split assignment.")] = 0,
    test_groups: Annotated[
        list[str] | None,
        typer.Option(
            help="With --split-by: exactly these groups are the test split (comma-separated "
            "or repeated, e.g. --test-groups 3); --test-fraction is then unused."
        ),
    ] = None,
    val_groups: Annotated[
        list[str] | None,
        typer.Option(
            help="With --split-by: exactly these groups are the val split (comma-separated "
            "or repeated); --val-fraction is then unused."
        ),
    ] = None,
    sampling: Annotated[
        Literal["dense", "segments", "uniform"],
        typer.Option(
            help="Clip sampling the cache must serve (dense: UCF/HMDB, segments: Kinetics)."
        ),
    ] = "dense",
    clip_len: Annotated[int, typer.Option(min=1, help="Frames per clip (dense/uniform).")] = 30,
    stride: Annotated[int, typer.Option(min=1, help="Frames between dense clip starts.")] = 15,
    max_clips: Annotated[int, typer.Option(min=1, help="Most dense clips per video.")] = 20,
    features: Annotated[
        str | None,
        typer.Option(
            help="Also store this frozen backbone's conv maps (fp16) for head-only training: "
            "resnet18, resnet34, resnet50 or efficientnet_lite0."
        ),
    ] = None,
    weights: Annotated[
        str | None,
        typer.Option(help="Backbone weights file for --features (default: ImageNet weights)."),
    ] = None,
    workers: Annotated[int, typer.Option(min=1, help="Processes decoding in parallel.")] = 1,
    strict: Annotated[bool, typer.Option(help="Exit 1 when any video fails.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
) -> None:
    """Decode SOURCE into OUT: manifest.json, 256x256 frame cache, optional features.

    Bad files are recorded as failed with their reason and the run goes on; rerunning
    skips what is already prepared. Exit 0 when at least one video is prepared.
    """
    from ..config import SamplingConfig
    from ..data.prepare import prepare as run_prepare
    from ..data.prepare import render_report

    report = run_prepare(
        source,
        out,
        video_root=video_root,
        split_id=split_id,
        split_by=split_by,
        val_fraction=val_fraction,
        test_fraction=test_fraction,
        seed=seed,
        test_groups=_group_list(test_groups),
        val_groups=_group_list(val_groups),
        sampling=SamplingConfig(
            mode=sampling, clip_len=clip_len, stride=stride, max_clips=max_clips
        ),
        features=features,
        pretrained=weights if weights is not None else True,
        workers=workers,
        progress=not quiet,
    )
    _stdout.print(render_report(report))
    raise typer.Exit(report.exit_code(strict=strict))


def _group_list(values: list[str] | None) -> list[str] | None:
    """Group ids from repeated and/or comma-separated option values."""
    if values is None:
        return None
    return [name.strip() for value in values for name in value.split(",") if name.strip()]
