"""The Hugging Face Hub client: download a checkpoint into the Hub cache, push one with a
generated model card.

Exactly ``config.json`` and ``model.safetensors`` travel in either direction (plus the
``README.md`` card on push). The cache is huggingface_hub's own (``HF_HUB_CACHE``,
``HF_HOME``) and ``HF_HUB_OFFLINE`` is honoured, both read at call time.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import signal
import tempfile
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from huggingface_hub.errors import (
    GatedRepoError,
    HfHubHTTPError,
    HFValidationError,
    HTTPError,
    LocalEntryNotFoundError,
    OfflineModeIsEnabled,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)
from pydantic import ValidationError

from ..config import GKAANConfig
from ..errors import BadCheckpointError, GkaanError, HubError, UsageError, validation_problems
from ..nested import flatten_nested
from .checkpoint import CHECKPOINT_FILES, CONFIG_FILE, RUN_SUBDIRS, checkpoint_dir

__all__ = [
    "HUB_DEADLINE_S",
    "HUB_MAX_BYTES",
    "cached_snapshot",
    "download_checkpoint",
    "hub_cache_dir",
    "is_offline",
    "model_card",
    "parse_hub_id",
    "push_checkpoint",
]

#: Training reports looked for beside a pushed checkpoint, for the model card's metrics.
METRICS_FILES = ("report.json", "metrics.json")

_HUB_ID = re.compile(r"(?P<repo>[A-Za-z0-9][\w.-]*/[A-Za-z0-9][\w.-]*)(?:@(?P<rev>[\w./-]+))?")
_TRUE = frozenset({"1", "ON", "YES", "TRUE"})
#: What huggingface_hub raises for Hub, cache and network failures.
_HUB_ERRORS = (OSError, HFValidationError, HTTPError)
#: Seconds a Hub request may go without an answer (``HF_HUB_DOWNLOAD_TIMEOUT`` overrides).
_HUB_TIMEOUT_S = 5.0
#: Seconds one Hub request may take in all, its answer included, however the server drips it
#: (``GKAAN_HUB_DEADLINE`` overrides; README "Files and models").
HUB_DEADLINE_S = 300.0
#: Largest answer read from the Hub, per request and so per file (``GKAAN_HUB_MAX_BYTES``
#: overrides): checkpoint files are tens of MB.
HUB_MAX_BYTES = 1 << 30
#: The way out of every "cannot reach the Hub" error.
_OFFLINE_HINT = (
    "to work offline, pass a checkpoint folder or a registered name (`gkaan info`) as the "
    "model, or set HF_HUB_OFFLINE=1 to use the Hub cache only"
)


#: Longest repository name part and revision the Hub accepts.
_MAX_NAME = 96
_MAX_REVISION = 255


def _valid_name(part: str) -> bool:
    """A Hub org or repository name: no ``..`` or ``--``, not ending in ``.`` or ``-``."""
    return (
        len(part) <= _MAX_NAME
        and ".." not in part
        and "--" not in part
        and not part.endswith((".", "-"))
    )


def _valid_revision(revision: str) -> bool:
    """A branch, tag or commit: non-empty ``/``-separated parts, none ``.`` or ``..``."""
    parts = revision.split("/")
    return (
        len(revision) <= _MAX_REVISION
        and ".." not in revision
        and all(part and part != "." for part in parts)
    )


def parse_hub_id(text: str) -> tuple[str, str | None] | None:
    """``org/name[@revision]`` as ``(repo_id, revision or None)``; ``None`` for anything else,
    including names and revisions that could step out of the cache (``..``, empty parts)."""
    match = _HUB_ID.fullmatch(text)
    if match is None:
        return None
    repo, revision = match["repo"], match["rev"]
    if not all(_valid_name(part) for part in repo.split("/")):
        return None
    if revision is not None and not _valid_revision(revision):
        return None
    return repo, revision


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


def cached_snapshot(repo_id: str, commit: str) -> Path:
    """Where the Hub cache keeps the files of ``repo_id`` at ``commit`` (may not exist)."""
    return hub_cache_dir() / f"models--{repo_id.replace('/', '--')}" / "snapshots" / commit


def is_offline() -> bool:
    """Whether HF_HUB_OFFLINE is set (read now, not at import time)."""
    from huggingface_hub import constants

    flag = os.environ.get("HF_HUB_OFFLINE", "").upper() in _TRUE
    return flag or constants.is_offline_mode()


def download_checkpoint(repo_id: str, revision: str | None = None) -> Path:
    """The cached folder of exactly ``config.json`` + ``model.safetensors`` of one commit of
    ``repo_id``, downloaded first when missing (from the cache only when offline).

    Args:
        repo_id: ``org/name``.
        revision: branch, tag or commit; default ``main``.
    """
    from huggingface_hub import snapshot_download

    offline = is_offline()
    where = f"{repo_id}@{revision}" if revision else repo_id
    try:
        with _bounded_hub_calls() as seconds:
            folder = snapshot_download(
                repo_id,
                revision=revision,
                cache_dir=hub_cache_dir(),
                local_files_only=offline,
                allow_patterns=list(CHECKPOINT_FILES),
                etag_timeout=seconds,
            )
    except Exception as err:  # any failure of the Hub client is one line
        raise _hub_error(err, where, offline=offline) from None
    return checkpoint_dir(folder)


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
    parsed = parse_hub_id(repo_id)
    if parsed is None or parsed[1] is not None:
        raise UsageError(f"{repo_id}: not a Hub repository id of the form org/name")
    directory = checkpoint_dir(source)
    config_path = directory / CONFIG_FILE
    config = _read_json(config_path)
    try:
        card = model_card(config, _find_metrics(directory), repo_id=repo_id)
    except ValidationError as err:
        reason = f"invalid config ({validation_problems(err)})"
        raise BadCheckpointError(config_path, reason) from err
    from huggingface_hub import HfApi

    api = HfApi(token=token)
    with tempfile.TemporaryDirectory(prefix="gkaan-push-") as staging:
        for name in CHECKPOINT_FILES:
            shutil.copyfile(directory / name, Path(staging) / name)
        (Path(staging) / "README.md").write_text(card, encoding="utf-8")
        try:
            with _bounded_hub_calls():
                url = str(api.create_repo(repo_id, private=private, exist_ok=True))
                if revision is not None:
                    api.create_branch(repo_id, branch=revision, exist_ok=True)
                api.upload_folder(
                    repo_id=repo_id,
                    folder_path=staging,
                    revision=revision,
                    commit_message=f"Upload gkaan checkpoint {directory.name}",
                )
        except Exception as err:  # any failure of the Hub client is one line
            raise _hub_error(err, repo_id, writing=True) from None
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
        ("Sampling", cfg.sampling.describe()),
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
    flat = _metric_rows(metrics or {})
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


def _metric_rows(metrics: Mapping[str, Any]) -> dict[str, str]:
    """Scalars of a nested mapping as ``{"a.b": "value"}``; lists are left out."""
    rows: dict[str, str] = {}
    for name, value in flatten_nested(metrics).items():
        if isinstance(value, float):
            rows[name] = f"{value:.4g}"
        elif isinstance(value, (int, str, bool)):
            rows[name] = str(value)
    return rows


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


class HubLimitError(Exception):
    """A Hub answer past :data:`HUB_DEADLINE_S` or :data:`HUB_MAX_BYTES` (becomes a HubError)."""


def _limit(name: str, default: float) -> float:
    """A positive number from the environment variable ``name``, else ``default``."""
    text = os.environ.get(name, "")
    try:
        value = float(text) if text else default
    except ValueError:
        raise UsageError(f"{name}={text!r}: not a number") from None
    if not (math.isfinite(value) and value > 0):
        raise UsageError(f"{name}={text!r}: must be a positive number")
    return value


class _Limits:
    """Each Hub request's deadline and size cap, checked as its answer arrives (a server that
    drips a byte at a time or streams without end is cut off), and in the main thread by a
    SIGALRM timer too (a server that drips its headers)."""

    def __init__(self, deadline: float, max_bytes: float) -> None:
        self.deadline, self.max_bytes = deadline, max_bytes
        self.ends = time.monotonic() + deadline
        self.alarm = threading.current_thread() is threading.main_thread() and hasattr(
            signal, "setitimer"
        )

    def late(self) -> HubLimitError:
        return HubLimitError(f"no complete answer within {self.deadline:g} s (GKAAN_HUB_DEADLINE)")

    def big(self) -> HubLimitError:
        return HubLimitError(
            f"an answer larger than {self.max_bytes:.0f} bytes (GKAAN_HUB_MAX_BYTES)"
        )

    def on_request(self, request: Any) -> None:
        self.ends = time.monotonic() + self.deadline
        if self.alarm:
            signal.setitimer(signal.ITIMER_REAL, self.deadline)

    def on_alarm(self, signum: int, frame: Any) -> None:
        raise self.late()

    def on_response(self, response: Any) -> None:
        length = response.headers.get("content-length", "")
        if length.isdigit() and int(length) > self.max_bytes:
            raise self.big()
        from httpx2 import SyncByteStream

        stream, limits = response.stream, self

        class Bounded(SyncByteStream):
            def __iter__(self) -> Iterator[bytes]:
                count = 0
                for chunk in stream:
                    count += len(chunk)
                    if count > limits.max_bytes:
                        raise limits.big()
                    if time.monotonic() > limits.ends:
                        raise limits.late()
                    yield chunk

            def close(self) -> None:
                stream.close()

        response.stream = Bounded()


@contextmanager
def _bounded_hub_calls() -> Iterator[float]:
    """Hub requests give up after ``HF_HUB_DOWNLOAD_TIMEOUT`` seconds (gkaan's default 5)
    without an answer, after ``GKAAN_HUB_DEADLINE`` seconds in all (default
    :data:`HUB_DEADLINE_S`) and beyond ``GKAAN_HUB_MAX_BYTES`` (default :data:`HUB_MAX_BYTES`);
    huggingface_hub's retry warnings stay quiet: a failure is one error line.

    huggingface_hub passes ``timeout=None`` for some calls (``repo_info``), which would wait
    for ever on a silent network, so a request hook bounds every request of its session.
    Yields the timeout in seconds.
    """
    from huggingface_hub import get_session
    from huggingface_hub.utils import logging as hub_logging

    seconds = _limit("HF_HUB_DOWNLOAD_TIMEOUT", _HUB_TIMEOUT_S)
    limits = _Limits(
        _limit("GKAAN_HUB_DEADLINE", HUB_DEADLINE_S), _limit("GKAAN_HUB_MAX_BYTES", HUB_MAX_BYTES)
    )

    def bound(request: Any) -> None:
        request.extensions["timeout"] = dict.fromkeys(("connect", "read", "write", "pool"), seconds)
        limits.on_request(request)

    session = get_session()
    hooks = dict(session.event_hooks)
    session.event_hooks = {
        **hooks,
        "request": [*hooks.get("request", []), bound],
        "response": [*hooks.get("response", []), limits.on_response],
    }
    logger = hub_logging.get_logger("huggingface_hub")
    level = logger.level
    logger.setLevel(hub_logging.ERROR)
    previous = signal.signal(signal.SIGALRM, limits.on_alarm) if limits.alarm else None
    try:
        yield seconds
    finally:
        if limits.alarm:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous)
        session.event_hooks = hooks
        logger.setLevel(level)


def _hub_error(
    err: Exception, where: str, *, offline: bool = False, writing: bool = False
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
            f"({hub_cache_dir()}): check your connection, proxy (HTTPS_PROXY) or HF_ENDPOINT; "
            f"{_OFFLINE_HINT}"
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
    if isinstance(err, HfHubHTTPError):
        status = err.response.status_code if err.response is not None else None
        if status == 401 or (writing and status == 403):
            action = "needs a token with write access" if writing else "not found or private"
            return HubError(f"{where}: {action}: check the id, or {login}")
        return HubError(f"{where}: the Hub answered HTTP {status}: try again later")
    if isinstance(err, HFValidationError):
        return UsageError(f"{where}: not a valid Hub repository id: {err}")
    if isinstance(err, GkaanError):
        return err
    if isinstance(err, HubLimitError):
        return HubError(f"{where}: the Hub server sent {err}; {_OFFLINE_HINT}")
    if not isinstance(err, _HUB_ERRORS):  # the client choked on the answer: bad JSON, a list...
        reason = " ".join(str(err).split())[:200]
        return HubError(
            f"{where}: the Hub's answer could not be used ({type(err).__name__}: {reason}): "
            f"check HF_ENDPOINT; {_OFFLINE_HINT}"
        )
    return HubError(
        f"{where}: download failed ({type(err).__name__}: {err}): check your connection, proxy "
        f"(HTTPS_PROXY) and that {hub_cache_dir()} is writable; {_OFFLINE_HINT}"
    )
