"""The command line's messages name only options that exist, and the right command's."""

from __future__ import annotations

import ast
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import typer.main
from typer.testing import CliRunner

from gkaan_cli.cli import app

ROOT = Path(__file__).resolve().parents[1]
#: ``--help`` (every command's, added by click), ``--out`` (the old spelling of ``--output``
#: that train, evaluate, visualize and prepare still accept) and torchrun's own flag.
NOT_DECLARED = {"--help", "--out", "--nproc-per-node"}
FLAG = re.compile(r"(?<![\w-])--[a-z][a-z0-9-]*")


def command_options(command: Any = None) -> dict[str, set[str]]:
    """Each command's path (``"predict"``, ``"hub pull"``) -> its long option names."""
    command = command or typer.main.get_command(app)
    found: dict[str, set[str]] = {}

    def walk(cmd: Any, path: str) -> None:
        found[path] = {
            name
            for param in cmd.params
            for name in (*param.opts, *param.secondary_opts)
            if name.startswith("--")
        }
        for name, sub in getattr(cmd, "commands", {}).items():
            walk(sub, f"{path} {name}".strip())

    walk(command, "")
    return found


def flags_in_strings() -> list[tuple[str, int, str]]:
    """(file, line, flag) for every ``--flag`` in a string of the package (messages, help,
    docstrings; f-strings' literal parts too)."""
    found = []
    for path in sorted((ROOT / "gkaan_cli").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                for flag in FLAG.findall(node.value):
                    found.append((str(path.relative_to(ROOT)), node.lineno, flag))
    return found


def test_every_flag_a_message_names_is_an_option_of_some_command() -> None:
    options = set().union(*command_options().values()) | NOT_DECLARED
    unknown = [f"{file}:{line}: {flag}" for file, line, flag in flags_in_strings()]
    assert [u for u in unknown if u.rsplit(" ", 1)[1] not in options] == []


def test_fp16_training_on_the_cpu_names_trains_own_flag_before_preparing_anything(
    make_video: Callable[..., Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GKAAN_CACHE", str(tmp_path / "cache"))
    for label in ("a", "b"):
        make_video(f"vids/{label}/{label}_0.mp4", num_frames=8, size=(32, 32))
    args = ["train", str(tmp_path / "vids"), "-o", str(tmp_path / "run")]
    result = CliRunner().invoke(app, [*args, "--precision", "fp16", "--device", "cpu"])
    assert result.exit_code == 2, result.output
    (line,) = result.stderr.strip().splitlines()
    assert "--precision fp16" in line and "--precision bf16" in line and "--amp" not in line
    assert set(FLAG.findall(line)) <= command_options()["train"]
    assert not (tmp_path / "cache").exists() or not any((tmp_path / "cache").rglob("*.json"))
