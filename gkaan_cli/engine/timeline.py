"""A timeline of actions over a long video or a live stream (docs/predict.md#timeline).

Windows of ``window`` frames start every ``hop`` frames (0, hop, 2 hop...) while they fit in
the video. A window is scored as :class:`~gkaan_cli.engine.predict.Predictor` scores a video
made of the window's frames: the checkpoint's sampling picks its clips
(:func:`~gkaan_cli.video.sampling.sample_clips` on ``window`` frames, shifted to the window's
start) and its probabilities are the mean of those clips' probabilities. A video shorter than
one window is one window, scored exactly as ``predict_video`` scores it.

Streaming as in ``predict_video`` (docs/predict.md#pipeline): frames decoded in a background
thread reach the backbone in batches, each needed frame once, however many windows share it;
a clip shared by overlapping windows runs through the heads once; a frame's map and a clip's
result are dropped as soon as no later window uses them, so memory is bounded by the windows
in flight, not by the video's length. Consecutive windows with the same label are merged into
segments by :func:`merge_segments`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from ..config import SamplingConfig
from ..errors import UsageError
from ..heap import HeapTrimmer
from ..progress import ProgressCallback, ProgressEvent
from ..video.live import DEFAULT_TIMEOUT, LiveVideo
from ..video.reader import Frame, VideoInfo, probe_video
from ..video.sampling import sample_clips
from .clip_scorer import ClipScorer
from .predict import (
    FrameBatch,
    FrameProducer,
    Predictor,
    RankedResult,
    ood_verdict,
    verdict_text,
)
from .segmenter import MAX_SWITCH_COST, SWITCH_COST, decode_labels

#: Decimal digits of window and segment times in seconds (a microsecond): 17.1, not
#: 17.099999999999998.
TIME_DIGITS = 6

__all__ = [
    "TIME_DIGITS",
    "LiveTimeline",
    "Segment",
    "TimelinePrediction",
    "TimelineSpec",
    "WindowPrediction",
    "merge_segments",
    "predict_timeline",
    "stream_timeline",
    "timeline_spec",
]

#: Seconds the live decoding thread is waited for at the end (it may block on a read).
_LIVE_JOIN_SECONDS = 2.0


@dataclass(frozen=True)
class TimelineSpec:
    """Windows of ``window`` frames, one starting every ``hop`` frames, at ``fps``."""

    window: int
    hop: int
    fps: float

    @property
    def window_seconds(self) -> float:
        return self.window / self.fps

    @property
    def hop_seconds(self) -> float:
        return self.hop / self.fps


def timeline_spec(
    sampling: SamplingConfig,
    fps: float,
    *,
    window: float | None = None,
    hop: float | None = None,
) -> TimelineSpec:
    """Window and hop in frames from seconds (rounded to whole frames).

    Defaults: the window is the checkpoint's clip (``sampling.frames_per_clip`` frames, 1.2 s
    for 30 frames at 25 fps) and the hop half the window (rounded down, at least one frame).

    Raises:
        UsageError: a window or hop that is not positive, or a window shorter than one clip.
    """
    clip = sampling.frames_per_clip
    if window is not None and not window > 0:
        raise UsageError(f"--window must be positive seconds, got {window}")
    if hop is not None and not hop > 0:
        raise UsageError(f"--hop must be positive seconds, got {hop}")
    window_frames = clip if window is None else round(window * fps)
    if window_frames < clip:
        raise UsageError(
            f"--window {window:g} s is {window_frames} frames at {fps:g} fps, shorter than the "
            f"model's clip ({clip} frames = {clip / fps:.2f} s)"
        )
    hop_frames = max(1, window_frames // 2) if hop is None else max(1, round(hop * fps))
    return TimelineSpec(window=window_frames, hop=hop_frames, fps=fps)


@dataclass(frozen=True)
class WindowPrediction(RankedResult):
    """One window: its time span (its first frame's time to its last frame's plus one frame),
    frame range ``[first_frame, last_frame]``, the mean fused and per-stream probabilities of
    its clips, and its out-of-distribution verdict (None without one; docs/model.md#ood)."""

    index: int
    start: float
    end: float
    first_frame: int
    last_frame: int
    probs: np.ndarray
    stream_probs: dict[str, np.ndarray]
    ood_score: float | None = None
    in_distribution: bool | None = None
    #: The model's class names.
    labels: Sequence[str] = ()


@dataclass(frozen=True)
class Segment:
    """Consecutive windows ``first_window..last_window`` with one label: the span in seconds
    and the mean probability of the label over those windows (docs/predict.md#segments).
    ``in_distribution`` is False when most of its windows are judged out of distribution
    (its :attr:`verdict` is then ``unknown (closest: label p%)``), None without a verdict."""

    start: float
    end: float
    label: str
    prob: float
    first_window: int
    last_window: int
    in_distribution: bool | None = None

    @property
    def verdict(self) -> str:
        """The segment's answer (:func:`~gkaan_cli.engine.predict.verdict_text`)."""
        return verdict_text(self.label, self.prob, self.in_distribution)

    @property
    def duration(self) -> float:
        return self.end - self.start


@dataclass
class TimelinePrediction:
    """A video's (or a stream's) timeline: every window in order and the merged segments.

    ``info`` describes the video; for a live source its ``num_frames`` and ``duration`` are
    what was decoded. ``dropped`` is why a live stream ended early (None otherwise).
    """

    path: str
    info: VideoInfo
    labels: list[str]
    spec: TimelineSpec
    windows: list[WindowPrediction]
    segments: list[Segment]
    smooth: int = 1
    min_duration: float = 0.0
    switch_cost: float = SWITCH_COST
    model: dict[str, Any] | None = None
    processed_frames: int = 0
    dropped: str | None = None
    #: The model's streams (``GKAANConfig.output_streams``): the CSV's columns even when a
    #: live source stopped before its first window.
    streams: tuple[str, ...] = ()


def check_merge_options(smooth: int, min_duration: float, switch_cost: float = SWITCH_COST) -> None:
    """Raise UsageError for a smoothing below 1 window, a negative minimum duration or a
    switch cost outside [0, MAX_SWITCH_COST]."""
    if smooth < 1:
        raise UsageError(f"--smooth must be at least 1 window, got {smooth}")
    if not min_duration >= 0:
        raise UsageError(f"--min-duration must be 0 or more seconds, got {min_duration}")
    if not 0 <= switch_cost <= MAX_SWITCH_COST:
        raise UsageError(
            f"--switch-cost must be between 0 and {MAX_SWITCH_COST:g} nats, got {switch_cost}"
        )


def merge_segments(
    windows: Sequence[WindowPrediction],
    labels: Sequence[str],
    *,
    smooth: int = 1,
    min_duration: float = 0.0,
    switch_cost: float = SWITCH_COST,
) -> list[Segment]:
    """Join consecutive windows with the same label into segments (docs/predict.md#segments).

    1. Smoothing: window i's probabilities become the mean over windows
       ``i - (smooth - 1) // 2 .. i + smooth // 2`` (those that exist).
    2. Labels: the label sequence that maximises the windows' summed log-probabilities minus
       ``switch_cost`` nats per change of label (:func:`~gkaan_cli.engine.segmenter.decode_labels`;
       0: each window's most probable class, ties to the lower class index).
    3. Runs of equal labels make segments. A boundary lies halfway between the centres of the
       last window of one segment and the first of the next; the first segment starts at the
       first window's start, the last ends at the last window's end.
    4. Minimum duration: while a segment is shorter than ``min_duration`` seconds and there
       are two or more, the shortest (the earliest on ties) takes the label of the neighbour
       whose label is more probable over its windows (the previous one on ties), and equal
       neighbours join.

    A segment's ``prob`` is the mean over its windows of its label's (smoothed) probability;
    it is out of distribution (``in_distribution`` False, verdict ``unknown``) when more than
    half of its windows are, None when its windows have no verdict.
    """
    check_merge_options(smooth, min_duration, switch_cost)
    if not windows:
        return []
    probs = np.stack([w.probs for w in windows]).astype(np.float64)
    if smooth > 1:
        sums = np.concatenate([np.zeros((1, probs.shape[1])), np.cumsum(probs, axis=0)])
        count = len(windows)
        low = np.clip(np.arange(count) - (smooth - 1) // 2, 0, count)
        high = np.clip(np.arange(count) + smooth // 2 + 1, 0, count)
        probs = (sums[high] - sums[low]) / (high - low)[:, None]
    runs = _runs(decode_labels(probs, switch_cost))
    centres = [(w.start + w.end) / 2 for w in windows]

    def span(first: int, last: int) -> tuple[float, float]:
        start = windows[0].start if first == 0 else (centres[first - 1] + centres[first]) / 2
        final = last == len(windows) - 1
        end = windows[-1].end if final else (centres[last] + centres[last + 1]) / 2
        return start, end

    while min_duration > 0 and len(runs) > 1:
        durations = [span(first, last) for first, last, _ in runs]
        shortest = min(range(len(runs)), key=lambda i: durations[i][1] - durations[i][0])
        start, end = durations[shortest]
        if end - start >= min_duration:
            break
        first, last, _ = runs[shortest]
        neighbours = [runs[i][2] for i in (shortest - 1, shortest + 1) if 0 <= i < len(runs)]
        label = max(neighbours, key=lambda c: probs[first : last + 1, c].mean())  # first on ties
        runs[shortest] = (first, last, label)
        runs = _runs([c for first, last, c in runs for _ in range(first, last + 1)])
    segments = []
    for first, last, label in runs:
        start, end = span(first, last)
        segments.append(
            Segment(
                start=round(start, TIME_DIGITS),
                end=round(end, TIME_DIGITS),
                label=labels[label],
                prob=float(probs[first : last + 1, label].mean()),
                first_window=first,
                last_window=last,
                in_distribution=_majority_in_distribution(windows[first : last + 1]),
            )
        )
    return segments


def _majority_in_distribution(windows: Sequence[WindowPrediction]) -> bool | None:
    """False when more than half of ``windows`` are out of distribution, True when not,
    None when none of them has a verdict."""
    judged = [w.in_distribution for w in windows if w.in_distribution is not None]
    if not judged:
        return None
    return not 2 * judged.count(False) > len(windows)


def _runs(labels: list[int]) -> list[tuple[int, int, int]]:
    """(first, last, label) of each run of equal consecutive labels."""
    runs: list[tuple[int, int, int]] = []
    for index, label in enumerate(labels):
        if runs and runs[-1][2] == label:
            runs[-1] = (runs[-1][0], index, label)
        else:
            runs.append((index, index, label))
    return runs


@dataclass
class _ClipResult:
    probs: Tensor
    stream_probs: dict[str, Tensor]
    embedding: Tensor | None
    start: float
    end: float


@dataclass
class _TimelineRun:
    """Windows scored as frames arrive; maps and clip results dropped when no longer used."""

    predictor: Predictor
    spec: TimelineSpec
    #: Frames in the video when known (files), None for a live source.
    num_frames: int | None
    clips: dict[tuple[int, ...], _ClipResult] = field(default_factory=dict)
    next_window: int = 0
    #: The video or stream, as named in errors.
    source: str = ""
    #: Gives freed heap pages back every few batches, so a long run's RSS stays flat.
    trimmer: HeapTrimmer = field(default_factory=HeapTrimmer)

    def __post_init__(self) -> None:
        #: The frames' maps and the clips' scores, as predict makes them.
        self.scorer = ClipScorer(
            self.predictor.model, self.predictor.ood, self.source, self.spec.fps
        )
        #: Each window's clips relative to its first frame (the sampling of a video that long).
        self.pattern = [
            c.frames for c in sample_clips(self.spec.window, self.predictor.sampling, fps=1.0)
        ]
        self.offsets = frozenset(i for frames in self.pattern for i in frames)
        self.reach = max(self.offsets)
        self.short = self.num_frames is not None and self.num_frames < self.spec.window
        #: The last full window of a file (None: a live source, or a file shorter than one).
        self.last_window = (
            None
            if self.num_frames is None or self.short
            else (self.num_frames - self.spec.window) // self.spec.hop
        )
        self.short_needed = (
            frozenset(
                i
                for c in sample_clips(self.num_frames or 1, self.predictor.sampling, fps=1.0)
                for i in c.frames
            )
            if self.short
            else frozenset()
        )

    @property
    def processed(self) -> int:
        """Frames run through the backbone so far."""
        return self.scorer.processed

    @property
    def received(self) -> int:
        """The last frame index received (-1: none)."""
        return self.scorer.received

    def needed(self, index: int) -> bool:
        """Whether frame ``index`` goes through the backbone (no torch: the decoding thread
        calls it). A live source also keeps every frame of the first window's span, in case
        the stream ends before one window is complete."""
        if self.short:
            return index in self.short_needed
        if self.num_frames is None and index < self.spec.window:
            return True
        hop = self.spec.hop
        first = max(0, -((self.spec.window - 1 - index) // hop))  # ceil((i - W + 1) / hop)
        last = index // hop if self.last_window is None else min(index // hop, self.last_window)
        return any(index - k * hop in self.offsets for k in range(first, last + 1))

    def window_clips(self, k: int) -> list[tuple[int, ...]]:
        base = k * self.spec.hop
        return [tuple(base + i for i in frames) for frames in self.pattern]

    def add_frames(self, batch: FrameBatch) -> list[WindowPrediction]:
        """Run a frame batch through the backbone, then every window whose frames are all in."""
        maps = self.predictor.frame_maps(batch.images)  # as predict_video
        self.scorer.add_maps(batch.indices, batch.times, maps)
        self.trimmer.tick()
        if self.short:
            return []
        ready = self.next_window
        while (self.last_window is None or ready <= self.last_window) and (
            ready * self.spec.hop + self.reach <= self.received
        ):
            ready += 1
        if ready == self.next_window:
            return []
        wanted = {c for k in range(self.next_window, ready) for c in self.window_clips(k)}
        self._run_clips(sorted(c for c in wanted if c not in self.clips))
        windows = [self._window(k, self.window_clips(k)) for k in range(self.next_window, ready)]
        self.next_window = ready
        horizon = ready * self.spec.hop  # no later window uses a frame before it
        self.clips = {c: r for c, r in self.clips.items() if c[0] >= horizon}
        self.scorer.drop([i for i in self.scorer.maps if i < horizon])
        return windows

    def finish(self, decoded: int | None = None) -> list[WindowPrediction]:
        """The last windows at the end of the video or stream: a video shorter than one
        window is one window scored as ``predict_video`` scores it.

        Raises:
            BadVideoError: decoding stopped before a frame a window needs.
        """
        if self.last_window is not None and self.next_window <= self.last_window:
            frames = {i for c in self.window_clips(self.next_window) for i in c}
            raise self.scorer.stopped_early(min(i for i in frames if i > self.received))
        if self.next_window > 0 or self.received < 0:
            return []
        count = self.num_frames if self.num_frames is not None else decoded or self.received + 1
        clips = [c.frames for c in sample_clips(count, self.predictor.sampling, fps=1.0)]
        error = self.scorer.missing(clips)
        if error is not None:
            raise error
        self._run_clips(sorted(set(clips)))
        self.next_window = 1
        return [self._window(0, clips)]

    def _run_clips(self, clips: list[tuple[int, ...]]) -> None:
        if not clips:
            return
        scores = self.scorer.score(clips)
        period = 1.0 / self.spec.fps
        for row, frames in enumerate(clips):
            times = [self.scorer.times[i] for i in frames]
            self.clips[frames] = _ClipResult(
                probs=scores.probs[row],
                stream_probs={name: value[row] for name, value in scores.stream_probs.items()},
                embedding=None if scores.embeddings is None else scores.embeddings[row],
                start=min(times),
                end=max(times) + period,
            )

    def _window(self, k: int, clips: list[tuple[int, ...]]) -> WindowPrediction:
        results = [self.clips[c] for c in clips]
        embeddings = [r.embedding for r in results]
        window = self.scorer.aggregate(
            [r.probs for r in results],
            [r.stream_probs for r in results],
            None if None in embeddings else embeddings,  # type: ignore[arg-type]
        )
        return WindowPrediction(
            index=k,
            start=round(min(r.start for r in results), TIME_DIGITS),
            end=round(max(r.end for r in results), TIME_DIGITS),
            first_frame=min(c[0] for c in clips),
            last_frame=max(c[-1] for c in clips),
            probs=window.probs.numpy(),
            stream_probs={n: value.numpy() for n, value in window.stream_probs.items()},
            ood_score=window.score,
            in_distribution=ood_verdict(window.score, self.predictor.ood_threshold),
            labels=self.predictor.labels,
        )


def predict_timeline(
    predictor: Predictor,
    path: str | Path,
    *,
    window: float | None = None,
    hop: float | None = None,
    smooth: int = 1,
    min_duration: float = 0.0,
    switch_cost: float = SWITCH_COST,
    on_window: Callable[[WindowPrediction], object] | None = None,
    on_progress: ProgressCallback | None = None,
) -> TimelinePrediction:
    """Score sliding windows over a whole video file and merge them into segments.

    Args:
        predictor: the model, device, precision, batch size and sampling to use.
        path: the video file.
        window: window length in seconds (default: the checkpoint's clip, e.g. 1.2 s).
        hop: seconds between window starts (default: half the window).
        smooth: windows averaged (centred) before labelling, 1 for none.
        min_duration: segments shorter than this (seconds) join a neighbour.
        switch_cost: nats of window log-probability a change of label costs (0: none).
        on_window: called with each window as soon as it is scored.
        on_progress: ``ProgressEvent("frames", done, total)`` after each batch.

    Raises:
        BadVideoError: the file is missing, not a video or decodes no frame.
        UsageError: a window shorter than one clip, a hop or smoothing below one.
    """
    check_merge_options(smooth, min_duration, switch_cost)
    path = Path(path)
    info = probe_video(path)
    spec = timeline_spec(predictor.sampling, info.fps, window=window, hop=hop)
    run = _TimelineRun(predictor, spec, info.num_frames, source=str(path))
    needed = [i for i in range(info.num_frames) if run.needed(i)]
    height, width = predictor.config.preprocess.resize
    producer = FrameProducer(
        path,
        size=(width, height),
        indices=needed,
        batch_size=predictor.batch_size,
        decoding=predictor.decoding,
    )
    windows: list[WindowPrediction] = []
    with torch.inference_mode(), producer:
        for batch in producer:
            for scored in run.add_frames(batch):
                windows.append(scored)
                if on_window is not None:
                    on_window(scored)
            if on_progress is not None:
                on_progress(ProgressEvent("frames", run.processed, len(needed)))
        windows += run.finish()
    return TimelinePrediction(
        path=str(path),
        info=info,
        labels=predictor.labels,
        spec=spec,
        windows=windows,
        segments=merge_segments(
            windows,
            predictor.labels,
            smooth=smooth,
            min_duration=min_duration,
            switch_cost=switch_cost,
        ),
        smooth=smooth,
        min_duration=min_duration,
        switch_cost=switch_cost,
        model=predictor.model_info,
        processed_frames=run.processed,
        streams=predictor.config.output_streams,
    )


class _LiveProducer(FrameProducer):
    """The decoding thread of a live source: the frames ``wanted`` accepts, in batches."""

    def __init__(
        self,
        video: LiveVideo,
        *,
        size: tuple[int, int],
        wanted: Callable[[int], bool],
        batch_size: int,
    ) -> None:
        super().__init__(Path(video.source), size=size, indices=[], batch_size=batch_size)
        self._video, self._size, self._wanted = video, size, wanted

    def _frames(self) -> Iterable[Frame]:
        return self._video.frames(size=self._size, wanted=self._wanted)

    def __exit__(self, *exc: object) -> None:
        self.close(_LIVE_JOIN_SECONDS)  # a blocked read must not hang the exit


class LiveTimeline:
    """A live source's timeline (:func:`stream_timeline`): iterate to get each window as soon
    as it is scored; :meth:`result` gives the timeline so far at any point (after the end of
    the stream, a drop, or an interrupt).

    Raises:
        BadVideoError: the source cannot be opened (at construction).
        UsageError: a window or hop that does not fit the stream's rate.
    """

    def __init__(
        self,
        predictor: Predictor,
        source: str,
        *,
        window: float | None = None,
        hop: float | None = None,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        self.predictor = predictor
        self.video = LiveVideo(source, timeout=timeout)
        try:
            self.spec = timeline_spec(
                predictor.sampling, self.video.info.fps, window=window, hop=hop
            )
        except UsageError:
            self.video.close()
            raise
        self.windows: list[WindowPrediction] = []
        self._run = _TimelineRun(predictor, self.spec, None, source=source)
        self._producer: _LiveProducer | None = None

    def __iter__(self) -> Iterator[WindowPrediction]:
        height, width = self.predictor.config.preprocess.resize
        # batches no longer than a hop, so each window is scored as soon as its frames are in
        producer = _LiveProducer(
            self.video,
            size=(width, height),
            wanted=self._run.needed,
            batch_size=min(self.predictor.batch_size, self.spec.hop),
        )
        self._producer = producer
        with producer:
            for batch in producer:
                with torch.inference_mode():
                    scored = self._run.add_frames(batch)
                for window in scored:
                    self.windows.append(window)
                    yield window
        with torch.inference_mode():
            scored = self._run.finish(self.video.decoded)
        for window in scored:
            self.windows.append(window)
            yield window

    def close(self) -> None:
        """Close the source, unless its decoding thread is still blocked on a read."""
        if self._producer is None or not self._producer.running:
            self.video.close()

    @property
    def dropped(self) -> str | None:
        """Why the stream ended early (a demuxer or network error), None otherwise."""
        return self.video.dropped

    def result(
        self, *, smooth: int = 1, min_duration: float = 0.0, switch_cost: float = SWITCH_COST
    ) -> TimelinePrediction:
        """The timeline of the windows scored so far, merged into segments (decoded once the
        stream has ended: the windows printed live carry their own labels, so the switch
        cost adds no latency to them)."""
        info = self.video.info
        duration = max((w.end for w in self.windows), default=0.0)
        return TimelinePrediction(
            path=info.source,
            info=VideoInfo(
                path=info.source,
                width=info.width,
                height=info.height,
                fps=info.fps,
                num_frames=self.video.decoded,
                duration=max(duration, self.video.decoded / info.fps),
                codec=info.codec,
                rotation=0,
            ),
            labels=self.predictor.labels,
            spec=self.spec,
            windows=list(self.windows),
            segments=merge_segments(
                self.windows,
                self.predictor.labels,
                smooth=smooth,
                min_duration=min_duration,
                switch_cost=switch_cost,
            ),
            smooth=smooth,
            min_duration=min_duration,
            switch_cost=switch_cost,
            model=self.predictor.model_info,
            processed_frames=self._run.processed,
            dropped=self.dropped,
            streams=self.predictor.config.output_streams,
        )


def stream_timeline(
    predictor: Predictor,
    source: str,
    *,
    window: float | None = None,
    hop: float | None = None,
    timeout: float = DEFAULT_TIMEOUT,
) -> LiveTimeline:
    """Open a live source (``-`` for stdin, or an http(s)/rtsp/udp URL) for a timeline:
    iterate the result for each window as it is scored, then call its ``result()``
    (docs/predict.md#live).

    Raises:
        BadVideoError: the source cannot be opened or has no video stream.
        UsageError: a window shorter than one clip at the stream's rate, or a hop below one.
    """
    return LiveTimeline(predictor, source, window=window, hop=hop, timeout=timeout)
