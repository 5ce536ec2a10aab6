"""The ``gkaan`` command line: parse options, call the library, render the results.

Every command runs inside :func:`guarded`, the single error boundary: a
:class:`~gkaan_cli.errors.GkaanError` becomes one ``error: ...`` line on stderr (exit 1,
exit 2 for :class:`~gkaan_cli.errors.UsageError`), Ctrl-C exits 130. Heavy imports
(torch, huggingface_hub) stay inside command bodies so ``gkaan --help`` is fast.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, ParamSpec, TypeVar

import typer
from pydantic import ValidationError
from rich.table import Table
from rich.text import Text

from .commands.common import GkaanCommand, GkaanGroup, stderr, stdout
from .commands.evaluate import evaluate
from .commands.export import export
from .commands.predict import predict
from .commands.prepare import prepare
from .commands.train import train
from .commands.visualize import visualize
from .errors import GkaanError, UsageError, validation_problems
from .fileio import display_path
from .version import __version__

__all__ = ["app", "guarded", "hub_app", "main"]

P = ParamSpec("P")
R = TypeVar("R")

app = typer.Typer(
    name="gkaan",
    help="GKAAN video action recognition (Zheng et al., TNNLS 2020): "
    "prepare, train, evaluate, predict, visualize.",
    no_args_is_help=True,
    add_completion=False,
    cls=GkaanGroup,
)
hub_app = typer.Typer(
    help="Share checkpoints on the Hugging Face Hub.", no_args_is_help=True, cls=GkaanGroup
)
app.add_typer(hub_app, name="hub")


def _one_line(message: str) -> str:
    return "; ".join(line.strip() for line in message.splitlines() if line.strip())


def guarded(command: Callable[P, R]) -> Callable[P, R]:
    """Run ``command`` inside the CLI's error boundary (one line on stderr, no traceback)."""

    @functools.wraps(command)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        for stream in (sys.stdout, sys.stderr):  # non-UTF-8 file names print as \\xNN
            with contextlib.suppress(AttributeError, ValueError):
                stream.reconfigure(errors="backslashreplace")  # type: ignore[union-attr]
        try:
            return command(*args, **kwargs)
        except GkaanError as err:
            message = _one_line(str(err)) or type(err).__name__
            stderr.print(Text.assemble(("error: ", "bold red"), message))
            raise typer.Exit(2 if isinstance(err, UsageError) else 1) from None
        except ValidationError as err:  # an option outside a config's bounds
            message = f"invalid option: {validation_problems(err, whole='options')}"
            stderr.print(Text.assemble(("error: ", "bold red"), _one_line(message)))
            raise typer.Exit(2) from None
        except BrokenPipeError:  # the reader went away (`| head`): stop quietly, as cat does
            with contextlib.suppress(OSError):
                devnull = os.open(os.devnull, os.O_WRONLY)
                os.dup2(devnull, sys.stdout.fileno())  # Python's exit flush goes nowhere
            raise typer.Exit(0) from None
        except OSError as err:  # a file error the library did not name: still one line
            where = f"{display_path(err.filename)}: " if err.filename is not None else ""
            message = f"{where}{err.strerror or err}"
            stderr.print(Text.assemble(("error: ", "bold red"), _one_line(message)))
            raise typer.Exit(1) from None
        except KeyboardInterrupt:
            stderr.print("interrupted")
            raise typer.Exit(130) from None

    return wrapper


def _version(value: bool) -> None:
    if value:
        typer.echo(f"gkaan {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="Show the version and exit."
        ),
    ] = False,
) -> None:
    """GKAAN video action recognition (Zheng et al., TNNLS 2020)."""


app.command("prepare", cls=GkaanCommand)(guarded(prepare))
app.command("train", cls=GkaanCommand)(guarded(train))
app.command("evaluate", cls=GkaanCommand)(guarded(evaluate))
app.command("predict", cls=GkaanCommand)(guarded(predict))
app.command("visualize", cls=GkaanCommand)(guarded(visualize))
app.command("export", cls=GkaanCommand)(guarded(export))


@app.command(cls=GkaanCommand)
@guarded
def info(
    as_json: Annotated[
        bool, typer.Option("--json", help="Print machine-readable JSON instead of a table.")
    ] = False,
    cache: Annotated[
        bool,
        typer.Option(
            "--cache",
            help="List the data cache's entries ($GKAAN_CACHE/prepared): source, "
            "videos, size, last change (default: off).",
        ),
    ] = False,
    clean_cache: Annotated[
        bool,
        typer.Option(
            "--clean-cache",
            help="Remove the data cache's entries (with --older-than, only those unchanged "
            "for that many days); an entry another gkaan process is writing is kept "
            "(default: off).",
        ),
    ] = False,
    older_than: Annotated[
        float | None,
        typer.Option(
            min=0.0,
            max=36500.0,
            help="With --clean-cache: days unchanged (default: none, every entry).",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Show versions, the compute device, cache locations and the registered models."""
    from .engine.cache import cache_entries, prepared_root
    from .engine.cache import clean_cache as clean

    if older_than is not None and not clean_cache:
        raise UsageError("--older-than goes with --clean-cache")
    if clean_cache:
        removed = clean(older_than)
        freed = sum(entry.size_bytes for entry in removed)
        stdout.print(
            f"removed {len(removed)} cache {'entry' if len(removed) == 1 else 'entries'} from "
            f"{display_path(prepared_root())}, freed {_mib(freed)}",
            markup=False,
        )
        return
    entries = cache_entries()
    if cache:
        _print_cache(entries, as_json=as_json)
        return
    from .model.hub_client import hub_cache_dir, is_offline
    from .model.registry import registry_status, weights_dir

    report = _environment() | {
        "hf_hub_cache": str(hub_cache_dir()),
        "hf_hub_offline": is_offline(),
        "weights_dir": str(weights_dir()),
        "data_cache": str(prepared_root()),
        "data_cache_size": _mib(sum(entry.size_bytes for entry in entries)),
        "data_cache_entries": len(entries),
        "models": registry_status(),
    }
    if as_json:
        typer.echo(json.dumps(report, indent=2))
        return
    table = Table(title="gkaan info", show_header=False)
    table.add_column("item", style="bold")
    table.add_column("value")
    for key, value in report.items():
        if key != "models":
            table.add_row(key, str(value))
    for name, model in report["models"].items():
        state = "available" if model["available"] else "missing"
        default = ", default" if model["default"] else ""
        table.add_row(f"model {name}", f"{model['source']} ({state}{default})")
    stdout.print(table)


def _mib(size: int) -> str:
    return f"{size / 2**20:.1f} MiB"


def _print_cache(entries: list[Any], *, as_json: bool) -> None:
    """The data cache's entries as a table (or JSON)."""
    import datetime

    rows = [
        {
            "path": str(entry.path),
            "source": entry.source,
            "videos": entry.videos,
            "size_bytes": entry.size_bytes,
            "modified": datetime.datetime.fromtimestamp(entry.modified).strftime("%Y-%m-%d %H:%M"),
        }
        for entry in entries
    ]
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    table = Table(title="gkaan data cache")
    for column in ("changed", "size", "videos", "source", "entry"):
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(
            str(row["modified"]),
            _mib(int(row["size_bytes"])),
            str(row["videos"]),
            Text(str(row["source"] or "?")),
            Text(Path(row["path"]).name),
        )
    stdout.print(table)


def _environment() -> dict[str, Any]:
    """Versions, device and torch settings (imports torch and av)."""
    import platform
    from importlib.metadata import version

    import av
    import torch

    cuda = torch.cuda.is_available()
    return {
        "gkaan": __version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "torch": torch.__version__,
        "torchvision": version("torchvision"),
        "av": av.__version__,
        "ffmpeg": av.ffmpeg_version_info,
        "huggingface_hub": version("huggingface_hub"),
        "cuda_available": cuda,
        "device": torch.cuda.get_device_name(0) if cuda else "cpu",
        "torch_threads": torch.get_num_threads(),
        "torch_home": torch.hub.get_dir(),
    }


@hub_app.command("pull", cls=GkaanCommand)
@guarded
def hub_pull(
    model: Annotated[str, typer.Argument(help="Hub id org/name[@revision] or registered name.")],
    revision: Annotated[
        str | None, typer.Option(help="Branch, tag or commit to download (default: main).")
    ] = None,
) -> None:
    """Download a checkpoint (config.json + model.safetensors) into the Hub cache."""
    from .model.locate import pull_checkpoint

    typer.echo(str(pull_checkpoint(model, revision=revision)))


@hub_app.command("push", cls=GkaanCommand)
@guarded
def hub_push(
    source: Annotated[
        Path, typer.Argument(help="Checkpoint folder, or a training run folder (best/ or last/).")
    ],
    repo_id: Annotated[str, typer.Argument(help="Hub repository org/name (created if missing).")],
    private: Annotated[bool, typer.Option(help="Create the repository as private.")] = False,
    revision: Annotated[
        str | None, typer.Option(help="Branch to commit to (created if missing; default main).")
    ] = None,
) -> None:
    """Upload config.json, model.safetensors and a generated model card (token: HF_TOKEN)."""
    from .model.hub_client import push_checkpoint

    url = push_checkpoint(source, repo_id, private=private, revision=revision)
    stdout.print(f"pushed {source} to {url}")


def main() -> None:
    """Console-script entry point (``gkaan`` and ``python -m gkaan_cli``).

    A usage error found while parsing (an unknown option, a value out of its bounds) is one
    ``error:`` line on stderr naming the option and where help is, exit 2: not a box.
    """
    try:  # typer >= 0.20 carries its own click
        from typer._click.exceptions import ClickException, NoArgsIsHelpError
    except ImportError:  # pragma: no cover - an older typer on click
        from click.exceptions import ClickException, NoArgsIsHelpError

    try:
        code = app(standalone_mode=False)
    except NoArgsIsHelpError as error:  # bare `gkaan` or `gkaan hub`: the help, as asked
        typer.echo(error.format_message())
        sys.exit(0)
    except ClickException as error:
        context = getattr(error, "ctx", None)
        where = f" (see '{context.command_path} --help')" if context is not None else ""
        message = " ".join(error.format_message().split())
        stderr.print(f"error: {message}{where}", markup=False, highlight=False, soft_wrap=True)
        sys.exit(error.exit_code)
    except typer.Abort:
        sys.exit(130)
    sys.exit(code if isinstance(code, int) else 0)
