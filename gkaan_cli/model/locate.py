"""Which checkpoint folder a model spec names.

A model is named by nothing (the registry's default), a local folder, a training run folder
(its ``best/``, else ``last/``), a name in ``weights/registry.json`` or a Hub id
``org/name[@revision]`` (downloaded into the Hub cache when needed).
"""

from __future__ import annotations

from pathlib import Path

from ..errors import MissingWeightsError, UnknownModelError, UsageError
from .checkpoint import checkpoint_dir
from .hub_client import download_checkpoint, parse_hub_id
from .registry import REGISTRY_FILE, RegistryEntry, check_sha256, load_registry, weights_dir

__all__ = ["pull_checkpoint", "resolve_checkpoint"]


def resolve_checkpoint(spec: str | Path | None, *, revision: str | None = None) -> Path:
    """A local checkpoint folder for ``spec``, downloading it from the Hub when needed.

    Args:
        spec: ``None`` (the registry default), an existing path, a registry name, or a Hub
            id ``org/name`` / ``org/name@revision``.
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
    path = Path(spec).expanduser()
    if path.exists():
        _refuse_revision(spec, revision)
        return checkpoint_dir(path)
    if spec in registry.models:
        _refuse_revision(spec, revision)
        return _resolve_entry(spec, registry.models[spec])
    hub_id = parse_hub_id(spec)
    if hub_id is None:
        names = ", ".join(sorted(registry.models)) or "none"
        raise UnknownModelError(
            spec,
            f"not an existing path, a registered model (registered: {names}) "
            "or a Hub id org/name[@revision]",
        )
    repo_id, pinned = hub_id
    if pinned and revision and pinned != revision:
        raise UsageError(f"{spec}: conflicting revisions '{pinned}' and '{revision}'")
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
