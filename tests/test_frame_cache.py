"""Specification of the frame store: shards round-trip frames quietly."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

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
