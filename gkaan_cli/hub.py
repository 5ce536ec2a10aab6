"""Where checkpoints come from: the weights registry, local folders and the Hugging Face Hub.

A checkpoint is a folder holding ``config.json`` (a serialised :class:`GKAANConfig`) and
``model.safetensors`` (DESIGN.md section 6). Pickle files are refused: they can run code.
A model is named by a folder, a training run folder (its ``best/`` or ``last/``), a name in
``weights/registry.json`` or a Hub id ``org/name[@revision]``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from huggingface_hub.errors import (
    GatedRepoError,
    HfHubHTTPError,
    HFValidationError,
    HTTPError,
    LocalEntryNotFoundError,
    OfflineModeIsEnabled,
    RemoteEntryNotFoundError,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)
from pydantic import BaseModel, ConfigDict, ValidationError, model_validator

from .config import GKAANConfig
from .errors import (
    PICKLE_REASON,
    PICKLE_SUFFIXES,
    BadCheckpointError,
    GkaanError,
    HubError,
    MissingWeightsError,
    UsageError,
)
from .fileio import sha256_file

__all__ = [
    "CHECKPOINT_FILES",
    "CONFIG_FILE",
    "WEIGHTS_FILE",
    "Registry",
    "RegistryEntry",
    "checkpoint_dir",
    "hub_cache_dir",
    "is_offline",
    "load_registry",
    "model_card",
    "pull_checkpoint",
    "push_checkpoint",
    "registry_status",
    "resolve_checkpoint",
    "sha256_file",
    "weights_dir",
]

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
#: The only files a checkpoint is made of, downloaded and uploaded.
CHECKPOINT_FILES = (CONFIG_FILE, WEIGHTS_FILE)
#: Sub-folders of a training run that hold checkpoints, preferred first.
RUN_SUBDIRS = ("best", "last")
METRICS_FILES = ("report.json", "metrics.json")
REGISTRY_FILE = "registry.json"

_HUB_ID = re.compile(r"(?P<repo>[A-Za-z0-9][\w.-]*/[A-Za-z0-9][\w.-]*)(?:@(?P<rev>[\w./-]+))?")
_TRUE = frozenset({"1", "ON", "YES", "TRUE"})
#: What huggingface_hub raises for Hub, cache and network failures.
_HUB_ERRORS = (OSError, HFValidationError, HTTPError)


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
    checkout = Path(__file__).resolve().parents[1] / "weights"
    if (checkout / REGISTRY_FILE).is_file():
        return checkout
    return Path(sys.prefix) / "share" / "gkaan" / "weights"


def hub_cache_dir() -> Path:
    """The huggingface_hub cache, read from the environment now (HF_HUB_CACHE, HF_HOME)."""
    cache = os.environ.get("HF_HUB_CACHE") or os.environ.get("HUGGINGFACE_HUB_CACHE")
    if cache:
        return Path(cache).expanduser()
    home = os.environ.get("HF_HOME")
    if home:
        return Path(home).expanduser() / "hub"
    from huggingface_hub import constants

    return Path(constants.HF_HUB_CACHE)


def is_offline() -> bool:
    """Whether HF_HUB_OFFLINE is set (read now, not at import time)."""
    from huggingface_hub import constants

    flag = os.environ.get("HF_HUB_OFFLINE", "").upper() in _TRUE
    return flag or constants.is_offline_mode()


def load_registry() -> Registry:
    """Read ``weights_dir() / registry.json`` (an empty registry when the file is absent)."""
    path = weights_dir() / REGISTRY_FILE
    if not path.is_file():
        return Registry()
    try:
        return Registry.model_validate_json(path.read_text(encoding="utf-8"))
    except ValidationError as err:
        reasons = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in err.errors())
        raise BadCheckpointError(path, f"invalid model registry: {reasons}") from err


def registry_status() -> dict[str, dict[str, Any]]:
    """Each registered model's source, description and whether it is available offline."""
    registry = load_registry()
    status: dict[str, dict[str, Any]] = {}
    for name, entry in registry.models.items():
        if entry.path is not None:
            available = (weights_dir() / entry.path / WEIGHTS_FILE).is_file()
        else:
            repo_cache = hub_cache_dir() / f"models--{str(entry.repo).replace('/', '--')}"
            available = (repo_cache / "snapshots" / str(entry.revision) / WEIGHTS_FILE).is_file()
        status[name] = {
            "source": entry.source,
            "description": entry.description,
            "available": available,
            "default": name == registry.default,
        }
    return status


def checkpoint_dir(source: str | Path) -> Path:
    """The checkpoint folder that ``source`` names: itself, its ``best/``/``last/`` (a
    training run), or the folder of a ``model.safetensors`` file.

    Raises :class:`BadCheckpointError` for pickle files and folders that lack
    ``config.json`` or ``model.safetensors``.
    """
    path = Path(source).expanduser()
    if path.is_file():
        if path.suffix.lower() in PICKLE_SUFFIXES:
            raise BadCheckpointError(path, PICKLE_REASON)
        if path.name != WEIGHTS_FILE:
            raise BadCheckpointError(
                path, f"expected a checkpoint folder ({CONFIG_FILE} + {WEIGHTS_FILE}), got a file"
            )
        path = path.parent
    if not (path / WEIGHTS_FILE).is_file():
        runs = [path / sub for sub in RUN_SUBDIRS if (path / sub / WEIGHTS_FILE).is_file()]
        path = runs[0] if runs else path
    missing = [name for name in CHECKPOINT_FILES if not (path / name).is_file()]
    if not missing:
        return path
    pickles = sorted(p.name for p in path.iterdir() if p.suffix.lower() in PICKLE_SUFFIXES)
    if pickles and WEIGHTS_FILE in missing:
        raise BadCheckpointError(path / pickles[0], PICKLE_REASON)
    raise BadCheckpointError(path, f"not a gkaan checkpoint: missing {', '.join(missing)}")


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
    match = _HUB_ID.fullmatch(spec)
    if match is None:
        names = ", ".join(sorted(registry.models)) or "none"
        raise BadCheckpointError(
            spec,
            f"not an existing path, a registered model (registered: {names}) "
            "or a Hub id org/name[@revision]",
        )
    if match["rev"] and revision and match["rev"] != revision:
        raise UsageError(f"{spec}: conflicting revisions '{match['rev']}' and '{revision}'")
    return _download(match["repo"], match["rev"] or revision)


def pull_checkpoint(repo_id: str, revision: str | None = None) -> Path:
    """Download (or find in the cache) a Hub checkpoint; see :func:`resolve_checkpoint`."""
    return resolve_checkpoint(repo_id, revision=revision)


def push_checkpoint(
    source: str | Path,
    repo_id: str,
    *,
    private: bool = False,
    revision: str | None = None,
    token: str | None = None,
) -> str:
    """Upload a checkpoint to the Hub as exactly ``config.json``, ``model.safetensors`` and a
    generated ``README.md`` model card; returns the repository URL.

    Args:
        source: a checkpoint folder or a training run folder (``best/`` preferred to ``last/``).
        repo_id: ``org/name``; the repository is created when missing.
        private: create the repository as private.
        revision: branch to commit to (created when missing); default ``main``.
        token: Hub token; default HF_TOKEN or the ``hf auth login`` token.
    """
    if _HUB_ID.fullmatch(repo_id) is None or "@" in repo_id:
        raise UsageError(f"{repo_id}: not a Hub repository id of the form org/name")
    directory = checkpoint_dir(source)
    config_path = directory / CONFIG_FILE
    config = _read_json(config_path)
    try:
        card = model_card(config, _find_metrics(directory), repo_id=repo_id)
    except ValidationError as err:
        reason = f"invalid model config: {err.errors()[0]['msg']}"
        raise BadCheckpointError(config_path, reason) from err
    from huggingface_hub import HfApi

    api = HfApi(token=token)
    with tempfile.TemporaryDirectory(prefix="gkaan-push-") as staging:
        for name in CHECKPOINT_FILES:
            shutil.copyfile(directory / name, Path(staging) / name)
        (Path(staging) / "README.md").write_text(card, encoding="utf-8")
        try:
            url = str(api.create_repo(repo_id, private=private, exist_ok=True))
            if revision is not None:
                api.create_branch(repo_id, branch=revision, exist_ok=True)
            api.upload_folder(
                repo_id=repo_id,
                folder_path=staging,
                revision=revision,
                commit_message=f"Upload gkaan checkpoint {directory.name}",
            )
        except _HUB_ERRORS as err:
            raise _hub_error(err, repo_id, writing=True) from err
    return f"{url}/tree/{revision}" if revision else url


def model_card(
    config: Mapping[str, Any] | GKAANConfig,
    metrics: Mapping[str, Any] | None = None,
    *,
    repo_id: str | None = None,
) -> str:
    """A Hub README.md for a checkpoint: labels, backbone, fusion, preprocessing, sampling,
    evaluation metrics (when given) and a usage snippet.

    Args:
        config: the checkpoint's ``config.json`` (validated as :class:`GKAANConfig`).
        metrics: ``report.json``/``metrics.json`` content; nested scalars are flattened.
        repo_id: the Hub id used in the usage snippet.
    """
    cfg = config if isinstance(config, GKAANConfig) else GKAANConfig.model_validate(config)
    pre, sampling = cfg.preprocess, cfg.sampling
    labels = [cfg.label(i) for i in range(cfg.num_classes)]
    rows = [
        ("Backbone", cfg.backbone),
        ("Fusion", f"{cfg.fusion} (streams {', '.join(s.upper() for s in cfg.streams)})"),
        ("Attention", f"SA {cfg.sa_variant}, LA {cfg.la_variant} (hidden {cfg.la_hidden})"),
        ("Temporal model", f"SRU, {cfg.sru_layers} layers x {cfg.sru_hidden}"),
        ("Input", f"frames resized to {pre.resize[1]}x{pre.resize[0]}, centre crop {pre.crop}"),
        ("Sampling", _describe_sampling(cfg)),
        ("Sampling seed", str(sampling.seed)),
    ]
    lines = [
        "---",
        "library_name: gkaan",
        "pipeline_tag: video-classification",
        "tags:",
        "- action-recognition",
        "- video-classification",
        "- gkaan",
        "---",
        "",
        "# GKAAN action recognition model",
        "",
        "Global and Local Knowledge-Aware Attention Network (Zheng et al., IEEE TNNLS 2020) "
        f"classifying video clips into {cfg.num_classes} actions.",
        "",
        "## Model",
        "",
        "| Setting | Value |",
        "|---|---|",
        *(f"| {key} | {value} |" for key, value in rows),
        "",
        f"## Labels ({len(labels)})",
        "",
        ", ".join(f"`{label}`" for label in labels),
        "",
    ]
    flat = _flatten(metrics or {})
    if flat:
        lines += ["## Evaluation", "", "| Metric | Value |", "|---|---|"]
        lines += [f"| {key} | {value} |" for key, value in flat.items()]
        lines.append("")
    model_arg = repo_id or "path/to/checkpoint"
    lines += [
        "## Usage",
        "",
        "```bash",
        "pip install gkaan",
        f"gkaan predict video.mp4 --model {model_arg}",
        "```",
        "",
    ]
    return "\n".join(lines)


def _describe_sampling(cfg: GKAANConfig) -> str:
    s = cfg.sampling
    if s.mode == "dense":
        return (
            f"dense: {s.clip_len} consecutive frames every {s.stride} frames, "
            f"at most {s.max_clips} clips per video"
        )
    if s.mode == "segments":
        return f"segments: {s.num_segments} segments x {s.frames_per_segment} frames"
    return f"uniform: {s.num_clips} clips of {s.clip_len} consecutive frames"


def _flatten(metrics: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    """Scalars of a nested mapping as ``{"a.b": "value"}``; lists are left out."""
    flat: dict[str, str] = {}
    for key, value in metrics.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(_flatten(value, f"{name}."))
        elif isinstance(value, float):
            flat[name] = f"{value:.4g}"
        elif isinstance(value, (int, str, bool)):
            flat[name] = str(value)
    return flat


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise BadCheckpointError(path, f"cannot read JSON: {err}") from err
    if not isinstance(data, dict):
        raise BadCheckpointError(path, "expected a JSON object")
    return data


def _find_metrics(directory: Path) -> dict[str, Any] | None:
    """``report.json``/``metrics.json`` in the checkpoint folder or its training run."""
    places = [directory] + ([directory.parent] if directory.name in RUN_SUBDIRS else [])
    for place in places:
        for name in METRICS_FILES:
            if (place / name).is_file():
                return _read_json(place / name)
    return None


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
        found = _download(str(entry.repo), entry.revision)
    weights = found / WEIGHTS_FILE
    if entry.sha256 is not None and sha256_file(weights) != entry.sha256.lower():
        raise BadCheckpointError(
            weights,
            f"sha256 does not match registry entry '{name}' (expected {entry.sha256}): "
            "the file is corrupt or was replaced; delete it and download again",
        )
    return found


def _download(repo_id: str, revision: str | None) -> Path:
    """Fetch exactly config.json + model.safetensors of one commit into the Hub cache."""
    from huggingface_hub import hf_hub_download

    offline = is_offline()
    where = f"{repo_id}@{revision}" if revision else repo_id
    cache = hub_cache_dir()
    pinned = revision
    path = cache
    for filename in CHECKPOINT_FILES:
        try:
            path = Path(
                hf_hub_download(
                    repo_id,
                    filename,
                    revision=pinned,
                    cache_dir=cache,
                    local_files_only=offline,
                )
            )
        except _HUB_ERRORS as err:
            raise _hub_error(err, where, offline=offline, filename=filename) from err
        pinned = path.parent.name  # snapshots/<commit>/: later files come from the same commit
    return path.parent


def _hub_error(
    err: Exception,
    where: str,
    *,
    offline: bool = False,
    filename: str | None = None,
    writing: bool = False,
) -> GkaanError:
    """Translate a huggingface_hub/network exception into a one-line error saying what to do."""
    login = "set HF_TOKEN or run `hf auth login`"
    if isinstance(err, LocalEntryNotFoundError):
        if offline:
            return HubError(
                f"{where}: not in the local cache ({hub_cache_dir()}) and offline: "
                "run once online or unset HF_HUB_OFFLINE"
            )
        return HubError(
            f"{where}: the Hub cannot be reached and the model is not in the local cache "
            f"({hub_cache_dir()}): check your connection, proxy (HTTPS_PROXY) or HF_ENDPOINT"
        )
    if isinstance(err, OfflineModeIsEnabled):
        return HubError(f"{where}: HF_HUB_OFFLINE is set: unset it to reach the Hub")
    if isinstance(err, GatedRepoError):
        return HubError(
            f"{where}: gated repository: accept its conditions on the Hub, then {login}"
        )
    if isinstance(err, RepositoryNotFoundError):
        return HubError(f"{where}: not found or private: check the id, or {login}")
    if isinstance(err, RevisionNotFoundError):
        return HubError(f"{where}: revision not found: check the branch, tag or commit")
    if isinstance(err, RemoteEntryNotFoundError):
        return BadCheckpointError(
            where, f"the repository has no {filename}: not a gkaan checkpoint"
        )
    if isinstance(err, HfHubHTTPError):
        status = err.response.status_code if err.response is not None else None
        if status == 401 or (writing and status == 403):
            action = "needs a token with write access" if writing else "not found or private"
            return HubError(f"{where}: {action}: check the id, or {login}")
        return HubError(f"{where}: the Hub answered HTTP {status}: try again later")
    if isinstance(err, HFValidationError):
        return UsageError(f"{where}: not a valid Hub repository id: {err}")
    return HubError(
        f"{where}: download failed ({type(err).__name__}: {err}): check your connection, proxy "
        f"(HTTPS_PROXY) and that {hub_cache_dir()} is writable, or set HF_HUB_OFFLINE=1 to use "
        "the local cache"
    )
