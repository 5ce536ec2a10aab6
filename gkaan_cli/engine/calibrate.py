"""End-of-training statistics of a model, from its training split: the out-of-distribution
statistics (docs/model.md#ood) and the GM stream's fit (docs/model.md#motion-track).

At the end of training, every test clip of every training video (test-time sampling, no
augmentation: with ``test_max_clips``, every window; docs/protocol.md#test-windows) goes once
through the frozen part of the network: :func:`~gkaan_cli.model.ood.clip_embedding` embeds
it, and, for a ``motion="track"`` model, :func:`~gkaan_cli.model.motion.motion_descriptor`
describes its motion (with ``motion_augment``, also zoomed and at other frame rates).
:func:`~gkaan_cli.model.ood.fit_ood` keeps at most ``max_clips`` embeddings per video
(spread evenly over its test clips, so the bank a checkpoint carries does not grow with
``test_max_clips``) and calibrates the limits by holding out one group (person) at a time;
:meth:`~gkaan_cli.model.motion.MotionHead.fit` fits the GM head on the descriptors. The run's
final checkpoints are then written, once each, with them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor
from torch.utils.data import DataLoader

from ..model.gkaan import GKAAN
from ..model.motion import augmented_descriptors, motion_descriptor
from ..model.ood import OODStats, clip_embedding, fit_ood
from ..video.sampling import spread
from .evaluate import clip_rates, make_dataset

__all__ = ["TrainingClips", "add_training_statistics", "training_clips", "training_ood"]


@dataclass(frozen=True)
class TrainingClips:
    """What the end-of-training statistics need from every training clip.

    Attributes:
        embeddings: (N, C) clip embeddings (docs/model.md#ood).
        descriptors: (A, N, D) motion descriptors: A = 1, or, with the config's
            ``motion_augment``, every clip also zoomed and at other frame rates
            (:func:`~gkaan_cli.model.motion.augmented_descriptors`); None for a model
            without a GM stream.
        labels: (N,) class indices.
        video_index: (N,) the video of each clip.
        groups: (N,) the group (person) of each clip's video, or None when unknown.
        fps: the median frame rate of the training videos (0 when unknown).
        bank: the rows the OOD statistics keep: at most the sampling's ``max_clips`` per
            video, spread evenly (:func:`bank_rows`); None: every row.
    """

    embeddings: Tensor
    descriptors: Tensor | None
    labels: Tensor
    video_index: Tensor
    groups: Tensor | None
    fps: float = 0.0
    bank: Tensor | None = None


def bank_rows(video_index: Tensor, per_video: int) -> Tensor:
    """Rows of at most ``per_video`` clips of each video, spread evenly over its clips as
    dense sampling spreads clip starts (:func:`~gkaan_cli.video.sampling.spread`), in order."""
    keep = []
    for video in video_index.unique(sorted=True).tolist():
        rows = (video_index == video).nonzero().flatten()
        if len(rows) > per_video:
            rows = rows[spread(len(rows) - 1, per_video)]
        keep.append(rows)
    return torch.cat(keep).sort().values


@torch.inference_mode()
def training_clips(
    model: GKAAN,
    prepared_dir: str | Path,
    *,
    features: bool,
    device: torch.device | str = "cpu",
    batch_size: int = 8,
) -> TrainingClips:
    """One pass over the train split of ``prepared_dir``.

    Args:
        model: the trained network (its backbone embeds frames when ``features`` is False).
        prepared_dir: the prepared directory the model was trained on.
        features: the split holds cached conv maps (else frames through the backbone).
        device: where the backbone runs.
        batch_size: clips per batch.
    """
    dataset = make_dataset(
        Path(prepared_dir), "train", model.config, features=features, train=False, seed=0
    )
    model = model.eval().to(device)
    config = model.config
    motion = model.motion_head is not None
    embeddings, descriptors, labels, videos = [], [], [], []
    collate = getattr(dataset, "collate", None)  # cached maps: batches without a second copy
    for inputs, target, video in DataLoader(dataset, batch_size=batch_size, collate_fn=collate):
        inputs = inputs.to(device).float()
        if not features:
            b, t = inputs.shape[:2]
            inputs = model.extract_maps(inputs.flatten(0, 1)).unflatten(0, (b, t))
        embeddings.append(clip_embedding(inputs).cpu())
        if motion:  # docs/model.md#motion-track
            rates = clip_rates(dataset, video)
            if config.motion_augment:  # each clip also zoomed and at other rates
                described = augmented_descriptors(inputs, rates, config.motion_scale)
            else:
                described = motion_descriptor(inputs, rates, config.motion_scale)[None]
            descriptors.append(described.cpu())
        labels.append(target)
        videos.append(video)
    video_index = torch.cat(videos)
    group_names = [r.group for r in dataset.records]  # type: ignore[attr-defined]
    groups = None
    if dataset.manifest.groups_known and None not in group_names:  # type: ignore[attr-defined]
        ids = {name: i for i, name in enumerate(dict.fromkeys(group_names))}
        groups = torch.tensor([ids[group_names[v]] for v in video_index.tolist()])
    rates = [r.fps for r in dataset.records if r.fps]  # type: ignore[attr-defined]
    per_video = config.sampling.max_clips_for(train=True)
    return TrainingClips(
        bank=bank_rows(video_index, per_video) if config.sampling.mode == "dense" else None,
        fps=float(torch.tensor(rates).median()) if rates else 0.0,
        embeddings=torch.cat(embeddings),
        descriptors=torch.cat(descriptors, dim=1) if motion else None,
        labels=torch.cat(labels),
        video_index=video_index,
        groups=groups,
    )


def training_ood(clips: TrainingClips) -> OODStats | None:
    """OOD statistics of the training clips, or None when the split has fewer than two videos
    or two groups (:data:`~gkaan_cli.model.ood.NO_GROUPS`)."""
    rows = clips.bank if clips.bank is not None else slice(None)
    groups = clips.groups[rows] if clips.groups is not None else None
    try:
        stats = fit_ood(clips.embeddings[rows], clips.video_index[rows], groups)
    except ValueError:
        return None
    return OODStats.from_state(stats)


def add_training_statistics(
    models: Sequence[GKAAN],
    prepared_dir: str | Path,
    *,
    features: bool,
    device: torch.device | str,
) -> bool:
    """Give a run's final models (those of ``last/`` and ``best/``, each with its own
    weights, in memory) OOD statistics and, for a ``motion="track"`` model, the fitted GM
    head; the run then writes their checkpoints.

    On cached maps (``features``) neither depends on the trained weights, so the training
    split is read, and the GM head fitted, once for all of them. Returns whether they got
    OOD statistics (not without two groups: :data:`~gkaan_cli.model.ood.NO_GROUPS`).
    """
    clips: TrainingClips | None = None
    ood: OODStats | None = None
    motion: dict[str, Tensor] | None = None  # the fitted GM head's tensors
    for model in models:
        if clips is None or not features:
            clips = training_clips(model, prepared_dir, features=features, device=device)
            ood, motion = training_ood(clips), None
        model.ood = ood
        head = model.motion_head
        if head is not None and clips.descriptors is not None:
            if motion is None:
                head.fit(clips.descriptors, clips.labels, l2=model.config.motion_l2, fps=clips.fps)
                motion = head.state_dict()
            else:
                head.load_state_dict(motion)
    return ood is not None
