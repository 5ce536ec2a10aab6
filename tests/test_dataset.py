"""Clip datasets over a prepared directory: items, determinism, cache-only reading."""

from __future__ import annotations

import pickle
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from torch.utils.data import DataLoader

from gkaan_cli.config import GKAANConfig, PreprocessConfig, SamplingConfig
from gkaan_cli.data.dataset import ClipDataset, FeatureDataset
from gkaan_cli.data.prepare import FeatureOptions, PrepareOptions, prepare
from gkaan_cli.errors import UsageError
from gkaan_cli.video.sampling import sample_clips

DENSE = SamplingConfig(clip_len=8, stride=8, max_clips=3)
SEGMENTS = SamplingConfig(mode="segments", num_segments=2, frames_per_segment=2)
SMALL_CROP = PreprocessConfig(resize=(64, 64), crop=56)


def _prepared(root: Path, make_video: Callable[..., Path], sampling: SamplingConfig) -> Path:
    """Two classes x two videos (40 and 20 frames), one test video per class; sources deleted."""
    rows = []
    for label in ("jump", "run"):
        for i, frames in enumerate((40, 20)):
            video = make_video(f"videos/{label}{i}.mp4", num_frames=frames)
            rows.append(f"{video},{label},{'train' if i == 0 else 'test'}\n")
    (root / "list.csv").write_text("".join(rows))
    prepare(root / "list.csv", root / "out", PrepareOptions(sampling=sampling, resize=(64, 64)))
    shutil.rmtree(root / "videos")  # datasets must read only the cache
    return root / "out"


def _config(sampling: SamplingConfig, **kwargs: object) -> GKAANConfig:
    return GKAANConfig(num_classes=2, sampling=sampling, preprocess=SMALL_CROP, **kwargs)  # type: ignore[arg-type]


def test_every_dense_clip_is_an_item_read_from_the_cache_only(
    tmp_path: Path, make_video: Callable[..., Path]
) -> None:
    out = _prepared(tmp_path, make_video, DENSE)
    dataset = ClipDataset(out, "train", _config(DENSE), train=False)
    assert [r.label for r in dataset.records] == ["jump", "run"]
    expected = [[c.frames for c in sample_clips(40, DENSE, fps=25)]] * 2
    assert len(dataset) == 6 == sum(len(c) for c in expected)
    assert [dataset.clip_frames(i) for i in range(3)] == expected[0]
    clip, label, video = dataset[4]
    assert clip.shape == (8, 3, 56, 56) and clip.dtype == torch.float32
    assert (label, video) == (1, 1)
    assert dataset.labels == [0, 0, 0, 1, 1, 1]


def test_training_reads_max_clips_per_video_and_testing_test_max_clips(
    tmp_path: Path, make_video: Callable[..., Path]
) -> None:
    # the own recipe's shape: few clips to train on, every window to test on
    sampling = SamplingConfig(clip_len=8, stride=4, max_clips=2, test_max_clips=20)
    out = _prepared(tmp_path, make_video, sampling)
    config = _config(sampling)
    training = ClipDataset(out, "train", config, train=True)
    assert [training.clip_frames(i)[0] for i in range(len(training))] == [0, 32] * 2
    # the end-of-training pass (and the val split) read every window of the same videos
    every = ClipDataset(out, "train", config, train=False)
    assert [every.clip_frames(i)[0] for i in range(9)] == list(range(0, 33, 4))
    assert len(every) == 18
    assert len(ClipDataset(out, "test", config, train=False)) == 2 * 4  # 20 frames: 4 windows


def test_frames_of_a_clip_come_in_clip_order(
    tmp_path: Path, make_video: Callable[..., Path]
) -> None:
    out = _prepared(tmp_path, make_video, DENSE)
    plain = PreprocessConfig(resize=(64, 64), crop=64, mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0))
    config = GKAANConfig(num_classes=2, sampling=DENSE, preprocess=plain)
    clip, _, _ = ClipDataset(out, "train", config, train=False)[0]
    red = clip[:, 0, 2, 2] * 255  # write_video: red = 10 * frame index in the top-left corner
    assert torch.allclose(red, torch.arange(8) * 10.0, atol=6)


def test_training_items_are_deterministic_per_seed_and_epoch(
    tmp_path: Path, make_video: Callable[..., Path]
) -> None:
    out = _prepared(tmp_path, make_video, SEGMENTS)
    dataset = ClipDataset(out, "train", _config(SEGMENTS), train=True, seed=3)
    assert len(dataset) == 2  # segments: one random clip per video per epoch
    first = [dataset.clip_frames(i) for i in range(2)]
    clip = dataset[0][0]
    assert torch.equal(dataset[0][0], clip)
    copy = pickle.loads(pickle.dumps(dataset))  # what a DataLoader worker gets
    assert torch.equal(copy[0][0], clip)
    epochs = []
    for epoch in range(1, 6):
        dataset.set_epoch(epoch)
        epochs.append([dataset.clip_frames(i) for i in range(2)])
    assert any(frames != first for frames in epochs)
    for frames in first + [f for e in epochs for f in e]:
        assert list(frames) == sorted(frames) and len(frames) == 4
        assert sum(f < 20 for f in frames) == 2  # two frames from each half of 40 frames
    other = ClipDataset(out, "train", _config(SEGMENTS), train=True, seed=4)
    assert not torch.equal(other[0][0], clip)


def test_test_items_do_not_change_with_the_epoch(
    tmp_path: Path, make_video: Callable[..., Path]
) -> None:
    out = _prepared(tmp_path, make_video, SEGMENTS)
    dataset = ClipDataset(out, "test", _config(SEGMENTS), train=False)
    clip = dataset[1][0]
    dataset.set_epoch(7)
    assert torch.equal(dataset[1][0], clip)
    assert dataset.clip_frames(0) == sample_clips(20, SEGMENTS, fps=25)[0].frames


def test_random_segments_on_a_split_cached_for_testing_is_a_usage_error(
    tmp_path: Path, make_video: Callable[..., Path]
) -> None:
    out = _prepared(tmp_path, make_video, SEGMENTS)
    with pytest.raises(UsageError, match="prepare again"):
        ClipDataset(out, "test", _config(SEGMENTS), train=True)


def test_model_classes_must_match_the_prepared_classes(
    tmp_path: Path, make_video: Callable[..., Path]
) -> None:
    out = _prepared(tmp_path, make_video, DENSE)
    with pytest.raises(UsageError, match="3 classes"):
        ClipDataset(out, "train", GKAANConfig(num_classes=3, sampling=DENSE), train=False)
    with pytest.raises(UsageError, match="no prepared videos in split 'val'"):
        ClipDataset(out, "val", _config(DENSE), train=False)
    with pytest.raises(UsageError, match="holds no features"):
        FeatureDataset(out, "train", _config(DENSE), train=False)


@pytest.mark.parametrize(("sampling", "train"), [(DENSE, False), (SEGMENTS, True)])
def test_feature_batches_equal_the_items_one_by_one(
    tmp_path: Path, make_video: Callable[..., Path], sampling: SamplingConfig, train: bool
) -> None:
    rows = []
    for label in ("jump", "run"):
        video = make_video(f"videos/{label}.mp4", num_frames=20)
        rows.append(f"{video},{label},train\n")
    (tmp_path / "list.csv").write_text("".join(rows))
    features = FeatureOptions("resnet18", pretrained=False)
    options = PrepareOptions(sampling=sampling, resize=(64, 64), features=features)
    prepare(tmp_path / "list.csv", tmp_path / "out", options)
    config = GKAANConfig(num_classes=2, backbone="resnet18", sampling=sampling)
    dataset = FeatureDataset(tmp_path / "out", "train", config, train=train, seed=3)
    dataset.set_epoch(1)
    loader = DataLoader(dataset, batch_size=3, collate_fn=dataset.collate)
    batches = list(loader)
    assert [len(b[1]) for b in batches] == [3] * (len(dataset) // 3) + [len(dataset) % 3] * (
        len(dataset) % 3 > 0
    )
    maps = torch.cat([b[0] for b in batches])
    one_by_one = [dataset[i] for i in range(len(dataset))]
    assert maps.dtype == torch.float32
    assert torch.equal(maps, torch.stack([item[0] for item in one_by_one]))
    assert torch.cat([b[1] for b in batches]).tolist() == [item[1] for item in one_by_one]
    assert torch.cat([b[2] for b in batches]).tolist() == [item[2] for item in one_by_one]
    again = pickle.loads(pickle.dumps(dataset))  # what a spawned DataLoader worker gets
    assert torch.equal(again[0][0], one_by_one[0][0])
