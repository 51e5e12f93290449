"""A receipt printer speaking ESC/POS to a thermal roll printer (network port 9100, USB, serial).

Text goes out as GB18030 in the printer's Chinese character mode, the QR code is drawn by the
printer itself (GS ( k) and the paper is cut at the end. The printer's real-time status
(DLE EOT 1-4) is read before each receipt, so nothing is sent to a printer that cannot print it,
and again after it, so a roll running low or running out mid-receipt is reported truthfully.
"""

from __future__ import annotations

import logging
import math
import os
import shutil
import socket
import threading
import time
import unicodedata
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import urlsplit

import qrcode

from devices.printers.linebreak import wrap_paragraph
from devices.printing import PrintResult, PrintStatus, ReceiptDocument

log = logging.getLogger(__name__)

DEFAULT_TCP_PORT = 9100
DEFAULT_BAUD_RATE = 9600
USB_IN_ENDPOINT = 0x82
USB_OUT_ENDPOINT = 0x01

# A 203 dpi head: 8 dots to the millimetre. 80 mm rolls print 72 mm, 58 mm rolls 48 mm; Font A
# is 12 dots wide, a Chinese character 24.
DOTS_PER_MM = 8
PRINTABLE_DOTS = {80: 576, 58: 384}
COLUMNS = {80: 48, 58: 32}
QR_MIN_SYMBOL_MM = 30  # phone cameras read this from arm's length
QR_MAX_MODULE_DOTS = 16  # the largest GS ( k dot size

# ESC/POS bytes written here directly (the rest come from python-escpos).
ESC = b"\x1b"
GS = b"\x1d"
FS = b"\x1c"
DLE_EOT = b"\x10\x04"
INIT = ESC + b"@"
CHINESE_MODE_ON = FS + b"&"
STATUS_QUERIES = b"".join(DLE_EOT + bytes([n]) for n in (1, 2, 3, 4))
# DLE DC4 fn=8 d1..d7 = 1 3 20 1 6 2 8, "Clear buffer(s)" (Epson ESC/POS Command Reference,
# real-time commands: DLE DC4 (fn = 8)): a real-time command, obeyed even while the printer is
# stopped for paper or an open cover, that drops the receive and print buffers, so a receipt cut
# short is not printed later, in front of the next person. The printer answers 37h 25h 00h.
CLEAR_BUFFER = b"\x10\x14\x08\x01\x03\x14\x01\x06\x02\x08"
CLEAR_RESPONSE = b"\x37\x25\x00"

# Real-time status bytes: bits 1 and 4 are always set, bits 0 and 7 always clear.
_STATUS_FIXED_MASK = 0x93
_STATUS_FIXED_BITS = 0x12
_S1_OFFLINE = 0x08
_S2_COVER_OPEN = 0x04
_S2_STOPPED_PAPER_END = 0x20
_S2_ERROR = 0x40
_S3_CUTTER_ERROR = 0x08
_S3_UNRECOVERABLE = 0x20
_S3_AUTO_RECOVERABLE = 0x40
_S4_NEAR_END = 0x0C
_S4_PAPER_END = 0x60

# PrintResult.detail codes.
NOT_PRINTED = "not_printed"  # the status before the receipt said the printer cannot print
PRINTED = "printed"  # printed, with a warning in the status (paper near end)
INCOMPLETE = "incomplete"  # sent, but the status after it says the receipt may be cut short
NO_STATUS_REPLY = "no_status_reply"
BAD_STATUS_REPLY = "bad_status_reply"
CONNECT_FAILED = "connect_failed"
WRITE_FAILED = "write_failed"
RENDER_FAILED = "render_failed"

_CANNOT_PRINT = frozenset(
    {PrintStatus.PAPER_OUT, PrintStatus.COVER_OPEN, PrintStatus.OFFLINE, PrintStatus.ERROR}
)

# Kinsoku: characters that may not begin or end a line.


@dataclass(frozen=True, slots=True)
class EscposAddress:
    """Where the printer is: tcp (host, port), usb (vendor, product) or serial (device, baud)."""

    kind: Literal["tcp", "usb", "serial"]
    host: str = ""
    port: int = DEFAULT_TCP_PORT
    vendor_id: int = 0
    product_id: int = 0
    device: str = ""
    baud_rate: int = DEFAULT_BAUD_RATE


def parse_address(address: str) -> EscposAddress:
    """tcp://host[:port], usb:VID:PID (hexadecimal) or serial:/dev/ttyX[:baud]; ValueError else."""
    text = address.strip()
    if text.startswith("tcp://"):
        parts = urlsplit(text)
        try:
            port = parts.port
        except ValueError as exc:
            raise ValueError(f"bad port in printer address {address!r}") from exc
        if port == 0:
            raise ValueError(f"bad port in printer address {address!r}")
        if not parts.hostname or parts.path not in ("", "/") or parts.query or parts.fragment:
            raise ValueError(f"bad printer address {address!r}")
        return EscposAddress("tcp", host=parts.hostname, port=port or DEFAULT_TCP_PORT)
    if text.startswith("usb:"):
        ids = text[4:].split(":")
        if len(ids) != 2:
            raise ValueError(f"a USB printer address is usb:VID:PID, not {address!r}")
        try:
            vendor, product = (int(value, 16) for value in ids)
        except ValueError as exc:
            raise ValueError(f"bad USB ids in printer address {address!r}") from exc
        if not (0 < vendor <= 0xFFFF and 0 < product <= 0xFFFF):
            raise ValueError(f"bad USB ids in printer address {address!r}")
        return EscposAddress("usb", vendor_id=vendor, product_id=product)
    if text.startswith("serial:"):
        device, _, baud = text[7:].partition(":")
        if not device:
            raise ValueError(f"a serial printer address is serial:/dev/ttyX, not {address!r}")
        if not baud:
            return EscposAddress("serial", device=device)
        if not baud.isdigit() or int(baud) <= 0:
            raise ValueError(f"bad baud rate in printer address {address!r}")
        return EscposAddress("serial", device=device, baud_rate=int(baud))
    raise ValueError(f"unknown printer address {address!r}: tcp://, usb: or serial:")


def status_from_bytes(reply: bytes) -> PrintStatus:
    """The status told by the four answers to DLE EOT 1, 2, 3 and 4, in that order."""
    if len(reply) != 4 or any(b & _STATUS_FIXED_MASK != _STATUS_FIXED_BITS for b in reply):
        return PrintStatus.ERROR
    printer, offline_cause, error_cause, paper = reply
    if offline_cause & _S2_COVER_OPEN:
        return PrintStatus.COVER_OPEN
    if offline_cause & _S2_STOPPED_PAPER_END or paper & _S4_PAPER_END:
        return PrintStatus.PAPER_OUT
    errors = _S3_CUTTER_ERROR | _S3_UNRECOVERABLE | _S3_AUTO_RECOVERABLE
    if offline_cause & _S2_ERROR or error_cause & errors:
        return PrintStatus.ERROR
    if printer & _S1_OFFLINE:
        return PrintStatus.OFFLINE
    if paper & _S4_NEAR_END:
        return PrintStatus.PAPER_NEAR_END
    return PrintStatus.OK


# --- layout --------------------------------------------------------------------------------------


def char_columns(ch: str) -> int:
    """Columns a character takes in the printer's Chinese mode: one byte of GB18030 is one."""
    return 1 if ord(ch) < 0x80 else 2


def text_columns(text: str) -> int:
    return sum(char_columns(ch) for ch in text)


def _printable(text: str) -> str:
    """Text without control characters: a value must never smuggle a printer command in."""
    return "".join(
        " " if unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Co", "Cn") else ch for ch in text
    )


def _is_wide(ch: str) -> bool:
    return char_columns(ch) == 2


def wrap_columns(text: str, columns: int) -> list[str]:
    """Lines of at most columns columns, broken between Chinese characters or at Latin spaces."""
    if columns < 2:
        raise ValueError("a line needs at least two columns")
    lines: list[str] = []
    for paragraph in text.splitlines() or [""]:
        lines.extend(wrap_paragraph(_printable(paragraph), _is_wide, text_columns, columns))
    return lines


def qr_modules(data: str) -> int:
    """Modules across the QR symbol of data at error correction M, quiet zone excluded."""
    code = qrcode.QRCode(error_correction=qrcode.constants.ERROR_CORRECT_M, border=0)
    code.add_data(data)
    # best_fit only chooses the version; make() would also draw and score eight masks (10 ms).
    return 17 + 4 * int(code.best_fit())


def qr_module_dots(data: str, paper_mm: int) -> int:
    """The GS ( k dot size that makes the symbol at least 30 mm, within the printable width."""
    modules = qr_modules(data)
    wanted = math.ceil(QR_MIN_SYMBOL_MM * DOTS_PER_MM / modules)
    fits = PRINTABLE_DOTS[paper_mm] // modules
    return max(1, min(wanted, fits, QR_MAX_MODULE_DOTS))


_import_lock = threading.Lock()
_escpos_printers: Any = None


def _escpos() -> Any:
    """python-escpos' printer classes, imported on first use (about 150 ms).

    Each import of python-escpos caches its printer profiles as a pickle in a new temporary
    folder of its own unless ESCPOS_CAPABILITIES_PICKLE_DIR names one; read once, that folder is
    only litter, so it is removed.
    """
    global _escpos_printers  # noqa: PLW0603 - one import per process
    with _import_lock:
        if _escpos_printers is None:
            cache_named = "ESCPOS_CAPABILITIES_PICKLE_DIR" in os.environ
            from escpos import capabilities, printer  # type: ignore[import-untyped]

            if not cache_named:
                shutil.rmtree(capabilities.pickle_dir, ignore_errors=True)
            _escpos_printers = printer
        return _escpos_printers


class _Job:
    """The bytes of one receipt, built with python-escpos' commands and GB18030 text."""

    def __init__(self, paper_mm: int) -> None:
        Dummy = _escpos().Dummy

        self.columns = COLUMNS[paper_mm]
        self.paper_mm = paper_mm
        self.out: Any = Dummy()
        self.out._raw(INIT + CHINESE_MODE_ON)
        self.out.set(font="a", align="left", bold=False)
        self.out.line_spacing()

    def size(self, width: int, height: int) -> None:
        self.out.set(custom_size=True, width=width, height=height)
        # Chinese mode has its own size bits; printers that ignore GS ! for hanzi obey FS !.
        self.out._raw(FS + b"!" + bytes([(0x04 if width > 1 else 0) | (0x08 if height > 1 else 0)]))

    def line(self, text: str) -> None:
        self.out._raw(_printable(text).encode("gb18030", errors="replace") + b"\n")

    def paragraph(self, text: str, *, columns: int | None = None, indent: str = "") -> None:
        for line in wrap_columns(text, (columns or self.columns) - text_columns(indent)):
            self.line(indent + line)

    def rule(self) -> None:
        self.line("-" * self.columns)

    def bytes(self) -> bytes:
        data: bytes = self.out.output
        return data


def _labelled(job: _Job, label: str, value: str) -> None:
    """label：value, the value's further lines hanging under its first."""
    label = _printable(label).strip()
    colon = "：" if any(char_columns(ch) == 2 for ch in label) else ": "
    head = label + colon
    indent = text_columns(head)
    if job.columns - indent < job.columns // 2:  # a long label: the value on lines of its own
        job.paragraph(head)
        job.paragraph(value, indent="  ")
        return
    lines = wrap_columns(value, job.columns - indent)
    job.line(head + lines[0])
    for line in lines[1:]:
        job.line(" " * indent + line)


def render(doc: ReceiptDocument, paper_mm: int = 80) -> bytes:
    """The ESC/POS bytes of one receipt on a roll of paper_mm (80 or 58), cut at the end."""
    if paper_mm not in COLUMNS:
        raise ValueError(f"paper_mm is 80 or 58, not {paper_mm}")
    from escpos.constants import QR_ECLEVEL_M  # type: ignore[import-untyped]

    _escpos()
    job = _Job(paper_mm)
    out = job.out
    out.set(align="center", bold=True)
    job.size(2, 2)
    job.paragraph(doc.title, columns=job.columns // 2)
    job.size(1, 1)
    out.set(bold=False)
    if doc.subtitle:
        job.paragraph(doc.subtitle)
    job.rule()
    job.paragraph(doc.receipt_number_label)
    out.set(bold=True)
    wide = text_columns(doc.receipt_number) * 2 <= job.columns
    job.size(2 if wide else 1, 2)
    job.paragraph(doc.receipt_number, columns=job.columns // 2 if wide else job.columns)
    job.size(1, 1)
    out.set(bold=False, align="left")
    job.rule()
    for row in doc.lines:
        _labelled(job, row.label, row.value)
    if doc.notice:
        job.line("")
        job.rule()
        job.paragraph(doc.notice)
        job.rule()
    if doc.qr_url:
        out.set(align="center")
        job.line("")
        out.qr(
            doc.qr_url,
            ec=QR_ECLEVEL_M,
            size=qr_module_dots(doc.qr_url, paper_mm),
            native=True,
        )
        if doc.qr_caption:
            job.paragraph(doc.qr_caption)
    if doc.footer:
        out.set(align="center")
        job.line("")
        for text in doc.footer:
            job.paragraph(text)
    out.set(align="left")
    out.cut()
    return job.bytes()


# --- the device ----------------------------------------------------------------------------------


class _Link:
    """One open connection to the printer: python-escpos' device, plus reads with a deadline."""

    def __init__(self, address: EscposAddress, connect_timeout_s: float, io_timeout_s: float):
        self.address = address
        self.io_timeout_s = io_timeout_s
        self.printer: Any = None
        self._write_failed = False
        escpos_printer = _escpos()

        if address.kind == "tcp":
            self.printer = escpos_printer.Network(
                address.host, address.port, timeout=connect_timeout_s
            )
        elif address.kind == "usb":
            self.printer = escpos_printer.Usb(
                address.vendor_id,
                address.product_id,
                timeout=int(io_timeout_s * 1000),
                in_ep=USB_IN_ENDPOINT,
                out_ep=USB_OUT_ENDPOINT,
            )
        else:
            # python-escpos hands timeout to pyserial as the read timeout only.
            self.printer = escpos_printer.Serial(
                address.device, baudrate=address.baud_rate, timeout=io_timeout_s
            )
        if address.kind == "tcp":
            # Connected here rather than by Network.open, which leaks its socket when refused.
            sock = socket.create_connection((address.host, address.port), connect_timeout_s)
            try:
                # The status query after a long job must not wait for its last ACK (Nagle).
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                sock.settimeout(io_timeout_s)
            except OSError:
                sock.close()
                raise
            self.printer.device = sock
        else:
            self.printer.open()
            if address.kind == "serial":
                # Without it a write to an adapter that stopped taking bytes (flow control held,
                # a hung USB-serial bridge) blocks the printing thread for ever.
                self.printer.device.write_timeout = io_timeout_s

    def write(self, data: bytes) -> None:
        if self.address.kind == "tcp":
            self.printer.device.settimeout(self.io_timeout_s)
        try:
            self.printer._raw(data)
        except BaseException:
            self._write_failed = True
            raise

    def read(self, count: int, timeout_s: float) -> bytes:
        """Up to count bytes, whatever has arrived when timeout_s has passed."""
        deadline = time.monotonic() + timeout_s
        got = b""
        while len(got) < count:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            chunk = self._read_some(count - len(got), remaining)
            if chunk is None:
                break
            got += chunk
        return got

    def _read_some(self, count: int, timeout_s: float) -> bytes | None:
        """Bytes read within timeout_s (b"" when none came yet), or None: nothing more will."""
        device: Any = self.printer.device
        if self.address.kind == "tcp":
            device.settimeout(timeout_s)
            try:
                chunk: bytes = device.recv(count)
            except TimeoutError:
                return None
            return chunk or None  # b"": the printer closed the connection
        if self.address.kind == "usb":
            import usb.core  # type: ignore[import-untyped]

            try:
                return bytes(device.read(self.printer.in_ep, 64, max(1, int(timeout_s * 1000))))
            except usb.core.USBTimeoutError:
                return None
        device.timeout = timeout_s
        data: bytes = device.read(count)
        return data or None

    def close(self) -> None:
        try:
            if self.address.kind == "serial" and self._write_failed:
                # Serial.close drains the output first (tcdrain, no deadline): drop what the
                # stuck adapter never took instead.
                self.printer.device.reset_output_buffer()
            self.printer.close()
        except Exception:  # closing a link that already broke must not hide the result
            log.debug("closing the printer link failed", exc_info=True)


class EscposPrinter:
    """ReceiptPrinter for an ESC/POS thermal printer at address, on a roll of paper_mm (80 or 58).

    address: "tcp://host:port", "usb:VID:PID" (hexadecimal) or "serial:/dev/ttyUSB0[:baud]".
    A bad address or paper width is a ValueError here, when the settings are read; afterwards
    print_receipt and status never raise. Each call opens the printer and closes it again, so a
    printer that was switched off and on, or shared with a spooler, is found as it is now.
    """

    def __init__(
        self,
        address: str,
        paper_mm: int = 80,
        *,
        status_timeout_s: float = 1.0,
        connect_timeout_s: float = 3.0,
        io_timeout_s: float = 10.0,
    ) -> None:
        if paper_mm not in COLUMNS:
            raise ValueError(f"paper_mm is 80 or 58, not {paper_mm}")
        self._address = parse_address(address)
        self._paper_mm = paper_mm
        self._status_timeout_s = status_timeout_s
        self._connect_timeout_s = connect_timeout_s
        self._io_timeout_s = io_timeout_s
        self._lock = threading.Lock()  # one conversation with the printer at a time

    @property
    def paper_mm(self) -> int:
        return self._paper_mm

    @property
    def address(self) -> EscposAddress:
        return self._address

    def render(self, doc: ReceiptDocument) -> bytes:
        return render(doc, self._paper_mm)

    def status(self) -> PrintStatus:
        """The printer's real-time status; OFFLINE when it cannot be reached or does not answer."""
        with self._lock:
            link, failure = self._open()
            if link is None:
                return failure.status
            try:
                return self._query(link)[0]
            except Exception:
                log.warning("printer status query failed", exc_info=True)
                return PrintStatus.OFFLINE
            finally:
                link.close()

    def print_receipt(self, doc: ReceiptDocument) -> PrintResult:
        try:
            data = render(doc, self._paper_mm)
        except Exception:  # a document we cannot lay out must not take the terminal down
            log.exception("receipt layout failed")
            return PrintResult(PrintStatus.ERROR, RENDER_FAILED)
        with self._lock:
            link, failure = self._open()
            if link is None:
                return failure
            try:
                return self._print(link, data)
            except Exception:
                log.warning("printing failed", exc_info=True)
                return PrintResult(PrintStatus.ERROR, WRITE_FAILED)
            finally:
                link.close()

    def _print(self, link: _Link, data: bytes) -> PrintResult:
        before, why = self._query(link)
        if before in _CANNOT_PRINT:
            return PrintResult(before, f"{NOT_PRINTED}:{why}" if why else NOT_PRINTED)
        try:
            link.write(data)
        except Exception as exc:
            log.warning("receipt not sent to the printer: %s", type(exc).__name__)
            return PrintResult(PrintStatus.OFFLINE, WRITE_FAILED)
        # The printer answers DLE EOT as it receives it, while the receipt may still be in its
        # buffer: OK here means nothing has stopped it so far, not that the last line is out.
        after, why = self._query(link)
        if after is PrintStatus.OK:
            return PrintResult(PrintStatus.OK)
        if after is PrintStatus.PAPER_NEAR_END:
            return PrintResult(PrintStatus.PAPER_NEAR_END, PRINTED)
        self._clear_buffer(link)
        return PrintResult(after, f"{INCOMPLETE}:{why}" if why else INCOMPLETE)

    def _clear_buffer(self, link: _Link) -> None:
        """Drop what the printer still holds of a receipt it stopped printing (best effort)."""
        try:
            link.write(CLEAR_BUFFER)
            reply = link.read(len(CLEAR_RESPONSE), self._status_timeout_s)
        except Exception as exc:
            log.warning("printer buffer not cleared: %s", type(exc).__name__)
            return
        if reply != CLEAR_RESPONSE:
            # Printers without DLE DC4 fn=8 ignore it; staff must clear the paper path by hand.
            log.warning("printer did not confirm clearing its buffer")

    def _open(self) -> tuple[_Link | None, PrintResult]:
        try:
            link = _Link(self._address, self._connect_timeout_s, self._io_timeout_s)
        except Exception as exc:  # python-escpos' own errors, OSError, RuntimeError (no pyusb)
            log.warning("printer %s not reachable: %s", self._address.kind, type(exc).__name__)
            return None, PrintResult(PrintStatus.OFFLINE, CONNECT_FAILED)
        return link, PrintResult(PrintStatus.OK)

    def _query(self, link: _Link) -> tuple[PrintStatus, str]:
        """The status and, when it is not the printer's own answer, why (a detail code)."""
        try:
            link.write(STATUS_QUERIES)
            reply = link.read(4, self._status_timeout_s)[:4]
        except Exception as exc:
            log.warning("printer status not read: %s", type(exc).__name__)
            return PrintStatus.OFFLINE, NO_STATUS_REPLY
        if len(reply) < 4:
            return PrintStatus.OFFLINE, NO_STATUS_REPLY
        status = status_from_bytes(reply)
        if status is PrintStatus.ERROR and any(
            b & _STATUS_FIXED_MASK != _STATUS_FIXED_BITS for b in reply
        ):
            return status, BAD_STATUS_REPLY
        return status, ""
