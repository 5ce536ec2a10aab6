"""Streaming video prediction: each needed frame through the backbone once (docs/predict.md).

A video's clips come from :mod:`gkaan_cli.video.sampling` with the checkpoint's sampling
settings. Frames are decoded at ``preprocess.resize`` by the reader's scaler in a background
thread, center-cropped and normalised by :class:`~gkaan_cli.video.transforms.ClipTransform`
on the compute device, and reach the backbone in batches of ``batch_size`` frames drawn
across clips and, over many videos, across videos: one thread probes and decodes the videos
in turn while the backbone runs (docs/predict.md#many-videos). Each frame's conv map is kept
only until every clip that uses it has run through the heads (``forward_heads``), so memory
is bounded by the clips in flight, not by video length or count. With a CUDA device the
videos may be decoded by FFmpeg's CUDA decoder (docs/predict.md#gpu-decode).
The video's probabilities are the mean of its clips' probabilities
(docs/predict.md#video-probability).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, get_args

import numpy as np
import torch
from torch import Tensor

from ..config import Decode, Device, Precision, SamplingConfig
from ..errors import BadVideoError, UsageError
from ..heap import HeapTrimmer
from ..model.describe import describe_model
from ..model.gkaan import GKAAN
from ..model.onnx_runtime import OnnxModel
from ..model.precision import checked_precision, inference_trunk
from ..progress import ProgressCallback, ProgressEvent
from ..video.handover import Producer
from ..video.reader import Frame, VideoInfo, cuda_decode_problem, probe_video, read_frames
from ..video.sampling import Clip, frames_needed, sample_clips
from ..video.transforms import ClipTransform
from .clip_scorer import ClipScorer
from .distributed import resolve_device
from .inputs import expand_inputs

__all__ = [
    "UNKNOWN",
    "ClipPrediction",
    "FrameBatch",
    "FrameDecoding",
    "FrameProducer",
    "Predictor",
    "RankedResult",
    "VideoPrediction",
    "expand_inputs",
    "ood_verdict",
    "rank_labels",
    "resolve_decode",
    "verdict_line",
    "verdict_text",
]

#: Frame batches the decoding thread may run ahead of the network.
_QUEUE_BATCHES = 2
_DEVICES: tuple[str, ...] = get_args(Device)
_DECODES: tuple[str, ...] = get_args(Decode)


class RankedResult:
    """What a video, clip and window prediction share: their class probabilities ranked
    over their ``labels`` (:meth:`top_k`) and their one answer (:attr:`verdict`)."""

    labels: Sequence[str]
    probs: np.ndarray
    in_distribution: bool | None

    def top_k(self, k: int = 5) -> list[tuple[str, float]]:
        """The ``k`` most probable labels with their probabilities, most probable first."""
        return rank_labels(list(self.labels), self.probs, k)

    @property
    def verdict(self) -> str:
        """The answer, the same in every output (:func:`verdict_text`)."""
        label, prob = self.top_k(1)[0]
        return verdict_text(label, prob, self.in_distribution)


@dataclass(frozen=True)
class ClipPrediction(RankedResult):
    """One clip's prediction: its time span, frame indices, fused and per-stream probabilities,
    and its out-of-distribution verdict (``None`` when the model has no OOD statistics or the
    verdict is switched off; docs/model.md#ood)."""

    start: float
    end: float
    frames: tuple[int, ...]
    probs: np.ndarray
    stream_probs: dict[str, np.ndarray]
    ood_score: float | None = None
    in_distribution: bool | None = None
    #: The model's class names (shared with its video's).
    labels: Sequence[str] = ()


@dataclass
class VideoPrediction(RankedResult):
    """A video's prediction: the mean of its clips' probabilities (docs/predict.md).

    ``attention`` holds one map per processed frame (``"sa"``/``"la"`` -> (F, h, w)) when
    asked for, with the frames' indices and times in ``attention_frames``/``attention_times``.
    ``model`` is the model block (:func:`~gkaan_cli.model.describe.describe_model`) of the
    model that made it; ``ood_score``/``in_distribution`` its out-of-distribution verdict
    (``None`` without one, docs/model.md#ood); ``processed_frames`` the frames decoded and
    run through the backbone.
    """

    path: str
    info: VideoInfo
    labels: list[str]
    probs: np.ndarray
    stream_probs: dict[str, np.ndarray]
    clips: list[ClipPrediction]
    attention: dict[str, np.ndarray]
    attention_frames: np.ndarray
    attention_times: np.ndarray
    model: dict[str, Any] | None = None
    ood_score: float | None = None
    in_distribution: bool | None = None
    processed_frames: int = 0


#: The answer for a video, clip, window or segment judged out of distribution.
UNKNOWN = "unknown"


def verdict_text(label: str, prob: float, in_distribution: bool | None) -> str:
    """The one answer every output shows (table, JSON/CSV ``verdict``, HTML report, overlay
    caption, ``visualize``, timeline windows and segments; docs/predict.md#model-block):
    ``label``, the most probable class, or ``unknown (closest: label 32%)`` when judged out of
    distribution (``in_distribution`` False; None, no verdict, gives the label)."""
    if in_distribution is False:
        return f"{UNKNOWN} (closest: {label} {prob:.0%})"
    return label


def verdict_line(label: str, prob: float, in_distribution: bool | None) -> str:
    """:func:`verdict_text` with the probability where it is a label: ``jogging 32.0%``, or
    ``unknown (closest: jogging 32%)`` (captions, ``visualize``, live window lines)."""
    said = verdict_text(label, prob, in_distribution)
    return said if in_distribution is False else f"{said} {prob:.1%}"


def rank_labels(labels: list[str], probs: np.ndarray, k: int) -> list[tuple[str, float]]:
    """The ``k`` labels of highest probability in ``probs`` with those probabilities."""
    order = np.argsort(-probs, kind="stable")[:k]
    return [(labels[i], float(probs[i])) for i in order]


@dataclass
class FrameBatch:
    """Decoded frames handed from the decoding thread to the network: their indices, times
    (seconds) and images."""

    indices: list[int]
    times: list[float]
    images: np.ndarray  # (N, H, W, 3) uint8 at preprocess.resize


@dataclass(frozen=True)
class FrameDecoding:
    """How the decoding threads read a video file: :func:`read_frames`' ``decode`` (``cpu`` or
    ``cuda:N``) and its ``on_fallback``."""

    decode: str = "cpu"
    on_fallback: Callable[[str], object] | None = None

    def frames(self, path: Path, *, size: tuple[int, int], indices: list[int]) -> Iterator[Frame]:
        return read_frames(
            path, size=size, indices=indices, decode=self.decode, on_fallback=self.on_fallback
        )


class FrameProducer(Producer[FrameBatch]):
    """Decode and resize one video's needed frames in a background thread, handed over in
    batches of ``batch_size`` frames (in index order)."""

    def __init__(
        self,
        path: Path,
        *,
        size: tuple[int, int],
        indices: list[int],
        batch_size: int,
        decoding: FrameDecoding = FrameDecoding(),
    ) -> None:
        super().__init__(_QUEUE_BATCHES)
        self._args = (path, size, indices, batch_size)
        self.decoding = decoding

    def _frames(self) -> Iterable[Frame]:
        """The frames to hand over (overridden for live sources, engine/timeline.py)."""
        path, size, indices, _ = self._args
        return self.decoding.frames(path, size=size, indices=indices)

    def _run(self) -> None:
        batch_size = self._args[3]
        try:
            pending: list[Frame] = []
            for frame in self._frames():
                pending.append(frame)
                if len(pending) == batch_size:
                    if not self._put(_stack(pending)):
                        return
                    pending = []
            if pending and not self._put(_stack(pending)):
                return
            self._finish()
        except BaseException as error:  # handed to the consumer thread
            self._fail(error)


def _stack(frames: list[Frame]) -> FrameBatch:
    return FrameBatch(
        indices=[frame.index for frame in frames],
        times=[frame.time for frame in frames],
        images=np.stack([frame.image for frame in frames]),
    )


@dataclass(frozen=True)
class _Plan:
    """A video the decoding thread has probed: its clips and the frames they need."""

    number: int
    path: Path
    info: VideoInfo
    clips: list[Clip]
    needed: list[int]


@dataclass(frozen=True)
class _End:
    """A video the decoding thread is done with; ``error`` when probing or decoding failed."""

    number: int
    error: BadVideoError | None = None


@dataclass
class _Work:
    """One hand-over of the many-video decoding thread, applied in this order: the videos it
    started, a batch of frames that may span videos (``owners``: each frame's video, in
    video order), and the videos it finished."""

    started: list[_Plan] = field(default_factory=list)
    owners: list[int] = field(default_factory=list)
    frames: list[Frame] = field(default_factory=list)
    ended: list[_End] = field(default_factory=list)
    batch: FrameBatch | None = None

    def sealed(self) -> _Work:
        """This work with its frames stacked into :attr:`batch` (decoded images freed)."""
        if self.frames:
            self.batch, self.frames = _stack(self.frames), []
        return self

    def spans(self) -> Iterator[tuple[int, slice]]:
        """Each video with frames in :attr:`batch` and its rows there."""
        first = 0
        for row in range(1, len(self.owners) + 1):
            if row == len(self.owners) or self.owners[row] != self.owners[first]:
                yield self.owners[first], slice(first, row)
                first = row


class _ManyProducer(Producer[_Work]):
    """One background thread for many videos, in order: probe a video, sample its clips,
    decode its needed frames, then the next video's. Frames go out in batches of
    ``batch_size`` that may span videos, so the backbone gets full batches and the next
    video's probe and decode overlap the backbone's work on the current one. A video's end
    travels with its last frames; a bad video's error takes its place in the order."""

    def __init__(
        self,
        paths: Iterable[str | Path],
        *,
        size: tuple[int, int],
        sampling: SamplingConfig,
        batch_size: int,
        decoding: FrameDecoding = FrameDecoding(),
    ) -> None:
        super().__init__(_QUEUE_BATCHES)
        self._paths = paths
        self._size = size
        self._sampling = sampling
        self._batch_size = batch_size
        self.decoding = decoding

    def _plan(self, number: int, path: Path) -> _Plan:
        info = probe_video(path)
        clips = sample_clips(info.num_frames, self._sampling, fps=info.fps, train=False)
        needed = frames_needed(info.num_frames, self._sampling, train=False)
        return _Plan(number, path, info, clips, needed)

    def _run(self) -> None:
        work = _Work()
        try:
            for number, name in enumerate(self._paths):
                path = Path(name)
                try:
                    plan = self._plan(number, path)
                    work.started.append(plan)
                    frames = self.decoding.frames(path, size=self._size, indices=plan.needed)
                    for frame in frames:
                        if len(work.frames) == self._batch_size:
                            if not self._put(work.sealed()):
                                return
                            work = _Work()
                        work.owners.append(number)
                        work.frames.append(frame)
                except BadVideoError as error:
                    work.ended.append(_End(number, error))
                else:
                    work.ended.append(_End(number))
                if len(work.frames) in (0, self._batch_size):  # nothing to wait for
                    if not self._put(work.sealed()):
                        return
                    work = _Work()
            if (work.frames or work.ended) and not self._put(work.sealed()):
                return
            self._finish()
        except BaseException as error:  # handed to the consumer thread
            self._fail(error)


class Predictor:
    """Predict the action in videos with a GKAAN model, streaming (docs/predict.md#pipeline).

    Args:
        model: the network; put in eval mode and moved to ``device``, its backbone in
            channels_last memory format (faster convolutions on CPU and GPU). An
            :class:`~gkaan_cli.model.onnx_runtime.OnnxModel` (a ``gkaan export`` folder) runs
            with ONNX Runtime (``auto`` device: the CPU; its precision: the export's).
        device: ``auto`` (CUDA when available), ``cpu``, ``cuda`` or ``cuda:N``.
        precision: ``auto`` (bf16 where the hardware runs it natively, else fp32), ``fp32``,
            ``bf16`` (autocast, CPU or CUDA) or ``fp16`` (CUDA only). The reduced precision
            applies to the backbone only; attention, SRUs, heads, the fusion and the OOD
            score run in fp32 on its maps (docs/predict.md#determinism).
        batch_size: frames per backbone batch (frames are batched across clips).
        threads: torch intra-op threads (``torch.set_num_threads``); None leaves it.
        sampling: clip sampling; None uses the checkpoint's ``config.sampling``.
        ood: give each video and clip an out-of-distribution verdict when the model has OOD
            statistics (docs/model.md#ood).
        ood_threshold: scores above this are out of distribution; 1.0 is the limit
            calibrated on the training data, larger flags fewer videos.
        decode: where video files are decoded (docs/predict.md#gpu-decode): ``auto`` (by
            FFmpeg's CUDA decoder when ``device`` is CUDA and this process can use it, else
            the CPU), ``cpu``, or ``cuda`` (needs a CUDA device; where CUDA decoding cannot
            be used, the CPU, saying why). Live sources decode on the CPU.
        on_decode_fallback: called from the decoding thread with the reason whenever CUDA
            decoding was chosen and a file is decoded on the CPU instead. When
            ``decode="cuda"`` cannot be used in this process at all, nothing is called: the
            reason is :attr:`decode_fallback`.

    Raises:
        UsageError: an unavailable device, fp16 on CPU, ``decode="cuda"`` on a CPU device,
            or a batch size below 1.
    """

    def __init__(
        self,
        model: GKAAN | OnnxModel,
        *,
        device: Device | str = "auto",
        precision: Precision | str = "auto",
        batch_size: int = 32,
        threads: int | None = None,
        sampling: SamplingConfig | None = None,
        ood: bool = True,
        ood_threshold: float = 1.0,
        decode: Decode | str = "auto",
        on_decode_fallback: Callable[[str], object] | None = None,
    ) -> None:
        exported = getattr(model, "runtime", None) == "onnxruntime"  # model/onnx_runtime.py
        self.device = _resolve_device("cpu" if exported and device == "auto" else device)
        if exported:
            precision = model.check_precision(precision)
            model.set_threads(threads)
        else:
            precision = checked_precision(precision, self.device)
        if batch_size < 1:
            raise UsageError(f"batch size must be at least 1, got {batch_size}")
        if not ood_threshold > 0:
            raise UsageError(f"the OOD threshold must be positive, got {ood_threshold}")
        target, fallback = resolve_decode(decode, self.device)
        #: Where video files are decoded: ``cpu`` or ``cuda`` (on :attr:`device`).
        self.decode = "cpu" if target == "cpu" else "cuda"
        #: How this Predictor's decoding threads read a file (predict and timelines alike).
        self.decoding = FrameDecoding(target, on_decode_fallback)
        if threads is not None:
            if threads < 1:
                raise UsageError(f"threads must be at least 1, got {threads}")
            torch.set_num_threads(threads)
        self.precision = precision
        self.batch_size = batch_size
        self.model = model.eval().to(self.device)
        #: The backbone as it runs here: channels_last, in :attr:`precision`
        #: (:func:`~gkaan_cli.model.precision.inference_trunk`).
        self.trunk = (
            model.inference_trunk()
            if exported
            else inference_trunk(self.model.backbone, precision, self.device)
        )
        self.config = model.config
        self.sampling = sampling if sampling is not None else model.config.sampling
        self.labels = [self.config.label(i) for i in range(self.config.num_classes)]
        self.transform = ClipTransform(self.config.preprocess, train=False)
        #: The OOD statistics in use (None: no verdict) and the threshold on their scores.
        self.ood = model.ood if ood else None
        self.ood_threshold = ood_threshold
        #: The model block every prediction carries (name, sha256, classes, device...).
        info = describe_model(
            model, device=str(self.device), precision=precision, decode=self.decode
        )
        if exported:  # the runtime and the export's sha256
            info |= model.describe()
        self.model_info = info | {
            "sampling": self.sampling.model_dump(mode="json"),
            "ood": None if self.ood is None else info["ood"] | {"threshold": ood_threshold},
        }
        #: Why ``decode="cuda"`` cannot be used in this process (files decode on the CPU),
        #: else None: a fact for the caller to report when it chooses.
        self.decode_fallback = fallback

    def predict_many(
        self,
        paths: Iterable[str | Path],
        *,
        keep_attention: bool = False,
        on_progress: ProgressCallback | None = None,
    ) -> Iterator[VideoPrediction | BadVideoError]:
        """Predict each video, in input order; a bad video yields its error and the rest go on.

        One background thread probes and decodes the videos in turn, so the next video's probe
        and decode overlap the network's work on the current one, and frame batches may span
        videos (docs/predict.md#many-videos). Each video's result is yielded once its last
        frame has gone through the network; it equals :meth:`predict_video`'s.

        Args:
            paths: video files.
            keep_attention: as in :meth:`predict_video`.
            on_progress: as in :meth:`predict_video`, for each video in turn.
        """
        height, width = self.config.preprocess.resize
        producer = _ManyProducer(
            paths,
            size=(width, height),
            sampling=self.sampling,
            batch_size=self.batch_size,
            decoding=self.decoding,
        )
        runs: dict[int, _VideoRun] = {}
        trimmer = HeapTrimmer()  # a long run's RSS stays flat (docs/predict.md#memory)
        with producer:
            for work in producer:
                with torch.inference_mode():  # not around the yield: it is thread-wide
                    results = self._apply(work, runs, keep_attention, on_progress)
                trimmer.tick()
                yield from results

    def _apply(
        self,
        work: _Work,
        runs: dict[int, _VideoRun],
        keep_attention: bool,
        on_progress: ProgressCallback | None,
    ) -> list[VideoPrediction | BadVideoError]:
        """Apply one hand-over of the decoding thread; the results of the videos it ends."""
        for plan in work.started:
            runs[plan.number] = _VideoRun(self, plan, keep_attention)
        if work.batch is not None:
            maps = self.frame_maps(work.batch.images)
            for number, rows in work.spans():
                run = runs[number]
                run.add_maps(work.batch.indices[rows], work.batch.times[rows], maps[rows])
                if on_progress is not None:
                    on_progress(ProgressEvent("frames", run.processed, len(run.plan.needed)))
        results: list[VideoPrediction | BadVideoError] = []
        for end in work.ended:  # a video's maps go with its run
            if end.error is not None:
                runs.pop(end.number, None)
                results.append(end.error)
                continue
            try:
                results.append(runs.pop(end.number).result(self.labels, self.model_info))
            except BadVideoError as error:
                results.append(error)
        return results

    def frame_maps(self, images: np.ndarray) -> Tensor:
        """Decoded frames (N, H, W, 3) uint8 through the clip transform and the backbone (in
        :attr:`precision`: reduced precision for the backbone only): their conv maps."""
        frames = torch.from_numpy(images).to(self.device, non_blocking=True)
        return self.trunk(self.transform(frames))

    def predict_video(
        self,
        path: str | Path,
        *,
        keep_attention: bool = False,
        on_progress: ProgressCallback | None = None,
    ) -> VideoPrediction:
        """Predict one video.

        Args:
            path: the video file.
            keep_attention: also return the SA/LA map of every processed frame.
            on_progress: called with ``ProgressEvent("frames", frames_done, frames_total)``
                after each batch of decoded frames went through the network.

        Raises:
            BadVideoError: the file is missing, not a video or decodes no frame.
        """
        (result,) = self.predict_many(
            [path], keep_attention=keep_attention, on_progress=on_progress
        )
        if isinstance(result, BadVideoError):
            raise result
        return result


def _resolve_device(device: str) -> torch.device:
    """:func:`~gkaan_cli.engine.distributed.resolve_device` for :data:`Device` names and cuda:N."""
    if device not in _DEVICES and not device.startswith("cuda:"):
        raise UsageError(f"device must be one of {', '.join(_DEVICES)}, got {device!r}")
    return resolve_device(device)


def resolve_decode(decode: str, device: torch.device) -> tuple[str, str | None]:
    """:func:`read_frames`' ``decode`` (``cpu`` or ``cuda:N``, N the index of ``device``) for
    :data:`Decode` ``decode`` on ``device``, and why CUDA decoding cannot be used when
    ``decode="cuda"`` asked for it (else None).

    Raises:
        UsageError: an unknown ``decode``, or ``cuda`` on a device that is not CUDA.
    """
    if decode not in _DECODES:
        raise UsageError(f"decode must be one of {', '.join(_DECODES)}, got {decode!r}")
    if decode == "cpu" or (decode == "auto" and device.type != "cuda"):
        return "cpu", None
    if device.type != "cuda":
        raise UsageError(
            f"--decode cuda needs a CUDA device, not {device}; use --decode auto or cpu"
        )
    index = device.index if device.index is not None else torch.cuda.current_device()
    problem = cuda_decode_problem(index)
    if problem is None:
        return f"cuda:{index}", None
    return "cpu", problem if decode == "cuda" else None


class _VideoRun:
    """Per-video state: the clips run as soon as their frames are in (:class:`ClipScorer`),
    each frame's map dropped after its last clip; the video is the mean of its clips."""

    def __init__(self, predictor: Predictor, plan: _Plan, keep_attention: bool) -> None:
        self.plan = plan
        self.clips = plan.clips
        self.keep_attention = keep_attention
        self.scorer = ClipScorer(predictor.model, predictor.ood, plan.path, plan.info.fps)
        self.ood_threshold = predictor.ood_threshold
        # The clip after which each frame's map is no longer needed.
        self.last_use: dict[int, int] = {}
        for number, clip in enumerate(self.clips):
            for index in clip.frames:
                self.last_use[index] = number
        self.next_clip = 0
        self.clip_probs: list[Tensor] = []
        self.clip_embeddings: list[Tensor] = []
        self.clip_stream_probs: list[dict[str, Tensor]] = []
        self.attention: dict[str, dict[int, Tensor]] = {}

    @property
    def processed(self) -> int:
        """Frames of the video run through the backbone so far."""
        return self.scorer.processed

    def add_maps(self, indices: list[int], times: list[float], maps: Tensor) -> None:
        """Take the backbone maps of some of the video's frames (in index order), then run
        every clip whose frames are all in."""
        self.scorer.add_maps(indices, times, maps)
        ready = self.next_clip
        while ready < len(self.clips) and max(self.clips[ready].frames) <= self.scorer.received:
            ready += 1
        if ready > self.next_clip:
            self._run_clips(self.next_clip, ready)
            self.next_clip = ready

    def _run_clips(self, first: int, stop: int) -> None:
        clips = self.clips[first:stop]
        scores = self.scorer.score([c.frames for c in clips], keep_attention=self.keep_attention)
        if scores.embeddings is not None:
            self.clip_embeddings.extend(scores.embeddings)
        self.clip_probs.extend(scores.probs)
        self.clip_stream_probs.extend(
            {name: value[row] for name, value in scores.stream_probs.items()}
            for row in range(len(clips))
        )
        for name, maps in (scores.attention or {}).items():
            kept = self.attention.setdefault(name, {})
            for row, clip in enumerate(clips):
                for t, index in enumerate(clip.frames):
                    if index not in kept:
                        kept[index] = maps[row, t].float().cpu()
        done = {i for c in clips for i in c.frames if self.last_use[i] < stop}
        self.scorer.drop(done, keep_times=True)

    def result(self, labels: list[str], model_info: dict[str, Any]) -> VideoPrediction:
        """The video's prediction once decoding is done with it.

        Raises:
            BadVideoError: decoding stopped before a needed frame, or non-finite output.
        """
        scorer = self.scorer
        error = scorer.missing(c.frames for c in self.clips[self.next_clip :])
        if error is not None:
            raise error
        video = scorer.aggregate(
            self.clip_probs,
            self.clip_stream_probs,
            self.clip_embeddings if self.clip_embeddings else None,
        )
        threshold = self.ood_threshold
        clips = [
            ClipPrediction(
                start=clip.start,
                end=clip.end,
                frames=clip.frames,
                probs=self.clip_probs[number].numpy(),
                stream_probs={n: v.numpy() for n, v in self.clip_stream_probs[number].items()},
                ood_score=video.clip_scores[number],
                in_distribution=ood_verdict(video.clip_scores[number], threshold),
                labels=labels,
            )
            for number, clip in enumerate(c.retimed(scorer.times) for c in self.clips)  # VFR
        ]
        frames = sorted(next(iter(self.attention.values()), {}))
        return VideoPrediction(
            path=scorer.source,
            info=self.plan.info,
            labels=labels,
            probs=video.probs.numpy(),
            stream_probs={n: value.numpy() for n, value in video.stream_probs.items()},
            clips=clips,
            attention={
                name: torch.stack([maps[i] for i in frames]).numpy()
                for name, maps in self.attention.items()
            },
            attention_frames=np.asarray(frames, dtype=np.int64),
            attention_times=np.asarray([scorer.times[i] for i in frames], dtype=np.float64),
            model=model_info,
            ood_score=video.score,
            in_distribution=ood_verdict(video.score, threshold),
            processed_frames=self.processed,
        )


def ood_verdict(score: float | None, threshold: float) -> bool | None:
    """In distribution when the score is at most the threshold; None without a score."""
    return None if score is None else bool(score <= threshold)
