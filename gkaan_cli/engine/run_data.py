"""Where a run's data and trunk weights come from: the prepared cache of a raw source, and
the backbone weights a run's settings name (shared by ``train`` and ``evaluate``).

A raw source is prepared into ``$GKAAN_CACHE/prepared/<key>`` (default ``~/.cache/gkaan``),
the key hashing the source path and every setting that changes what is decoded (sampling,
frame size, trunk and its weights), so the next run (or ``evaluate`` of its model) reuses it.
The split is not in the key: a run with other split settings re-splits the same folder, and
``prepare`` decodes only videos whose cached frames do not serve their new split.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

from ..data.manifest import MANIFEST_NAME
from ..errors import UsageError
from ..model.trunk_weights import TrunkWeights
from ..progress import ProgressCallback
from .cache import prepared_root
from .recipes import TrainConfig

__all__ = ["prepared_cache_dir", "resolve_backbone_weights", "resolve_data"]


def prepared_cache_dir(source: Path, config: TrainConfig) -> Path:
    """Where a raw ``source`` is prepared for ``config`` (reused by later runs)."""
    model = config.model_inputs()
    key = {
        "source": str(source.resolve()),
        "sampling": model.sampling.model_dump(mode="json"),
        "resize": list(model.preprocess.resize),
        "features": model.backbone if config.frozen_backbone else None,
        "weights": str(resolve_backbone_weights(config).pretrained)
        if config.frozen_backbone
        else None,
    }  # not the split: another --split-by or fraction re-splits the same decoded videos
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]
    return prepared_root() / f"{source.resolve().name}-{digest}"


def resolve_data(
    data: str | Path, config: TrainConfig, *, on_progress: ProgressCallback | None = None
) -> Path:
    """A prepared directory for ``data``: itself, or the cache it is prepared into.

    ``on_progress`` follows the preparation of a raw source (stage ``"prepare"``).
    """
    data = Path(data)
    if (data / MANIFEST_NAME).is_file():
        return data
    if not data.exists():
        raise UsageError(f"{data}: not found")
    from ..data.prepare import FeatureOptions, PrepareOptions, prepare

    out = prepared_cache_dir(data, config)
    model = config.model_inputs()
    features = None
    if config.frozen_backbone:
        # fp32, the reference: the heads learn from exact maps (docs/protocol.md#frozen-backbone)
        weights = resolve_backbone_weights(config)
        features = FeatureOptions(model.backbone, pretrained=weights, precision="fp32")
    options = PrepareOptions(
        split=config.split_options(),
        sampling=model.sampling,
        resize=model.preprocess.resize,
        features=features,
    )
    created = not out.exists()
    try:
        prepare(data, out, options, on_progress=on_progress)
    except BaseException:
        if created and not (out / MANIFEST_NAME).is_file():  # leave no empty cache entry
            shutil.rmtree(out, ignore_errors=True)
        raise
    return out


def resolve_backbone_weights(config: TrainConfig) -> TrunkWeights:
    """The trunk weights of a run: random, ImageNet, or the absolute path of a weights file
    or GKAAN checkpoint folder (a registered name or Hub id is resolved to its local
    folder), without their hash (the trunk is not built here)."""
    if not config.pretrained:
        return TrunkWeights(source="random")
    spec = config.backbone_weights
    if spec is None:
        return TrunkWeights(source="imagenet")
    path = Path(spec).expanduser()
    if not path.exists():
        from ..model.locate import resolve_checkpoint

        path = resolve_checkpoint(spec)
    return TrunkWeights(source="file", path=str(path.resolve()))
