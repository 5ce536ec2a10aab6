"""Work handed from a background thread to the caller's through a bounded queue: decoding
overlaps the backbone in ``predict``, timelines, live sources and ``prepare`` (one mechanism
for all of them).

The thread makes no torch calls: a second OpenMP team would spin on the cores the backbone
needs. An exception in the thread is raised in the consumer's; leaving the ``with`` block
(or the loop) stops the thread at its next hand-over.
"""

from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Iterable, Iterator
from typing import Generic, TypeVar

__all__ = ["Producer", "in_background"]

_Item = TypeVar("_Item")
_P = TypeVar("_P", bound="Producer")  # type: ignore[type-arg]


class _Done:
    """End-of-stream marker put on the queue by the thread."""


class Producer(Generic[_Item]):
    """A background thread that hands items over, at most ``ahead`` in advance.

    Subclasses put their items with :meth:`_put` in :meth:`_run`, then :meth:`_finish`, or
    :meth:`_fail` with an exception. Use as ``with producer: for item in producer: ...``.
    """

    def __init__(self, ahead: int, *, name: str = "gkaan-decode") -> None:
        self._queue: queue.Queue[_Item | _Done | BaseException] = queue.Queue(ahead)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def __enter__(self: _P) -> _P:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self, timeout: float | None = None) -> None:
        """Stop the thread at its next hand-over and wait for it (at most ``timeout``
        seconds: a thread blocked in a read is left to end on its own, it is a daemon)."""
        self._stop.set()
        self._thread.join(timeout)

    @property
    def running(self) -> bool:
        """Whether the thread is still alive."""
        return self._thread.is_alive()

    def __iter__(self) -> Iterator[_Item]:
        while True:
            item = self._queue.get()
            if isinstance(item, _Done):
                return
            if isinstance(item, BaseException):
                raise item
            yield item

    def _put(self, item: _Item | _Done | BaseException) -> bool:
        """Hand ``item`` over; False once the consumer has stopped the thread."""
        while not self._stop.is_set():
            with contextlib.suppress(queue.Full):
                self._queue.put(item, timeout=0.1)
                return True
        return False

    def _finish(self) -> None:
        """The end of the items."""
        self._put(_Done())

    def _fail(self, error: BaseException) -> None:
        """Hand ``error`` to the consumer, who raises it."""
        self._put(error)

    def _run(self) -> None:
        raise NotImplementedError


class _Items(Producer[_Item]):
    def __init__(self, items: Iterable[_Item], ahead: int, name: str) -> None:
        super().__init__(ahead, name=name)
        self._items = items

    def _run(self) -> None:
        try:
            for item in self._items:
                if not self._put(item):
                    return
            self._finish()
        except BaseException as error:  # handed to the consumer
            self._fail(error)


def in_background(items: Iterable[_Item], ahead: int, *, name: str) -> Iterator[_Item]:
    """``items``, produced in a background thread (a :class:`Producer`) at most ``ahead``
    in advance; an exception there is raised here."""
    with _Items(items, ahead, name) as producer:
        yield from producer
