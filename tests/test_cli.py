"""The gkaan command line: commands listed, stubs, info, and the one-line error boundary."""

from __future__ import annotations

import json
import platform
import subprocess
import sys
from collections.abc import Callable
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


@pytest.mark.parametrize("value", ["-1", "0", "-0.5"])
@pytest.mark.parametrize(("command", "option"), [("predict", "--window"), ("train", "--lr")])
def test_a_number_that_must_be_above_0_gets_one_wording_below_and_at_0(
    command: str, option: str, value: str
) -> None:
    """-1 was refused as "should be greater than or equal to 0", although 0 is refused too."""
    result = runner.invoke(app, [command, "nosuch", option, value])
    assert result.exit_code == 2
    assert f"Invalid value for '{option}': {float(value):g} is not above 0" in result.stderr


@pytest.mark.parametrize("value", ["nan", "inf", "-inf"])
@pytest.mark.parametrize(
    ("command", "option"),
    [
        ("predict", "--window"),
        ("predict", "--switch-cost"),
        ("train", "--lr"),
        ("info", "--older-than"),
    ],
)
def test_a_number_that_is_not_finite_is_named_so(command: str, option: str, value: str) -> None:
    """``--window nan`` was refused as "should be less than or equal to 3600"."""
    args = [command, option, value] if command == "info" else [command, "nosuch", option, value]
    result = runner.invoke(app, args)
    assert result.exit_code == 2
    assert f"Invalid value for '{option}': {value} is not a finite number" in result.stderr


def test_counts_agree_with_their_noun() -> None:
    from gkaan_cli.words import plural

    assert [plural(n, "video") for n in (0, 1, 2)] == ["0 videos", "1 video", "2 videos"]
    assert plural(1, "class") == "1 class" and plural(3, "class") == "3 classes"


@pytest.mark.slow
def test_a_reader_that_goes_away_is_no_error(make_video: Callable[..., Path]) -> None:
    video = make_video("v.mp4", num_frames=6)
    child = subprocess.Popen(
        [sys.executable, "-m", "gkaan_cli", "predict", str(video), "-f", "jsonl", "-q"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert child.stdout is not None
    child.stdout.close()  # `| head` gone before the first record
    _, errors = child.communicate(timeout=120)
    assert child.returncode == 0 and "Broken pipe" not in errors and "Traceback" not in errors


def test_a_mistyped_run_folder_is_not_taken_for_a_hub_id(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from gkaan_cli.errors import UnknownModelError
    from gkaan_cli.model.locate import resolve_checkpoint

    monkeypatch.chdir(tmp_path)
    (tmp_path / "runs").mkdir()
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")  # were it asked, the Hub would be tried
    with pytest.raises(UnknownModelError, match=r"no such model folder \(runs/ exists"):
        resolve_checkpoint("runs/ps7")


@pytest.mark.slow
def test_jsonl_on_stdout_streams_and_ctrl_c_keeps_the_finished_videos(
    make_video: Callable[..., Path],
) -> None:
    import signal
    import time

    videos = [str(make_video(f"v{i}.mp4", num_frames=240)) for i in range(4)]
    # a child of a background job starts with Ctrl-C ignored: give it a terminal's default
    ctrl_c = "import runpy, signal; signal.signal(signal.SIGINT, signal.default_int_handler)"
    main = f"{ctrl_c}; runpy.run_module('gkaan_cli', run_name='__main__')"
    child = subprocess.Popen(
        [sys.executable, "-c", main, "predict", *videos, "-f", "jsonl", "-q"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert child.stdout is not None
    first = json.loads(child.stdout.readline())  # arrives before the other videos are done
    assert first["file"] == videos[0]
    time.sleep(0.5)  # Ctrl-C a moment later, as a person would
    child.send_signal(signal.SIGINT)
    rest, errors = child.communicate(timeout=120)
    assert child.returncode == 130, errors
    kept = [json.loads(line) for line in rest.splitlines()]
    assert len(kept) < 3  # stopped half-way; every line written is a whole record
    assert f"interrupted: {1 + len(kept)} video" in errors and "Traceback" not in errors


def test_info_shows_the_data_cache_and_clean_cache_frees_what_it_reports(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import os
    import time

    monkeypatch.setenv("GKAAN_CACHE", str(tmp_path / "cache"))
    prepared = tmp_path / "cache" / "prepared"
    old, new = prepared / "a.csv-0123456789abcdef", prepared / "b-fedcba9876543210"
    for entry, size in ((old, 3 * 2**20), (new, 2**20)):
        (entry / "frames").mkdir(parents=True)
        (entry / "manifest.json").write_text('{"source": "CSV a.csv", "videos": [{}, {}]}')
        (entry / "frames" / "x.jpgs").write_bytes(b"\0" * size)
    week_ago = time.time() - 7 * 86400
    for path in (old / "frames" / "x.jpgs", old / "manifest.json", old / "frames", old):
        os.utime(path, (week_ago, week_ago))
    (prepared / "notes").mkdir()  # not a cache entry: never listed, never removed
    (tmp_path / "elsewhere-0000000000000000").mkdir()
    (prepared / "link-0000000000000000").symlink_to(tmp_path / "elsewhere-0000000000000000")

    shown = json.loads(runner.invoke(app, ["info", "--json"]).output)
    assert shown["data_cache"] == str(prepared) and shown["data_cache_entries"] == 2
    assert shown["data_cache_size"].startswith("4.0")  # MiB
    listed = json.loads(runner.invoke(app, ["info", "--cache", "--json"]).output)
    assert [Path(e["path"]).name for e in listed] == [old.name, new.name]  # oldest first
    assert listed[0]["videos"] == 2 and listed[0]["source"] == "CSV a.csv"

    result = runner.invoke(app, ["info", "--clean-cache", "--older-than", "3"])
    assert result.exit_code == 0 and "removed 1 cache entry" in result.output
    assert "freed 3.0 MiB" in result.output and not old.exists() and new.exists()
    result = runner.invoke(app, ["info", "--clean-cache"])
    assert "removed 1 cache entry" in result.output and not new.exists()
    assert (prepared / "notes").is_dir() and (tmp_path / "elsewhere-0000000000000000").is_dir()
    assert json.loads(runner.invoke(app, ["info", "--json"]).output)["data_cache_entries"] == 0


@pytest.mark.slow
def test_an_mp4_on_stdin_says_it_needs_seeking_and_what_to_pipe(data_dir: Path) -> None:
    video = (data_dir / "clips" / "arm_wrestling.mp4").read_bytes()
    result = subprocess.run(
        [sys.executable, "-m", "gkaan_cli", "predict", "-", "-q"],
        input=video,
        capture_output=True,
        timeout=120,
    )
    errors = result.stderr.decode()
    assert result.returncode == 1 and result.stdout == b""
    assert "a pipe cannot be seeked" in errors and "-f mpegts" in errors
    assert len(errors.splitlines()) == 1


def test_a_wrong_model_name_is_reported_before_torch_loads(
    make_video: Callable[..., Path],
) -> None:
    video = make_video("v.mp4", num_frames=4)
    probe = (
        "import runpy, sys\n"
        "try:\n"
        "    runpy.run_module('gkaan_cli', run_name='__main__')\n"
        "except SystemExit as exit:\n"
        "    print('torch' in sys.modules, exit.code)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe, "predict", str(video), "--model", "nosuch"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.stdout.split() == ["False", "2"], result.stderr
    assert "nosuch: not an existing path, a registered model" in result.stderr
