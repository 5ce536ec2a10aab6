"""The model registry: ``weights/registry.json`` names the models gkaan knows by name.

Each entry is a folder under ``weights/`` or a Hub repository pinned to a revision, with the
sha256 of every file a checkpoint is loaded from (``config.json`` and ``model.safetensors``);
the registry also names the default model. A registered model loads only when all its files
match::

    "kth-lite0": {
      "path": "kth-lite0",
      "sha256": {"config.json": "<hex>", "model.safetensors": "<hex>"},
      "description": "..."
    }

After retraining a registered model, recompute its hashes with
``python weights/update_registry.py NAME`` (:func:`update_registry_hashes`).
"""

from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError, model_validator

from ..errors import BadCheckpointError, UsageError, validation_problems
from ..fileio import atomic_write_text, sha256_file
from .checkpoint import CHECKPOINT_FILES, WEIGHTS_FILE, checkpoint_dir
from .hub_client import cached_snapshot, parse_hub_id

__all__ = [
    "REGISTRY_FILE",
    "Registry",
    "RegistryEntry",
    "check_file_sha256",
    "check_sha256",
    "checkpoint_hashes",
    "load_registry",
    "registry_status",
    "update_registry_hashes",
    "weights_dir",
]

REGISTRY_FILE = "registry.json"
_HEX64 = re.compile(r"[0-9a-f]{64}")


class RegistryEntry(BaseModel):
    """One registered model: a folder under ``weights/`` or a pinned Hub repository."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    path: str | None = None
    repo: str | None = None
    revision: str | None = None
    #: sha256 of every checkpoint file (config.json and model.safetensors), lower-case hex.
    sha256: dict[str, str] | None = None
    description: str = ""

    @model_validator(mode="after")
    def _one_source(self) -> RegistryEntry:
        if (self.path is None) == (self.repo is None):
            raise ValueError("give exactly one of 'path' or 'repo'")
        if self.repo is not None and (self.revision is None or self.sha256 is None):
            raise ValueError("a 'repo' entry must pin 'revision' and 'sha256'")
        if self.repo is not None and parse_hub_id(f"{self.repo}@{self.revision}") is None:
            raise ValueError(f"'{self.repo}@{self.revision}' is not a valid Hub id and revision")
        if self.path is not None:
            parts = Path(self.path).parts
            if Path(self.path).is_absolute() or ".." in parts or not parts:
                raise ValueError(f"path {self.path!r} must be a folder inside weights/")
        if self.sha256 is not None:
            if set(self.sha256) != set(CHECKPOINT_FILES):
                raise ValueError(
                    f"sha256 must give exactly {', '.join(CHECKPOINT_FILES)} (the files loaded)"
                )
            bad = [name for name, digest in self.sha256.items() if not _HEX64.fullmatch(digest)]
            if bad:
                raise ValueError(f"sha256 of {', '.join(bad)} is not 64 lower-case hex digits")
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
        return Registry.model_validate_json(path.read_bytes())  # invalid UTF-8: a ValidationError
    except OSError as err:
        raise BadCheckpointError(
            path, f"unreadable model registry ({err.strerror or err})"
        ) from None
    except ValidationError as err:
        reason = f"invalid model registry: {validation_problems(err, whole='registry')}"
        raise BadCheckpointError(path, reason) from err


def checkpoint_hashes(folder: str | Path) -> dict[str, str]:
    """The sha256 of each file a checkpoint is loaded from, as ``registry.json`` holds them."""
    folder = Path(folder)
    return {name: sha256_file(folder / name) for name in CHECKPOINT_FILES}


def check_sha256(name: str, entry: RegistryEntry, folder: Path) -> Path:
    """Return ``folder`` when every checkpoint file matches the sha256 ``entry`` pins (if any).

    Raises:
        BadCheckpointError: a file differs from the registered one (names the file).
    """
    for file_name, expected in (entry.sha256 or {}).items():
        check_file_sha256(
            folder / file_name,
            expected,
            f"registry entry '{name}'",
            "restore it or download it again",
        )
    return folder


def check_file_sha256(path: Path, expected: str, record: str, remedy: str) -> None:
    """Refuse ``path`` unless its sha256 is ``expected`` (what ``record`` says), with one line
    naming the file, the record and ``remedy``.

    Raises:
        BadCheckpointError: the file is unreadable or its bytes differ.
    """
    try:
        found = sha256_file(path)
    except OSError as error:
        raise BadCheckpointError(path, f"unreadable ({error.strerror or error})") from None
    if found != expected:
        raise BadCheckpointError(
            path,
            f"sha256 does not match {record} (expected {expected}): the file is corrupt or "
            f"was replaced; {remedy}",
        )


def update_registry_hashes(name: str) -> dict[str, str]:
    """Recompute the sha256 of the local registered model ``name`` (after retraining it)
    and rewrite ``registry.json``; returns the new hashes.

    Raises:
        UsageError: ``name`` is not a local (``path``) entry of the registry.
    """
    path = weights_dir() / REGISTRY_FILE
    registry = load_registry()
    entry = registry.models.get(name)
    if entry is None or entry.path is None:
        raise UsageError(f"{path}: no local model named '{name}'")
    hashes = checkpoint_hashes(checkpoint_dir(weights_dir() / entry.path))
    raw = json.loads(path.read_text(encoding="utf-8"))
    raw["models"][name]["sha256"] = hashes
    Registry.model_validate(raw)
    atomic_write_text(path, json.dumps(raw, indent=2) + "\n")
    return hashes


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
