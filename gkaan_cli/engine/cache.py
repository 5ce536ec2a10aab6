"""The data cache of raw sources, ``$GKAAN_CACHE/prepared`` (default ``~/.cache/gkaan``):
what ``train`` and ``evaluate`` prepared there, listed and cleaned (``gkaan info --cache``,
``--clean-cache``; docs/protocol.md#caches).

Only entries that look like gkaan's own (a folder ``<name>-<16 hex digits>`` directly under
``prepared/``, not a symbolic link) are listed or removed; an entry another live gkaan process
is writing (its lock) is kept. An entry is renamed away first, then deleted, so a half-removed
entry is never mistaken for a cache.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
import time
from dataclasses import dataclass
from pathlib import Path

from ..errors import GkaanError
from ..fileio import LOCK_NAME, PathLock

__all__ = [
    "CACHE_ENV",
    "CacheEntry",
    "cache_entries",
    "cache_root",
    "clean_cache",
    "prepared_root",
]

#: The environment variable naming the cache folder.
CACHE_ENV = "GKAAN_CACHE"
_ENTRY = re.compile(r".+-[0-9a-f]{16}")
_REMOVING = ".gkaan-removing-"


def cache_root() -> Path:
    """``$GKAAN_CACHE``, else ``~/.cache/gkaan``."""
    return Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "gkaan")


def prepared_root() -> Path:
    """Where raw sources are prepared: ``cache_root() / "prepared"``."""
    return cache_root() / "prepared"


@dataclass(frozen=True)
class CacheEntry:
    """One prepared source in the cache: its folder, the source it was made from (None when
    its manifest cannot be read), its videos, its size on disk and when it last changed."""

    path: Path
    source: str | None
    videos: int
    size_bytes: int
    modified: float


def _size_and_time(folder: Path) -> tuple[int, float]:
    """Bytes of the regular files under ``folder`` (links not followed) and the latest mtime."""
    size, latest = 0, folder.lstat().st_mtime
    for root, _, files in os.walk(folder):
        for name in files:
            info = os.lstat(os.path.join(root, name))
            if stat.S_ISREG(info.st_mode):
                size += info.st_size
                latest = max(latest, info.st_mtime)
    return size, latest


def _describe(folder: Path) -> CacheEntry:
    source, videos = None, 0
    try:
        manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
        source = str(manifest.get("source"))
        videos = len(manifest.get("videos") or [])
    except (OSError, ValueError, AttributeError):
        pass
    size, modified = _size_and_time(folder)
    return CacheEntry(folder, source, videos, size, modified)


def cache_entries() -> list[CacheEntry]:
    """The cache's entries, oldest change first (an empty list when there is no cache)."""
    root = prepared_root()
    try:
        children = list(root.iterdir())
    except OSError:
        return []
    folders = [
        child
        for child in children
        if _ENTRY.fullmatch(child.name) and not child.is_symlink() and child.is_dir()
    ]
    return sorted((_describe(f) for f in folders), key=lambda e: e.modified)


def clean_cache(older_than_days: float | None = None) -> list[CacheEntry]:
    """Remove the cache's entries (those unchanged for ``older_than_days`` days when given);
    returns the removed ones. An entry a live gkaan process is writing is kept."""
    cutoff = None if older_than_days is None else time.time() - older_than_days * 86400
    removed = []
    for entry in cache_entries():
        if cutoff is not None and entry.modified > cutoff:
            continue
        try:
            with PathLock(entry.path):  # refused while another process writes there
                away = entry.path.with_name(f"{_REMOVING}{entry.path.name}-{os.getpid()}")
                entry.path.rename(away)
        except (OSError, GkaanError):
            continue  # another process writes there (its lock), or it is gone meanwhile
        (away / LOCK_NAME).unlink(missing_ok=True)
        shutil.rmtree(away, ignore_errors=True)
        removed.append(entry)
    return removed
