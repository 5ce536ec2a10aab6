"""Which checkpoint folder a model spec names.

A model is named by nothing (the registry's default), a local folder, a training run folder
(its ``best/``, else ``last/``), a name in ``weights/registry.json`` or a Hub id
``org/name[@revision]`` (downloaded into the Hub cache when needed).
"""

from __future__ import annotations

from pathlib import Path

from ..errors import MissingWeightsError, UnknownModelError, UsageError
from ..fileio import display_path
from .checkpoint import checkpoint_dir
from .hub_client import download_checkpoint, parse_hub_id
from .registry import REGISTRY_FILE, RegistryEntry, check_sha256, load_registry, weights_dir

__all__ = ["pull_checkpoint", "resolve_checkpoint"]


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
