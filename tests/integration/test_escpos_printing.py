"""Receipts printed to an ESC/POS printer on 127.0.0.1: what the printer is sent, and what the
terminal is told for each state the printer can be in."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from datetime import datetime

import pytest

from devices.printers.escpos import (
    CLEAR_BUFFER,
    COLUMNS,
    DOTS_PER_MM,
    PRINTABLE_DOTS,
    STATUS_QUERIES,
    EscposPrinter,
    _Link,
    parse_address,
    qr_modules,
    text_columns,
    wrap_columns,
)
from devices.printing import PrintStatus, ReceiptDocument
from kiosk.identity import mask_id_number, mask_name
from kiosk.receipt import build_receipt
from tests.fixtures.escpos_peer import EscposPeer, PrintedJob, parse_job

NAME = "欧阳小娜"
ID_NUMBER = "11010519491231002X"
SERVICE = "居住证申领（首次申领）"
QUERIES = [1, 2, 3, 4]
QUICK_S = 0.3  # the status wait for a printer that never answers


@pytest.fixture
def peer() -> Iterator[EscposPeer]:
    with EscposPeer() as p:
        yield p


def _receipt(number: str = "K01-20261123-0007", *, service: str = SERVICE) -> ReceiptDocument:
    return build_receipt(
        service_name=service,
        receipt_number=number,
        submitted_at=datetime(2026, 11, 23, 14, 32),
        applicant_name=NAME,
        id_number=ID_NUMBER,
        tracking_url="https://zwfw.example.gov.cn/track/0192f0c4-1234-7abc-8def-000000000007"
        "?t=MCowBQYDK2VwAyEAGb9ECWmEzf6FQbrBZ9w7lshQhqowtrbLDFw4rXAxZuE",
        delivered=False,
        terminal_id="K01",
        hall_name="北京市朝阳区政务服务中心",
        channel="kiosk",
        time_limit_text="15个工作日",
        collection_text="窗口领取或邮寄送达",
    )


def _flat(job: PrintedJob) -> str:
    """The printed text without the line breaks and spaces the layout added."""
    return "".join(job.lines).replace(" ", "")


def _printed_nothing(peer: EscposPeer) -> None:
    """The printer was asked for its status and sent nothing to print."""
    received = peer.received()
    assert received in (b"", STATUS_QUERIES)
    job = parse_job(received)
    assert job.lines == [] and job.qr_payloads == [] and not job.cut


@pytest.mark.parametrize("paper_mm", [80, 58])
def test_receipt_prints_in_chinese_with_masked_values_qr_and_cut(
    peer: EscposPeer, paper_mm: int
) -> None:
    doc = _receipt()
    result = EscposPrinter(peer.address, paper_mm).print_receipt(doc)

    assert result.status is PrintStatus.OK, result
    assert peer.wait_until(lambda p: p.answered == 8)
    job = parse_job(peer.received())
    # status before the receipt, the receipt, status after it
    assert job.status_queries == QUERIES + QUERIES
    assert peer.received().startswith(STATUS_QUERIES)
    assert peer.received().endswith(STATUS_QUERIES)
    assert job.initialised
    text = _flat(job)
    assert "受理回执" in "".join(job.big_lines)
    assert "受理回执" in "".join(job.bold_lines)
    assert doc.receipt_number in text
    assert doc.receipt_number in "".join(job.bold_lines)
    assert mask_name(NAME) in text
    assert mask_id_number(ID_NUMBER) in text
    assert SERVICE in text
    for line in doc.lines:
        assert f"{line.label}：" in text
    assert doc.notice.replace(" ", "") in text
    assert doc.qr_caption in text
    assert all(part.replace(" ", "") in text for part in doc.footer)
    # no personal value unmasked, in any encoding
    raw = peer.received()
    for secret in (NAME, ID_NUMBER, ID_NUMBER[6:14]):
        assert secret not in text
        assert secret.encode("gb18030") not in raw
        assert secret.encode("utf-8") not in raw
    # the printer's own QR: the tracking URL, at least 30 mm across, within the paper
    assert job.qr_payloads == [doc.qr_url]
    assert job.qr_printed == 1
    modules = qr_modules(doc.qr_url)
    (dots,) = job.qr_module_dots
    assert modules * dots >= 30 * DOTS_PER_MM
    assert modules * dots <= PRINTABLE_DOTS[paper_mm]
    assert job.widest_line_dots <= PRINTABLE_DOTS[paper_mm]
    assert job.cut


def test_58_mm_wraps_where_80_mm_does_not(peer: EscposPeer) -> None:
    long_service = "城乡居民基本养老保险待遇领取资格认证及个人账户一次性支付申请"
    doc = _receipt(service=long_service)
    for paper_mm in (80, 58):
        peer.clear()
        assert EscposPrinter(peer.address, paper_mm).print_receipt(doc).status is PrintStatus.OK
        job = parse_job(peer.received())
        rows = [line for line in job.lines if long_service[:6] in line or line.startswith(" ")]
        assert long_service in _flat(job)
        assert job.widest_line_dots <= PRINTABLE_DOTS[paper_mm]
        assert max(text_columns(line) for line in job.lines) <= COLUMNS[paper_mm]
        if paper_mm == 58:
            assert len(rows) >= 3  # the value hangs under its first line


@pytest.mark.parametrize(
    ("state", "expected", "printed"),
    [
        ("normal", PrintStatus.OK, True),
        ("near_end", PrintStatus.PAPER_NEAR_END, True),
        ("paper_out", PrintStatus.PAPER_OUT, False),
        ("cover_open", PrintStatus.COVER_OPEN, False),
        ("silent", PrintStatus.OFFLINE, False),
        ("refused", PrintStatus.OFFLINE, False),
    ],
)
def test_each_printer_state_gives_its_result(
    peer: EscposPeer, state: str, expected: PrintStatus, printed: bool
) -> None:
    peer.state = state
    printer = EscposPrinter(peer.address, 80, status_timeout_s=QUICK_S)
    doc = _receipt()

    result = printer.print_receipt(doc)

    assert result.status is expected, result
    if printed:
        job = parse_job(peer.received())
        assert job.qr_payloads == [doc.qr_url] and job.cut
        assert doc.receipt_number in _flat(job)
        if expected is PrintStatus.PAPER_NEAR_END:
            assert result.detail == "printed"
    else:
        _printed_nothing(peer)
        assert result.detail.startswith("not_printed") or result.detail == "connect_failed"
    if state == "refused":
        assert peer.connections() == []
    assert printer.status() is expected


def test_paper_near_end_after_the_receipt_is_reported_with_the_receipt_printed(
    peer: EscposPeer,
) -> None:
    peer.switch_after(4, "near_end")  # the roll reaches the near-end sensor while printing
    result = EscposPrinter(peer.address, 58).print_receipt(_receipt())
    assert result.status is PrintStatus.PAPER_NEAR_END
    assert result.detail == "printed"
    job = parse_job(peer.received())
    assert job.cut
    assert job.buffer_clears == 0 and peer.cleared == 0  # nothing to drop: it printed


def test_a_printed_receipt_does_not_clear_the_buffer(peer: EscposPeer) -> None:
    assert EscposPrinter(peer.address, 80).print_receipt(_receipt()).status is PrintStatus.OK
    assert parse_job(peer.received()).buffer_clears == 0
    assert peer.cleared == 0


def test_paper_running_out_during_the_receipt_is_not_reported_as_printed(
    peer: EscposPeer,
) -> None:
    peer.switch_after(4, "paper_out")
    result = EscposPrinter(peer.address, 80).print_receipt(_receipt())
    assert result.status is PrintStatus.PAPER_OUT
    assert result.detail == "incomplete"
    # What the printer still holds of the receipt is dropped, so that it does not come out in
    # front of the next person once paper is loaded: the clear follows the status after it.
    assert peer.cleared == 1
    received = peer.received()
    assert received.endswith(STATUS_QUERIES + CLEAR_BUFFER)
    job = parse_job(received)
    assert job.buffer_clears == 1 and job.cut


def test_cover_opened_during_the_receipt_clears_the_buffer(peer: EscposPeer) -> None:
    peer.switch_after(4, "cover_open")
    result = EscposPrinter(peer.address, 58).print_receipt(_receipt())
    assert result.status is PrintStatus.COVER_OPEN
    assert result.detail == "incomplete"
    assert peer.cleared == 1


def test_printer_falling_silent_during_the_receipt_is_offline(peer: EscposPeer) -> None:
    peer.switch_after(4, "silent")
    printer = EscposPrinter(peer.address, 80, status_timeout_s=QUICK_S)
    result = printer.print_receipt(_receipt())
    assert result.status is PrintStatus.OFFLINE
    assert result.detail == "incomplete:no_status_reply"
    assert peer.received().endswith(CLEAR_BUFFER)  # it may only be deaf: dropped all the same


def test_printer_recovers_between_receipts(peer: EscposPeer) -> None:
    printer = EscposPrinter(peer.address, 80)
    peer.state = "cover_open"
    assert printer.print_receipt(_receipt("A-1")).status is PrintStatus.COVER_OPEN
    peer.state = "normal"
    assert printer.print_receipt(_receipt("A-2")).status is PrintStatus.OK
    first, second = peer.connections()
    assert first == STATUS_QUERIES
    assert "A-2" in _flat(parse_job(second))


def test_control_characters_in_a_value_cannot_become_printer_commands(peer: EscposPeer) -> None:
    hostile = "居住证\x1b@\x1dV\x00\x10\x04\x01申领\r\n第二行"
    result = EscposPrinter(peer.address, 80).print_receipt(_receipt(service=hostile))
    assert result.status is PrintStatus.OK
    job = parse_job(peer.received())  # raises on any command it does not expect
    raw = peer.received()
    assert raw.count(b"\x1b@") == 1
    assert raw.count(b"\x1dV") == 1
    assert job.status_queries == QUERIES + QUERIES
    assert "居住证" in _flat(job) and "第二行" in _flat(job)


def test_an_unreachable_printer_does_not_raise() -> None:
    printer = EscposPrinter("usb:0416:5011", 80)  # no such device on this machine
    assert printer.print_receipt(_receipt()).status is PrintStatus.OFFLINE
    assert printer.status() is PrintStatus.OFFLINE
    missing = EscposPrinter("serial:/dev/does-not-exist", 58)
    assert missing.print_receipt(_receipt()).status is PrintStatus.OFFLINE


def test_a_serial_adapter_that_stops_taking_bytes_cannot_block_for_ever() -> None:
    # A pseudo-terminal nobody reads: its buffer fills and a write without a timeout blocks.
    master, slave = os.openpty()
    try:
        link = _Link(parse_address(f"serial:{os.ttyname(slave)}"), 1.0, 0.3)
        outcome: list[BaseException | None] = []

        def write() -> None:
            try:
                link.write(b"x" * 4_000_000)
                outcome.append(None)
            except BaseException as exc:  # handed to the test
                outcome.append(exc)
            finally:
                link.close()

        started = time.monotonic()
        writer = threading.Thread(target=write, daemon=True)
        writer.start()
        writer.join(timeout=5.0)
        took = time.monotonic() - started
        assert not writer.is_alive(), "a write to a stuck serial adapter never returned"
        assert took < 3.0
        (error,) = outcome
        assert error is not None  # the write timed out rather than claiming success
    finally:
        os.close(master)  # a write still blocked on the pty fails once its other end goes
        os.close(slave)


def test_addresses() -> None:
    tcp = parse_address("tcp://192.0.2.7:9101")
    assert (tcp.kind, tcp.host, tcp.port) == ("tcp", "192.0.2.7", 9101)
    assert parse_address("tcp://printer.local").port == 9100
    usb = parse_address("usb:0416:5011")
    assert (usb.kind, usb.vendor_id, usb.product_id) == ("usb", 0x0416, 0x5011)
    serial = parse_address("serial:/dev/ttyUSB0")
    assert (serial.kind, serial.device, serial.baud_rate) == ("serial", "/dev/ttyUSB0", 9600)
    assert parse_address("serial:/dev/ttyS1:115200").baud_rate == 115200
    for bad in (
        "lpt1",
        "tcp://",
        "usb:0416",
        "usb:zz:11",
        "serial:",
        "tcp://h:99999",
        "tcp://h:0",
        "tcp://h:9100?x=1",
    ):
        with pytest.raises(ValueError):
            parse_address(bad)
    with pytest.raises(ValueError):
        EscposPrinter("tcp://127.0.0.1:9100", 76)


def test_wrapping_counts_a_chinese_character_as_two_columns() -> None:
    lines = wrap_columns("申请人张*三的居住证申领已受理，请留意短信通知。Receipt K01-0001", 16)
    assert all(text_columns(line) <= 16 for line in lines)
    assert not any(line.startswith(("，", "。")) for line in lines)
    assert (
        "".join(lines).replace(" ", "")
        == "申请人张*三的居住证申领已受理，请留意短信通知。ReceiptK01-0001"
    )
