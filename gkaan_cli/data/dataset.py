"""PyTorch datasets over a prepared directory: clips from the frame cache, or cached conv maps.

They read only ``manifest.json`` and the cache (never a video file). Clip frame indices come
from :func:`~gkaan_cli.video.sampling.sample_clips` with the model config's sampling:
``segments`` training draws one random clip per video per epoch; otherwise every clip of
every video is one item (dense: up to ``max_clips`` per video in training,
``test_max_clips`` when testing, when it is set). Randomness (segment frames,
crop, flip) is seeded by ``(seed, epoch, item index)``, so results do not depend on which
DataLoader worker reads an item; call :meth:`set_epoch` before each epoch.

Before a dataset reads anything, :func:`validate_prepared` checks every shard it will read:
inside the folder, the sha256 the manifest recorded when ``prepare`` wrote it, and (feature
shards) the shape the model needs and only finite values. The check reads each shard once
per process (a shard already verified in this process, unchanged since, is not read again),
so a shard changed or damaged after ``prepare`` is refused before training or evaluation
uses it, with one line naming it.
"""

from __future__ import annotations

import hashlib
import stat
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from ..config import GKAANConfig
from ..errors import BadDataError, UsageError
from ..video.sampling import sample_clips
from ..video.transforms import ClipTransform
from .frame_cache import feature_preprocess, read_frame_shard
from .manifest import Manifest, VideoRecord, load_manifest

__all__ = ["ClipDataset", "FeatureDataset", "validate_prepared", "verify_shard"]

#: Downsampling of every backbone's conv map (224 x 224 -> 7 x 7).
_BACKBONE_STRIDE = 32
_RERUN = "run `gkaan prepare` again to rebuild it"
#: What reading a damaged shard raises (turned into BadDataError naming the shard).
_READ_ERRORS = (OSError, ValueError, RuntimeError, IndexError, EOFError)
#: Bytes read at a time while a shard is verified.
_VERIFY_CHUNK = 1 << 22
#: Shards verified in this process, by (path, size, mtime, inode, expected sha256): each
#: one is read once per run even when train, val and calibration open it again.
_verified: set[tuple[str, int, int, int, str | None]] = set()


def verify_shard(path: Path, sha256: str | None, *, values: np.dtype | None = None) -> None:
    """Check the shard at ``path`` in one read: its sha256 is ``sha256`` (the manifest's;
    ``None``, from an older manifest: not compared) and, with ``values`` (a feature shard's
    dtype), every value after the ``.npy`` header is finite.

    Raises:
        BadDataError: the shard is unreadable, its sha256 differs, or it holds NaN or inf.
    """
    try:
        info = path.stat()
        if not stat.S_ISREG(info.st_mode):  # a FIFO would block the read
            raise BadDataError(path, f"not a regular file; {_RERUN}")
        key = (str(path.resolve()), info.st_size, info.st_mtime_ns, info.st_ino, sha256)
        if key in _verified or (sha256 is None and values is None):
            return
        digest, finite = hashlib.sha256(), True
        with open(path, "rb") as handle:
            if values is not None:  # the header as it is, then whole values at a time
                header = np.load(path, mmap_mode="r", allow_pickle=False).offset
                digest.update(handle.read(header))
                bits = np.dtype(values.str.replace("f", "u"))  # same size and byte order
                finfo = np.finfo(values)
                exponent = ((1 << finfo.nexp) - 1) << finfo.nmant
            chunk = _VERIFY_CHUNK - _VERIFY_CHUNK % (1 if values is None else values.itemsize)
            while block := handle.read(chunk):
                digest.update(block)
                if values is not None and finite:  # NaN and inf: all exponent bits set
                    words = np.frombuffer(block, bits, len(block) // bits.itemsize)
                    finite = not bool(((words & exponent) == exponent).any())
    except (OSError, ValueError) as error:
        reason = getattr(error, "strerror", None) or error
        raise BadDataError(path, f"unreadable shard ({reason}); {_RERUN}") from None
    if sha256 is not None and digest.hexdigest() != sha256:
        raise BadDataError(
            path, f"corrupt shard (its sha256 is not the one prepare recorded); {_RERUN}"
        )
    if not finite:
        raise BadDataError(path, f"feature shard holds NaN or inf values; {_RERUN}")
    _verified.add(key)


def _inside(root: Path, name: str) -> Path:
    """``root / name`` when it resolves (links followed) inside ``root``, else BadDataError."""
    path = root / name
    resolved, base = path.resolve(), root.resolve()
    if not resolved.is_relative_to(base):
        raise BadDataError(path, "points outside the prepared folder; refused")
    return path


def validate_prepared(
    root: str | Path,
    manifest: Manifest,
    records: list[VideoRecord],
    config: GKAANConfig,
    *,
    features: bool = False,
) -> None:
    """Check prepared data against the model before any training or evaluation reads it.

    Every shard path stays inside ``root``; with ``features``, each feature shard is a
    float16 (or float32) ``.npy`` of shape (cached frames, C, h, w) where C is the model's
    channel count and (h, w) the backbone's map size at the feature crop, holding only
    finite values. The shards read (feature shards with ``features``, else frame shards)
    have the sha256 the manifest recorded (:func:`verify_shard`). (Label indices, frame
    runs and sizes are checked when the manifest is loaded.)

    Raises:
        BadDataError: a shard outside the folder, missing, of the wrong shape or dtype,
            changed since ``prepare`` wrote it, or holding NaN or inf.
    """
    root = Path(root)
    for record in records:
        for name in (record.shard, record.features):
            if name is not None:
                _inside(root, name)
        if not features:
            if record.shard is not None:
                verify_shard(root / record.shard, record.shard_sha256)
            continue
        if record.features is None:
            raise BadDataError(root / record.id, f"has no feature shard; {_RERUN}")
        path = root / record.features
        try:
            maps = np.load(path, mmap_mode="r", allow_pickle=False)
        except (OSError, ValueError, EOFError) as error:
            raise BadDataError(path, f"unreadable feature shard ({error}); {_RERUN}") from None
        side = feature_preprocess(config.backbone).crop // _BACKBONE_STRIDE
        expected = (len(record.cached_frames), config.feature_channels, side, side)
        if maps.dtype not in (np.float16, np.float32) or tuple(maps.shape) != expected:
            raise BadDataError(
                path,
                f"feature shard is {maps.dtype} {tuple(maps.shape)}, expected float16 "
                f"{expected} for this model; {_RERUN}",
            )
        verify_shard(path, record.features_sha256, values=maps.dtype)


class _CachedClips(Dataset[tuple[torch.Tensor, int, int]]):
    """Items ``(video, clip)`` of one split and the cache positions of their frames.

    An item is ``(tensor, label index, video index)``; subclasses say how the tensor is read
    (:meth:`_read`) and what they need of the cache (:meth:`_setup`, run at the end of
    ``__init__``).
    """

    #: Whether items come from the feature shards (checked by :func:`validate_prepared`).
    _uses_features = False

    def __init__(
        self,
        prepared_dir: str | Path,
        split: str,
        config: GKAANConfig,
        *,
        train: bool,
        seed: int = 0,
    ) -> None:
        self.root = Path(prepared_dir)
        self.manifest: Manifest = load_manifest(self.root)
        classes = self.manifest.classes
        if config.num_classes != len(classes) or config.class_names not in (None, classes):
            raise UsageError(
                f"{self.root}: the model has {config.num_classes} classes "
                f"({config.class_names}) but the prepared data has {len(classes)} ({classes})"
            )
        self.records: list[VideoRecord] = self.manifest.records(split)
        if not self.records:
            raise UsageError(f"{self.root}: no prepared videos in split {split!r}")
        self.config = config
        self.train = train
        self.seed = seed
        self.epoch = 0
        self._random_clip = config.sampling.mode == "segments" and (
            train or config.sampling.test_clips > 0
        )
        self._positions: list[np.ndarray] = []
        self._clips: list[list[tuple[int, ...]]] = []
        self.items: list[tuple[int, int]] = []
        for video, record in enumerate(self.records):
            positions = np.full(record.frames or 0, -1, np.int64)
            cached = record.cached_frames
            positions[cached] = np.arange(len(cached))
            clips = [
                c.frames
                for c in sample_clips(
                    len(positions), config.sampling, fps=1.0, train=train and not self._random_clip
                )
            ]
            wanted = range(len(positions)) if self._random_clip else {i for c in clips for i in c}
            if any(positions[i] < 0 for i in wanted):
                raise UsageError(
                    f"{self.root}: {record.id} lacks frames that {config.sampling.mode} sampling "
                    f"(train={train}) needs; prepare again with the sampling of this config"
                )
            self._positions.append(positions)
            self._clips.append(clips)
            count = (
                len(clips) if not self._random_clip else 1 if train else config.sampling.test_clips
            )
            self.items.extend((video, k) for k in range(count))
        self._setup()
        validate_prepared(
            self.root, self.manifest, self.records, config, features=self._uses_features
        )

    def _setup(self) -> None:
        """Check the cache holds what :meth:`_read` needs; prepare per-dataset state."""

    def _read(self, record: VideoRecord, positions: list[int], index: int) -> torch.Tensor:
        """The tensor of item ``index``: ``record``'s cached frames at ``positions``."""
        raise NotImplementedError

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch whose random clips, crops and flips items get."""
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.items)

    @property
    def labels(self) -> list[int]:
        """Class index of every item."""
        return [self.records[video].label_index for video, _ in self.items]

    def _seed(self, index: int) -> int:
        return int(np.random.SeedSequence([self.seed, self.epoch, index]).generate_state(1)[0])

    def clip_frames(self, index: int) -> tuple[int, ...]:
        """Frame indices (in the video) of item ``index`` for the current epoch."""
        video, k = self.items[index]
        if not self._random_clip:
            return self._clips[video][k]
        rng = np.random.default_rng(self._seed(index))
        num_frames = len(self._positions[video])
        return sample_clips(num_frames, self.config.sampling, fps=1.0, train=True, rng=rng)[
            0
        ].frames

    def _locate(self, index: int) -> tuple[int, VideoRecord, list[int]]:
        """Item ``index``'s video number, record and cache positions (this epoch)."""
        video, _ = self.items[index]
        return (
            video,
            self.records[video],
            self._positions[video][list(self.clip_frames(index))].tolist(),
        )

    def _corrupt(self, record: VideoRecord, error: BaseException) -> BadDataError:
        """The one-line error of a shard that failed to read."""
        name = record.features if self._uses_features else record.shard
        reason = " ".join(str(error).split()) or type(error).__name__
        return BadDataError(self.root / str(name), f"corrupt shard ({reason}); {_RERUN}")

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int, int]:
        video, record, positions = self._locate(index)
        try:
            tensor = self._read(record, positions, index)
        except _READ_ERRORS as error:
            raise self._corrupt(record, error) from None
        return tensor, record.label_index, video


class ClipDataset(_CachedClips):
    """Clips ``(T, 3, crop, crop)`` float, label index, video index, from the frame cache.

    Args:
        prepared_dir: a directory made by ``gkaan prepare``.
        split: ``train``, ``val`` or ``test``.
        config: the model config (classes, preprocessing, sampling).
        train: random clips (segments), random-resized crop and flip; else deterministic.
        seed: seed of all randomness (with the epoch and the item index).
    """

    def _setup(self) -> None:
        self.transform = ClipTransform(self.config.preprocess, train=self.train)

    def _read(self, record: VideoRecord, positions: list[int], index: int) -> torch.Tensor:
        assert record.shard is not None
        frames = read_frame_shard(self.root / record.shard, positions)
        generator = torch.Generator().manual_seed(self._seed(index)) if self.train else None
        return self.transform(frames, generator)


class FeatureDataset(_CachedClips):
    """Cached conv maps ``(T, C, h, w)`` float32, label index, video index (head-only training).

    Args:
        prepared_dir: a directory made by ``gkaan prepare --features BACKBONE``.
        split: ``train``, ``val`` or ``test``.
        config: the model config; its backbone must be the one the features came from.
        train: random clips for segment sampling.
        seed: seed of the random clips.
    """

    _uses_features = True

    def _setup(self) -> None:
        stored, backbone = self.manifest.settings.features, self.config.backbone
        if stored != backbone:
            raise UsageError(
                f"{self.root}: holds {stored or 'no'} features but the model's backbone is "
                f"{backbone}; run `gkaan prepare ... --features {backbone}`"
            )
        self._open: dict[str, np.ndarray] = {}

    def _read(self, record: VideoRecord, positions: list[int], index: int) -> torch.Tensor:
        return torch.from_numpy(np.array(self._rows(record, positions))).float()

    def _rows(self, record: VideoRecord, positions: list[int]) -> np.ndarray:
        """The fp16 maps at ``positions`` of ``record``'s shard, memory-mapped once per shard
        (a run of consecutive positions is a slice, not a gather)."""
        assert record.features is not None
        maps = self._open.get(record.features)
        if maps is None:
            maps = np.load(self.root / record.features, mmap_mode="r", allow_pickle=False)
            self._open[record.features] = maps
        first = positions[0]
        if positions == list(range(first, first + len(positions))):
            return maps[first : first + len(positions)]
        return maps[np.asarray(positions)]

    def __getitems__(self, indices: list[int]) -> list[tuple[torch.Tensor, int, int]]:
        """A batch of items read into one fp16 array and converted to fp32 once (the
        DataLoader calls this instead of ``__getitem__`` per item); the items are rows of one
        tensor, which :meth:`collate` hands on without copying them again."""
        located = [self._locate(index) for index in indices]
        rows: list[np.ndarray] = []
        for _, record, positions in located:
            try:
                rows.append(self._rows(record, positions))
            except _READ_ERRORS as error:
                raise self._corrupt(record, error) from None
        if len({row.shape for row in rows}) != 1:  # clips of different lengths: one by one
            return [self[index] for index in indices]
        batch = torch.from_numpy(np.stack(rows)).float()
        return [
            (batch[i], record.label_index, video) for i, (video, record, _) in enumerate(located)
        ]

    def __getstate__(self) -> dict[str, object]:
        state = self.__dict__.copy()
        state["_open"] = {}  # memory maps are reopened by each DataLoader worker
        return state

    @staticmethod
    def collate(
        items: list[tuple[torch.Tensor, int, int]],
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``default_collate`` for this dataset's items: maps (B, T, C, h, w), labels and video
        indices; rows of one :meth:`__getitems__` batch are returned as that batch."""
        maps = [item[0] for item in items]
        base = maps[0]._base
        whole = (
            isinstance(base, torch.Tensor)
            and base.shape[0] == len(maps)
            and all(m.data_ptr() == base[i].data_ptr() for i, m in enumerate(maps))
        )
        return (
            base if whole else torch.stack(maps),
            torch.tensor([item[1] for item in items]),
            torch.tensor([item[2] for item in items]),
        )
