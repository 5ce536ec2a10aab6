"""The ``model`` block of ``report.json`` and prediction outputs: which model produced them.

``describe_model(model, source)`` names the model as the user gave it, the checkpoint folder
it was read from, the SHA-256 of its ``model.safetensors``, its classes, backbone and
sampling, so that any output can be traced back to the exact weights.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..fileio import sha256_file
from .checkpoint import WEIGHTS_FILE
from .gkaan import GKAAN

__all__ = ["describe_model"]


def describe_model(
    model: GKAAN, source: str | Path | None, folder: Path | None = None
) -> dict[str, Any]:
    """A JSON-ready description of ``model``.

    Args:
        model: the loaded model.
        source: how the user named it (path, registry name, Hub id), or ``None``.
        folder: the checkpoint folder it was read from; ``None`` for a model held only in
            memory (then ``checkpoint`` and ``sha256`` are ``None``).
    """
    weights = None if folder is None else Path(folder) / WEIGHTS_FILE
    config = model.config
    return {
        "source": None if source is None else str(source),
        "checkpoint": None if folder is None else str(folder),
        "sha256": sha256_file(weights) if weights is not None and weights.is_file() else None,
        "classes": [config.label(i) for i in range(config.num_classes)],
        "backbone": config.backbone,
        "fusion": config.fusion,
        "sampling": config.sampling.model_dump(mode="json"),
    }
