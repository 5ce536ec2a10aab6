"""Atomic file output shared by every writer: a temp file beside the target, renamed into place.

The temp file is created like ``open(path, "w")`` creates a file (mode ``0o666`` filtered by the
process umask), so the renamed output has the usual permissions, not ``tempfile.mkstemp``'s 0600.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import secrets
from collections.abc import Iterator
from pathlib import Path

__all__ = [
    "TEMP_MARK",
    "atomic_write_bytes",
    "atomic_write_path",
    "atomic_write_text",
    "make_temp_dir",
    "sha256_file",
]

#: Part of every temp file name (never of a final one): ``.<stem>.<random>.tmp<suffix>``.
TEMP_MARK = ".tmp"
#: Bytes read at a time when hashing a file.
_HASH_CHUNK = 1 << 20
#: Tries at a fresh random temp name before giving up (a clash needs 2**32 luck each time).
_NAME_TRIES = 16


def _create_temp(target: Path) -> Path:
    """Create an empty, uniquely named file beside ``target`` with mode 0o666 & ~umask."""
    for _ in range(_NAME_TRIES):
        temp = target.with_name(f".{target.stem}.{secrets.token_hex(4)}{TEMP_MARK}{target.suffix}")
        try:
            fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        except FileExistsError:
            continue
        os.close(fd)
        return temp
    raise FileExistsError(f"{target}: no free temporary name in {target.parent}")


def make_temp_dir(target: Path) -> Path:
    """Create an empty, uniquely named folder beside ``target`` with mode 0o777 & ~umask.

    Unlike ``tempfile.mkdtemp`` (0700), a folder renamed into place from here has the usual
    permissions, so a saved checkpoint is readable by the user's group as any folder is.
    """
    for _ in range(_NAME_TRIES):
        temp = target.with_name(f".{target.name}.{secrets.token_hex(4)}{TEMP_MARK}")
        try:
            temp.mkdir()
        except FileExistsError:
            continue
        return temp
    raise FileExistsError(f"{target}: no free temporary name in {target.parent}")


@contextlib.contextmanager
def atomic_write_path(target: str | Path) -> Iterator[Path]:
    """Yield a temp file path beside ``target``; on success rename it over ``target``.

    The temp file exists (empty) and keeps ``target``'s suffix, so tools that pick a format from
    the extension work on it. If the block raises, the temp file is removed and ``target`` is
    left untouched. Missing parent folders are created.

    Args:
        target: the file to create or replace.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    temp = _create_temp(target)
    try:
        yield temp
        os.replace(temp, target)
    finally:
        temp.unlink(missing_ok=True)


def atomic_write_bytes(target: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``target`` atomically (see :func:`atomic_write_path`); returns ``target``.

    Args:
        target: the file to create or replace.
        data: its new content.
    """
    target = Path(target)
    with atomic_write_path(target) as temp:
        temp.write_bytes(data)
    return target


def atomic_write_text(target: str | Path, text: str) -> Path:
    """Write ``text`` as UTF-8 (no newline translation) to ``target`` atomically; returns it.

    Args:
        target: the file to create or replace.
        text: its new content.
    """
    return atomic_write_bytes(target, text.encode("utf-8"))


def sha256_file(path: str | Path) -> str:
    """Hex SHA-256 of a file's content, read in 1 MiB chunks.

    Args:
        path: the file to hash.
    """
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(_HASH_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()
