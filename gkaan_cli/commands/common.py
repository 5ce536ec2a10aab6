"""Pieces every command module shares: option types, the stdout/stderr consoles, the progress
bar, model loading, the help layout (:class:`GkaanCommand`) and path shortening.

The shared options (``--model``, ``--device``, ``--precision``, ``--decode``, ``--threads``,
``--quiet``, ``--output``, and the timeline's ``--window``, ``--hop``, ``--smooth``,
``--min-duration``) are declared here once; README's "Shared options" table lists them.
"""

from __future__ import annotations

import math
import re
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Annotated, Any, Literal

import typer
from rich.console import Console, RenderableType
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text
from typer.core import TyperArgument, TyperCommand, TyperGroup, TyperOption

from ..config import (
    MAX_SMOOTH,
    MAX_SWITCH_COST,
    MAX_THREADS,
    MAX_TIMELINE_SECONDS,
    Decode,
)
from ..fileio import printable
from ..progress import ProgressCallback, ProgressEvent

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
    "SwitchCostOption",
    "ThreadsOption",
    "WindowOption",
    "choice_callback",
    "fit_width",
    "natural_width",
    "pack_entries",
    "packed_width",
    "positive",
    "progress_bar",
    "shorten_path",
    "stderr",
    "stdout",
]


#: No markup: file names may contain "[...]". Results on stdout, everything else on stderr.
#: ``soft_wrap``: a printed line (``wrote PATH``) is never broken inside a path or a label;
#: tables still fit the terminal (see :func:`gkaan_cli.commands.tables.print_table`).
class _PrintableConsole(Console):
    """A Console that prints control characters of ``str`` and ``Text`` arguments (a file
    name's ESC or BEL in a note or an error) as ``\\xNN``: a name cannot drive the terminal."""

    def print(self, *objects: Any, **kwargs: Any) -> None:
        super().print(*map(_printable, objects), **kwargs)


def _printable(item: Any) -> Any:
    if isinstance(item, str):
        return printable(item)
    if isinstance(item, Text) and printable(item.plain) != item.plain:
        return Text(printable(item.plain), style=item.style)  # spans would no longer fit
    return item


stdout = _PrintableConsole(markup=False, highlight=False, soft_wrap=True)
stderr = _PrintableConsole(stderr=True, markup=False, highlight=False, soft_wrap=True)

_DEVICE = re.compile(r"auto|cpu|cuda(:\d+)?")
DEVICE_HELP = "auto (CUDA when available), cpu, cuda or cuda:N"


def _check_device(value: str | None) -> str | None:
    """``--device`` values: auto, cpu, cuda, cuda:N (anything else is a usage error, exit 2)."""
    if value is not None and not _DEVICE.fullmatch(value):
        raise typer.BadParameter(f"{value!r} is not one of auto, cpu, cuda, cuda:N")
    return value


def positive(value: float | None) -> float | None:
    """Option callback: a number above 0 (the option declares no ``min``, so -1 and 0 get
    the same line: ``-1 is not above 0``; ``nan`` and ``inf`` never get here: every
    :class:`GkaanCommand` refuses them before parsing)."""
    if value is not None and value <= 0:
        raise typer.BadParameter(f"{value:g} is not above 0")
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
        min=1,
        max=MAX_THREADS,
        help="CPU threads for torch (default: torch's choice).",
        show_default=False,
    ),
]
QuietOption = Annotated[bool, typer.Option("--quiet", "-q", help="No progress display on stderr.")]

#: The timeline's options (``predict --timeline``, ``visualize --timeline``;
#: docs/predict.md#timeline), gathered in :class:`TimelineOptions`.
WindowOption = Annotated[
    float | None,
    typer.Option(
        "--window",
        max=MAX_TIMELINE_SECONDS,
        callback=positive,
        help="Timeline window in seconds, above 0 (default: the model's clip, e.g. 1.2 s).",
        show_default=False,
    ),
]
HopOption = Annotated[
    float | None,
    typer.Option(
        "--hop",
        max=MAX_TIMELINE_SECONDS,
        callback=positive,
        help="Seconds between timeline windows, above 0 (default: half the window).",
        show_default=False,
    ),
]
SmoothOption = Annotated[
    int,
    typer.Option(
        "--smooth", min=1, max=MAX_SMOOTH, help="Timeline: windows averaged before labelling."
    ),
]
MinDurationOption = Annotated[
    float,
    typer.Option(
        "--min-duration",
        min=0.0,
        max=MAX_TIMELINE_SECONDS,
        help="Timeline: segments shorter than this (seconds) join a neighbour.",
    ),
]

SwitchCostOption = Annotated[
    float,
    typer.Option(
        "--switch-cost",
        min=0.0,
        max=MAX_SWITCH_COST,
        help=(
            "Timeline: nats of window log-probability a change of label costs "
            f"(0: each window's own label; 0-{MAX_SWITCH_COST:g})."
        ),
    ),
]


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
        self._refuse_unusable(ctx, args)
        return super().parse_args(ctx, args)

    def _refuse_unusable(self, ctx: typer.Context, args: list[str]) -> None:
        """An empty (or blank) argument or option value is a usage error: a path "" would
        be read as "." (``gkaan predict ""`` predicted every video in the folder). So is
        ``nan`` or ``inf`` for a number, before typer's range check (which called ``nan``
        "should be less than or equal to 3600")."""
        try:
            values, _, _ = self.make_parser(ctx).parse_args(args=list(args))
        except typer.TyperException:
            return  # the real parse reports it
        for param in self.get_params(ctx):
            value = values.get(param.name)
            given = value if isinstance(value, (list, tuple)) else [value]
            if any(isinstance(item, str) and not item.strip() for item in given):
                raise typer.BadParameter("empty; give a value", ctx=ctx, param=param)
            if _takes_float(param):
                for item in given:
                    if isinstance(item, str) and not _finite_text(item):
                        raise typer.BadParameter(
                            f"{item} is not a finite number", ctx=ctx, param=param
                        )


def _takes_float(param: Any) -> bool:
    """Whether typer converts ``param``'s value to a float (as its ``type_descriptor`` says,
    which is why pyproject asks for typer >= 0.29)."""
    return getattr(getattr(param, "type_descriptor", None), "annotation", None) is float


def _finite_text(text: str) -> bool:
    """False for text that reads as ``nan`` or an infinity; True otherwise (text that is no
    number at all is left to typer's own message)."""
    try:
        return math.isfinite(float(text))
    except ValueError:
        return True


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


def natural_width(renderable: RenderableType) -> int:
    """The columns ``renderable`` takes with every cell on its own lines, nothing wrapped."""
    return Console(width=100_000).measure(renderable).maximum


#: Between the entries of a packed line (``walking 78.0%  running 19.1%``).
ENTRY_GAP = "  "


def pack_entries(entries: Sequence[str], width: int) -> list[str]:
    """``entries`` joined by two spaces into lines of at most ``width`` characters, filled in
    order; a line breaks only between entries, so a label stays whole and beside its number
    (an entry longer than ``width`` gets a line of its own)."""
    lines: list[str] = []
    for entry in entries:
        if lines and len(lines[-1]) + len(ENTRY_GAP) + len(entry) <= width:
            lines[-1] += ENTRY_GAP + entry
        else:
            lines.append(entry)
    return lines


def packed_width(entries: Sequence[str], lines: int) -> int:
    """The least width at which :func:`pack_entries` puts ``entries`` on ``lines`` lines."""
    width = max((len(entry) for entry in entries), default=0)
    while len(pack_entries(entries, width)) > lines:
        width += 1
    return width


def fit_width(
    build: Callable[[int | None], RenderableType], longest: int, width: int, *, least: int = 12
) -> RenderableType | None:
    """``build(path_width)`` (file names cut from the left to ``path_width``; None: whole) with
    the names as long as ``width`` columns allow, at least ``least`` characters; None when the
    result cannot fit."""
    renderable = build(None)
    excess = natural_width(renderable) - width
    if excess <= 0:
        return renderable
    if longest - excess < min(least, longest):
        return None
    renderable = build(longest - excess)
    return renderable if natural_width(renderable) <= width else None


#: With stderr redirected, a preparation writes one line per this many videos.
PREPARE_LINE_EVERY = 10


@contextmanager
def progress_bar(*, enabled: bool = True) -> Iterator[ProgressCallback]:
    """The commands' one progress display: yields an ``on_progress`` callback for the library.

    One bar per :attr:`~gkaan_cli.progress.ProgressEvent.stage` (description, bar, done/total,
    the event's message, elapsed and remaining time) on stderr; a stage's bar goes away when
    it completes and comes back when the stage starts again (next epoch, next video). The
    display is transient and shown only when ``enabled`` and stderr is a terminal. When
    stderr is redirected, long data preparation (stage ``prepare``) still writes a plain line
    every :data:`PREPARE_LINE_EVERY` videos and at the end, so a logged run is not silent for
    minutes; ``--quiet`` runs carry no progress lines.
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
    lines = enabled and not stderr.is_terminal

    def on_progress(event: ProgressEvent) -> None:
        every = event.done % PREPARE_LINE_EVERY == 0 or event.done == event.total
        if lines and event.stage == "prepare" and event.done and every:
            of = f"/{event.total}" if event.total is not None else ""
            stderr.print(f"prepare: {event.done}{of} videos {event.message}".rstrip())
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
    one ``note:`` line on stderr, later ones not (they may come from the decoding thread)."""

    def __init__(self, *, enabled: bool = True) -> None:
        self._lock = threading.Lock()
        self._said = not enabled

    def __call__(self, reason: str) -> None:
        with self._lock:
            if self._said:
                return
            self._said = True
        stderr.print(f"note: CUDA decode not available ({reason}); decoding on the CPU")
