"""A receipt printer that prints the receipt PDF through CUPS and follows the job to its end.

The job is submitted and watched over IPP (pycups, OpenPrinting's binding of libcups): the job's
own state says whether it completed, was aborted or cancelled, and the printer-state-reasons the
printer's backend reported (media-empty, cover-open, ...) say what the person at the printer can
do about it. Every IPP call is bounded: a CUPS server that does not answer is reported as offline
instead of holding the receipt page.
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import re
import secrets
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from devices.printing import PrintResult, PrintStatus, ReceiptDocument

log = logging.getLogger(__name__)

T = TypeVar("T")

# IPP job-state (RFC 8011 5.3.7) and printer-state (5.4.11) values.
JOB_PENDING, JOB_HELD, JOB_PROCESSING, JOB_STOPPED = 3, 4, 5, 6
JOB_CANCELED, JOB_ABORTED, JOB_COMPLETED = 7, 8, 9
PRINTER_IDLE, PRINTER_PROCESSING, PRINTER_STOPPED = 3, 4, 5

_JOB_ATTRIBUTES = [
    "job-state",
    "job-state-reasons",
    "job-printer-state-reasons",
    "job-printer-state-message",
]
_PRINTER_ATTRIBUTES = [
    "printer-state",
    "printer-state-reasons",
    "printer-state-message",
    "printer-is-accepting-jobs",
]

# printer-state-reasons keywords (RFC 8011 5.4.12, PWG 5100.9), without their -error, -warning
# or -report suffix, and what they mean for the person at the printer.
_PAPER_OUT = frozenset({"media-empty", "media-needed"})
_COVER_OPEN = frozenset({"cover-open", "door-open", "interlock-open"})
_OFFLINE = frozenset({"offline", "shutdown", "timed-out"})
_PAPER_NEAR_END = frozenset({"media-low"})
# connecting-to-device: the socket backend says so at the start of every job, and while it
# retries a printer that is slow to take the connection; what then lasts is offline or timed-out.
_NOT_A_PROBLEM = frozenset({"none", "paused", "moving-to-paused", "other", "connecting-to-device"})
_SUFFIX = re.compile(r"-(error|warning|report)$")

# PrintResult.detail codes (the machine's words, for logs and staff; never shown to citizens).
RENDER_FAILED = "render_failed"
SUBMIT_REFUSED = "submit_refused"
JOB_CANCELLED = "job_cancelled"
JOB_ABORTED_DETAIL = "job_aborted"
JOB_TIMED_OUT = "job_timed_out"
NOT_ANSWERING = "cups_not_answering"
NOT_REACHABLE = "cups_not_reachable"
NO_SUCH_QUEUE = "no_such_queue"
QUEUE_STOPPED = "queue_stopped"
NOT_ACCEPTING = "queue_not_accepting"
_MAX_DETAIL = 120

# How long an offline printer (or a stopped queue) may stay so during a job before the job is
# given up: a printer's backend reports offline for a moment while it reconnects.
DEFAULT_OFFLINE_GRACE_S = 3.0
DEFAULT_FOLLOW_TIMEOUT_S = 10.0  # the citizen waits on the outcome screen meanwhile

# How often a job is looked at: soon at first (a receipt is a small job), then less often.
_FIRST_POLL_S = 0.02
_MAX_POLL_S = 0.25
_PDF_POINTS_PER_MM = 72.0 / 25.4
_MEDIA_BOX = re.compile(rb"/MediaBox\s*\[\s*([-\d.]+)\s+([-\d.]+)\s+([-\d.]+)\s+([-\d.]+)\s*\]")


class ReceiptRenderer(Protocol):
    """What lays a receipt out as PDF bytes (devices/printers/pdf.py PdfReceiptPrinter)."""

    def render(self, doc: ReceiptDocument) -> bytes: ...


class Unanswered(Exception):
    """CUPS did not answer one call within its time."""


@dataclass(frozen=True, slots=True)
class PrinterState:
    """What CUPS says about the queue, as plain data."""

    state: int  # printer-state: 3 idle, 4 processing, 5 stopped
    reasons: tuple[str, ...]
    message: str = ""
    accepting: bool = True


def reason_keyword(reason: str) -> str:
    """'media-empty-error' -> 'media-empty'."""
    return _SUFFIX.sub("", reason.strip().lower())


def classify_reasons(reasons: Iterable[str]) -> tuple[PrintStatus, str]:
    """The most pressing problem in printer-state-reasons (OK when none), with its keyword."""
    keywords = [reason_keyword(r) for r in reasons if r]
    for group, status in (
        (_PAPER_OUT, PrintStatus.PAPER_OUT),
        (_COVER_OPEN, PrintStatus.COVER_OPEN),
        (_OFFLINE, PrintStatus.OFFLINE),
    ):
        for keyword in keywords:
            if keyword in group:
                return status, keyword
    for raw in reasons:
        if raw.endswith("-error") and reason_keyword(raw) not in _NOT_A_PROBLEM:
            return PrintStatus.ERROR, reason_keyword(raw)
    for keyword in keywords:
        if keyword in _PAPER_NEAR_END:
            return PrintStatus.PAPER_NEAR_END, keyword
    return PrintStatus.OK, ""


def classify_printer(printer: PrinterState) -> PrintResult:
    """The printer's state and reasons as a PrintStatus: a stopped queue is offline unless its
    reasons say why (out of paper, cover open)."""
    status, keyword = classify_reasons(printer.reasons)
    if status in (PrintStatus.PAPER_OUT, PrintStatus.COVER_OPEN, PrintStatus.OFFLINE):
        return PrintResult(status, keyword)
    if printer.state == PRINTER_STOPPED:
        return PrintResult(PrintStatus.OFFLINE, _detail(QUEUE_STOPPED, printer.message))
    if not printer.accepting:
        return PrintResult(PrintStatus.OFFLINE, NOT_ACCEPTING)
    return PrintResult(status, keyword)


def _detail(code: str, message: str = "") -> str:
    text = f"{code}: {message.strip()}" if message.strip() else code
    return text[:_MAX_DETAIL]


def _as_tuple(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    return tuple(str(v) for v in value)


def page_size_mm(pdf: bytes) -> tuple[float, float] | None:
    """The first page's width and height from its MediaBox, or None when not found."""
    found = _MEDIA_BOX.search(pdf)
    if found is None:
        return None
    x0, y0, x1, y1 = (float(v) for v in found.groups())
    return (x1 - x0) / _PDF_POINTS_PER_MM, (y1 - y0) / _PDF_POINTS_PER_MM


def job_options(pdf: bytes, paper_mm: int) -> dict[str, str]:
    """IPP job attributes for a roll of paper_mm: the page as long as the receipt, scaled to the
    roll when the receipt was laid out for another width. A raw queue ignores them."""
    size = page_size_mm(pdf)
    if size is None:
        return {}
    width, height = size
    length = max(1, round(height))
    options = {"media": f"custom_{paper_mm}x{length}mm_{paper_mm}x{length}mm"}
    if abs(width - paper_mm) > 1.0:
        options["fit-to-page"] = "true"
    return options


def _call_bounded(fn: Callable[[], T], timeout_s: float) -> T:
    """fn() on a thread of its own, given up after timeout_s (libcups's calls have no deadline of
    ours); the thread of a call given up ends when libcups gives up itself."""
    box: queue.SimpleQueue[tuple[bool, Any]] = queue.SimpleQueue()

    def run() -> None:
        try:
            box.put((True, fn()))
        except BaseException as exc:  # handed back to the caller, which decides
            box.put((False, exc))

    threading.Thread(target=run, name="cups-call", daemon=True).start()
    try:
        ok, value = box.get(timeout=timeout_s)
    except queue.Empty:
        raise Unanswered from None
    if ok:
        return value  # type: ignore[no-any-return]  # fn's result, typed T by the caller
    raise value


class CupsPrinter:
    """ReceiptPrinter printing through a CUPS queue.

    print_receipt renders the PDF, submits it, then follows the job until it completed, failed or
    follow_timeout_s passed. A job that cannot finish (the queue stopped, paper out, cover open,
    timed out) is cancelled, so that it does not come out later for the next person; the
    citizen is offered a reprint at the counter instead. Offline (or a stopped queue) counts only
    once it has lasted offline_grace_s. Each job is titled with a random id of its own, so that
    a job whose submission was given up can still be found and cancelled.
    """

    def __init__(
        self,
        queue_name: str,
        renderer: ReceiptRenderer,
        paper_mm: int = 80,
        *,
        server: str | None = None,
        call_timeout_s: float = 5.0,
        follow_timeout_s: float = DEFAULT_FOLLOW_TIMEOUT_S,
        offline_grace_s: float = DEFAULT_OFFLINE_GRACE_S,
        on_accepted: Callable[[int], None] | None = None,
    ) -> None:
        if not queue_name or "/" in queue_name or any(c.isspace() for c in queue_name):
            raise ValueError("a CUPS queue name has no spaces or slashes")
        self._queue = queue_name
        self._renderer = renderer
        self._paper_mm = paper_mm
        self._server = server  # None: libcups's choice (CUPS_SERVER, client.conf, local socket)
        self._call_timeout_s = call_timeout_s
        self._follow_timeout_s = follow_timeout_s
        self._offline_grace_s = offline_grace_s
        self._on_accepted = on_accepted

    @property
    def queue(self) -> str:
        return self._queue

    # --- IPP -------------------------------------------------------------------------------

    def _connect(self) -> Any:
        import cups

        if self._server is None:
            return cups.Connection()
        return cups.Connection(host=self._server)

    def _ipp(self, fn: Callable[[Any], T]) -> T:
        def call() -> T:
            return fn(self._connect())

        return _call_bounded(call, self._call_timeout_s)

    def _printer_state(self) -> PrinterState:
        attrs: Mapping[str, Any] = self._ipp(
            lambda c: c.getPrinterAttributes(self._queue, requested_attributes=_PRINTER_ATTRIBUTES)
        )
        return PrinterState(
            state=int(attrs.get("printer-state", PRINTER_IDLE)),
            reasons=_as_tuple(attrs.get("printer-state-reasons")),
            message=str(attrs.get("printer-state-message") or ""),
            accepting=bool(attrs.get("printer-is-accepting-jobs", True)),
        )

    def _failure(self, exc: BaseException) -> PrintResult:
        """What a failed IPP call means for the person at the printer."""
        import cups

        if isinstance(exc, Unanswered):
            return PrintResult(PrintStatus.OFFLINE, NOT_ANSWERING)
        if isinstance(exc, cups.IPPError):
            status = exc.args[0] if exc.args else None
            if status == cups.IPP_NOT_FOUND:
                return PrintResult(PrintStatus.ERROR, NO_SUCH_QUEUE)
            if status == cups.IPP_NOT_ACCEPTING:
                return PrintResult(PrintStatus.OFFLINE, NOT_ACCEPTING)
            if status == cups.IPP_SERVICE_UNAVAILABLE:
                return PrintResult(PrintStatus.OFFLINE, NOT_REACHABLE)
            message = str(exc.args[1]) if len(exc.args) > 1 else ""
            return PrintResult(PrintStatus.ERROR, _detail(f"ipp_{status}", message))
        # libcups could not connect: RuntimeError("failed to connect to server"), HTTPError.
        return PrintResult(PrintStatus.OFFLINE, _detail(NOT_REACHABLE, type(exc).__name__))

    # --- ReceiptPrinter ---------------------------------------------------------------------

    def status(self) -> PrintStatus:
        """The queue's state and reasons as one status; never raises."""
        try:
            return classify_printer(self._printer_state()).status
        except Exception as exc:  # a quick check: any failure is itself the answer
            return self._failure(exc).status

    def status_result(self) -> PrintResult:
        """status() with its detail code, for logs and staff."""
        try:
            return classify_printer(self._printer_state())
        except Exception as exc:  # as status()
            return self._failure(exc)

    def print_receipt(self, doc: ReceiptDocument) -> PrintResult:
        try:
            pdf = self._renderer.render(doc)
        except Exception:  # a document we cannot lay out must not take the terminal down
            log.exception("receipt rendering failed")
            return PrintResult(PrintStatus.ERROR, RENDER_FAILED)
        # Not the receipt number: the title is visible to anyone who can list the queue.
        title = f"receipt-{secrets.token_hex(8)}"
        try:
            job_id = self._submit(pdf, title)
        except Exception as exc:  # refused or unreachable: the reason is the result
            # The call may have created a job all the same (given up while libcups was still
            # sending it, or refused after Create-Job): cancel whatever carries our title.
            self._cancel_titled(title)
            result = self._failure(exc)
            if result.detail == NOT_ACCEPTING or result.status is PrintStatus.ERROR:
                # Say why the queue refused when it knows (stopped for paper, say).
                known = self.status_result()
                if known.status is not PrintStatus.OK:
                    result = known
            log.warning("receipt not accepted by CUPS queue %s: %s", self._queue, result.detail)
            return result
        if self._on_accepted is not None:
            self._on_accepted(job_id)
        result = self._follow(job_id)
        if result.status not in (PrintStatus.OK, PrintStatus.PAPER_NEAR_END):
            log.warning("receipt job %d on %s: %s", job_id, self._queue, result.detail)
        return result

    def _submit(self, pdf: bytes, title: str) -> int:
        options = job_options(pdf, self._paper_mm)
        # libcups sends a file; the receipt holds only masked values, and the file lives only
        # until the call sending it has ended (CUPS has its own copy then, or none).
        fd, path = tempfile.mkstemp(prefix="receipt-", suffix=".pdf")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(pdf)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(path)
            raise
        lock = threading.Lock()
        abandoned = False

        def call() -> int:
            # Runs to its end on its own thread even when the caller stops waiting for it.
            try:
                job_id: int = self._connect().printFile(self._queue, path, title, options)
            finally:
                with contextlib.suppress(OSError):
                    os.unlink(path)
            with lock:
                late = abandoned
            if late:  # given up meanwhile: the job must not print for the next person
                log.warning("receipt job %d created after it was given up; cancelling", job_id)
                try:
                    self._connect().cancelJob(job_id)
                except Exception as exc:
                    log.warning("late receipt job %d not cancelled: %s", job_id, exc)
            return job_id

        try:
            return _call_bounded(call, self._call_timeout_s)
        except Unanswered:
            # Either call() sees this flag and cancels the job it gets, or it had its job
            # before the flag was set and _cancel_titled (after this) finds it in the queue.
            with lock:
                abandoned = True
            raise

    def _cancel_titled(self, title: str) -> None:
        """Cancel every unfinished job of this queue titled title (best effort, bounded)."""

        def sweep(c: Any) -> list[int]:
            # Our own jobs: CUPS hides the job-name of others' jobs (JobPrivateValues).
            jobs: Mapping[int, Mapping[str, Any]] = c.getJobs(
                which_jobs="not-completed",
                my_jobs=True,
                requested_attributes=["job-id", "job-name", "job-printer-uri"],
            )
            found = [
                job_id
                for job_id, attrs in jobs.items()
                if attrs.get("job-name") == title
                and str(attrs.get("job-printer-uri", "")).endswith(f"/printers/{self._queue}")
            ]
            for job_id in found:
                c.cancelJob(job_id)
            return found

        try:
            cancelled = self._ipp(sweep)
        except Exception as exc:  # unreachable: nothing we can do from here
            log.info("jobs titled %s not looked for: %s", title, type(exc).__name__)
            return
        if cancelled:
            log.warning("receipt jobs %s given up at submission, cancelled", cancelled)

    def _follow(self, job_id: int) -> PrintResult:
        deadline = time.monotonic() + self._follow_timeout_s
        pause = _FIRST_POLL_S
        event = threading.Event()  # never set: a bounded wait between looks at the job
        offline_since: float | None = None
        while True:
            try:
                attrs: Mapping[str, Any] = self._ipp(
                    lambda c: c.getJobAttributes(job_id, requested_attributes=_JOB_ATTRIBUTES)
                )
            except Exception as exc:  # the server went away mid-job: it may come back with it
                return self._give_up(job_id, self._failure(exc))
            state = int(attrs.get("job-state", JOB_PENDING))
            reasons = _as_tuple(attrs.get("job-printer-state-reasons"))
            message = str(attrs.get("job-printer-state-message") or "")
            finished = self._finished(state, reasons, message, attrs)
            if finished is not None:
                return finished
            try:
                trouble = self._trouble(state, reasons, message, attrs)
            except Exception as exc:  # the server went away mid-job
                return self._give_up(job_id, self._failure(exc))
            if trouble is None:
                offline_since = None
            elif trouble.status is not PrintStatus.OFFLINE:
                # The printer's own backend waits for paper or a closed cover; the citizen
                # should not: they are offered a reprint at the counter instead.
                return self._give_up(job_id, trouble)
            else:
                # Offline for a moment is a printer reconnecting; offline for longer is not.
                now = time.monotonic()
                offline_since = now if offline_since is None else offline_since
                if now - offline_since >= self._offline_grace_s:
                    return self._give_up(job_id, trouble)
            left = deadline - time.monotonic()
            if left <= 0:
                return self._give_up(
                    job_id, PrintResult(PrintStatus.ERROR, _detail(JOB_TIMED_OUT, message))
                )
            event.wait(min(pause, left))
            pause = min(pause * 2, _MAX_POLL_S)

    def _trouble(
        self, state: int, reasons: tuple[str, ...], message: str, attrs: Mapping[str, Any]
    ) -> PrintResult | None:
        """What keeps an unfinished job from printing, None when nothing does (yet)."""
        job_reasons = _as_tuple(attrs.get("job-state-reasons"))
        if state in (JOB_PENDING, JOB_HELD, JOB_STOPPED) or "printer-stopped" in job_reasons:
            # Waiting: for the printer, or for nothing if the queue is stopped.
            printer = self._printer_state()
            if printer.state != PRINTER_STOPPED and state != JOB_STOPPED:
                return None
            stopped = classify_printer(printer)
            if stopped.status is PrintStatus.OK:
                return PrintResult(PrintStatus.OFFLINE, _detail(QUEUE_STOPPED, message))
            return stopped
        status, keyword = classify_reasons(reasons)
        if status in (PrintStatus.PAPER_OUT, PrintStatus.COVER_OPEN, PrintStatus.OFFLINE):
            return PrintResult(status, keyword)
        return None

    def _finished(
        self, state: int, reasons: tuple[str, ...], message: str, attrs: Mapping[str, Any]
    ) -> PrintResult | None:
        if state == JOB_COMPLETED:
            status, keyword = classify_reasons(reasons)
            if status is PrintStatus.PAPER_NEAR_END:
                return PrintResult(status, keyword)
            return PrintResult(PrintStatus.OK)
        if state in (JOB_ABORTED, JOB_CANCELED):
            trouble, keyword = classify_reasons(reasons)
            if trouble not in (PrintStatus.OK, PrintStatus.PAPER_NEAR_END):
                return PrintResult(trouble, keyword)
            code = JOB_ABORTED_DETAIL if state == JOB_ABORTED else JOB_CANCELLED
            return PrintResult(PrintStatus.ERROR, _detail(code, message))
        return None

    def _give_up(self, job_id: int, result: PrintResult) -> PrintResult:
        try:
            self._ipp(lambda c: c.cancelJob(job_id))
        except Exception as exc:  # already finished, or the server is gone: nothing to print
            log.info("receipt job %d not cancelled: %s", job_id, type(exc).__name__)
        return result
