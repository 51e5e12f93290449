"""Drives one whole visit through the real window, as a person would, without a screen.

Used by `main.py --demo --self-check` and by the end-to-end test: present the demo card, choose
the first service, answer every question with a valid value, submit, and wait for the receipt.
"""

from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication

from kiosk.catalogue import Question, Service
from kiosk.forms import validate_field
from kiosk.session import Step
from kiosk.submissions import SubmissionResult

if TYPE_CHECKING:
    from ui.app import Terminal

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


class SelfCheck:
    def __init__(self, terminal: Terminal, timeout_s: float = 60.0) -> None:
        self.terminal = terminal
        self.window = terminal.window
        self.error = ""
        self.receipt_path: Path | None = None
        self.visited: list[str] = []
        self._deadline = QTimer(singleShot=True, interval=int(timeout_s * 1000))
        self._deadline.timeout.connect(lambda: self._fail("timed out"))

    def begin(self) -> None:
        self.window.step_changed.connect(self._on_step)
        self.window.submission_failed.connect(self._fail)
        self._deadline.start()
        if not self.window.session.catalogue.services:
            self._fail("no services available")
            return
        self._later(self.window.present_demo_card)

    def _later(self, action: object) -> None:
        QTimer.singleShot(0, action)  # type: ignore[call-overload]

    def _on_step(self, step: str) -> None:
        self.visited.append(step)
        if step == Step.SERVICES.value:
            self._later(self.window.services.service_buttons[0].click)
        elif step == Step.GUIDE.value:
            self._later(self.window.guide.start_button.click)
        elif step == Step.QUESTION.value:
            self._later(self._answer)
        elif step == Step.REVIEW.value:
            self._later(self.window.review.submit_button.click)
        elif step == Step.DONE.value:
            result = self.window.session.result
            if isinstance(result, SubmissionResult) and result.receipt_path is not None:
                self.receipt_path = result.receipt_path
                self._finish()
            else:
                self._fail("the receipt was not printed")

    def _answer(self) -> None:
        session = self.window.session
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
        page = self.window.question
        if question.widget in ("choice", "yesno"):
            wanted = ("true" if value else "false") if question.widget == "yesno" else value
            target = page.choices.button_for(str(wanted))
            if target is None:
                self._fail(f"option {wanted!r} is not on screen")
                return
            target.click()
        else:
            page.line.setText(str(value))
        before = (session.step, session.page)
        page.next_button.click()
        if (session.step, session.page) == before:
            self._fail(f"the answer to {question.field} was refused: {page.error.text()}")

    def _finish(self) -> None:
        self._deadline.stop()
        QApplication.quit()

    def _fail(self, reason: str) -> None:
        if not self.error:
            self.error = reason
            log.error("self-check: %s", reason)
        self._deadline.stop()
        QApplication.quit()
