"""``OUT/manifest.json``: what ``gkaan prepare`` produced, one record per video.

The manifest is a pydantic model, rewritten atomically (temp file, then ``os.replace``) so a
reader never sees a half-written file. Cached frame indices are stored as half-open runs
``[[start, stop], ...]`` to stay small for long videos.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from ..config import SamplingConfig
from ..errors import UsageError, validation_problems
from ..fileio import atomic_write_path, sha256_file
from ..version import __version__
from .sources import VIDEO_GROUPS_RULE, Split

__all__ = [
    "MANIFEST_NAME",
    "MANIFEST_VERSION",
    "Manifest",
    "PrepareSettings",
    "Status",
    "VideoRecord",
    "indices_to_runs",
    "load_manifest",
    "runs_to_indices",
    "shards_intact",
    "write_manifest",
]

MANIFEST_NAME = "manifest.json"
MANIFEST_VERSION = 1
Status = Literal["ok", "failed", "skipped"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class VideoRecord(_Model):
    """One video: where it is, its label and split, what was probed and what was cached.

    ``status``: ``ok`` (cached), ``failed`` (``reason`` says why) or ``skipped`` (the source
    excludes it, e.g. HMDB51 "0" lines). Paths in ``shard``/``features`` are relative to the
    prepared directory.
    """

    id: str
    path: str
    label: str
    label_index: int
    split: Split | None
    group: str | None = None
    status: Status
    reason: str | None = None
    frames: int | None = None
    fps: float | None = None
    duration: float | None = None
    width: int | None = None
    height: int | None = None
    size_bytes: int | None = None
    sha256: str | None = None
    cached_runs: list[tuple[int, int]] = Field(default_factory=list)
    shard: str | None = None
    features: str | None = None
    #: sha256 of the frame and feature shards as written, so a rerun of prepare detects a
    #: corrupt shard and rebuilds it (absent in manifests of older versions).
    shard_sha256: str | None = None
    features_sha256: str | None = None

    @field_validator("shard", "features")
    @classmethod
    def _inside(cls, value: str | None) -> str | None:
        """Shard paths are relative and stay inside the prepared folder."""
        if value is not None:
            parts = value.replace("\\", "/").split("/")
            if value.startswith("/") or ".." in parts or "" in parts or ":" in parts[0]:
                raise ValueError(f"{value!r} is not a path inside the prepared folder")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> VideoRecord:
        if self.frames is not None and self.frames < 0:
            raise ValueError("frames must be >= 0")
        if self.label_index < 0:
            raise ValueError("label_index must be >= 0")
        for start, stop in self.cached_runs:
            if not 0 <= start < stop or (self.frames is not None and stop > self.frames):
                raise ValueError(
                    f"cached run [{start}, {stop}) is outside the video's {self.frames} frames"
                )
        if self.status == "ok" and (self.shard is None or not self.frames):
            raise ValueError("an ok record needs frames and a shard")
        return self

    @property
    def cached_frames(self) -> list[int]:
        """Frame indices stored in the shard, in shard order."""
        return runs_to_indices(self.cached_runs)


class PrepareSettings(_Model):
    """Settings the cache was built with: frame size (H, W), sampling, storage, features."""

    resize: tuple[int, int]
    sampling: SamplingConfig
    storage: str
    features: str | None = None
    pretrained: bool | str | None = None
    #: The precision the features' trunk ran in (``fp32`` or ``bf16``; None: no features).
    precision: str | None = None


class Manifest(_Model):
    """A prepared dataset: source, classes, settings, groups per split and video records."""

    version: int = MANIFEST_VERSION
    gkaan_version: str = __version__
    source: str
    classes: list[str]
    settings: PrepareSettings
    split_rule: str
    split_groups: dict[str, list[str]]
    videos: list[VideoRecord]

    @property
    def groups_known(self) -> bool:
        """Whether the records' groups are real (``--split-by``, e.g. persons), not one per
        video: only then can two videos be known to show the same person."""
        return self.split_rule != VIDEO_GROUPS_RULE

    @model_validator(mode="after")
    def _labels_in_range(self) -> Manifest:
        for record in self.videos:
            if record.label_index >= len(self.classes):
                raise ValueError(
                    f"video {record.id!r}: label_index {record.label_index} is out of range "
                    f"({len(self.classes)} classes)"
                )
            if self.classes[record.label_index] != record.label:
                raise ValueError(
                    f"video {record.id!r}: label {record.label!r} is not class "
                    f"{record.label_index} ({self.classes[record.label_index]!r})"
                )
        return self

    def records(self, split: str | None = None, *, status: Status = "ok") -> list[VideoRecord]:
        """Records with ``status`` (default ok), in ``split`` when given."""
        return [
            v for v in self.videos if v.status == status and (split is None or v.split == split)
        ]


def indices_to_runs(indices: Iterable[int]) -> list[tuple[int, int]]:
    """Sorted unique ``indices`` as half-open runs: ``[0, 1, 2, 5] -> [(0, 3), (5, 6)]``."""
    runs: list[tuple[int, int]] = []
    for index in sorted(set(indices)):
        if runs and runs[-1][1] == index:
            runs[-1] = (runs[-1][0], index + 1)
        else:
            runs.append((index, index + 1))
    return runs


def runs_to_indices(runs: Iterable[tuple[int, int]]) -> list[int]:
    """Inverse of :func:`indices_to_runs`."""
    return [i for start, stop in runs for i in range(start, stop)]


def shards_intact(record: VideoRecord, directory: str | Path) -> bool:
    """Whether ``record``'s shards still have the sha256 they were written with (a record
    without checksums, from an older version, counts as intact)."""
    root = Path(directory)
    for name, digest in (
        (record.shard, record.shard_sha256),
        (record.features, record.features_sha256),
    ):
        if name is None or digest is None:
            continue
        try:
            if sha256_file(root / name) != digest:
                return False
        except OSError:
            return False
    return True


def write_manifest(manifest: Manifest, directory: str | Path) -> Path:
    """Write ``directory/manifest.json`` atomically (temp file, fsync, ``os.replace``)."""
    directory = Path(directory)
    target = directory / MANIFEST_NAME
    # json (ASCII, \\u escapes) keeps non-UTF-8 file names (surrogate escapes) losslessly,
    # where pydantic's own JSON encoder refuses them.
    text = json.dumps(manifest.model_dump(), indent=1, ensure_ascii=True, allow_nan=False)
    with atomic_write_path(target) as temp, open(temp, "w", encoding="utf-8") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    return target


def load_manifest(directory: str | Path) -> Manifest:
    """Read ``directory/manifest.json``.

    Raises:
        UsageError: the directory holds no manifest or an invalid one.
    """
    path = Path(directory) / MANIFEST_NAME
    if not path.is_file():
        raise UsageError(f"{path}: not found; run `gkaan prepare SOURCE {directory}` first")
    try:
        return Manifest.model_validate(json.loads(path.read_bytes()))
    except (ValueError, RecursionError) as error:
        if not isinstance(error, ValidationError):
            raise UsageError(f"{path}: invalid manifest (not JSON: {error})") from None
        problems = validation_problems(error, whole="manifest")
        raise UsageError(f"{path}: invalid manifest ({problems})") from None
