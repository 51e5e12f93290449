"""The upload queue journey (counter and rural staff): the unsent count and last contact in the
header on every screen, and the queue page (F9) with its retries."""

from __future__ import annotations

import functools
import logging

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QProgressBar

from kiosk.bundles import BUNDLE_KIND
from kiosk.catalogue import Catalogue
from kiosk.errors import message_for
from kiosk.i18n import _, pick
from kiosk.queue_view import QueueRow, UploadQueue
from kiosk.sync import HELP_REQUEST_KIND, SyncStatus
from ui.background import Background
from ui.journey import Journey, ShellPort, StaffPort
from ui.queue_page import DrainProgress, QueuePage, status_line
from ui.widgets import button

log = logging.getLogger(__name__)

ROWS_REFRESH_MS = 500


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
        shell.add_shortcut("F9", self.open_queue)
        self.retranslate()

    def set_catalogue(self, catalogue: Catalogue, fetched_at: float | None = None) -> None:
        """fetched_at: when it came from the platform; None for the one shipped."""
        self._catalogue = catalogue
        self.queue_page.show_catalogue(catalogue.version, fetched_at)

    def retranslate(self) -> None:
        self._show_queue_status()
        self.queue_page.retranslate()
        if self._showing():
            self._load_rows()  # the rows' states and reasons in the new language

    def wipe(self) -> None:
        """The queue page shows masked names only; it is left as staff left it."""

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
        self._background.run(self._queue.rows, self._rows_loaded, self._rows_failed)

    def _rows_loaded(self, rows: list[QueueRow]) -> None:
        self._rows_loading = False
        if self._showing():
            self.queue_page.show_rows(rows, self._service_name, self._field_label)
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
