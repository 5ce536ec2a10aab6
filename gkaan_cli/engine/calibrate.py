"""Out-of-distribution statistics of a trained model, from its training split (docs/model.md#ood).

At the end of training, every training clip (test-time sampling, no augmentation) is embedded
by :func:`~gkaan_cli.model.ood.clip_embedding`; :func:`~gkaan_cli.model.ood.fit_ood` keeps the
embeddings and calibrates the limits by holding out one group (person) at a time. The run's
checkpoints are then written again with the ``ood.*`` tensors.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch.utils.data import DataLoader

from ..model.gkaan import GKAAN
from ..model.ood import OODStats, clip_embedding, fit_ood
from .evaluate import make_dataset

__all__ = ["add_training_ood", "training_ood"]


@torch.inference_mode()
def training_ood(
    model: GKAAN,
    prepared_dir: str | Path,
    *,
    features: bool,
    device: torch.device | str = "cpu",
    batch_size: int = 8,
) -> OODStats | None:
    """OOD statistics of ``model`` on the train split of ``prepared_dir``.

    Args:
        model: the trained network (its backbone embeds frames when ``features`` is False).
        prepared_dir: the prepared directory the model was trained on.
        features: the split holds cached conv maps (else frames through the backbone).
        device: where the backbone runs.
        batch_size: clips per batch.

    Returns:
        The statistics, or None when the split has fewer than two videos or two groups
        (:data:`~gkaan_cli.model.ood.NO_GROUPS`).
    """
    dataset = make_dataset(
        Path(prepared_dir), "train", model.config, features=features, train=False, seed=0
    )
    model = model.eval().to(device)
    embeddings, videos = [], []
    collate = getattr(dataset, "collate", None)  # cached maps: batches without a second copy
    for inputs, _, video in DataLoader(dataset, batch_size=batch_size, collate_fn=collate):
        inputs = inputs.to(device).float()
        if not features:
            b, t = inputs.shape[:2]
            inputs = model.extract_maps(inputs.flatten(0, 1)).unflatten(0, (b, t))
        embeddings.append(clip_embedding(inputs).cpu())
        videos.append(video)
    video_index = torch.cat(videos)
    group_names = [r.group for r in dataset.records]  # type: ignore[attr-defined]
    groups = None
    if dataset.manifest.groups_known and None not in group_names:  # type: ignore[attr-defined]
        ids = {name: i for i, name in enumerate(dict.fromkeys(group_names))}
        groups = torch.tensor([ids[group_names[v]] for v in video_index.tolist()])
    try:
        stats = fit_ood(torch.cat(embeddings), video_index, groups)
    except ValueError:
        return None
    return OODStats.from_state(stats)


def add_training_ood(
    run: str | Path, prepared_dir: str | Path, *, features: bool, device: torch.device | str
) -> bool:
    """Write the run's ``last/`` and ``best/`` checkpoints again with OOD statistics.

    On cached maps (``features``) the embeddings do not depend on the trained weights, so
    the training split is embedded once for both checkpoints. Returns whether they got
    statistics (not without two groups: :data:`~gkaan_cli.model.ood.NO_GROUPS`).
    """
    shared: OODStats | None = None
    computed = False
    for name in ("last", "best"):
        folder = Path(run) / name
        if not folder.is_dir():
            continue
        model = GKAAN.from_pretrained(folder)
        if not (computed and features):
            shared = training_ood(model, prepared_dir, features=features, device=device)
            computed = True
        model.ood = shared
        if model.ood is not None:
            model.save_pretrained(folder)
    return shared is not None
