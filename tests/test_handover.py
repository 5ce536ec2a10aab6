"""The one background hand-over (video/handover.py): order kept, errors raised in the
consumer, and a consumer that leaves early stops the thread."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from gkaan_cli.video.handover import in_background


def test_items_arrive_in_order_and_an_error_there_is_raised_here() -> None:
    assert list(in_background(iter(range(50)), 2, name="t")) == list(range(50))

    def broken() -> Iterator[int]:
        yield 1
        raise ValueError("bad frame")

    got = []
    with pytest.raises(ValueError, match="bad frame"):
        for item in in_background(broken(), 2, name="t"):
            got.append(item)
    assert got == [1]


def test_a_consumer_that_stops_early_stops_the_thread() -> None:
    produced = []

    def endless() -> Iterator[int]:
        n = 0
        while True:
            produced.append(n)
            yield n
            n += 1

    stream = in_background(endless(), 2, name="gkaan-test-handover")
    assert next(stream) == 0
    stream.close()  # leaving the loop early
    assert not any(t.name == "gkaan-test-handover" for t in threading.enumerate())
    assert len(produced) <= 5  # at most ``ahead`` in advance, then stopped
