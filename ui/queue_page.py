"""The staff view of the upload queue (counter and rural modes): what is waiting, why, and a way
to try again now. Rows show the receipt number, the service and the masked name only."""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
from collections.abc import Callable, Iterator, Mapping, Sequence

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QAbstractScrollArea,
    QHBoxLayout,
    QHeaderView,
    QLineEdit,
    QProgressBar,
    QScroller,
    QTableWidget,
    QTableWidgetItem,
)

from kiosk.i18n import _
from kiosk.queue_view import QueueRow, filter_rows, oldest_waiting
from kiosk.sync import SyncStatus
from kiosk.sync_messages import describe_error, describe_row
from offline_queue.outbox import State
from ui.screens import Page, shortcut
from ui.widgets import button, label

ServiceName = Callable[[str], str]
# (service id, field name) -> the question's label in the active language, None if unknown
FieldLabel = Callable[[str, str], str | None]


def format_contact(at: float | None, now: dt.datetime | None = None) -> str:
    """'14:05' today, '11-21 14:05' on another day, or 'never'."""
    if at is None:
        return _("never")
    when = dt.datetime.fromtimestamp(at)
    today = (now or dt.datetime.now()).date()
    return when.strftime("%H:%M") if when.date() == today else when.strftime("%m-%d %H:%M")


def status_line(status: SyncStatus) -> str:
    """The header's one line: unsent count and the last successful contact with the platform."""
    return _("Waiting to upload: {count} · Last contact: {when}").format(
        count=status.pending, when=format_contact(last_contact(status))
    )


def format_age(age: dt.timedelta) -> str:
    """'3 days 4 hours', '2 hours 5 minutes', '7 minutes'."""
    minutes = int(age.total_seconds() // 60)
    days, rest = divmod(minutes, 24 * 60)
    hours, minutes = divmod(rest, 60)
    if days:
        return _("{days} d {hours} h").format(days=days, hours=hours)
    if hours:
        return _("{hours} h {minutes} min").format(hours=hours, minutes=minutes)
    return _("{minutes} min").format(minutes=minutes)


def last_contact(status: SyncStatus) -> float | None:
    """When the platform itself last answered: a delivery, a refusal or a health check."""
    times = [t for t in (status.last_contact_at, status.last_success_at) if t is not None]
    return max(times) if times else None


def finger_scrolling(area: QAbstractScrollArea) -> None:
    """Drag the content with a finger (a touch panel's touches arrive as the left button),
    and scroll by pixels so a drag moves the rows as far as the finger moves."""
    QScroller.grabGesture(area.viewport(), QScroller.ScrollerGestureType.LeftMouseButtonGesture)
    if isinstance(area, QAbstractItemView):
        area.setVerticalScrollMode(QAbstractItemView.ScrollMode.ScrollPerPixel)
        area.setHorizontalScrollMode(QAbstractItemView.ScrollMode.ScrollPerPixel)


class DrainProgress:
    """How far the current backlog has drained: the backlog is what was pending when draining
    began (growing if more arrive meanwhile); it resets once nothing is pending."""

    def __init__(self) -> None:
        self.backlog = 0

    def update(self, status: SyncStatus) -> tuple[int, int] | None:
        """(done, total) while a backlog of two or more drains, else None (nothing to show)."""
        if status.pending == 0:
            self.backlog = 0
            return None
        self.backlog = max(self.backlog, status.pending)
        if self.backlog < 2 or not (status.draining or status.online):
            return None
        return self.backlog - status.pending, self.backlog


class QueuePage(Page):
    back = Signal()
    retry = Signal(str)  # item id
    retry_all = Signal()
    correct = Signal(str)  # item id of a rejected submission staff correct
    reprint = Signal(str)  # item id of a submission whose receipt staff print again

    COLUMNS = 5
    STATUS_COLUMN = 3

    def __init__(self) -> None:
        super().__init__()
        self.summary = label(name="question")
        self.contact = label(name="help")
        # How long the oldest waiting submission has waited, and which catalogue is in use: a
        # village assistant offline for days sees at a glance how stale things are.
        self.ages = label(name="help")
        self.notice = label(name="field_error")
        self.notice.hide()
        self.progress = QProgressBar()
        self.progress.setTextVisible(True)
        self.progress.hide()
        self.table = QTableWidget(0, self.COLUMNS)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setWordWrap(True)
        self.table.verticalHeader().hide()
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        # Service names wrap in a column of their own width; the reason takes what is left.
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.Interactive)
        header.resizeSection(1, 260)
        header.setSectionResizeMode(self.STATUS_COLUMN, QHeaderView.ResizeMode.Stretch)
        self.table.itemSelectionChanged.connect(self._selection_changed)
        finger_scrolling(self.table)
        # Finding one: by receipt number or masked name; "only mine today" at a counter.
        self.search = QLineEdit()
        self.search.setObjectName("queue_search")
        self.search.textChanged.connect(self._filter_changed)
        self.mine_button = button("", self._filter_changed)
        self.mine_button.setCheckable(True)
        self.mine_button.hide()
        self._mine: str | None = None  # the signed-in staff member's number, when there is one
        self.empty = label(name="help")
        for widget in (self.summary, self.contact, self.ages, self.notice, self.progress):
            self.body.addWidget(widget)
        finder = QHBoxLayout()
        finder.addWidget(self.search, 1)
        finder.addWidget(self.mine_button)
        self.body.addLayout(finder)
        self.body.addWidget(self.table, 1)
        self.body.addWidget(self.empty)
        self.back_button = button("", self.back)
        self.retry_button = button("", self._retry_selected)
        self.retry_all_button = button("", self.retry_all, name="primary")
        self.correct_button = button("", self._correct_selected)
        self.correct_button.hide()
        self.reprint_button = button("", self._reprint_selected)
        self.actions.addWidget(self.back_button)
        self.actions.addStretch(1)
        self.actions.addWidget(self.correct_button)
        self.actions.addWidget(self.reprint_button)
        self.actions.addWidget(self.retry_button)
        self.actions.addWidget(self.retry_all_button)
        shortcut(self, "Ctrl+R", self._retry_selected)
        shortcut(self, "Ctrl+P", self._reprint_selected)
        self._rows: list[QueueRow] = []
        self._all_rows: list[QueueRow] = []
        self._labels: tuple[ServiceName, FieldLabel | None] | None = None
        self._catalogue: tuple[str, float | None] | None = None
        # Rejected rows a correction may mend: their problems in words, one line each; and the
        # rows whose correction is waiting to upload.
        self._problems: Mapping[str, Sequence[str]] = {}
        self._correcting: frozenset[str] = frozenset()
        self.retranslate()

    def retranslate(self) -> None:
        self.title.setText(_("Upload queue"))
        self.back_button.setText(_("Back"))
        self.retry_button.setText(_("Retry this one now"))
        self.retry_all_button.setText(_("Retry all waiting now"))
        self.correct_button.setText(_("Correct and submit again"))
        self.correct_button.setAccessibleName(_("Correct and submit again"))
        self.reprint_button.setText(_("Print the receipt again"))
        self.reprint_button.setAccessibleName(_("Print the receipt again"))
        self.empty.setText(_("Nothing is waiting to upload."))
        self.search.setPlaceholderText(_("Find by receipt number or name"))
        self.search.setAccessibleName(_("Find by receipt number or name"))
        self.mine_button.setText(_("Only mine today"))
        self._show_ages()
        self.table.setHorizontalHeaderLabels(
            [
                _("Receipt / saved"),
                _("Service"),
                _("Applicant"),
                _("Status"),
                _("Tries"),
            ]
        )

    def show_catalogue(self, version: str, fetched_at: float | None) -> None:
        self._catalogue = (version, fetched_at)
        self._show_ages()

    def _show_ages(self, now: dt.datetime | None = None) -> None:
        at = now or dt.datetime.now()
        age = oldest_waiting(self._all_rows, at)
        parts = [
            _("Oldest waiting: {age}").format(age=format_age(age))
            if age is not None
            else _("Nothing has been waiting")
        ]
        if self._catalogue is not None:
            version, fetched_at = self._catalogue
            if fetched_at is None:
                text = _("Service catalogue: version {version}, as shipped")
            else:
                text = _("Service catalogue: version {version}, from {when}")
            parts.append(text.format(version=version, when=format_contact(fetched_at)))
        self.ages.setText(" · ".join(parts))

    def show_status(self, status: SyncStatus, progress: tuple[int, int] | None) -> None:
        counts = _(
            "Waiting: {pending} · Sent: {sent} · Not accepted: {rejected} · "
            "Needs attention: {attention}"
        )
        self.summary.setText(
            counts.format(
                pending=status.pending,
                sent=status.delivered_total,
                rejected=status.rejected,
                attention=status.needs_attention,
            )
        )
        line = _("Last successful contact with the platform: {when}").format(
            when=format_contact(last_contact(status))
        )
        if status.online is False:
            line += "\n" + _("The platform cannot be reached now; uploads resume on their own.")
        elif status.last_error:
            line += "\n" + _("Last problem: {problem}").format(
                problem=describe_error(status.last_error)
            )
        self.contact.setText(line)
        if progress is None:
            self.progress.hide()
        else:
            done, total = progress
            self.progress.setRange(0, total)
            self.progress.setValue(done)
            text = _("Uploading: {done} of {total}").format(done=done, total=total)
            self.progress.setFormat(text)
            self.progress.show()

    def show_notice(self, text: str) -> None:
        self.notice.setText(text)
        self.notice.setVisible(bool(text))

    def set_staff(self, staff_id: str | None) -> None:
        """The signed-in staff member (None: nobody, or a kiosk): offers "only mine today"."""
        self._mine = staff_id
        self.mine_button.setVisible(staff_id is not None)
        if staff_id is None:
            self.mine_button.setChecked(False)

    def set_corrections(
        self, problems: Mapping[str, Sequence[str]], correcting: frozenset[str]
    ) -> None:
        """What the platform refused in each correctable rejected row, in words (shown under
        its status, with "correct and submit again"), and the rows whose correction waits;
        call before show_rows."""
        self._problems = problems
        self._correcting = correcting

    def _filter_changed(self) -> None:
        if self._labels is not None:
            self.show_rows(self._all_rows, *self._labels)

    def show_rows(
        self,
        rows: Sequence[QueueRow],
        service_name: ServiceName,
        field_label: FieldLabel | None = None,
    ) -> None:
        selected = self.selected_id()
        self._all_rows = list(rows)
        self._labels = (service_name, field_label)
        mine = self._mine if self.mine_button.isChecked() else None
        self._rows = filter_rows(
            self._all_rows, self.search.text(), mine=mine, today=dt.date.today()
        )
        with self._widths_held():
            self.table.setRowCount(len(self._rows))
            for index, row in enumerate(self._rows):
                labels = (
                    functools.partial(field_label, row.service_id)
                    if field_label is not None and row.service_id
                    else None
                )
                status = describe_row(row.state, row.last_error, labels)
                if row.damaged:
                    status += " " + _("(the stored details are damaged)")
                status += self._correction_lines(row)
                cells = (
                    (row.receipt_number or "—") + "\n" + row.created_at.strftime("%m-%d %H:%M"),
                    service_name(row.service_id) if row.service_id else "—",
                    row.masked_name or "—",
                    status,
                    str(row.attempts),
                )
                for column, text in enumerate(cells):
                    item = QTableWidgetItem(text)
                    item.setData(Qt.ItemDataRole.UserRole, row.item_id)
                    self.table.setItem(index, column, item)
                if row.item_id == selected:
                    self.table.selectRow(index)
        self.table.resizeRowsToContents()
        self._show_ages()
        self.table.setVisible(bool(self._rows))
        self.empty.setVisible(not self._rows)
        self._selection_changed()

    @contextlib.contextmanager
    def _widths_held(self) -> Iterator[None]:
        """Fill the table at fixed column widths, then size the columns once.

        A column sized to its contents measures every row again each time a cell is set: a
        refresh of 200 rows held the GUI thread for over 3 s while a backlog drained.
        """
        header = self.table.horizontalHeader()
        modes = [header.sectionResizeMode(column) for column in range(self.COLUMNS)]
        for column in range(self.COLUMNS):
            header.setSectionResizeMode(column, QHeaderView.ResizeMode.Fixed)
        try:
            yield
        finally:
            for column, mode in enumerate(modes):
                header.setSectionResizeMode(column, mode)

    def clear_rows(self) -> None:
        self._rows = []
        self._all_rows = []
        self._labels = None
        self.search.setText("")
        self.table.clearContents()
        self.table.setRowCount(0)

    def selected_row(self) -> QueueRow | None:
        indexes = self.table.selectionModel().selectedRows()
        if not indexes:
            return None
        index = indexes[0].row()
        return self._rows[index] if 0 <= index < len(self._rows) else None

    def selected_id(self) -> str | None:
        row = self.selected_row()
        return None if row is None else row.item_id

    def _correction_lines(self, row: QueueRow) -> str:
        """Under a rejected row's status: each refused answer as 'question: what is wrong'."""
        if row.state is not State.REJECTED or row.item_id not in self._problems:
            return ""
        lines = ["", *self._problems[row.item_id]]
        if row.item_id in self._correcting:
            lines.append(_("A correction is waiting to upload."))
        return "\n".join(lines)

    def can_correct(self, row: QueueRow | None) -> bool:
        return (
            row is not None
            and row.state is State.REJECTED
            and row.item_id in self._problems
            and row.item_id not in self._correcting
        )

    def _selection_changed(self) -> None:
        row = self.selected_row()
        waiting = row is not None and row.item_id in self._correcting
        # A rejected row whose correction waits is not sent again as it was.
        self.retry_button.setEnabled(row is not None and row.can_retry and not waiting)
        correctable = any(r.item_id in self._problems for r in self._rows)
        self.correct_button.setVisible(correctable)
        self.correct_button.setEnabled(self.can_correct(row))
        self.reprint_button.setEnabled(row is not None and row.reprintable)

    def _correct_selected(self) -> None:
        row = self.selected_row()
        if row is not None and self.can_correct(row):
            self.correct.emit(row.item_id)

    def _reprint_selected(self) -> None:
        row = self.selected_row()
        if row is not None and row.reprintable:
            self.reprint.emit(row.item_id)

    def _retry_selected(self) -> None:
        row = self.selected_row()
        if row is not None and row.can_retry and row.item_id not in self._correcting:
            self.retry.emit(row.item_id)

    def spoken_text(self) -> str:
        return self.title.text()
