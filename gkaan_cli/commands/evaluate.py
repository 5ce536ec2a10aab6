"""``gkaan evaluate``: clip and video accuracy of a model on a prepared split, per stream."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from ..data.sources import Split
from .common import DeviceOption, QuietOption, progress_bar, stdout

if TYPE_CHECKING:
    from ..engine.evaluate import EvalReport

__all__ = ["evaluate"]


def evaluate(
    model: Annotated[
        str,
        typer.Argument(
            help="Checkpoint folder (e.g. runs/NAME/best), registered name or Hub id.",
            show_default=False,
        ),
    ],
    prepared_dir: Annotated[
        Path, typer.Argument(help="A directory written by `gkaan prepare`.", show_default=False)
    ],
    split: Annotated[Split, typer.Option(help="Split to evaluate.")] = "test",
    out: Annotated[
        Path | None,
        typer.Option(
            "--output",
            "-o",
            help="Folder for report.json and confusion.png (default: PREPARED_DIR/eval/SPLIT); "
            "--out also works.",
            show_default=False,
        ),
    ] = None,
    batch_size: Annotated[
        int, typer.Option(min=1, help="Clips (not frames) per forward pass.")
    ] = 8,
    device: DeviceOption = "auto",
    workers: Annotated[int, typer.Option(min=0, help="DataLoader worker processes.")] = 0,
    quiet: QuietOption = False,
) -> None:
    """Evaluate MODEL on a split of PREPARED_DIR: top-1/top-5, per stream, per class."""
    from ..engine.evaluate import evaluate as run_evaluation
    from ..fileio import check_output_path

    out = out if out is not None else prepared_dir / "eval" / split
    check_output_path(out, kind="dir")  # writable before any work

    with progress_bar(enabled=not quiet) as on_progress:
        report = run_evaluation(
            model,
            prepared_dir,
            split=split,
            batch_size=batch_size,
            device=device,
            out=out,
            num_workers=workers,
            on_progress=on_progress,
        )
    stdout.print(scores_table(report))
    stdout.print(per_class_table(report))
    for name, stats in report.attention.items():
        stdout.print(
            f"{name} attention: entropy {stats['entropy']:.3g} nats "
            f"(uniform {stats['uniform_entropy']:.3g}), mean peak weight {stats['peak']:.3g}"
        )
    stdout.print(f"report: {report.report_path}  confusion matrix: {report.confusion_path}")


def scores_table(report: EvalReport) -> Table:
    """Clip and video top-1/top-5 and mean class accuracy, fused and per stream."""
    table = Table(title=f"{report.split} split ({report.inputs})")
    for name in ("stream", "clip top-1", "clip top-5", "video top-1", "video top-5", "mean class"):
        table.add_column(name, justify="right")
    for name, clip in report.clip.items():
        video = report.video[name]
        table.add_row(
            name,
            f"{100 * clip.top1:.2f}%",
            f"{100 * clip.top5:.2f}%",
            f"{100 * video.top1:.2f}%",
            f"{100 * video.top5:.2f}%",
            f"{100 * video.mean_class:.2f}%",
        )
    return table


def per_class_table(report: EvalReport) -> Table:
    """Video-level accuracy of the fused prediction per class."""
    table = Table(title="per class (video level, fused)")
    for name in ("#", "class", "videos", "correct", "accuracy"):
        table.add_column(name, justify="right" if name != "class" else "left")
    for index, row in enumerate(report.per_class):
        accuracy = "-" if row["accuracy"] is None else f"{100 * row['accuracy']:.1f}%"
        table.add_row(str(index), row["class"], str(row["videos"]), str(row["correct"]), accuracy)
    return table
