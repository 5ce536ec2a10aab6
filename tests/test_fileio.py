"""Specification of atomic_write_path: all-or-nothing output with ordinary file permissions."""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from gkaan_cli.fileio import atomic_write_path, atomic_write_text, sha256_file


@pytest.fixture
def umask() -> Iterator[int]:
    """Run the test under umask 0o027 (so 0o600 and 0o644 are both wrong answers)."""
    previous = os.umask(0o027)
    try:
        yield 0o027
    finally:
        os.umask(previous)


def test_output_gets_the_permissions_open_would_give(tmp_path: Path, umask: int) -> None:
    target = tmp_path / "out.json"
    with atomic_write_path(target) as temp:
        temp.write_text("{}")
    assert stat.S_IMODE(target.stat().st_mode) == 0o666 & ~umask == 0o640
    assert target.read_text() == "{}"


def test_temp_file_sits_beside_target_with_its_suffix(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "clip.mp4"
    with atomic_write_path(target) as temp:
        assert temp.parent == target.parent
        assert temp.suffix == ".mp4"
        assert temp.name.startswith(".") and temp.exists()
    assert list(target.parent.iterdir()) == [target]


def test_error_keeps_old_target_and_removes_temp(tmp_path: Path) -> None:
    target = tmp_path / "keep.txt"
    target.write_text("old")
    with pytest.raises(KeyError), atomic_write_path(target) as temp:
        temp.write_text("new")
        raise KeyError("interrupted")
    assert target.read_text() == "old"
    assert list(tmp_path.iterdir()) == [target]


def test_text_is_written_as_utf8_with_newlines_kept(tmp_path: Path, umask: int) -> None:
    target = atomic_write_text(tmp_path / "out" / "p.csv", "ü,1\r\nb,2\n")
    assert target.read_bytes() == "ü,1\r\nb,2\n".encode()
    assert stat.S_IMODE(target.stat().st_mode) == 0o640
    assert list(target.parent.iterdir()) == [target]


def test_sha256_file_hashes_the_whole_content_across_read_chunks(tmp_path: Path) -> None:
    path = tmp_path / "video.avi"
    data = bytes(range(256)) * 4097  # just over 1 MiB: two reads
    path.write_bytes(data)
    assert sha256_file(path) == hashlib.sha256(data).hexdigest()
