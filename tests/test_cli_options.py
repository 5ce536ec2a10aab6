"""One consistent, quick, readable command line: shared options, help, exit codes, outputs."""

from __future__ import annotations

import csv
import io
import os
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from gkaan_cli.cli import app
from gkaan_cli.commands.common import shorten_path
from gkaan_cli.commands.predict import output_format
from gkaan_cli.commands.tables import predictions_table, table_text
from gkaan_cli.errors import UsageError

ROOT = Path(__file__).resolve().parents[1]
COMMANDS = [
    "prepare",
    "train",
    "evaluate",
    "predict",
    "visualize",
    "info",
    "hub pull",
    "hub push",
]
runner = CliRunner()


def help_text(command: str) -> str:
    result = runner.invoke(app, [*command.split(), "--help"], env={"COLUMNS": "400"})
    assert result.exit_code == 0, result.output
    return result.stdout


def option_rows(command: str) -> dict[str, str]:
    """Long option name -> its whole row in ``--help`` (wide enough not to wrap)."""
    rows: dict[str, str] = {}
    for line in help_text(command).splitlines():
        match = re.match(r"│\s+(?:\*\s+)?(--[\w-]+)", line)
        if match:
            rows[match.group(1)] = line
    return rows


def readme_shared_options() -> list[tuple[list[str], str, list[str]]]:
    """(option names, values cell, commands) per row of README's "Shared options" table."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("### Shared options", 1)[1].split("\n#", 1)[0]
    rows = []
    for line in section.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) == 3 and cells[0].startswith("`-"):
            names = re.findall(r"`(-[\w-]+)`", cells[0])
            rows.append((names, cells[1], [c.strip() for c in cells[2].split(",")]))
    return rows


def test_readme_shared_options_table_matches_every_commands_help() -> None:
    table = readme_shared_options()
    assert {names[0] for names, _, _ in table} >= {
        "--device",
        "--precision",
        "--output",
        "--quiet",
        "--batch-size",
    }
    helps = {command: option_rows(command) for command in COMMANDS}
    for names, values, listed in table:
        long_name = names[0]
        for command, rows in helps.items():
            assert (long_name in rows) == (command in listed), (long_name, command)
            if command not in listed:
                continue
            row = rows[long_name]
            for short in names[1:]:
                assert f" {short} " in row, (short, command)
            for value in re.findall(r"`([\w:]+)`", values):
                if long_name == "--batch-size":
                    continue  # its unit depends on the command, checked below
                assert value in row, (long_name, value, command)
    assert "frames" in helps["predict"]["--batch-size"].lower()
    assert "clips" in helps["train"]["--batch-size"].lower()
    assert "clips" in helps["evaluate"]["--batch-size"].lower()


@pytest.mark.parametrize("command", ["", *COMMANDS])
def test_help_has_no_bool_types_no_braces_and_shows_every_default(command: str) -> None:
    text = help_text(command) if command else runner.invoke(app, ["--help"]).stdout
    assert "<bool>" not in text
    usage = next(line for line in text.splitlines() if "Usage:" in line)
    assert "{" not in usage and "}" not in usage
    for option, row in (option_rows(command) if command else {}).items():
        if option in ("--help", "--resume", "--json", "--clips", "--quiet", "--private"):
            continue  # plain flags: off unless given
        assert "default" in row.lower() or "[required]" in row, (command, option, row)


def test_recipe_lists_its_choices_and_refuses_others() -> None:
    row = option_rows("train")["--recipe"]
    for name in ("ucf101", "hmdb51", "kinetics", "reference", "quick"):
        assert name in row
    result = runner.invoke(app, ["train", "data", "-o", "run", "--recipe", "nosuch"])
    assert result.exit_code == 2


def test_motion_lists_its_choices_and_refuses_others() -> None:
    row = option_rows("train")["--motion"]
    for name in ("none", "diff", "track"):
        assert name in row
    result = runner.invoke(app, ["train", "data", "-o", "run", "--motion", "nosuch"])
    assert result.exit_code == 2 and "nosuch" in result.output


# --- quick to answer --------------------------------------------------------------------------

IMPORT_PROBE = """
import sys
sys.argv = ["gkaan", *sys.argv[1:]]
from gkaan_cli.cli import app
try:
    app()
except SystemExit as exit:
    code = exit.code
heavy = sorted(m for m in ("torch", "torchvision", "av") if m in sys.modules)
print("HEAVY", ",".join(heavy), "EXIT", code, file=sys.stderr)
"""


@pytest.mark.parametrize(
    "args", [["--help"], ["predict", "--help"], ["predict", "nosuch.mp4"]], ids=" ".join
)
def test_help_and_a_missing_input_never_import_torch(args: list[str], tmp_path: Path) -> None:
    env = os.environ | {"PYTHONPATH": str(ROOT)}
    result = subprocess.run(
        [sys.executable, "-c", IMPORT_PROBE, *args],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=120,
    )
    heavy, code = re.search(r"HEAVY (\S*) EXIT (\S+)", result.stderr).groups()  # type: ignore[union-attr]
    assert heavy == "", f"{args} imported {heavy}"
    if args[-1] == "nosuch.mp4":
        assert code == "1"
        assert "error: nosuch.mp4: no such file" in result.stderr


# --- exit codes -------------------------------------------------------------------------------


def test_exit_codes_bad_option_value_is_2_bad_input_is_1(tmp_path: Path) -> None:
    missing = str(tmp_path / "missing.mp4")
    assert runner.invoke(app, ["predict", missing, "--device", "gpu"]).exit_code == 2
    assert runner.invoke(app, ["predict", missing, "--precision", "fp64"]).exit_code == 2
    assert runner.invoke(app, ["predict", missing, "-o", "x.json", "-f", "csv"]).exit_code == 2
    assert runner.invoke(app, ["predict", missing]).exit_code == 1
    assert (
        runner.invoke(app, ["prepare", str(tmp_path / "no-source"), "a", "-o", "b"]).exit_code == 2
    )


def test_a_wrong_model_name_is_a_usage_error(
    make_video: Callable[..., Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    video = make_video("v.mp4", num_frames=4)
    result = runner.invoke(app, ["predict", str(video), "--model", "no-such-model"])
    assert result.exit_code == 2
    assert result.stderr.startswith("error: no-such-model: not an existing path")


def test_an_unusable_device_is_a_usage_error(make_video: Callable[..., Path]) -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("CUDA is available here: cuda is usable")
    video = make_video("v.mp4", num_frames=4)
    result = runner.invoke(app, ["predict", str(video), "--device", "cuda:0"])
    assert result.exit_code == 2
    assert "CUDA is not available" in result.stderr


# --- readable wherever it goes ----------------------------------------------------------------


def test_output_suffix_decides_the_format_and_a_disagreeing_one_is_refused() -> None:
    assert output_format(None, None) == "table"
    assert output_format(None, Path("p.JSON")) == "json"
    assert output_format(None, Path("p.jsonl")) == "jsonl"
    assert output_format(None, Path("p.csv")) == "csv"
    assert output_format(None, Path("p.txt")) == "table"
    assert output_format("csv", Path("predictions.out")) == "csv"
    with pytest.raises(UsageError, match="is a json file name but --format is csv"):
        output_format("csv", Path("p.json"))
    with pytest.raises(UsageError, match="give a suffix"):
        output_format(None, Path("p.dat"))


def long_prediction(path: str) -> object:
    from gkaan_cli.engine.predict import VideoPrediction

    labels = ["arms_front_raise_left", "arms_front_raise_right", "waving"]
    probs = np.array([0.5, 0.4, 0.1], np.float32)
    return VideoPrediction(
        path=path,
        info=None,  # type: ignore[arg-type]
        labels=labels,
        probs=probs,
        stream_probs={"gs": probs, "gl": probs, "gp": probs},
        clips=[],
        attention={},
        attention_frames=np.zeros(0, np.int64),
        attention_times=np.zeros(0),
    )


def test_tables_off_a_terminal_keep_every_label_and_path_whole() -> None:
    path = "/a/very/long/folder/name/that/goes/on/and/on/person01_arms_front_raise.mp4"
    text = table_text(predictions_table([long_prediction(path)] * 2, top_k=3))  # type: ignore[list-item]
    assert "arms_front_raise_left 50.0%" in text
    assert "arms_front_raise_right 40.0%" in text
    assert path in text
    assert "…" not in text
    assert {"global (GP)", "SA stream (GS)", "LA stream (GL)"} <= set(
        re.findall(r"global \(GP\)|SA stream \(GS\)|LA stream \(GL\)", text)
    )


def test_long_paths_shorten_from_the_left() -> None:
    path = "/data/sets/kth/person01_boxing_d1_uncomp.avi"
    assert shorten_path(path, 100) == path
    short = shorten_path(path, 24)
    assert len(short) == 24 and short.startswith("...")
    assert short.endswith("person01_boxing_d1_uncomp.avi"[-21:])


def test_predict_caps_top_k_with_a_note_and_writes_text_and_csv_files(
    make_video: Callable[..., Path], tmp_path: Path
) -> None:
    video = str(make_video("v.mp4", num_frames=6))
    out = tmp_path / "p.csv"
    result = runner.invoke(app, ["predict", video, "-k", "9", "-o", str(out), "-q"])
    assert result.exit_code == 0, result.output
    assert "note: the model has 6 classes: --top-k 9 shows 6" in result.stderr
    rows = list(csv.reader(io.StringIO(out.read_text())))
    assert "label_6" in rows[0] and "label_7" not in rows[0]
    assert all(cell != "" for cell in rows[1])
    text = tmp_path / "p.txt"
    result = runner.invoke(app, ["predict", video, "--clips", "--output", str(text)])
    assert result.exit_code == 0, result.output
    written = text.read_text()
    assert "SA stream (GS)" in written and f"clips of {video}" in written
    assert re.search(r"0\.00-0\.\d\d", written)  # the first clip's span
    assert result.stderr.splitlines()[-1] == f"wrote 1 prediction to {text}"


# --- the Hub, offline or silent ----------------------------------------------------------------


@pytest.fixture
def silent_server() -> Iterator[str]:
    """An HTTP endpoint that accepts connections and never answers."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(server.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.getsockname()[1]}"
    stop.set()
    thread.join()
    for conn in held:
        conn.close()
    server.close()


@pytest.mark.slow
def test_a_silent_hub_gives_up_in_seconds_with_one_line(silent_server: str, tmp_path: Path) -> None:
    env = os.environ | {
        "PYTHONPATH": str(ROOT),
        "HF_ENDPOINT": silent_server,
        "HF_HUB_CACHE": str(tmp_path / "hub"),
        "HF_HUB_DOWNLOAD_TIMEOUT": "1",
    }
    env.pop("HF_HUB_OFFLINE", None)
    start = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "gkaan_cli", "hub", "pull", "someone/model"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert time.monotonic() - start < 60
    assert result.returncode == 1
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: someone/model: the Hub cannot be reached")
    assert "HF_HUB_OFFLINE=1" in lines[0]


def test_prepare_test_max_clips_refuses_a_negative_count_in_one_line(tmp_path: Path) -> None:
    (tmp_path / "videos").mkdir()
    result = runner.invoke(
        app, ["prepare", str(tmp_path / "videos"), str(tmp_path / "out"), "--test-max-clips", "-1"]
    )
    assert result.exit_code == 2
    assert "--test-max-clips" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "out").exists()
