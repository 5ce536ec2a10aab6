"""Words for people: counts with the noun in the right number (bottom layer, no imports)."""

from __future__ import annotations

__all__ = ["plural"]


def plural(count: int, noun: str) -> str:
    """``1 video``, ``2 videos``, ``0 classes``: ``count`` and ``noun`` (+``s``, or ``es``
    after s/x/ch/sh) in agreement."""
    if count == 1:
        return f"{count} {noun}"
    ending = "es" if noun.endswith(("s", "x", "ch", "sh")) else "s"
    return f"{count} {noun}{ending}"
