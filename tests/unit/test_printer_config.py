"""The printer settings, the printer they build, and what CUPS printer-state-reasons mean."""

from __future__ import annotations

from pathlib import Path

import pytest

from devices.printers.cups import (
    PRINTER_IDLE,
    PRINTER_STOPPED,
    PrinterState,
    classify_printer,
    classify_reasons,
    job_options,
)
from devices.printing import PrintStatus
from kiosk.config import ConfigError, PrinterKind, from_mapping
from kiosk.printers import DeferredPdfPrinter, LazyPrinter, build_printer


def test_the_default_printer_is_the_pdf_file() -> None:
    config = from_mapping({})
    assert (config.printer, config.paper_mm) == (PrinterKind.PDF, 80)
    assert isinstance(build_printer(config), DeferredPdfPrinter)


def test_printer_settings_are_read() -> None:
    config = from_mapping(
        {"printer": "escpos", "escpos_address": "usb:0416:5011", "paper_mm": 58, "cups_queue": ""}
    )
    assert (config.printer, config.escpos_address, config.paper_mm) == (
        PrinterKind.ESCPOS,
        "usb:0416:5011",
        58,
    )
    assert isinstance(build_printer(config), LazyPrinter)


@pytest.mark.parametrize(
    ("values", "words"),
    [
        ({"printer": "laser"}, "pdf, cups, escpos"),
        ({"printer": "cups"}, "needs cups_queue"),
        ({"printer": "cups", "cups_queue": "hall receipts"}, "not a CUPS queue name"),
        ({"cups_queue": "a/b"}, "not a CUPS queue name"),
        ({"paper_mm": 76}, "80 or 58"),
        ({"paper_mm": "80"}, "whole number"),
        ({"paper_mm": True}, "whole number"),
        ({"escpos_address": "127.0.0.1:9100"}, "expected tcp://"),
        ({"escpos_address": "tcp://127.0.0.1:70000"}, "bad port"),
        ({"escpos_address": "tcp://:9100"}, "not tcp://host:port"),
        ({"escpos_address": "usb:0416"}, "usb:VID:PID"),
        ({"escpos_address": "usb:zz16:5011"}, "usb:VID:PID"),
        ({"escpos_address": "serial:ttyUSB0"}, "serial:/dev/DEVICE"),
        ({"escpos_address": "serial:/dev/ttyUSB0:fast"}, "serial:/dev/DEVICE"),
    ],
)
def test_bad_printer_settings_say_what_is_wrong(values: dict[str, object], words: str) -> None:
    with pytest.raises(ConfigError) as caught:
        from_mapping(values)
    assert words in caught.value.detail


@pytest.mark.parametrize(
    "address",
    [
        "tcp://127.0.0.1:9100",
        "tcp://printer.hall.local",
        "usb:0x0416:0x5011",
        "serial:/dev/ttyS0:9600",
    ],
)
def test_good_escpos_addresses_are_taken(address: str) -> None:
    assert from_mapping({"escpos_address": address}).escpos_address == address


def test_a_cups_printer_is_built_lazily(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = from_mapping(
        {"printer": "cups", "cups_queue": "hall-receipts", "data_dir": str(tmp_path)}
    )
    printer = build_printer(config)
    assert isinstance(printer, LazyPrinter)
    # No server at this socket: the status check answers, it does not raise.
    monkeypatch.setenv("CUPS_SERVER", str(tmp_path / "no-cups.sock"))
    assert printer.status() is PrintStatus.OFFLINE


@pytest.mark.parametrize(
    ("reasons", "expected"),
    [
        (["none"], (PrintStatus.OK, "")),
        (["media-empty-error"], (PrintStatus.PAPER_OUT, "media-empty")),
        (["media-needed-warning"], (PrintStatus.PAPER_OUT, "media-needed")),
        (["media-low-report"], (PrintStatus.PAPER_NEAR_END, "media-low")),
        (["cover-open-error", "media-low-report"], (PrintStatus.COVER_OPEN, "cover-open")),
        (["door-open"], (PrintStatus.COVER_OPEN, "door-open")),
        (["offline-report"], (PrintStatus.OFFLINE, "offline")),
        (["media-low-warning", "media-empty-error"], (PrintStatus.PAPER_OUT, "media-empty")),
        (["marker-supply-empty-error"], (PrintStatus.ERROR, "marker-supply-empty")),
        (["marker-supply-low-warning"], (PrintStatus.OK, "")),
        (["paused"], (PrintStatus.OK, "")),
        # the socket backend says so at the start of every job: not a problem
        (["connecting-to-device-report"], (PrintStatus.OK, "")),
    ],
)
def test_printer_state_reasons_map_to_a_status(
    reasons: list[str], expected: tuple[PrintStatus, str]
) -> None:
    assert classify_reasons(reasons) == expected


def test_a_stopped_queue_is_offline_unless_it_says_why() -> None:
    stopped = PrinterState(PRINTER_STOPPED, ("paused",), "roll being changed")
    assert classify_printer(stopped).status is PrintStatus.OFFLINE
    assert "roll being changed" in classify_printer(stopped).detail
    out = PrinterState(PRINTER_STOPPED, ("media-empty-error", "paused"))
    assert classify_printer(out).status is PrintStatus.PAPER_OUT
    refusing = PrinterState(PRINTER_IDLE, ("none",), accepting=False)
    assert classify_printer(refusing).status is PrintStatus.OFFLINE
    assert classify_printer(PrinterState(PRINTER_IDLE, ("none",))).status is PrintStatus.OK


def test_the_job_asks_for_the_roll_and_the_receipt_length() -> None:
    pdf = b"%PDF-1.4\n1 0 obj << /Type /Page /MediaBox [ 0 0 226.7717 566.9291 ] >>"
    assert job_options(pdf, 80) == {"media": "custom_80x200mm_80x200mm"}
    assert job_options(pdf, 58) == {"media": "custom_58x200mm_58x200mm", "fit-to-page": "true"}
    assert job_options(b"%PDF-1.4 no page size", 80) == {}
