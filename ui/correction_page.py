"""The staff page that corrects a submission the platform refused: one field per refused answer,
each with the question's own kind of input, then "submit the correction" or "cancel".

Only the fields the platform named are asked for; the rest of the submission stays as it was
(sealed on the terminal, kept on the platform). What is typed is checked with the form's own
rules first, so a value the form already refuses never leaves the page.
"""

from __future__ import annotations

from collections.abc import Sequence

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QComboBox, QLineEdit, QVBoxLayout, QWidget

from kiosk.catalogue import Service
from kiosk.corrections import Problem, problem_text
from kiosk.forms import coerce, validate_field
from kiosk.i18n import _, pick
from ui.screens import Page
from ui.widgets import blank, button, label, named

_CHOICE_KINDS = ("choice", "yesno")
CHOICE_HEIGHT = 72  # a touch target, as large as the text fields beside it


class _Field(QWidget):
    """One refused answer: what was wrong, a new value, and what is still wrong with it."""

    def __init__(self, problem: Problem) -> None:
        super().__init__()
        self.problem = problem
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(8)
        self.caption = label(problem_text(problem), name="question")
        layout.addWidget(self.caption)
        question = problem.question
        kind = question.widget if question is not None else "text"
        self.line: QLineEdit | None = None
        self.choices: QComboBox | None = None
        self.input: QWidget
        if kind in _CHOICE_KINDS and question is not None:
            # A closed list, not the citizen's page of large buttons: several refused answers
            # share this page, and staff choose with a touch or the arrow keys.
            self.choices = QComboBox()
            self.choices.setMinimumHeight(CHOICE_HEIGHT)
            if kind == "yesno":
                options = [("true", _("Yes")), ("false", _("No"))]
            else:
                options = [(o.value, pick(o.label)) for o in question.options]
            self.choices.addItem(_("Choose…"), None)
            for value, text in options:
                self.choices.addItem(text, value)
            self.input = self.choices
        else:
            self.line = QLineEdit()
            self.input = self.line
        named(self.input, problem.label, problem.reason)
        layout.addWidget(self.input)
        self.error = label(name="field_error")
        self.error.hide()
        layout.addWidget(self.error)

    @property
    def field(self) -> str:
        return self.problem.field

    def raw(self) -> str | None:
        if self.choices is not None:
            value = self.choices.currentData()
            return value if isinstance(value, str) else None
        return self.line.text() if self.line is not None else None

    def set_error(self, text: str) -> None:
        self.error.setText(text)
        self.error.setVisible(bool(text))
        target = self.focus_target()
        target.setProperty("invalid", "true" if text else "false")
        target.style().unpolish(target)
        target.style().polish(target)

    def focus_target(self) -> QWidget:
        return self.input


class CorrectionPage(Page):
    submitted = Signal(object)  # {field: value}: the new answers, as the form's schema wants them
    cancelled = Signal()

    def __init__(self) -> None:
        super().__init__()
        self.context = label(name="help")
        self.note = label(name="help")
        self.fields_box = QVBoxLayout()
        self.fields_box.setSpacing(16)
        self.notice = label(name="field_error")
        self.notice.hide()
        self.body.addWidget(self.context)
        self.body.addWidget(self.note)
        self.body.addLayout(self.fields_box)
        self.body.addWidget(self.notice)
        self.body.addStretch(1)
        self.cancel_button = button("", self.cancelled)
        self.submit_button = button("", self._submit, name="primary")
        self.actions.addWidget(self.cancel_button)
        self.actions.addStretch(1)
        self.actions.addWidget(self.submit_button)
        self._fields: list[_Field] = []
        self._service: Service | None = None
        self._item_id: str | None = None
        self._context: tuple[str, str, str] = ("", "", "")
        self.retranslate()

    @property
    def item_id(self) -> str | None:
        """The outbox row being corrected (None when nothing is)."""
        return self._item_id

    def retranslate(self) -> None:
        self.title.setText(_("Correct the application"))
        self.note.setText(
            _("Only what the platform refused can be changed. The other answers stay as they were.")
        )
        self.cancel_button.setText(_("Cancel"))
        self.submit_button.setText(_("Submit the correction"))
        named(self.cancel_button, self.cancel_button.text())
        named(self.submit_button, self.submit_button.text())
        receipt, service, applicant = self._context
        self.context.setText(
            _("Receipt number: {receipt} · {service} · {applicant}").format(
                receipt=receipt or "—", service=service or "—", applicant=applicant or "—"
            )
        )

    def show_problems(
        self,
        item_id: str,
        problems: Sequence[Problem],
        service: Service | None,
        *,
        receipt_number: str,
        service_name: str,
        masked_name: str,
    ) -> None:
        """One field per refused answer of the row item_id; the old ones are deleted."""
        self.clear()
        self._item_id = item_id
        self._service = service
        self._context = (receipt_number, service_name, masked_name)
        for problem in problems:
            field = _Field(problem)
            self.fields_box.addWidget(field)
            self._fields.append(field)
        self.submit_button.setEnabled(True)
        self.retranslate()
        if self._fields:
            self._fields[0].focus_target().setFocus()

    def values(self) -> dict[str, object]:
        """What was typed or chosen, as the form's schema wants it (None where nothing is)."""
        found: dict[str, object] = {}
        for field in self._fields:
            raw = field.raw()
            found[field.field] = None if raw is None else self._coerce(field.field, raw)
        return found

    def _coerce(self, name: str, raw: str) -> object:
        if self._service is None:
            return raw.strip() or None
        return coerce(self._service, name, raw)

    def show_error(self, text: str) -> None:
        """Why the correction was not saved (the page stays as it is)."""
        self.notice.setText(text)
        self.notice.setVisible(bool(text))
        self.submit_button.setEnabled(True)

    def clear(self) -> None:
        """Forget the row and everything typed (the fields are deleted)."""
        for field in self._fields:
            blank(field)
            self.fields_box.removeWidget(field)
            field.deleteLater()
        self._fields = []
        self._service = None
        self._item_id = None
        self._context = ("", "", "")
        self.show_error("")

    def _submit(self) -> None:
        answers = self.values()
        problems = 0
        for field in self._fields:
            text = self._check(field.field, answers[field.field])
            field.set_error(text)
            problems += bool(text)
        if problems:
            return
        self.submit_button.setEnabled(False)  # until the correction is saved or refused
        self.submitted.emit(answers)

    def _check(self, name: str, value: object) -> str:
        """What the form's own rules say of the new value; "" when nothing."""
        if value is None:
            return _("Please answer this question.")
        if self._service is None:
            return ""
        error = validate_field(self._service, name, {name: value})
        return error.message if error is not None else ""

    def spoken_text(self) -> str:
        return self.title.text()
