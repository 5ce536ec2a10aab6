"""Specification of clip sampling (docs/protocol.md#sampling): dense, segments, uniform."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gkaan_cli.config import SamplingConfig
from gkaan_cli.video.sampling import Clip, frames_needed, sample_clips

configs = st.builds(
    SamplingConfig,
    mode=st.sampled_from(["dense", "segments", "uniform"]),
    clip_len=st.integers(1, 40),
    stride=st.integers(1, 20),
    max_clips=st.integers(1, 25),
    num_segments=st.integers(1, 5),
    frames_per_segment=st.integers(1, 5),
    num_clips=st.integers(1, 6),
)


@settings(max_examples=300, deadline=None)
@given(cfg=configs, num_frames=st.integers(1, 2000), train=st.booleans(), seed=st.integers(0, 99))
def test_every_clip_is_full_sorted_in_range_and_reproducible(
    cfg: SamplingConfig, num_frames: int, train: bool, seed: int
) -> None:
    clips = sample_clips(num_frames, cfg, fps=25.0, train=train, rng=np.random.default_rng(seed))
    again = sample_clips(num_frames, cfg, fps=25.0, train=train, rng=np.random.default_rng(seed))
    assert clips == again
    assert len(clips) >= 1
    needed = set(frames_needed(num_frames, cfg, train=train))
    for clip in clips:
        assert len(clip.frames) == cfg.frames_per_clip
        assert list(clip.frames) == sorted(clip.frames)
        assert all(0 <= i < num_frames for i in clip.frames)
        assert clip.times == pytest.approx(tuple(i / 25.0 for i in clip.frames))
        assert set(clip.frames) <= needed
    if cfg.mode == "dense":
        assert len(clips) <= cfg.max_clips
    if cfg.mode == "uniform":
        assert len(clips) <= cfg.num_clips
    if cfg.mode == "segments":
        assert len(clips) == 1


@settings(max_examples=100, deadline=None)
@given(num_frames=st.integers(2, 500), seed=st.integers(0, 99))
def test_training_segments_pick_distinct_frames_inside_each_segment(
    num_frames: int, seed: int
) -> None:
    cfg = SamplingConfig(mode="segments", num_segments=3, frames_per_segment=4)
    (clip,) = sample_clips(num_frames, cfg, fps=30.0, train=True, rng=np.random.default_rng(seed))
    for s in range(3):
        part = clip.frames[4 * s : 4 * s + 4]
        low, high = s * num_frames // 3, (s + 1) * num_frames // 3
        if high - low >= 4:
            assert len(set(part)) == 4
            assert all(low <= i < high for i in part)


def test_dense_takes_stride_starts_while_clips_fit() -> None:
    clips = sample_clips(100, SamplingConfig(clip_len=30, stride=15), fps=25.0)
    assert [c.frames[0] for c in clips] == [0, 15, 30, 45, 60]
    assert clips[-1].frames == tuple(range(60, 90))


def test_dense_spreads_max_clips_evenly_over_long_videos() -> None:
    cfg = SamplingConfig(clip_len=30, stride=15, max_clips=4)
    clips = sample_clips(1030, cfg, fps=25.0)
    assert [c.frames[0] for c in clips] == [0, 333, 667, 1000]
    assert clips[-1].frames[-1] == 1029


def test_dense_training_uses_the_test_clips() -> None:
    cfg = SamplingConfig()
    assert sample_clips(300, cfg, fps=25.0, train=True) == sample_clips(300, cfg, fps=25.0)


def test_dense_tests_on_every_window_up_to_test_max_clips_and_trains_on_max_clips() -> None:
    # the own recipe: 8 clips to train on, every window (at most 64) to test on
    cfg = SamplingConfig(clip_len=30, stride=15, max_clips=8, test_max_clips=64)
    tested = sample_clips(690, cfg, fps=25.0)
    assert [c.frames[0] for c in tested] == list(range(0, 661, 15))  # all 45 windows
    trained = sample_clips(690, cfg, fps=25.0, train=True)
    assert len(trained) == 8 and trained == sample_clips(
        690, cfg.model_copy(update={"test_max_clips": 0}), fps=25.0
    )
    assert len(sample_clips(3000, cfg, fps=25.0)) == 64  # a long video: spread, bounded
    # a training video is cached with its test clips too (the end-of-training pass reads them)
    assert frames_needed(690, cfg, train=True) == list(range(690))
    assert frames_needed(690, cfg, train=False) == list(range(690))


def test_test_max_clips_leaves_older_configs_and_cache_keys_unchanged() -> None:
    assert "test_max_clips" not in SamplingConfig().model_dump()
    cfg = SamplingConfig(max_clips=8, test_max_clips=64)
    assert SamplingConfig.model_validate(cfg.model_dump()) == cfg
    assert cfg.describe().endswith("at most 8 clips per video (64 when testing)")


def test_short_video_is_stretched_to_one_full_clip() -> None:
    (clip,) = sample_clips(4, SamplingConfig(clip_len=10), fps=10.0)
    assert clip.frames == (0, 0, 0, 1, 1, 2, 2, 2, 3, 3)
    (uniform,) = sample_clips(4, SamplingConfig(mode="uniform", clip_len=10), fps=10.0)
    assert uniform.frames == clip.frames


def test_test_segments_take_the_middle_of_each_part() -> None:
    cfg = SamplingConfig(mode="segments", num_segments=3, frames_per_segment=4)
    (clip,) = sample_clips(120, cfg, fps=30.0)
    assert clip.frames == tuple(range(5, 120, 10))


def test_training_segments_need_an_rng() -> None:
    with pytest.raises(ValueError, match="rng"):
        sample_clips(100, SamplingConfig(mode="segments"), fps=25.0, train=True)


def test_uniform_spreads_clip_starts_over_the_video() -> None:
    cfg = SamplingConfig(mode="uniform", clip_len=10, num_clips=4)
    assert [c.frames[0] for c in sample_clips(100, cfg, fps=25.0)] == [0, 30, 60, 90]


def test_clip_start_and_end_are_in_seconds() -> None:
    clip = sample_clips(50, SamplingConfig(clip_len=10, stride=25), fps=25.0)[1]
    assert (clip.start, clip.end) == pytest.approx((1.0, 1.4))
    assert Clip(frames=(0,), times=(0.0,)).end == 0.0


def test_frames_needed_is_the_union_of_clip_frames() -> None:
    cfg = SamplingConfig(clip_len=4, stride=10)
    assert frames_needed(23, cfg, train=False) == [0, 1, 2, 3, 10, 11, 12, 13]
    segments = SamplingConfig(mode="segments")
    assert frames_needed(40, segments, train=True) == list(range(40))


@pytest.mark.parametrize(("num_frames", "fps"), [(0, 25.0), (10, 0.0)])
def test_rejects_empty_videos_and_bad_rates(num_frames: int, fps: float) -> None:
    with pytest.raises(ValueError):
        sample_clips(num_frames, SamplingConfig(), fps=fps)
