"""``gkaan export``: write a model as ONNX graphs for ONNX Runtime, verified (docs/export.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import typer
from rich.table import Table

from ..errors import UsageError
from ..words import plural
from .common import QuietOption, progress_bar, stdout


def export(
    model: Annotated[
        str,
        typer.Argument(
            help="Checkpoint folder, training run, registered name or Hub id (as --model).",
            show_default=False,
        ),
    ],
    out: Annotated[
        Path,
        typer.Option("--output", "-o", help="The export folder to write.", show_default=False),
    ],
    more: Annotated[
        list[str] | None,
        typer.Argument(
            help="More --calibrate videos (--calibrate a.mp4 b.mp4 ...).",
            show_default=False,
            metavar="VIDEOS",
        ),
    ] = None,
    fmt: Annotated[
        Literal["onnx"], typer.Option("--format", help="Export format (onnx only).")
    ] = "onnx",
    opset: Annotated[int, typer.Option("--opset", min=13, max=23, help="ONNX opset.")] = 17,
    int8: Annotated[
        bool,
        typer.Option(
            "--int8",
            help="Also quantise the trunk to int8 (static, calibrated on --calibrate videos) "
            "and run it by default; refused below 99% top-1 agreement with fp32.",
        ),
    ] = False,
    calibrate: Annotated[
        list[str] | None,
        typer.Option(
            "--calibrate",
            help="Videos, folders or globs to verify on (default: a built-in synthetic "
            "check) and, with --int8, to calibrate on (even-numbered) and check against "
            "fp32 (odd-numbered): --calibrate a.mp4 b.mp4 ... or a folder.",
            show_default=False,
        ),
    ] = None,
    quiet: QuietOption = False,
) -> None:
    """Export a model to ONNX (trunk + heads graphs, config, OOD/GM tensors, export.json),
    verified against PyTorch on real frames; run it with predict --model OUT."""
    from ..engine.export import export_model
    from ..model.onnx_runtime import is_onnx_export, require_onnxruntime

    require_onnxruntime()  # one line before any work when it is missing
    if is_onnx_export(model):
        raise UsageError(f"{model}: already an ONNX export; export the checkpoint it came from")
    if more and not calibrate:
        raise UsageError(f"unexpected argument {more[0]!r}: videos go after --calibrate")
    videos: list[Path] = []
    if calibrate:
        from ..engine.inputs import expand_inputs

        videos, errors = expand_inputs([*calibrate, *(more or [])])
        if errors:
            raise errors[0]  # one line naming the file, exit 1
        if not videos:
            raise UsageError("--calibrate: no video found")
    from ..apis.model import find_model, open_model

    net = open_model(find_model(model))
    with progress_bar(enabled=not quiet) as on_progress:
        report = export_model(
            net, out, opset=opset, calibrate=videos, int8=int8, on_progress=on_progress
        )
    clips = plural(report.clips, "clip")
    table = Table(title=f"ONNX Runtime vs PyTorch ({clips}, {report.frames_source})")
    for column in ("output", "max |diff|", "limit"):
        table.add_column(column, justify="left" if column == "output" else "right")
    for name, diff in report.max_diff.items():
        table.add_row(name, f"{diff:.2e}", f"{report.tolerance * report.scale[name]:.1e}")
    stdout.print(table)
    stdout.print(f"top-1 agreement: {report.agreement:.1%} of {clips}")
    if report.int8 is not None:
        stdout.print(
            f"int8 trunk: top-1 agreement with fp32 {report.int8['agreement']:.1%} of "
            f"{report.int8['clips']} clips on {len(report.int8['check_videos'])} check videos"
        )
    stdout.print(f"wrote {report.out} (opset {report.opset}, format {fmt})")
