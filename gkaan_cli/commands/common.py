"""Pieces every command module shares: option types, the stdout/stderr consoles, the progress
bar, model loading."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from ..config import Device, Precision
from ..progress import ProgressCallback, ProgressEvent

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
DeviceOption = Annotated[Device, typer.Option(help="Compute device.")]
PrecisionOption = Annotated[
    Precision,
    typer.Option(help="fp32, bf16 (autocast, CPU or CUDA) or fp16 (CUDA only)."),
]
ThreadsOption = Annotated[
    int | None, typer.Option(min=1, help="CPU threads for torch (default: torch's choice).")
]
QuietOption = Annotated[bool, typer.Option("--quiet", "-q", help="No progress output.")]


@contextmanager
def progress_bar(*, enabled: bool = True) -> Iterator[ProgressCallback]:
    """The commands' one progress display: yields an ``on_progress`` callback for the library.

    One bar per :attr:`~gkaan_cli.progress.ProgressEvent.stage` (description, bar, done/total,
    the event's message, elapsed and remaining time) on stderr; a stage's bar goes away when
    it completes and comes back when the stage starts again (next epoch, next video). The
    display is transient and shown only when ``enabled`` and stderr is a terminal, so
    redirected output and ``--quiet`` runs carry no progress lines.
    """
    progress = Progress(
        TextColumn("{task.description}", markup=False),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[message]}", markup=False),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=stderr,
        transient=True,
        disable=not enabled or not stderr.is_terminal,
    )
    tasks: dict[str, TaskID] = {}

    def on_progress(event: ProgressEvent) -> None:
        task = tasks.get(event.stage)
        if task is None:
            task = tasks[event.stage] = progress.add_task(
                event.stage, total=event.total, message=""
            )
        progress.update(task, completed=event.done, total=event.total, message=event.message)
        if event.total is not None and event.done >= event.total:
            progress.remove_task(tasks.pop(event.stage))

    with progress:
        yield on_progress


def load_model(spec: str | None) -> GKAAN:
    """``GKAAN.from_pretrained(spec)``; None is the registry's default model."""
    from ..model.gkaan import GKAAN
    from ..model.locate import resolve_checkpoint

    return GKAAN.from_pretrained(spec if spec is not None else resolve_checkpoint(None))
