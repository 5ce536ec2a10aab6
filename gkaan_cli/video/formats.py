"""Which file names are taken for videos when searching folders and glob patterns.

Light on purpose (no decoder import): data sources and the predictor's input expansion
both use it. A file named explicitly is never filtered by its extension; the reader judges it.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["VIDEO_EXTENSIONS", "has_video_extension"]

#: File extensions (lower case) taken for videos when expanding folders and patterns.
VIDEO_EXTENSIONS = frozenset(
    {".mp4", ".avi", ".mkv", ".mov", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv", ".flv", ".3gp"}
)


def has_video_extension(path: Path) -> bool:
    """Whether ``path``'s suffix, in any case, is one of :data:`VIDEO_EXTENSIONS`."""
    return path.suffix.lower() in VIDEO_EXTENSIONS
