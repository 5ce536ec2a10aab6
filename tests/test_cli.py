"""The gkaan command line: commands listed, stubs, info, and the one-line error boundary."""

from __future__ import annotations

import json
import platform
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from gkaan_cli import __version__
from gkaan_cli.cli import app, guarded
from gkaan_cli.errors import BadVideoError, GkaanError, UsageError

runner = CliRunner()
COMMANDS = ["prepare", "train", "evaluate", "predict", "visualize", "info", "hub"]
MISSING_INPUT = {
    "prepare": ["/nonexistent-gkaan", "out"],
    "train": ["/nonexistent-gkaan", "--out", "run"],
    "evaluate": ["/nonexistent-gkaan", "/nonexistent-gkaan"],
}


def test_help_lists_every_command() -> None:
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    listed = {line.split()[1] for line in result.stdout.splitlines() if line.startswith("│ ")}
    assert set(COMMANDS) <= listed


def test_version_flag_prints_the_package_version() -> None:
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.stdout == f"gkaan {__version__}\n"


@pytest.mark.parametrize("command", sorted(MISSING_INPUT))
def test_missing_input_is_one_error_line_naming_it(
    command: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, [command, *MISSING_INPUT[command]])
    assert result.exit_code in (1, 2)
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1
    assert "/nonexistent-gkaan" in errors[0]
    assert "Traceback" not in result.output


def test_train_with_missing_data_prints_only_the_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["train", "/nonexistent-gkaan", "--out", "run"])
    assert result.exit_code == 2
    assert result.stderr.splitlines() == ["error: /nonexistent-gkaan: not found"]
    assert result.stdout == "" and not (tmp_path / "run").exists()


def test_info_json_reports_versions_and_locations(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GKAAN_WEIGHTS_DIR", str(tmp_path))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    (tmp_path / "registry.json").write_text(
        json.dumps({"default": "m", "models": {"m": {"path": "m", "description": "mine"}}})
    )
    result = runner.invoke(app, ["info", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["gkaan"] == __version__
    assert report["python"] == platform.python_version()
    import torch

    assert report["torch"] == torch.__version__
    assert report["torchvision"] == version("torchvision")
    assert report["av"] == version("av")
    assert report["ffmpeg"]
    assert report["torch_threads"] >= 1
    assert report["hf_hub_cache"] == str(tmp_path / "hf")
    assert report["hf_hub_offline"] is True
    assert report["weights_dir"] == str(tmp_path)
    assert report["models"] == {
        "m": {
            "source": str(tmp_path / "m"),
            "description": "mine",
            "available": False,
            "default": True,
        }
    }


def test_info_table_shows_versions() -> None:
    result = runner.invoke(app, ["info"])
    assert result.exit_code == 0
    assert version("torchvision") in result.stdout
    assert "hf_hub_cache" in result.stdout


def test_python_m_gkaan_cli_shows_help() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "gkaan_cli", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "predict" in result.stdout


def _app_raising(error: BaseException) -> typer.Typer:
    """A one-command app whose command raises ``error`` inside the error boundary."""
    tiny = typer.Typer()

    @tiny.command()
    @guarded
    def fail() -> None:
        raise error

    return tiny


def test_gkaan_error_is_one_line_on_stderr_without_markup() -> None:
    path = "videos/" + "long_folder_name/" * 8 + "clip[bold].mp4"
    result = runner.invoke(_app_raising(BadVideoError(path, "no video stream")))
    assert result.exit_code == 1
    assert result.stderr == f"error: {path}: no video stream\n"
    assert result.stdout == ""


def test_multi_line_error_message_is_joined_into_one_line() -> None:
    result = runner.invoke(_app_raising(GkaanError("config invalid\n  num_classes: too small\n")))
    assert result.exit_code == 1
    assert result.stderr == "error: config invalid; num_classes: too small\n"


def test_usage_error_exits_2() -> None:
    result = runner.invoke(_app_raising(UsageError("--clips and --all conflict")))
    assert result.exit_code == 2
    assert result.stderr == "error: --clips and --all conflict\n"


def test_ctrl_c_exits_130_with_one_line() -> None:
    result = runner.invoke(_app_raising(KeyboardInterrupt()))
    assert result.exit_code == 130
    assert result.stderr == "interrupted\n"


def test_hub_pull_missing_repo_offline_is_one_error_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("GKAAN_WEIGHTS_DIR", str(tmp_path / "weights"))
    result = runner.invoke(app, ["hub", "pull", "org/absent"])
    assert result.exit_code == 1
    assert result.stderr == (
        f"error: org/absent: not in the local cache ({tmp_path}) and offline: "
        "run once online or unset HF_HUB_OFFLINE\n"
    )
    assert "Traceback" not in result.output


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["predict", "v.mp4", "--timeline", "--hop", "0"], "--hop"),
        (["predict", "v.mp4", "--bogus"], "--bogus"),
        (["evaluate"], "MODEL"),
    ],
)
def test_a_usage_error_from_the_console_script_is_one_line_exit_2(
    args: list[str], named: str
) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "gkaan_cli", *args], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 2
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and named in lines[0], lines
    assert "--help" in lines[0] and "╭" not in result.stderr
