"""``gkaan prepare``: decode a dataset once into a manifest + frame cache (+ feature store).

Under ``torchrun`` each process prepares its share of the videos into OUT and rank 0 writes
the manifest and prints the report (docs/predict.md#distributed).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table
from rich.text import Text

from ..config import (
    MAX_CLIP_FRAMES,
    MAX_CLIPS,
    MAX_SEED,
    MAX_STRIDE,
    MAX_WORKERS,
    BackboneName,
    SamplingConfig,
    SamplingMode,
)
from ..data.manifest import MANIFEST_NAME
from ..data.sources import SPLITS, SplitOptions
from .common import PrecisionOption, QuietOption, progress_bar, stderr, stdout

if TYPE_CHECKING:
    from ..data.prepare import PrepareReport
    from ..model.trunk_weights import TrunkWeights

__all__ = ["exit_code", "prepare", "print_findings", "render_report"]

_SPLIT = SplitOptions()
_SAMPLING = SamplingConfig()


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
        Path | None,
        typer.Argument(
            help="Output folder (an earlier run there is resumed); or give --output.",
            show_default=False,
        ),
    ] = None,
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
    ] = _SPLIT.val_fraction,
    test_fraction: Annotated[
        float,
        typer.Option(
            min=0.0,
            max=0.95,
            help="Fraction of groups for test when the source has no test split.",
        ),
    ] = _SPLIT.test_fraction,
    seed: Annotated[
        int, typer.Option(min=0, max=MAX_SEED, help="Seed of the split assignment.")
    ] = _SPLIT.seed,
    test_groups: Annotated[
        list[str] | None,
        typer.Option(
            help="With --split-by: exactly these groups are the test split (comma-separated "
            "or repeated, e.g. --test-groups 3); --test-fraction is then unused (default: none).",
            show_default=False,
        ),
    ] = None,
    val_groups: Annotated[
        list[str] | None,
        typer.Option(
            help="With --split-by: exactly these groups are the val split (comma-separated "
            "or repeated); --val-fraction is then unused (default: none).",
            show_default=False,
        ),
    ] = None,
    sampling: Annotated[
        SamplingMode,
        typer.Option(
            help="Clip sampling the cache must serve (dense: UCF/HMDB, segments: Kinetics)."
        ),
    ] = _SAMPLING.mode,
    clip_len: Annotated[
        int, typer.Option(min=1, max=MAX_CLIP_FRAMES, help="Frames per clip (dense/uniform).")
    ] = _SAMPLING.clip_len,
    stride: Annotated[
        int, typer.Option(min=1, max=MAX_STRIDE, help="Frames between dense clip starts.")
    ] = _SAMPLING.stride,
    max_clips: Annotated[
        int, typer.Option(min=1, max=MAX_CLIPS, help="Most dense clips per video.")
    ] = _SAMPLING.max_clips,
    test_max_clips: Annotated[
        int,
        typer.Option(
            min=0,
            max=MAX_CLIPS,
            help="Most dense clips per test, val (and, for the end-of-training pass, train) "
            "video; 0: --max-clips.",
        ),
    ] = _SAMPLING.test_max_clips,
    num_segments: Annotated[
        int,
        typer.Option(min=1, max=MAX_CLIP_FRAMES, help="Segments per video (segments sampling)."),
    ] = _SAMPLING.num_segments,
    frames_per_segment: Annotated[
        int,
        typer.Option(
            min=1, max=MAX_CLIP_FRAMES, help="Frames drawn from each segment (segments sampling)."
        ),
    ] = _SAMPLING.frames_per_segment,
    features: Annotated[
        BackboneName | None,
        typer.Option(
            help="Also store this frozen backbone's conv maps (fp16) for head-only training "
            "(default: none).",
            show_default=False,
        ),
    ] = None,
    weights: Annotated[
        str | None,
        typer.Option(
            "--backbone-weights",
            "--weights",
            help="Trunk weights for --features: a local torchvision/ImageNet weights file, or "
            "a GKAAN checkpoint or registered model whose trunk is used (default: ImageNet).",
        ),
    ] = None,
    precision: PrecisionOption = "auto",
    workers: Annotated[
        int, typer.Option(min=1, max=MAX_WORKERS, help="Processes decoding in parallel.")
    ] = 1,
    strict: Annotated[
        bool,
        typer.Option(
            help="Exit 1 when any video fails; the data doctor's warnings (class balance, "
            "duplicates, leaking groups, person ids in names, near-identical labels) stop the "
            "run before any decoding (exit 2) instead of being printed."
        ),
    ] = False,
    output: Annotated[
        Path | None,
        typer.Option(
            "--output",
            "-o",
            help="The output folder, instead of OUT (default: OUT).",
            show_default=False,
        ),
    ] = None,
    quiet: QuietOption = False,
) -> None:
    """Decode SOURCE into OUT: manifest.json, 256x256 frame cache, optional features.

    Bad files are recorded as failed with their reason and the run goes on; rerunning
    skips what is already prepared. Exit 0 when at least one video is prepared.
    """
    from ..data.prepare import FeatureOptions, PrepareOptions
    from ..engine.shard import launch_rank, prepare_sharded
    from ..errors import UsageError

    if out is not None and output is not None:
        raise UsageError("give the output folder once: as OUT or as --output")
    target = out if out is not None else output
    if target is None:
        raise UsageError("missing the output folder: give OUT or --output")

    options = PrepareOptions(
        video_root=video_root,
        split_id=split_id,
        split=SplitOptions(
            split_by=split_by,
            val_fraction=val_fraction,
            test_fraction=test_fraction,
            seed=seed,
            test_groups=_group_list(test_groups),
            val_groups=_group_list(val_groups),
        ),
        sampling=SamplingConfig(
            mode=sampling,
            clip_len=clip_len,
            stride=stride,
            max_clips=max_clips,
            test_max_clips=test_max_clips,
            num_segments=num_segments,
            frames_per_segment=frames_per_segment,
        ),
        features=None
        if features is None
        else FeatureOptions(features, pretrained=_trunk_weights(weights), precision=precision),
        workers=workers,
        strict=strict,
    )
    with progress_bar(enabled=not quiet and launch_rank() == 0) as on_progress:
        report = prepare_sharded(
            source, target, options, on_progress=on_progress, on_findings=print_findings
        )
    if report is None:
        return  # another torchrun process: rank 0 prints the report of the whole run
    stdout.print(render_report(report))
    raise typer.Exit(exit_code(report, strict=strict))


def print_findings(findings: list[str]) -> None:
    """The data doctor's warnings, one ``warning:`` line each on stderr
    (docs/protocol.md#the-data-doctor)."""
    for line in findings:
        stderr.print(f"warning: {line}")


def _trunk_weights(spec: str | None) -> TrunkWeights:
    """``--backbone-weights`` as a run's trunk weights (a registered name resolved)."""
    from ..engine.recipes import TrainConfig
    from ..engine.train import resolve_backbone_weights

    return resolve_backbone_weights(TrainConfig(backbone_weights=spec))


def exit_code(report: PrepareReport, *, strict: bool = False) -> int:
    """``gkaan prepare``'s exit status: 1 when no video is prepared, or with ``strict`` and
    any failure; else 0."""
    if report.ok + report.skipped == 0 or (strict and report.failed):
        return 1
    return 0


def _group_list(values: list[str] | None) -> tuple[str, ...] | None:
    """Group ids from repeated and/or comma-separated option values."""
    if values is None:
        return None
    return tuple(name.strip() for value in values for name in value.split(",") if name.strip())


def _size(num_bytes: int) -> str:
    """Human-readable size in MB (binary)."""
    return f"{num_bytes / 2**20:.1f} MB"


def render_report(report: PrepareReport, *, max_failures: int = 20) -> Table:
    """Rich summary table of a prepare run (counts, frames, hours, disk, splits, failures).

    File names are plain :class:`~rich.text.Text`, never markup, so "[...]" in a path shows.
    """
    table = Table(title=f"gkaan prepare -> {report.out}", show_header=False)
    table.add_column(style="bold")
    table.add_column()
    table.add_row("source", Text(report.source))
    table.add_row("prepared (ok)", str(report.ok))
    table.add_row("skipped (already prepared)", str(report.skipped))
    table.add_row("failed", Text(str(report.failed), style="red" if report.failed else ""))
    if report.excluded:
        table.add_row("excluded by the source", str(report.excluded))
    if report.remaining:
        table.add_row("not processed yet (rerun to continue)", str(report.remaining))
    table.add_row("frames (cached)", f"{report.frames} ({report.cached_frames})")
    table.add_row("hours of video", f"{report.hours:.3f}")
    table.add_row("disk used", _size(report.disk_bytes))
    table.add_row(
        "time",
        f"{report.seconds:.1f} s ({report.videos_per_s:.2f} videos/s, "
        f"{report.frames_per_s:.0f} frames/s)",
    )
    table.add_row("split rule", report.split_rule)
    if report.findings:
        table.add_row(
            Text("data warnings", style="yellow"),
            f"{len(report.findings)} (printed above; kept in {MANIFEST_NAME})",
        )
    for split in SPLITS:
        groups = report.split_groups.get(split, [])
        shown = ", ".join(groups[:12]) + (" ..." if len(groups) > 12 else "")
        table.add_row(split, f"{report.split_videos.get(split, 0)} videos; groups: {shown}")
    for path, reason in report.failures[:max_failures]:
        table.add_row(Text("failed", style="red"), Text(f"{path}: {reason}"))
    if len(report.failures) > max_failures:
        table.add_row("", f"... {len(report.failures) - max_failures} more in {MANIFEST_NAME}")
    return table
