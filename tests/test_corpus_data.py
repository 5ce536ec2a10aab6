"""Corpus: tampered prepared data and hostile CSV sources through the real CLI.

A small folder is prepared once (two synthetic videos, conv maps of a tiny model's trunk,
so ``evaluate`` reads the cached maps); each case edits a copy of it, or writes a CSV, and
runs ``python -m gkaan_cli``. Every case must end with exit 1 or 2 and one ``error:`` line
naming the file and the reason, no traceback, within its timeout; the clean copy evaluates.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import write_video

from gkaan_cli.config import MAX_CLASS_NAME, GKAANConfig, SamplingConfig
from gkaan_cli.data.dataset import verify_shard
from gkaan_cli.data.manifest import MANIFEST_NAME, MANIFEST_VERSION, load_manifest
from gkaan_cli.data.sources import MAX_PATH_CHARS, SplitOptions, discover
from gkaan_cli.errors import BadDataError, UsageError
from gkaan_cli.fileio import sha256_file
from gkaan_cli.model.gkaan import GKAAN

ROOT = Path(__file__).resolve().parents[1]
TIMEOUT_S = 240


def _run(work: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = os.environ | {"PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1", "COLUMNS": "250"}
    return subprocess.run(
        [sys.executable, "-m", "gkaan_cli", *args],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        errors="replace",
        timeout=TIMEOUT_S,
    )


def _config(**changes: object) -> GKAANConfig:
    """A tiny model with the preprocessing ``prepare --features resnet18`` uses (so the
    cached maps are what its trunk computes) and 4-frame clips."""
    values: dict[str, object] = {
        "num_classes": 2,
        "class_names": ["a", "b"],
        "backbone": "resnet18",
        "sru_hidden": 16,
        "sru_layers": 1,
        "la_hidden": 8,
        "sampling": SamplingConfig(clip_len=4, stride=4, max_clips=1),
    }
    return GKAANConfig(**(values | changes))  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``work/prepared`` (2 test videos with frames and the tiny trunk's maps), ``work/model``
    (whose trunk made the maps) and ``work/other`` (another trunk: it reads the frames)."""
    work = tmp_path_factory.mktemp("corpus-data")
    torch.manual_seed(0)
    GKAAN(_config()).save_pretrained(work / "model")
    GKAAN(_config()).save_pretrained(work / "other")
    rows = [f"{write_video(work / f'{name}.mp4', 8).name},{name},test" for name in ("a", "b")]
    (work / "src.csv").write_text("\n".join(rows) + "\n")
    result = _run(
        work,
        "prepare",
        "src.csv",
        "prepared",
        "--features",
        "resnet18",
        "--backbone-weights",
        "model",
        "--clip-len",
        "4",
        "--stride",
        "4",
        "--max-clips",
        "1",
        "--precision",
        "fp32",
        "-q",
    )
    # two one-video classes of identical bytes: the data doctor warns, the run goes on
    assert result.returncode == 0, result.stderr
    assert "identical videos under two labels" in result.stderr
    return work


def _copy(corpus: Path, name: str) -> Path:
    target = corpus / name
    shutil.copytree(corpus / "prepared", target)
    return target


def _edit_manifest(folder: Path, edit: Callable[[dict], None]) -> None:
    raw = json.loads((folder / MANIFEST_NAME).read_text())
    edit(raw)
    (folder / MANIFEST_NAME).write_text(json.dumps(raw))


def _features(folder: Path) -> tuple[Path, dict]:
    """The first video's feature shard and the manifest record naming it."""
    record = json.loads((folder / MANIFEST_NAME).read_text())["videos"][0]
    return folder / record["features"], record


def _assert_refused(result: subprocess.CompletedProcess[str], where: Path, reason: str) -> None:
    """Exit 1 or 2, no traceback, exactly one stderr line: ``error: <where>: ...<reason>``."""
    assert result.returncode in (1, 2), result.stderr
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"error: {where}"), lines[0]
    assert reason in lines[0], lines[0]


def _evaluate(corpus: Path, folder: Path, model: str = "model") -> subprocess.CompletedProcess:
    out = corpus / "eval" / f"{folder.name}-{model}"
    return _run(corpus, "evaluate", model, str(folder), "--device", "cpu", "-q", "-o", str(out))


@pytest.mark.slow
def test_clean_prepared_folder_evaluates_from_its_maps(corpus: Path) -> None:
    result = _evaluate(corpus, corpus / "prepared")
    assert result.returncode == 0, result.stderr
    report = json.loads((corpus / "eval" / "prepared-model" / "report.json").read_text())
    assert report["inputs"] == "features"
    assert sum(row["videos"] for row in report["per_class"]) == 2


@pytest.mark.slow
def test_flipped_bytes_in_a_feature_shard_are_refused(corpus: Path) -> None:
    folder = _copy(corpus, "flipped")
    shard, _ = _features(folder)
    data = bytearray(shard.read_bytes())
    data[len(data) // 2] ^= 0x10  # inside the maps; the manifest's sha256 left as it was
    shard.write_bytes(bytes(data))
    _assert_refused(_evaluate(corpus, folder), shard, "sha256")


@pytest.mark.slow
def test_flipped_bytes_in_a_frame_shard_are_refused_where_frames_are_read(corpus: Path) -> None:
    folder = _copy(corpus, "frames")
    record = json.loads((folder / MANIFEST_NAME).read_text())["videos"][1]
    shard = folder / record["shard"]
    data = bytearray(shard.read_bytes())
    data[len(data) // 3] ^= 0x01
    shard.write_bytes(bytes(data))
    _assert_refused(_evaluate(corpus, folder, "other"), shard, "sha256")


@pytest.mark.slow
def test_non_finite_features_with_a_matching_sha256_are_refused(corpus: Path) -> None:
    folder = _copy(corpus, "nonfinite")
    shard, _ = _features(folder)
    maps = np.load(shard)
    maps[0, 0, 0, 0] = np.nan
    np.save(shard, maps)
    digest = sha256_file(shard)
    _edit_manifest(folder, lambda raw: raw["videos"][0].update(features_sha256=digest))
    _assert_refused(_evaluate(corpus, folder), shard, "NaN or inf")


@pytest.mark.slow
def test_manifest_of_a_newer_version_says_which_version_this_gkaan_reads(corpus: Path) -> None:
    folder = _copy(corpus, "newer")
    _edit_manifest(folder, lambda raw: raw.update(version=999))
    result = _evaluate(corpus, folder)
    _assert_refused(result, folder / MANIFEST_NAME, "version 999")
    assert f"(version {MANIFEST_VERSION})" in result.stderr
    prepare = _run(corpus, "prepare", "src.csv", str(folder), "-q")  # not overwritten either
    _assert_refused(prepare, folder / MANIFEST_NAME, "version 999")
    assert json.loads((folder / MANIFEST_NAME).read_text())["version"] == 999


@pytest.mark.slow
def test_huge_frame_counts_in_a_manifest_are_refused_before_allocation(corpus: Path) -> None:
    folder = _copy(corpus, "huge")
    _edit_manifest(folder, lambda raw: raw["videos"][0].update(frames=10**12))
    _assert_refused(_evaluate(corpus, folder), folder / MANIFEST_NAME, "videos.0.frames")


@pytest.mark.slow
def test_csv_label_beyond_the_field_limit_is_refused_naming_the_row(corpus: Path) -> None:
    source = corpus / "long-label.csv"
    source.write_text(f"path,label\na.mp4,a\nb.mp4,{'x' * 200_000}\n")
    result = _run(corpus, "prepare", str(source), str(corpus / "long-label"), "-q")
    _assert_refused(result, source, "row 2: cannot be read (field larger than field limit")
    assert not (corpus / "long-label" / MANIFEST_NAME).exists()


# The same checks in process, for the variants not worth a CLI start each.


@pytest.mark.parametrize("value", [np.inf, -np.inf, np.nan])
@pytest.mark.parametrize("dtype", [np.float16, np.float32])
def test_verify_shard_finds_one_non_finite_value(tmp_path: Path, value: float, dtype: type) -> None:
    shard = tmp_path / "maps.npy"
    maps = np.full((3, 4, 7, 7), 6.0, dtype)
    np.save(shard, maps)
    verify_shard(shard, sha256_file(shard), values=np.dtype(dtype))  # finite: accepted
    maps[2, 3, 6, 6] = value  # the very last value
    np.save(shard, maps)
    with pytest.raises(BadDataError, match=r"maps\.npy: feature shard holds NaN or inf"):
        verify_shard(shard, sha256_file(shard), values=np.dtype(dtype))


def test_verify_shard_reads_a_shard_once_per_process_until_it_changes(tmp_path: Path) -> None:
    shard = tmp_path / "frames.jpgs"
    shard.write_bytes(b"frames")
    digest = sha256_file(shard)
    verify_shard(shard, digest)
    before = shard.stat()
    shard.write_bytes(b"framez")  # same size; the same mtime below: taken as unchanged, not read
    os.utime(shard, ns=(before.st_atime_ns, before.st_mtime_ns))
    verify_shard(shard, digest)
    os.utime(shard, ns=(before.st_atime_ns, before.st_mtime_ns + 10**9))  # changed: read again
    with pytest.raises(BadDataError, match=r"frames\.jpgs: corrupt shard"):
        verify_shard(shard, digest)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("cached_runs", [[0, 10**12]]),
        ("width", 10**12),
        ("label_index", 10**12),
        ("fps", "NaN"),
    ],
)
def test_manifest_sizes_are_bounded(
    corpus: Path, tmp_path: Path, field: str, value: object
) -> None:
    folder = tmp_path / "prepared"
    folder.mkdir()
    shutil.copy(corpus / "prepared" / MANIFEST_NAME, folder)
    _edit_manifest(folder, lambda raw: raw["videos"][0].update({field: value}))
    with pytest.raises(UsageError, match=rf"manifest.json: invalid manifest \(videos\.0\.{field}"):
        load_manifest(folder)


def test_manifest_class_names_are_bounded_as_the_model_config_bounds_them(
    corpus: Path, tmp_path: Path
) -> None:
    folder = tmp_path / "prepared"
    folder.mkdir()
    shutil.copy(corpus / "prepared" / MANIFEST_NAME, folder)
    _edit_manifest(folder, lambda raw: raw.update(classes=["a", "b" * (MAX_CLASS_NAME + 1)]))
    with pytest.raises(UsageError, match=r"invalid manifest \(classes\.1"):
        load_manifest(folder)


@pytest.mark.parametrize(
    ("row", "reason"),
    [
        (f"b.mp4,{'x' * (MAX_CLASS_NAME + 1)}", f"label is {MAX_CLASS_NAME + 1} characters long"),
        ("b.mp4, ", "label is empty"),
        (f"{'p' * (MAX_PATH_CHARS + 1)}.mp4,b", f"path is {MAX_PATH_CHARS + 5} characters"),
    ],
)
def test_csv_rows_out_of_bounds_are_refused_naming_the_row(
    tmp_path: Path, row: str, reason: str
) -> None:
    source = tmp_path / "src.csv"
    source.write_text(f"path,label\na.mp4,a\n{row}\nc.mp4,c\n")
    with pytest.raises(UsageError, match=f"src.csv: row 2: .*{reason}"):
        discover(source)
    source.write_text(f"a.mp4,{'a' * MAX_CLASS_NAME}\n")  # the longest label is accepted
    assert discover(source).classes == ("a" * MAX_CLASS_NAME,)


def test_prepare_records_too_many_frames_and_non_finite_maps_as_failed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from gkaan_cli.data import prepare as prepare_module

    write_video(tmp_path / "src" / "a" / "long.mp4", 12)
    write_video(tmp_path / "src" / "b" / "nan.mp4", 8)
    monkeypatch.setattr(prepare_module, "MAX_VIDEO_FRAMES", 10)
    real = prepare_module.compute_features

    def nan_maps(frames: torch.Tensor, *args: object, **kwargs: object) -> np.ndarray:
        maps = real(frames, *args, **kwargs)  # type: ignore[arg-type]
        maps[-1, 0, 0, 0] = np.nan
        return maps

    monkeypatch.setattr(prepare_module, "compute_features", nan_maps)
    options = prepare_module.PrepareOptions(
        sampling=SamplingConfig(clip_len=4, stride=4, max_clips=1),
        resize=(32, 32),
        features=prepare_module.FeatureOptions("resnet18", pretrained=False),
        split=SplitOptions(val_fraction=0.0, test_fraction=0.0),
    )
    report = prepare_module.prepare(tmp_path / "src", tmp_path / "out", options)
    assert report.ok == 0 and report.failed == 2
    reasons = {Path(path).name: reason for path, reason in report.failures}
    assert reasons["long.mp4"] == "states 12 frames, more than 10 (refused)"
    assert reasons["nan.mp4"] == "the backbone's conv maps hold NaN or inf values"
    assert not list((tmp_path / "out" / "features").iterdir())
    assert not list((tmp_path / "out" / "frames").iterdir())
