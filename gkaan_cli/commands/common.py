"""Pieces every command module shares: option types, the stdout/stderr consoles, a progress
bar, model loading."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated, Literal

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
)

if TYPE_CHECKING:
    from ..model.gkaan import GKAAN

__all__ = [
    "DeviceOption",
    "ModelOption",
    "PrecisionOption",
    "QuietOption",
    "ThreadsOption",
    "load_model",
    "progress_bar",
    "progress_callback",
    "stderr",
    "stdout",
]

#: No markup: file names may contain "[...]". Results on stdout, everything else on stderr.
stdout = Console(markup=False, highlight=False)
stderr = Console(stderr=True, markup=False, highlight=False, soft_wrap=True)

ModelOption = Annotated[
    str | None,
    typer.Option(
        "--model",
        "-m",
        help="Checkpoint folder, registered name, or Hub id org/name or org/name@revision "
        "(default: the registry's default model).",
    ),
]
DeviceOption = Annotated[Literal["auto", "cpu", "cuda"], typer.Option(help="Compute device.")]
PrecisionOption = Annotated[
    Literal["fp32", "bf16", "fp16"],
    typer.Option(help="fp32, bf16 (autocast, CPU or CUDA) or fp16 (CUDA only)."),
]
ThreadsOption = Annotated[
    int | None, typer.Option(min=1, help="CPU threads for torch (default: torch's choice).")
]
QuietOption = Annotated[bool, typer.Option("--quiet", "-q", help="No progress output.")]


def progress_bar() -> Progress:
    """A transient Rich progress bar on stderr, shown only when stderr is a terminal."""
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=stderr,
        transient=True,
        disable=not stderr.is_terminal,
    )


def progress_callback(progress: Progress, task: TaskID) -> Callable[[int, int], None]:
    """A ``progress(done, total)`` callback that moves ``task`` of ``progress``."""

    def update(done: int, total: int) -> None:
        progress.update(task, completed=done, total=total)

    return update


def load_model(spec: str | None) -> GKAAN:
    """``GKAAN.from_pretrained(spec)``; None is the registry's default model."""
    from ..model.gkaan import GKAAN
    from ..model.locate import resolve_checkpoint

    return GKAAN.from_pretrained(spec if spec is not None else resolve_checkpoint(None))
