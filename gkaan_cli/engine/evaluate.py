"""Evaluate a GKAAN model on a split of a dataset: clip and video accuracy per stream.

The data is what ``train`` accepts: a prepared directory, or a raw source (video folder,
split files, CSV) prepared into the cache, the very cache its training run used when the
model comes from a run folder (same settings, same key).

Video predictions average their clips' probabilities, or their logits with
``clip_average="logits"`` (docs/protocol.md#scores). Scores are
reported for the fused probabilities (eq. 19/20) and for each stream, as the paper's tables
are; attention entropy shows how peaked the SA/LA maps are (docs/model.md#sa-peaked). The conv
maps cached by ``prepare --features`` are used when they came from exactly this model's
backbone weights; otherwise frames go through the backbone.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

from ..config import MIN_PROB, GKAANConfig
from ..data.frame_cache import feature_preprocess
from ..data.manifest import MANIFEST_NAME, Manifest, load_manifest
from ..errors import MissingWeightsError, UsageError
from ..fileio import atomic_write_bytes, sha256_file
from ..model.backbones import build_backbone
from ..model.gkaan import GKAAN
from ..model.precision import InferenceTrunk, checked_precision, inference_trunk
from ..model.trunk_weights import TrunkWeights, weights_digest
from ..progress import ProgressCallback, ProgressEvent
from ..video.writer import encode_png
from .distributed import DistContext, all_gather, resolve_device
from .metrics import (
    AccuracyScores,
    attention_peakedness,
    confusion_image,
    confusion_matrix,
    score,
    video_average,
)

__all__ = [
    "EvalReport",
    "SplitOutputs",
    "collect_outputs",
    "default_eval_dir",
    "evaluate",
    "feature_weights",
    "features_match",
    "gather_outputs",
    "make_dataset",
    "summarize",
    "write_report",
]

FUSED = "fused"
#: Top-5 accuracy is reported only with more classes than this.
TOP5_MIN_CLASSES = 5


@dataclass
class SplitOutputs:
    """A model's outputs over a split, one row per clip.

    Attributes:
        probs: ``"fused"`` and each stream -> (N, K) probabilities.
        labels: (N,) true classes.
        video_index: (N,) the video each clip comes from.
        attention: ``"sa"``/``"la"`` -> ((M,) entropies, (M,) peak weights) of every frame's map.
        map_size: h * w of the attention maps (0 without attention).
    """

    probs: dict[str, np.ndarray]
    labels: np.ndarray
    video_index: np.ndarray
    attention: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)
    map_size: int = 0


@dataclass
class EvalReport:
    """Evaluation of one model on one split.

    Attributes:
        split: the split evaluated.
        classes: class names, index order.
        clip: ``"fused"`` and each stream -> clip-level scores.
        video: the same at video level (mean of the clips' probabilities).
        per_class: one row per class (video level, fused): name, videos, correct, accuracy.
        confusion: (K, K) video-level confusion matrix of the fused prediction.
        attention: ``"sa"``/``"la"`` -> mean entropy, uniform entropy log(h*w), mean peak.
        inputs: ``"features"`` (cached conv maps) or ``"frames"`` (backbone ran).
        model: which model (:func:`~gkaan_cli.model.describe.describe_model`), when known.
        data: which data: the source given, the prepared directory, the split's video count.
        report_path, confusion_path: files written, when an output directory was given.
    """

    split: str
    classes: list[str]
    clip: dict[str, AccuracyScores]
    video: dict[str, AccuracyScores]
    per_class: list[dict[str, Any]]
    confusion: np.ndarray
    attention: dict[str, dict[str, float]]
    inputs: str
    model: dict[str, Any] | None = None
    data: dict[str, Any] | None = None
    report_path: Path | None = None
    confusion_path: Path | None = None

    @property
    def has_top5(self) -> bool:
        """Top-5 is reported only with more than 5 classes (else it is always 100%)."""
        return len(self.classes) > TOP5_MIN_CLASSES

    def _scores(self, scores: AccuracyScores) -> dict[str, Any]:
        values = scores.to_dict()
        if not self.has_top5:
            values.pop("top5")
        return values

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (what ``report.json`` holds)."""
        return {
            "model": self.model,
            "data": self.data,
            "split": self.split,
            "inputs": self.inputs,
            "classes": self.classes,
            "clip": {name: self._scores(value) for name, value in self.clip.items()},
            "video": {name: self._scores(value) for name, value in self.video.items()},
            "per_class": self.per_class,
            "confusion": self.confusion.tolist(),
            "attention": self.attention,
        }


def make_dataset(
    prepared_dir: Path, split: str, config: GKAANConfig, *, features: bool, train: bool, seed: int
) -> Dataset[Any]:
    """The prepared ``split`` as cached conv maps (``features``) or as frame clips."""
    from ..data.dataset import ClipDataset, FeatureDataset

    kind = FeatureDataset if features else ClipDataset
    return kind(prepared_dir, split, config, train=train, seed=seed)


def feature_weights(manifest: Manifest) -> TrunkWeights | None:
    """The weights of the trunk the prepared features came from; ``None`` when there are no
    features or they came from random weights."""
    weights = manifest.settings.pretrained
    if manifest.settings.features is None or weights is None or weights.source == "random":
        return None
    return weights


def features_match(model: GKAAN, manifest: Manifest) -> bool:
    """Whether the prepared conv maps are exactly what ``model``'s backbone computes.

    True when the manifest's features come from the same backbone, with the same weights
    (the hash of ``model``'s trunk against the one the manifest recorded; manifests written
    before the hash existed: tensor by tensor with a backbone built from the weights they
    name) and the same preprocessing.
    """
    config = model.config
    weights = feature_weights(manifest)
    if manifest.settings.features != config.backbone or weights is None:
        return False
    expected = feature_preprocess(config.backbone)
    used = config.preprocess
    if (used.resize, used.crop, used.mean, used.std) != (
        expected.resize,
        expected.crop,
        expected.mean,
        expected.std,
    ):
        return False
    if weights.sha256 is not None:
        return weights_digest(model.backbone) == weights.sha256
    try:
        reference = build_backbone(config.backbone, pretrained=weights.pretrained).state_dict()
    except MissingWeightsError:
        return False
    ours = model.backbone.state_dict()
    return ours.keys() == reference.keys() and all(
        torch.equal(ours[key].cpu(), reference[key]) for key in ours
    )


def clip_rates(dataset: Any, video: Tensor) -> Tensor | None:
    """The frame rate of each clip's video (``video``: video indices into the prepared
    split's ``records``), for the GM stream; None when the dataset does not know them."""
    records = getattr(dataset, "records", None)
    if records is None:
        return None
    return torch.tensor([records[v].fps or 0.0 for v in video.tolist()], dtype=torch.float32)


@torch.no_grad()
def collect_outputs(
    model: GKAAN,
    loader: DataLoader[Any],
    *,
    features: bool,
    device: torch.device,
    autocast: torch.dtype | None = None,
    trunk: InferenceTrunk | None = None,
    on_progress: ProgressCallback | None = None,
) -> SplitOutputs:
    """Run ``model`` over ``loader`` (items: input, label, video index) in eval mode.

    ``trunk``: with frames, run the backbone as this inference trunk (e.g. bf16,
    :func:`~gkaan_cli.model.precision.inference_trunk`) and the heads in fp32, as ``predict``
    does. ``on_progress`` gets ``ProgressEvent("evaluate", batches_done, batches_total)``.
    """
    model.eval()
    probs: dict[str, list[np.ndarray]] = {}
    labels, videos = [], []
    attention: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {}
    map_size = 0
    if on_progress is not None:
        on_progress(ProgressEvent("evaluate", 0, len(loader)))
    for done, (inputs, target, video) in enumerate(loader, start=1):
        inputs = inputs.to(device, non_blocking=True)
        rates = clip_rates(getattr(loader, "dataset", None), video)
        if trunk is not None and not features:
            maps = trunk(inputs.flatten(0, 1)).float()  # heads in fp32
            output = model.forward_heads(maps.unflatten(0, inputs.shape[:2]), rates)
        else:
            with torch.autocast(device.type, dtype=autocast, enabled=autocast is not None):
                if features:
                    output = model.forward_heads(inputs.float(), rates)
                else:
                    output = model(inputs, rates)
        for name, value in {FUSED: output.probs, **output.stream_probs}.items():
            probs.setdefault(name, []).append(value.float().cpu().numpy())
        for name, maps in output.attention.items():
            map_size = maps.shape[-1] * maps.shape[-2]
            flat = maps.float().flatten(0, 1).cpu().numpy()
            attention.setdefault(name, []).append(attention_peakedness(flat))
        labels.append(target.numpy())
        videos.append(video.numpy())
        if on_progress is not None:
            on_progress(ProgressEvent("evaluate", done, len(loader)))
    return SplitOutputs(
        probs={name: np.concatenate(parts) for name, parts in probs.items()},
        labels=np.concatenate(labels).astype(np.int64),
        video_index=np.concatenate(videos).astype(np.int64),
        attention={
            name: (np.concatenate([e for e, _ in parts]), np.concatenate([p for _, p in parts]))
            for name, parts in attention.items()
        },
        map_size=map_size,
    )


def gather_outputs(ctx: DistContext, outputs: SplitOutputs) -> SplitOutputs:
    """All processes' outputs joined (identity in a single process)."""
    if not ctx.active:
        return outputs
    parts = [part for part in all_gather(ctx, outputs) if len(part.labels)]
    return SplitOutputs(
        probs={name: np.concatenate([p.probs[name] for p in parts]) for name in parts[0].probs},
        labels=np.concatenate([p.labels for p in parts]),
        video_index=np.concatenate([p.video_index for p in parts]),
        attention={
            name: (
                np.concatenate([p.attention[name][0] for p in parts]),
                np.concatenate([p.attention[name][1] for p in parts]),
            )
            for name in parts[0].attention
        },
        map_size=parts[0].map_size,
    )


def _video_scores(
    probs: np.ndarray, labels: np.ndarray, video_index: np.ndarray, average: str
) -> tuple[np.ndarray, np.ndarray]:
    """(V, K) video probabilities and (V,) labels: the mean of the clips' probabilities, or
    (``average="logits"``) the softmax of the mean of their logits. The mean log-probability
    is the mean logit less a per-clip constant, so it gives the same softmax."""
    if average == "probs":
        return video_average(probs, labels, video_index)[1:]
    _, mean_log, video_labels = video_average(
        np.log(np.clip(probs, MIN_PROB, None)), labels, video_index
    )
    shifted = np.exp(mean_log - mean_log.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True), video_labels


def summarize(
    outputs: SplitOutputs, classes: list[str], split: str, inputs: str, *, average: str = "probs"
) -> EvalReport:
    """Scores, per-class table and confusion matrix from collected outputs; ``average``:
    how a video's clips combine (``GKAANConfig.clip_average``)."""
    clip = {name: score(p, outputs.labels) for name, p in outputs.probs.items()}
    video: dict[str, AccuracyScores] = {}
    video_labels = np.zeros(0, np.int64)
    fused_video = np.zeros((0, len(classes)))
    for name, p in outputs.probs.items():
        averaged, video_labels = _video_scores(p, outputs.labels, outputs.video_index, average)
        video[name] = score(averaged, video_labels)
        if name == FUSED:
            fused_video = averaged
    matrix = confusion_matrix(fused_video.argmax(axis=1), video_labels, len(classes))
    per_class = [
        {
            "class": name,
            "videos": int(matrix[i].sum()),
            "correct": int(matrix[i, i]),
            "accuracy": float(matrix[i, i] / matrix[i].sum()) if matrix[i].sum() else None,
        }
        for i, name in enumerate(classes)
    ]
    attention = {
        name: {
            "entropy": float(entropy.mean()),
            "uniform_entropy": float(np.log(outputs.map_size)),
            "peak": float(peak.mean()),
        }
        for name, (entropy, peak) in outputs.attention.items()
    }
    return EvalReport(split, classes, clip, video, per_class, matrix, attention, inputs)


def write_report(report: EvalReport, out: Path) -> None:
    """Write ``out/report.json`` and ``out/confusion.png`` (atomically) and note the paths."""
    out.mkdir(parents=True, exist_ok=True)
    report.report_path = out / "report.json"
    report.confusion_path = out / "confusion.png"
    atomic_write_bytes(report.report_path, json.dumps(report.to_dict(), indent=1).encode() + b"\n")
    image = confusion_image(report.confusion, report.classes)
    atomic_write_bytes(report.confusion_path, encode_png(image))


def default_eval_dir(checkpoint: Path, split: str) -> Path:
    """Where ``evaluate`` writes by default: ``RUN/eval/SPLIT`` for a checkpoint of a training
    run (``RUN/best``, ``RUN/last``), else ``runs/eval/<name>-<sha256[:8]>/SPLIT``, so two
    models never share a report folder."""
    from ..model.checkpoint import WEIGHTS_FILE
    from .recipes import CONFIG_NAME

    checkpoint = Path(checkpoint).resolve()
    if (checkpoint.parent / CONFIG_NAME).is_file():
        return checkpoint.parent / "eval" / split
    digest = sha256_file(checkpoint / WEIGHTS_FILE)[:8]
    return Path("runs") / "eval" / f"{checkpoint.name}-{digest}" / split


def resolve_eval_data(
    data: str | Path,
    model: GKAAN,
    checkpoint: Path | None,
    *,
    on_progress: ProgressCallback | None = None,
) -> Path:
    """A prepared directory for ``data``: itself, or the cache a raw source is prepared into.

    For a checkpoint of a training run the run's own settings (``train_config.json``) pick
    the cache, so the run's prepared data (and its cached maps) are reused; otherwise the
    source is prepared with the model's sampling and frame size.
    """
    from .recipes import CONFIG_NAME, TrainConfig
    from .run_data import resolve_data

    data = Path(data)
    if (data / MANIFEST_NAME).is_file():
        return data
    if data.exists() and model.config.class_names is not None:  # before decoding anything
        from ..data.sources import discover

        classes = list(discover(data).classes)
        if classes != model.config.class_names:
            raise UsageError(
                f"{data}: classes {classes} differ from the model's {model.config.class_names}"
            )
    saved = None if checkpoint is None else Path(checkpoint).resolve().parent / CONFIG_NAME
    if saved is not None and saved.is_file():
        config = TrainConfig.model_validate_json(saved.read_text())
    else:
        fields = model.config.model_dump(
            mode="json", exclude={"num_classes", "class_names", "version"}
        )
        config = TrainConfig(model=fields, frozen_backbone=False, pretrained=False)
    return resolve_data(data, config, on_progress=on_progress)


def evaluate(
    model: GKAAN | str | Path,
    data: str | Path,
    *,
    split: str = "test",
    batch_size: int = 8,
    device: str = "auto",
    precision: str = "auto",
    out: str | Path | None = None,
    num_workers: int = 0,
    on_progress: ProgressCallback | None = None,
) -> EvalReport:
    """Evaluate ``model`` on ``split`` of ``data``.

    Args:
        model: a :class:`GKAAN`, or a checkpoint directory / run folder / Hub repo id /
            registry name.
        data: a directory written by ``gkaan prepare``, or a source ``train`` accepts (video
            folder, split files, CSV), prepared into the cache (:func:`resolve_eval_data`).
        split: ``train``, ``val`` or ``test``.
        batch_size: clips per forward pass.
        device: ``auto``, ``cpu``, ``cuda`` or ``cuda:N``.
        precision: the backbone's precision when frames go through it, as ``predict``'s
            (``auto``: bf16 where the hardware runs it natively); the heads run in fp32.
            Cached maps are used as ``prepare`` computed them (its precision is in the
            manifest).
        out: write ``report.json`` and ``confusion.png`` here.
        num_workers: DataLoader worker processes.
        on_progress: called with ``ProgressEvent("evaluate", batches_done, batches_total)``
            (and ``"prepare"`` while a raw source is prepared).
    """
    from ..model.describe import describe_model
    from ..model.locate import CheckpointRef, locate_checkpoint

    target = resolve_device(device)
    frames_precision = checked_precision(precision, target)
    if isinstance(model, GKAAN):
        net, checkpoint = model, None
    else:  # resolved once: the model and its report carry the same CheckpointRef
        ref = model if isinstance(model, CheckpointRef) else locate_checkpoint(model)
        net, checkpoint = GKAAN.from_pretrained(ref), ref.folder
    if not Path(data).exists():
        raise UsageError(f"{data}: not found")
    prepared_dir = resolve_eval_data(data, net, checkpoint, on_progress=on_progress)
    manifest = load_manifest(prepared_dir)
    if net.config.class_names is not None and net.config.class_names != manifest.classes:
        raise UsageError(
            f"{prepared_dir}: classes {manifest.classes} differ from the model's "
            f"{net.config.class_names}"
        )
    records = manifest.records(split)
    if not records:
        raise UsageError(f"{prepared_dir}: no prepared videos in split {split!r}")
    net.to(target)
    features = features_match(net, manifest)
    if features:
        used = manifest.settings.precision or "fp32"
        trunk = None
    else:
        used = frames_precision
        trunk = inference_trunk(net.backbone, used, target)
    dataset = make_dataset(prepared_dir, split, net.config, features=features, train=False, seed=0)
    collate = getattr(dataset, "collate", None)  # cached maps: batches without a second copy
    loader = DataLoader(dataset, batch_size=batch_size, num_workers=num_workers, collate_fn=collate)
    outputs = collect_outputs(
        net, loader, features=features, device=target, trunk=trunk, on_progress=on_progress
    )
    report = summarize(
        outputs,
        manifest.classes,
        split,
        "features" if features else "frames",
        average=net.config.clip_average,
    )
    report.model = describe_model(net, precision=used)
    report.data = {
        "source": str(data),
        "prepared": str(prepared_dir),
        "split_rule": manifest.split_rule,
        "videos": len(records),
    }
    if out is not None:
        write_report(report, Path(out))
    return report
