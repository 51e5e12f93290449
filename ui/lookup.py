"""Looking an application up without signing anything: "Check progress" on the welcome page.

The citizen scans the receipt's code (a USB scanner types it into the focused field and presses
Enter; a camera, where the terminal has one), types the receipt number on the keypad, or places
their ID card on the reader while this page is up (the card journey hands the card here:
take_card). The cases come from the platform, newest first, each with its status history; when
the platform is away, the last status known here, with its age. A case filed at this terminal
can be rated when it was found by its holder's ID card or by a receipt code whose signed token
verifies (kiosk.lookup.may_rate); a typed receipt number shows the status only. The card taken
away ends a lookup made with it. The satisfaction rating at the end of a visit is queued here as
well.

Like the service guide this is a journey beside the visit, with its own idle clock; everything it
showed is wiped when it ends (the shell's wipe).
"""

from __future__ import annotations

import contextlib
import functools
import logging
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol

from PySide6.QtCore import QObject, Qt, QTimer, Signal
from PySide6.QtGui import QImage, QResizeEvent
from PySide6.QtWidgets import (
    QBoxLayout,
    QGridLayout,
    QLineEdit,
    QVBoxLayout,
    QWidget,
)

from kiosk.errors import UserFacingError, message_for
from kiosk.i18n import _, pick
from kiosk.lookup import (
    Case,
    LookupDesk,
    LookupResult,
    Query,
    card_query,
    format_at,
    last_updated,
    may_rate,
    parse_scan,
    status_words,
)
from kiosk.ratings import RatingChoice, RatingDesk
from kiosk.visit_steps import EndReason
from ui.background import Background
from ui.journey import Journey, ShellPort
from ui.rating import RatingPanel
from ui.screens import Page, sentences, shown_names
from ui.shell import banner
from ui.widgets import ActivityWatch, Keypad, TextGroup, ValueButton, button, label, named

if TYPE_CHECKING:
    from devices.identity import Identity
    from kiosk.catalogue import Catalogue
    from kiosk.receipt_token import TerminalKeys
    from kiosk.submissions import SubmissionResult
    from ui.visit import VisitJourney

log = logging.getLogger(__name__)

# Letters that begin receipt numbers (the terminal's kind: kiosk, counter, village point).
RECEIPT_LETTERS = ("K", "C", "V")
# A receipt's signed tracking link fits (some 220 characters on a long public address); a
# scanner's runaway line does not grow without end.
MAX_FIELD = 512


class PublishedKeys(Protocol):
    """The terminals' public keys as the platform publishes them (kiosk.catalogue_store's
    TerminalKeysStore): a scanned receipt's token is checked with them before rating."""

    def current(self) -> TerminalKeys: ...


# -- the pages ----------------------------------------------------------------------------------
class LookupPage(Page):
    """Scan, type, or place the card."""

    entered = Signal(str)
    back = Signal()
    camera = Signal()

    def __init__(self) -> None:
        super().__init__()
        self.instruction = label(name="question")
        self.hint = label(name="help")
        self.field = QLineEdit()
        self.field.setObjectName("receipt_number")
        self.field.setMaxLength(MAX_FIELD)
        self.field.setInputMethodHints(
            Qt.InputMethodHint.ImhPreferUppercase | Qt.InputMethodHint.ImhNoPredictiveText
        )
        self.field.returnPressed.connect(self._enter)
        self.error = label(name="field_error")
        self.error.hide()
        # What to do and the field, with the keys beside them on a landscape panel (stacked, the
        # page outgrew a 1024-high panel at the largest text) and under them on a portrait one.
        row = QBoxLayout(QBoxLayout.Direction.LeftToRight)
        row.setSpacing(32)
        self._row = row
        text = QVBoxLayout()
        text.setSpacing(14)
        text.addWidget(self.instruction)
        text.addWidget(self.hint)
        text.addWidget(self.field)
        text.addWidget(self.error)
        text.addStretch(1)
        row.addLayout(text, 1)
        self.body.addLayout(row, 1)
        keys = QWidget()
        grid = QGridLayout(keys)
        grid.setContentsMargins(0, 0, 0, 0)
        grid.setSpacing(12)
        self.keypad = Keypad(self.field, extra="-", parent=self)
        grid.addWidget(self.keypad, 0, 0)
        letters = QWidget()
        column = QVBoxLayout(letters)
        column.setContentsMargins(0, 0, 0, 0)
        column.setSpacing(12)
        self.letter_buttons: list[ValueButton] = []
        for letter in RECEIPT_LETTERS:
            key = ValueButton(letter, letter, name="key")
            key.setFocusPolicy(Qt.FocusPolicy.NoFocus)  # typing stays in the field
            key.picked.connect(self._letter)
            column.addWidget(key)
            self.letter_buttons.append(key)
        column.addStretch(1)
        grid.addWidget(letters, 0, 1)
        row.addWidget(keys)
        self.back_button = button("", self.back)
        self.camera_button = button("", self.camera)
        self.camera_button.hide()  # shown only where a camera exists
        self.look_button = button("", self._enter, name="primary")
        self.actions.addWidget(self.back_button)
        self.actions.addStretch(1)
        self.actions.addWidget(self.camera_button)
        self.actions.addWidget(self.look_button)

    def retranslate(self) -> None:
        self.title.setText(_("Check the progress of an application"))
        self.instruction.setText(
            _("Scan the code on your receipt, or type the receipt number and press Look up")
        )
        self.hint.setText(
            _("Or place your ID card on the reader to see all your applications.")
        )
        named(self.field, _("Receipt number"), self.instruction.text())
        self.keypad.set_delete_text(_("Delete"))
        delete = self.keypad.buttons["⌫"]
        delete.setMinimumWidth(max(110, delete.fontMetrics().horizontalAdvance(delete.text()) + 64))
        self.keypad.updateGeometry()
        for key in self.letter_buttons:
            named(key, key.text(), _("Types {key} into the answer").format(key=key.text()))
        self.back_button.setText(_("Back to the start"))
        named(self.back_button, self.back_button.text(), _("Back to the welcome page"))
        self.camera_button.setText(_("Scan with the camera"))
        named(self.camera_button, self.camera_button.text(), _("Hold the receipt's code up"))
        self.look_button.setText(_("Look up"))
        named(self.look_button, self.look_button.text(), _("Shows the progress of the application"))

    def resizeEvent(self, event: QResizeEvent) -> None:
        size = event.size()
        self._row.setDirection(
            QBoxLayout.Direction.LeftToRight
            if size.width() > size.height()
            else QBoxLayout.Direction.TopToBottom
        )
        super().resizeEvent(event)

    def show_entry(self) -> None:
        self.retranslate()
        self.field.setText("")
        self.show_error("")
        self.look_button.setEnabled(True)
        self.tab_order(self.field, self.back_button, self.camera_button, self.look_button)
        self.in_reading_order()
        self.field.setFocus()

    def show_error(self, text: str) -> None:
        self.error.setText(text)
        self.error.setVisible(bool(text))
        self.field.setProperty("invalid", bool(text))
        self.field.setAccessibleDescription(text or self.instruction.text())
        self.field.style().unpolish(self.field)
        self.field.style().polish(self.field)

    def busy(self, busy: bool) -> None:
        self.look_button.setEnabled(not busy)
        if busy:
            self.show_error("")
            self.error.setText(_("Looking it up…"))
            self.error.setObjectName("help")
            self.error.show()
        else:
            self.error.setObjectName("field_error")
        self.error.style().unpolish(self.error)
        self.error.style().polish(self.error)

    def _enter(self) -> None:
        self.entered.emit(self.field.text())

    def _letter(self, letter: str) -> None:
        self.field.insert(letter)
        self.field.setFocus()

    def wipe(self) -> None:
        self.field.setText("")
        self.show_error("")
        self.title.clear()

    def spoken_text(self) -> str:
        error = self.error.text() if self.error.isVisibleTo(self) else ""
        return sentences(self.title.text(), self.instruction.text(), self.hint.text(), error)


class CaseItem(TextGroup):
    """One case: its receipt number, service and status, when it was last known (offline), its
    history, and its rating where this terminal filed it."""

    def __init__(
        self, case: Case, service_name: str, *, online: bool, now: float, rateable: bool
    ) -> None:
        super().__init__()
        self.case = case
        box = QVBoxLayout(self)
        box.setContentsMargins(0, 8, 0, 8)
        box.setSpacing(4)
        said = []
        number = label(_("Receipt number: {number}").format(number=case.receipt_number), "help")
        service = label(service_name)
        status = label(status_words(case.status), name="question")
        self.status = status
        for widget in (number, service, status):
            box.addWidget(widget)
        said += [number.text(), service.text(), status.text()]
        if not online:
            age = label(last_updated(now - case.known_at), name="field_error")
            self.age = age
            box.addWidget(age)
            said.append(age.text())
        for step in case.history:
            line = label(f"{format_at(step.at)}  {status_words(step.status)}", name="muted")
            box.addWidget(line)
            said.append(line.text())
        # Its rating follows it as an item of its own: on a small panel in large type it may
        # go to the next page rather than be squeezed.
        self.rating: RatingPanel | None = None
        if online and rateable and case.rateable and case.submission_id:
            self.rating = RatingPanel(case.submission_id)
        self.setAccessibleName(sentences(*said))


class ResultsPage(Page):
    """The cases found, paged, in large type."""

    again = Signal()
    back = Signal()
    rated = Signal(str, object)

    def __init__(self) -> None:
        super().__init__()
        self.source = label(name="help")
        self.body.addWidget(self.source)
        self.cases = self.pager()
        self.body.addWidget(self.cases, 1)
        self.again_button = button("", self.again)
        self.back_button = button("", self.back, name="primary")
        self.actions.addWidget(self.again_button)
        self.actions.addStretch(1)
        self.actions.addWidget(self.back_button)
        self.items: list[CaseItem] = []

    def show_result(
        self,
        result: LookupResult,
        names: dict[str, str],
        now: float,
        keys: TerminalKeys | None = None,
    ) -> None:
        """The cases found; a case may be rated only where may_rate allows (by the holder's card,
        or a receipt code whose token verifies with keys)."""
        count = len(result.cases)
        if result.query.by_card:
            self.title.setText(_("Your applications"))
        else:
            self.title.setText(_("Your application"))
        if result.online:
            self.source.setText(_("From the service platform, just now."))
        elif count:
            self.source.setText(
                _(
                    "The service platform cannot be reached right now. This is the last "
                    "status known at this terminal."
                )
            )
        else:
            self.source.setText(
                _(
                    "The service platform cannot be reached right now, and this terminal "
                    "knows nothing of this receipt number. Please try again later."
                )
            )
        online = result.online
        self.items = [
            CaseItem(
                case,
                names.get(case.service_id, case.service_id),
                online=online,
                now=now,
                rateable=may_rate(result.query, case, keys),
            )
            for case in result.cases
        ]
        widgets: list[QWidget] = []
        for item in self.items:
            widgets.append(item)
            if item.rating is not None:
                widgets.append(item.rating)
        if not count and result.online:
            nothing = label(_("No application was found. Please check the receipt number."))
            nothing.setAccessibleName(nothing.text())
            widgets = [nothing]
        for item in self.items:
            if item.rating is not None:
                item.rating.rated.connect(self.rated)
                item.rating.changed.connect(self.cases.refit)
                item.rating.said.connect(self.said)
        self.cases.set_items(widgets)
        self._fit_faces()  # measured in the window's type size, now that they are in it
        self.cases.refit()
        self.again_button.setText(_("Look up another"))
        named(self.again_button, self.again_button.text())
        self.back_button.setText(_("Back to the start"))
        named(self.back_button, self.back_button.text(), _("Your information is cleared"))
        self.tab_order(
            self.cases.previous_button, self.cases.more_button, self.again_button, self.back_button
        )
        self.in_reading_order()
        self.back_button.setFocus()

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        self._fit_faces()

    def _fit_faces(self) -> None:
        room = self.body_widget.contentsRect().width()
        for item in self.items:
            if item.rating is not None:
                item.rating.faces.set_room(room)

    def status_texts(self) -> list[str]:
        return [item.status.text() for item in self.items]

    def wipe(self) -> None:
        self.items = []
        self.cases.clear()
        self.source.clear()
        self.title.clear()

    def spoken_text(self) -> str:
        return sentences(
            self.title.text(),
            self.source.text(),
            *shown_names(self.cases),
            self.cases.status_text(),
        )


# -- the camera, where there is one -----------------------------------------------------------
def decode_codes(image: QImage) -> str:
    """The text of the first QR code in the frame ("" when none); runs on a worker."""
    import zxingcpp  # only where a camera is used

    gray = image.convertToFormat(QImage.Format.Format_Grayscale8)
    for result in zxingcpp.read_barcodes(gray, formats=zxingcpp.BarcodeFormat.QRCode):
        if result.text:
            return str(result.text)
    return ""


def cameras_present() -> bool:
    from PySide6.QtMultimedia import QMediaDevices

    return bool(QMediaDevices.videoInputs())


class CameraScan(QObject):
    """Frames from the default camera, decoded on a worker a few times a second until a code is
    read. Built only where a camera exists."""

    found = Signal(str)

    def __init__(self, parent: QObject, background: Background) -> None:
        super().__init__(parent)
        from PySide6.QtMultimedia import QCamera, QMediaCaptureSession, QMediaDevices, QVideoSink

        self._background = background
        self._camera = QCamera(QMediaDevices.defaultVideoInput(), self)
        self._session = QMediaCaptureSession(self)
        self._sink = QVideoSink(self)
        self._session.setCamera(self._camera)
        self._session.setVideoSink(self._sink)
        self._sink.videoFrameChanged.connect(self._frame)
        self._decoding = False
        self._last = 0.0

    def start(self) -> None:
        self._camera.start()

    def stop(self) -> None:
        self._camera.stop()
        self._decoding = False

    def _frame(self, frame: object) -> None:
        now = time.monotonic()
        if self._decoding or now - self._last < 0.25 or not self._camera.isActive():
            return
        self._last = now
        image = frame.toImage()  # type: ignore[attr-defined]  # a QVideoFrame
        if image.isNull():
            return
        self._decoding = True
        self._background.run(functools.partial(decode_codes, image), self._decoded, self._failed)

    def _decoded(self, text: object) -> None:
        self._decoding = False
        if isinstance(text, str) and text and self._camera.isActive():
            self.stop()
            self.found.emit(text)

    def _failed(self, exc: BaseException) -> None:
        self._decoding = False
        log.warning("camera frame not decoded: %s", type(exc).__name__)


# -- the journey --------------------------------------------------------------------------------
class LookupJourney(Journey):
    """From the welcome page's "Check progress": the entry page, the cases, and back; the idle
    clock or "Back to the start" ends it. Also queues the rating given at the end of a visit."""

    shown = Signal()  # the cases (or what was found) are on the screen

    def __init__(
        self,
        shell: ShellPort,
        *,
        desk: LookupDesk | None,
        ratings: RatingDesk | None,
        catalogue: Catalogue | None,
        background: Background,
        idle_ms: int,
        warning_s: int,
        terminal_keys: PublishedKeys | None = None,
    ) -> None:
        super().__init__(shell)
        self._shell = shell
        self._desk = desk
        self._ratings = ratings
        self._catalogue = catalogue
        self._terminal_keys = terminal_keys
        self._background = background
        self._active = False
        self._by_card = False  # the cases asked for (or shown) are the card holder's
        self._activity = ActivityWatch(self)  # anyone there: the idle clock starts again
        self._activity.seen.connect(self.keep_going)
        self._generation = 0
        self._visit_submission = ""  # the visit's submission, which its done page rates
        # Ratings given and not yet handed to the rating desk, oldest first; one is in hand.
        self._ratings_waiting: list[tuple[str, RatingChoice]] = []
        self._queueing = False
        self._camera: CameraScan | None = None

        self.way_in = button("", self.start, name="browse_guide")
        self.entry_page = LookupPage()
        self.results_page = ResultsPage()
        for page in self.pages():
            shell.add_page(page)
        self.entry_page.entered.connect(self.look_up)
        self.entry_page.back.connect(self.back_to_start)
        self.entry_page.camera.connect(self._scan_with_camera)
        self.results_page.again.connect(self.start)
        self.results_page.back.connect(self.back_to_start)
        self.results_page.rated.connect(self.rate_case)

        self.idle_timer = QTimer(self, singleShot=True, interval=idle_ms)
        self.idle_timer.timeout.connect(self._idle_warning)
        self._tick = QTimer(self, interval=1000)
        self._tick.timeout.connect(self._on_tick)
        self._warning_s = warning_s
        self._countdown = 0
        self.idle_text = label()
        self.idle_button = button("", self.keep_going, name="primary")
        self.idle_banner = banner(self.idle_text, self.idle_button)
        shell.add_banner(self.idle_banner)
        self.retranslate()

    def pages(self) -> tuple[QWidget, ...]:
        return (self.entry_page, self.results_page)

    @property
    def active(self) -> bool:
        return self._active

    def set_catalogue(self, catalogue: Catalogue) -> None:
        self._catalogue = catalogue

    def set_terminal_keys(self, terminal_keys: PublishedKeys | None) -> None:
        self._terminal_keys = terminal_keys

    # -- the entry --------------------------------------------------------------------------
    def start(self) -> None:
        """"Check progress" on the welcome page, or "Look up another"."""
        self._active = True
        self._by_card = False
        self._generation += 1
        self._activity.watch(True)
        self.idle_timer.start()
        self.results_page.wipe()
        self.entry_page.camera_button.setVisible(self._desk is not None and cameras_present())
        self.entry_page.show_entry()
        self._shell.show_page(self.entry_page)
        self.entry_page.field.setFocus()  # a scanner types into it: shown first, then focused

    def look_up(self, text: str) -> None:
        """A line scanned or typed (the scanner's Enter, or Look up)."""
        if not self._active:
            return
        try:
            query = parse_scan(text)
        except UserFacingError as exc:
            self._refuse(exc.user_message())
            return
        self._by_card = False
        self._find(query)

    def take_card(self, identity: Identity) -> bool:
        """The card journey offers a card read while a lookup page is up: True when taken (the
        holder's cases are looked up; no visit starts)."""
        if not self._active or self._shell.current_page() not in self.pages():
            return False
        try:
            query = card_query(identity.id_number)
        except UserFacingError:
            self._refuse(_("This card cannot be used to look applications up."))
            return True
        if self._shell.current_page() is not self.entry_page:
            self.entry_page.show_entry()
            self._shell.show_page(self.entry_page)
        self._by_card = True
        self._find(query)
        return True

    def card_removed(self) -> bool:
        """The card journey hears a card taken away: True when it was the card whose holder's
        cases are being looked up or shown; then they are wiped and the start page comes back
        (no visit began, so nothing else would take them off the screen)."""
        if not (self._active and self._by_card):
            return False
        if self._shell.current_page() not in self.pages():
            return False
        self._shell.end_visit(EndReason.CARD_REMOVED)
        return True

    def _refuse(self, text: str) -> None:
        self.entry_page.show_error(text)
        self.entry_page.field.selectAll()
        self.entry_page.field.setFocus()
        self._shell.say(text)

    def _find(self, query: Query) -> None:
        desk = self._desk
        if desk is None:
            self._refuse(_("Looking applications up is not available at this terminal."))
            return
        self._generation += 1
        self.entry_page.busy(True)
        self._background.run(
            functools.partial(desk.find, query),
            functools.partial(self._found, self._generation),
            functools.partial(self._not_found, self._generation),
        )

    def _found(self, generation: int, result: LookupResult) -> None:
        if generation != self._generation or not self._active:
            return
        self.entry_page.busy(False)
        self.results_page.show_result(
            result, self._service_names(result.cases), time.time(), self._published_keys()
        )
        self._shell.show_page(self.results_page)
        self.shown.emit()

    def _not_found(self, generation: int, exc: BaseException) -> None:
        if generation != self._generation or not self._active:
            return
        self.entry_page.busy(False)
        if not isinstance(exc, UserFacingError):
            log.warning("lookup failed: %s", type(exc).__name__)
        self._refuse(message_for(exc))

    def _published_keys(self) -> TerminalKeys | None:
        store = self._terminal_keys
        return None if store is None else store.current()

    def _service_names(self, cases: Sequence[Case]) -> dict[str, str]:
        names = {}
        catalogue = self._catalogue
        for case in cases:
            names[case.service_id] = case.service_id
            if catalogue is None:
                continue
            # A service the catalogue no longer has: its id stands in.
            with contextlib.suppress(UserFacingError):
                names[case.service_id] = pick(catalogue.service(case.service_id).name)
        return names

    def _scan_with_camera(self) -> None:
        if self._camera is None:
            self._camera = CameraScan(self, self._background)
            self._camera.found.connect(self._camera_read)
        self._shell.say(_("Hold the receipt's code up"))
        self._camera.start()

    def _camera_read(self, text: str) -> None:
        self.entry_page.field.setText(text[:MAX_FIELD])
        self.look_up(text)

    # -- ratings ------------------------------------------------------------------------------
    def rate_case(self, submission_id: str, choice: RatingChoice) -> None:
        """A case rated on the results page: queued, delivered by the sync engine."""
        self._queue_rating(submission_id, choice)

    def visit_submitted(self, result: SubmissionResult) -> None:
        """The visit's submission is saved: its done page may rate it; it joins the cases known
        here, uploaded or waiting to upload."""
        self._visit_submission = result.submission_id
        desk = self._desk
        if desk is not None and result.receipt_number:
            self._background.run(
                functools.partial(
                    desk.remember_filed,
                    result.receipt_number,
                    result.service_name,
                    delivered=result.delivered,
                ),
                _ignore,
                _log_failure("remembering the case"),
            )

    def visit_rated(self, choice: RatingChoice) -> None:
        """The visit's done page was rated."""
        if self._visit_submission:
            self._queue_rating(self._visit_submission, choice)

    def _queue_rating(self, submission_id: str, choice: RatingChoice) -> None:
        """Ratings are queued one after another, in the order given: an unhappy level is queued
        when its face is chosen and its follow-up's answer after it, which must replace it."""
        if self._ratings is None or not submission_id:
            return
        self._ratings_waiting.append((submission_id, choice))
        if not self._queueing:
            self._queue_next_rating()

    def _queue_next_rating(self, _done: object = None) -> None:
        ratings = self._ratings
        if ratings is None or not self._ratings_waiting:
            self._queueing = False
            return
        self._queueing = True
        submission_id, choice = self._ratings_waiting.pop(0)
        self._background.run(
            functools.partial(ratings.queue, submission_id, choice),
            self._queue_next_rating,
            self._rating_not_queued,
        )

    def _rating_not_queued(self, exc: BaseException) -> None:
        _failed("queueing a rating", exc)
        self._queue_next_rating()

    # -- leaving ------------------------------------------------------------------------------
    def back_to_start(self) -> None:
        """"Back to the start": everything shown and spoken about the cases is forgotten (the
        shell's wipe, as at the idle clock's end)."""
        self._stop()
        self._shell.end_visit(EndReason.CANCELLED)

    def visit_shown(self, _step: str = "") -> None:
        """The visit put one of its pages up: the lookup is over."""
        if self._active and self._shell.current_page() not in self.pages():
            self._stop()

    def _stop(self) -> None:
        self._active = False
        self._by_card = False
        self._activity.watch(False)
        self.idle_timer.stop()
        self._tick.stop()
        self.idle_banner.hide()
        self._generation += 1
        if self._camera is not None:
            self._camera.stop()
        self.entry_page.busy(False)
        self.entry_page.wipe()
        self.results_page.wipe()

    def retranslate(self) -> None:
        self.way_in.setText(_("Check progress"))
        named(
            self.way_in,
            self.way_in.text(),
            _("Look an application up by its receipt or your ID card"),
        )
        self.idle_button.setText(_("I need more time"))
        named(self.idle_button, self.idle_button.text())
        self.entry_page.retranslate()
        if self._tick.isActive():
            self._show_countdown()

    def wipe(self) -> None:
        self._stop()
        self._visit_submission = ""
        self.idle_text.clear()

    # -- the idle clock -------------------------------------------------------------------------
    def keep_going(self) -> None:
        if not self._active:
            return
        self._tick.stop()
        self.idle_banner.hide()
        self.idle_timer.start()

    def _idle_warning(self) -> None:
        if not self._active:
            return
        self._countdown = self._warning_s
        self._show_countdown()
        self._tick.start()
        self.idle_banner.show()
        self._shell.say(self.idle_text.text())

    def _on_tick(self) -> None:
        self._countdown -= 1
        if self._countdown <= 0:
            self._tick.stop()
            self._shell.end_visit(EndReason.IDLE)
            return
        self._show_countdown()

    def _show_countdown(self) -> None:
        self.idle_text.setText(
            _("Are you still there? This page will close in {seconds} seconds.").format(
                seconds=self._countdown
            )
        )


def add_lookup(
    shell: ShellPort,
    visit: VisitJourney,
    *,
    desk: LookupDesk | None,
    ratings: RatingDesk | None,
    catalogue: Catalogue | None,
    background: Background,
    idle_ms: int,
    warning_s: int,
    terminal_keys: PublishedKeys | None = None,
) -> LookupJourney:
    """The lookup journey, its way in on the welcome page, and what it hears from the visit (its
    pages coming up, its submission, the done page's rating)."""
    journey = LookupJourney(
        shell,
        desk=desk,
        ratings=ratings,
        catalogue=catalogue,
        background=background,
        idle_ms=idle_ms,
        warning_s=warning_s,
        terminal_keys=terminal_keys,
    )
    visit.welcome.add_way_in(journey.way_in)
    visit.step_changed.connect(journey.visit_shown)
    visit.submission_done.connect(journey.visit_submitted)
    visit.done.rated.connect(journey.visit_rated)
    return journey


def _ignore(_value: object) -> None:
    return None


def _log_failure(what: str) -> functools.partial[None]:
    return functools.partial(_failed, what)


def _failed(what: str, exc: BaseException) -> None:
    log.warning("%s failed: %s", what, type(exc).__name__)
