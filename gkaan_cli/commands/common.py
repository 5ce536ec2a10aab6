"""Pieces every command module shares: option types, the stdout/stderr consoles, the progress
bar, model loading, the help layout (:class:`GkaanCommand`) and path shortening.

The shared options (``--model``, ``--device``, ``--precision``, ``--decode``, ``--threads``,
``--quiet``, ``--output``, and the timeline's ``--window``, ``--hop``, ``--smooth``,
``--min-duration``) are declared here once; README's "Shared options" table lists them.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any, Literal

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
from typer.core import TyperArgument, TyperCommand, TyperGroup, TyperOption

from ..config import Decode
from ..errors import UsageError
from ..progress import ProgressCallback, ProgressEvent

if TYPE_CHECKING:
    from ..model.gkaan import GKAAN

__all__ = [
    "DEVICE_HELP",
    "DecodeNote",
    "DecodeOption",
    "DeviceOption",
    "GkaanCommand",
    "GkaanGroup",
    "HopOption",
    "MinDurationOption",
    "ModelOption",
    "OptionalDeviceOption",
    "PrecisionChoice",
    "PrecisionOption",
    "QuietOption",
    "SmoothOption",
    "ThreadsOption",
    "TimelineOptions",
    "WindowOption",
    "choice_callback",
    "load_model",
    "progress_bar",
    "shorten_path",
    "stderr",
    "stdout",
]

#: No markup: file names may contain "[...]". Results on stdout, everything else on stderr.
#: ``soft_wrap``: a printed line (``wrote PATH``) is never broken inside a path or a label;
#: tables still fit the terminal (see :func:`gkaan_cli.commands.predict.print_table`).
stdout = Console(markup=False, highlight=False, soft_wrap=True)
stderr = Console(stderr=True, markup=False, highlight=False, soft_wrap=True)

_DEVICE = re.compile(r"auto|cpu|cuda(:\d+)?")
DEVICE_HELP = "auto (CUDA when available), cpu, cuda or cuda:N"


def _check_device(value: str | None) -> str | None:
    """``--device`` values: auto, cpu, cuda, cuda:N (anything else is a usage error, exit 2)."""
    if value is not None and not _DEVICE.fullmatch(value):
        raise typer.BadParameter(f"{value!r} is not one of auto, cpu, cuda, cuda:N")
    return value


def choice_callback(choices: Sequence[str]) -> Callable[[str | None], str | None]:
    """An option callback accepting ``None`` or one of ``choices`` (else exit 2)."""

    def check(value: str | None) -> str | None:
        if value is not None and value not in choices:
            raise typer.BadParameter(f"{value!r} is not one of {', '.join(choices)}")
        return value

    return check


#: ``--precision`` values.
PrecisionChoice = Literal["auto", "fp32", "bf16", "fp16"]
_PRECISION_HELP = (
    "auto (bf16 for the backbone where the hardware runs it natively, else fp32; in train "
    "the recipe's), fp32, bf16 (autocast, CPU or CUDA) or fp16 (autocast, CUDA only)."
)


ModelOption = Annotated[
    str | None,
    typer.Option(
        "--model",
        "-m",
        help="Checkpoint folder, registered name, or Hub id org/name or org/name@revision "
        "(default: the registry's default model).",
        show_default=False,
    ),
]
DeviceOption = Annotated[
    str,
    typer.Option(
        "--device", metavar="DEVICE", callback=_check_device, help=f"Compute device: {DEVICE_HELP}."
    ),
]
#: ``--device`` where ``None`` keeps a saved or recipe setting (``gkaan train``).
OptionalDeviceOption = Annotated[
    str | None,
    typer.Option(
        "--device",
        metavar="DEVICE",
        callback=_check_device,
        help=f"Compute device: {DEVICE_HELP} (default: the recipe's, auto).",
        show_default=False,
    ),
]
PrecisionOption = Annotated[
    PrecisionChoice, typer.Option("--precision", help=f"Compute precision: {_PRECISION_HELP}")
]
DecodeOption = Annotated[
    Decode,
    typer.Option(
        "--decode",
        help="Video decoding: auto (FFmpeg's CUDA decoder when the device is CUDA and it can "
        "be used, else the CPU), cpu, or cuda (needs a CUDA device; the CPU with a note where "
        "CUDA decoding cannot be used).",
    ),
]
ThreadsOption = Annotated[
    int | None,
    typer.Option(
        min=1, help="CPU threads for torch (default: torch's choice).", show_default=False
    ),
]
QuietOption = Annotated[bool, typer.Option("--quiet", "-q", help="No progress display on stderr.")]

#: The timeline's options (``predict --timeline``, ``visualize --timeline``;
#: docs/predict.md#timeline), gathered in :class:`TimelineOptions`.
WindowOption = Annotated[
    float | None,
    typer.Option(
        "--window",
        help="Timeline window in seconds (default: the model's clip, e.g. 1.2 s).",
        show_default=False,
    ),
]
HopOption = Annotated[
    float | None,
    typer.Option(
        "--hop",
        help="Seconds between timeline windows (default: half the window).",
        show_default=False,
    ),
]
SmoothOption = Annotated[
    int, typer.Option("--smooth", min=1, help="Timeline: windows averaged before labelling.")
]
MinDurationOption = Annotated[
    float,
    typer.Option(
        "--min-duration",
        min=0.0,
        help="Timeline: segments shorter than this (seconds) join a neighbour.",
    ),
]


@dataclass(frozen=True)
class TimelineOptions:
    """The ``--window``/``--hop`` (seconds, None: the defaults), ``--smooth`` and
    ``--min-duration`` options."""

    window: float | None = None
    hop: float | None = None
    smooth: int = 1
    min_duration: float = 0.0

    def require_timeline(self, timeline: bool) -> None:
        """Raise UsageError when an option differs from its default without ``--timeline``."""
        if not timeline and self != TimelineOptions():
            raise UsageError("--window, --hop, --smooth and --min-duration need --timeline")


def _plain_params(params: list[Any]) -> list[Any]:
    """No ``<bool>`` type beside flags (they take no value), upper-case argument names."""
    for param in params:
        if isinstance(param, TyperOption) and param.is_flag and param.metavar is None:
            param.metavar = ""
        elif isinstance(param, TyperArgument) and param.metavar is None:
            param.metavar = (param.name or "").upper()
    return params


class GkaanCommand(TyperCommand):
    """Typer's command with plain help: ``VIDEO...`` not ``{video}...`` in the usage line, no
    ``<bool>`` type beside flags, and ``--out`` still accepted for ``--output``."""

    def collect_usage_pieces(self, ctx: typer.Context) -> list[str]:
        pieces = [self.options_metavar] if self.options_metavar else []
        for param in self.get_params(ctx):
            if isinstance(param, TyperArgument):
                name = (param.metavar or param.name or "").upper()
                name = name if param.required else f"[{name}]"
                pieces.append(name + ("..." if param.nargs != 1 else ""))
        return pieces

    def get_params(self, ctx: typer.Context) -> list[Any]:
        return _plain_params(super().get_params(ctx))

    def parse_args(self, ctx: typer.Context, args: list[str]) -> list[str]:
        if any(p.name == "out" and "--output" in p.opts for p in self.params):
            args = [_OLD_OUTPUT.sub("--output", arg, count=1) for arg in args]
        return super().parse_args(ctx, args)


class GkaanGroup(TyperGroup):
    """Typer's group with the same plain help as :class:`GkaanCommand`."""

    def get_params(self, ctx: typer.Context) -> list[Any]:
        return _plain_params(super().get_params(ctx))


#: ``--out`` (and ``--out=PATH``), the option's name up to 0.1.0, still works.
_OLD_OUTPUT = re.compile(r"^--out(?==|$)")


def shorten_path(path: str, width: int) -> str:
    """``path`` cut from the left to at most ``width`` characters (``.../folder/name``).

    The file name is the part a user reads, so the start of the path goes first.
    """
    if len(path) <= width:
        return path
    return "..." + path[len(path) - max(width - 3, 1) :]


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


class DecodeNote:
    """The Predictor's ``on_decode_fallback`` for a command: the first fallback's reason as
    one ``note:`` line on stderr, later ones not (they may come from the decoding thread).

    The Predictor may call it while it is being built, before the command has named the
    model: the note is held until :meth:`release`, so it follows the model line.
    """

    def __init__(self, *, enabled: bool = True) -> None:
        self._lock = threading.Lock()
        self._said = not enabled
        self._held = True
        self._pending: str | None = None

    def __call__(self, reason: str) -> None:
        with self._lock:
            if self._said:
                return
            self._said = True
            if self._held:
                self._pending = reason
                return
        self._print(reason)

    def release(self) -> None:
        """Print a held note now; later notes print at once."""
        with self._lock:
            self._held = False
            pending, self._pending = self._pending, None
        if pending is not None:
            self._print(pending)

    @staticmethod
    def _print(reason: str) -> None:
        stderr.print(f"note: CUDA decode not available ({reason}); decoding on the CPU")


def load_model(spec: str | None) -> GKAAN:
    """``GKAAN.from_pretrained(spec)``; None is the registry's default model. A ``gkaan
    export`` folder loads as an :class:`~gkaan_cli.model.onnx_runtime.OnnxModel`, which
    the Predictor runs with ONNX Runtime."""
    from ..model.gkaan import GKAAN
    from ..model.locate import resolve_checkpoint
    from ..model.onnx_runtime import is_onnx_export, load_export

    if is_onnx_export(spec):
        return load_export(str(spec))  # type: ignore[return-value]  # the Predictor's interface

    return GKAAN.from_pretrained(spec if spec is not None else resolve_checkpoint(None))
