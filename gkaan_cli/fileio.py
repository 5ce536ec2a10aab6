"""Atomic file output shared by every writer: a temp file beside the target, renamed into place.

The temp file is created like ``open(path, "w")`` creates a file (mode ``0o666`` filtered by the
process umask), so the renamed output has the usual permissions, not ``tempfile.mkstemp``'s 0600.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Iterator
from pathlib import Path

__all__ = ["atomic_write_path"]

#: Tries at a fresh random temp name before giving up (a clash needs 2**32 luck each time).
_NAME_TRIES = 16


def _create_temp(target: Path) -> Path:
    """Create an empty, uniquely named file beside ``target`` with mode 0o666 & ~umask."""
    for _ in range(_NAME_TRIES):
        temp = target.with_name(f".{target.stem}.{secrets.token_hex(4)}.tmp{target.suffix}")
        try:
            fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        except FileExistsError:
            continue
        os.close(fd)
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
