"""The terminal window: shows the page for the session's step and reacts to people and devices."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QEvent, QObject, QTimer, Signal
from PySide6.QtWidgets import (
    QApplication,
    QFrame,
    QHBoxLayout,
    QLabel,
    QMainWindow,
    QProgressBar,
    QPushButton,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from devices.cards.mrz import MrtdIdentity
from devices.identity import Identity, is_valid_id_number
from devices.readers.base import EventKind, ReaderError, ReaderEvent
from kiosk.access_keys import AccessKeys, parse_access_key
from kiosk.catalogue import Catalogue, Question, Service
from kiosk.config import Config, Mode
from kiosk.errors import UserFacingError, message_for
from kiosk.forms import FieldError, display_value
from kiosk.i18n import N_, _, current_language, pick, set_language
from kiosk.identity import mask_id_number, mask_name
from kiosk.photos import PhotoSource
from kiosk.queue_view import QueueRow, UploadQueue
from kiosk.session import Draft, EndReason, SecondCardError, Session, Step, StepError
from kiosk.submissions import SubmissionResult
from kiosk.sync import SyncStatus
from offline_queue.errors import OutboxCorruptError
from ui.background import Background
from ui.mrz_panel import MrzPanel
from ui.queue_page import DrainProgress, QueuePage, status_line
from ui.screens import (
    BusyPage,
    DonePage,
    GuidePage,
    MessagePage,
    QuestionPage,
    ReviewPage,
    ServicesPage,
    WelcomePage,
    shortcut,
)
from ui.theme import Palette, Sizes, scaled, stylesheet
from ui.voice import VoiceGuide
from ui.widgets import button, label

log = logging.getLogger(__name__)

ROWS_REFRESH_MS = 500

READER_ADVICE = {
    ReaderError.UNSUPPORTED_CARD: N_(
        "This card cannot be read here. Please use your resident ID card, or ask staff for help."
    ),
    ReaderError.CARD_MOVED: N_(
        "The card was moved before reading finished. "
        "Please place it on the reader again and keep it still."
    ),
    ReaderError.READER_GONE: N_("The card reader is not connected. Please ask staff for help."),
    ReaderError.SAM_FAULT: N_("The card reader has a fault. Please ask staff for help."),
    ReaderError.TIMEOUT: N_("Reading the card took too long. Please place it on the reader again."),
    ReaderError.BAD_DATA: N_(
        "The card could not be read properly. Please try again or ask staff for help."
    ),
    ReaderError.OTHER: N_("The card could not be read. Please try again or ask staff for help."),
    ReaderError.ACCESS_KEY_NEEDED: N_(
        "This document's chip needs the data from its machine readable zone. Staff: please type "
        "the document number, date of birth and date of expiry."
    ),
    ReaderError.ACCESS_DENIED: N_(
        "The document data entered does not match this document's chip. Please check the "
        "document number, date of birth and date of expiry."
    ),
}

END_MESSAGES = {
    EndReason.IDLE: N_(
        "Your visit ended because there was no activity. Your information has been cleared."
    ),
    EndReason.CARD_REMOVED: N_(
        "Your ID card was taken away, so your visit has ended. Your information has been cleared."
    ),
    EndReason.FINISHED: N_("Thank you. Your information has been cleared."),
    EndReason.CANCELLED: N_("Your visit has ended. Your information has been cleared."),
}


class KioskWindow(QMainWindow):
    step_changed = Signal(str)
    submission_done = Signal(object)  # SubmissionResult
    submission_failed = Signal(str)

    def __init__(
        self,
        *,
        config: Config,
        catalogue: Catalogue,
        submit: Callable[[Draft], SubmissionResult],
        background: Background,
        voice: VoiceGuide,
        demo_card: Callable[[], None] | None = None,
        rate: Callable[[str, str], None] | None = None,
        queue: UploadQueue | None = None,
        access_keys: AccessKeys | None = None,
        retry_read: Callable[[str], None] | None = None,
        photos: PhotoSource | None = None,
    ) -> None:
        super().__init__()
        self.config = config
        self.session = Session(catalogue)
        self._submit = submit
        self._background = background
        self.voice = voice
        self._demo_card = demo_card
        self._rate = rate
        self._queue = queue
        self._access_keys = access_keys
        self._retry_read = retry_read
        self._photos = photos
        self._mrz_reader = ""  # the reader whose chip waits for staff's MRZ entry
        self._staff_view = config.mode is not Mode.KIOSK and queue is not None
        self._sync_status: SyncStatus | None = None
        self._drain = DrainProgress()
        self._rows_loading = False
        self._rows_stale = False
        # A draining backlog reports after every batch; the open queue screen re-reads its rows
        # at most this often rather than after each report.
        self._rows_refresh = QTimer(self, singleShot=True, interval=ROWS_REFRESH_MS)
        self._rows_refresh.timeout.connect(self._load_rows)
        self._generation = (
            0  # bumps on every session end: late callbacks of an old visit are dropped
        )
        self.setWindowTitle(_("Government services self-service terminal"))
        self.setStyleSheet(stylesheet(Palette(), scaled(Sizes(), config.font_scale)))

        central = QWidget()
        layout = QVBoxLayout(central)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        layout.addWidget(self._build_header())
        self.idle_text = label()
        self.idle_button = button("", self.keep_going, name="primary")
        self.idle_banner = self._banner(self.idle_text, self.idle_button)
        self.staff_text = label()
        self.staff_dismiss = button("")
        self.staff_banner = self._banner(self.staff_text, self.staff_dismiss)
        self.staff_dismiss.clicked.connect(self.staff_banner.hide)
        self.card_text = label()
        self.card_continue = button("", self._continue_without_card, name="primary")
        self.card_end = button("", lambda: self.end_session(EndReason.CARD_REMOVED))
        self.card_banner = self._banner(self.card_text, self.card_continue, self.card_end)
        for banner in (self.idle_banner, self.staff_banner, self.card_banner):
            layout.addWidget(banner)
        self.stack = QStackedWidget()
        layout.addWidget(self.stack, 1)
        self.setCentralWidget(central)

        self.welcome = WelcomePage(demo=demo_card is not None)
        self.services = ServicesPage()
        self.guide = GuidePage()
        self.question = QuestionPage()
        self.review = ReviewPage()
        self.busy = BusyPage()
        self.done = DonePage()
        self.message = MessagePage()
        self.queue_page = QueuePage()
        self.mrz = MrzPanel()
        self.welcome.body.insertWidget(self.welcome.body.count() - 1, self.mrz)
        self.mrz.submitted.connect(self._mrz_entered)
        for page in (
            self.welcome,
            self.services,
            self.guide,
            self.question,
            self.review,
            self.busy,
            self.done,
            self.message,
            self.queue_page,
        ):
            self.stack.addWidget(page)

        self.welcome.demo_card.connect(self.present_demo_card)
        self.services.chosen.connect(self._choose_service)
        self.services.end.connect(lambda: self.end_session(EndReason.CANCELLED))
        self.guide.back.connect(self._guide_back)
        self.guide.start.connect(self._start_form)
        self.question.back.connect(self._question_back)
        self.question.next.connect(self._question_next)
        self.review.back.connect(self._review_back)
        self.review.submit.connect(self._submit_clicked)
        self.review.edit.connect(self._edit)
        self.done.finish.connect(lambda: self.end_session(EndReason.FINISHED))
        self.done.rate.connect(self._rated)
        self.message.home.connect(lambda: self.end_session(EndReason.CANCELLED))
        self.queue_page.back.connect(self.close_queue)
        self.queue_page.retry.connect(self._retry_item)
        self.queue_page.retry_all.connect(self._retry_all)

        shortcut(self, "F2", self.present_demo_card)
        shortcut(self, "Ctrl+L", self.toggle_language)
        shortcut(self, "Escape", self._escape)
        if self._staff_view:
            shortcut(self, "F9", self.open_queue)

        self._idle = QTimer(self, singleShot=True, interval=int(config.idle_timeout_s * 1000))
        self._idle.timeout.connect(self._idle_warning)
        self._tick = QTimer(self, interval=1000)
        self._tick.timeout.connect(self._on_tick)
        self._countdown = 0
        self._countdown_kind = ""
        self._anim = QTimer(self, interval=900)
        self._anim.timeout.connect(self.welcome.animate)
        QApplication.instance().installEventFilter(self)  # type: ignore[union-attr]
        self.voice.set_language(current_language())
        self.render()

    # -- building -----------------------------------------------------------------------------
    def _build_header(self) -> QFrame:
        header = QFrame()
        header.setObjectName("header")
        row = QHBoxLayout(header)
        row.setContentsMargins(24, 8, 24, 8)
        self.hall_label = label(wrap=False)
        # Counter and rural staff see the unsent count and last contact on every screen; the
        # button opens the queue (F9).
        self.queue_button = button("", self.open_queue)
        self.queue_button.setVisible(self._staff_view)
        self.queue_progress = QProgressBar()
        self.queue_progress.setTextVisible(False)
        self.queue_progress.setFixedWidth(160)
        self.queue_progress.hide()
        self.voice_button = button("", self.toggle_voice)
        self.language_button = button("", self.toggle_language)
        row.addWidget(self.hall_label)
        row.addStretch(1)
        row.addWidget(self.queue_progress)
        row.addWidget(self.queue_button)
        row.addWidget(self.voice_button)
        row.addWidget(self.language_button)
        return header

    @staticmethod
    def _banner(text: QLabel, *buttons: QPushButton) -> QFrame:
        """A notice strip under the header: a sentence and its buttons; hidden until needed."""
        frame = QFrame()
        frame.setObjectName("notice")
        row = QHBoxLayout(frame)
        row.setContentsMargins(24, 12, 24, 12)
        row.addWidget(text, 1)
        for widget in buttons:
            row.addWidget(widget)
        frame.hide()
        return frame

    # -- showing ------------------------------------------------------------------------------
    def render(self) -> None:
        """Show the page for the session's step, in the active language."""
        self._retranslate_header()
        step = self.session.step
        page: QWidget
        if step is Step.WELCOME:
            self.welcome.retranslate()
            page = self.welcome
            self._anim.start()
        else:
            self._anim.stop()
        if step is Step.SERVICES:
            identity = self._identity()
            self.services.show_services(
                _("Hello, {name}").format(name=mask_name(identity.name)),
                _("ID card: {number}").format(number=mask_id_number(identity.id_number)),
                self.session.catalogue.services,
                with_photo=self._staff_view and self._photos is not None,
            )
            self._load_photo(identity)
            page = self.services
        elif step is Step.GUIDE:
            self.guide.show_guide(self._service())
            page = self.guide
        elif step is Step.QUESTION:
            q = self.session.current_question
            self.question.show_question(
                q, self.session.answers.get(q.field), self.session.page, len(self.session.pages)
            )
            page = self.question
        elif step is Step.REVIEW:
            self._show_review([])
            page = self.review
        elif step is Step.SUBMITTING:
            self.busy.show_busy(_("Saving your application. Please wait…"))
            page = self.busy
        elif step is Step.DONE:
            self._show_done(self.session.result)
            page = self.done
        self.stack.setCurrentWidget(page)
        self.voice.say(page.spoken_text())  # type: ignore[attr-defined]
        self.step_changed.emit(step.value)

    def _load_photo(self, identity: Identity) -> None:
        """Decode off the GUI thread (a vendor decoder may be slow); a late photo is dropped."""
        photos = self._photos
        if photos is None or self.services.photo is None:
            return
        generation = self._generation
        self._background.run(
            lambda: photos.image(identity),
            lambda image: self._photo_ready(generation, image),
            lambda exc: self._photo_ready(generation, None),
        )

    def _photo_ready(self, generation: int, image: bytes | None) -> None:
        if generation == self._generation and self.session.step is Step.SERVICES:
            self.services.show_photo(image)

    def _retranslate_header(self) -> None:
        self.setWindowTitle(_("Government services self-service terminal"))
        self.hall_label.setText(self.config.hall_name or _("Government Service Hall"))
        self.language_button.setText("English" if current_language() != "en" else "中文")
        self.language_button.setAccessibleName(_("Change language"))
        self.voice_button.setText(_("Voice: on") if self.voice.enabled else _("Voice: off"))
        self.idle_button.setText(_("I need more time"))
        self.staff_dismiss.setText(_("Understood"))
        self.card_continue.setText(_("Continue"))
        self.card_end.setText(_("End the visit"))
        self._show_queue_status()
        self.queue_page.retranslate()

    def _show_review(self, errors: list[FieldError]) -> None:
        self.review.show_review(self._service(), self.session.answers, errors, self._shown_value)

    @staticmethod
    def _shown_value(question: Question, value: object) -> str:
        if question.prefill == "identity.id_number" and isinstance(value, str):
            return mask_id_number(value)
        if question.prefill == "identity.name" and isinstance(value, str):
            return mask_name(value)
        return display_value(question, value)

    def _show_done(self, result: SubmissionResult) -> None:
        if result.delivered:
            accepted = _("Your application has been received by the service platform.")
            notice = ""
        else:
            accepted = _("Your application is saved on this terminal.")
            notice = _(
                "The network is not available right now. Your application will be uploaded "
                "automatically when it is back. Your receipt number is already valid."
            )
        if result.printed:
            printed = _("Please take your receipt from the printer below the screen.")
        else:
            printed = _(
                "The receipt could not be printed. "
                "Please write down your receipt number or ask staff to print it."
            )
        self.done.show_done(
            accepted_text=accepted,
            receipt_number=result.receipt_number,
            notice=notice,
            printed=printed,
        )
        self._start_countdown("done", int(self.config.done_reset_s))

    def show_welcome_message(self, text: str) -> None:
        self.welcome.show_message(text)
        if text:
            self.voice.say(text)

    # -- people -------------------------------------------------------------------------------
    def present_demo_card(self) -> None:
        if self._demo_card is not None and self.session.step is Step.WELCOME:
            self._demo_card()

    def toggle_language(self) -> None:
        if self.session.step is Step.QUESTION:
            self._keep_typed_answer()
        set_language("en" if current_language() != "en" else "zh_CN")
        self.voice.set_language(current_language())
        self.render()

    def toggle_voice(self) -> None:
        self.voice.set_enabled(not self.voice.enabled)
        self._retranslate_header()

    def _escape(self) -> None:
        step = self.session.step
        if step is Step.GUIDE:
            self._guide_back()
        elif step is Step.QUESTION:
            self._question_back()
        elif step is Step.REVIEW:
            self._review_back()

    def _choose_service(self, service_id: str) -> None:
        try:
            self.session.choose_service(service_id)
        except UserFacingError as exc:
            self._show_problem(exc)
            return
        self.render()

    def _guide_back(self) -> None:
        self.session.back_to_services()
        self.render()

    def _start_form(self) -> None:
        self.session.start_form()
        self.render()

    def _keep_typed_answer(self) -> None:
        q = self.session.current_question
        self.session.set_answer(q.field, self.question.value())

    def _question_back(self) -> None:
        self._keep_typed_answer()
        self.session.previous_page()
        self.render()

    def _question_next(self) -> None:
        self._keep_typed_answer()
        error = self.session.next_page()
        if error is not None:
            self.question.set_error(error)
            self.voice.say(error.message)
            return
        self.render()

    def _review_back(self) -> None:
        self.session.previous_page()
        self.render()

    def _edit(self, field: str) -> None:
        self.session.edit(field)
        self.render()

    def _submit_clicked(self) -> None:
        outcome = self.session.begin_submit()
        if isinstance(outcome, list):
            if self.session.step is Step.QUESTION:
                self.render()
                current = self.session.current_question.field
                first = next((e for e in outcome if e.field == current), outcome[0])
                self.question.set_error(first)
                self.voice.say(first.message)
            else:
                self._show_review(outcome)
            return
        self.render()
        generation = self._generation
        self._background.run(
            lambda: self._submit(outcome),
            lambda result: self._submitted(generation, result),
            lambda exc: self._submit_error(generation, exc),
        )

    def _submitted(self, generation: int, result: SubmissionResult) -> None:
        self.submission_done.emit(result)
        if generation != self._generation:
            return  # the person already left; the submission is saved and the receipt printed
        self.session.submitted(result)
        self.render()

    def _submit_error(self, generation: int, exc: BaseException) -> None:
        if not isinstance(exc, UserFacingError):
            log.error("submission failed: %s", type(exc).__name__, exc_info=exc)
        text = message_for(exc)
        self.submission_failed.emit(text)
        if generation != self._generation:
            return
        self.session.submit_failed()
        self.render()
        self.review.summary.show_errors(text, [])
        self.voice.say(text)

    def _rated(self, level: str) -> None:
        result = self.session.result
        if self._rate is not None and isinstance(result, SubmissionResult):
            submission_id = result.submission_id
            rate = self._rate
            self._background.run(
                lambda: rate(submission_id, level),
                lambda _r: None,
                lambda exc: log.warning("rating not sent: %s", type(exc).__name__),
            )

    def _show_problem(self, exc: BaseException) -> None:
        self.message.show_message(_("Sorry"), message_for(exc))
        self.stack.setCurrentWidget(self.message)
        self.voice.say(message_for(exc))

    # -- devices ------------------------------------------------------------------------------
    def on_reader_event(self, event: ReaderEvent) -> None:
        if event.kind is EventKind.IDENTITY and event.identity is not None:
            self._forget_mrz(event.reader)
            self._card_read(event.identity)
        elif event.kind is EventKind.CARD_PRESENT:
            if self.session.step is Step.WELCOME and not self.session.active:
                self.show_welcome_message(
                    _("Reading your card. Please keep it still on the reader…")
                )
        elif event.kind is EventKind.CARD_REMOVED:
            self._forget_mrz(event.reader)
            in_visit = self.session.active and self.session.step not in (Step.DONE, Step.WELCOME)
            if self.session.step is Step.WELCOME and not self.session.active:
                self.welcome.show_message("")  # taken away before it was read
            elif in_visit and self.config.card_removal_ends_visit:
                self.end_session(EndReason.CARD_REMOVED)
            elif in_visit:
                self._ask_after_card_removal()
        elif event.kind is EventKind.ERROR and event.error is not None:
            log.warning("reader %s: %s %s", event.reader, event.error.value, event.detail)
            if self.session.step is not Step.WELCOME:
                return
            if event.error in (ReaderError.ACCESS_KEY_NEEDED, ReaderError.ACCESS_DENIED):
                self._ask_for_mrz(event.reader, event.error)
            else:
                self.show_welcome_message(_(READER_ADVICE[event.error]))
        elif event.kind is EventKind.READER_REMOVED and self.session.step is Step.WELCOME:
            self.show_welcome_message(_(READER_ADVICE[ReaderError.READER_GONE]))

    def _ask_for_mrz(self, reader: str, error: ReaderError) -> None:
        """A travel document's chip needs its MRZ data: staff type it; a kiosk cannot."""
        if not self._staff_view or self._access_keys is None or self._retry_read is None:
            self.show_welcome_message(_(READER_ADVICE[ReaderError.UNSUPPORTED_CARD]))
            return
        self._mrz_reader = reader
        self.show_welcome_message("")
        advice = _(READER_ADVICE[error])
        for widget in (self.welcome.instruction, self.welcome.card_art, self.welcome.hint):
            widget.hide()  # room for the form without scrolling
        self.mrz.ask(advice)
        self.voice.say(advice)

    def _mrz_entered(self, number: str, birth: str, expiry: str) -> None:
        keys, retry, reader = self._access_keys, self._retry_read, self._mrz_reader
        if keys is None or retry is None or not reader:
            return
        try:
            key = parse_access_key(number, birth, expiry)
        except UserFacingError as exc:
            self.mrz.show_error(exc.user_message())
            self.voice.say(exc.user_message())
            return
        keys.provide(reader, key)
        self.mrz.show_error("")
        self.show_welcome_message(_("Reading your card. Please keep it still on the reader…"))
        retry(reader)

    def _forget_mrz(self, reader: str | None = None) -> None:
        if self._access_keys is not None:
            self._access_keys.forget(reader)
        if reader is None or reader == self._mrz_reader:
            self._mrz_reader = ""
            self.mrz.clear()
            for widget in (self.welcome.instruction, self.welcome.card_art, self.welcome.hint):
                widget.show()

    def _ask_after_card_removal(self) -> None:
        """Counter and service point: staff decide whether the visit goes on without the card."""
        text = _("The ID card was taken off the reader. Continue this application?")
        self.card_text.setText(text)
        self.card_banner.show()
        self.voice.say(text)

    def _continue_without_card(self) -> None:
        self.card_banner.hide()
        self.touch()

    def _card_read(self, identity: Identity) -> None:
        if not isinstance(identity, MrtdIdentity) and not is_valid_id_number(identity.id_number):
            if self.session.step is Step.WELCOME:
                self.show_welcome_message(_(READER_ADVICE[ReaderError.BAD_DATA]))
            return
        already_read = self.session.identity is not None
        try:
            self.session.card_read(identity)
        except SecondCardError as exc:
            self.voice.say(exc.user_message())
            self.statusBar().showMessage(exc.user_message(), 10_000)
            return
        except UserFacingError:
            return  # a card placed during the receipt page: nothing to do
        self.card_banner.hide()  # the same card is back
        self.welcome.show_message("")
        self.touch()
        if not already_read:
            self.render()  # re-rendering mid-form would drop what is being typed

    # -- the upload queue (counter and rural staff) --------------------------------------------
    def update_queue_status(self, status: SyncStatus) -> None:
        self._sync_status = status
        if status.last_error == OutboxCorruptError.code and not self.staff_banner.isVisible():
            # Found while running; the next start sets the damaged file aside (open_outbox).
            self.show_staff_notice(
                _(
                    "For staff: the upload queue on this terminal is damaged. Please restart the "
                    "terminal: it will set the damaged queue aside and start a fresh one."
                )
            )
        self._show_queue_status()
        if self.stack.currentWidget() is self.queue_page and not self._rows_refresh.isActive():
            self._rows_refresh.start()

    def _show_queue_status(self) -> None:
        status = self._sync_status
        if status is None or not self._staff_view:
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
        if not self._staff_view:
            return
        self.queue_page.retranslate()
        if self._sync_status is not None:
            self.queue_page.show_status(self._sync_status, self._drain.update(self._sync_status))
        self.stack.setCurrentWidget(self.queue_page)
        self.queue_page.table.setFocus()
        self._load_rows()

    def close_queue(self) -> None:
        self.queue_page.clear_rows()
        self.render()

    def _load_rows(self) -> None:
        """Read the rows off the GUI thread; a refresh asked for meanwhile runs after it."""
        queue = self._queue
        if queue is None:
            return
        if self._rows_loading:
            self._rows_stale = True
            return
        self._rows_loading = True
        self._background.run(queue.rows, self._rows_loaded, self._rows_failed)

    def _rows_loaded(self, rows: list[QueueRow]) -> None:
        self._rows_loading = False
        if self.stack.currentWidget() is self.queue_page:
            self.queue_page.show_rows(rows, self._service_name)
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
        for service in self.session.catalogue.services:
            if service.id == service_id:
                return pick(service.name)
        return service_id

    def _retry_item(self, item_id: str) -> None:
        queue = self._queue
        if queue is None:
            return
        self._background.run(
            lambda: queue.retry(item_id), lambda _r: self._load_rows(), self._rows_failed
        )

    def _retry_all(self) -> None:
        queue = self._queue
        if queue is None:
            return
        self._background.run(queue.retry_all, lambda _r: self._load_rows(), self._rows_failed)

    def show_staff_notice(self, text: str) -> None:
        """A notice for staff that stays until they dismiss it (e.g. a damaged queue set aside)."""
        self.staff_text.setText(text)
        self.staff_banner.setVisible(bool(text))

    # -- time ---------------------------------------------------------------------------------
    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if event.type() in (
            QEvent.Type.KeyPress,
            QEvent.Type.MouseButtonPress,
            QEvent.Type.TouchBegin,
        ):
            self.touch()
        return False

    def touch(self) -> None:
        """Someone is there: restart the idle clock and withdraw any warning."""
        if self._countdown_kind == "idle":
            self.keep_going()
        if self.session.active and self.session.step is not Step.DONE:
            self._idle.start()

    def keep_going(self) -> None:
        self.idle_banner.hide()
        if self._countdown_kind == "idle":
            self._countdown_kind = ""
            self._tick.stop()
        if self.session.active:
            self._idle.start()

    def _idle_warning(self) -> None:
        if not self.session.active or self.session.step in (Step.SUBMITTING, Step.DONE):
            return
        self._start_countdown("idle", int(self.config.idle_warning_s))
        self.idle_banner.show()
        self.voice.say(self.idle_text.text())

    def _start_countdown(self, kind: str, seconds: int) -> None:
        self._countdown_kind = kind
        self._countdown = seconds
        self._show_countdown()
        self._tick.start()

    def _on_tick(self) -> None:
        self._countdown -= 1
        if self._countdown <= 0:
            kind = self._countdown_kind
            self._tick.stop()
            self._countdown_kind = ""
            self.end_session(EndReason.IDLE if kind == "idle" else EndReason.FINISHED)
            return
        self._show_countdown()

    def _show_countdown(self) -> None:
        if self._countdown_kind == "idle":
            self.idle_text.setText(
                _(
                    "Are you still there? To protect your information, "
                    "this visit will end in {seconds} seconds."
                ).format(seconds=self._countdown)
            )
        elif self._countdown_kind == "done":
            self.done.set_countdown(self._countdown)

    # -- the end ------------------------------------------------------------------------------
    def end_session(self, reason: EndReason) -> None:
        """Forget the person: session data, every page that showed it, and what was spoken."""
        was_active = self.session.active
        self._generation += 1
        self.session.end(reason)
        self._idle.stop()
        self._tick.stop()
        self._countdown_kind = ""
        self.idle_banner.hide()
        self.card_banner.hide()
        self._forget_mrz()
        self._wipe_pages()
        self.voice.stop()
        self.voice.spoken.clear()
        self.render()
        if was_active:
            self.show_welcome_message(_(END_MESSAGES[reason]))

    def _wipe_pages(self) -> None:
        self.services.show_services("", "", ())
        self.question.line.clear()
        self.question.set_error(None)
        self.review.show_review_cleared()
        self.done.show_done(accepted_text="", receipt_number="", notice="", printed="")
        self.message.show_message("", "")
        self.statusBar().clearMessage()

    def _identity(self) -> Identity:
        identity = self.session.identity
        if identity is None:
            raise StepError("no card read")
        return identity

    def _service(self) -> Service:
        service = self.session.service
        if service is None:
            raise StepError("no service chosen")
        return service

    def closeEvent(self, event: Any) -> None:
        QApplication.instance().removeEventFilter(self)  # type: ignore[union-attr]
        self._idle.stop()
        self._tick.stop()
        self._anim.stop()
        super().closeEvent(event)
