"""Train a GKAAN model: end to end, or heads only on cached conv maps (docs/protocol.md).

A run directory holds:

- ``train_config.json``: the full :class:`~gkaan_cli.engine.recipes.TrainConfig`;
- ``last/`` and ``best/``: checkpoint directories (``config.json`` + ``model.safetensors``),
  ``best/`` by video-level fused top-1 on the val split; without a val split ``best/`` is
  the last epoch: the test split is evaluated and reported each epoch but never used to
  choose a checkpoint, so reported test accuracy stays an honest estimate
  (docs/protocol.md#model-selection);
- ``state.pt``: the full training state (model, optimizer, AMP scaler, RNG states of every
  process, epoch, step, best score, history), only tensors and plain Python values, loaded
  with ``torch.load(weights_only=True)``; the learning rate is a function of (epoch, step),
  so it has no separate scheduler state. ``--resume`` continues from the last finished
  epoch and gives the same results as an uninterrupted run with the same seed;
- ``metrics.jsonl``: one record per epoch (everything but ``time`` is reproducible);
- ``tensorboard/``: event files, when TensorBoard is installed.

DATA is a prepared directory or anything ``prepare`` accepts: a raw source is prepared into
``$GKAAN_CACHE/prepared/<key>`` (default ``~/.cache/gkaan``), the key hashing the source path
and every setting that changes the cache, so the next run with the same settings reuses it.
Under ``torchrun`` the same code runs DDP (see :mod:`~gkaan_cli.engine.distributed`).
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, DistributedSampler, Subset

from ..config import GKAANConfig, SamplingConfig
from ..data.frame_cache import feature_preprocess
from ..data.manifest import Manifest, load_manifest
from ..errors import UsageError
from ..fileio import atomic_write_path, atomic_write_text
from ..model.backbones import BACKBONES
from ..model.checkpoint import read_training_state, write_checkpoint
from ..model.gkaan import GKAAN, GKAANOutput
from ..model.loss import gkaan_loss
from ..model.trunk_weights import TrunkWeights
from ..nested import flatten_nested
from ..progress import ProgressCallback, ProgressEvent
from ..video.sampling import frames_needed
from .calibrate import add_training_statistics
from .distributed import (
    AUTOCAST_DTYPES,
    DistContext,
    all_gather,
    all_reduce_sum,
    distributed_context,
)
from .evaluate import (
    EvalReport,
    collect_outputs,
    default_eval_dir,
    evaluate,
    feature_weights,
    gather_outputs,
    make_dataset,
    summarize,
)
from .recipes import CONFIG_NAME, TrainConfig, lr_at, merge_overrides
from .run_data import prepared_cache_dir, resolve_backbone_weights, resolve_data
from .stream_weights import StreamChoice, choose_stream_weights
from .train_errors import (
    FeatureMapsMismatchError,
    LossNotFiniteError,
    NothingToResumeError,
    PrecisionDeviceError,
    ResumeChangedError,
    ResumeEpochsError,
    RunExistsError,
    SamplingMismatchError,
)
from .train_plot import write_curves
from .train_records import (
    BatchSums,
    EpochDone,
    EpochRecord,
    EpochTime,
    EvalScores,
    TrainScores,
)

__all__ = [
    "CONFIG_NAME",
    "METRICS_NAME",
    "STATE_NAME",
    "EpochDone",
    "EpochRecord",
    "RunStart",
    "TrainResult",
    "check_sampling",
    "load_run_config",
    "load_state",
    "prepared_cache_dir",
    "resolve_backbone_weights",
    "resolve_data",
    "train",
]

STATE_NAME = "state.pt"
METRICS_NAME = "metrics.jsonl"
#: Settings that may change when a run is resumed.
_RESUMABLE = ("epochs", "num_workers", "device")

StepHook = Callable[[int, int], None]
#: ``best/`` is chosen on the val split (``"val"``), or is the last epoch (``"last"``).
SELECT_VAL, SELECT_LAST = "val", "last"


@dataclass
class RunStart:
    """What a run is about to do, given to ``on_start`` once its inputs are checked.

    Attributes:
        data: the prepared directory it reads.
        prepared_now: ``data`` was prepared (or completed) from a raw source by this call.
        model: the model's config (classes, architecture, sampling).
        videos: prepared videos per split.
        train_clips: training items per epoch.
        eval_split: the split evaluated each epoch (``None``: none).
        selection: ``"val"`` (``best/`` by val fused video top-1) or ``"last"``.
        inputs: ``"features"`` (heads on cached maps) or ``"frames"`` (end to end).
        trunk: where the backbone's weights come from (``trunk.label`` reads ``ImageNet``,
            ``random`` or a path; with their hash when the run checked cached maps).
        resumed_epoch: epochs already done when resuming, else ``None``.
        init_from: the ``--from`` checkpoint folder, or ``None``.
        reused: tensors copied from it; new: tensor names that start fresh.
        findings: the data doctor's warnings stored with the prepared data
            (docs/protocol.md#the-data-doctor).
    """

    data: Path
    prepared_now: bool
    model: GKAANConfig
    videos: dict[str, int]
    train_clips: int
    eval_split: str | None
    selection: str
    inputs: str
    trunk: TrunkWeights
    resumed_epoch: int | None = None
    init_from: str | None = None
    reused: int = 0
    new: list[str] = field(default_factory=list)
    findings: list[str] = field(default_factory=list)


@dataclass
class TrainResult:
    """What a run produced.

    Attributes:
        out: the run directory.
        epochs: epochs finished.
        history: the epochs' records (the lines of ``metrics.jsonl``).
        best_epoch: the epoch (1-based) ``best/`` comes from.
        best_metric: its val video-level fused top-1; ``None`` when chosen without val.
        last: the ``last/`` checkpoint; best: the ``best/`` checkpoint.
        selection: how ``best/`` was chosen: ``"val"`` or ``"last"`` (no val split).
        stream_choice: the fusion weights chosen on the val split for ``best/``
            (:mod:`~gkaan_cli.engine.stream_weights`); ``None`` without val or one stream.
        ood: the checkpoints carry out-of-distribution statistics (docs/model.md#ood); not
            when the training videos have fewer than two groups.
        evaluation: where the final ``best/`` was evaluated on the eval split (its
            ``report.json`` and ``confusion.png``, as ``gkaan evaluate RUN/best --split S``
            writes them: ``RUN/eval/S``); ``None`` without an eval split.
    """

    out: Path
    epochs: int
    history: list[EpochRecord]
    best_epoch: int | None
    best_metric: float | None
    last: Path
    best: Path | None
    selection: str = SELECT_VAL
    stream_choice: StreamChoice | None = None
    ood: bool = False
    evaluation: Path | None = None


def check_sampling(manifest: Manifest, sampling: SamplingConfig, data: Path) -> None:
    """Refuse (:class:`SamplingMismatchError`) when the cache in ``data`` lacks frames that
    ``sampling`` needs; cached frames may serve another sampling than the one they were
    prepared for."""
    for record in manifest.records():
        if not record.frames:
            continue
        needed = frames_needed(record.frames, sampling, train=record.split == "train")
        if not set(needed) <= set(record.cached_frames):
            raise SamplingMismatchError(data, manifest.settings.sampling, sampling, record.id)


def run_model_config(config: TrainConfig, manifest: Manifest) -> GKAANConfig:
    """The model's config: the recipe's (its sampling too), with the data's classes and frame
    size.

    Frames are normalised for the backbone; with a frozen backbone the preprocessing is the
    one ``prepare --features`` used (:func:`feature_preprocess`), so that the saved model
    sees at prediction time what its heads were trained on.
    """
    backbone = config.model_inputs().backbone
    if config.frozen_backbone:
        preprocess = feature_preprocess(backbone).model_dump()
    else:
        spec = BACKBONES[backbone]
        preprocess = {"resize": manifest.settings.resize, "mean": spec.mean, "std": spec.std}
    model = merge_overrides(config.model, {"preprocess": preprocess})
    return GKAANConfig(num_classes=len(manifest.classes), class_names=manifest.classes, **model)


def _init_from(model: GKAAN, spec: str) -> tuple[str, int, list[str]]:
    """Copy into ``model`` every tensor of checkpoint ``spec`` whose name and shape fit.

    Returns the checkpoint folder, how many tensors were copied, and the names of the
    model's tensors that keep their fresh initialisation (e.g. classifier rows when the
    classes differ).
    """
    from ..model.checkpoint import read_checkpoint
    from ..model.locate import resolve_checkpoint

    folder = resolve_checkpoint(spec)
    source, tensors = read_checkpoint(folder)
    own = model.state_dict()
    fits = {
        key: value.to(own[key].dtype)
        for key, value in tensors.items()
        if key in own
        and value.shape == own[key].shape
        and not key.startswith("motion_head.")  # refitted on this run's data at the end
    }
    theirs, ours = source.class_names, model.config.class_names
    if theirs is not None and ours is not None and theirs != ours:
        # Same number of classes but other names or order: the rows would mean other classes.
        fits = {key: value for key, value in fits.items() if not key.startswith("heads.")}
    model.load_state_dict(fits, strict=False)
    return str(folder), len(fits), sorted(own.keys() - fits.keys())


def load_run_config(out: str | Path) -> TrainConfig:
    """The config saved in run directory ``out`` (for ``--resume``)."""
    path = Path(out) / CONFIG_NAME
    if not path.is_file():
        raise NothingToResumeError(path)
    return TrainConfig.model_validate_json(path.read_text())


def load_state(path: str | Path) -> dict[str, Any]:
    """A ``state.pt`` training state, loaded with ``weights_only=True`` (never unpickles code)."""
    return read_training_state(path)  # checks it is what train wrote


class _Forward(nn.Module):
    """What DDP wraps: frames through the whole model, or cached maps through the heads."""

    def __init__(self, model: GKAAN, features: bool) -> None:
        super().__init__()
        self.model = model
        self.features = features

    def forward(self, inputs: Tensor) -> GKAANOutput:
        if self.features:
            return self.model.forward_heads(inputs)
        return self.model(inputs)


def _rng_state() -> dict[str, Any]:
    """This process's RNG states as tensors and plain values (``weights_only``-safe)."""
    version, keys, gauss = random.getstate()
    name, np_keys, pos, has_gauss, cached = np.random.get_state()
    state: dict[str, Any] = {
        "python": [version, list(keys), gauss],
        "numpy": [name, torch.from_numpy(np_keys.astype(np.int64)), pos, has_gauss, cached],
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict[str, Any]) -> None:
    version, keys, gauss = state["python"]
    random.setstate((version, tuple(keys), gauss))
    name, np_keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((name, np_keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


@contextmanager
def _deterministic(enabled: bool) -> Iterator[None]:
    """``torch.use_deterministic_algorithms`` for the duration (warn-only where impossible)."""
    before = torch.are_deterministic_algorithms_enabled()
    warn_before = torch.is_deterministic_algorithms_warn_only_enabled()
    torch.use_deterministic_algorithms(
        enabled or before, warn_only=True if enabled else warn_before
    )
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(before, warn_only=warn_before)


def _save_atomic(obj: Any, path: Path) -> None:
    with atomic_write_path(path) as temp:
        torch.save(obj, temp)


def _eval_split(manifest: Manifest) -> str | None:
    for split in ("val", "test"):
        if manifest.records(split):
            return split
    return None


def _check_resume(saved: TrainConfig, given: TrainConfig, out: Path, done: int) -> None:
    before = saved.model_dump(mode="json", exclude=set(_RESUMABLE))
    after = given.model_dump(mode="json", exclude=set(_RESUMABLE))
    changed = sorted(key for key in before if before[key] != after[key])
    if changed:
        raise ResumeChangedError(out, tuple(changed), _RESUMABLE)
    if given.epochs < done:
        raise ResumeEpochsError(out, done, given.epochs)


class _Logger:
    """Rank 0's outputs: metrics.jsonl (rewritten atomically), TensorBoard when installed."""

    def __init__(self, out: Path, enabled: bool) -> None:
        self.out = out
        self.writer = None
        if enabled:
            try:
                from torch.utils.tensorboard import SummaryWriter

                self.writer = SummaryWriter(str(out / "tensorboard"))
            except ImportError:
                self.writer = None

    def write(self, history: list[EpochRecord]) -> None:
        records = [record.to_json() for record in history]
        lines = "".join(json.dumps(record, sort_keys=True) + "\n" for record in records)
        atomic_write_text(self.out / METRICS_NAME, lines)
        write_curves(self.out, history)
        if self.writer is not None and history:
            for name, value in flatten_nested(records[-1], sep="/").items():
                number = isinstance(value, (int, float)) and not isinstance(value, bool)
                if number and name.rsplit("/", 1)[-1] != "epoch":
                    self.writer.add_scalar(name, float(value), history[-1].epoch)
            self.writer.flush()

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


def _eval_scores(report: EvalReport) -> EvalScores:
    fused = report.video["fused"]
    return EvalScores(
        split=report.split,
        clip_top1=report.clip["fused"].top1,
        video_top1=fused.top1,
        video_top5=fused.top5,
        mean_class=fused.mean_class,
        video_nll=fused.nll,
        streams={name: s.top1 for name, s in report.video.items() if name != "fused"},
    )


class _Run:
    """One training run's objects (model, optimizer, data) on this process."""

    def __init__(
        self,
        data: Path,
        out: Path,
        config: TrainConfig,
        ctx: DistContext,
        on_progress: ProgressCallback | None,
    ) -> None:
        self.data, self.out, self.config, self.ctx = data, out, config, ctx
        self.on_progress = on_progress if ctx.is_main else None
        self.manifest = load_manifest(data)
        if len(self.manifest.classes) < 2:  # it would answer that class for anything
            found = ", ".join(self.manifest.classes) or "none"
            raise UsageError(
                f"{data}: a model needs at least two classes to tell apart; the data has "
                f"{len(self.manifest.classes)} ({found})"
            )
        self.model_config = run_model_config(config, self.manifest)
        self.features = config.frozen_backbone
        weights, cached = resolve_backbone_weights(config), feature_weights(self.manifest)
        backbone = self.model_config.backbone
        if self.features:
            if self.manifest.settings.features != backbone or cached is None:
                raise FeatureMapsMismatchError(data, backbone, weights.label, None)
            if weights.source == "imagenet" and cached.source == "file":
                weights = cached  # no trunk named: the one whose maps were cached
        if not self.manifest.records("train"):
            raise UsageError(f"{data}: no prepared videos in the train split")
        check_sampling(self.manifest, self.model_config.sampling, data)
        self.model = GKAAN(self.model_config, pretrained_backbone=weights.pretrained)
        if self.features and cached is not None:
            weights = weights.built(self.model.backbone)  # compared by content
            if not weights.same_weights(cached):
                raise FeatureMapsMismatchError(data, backbone, weights.label, cached.label)
        self.trunk = weights
        self.init_from: str | None = None
        self.reused, self.new = 0, []
        if config.init_from is not None:
            self.init_from, self.reused, self.new = _init_from(self.model, config.init_from)
        self.model.to(ctx.device)
        if self.features:
            self.model.backbone.requires_grad_(False)
        forward = _Forward(self.model, self.features)
        self.forward: nn.Module = (
            DistributedDataParallel(
                forward, device_ids=[ctx.device] if ctx.device.type == "cuda" else None
            )
            if ctx.active
            else forward
        )
        params = [p for p in self.model.parameters() if p.requires_grad]
        if config.optimizer == "adam":
            self.optimizer: torch.optim.Optimizer = torch.optim.Adam(
                params, lr=config.lr, weight_decay=config.weight_decay
            )
        else:
            self.optimizer = torch.optim.SGD(
                params, lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay
            )
        self.autocast = AUTOCAST_DTYPES.get(config.amp)
        self.scaler = torch.amp.GradScaler(ctx.device.type, enabled=config.amp == "fp16")
        self.train_set = make_dataset(
            data, "train", self.model_config, features=self.features, train=True, seed=config.seed
        )
        self.sampler: DistributedSampler[int] = DistributedSampler(
            self.train_set,
            num_replicas=ctx.world_size,
            rank=ctx.rank,
            shuffle=True,
            seed=config.seed,
        )
        self.eval_name = _eval_split(self.manifest)
        self.eval_loader: DataLoader[Any] | None = None
        if self.eval_name is not None:
            eval_set = make_dataset(
                data, self.eval_name, self.model_config, features=self.features, train=False, seed=0
            )
            shard = Subset(eval_set, range(ctx.rank, len(eval_set), ctx.world_size))
            self.eval_loader = DataLoader(
                shard,
                batch_size=self._rank_batch(),
                num_workers=config.num_workers,
                collate_fn=getattr(eval_set, "collate", None),  # cached maps: no second copy
            )
        self.selection = SELECT_VAL if self.eval_name == "val" else SELECT_LAST
        self.epoch = 0
        self.step = 0
        self.best_epoch: int | None = None
        #: (val top-1, -val NLL) of ``best/``: what a later epoch must beat.
        self.best_key: tuple[float, float] | None = None
        self.history: list[EpochRecord] = []

    def start_info(self, data: Path, prepared_now: bool, resumed: int | None) -> RunStart:
        """What :class:`RunStart` says about this run."""
        return RunStart(
            data=data,
            prepared_now=prepared_now,
            model=self.model_config,
            videos={split: len(self.manifest.records(split)) for split in ("train", "val", "test")},
            train_clips=len(self.train_set),
            eval_split=self.eval_name,
            selection=self.selection,
            inputs="features" if self.features else "frames",
            trunk=self.trunk,
            resumed_epoch=resumed,
            init_from=self.init_from,
            reused=self.reused,
            new=self.new,
            findings=self.manifest.findings,
        )

    @property
    def best_metric(self) -> float | None:
        """``best/``'s val video-level fused top-1 (None before one is chosen on val)."""
        return self.best_key[0] if self.best_key is not None else None

    def _rank_batch(self) -> int:
        return max(1, self.config.batch_size // self.ctx.world_size)

    def state(self) -> dict[str, Any]:
        """The training state; gathers every process's RNG state (collective)."""
        return {
            "format": 1,
            "epoch": self.epoch,
            "step": self.step,
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scaler": self.scaler.state_dict(),
            "best_metric": self.best_metric,
            "best_epoch": self.best_epoch,
            "best_key": self.best_key,
            "history": [record.to_json() for record in self.history],
            "rng": all_gather(self.ctx, _rng_state()),
            "config": self.config.model_dump(mode="json"),
        }

    def restore(self, state: dict[str, Any]) -> None:
        """Continue from a saved state (same world size for exact RNG continuation)."""
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scaler.load_state_dict(state["scaler"])
        self.epoch, self.step = state["epoch"], state["step"]
        self.best_epoch = state["best_epoch"]
        key = state.get("best_key")  # absent in states written before 0.2
        if key is None and state["best_metric"] is not None:
            key = (state["best_metric"], -float("inf"))
        self.best_key = tuple(key) if key is not None else None
        self.history = [EpochRecord.from_json(record) for record in state["history"]]
        rngs = state["rng"]
        if len(rngs) == self.ctx.world_size:
            _set_rng_state(rngs[self.ctx.rank])
        else:
            _seed_everything(self.config.seed + 1000 * self.epoch + self.ctx.rank)

    def _set_lr(self, epoch: float) -> float:
        lr = lr_at(self.config, epoch)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        return lr

    def train_epoch(self, on_step: StepHook | None) -> tuple[float, TrainScores, EpochTime]:
        """One epoch over the train split; returns its last learning rate, its (all-reduced)
        train scores and its time."""
        config, ctx = self.config, self.ctx
        self.sampler.set_epoch(self.epoch)
        if hasattr(self.train_set, "set_epoch"):
            self.train_set.set_epoch(self.epoch)
        loader = DataLoader(
            self.train_set,
            collate_fn=getattr(self.train_set, "collate", None),  # cached maps: no second copy
            batch_size=self._rank_batch(),
            sampler=self.sampler,
            num_workers=config.num_workers,
            generator=torch.Generator().manual_seed(config.seed + self.epoch),
        )
        self.forward.train()
        if self.features:
            self.model.backbone.eval()
        sums = BatchSums()
        epoch = f"epoch {self.epoch + 1}/{config.epochs}"
        if self.on_progress is not None:
            self.on_progress(ProgressEvent("train", 0, len(loader), epoch))
        start = time.perf_counter()
        lr = self._set_lr(self.epoch)
        for index, (inputs, target, _) in enumerate(loader):
            lr = self._set_lr(self.epoch + index / len(loader))
            inputs, target = inputs.to(ctx.device), target.to(ctx.device)
            if self.features:
                inputs = inputs.float()
            chunks = list(
                zip(inputs.chunk(config.accumulate), target.chunk(config.accumulate), strict=True)
            )
            for j, (x, y) in enumerate(chunks):
                last = j == len(chunks) - 1
                sync = nullcontext() if last or not ctx.active else self.forward.no_sync()
                with sync:
                    with torch.autocast(
                        ctx.device.type, dtype=self.autocast, enabled=self.autocast is not None
                    ):
                        output = self.forward(x)
                        parts = gkaan_loss(output, y, self.model_config)
                    self._check_finite(parts.total, index)
                    self.scaler.scale(parts.total * (len(y) / len(target))).backward()
                n = len(y)
                correct = (output.probs.argmax(dim=1) == y).sum().item()
                loss, nll, ga_sa, ga_la = (float(p.detach()) * n for p in parts)
                sums += BatchSums(loss, nll, ga_sa, ga_la, float(correct), float(n))
            self.scaler.step(self.optimizer)
            self.scaler.update()
            self.optimizer.zero_grad(set_to_none=True)
            self.step += 1
            if on_step is not None:
                on_step(self.epoch, self.step)
            if self.on_progress is not None:
                seconds = time.perf_counter() - start
                clips = sums.clips
                status = (
                    f"{epoch} loss {sums.loss / clips:.4f} "
                    f"acc {100 * sums.correct / clips:.1f}% "
                    f"{clips * ctx.world_size / seconds:.1f} clips/s"
                )
                self.on_progress(ProgressEvent("train", index + 1, len(loader), status))
        seconds = time.perf_counter() - start
        total = BatchSums.from_list(all_reduce_sum(ctx, sums.to_list()))
        return lr, total.scores(), EpochTime(seconds, total.clips / seconds)

    def _check_finite(self, loss: Tensor, index: int) -> None:
        """Stop the run when the loss is NaN/Inf: the checkpoints keep the last good epoch."""
        value = float(loss.detach())
        if not np.isfinite(value):
            raise LossNotFiniteError(self.out, value, self.epoch + 1, index + 1, self.epoch)

    def evaluate(self) -> EvalReport | None:
        """Scores on the val (or test) split; the report on rank 0, ``None`` elsewhere."""
        if self.eval_loader is None or self.eval_name is None:
            return None
        outputs = collect_outputs(
            self.model,
            self.eval_loader,
            features=self.features,
            device=self.ctx.device,
            autocast=self.autocast,
            on_progress=self.on_progress,
        )
        joined = gather_outputs(self.ctx, outputs)
        if not self.ctx.is_main:
            return None
        inputs = "features" if self.features else "frames"
        average = self.model_config.clip_average
        return summarize(joined, self.manifest.classes, self.eval_name, inputs, average=average)


def train(
    data: str | Path,
    out: str | Path,
    config: TrainConfig,
    *,
    resume: bool = False,
    on_progress: ProgressCallback | None = None,
    on_step: StepHook | None = None,
    on_start: Callable[[RunStart], None] | None = None,
    on_epoch: Callable[[EpochDone], None] | None = None,
) -> TrainResult:
    """Train a GKAAN model on ``data`` into run directory ``out``.

    Args:
        data: a prepared directory, or a source ``prepare`` accepts (prepared into a cache).
        out: the run directory.
        config: the training settings (see :func:`~gkaan_cli.engine.recipes.load_train_config`).
        resume: continue the run in ``out`` from its last finished epoch; only ``epochs``,
            ``num_workers`` and ``device`` may differ from the saved config.
        on_progress: called on rank 0 with ``ProgressEvent``s of stages ``"prepare"`` (a raw
            source being prepared), ``"train"`` (optimizer steps of an epoch; the message
            names the epoch and gives loss, accuracy and clips/s) and ``"evaluate"``.
        on_step: called as ``on_step(epoch, step)`` after every optimizer step.
        on_start: called once on rank 0 with a :class:`RunStart` when the data is ready and
            the model built, before the first epoch.
        on_epoch: called on rank 0 after each epoch with an :class:`EpochDone`: the
            epoch's record (its line of ``metrics.jsonl``), the run's total epochs and
            whether ``best/`` takes this epoch. ``last/`` (and ``best/`` when it takes it)
            then hold the epoch, but for the final one: its checkpoints are written once,
            complete, when the run ends.
    """
    if not Path(data).exists():
        raise UsageError(f"{data}: not found")
    out = Path(out)
    state_path = out / STATE_NAME
    state: dict[str, Any] | None = None
    if resume:
        if not state_path.is_file():
            raise NothingToResumeError(state_path)
        state = load_state(state_path)
        _check_resume(TrainConfig.model_validate(state["config"]), config, out, state["epoch"])
        if state["epoch"] >= config.epochs:  # nothing would run: say so
            raise ResumeEpochsError(out, state["epoch"], config.epochs)
    elif state_path.exists():
        raise RunExistsError(out)
    with distributed_context(config.device) as ctx, _deterministic(ctx.device.type == "cpu"):
        if config.amp == "fp16" and ctx.device.type != "cuda":  # before any data is prepared
            raise PrecisionDeviceError(config.amp, ctx.device.type)
        prepared = resolve_data(data, config, on_progress=on_progress) if ctx.is_main else None
        prepared = all_gather(ctx, prepared)[0]
        _seed_everything(config.seed + ctx.rank)
        run = _Run(Path(prepared), out, config, ctx, on_progress)
        if state is not None:
            run.restore(state)
        logger = _Logger(out, ctx.is_main)
        if ctx.is_main:
            if on_start is not None:
                resumed = run.epoch if state is not None else None
                on_start(run.start_info(Path(prepared), Path(prepared) != Path(data), resumed))
            out.mkdir(parents=True, exist_ok=True)
            atomic_write_text(out / CONFIG_NAME, config.model_dump_json(indent=2) + "\n")
            logger.write(run.history)
        final_state: dict[str, Any] | None = None  # written by _finalize_run
        try:
            while run.epoch < config.epochs:
                lr, scores, timing = run.train_epoch(on_step)
                run.epoch += 1
                evaluate_now = run.epoch % config.eval_every == 0 or run.epoch == config.epochs
                report = run.evaluate() if evaluate_now else None
                record = EpochRecord(
                    epoch=run.epoch,
                    step=run.step,
                    lr=lr,
                    train=scores,
                    time=timing,
                    eval=_eval_scores(report) if report is not None else None,
                )
                final = run.epoch == config.epochs
                improved, final_state = _finish_epoch(run, record, report, logger, final=final)
                if on_epoch is not None and ctx.is_main:
                    on_epoch(EpochDone(record, config.epochs, improved))
        finally:
            logger.close()
        result = TrainResult(
            out=out,
            epochs=run.epoch,
            history=run.history,
            best_epoch=run.best_epoch,
            best_metric=run.best_metric,
            last=out / "last",
            best=None,
            selection=run.selection,
        )
        if ctx.is_main:
            _finalize_run(run, result, final_state)
        elif (out / "best").is_dir():
            result.best = out / "best"
    return result


def _finalize_run(run: _Run, result: TrainResult, state: dict[str, Any] | None) -> None:
    """Work done once on rank 0 after the final epoch: the final ``last/`` and ``best/``,
    each written once, then ``state.pt``, then the final ``best/`` evaluated.

    ``best/`` gets the fusion weights chosen on the val split; both get the OOD statistics
    and the GM fit (docs/model.md#ood, #motion-track). ``state`` (the final epoch's training
    state) is written after the checkpoints: a run stopped before then resumes at the final
    epoch again. The place for end-of-run additions that need the trained model and the data
    (``run.model``, ``run.model_config``, ``run.data``, ``run.train_set``, ``run.features``);
    ``result`` may be extended in place.
    """
    last = run.model.eval()
    best: GKAAN | None = None
    if run.best_epoch == run.epoch:
        best = last  # the final epoch's weights: one model for both checkpoints
    elif run.best_epoch is not None:
        best = GKAAN.from_pretrained(run.out / "best").to(run.ctx.device)  # an earlier epoch
    best_config = _fuse_on_val(run, result, best) if best is not None else None
    models = [last] if best is None or best is last else [last, best]
    result.ood = add_training_statistics(
        models, run.data, features=run.features, device=run.ctx.device
    )
    last.save_pretrained(run.out / "last")
    if best is not None:
        write_checkpoint(run.out / "best", best_config or best.config, best.state_dict())
        result.best = run.out / "best"
    if state is not None:
        _save_atomic(state, run.out / STATE_NAME)
    if result.best is not None and run.eval_name is not None:
        # the final best/ (its chosen fusion weights, its OOD statistics) on the eval split,
        # for the run's report.html: one more pass over that split
        where = default_eval_dir(result.best, run.eval_name)
        evaluate(
            result.best,
            run.data,
            split=run.eval_name,
            batch_size=run.config.batch_size,
            device=str(run.ctx.device),
            out=where,
            num_workers=run.config.num_workers,
        )
        result.evaluation = where


def _fuse_on_val(run: _Run, result: TrainResult, best: GKAAN) -> GKAANConfig | None:
    """Choose ``best/``'s stream weights on the val split: its config with them, or ``None``
    when its own weights stay (sets ``result.stream_choice`` when a choice was made)."""
    config = run.model_config
    streams = config.streams
    if (
        run.selection != SELECT_VAL
        or run.eval_loader is None
        or run.ctx.world_size > 1  # rank 0 holds only its shard of the val split
        or len(streams) < 2
        or config.fuse != "probs"
    ):
        return None
    outputs = collect_outputs(
        best, run.eval_loader, features=run.features, device=run.ctx.device, autocast=run.autocast
    )
    current = best.config.stream_weights[: len(streams)]
    choice = choose_stream_weights(
        {s: outputs.probs[s] for s in streams},
        outputs.labels,
        outputs.video_index,
        streams,
        current,
    )
    result.stream_choice = choice
    if choice.name == "config":
        return None
    padded = tuple(choice.weights) + tuple(best.config.stream_weights[len(streams) :])
    return GKAANConfig.model_validate(best.config.model_dump() | {"stream_weights": padded})


def _finish_epoch(
    run: _Run, record: EpochRecord, report: EvalReport | None, logger: _Logger, *, final: bool
) -> tuple[bool, dict[str, Any] | None]:
    """Record the epoch; rank 0 writes metrics and, before the ``final`` epoch, ``last/``,
    ``best/`` when chosen and the state (after the final one :func:`_finalize_run` writes
    each once).

    ``best/`` follows the val split's fused video top-1, ties broken by the lower fused video
    NLL (a small val split saturates at 100% within a few epochs, long before the model has
    finished learning); without a val split it is the last epoch
    (docs/protocol.md#model-selection). Returns whether ``best/`` takes this epoch and, on
    rank 0 after the final epoch, the training state that is still to be written.
    """
    run.history.append(record)
    if run.selection == SELECT_VAL:
        fused = report.video["fused"] if report is not None else None
        key = (fused.top1, -fused.nll) if fused is not None else None
        improved = key is not None and (run.best_key is None or key > run.best_key)
        if improved and fused is not None:
            run.best_epoch, run.best_key = run.epoch, key
    else:  # choosing on the test split would bias its accuracy: take the last epoch
        improved = True
        run.best_epoch = run.epoch
    state = run.state()  # collective: every rank takes part
    if not run.ctx.is_main:
        return improved, None
    if final:
        logger.write(run.history)
        return improved, state
    run.model.save_pretrained(run.out / "last")
    if improved:
        run.model.save_pretrained(run.out / "best")
    _save_atomic(state, run.out / STATE_NAME)
    logger.write(run.history)
    return improved, None
