"""The receipt printer the settings name, built for the terminal: a PDF file per receipt, a CUPS
queue, or an ESC/POS thermal printer. Each is loaded on first use, off the GUI thread."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from devices.printing import PrintResult, PrintStatus, ReceiptDocument, ReceiptLine
from kiosk.config import Config, PrinterKind
from kiosk.i18n import N_, _

if TYPE_CHECKING:
    from devices.printers.pdf import PdfReceiptPrinter

# Laid out and thrown away by warm(): Chinese, digits and a QR code, as a real receipt has.
WARM_UP_RECEIPT = ReceiptDocument(
    title="办事回执 Receipt",
    subtitle="政务服务大厅 0123456789",
    receipt_number_label="回执编号",
    receipt_number="K00-20260101-0000",
    lines=(
        ReceiptLine("申请人", "王*英"),
        ReceiptLine("证件号码", "110105********002X"),
    ),
    qr_url="https://example.invalid/track/K00-20260101-0000",
    qr_caption="扫码查询办理进度",
    notice="已保存，联网后自动上传。",
    footer=("请妥善保管本回执",),
)

# What staff are told about the printer (a citizen is told what to do instead: kiosk/reprint.py).
STATUS_TEXT: dict[PrintStatus, str] = {
    PrintStatus.OK: N_("The receipt printer is ready."),
    PrintStatus.PAPER_NEAR_END: N_("The receipt printer's paper is running out: load a new roll."),
    PrintStatus.PAPER_OUT: N_("The receipt printer is out of paper."),
    PrintStatus.COVER_OPEN: N_("The receipt printer's cover is open."),
    PrintStatus.OFFLINE: N_("The receipt printer is not connected or not answering."),
    PrintStatus.ERROR: N_("The receipt printer reported a fault."),
}


def printer_status_text(status: PrintStatus) -> str:
    """The printer's status in words for staff, in the active language."""
    return _(STATUS_TEXT[status])


class TerminalPrinter(Protocol):
    """What the terminal needs of its receipt printer (devices/printing.py ReceiptPrinter, plus
    a status check and a warm-up that runs after the first screen is up)."""

    def print_receipt(self, doc: ReceiptDocument) -> PrintResult: ...

    def status(self) -> PrintStatus: ...

    def warm(self) -> None: ...


class DeferredPdfPrinter:
    """The PDF printer, loaded on first use: reportlab and qrcode cost about 150 ms of import
    that the first screen need not wait for. warm() (once the window is up) also registers the
    receipt font and lays out one receipt in memory, so the first citizen's receipt does not
    pay for parsing the font file either."""

    def __init__(self, out_dir: Path, font_path: Path | None) -> None:
        self._out_dir = out_dir
        self._font_path = font_path
        self._printer: PdfReceiptPrinter | None = None
        self._lock = threading.Lock()  # warm() and a first receipt may race on worker threads

    def warm(self) -> None:
        # Outside the lock: a receipt printed meanwhile does not wait for this one. The font is
        # registered once whoever asks first (pdf.find_font has its own lock); nothing is written.
        self._get().render(WARM_UP_RECEIPT)

    def _get(self) -> PdfReceiptPrinter:
        with self._lock:
            if self._printer is None:
                from devices.printers.pdf import PdfReceiptPrinter

                self._printer = PdfReceiptPrinter(self._out_dir, font_path=self._font_path)
            return self._printer

    def render(self, doc: ReceiptDocument) -> bytes:
        """The receipt's PDF bytes, written nowhere (what a CUPS queue is sent)."""
        return self._get().render(doc)

    def print_receipt(self, doc: ReceiptDocument) -> PrintResult:
        return self._get().print_receipt(doc)

    def status(self) -> PrintStatus:
        return PrintStatus.OK  # a file in the data directory: a full disk shows when printing


class _DevicePrinter(Protocol):
    def print_receipt(self, doc: ReceiptDocument) -> PrintResult: ...

    def status(self) -> PrintStatus: ...


class LazyPrinter:
    """A device printer made on first use (its module's imports and checks stay off the first
    screen); warm() makes it and runs warm_up, which may talk to the device."""

    def __init__(
        self, make: Callable[[], _DevicePrinter], warm_up: Callable[[], None] | None = None
    ) -> None:
        self._make = make
        self._warm_up = warm_up
        self._printer: _DevicePrinter | None = None
        self._lock = threading.Lock()

    def _get(self) -> _DevicePrinter:
        with self._lock:
            if self._printer is None:
                self._printer = self._make()
            return self._printer

    def warm(self) -> None:
        self._get()
        if self._warm_up is not None:
            self._warm_up()

    def print_receipt(self, doc: ReceiptDocument) -> PrintResult:
        return self._get().print_receipt(doc)

    def status(self) -> PrintStatus:
        try:
            return self._get().status()
        except Exception:  # made from checked settings, yet a status check never raises
            return PrintStatus.ERROR


def build_printer(config: Config) -> TerminalPrinter:
    """The receipt printer config names (kiosk/config.py checked its settings)."""
    if config.printer is PrinterKind.CUPS:
        # The receipt is laid out as the PDF printer does and sent to the queue.
        renderer = DeferredPdfPrinter(config.receipts_path, config.receipt_font)

        def make_cups() -> _DevicePrinter:
            from devices.printers.cups import CupsPrinter

            return CupsPrinter(config.cups_queue, renderer, config.paper_mm)

        return LazyPrinter(make_cups, renderer.warm)
    if config.printer is PrinterKind.ESCPOS:

        def make_escpos() -> _DevicePrinter:
            from devices.printers.escpos import EscposPrinter

            printer: _DevicePrinter = EscposPrinter(config.escpos_address, config.paper_mm)
            return printer

        return LazyPrinter(make_escpos)
    return DeferredPdfPrinter(config.receipts_path, config.receipt_font)
