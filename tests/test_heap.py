"""Long runs give freed heap memory back (docs/predict.md#memory)."""

from __future__ import annotations

import sys

import pytest

from gkaan_cli.heap import HeapTrimmer, trim_heap


def _rss_kib() -> int:
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS"))


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc malloc_trim is Linux's")
def test_trim_heap_gives_freed_fragmented_memory_back() -> None:
    """Freed blocks pinned between live small ones stay resident until trimmed."""
    import ctypes

    libc = ctypes.CDLL(None)
    libc.malloc.restype, libc.malloc.argtypes = ctypes.c_void_p, [ctypes.c_size_t]
    libc.free.argtypes = [ctypes.c_void_p]
    blocks, pins = [], []
    for _ in range(512):  # 512 x 64 KiB under the mmap threshold, each before a live block
        block = libc.malloc(1 << 16)
        ctypes.memset(block, 1, 1 << 16)  # touched: resident
        blocks.append(block)
        pins.append(libc.malloc(1 << 15))  # too big for a free-list hole: taken after it
    for block in blocks:
        libc.free(block)
    before = _rss_kib()
    assert trim_heap()
    after = _rss_kib()
    for pin in pins:
        libc.free(pin)
    assert before - after > 16 * 1024  # most of the 32 MiB freed between pins went back


def test_trimmer_trims_once_every_n_ticks() -> None:
    trimmer = HeapTrimmer(every=3)
    for _ in range(7):
        trimmer.tick()
    assert trimmer.ticks == 7
    assert trimmer.trims == (2 if trim_heap() else 0)
    with pytest.raises(ValueError, match="at least 1"):
        HeapTrimmer(every=0)
