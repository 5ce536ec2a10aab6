"""The per-video frame store that training reads instead of video files, and the feature store.

Frames (``frames/<name>.jpgs``): the frames that sampling needs, already resized by the
decoder's scaler, each JPEG-encoded by Pillow (libjpeg-turbo, quality 90, 4:2:0 chroma) and
concatenated, followed by a footer: ``uint64 offsets[N + 1]``, ``uint64 N``, ``b"GKJPEG01"``
(little-endian). Chosen by measurement (benchmarks/bench_cache.py, 6 real KTH videos at
256x256, random 30-frame clips): JPEG takes 12 KB per frame against 196 KB for raw uint8 (16x
less disk) and reads ~1,000 frames/s on one busy core against ~10,000 for a memory-mapped
``.npy``; that is still ~40x what training consumes (the backbone runs at ~25 frames/s on this
CPU), while raw would need ~490 GB for UCF101.

Features (``features/<name>.npy``, optional): the frozen backbone's conv maps of the same
frames, center crop, backbone normalisation, float16, shape (N, C, h, w)
(docs/protocol.md#frozen-backbone: head-only training needs no CNN).

Every file is written to a temp file in the same folder and renamed into place
(:func:`gkaan_cli.fileio.atomic_write_path`; temp names contain :data:`TEMP_MARK`), so a killed
run never leaves a half-written shard under the final name.
"""

from __future__ import annotations

import io
import os
import struct
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import BinaryIO

import numpy as np
import torch
from PIL import Image
from torch import nn

from ..config import PreprocessConfig
from ..fileio import atomic_write_path
from ..model.backbones import BACKBONES
from ..video.transforms import ClipTransform

__all__ = [
    "FRAME_SUFFIX",
    "JPEG_QUALITY",
    "STORAGE",
    "compute_features",
    "encode_jpeg",
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


def encode_jpeg(image: np.ndarray) -> bytes:
    """JPEG bytes (quality :data:`JPEG_QUALITY`, 4:2:0 chroma) of an RGB frame (H, W, 3) uint8."""
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"expected an RGB uint8 (H, W, 3) frame, got {image.shape} {image.dtype}")
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, "JPEG", quality=JPEG_QUALITY)
    return buffer.getvalue()


def _decode_jpegs(blobs: Sequence[bytes]) -> np.ndarray:
    """RGB frames (N, H, W, 3) uint8 of N >= 1 JPEG images that share a size and mode (a shard's).

    The first image's header tells Pillow's JPEG decoder what to produce; every image is then
    decoded with that decoder and its arguments, as ``Image.open(...).load()`` would, into one
    reused image: parsing each header in Python and allocating an image per frame made reads
    about a third slower than torchvision's decoder at 256x256. An image of another size fails
    with ValueError rather than decoding wrongly.
    """
    with Image.open(io.BytesIO(blobs[0]), formats=("JPEG",)) as first:
        mode, size = first.mode, first.size
        decoder, _, _, args = first.tile[0]
    image = Image.new(mode, size)
    frames = np.empty((len(blobs), size[1], size[0], 3), np.uint8)
    for i, data in enumerate(blobs):
        image.frombytes(data, decoder, args)
        frames[i] = np.asarray(image if mode == "RGB" else image.convert("RGB"))
    return frames


def write_frame_shard(path: Path, frames: Iterable[np.ndarray | bytes]) -> int:
    """JPEG-encode RGB frames (H, W, 3) uint8 into one shard at ``path``; returns the count.
    A frame given as bytes is one already encoded by :func:`encode_jpeg` (e.g. in a
    decoding thread) and is written as it is."""
    offsets = [0]
    with atomic_write_path(path) as temp, open(temp, "wb") as handle:
        for image in frames:
            data = image if isinstance(image, bytes) else encode_jpeg(image)
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
    if len(positions) == 0:
        raise ValueError(f"{path}: no frame positions to read")
    unique, index = np.unique(np.asarray(positions, dtype=np.int64), return_inverse=True)
    with open(path, "rb") as handle:
        offsets = _offsets(handle, path)
        blobs = []
        for position in unique.tolist():
            start, stop = int(offsets[position]), int(offsets[position + 1])
            handle.seek(start)
            blobs.append(handle.read(stop - start))
    try:
        decoded = _decode_jpegs(blobs)
    except (OSError, ValueError) as error:  # Pillow: UnidentifiedImageError, truncated data
        raise ValueError(f"{path}: corrupt frame data ({error})") from error
    in_order = len(unique) == len(index) and bool((np.diff(index) > 0).all())
    return torch.from_numpy(decoded if in_order else decoded[index])


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
        backbone: the frozen trunk (``build_backbone``) in eval mode, or the trunk as
            prediction runs it (:func:`~gkaan_cli.model.precision.inference_trunk`).
        preprocess: center crop size and the backbone's mean/std.
        batch_size: frames per forward pass.
    """
    transform = ClipTransform(preprocess, train=False)
    outputs = [
        backbone(
            transform(frames[i : i + batch_size]).contiguous(memory_format=torch.channels_last)
        )
        .to(torch.float16)
        .numpy()
        for i in range(0, len(frames), batch_size)
    ]
    return np.concatenate(outputs)
