"""Which model produced a result: the ``model`` block of predictions and reports.

A prediction file or an evaluation report read a month later must say which checkpoint made
it (docs/predict.md#model-block): its name (registry name, folder, or Hub ``org/name@commit``),
the SHA-256 of its ``model.safetensors``, its classes, backbone and sampling, and the device,
precision and video decoding it ran with.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..config import SamplingConfig
from ..fileio import sha256_file
from ..words import plural
from .checkpoint import WEIGHTS_FILE
from .locate import identify_checkpoint

if TYPE_CHECKING:
    from .gkaan import GKAAN

__all__ = ["describe_model", "model_summary", "model_words"]


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
        model: the network; :meth:`GKAAN.from_pretrained` records its
            :class:`~gkaan_cli.model.locate.CheckpointRef` (name, folder, sha256), used as is.
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
    ref = getattr(model, "ref", None)  # the CheckpointRef from_pretrained resolved
    if ref is not None and source is None and folder in (None, ref.folder):
        name, kind, revision, folder = ref.name, ref.kind, ref.revision, ref.folder
        digest: str | None = ref.sha256
    else:
        folder = folder if folder is not None else getattr(model, "checkpoint_path", None)
        spec = str(source) if source is not None else getattr(model, "source", None)
        if folder is None:
            name, kind, revision = (spec or "unsaved", "unsaved", None)
        else:
            name, kind, revision = identify_checkpoint(spec, folder)
        weights = folder / WEIGHTS_FILE if folder is not None else None
        digest = sha256_file(weights) if weights is not None and weights.is_file() else None
    return {
        "name": name,
        "kind": kind,
        "path": str(folder) if folder is not None else None,
        "revision": revision,
        "sha256": digest,
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
    count = plural(int(block["num_classes"]), "class")
    names = ", ".join(block["classes"])
    if len(names) <= width:
        count = f"{count}: {names}"
    return f"{head} ({count}; {'; '.join(tail)})"


def model_words(block: Mapping[str, Any]) -> list[tuple[str, str]]:
    """The ``model`` block as (heading, words) rows for a page people read: no Python
    values, no empty fields (``revision None``), e.g. ``("sampling", "dense: 30 consecutive
    frames every 15 frames, at most 20 clips per video")``, ``("out of distribution", "160
    training clips, 5 nearest, limit 1.0x")``. JSON keeps the block as it is."""
    rows: list[tuple[str, str]] = []
    name = str(block.get("name"))
    revision = block.get("revision")
    kinds = {"registry": "embedded model", "folder": "folder", "hub": "Hugging Face Hub"}
    where = kinds.get(str(block.get("kind")), "in memory, not saved")
    rows.append(("name", f"{name} ({where}{f', revision {revision}' if revision else ''})"))
    if block.get("path") and block.get("path") != name:
        rows.append(("folder", str(block["path"])))
    if block.get("sha256"):
        rows.append(("weights sha256", str(block["sha256"])))
    classes = list(block.get("classes") or [])
    rows.append((plural(len(classes), "class"), ", ".join(str(c) for c in classes)))
    if block.get("backbone"):
        network = f"{block['backbone']} trunk, {block.get('fusion')} fusion"
        if block.get("motion") not in (None, "none"):
            network += f", motion stream ({block['motion']})"
        rows.append(("network", network))
    if isinstance(block.get("sampling"), Mapping):
        rows.append(("sampling", SamplingConfig.model_validate(block["sampling"]).describe()))
    ood = block.get("ood")
    if isinstance(ood, Mapping):
        said = f"{ood.get('bank_clips')} training clips, {ood.get('k')} nearest"
        if ood.get("threshold") is not None:
            said += f", limit {float(ood['threshold']):g}x"
        rows.append(("out of distribution", said))
    else:
        rows.append(("out of distribution", NO_OOD_WORDS))
    run = [str(block[k]) for k in ("device", "precision") if block.get(k)]
    if block.get("decode"):
        run.append(f"video decoded on {block['decode']}")
    if run:
        rows.append(("ran on", ", ".join(run)))
    return rows


#: What a page says when a model carries no OOD statistics, and how to get them.
NO_OOD_WORDS = (
    "no verdict: the model carries no statistics of its training clips (train on videos of "
    "at least two groups, e.g. with --split-by, to get them)"
)
