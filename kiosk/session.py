"""One citizen's visit as a state machine: card, service, questions, review, submit, done.

Pure and single-threaded: the UI calls it on the GUI thread and shows whatever step it is in.
Ending a session drops every reference to the person's data.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from devices.identity import Identity
from kiosk.assistance import Assistance
from kiosk.catalogue import Catalogue, Question, Service
from kiosk.errors import UserFacingError
from kiosk.forms import FieldError, clean_answers, prefill, validate, validate_field
from kiosk.i18n import N_
from kiosk.visit_steps import EndReason, Step

__all__ = ["Draft", "EndReason", "SecondCardError", "Session", "Step", "StepError"]


class SecondCardError(UserFacingError):
    def __init__(self) -> None:
        super().__init__(
            N_(
                "Another ID card was placed on the reader. "
                "Please finish or end the current visit first."
            )
        )


class StepError(UserFacingError):
    """A step was asked for out of order; the screen should never offer it."""

    def __init__(self, detail: str) -> None:
        super().__init__(N_("Please go back to the start and try again."))
        self.detail = detail


@dataclass(frozen=True, slots=True)
class Draft:
    """What will be submitted: the service, the person and the checked answers."""

    service: Service
    identity: Identity
    answers: dict[str, Any]
    catalogue_version: str
    # At a counter or service point: the citizen's (or their agent's) confirmation and signature.
    assistance: Assistance | None = None


class Session:
    def __init__(self, catalogue: Catalogue) -> None:
        self.catalogue = catalogue
        self.step = Step.WELCOME
        self.identity: Identity | None = None
        self.service: Service | None = None
        self.answers: dict[str, Any] = {}
        self.page = 0
        self.result: Any = None
        # Why the visit should end, asked while its submission was being saved: the end waits
        # until the result is shown and spoken (a citizen is never left not knowing).
        self.held_end: EndReason | None = None
        # where a failed save goes back to: the review, or the citizen's confirmation
        self._before_submit = Step.REVIEW

    # -- the card ----------------------------------------------------------------------------
    def card_read(self, identity: Identity) -> None:
        if self.identity is not None:
            if self.identity.id_number == identity.id_number:
                return  # the same card read again: nothing changes
            raise SecondCardError()
        if self.step is not Step.WELCOME:
            raise StepError("card read outside the welcome step")
        self.identity = identity
        self.step = Step.SERVICES

    # -- the service -------------------------------------------------------------------------
    def choose_service(self, service_id: str) -> Service:
        self._need(Step.SERVICES, Step.GUIDE)
        self.service = self.catalogue.service(service_id)
        self.answers = {}
        self.step = Step.GUIDE
        return self.service

    def back_to_services(self) -> None:
        self._need(Step.GUIDE, Step.QUESTION, Step.REVIEW, Step.FORM)
        self.service = None
        self.answers = {}
        self.page = 0
        self.step = Step.SERVICES

    def start_form(self) -> None:
        self._need(Step.GUIDE)
        service, identity = self._service(), self._identity()
        self.answers = prefill(service, identity)
        self.page = 0
        self.step = Step.QUESTION if self.pages else Step.REVIEW

    # -- the counter form: staff type every answer on one page -------------------------------
    def open_form(self, service_id: str) -> Service:
        """At a counter or service point: the service's whole form at once, the card's answers
        filled in (staff have read the guide; the citizen is in front of them)."""
        self._need(Step.SERVICES)
        self.service = self.catalogue.service(service_id)
        self.answers = prefill(self.service, self._identity())
        self.page = 0
        self.step = Step.FORM
        return self.service

    def set_answers(self, answers: dict[str, Any]) -> None:
        """What staff typed in the form; the card's answers cannot be changed."""
        self._need(Step.FORM)
        service = self._service()
        for field in answers:
            if service.question(field).readonly:
                raise StepError("a read-only answer cannot be changed")
        self.answers.update(answers)

    def form_checked(self, answers: dict[str, Any], problems: list[FieldError]) -> bool:
        """Apply a check of the whole form made on `answers`: with no problems the citizen
        confirms next. StepError when the visit moved or the answers changed meanwhile."""
        if self.step is not Step.FORM:
            raise StepError("the form was left while it was checked")
        if answers != self.answers:
            raise StepError("the answers changed while they were checked")
        if problems:
            return False
        self.step = Step.CONFIRM
        return True

    def back_to_form(self) -> None:
        self._need(Step.CONFIRM)
        self.step = Step.FORM

    def confirm(self, assistance: Assistance) -> Draft:
        """The citizen (or their agent) has read and signed: the draft to save, answers checked
        on the way into this step."""
        self._need(Step.CONFIRM)
        self._before_submit = Step.CONFIRM
        self.step = Step.SUBMITTING
        return Draft(
            self._service(),
            self._identity(),
            clean_answers(self._service(), self.answers),
            self.catalogue.version,
            assistance,
        )

    # -- the questions -----------------------------------------------------------------------
    @property
    def pages(self) -> tuple[Question, ...]:
        """The questions that get a page: what the card already says is shown on the review."""
        if self.service is None:
            return ()
        return tuple(q for q in self.service.questions if not q.readonly)

    @property
    def current_question(self) -> Question:
        self._need(Step.QUESTION)
        return self.pages[self.page]

    def set_answer(self, field: str, value: Any) -> None:
        self._need(Step.QUESTION)
        question = self._service().question(field)
        if question.readonly:
            raise StepError("a read-only answer cannot be changed")
        self.answers[field] = value

    def next_page(self) -> FieldError | None:
        """Check this page's answer here and now; move on only when it is acceptable."""
        service, field, answers = self.page_to_check()
        return self.checked(field, answers, validate_field(service, field, answers))

    def page_to_check(self) -> tuple[Service, str, dict[str, Any]]:
        """What checking this page's answer needs, as plain data: the check may run on a
        worker (a catalogue's schema is not trusted to be quick), then `checked` applies it."""
        question = self.current_question
        return self._service(), question.field, dict(self.answers)

    def checked(
        self, field: str, answers: dict[str, Any], error: FieldError | None
    ) -> FieldError | None:
        """Apply a check of `field` made on `answers`: move on when it passed. StepError when
        the visit has moved or the answer changed meanwhile (the check is stale)."""
        if self.step is not Step.QUESTION or self.current_question.field != field:
            raise StepError("the page changed while its answer was checked")
        if self.answers.get(field) != answers.get(field):
            raise StepError("the answer changed while it was checked")
        if error is not None:
            return error
        if self.page + 1 < len(self.pages):
            self.page += 1
        else:
            self.step = Step.REVIEW
        return None

    def previous_page(self) -> None:
        if self.step is Step.REVIEW:
            self.step = Step.QUESTION
            self.page = len(self.pages) - 1
            return
        self._need(Step.QUESTION)
        if self.page == 0:
            self.step = Step.GUIDE
        else:
            self.page -= 1

    def edit(self, field: str) -> None:
        self._need(Step.REVIEW)
        for index, question in enumerate(self.pages):
            if question.field == field:
                self.page = index
                self.step = Step.QUESTION
                return
        raise StepError(f"no page for {field!r}")

    # -- review and submit -------------------------------------------------------------------
    def errors(self) -> list[FieldError]:
        return validate(self._service(), self.answers)

    def answers_to_check(self) -> tuple[Service, dict[str, Any]]:
        """What checking the whole form needs, as plain data (see `begin_submit`)."""
        self._need(Step.REVIEW, Step.FORM)
        return self._service(), dict(self.answers)

    def begin_submit(self, problems: list[FieldError] | None = None) -> Draft | list[FieldError]:
        """The draft to submit, or the problems that stop it (the first one's page is opened).

        `problems` is the outcome of checking `answers_to_check()` elsewhere; without it the form
        is checked here."""
        self._need(Step.REVIEW)
        if problems is None:
            problems = self.errors()
        if problems:
            fields = [q.field for q in self.pages]
            if problems[0].field in fields:
                self.page = fields.index(problems[0].field)
                self.step = Step.QUESTION
            return problems
        self._before_submit = Step.REVIEW
        self.step = Step.SUBMITTING
        return Draft(
            self._service(),
            self._identity(),
            clean_answers(self._service(), self.answers),
            self.catalogue.version,
        )

    def submit_failed(self) -> None:
        """Saving failed: back to the review (or the confirmation), every answer kept."""
        self._need(Step.SUBMITTING)
        self.step = self._before_submit

    def submitted(self, result: Any) -> None:
        self._need(Step.SUBMITTING)
        self.result = result
        self.step = Step.DONE

    # -- the end -----------------------------------------------------------------------------
    def may_end(self, reason: EndReason) -> bool:
        """True when the visit can end now. While its submission is being saved the end is held
        (the first reason is kept) until the outcome has been shown: see `end_after_outcome`."""
        if self.step is Step.SUBMITTING:
            if self.held_end is None:
                self.held_end = reason
            return False
        return True

    @property
    def end_after_outcome(self) -> EndReason | None:
        """The end that was held while saving: it follows once the outcome has been shown."""
        return self.held_end if self.step is not Step.SUBMITTING else None

    def end(self, reason: EndReason) -> EndReason:
        """Forget the person. Safe in any step; a submission in flight is already on disk."""
        self.identity = None
        self.service = None
        self.answers = {}
        self.page = 0
        self.result = None
        self.held_end = None
        self._before_submit = Step.REVIEW
        self.step = Step.WELCOME
        return reason

    @property
    def active(self) -> bool:
        return self.identity is not None

    # -- helpers -----------------------------------------------------------------------------
    def _need(self, *steps: Step) -> None:
        if self.step not in steps:
            raise StepError(f"in {self.step.value}, expected one of {[s.value for s in steps]}")

    def _service(self) -> Service:
        if self.service is None:
            raise StepError("no service chosen")
        return self.service

    def _identity(self) -> Identity:
        if self.identity is None:
            raise StepError("no card read")
        return self.identity
