"""Which model produced a result: the ``model`` block of predictions and reports.

A prediction file or an evaluation report read a month later must say which checkpoint made
it (docs/predict.md#model-block): its name (registry name, folder, or Hub ``org/name@commit``),
the SHA-256 of its ``model.safetensors``, its classes, backbone and sampling, and the device,
precision and video decoding it ran with.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..fileio import sha256_file
from .checkpoint import WEIGHTS_FILE
from .registry import load_registry, weights_dir

if TYPE_CHECKING:
    from .gkaan import GKAAN

__all__ = ["describe_model", "model_summary"]

_HUB_PREFIX = "models--"


def describe_model(
    model: GKAAN,
    source: str | Path | None = None,
    folder: Path | None = None,
    *,
    device: str | None = None,
    precision: str | None = None,
    decode: str | None = None,
) -> dict[str, Any]:
    """The ``model`` block: a JSON-ready description of ``model`` and where it came from.

    Args:
        model: the network; :meth:`GKAAN.from_pretrained` records its spec and folder.
        source: the spec the model was loaded from (a registry name, folder or Hub id);
            default: the one ``from_pretrained`` recorded.
        folder: the checkpoint folder it was read from; default: the one ``from_pretrained``
            recorded (``None`` for a model held only in memory).
        device: the compute device it runs on, when known.
        precision: ``fp32``, ``bf16`` or ``fp16``, when known.
        decode: where video is decoded, ``cpu`` or ``cuda``, when known.

    Returns:
        ``name``, ``kind`` (``registry``, ``folder``, ``hub`` or ``unsaved``), ``path``,
        ``revision`` (Hub commit or null), ``sha256`` (of ``model.safetensors``),
        ``num_classes``, ``classes``, ``backbone``, ``fusion``, ``motion``, ``sampling``,
        ``ood`` (null without OOD statistics, else their size), ``device``, ``precision``,
        ``decode``.
    """
    config = model.config
    if folder is None:
        folder = getattr(model, "checkpoint_path", None)
    spec = str(source) if source is not None else getattr(model, "source", None)
    name, kind, revision = _identify(spec, folder)
    weights = folder / WEIGHTS_FILE if folder is not None else None
    return {
        "name": name,
        "kind": kind,
        "path": str(folder) if folder is not None else None,
        "revision": revision,
        "sha256": sha256_file(weights) if weights is not None and weights.is_file() else None,
        "num_classes": config.num_classes,
        "classes": [config.label(i) for i in range(config.num_classes)],
        "backbone": config.backbone,
        "fusion": config.fusion,
        "motion": config.motion,
        "sampling": config.sampling.model_dump(mode="json"),
        "ood": None
        if model.ood is None
        else {"bank_clips": int(model.ood.bank.shape[0]), "k": int(model.ood.k)},
        "device": device,
        "precision": precision,
        "decode": decode,
    }


def model_summary(block: dict[str, Any], *, width: int = 80) -> str:
    """One line for humans: ``model: NAME (K classes: a, b, ...; backbone; device; precision)``.

    The class names are listed when they fit in ``width`` characters; ``cuda decode`` ends
    the line when video is decoded on the GPU.
    """
    head = f"model: {block['name']}"
    tail = [block["backbone"]]
    if block.get("motion", "none") != "none":
        tail.append(f"motion {block['motion']}")
    tail += [str(block[key]) for key in ("device", "precision") if block.get(key)]
    if block.get("decode") not in (None, "cpu"):
        tail.append(f"{block['decode']} decode")
    count = f"{block['num_classes']} classes"
    names = ", ".join(block["classes"])
    if len(names) <= width:
        count = f"{count}: {names}"
    return f"{head} ({count}; {'; '.join(tail)})"


def _identify(spec: str | None, folder: Path | None) -> tuple[str, str, str | None]:
    """``(name, kind, revision)`` of a model loaded from ``spec`` into ``folder``."""
    if folder is None:
        return (spec or "unsaved", "unsaved", None)
    registry = load_registry()
    if spec is not None and spec in registry.models:
        entry = registry.models[spec]
        return (spec, "registry", entry.revision)
    resolved = folder.resolve()
    for name, entry in registry.models.items():
        if entry.path is not None and (weights_dir() / entry.path).resolve() == resolved:
            return (name, "registry", None)
    snapshots = resolved.parent
    if snapshots.name == "snapshots" and snapshots.parent.name.startswith(_HUB_PREFIX):
        repo = snapshots.parent.name[len(_HUB_PREFIX) :].replace("--", "/", 1)
        return (f"{repo}@{resolved.name}", "hub", resolved.name)
    return (str(folder), "folder", None)
