"""Drives one whole visit through the real pages, as a person would, without a screen.

Used by `main.py --demo --self-check` and by the end-to-end test: present the demo card, choose
the first service, answer every question with a valid value, submit, and wait for the receipt.
Online (the default) it then asks the platform's tracking page, as the receipt's QR code would;
`--offline-check` expects the submission to wait in the outbox instead.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from pathlib import Path

import requests
from PySide6.QtCore import QObject, QTimer
from PySide6.QtWidgets import QApplication

from kiosk.catalogue import Question, Service
from kiosk.forms import validate_field
from kiosk.session import Step
from kiosk.submissions import SubmissionResult
from ui.visit import VisitJourney

log = logging.getLogger(__name__)

CANDIDATES = (
    "13800138000",
    "1234",
    "本市和平路12号3单元401室",
    "王小明",
    "1",
)


def sample_answer(service: Service, question: Question, answers: dict[str, object]) -> object:
    """A value the form accepts for this question, found by asking the form itself."""
    if question.widget == "yesno":
        candidates: list[object] = [True, False]
    elif question.widget == "choice":
        candidates = [o.value for o in question.options]
    elif question.widget == "date":
        candidates = [dt.date.today().isoformat(), "2020-01-01"]
    else:
        candidates = list(CANDIDATES)
    for value in candidates:
        if validate_field(service, question.field, {**answers, question.field: value}) is None:
            return value
    raise LookupError(f"no acceptable sample answer for {question.field}")


class SelfCheck(QObject):
    def __init__(
        self,
        visit: VisitJourney,
        *,
        expect_online: bool = True,
        timeout_s: float = 60.0,
        done: Callable[[], None] = QApplication.quit,
    ) -> None:
        """`done` is called once the visit ended or failed (the application quits by default;
        a caller running several visits passes its own event loop's quit)."""
        super().__init__(visit)
        self._done = done
        self.visit = visit
        self.expect_online = expect_online
        self.error = ""
        self.report = ""
        self.receipt_path: Path | None = None
        self.result: SubmissionResult | None = None
        self.visited: list[str] = []
        self._field = ""
        self._deadline = QTimer(self, singleShot=True, interval=int(timeout_s * 1000))
        self._deadline.timeout.connect(self._timed_out)

    def begin(self) -> None:
        self.visit.step_changed.connect(self._on_step)
        self.visit.submission_failed.connect(self._fail)
        self.visit.answer_refused.connect(self._refused)
        self._deadline.start()
        if not self.visit.session.catalogue.services:
            self._fail("no services available")
            return
        self._later(self.visit.present_demo_card)

    def _timed_out(self) -> None:
        self._fail("timed out")

    def _later(self, action: object) -> None:
        QTimer.singleShot(0, action)  # type: ignore[call-overload]

    def _on_step(self, step: str) -> None:
        self.visited.append(step)
        if step == Step.SERVICES.value:
            self._later(self.visit.services.service_buttons[0].click)
        elif step == Step.GUIDE.value:
            self._later(self.visit.guide.start_button.click)
        elif step == Step.QUESTION.value:
            self._later(self._answer)
        elif step == Step.REVIEW.value:
            self._later(self.visit.review.submit_button.click)
        elif step == Step.DONE.value:
            result = self.visit.session.result
            if not isinstance(result, SubmissionResult) or result.receipt_path is None:
                self._fail("the receipt was not printed")
            elif self.expect_online and not result.delivered:
                self._fail("the platform did not receive the application")
            elif not self.expect_online and result.delivered:
                self._fail("the application was uploaded although the platform is away")
            else:
                self.receipt_path = result.receipt_path
                self._finish(result)

    def _answer(self) -> None:
        session = self.visit.session
        service = session.service
        if service is None:
            self._fail("no service")
            return
        question = session.current_question
        try:
            value = sample_answer(service, question, session.answers)
        except LookupError as exc:
            self._fail(str(exc))
            return
        page = self.visit.question
        if question.widget in ("choice", "yesno"):
            wanted = ("true" if value else "false") if question.widget == "yesno" else value
            target = page.choices.button_for(str(wanted))
            if target is None:
                self._fail(f"option {wanted!r} is not on screen")
                return
            target.click()
        else:
            page.line.setText(str(value))
        self._field = question.field
        page.next_button.click()  # checked on a worker: the next step, or answer_refused

    def _refused(self, message: str) -> None:
        self._fail(f"the answer to {self._field} was refused: {message}")

    def _finish(self, result: SubmissionResult) -> None:
        self._deadline.stop()
        self.result = result
        self._done()

    def close(self) -> None:
        """Stop listening to the visit (before the next self-check drives it)."""
        self.visit.step_changed.disconnect(self._on_step)
        self.visit.submission_failed.disconnect(self._fail)
        self.visit.answer_refused.disconnect(self._refused)
        self.deleteLater()

    def verify_tracking(self) -> None:
        """After the event loop has ended: ask the tracking page the receipt's QR code opens."""
        result = self.result
        if self.error or result is None:
            return
        if not self.expect_online:
            self.report = f"offline: {result.receipt_number} waits in the outbox"
            return
        try:
            answer = requests.get(result.tracking_url, timeout=10)
        except requests.RequestException as exc:
            self.error = f"the tracking page did not answer: {type(exc).__name__}"
            return
        if answer.status_code != 200 or result.receipt_number not in answer.text:
            self.error = f"the tracking page answered {answer.status_code} without the receipt"
            return
        self.report = f"online: {result.receipt_number} {result.tracking_url}"

    def _fail(self, reason: str) -> None:
        if not self.error:
            self.error = reason
            log.error("self-check: %s", reason)
        self._deadline.stop()
        self._done()
