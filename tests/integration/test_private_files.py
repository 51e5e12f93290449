"""Nothing the terminal keeps on disk is readable by other users, and receipts do not pile up.

The modes are read from the real files after a real submission (saved, uploaded to the reference
platform over HTTP, receipt printed to PDF).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import socket
import stat
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from devices.printing import PrintStatus, ReceiptDocument, ReceiptLine
from kiosk.app import Parts, build_parts, purge_receipts
from kiosk.catalogue import load_catalogue_file
from kiosk.config import Config
from kiosk.demo import demo_identities
from kiosk.printers import DeferredPdfPrinter
from kiosk.session import Draft
from kiosk.terminal_auth import ENROLMENT_FILE, KEY_FILE
from offline_queue.outbox import Attachment
from refplatform.server import RunningPlatform
from tests.fixtures.child import REPO, run_script
from tests.fixtures.platform import DEMO_ANSWERS, enrol_absent, enrol_terminal

CATALOGUE = REPO / "assets" / "catalogue" / "demo_catalogue.json"
DAY = 86400.0


def closed_port_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}"


def mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


@contextlib.contextmanager
def umask(value: int) -> Iterator[None]:
    old = os.umask(value)
    try:
        yield
    finally:
        os.umask(old)


def make_draft() -> Draft:
    catalogue = load_catalogue_file(CATALOGUE)
    service = catalogue.service("residence-permit")
    return Draft(
        service=service,
        identity=demo_identities()[0],
        answers=dict(DEMO_ANSWERS["residence-permit"]),
        catalogue_version=catalogue.version,
    )


def doc(number: str) -> ReceiptDocument:
    return ReceiptDocument(
        title="回执",
        subtitle="",
        receipt_number_label="编号",
        receipt_number=number,
        lines=(ReceiptLine("申请人", "王*英"),),
        qr_url="https://example.invalid/t",
        qr_caption="",
    )


def test_outbox_key_and_receipts_are_private_whatever_the_umask(
    tmp_path: Path, platform_server: RunningPlatform
) -> None:
    data = tmp_path / "data"
    data.mkdir()
    os.chmod(data, 0o755)  # noqa: S103 - a data directory from before, open to all: narrowed
    counter = data / "receipt-counter.json"
    counter.write_text("{}")
    os.chmod(counter, 0o644)
    config = Config(data_dir=data, platform_url=platform_server.base_url, voice=False)
    enrol_terminal(platform_server, data)
    with umask(0o022):  # a umask that leaves new files readable by all
        parts = build_parts(config, demo=False, bundled_catalogue=CATALOGUE)
        try:
            assert mode(data) == 0o700
            assert mode(counter) == 0o600  # narrowed at start
            parts.sync.start()
            files = [Attachment("scan.png", "image/png", b"\x89PNG" + bytes(64))]
            result = parts.submitter.submit(make_draft(), attachments=files)
            assert result.delivered and result.print_result.status is PrintStatus.OK
            receipt = result.receipt_path
            assert receipt is not None and receipt.is_file()
            outbox = config.outbox_path
            companions = [outbox.with_name(outbox.name + tail) for tail in ("-wal", "-shm")]
            assert all(p.exists() for p in companions)  # looked at while the outbox is open
            private = [outbox, *companions, outbox.with_name(outbox.name + ".lock")]
            private += [config.key_path, receipt, data / KEY_FILE, data / ENROLMENT_FILE]
            assert {p.name: oct(mode(p)) for p in private} == {p.name: "0o600" for p in private}
            assert mode(config.receipts_path) == 0o700
        finally:
            parts.close()


CHILD = textwrap.dedent(
    """
    import json, os, sys
    from pathlib import Path
    from kiosk.hardening import harden_process

    harden_process()  # as main() does first
    from kiosk.app import build_parts
    from kiosk.config import Config
    from tests.integration.test_private_files import CATALOGUE, make_draft

    data, url = Path(sys.argv[1]), sys.argv[2]
    parts = build_parts(Config(data_dir=data, platform_url=url), demo=False,
                        bundled_catalogue=CATALOGUE)
    try:
        parts.sync.start()
        result = parts.submitter.submit(make_draft())
        parts.catalogue_store.refresh(parts.client)
        modes = {
            str(p.relative_to(data)): oct(p.lstat().st_mode & 0o777)
            for p in [data, *data.rglob("*")]
        }
    finally:
        parts.close()
    print(json.dumps({"delivered": result.delivered, "modes": modes}))
    """
)


def test_every_file_of_a_hardened_terminal_is_private(
    tmp_path: Path, platform_server: RunningPlatform
) -> None:
    data = tmp_path / "data"
    enrol_terminal(platform_server, data)  # as staff do before the terminal's first start
    report = run_script(CHILD, str(data), platform_server.base_url, timeout=90)
    assert report["delivered"]
    modes = report["modes"]
    names = set(modes)
    assert {"outbox.key", "receipt-counter.json", "catalogue.json", "outbox.sqlite3"} <= names
    assert {KEY_FILE, ENROLMENT_FILE} <= names
    assert any(name.startswith("receipts/") and name.endswith(".pdf") for name in names)
    folders = {".", "receipts"}
    assert {n: m for n, m in modes.items() if n in folders} == dict.fromkeys(folders, "0o700")
    assert {n: m for n, m in modes.items() if n not in folders} == {
        n: "0o600" for n in names - folders
    }


# -- receipt retention ------------------------------------------------------------------------


@pytest.fixture
def parts(tmp_path: Path) -> Iterator[Parts]:
    config = Config(data_dir=tmp_path / "data", platform_url=closed_port_url(), voice=False)
    enrol_absent(config)
    built = build_parts(config, demo=False, bundled_catalogue=CATALOGUE)
    yield built
    built.close()


def _aged(path: Path, days: float, content: bytes = b"%PDF-1.4\n") -> Path:
    path.write_bytes(content)
    then = time.time() - days * DAY
    os.utime(path, (then, then))
    return path


def test_housekeeping_deletes_receipts_past_the_retention(parts: Parts) -> None:
    folder = parts.config.receipts_path
    printed = DeferredPdfPrinter(folder, None).print_receipt(doc("K01-20261001-0001"))
    assert printed.status is PrintStatus.OK and printed.path is not None
    then = time.time() - 31 * DAY
    os.utime(printed.path, (then, then))  # a real receipt, printed 31 days ago
    young = _aged(folder / "K01-20261101-0001.pdf", 29)
    os.chmod(young, 0o644)  # from before receipts were private
    left_by_a_crash = _aged(folder / ".receipt-abc.tmp", 31)
    being_written = _aged(folder / ".receipt-def.tmp", 0)
    not_a_receipt = _aged(folder / "notes.txt", 400)
    elsewhere = _aged(parts.config.data_dir / "old.pdf", 400)
    link = folder / "link.pdf"
    link.symlink_to(elsewhere)
    summary = json.dumps({"receipt_number": "K01-20261001-0001"}).encode()
    delivered = parts.outbox.enqueue("submission", b"{}", summary)
    assert parts.outbox.claim_next() is not None
    parts.outbox.mark_delivered(delivered, b"{}")

    assert parts.config.delivered_retention_days == 30
    assert parts.housekeeping() == 2  # the old receipt and the crash's temporary; no row yet
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        [young.name, being_written.name, not_a_receipt.name, link.name]
    )
    assert not left_by_a_crash.exists()
    assert mode(young) == 0o600
    assert elsewhere.exists()  # a link is not followed out of the folder
    assert parts.housekeeping() == 0


def test_retention_zero_keeps_nothing_but_a_temporary_being_written(tmp_path: Path) -> None:
    folder = tmp_path / "receipts"
    folder.mkdir()
    a = _aged(folder / "a.pdf", 0.01)
    being_written = _aged(folder / ".receipt-x.tmp", 0.01)
    assert purge_receipts(folder, 0.0) == 1
    assert not a.exists() and being_written.exists()
    assert purge_receipts(tmp_path / "never-made", 0.0) == 0


def test_receipts_are_kept_for_the_configured_days(tmp_path: Path) -> None:
    folder = tmp_path / "receipts"
    folder.mkdir()
    now = time.time()
    for days in (1, 6, 8):
        _aged(folder / f"r{days}.pdf", days)
    assert purge_receipts(folder, 7 * DAY, now=now) == 1
    assert sorted(p.name for p in folder.iterdir()) == ["r1.pdf", "r6.pdf"]


# -- warming the receipt printer --------------------------------------------------------------

WARM = textwrap.dedent(
    """
    import json, sys, time
    from pathlib import Path
    from kiosk.printers import DeferredPdfPrinter
    from tests.integration.test_private_files import doc

    out = Path(sys.argv[1])
    printer = DeferredPdfPrinter(out, None)
    if sys.argv[2] == "warm":
        printer.warm()
    from reportlab.pdfbase import pdfmetrics
    fonts = [name for name in pdfmetrics.getRegisteredFontNames() if name.startswith("HallReceipt")]
    written = out.exists() and sorted(p.name for p in out.iterdir())
    started = time.perf_counter()
    result = printer.print_receipt(doc("K01-20261123-0001"))
    elapsed = time.perf_counter() - started
    print(json.dumps({"fonts": fonts, "written": written, "status": result.status.value,
                      "first_print_s": elapsed}))
    """
)


def _first_print(tmp_path: Path, how: str) -> dict[str, object]:
    return run_script(WARM, str(tmp_path / how), how)


def test_warm_registers_the_font_and_writes_nothing(tmp_path: Path) -> None:
    warm = _first_print(tmp_path, "warm")
    cold = _first_print(tmp_path, "cold")
    assert warm["fonts"] == ["HallReceipt-0"]  # the embedded CJK font, loaded before any receipt
    assert cold["fonts"] == []  # without warm() the first receipt loads it
    assert warm["written"] is False  # the throwaway receipt stays in memory
    assert warm["status"] == cold["status"] == "ok"


def test_warm_and_a_first_receipt_may_race(tmp_path: Path) -> None:
    printer = DeferredPdfPrinter(tmp_path / "receipts", None)
    start = threading.Barrier(3)
    results: list[object] = []
    errors: list[BaseException] = []

    def run(work: object) -> None:
        try:
            start.wait(timeout=10)
            results.append(work() if callable(work) else None)
        except BaseException as exc:  # reported below; a thread cannot fail the test itself
            errors.append(exc)

    threads = [
        threading.Thread(target=run, args=(printer.warm,)),
        threading.Thread(target=run, args=(printer.warm,)),
        threading.Thread(target=run, args=(lambda: printer.print_receipt(doc("K01-1")),)),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors
    printed = [r for r in results if r is not None]
    assert len(printed) == 1 and getattr(printed[0], "status", None) is PrintStatus.OK
    assert [p.name for p in (tmp_path / "receipts").iterdir()] == ["K01-1.pdf"]


def test_receipt_dates_do_not_matter_only_file_age(tmp_path: Path) -> None:
    """A receipt for a submission made long ago but printed again today is kept."""
    folder = tmp_path / "receipts"
    printed = DeferredPdfPrinter(folder, None).print_receipt(doc("K01-20200101-0001"))
    assert printed.path is not None
    assert purge_receipts(folder, 1 * DAY, now=dt.datetime.now(dt.UTC).timestamp()) == 0
    assert printed.path.exists()
