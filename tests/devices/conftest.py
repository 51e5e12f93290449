"""What the reader tests share: an event recorder with bounded waits, and the reader simulators."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pytest

from devices.readers.base import EventKind, ReaderError, ReaderEvent


class Events:
    """A reader's sink that remembers what arrived and when, and lets a test wait for it."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self.items: list[ReaderEvent] = []
        self.times: list[float] = []

    def __call__(self, event: ReaderEvent) -> None:
        with self._cond:
            self.items.append(event)
            self.times.append(time.perf_counter())
            self._cond.notify_all()

    def mark(self) -> int:
        with self._cond:
            return len(self.items)

    def kinds(self, since: int = 0) -> list[str]:
        with self._cond:
            return [describe(e) for e in self.items[since:]]

    def wait_for(
        self,
        kind: EventKind,
        *,
        error: ReaderError | None = None,
        since: int = 0,
        timeout: float = 5.0,
    ) -> ReaderEvent:
        """The first event of kind (and error) from index since on; fails after timeout."""

        def found() -> ReaderEvent | None:
            for event in self.items[since:]:
                if event.kind is kind and (error is None or event.error is error):
                    return event
            return None

        with self._cond:
            if not self._cond.wait_for(lambda: found() is not None, timeout):
                raise AssertionError(f"no {kind.value} {error} within {timeout} s: {self.kinds()}")
            event = found()
            assert event is not None
            return event

    def expect_none(self, kind: EventKind, *, since: int, within: float) -> None:
        """Nothing of kind arrives from index since on during the next within seconds."""
        with self._cond:
            arrived = self._cond.wait_for(
                lambda: any(e.kind is kind for e in self.items[since:]), within
            )
        assert not arrived, f"unexpected {kind.value}: {self.kinds()}"

    def count(self, kind: EventKind, since: int = 0) -> int:
        with self._cond:
            return sum(1 for e in self.items[since:] if e.kind is kind)

    def time_of(self, event: ReaderEvent) -> float:
        with self._cond:
            return self.times[self.items.index(event)]


def describe(event: ReaderEvent) -> str:
    return event.kind.value + (f":{event.error.value}" if event.error else "")


def wait_until(condition: Callable[[], bool], timeout: float = 5.0) -> bool:
    """For state that signals nobody (a file a C library writes): look every 10 ms until timeout."""
    deadline = time.monotonic() + timeout
    pause = threading.Event()
    while not condition():
        if time.monotonic() > deadline:
            return False
        pause.wait(0.01)
    return True


@pytest.fixture
def events() -> Events:
    return Events()
