"""Which frames each clip of a video holds (docs/protocol.md#sampling): the only place deciding.

prepare, train, evaluate and predict all call :func:`sample_clips`, so the same video and
:class:`~gkaan_cli.config.SamplingConfig` give the same frame indices everywhere.

- ``dense`` (UCF101/HMDB51): clips of ``clip_len`` consecutive frames starting at
  0, stride, 2*stride... while they fit. When more than ``max_clips`` fit, the clips start at
  ``max_clips`` positions spread evenly over the valid range [0, n - clip_len]
  (``round(linspace)``), deterministically. Testing (``train=False``) allows
  ``test_max_clips`` clips instead when it is set (``SamplingConfig.max_clips_for``); the
  dataset trains on every clip of ``train=True``.
- ``segments`` (Kinetics): ``num_segments`` equal segments; testing takes the middle frame of
  each of ``frames_per_segment`` equal parts of each segment; training draws
  ``frames_per_segment`` distinct frames per segment (with repeats only when a segment is
  shorter) from ``rng``, sorted. One clip per video.
- ``uniform``: ``num_clips`` clips of ``clip_len`` consecutive frames, starts at
  ``round(linspace(0, n - clip_len, num_clips))`` (duplicate starts dropped).

Short videos (fewer than ``clip_len`` frames) give one clip padded by nearest-neighbour
stretching: position i holds frame ``floor(i * n / clip_len)``, so every frame repeats about
equally often and order is kept. A frame's time is ``index / fps`` (nominal);
:meth:`Clip.retimed` swaps in the decoded frames' own times once they are known.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace

import numpy as np

from ..config import SamplingConfig

__all__ = ["Clip", "frames_needed", "sample_clips", "spread"]


@dataclass(frozen=True)
class Clip:
    """The frame indices of one clip, their times in seconds, and one frame's duration."""

    frames: tuple[int, ...]
    times: tuple[float, ...]
    frame_duration: float = 0.0

    @property
    def start(self) -> float:
        """Time of the first frame (seconds)."""
        return self.times[0]

    @property
    def end(self) -> float:
        """Time of the last frame plus one frame duration (seconds)."""
        return self.times[-1] + self.frame_duration

    def retimed(self, times: Mapping[int, float]) -> Clip:
        """This clip with each frame's decoded time (``Frame.time``, from the container's
        timestamps: real spacing for VFR video) where ``times`` has it, else the nominal
        ``index / fps``."""
        pairs = zip(self.frames, self.times, strict=True)
        return replace(self, times=tuple(times.get(index, time) for index, time in pairs))


def _stretch(num_frames: int, length: int) -> list[int]:
    """Nearest-neighbour stretch of ``num_frames`` frames to ``length`` positions."""
    return [i * num_frames // length for i in range(length)]


def spread(last_start: int, count: int) -> list[int]:
    """``count`` integers spread evenly over [0, last_start] (``round(linspace)``), sorted,
    duplicates dropped: where dense clips start, and which clips an OOD bank keeps."""
    return sorted({round(x) for x in np.linspace(0, last_start, count)})


def _consecutive(num_frames: int, clip_len: int, starts: list[int]) -> list[list[int]]:
    if num_frames < clip_len:
        return [_stretch(num_frames, clip_len)]
    return [list(range(s, s + clip_len)) for s in starts]


def _dense(num_frames: int, cfg: SamplingConfig, train: bool) -> list[list[int]]:
    last_start = num_frames - cfg.clip_len
    starts = list(range(0, max(last_start, 0) + 1, cfg.stride))
    most = cfg.max_clips_for(train=train)
    if len(starts) > most:
        starts = spread(last_start, most)
    return _consecutive(num_frames, cfg.clip_len, starts)


def _uniform(num_frames: int, cfg: SamplingConfig) -> list[list[int]]:
    starts = spread(max(num_frames - cfg.clip_len, 0), cfg.num_clips)
    return _consecutive(num_frames, cfg.clip_len, starts)


def _segments(
    num_frames: int, cfg: SamplingConfig, train: bool, rng: np.random.Generator | None
) -> list[list[int]]:
    parts = cfg.num_segments * cfg.frames_per_segment
    if not train:
        return [[int((p + 0.5) * num_frames / parts) for p in range(parts)]]
    if rng is None:
        raise ValueError("segment sampling for training needs an rng (np.random.Generator)")
    frames: list[int] = []
    for s in range(cfg.num_segments):
        low = min(s * num_frames // cfg.num_segments, num_frames - 1)
        high = max((s + 1) * num_frames // cfg.num_segments, low + 1)
        size = high - low
        if size >= cfg.frames_per_segment:
            picked = rng.choice(size, cfg.frames_per_segment, replace=False)
        else:
            extra = rng.integers(0, size, cfg.frames_per_segment - size)
            picked = np.concatenate([np.arange(size), extra])
        frames.extend(sorted(int(low + p) for p in picked))
    return [frames]


def sample_clips(
    num_frames: int,
    cfg: SamplingConfig,
    *,
    fps: float,
    train: bool = False,
    rng: np.random.Generator | None = None,
) -> list[Clip]:
    """The clips of a video with ``num_frames`` frames (see the module docstring for modes).

    Args:
        num_frames: frames in the video (as counted by ``probe_video``), at least 1.
        cfg: the sampling settings.
        fps: frame rate, for the clips' timestamps.
        train: training sampling (random frames for ``segments``, at most ``max_clips``
            clips for ``dense``).
        rng: random generator; required for ``segments`` with ``train=True``.
    """
    if num_frames < 1:
        raise ValueError(f"num_frames must be >= 1, got {num_frames}")
    if fps <= 0:
        raise ValueError(f"fps must be positive, got {fps}")
    if cfg.mode == "dense":
        index_lists = _dense(num_frames, cfg, train)
    elif cfg.mode == "uniform":
        index_lists = _uniform(num_frames, cfg)
    else:
        index_lists = _segments(num_frames, cfg, train, rng)
    return [
        Clip(
            frames=tuple(indices),
            times=tuple(i / fps for i in indices),
            frame_duration=1.0 / fps,
        )
        for indices in index_lists
    ]


def frames_needed(num_frames: int, cfg: SamplingConfig, *, train: bool) -> list[int]:
    """Sorted frame indices any clip of this video can use (all frames for training segments,
    and for test segments with ``test_clips``). A training video needs its test clips too:
    the end-of-training pass reads them (docs/model.md#motion-track)."""
    if cfg.mode == "segments" and (train or cfg.test_clips > 0):
        return list(range(num_frames))
    clips = sample_clips(num_frames, cfg, fps=1.0)
    if train and cfg.mode == "dense":
        clips += sample_clips(num_frames, cfg, fps=1.0, train=True)
    return sorted({i for clip in clips for i in clip.frames})
