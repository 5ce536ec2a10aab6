"""Library code reports progress through ``on_progress`` callbacks; it never draws on a terminal."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from gkaan_cli.config import SamplingConfig
from gkaan_cli.data.prepare import PrepareOptions, prepare
from gkaan_cli.data.sources import SplitOptions
from gkaan_cli.progress import ProgressEvent

_IMPORT_LIBRARY = """
import importlib, pkgutil, sys
for name in ("data", "engine", "model", "video"):
    package = importlib.import_module(f"gkaan_cli.{name}")
    for module in pkgutil.walk_packages(package.__path__, f"{package.__name__}."):
        importlib.import_module(module.name)
print(sorted(m for m in sys.modules if m == "rich" or m.startswith("rich.")))
"""


@pytest.mark.slow
def test_data_engine_model_and_video_never_import_rich() -> None:
    result = subprocess.run(
        [sys.executable, "-c", _IMPORT_LIBRARY], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_prepare_reports_every_video_to_on_progress_and_prints_nothing(
    tmp_path: Path, make_video: Callable[..., Path], capfd: pytest.CaptureFixture[str]
) -> None:
    for i in range(3):
        make_video(f"in/{'ab'[i % 2]}/v{i}.mp4", num_frames=8)
    events: list[ProgressEvent] = []
    options = PrepareOptions(
        split=SplitOptions(val_fraction=0.0, test_fraction=0.0),
        sampling=SamplingConfig(clip_len=4, stride=4, max_clips=1),
    )
    report = prepare(tmp_path / "in", tmp_path / "out", options, on_progress=events.append)
    assert report.ok == 3
    assert [(e.stage, e.done, e.total) for e in events] == [("prepare", i, 3) for i in range(4)]
    assert all("videos/s" in e.message for e in events[1:])
    assert capfd.readouterr() == ("", "")


def test_preparation_writes_a_line_per_ten_videos_when_stderr_is_redirected(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from gkaan_cli.commands.common import PREPARE_LINE_EVERY, progress_bar
    from gkaan_cli.progress import ProgressEvent

    with progress_bar(enabled=True) as on_progress:  # stderr captured: not a terminal
        for done in range(24):
            on_progress(ProgressEvent("prepare", done, 23, "1.00 videos/s"))
            on_progress(ProgressEvent("train", done, 23))  # other stages stay silent
    lines = capsys.readouterr().err.splitlines()
    assert PREPARE_LINE_EVERY == 10
    assert lines == [
        "prepare: 10/23 videos 1.00 videos/s",
        "prepare: 20/23 videos 1.00 videos/s",
        "prepare: 23/23 videos 1.00 videos/s",
    ]
    with progress_bar(enabled=False) as on_progress:  # --quiet
        on_progress(ProgressEvent("prepare", 10, 23))
    assert capsys.readouterr().err == ""
