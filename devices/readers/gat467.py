"""Resident ID card readers on a serial or USB-serial port speaking GA/T 467 frames (pyserial).

Frames: ``AA AA AA 96 69 | LEN (2, big-endian) | payload | CHK``, LEN counting the payload and
CHK, CHK the XOR of LEN and payload. A command's payload is CMD PARA [data]; a reply's is
SW1 SW2 SW3 [data]. FrameParser takes bytes in any chunking and gives frames, or typed errors
for what the line did wrong, resynchronising on the next preamble.

Gat467Reader owns one device thread per reader: it opens the configured port (or finds the
reader by probing candidate ports with the SAM status command), checks the SAM, polls for cards
(find 20 01 → select 20 02 → read base message 30 01) and reports events. Every exchange with the
reader has a deadline; nothing here ever blocks the caller of start() or stop().

With a pin file (SerialSettings.pin_path) the reader found first is pinned (serial_pin.py): later
starts open the pinned port only, and a reader answering on another port, or a device with other
USB attributes or another SAM id, is refused with READER_MISMATCH until staff forget the pin.
"""

from __future__ import annotations

import contextlib
import logging
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import serial
import serial.tools.list_ports

from devices.identity import Identity
from devices.readers.base import EventKind, EventSink, ReaderError, ThreadedReader
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
from devices.readers.serial_pin import (
    AttributeLookup,
    PinDamaged,
    PinStore,
    ReaderPin,
    UsbAttributes,
    compare,
    usb_attributes,
)

log = logging.getLogger(__name__)

PREAMBLE = b"\xaa\xaa\xaa\x96\x69"
HEADER_SIZE = len(PREAMBLE) + 2
MIN_LENGTH = 3  # CMD PARA CHK: the shortest frame, a command without data
# The longest reply: base message with fingerprint (3 + 6 + 256 + 1024 + 1024 + 1).
MAX_LENGTH = 2560

SAM_STATUS = (0x11, 0xFF)
SAM_RESET = (0x10, 0xFF)
SAM_ID = (0x12, 0xFF)
FIND_CARD = (0x20, 0x01)
SELECT_CARD = (0x20, 0x02)
READ_BASE = (0x30, 0x01)
READ_BASE_FINGERPRINT = (0x30, 0x10)

LINE_RATE_BYTES_PER_S = 11_520  # 115200 baud, 8N1: ten bits a byte


def checksum(data: bytes | bytearray | memoryview) -> int:
    value = 0
    for byte in data:
        value ^= byte
    return value


def build_frame(payload: bytes) -> bytes:
    length = len(payload) + 1
    if not MIN_LENGTH <= length <= 0xFFFF:
        raise ValueError(f"payload of {len(payload)} bytes cannot be framed")
    head = length.to_bytes(2, "big")
    return PREAMBLE + head + payload + bytes((checksum(head + payload),))


def build_command(cmd: int, para: int, data: bytes = b"") -> bytes:
    return build_frame(bytes((cmd, para)) + data)


def build_response(sw3: int, data: bytes = b"", *, sw1: int = 0, sw2: int = 0) -> bytes:
    return build_frame(bytes((sw1, sw2, sw3)) + data)


@dataclass(frozen=True, slots=True)
class Frame:
    payload: bytes  # between LEN and CHK


@dataclass(frozen=True, slots=True)
class Response:
    sw1: int
    sw2: int
    sw3: int
    data: bytes

    @classmethod
    def from_frame(cls, frame: Frame) -> Response:
        p = frame.payload
        if len(p) < 3:
            raise BadLength(f"reply of {len(p)} bytes has no status")
        return cls(p[0], p[1], p[2], p[3:])


class FrameError(Exception):
    """Something on the line that is not a good frame. The parser reports these as values and
    carries on; the link raises them when a reply is spoiled."""


class GarbageSkipped(FrameError):
    def __init__(self, count: int) -> None:
        super().__init__(f"{count} bytes before a preamble skipped")
        self.count = count


class ChecksumMismatch(FrameError):
    pass


class BadLength(FrameError):
    pass


class TruncatedFrame(FrameError):
    pass


ParserItem = Frame | FrameError


def _prefix_tail(buffer: bytearray) -> int:
    """How many bytes at the end of buffer could be the start of a preamble."""
    for keep in range(min(len(PREAMBLE) - 1, len(buffer)), 0, -1):
        if buffer.endswith(PREAMBLE[:keep]):
            return keep
    return 0


class FrameParser:
    """Incremental GA/T 467 deframer: feed() any chunks, flush() at the end of a reply."""

    def __init__(self, *, min_length: int = MIN_LENGTH, max_length: int = MAX_LENGTH) -> None:
        self._buffer = bytearray()
        self._min = min_length
        self._max = max_length

    @property
    def in_frame(self) -> bool:
        """A preamble (or the start of one) is waiting for the rest of its frame."""
        return bool(self._buffer)

    def reset(self) -> None:
        self._buffer.clear()

    def feed(self, data: bytes) -> list[ParserItem]:
        self._buffer += data
        return self._drain(final=False)

    def flush(self) -> list[ParserItem]:
        """No more bytes are coming: whatever is still buffered is reported."""
        return self._drain(final=True)

    def _drop_candidate(self, final: bool) -> int:
        """Forget the frame starting at 0: up to the next preamble, or all that cannot start one."""
        buf = self._buffer
        following = buf.find(PREAMBLE, 1)
        if following < 0:
            following = len(buf) - (0 if final else _prefix_tail(buf[1:]))
        del buf[:following]
        return following

    def _drain(self, final: bool) -> list[ParserItem]:
        out: list[ParserItem] = []
        buf = self._buffer
        while buf:
            start = buf.find(PREAMBLE)
            if start < 0:
                skipped = len(buf) - (0 if final else _prefix_tail(buf))
                if skipped:
                    del buf[:skipped]
                    out.append(GarbageSkipped(skipped))
                break
            if start:
                del buf[:start]
                out.append(GarbageSkipped(start))
            if len(buf) < HEADER_SIZE:
                if final:
                    out.append(TruncatedFrame(f"frame cut short after {len(buf)} bytes"))
                    self._drop_candidate(final)
                    continue
                break
            length = int.from_bytes(buf[5:7], "big")
            if not self._min <= length <= self._max:
                self._drop_candidate(final)
                out.append(BadLength(f"length field {length} out of range"))
                continue
            total = HEADER_SIZE + length
            if len(buf) < total:
                if final:
                    got = len(buf)
                    self._drop_candidate(final)
                    out.append(TruncatedFrame(f"frame cut short: {got} of {total} bytes"))
                    continue
                break
            if checksum(memoryview(buf)[5 : total - 1]) != buf[total - 1]:
                self._drop_candidate(final)
                out.append(ChecksumMismatch(f"check byte wrong in a {total}-byte frame"))
                continue
            out.append(Frame(bytes(buf[HEADER_SIZE : total - 1])))
            del buf[:total]
        return out


def split_base_message(data: bytes) -> tuple[bytes, bytes]:
    """The text and photo blocks of a read-base-message reply's data."""
    if len(data) < 4:
        raise BadLength("base message has no block lengths")
    text_len = int.from_bytes(data[0:2], "big")
    photo_len = int.from_bytes(data[2:4], "big")
    if text_len != TEXT_SIZE or photo_len != PHOTO_SIZE or len(data) != 4 + text_len + photo_len:
        raise BadLength(
            f"base message blocks {text_len}+{photo_len} in {len(data) - 4} bytes of data"
        )
    return data[4 : 4 + TEXT_SIZE], data[4 + TEXT_SIZE :]


# -- the serial link ---------------------------------------------------------------------------


class LinkError(Exception):
    pass


class LinkGone(LinkError):
    """The port failed: unplugged, closed or taken away."""


class LinkTimeout(LinkError):
    """No reply, or not a complete one, before the deadline."""


class LinkStopped(LinkError):
    """The reader is being stopped."""


# A read returns at its first byte or after this slice; the port's timeout is set once, as each
# change reconfigures the port (on USB-serial adapters a control transfer).
_SLICE_S = 0.02
_SETTLE_S = 0.05  # after a spoiled frame, how long a quiet line means nothing better is coming

# An unplugged port fails in whichever call comes first, and tcflush raises termios.error.
PORT_ERRORS: tuple[type[Exception], ...] = (serial.SerialException, OSError)
if sys.platform != "win32":
    import termios

    PORT_ERRORS += (termios.error,)
# Opening adds ValueError: a malformed port name.
OPEN_ERRORS: tuple[type[Exception], ...] = (*PORT_ERRORS, ValueError)


def open_port(port: str, baudrate: int) -> serial.Serial:
    """The port opened exclusively, so two programs never talk to one reader at once."""
    return serial.Serial(port, baudrate, timeout=_SLICE_S, write_timeout=1.0, exclusive=True)


class Link:
    """Command/reply exchanges with one reader over an open port, each within a deadline."""

    def __init__(
        self,
        port: serial.Serial,
        *,
        stop: threading.Event | None = None,
        inter_byte_timeout_s: float = 0.25,
    ) -> None:
        self._port = port
        self._stop = stop or threading.Event()
        self._gap = inter_byte_timeout_s
        self._parser = FrameParser()

    def close(self) -> None:
        with contextlib.suppress(*PORT_ERRORS):
            self._port.close()

    def transact(self, command: tuple[int, int], timeout: float, data: bytes = b"") -> Response:
        frame = build_command(command[0], command[1], data)
        try:
            # A late reply to an earlier command must not be taken for this one's.
            self._port.reset_input_buffer()
            self._parser.reset()
            self._port.write(frame)
        except PORT_ERRORS as exc:
            raise LinkGone(f"write failed: {type(exc).__name__}") from exc
        return Response.from_frame(self._receive(timeout))

    def _receive(self, timeout: float) -> Frame:
        deadline = time.monotonic() + timeout
        last_byte_at = time.monotonic()
        spoiled: FrameError | None = None
        while True:
            if self._stop.is_set():
                raise LinkStopped("stopping")
            now = time.monotonic()
            limit = deadline
            if self._parser.in_frame:
                limit = min(limit, last_byte_at + self._gap)
            if spoiled is not None:
                limit = min(limit, last_byte_at + _SETTLE_S)
            if now >= limit:
                frame, spoiled = _take(self._parser.flush(), spoiled)
                if frame is not None:
                    return frame
                if spoiled is not None:
                    raise spoiled
                if now >= deadline:
                    raise LinkTimeout(f"no reply within {timeout:.2f} s")
                continue  # only a stray byte was waiting: keep listening until the deadline
            try:
                chunk = self._port.read(max(1, self._port.in_waiting))
            except PORT_ERRORS as exc:
                raise LinkGone(f"read failed: {type(exc).__name__}") from exc
            if chunk:
                stalled = self._parser.in_frame and time.monotonic() - last_byte_at > self._gap
                last_byte_at = time.monotonic()
                frame, spoiled = self._accept(chunk, spoiled, stalled)
                if frame is not None:
                    return frame

    def _accept(
        self, chunk: bytes, spoiled: FrameError | None, stalled: bool
    ) -> tuple[Frame | None, FrameError | None]:
        if stalled:
            # The frame paused for longer than a reader ever does: it was cut short.
            frame, spoiled = _take(self._parser.flush(), spoiled)
            if frame is not None:
                return frame, spoiled
            raise spoiled or TruncatedFrame("frame stalled")
        return _take(self._parser.feed(chunk), spoiled)


def _take(
    items: list[ParserItem], spoiled: FrameError | None
) -> tuple[Frame | None, FrameError | None]:
    """The first good frame among items, and the first real problem seen so far."""
    for item in items:
        if isinstance(item, Frame):
            if spoiled is not None:
                log.info("good frame after a spoiled one: %s", spoiled)
            return item, spoiled
        if isinstance(item, GarbageSkipped):
            log.debug("%s", item)
        elif spoiled is None:
            spoiled = item
    return None, spoiled


# -- finding the reader ------------------------------------------------------------------------


def candidate_ports() -> list[str]:
    """Serial ports the system knows, USB ones (where readers usually are) first."""
    ports = serial.tools.list_ports.comports()
    return [p.device for p in sorted(ports, key=lambda p: (p.vid is None, p.device))]


def probe(port: str, *, baudrate: int = 115200, timeout: float = 0.3) -> bool:
    """True when a GA/T 467 reader answers the SAM status command on port."""
    try:
        handle = open_port(port, baudrate)
    except OPEN_ERRORS:
        return False
    link = Link(handle, inter_byte_timeout_s=min(0.1, timeout))
    try:
        link.transact(SAM_STATUS, timeout)
    except (LinkError, FrameError):
        return False
    finally:
        link.close()
    return True  # any well-formed reply, even a SAM fault, is a reader


def detect_port(
    candidates: Sequence[str] | None = None,
    *,
    baudrate: int = 115200,
    probe_timeout_s: float = 0.3,
    deadline_s: float = 2.0,
    exclude: Sequence[str] = (),
) -> str | None:
    """The first candidate where a reader answers, probing all at once within deadline_s.

    Probing writes a SAM status command to each port: list the ports of other serial devices
    (a receipt printer, say) in exclude.
    """
    listed = candidate_ports() if candidates is None else candidates
    ports = [p for p in listed if p not in exclude]
    answers: dict[str, bool] = {}
    done = threading.Condition()

    def run(port: str) -> None:
        answered = probe(port, baudrate=baudrate, timeout=probe_timeout_s)
        with done:
            answers[port] = answered
            done.notify_all()

    for port in ports:
        threading.Thread(target=run, args=(port,), name=f"probe:{port}", daemon=True).start()
    end = time.monotonic() + deadline_s
    with done:
        while True:
            # The earliest candidate that answered wins once every one before it has said no.
            for port in ports:
                if port not in answers:
                    break
                if answers[port]:
                    return port
            else:
                return None
            remaining = end - time.monotonic()
            if remaining <= 0:
                return None
            done.wait(remaining)


# -- the backend -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SerialSettings:
    port: str | None = None  # None: find the reader among the system's serial ports
    baudrate: int = 115200
    poll_interval_s: float = 0.05  # between find-card commands
    command_timeout_s: float = 0.5  # SAM status, find, select
    read_timeout_s: float = 3.0  # read base message: the reader works with the card and its SAM
    inter_byte_timeout_s: float = 0.25  # silence inside a frame: the frame is cut short
    reconnect_interval_s: float = 1.0
    detect_interval_s: float = 5.0  # between searches when no reader answers
    probe_timeout_s: float = 0.3
    detect_deadline_s: float = 2.0
    exclude_ports: tuple[str, ...] = ()
    # Where the trusted reader is recorded (serial_pin.py); None: whatever answers is used.
    pin_path: Path | None = None
    removal_misses: int = 2  # failed finds in a row before a card counts as taken away
    max_read_attempts: int = 3  # per card placement
    unanswered_limit: int = 3  # unanswered polls in a row before the reader counts as gone


class _ReaderLost(Exception):
    pass


class _Refused(Exception):
    """A reader this terminal must not use (or cannot know whether to): reported, not served."""

    def __init__(self, error: ReaderError, detail: str) -> None:
        super().__init__(detail)
        self.error = error
        self.detail = detail


def read_sam_id(link: Link, timeout: float) -> str | None:
    """The reader's SAM id (hex of its reply), or None when it answers without one."""
    reply = link.transact(SAM_ID, timeout)
    if reply.sw3 != SW_OK or not reply.data:
        return None
    return reply.data.hex()


class Gat467Reader(ThreadedReader):
    """A GA/T 467 reader on a serial port; start() returns at once, events come from its thread."""

    def __init__(
        self,
        name: str = "ID card reader",
        settings: SerialSettings | None = None,
        *,
        candidates: Callable[[], Sequence[str]] | None = None,
        usb_lookup: AttributeLookup | None = None,
    ) -> None:
        super().__init__(name)
        self._settings = settings or SerialSettings()
        self._candidates = candidates or candidate_ports
        self._usb_lookup = usb_lookup or usb_attributes
        self._pins = PinStore(self._settings.pin_path) if self._settings.pin_path else None
        self.port: str | None = None  # the port in use, for diagnostics
        # The device thread's view of the pin: as loaded at the last connect, and what the
        # system said about the port then. _sam_checked: the SAM id was compared (or recorded).
        self._pin: ReaderPin | None = None
        self._usb: UsbAttributes | None = None
        self._sam_checked = False

    # -- the device thread ---------------------------------------------------------------------
    def _run(self, sink: EventSink) -> None:
        s = self._settings
        presence = Presence(
            self._name, sink, removal_misses=s.removal_misses, max_attempts=s.max_read_attempts
        )
        wait_s = s.reconnect_interval_s if s.port else s.detect_interval_s
        reported: ReaderError | None = None  # the problem said last: not said again while it lasts
        while not self._stop.is_set():
            try:
                link = self._connect()
                sam = None if link is None else self._first_sam_status(link)
                if link is None or sam is None:
                    self._look_elsewhere()
            except LinkStopped:
                return
            except _Refused as exc:
                reported = self._refuse(exc, presence, reported)
                self._stop.wait(wait_s)
                continue
            if link is None or sam is None:
                if reported is not ReaderError.READER_GONE:
                    presence.error(ReaderError.READER_GONE, "no reader answers")
                    reported = ReaderError.READER_GONE
                self._stop.wait(wait_s)
                continue
            added = False
            try:
                sam_ok = sam == SW_OK
                self._settle_pin(link, sam_ok)
                reported = None
                presence.emit(EventKind.READER_ADDED, detail=self.port or "")
                added = True
                self._serve(link, presence, self._sam_verdict(sam, presence, reported=False))
            except LinkStopped:
                return
            except _ReaderLost as exc:
                log.warning("reader %s lost: %s", self._name, exc)
                presence.forget()
                if added:
                    presence.emit(EventKind.READER_REMOVED, detail=str(exc))
                    reported = ReaderError.READER_GONE  # READER_REMOVED has said so already
            except _Refused as exc:
                presence.forget()
                if added:
                    presence.emit(EventKind.READER_REMOVED, detail=exc.detail)
                reported = self._refuse(exc, presence, reported)
            finally:
                link.close()
            self._stop.wait(s.reconnect_interval_s)

    def _first_sam_status(self, link: Link) -> int | None:
        """The SAM status of a freshly opened port, or None (closed) when nothing answers."""
        try:
            return link.transact(SAM_STATUS, self._settings.command_timeout_s).sw3
        except LinkStopped:
            link.close()
            raise
        except (LinkError, FrameError) as exc:
            log.info("no SAM status from %s: %s", self.port, exc)
            link.close()
            return None

    def _refuse(
        self, refusal: _Refused, presence: Presence, reported: ReaderError | None
    ) -> ReaderError:
        if reported is not refusal.error:
            log.error("reader %s refused: %s", self._name, refusal.detail)
            presence.error(refusal.error, refusal.detail)
        return refusal.error

    def _connect(self) -> Link | None:
        s = self._settings
        self._pin = self._load_pin()
        port = s.port or (self._pin.port if self._pin else None)
        if port is None:
            port = detect_port(
                list(self._candidates()),
                baudrate=s.baudrate,
                probe_timeout_s=s.probe_timeout_s,
                deadline_s=s.detect_deadline_s,
                exclude=s.exclude_ports,
            )
            if port is None:
                return None
        try:
            handle = open_port(port, s.baudrate)
        except OPEN_ERRORS as exc:
            log.info("reader port %s cannot be opened: %s", port, type(exc).__name__)
            return None
        self.port = port
        link = Link(handle, stop=self._stop, inter_byte_timeout_s=s.inter_byte_timeout_s)
        if self._pins is not None:
            # Looked up with the port open: a port that is there but reports other attributes
            # (or none) is another device; nothing has been written to it yet.
            self._usb = self._usb_lookup(port)
            if self._pin is not None:
                mismatch = compare(self._pin, usb=self._usb)
                if mismatch:
                    link.close()
                    raise _Refused(ReaderError.READER_MISMATCH, f"{port}: {mismatch.describe()}")
        return link

    def _load_pin(self) -> ReaderPin | None:
        if self._pins is None:
            return None
        try:
            return self._pins.load()
        except PinDamaged as exc:
            raise _Refused(
                ReaderError.READER_PIN_DAMAGED, f"reader pin {self._pins.path}: {exc}"
            ) from exc

    def _look_elsewhere(self) -> None:
        """The pinned reader is not on its port: say so plainly if a reader answers elsewhere."""
        s = self._settings
        pin = self._pin
        if s.port is not None or pin is None:
            return
        other = detect_port(
            list(self._candidates()),
            baudrate=s.baudrate,
            probe_timeout_s=s.probe_timeout_s,
            deadline_s=s.detect_deadline_s,
            exclude=(*s.exclude_ports, pin.port),
        )
        if other is not None:
            raise _Refused(
                ReaderError.READER_MISMATCH,
                f"a reader answers on {other}, but the reader is pinned to {pin.port}",
            )

    def _settle_pin(self, link: Link, sam_ok: bool) -> None:
        """Pin the reader just found, or check it against the pin: its SAM id can be asked only
        while the SAM is well, so with a faulty SAM this is done again once it recovers."""
        self._sam_checked = sam_ok
        if self._pins is None or self.port is None:
            return
        sam_id = self._sam_id(link) if sam_ok else None
        pin = self._pin
        if pin is None:
            self._save_pin(ReaderPin(port=self.port, usb=self._usb, sam_id=sam_id))
            return
        mismatch = compare(pin, usb=self._usb, sam_id=sam_id, check_sam=sam_ok)
        if mismatch:
            raise _Refused(ReaderError.READER_MISMATCH, f"{self.port}: {mismatch.describe()}")
        if pin.port != self.port or (pin.sam_id is None and sam_id is not None):
            # The configuration moved the port, or the SAM id is given for the first time.
            self._save_pin(replace(pin, port=self.port, sam_id=pin.sam_id or sam_id))

    def _sam_id(self, link: Link) -> str | None:
        try:
            return read_sam_id(link, self._settings.command_timeout_s)
        except LinkGone as exc:
            raise _ReaderLost(f"no SAM id: {exc}") from exc
        except (LinkTimeout, FrameError) as exc:
            # Some readers do not answer the command at all: no id given (refused if pinned).
            log.info("no SAM id from %s: %s", self.port, exc)
            return None

    def _save_pin(self, pin: ReaderPin) -> None:
        assert self._pins is not None  # noqa: S101 - only called with a pin file
        try:
            self._pins.save(pin)
        except OSError as exc:
            # The reader is still the one found; the next connect tries to record it again.
            log.error("reader pin %s not written: %s", self._pins.path, exc)
            return
        self._pin = pin
        log.warning(
            "card reader pinned: %s, USB %s, SAM id %s",
            pin.port,
            pin.usb.describe() if pin.usb else "none",
            pin.sam_id or "not given",
        )

    @staticmethod
    def _sam_verdict(sw3: int, presence: Presence, *, reported: bool) -> bool:
        """True when the SAM is well; a fault is reported unless it was reported already."""
        if sw3 == SW_OK:
            return True
        if not reported:
            status = status_error(sw3)
            error = ReaderError.SAM_FAULT if status.error is ReaderError.OTHER else status.error
            presence.error(error, status.detail)
        return False

    def _ask_sam(self, link: Link, presence: Presence) -> bool:
        try:
            reply = link.transact(SAM_STATUS, self._settings.command_timeout_s)
        except LinkGone as exc:
            raise _ReaderLost(str(exc)) from exc
        except (LinkTimeout, FrameError) as exc:
            raise _ReaderLost(f"no SAM status: {exc}") from exc
        return self._sam_verdict(reply.sw3, presence, reported=True)

    def _recover_sam(self, link: Link, presence: Presence) -> bool:
        """Ask a faulty SAM again; once it is well, the reader's SAM id is checked before use."""
        sam_ok = self._ask_sam(link, presence)
        if sam_ok and not self._sam_checked:
            self._settle_pin(link, sam_ok)
        return sam_ok

    def _serve(self, link: Link, presence: Presence, sam_ok: bool) -> None:
        s = self._settings
        unanswered = 0
        while not self._stop.is_set():
            if not sam_ok:
                # Nothing can be read until the SAM recovers; ask again now and then.
                self._stop.wait(s.reconnect_interval_s)
                sam_ok = self._recover_sam(link, presence)
                continue
            try:
                reply = link.transact(FIND_CARD, s.command_timeout_s)
            except LinkGone as exc:
                raise _ReaderLost(str(exc)) from exc
            except (LinkTimeout, FrameError) as exc:
                unanswered += 1
                log.debug("find card: %s", exc)
                if unanswered >= s.unanswered_limit:
                    raise _ReaderLost(f"{unanswered} polls unanswered") from exc
                self._stop.wait(s.poll_interval_s)
                continue
            unanswered = 0
            if reply.sw3 == SW_FOUND:
                if presence.card_found():
                    failure = self._read_card(link, presence)
                    if failure is ReaderError.SAM_FAULT:
                        sam_ok = False
                    continue  # poll again at once: a failed read is retried while the card stays
            elif reply.sw3 == SW_NO_CARD:
                presence.no_card()
            else:
                status = status_error(reply.sw3)
                if status.error is ReaderError.SAM_FAULT:
                    presence.error(status.error, status.detail)
                    sam_ok = False
                else:
                    log.info("find card answered 0x%02X", reply.sw3)
            self._stop.wait(s.poll_interval_s)

    def _read_card(self, link: Link, presence: Presence) -> ReaderError | None:
        s = self._settings
        try:
            selected = link.transact(SELECT_CARD, s.command_timeout_s)
            if selected.sw3 != SW_OK:
                return self._failed(presence, selected.sw3)
            reply = link.transact(READ_BASE, s.read_timeout_s)
            if reply.sw3 != SW_OK:
                return self._failed(presence, reply.sw3)
            text, photo = split_base_message(reply.data)
            identity: Identity = decode_identity(text, photo, self._name)
        except LinkGone as exc:
            presence.read_failed(ReaderError.READER_GONE, str(exc))
            raise _ReaderLost(str(exc)) from exc
        except LinkTimeout as exc:
            presence.read_failed(ReaderError.TIMEOUT, str(exc))
            return ReaderError.TIMEOUT
        except TruncatedFrame as exc:
            presence.read_failed(ReaderError.TIMEOUT, str(exc))
            return ReaderError.TIMEOUT
        except FrameError as exc:
            presence.read_failed(ReaderError.BAD_DATA, f"{type(exc).__name__}: {exc}")
            return ReaderError.BAD_DATA
        except CardDataError as exc:
            presence.read_failed(exc.error, exc.detail)
            return exc.error
        presence.read_succeeded(identity)
        return None

    @staticmethod
    def _failed(presence: Presence, sw3: int) -> ReaderError:
        status = status_error(sw3)
        presence.read_failed(status.error, status.detail)
        return status.error
