"""``OUT/manifest.json``: what ``gkaan prepare`` produced, one record per video.

The manifest is a pydantic model, rewritten atomically (temp file, then ``os.replace``) so a
reader never sees a half-written file. Cached frame indices are stored as half-open runs
``[[start, stop], ...]`` to stay small for long videos.

A manifest is input like any other: :func:`load_manifest` refuses one written by a newer
format version (:data:`MANIFEST_VERSION` is what this gkaan reads) and every size it declares
is bounded (frame counts by :data:`MAX_VIDEO_FRAMES`, classes and their names by the model
config's bounds, the frame size by the config's), so nothing is allocated from an
unchecked number.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from ..config import MAX_CLASS_NAME, MAX_CLASSES, Finite, SamplingConfig, Side
from ..errors import UsageError, validation_problems
from ..fileio import atomic_write_path, sha256_file
from ..model.trunk_weights import TrunkWeights
from ..version import __version__
from .sources import VIDEO_GROUPS_RULE, Split

__all__ = [
    "MANIFEST_NAME",
    "MANIFEST_VERSION",
    "MAX_VIDEO_FRAMES",
    "Manifest",
    "NewerManifestError",
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
#: The manifest format this gkaan writes and reads; a newer one is refused.
MANIFEST_VERSION = 2  # 2: the features' trunk weights as a TrunkWeights (with their hash)
#: Most frames a video may have (46 hours at 60 fps): the dataset holds one int64 per frame
#: of a video, so a manifest's frame count is bounded before anything is allocated.
MAX_VIDEO_FRAMES = 10_000_000
#: Largest frame width or height a record may state (pixels).
MAX_VIDEO_SIDE = 65_536
#: Problems of an invalid manifest named in its error line (the rest are counted).
_SHOWN_PROBLEMS = 3
Status = Literal["ok", "failed", "skipped"]
Frames = Annotated[int, Field(ge=0, le=MAX_VIDEO_FRAMES)]
ClassName = Annotated[str, Field(max_length=MAX_CLASS_NAME)]
#: Bounds of the doctor's findings a manifest may hold (count, characters each).
MAX_FINDINGS = 10_000
MAX_FINDING = 100_000


class NewerManifestError(UsageError):
    """A manifest written by a newer gkaan (its format version is above
    :data:`MANIFEST_VERSION`)."""


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
    label: ClassName
    label_index: int = Field(ge=0, lt=MAX_CLASSES)
    split: Split | None
    group: str | None = None
    status: Status
    reason: str | None = None
    frames: Frames | None = None
    fps: Finite | None = None
    duration: Finite | None = None
    width: Annotated[int, Field(ge=0, le=MAX_VIDEO_SIDE)] | None = None
    height: Annotated[int, Field(ge=0, le=MAX_VIDEO_SIDE)] | None = None
    size_bytes: int | None = Field(None, ge=0)
    sha256: str | None = None
    cached_runs: list[tuple[Frames, Frames]] = Field(default_factory=list)
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

    resize: tuple[Side, Side]
    sampling: SamplingConfig
    storage: str
    features: str | None = None
    #: The weights of the trunk that computed the features (None: no features). Version 1
    #: manifests hold ``true``/``"True"``/a path here; they are read as a ``TrunkWeights``
    #: without a hash.
    pretrained: TrunkWeights | None = None
    #: The precision the features' trunk ran in (``fp32`` or ``bf16``; None: no features).
    precision: str | None = None

    @field_validator("pretrained", mode="before")
    @classmethod
    def _read_weights(cls, value: object) -> TrunkWeights | None:
        return None if value is None else TrunkWeights.parse(value)


class Manifest(_Model):
    """A prepared dataset: source, classes, settings, groups per split and video records."""

    version: int = Field(MANIFEST_VERSION, ge=1, le=MANIFEST_VERSION)
    gkaan_version: str = __version__
    source: str
    classes: list[ClassName] = Field(max_length=MAX_CLASSES)
    settings: PrepareSettings
    split_rule: str
    split_groups: dict[str, list[str]]
    #: The data doctor's warnings when it was prepared (docs/protocol.md#the-data-doctor).
    findings: list[Annotated[str, Field(max_length=MAX_FINDING)]] = Field(
        default_factory=list, max_length=MAX_FINDINGS
    )
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


def _check_version(raw: object, path: Path) -> None:
    """Refuse a manifest of a newer format before its fields are read (they may mean what
    this gkaan does not know)."""
    version = raw.get("version") if isinstance(raw, dict) else None
    if isinstance(version, int) and not isinstance(version, bool) and version > MANIFEST_VERSION:
        raise NewerManifestError(
            f"{path}: manifest format version {version} is newer than this gkaan "
            f"({__version__}) reads (version {MANIFEST_VERSION}); use a newer gkaan or run "
            "`gkaan prepare` again into a new folder"
        )


def load_manifest(directory: str | Path) -> Manifest:
    """Read ``directory/manifest.json``.

    Raises:
        NewerManifestError: the manifest's format version is above :data:`MANIFEST_VERSION`.
        UsageError: the directory holds no manifest or an invalid one (a size out of bounds
            included).
    """
    path = Path(directory) / MANIFEST_NAME
    if not path.is_file():
        raise UsageError(f"{path}: not found; run `gkaan prepare SOURCE {directory}` first")
    try:
        raw = json.loads(path.read_bytes())
        _check_version(raw, path)
        return Manifest.model_validate(raw)
    except (ValueError, RecursionError) as error:
        if not isinstance(error, ValidationError):
            raise UsageError(f"{path}: invalid manifest (not JSON: {error})") from None
        problems = validation_problems(error, whole="manifest").split("; ")
        if len(problems) > _SHOWN_PROBLEMS:  # one line, however many records are wrong
            more = len(problems) - _SHOWN_PROBLEMS
            problems = [*problems[:_SHOWN_PROBLEMS], f"and {more} more"]
        raise UsageError(f"{path}: invalid manifest ({'; '.join(problems)})") from None
