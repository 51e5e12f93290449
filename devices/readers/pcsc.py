"""PC/SC card readers through pyscard: reader hot-plug, card insert and removal, and reads by the
card profile the registry picks.

Threads: one monitor thread waits on SCardGetStatusChange (with the PnP pseudo-reader, so readers
plugged in later appear); each reader gets a device thread of its own that connects, picks the
profile and reads, so a slow card on one reader never holds up another; one watchdog thread puts
a deadline on every blocking PC/SC call. pyscard's low-level `smartcard.scard` functions return
PC/SC result codes rather than raising; those codes are mapped to ReaderError here. A call that
passes its deadline is reported as TIMEOUT at once; whatever the stuck call returns later is
dropped. Each thread holds its own PC/SC context, as pcsc-lite expects.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import queue
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from smartcard import scard  # type: ignore[import-untyped]

from devices.cards.base import CardError, ProfileRegistry
from devices.identity import Identity
from devices.readers.base import EventKind, EventSink, ReaderError, ReaderEvent

log = logging.getLogger(__name__)

PNP_NOTIFICATION = "\\\\?PnP?\\Notification"

_CARD_MOVED = frozenset(
    {
        scard.SCARD_W_REMOVED_CARD,
        scard.SCARD_E_NO_SMARTCARD,
        scard.SCARD_W_RESET_CARD,
        scard.SCARD_E_NOT_TRANSACTED,
        scard.SCARD_W_UNRESPONSIVE_CARD,
        scard.SCARD_W_UNPOWERED_CARD,
        scard.SCARD_E_COMM_DATA_LOST,
        scard.SCARD_E_INVALID_HANDLE,
    }
)
_READER_GONE = frozenset(
    {
        scard.SCARD_E_READER_UNAVAILABLE,
        scard.SCARD_E_UNKNOWN_READER,
        scard.SCARD_E_NO_SERVICE,
        scard.SCARD_E_SERVICE_STOPPED,
        scard.SCARD_E_NO_READERS_AVAILABLE,
        scard.SCARD_F_COMM_ERROR,  # pcsc-lite: the connection to pcscd broke (it died)
    }
)
_UNSUPPORTED = frozenset(
    {
        scard.SCARD_E_PROTO_MISMATCH,
        scard.SCARD_E_CARD_UNSUPPORTED,
        scard.SCARD_W_UNSUPPORTED_CARD,
        scard.SCARD_E_INVALID_ATR,
    }
)
# The monitor's context is lost with the service; it starts over with a new one.
_SERVICE_LOST = frozenset(
    {
        scard.SCARD_E_NO_SERVICE,
        scard.SCARD_E_SERVICE_STOPPED,
        scard.SCARD_E_INVALID_HANDLE,
        scard.SCARD_F_COMM_ERROR,
    }
)


def reader_error(hresult: int) -> ReaderError:
    """What a PC/SC result code means for the person at the reader."""
    if hresult in _CARD_MOVED:
        return ReaderError.CARD_MOVED
    if hresult in _READER_GONE:
        return ReaderError.READER_GONE
    if hresult in _UNSUPPORTED:
        return ReaderError.UNSUPPORTED_CARD
    if hresult == scard.SCARD_E_TIMEOUT:
        return ReaderError.TIMEOUT
    return ReaderError.OTHER


def _describe(hresult: int) -> str:
    return f"{scard.SCardGetErrorMessage(hresult)} ({hresult & 0xFFFFFFFF:08X})"


def _failure(what: str, hresult: int) -> CardError:
    return CardError(reader_error(hresult), f"{what}: {_describe(hresult)}")


# ---- deadlines -------------------------------------------------------------------------------


class _Abandoned(Exception):
    """The read was already reported (as TIMEOUT); the call that finally returned is dropped."""


@dataclass
class _Read:
    """One attempt at reading a card; exactly one outcome is reported for it."""

    reader: str
    deadline: float
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _settled: bool = False

    def settle(self) -> bool:
        with self._lock:
            first = not self._settled
            self._settled = True
            return first

    @property
    def settled(self) -> bool:
        with self._lock:
            return self._settled


class _Watchdog:
    """Calls a callback when a deadline passes before it is disarmed; one thread for all."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._heap: list[tuple[float, int, Callable[[], None]]] = []
        self._armed: set[int] = set()
        self._ids = itertools.count()
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="pcsc:watchdog", daemon=True)
        self._thread.start()

    def arm(self, deadline: float, callback: Callable[[], None]) -> int:
        token = next(self._ids)
        with self._cond:
            heapq.heappush(self._heap, (deadline, token, callback))
            self._armed.add(token)
            self._cond.notify()
        return token

    def disarm(self, token: int) -> None:
        with self._cond:
            self._armed.discard(token)

    def stop(self, timeout: float) -> None:
        with self._cond:
            self._stopping = True
            self._cond.notify()
        self._thread.join(timeout)

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._stopping:
                    while self._heap and self._heap[0][1] not in self._armed:
                        heapq.heappop(self._heap)
                    if not self._heap:
                        self._cond.wait()
                        continue
                    wait = self._heap[0][0] - time.monotonic()
                    if wait <= 0:
                        break
                    self._cond.wait(wait)
                if self._stopping:
                    return
                _deadline, token, callback = heapq.heappop(self._heap)
                self._armed.discard(token)
            try:
                callback()
            except Exception:  # a failing callback must not stop deadlines for other readers
                log.exception("watchdog callback failed")


# ---- the transport a profile talks through ---------------------------------------------------


class _Transport:
    """CardTransport over one connected card handle; every transmit has the read's deadline."""

    def __init__(self, worker: _ReaderWorker, read: _Read, hcard: int, protocol: int) -> None:
        self._worker = worker
        self._read = read
        self._hcard = hcard
        self._protocol = protocol

    def transmit(self, apdu: bytes) -> bytes:
        with self._worker.guarded(self._read, "transmit"):
            hresult, response = scard.SCardTransmit(self._hcard, self._protocol, list(apdu))
        if hresult != scard.SCARD_S_SUCCESS:
            raise _failure("transmit", hresult)
        return bytes(response)


# ---- one reader ------------------------------------------------------------------------------

_CARD, _REMOVED, _RETRY, _GONE, _STOP = "card", "removed", "retry", "gone", "stop"
_TRANSPORT_ERRORS = frozenset(
    {ReaderError.CARD_MOVED, ReaderError.READER_GONE, ReaderError.TIMEOUT}
)
_GET_CHALLENGE = bytes.fromhex("0084000008")


class _ReaderWorker:
    """The device thread of one reader: reports its events in order and reads its cards."""

    def __init__(self, backend: PcscReader, reader: str) -> None:
        self.reader = reader
        self._backend = backend
        self._commands: queue.SimpleQueue[tuple[str, bool]] = queue.SimpleQueue()
        self._card_present = False
        self._thread = threading.Thread(target=self._run, name=f"pcsc:{reader}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def card_inserted(self, mute: bool) -> None:
        self._commands.put((_CARD, mute))

    def card_removed(self) -> None:
        self._commands.put((_REMOVED, False))

    def retry(self) -> None:
        self._commands.put((_RETRY, False))

    def gone(self) -> None:
        self._commands.put((_GONE, False))

    def stop(self) -> None:
        self._commands.put((_STOP, False))

    def join(self, timeout: float) -> None:
        self._thread.join(timeout)

    def _emit(
        self,
        kind: EventKind,
        *,
        identity: Identity | None = None,
        error: ReaderError | None = None,
        detail: str = "",
    ) -> None:
        self._backend.emit(ReaderEvent(kind, self.reader, identity, error, detail))

    def _run(self) -> None:
        self._emit(EventKind.READER_ADDED)
        hresult, context = scard.SCardEstablishContext(scard.SCARD_SCOPE_USER)
        if hresult != scard.SCARD_S_SUCCESS:
            self._emit(EventKind.ERROR, error=reader_error(hresult), detail=_describe(hresult))
            context = None
        try:
            while True:
                command, mute = self._commands.get()
                if command == _STOP or not self._handle(command, mute, context):
                    return
        finally:
            if context is not None:
                scard.SCardReleaseContext(context)

    def _handle(self, command: str, mute: bool, context: int | None) -> bool:
        """Act on one command from the monitor; False when the reader is gone."""
        if command in (_REMOVED, _GONE) and self._card_present:
            self._card_present = False
            self._emit(EventKind.CARD_REMOVED)
        if command == _GONE:
            self._emit(EventKind.READER_REMOVED)
            return False
        if command == _REMOVED:
            return True
        if command == _CARD:
            if self._card_present:
                self._emit(EventKind.CARD_REMOVED)
            self._card_present = True
            self._emit(EventKind.CARD_PRESENT)
        elif not self._card_present:  # a retry with no card on the reader
            return True
        if mute:
            self._emit(
                EventKind.ERROR,
                error=ReaderError.UNSUPPORTED_CARD,
                detail="the card does not answer (mute)",
            )
        elif context is not None:
            self._read_card(context)
        return True

    @contextmanager
    def guarded(self, read: _Read, what: str) -> Iterator[None]:
        """Run one blocking PC/SC call under the read's deadline."""
        if read.settled:
            raise _Abandoned
        deadline = min(read.deadline, time.monotonic() + self._backend.call_timeout)

        def expired() -> None:
            if read.settle():
                self._emit(
                    EventKind.ERROR,
                    error=ReaderError.TIMEOUT,
                    detail=f"{what} did not finish in time",
                )

        token = self._backend.watchdog.arm(deadline, expired)
        try:
            yield
        finally:
            self._backend.watchdog.disarm(token)
        if read.settled:
            raise _Abandoned

    def _card_answers(self, read: _Read, hcard: int, protocol: int) -> bool:
        """Whether the card still answers a harmless command (any status word will do)."""
        with self.guarded(read, "presence check"):
            hresult, _response = scard.SCardTransmit(hcard, protocol, list(_GET_CHALLENGE))
        return bool(hresult == scard.SCARD_S_SUCCESS)

    def _read_card(self, context: int) -> None:
        read = _Read(self.reader, time.monotonic() + self._backend.read_timeout)
        hcard: int | None = None
        protocol = 0
        try:
            with self.guarded(read, "connect"):
                hresult, hcard, protocol = scard.SCardConnect(
                    context,
                    self.reader,
                    scard.SCARD_SHARE_SHARED,
                    scard.SCARD_PROTOCOL_T0 | scard.SCARD_PROTOCOL_T1,
                )
            if hresult != scard.SCARD_S_SUCCESS:
                hcard = None
                raise _failure("connect", hresult)
            identity = self._read_connected(read, hcard, protocol)
            if read.settle():
                self._emit(EventKind.IDENTITY, identity=identity)
        except _Abandoned:
            pass
        except CardError as exc:
            self._report_failure(read, exc, hcard, protocol)
        except Exception as exc:  # a profile bug must end in a clear error, not a dead thread
            log.exception("reading the card in %s failed", self.reader)
            if read.settle():
                self._emit(EventKind.ERROR, error=ReaderError.OTHER, detail=type(exc).__name__)
        finally:
            if hcard is not None:
                # Leave the card as it is: the next read selects the application again, which
                # ends any secure messaging session. A reset would fail on a card that was just
                # pulled, and pcsc-lite then reports the slot empty before it has polled it.
                scard.SCardDisconnect(hcard, scard.SCARD_LEAVE_CARD)

    def _read_connected(self, read: _Read, hcard: int, protocol: int) -> Identity:
        with self.guarded(read, "status"):
            hresult, _name, _state, _protocol, atr = scard.SCardStatus(hcard)
        if hresult != scard.SCARD_S_SUCCESS:
            raise _failure("status", hresult)
        transport = _Transport(self, read, hcard, protocol)
        profile = self._backend.profiles.choose(transport, bytes(atr))
        return profile.read(transport, self.reader)

    def _report_failure(
        self, read: _Read, failure: CardError, hcard: int | None, protocol: int
    ) -> None:
        error = failure.error
        if error not in _TRANSPORT_ERRORS and hcard is not None:
            # A card pulled mid-answer can leave a truncated response behind, which reads as
            # bad data (or worse, as a refusal); if the card no longer answers, it was moved.
            try:
                if not self._card_answers(read, hcard, protocol):
                    error = ReaderError.CARD_MOVED
            except _Abandoned:
                return
        if read.settle():
            self._emit(EventKind.ERROR, error=error, detail=failure.detail)


# ---- the backend -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Slot:
    present: bool
    mute: bool
    count: int


def _slot(state: int) -> _Slot:
    return _Slot(
        present=bool(state & scard.SCARD_STATE_PRESENT),
        mute=bool(state & scard.SCARD_STATE_MUTE),
        count=(state >> 16) & 0xFFFF,
    )


class PcscReader:
    """Every PC/SC reader on the machine (or those `include` accepts), as one backend.

    Events carry the PC/SC reader name; identities carry it as their source. retry(reader)
    reads the card on that reader again (after staff typed the MRZ data, say).
    """

    def __init__(
        self,
        profiles: ProfileRegistry,
        *,
        name: str = "PC/SC",
        call_timeout: float = 2.0,
        read_timeout: float = 15.0,
        poll_timeout: float = 1.0,
        include: Callable[[str], bool] | None = None,
    ) -> None:
        self._name = name
        self.profiles = profiles
        self.call_timeout = call_timeout
        self.read_timeout = read_timeout
        self._poll_ms = max(1, int(poll_timeout * 1000))
        self._include = include or (lambda _reader: True)
        self._sink: EventSink | None = None
        self._emit_lock = threading.Lock()
        self._stopping = threading.Event()
        self._monitor: threading.Thread | None = None
        self._context: int | None = None
        self._context_lock = threading.Lock()
        self._workers: dict[str, _ReaderWorker] = {}
        self._workers_lock = threading.Lock()
        self.watchdog: _Watchdog

    @property
    def name(self) -> str:
        return self._name

    def start(self, sink: EventSink) -> None:
        if self._monitor is not None:
            return
        self._sink = sink
        self._stopping.clear()
        self.watchdog = _Watchdog()
        self._monitor = threading.Thread(target=self._watch, name="pcsc:monitor", daemon=True)
        self._monitor.start()

    def stop(self, timeout: float = 2.0) -> None:
        monitor, self._monitor = self._monitor, None
        if monitor is None:
            return
        end = time.monotonic() + timeout
        self._stopping.set()
        with self._context_lock:
            if self._context is not None:
                scard.SCardCancel(self._context)
        monitor.join(max(0.0, end - time.monotonic()))
        with self._workers_lock:
            workers, self._workers = list(self._workers.values()), {}
        for worker in workers:
            worker.stop()
        for worker in workers:
            worker.join(max(0.0, end - time.monotonic()))
        self.watchdog.stop(max(0.0, end - time.monotonic()))
        with self._emit_lock:
            self._sink = None

    def readers(self) -> list[str]:
        with self._workers_lock:
            return sorted(self._workers)

    def retry(self, reader: str) -> None:
        with self._workers_lock:
            worker = self._workers.get(reader)
        if worker is not None:
            worker.retry()

    def emit(self, event: ReaderEvent) -> None:
        with self._emit_lock:
            if self._sink is not None and not self._stopping.is_set():
                self._sink(event)

    # ---- the monitor thread ------------------------------------------------------------------

    def _watch(self) -> None:
        while not self._stopping.is_set():
            hresult, context = scard.SCardEstablishContext(scard.SCARD_SCOPE_USER)
            if hresult != scard.SCARD_S_SUCCESS:
                log.warning("PC/SC service unavailable: %s", _describe(hresult))
                self._stopping.wait(self._poll_ms / 1000)
                continue
            with self._context_lock:
                self._context = context
            try:
                self._watch_context(context)
            finally:
                with self._context_lock:
                    self._context = None
                scard.SCardReleaseContext(context)
                if not self._stopping.is_set():
                    # The service went away: its readers with it. They come back when it does.
                    self._drop_all()

    def _watch_context(self, context: int) -> None:
        slots: dict[str, int] = {}
        pnp_state = scard.SCARD_STATE_UNAWARE
        relist = True
        while not self._stopping.is_set():
            if relist:
                relist = False
                if not self._sync_readers(context, slots):
                    return
            states = [(reader, state) for reader, state in slots.items()]
            states.append((PNP_NOTIFICATION, pnp_state))
            hresult, changed = scard.SCardGetStatusChange(context, self._poll_ms, states)
            if hresult in (scard.SCARD_E_TIMEOUT, scard.SCARD_E_CANCELLED):
                continue
            if hresult in _SERVICE_LOST:
                log.warning("PC/SC service lost: %s", _describe(hresult))
                return
            if hresult != scard.SCARD_S_SUCCESS:
                # Typically a reader vanished between listing and waiting: list them again.
                relist = True
                self._stopping.wait(0.05)
                continue
            for reader, state, _atr in changed:
                if reader == PNP_NOTIFICATION:
                    if state & scard.SCARD_STATE_CHANGED:
                        relist = True
                    pnp_state = state & ~scard.SCARD_STATE_CHANGED
                    continue
                if state & (scard.SCARD_STATE_UNKNOWN | scard.SCARD_STATE_UNAVAILABLE):
                    relist = True
                    continue
                previous = _slot(slots.get(reader, 0))
                current = _slot(state)
                slots[reader] = state & ~scard.SCARD_STATE_CHANGED
                self._card_change(reader, previous, current)

    def _sync_readers(self, context: int, slots: dict[str, int]) -> bool:
        hresult, names = scard.SCardListReaders(context, [])
        if hresult == scard.SCARD_E_NO_READERS_AVAILABLE:
            names = []
        elif hresult != scard.SCARD_S_SUCCESS:
            log.warning("listing PC/SC readers failed: %s", _describe(hresult))
            return hresult not in _SERVICE_LOST
        wanted = {n for n in names if self._include(n)}
        for gone in set(slots) - wanted:
            del slots[gone]
            with self._workers_lock:
                worker = self._workers.pop(gone, None)
            if worker is not None:
                worker.gone()
        for added in sorted(wanted - set(slots)):
            slots[added] = scard.SCARD_STATE_UNAWARE
            worker = _ReaderWorker(self, added)
            with self._workers_lock:
                self._workers[added] = worker
            worker.start()
        return True

    def _card_change(self, reader: str, previous: _Slot, current: _Slot) -> None:
        with self._workers_lock:
            worker = self._workers.get(reader)
        if worker is None:
            return
        replaced = previous.present and current.present and previous.count != current.count
        if previous.present and (not current.present or replaced):
            worker.card_removed()
        if current.present and (not previous.present or replaced):
            worker.card_inserted(current.mute)

    def _drop_all(self) -> None:
        with self._workers_lock:
            workers, self._workers = list(self._workers.values()), {}
        for worker in workers:
            worker.gone()
