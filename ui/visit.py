"""The citizen's visit: welcome, choose a service, read its guide, answer one question a page,
review, submit, receipt. The rules are kiosk.session's; this journey shows its pages."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable

from PySide6.QtCore import QTimer, Signal
from PySide6.QtWidgets import QWidget

from devices.identity import Identity
from kiosk.assistance import (
    AssistanceError,
    agent_from_card,
    agent_of,
    confirmed,
    room_for_materials,
)
from kiosk.card_rules import Where
from kiosk.catalogue import Catalogue, Question, Service
from kiosk.config import Config
from kiosk.errors import UserFacingError, message_for
from kiosk.forms import FieldError, display_value, validate, validate_field
from kiosk.i18n import N_, _
from kiosk.identity import mask_id_number, mask_name
from kiosk.materials import MaterialList
from kiosk.photos import PhotoSource
from kiosk.receipt import not_printed_text
from kiosk.session import EndReason, Session, Step, StepError
from kiosk.submissions import SubmissionResult
from ui.background import Background
from ui.confirm_page import ConfirmPage
from ui.counter_form import CounterFormPage
from ui.journey import Journey, ShellPort, StaffPort
from ui.materials import MaterialsPanel
from ui.out_of_service import OutOfServicePage
from ui.screens import (
    BusyPage,
    DonePage,
    GuidePage,
    MessagePage,
    QuestionPage,
    ReviewPage,
    ServicesPage,
    WelcomePage,
)

log = logging.getLogger(__name__)

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

# How long the outcome stays on the screen when the visit was asked to end while it was being
# saved (the card was taken, or time ran out): long enough to hear it, then everything is wiped.
HELD_END_S = 15


class VisitJourney(Journey):
    step_changed = Signal(str)
    answer_refused = Signal(str)  # the message shown beside the answer
    submission_done = Signal(object)  # SubmissionResult
    submission_failed = Signal(str)

    def __init__(
        self,
        shell: ShellPort,
        *,
        config: Config,
        catalogue: Catalogue,
        submit: Callable[..., SubmissionResult],
        background: Background,
        staff_view: bool,
        demo_card: Callable[[], None] | None = None,
        rate: Callable[[str, str], None] | None = None,
        photos: PhotoSource | None = None,
        welcome: WelcomePage | None = None,
        staff: StaffPort | None = None,
    ) -> None:
        """`welcome` is the page already on the screen while the terminal started, if any.
        `staff`: who is signed in at a counter or rural terminal; a visit starts only then, and
        its submission carries their number."""
        super().__init__(shell)
        self._shell = shell
        self.config = config
        self.session = Session(catalogue)
        self._submit = submit
        self._background = background
        self._staff_view = staff_view
        self._demo_card = demo_card
        self._rate = rate
        self._photos = photos
        self._staff = staff
        # bumps on every end of a visit: late callbacks of an old visit are dropped
        self._generation = 0
        self._checking = False  # an answer or the whole form is being checked on a worker
        self._out_of_service = ""  # why nothing can be applied for (no catalogue), if so

        self.welcome = welcome or WelcomePage(demo=demo_card is not None)
        if staff_view:
            self.welcome.set_staff_view(True)
        self.services = ServicesPage()
        self.guide = GuidePage()
        self.question = QuestionPage()
        self.review = ReviewPage()
        self.busy = BusyPage()
        self.done = DonePage()
        self.message = MessagePage()
        self.out_of_service = OutOfServicePage()
        # Staff type the whole form at a counter or service point; the citizen confirms and signs.
        self.counter_form: CounterFormPage | None = None
        self.confirm: ConfirmPage | None = None
        self.materials: MaterialsPanel | None = None
        if staff_view:
            self.counter_form = CounterFormPage()
            self.confirm = ConfirmPage()
            # the citizen's papers, from a file or the document camera, within the platform's limits
            self.materials = MaterialsPanel(
                MaterialList(room_for_materials(catalogue.attachment_limits)),
                background,
                self.counter_form,
            )
            self.counter_form.side.addWidget(self.materials, 1)
            self.materials.say.connect(shell.say)
            self.counter_form.back.connect(self._form_back)
            self.counter_form.confirm.connect(self._form_next)
            self.confirm.back.connect(self._confirm_back)
            self.confirm.submit.connect(self._confirm_clicked)
        self._photo: bytes | None = None  # the card's photo, decoded once a visit
        self._photo_known = False
        for page in self.pages():
            if not shell.has_page(page):
                shell.add_page(page)

        self.welcome.demo_card.connect(self.present_demo_card)
        self.services.chosen.connect(self._choose_service)
        self.services.end.connect(self._cancel)
        self.guide.back.connect(self._guide_back)
        self.guide.start.connect(self._start_form)
        self.question.back.connect(self._question_back)
        self.question.next.connect(self._question_next)
        self.review.back.connect(self._review_back)
        self.review.submit.connect(self._submit_clicked)
        self.review.edit.connect(self._edit)
        self.done.finish.connect(self._finish)
        self.done.rate.connect(self._rated)
        self.message.home.connect(self._cancel)
        shell.add_shortcut("F2", self.present_demo_card)
        shell.add_shortcut("Escape", self._escape)

        self._done_timer = QTimer(self, interval=1000)
        self._done_timer.timeout.connect(self._done_tick)
        self._done_left = 0
        self._anim = QTimer(self, interval=900)
        self._anim.timeout.connect(self.welcome.animate)

    def pages(self) -> tuple[QWidget, ...]:
        pages: tuple[QWidget, ...] = (
            self.welcome,
            self.services,
            self.guide,
            self.question,
            self.review,
            self.busy,
            self.done,
            self.message,
            self.out_of_service,
        )
        if self.counter_form is not None and self.confirm is not None:
            pages += (self.counter_form, self.confirm)
        return pages

    def where(self) -> Where:
        """Where the visit stands, for the card journey's rules."""
        form = self.counter_form
        swapping = (
            form is not None
            and self.session.step in (Step.FORM, Step.CONFIRM)
            and form.wants_agent_card()
        )
        return Where(step=self.session.step, active=self.session.active, swapping_cards=swapping)

    @property
    def checking(self) -> bool:
        """An answer or the whole form is being checked on a worker."""
        return self._checking

    # -- what the shell asks (ui.shell.Visit) ---------------------------------------------------
    @property
    def active(self) -> bool:
        return self.session.active

    def idle_applies(self) -> bool:
        return self.session.active and self.session.step is not Step.DONE

    def warning_applies(self) -> bool:
        return self.session.active and self.session.step not in (Step.SUBMITTING, Step.DONE)

    def may_end(self, reason: EndReason) -> bool:
        return self.session.may_end(reason)

    def wipe(self) -> None:
        self._generation += 1
        self._checking = False
        self.session.end(EndReason.CANCELLED)
        self._done_timer.stop()
        self.services.show_services("", "", ())
        self.guide.wipe()
        self.question.wipe()
        self.review.show_review_cleared()
        self.done.show_done(accepted_text="", receipt_number="", notice="", printed="")
        self.message.show_message("", "")
        self.welcome.show_message("")
        self._photo = None
        self._photo_known = False
        if self.counter_form is not None and self.confirm is not None:
            self.counter_form.wipe()
            self.confirm.wipe()
        if self.materials is not None:
            self.materials.wipe()

    def show_start(self, reason: EndReason, was_active: bool) -> None:
        self.render()
        if was_active:
            self.show_welcome_message(_(END_MESSAGES[reason]))

    def retranslate(self) -> None:
        if self._shell.current_page() not in self.pages():
            return  # another journey's page is up; ours are redrawn when shown again
        self.render()

    # -- showing --------------------------------------------------------------------------------
    def render(self) -> None:
        """Show the page for the session's step, in the active language."""
        step = self.session.step
        if step is Step.WELCOME and self._staff is not None and self._staff.needs_sign_in():
            self._anim.stop()
            self._staff.show()
            return
        page: QWidget = self.welcome
        if self._out_of_service and step is Step.WELCOME:
            self._anim.stop()
            self.out_of_service.show_reason(self._out_of_service)
            self._shell.show_page(self.out_of_service)  # nowhere to go until a catalogue comes
            return
        if step is Step.WELCOME:
            self.welcome.retranslate()
            self._anim.start()
        else:
            self._anim.stop()
        if step is Step.SERVICES:
            page = self._render_services()
        elif step is Step.GUIDE:
            self.guide.show_guide(self._service())
            page = self.guide
        elif step is Step.QUESTION:
            page = self._render_question()
        elif step is Step.REVIEW:
            self._show_review([])
            page = self.review
        elif step is Step.FORM and self.counter_form is not None:
            page = self._render_form(self.counter_form)
        elif step is Step.CONFIRM and self.confirm is not None and self.counter_form is not None:
            self.confirm.show_confirm(
                self._service(),
                self.session.answers,
                self._shown_value,
                agent=self.counter_form.agent_card(),
                materials=[m.name for m in self.materials.materials]
                if self.materials is not None
                else [],
            )
            page = self.confirm
        elif step is Step.SUBMITTING:
            self.busy.show_busy(_("Saving your application. Please wait…"))
            page = self.busy
        elif step is Step.DONE:
            self._show_done(self.session.result)
            page = self.done
        self._shell.show_page(page)
        self.step_changed.emit(step.value)

    def _render_services(self) -> QWidget:
        identity = self._identity()
        self.services.show_services(
            _("Hello, {name}").format(name=mask_name(identity.name)),
            _("ID card: {number}").format(number=mask_id_number(identity.id_number)),
            self.session.catalogue.services,
            with_photo=self._staff_view and self._photos is not None,
        )
        if self._photo_known and self.services.photo is not None:
            self.services.show_photo(self._photo)
        elif not self._photo_known and self.services.photo is not None:
            self._load_photo(identity)
        return self.services

    def _render_question(self) -> QWidget:
        q = self.session.current_question
        if self.question.holds(q):
            # Drawn again (language, back from the queue page): keep what is being typed.
            self.session.set_answer(q.field, self.question.value())
        identity = self.session.identity
        self.question.set_card_address(identity.address if identity is not None else None)
        self.question.show_question(
            q, self.session.answers.get(q.field), self.session.page, len(self.session.pages)
        )
        return self.question

    def _render_form(self, form: CounterFormPage) -> QWidget:
        service = self._service()
        if form.holds(service):
            # Drawn again (language, back from the confirmation): keep what is being typed.
            self.session.set_answers(form.values())
        form.show_form(
            service,
            self._identity(),
            self.session.answers,
            with_photo=self._photos is not None,
        )
        if self.materials is not None:
            self.materials.retranslate()
        if self._photo_known:
            form.show_photo(self._photo)
        elif self._photos is not None:
            self._load_photo(self._identity())
        return form

    def show_welcome_message(self, text: str) -> None:
        self.welcome.show_message(text)
        if text:
            self._shell.say(text)

    def offer_catalogue(self, catalogue: Catalogue) -> bool:
        """A fresher catalogue: used at once when nobody is in a visit, else at the next one."""
        if self.session.step is Step.WELCOME and not self.session.active:
            self.session.catalogue = catalogue
            self._out_of_service = ""
            return True
        return False

    def show_out_of_service(self, text: str) -> None:
        """No catalogue: nothing can be applied for until one comes (see offer_catalogue)."""
        self._out_of_service = text
        self.render()

    def _load_photo(self, identity: Identity) -> None:
        """Decode off the GUI thread (a vendor decoder may be slow); a late photo is dropped."""
        photos = self._photos
        if photos is None:
            return
        self._background.run(
            functools.partial(photos.image, identity),
            functools.partial(self._photo_ready, self._generation),
            functools.partial(self._photo_failed, self._generation),
        )

    def _photo_ready(self, generation: int, image: bytes | None) -> None:
        if generation != self._generation:
            return
        self._photo, self._photo_known = image, True
        if self.session.step is Step.SERVICES and self.services.photo is not None:
            self.services.show_photo(image)
        elif self.session.step is Step.FORM and self.counter_form is not None:
            self.counter_form.show_photo(image)

    def _photo_failed(self, generation: int, exc: BaseException) -> None:
        log.warning("photo not decoded: %s", type(exc).__name__)
        self._photo_ready(generation, None)

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
        elif result.refused:
            # Not the network: the platform does not take it as it is. Nothing is lost.
            accepted = _("Your application is saved on this terminal.")
            notice = (
                _(
                    "The service platform did not accept it as it is. Staff can correct it in "
                    "the upload queue and send it again. Your receipt number stays valid."
                )
                if self._staff_view
                else _(
                    "The service platform did not accept it as it is. Please ask at a service "
                    "window with your receipt number; it stays valid."
                )
            )
        else:
            accepted = _("Your application is saved on this terminal.")
            notice = _(
                "The network is not available right now. Your application will be uploaded "
                "automatically when it is back. Your receipt number is already valid."
            )
        if result.printed:
            printed = _("Please take your receipt from the printer below the screen.")
        else:
            # What went wrong, that nothing else did, and the receipt's code to photograph.
            printed = not_printed_text(result.print_result.status)
        self.done.show_done(
            title=_("Application received") if result.delivered else _("Application saved"),
            accepted_text=accepted,
            receipt_number=result.receipt_number,
            notice=notice,
            printed=printed,
            remind_card=self.session.end_after_outcome is not EndReason.CARD_REMOVED,
            qr_url="" if result.printed else result.tracking_url,
        )
        held = self.session.end_after_outcome is not None
        self._done_left = min(HELD_END_S, int(self.config.done_reset_s)) if held else int(
            self.config.done_reset_s
        )
        self.done.set_countdown(self._done_left)
        self._done_timer.start()

    def _done_tick(self) -> None:
        self._done_left -= 1
        if self._done_left <= 0:
            self._done_timer.stop()
            self._shell.end_visit(self.session.end_after_outcome or EndReason.FINISHED)
            return
        self.done.set_countdown(self._done_left)

    # -- people -------------------------------------------------------------------------------
    def present_demo_card(self) -> None:
        if self._demo_card is not None and self.session.step is Step.WELCOME:
            self._demo_card()

    def needs_staff(self) -> bool:
        """A counter or rural terminal with nobody signed in: no card, no document is taken."""
        return self._staff is not None and self._staff.needs_sign_in()

    def card_read(self, identity: Identity) -> None:
        """A card was read (the card journey has checked it): the visit starts."""
        if self.needs_staff():
            self._shell.flash(_("A staff member must sign in before a card is read."))
            return
        if self._agent_card(identity):
            return
        already_read = self.session.identity is not None
        self.session.card_read(identity)
        self.welcome.show_message("")
        self._shell.touch()
        if not already_read:
            self.render()  # re-rendering mid-form would drop what is being typed

    def _agent_card(self, card: Identity) -> bool:
        """On the counter form of an application a relative makes for someone who is not here:
        the card read is the agent's own. True when it was taken as such."""
        form, applicant = self.counter_form, self.session.identity
        if (
            form is None
            or applicant is None
            or self.session.step is not Step.FORM
            or not form.wants_agent_card()
        ):
            return False
        self._shell.touch()
        if card.id_number == applicant.id_number:
            return False  # the applicant's own card back on the reader: nothing changes
        try:
            agent_from_card(applicant, card, form.relation() or "other")
        except AssistanceError as exc:
            form.show_problem(exc.user_message())
            return True
        form.set_agent(card)
        self._shell.say(form.agent_line.text())
        return True

    def _cancel(self) -> None:
        self._shell.end_visit(EndReason.CANCELLED)

    def _finish(self) -> None:
        self._shell.end_visit(EndReason.FINISHED)

    def _escape(self) -> None:
        if self._shell.current_page() not in self.pages():
            return
        step = self.session.step
        if step is Step.GUIDE:
            self._guide_back()
        elif step is Step.QUESTION:
            self._question_back()
        elif step is Step.REVIEW:
            self._review_back()
        elif step is Step.FORM:
            self._form_back()
        elif step is Step.CONFIRM:
            self._confirm_back()

    def _choose_service(self, service_id: str) -> None:
        try:
            if self.counter_form is not None:
                self.session.open_form(service_id)  # staff know the guide: straight to the form
                if self.materials is not None:
                    # the limits the platform announced with the catalogue in use
                    self.materials.wipe()  # nothing of another service's, nor a read under way
                    self.materials.materials = MaterialList(
                        room_for_materials(self.session.catalogue.attachment_limits)
                    )
            else:
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
        """The answer is checked on a worker (the catalogue's schema decides how long that
        takes), then the visit moves on; a second press meanwhile is ignored."""
        if self._checking or self.session.step is not Step.QUESTION:
            return
        self._keep_typed_answer()
        service, field, answers = self.session.page_to_check()
        self._checking = True
        self._background.run(
            functools.partial(validate_field, service, field, answers),
            functools.partial(self._page_checked, self._generation, field, answers),
            functools.partial(self._check_failed, self._generation),
        )

    def _page_checked(
        self, generation: int, field: str, answers: dict[str, object], error: FieldError | None
    ) -> None:
        if generation != self._generation:
            return  # a check of a visit that has ended: the flag is the new visit's
        self._checking = False
        if self.session.step is Step.QUESTION and self.question.value() != answers.get(field):
            return  # corrected while it was checked: the person presses Next again
        try:
            error = self.session.checked(field, answers, error)
        except StepError:
            return  # the person moved on or changed the answer meanwhile
        if error is not None:
            self.question.set_error(error)
            self._shell.say(error.message)
            self.answer_refused.emit(error.message)
            return
        self.render()

    def _check_failed(self, generation: int, exc: BaseException) -> None:
        log.error("an answer could not be checked: %s", type(exc).__name__)
        if generation != self._generation:
            return
        self._checking = False
        if self.session.step is not Step.QUESTION:
            return
        text = message_for(exc)
        self.question.set_error(FieldError(self.session.current_question.field, "check", text))
        self._shell.say(text)
        self.answer_refused.emit(text)

    def _review_back(self) -> None:
        self.session.previous_page()
        self.render()

    def _edit(self, field: str) -> None:
        self.session.edit(field)
        self.render()

    def _submit_clicked(self) -> None:
        if self._checking or self.session.step is not Step.REVIEW:
            return  # a second press while checking or saving
        service, answers = self.session.answers_to_check()
        self._checking = True
        self._background.run(
            functools.partial(validate, service, answers),
            functools.partial(self._form_checked, self._generation),
            functools.partial(self._form_check_failed, self._generation),
        )

    def _form_check_failed(self, generation: int, exc: BaseException) -> None:
        log.error("the form could not be checked: %s", type(exc).__name__)
        if generation != self._generation:
            return
        self._checking = False
        if self.session.step is Step.REVIEW:
            text = message_for(exc)
            self.review.summary.show_errors(text, [])
            self._shell.say(text)

    def _form_checked(self, generation: int, problems: list[FieldError]) -> None:
        if generation != self._generation:
            return
        self._checking = False
        if self.session.step is not Step.REVIEW:
            return
        if self._staff is not None and self._staff.operator_id() is None:
            return  # signed out meanwhile: that ends this visit; nothing goes unattributed
        outcome = self.session.begin_submit(problems)
        if isinstance(outcome, list):
            if self.session.step is Step.QUESTION:
                self.render()
                current = self.session.current_question.field
                first = next((e for e in outcome if e.field == current), outcome[0])
                self.question.set_error(first)
                self._shell.say(first.message)
            else:
                self._show_review(outcome)
            return
        self.render()
        self._background.run(
            functools.partial(self._submit, outcome, **self._attribution()),
            functools.partial(self._submitted, self._generation),
            functools.partial(self._submit_error, self._generation),
        )

    def _attribution(self) -> dict[str, str]:
        """The signed-in staff member a counter or rural submission is made by."""
        operator = self._staff.operator_id() if self._staff is not None else None
        return {"operator_id": operator} if operator else {}

    def _submitted(self, generation: int, result: SubmissionResult) -> None:
        self.submission_done.emit(result)
        if generation != self._generation:
            return  # cannot happen while saving holds the end; kept for a stopped terminal
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
        held = self.session.end_after_outcome
        self.render()
        if self.session.step is Step.CONFIRM and self.confirm is not None:
            self.confirm.show_error(text)
        else:
            self.review.summary.show_errors(text, [])
        self._shell.say(text)
        if held is not None:
            # Nothing was saved and the citizen has gone: the answers cannot be kept for them.
            self._shell.end_visit(held)
            self.show_welcome_message(text)

    # -- the counter form and the citizen's confirmation --------------------------------------
    def _form_back(self) -> None:
        if self.session.step is not Step.FORM or self._checking:
            return
        self.session.back_to_services()
        self.render()

    def _form_next(self) -> None:
        """Every answer is checked on a worker; with none wrong the citizen confirms."""
        form = self.counter_form
        if form is None or self._checking or self.session.step is not Step.FORM:
            return
        if self.materials is not None and self.materials.busy:
            self._shell.flash(_("A material is still being read. Please wait a moment."))
            return
        applicant = self._identity()
        try:  # a relative applying: their card read and how they are related, first
            agent_of(
                citizen_present=form.citizen_present(),
                agent_card=form.agent_card(),
                applicant=applicant,
                relation=form.relation(),
            )
        except AssistanceError as exc:
            form.show_problem(exc.user_message())
            self._shell.say(exc.user_message())
            return
        self.session.set_answers(form.values())
        service, answers = self.session.answers_to_check()
        self._checking = True
        self._background.run(
            functools.partial(validate, service, answers),
            functools.partial(self._whole_form_checked, self._generation, answers),
            functools.partial(self._whole_form_check_failed, self._generation),
        )

    def _whole_form_checked(
        self, generation: int, answers: dict[str, object], problems: list[FieldError]
    ) -> None:
        if generation != self._generation:
            return
        self._checking = False
        form = self.counter_form
        if form is None or self.session.step is not Step.FORM:
            return
        if form.values() != {f: answers.get(f) for f in form.values()}:
            # typed on meanwhile: what was checked is not what is there
            self._shell.flash(_("An answer changed while it was checked. Press Ctrl+Enter again."))
            return
        try:
            accepted = self.session.form_checked(answers, problems)
        except StepError:
            return
        if not accepted:
            form.set_errors(problems)
            self._shell.say(_("Some answers need correcting:") + " " + problems[0].message)
            self.answer_refused.emit(problems[0].message)
            return
        form.set_errors([])
        self.render()

    def _whole_form_check_failed(self, generation: int, exc: BaseException) -> None:
        log.error("the form could not be checked: %s", type(exc).__name__)
        if generation != self._generation:
            return
        self._checking = False
        if self.session.step is Step.FORM and self.counter_form is not None:
            text = message_for(exc)
            self.counter_form.summary.show_errors(text, [])
            self._shell.say(text)

    def _confirm_back(self) -> None:
        if self.session.step is Step.CONFIRM and self.confirm is not None:
            self.confirm.signature.pad.clear()  # what was signed may change: sign again
            self.session.back_to_form()
            self.render()

    def _confirm_clicked(self) -> None:
        confirm, form, applicant = self.confirm, self.counter_form, self.session.identity
        if (
            confirm is None
            or form is None
            or applicant is None
            or self.session.step is not Step.CONFIRM
        ):
            return
        if self._staff is not None and self._staff.operator_id() is None:
            return  # signed out meanwhile: that ends this visit; nothing goes unattributed
        try:
            assistance = confirmed(
                citizen_present=form.citizen_present(),
                agent_card=form.agent_card(),
                applicant=applicant,
                relation=form.relation(),
                signature_png=confirm.signature_png(),
            )
        except AssistanceError as exc:
            confirm.show_error(exc.user_message())
            self._shell.say(exc.user_message())
            return
        draft = self.session.confirm(assistance)
        files = self.materials.materials.as_attachments() if self.materials is not None else ()
        self.render()
        self._background.run(
            functools.partial(self._submit, draft, attachments=files, **self._attribution()),
            functools.partial(self._submitted, self._generation),
            functools.partial(self._submit_error, self._generation),
        )

    def _rated(self, level: str) -> None:
        result = self.session.result
        if self._rate is not None and isinstance(result, SubmissionResult):
            self._background.run(
                functools.partial(self._rate, result.submission_id, level),
                _ignore,
                _rating_not_sent,
            )

    def _show_problem(self, exc: BaseException) -> None:
        self.message.show_message(_("Sorry"), message_for(exc))
        self._shell.show_page(self.message)

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


def _ignore(_value: object) -> None:
    return None


def _rating_not_sent(exc: BaseException) -> None:
    log.warning("rating not sent: %s", type(exc).__name__)
