"""The model registry: ``weights/registry.json`` names the models gkaan knows by name.

Each entry is a folder under ``weights/`` or a Hub repository pinned to a revision and the
sha256 of its ``model.safetensors``; the registry also names the default model.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError, model_validator

from ..errors import BadCheckpointError, validation_problems
from ..fileio import sha256_file
from .checkpoint import WEIGHTS_FILE
from .hub_client import cached_snapshot

__all__ = [
    "REGISTRY_FILE",
    "Registry",
    "RegistryEntry",
    "check_sha256",
    "load_registry",
    "registry_status",
    "weights_dir",
]

REGISTRY_FILE = "registry.json"


class RegistryEntry(BaseModel):
    """One registered model: a folder under ``weights/`` or a pinned Hub repository."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    path: str | None = None
    repo: str | None = None
    revision: str | None = None
    sha256: str | None = None
    description: str = ""

    @model_validator(mode="after")
    def _one_source(self) -> RegistryEntry:
        if (self.path is None) == (self.repo is None):
            raise ValueError("give exactly one of 'path' or 'repo'")
        if self.repo is not None and (self.revision is None or self.sha256 is None):
            raise ValueError("a 'repo' entry must pin 'revision' and 'sha256'")
        return self

    @property
    def source(self) -> str:
        """``weights/<path>`` or ``org/name@revision``."""
        if self.path is not None:
            return str(weights_dir() / self.path)
        return f"{self.repo}@{self.revision}"


class Registry(BaseModel):
    """``weights/registry.json``: the default model and the registered names."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    default: str | None = None
    models: dict[str, RegistryEntry] = {}

    @model_validator(mode="after")
    def _default_registered(self) -> Registry:
        if self.default is not None and self.default not in self.models:
            raise ValueError(f"default '{self.default}' is not one of the registered models")
        return self


def weights_dir() -> Path:
    """The ``weights/`` folder: ``$GKAAN_WEIGHTS_DIR`` when set, else the source checkout's
    (editable install), else ``<prefix>/share/gkaan/weights`` (where a wheel installs it)."""
    override = os.environ.get("GKAAN_WEIGHTS_DIR")
    if override:
        return Path(override).expanduser()
    checkout = Path(__file__).resolve().parents[2] / "weights"
    if (checkout / REGISTRY_FILE).is_file():
        return checkout
    return Path(sys.prefix) / "share" / "gkaan" / "weights"


def load_registry() -> Registry:
    """Read ``weights_dir() / registry.json`` (an empty registry when the file is absent)."""
    path = weights_dir() / REGISTRY_FILE
    if not path.is_file():
        return Registry()
    try:
        return Registry.model_validate_json(path.read_text(encoding="utf-8"))
    except ValidationError as err:
        reason = f"invalid model registry: {validation_problems(err, whole='registry')}"
        raise BadCheckpointError(path, reason) from err


def check_sha256(name: str, entry: RegistryEntry, folder: Path) -> Path:
    """Return ``folder`` when its weights match the sha256 pinned by ``entry`` (if any).

    Raises:
        BadCheckpointError: the weights file differs from the registered one.
    """
    weights = folder / WEIGHTS_FILE
    if entry.sha256 is not None and sha256_file(weights) != entry.sha256.lower():
        raise BadCheckpointError(
            weights,
            f"sha256 does not match registry entry '{name}' (expected {entry.sha256}): "
            "the file is corrupt or was replaced; delete it and download again",
        )
    return folder


def registry_status() -> dict[str, dict[str, Any]]:
    """Each registered model's source, description and whether it is available offline."""
    registry = load_registry()
    status: dict[str, dict[str, Any]] = {}
    for name, entry in registry.models.items():
        if entry.path is not None:
            available = (weights_dir() / entry.path / WEIGHTS_FILE).is_file()
        else:
            snapshot = cached_snapshot(str(entry.repo), str(entry.revision))
            available = (snapshot / WEIGHTS_FILE).is_file()
        status[name] = {
            "source": entry.source,
            "description": entry.description,
            "available": available,
            "default": name == registry.default,
        }
    return status
