"""``gkaan evaluate``: clip and video accuracy of a model on a split of a dataset, per stream."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from ..config import MAX_BATCH, MAX_WORKERS
from ..data.sources import Split
from .common import DeviceOption, PrecisionOption, QuietOption, progress_bar, stdout

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
    data: Annotated[
        Path,
        typer.Argument(
            help="The same DATA as `train`: a prepared directory, or a video folder / split "
            "files / CSV (prepared into the cache, reusing the training run's).",
            show_default=False,
        ),
    ],
    split: Annotated[Split, typer.Option(help="Split to evaluate.")] = "test",
    out: Annotated[
        Path | None,
        typer.Option(
            "--output",
            "-o",
            help="Where report.json, confusion.png and report.html go (default RUN/eval/SPLIT "
            "next to the model's run, else runs/eval/MODEL-SHA/SPLIT); --out also works.",
            show_default=False,
        ),
    ] = None,
    batch_size: Annotated[
        int, typer.Option(min=1, max=MAX_BATCH, help="Clips (not frames) per forward pass.")
    ] = 8,
    device: DeviceOption = "auto",
    precision: PrecisionOption = "auto",
    workers: Annotated[
        int, typer.Option(min=0, max=MAX_WORKERS, help="DataLoader worker processes.")
    ] = 0,
    quiet: QuietOption = False,
) -> None:
    """Evaluate MODEL on a split of DATA: top-1 (top-5 with > 5 classes), per stream, per class."""
    from ..engine.evaluate import default_eval_dir
    from ..engine.evaluate import evaluate as run_evaluation
    from ..fileio import check_output_path
    from ..model.locate import locate_checkpoint

    ref = locate_checkpoint(model)  # once: the evaluation gets the resolved checkpoint
    out = out if out is not None else default_eval_dir(ref.folder, split)
    check_output_path(out, kind="dir")  # writable before any work
    with progress_bar(enabled=not quiet) as on_progress:
        report = run_evaluation(
            ref,
            data,
            split=split,
            batch_size=batch_size,
            device=device,
            precision=precision,
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
    from ..viz.run_report import write_eval_report

    page = write_eval_report(out)
    stdout.print(f"report: {report.report_path}  confusion matrix: {report.confusion_path}")
    stdout.print(f"page: {page}", markup=False)


def scores_table(report: EvalReport) -> Table:
    """Clip and video top-1/top-5 and mean class accuracy, fused and per stream."""
    table = Table(title=f"{report.split} split ({report.inputs})")
    top5 = report.has_top5
    columns = ["stream", "clip top-1", "clip top-5", "video top-1", "video top-5", "mean class"]
    for name in columns:
        if top5 or "top-5" not in name:
            table.add_column(name, justify="right", no_wrap=name == "stream")
    for name, clip in report.clip.items():
        video = report.video[name]
        cells = [
            name,
            f"{100 * clip.top1:.2f}%",
            f"{100 * clip.top5:.2f}%" if top5 else None,
            f"{100 * video.top1:.2f}%",
            f"{100 * video.top5:.2f}%" if top5 else None,
            f"{100 * video.mean_class:.2f}%",
        ]
        table.add_row(*(cell for cell in cells if cell is not None))
    return table


def per_class_table(report: EvalReport) -> Table:
    """Video-level accuracy of the fused prediction per class."""
    table = Table(title="per class (video level, fused)")
    for name in ("#", "class", "videos", "correct", "accuracy"):
        if name == "class":  # a class name is never broken; the numbers' headers wrap first
            table.add_column(name, no_wrap=True, overflow="fold")
        else:
            table.add_column(name, justify="right")
    for index, row in enumerate(report.per_class):
        accuracy = "-" if row["accuracy"] is None else f"{100 * row['accuracy']:.1f}%"
        table.add_row(str(index), row["class"], str(row["videos"]), str(row["correct"]), accuracy)
    return table
