"""The per-video frame store that training reads instead of video files, and the feature store.

Frames (``frames/<name>.jpgs``): the frames that sampling needs, already resized by the
decoder's scaler, each JPEG-encoded (quality 90) and concatenated, followed by a footer:
``uint64 offsets[N + 1]``, ``uint64 N``, ``b"GKJPEG01"`` (little-endian). Chosen by measurement
(benchmarks/bench_cache.py, 6 real KTH videos at 256x256, random 30-frame clips): JPEG takes
12 KB per frame against 196 KB for raw uint8 (16x less disk) and reads ~930 frames/s on one
busy core against ~18,000 for a memory-mapped ``.npy``; that is still ~40x what training
consumes (the backbone runs at ~25 frames/s on this CPU), while raw would need ~490 GB for
UCF101.

Features (``features/<name>.npy``, optional): the frozen backbone's conv maps of the same
frames, center crop, backbone normalisation, float16, shape (N, C, h, w) (DESIGN.md
section 4: head-only training needs no CNN).

Every file is written to a temp file in the same folder and renamed into place
(:func:`gkaan_cli.fileio.atomic_write_path`; temp names contain :data:`TEMP_MARK`), so a killed
run never leaves a half-written shard under the final name.
"""

from __future__ import annotations

import contextlib
import os
import struct
import warnings
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import BinaryIO

import numpy as np
import torch
from torch import nn
from torchvision.io import decode_jpeg, encode_jpeg

from ..config import PreprocessConfig
from ..fileio import atomic_write_path
from ..model.backbones import BACKBONES
from ..video.transforms import ClipTransform

__all__ = [
    "FRAME_SUFFIX",
    "JPEG_QUALITY",
    "STORAGE",
    "compute_features",
    "feature_preprocess",
    "frame_shard_length",
    "read_feature_shard",
    "read_frame_shard",
    "write_feature_shard",
    "write_frame_shard",
]

JPEG_QUALITY = 90
STORAGE = f"jpeg-q{JPEG_QUALITY}"
FRAME_SUFFIX = ".jpgs"
_MAGIC = b"GKJPEG01"
_TAIL = struct.Struct("<Q8s")
#: torchvision 0.29 warns on every JPEG encode/decode that its image codecs are deprecated; the
#: pyproject caps torchvision below 0.30, so the API stays and the warning is only noise.
_CODEC_DEPRECATION = "The image decoding and encoding capabilities of TorchVision"


@contextlib.contextmanager
def _torchvision_codec() -> Iterator[None]:
    """Silence torchvision's codec deprecation warning (and only it) inside the block."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", _CODEC_DEPRECATION, DeprecationWarning)
        yield


def write_frame_shard(path: Path, frames: Iterable[np.ndarray]) -> int:
    """JPEG-encode RGB frames (H, W, 3) uint8 into one shard at ``path``; returns the count."""
    offsets = [0]
    with atomic_write_path(path) as temp, open(temp, "wb") as handle:
        for image in frames:
            # numpy transposes without torch's intra-op thread pool (slow on a busy machine)
            chw = torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1)))
            with _torchvision_codec():
                data = encode_jpeg(chw, quality=JPEG_QUALITY).numpy().tobytes()
            handle.write(data)
            offsets.append(offsets[-1] + len(data))
        handle.write(np.asarray(offsets, "<u8").tobytes())
        handle.write(_TAIL.pack(len(offsets) - 1, _MAGIC))
    return len(offsets) - 1


def _offsets(handle: BinaryIO, path: Path) -> np.ndarray:
    """Read the footer of an open shard: offsets (N + 1,) uint64."""
    size = handle.seek(0, os.SEEK_END)
    if size < _TAIL.size:
        raise ValueError(f"{path}: not a frame shard (too short)")
    handle.seek(size - _TAIL.size)
    count, magic = _TAIL.unpack(handle.read(_TAIL.size))
    table = 8 * (count + 1)
    if magic != _MAGIC or size < _TAIL.size + table:
        raise ValueError(f"{path}: not a frame shard (bad footer)")
    handle.seek(size - _TAIL.size - table)
    offsets = np.frombuffer(handle.read(table), "<u8")
    if int(offsets[-1]) != size - _TAIL.size - table:
        raise ValueError(f"{path}: frame shard truncated")
    return offsets


def frame_shard_length(path: Path) -> int:
    """Number of frames in a shard; raises ValueError when the file is not a complete shard."""
    with open(path, "rb") as handle:
        return len(_offsets(handle, path)) - 1


def read_frame_shard(path: Path, positions: Sequence[int]) -> torch.Tensor:
    """Decode the frames at ``positions`` (shard order, repeats allowed) -> (T, H, W, 3) uint8."""
    with open(path, "rb") as handle:
        offsets = _offsets(handle, path)
        unique = sorted(set(positions))
        blobs: dict[int, torch.Tensor] = {}
        for position in unique:
            start, stop = int(offsets[position]), int(offsets[position + 1])
            handle.seek(start)
            blobs[position] = torch.frombuffer(
                bytearray(handle.read(stop - start)), dtype=torch.uint8
            )
    with _torchvision_codec():
        images = decode_jpeg([blobs[p] for p in unique])
    decoded = dict(zip(unique, images, strict=True))
    # numpy stacks without torch's intra-op thread pool, which stalls on a busy machine.
    clip = np.stack([decoded[p].numpy() for p in positions])
    return torch.from_numpy(clip).permute(0, 2, 3, 1)


def write_feature_shard(path: Path, maps: np.ndarray) -> None:
    """Save conv maps (N, C, h, w) as float16 ``.npy`` at ``path``, atomically."""
    with atomic_write_path(path) as temp, open(temp, "wb") as handle:
        np.save(handle, maps.astype(np.float16, copy=False))


def read_feature_shard(path: Path, positions: Sequence[int]) -> torch.Tensor:
    """Conv maps at ``positions`` -> (T, C, h, w) float32 (memory-mapped read)."""
    maps = np.load(path, mmap_mode="r")
    return torch.from_numpy(np.asarray(maps[np.asarray(positions)], dtype=np.float32))


def feature_preprocess(backbone: str) -> PreprocessConfig:
    """The preprocessing ``prepare --features`` applies: default resize and center crop,
    the backbone's mean and std."""
    spec = BACKBONES[backbone]
    return PreprocessConfig(mean=spec.mean, std=spec.std)


@torch.inference_mode()
def compute_features(
    frames: torch.Tensor,
    backbone: nn.Module,
    preprocess: PreprocessConfig,
    *,
    batch_size: int = 32,
) -> np.ndarray:
    """Conv maps of frames (N, H, W, 3) uint8, each frame once, in batches -> (N, C, h, w) fp16.

    Args:
        frames: the cached frames.
        backbone: the frozen trunk (``build_backbone``), in eval mode.
        preprocess: center crop size and the backbone's mean/std.
        batch_size: frames per forward pass.
    """
    transform = ClipTransform(preprocess, train=False)
    outputs = [
        backbone(transform(frames[i : i + batch_size])).to(torch.float16).numpy()
        for i in range(0, len(frames), batch_size)
    ]
    return np.concatenate(outputs)
