"""The protocol every card reader backend implements, and the events it reports."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import Protocol

from devices.identity import Identity


class EventKind(Enum):
    READER_ADDED = "reader_added"
    READER_REMOVED = "reader_removed"
    CARD_PRESENT = "card_present"
    CARD_REMOVED = "card_removed"
    IDENTITY = "identity"
    ERROR = "error"


class ReaderError(Enum):
    """Why a read failed; the application turns each into advice for the person at the reader."""

    UNSUPPORTED_CARD = "unsupported_card"
    CARD_MOVED = "card_moved"  # taken away or moved before the read finished
    READER_GONE = "reader_gone"
    SAM_FAULT = "sam_fault"  # the reader's security module failed its self-test
    TIMEOUT = "timeout"
    BAD_DATA = "bad_data"  # the card answered something we cannot trust
    ACCESS_KEY_NEEDED = "access_key_needed"  # the chip needs its MRZ data and none was given
    ACCESS_DENIED = "access_denied"  # the chip refused the MRZ data given (typed or configured)
    # A reader answers, but not the one this terminal pinned (another port, other USB attributes
    # or another SAM): it is not used until staff forget the pin.
    READER_MISMATCH = "reader_mismatch"
    READER_PIN_DAMAGED = "reader_pin_damaged"  # the pinned reader's record cannot be read
    OTHER = "other"


@dataclass(frozen=True, slots=True)
class ReaderEvent:
    kind: EventKind
    reader: str
    identity: Identity | None = None
    error: ReaderError | None = None
    detail: str = ""  # for the log; never personal data


EventSink = Callable[[ReaderEvent], None]


class CardReader(Protocol):
    """A reader backend. start() returns at once; events arrive on the backend's own thread."""

    @property
    def name(self) -> str: ...

    def start(self, sink: EventSink) -> None: ...

    def stop(self, timeout: float = 2.0) -> None: ...


class ThreadedReader:
    """The lifecycle of a backend with one device thread: start() spawns the thread (returning
    at once), stop() asks it to end and waits up to its timeout. Subclasses implement _run, which
    must return soon after self._stop is set."""

    _log = logging.getLogger("devices.readers")

    def __init__(self, name: str) -> None:
        self._name = name
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def name(self) -> str:
        return self._name

    def start(self, sink: EventSink) -> None:
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(
            target=self._run, args=(sink,), name=f"reader:{self._name}", daemon=True
        )
        self._thread.start()

    def stop(self, timeout: float = 2.0) -> None:
        thread, self._thread = self._thread, None
        if thread is None:
            return
        self._stop.set()
        thread.join(timeout)
        if thread.is_alive():
            self._log.warning("reader %s: %s", self._name, self._stuck_reason(timeout))

    def _stuck_reason(self, timeout: float) -> str:
        return f"did not stop within {timeout:.1f} s"

    def _run(self, sink: EventSink) -> None:
        raise NotImplementedError
