"""``torchrun -m gkaan_cli predict/prepare``: 2 gloo processes on CPU write what 1 process
writes (docs/predict.md#distributed), rank 0 alone, with each bad input reported once."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import TINY_MODEL, write_video
from typer.testing import CliRunner

from gkaan_cli.cli import app
from gkaan_cli.config import GKAANConfig, SamplingConfig
from gkaan_cli.data.prepare import PrepareOptions, prepare
from gkaan_cli.engine.shard import launch_rank, shard_indices
from gkaan_cli.model.gkaan import GKAAN

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A tiny random model and a class-folder tree of 5 short videos plus one bad file."""
    root = tmp_path_factory.mktemp("shard")
    torch.manual_seed(0)
    config = GKAANConfig(num_classes=2, class_names=["run", "walk"], **TINY_MODEL)
    model = GKAAN(config).save_pretrained(root / "model")
    for i in range(5):
        write_video(root / "videos" / ("run", "walk")[i % 2] / f"v{i}.mp4", 10 + 3 * i)
    (root / "videos" / "walk" / "bad.mp4").write_text("not a video\n")
    return model, root / "videos"


def torchrun(*args: str) -> subprocess.CompletedProcess[str]:
    """``torchrun --standalone --nproc-per-node 2 -m gkaan_cli ARGS`` (a free port each)."""
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone"]
    command += ["--nproc-per-node", "2", "-m", "gkaan_cli", *args]
    env = os.environ | {"OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=240)


def errors(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("error: ")]


def test_shards_cover_every_input_once_and_one_process_is_rank_0(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for total in (0, 1, 5, 8):
        parts = [list(shard_indices(total, rank, 3)) for rank in range(3)]
        assert sorted(i for part in parts for i in part) == list(range(total))
    with pytest.raises(ValueError):
        shard_indices(4, 2, 2)
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    monkeypatch.setenv("RANK", "1")
    assert launch_rank() == 0
    monkeypatch.setenv("WORLD_SIZE", "2")
    assert launch_rank() == 1


@pytest.mark.slow
def test_two_processes_write_the_one_process_output_in_input_order(
    inputs: tuple[Path, Path], tmp_path: Path
) -> None:
    model, videos = inputs
    missing = tmp_path / "missing.mp4"
    args = [str(videos), str(missing), "--model", str(model), "--clips"]
    one = CliRunner().invoke(app, ["predict", *args, "-o", str(tmp_path / "one.jsonl")])
    assert one.exit_code == 1, one.output
    done = torchrun("predict", *args, "-o", str(tmp_path / "two.jsonl"))
    assert done.returncode == 1, done.stderr[-3000:]  # a bad input: exit 1, as one process
    assert done.stdout == ""  # the results go to the file, written by rank 0 alone
    # every bad input reported once: the missing one by rank 0, bad.mp4 by its process
    assert sorted(errors(done.stderr)) == sorted(errors(one.stderr))
    assert len(errors(done.stderr)) == 2
    assert sum(line.startswith("model: ") for line in done.stderr.splitlines()) == 1
    assert sum(" frames in " in line for line in done.stderr.splitlines()) == 1
    assert "5 videos, " in done.stderr and "wrote 5 predictions" in done.stderr

    ones = [json.loads(line) for line in (tmp_path / "one.jsonl").read_text().splitlines()]
    twos = [json.loads(line) for line in (tmp_path / "two.jsonl").read_text().splitlines()]
    assert [r["file"] for r in twos] == [r["file"] for r in ones]  # input order
    assert len(twos) == 5
    for a, b in zip(ones, twos, strict=True):
        assert a["model"] == b["model"]
        assert [t["label"] for t in a["top_k"]] == [t["label"] for t in b["top_k"]]
        assert [t["prob"] for t in a["top_k"]] == pytest.approx(
            [t["prob"] for t in b["top_k"]], abs=1e-5
        )
        assert len(a["clips"]) == len(b["clips"])
        for clip_a, clip_b in zip(a["clips"], b["clips"], strict=True):
            assert (clip_a["start"], clip_a["end"]) == (clip_b["start"], clip_b["end"])
            assert [t["prob"] for t in clip_a["top_k"]] == pytest.approx(
                [t["prob"] for t in clip_b["top_k"]], abs=1e-5
            )
    assert [p.name for p in tmp_path.iterdir() if ".tmp" in p.name] == []


@pytest.mark.slow
def test_two_processes_prepare_the_folder_one_process_prepares(
    inputs: tuple[Path, Path], tmp_path: Path
) -> None:
    _, videos = inputs
    sampling = SamplingConfig(clip_len=4, stride=4, max_clips=2)
    report = prepare(videos, tmp_path / "one", PrepareOptions(sampling=sampling))
    assert (report.ok, report.failed) == (5, 1)
    done = torchrun(
        "prepare",
        str(videos),
        str(tmp_path / "two"),
        "--clip-len",
        "4",
        "--stride",
        "4",
        "--max-clips",
        "2",
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.count("gkaan prepare") == 1  # rank 0's report of the whole run
    assert re.search(r"prepared \(ok\)\s*│\s*5\s", done.stdout)
    assert re.search(r"failed\s*│\s*1\s", done.stdout)  # bad.mp4, met by one process
    one = json.loads((tmp_path / "one" / "manifest.json").read_text())
    two = json.loads((tmp_path / "two" / "manifest.json").read_text())
    assert two == one
    files = sorted(p.relative_to(tmp_path / "one") for p in (tmp_path / "one").rglob("*"))
    assert sorted(p.relative_to(tmp_path / "two") for p in (tmp_path / "two").rglob("*")) == files
    for name in files:
        if (tmp_path / "one" / name).is_file():
            assert (tmp_path / "two" / name).read_bytes() == (tmp_path / "one" / name).read_bytes()
