"""Specification of the frame store: shards round-trip frames quietly."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest

from gkaan_cli.data.frame_cache import frame_shard_length, read_frame_shard, write_frame_shard


def test_frame_shard_round_trip_emits_no_deprecation_warning(tmp_path: Path) -> None:
    frames = [np.full((16, 24, 3), value, np.uint8) for value in (0, 128, 255)]
    shard = tmp_path / "v.jpgs"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert write_frame_shard(shard, frames) == 3
        clip = read_frame_shard(shard, [2, 0, 2])
    assert [w.message for w in caught if issubclass(w.category, DeprecationWarning)] == []
    assert frame_shard_length(shard) == 3
    assert tuple(clip.shape) == (3, 16, 24, 3)
    assert clip[:, :, :, 0].float().mean(dim=(1, 2)).round().tolist() == [255.0, 0.0, 255.0]


def test_frames_come_back_in_the_order_asked_close_to_what_was_written(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    ramp = np.linspace(0, 200, 32 * 48, dtype=np.float64).reshape(32, 48, 1)
    frames = [np.clip(ramp + 40 * i + rng.normal(0, 3, (32, 48, 3)), 0, 255) for i in range(4)]
    frames = [frame.astype(np.uint8) for frame in frames]
    shard = tmp_path / "v.jpgs"
    write_frame_shard(shard, frames)
    clip = read_frame_shard(shard, [3, 0, 2]).numpy()
    assert clip.shape == (3, 32, 48, 3) and clip.dtype == np.uint8
    for got, index in zip(clip, [3, 0, 2], strict=True):
        assert np.abs(got.astype(int) - frames[index]).mean() < 3  # JPEG quality 90


def test_a_frame_that_is_not_rgb_uint8_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="RGB uint8"):
        write_frame_shard(tmp_path / "v.jpgs", [np.zeros((8, 8), np.uint8)])
    assert not (tmp_path / "v.jpgs").exists()


def test_corrupt_frame_data_raises_value_error_naming_the_shard(tmp_path: Path) -> None:
    shard = tmp_path / "v.jpgs"
    write_frame_shard(shard, [np.full((16, 16, 3), 90, np.uint8)] * 2)
    data = bytearray(shard.read_bytes())
    data[:64] = bytes(64)  # the first JPEG's header
    shard.write_bytes(bytes(data))
    with pytest.raises(ValueError, match=r"v\.jpgs: corrupt frame data"):
        read_frame_shard(shard, [0, 1])
