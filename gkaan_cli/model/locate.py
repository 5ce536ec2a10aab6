"""Which checkpoint folder a model spec names.

A model is named by nothing (the registry's default), a local folder, a training run folder
(its ``best/``, else ``last/``), a name in ``weights/registry.json`` or a Hub id
``org/name[@revision]`` (downloaded into the Hub cache when needed).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from ..errors import MissingWeightsError, UnknownModelError, UsageError
from ..fileio import display_path, sha256_file
from .checkpoint import CHECKPOINT_FILES, WEIGHTS_FILE, checkpoint_dir
from .hub_client import download_checkpoint, parse_hub_id
from .registry import REGISTRY_FILE, RegistryEntry, check_sha256, load_registry, weights_dir

__all__ = [
    "CheckpointRef",
    "identify_checkpoint",
    "locate_checkpoint",
    "pull_checkpoint",
    "resolve_checkpoint",
]

_HUB_PREFIX = "models--"

#: Where a checkpoint came from: a registry name, a local folder or a Hub snapshot.
CheckpointKind = Literal["registry", "folder", "hub"]


@dataclass(frozen=True)
class CheckpointRef:
    """A model spec resolved once (:func:`locate_checkpoint`): the checkpoint's identity,
    carried by the model it loads and by every result and report made with it.

    Attributes:
        spec: what named it (a registry name, path or Hub id, ``@revision`` included).
        folder: the local checkpoint folder (``config.json`` + ``model.safetensors``).
        name: the name results show: the registry name, the folder, or ``org/name@commit``.
        kind: ``registry``, ``folder`` or ``hub``.
        revision: the registry entry's or Hub snapshot's commit, else None.
        sha256: of ``model.safetensors``.
    """

    spec: str
    folder: Path
    name: str
    kind: CheckpointKind
    revision: str | None
    sha256: str

    @property
    def files(self) -> list[Path]:
        """The checkpoint's files: inputs that no output may replace."""
        return [self.folder / name for name in CHECKPOINT_FILES]


def locate_checkpoint(spec: str | Path | None, *, revision: str | None = None) -> CheckpointRef:
    """Resolve ``spec`` (see :func:`resolve_checkpoint`) to a :class:`CheckpointRef`: the
    folder, the name results show, and the weights' sha256, each found once."""
    folder = resolve_checkpoint(spec, revision=revision)
    if spec is None:
        spec = load_registry().default
    named = f"{spec}@{revision}" if revision else str(spec)
    name, kind, pinned = identify_checkpoint(str(spec), folder)
    return CheckpointRef(
        spec=named,
        folder=folder,
        name=name,
        kind=kind,
        revision=pinned,
        sha256=sha256_file(folder / WEIGHTS_FILE),
    )


def identify_checkpoint(spec: str | None, folder: Path) -> tuple[str, CheckpointKind, str | None]:
    """``(name, kind, revision)`` of a checkpoint loaded from ``spec`` into ``folder``."""
    registry = load_registry()
    if spec is not None and spec in registry.models:
        return (spec, "registry", registry.models[spec].revision)
    resolved = folder.resolve()
    for name, entry in registry.models.items():
        if entry.path is not None and (weights_dir() / entry.path).resolve() == resolved:
            return (name, "registry", None)
    snapshots = resolved.parent
    if snapshots.name == "snapshots" and snapshots.parent.name.startswith(_HUB_PREFIX):
        repo = snapshots.parent.name[len(_HUB_PREFIX) :].replace("--", "/", 1)
        return (f"{repo}@{resolved.name}", "hub", resolved.name)
    return (str(folder), "folder", None)


def resolve_checkpoint(spec: str | Path | None, *, revision: str | None = None) -> Path:
    """A local checkpoint folder for ``spec``, downloading it from the Hub when needed.

    Args:
        spec: ``None`` (the registry default), a registry name, an existing path, or a Hub
            id ``org/name`` / ``org/name@revision``. A registry name wins over a folder of
            the same name in the working directory (write ``./NAME`` for the folder).
        revision: branch, tag or commit for a Hub id (same as ``@revision``).
    """
    registry = load_registry()
    if spec is None:
        if registry.default is None:
            raise UsageError(
                f"no model given and {weights_dir() / REGISTRY_FILE} names no default: "
                "pass --model DIR, a registered name or org/name"
            )
        spec = registry.default
    spec = str(spec)
    if spec in registry.models:  # a folder of that name in the cwd needs ./NAME to be used
        _refuse_revision(spec, revision)
        return _resolve_entry(spec, registry.models[spec])
    path = Path(spec).expanduser()
    if path.exists():
        _refuse_revision(spec, revision)
        return checkpoint_dir(path)
    hub_id = parse_hub_id(spec)
    if hub_id is None:
        names = ", ".join(sorted(registry.models)) or "none"
        raise UnknownModelError(
            spec,
            f"not an existing path, a registered model (registered: {names}) "
            "or a Hub id org/name[@revision]",
        )
    repo_id, pinned = hub_id
    parent = Path(repo_id.split("/", 1)[0]).expanduser()
    if parent.is_dir():  # `runs/ps7` mistyped: a path in a folder that exists, not the Hub
        raise UnknownModelError(
            spec,
            f"no such model folder ({display_path(parent)}/ exists, {display_path(path)} does "
            "not); a Hub id org/name is only looked up when no folder org exists here",
        )
    if pinned and revision and pinned != revision:
        raise UsageError(f"{spec}: conflicting revisions '{pinned}' and '{revision}'")
    if revision is not None and parse_hub_id(f"{repo_id}@{revision}") is None:
        raise UsageError(f"--revision {revision!r}: not a valid branch, tag or commit")
    return download_checkpoint(repo_id, pinned or revision)


def pull_checkpoint(repo_id: str, revision: str | None = None) -> Path:
    """Download (or find in the cache) a Hub checkpoint; see :func:`resolve_checkpoint`."""
    return resolve_checkpoint(repo_id, revision=revision)


def _refuse_revision(spec: str, revision: str | None) -> None:
    if revision is not None:
        raise UsageError(f"{spec}: --revision applies to Hub ids (org/name), not to local models")


def _resolve_entry(name: str, entry: RegistryEntry) -> Path:
    if entry.path is not None:
        folder = weights_dir() / entry.path
        if not folder.exists():
            raise MissingWeightsError(
                f"{folder}: registered model '{name}' has no checkpoint yet: train one into "
                "this folder, or pass --model DIR or org/name"
            )
        found = checkpoint_dir(folder)
    else:
        found = download_checkpoint(str(entry.repo), entry.revision)
    return check_sha256(name, entry, found)
