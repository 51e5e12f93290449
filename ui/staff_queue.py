"""The upload queue journey (counter and rural staff): the unsent count and last contact in the
header on every screen, and the queue page (F9) with its retries."""

from __future__ import annotations

import functools
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QProgressBar

from devices.printing import PrintResult, PrintStatus
from kiosk.bundles import BUNDLE_KIND
from kiosk.catalogue import Catalogue, Service
from kiosk.corrections import CORRECTION_KIND, Corrector, FieldProblem, explain, problem_text
from kiosk.errors import message_for
from kiosk.i18n import _, pick
from kiosk.queue_view import QueueRow, UploadQueue
from kiosk.reprint import PRINT_PROBLEMS, Reprinter
from kiosk.sync import HELP_REQUEST_KIND, SyncStatus
from ui.background import Background
from ui.correction_page import CorrectionPage
from ui.journey import Journey, ShellPort, StaffPort
from ui.queue_page import DrainProgress, QueuePage, status_line
from ui.widgets import button

log = logging.getLogger(__name__)

ROWS_REFRESH_MS = 500


@dataclass(frozen=True)
class _QueueRead:
    """The queue as read off the GUI thread: its rows, the refusals a correction may mend (by
    row), and the rows whose correction waits to upload."""

    rows: list[QueueRow]
    refused: Mapping[str, tuple[FieldProblem, ...]] = field(default_factory=dict)
    correcting: frozenset[str] = frozenset()


def _read_queue(queue: UploadQueue, corrector: Corrector | None) -> _QueueRead:
    # A correction row is not a case of its own: the row it corrects stands for it.
    rows = [row for row in queue.rows() if row.service_id != CORRECTION_KIND]
    if corrector is None:
        return _QueueRead(rows)
    return _QueueRead(rows, corrector.refused(), corrector.pending())


class QueueJourney(Journey):
    def __init__(
        self,
        shell: ShellPort,
        queue: UploadQueue,
        background: Background,
        staff: StaffPort | None = None,
    ) -> None:
        """staff: the queue is for a signed-in staff member only."""
        super().__init__(shell)
        self._shell = shell
        self._staff = staff
        self._queue = queue
        self._background = background
        self._corrector: Corrector | None = None
        self._read: _QueueRead = _QueueRead([])
        self._catalogue: Catalogue | None = None
        self._sync_status: SyncStatus | None = None
        self._drain = DrainProgress()
        self._rows_loading = False
        self._rows_stale = False
        # A draining backlog reports after every batch; the open queue screen re-reads its rows
        # at most this often rather than after each report.
        self._rows_refresh = QTimer(self, singleShot=True, interval=ROWS_REFRESH_MS)
        self._rows_refresh.timeout.connect(self._load_rows)

        self.queue_progress = QProgressBar()
        self.queue_progress.setTextVisible(False)
        self.queue_progress.setFixedWidth(160)
        self.queue_progress.hide()
        self.queue_button = button("", self.open_queue)
        shell.add_header_widget(self.queue_progress)
        shell.add_header_widget(self.queue_button)
        self.queue_page = QueuePage()
        shell.add_page(self.queue_page)
        self.queue_page.back.connect(self.close_queue)
        self.queue_page.retry.connect(self._retry_item)
        self.queue_page.retry_all.connect(self._retry_all)
        self.queue_page.correct.connect(self._open_correction)
        self.queue_page.reprint.connect(self._reprint)
        self._reprinter: Reprinter | None = None
        # Correcting a refused submission: staff only, one field per refused answer.
        self.correction_page = CorrectionPage()
        shell.add_page(self.correction_page)
        self.correction_page.submitted.connect(self._submit_correction)
        self.correction_page.cancelled.connect(self._close_correction)
        shell.add_shortcut("F9", self.open_queue)
        self.retranslate()

    def set_reprinter(self, reprinter: Reprinter | None) -> None:
        """What prints a receipt again; without one nothing is offered."""
        self._reprinter = reprinter
        self.queue_page.reprint_button.setVisible(reprinter is not None)

    def _reprint(self, item_id: str) -> None:
        """Staff only: the receipt of this submission, printed again and audited."""
        reprinter = self._reprinter
        if reprinter is None:
            return
        if self._staff is not None and self._staff.needs_sign_in():
            self._staff.show()
            return
        staff = (self._staff.operator_id() if self._staff is not None else None) or ""
        self.queue_page.show_notice(_("Printing the receipt again…"))
        self._background.run(
            functools.partial(reprinter.reprint, item_id, staff),
            self._reprinted,
            self._reprint_failed,
        )

    def _reprinted(self, result: PrintResult) -> None:
        if result.status in (PrintStatus.OK, PrintStatus.PAPER_NEAR_END):
            text = _("The receipt was printed again.")
        else:
            text = _("The receipt could not be printed: {reason}").format(
                reason=_(PRINT_PROBLEMS.get(result.status, PRINT_PROBLEMS[PrintStatus.ERROR]))
            )
        self.queue_page.show_notice(text)
        self._shell.say(text)

    def _reprint_failed(self, exc: BaseException) -> None:
        text = message_for(exc)
        self.queue_page.show_notice(text)
        self._shell.say(text)

    def set_corrector(self, corrector: Corrector | None) -> None:
        """What reads refusals and queues corrections; without one rows cannot be corrected."""
        self._corrector = corrector

    def set_catalogue(self, catalogue: Catalogue, fetched_at: float | None = None) -> None:
        """fetched_at: when it came from the platform; None for the one shipped."""
        self._catalogue = catalogue
        self.queue_page.show_catalogue(catalogue.version, fetched_at)

    def retranslate(self) -> None:
        self._show_queue_status()
        self.queue_page.retranslate()
        self.correction_page.retranslate()
        if self._showing():
            self._load_rows()  # the rows' states and reasons in the new language

    def wipe(self) -> None:
        """The queue page shows masked names only; it is left as staff left it. What was typed
        on the correction page is forgotten."""
        self.correction_page.clear()

    def update_queue_status(self, status: SyncStatus) -> None:
        self._sync_status = status
        self._show_queue_status()
        if self._showing() and not self._rows_refresh.isActive():
            self._rows_refresh.start()

    def _showing(self) -> bool:
        return self._shell.current_page() is self.queue_page

    def _show_queue_status(self) -> None:
        status = self._sync_status
        if status is None:
            self.queue_progress.hide()
            self.queue_button.setText(_("Upload queue (F9)"))
            return
        self.queue_button.setText(status_line(status))
        self.queue_button.setAccessibleName(status_line(status))
        progress = self._drain.update(status)
        if progress is None:
            self.queue_progress.hide()
        else:
            done, total = progress
            self.queue_progress.setRange(0, total)
            self.queue_progress.setValue(done)
            self.queue_progress.show()
        self.queue_page.show_status(status, progress)

    def open_queue(self) -> None:
        if self._staff is not None and self._staff.needs_sign_in():
            self._staff.show()
            return
        self.queue_page.set_staff(self._staff.operator_id() if self._staff is not None else None)
        self.queue_page.retranslate()
        if self._sync_status is not None:
            self.queue_page.show_status(self._sync_status, self._drain.update(self._sync_status))
        self._shell.show_page(self.queue_page)
        self.queue_page.table.setFocus()
        self._load_rows()

    def close_queue(self) -> None:
        self.queue_page.clear_rows()
        self._shell.back_to_visit()

    def _load_rows(self) -> None:
        """Read the rows off the GUI thread; a refresh asked for meanwhile runs after it."""
        if self._rows_loading:
            self._rows_stale = True
            return
        self._rows_loading = True
        self._background.run(
            functools.partial(_read_queue, self._queue, self._corrector),
            self._rows_loaded,
            self._rows_failed,
        )

    def _rows_loaded(self, read: _QueueRead) -> None:
        self._rows_loading = False
        self._read = read
        if self._showing():
            services = {row.item_id: row.service_id for row in read.rows}
            problems = {
                item_id: [
                    problem_text(p) for p in explain(found, self._service(services.get(item_id)))
                ]
                for item_id, found in read.refused.items()
            }
            self.queue_page.set_corrections(problems, read.correcting)
            self.queue_page.show_rows(read.rows, self._service_name, self._field_label)
            self.queue_page.show_notice("")
        if self._rows_stale:
            self._rows_stale = False
            self._load_rows()

    def _rows_failed(self, exc: BaseException) -> None:
        self._rows_loading = False
        self._rows_stale = False
        log.error("upload queue not readable: %s", type(exc).__name__)
        self.queue_page.show_notice(message_for(exc))

    def _service_name(self, service_id: str) -> str:
        if service_id == HELP_REQUEST_KIND:
            return _("Call for staff")
        if service_id == BUNDLE_KIND:
            return _("Applications from a village service point")
        catalogue = self._catalogue
        if catalogue is not None:
            for service in catalogue.services:
                if service.id == service_id:
                    return pick(service.name)
        return service_id

    def _service(self, service_id: str | None) -> Service | None:
        catalogue = self._catalogue
        if catalogue is not None and service_id:
            for service in catalogue.services:
                if service.id == service_id:
                    return service
        return None

    # -- correcting a refused submission ---------------------------------------------------------

    def _open_correction(self, item_id: str) -> None:
        """Staff asked to correct a rejected row: its refused answers, one field each."""
        if self._staff is not None and self._staff.needs_sign_in():
            self._staff.show()
            return
        row = next((r for r in self._read.rows if r.item_id == item_id), None)
        found = self._read.refused.get(item_id)
        if row is None or not found or self._corrector is None:
            return
        service = self._service(row.service_id)
        self.correction_page.show_problems(
            item_id,
            explain(found, service),
            service,
            receipt_number=row.receipt_number,
            service_name=self._service_name(row.service_id) if row.service_id else "",
            masked_name=row.masked_name,
        )
        self._shell.show_page(self.correction_page)

    def _submit_correction(self, answers: object) -> None:
        item_id = self.correction_page.item_id
        corrector = self._corrector
        if item_id is None or corrector is None or not isinstance(answers, dict):
            return
        if self._staff is not None and self._staff.needs_sign_in():
            self.correction_page.show_error("")
            self._staff.show()
            return
        staff = (self._staff.operator_id() if self._staff is not None else None) or ""
        self._background.run(
            functools.partial(corrector.enqueue, item_id, dict(answers), staff),
            self._correction_saved,
            self._correction_failed,
        )

    def _correction_saved(self, _correction_id: object) -> None:
        self._shell.flash(_("Correction saved; it is being uploaded."))
        self._close_correction()

    def _correction_failed(self, exc: BaseException) -> None:
        log.error("correction not queued: %s", type(exc).__name__)
        self.correction_page.show_error(message_for(exc))

    def _close_correction(self) -> None:
        self.correction_page.clear()
        self.open_queue()

    def _field_label(self, service_id: str, field: str) -> str | None:
        """The question's label for a field the platform named, so staff read the form's words."""
        catalogue = self._catalogue
        if catalogue is not None:
            for service in catalogue.services:
                if service.id == service_id:
                    for question in service.questions:
                        if question.field == field:
                            return pick(question.label)
        return None

    def _retry_item(self, item_id: str) -> None:
        self._background.run(
            functools.partial(self._queue.retry, item_id), self._retried, self._rows_failed
        )

    def _retry_all(self) -> None:
        self._background.run(self._queue.retry_all, self._retried, self._rows_failed)

    def _retried(self, _value: object) -> None:
        self._load_rows()
