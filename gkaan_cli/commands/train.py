"""``gkaan train``: train a GKAAN model from a video folder or a prepared directory.

The same command runs distributed under ``torchrun --nproc-per-node N gkaan train ...``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from ..config import BackboneName, Fusion
from ..engine.recipes import DEFAULT_RECIPE, RECIPES, Amp
from ..progress import ProgressCallback, ProgressEvent
from .common import (
    OptionalDeviceOption,
    PrecisionChoice,
    PrecisionOption,
    QuietOption,
    choice_callback,
    progress_bar,
    stderr,
    stdout,
)

if TYPE_CHECKING:
    from ..engine.recipes import TrainConfig

__all__ = ["train"]

#: ``--precision`` -> the recipe's ``amp`` setting (``auto``: the recipe's or the run's own).
_AMP: dict[PrecisionChoice, Amp | None] = {
    "auto": None,
    "fp32": "none",
    "bf16": "bf16",
    "fp16": "fp16",
}


def train(
    data: Annotated[
        Path,
        typer.Argument(
            help="A prepared directory (manifest.json), or a video folder / split files / CSV "
            "that `gkaan prepare` accepts (prepared into a reusable cache first).",
            show_default=False,
        ),
    ],
    out: Annotated[
        Path,
        typer.Option(
            "--output",
            "-o",
            help="Run directory (checkpoints, metrics, state); --out also works.",
            show_default=False,
        ),
    ],
    recipe: Annotated[
        str | None,
        typer.Option(
            metavar="|".join(RECIPES),
            callback=choice_callback(list(RECIPES)),
            help=f"Named recipe (default: {DEFAULT_RECIPE}).",
            show_default=False,
        ),
    ] = None,
    config: Annotated[
        Path | None,
        typer.Option(
            "--config",
            "-c",
            help="YAML or JSON file of train settings (default: none).",
            show_default=False,
        ),
    ] = None,
    frozen_backbone: Annotated[
        bool | None,
        typer.Option(
            "--frozen-backbone/--end-to-end",
            help="Train the heads on cached conv maps, or the whole network (default: the "
            "recipe's).",
            show_default=False,
        ),
    ] = None,
    fusion: Annotated[
        Fusion | None,
        typer.Option(
            help="early, late, or one stream (gp sa la gs gl) (default: the recipe's).",
            show_default=False,
        ),
    ] = None,
    backbone: Annotated[
        BackboneName | None,
        typer.Option(help="CNN trunk (default: the recipe's).", show_default=False),
    ] = None,
    pretrained: Annotated[
        bool | None,
        typer.Option(
            "--pretrained/--no-pretrained",
            help="Start the backbone from ImageNet weights (default: the recipe's).",
            show_default=False,
        ),
    ] = None,
    epochs: Annotated[
        int | None,
        typer.Option(
            min=1, help="Epochs; may grow on --resume (default: the recipe's).", show_default=False
        ),
    ] = None,
    lr: Annotated[
        float | None,
        typer.Option(help="Base learning rate (default: the recipe's).", show_default=False),
    ] = None,
    batch_size: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="Clips (not frames) per optimizer step, all processes together (default: "
            "the recipe's).",
            show_default=False,
        ),
    ] = None,
    accumulate: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="Micro-batches per step, gradient accumulation (default: the recipe's).",
            show_default=False,
        ),
    ] = None,
    seed: Annotated[
        int | None,
        typer.Option(
            help="Random seed, repeatable CPU runs (default: the recipe's).", show_default=False
        ),
    ] = None,
    device: OptionalDeviceOption = None,
    precision: PrecisionOption = "auto",
    workers: Annotated[
        int | None,
        typer.Option(
            min=0, help="DataLoader worker processes (default: the recipe's).", show_default=False
        ),
    ] = None,
    split_by: Annotated[
        str | None,
        typer.Option(
            help="Raw sources: regex whose first group is a video's group (person, scene); "
            "a group never spans two splits (default: each video its own group).",
            show_default=False,
        ),
    ] = None,
    val_fraction: Annotated[
        float | None,
        typer.Option(
            help="Raw sources: fraction of groups for validation (default: the recipe's).",
            show_default=False,
        ),
    ] = None,
    test_fraction: Annotated[
        float | None,
        typer.Option(
            help="Raw sources without a test split: fraction of groups for test (default: "
            "the recipe's).",
            show_default=False,
        ),
    ] = None,
    resume: Annotated[
        bool, typer.Option("--resume", help="Continue the run in --output from its last epoch.")
    ] = False,
    quiet: QuietOption = False,
) -> None:
    """Train a model; the run directory gets last/, best/, metrics.jsonl and state.pt."""
    from ..engine.recipes import TrainConfig, load_train_config, merge_overrides
    from ..engine.train import load_run_config
    from ..engine.train import train as run_training
    from ..errors import UsageError
    from ..fileio import check_output_path

    model = {"fusion": fusion, "backbone": backbone}
    overrides: dict[str, Any] = {
        "model": {key: value for key, value in model.items() if value is not None},
        "frozen_backbone": frozen_backbone,
        "pretrained": pretrained,
        "epochs": epochs,
        "lr": lr,
        "batch_size": batch_size,
        "accumulate": accumulate,
        "seed": seed,
        "device": device,
        "amp": _AMP[precision],
        "num_workers": workers,
        "split_by": split_by,
        "val_fraction": val_fraction,
        "test_fraction": test_fraction,
    }
    if resume:
        if recipe is not None or config is not None:
            raise UsageError(
                "--resume continues with the run's saved settings; drop --recipe/--config"
            )
        given = {k: v for k, v in overrides.items() if v not in (None, {})}
        settings = merge_overrides(load_run_config(out).model_dump(), given)
        train_config = TrainConfig.model_validate(settings)
    else:
        train_config = load_train_config(recipe, config, overrides)
    main = int(os.environ.get("RANK", "0")) == 0
    check_output_path(out, kind="dir")  # writable before any work
    with progress_bar(enabled=not quiet and main) as on_progress:
        result = run_training(
            data,
            out,
            train_config,
            resume=resume,
            on_progress=_settings_first(train_config, on_progress) if not quiet else None,
        )
    if not main:
        return
    stdout.print(_summary(result.history))
    best = (
        f"best/ from epoch {result.best_epoch}"
        if result.best is not None
        else "no best/: no val split to choose on"
    )
    stdout.print(f"run: {result.out}  (last/ after epoch {result.epochs}; {best})")


def _settings_first(config: TrainConfig, on_progress: ProgressCallback) -> ProgressCallback:
    """``on_progress`` that first prints the run's settings as JSON on stderr.

    ``train`` reports progress only once it has checked its inputs, and only on rank 0, so
    the settings appear when the run really starts, once.
    """
    shown = False

    def show_then_forward(event: ProgressEvent) -> None:
        nonlocal shown
        if not shown:
            shown = True
            stderr.print_json(config.model_dump_json())
        on_progress(event)

    return show_then_forward


def _summary(history: list[dict[str, Any]]) -> Table:
    """One row per epoch: train loss/accuracy, eval accuracies, clips/s."""
    table = Table(title="training")
    for name in (
        "epoch",
        "lr",
        "loss",
        "train top-1",
        "eval",
        "clip top-1",
        "video top-1",
        "top-5",
        "clips/s",
    ):
        table.add_column(name, justify="right")
    for record in history:
        scores = record.get("eval")
        table.add_row(
            str(record["epoch"]),
            f"{record['lr']:.2g}",
            f"{record['train']['loss']:.4f}",
            f"{100 * record['train']['top1']:.1f}%",
            scores["split"] if scores else "-",
            f"{100 * scores['clip_top1']:.1f}%" if scores else "-",
            f"{100 * scores['video_top1']:.1f}%" if scores else "-",
            f"{100 * scores['video_top5']:.1f}%" if scores else "-",
            f"{record['time']['clips_per_s']:.1f}",
        )
    return table
