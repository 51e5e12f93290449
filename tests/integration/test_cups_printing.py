"""Receipts printed through a real cupsd: the test command's (scripts/test.sh exports CUPS_SERVER
and HALL_CUPS_DIR), or a private one these tests start. Its queue's backend writes each job to a
folder, or fails it the way a printer in trouble does."""

from __future__ import annotations

import datetime as dt
import io
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pdfminer.high_level import extract_text

from devices.printers.cups import CupsPrinter
from devices.printers.pdf import PdfReceiptPrinter
from devices.printing import PrintResult, PrintStatus, ReceiptDocument
from kiosk.receipt import build_receipt
from tests.fixtures.cups import (
    JOB_CANCELED,
    CupsQueue,
    CupsStackMissing,
    cups_stack,
    wait_until,
)

pytestmark = pytest.mark.real_device

ID_NUMBER = "11010519491231002X"
MASKED_ID = "110105********002X"
# A failure the printer reports ends the job at once, far inside the follow timeout.
FOLLOW_S = 20.0
PROMPT_S = 5.0


@pytest.fixture(scope="module")
def cups_queue() -> Iterator[CupsQueue]:
    try:
        with cups_stack() as queue:
            yield queue
    except CupsStackMissing as exc:
        pytest.fail(f"CUPS for the printing tests: {exc}", pytrace=False)


@pytest.fixture
def queue(cups_queue: CupsQueue) -> Iterator[CupsQueue]:
    cups_queue.reset()
    yield cups_queue
    cups_queue.reset()


@pytest.fixture(scope="module")
def renderer(tmp_path_factory: pytest.TempPathFactory) -> PdfReceiptPrinter:
    return PdfReceiptPrinter(tmp_path_factory.mktemp("unused"))


def receipt(number: str = "K07-20261129-0042") -> ReceiptDocument:
    return build_receipt(
        service_name="居住证签注",
        receipt_number=number,
        submitted_at=dt.datetime(2026, 11, 29, 9, 30, tzinfo=dt.UTC),
        applicant_name="王秀英",
        id_number=ID_NUMBER,
        tracking_url=f"https://track.example.invalid/r/{number}",
        delivered=True,
        terminal_id="K07",
        hall_name="朝阳区政务服务中心",
        channel="kiosk",
    )


class Accepted(list[int]):
    """The ids of the jobs CUPS accepted, in order."""


def printer_for(
    queue: CupsQueue, renderer: PdfReceiptPrinter, accepted: Accepted | None = None
) -> CupsPrinter:
    return CupsPrinter(
        queue.name,
        renderer,
        80,
        server=queue.server,
        follow_timeout_s=FOLLOW_S,
        on_accepted=(accepted if accepted is not None else Accepted()).append,
    )


def timed_print(printer: CupsPrinter, doc: ReceiptDocument) -> tuple[PrintResult, float]:
    started = time.monotonic()
    result = printer.print_receipt(doc)
    return result, time.monotonic() - started


def not_completed(queue: CupsQueue) -> str:
    return queue.admin("lpstat", "-W", "not-completed", "-o", queue.name).strip()


def test_a_receipt_comes_out_of_the_queue_as_its_pdf(
    queue: CupsQueue, renderer: PdfReceiptPrinter
) -> None:
    accepted = Accepted()
    printer = printer_for(queue, renderer, accepted)
    doc = receipt("K07-20261129-0042")
    result = printer.print_receipt(doc)
    assert result == PrintResult(PrintStatus.OK)
    (job_id,) = accepted
    printed = queue.job_file(job_id)
    assert queue.printed() == [printed]  # completed means the backend had written it
    data = printed.read_bytes()
    assert data.startswith(b"%PDF-")
    text = extract_text(io.BytesIO(data))
    assert "K07-20261129-0042" in text
    assert MASKED_ID in text
    assert "王*英" in text
    assert ID_NUMBER not in text
    assert "秀" not in text
    assert printer.status() is PrintStatus.OK


def test_receipts_print_one_after_another(queue: CupsQueue, renderer: PdfReceiptPrinter) -> None:
    printer = printer_for(queue, renderer)
    numbers = [f"K07-20261129-{n:04d}" for n in range(1, 4)]
    results = [printer.print_receipt(receipt(n)) for n in numbers]
    assert [r.status for r in results] == [PrintStatus.OK] * 3
    texts = [extract_text(str(path)) for path in queue.printed()]
    assert [any(n in t for t in texts) for n in numbers] == [True] * 3


def test_a_job_the_printer_fails_is_an_error(queue: CupsQueue, renderer: PdfReceiptPrinter) -> None:
    queue.misbehave(exit_status=1)  # CUPS_BACKEND_FAILED; the queue's error policy aborts the job
    printer = printer_for(queue, renderer)
    result, took = timed_print(printer, receipt())
    assert result.status is PrintStatus.ERROR
    assert result.detail.startswith("job_aborted")
    assert "status 1" in result.detail  # the backend's own message, for staff
    assert took < PROMPT_S
    assert queue.printed() == []


def test_a_job_the_printer_cancels_is_an_error(
    queue: CupsQueue, renderer: PdfReceiptPrinter
) -> None:
    queue.misbehave(exit_status=5)  # CUPS_BACKEND_CANCEL
    result = printer_for(queue, renderer).print_receipt(receipt())
    assert result.status is PrintStatus.ERROR
    assert result.detail.startswith("job_cancelled")


@pytest.mark.parametrize(
    ("reason", "expected"),
    [
        ("media-empty-error", PrintStatus.PAPER_OUT),
        ("media-needed-error", PrintStatus.PAPER_OUT),
        ("cover-open-error", PrintStatus.COVER_OPEN),
        ("door-open-error", PrintStatus.COVER_OPEN),
        ("offline-report", PrintStatus.OFFLINE),
        ("marker-supply-empty-error", PrintStatus.ERROR),
    ],
)
def test_a_printer_that_stops_says_why(
    queue: CupsQueue, renderer: PdfReceiptPrinter, reason: str, expected: PrintStatus
) -> None:
    # The backend reports the reason and stops the queue (CUPS_BACKEND_STOP), as a receipt
    # printer's driver does when its paper runs out.
    queue.misbehave(exit_status=4, reasons=(reason,))
    printer = printer_for(queue, renderer)
    result, took = timed_print(printer, receipt())
    if expected is PrintStatus.ERROR:
        # A reason without a status of its own: the stopped queue is what the citizen meets.
        assert result.status is PrintStatus.OFFLINE
        assert result.detail.startswith("queue_stopped")
    else:
        assert result.status is expected
        if expected is not PrintStatus.OFFLINE:  # offline: the reason, or the stopped queue
            assert result.detail == reason.rsplit("-", 1)[0]
    assert took < PROMPT_S
    # Given up and cancelled: it does not come out later for the next person.
    assert not_completed(queue) == ""
    assert queue.printed() == []
    assert printer.status() is (PrintStatus.OFFLINE if expected is PrintStatus.ERROR else expected)


def test_paper_near_end_prints_and_warns(queue: CupsQueue, renderer: PdfReceiptPrinter) -> None:
    queue.misbehave(reasons=("media-low-report",))
    printer = printer_for(queue, renderer)
    result = printer.print_receipt(receipt())
    assert result.status is PrintStatus.PAPER_NEAR_END
    assert len(queue.printed()) == 1
    assert printer.status() is PrintStatus.PAPER_NEAR_END


def test_a_disabled_queue_is_offline(queue: CupsQueue, renderer: PdfReceiptPrinter) -> None:
    queue.admin("cupsdisable", "-r", "roll being changed", queue.name)
    accepted = Accepted()
    printer = printer_for(queue, renderer, accepted)
    assert printer.status() is PrintStatus.OFFLINE
    result, took = timed_print(printer, receipt())
    assert result.status is PrintStatus.OFFLINE
    assert result.detail.startswith("queue_stopped")
    assert took < PROMPT_S
    assert accepted  # accepted, then given up
    assert not_completed(queue) == ""
    queue.admin("cupsenable", queue.name)
    assert queue.printed() == []  # the cancelled receipt did not come out on re-enabling


def test_a_queue_stopped_for_paper_is_paper_out(
    queue: CupsQueue, renderer: PdfReceiptPrinter
) -> None:
    queue.misbehave(exit_status=4, reasons=("media-empty-error",))
    printer = printer_for(queue, renderer)
    assert printer.print_receipt(receipt()).status is PrintStatus.PAPER_OUT
    # Still out of paper (stopped with the reason it gave, or about to be): the next receipt is
    # told the same at once.
    result, took = timed_print(printer, receipt("K07-20261129-0043"))
    assert result.status is PrintStatus.PAPER_OUT
    assert took < PROMPT_S


def test_a_queue_refusing_jobs_is_offline(queue: CupsQueue, renderer: PdfReceiptPrinter) -> None:
    queue.admin("cupsreject", queue.name)
    accepted = Accepted()
    printer = printer_for(queue, renderer, accepted)
    assert printer.status() is PrintStatus.OFFLINE
    result = printer.print_receipt(receipt())
    assert result == PrintResult(PrintStatus.OFFLINE, "queue_not_accepting")
    assert accepted == []


def test_a_queue_that_does_not_exist_is_an_error(
    queue: CupsQueue, renderer: PdfReceiptPrinter
) -> None:
    printer = CupsPrinter("no-such-queue", renderer, 80, server=queue.server)
    assert printer.status() is PrintStatus.ERROR
    assert printer.status_result().detail == "no_such_queue"
    assert printer.print_receipt(receipt()).status is PrintStatus.ERROR


def test_no_cups_server_is_offline(tmp_path: Path, renderer: PdfReceiptPrinter) -> None:
    printer = CupsPrinter("hall-receipts", renderer, 80, server=str(tmp_path / "cups.sock"))
    assert printer.status() is PrintStatus.OFFLINE
    result, took = timed_print(printer, receipt())
    assert result.status is PrintStatus.OFFLINE
    assert took < PROMPT_S


@pytest.mark.parametrize("reason", ["connecting-to-device-report", "offline-report"])
def test_a_printer_reconnecting_at_the_start_of_a_job_still_prints(
    queue: CupsQueue, renderer: PdfReceiptPrinter, reason: str
) -> None:
    # The socket backend says connecting-to-device at the start of every job; a printer waking
    # up may say offline for a moment. Neither is a reason to give the receipt up.
    queue.misbehave(reasons=(reason,), for_s=1.0)
    accepted = Accepted()
    result = printer_for(queue, renderer, accepted).print_receipt(receipt())
    assert result == PrintResult(PrintStatus.OK)
    (job_id,) = accepted
    assert queue.printed() == [queue.job_file(job_id)]


class _Stalling:
    """A pycups connection whose printFile stalls, before sending or after the job exists."""

    def __init__(self, real: Any, owner: StallingCups) -> None:
        self._real = real
        self._owner = owner

    def printFile(self, queue: str, path: str, title: str, options: Any) -> int:
        owner = self._owner
        owner.paths.append(Path(path))
        owner.titles.append(title)
        if owner.stall_before:
            owner.gate.wait(10.0)
        job_id: int = self._real.printFile(queue, path, title, options)
        owner.jobs.append(job_id)
        if not owner.stall_before:  # the job exists; its answer is what never comes
            owner.gate.wait(10.0)
        return job_id

    def getJobAttributes(self, job_id: int, **kwargs: Any) -> Any:
        if self._owner.lose_follow:
            raise RuntimeError("failed to connect to server")
        return self._real.getJobAttributes(job_id, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)


class StallingCups(CupsPrinter):
    def __init__(self, queue: CupsQueue, renderer: PdfReceiptPrinter, **how: bool) -> None:
        super().__init__(queue.name, renderer, 80, server=queue.server, call_timeout_s=0.5)
        self.stall_before = how.get("stall_before", False)
        self.stall = how.get("stall", False)
        self.lose_follow = how.get("lose_follow", False)
        self.gate = threading.Event()
        if not self.stall:
            self.gate.set()
        self.paths: list[Path] = []
        self.titles: list[str] = []
        self.jobs: list[int] = []

    def _connect(self) -> Any:
        return _Stalling(super()._connect(), self)


def test_a_submission_given_up_before_cups_had_the_file_is_cancelled_when_it_arrives(
    queue: CupsQueue, renderer: PdfReceiptPrinter
) -> None:
    queue.admin("cupsdisable", queue.name)  # the job, once there, waits instead of printing
    printer = StallingCups(queue, renderer, stall=True, stall_before=True)
    try:
        result = printer.print_receipt(receipt())
        assert result == PrintResult(PrintStatus.OFFLINE, "cups_not_answering")
        (path,) = printer.paths
        assert path.exists()  # libcups has yet to read it: not deleted under its feet
    finally:
        printer.gate.set()
    assert wait_until(lambda: bool(printer.jobs) and not path.exists(), 10.0)
    (job_id,) = printer.jobs
    assert wait_until(lambda: queue.job_state(job_id) == JOB_CANCELED, 10.0)
    assert not_completed(queue) == ""


def test_a_submission_whose_answer_never_came_is_found_by_its_title_and_cancelled(
    queue: CupsQueue, renderer: PdfReceiptPrinter
) -> None:
    queue.admin("cupsdisable", queue.name)
    printer = StallingCups(queue, renderer, stall=True)
    try:
        result = printer.print_receipt(receipt("K07-20261129-0099"))
        assert result == PrintResult(PrintStatus.OFFLINE, "cups_not_answering")
        # Cancelled before print_receipt returned, though its id never reached us.
        (job_id,) = printer.jobs
        assert queue.job_state(job_id) == JOB_CANCELED
        assert not_completed(queue) == ""
        (title,) = printer.titles
        assert title.startswith("receipt-")
        assert "0099" not in title  # a random id, not the receipt number
    finally:
        printer.gate.set()
    (path,) = printer.paths
    assert wait_until(lambda: not path.exists(), 10.0)


def test_a_job_whose_follow_up_fails_is_cancelled(
    queue: CupsQueue, renderer: PdfReceiptPrinter
) -> None:
    queue.admin("cupsdisable", queue.name)
    printer = StallingCups(queue, renderer, lose_follow=True)
    result = printer.print_receipt(receipt())
    assert result.status is PrintStatus.OFFLINE
    (job_id,) = printer.jobs
    assert queue.job_state(job_id) == JOB_CANCELED  # not left to print after re-enabling
    queue.admin("cupsenable", queue.name)
    assert queue.printed() == []
