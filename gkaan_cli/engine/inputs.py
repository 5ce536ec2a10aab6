"""Which video files a list of command-line inputs (files, folders, glob patterns) names.

Light on purpose (no torch, no decoder): ``gkaan predict`` reports a missing input before
it loads the model. :mod:`gkaan_cli.engine.predict` re-exports :func:`expand_inputs`.
"""

from __future__ import annotations

import glob
from collections.abc import Iterable
from pathlib import Path

from ..errors import BadVideoError
from ..fileio import regular_file_problem
from ..video.formats import has_video_extension

__all__ = ["expand_inputs"]


def expand_inputs(inputs: Iterable[str]) -> tuple[list[Path], list[BadVideoError]]:
    """Expand files, directories (recursively, video extensions) and glob patterns.

    A file named explicitly is kept whatever its extension (the reader judges it); a missing
    path, a pattern matching no video, a directory without videos, or something that is not a
    regular file (a FIFO, a device, a dangling link: judged without opening it, so nothing
    blocks) is an error entry, found before any model is loaded.

    Returns:
        (video paths in input order without duplicates, one error per unusable input).
    """
    found: dict[Path, None] = {}
    errors: list[BadVideoError] = []
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            videos = _videos_under(path)
            if not videos:
                errors.append(BadVideoError(path, "no video files in directory"))
        elif path.exists() or path.is_symlink():  # a dangling link: the reader says why
            videos = [path]
        elif glob.has_magic(item):
            videos = [
                video
                for match in sorted(glob.glob(item, recursive=True))
                for video in (_videos_under(Path(match)) if Path(match).is_dir() else [Path(match)])
                if has_video_extension(video)
            ]
            if not videos:
                errors.append(BadVideoError(item, "no video files match this pattern"))
        else:
            videos = []
            errors.append(BadVideoError(path, "no such file"))
        found.update(dict.fromkeys(videos))
    regular = []
    for path in found:
        problem = regular_file_problem(path)
        if problem is None:
            regular.append(path)
        else:
            errors.append(BadVideoError(path, problem))
    return regular, errors


def _videos_under(directory: Path) -> list[Path]:
    # a FIFO or dangling link named x.mp4 is kept: the reader reports it, nothing is skipped
    return sorted(p for p in directory.rglob("*") if has_video_extension(p) and not p.is_dir())
