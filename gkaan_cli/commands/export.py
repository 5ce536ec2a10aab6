"""``gkaan export``: write a model as ONNX graphs for ONNX Runtime, verified (docs/export.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import typer
from rich.table import Table

from ..errors import UsageError
from .common import QuietOption, load_model, progress_bar, stdout


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
        list[Path] | None,
        typer.Option(
            "--calibrate",
            help="Videos to verify on (default: a built-in synthetic check) and, with --int8, "
            "to calibrate on (even-numbered) and check against fp32 (odd-numbered). Repeat "
            "the option or list several.",
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
    for video in calibrate or []:
        if not video.is_file():
            raise UsageError(f"--calibrate {video}: no such file")
    net = load_model(model)
    with progress_bar(enabled=not quiet) as on_progress:
        report = export_model(
            net, out, opset=opset, calibrate=calibrate or [], int8=int8, on_progress=on_progress
        )
    table = Table(title=f"ONNX Runtime vs PyTorch ({report.clips} clips, {report.frames_source})")
    for column in ("output", "max |diff|", "limit"):
        table.add_column(column, justify="left" if column == "output" else "right")
    for name, diff in report.max_diff.items():
        table.add_row(name, f"{diff:.2e}", f"{report.tolerance * report.scale[name]:.1e}")
    stdout.print(table)
    stdout.print(f"top-1 agreement: {report.agreement:.1%} of {report.clips} clips")
    if report.int8 is not None:
        stdout.print(
            f"int8 trunk: top-1 agreement with fp32 {report.int8['agreement']:.1%} of "
            f"{report.int8['clips']} clips on {len(report.int8['check_videos'])} check videos"
        )
    stdout.print(f"wrote {report.out} (opset {report.opset}, format {fmt})")
