"""A simulated reader for demonstrations and tests: cards are presented by calling it."""

from __future__ import annotations

import dataclasses
import queue
import threading

from devices.identity import Identity
from devices.readers.base import EventKind, EventSink, ReaderError, ReaderEvent

_STOP = object()


class SimulatedReader:
    """Behaves like a real reader: one thread of its own, events delivered from it."""

    def __init__(self, name: str = "Demo reader") -> None:
        self._name = name
        self._commands: queue.SimpleQueue[object] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._sink: EventSink | None = None
        self._card: Identity | None = None

    @property
    def name(self) -> str:
        return self._name

    def start(self, sink: EventSink) -> None:
        if self._thread is not None:
            return
        self._sink = sink
        self._thread = threading.Thread(target=self._run, name=f"reader:{self._name}", daemon=True)
        self._thread.start()
        self._commands.put(ReaderEvent(EventKind.READER_ADDED, self._name))

    def stop(self, timeout: float = 2.0) -> None:
        thread, self._thread = self._thread, None
        if thread is None:
            return
        self._commands.put(_STOP)
        thread.join(timeout)

    # Called from any thread, like a hand placing a card.
    def present(self, identity: Identity) -> None:
        self._commands.put(identity)

    def remove(self) -> None:
        self._commands.put(None)

    def fail(self, error: ReaderError, detail: str = "") -> None:
        self._commands.put(ReaderEvent(EventKind.ERROR, self._name, error=error, detail=detail))

    def _run(self) -> None:
        while True:
            command = self._commands.get()
            if command is _STOP:
                return
            if isinstance(command, ReaderEvent):
                self._emit(command)
            elif isinstance(command, Identity):
                if self._card is not None:
                    self._emit(ReaderEvent(EventKind.CARD_REMOVED, self._name))
                self._card = command
                self._emit(ReaderEvent(EventKind.CARD_PRESENT, self._name))
                self._emit(
                    ReaderEvent(EventKind.IDENTITY, self._name, identity=_from(command, self._name))
                )
            elif command is None and self._card is not None:
                self._card = None
                self._emit(ReaderEvent(EventKind.CARD_REMOVED, self._name))

    def _emit(self, event: ReaderEvent) -> None:
        if self._sink is not None:
            self._sink(event)


def _from(identity: Identity, reader: str) -> Identity:
    return identity if identity.source == reader else dataclasses.replace(identity, source=reader)
