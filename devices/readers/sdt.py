"""Resident ID card readers through the vendor SDK most of them ship (sdtapi.dll / libsdtapi.so),
loaded with ctypes from a path the configuration gives.

The six functions used, as vendors declare them (``__stdcall`` on Windows, the C convention
elsewhere); ports are 1–16 for serial COM ports and 1001–1016 for USB, iIfOpen 0 means "the port
is already open":

    int SDT_OpenPort(int iPort);
    int SDT_ClosePort(int iPort);
    int SDT_GetSAMStatus(int iPort, int iIfOpen);
    int SDT_StartFindIDCard(int iPort, unsigned char *pucIIN, int iIfOpen);   4 bytes out
    int SDT_SelectIDCard(int iPort, unsigned char *pucSN, int iIfOpen);       8 bytes out
    int SDT_ReadBaseMsg(int iPort, unsigned char *pucCHMsg, unsigned int *puiCHMsgLen,
                        unsigned char *pucPHMsg, unsigned int *puiPHMsgLen, int iIfOpen);

They return the reader's status codes (0x90 done, 0x9F card found, 0x80 no card, ...; see
resident_id.STATUS) or the library's own transport codes 0x01–0x06.

Every call into the library is made on the reader's one device thread. A native call cannot be
interrupted, so each is bounded by a watchdog instead: when a call overruns its time, the
watchdog reports TIMEOUT and READER_REMOVED at once, stop() returns within its own timeout, and
the stuck thread (a daemon) abandons the library's port when the call finally returns.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from devices.readers.base import (
    EventKind,
    EventSink,
    ReaderError,
    ReaderEvent,
    ThreadedReader,
)
from devices.readers.resident_id import (
    PHOTO_SIZE,
    SW_FOUND,
    SW_NO_CARD,
    SW_OK,
    TEXT_SIZE,
    CardDataError,
    Presence,
    decode_identity,
    status_error,
)

log = logging.getLogger(__name__)

USB_PORTS = tuple(range(1001, 1017))
SERIAL_PORTS = tuple(range(1, 17))

# The library's own failures, as opposed to the reader's status codes.
TRANSPORT: dict[int, str] = {
    0x01: "port not open or not valid",
    0x02: "no reply in time",
    0x03: "transfer error",
    0x04: "USB device not configured",
    0x05: "SAM port unusable",
    0x06: "USB device disabled",
}
_BUFFER = 4096  # the blocks are 256 and 1024 bytes; room to spare against a careless library


class SdtLibrary:
    """The vendor library's functions with their C signatures. Load it on the thread that will
    call it: some libraries do work in their initialiser."""

    def __init__(self, path: Path | str) -> None:
        loader = ctypes.WinDLL if sys.platform == "win32" else ctypes.CDLL  # type: ignore[attr-defined,unused-ignore]
        lib = loader(str(path))
        c_int, c_uint, bytes_p = ctypes.c_int, ctypes.c_uint, ctypes.POINTER(ctypes.c_ubyte)
        uint_p = ctypes.POINTER(c_uint)
        self._open = self._bind(lib, "SDT_OpenPort", c_int)
        self._close = self._bind(lib, "SDT_ClosePort", c_int)
        self._sam = self._bind(lib, "SDT_GetSAMStatus", c_int, c_int)
        self._find = self._bind(lib, "SDT_StartFindIDCard", c_int, bytes_p, c_int)
        self._select = self._bind(lib, "SDT_SelectIDCard", c_int, bytes_p, c_int)
        self._read = self._bind(
            lib, "SDT_ReadBaseMsg", c_int, bytes_p, uint_p, bytes_p, uint_p, c_int
        )

    @staticmethod
    def _bind(lib: ctypes.CDLL, name: str, *argtypes: type) -> Callable[..., int]:
        function = getattr(lib, name)
        function.argtypes = argtypes
        function.restype = ctypes.c_int
        return function  # type: ignore[no-any-return]

    def open_port(self, port: int) -> int:
        return self._open(port)

    def close_port(self, port: int) -> int:
        return self._close(port)

    def sam_status(self, port: int) -> int:
        return self._sam(port, 0)

    def find_card(self, port: int) -> int:
        iin = (ctypes.c_ubyte * 64)()
        return self._find(port, iin, 0)

    def select_card(self, port: int) -> int:
        sn = (ctypes.c_ubyte * 64)()
        return self._select(port, sn, 0)

    def read_base(self, port: int) -> tuple[int, bytes, bytes]:
        text, photo = (ctypes.c_ubyte * _BUFFER)(), (ctypes.c_ubyte * _BUFFER)()
        text_len, photo_len = ctypes.c_uint(0), ctypes.c_uint(0)
        code = self._read(port, text, ctypes.byref(text_len), photo, ctypes.byref(photo_len), 0)
        return (
            code,
            bytes(text[: min(text_len.value, _BUFFER)]),
            bytes(photo[: min(photo_len.value, _BUFFER)]),
        )


class _Watchdog:
    """Notices a library call overrunning its bound while the device thread is stuck in it."""

    def __init__(self, name: str, on_overrun: Callable[[str, float], None]) -> None:
        self._on_overrun = on_overrun
        self._cond = threading.Condition()
        self._deadline: float | None = None
        self._what = ""
        self._limit = 0.0
        self._closed = False
        self.overran = False
        self._thread = threading.Thread(target=self._run, name=f"watchdog:{name}", daemon=True)
        self._thread.start()

    @contextlib.contextmanager
    def bound(self, what: str, limit: float) -> Iterator[None]:
        with self._cond:
            self._deadline = time.monotonic() + limit
            self._what, self._limit = what, limit
            self._cond.notify_all()
        try:
            yield
        finally:
            with self._cond:
                self._deadline = None
                self._cond.notify_all()

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def reset(self) -> None:
        """The overrunning call has returned: bound the next ones afresh."""
        with self._cond:
            self.overran = False

    def _run(self) -> None:
        while True:
            with self._cond:
                while True:
                    if self._closed:
                        return
                    if self._deadline is None or self.overran:
                        self._cond.wait()
                        continue
                    remaining = self._deadline - time.monotonic()
                    if remaining <= 0:
                        break
                    self._cond.wait(remaining)
                self.overran = True
                what, limit = self._what, self._limit
            self._on_overrun(what, limit)


class _Overran(Exception):
    pass


class _Lost(Exception):
    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


@dataclass(frozen=True, slots=True)
class SdtSettings:
    library: Path
    port: int | None = None  # None: the first of USB 1001–1016, then serial 1–16, that opens
    poll_interval_s: float = 0.05
    call_timeout_s: float = 1.0  # open, SAM status, find, select
    read_timeout_s: float = 3.0  # read base message
    reconnect_interval_s: float = 1.0
    removal_misses: int = 2
    max_read_attempts: int = 3
    unanswered_limit: int = 3


class SdtReader(ThreadedReader):
    """A reader behind the vendor SDK; start() returns at once, events come from its thread."""

    def __init__(self, settings: SdtSettings, name: str = "ID card reader (SDK)") -> None:
        super().__init__(name)
        self._settings = settings
        self.port: int | None = None

    def _stuck_reason(self, timeout: float) -> str:
        return "stuck in a vendor call; its thread is left behind"

    # -- the device thread ---------------------------------------------------------------------
    def _run(self, sink: EventSink) -> None:
        s = self._settings
        presence = Presence(
            self._name, sink, removal_misses=s.removal_misses, max_attempts=s.max_read_attempts
        )

        def overrun(what: str, limit: float) -> None:
            # On the watchdog's thread, while the device thread is stuck: tell the application now.
            detail = f"{what} took longer than {limit:.1f} s"
            for event in (
                ReaderEvent(EventKind.ERROR, self._name, error=ReaderError.TIMEOUT, detail=detail),
                ReaderEvent(EventKind.READER_REMOVED, self._name, detail=detail),
            ):
                try:
                    sink(event)
                except Exception:
                    log.exception("reader event sink failed")

        watchdog = _Watchdog(self._name, overrun)
        try:
            self._serve_library(presence, watchdog)
        finally:
            watchdog.close()

    def _serve_library(self, presence: Presence, watchdog: _Watchdog) -> None:
        s = self._settings
        try:
            with watchdog.bound("loading the vendor library", s.call_timeout_s * 5):
                library = SdtLibrary(s.library)
        except (OSError, AttributeError) as exc:
            log.error("vendor library %s unusable: %s", s.library, exc)
            presence.error(
                ReaderError.READER_GONE, f"vendor library unusable: {type(exc).__name__}"
            )
            return
        watchdog.reset()  # a slow load has been reported; the library is here now
        reported_missing = False
        while not self._stop.is_set():
            try:
                opened = self._open(library, watchdog)
                if opened is None:
                    if not reported_missing:
                        presence.error(ReaderError.READER_GONE, "no reader answers")
                        reported_missing = True
                    self._stop.wait(s.reconnect_interval_s)
                    continue
                port, sam = opened
                reported_missing = False
                presence.emit(EventKind.READER_ADDED, detail=f"port {port}")
                try:
                    self._serve(library, watchdog, port, presence, sam)
                finally:
                    if not watchdog.overran:
                        self._call(watchdog, "SDT_ClosePort", library.close_port, port)
            except _Overran as exc:
                # The watchdog has told the application. The call has returned by now: start
                # afresh, as after an unplugged reader.
                log.error("reader %s: %s overran its time", self._name, exc)
                presence.forget()
                watchdog.reset()
                if self.port is not None and not self._stop.is_set():
                    with contextlib.suppress(_Overran):
                        self._call(watchdog, "SDT_ClosePort", library.close_port, self.port)
                    watchdog.reset()
                reported_missing = True
            except _Lost as exc:
                log.warning("reader %s lost: %s", self._name, exc.detail)
                presence.forget()
                presence.emit(EventKind.READER_REMOVED, detail=exc.detail)
                reported_missing = True
            self._stop.wait(s.reconnect_interval_s)

    def _call(
        self, watchdog: _Watchdog, what: str, function: Callable[..., int], *args: int
    ) -> int:
        with watchdog.bound(what, self._settings.call_timeout_s):
            code = function(*args)
        if watchdog.overran:
            raise _Overran(what)
        return code

    def _open(self, library: SdtLibrary, watchdog: _Watchdog) -> tuple[int, int] | None:
        """The port a reader answers on, and its SAM status."""
        s = self._settings
        ports = (s.port,) if s.port is not None else USB_PORTS + SERIAL_PORTS
        for port in ports:
            if self._stop.is_set():
                return None
            if self._call(watchdog, "SDT_OpenPort", library.open_port, port) != SW_OK:
                continue
            sam = self._call(watchdog, "SDT_GetSAMStatus", library.sam_status, port)
            if sam in TRANSPORT:
                self._call(watchdog, "SDT_ClosePort", library.close_port, port)
                continue
            self.port = port
            return port, sam
        return None

    def _serve(
        self, library: SdtLibrary, watchdog: _Watchdog, port: int, presence: Presence, sam: int
    ) -> None:
        s = self._settings
        sam_ok = self._sam_verdict(sam, presence, reported=False)
        unanswered = 0
        while not self._stop.is_set():
            if not sam_ok:
                self._stop.wait(s.reconnect_interval_s)
                code = self._call(watchdog, "SDT_GetSAMStatus", library.sam_status, port)
                if code in TRANSPORT:
                    raise _Lost(TRANSPORT[code])
                sam_ok = self._sam_verdict(code, presence, reported=True)
                continue
            code = self._call(watchdog, "SDT_StartFindIDCard", library.find_card, port)
            if code in TRANSPORT:
                unanswered += 1
                if code == 0x01 or unanswered >= s.unanswered_limit:
                    raise _Lost(f"find card: {TRANSPORT[code]}")
            elif code == SW_FOUND:
                unanswered = 0
                if presence.card_found():
                    if self._read_card(library, watchdog, port, presence) is ReaderError.SAM_FAULT:
                        sam_ok = False
                    continue
            elif code == SW_NO_CARD:
                unanswered = 0
                presence.no_card()
            else:
                unanswered = 0
                status = status_error(code)
                if status.error is ReaderError.SAM_FAULT:
                    presence.error(status.error, status.detail)
                    sam_ok = False
            self._stop.wait(s.poll_interval_s)

    @staticmethod
    def _sam_verdict(code: int, presence: Presence, *, reported: bool) -> bool:
        if code == SW_OK:
            return True
        if not reported:
            status = status_error(code)
            error = ReaderError.SAM_FAULT if status.error is ReaderError.OTHER else status.error
            presence.error(error, status.detail)
        return False

    def _read_card(
        self, library: SdtLibrary, watchdog: _Watchdog, port: int, presence: Presence
    ) -> ReaderError | None:
        code = self._call(watchdog, "SDT_SelectIDCard", library.select_card, port)
        if code != SW_OK:
            return self._failed(presence, code)
        with watchdog.bound("SDT_ReadBaseMsg", self._settings.read_timeout_s):
            code, text, photo = library.read_base(port)
        if watchdog.overran:
            raise _Overran("SDT_ReadBaseMsg")
        if code != SW_OK:
            return self._failed(presence, code)
        if len(text) != TEXT_SIZE or len(photo) != PHOTO_SIZE:
            detail = f"library gave {len(text)} text and {len(photo)} photo bytes"
            presence.read_failed(ReaderError.BAD_DATA, detail)
            return ReaderError.BAD_DATA
        try:
            identity = decode_identity(text, photo, self._name)
        except CardDataError as exc:
            presence.read_failed(exc.error, exc.detail)
            return exc.error
        presence.read_succeeded(identity)
        return None

    @staticmethod
    def _failed(presence: Presence, code: int) -> ReaderError:
        if code in (0x01, 0x04, 0x06):
            presence.read_failed(ReaderError.READER_GONE, TRANSPORT[code])
            raise _Lost(TRANSPORT[code])
        if code == 0x02:
            presence.read_failed(ReaderError.TIMEOUT, TRANSPORT[code])
            return ReaderError.TIMEOUT
        if code in TRANSPORT:
            presence.read_failed(ReaderError.BAD_DATA, TRANSPORT[code])
            return ReaderError.BAD_DATA
        status = status_error(code)
        presence.read_failed(status.error, status.detail)
        return status.error
