"""Fuzz: mutated bytes of real clips through ``gkaan predict`` and ``gkaan prepare``.

Seeded truncations, flipped bytes, zeroed ranges and spliced headers of two real clips (the
first packets of an AVI and an MP4 of ../shared/data/clips, remuxed without re-encoding so
the run stays short). Every run must exit 0 or 1 within its timeout,
print one ``error:`` line per bad file and no traceback, write valid JSON, and write nothing
outside its output path.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from gkaan_cli.config import GKAANConfig, PreprocessConfig, SamplingConfig
from gkaan_cli.model.gkaan import GKAAN

ROOT = Path(__file__).resolve().parents[1]
SEED = 13
CASES = 16
CLIPS = ("apply_eye_makeup.avi", "arm_wrestling.mp4")


#: Video packets kept of each real clip (remuxed, not re-encoded).
HEAD_PACKETS = 48


def _head(source: Path, target: Path) -> bytes:
    """The first HEAD_PACKETS video packets of ``source`` remuxed into ``target``'s format."""
    import av

    with av.open(str(source)) as inp, av.open(str(target), "w") as out:
        stream = inp.streams.video[0]
        copy = out.add_stream_from_template(stream)
        for count, packet in enumerate(inp.demux(stream)):
            if packet.dts is None:
                continue
            if count >= HEAD_PACKETS:
                break
            packet.stream = copy
            out.mux(packet)
    return target.read_bytes()


def _mutate(data: bytes, other: bytes, rng: random.Random, case: int) -> bytes:
    kind = case % 4
    if kind == 0:  # truncation
        return data[: rng.randrange(1, len(data))]
    if kind == 1:  # flipped bytes (the header region and anywhere)
        out = bytearray(data)
        for _ in range(rng.randrange(1, 64)):
            where = rng.randrange(0, min(len(out), 4096)) if rng.random() < 0.5 else None
            where = where if where is not None else rng.randrange(len(out))
            out[where] ^= 1 << rng.randrange(8)
        return bytes(out)
    if kind == 2:  # a zeroed range
        out = bytearray(data)
        start = rng.randrange(len(out))
        stop = min(len(out), start + rng.randrange(1, 1 << 16))
        out[start:stop] = bytes(stop - start)
        return bytes(out)
    cut = rng.randrange(16, 8192)  # one clip's header spliced onto the other's body
    return data[:cut] + other[rng.randrange(len(other) // 2) :]


@pytest.fixture(scope="module")
def corpus(data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``work/src/mutants/*`` (CASES mutated clips, one class folder) and a tiny model."""
    work = tmp_path_factory.mktemp("fuzz")
    sources = [_head(data_dir / "clips" / name, work / f"head-{name}") for name in CLIPS]
    rng = random.Random(SEED)
    folder = work / "src" / "mutants"
    folder.mkdir(parents=True)
    for case in range(CASES):
        which = case % 2
        data = _mutate(sources[which], sources[1 - which], rng, case // 2)
        (folder / f"m{case:02d}{Path(CLIPS[which]).suffix}").write_bytes(data)
    torch.manual_seed(0)
    config = GKAANConfig(
        num_classes=2,
        backbone="resnet18",
        sru_hidden=16,
        sru_layers=1,
        preprocess=PreprocessConfig(resize=(40, 40), crop=32),
        sampling=SamplingConfig(clip_len=4, stride=4, max_clips=2),
    )
    GKAAN(config).save_pretrained(work / "model")
    return work


def _snapshot(folder: Path) -> dict[str, tuple[int, float]]:
    return {
        str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime)
        for p in folder.rglob("*")
        if p.is_file()
    }


def _run(work: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = os.environ | {"PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1", "COLUMNS": "250"}
    return subprocess.run(
        [sys.executable, "-m", "gkaan_cli", *args],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        errors="replace",
        timeout=240,
    )


def _written(before: dict[str, tuple[int, float]], after: dict[str, tuple[int, float]]) -> set:
    return {name for name, stat in after.items() if before.get(name) != stat}


@pytest.mark.slow
def test_mutated_clips_through_predict(corpus: Path) -> None:
    mutants = sorted((corpus / "src" / "mutants").iterdir())
    before = _snapshot(corpus)
    result = _run(
        corpus,
        "predict",
        *map(str, mutants),
        "--model",
        str(corpus / "model"),
        "--device",
        "cpu",
        "-o",
        str(corpus / "pred.json"),
    )
    assert result.returncode in (0, 1), result.stderr
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    records = json.loads((corpus / "pred.json").read_text())
    assert len(errors) + len(records) == len(mutants)
    assert len({line.split(":")[1] for line in errors}) == len(errors)  # one line per file
    assert (result.returncode == 1) == bool(errors)
    assert _written(before, _snapshot(corpus)) == {"pred.json"}


@pytest.mark.slow
def test_mutated_clips_through_prepare(corpus: Path) -> None:
    before = _snapshot(corpus)
    result = _run(corpus, "prepare", "src", "prepared", "--clip-len", "4", "--strict")
    assert result.returncode in (0, 1), result.stderr
    assert "Traceback" not in result.stderr
    manifest = json.loads((corpus / "prepared" / "manifest.json").read_text())
    failed = [v for v in manifest["videos"] if v["status"] == "failed"]
    assert len(manifest["videos"]) == CASES
    assert all(v["reason"] and "\n" not in v["reason"] for v in failed)
    assert result.stdout.count("failed") >= len(failed)
    written = _written(before, _snapshot(corpus))
    assert all(name.startswith("prepared/") for name in written)
    assert not any(".tmp" in name or name.endswith(".lock") for name in _snapshot(corpus))
