"""Hand freed heap memory back to the system during long runs (docs/predict.md#memory).

glibc's ``malloc`` keeps freed memory in its heap for reuse. A long run that keeps small
results (a timeline's windows) between large short-lived buffers (the backbone's activations)
fragments that heap, and the process's resident memory grows with the run's length although
its live memory does not: about 115 KB per timeline window before this module, +20% for a
20-minute video. ``malloc_trim(0)`` every few batches gives the free pages back and keeps it
flat. Where the C library has no ``malloc_trim`` (macOS, Windows, musl) trimming does nothing.
"""

from __future__ import annotations

import ctypes
import sys
from collections.abc import Callable
from functools import cache

__all__ = ["TRIM_EVERY", "HeapTrimmer", "trim_heap"]

#: Backbone batches between two trims (about 256 frames at the default batch size): often
#: enough to keep the resident size flat, rarely enough that the trims cost no measurable time.
TRIM_EVERY = 8


@cache
def _malloc_trim() -> Callable[[int], int] | None:
    """glibc's ``malloc_trim``, or None where the process's C library has none."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL(None).malloc_trim  # type: ignore[no-any-return]
    except (AttributeError, OSError):
        return None


def trim_heap() -> bool:
    """Give the heap's free pages back to the system; False where that is not available."""
    trim = _malloc_trim()
    if trim is None:
        return False
    trim(0)
    return True


class HeapTrimmer:
    """Calls :func:`trim_heap` once every ``every`` calls of :meth:`tick` (one per batch)."""

    def __init__(self, every: int = TRIM_EVERY) -> None:
        if every < 1:
            raise ValueError(f"every must be at least 1, got {every}")
        self.every = every
        self.ticks = 0
        self.trims = 0

    def tick(self) -> None:
        self.ticks += 1
        if self.ticks % self.every == 0 and trim_heap():
            self.trims += 1
