"""Which file names are taken for videos when searching folders and glob patterns, and
which inputs name a live source.

Light on purpose (no decoder import): data sources and the predictor's input expansion
both use it. A file named explicitly is never filtered by its extension; the reader judges it.
A live source is only ever named explicitly (``-`` or a URL), never found in a folder.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["LIVE_SCHEMES", "STDIN", "VIDEO_EXTENSIONS", "has_video_extension", "is_live_source"]

#: File extensions (lower case) taken for videos when expanding folders and patterns.
VIDEO_EXTENSIONS = frozenset(
    {".mp4", ".avi", ".mkv", ".mov", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv", ".flv", ".3gp"}
)


def has_video_extension(path: Path) -> bool:
    """Whether ``path``'s suffix, in any case, is one of :data:`VIDEO_EXTENSIONS`."""
    return path.suffix.lower() in VIDEO_EXTENSIONS


#: URL schemes accepted as live sources (docs/predict.md#live).
LIVE_SCHEMES = ("http", "https", "rtsp", "udp")
#: The name of standard input as a source.
STDIN = "-"


def is_live_source(text: str) -> bool:
    """Whether ``text`` names a live source: exactly ``-`` or a URL with a live scheme."""
    if text == STDIN:
        return True
    scheme, sep, _ = text.partition("://")
    return bool(sep) and scheme.lower() in LIVE_SCHEMES
