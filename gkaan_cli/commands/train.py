"""``gkaan train``: train a GKAAN model from a video folder or a prepared directory.

The same command runs distributed under ``torchrun --nproc-per-node N gkaan train ...``.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from ..config import (
    MAX_BATCH,
    MAX_EPOCHS,
    MAX_LR,
    MAX_SEED,
    MAX_WORKERS,
    BackboneName,
    Fusion,
    Motion,
    SamplingConfig,
)
from ..engine.recipes import DEFAULT_RECIPE, RECIPES, Amp
from ..words import plural
from .common import (
    OptionalDeviceOption,
    PrecisionChoice,
    PrecisionOption,
    QuietOption,
    choice_callback,
    positive,
    progress_bar,
    stderr,
    stdout,
)

if TYPE_CHECKING:
    from ..engine.recipes import TrainConfig
    from ..engine.train import RunStart, TrainResult
    from ..engine.train_records import EpochDone, EpochRecord
    from ..errors import GkaanError

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
            help=f"Named recipe (default {DEFAULT_RECIPE}: transfer learning from the default "
            "model's frozen trunk; ucf101/hmdb51/kinetics: the paper's end-to-end recipes).",
            show_default=False,
        ),
    ] = None,
    init_from: Annotated[
        str | None,
        typer.Option(
            "--from",
            help="Start from this trained model (registry name, checkpoint or run folder, "
            "Hub id): tensors whose shape fits are reused, new classes get new rows (default: "
            "none, a new model).",
            show_default=False,
        ),
    ] = None,
    backbone_weights: Annotated[
        str | None,
        typer.Option(
            help="Trunk weights: a local torchvision/ImageNet weights file, or a GKAAN "
            "checkpoint or registered model whose trunk is used (default: the recipe's).",
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
    motion: Annotated[
        Motion | None,
        typer.Option(
            help="track: add the GM motion stream (where the activity is and how fast it "
            "moves; docs/model.md#motion-track); diff: frame differences into the SRUs; "
            "none: the paper's network (default: the recipe's, none).",
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
            min=1,
            max=MAX_EPOCHS,
            help="Epochs; may grow on --resume (default: the recipe's).",
            show_default=False,
        ),
    ] = None,
    lr: Annotated[
        float | None,
        typer.Option(
            max=MAX_LR,
            callback=positive,
            help="Base learning rate, above 0 (default: the recipe's).",
            show_default=False,
        ),
    ] = None,
    batch_size: Annotated[
        int | None,
        typer.Option(
            min=1,
            max=MAX_BATCH,
            help="Clips (not frames) per optimizer step, all processes together (default: "
            "the recipe's).",
            show_default=False,
        ),
    ] = None,
    accumulate: Annotated[
        int | None,
        typer.Option(
            min=1,
            max=MAX_BATCH,
            help="Micro-batches per step, gradient accumulation (default: the recipe's).",
            show_default=False,
        ),
    ] = None,
    seed: Annotated[
        int | None,
        typer.Option(
            min=0,
            max=MAX_SEED,
            help="Random seed, repeatable CPU runs (default: the recipe's).",
            show_default=False,
        ),
    ] = None,
    device: OptionalDeviceOption = None,
    precision: PrecisionOption = "auto",
    workers: Annotated[
        int | None,
        typer.Option(
            min=0,
            max=MAX_WORKERS,
            help="DataLoader worker processes (default: the recipe's).",
            show_default=False,
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
            min=0.0,
            max=0.95,
            help="Raw sources: fraction of groups for validation (default: the recipe's).",
            show_default=False,
        ),
    ] = None,
    test_fraction: Annotated[
        float | None,
        typer.Option(
            min=0.0,
            max=0.95,
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
    from ..errors import GkaanError, TrainingError, UsageError
    from ..fileio import check_output_path

    model = {"fusion": fusion, "backbone": backbone, "motion": motion}
    overrides: dict[str, Any] = {
        "model": {key: value for key, value in model.items() if value is not None},
        "frozen_backbone": frozen_backbone,
        "pretrained": pretrained,
        "init_from": init_from,
        "backbone_weights": backbone_weights,
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
    if resume and (recipe is not None or config is not None):
        raise UsageError("--resume continues with the run's saved settings; drop --recipe/--config")
    main = int(os.environ.get("RANK", "0")) == 0
    show = not quiet and main
    try:
        if resume:
            given = {k: v for k, v in overrides.items() if v not in (None, {})}
            settings = merge_overrides(load_run_config(out).model_dump(), given)
            train_config = TrainConfig.model_validate(settings)
        else:
            train_config = load_train_config(recipe, config, overrides)
        check_output_path(out, kind="dir")  # writable before any work
        started = time.perf_counter()
        with progress_bar(enabled=show) as on_progress:
            result = run_training(
                data,
                out,
                train_config,
                resume=resume,
                on_progress=on_progress if show else None,
                on_start=(lambda start: _print_start(train_config, start)) if show else None,
                on_epoch=_print_epoch if show else None,
            )
    except GkaanError as error:
        worded = train_message(error)
        if worded is None:
            raise
        kind = UsageError if isinstance(error, UsageError) else TrainingError
        raise kind(worded) from error
    if not main:
        return
    from ..viz.run_report import write_run_report

    page = write_run_report(result)
    stdout.print(epochs_table(result.history))
    stdout.print(_final_line(result, time.perf_counter() - started), markup=False, soft_wrap=True)
    stdout.print(f"report: {page}  (curves: {result.out / 'curves.png'})", markup=False)


#: TrainConfig settings -> the train options that set them (those a resume may change).
_SETTING_FLAGS = {"epochs": "--epochs", "num_workers": "--workers", "device": "--device"}


def train_message(error: GkaanError) -> str | None:
    """The line ``gkaan train`` shows for an error the training engine raised with data
    (:mod:`~gkaan_cli.engine.train_errors`), naming this command's flags (and ``prepare``'s
    where the data must be prepared again); ``None`` for other errors, shown as they are."""
    from ..engine import train_errors as errors

    if isinstance(error, errors.RunExistsError):
        return (
            f"{error.out}: already holds a run; pass --resume to continue it, or pick another "
            "--output"
        )
    if isinstance(error, errors.NothingToResumeError):
        return f"{error.path}: not found; nothing to resume (train without --resume)"
    if isinstance(error, errors.ResumeChangedError):
        may = ", ".join(_SETTING_FLAGS.get(name, name) for name in error.resumable)
        changed = ", ".join(error.changed)
        return (
            f"{error.out}: cannot resume with changed settings ({changed}); only {may} may change"
        )
    if isinstance(error, errors.ResumeEpochsError):
        if error.epochs < error.done:
            fewer = f"--epochs {error.epochs} is fewer"
            return f"{error.out}: already trained {error.done} epochs; {fewer}"
        return (
            f"{error.out}: the run already finished {error.done} of {error.epochs} epochs; to "
            f"train further, resume with --epochs N above {error.done}"
        )
    if isinstance(error, errors.PrecisionDeviceError):
        amp = error.amp
        return (
            f"{amp} training (--precision {amp}, or amp: {amp} in the recipe or --config) needs "
            f"a CUDA device; use --precision bf16 or fp32 on {error.device.upper()}"
        )
    if isinstance(error, errors.SamplingMismatchError):
        return (
            f"{error.data}: prepared for {error.prepared.describe()} sampling; this run samples "
            f"{error.wanted.describe()} and {error.video} lacks its frames: prepare with "
            f"`gkaan prepare SOURCE OUT {_prepare_flags(error.wanted)}` (or train from the video "
            "folder), or train as prepared with --config FILE, FILE holding "
            + errors.sampling_config_json(error.prepared)
        )
    if isinstance(error, errors.FeatureMapsMismatchError):
        if error.cached is None:
            return (
                f"{error.data}: frozen-backbone training needs the conv maps of pretrained "
                f"{error.backbone}; run `gkaan prepare SOURCE {error.data} --features "
                f"{error.backbone}` (or train straight from the video folder)"
            )
        if error.cached == error.weights:
            return (
                f"{error.data}: holds {error.backbone} maps of {error.cached} weights, which "
                f"have changed since: run `gkaan prepare SOURCE {error.data} --features "
                f"{error.backbone} --backbone-weights {error.weights}` again, or train from "
                "the video folder"
            )
        return (
            f"{error.data}: holds {error.backbone} maps of {error.cached} weights, but this "
            f"run's trunk is {error.weights}: prepare with `--features {error.backbone} "
            f"--backbone-weights {error.weights}`, or train from the video folder"
        )
    if isinstance(error, errors.LossNotFiniteError):
        return (
            f"{error.out}: the loss became {error.value} at epoch {error.epoch}, batch "
            f"{error.batch}; training stopped, {error.checkpoints()} (try a lower --lr, or "
            "--precision fp32)"
        )
    return None


def _prepare_flags(sampling: SamplingConfig) -> str:
    """``gkaan prepare``'s flags for ``sampling``."""
    if sampling.mode == "segments":
        return (
            f"--sampling segments --num-segments {sampling.num_segments} "
            f"--frames-per-segment {sampling.frames_per_segment}"
        )
    flags = f"--sampling {sampling.mode} --clip-len {sampling.clip_len}"
    if sampling.mode == "dense":
        flags += f" --stride {sampling.stride} --max-clips {sampling.max_clips}"
        if sampling.test_max_clips:
            flags += f" --test-max-clips {sampling.test_max_clips}"
    return flags


def _print_start(config: TrainConfig, start: RunStart) -> None:
    """The run's settings in a few lines (only what applies), on stderr."""
    model = start.model
    clips = model.sampling.describe()
    videos = ", ".join(f"{n} {split}" for split, n in start.videos.items() if n)
    how = "heads on cached maps, frozen trunk" if start.inputs == "features" else "end to end"
    lines = [
        f"recipe {config.recipe}: {model.backbone} ({start.trunk.label}), {how}; "
        f"{model.fusion} fusion, "
        f"SRU {model.sru_layers} x {model.sru_hidden}, dropout {model.dropout}",
        f"data {start.data}: {plural(len(model.class_names or []), 'class')}, {videos}; "
        f"{start.train_clips} training clips ({clips})",
        f"{config.optimizer} lr {config.lr:g} ({config.schedule}), batch {config.batch_size}, "
        f"{config.epochs} epochs, seed {config.seed}",
    ]
    if start.selection == "val":
        lines.append("best/: the epoch with the best val video top-1 (fused; ties: lower val NLL)")
    else:
        shown = (
            f"{start.eval_split} scores shown, never used to choose; " if start.eval_split else ""
        )
        lines.append(f"best/: the last epoch (no val split; {shown}see docs/protocol.md)")
    if start.init_from is not None:
        new = ", ".join(start.new) if start.new else "none"
        lines.append(f"from {start.init_from}: {start.reused} tensors reused; new: {new}")
    if start.resumed_epoch is not None:
        lines.append(f"resuming from epoch {start.resumed_epoch}")
    lines += [f"warning: {finding}" for finding in start.findings]
    for line in lines:
        stderr.print(line, markup=False, highlight=False, soft_wrap=True)


def _print_epoch(done: EpochDone) -> None:
    """One line per epoch: train loss/top-1, eval video top-1 per stream, lr, speed, time left."""
    record, epochs = done.record, done.epochs
    epoch = record.epoch
    train = record.train
    line = f"epoch {epoch}/{epochs}  loss {train.loss:.4f}  train {100 * train.top1:.1f}%"
    scores = record.eval
    if scores is not None:
        streams = " ".join(f"{name} {100 * v:.0f}%" for name, v in scores.streams.items())
        line += f"  {scores.split} {100 * scores.video_top1:.1f}% ({streams})"
    seconds = record.time.train_seconds
    line += (
        f"  lr {record.lr:.2g}  {record.time.clips_per_s:.1f} clips/s"
        f"  {_duration(seconds * (epochs - epoch))} left"
    )
    if done.best:
        line += "  -> best/"
    stderr.print(line, markup=False, highlight=False, soft_wrap=True)


def _duration(seconds: float) -> str:
    seconds = round(seconds)
    if seconds < 60:
        return f"{seconds}s"
    return f"{seconds // 60}m{seconds % 60:02d}s"


def _final_line(result: TrainResult, seconds: float) -> str:
    """Where ``best/`` is and how it was chosen (and why there is no OOD verdict, if not)."""
    from ..model.ood import NO_GROUPS

    if result.selection == "val" and result.best is not None:
        metric = f"val {100 * (result.best_metric or 0.0):.1f}%"
        chosen = f"best: epoch {result.best_epoch}, {metric}, saved to {result.best}"
        if result.stream_choice is not None:
            choice = result.stream_choice
            weights = ", ".join(f"{w:.2g}" for w in choice.weights)
            chosen += (
                f"; fusion weights {choice.name} ({weights}): val video top-1 "
                f"{100 * choice.accuracy[choice.name]:.1f}%"
            )
    elif result.best is not None:
        chosen = (
            f"best: epoch {result.best_epoch} (the last; no val split to choose on), "
            f"saved to {result.best}"
        )
    else:
        chosen = f"no best/ yet (no evaluation); last/ at {result.last}"
    ood = "" if result.ood else f"\n{NO_GROUPS}"
    return f"{chosen}  ({_duration(seconds)}){ood}"


def epochs_table(history: list[EpochRecord]) -> Table:
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
        "clips/s",
    ):
        table.add_column(name, justify="right", no_wrap=name == "eval")  # headers wrap first
    for record in history:
        scores = record.eval
        table.add_row(
            str(record.epoch),
            f"{record.lr:.2g}",
            f"{record.train.loss:.4f}",
            f"{100 * record.train.top1:.1f}%",
            scores.split if scores else "-",
            f"{100 * scores.clip_top1:.1f}%" if scores else "-",
            f"{100 * scores.video_top1:.1f}%" if scores else "-",
            f"{record.time.clips_per_s:.1f}",
        )
    return table
