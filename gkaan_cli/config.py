"""Configuration of a GKAAN model, its preprocessing and its clip sampling.

A checkpoint's ``config.json`` is exactly :class:`GKAANConfig` serialised, so a model
always preprocesses and samples as it was trained (docs/protocol.md#preprocessing).
"""

from __future__ import annotations

import math
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    model_serializer,
    model_validator,
)

from .version import __version__

__all__ = [
    "BACKBONE_CHANNELS",
    "BackboneName",
    "Fusion",
    "GKAANConfig",
    "PreprocessConfig",
    "SamplingConfig",
    "machine_memory",
    "memory_estimate",
    "memory_problem",
]

BackboneName = Literal["resnet18", "resnet34", "resnet50", "efficientnet_lite0"]
Fusion = Literal["early", "late", "gp", "sa", "la", "gs", "gl"]
#: Motion options of the model (docs/model.md#motion): the paper's network, ``diff``, ``track``.
Motion = Literal["none", "diff", "track"]
#: Timelines: the default cost, in nats of window log-probability, of a change of label
#: between windows (docs/predict.md#segments; chosen by nested leave-one-person-out on joined
#: KTH videos), and the largest accepted.
SWITCH_COST = 16.0
MAX_SWITCH_COST = 1000.0
#: The GM descriptor's unit of length (docs/model.md#motion-track): fractions of the frame,
#: or the activity region's own height.
MotionScale = Literal["frame", "height"]
#: Clip sampling modes (the values of ``SamplingConfig.mode``).
SamplingMode = Literal["dense", "segments", "uniform"]

#: Channels C of each backbone's final conv map (C x 7 x 7 at 224 x 224).
BACKBONE_CHANNELS: dict[str, int] = {
    "resnet18": 512,
    "resnet34": 512,
    "resnet50": 2048,
    "efficientnet_lite0": 1280,
}

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
#: EfficientNet-Lite's TF-Lite ``(x * 255 - 127) / 128`` as a mean/std on [0, 1] pixels.
LITE_MEAN = (127 / 255, 127 / 255, 127 / 255)
LITE_STD = (128 / 255, 128 / 255, 128 / 255)

#: Probabilities are clipped to at least this before a log (the training NLL and the NLL metric).
MIN_PROB = 1e-12

# Bounds (docs/model.md): generous for any real model, small enough that a hostile
# config.json or flag is refused by pydantic before anything is allocated.
MAX_CLASSES = 100_000
MAX_HIDDEN = 8192
MAX_SRU_LAYERS = 32
MAX_CLASS_NAME = 1000
#: Most frames one clip may hold (clip_len, num_segments x frames_per_segment).
MAX_CLIP_FRAMES = 1024
MAX_CLIPS = 10_000
MAX_STRIDE = 1_000_000
#: Frame sizes (resize and crop, pixels).
MIN_SIZE = 8
MAX_SIZE = 4096

# Bounds of the command-line options (README "Shared options"; each in ``--help``): a value
# outside them is a usage error before any work (inf, nan and 1e308 included).
#: ``--threads``: more threads than this only slow torch down (100000 crashed OpenMP).
MAX_THREADS = 1024
#: ``--batch-size`` (frames or clips per forward pass) and ``--accumulate``.
MAX_BATCH = 4096
#: ``--workers``: processes decoding or loading data.
MAX_WORKERS = 256
#: ``--window`` and ``--hop`` (seconds) and ``--min-duration``: one hour.
MAX_TIMELINE_SECONDS = 3600.0
#: ``--smooth``: windows averaged before labelling.
MAX_SMOOTH = 10_000
#: ``--epochs``.
MAX_EPOCHS = 100_000
#: ``--seed``: the seeds numpy and torch both take.
MAX_SEED = 2**32 - 1
#: ``--lr``.
MAX_LR = 10.0
#: ``--ood-threshold`` (a multiple of the calibrated limit).
MAX_OOD_THRESHOLD = 1e6
#: ``visualize --grid-frames``.
MAX_GRID_FRAMES = 256


def _finite(value: float) -> float:
    if not math.isfinite(value):
        raise ValueError("must be a finite number")
    return value


Finite = Annotated[float, AfterValidator(_finite)]
Side = Annotated[int, Field(ge=MIN_SIZE, le=MAX_SIZE)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PreprocessConfig(_Strict):
    """Frame preprocessing (docs/protocol.md#preprocessing).

    Frames are resized to ``resize`` (height, width; not aspect-preserving), cropped to
    ``crop`` (random-resized crop when training, center crop when testing), scaled to
    [0, 1] and normalised with ``mean``/``std``. The backbone decides mean and std.
    """

    resize: tuple[Side, Side] = (256, 256)
    crop: Side = 224
    mean: tuple[Finite, Finite, Finite] = IMAGENET_MEAN
    std: tuple[Finite, Finite, Finite] = IMAGENET_STD
    train_scale: tuple[Finite, Finite] = (0.08, 1.0)
    train_ratio: tuple[Finite, Finite] = (3 / 4, 4 / 3)
    train_flip: float = Field(0.5, ge=0.0, le=1.0)
    #: Training crop: ``resized`` (random-resized crop, ``train_scale``/``train_ratio``) or
    #: ``random`` (a ``crop`` x ``crop`` window at a random place, no rescaling: the authors').
    train_crop: Literal["resized", "random"] = "resized"
    #: Draw the training crop and flip for every frame (the authors' code) instead of once per
    #: clip.
    train_per_frame: bool = False

    @model_validator(mode="after")
    def _check(self) -> PreprocessConfig:
        if self.crop > min(self.resize):
            raise ValueError(f"crop {self.crop} is larger than resize {self.resize}")
        if min(self.std) <= 0:
            raise ValueError(f"std must be positive, got {self.std}")
        low, high = self.train_scale
        if not 0 < low <= high <= 1:
            raise ValueError(
                f"train_scale must satisfy 0 < min <= max <= 1, got {self.train_scale}"
            )
        low, high = self.train_ratio
        if not 0 < low <= high:
            raise ValueError(f"train_ratio must satisfy 0 < min <= max, got {self.train_ratio}")
        return self


class SamplingConfig(_Strict):
    """Which frames make a clip (docs/protocol.md#sampling); see :mod:`gkaan_cli.video.sampling`.

    - ``dense``: ``clip_len`` consecutive frames every ``stride`` frames, at most
      ``max_clips`` clips per video (UCF101/HMDB51 protocol); at test time at most
      ``test_max_clips`` when it is set (the ``own`` recipe: every window of a KTH video).
    - ``segments``: ``num_segments`` equal segments, ``frames_per_segment`` frames from each
      (random when training, the middle of each part when testing; Kinetics protocol).
    - ``uniform``: ``num_clips`` clips of ``clip_len`` consecutive frames spread evenly.
    """

    mode: SamplingMode = "dense"
    clip_len: int = Field(30, ge=1, le=MAX_CLIP_FRAMES)
    stride: int = Field(15, ge=1, le=MAX_STRIDE)
    max_clips: int = Field(20, ge=1, le=MAX_CLIPS)
    num_segments: int = Field(3, ge=1, le=MAX_CLIP_FRAMES)
    frames_per_segment: int = Field(4, ge=1, le=MAX_CLIP_FRAMES)
    num_clips: int = Field(4, ge=1, le=MAX_CLIPS)
    #: ``segments`` only: 0 tests one clip per video (the middle frame of each part); N > 0
    #: tests N clips per video, each drawn as a training clip is, seeded (the authors' test).
    test_clips: int = Field(0, ge=0, le=MAX_CLIPS)
    #: ``dense`` only: the most clips per video when testing (predict, evaluate, the val
    #: split, the end-of-training pass of docs/model.md#motion-track); 0: ``max_clips``.
    test_max_clips: int = Field(0, ge=0, le=MAX_CLIPS)
    seed: int = 0

    @model_validator(mode="after")
    def _check(self) -> SamplingConfig:
        if self.num_segments * self.frames_per_segment > MAX_CLIP_FRAMES:
            raise ValueError(
                f"num_segments x frames_per_segment = "
                f"{self.num_segments * self.frames_per_segment} frames per clip "
                f"(at most {MAX_CLIP_FRAMES})"
            )
        return self

    @model_serializer(mode="wrap")
    def _dump(self, handler: SerializerFunctionWrapHandler) -> dict[str, object]:
        """``test_clips`` and ``test_max_clips`` are left out at 0, so configs and cache keys
        written before they existed stay the same."""
        data: dict[str, object] = handler(self)
        for name in ("test_clips", "test_max_clips"):
            if getattr(self, name) == 0:
                data.pop(name, None)
        return data

    def max_clips_for(self, *, train: bool) -> int:
        """``dense``: the most clips per video in training (``max_clips``) or when testing
        (``test_max_clips``, else ``max_clips``)."""
        return self.max_clips if train or self.test_max_clips == 0 else self.test_max_clips

    def describe(self) -> str:
        """The sampling in words, e.g. ``dense: 30 consecutive frames every 15 frames, at
        most 20 clips per video`` (model cards, training summaries and messages)."""
        if self.mode == "dense":
            words = (
                f"dense: {self.clip_len} consecutive frames every {self.stride} frames, "
                f"at most {self.max_clips} clips per video"
            )
            tested = self.max_clips_for(train=False)
            return words + (f" ({tested} when testing)" if tested != self.max_clips else "")
        if self.mode == "segments":
            words = f"segments: {self.num_segments} segments x {self.frames_per_segment} frames"
            return words + (f", {self.test_clips} random test clips" if self.test_clips else "")
        return f"uniform: {self.num_clips} clips of {self.clip_len} consecutive frames"

    @property
    def frames_per_clip(self) -> int:
        if self.mode == "segments":
            return self.num_segments * self.frames_per_segment
        return self.clip_len


class GKAANConfig(_Strict):
    """Everything needed to rebuild a GKAAN model (paper defaults, docs/model.md).

    ``fusion``: ``early`` (GS + GL + GP, eq. 19), ``late`` (GP, SA, LA, eq. 20) or a single
    stream (``gp``, ``sa``, ``la``, ``gs``, ``gl``; the paper's ablations).
    """

    num_classes: int = Field(ge=1, le=MAX_CLASSES)
    class_names: list[Annotated[str, Field(max_length=MAX_CLASS_NAME)]] | None = None
    backbone: BackboneName = "resnet34"
    fusion: Fusion = "early"
    sa_variant: Literal["paper", "reference"] = "paper"
    la_variant: Literal["paper", "reference"] = "paper"
    la_hidden: int = Field(128, ge=1, le=MAX_HIDDEN)
    sru_layers: int = Field(3, ge=1, le=MAX_SRU_LAYERS)
    sru_hidden: int = Field(1024, ge=1, le=MAX_HIDDEN)
    dropout: float = Field(0.6, ge=0.0, lt=1.0)
    #: The SRU cell (docs/model.md#sru-authors): ``paper`` (eq. 11-15; ``dropout`` masks each
    #: layer's input) or ``authors`` (the ``sru`` package 2.1.3 cell the authors' code calls:
    #: c_{t-1} in both gates, highway scaled by sqrt(3), ``dropout`` masks g(c_t) in every
    #: layer but the last).
    sru_variant: Literal["paper", "authors"] = "paper"
    #: ``authors`` cell only: tanh as its activation g (the package's ``use_tanh``); the
    #: package's default, and the authors' code, use the identity.
    sru_use_tanh: bool = False
    #: Dropout on each stream's SRU output before its classifier (0.5 in the authors' code).
    head_dropout: float = Field(0.0, ge=0.0, lt=1.0)
    #: How a video's clips combine when scoring (``evaluate``, training's evaluation):
    #: ``probs``, the mean of their probabilities (docs/protocol.md#scores), or ``logits``,
    #: the mean of their fused logits, then softmax (the authors' test).
    clip_average: Literal["probs", "logits"] = "probs"
    margin: Finite = Field(0.1, ge=0.0)
    #: eq. 19 weights (a, b, c) of the GS, GL and GP probabilities (early fusion), or of
    #: GP, SA, LA (late fusion). Normalised by their sum.
    stream_weights: tuple[Finite, Finite, Finite] = (1.0, 1.0, 1.0)
    #: ``probs``: average softmax probabilities (paper); ``logits``: average logits, then
    #: softmax (reference code).
    fuse: Literal["probs", "logits"] = "probs"
    #: Motion (docs/model.md#motion): ``none`` is the paper's network; ``diff`` appends
    #: W_m (R^GP_t - R^GP_{t-s}) to every stream's SRU input, with ``motion_dim`` rows in
    #: W_m and ``s = motion_stride`` frames; ``track`` adds the GM stream, a classifier of
    #: where the activity is and how fast it moves (docs/model.md#motion-track), fused with
    #: weight ``motion_weight`` beside ``stream_weights``.
    motion: Motion = "none"
    motion_dim: int = Field(128, ge=1, le=MAX_HIDDEN)
    motion_stride: int = Field(1, ge=1, le=MAX_CLIP_FRAMES)
    #: The GM stream's fusion weight, its descriptor's unit of length, whether its fit sees
    #: each clip zoomed and at other frame rates, and its fit's L2 weight; the defaults are
    #: the choices of nested leave-one-person-out on kth-mini (docs/protocol.md#nested).
    motion_weight: Finite = Field(30.0, ge=0.0, le=1e6)
    motion_scale: MotionScale = "frame"
    motion_augment: bool = False
    motion_l2: Finite = Field(3e-3, gt=0.0, le=1e3)
    preprocess: PreprocessConfig = PreprocessConfig()
    sampling: SamplingConfig = SamplingConfig()
    version: str = __version__

    @property
    def feature_channels(self) -> int:
        """C, the channels of the backbone's conv map."""
        return BACKBONE_CHANNELS[self.backbone]

    @property
    def streams(self) -> tuple[str, ...]:
        """Stream names in output order."""
        if self.fusion == "early":
            return ("gs", "gl", "gp")
        if self.fusion == "late":
            return ("gp", "sa", "la")
        return (self.fusion,)

    @property
    def output_streams(self) -> tuple[str, ...]:
        """The streams a prediction reports, in order: :attr:`streams`, then ``gm`` with
        ``motion="track"``."""
        return (*self.streams, "gm") if self.motion == "track" else self.streams

    @model_validator(mode="after")
    def _check(self) -> GKAANConfig:
        if self.class_names is not None and len(self.class_names) != self.num_classes:
            raise ValueError(
                f"class_names has {len(self.class_names)} names but num_classes is "
                f"{self.num_classes}"
            )
        if sum(self.stream_weights) <= 0 or min(self.stream_weights) < 0:
            raise ValueError("stream_weights must be >= 0 with a positive sum")
        if self.sru_use_tanh and self.sru_variant != "authors":
            raise ValueError("sru_use_tanh applies to sru_variant 'authors' only")
        return self

    def label(self, index: int) -> str:
        """Class name of ``index`` (``class_<i>`` when the config has no names)."""
        if self.class_names is None:
            return f"class_{index}"
        return self.class_names[index]


#: Parameters of each backbone's trunk (torchvision's counts, classifier left out).
_BACKBONE_PARAMS = {
    "resnet18": 11_200_000,
    "resnet34": 21_300_000,
    "resnet50": 23_500_000,
    "efficientnet_lite0": 3_400_000,
}
#: Bytes of backbone activations alive per frame and cropped pixel (the stem's 64 channels at
#: half resolution, float32, about three tensors at once: measured peak on ResNet stems).
_ACTIVATION_BYTES_PER_PIXEL = 192
#: Frames the backbone runs at once at most (the predictor's default ``--batch-size``).
_FRAMES_AT_ONCE = 32


def memory_estimate(config: GKAANConfig) -> dict[str, tuple[int, str]]:
    """About how many bytes running ``config`` needs, by part: ``weights``, ``frames`` (one
    clip's decoded and normalised frames) and ``activations`` (the backbone on a batch of
    frames); each with the config fields that size it. An estimate to refuse configs a
    machine cannot hold before anything is allocated, not a measurement."""
    channels, hidden, layers = config.feature_channels, config.sru_hidden, config.sru_layers
    extra = config.motion_dim if config.motion == "diff" else 0
    per_stream = 4 * (channels + extra) * hidden + 4 * (layers - 1) * hidden * hidden
    per_stream += hidden * config.num_classes
    params = _BACKBONE_PARAMS[config.backbone] + len(config.streams) * per_stream
    params += 2 * channels * config.la_hidden
    pre, sampling = config.preprocess, config.sampling
    frames = sampling.frames_per_clip
    pixels = pre.resize[0] * pre.resize[1]
    crop = pre.crop * pre.crop
    dense = max(sampling.max_clips, sampling.max_clips_for(train=False))
    clips = {"dense": dense, "segments": 1, "uniform": sampling.num_clips}
    at_once = min(_FRAMES_AT_ONCE, frames * clips[sampling.mode])
    return {
        "weights": (4 * params, "num_classes, sru_hidden, sru_layers, la_hidden, motion_dim"),
        "frames": (frames * (3 * pixels + 12 * crop), "preprocess.resize, sampling.clip_len"),
        "activations": (at_once * _ACTIVATION_BYTES_PER_PIXEL * crop, "preprocess.crop"),
    }


def machine_memory() -> int:
    """Bytes of memory this process may use: the physical memory, or the cgroup's limit
    when lower (a container)."""
    import os

    total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    try:
        with open("/sys/fs/cgroup/memory.max") as handle:
            text = handle.read().strip()
    except OSError:
        return total
    return min(total, int(text)) if text.isdigit() else total


def memory_problem(config: GKAANConfig, *, available: int | None = None) -> str | None:
    """Why this machine cannot hold ``config`` (naming the fields of the largest part), or
    None. ``available``: bytes of memory (default :func:`machine_memory`)."""
    parts = memory_estimate(config)
    total = sum(size for size, _ in parts.values())
    available = machine_memory() if available is None else available
    if total <= available:
        return None
    name, (size, fields) = max(parts.items(), key=lambda item: item[1][0])
    return (
        f"needs about {total / 1e9:.1f} GB, more than this machine's {available / 1e9:.1f} GB "
        f"of memory; most of it {name} ({size / 1e9:.1f} GB), sized by {fields}"
    )


# Option values shared by the library and the command line (each list defined here once).

#: Inference precision: fp32, or autocast to bf16 (CPU or CUDA) / fp16 (CUDA only).
Precision = Literal["fp32", "bf16", "fp16"]
#: Compute devices of :class:`~gkaan_cli.engine.predict.Predictor`.
Device = Literal["auto", "cpu", "cuda"]
#: Where :class:`~gkaan_cli.engine.predict.Predictor` decodes video: ``auto`` (CUDA when the
#: compute device is CUDA and FFmpeg can decode there), ``cpu`` or ``cuda``
#: (docs/predict.md#gpu-decode).
Decode = Literal["auto", "cpu", "cuda"]
#: What tables and reports call each stream (docs/model.md#eq-gs): words a user knows.
STREAM_TITLES = {
    "gp": "global (GP)",
    "gs": "SA stream (GS)",
    "gl": "LA stream (GL)",
    "sa": "SA stream",
    "la": "LA stream",
    "gm": "motion track (GM)",
}
#: Machine-readable prediction formats (:mod:`gkaan_cli.engine.outputs`).
OutputFormat = Literal["json", "jsonl", "csv"]
