"""Safe file input and output shared by every reader and writer (see README, "Files").

Output is atomic: a temp file beside the target, renamed into place. The temp file is created
like ``open(path, "w")`` creates a file (mode ``0o666`` filtered by the process umask), so the
renamed output has the usual permissions, not ``tempfile.mkstemp``'s 0600. Temp names carry the
writing process's id, so the next run into the same place removes those a killed run left
(:func:`cleanup_stale_temps`). Any ``OSError`` while writing becomes one
:class:`~gkaan_cli.errors.OutputError` naming the target.

Input is regular files only: :func:`regular_file_problem` says why a path (a FIFO, a device,
a socket, a symlink loop or a dangling link...) is not one, without ever opening it, and
:func:`sha256_file` refuses anything else at open time (a FIFO would block, ``/dev/zero``
never ends).
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import re
import secrets
import shutil
import stat
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Literal

from .errors import OutputError, UsageError

__all__ = [
    "LOCK_NAME",
    "TEMP_MARK",
    "NotRegularFileError",
    "PathLock",
    "atomic_write_bytes",
    "atomic_write_path",
    "atomic_write_text",
    "check_output_path",
    "cleanup_stale_temps",
    "display_path",
    "is_stream_output",
    "make_temp_dir",
    "printable",
    "regular_file_problem",
    "same_file",
    "sha256_file",
]

#: Part of every temp file name (never of a final one): ``.<stem>.<pid>-<random>.tmp<suffix>``.
TEMP_MARK = ".tmp"
#: The lock file a writer of a whole folder (``prepare``) holds inside it; it holds the pid.
LOCK_NAME = ".gkaan.lock"
#: A temp name without a process id (older gkaan) is stale once this old (seconds).
STALE_AGE_S = 600.0
#: Bytes read at a time when hashing a file.
_HASH_CHUNK = 1 << 20
#: Digests of files hashed in this process, by identity and change times (sha256_file).
_HASHED: dict[tuple[int, ...], str] = {}
_HASHED_MAX = 256
#: Tries at a fresh random temp name before giving up (a clash needs 2**32 luck each time).
_NAME_TRIES = 16
#: ``.<name>.[<pid>-]<8 hex>.tmp[<suffix>]``: the names :func:`_create_temp` and
#: :func:`make_temp_dir` give (older versions had no pid).
_TEMP_NAME = re.compile(r"^\.(?P<name>.*)\.(?:(?P<pid>\d+)-)?[0-9a-f]{8}\.tmp(?:\..*)?$", re.S)
_KINDS = (
    (stat.S_ISFIFO, "a FIFO"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


class NotRegularFileError(OSError):
    """Raised by :func:`sha256_file` for a path that is not a regular file (``strerror`` says
    what it is)."""


#: Characters a terminal or a page may act on: C0 controls but tab and newline, DEL, C1.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def printable(text: str) -> str:
    """``text`` with terminal control characters (ESC, BEL, CR... but tab and newline) and
    bytes that are not UTF-8 shown as ``\\xNN``: a file name cannot drive the terminal."""
    text = text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    return _CONTROL.sub(lambda match: f"\\x{ord(match.group()):02x}", text)


def display_path(path: str | Path) -> str:
    """``path`` as printable text: bytes that are not UTF-8 (kept losslessly in ``str`` paths
    as surrogate escapes) are shown as ``\\xNN``."""
    return os.fsencode(path).decode("utf-8", "backslashreplace")


def regular_file_problem(path: str | Path) -> str | None:
    """Why ``path`` cannot be read as a regular file (links resolved), or ``None`` if it can.

    Never opens the path, so a FIFO or a device cannot block. The reasons are
    ``file not found``, ``is a directory``, ``not a regular file (a FIFO | a character
    device | a block device | a socket | a symbolic link loop | a dangling symbolic link)``
    and ``permission denied``.
    """
    try:
        info = os.stat(path)
    except FileNotFoundError:
        if os.path.islink(path):
            return "not a regular file (a dangling symbolic link)"
        return "file not found"
    except OSError as error:
        if error.errno == errno.ELOOP:
            return "not a regular file (a symbolic link loop)"
        if error.errno == errno.ENOTDIR:
            return "file not found"
        return f"cannot read ({error.strerror or error})"
    if stat.S_ISDIR(info.st_mode):
        return "is a directory"
    if not stat.S_ISREG(info.st_mode):
        kind = next((name for test, name in _KINDS if test(info.st_mode)), "a special file")
        return f"not a regular file ({kind})"
    if not os.access(path, os.R_OK):
        return "permission denied"
    return None


def _pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except OSError:
        return False
    return True


def _is_stale(entry: Path) -> bool:
    """Whether ``entry`` is a temp name left by a process that is gone."""
    match = _TEMP_NAME.match(entry.name)
    if match is None:
        return False
    if match["pid"] is not None:
        return not _pid_alive(int(match["pid"]))
    try:
        return time.time() - entry.lstat().st_mtime > STALE_AGE_S
    except OSError:
        return False


def cleanup_stale_temps(directory: str | Path, *, target: str | Path | None = None) -> list[Path]:
    """Remove temp files and folders a killed run left in ``directory``; returns them.

    A temp name carries its writer's pid: it is stale when that process is gone (a name
    without a pid, from an older gkaan, when it is older than :data:`STALE_AGE_S`). With
    ``target``, only that file's temps are considered. Errors are ignored (best effort).
    """
    directory = Path(directory)
    prefix = None if target is None else f".{Path(target).stem}."
    removed: list[Path] = []
    try:
        entries = list(directory.iterdir())
    except OSError:
        return removed
    for entry in entries:
        if prefix is not None and not entry.name.startswith(prefix):
            continue
        if not _is_stale(entry):
            continue
        try:
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()
        except OSError:
            continue
        removed.append(entry)
    return removed


def _temp_name(name: str, suffix: str = "") -> str:
    return f".{name}.{os.getpid()}-{secrets.token_hex(4)}{TEMP_MARK}{suffix}"


def _create_temp(target: Path) -> Path:
    """Create an empty, uniquely named file beside ``target`` with mode 0o666 & ~umask."""
    for _ in range(_NAME_TRIES):
        temp = target.with_name(_temp_name(target.stem, target.suffix))
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
        temp = target.with_name(_temp_name(target.name))
        try:
            temp.mkdir()
        except FileExistsError:
            continue
        return temp
    raise FileExistsError(f"{target}: no free temporary name in {target.parent}")


def is_stream_output(path: str | Path) -> bool:
    """Whether ``path`` (links resolved) is a character device or a FIFO: an output written
    in place (``-o /dev/null``, ``-o /dev/stdout``), never an input."""
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return False
    return stat.S_ISCHR(mode) or stat.S_ISFIFO(mode)


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
    if is_stream_output(target):  # /dev/null, /dev/stdout: written in place, nothing to rename
        try:
            yield target
        except OSError as error:
            if error.filename is not None and Path(error.filename) != target:
                raise
            raise _output_error(target, error) from None
        return
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        temp = _create_temp(target)
    except OSError as error:
        raise _output_error(target, error) from None
    try:
        yield temp
        os.replace(temp, target)
    except OSError as error:
        if error.filename is not None and Path(error.filename) not in (temp, target):
            raise  # about another file (an input read inside the block): not ours to rename
        raise _output_error(target, error) from None
    finally:
        temp.unlink(missing_ok=True)


def _output_error(target: Path, error: OSError) -> OutputError:
    """One line for an OSError while writing ``target``: which path and why."""
    reason = error.strerror or str(error)
    if error.errno in (errno.ENOSPC, errno.EDQUOT):
        reason = f"cannot write ({reason}: the disk is full)"
    else:
        reason = f"cannot write ({reason})"
    return OutputError(display_path(target), reason)


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
    """Hex SHA-256 of a regular file's content, read in 1 MiB chunks.

    The file is opened without blocking and checked before reading, so a FIFO or a device
    (``/dev/zero``) raises :class:`NotRegularFileError` at once instead of hanging.

    Args:
        path: the file to hash.
    """
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    try:
        info = os.fstat(fd)
        mode = info.st_mode
        if not stat.S_ISREG(mode):
            kind = next((name for test, name in _KINDS if test(mode)), "not a file")
            raise NotRegularFileError(errno.EINVAL, f"not a regular file ({kind})", str(path))
        # the same file unchanged since it was hashed in this process (a write changes
        # ctime, which nobody can set back): one read per command, however many checks
        key = (info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns, info.st_ctime_ns)
        if key in _HASHED:
            os.close(fd)
            return _HASHED[key]
        os.set_blocking(fd, True)
        handle = os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise
    digest = hashlib.sha256()
    with handle:
        while chunk := handle.read(_HASH_CHUNK):
            digest.update(chunk)
    if len(_HASHED) >= _HASHED_MAX:
        _HASHED.clear()
    _HASHED[key] = digest.hexdigest()
    return _HASHED[key]


def same_file(a: str | Path, b: str | Path) -> bool:
    """Whether two paths name the same file (links resolved; by name when one is missing)."""
    try:
        return os.path.samefile(a, b)
    except OSError:
        return os.path.abspath(a) == os.path.abspath(b)


def check_output_path(
    path: str | Path,
    *,
    inputs: Iterable[str | Path] = (),
    kind: Literal["file", "dir"] = "file",
    need_bytes: int = 0,
) -> Path:
    """Check, before any work, that ``path`` can be written; clean a killed run's temp files.

    The nearest existing folder at or above ``path``'s parent must be a writable folder;
    a ``file`` output must not be a folder or a special file other than a character device
    or a FIFO someone reads (``/dev/null``, ``/dev/stdout``), a ``dir`` output must not be a
    file; ``need_bytes`` (when the size is predictable) must fit on that disk.

    Args:
        path: the file (``kind="file"``) or folder (``kind="dir"``) the command will write.
        inputs: the command's input files: writing over one of them is refused.
        kind: what ``path`` will be.
        need_bytes: free space needed, 0 to skip the check.

    Raises:
        UsageError: ``path`` is one of ``inputs``.
        OutputError: ``path`` cannot be written (and why).
    """
    path = Path(path)
    shown = display_path(path)
    for item in inputs:
        if same_file(path, item):
            raise UsageError(f"{shown}: is also an input; gkaan never writes over its inputs")
    if path.is_symlink() and not path.exists():
        raise OutputError(shown, "a dangling symbolic link is in the way")
    if path.exists():
        if kind == "file" and path.is_dir():
            raise OutputError(shown, "is a directory (expected a file name)")
        if kind == "file" and is_stream_output(path):
            _check_stream_output(path, shown)
            return path
        if kind == "file" and not path.is_file():
            raise OutputError(shown, "not a regular file; will not write over it")
        if kind == "dir" and not path.is_dir():
            raise OutputError(shown, "exists and is not a directory")
    folder = path if kind == "dir" else path.parent
    existing = folder
    while not existing.exists() and existing != existing.parent:
        if existing.is_symlink():
            raise OutputError(display_path(existing), "a dangling symbolic link is in the way")
        existing = existing.parent
    if not existing.is_dir():
        raise OutputError(display_path(existing), "not a directory, so nothing can be made in it")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise OutputError(display_path(existing), "permission denied (directory not writable)")
    if need_bytes > 0:
        free = shutil.disk_usage(existing).free
        if free < need_bytes:
            raise OutputError(
                shown, f"not enough disk space ({free} bytes free, {need_bytes} needed)"
            )
    if existing == folder:
        cleanup_stale_temps(folder, target=None if kind == "dir" else path)
    return path


def _check_stream_output(path: Path, shown: str) -> None:
    """A character device or FIFO output must take writes now: a FIFO nothing reads would
    block, so it is opened without waiting first (ENXIO: no reader)."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_NONBLOCK)
    except OSError as error:
        if error.errno == errno.ENXIO:
            raise OutputError(shown, "a FIFO that nothing reads; will not wait for one") from None
        raise _output_error(path, error) from None
    os.close(fd)


class PathLock:
    """Exclusive right to write into a folder, held as ``<folder>/.gkaan.lock`` (the pid).

    A lock whose process is gone (killed run) is taken over. Use as a context manager.

    Raises:
        OutputError: another live process holds the lock, or the folder cannot be written.
    """

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)
        self.path = self.directory / LOCK_NAME
        self._held = False

    def acquire(self) -> PathLock:
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise _output_error(self.directory, error) from None
        for _ in range(3):
            try:
                fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
            except FileExistsError:
                owner = self._owner()
                if owner is not None and _pid_alive(owner):
                    raise OutputError(
                        display_path(self.directory),
                        f"another gkaan process (pid {owner}) is writing here (lock file "
                        f"{LOCK_NAME}); wait for it to finish, or delete the lock file if "
                        "that process is not gkaan",
                    ) from None
                with contextlib.suppress(FileNotFoundError):
                    self.path.unlink()
                continue
            except OSError as error:
                raise _output_error(self.path, error) from None
            with os.fdopen(fd, "w") as handle:
                handle.write(f"{os.getpid()}\n")
            self._held = True
            return self
        raise OutputError(display_path(self.directory), "could not take the lock (contended)")

    def _owner(self) -> int | None:
        try:
            text = self.path.read_text(encoding="ascii", errors="replace").strip()
        except OSError:
            return None
        return int(text) if text.isdigit() else None

    def release(self) -> None:
        if self._held:
            self._held = False
            with contextlib.suppress(OSError):
                if self._owner() == os.getpid():
                    self.path.unlink()

    def __enter__(self) -> PathLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()
