"""A receipt as plain data, and the protocol every receipt printer implements."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Protocol


@dataclass(frozen=True, slots=True)
class ReceiptLine:
    """One labelled row of a receipt: the label and value are already translated and masked."""

    label: str
    value: str


@dataclass(frozen=True, slots=True)
class ReceiptDocument:
    """Everything a printer needs; no personal value arrives here unmasked."""

    title: str
    subtitle: str
    receipt_number_label: str
    receipt_number: str
    lines: tuple[ReceiptLine, ...]
    qr_url: str
    qr_caption: str
    notice: str = ""  # e.g. "saved, will be uploaded when the network is back"
    footer: tuple[str, ...] = field(default_factory=tuple)


class PrintStatus(Enum):
    OK = "ok"
    PAPER_NEAR_END = "paper_near_end"
    PAPER_OUT = "paper_out"
    COVER_OPEN = "cover_open"
    OFFLINE = "offline"
    ERROR = "error"


@dataclass(frozen=True, slots=True)
class PrintResult:
    """A failure is a field, not an exception: status says what the person at the printer can do."""

    status: PrintStatus
    detail: str = ""
    path: Path | None = None  # set by printers that write a file


class ReceiptPrinter(Protocol):
    def print_receipt(self, doc: ReceiptDocument) -> PrintResult: ...

    def status(self) -> PrintStatus:
        """A quick look at the printer (paper, cover, connection); never raises."""
        ...
