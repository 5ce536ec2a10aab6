"""``gkaan prepare``: decode a dataset once into a frame cache that training reads instead.

:func:`prepare` takes the source, the output folder and one :class:`PrepareOptions`
(split options, sampling, frame size, optional :class:`FeatureOptions`, workers). For each
video of the source (:mod:`gkaan_cli.data.sources`), in a deterministic order:
hash it (SHA-256), probe it, decode the frames :func:`~gkaan_cli.video.sampling.frames_needed`
asks for, resized by the decoder's scaler, and store them (:mod:`gkaan_cli.data.frame_cache`);
optionally also the frozen backbone's conv maps. A bad file becomes a ``failed`` record with
its reason and the run goes on. Progress goes to an ``on_progress`` callback
(:mod:`gkaan_cli.progress`) and the run returns a :class:`PrepareReport`; showing either is
the caller's choice.

Resumable and idempotent: a video whose previous record is ``ok``, whose hash is unchanged
and whose shards are complete and match the current settings is skipped. Shards are written
to temp files and renamed; the manifest is rewritten atomically at most every
``MANIFEST_INTERVAL_S`` seconds and when the run ends or is interrupted, so a killed run loses
at most that much work and the next run completes the rest.

Several processes (``torchrun``, docs/predict.md#distributed) share one run through a
:class:`RankGroup`: each prepares every ``world_size``-th video from its rank into the same
folder (shard names are unique per video), and rank 0, which alone holds the folder's lock and
writes the manifest, gathers every process's records at the end, so the folder is the one a
single process writes. A killed multi-process run keeps the progress rank 0 recorded.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import multiprocessing
import re
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import av
import numpy as np
import torch
from torch import nn

from ..config import BackboneName, PreprocessConfig, SamplingConfig
from ..errors import BadVideoError, UsageError
from ..fileio import TEMP_MARK, PathLock, sha256_file
from ..model.backbones import BACKBONES, build_backbone
from ..model.precision import InferenceTrunk, inference_trunk, resolve_precision
from ..model.trunk_weights import TrunkWeights
from ..progress import ProgressCallback, ProgressEvent
from ..video.handover import in_background
from ..video.reader import check_video_file, probe_video, read_frames
from ..video.sampling import frames_needed
from .doctor import DataWarningsError, diagnose
from .frame_cache import (
    FRAME_SUFFIX,
    STORAGE,
    compute_features,
    encode_jpeg,
    feature_preprocess,
    frame_shard_length,
    write_feature_shard,
    write_frame_shard,
)
from .manifest import (
    MAX_VIDEO_FRAMES,
    Manifest,
    NewerManifestError,
    PrepareSettings,
    VideoRecord,
    indices_to_runs,
    load_manifest,
    shards_intact,
    write_manifest,
)
from .sources import SPLITS, Split, SplitOptions, assign_splits, discover

__all__ = [
    "MANIFEST_INTERVAL_S",
    "FeatureOptions",
    "PrepareOptions",
    "PrepareReport",
    "RankGroup",
    "prepare",
]

#: Longest time between two manifest rewrites during a run (seconds).
MANIFEST_INTERVAL_S = 2.0
FRAMES_DIR = "frames"
FEATURES_DIR = "features"
_FEATURE_BATCH = 32
#: Decoded frames the decoding thread may run ahead of the trunk.
_DECODE_AHEAD = 2 * _FEATURE_BATCH
#: Features are computed on the CPU.
_CPU = torch.device("cpu")
_SLUG = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass(frozen=True)
class FeatureOptions:
    """Also store a frozen backbone's conv maps (fp16) for head-only training.

    Attributes:
        backbone: a key of :data:`~gkaan_cli.model.backbones.BACKBONES`.
        pretrained: the backbone's weights: a
            :class:`~gkaan_cli.model.trunk_weights.TrunkWeights`, or as
            :meth:`TrunkWeights.parse <gkaan_cli.model.trunk_weights.TrunkWeights.parse>`
            reads them: ``True`` (ImageNet), ``False`` (random) or a weights file path.
        precision: the trunk's compute precision, as prediction's (``fp32``, ``bf16``, or
            ``auto``: bf16 where the hardware runs it natively); the maps are stored fp16.
    """

    backbone: BackboneName
    pretrained: TrunkWeights | bool | str | Path = True
    precision: str = "auto"

    @property
    def weights(self) -> TrunkWeights:
        """``pretrained`` as a ``TrunkWeights`` (no hash yet)."""
        return TrunkWeights.parse(self.pretrained)


@dataclass(frozen=True)
class PrepareOptions:
    """Everything :func:`prepare` can be told besides the source and the output folder.

    Attributes:
        video_root: video folder for UCF101/HMDB51 split files (default: the source).
        split_id: official split number (1-3) of UCF101/HMDB51 split files.
        split: how videos are assigned to train/val/test.
        sampling: clip sampling the cache must serve.
        resize: cached frame size (height, width).
        features: also store a backbone's conv maps; ``None``: frames only.
        workers: processes decoding in parallel (1: in this process).
        max_videos: stop after this many videos were processed (the rest left for a rerun).
        strict: the data doctor's warnings (:func:`~gkaan_cli.data.doctor.diagnose`) stop
            the run before any decoding (:class:`DataWarningsError`) instead of being noted.
    """

    video_root: str | Path | None = None
    split_id: int = 1
    split: SplitOptions = field(default_factory=SplitOptions)
    sampling: SamplingConfig = field(default_factory=SamplingConfig)
    resize: tuple[int, int] = PreprocessConfig().resize
    features: FeatureOptions | None = None
    workers: int = 1
    max_videos: int | None = None
    strict: bool = False


@dataclass(frozen=True)
class RankGroup:
    """This process's place among several preparing one folder together (``torchrun``).

    Attributes:
        rank: this process prepares the videos ``rank, rank + world_size, ...`` of the run.
        world_size: how many processes share the run.
        gather: a collective: every process's value (picklable) on rank 0, in rank order;
            ``None`` on the other ranks.
        barrier: a collective that returns once every process called it.
    """

    rank: int
    world_size: int
    gather: Callable[[Any], list[Any] | None]
    barrier: Callable[[], None]

    @property
    def is_main(self) -> bool:
        """Rank 0 holds the folder's lock and writes the manifest."""
        return self.rank == 0


@dataclass
class PrepareReport:
    """What a prepare run did: counts, sizes, rates, failures and the split groups."""

    out: Path
    source: str
    ok: int = 0
    skipped: int = 0
    failed: int = 0
    excluded: int = 0
    frames: int = 0
    cached_frames: int = 0
    hours: float = 0.0
    disk_bytes: int = 0
    seconds: float = 0.0
    prepared_frames: int = 0
    remaining: int = 0
    failures: list[tuple[str, str]] = field(default_factory=list)
    split_rule: str = ""
    split_groups: dict[str, list[str]] = field(default_factory=dict)
    split_videos: dict[str, int] = field(default_factory=dict)
    #: The data doctor's warnings (docs/protocol.md#the-data-doctor), also in the manifest.
    findings: list[str] = field(default_factory=list)

    @property
    def videos_per_s(self) -> float:
        """Newly prepared (ok or failed) videos per second of this run."""
        return (self.ok + self.failed) / self.seconds if self.seconds else 0.0

    @property
    def frames_per_s(self) -> float:
        """Video frames of newly prepared videos per second of this run."""
        return self.prepared_frames / self.seconds if self.seconds else 0.0


@dataclass(frozen=True)
class _Job:
    """Everything one worker needs to prepare one video."""

    video_id: str
    path: Path
    label: str
    label_index: int
    split: Split
    group: str | None
    out: Path
    resize: tuple[int, int]
    sampling: SamplingConfig
    features: FeatureOptions | None
    previous: VideoRecord | None


def _shard_name(video_id: str) -> str:
    """File-system-safe, unique, readable shard name for a video id."""
    digest = hashlib.sha1(video_id.encode("utf-8", "surrogateescape")).hexdigest()[:10]
    return f"{_SLUG.sub('_', Path(video_id).stem)[:80]}-{digest}"


@functools.lru_cache(maxsize=2)
def _built_trunk(name: str, weights: TrunkWeights) -> tuple[nn.Module, TrunkWeights]:
    """The trunk built once per process, and its weights with their hash."""
    trunk: nn.Module = build_backbone(name, pretrained=weights.pretrained)
    return trunk, weights.built(trunk)


@functools.lru_cache(maxsize=2)
def _backbone(name: str, weights: TrunkWeights, precision: str) -> InferenceTrunk:
    """The frozen trunk, built once per process, run as prediction runs it (channels_last,
    the same precision rule; :func:`~gkaan_cli.model.precision.inference_trunk`)."""
    trunk = _built_trunk(name, weights)[0]
    return inference_trunk(trunk, resolve_precision(precision, _CPU), _CPU)


def _cache_is_current(record: VideoRecord, job: _Job, sha256: str) -> bool:
    """Whether ``record`` already holds this video's cache for the current settings."""
    if record.status != "ok" or record.sha256 != sha256 or not record.frames:
        return False
    needed = frames_needed(record.frames, job.sampling, train=job.split == "train")
    cached = record.cached_frames  # a superset serves too (a video that changed split)
    if record.shard is None or not set(needed) <= set(cached):
        return False  # other settings: no need to read the shards at all
    if job.features is not None and record.features is None:
        return False
    if not shards_intact(record, job.out):  # a corrupt shard is rebuilt
        return False
    try:
        if frame_shard_length(job.out / record.shard) != len(cached):
            return False
        if job.features is not None and record.features is not None:
            shape = np.load(job.out / record.features, mmap_mode="r").shape
            return shape[:2] == (len(cached), BACKBONES[job.features.backbone].channels)
    except (OSError, ValueError):
        return False
    return True


def _hash(path: Path) -> str:
    check_video_file(path)  # a FIFO or /dev/zero would block or never end
    try:
        return sha256_file(path)
    except FileNotFoundError:
        raise BadVideoError(path, "file not found") from None
    except IsADirectoryError:
        raise BadVideoError(path, "is a directory, not a video file") from None
    except OSError as error:
        raise BadVideoError(path, f"unreadable ({error.strerror or error})") from None


def _prepare_one(job: _Job) -> tuple[VideoRecord, str]:
    """Prepare one video (runs in a worker process); returns its record and the outcome."""
    base = {
        "id": job.video_id,
        "path": str(job.path),
        "label": job.label,
        "label_index": job.label_index,
        "split": job.split,
        "group": job.group,
    }
    values: dict[str, object] = {}
    try:
        sha256 = _hash(job.path)
        values.update(sha256=sha256, size_bytes=job.path.stat().st_size)
        if job.previous is not None and _cache_is_current(job.previous, job, sha256):
            features = job.previous.features if job.features else None
            return job.previous.model_copy(update={**base, "features": features}), "skipped"
        info = probe_video(job.path)
        if info.num_frames > MAX_VIDEO_FRAMES:
            raise BadVideoError(
                job.path, f"states {info.num_frames} frames, more than {MAX_VIDEO_FRAMES} (refused)"
            )
        values.update(
            frames=info.num_frames,
            fps=info.fps,
            duration=info.duration,
            width=info.width,
            height=info.height,
        )
        needed = frames_needed(info.num_frames, job.sampling, train=job.split == "train")
        name = _shard_name(job.video_id)
        shard = f"{FRAMES_DIR}/{name}{FRAME_SUFFIX}"
        maps = _write_shards(job, needed, job.out / shard)
        values.update(cached_runs=indices_to_runs(needed), shard=shard)
        values["shard_sha256"] = sha256_file(job.out / shard)
        if maps is not None:
            features = f"{FEATURES_DIR}/{name}.npy"
            write_feature_shard(job.out / features, maps)
            values["features"] = features
            values["features_sha256"] = sha256_file(job.out / features)
    except BadVideoError as error:
        return VideoRecord(**base, **values, status="failed", reason=error.reason), "failed"
    return VideoRecord(**base, **values, status="ok"), "ok"


def _write_shards(job: _Job, needed: list[int], shard: Path) -> np.ndarray | None:
    """Decode the needed frames into ``shard``; return their conv maps when asked for."""
    features = job.features
    backbone = (
        None
        if features is None
        else _backbone(features.backbone, features.weights, features.precision)
    )
    preprocess = None if features is None else feature_preprocess(features.backbone)
    maps: list[np.ndarray] = []
    pending: list[np.ndarray] = []

    def flush() -> None:
        if backbone is not None and preprocess is not None and pending:
            maps.append(compute_features(torch.from_numpy(np.stack(pending)), backbone, preprocess))
            pending.clear()

    def decoded() -> Iterator[tuple[np.ndarray, bytes]]:
        """Each frame and its JPEG, both made in the background thread (Pillow's encoder
        releases the GIL, so it overlaps the trunk)."""
        try:
            for frame in read_frames(job.path, size=(job.resize[1], job.resize[0]), indices=needed):
                yield frame.image, encode_jpeg(frame.image)
        except av.error.FFmpegError as error:
            raise BadVideoError(job.path, f"decoding failed ({error})") from None

    def frames() -> Iterator[bytes]:
        for image, jpeg in in_background(decoded(), _DECODE_AHEAD, name="gkaan-prepare-decode"):
            if backbone is not None:
                pending.append(image)
                if len(pending) == _FEATURE_BATCH:
                    flush()
            yield jpeg

    count = write_frame_shard(shard, frames())
    if count != len(needed):
        shard.unlink(missing_ok=True)
        raise BadVideoError(job.path, f"decoded {count} of the {len(needed)} frames needed")
    flush()
    if backbone is None:
        return None
    stacked = np.concatenate(maps)
    if not np.isfinite(stacked).all():  # fp16 overflow or a broken trunk: never cached
        shard.unlink(missing_ok=True)
        raise BadVideoError(job.path, "the backbone's conv maps hold NaN or inf values")
    return stacked


def _remove_temp_files(out: Path) -> None:
    """Delete temp files left by a killed run (they never carry a final name)."""
    for folder in (out / FRAMES_DIR, out / FEATURES_DIR):
        for temp in folder.glob(f".*{TEMP_MARK}*"):
            temp.unlink(missing_ok=True)


def _previous_records(out: Path, settings: PrepareSettings) -> dict[str, VideoRecord]:
    """Records of an earlier run into ``out`` whose cache settings match ``settings``
    (a manifest of a newer gkaan is refused rather than overwritten)."""
    try:
        old = load_manifest(out)
    except NewerManifestError:
        raise
    except UsageError:
        return {}
    same = old.settings.resize == settings.resize and old.settings.storage == settings.storage
    if settings.features is not None:
        old_weights, weights = old.settings.pretrained, settings.pretrained
        same = (
            same
            and (
                old.settings.features,
                old.settings.precision or "fp32",  # maps cached before it was recorded: fp32
            )
            == (settings.features, settings.precision)
            and old_weights is not None
            and weights is not None
            and old_weights.same_weights(weights)
        )
    return {v.id: v for v in old.videos} if same else {}


def prepare(
    source: str | Path,
    out: str | Path,
    options: PrepareOptions | None = None,
    *,
    on_progress: ProgressCallback | None = None,
    on_video: Callable[[VideoRecord, str], None] | None = None,
    on_findings: Callable[[list[str]], None] | None = None,
    ranks: RankGroup | None = None,
) -> PrepareReport:
    """Prepare ``source`` into ``out``: manifest, frame cache and optional feature store.

    Args:
        source: a class-folder tree, a CSV, or UCF101/HMDB51 split files (see ``discover``).
        out: output directory (created; an earlier run there is resumed).
        options: split, sampling, frame size, features, workers (default ``PrepareOptions()``).
        on_progress: called with ``ProgressEvent("prepare", videos_done, videos_total,
            rates)`` at the start and after each video.
        on_video: called with each finished record and its outcome (ok/failed/skipped).
        on_findings: called once, before any decoding, with the data doctor's warnings
            (:func:`~gkaan_cli.data.doctor.diagnose`) when there are any.
        ranks: this process's share of a multi-process run (``None``: one process). The
            report of rank 0 covers every process's videos; another rank's only its own.

    Raises:
        UsageError: bad source, split options or backbone name.
        DataWarningsError: the doctor found problems and ``options.strict`` is set.
        MissingWeightsError: features with pretrained weights that are not available.
    """
    # a second prepare into the same folder is refused, not raced; one lock for all ranks
    main = ranks is None or ranks.is_main
    created = not Path(out).exists()
    try:
        with PathLock(out) if main else contextlib.nullcontext():
            return _prepare(source, Path(out), options, on_progress, on_video, on_findings, ranks)
    except DataWarningsError:
        if created and main:
            with contextlib.suppress(OSError):
                Path(out).rmdir()  # stopped before anything was written: leave no folder
        raise


def _prepare(
    source: str | Path,
    out: Path,
    options: PrepareOptions | None,
    on_progress: ProgressCallback | None,
    on_video: Callable[[VideoRecord, str], None] | None,
    on_findings: Callable[[list[str]], None] | None,
    ranks: RankGroup | None,
) -> PrepareReport:
    started = time.perf_counter()
    main = ranks is None or ranks.is_main
    options = options if options is not None else PrepareOptions()
    features = options.features
    if features is not None:
        if features.backbone not in BACKBONES:
            raise UsageError(
                f"unknown backbone {features.backbone!r}; choose one of {sorted(BACKBONES)}"
            )
        _backbone(features.backbone, features.weights, features.precision)  # weights first
    if options.workers < 1:
        raise UsageError(f"workers must be >= 1, got {options.workers}")
    src = discover(source, video_root=options.video_root, split_id=options.split_id)
    entries, plan = assign_splits(src.entries, options.split)
    findings = diagnose(entries, split_by=options.split.split_by) if main else []
    if findings and options.strict:
        raise DataWarningsError(src.description, findings)
    for folder in (out / FRAMES_DIR, out / FEATURES_DIR):
        folder.mkdir(parents=True, exist_ok=True)
    if main:
        _remove_temp_files(out)
    weights = None if features is None else _built_trunk(features.backbone, features.weights)[1]
    settings = PrepareSettings(
        resize=options.resize,
        sampling=options.sampling,
        storage=STORAGE,
        features=None if features is None else features.backbone,
        pretrained=weights,
        precision=None if features is None else resolve_precision(features.precision, _CPU),
    )
    previous = _previous_records(out, settings)
    if findings and on_findings is not None:  # after the folder's own checks: its errors first
        on_findings(findings)
    if ranks is not None:
        ranks.barrier()  # temp files gone and the old manifest read before any rank writes
    label_index = {label: i for i, label in enumerate(src.classes)}
    order = [src.video_id(e) for e in entries]
    records: dict[str, VideoRecord] = {}
    jobs: list[_Job] = []
    for entry, video_id in zip(entries, order, strict=True):
        if entry.excluded is not None or entry.split is None:
            records[video_id] = VideoRecord(
                id=video_id,
                path=str(entry.path),
                label=entry.label,
                label_index=label_index[entry.label],
                split=None,
                status="skipped",
                reason=entry.excluded,
            )
            continue
        jobs.append(
            _Job(
                video_id,
                entry.path,
                entry.label,
                label_index[entry.label],
                entry.split,
                entry.group,
                out,
                options.resize,
                options.sampling,
                features,
                previous.get(video_id),
            )
        )
    if options.max_videos is not None:
        jobs = jobs[: options.max_videos]
    if ranks is not None:
        jobs = jobs[ranks.rank :: ranks.world_size]
    finished: list[tuple[VideoRecord, str]] = []
    report = PrepareReport(out=out, source=src.description, split_rule=plan.rule, findings=findings)
    report.excluded = len(records)
    report.failures.extend(src.warnings)  # unreadable folders, classes without a readable video

    def manifest() -> Manifest:
        return Manifest(
            source=src.description,
            classes=list(src.classes),
            settings=settings,
            split_rule=plan.rule,
            split_groups=plan.groups,
            findings=findings,
            videos=[records[i] for i in order if i in records],
        )

    last_write = time.monotonic()
    threads = torch.get_num_threads()
    if features is None:  # JPEG/tensor work is per frame: torch's thread pool only stalls it
        torch.set_num_threads(1)  # (measured 6x faster on kth-mini, 2 busy cores)
    try:
        if on_progress is not None:
            on_progress(ProgressEvent("prepare", 0, len(jobs)))
        for done, (record, outcome) in enumerate(_run(jobs, options.workers), start=1):
            records[record.id] = record
            finished.append((record, outcome))
            _tally(report, record, outcome)
            if on_video is not None:
                on_video(record, outcome)
            report.seconds = time.perf_counter() - started
            if on_progress is not None:
                rates = f"{report.videos_per_s:.2f} videos/s {report.frames_per_s:.0f} frames/s"
                on_progress(ProgressEvent("prepare", done, len(jobs), rates))
            if main and time.monotonic() - last_write >= MANIFEST_INTERVAL_S:
                write_manifest(manifest(), out)
                last_write = time.monotonic()
    finally:
        torch.set_num_threads(threads)
        if ranks is not None:
            _merge_ranks(ranks, finished, records, report, order)
        final = manifest()
        if main:
            write_manifest(final, out)
    _summarise(report, final, len(src.entries) - len(records))
    report.seconds = time.perf_counter() - started
    return report


def _tally(report: PrepareReport, record: VideoRecord, outcome: str) -> None:
    """Count one finished video in ``report`` (its outcome, failure reason, frames)."""
    setattr(report, outcome, getattr(report, outcome) + 1)
    if outcome == "failed":
        report.failures.append((record.path, record.reason or ""))
    elif outcome == "ok":
        report.prepared_frames += record.frames or 0


def _merge_ranks(
    ranks: RankGroup,
    finished: list[tuple[VideoRecord, str]],
    records: dict[str, VideoRecord],
    report: PrepareReport,
    order: list[str],
) -> None:
    """Rank 0: add every other rank's finished videos to ``records`` and ``report``, failures
    in source order as one process lists them."""
    gathered = ranks.gather(finished)
    if gathered is None:
        return
    known = len(report.failures) - sum(outcome == "failed" for _, outcome in finished)
    for other in gathered[1:]:
        for record, outcome in other:
            records[record.id] = record
            _tally(report, record, outcome)
    position = {records[v].path: i for i, v in enumerate(order) if v in records}
    report.failures[known:] = sorted(
        report.failures[known:], key=lambda failure: position.get(failure[0], len(position))
    )


def _init_worker() -> None:
    """One torch thread per worker process: the processes are the parallelism."""
    torch.set_num_threads(1)


def _run(jobs: list[_Job], workers: int) -> Iterator[tuple[VideoRecord, str]]:
    """Results of ``_prepare_one`` over ``jobs``: in order in-process, else as they finish.

    Workers are spawned (not forked, which is unsafe once torch runs threads), so a script
    calling :func:`prepare` with ``workers > 1`` needs an ``if __name__ == "__main__":`` guard.
    """
    if workers == 1 or len(jobs) <= 1:
        yield from map(_prepare_one, jobs)
        return
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(workers, mp_context=context, initializer=_init_worker) as pool:
        futures = [pool.submit(_prepare_one, job) for job in jobs]
        try:
            for future in as_completed(futures):
                yield future.result()
        finally:
            for future in futures:
                future.cancel()


def _summarise(report: PrepareReport, manifest: Manifest, remaining: int) -> None:
    """Fill the report's totals from the final manifest and the files on disk."""
    done = manifest.records()
    report.remaining = remaining
    report.frames = sum(v.frames or 0 for v in done)
    report.cached_frames = sum(len(v.cached_frames) for v in done)
    report.hours = sum(v.duration or 0.0 for v in done) / 3600
    report.disk_bytes = sum(p.stat().st_size for p in report.out.rglob("*") if p.is_file())
    report.split_groups = manifest.split_groups
    report.split_videos = {s: len(manifest.records(s)) for s in SPLITS}
