"""The citizen's confirmation of an assisted application: the screen turned to them (or the
second screen facing them) shows what staff typed in large type; they, or the relative applying
for them (代办, with the agent's own ID card), sign in the box, then it is submitted."""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QButtonGroup, QGridLayout, QHBoxLayout, QVBoxLayout, QWidget

from devices.identity import Identity
from kiosk.assistance import RELATIONS
from kiosk.catalogue import Question, Service
from kiosk.i18n import _, pick
from kiosk.identity import mask_id_number, mask_name
from ui.screens import Page, sentences
from ui.signature_pad import SignatureBox
from ui.widgets import ChoiceButton, ErrorSummary, TextGroup, button, label, named


class ConfirmPage(Page):
    back = Signal()  # staff: back to the form to change an answer
    submit = Signal()  # signed: send it

    def __init__(self) -> None:
        super().__init__()
        self._agent: Identity | None = None
        self._relation = ""
        self.summary = ErrorSummary()
        self.body.addWidget(self.summary)
        columns = QHBoxLayout()
        columns.setSpacing(32)
        self.body.addLayout(columns, 1)

        left = QVBoxLayout()
        left.setSpacing(10)
        self.service_name = label(name="question")
        left.addWidget(self.service_name)
        self.rows = self.pager()
        left.addWidget(self.rows, 1)
        columns.addLayout(left, 1)

        right = QVBoxLayout()
        right.setSpacing(12)
        # Who is here: the applicant, or a relative applying for them with their own card.
        self.present_button = ChoiceButton("", "present", name="choice")
        self.agent_button = ChoiceButton("", "agent", name="choice")
        self._who = QButtonGroup(self)
        for choice in (self.present_button, self.agent_button):
            self._who.addButton(choice)
            choice.picked.connect(self._who_changed)
            right.addWidget(choice)

        self.agent_box = QWidget()
        agent = QVBoxLayout(self.agent_box)
        agent.setContentsMargins(0, 0, 0, 0)
        agent.setSpacing(8)
        self.agent_line = label(name="help")
        agent.addWidget(self.agent_line)
        relations = QGridLayout()
        relations.setSpacing(8)
        self._relations = QButtonGroup(self)
        self.relation_buttons: dict[str, ChoiceButton] = {}
        for index, code in enumerate(RELATIONS):
            choice = ChoiceButton("", code, name="choice")
            choice.picked.connect(self._relation_chosen)
            self._relations.addButton(choice)
            relations.addWidget(choice, index // 2, index % 2)
            self.relation_buttons[code] = choice
        agent.addLayout(relations)
        self.agent_box.hide()
        right.addWidget(self.agent_box)
        self.present_button.setChecked(True)

        self.signature = SignatureBox()
        right.addWidget(self.signature, 1)
        columns.addLayout(right, 1)

        self.back_button = button("", self.back)
        self.submit_button = button("", self.submit, name="primary")
        self.actions.addWidget(self.back_button)
        self.actions.addStretch(1)
        self.actions.addWidget(self.submit_button)
        self.retranslate()

    def retranslate(self) -> None:
        self.title.setText(_("Please check your application and sign"))
        self.present_button.setText(_("The applicant is here and signs"))
        named(self.present_button, self.present_button.text())
        self.agent_button.setText(_("A relative applies for them"))
        named(self.agent_button, self.agent_button.text())
        for code, choice in self.relation_buttons.items():
            choice.setText(_(RELATIONS[code]))
            named(choice, choice.text(), _("How the agent is related to the applicant"))
        self._show_agent()
        self.back_button.setText(_("Change answers"))
        named(self.back_button, self.back_button.text(), _("Staff go back to the form"))
        self.submit_button.setText(_("Confirm and submit"))
        named(self.submit_button, self.submit_button.text(), _("The application is sent"))

    def show_confirm(
        self,
        service: Service,
        answers: dict[str, object],
        shown: Callable[[Question, object], str],
    ) -> None:
        self.summary.clear()
        self.service_name.setText(pick(service.name))
        rows: list[QWidget] = []
        for question in service.questions:
            row = TextGroup()
            text = QVBoxLayout(row)
            text.setContentsMargins(0, 0, 0, 0)
            text.setSpacing(2)
            value = shown(question, answers.get(question.field))
            text.addWidget(label(pick(question.label), name="help"))
            text.addWidget(label(value))
            row.setAccessibleName(sentences(pick(question.label), value))
            rows.append(row)
        self.rows.set_items(rows)
        self.retranslate()
        self.in_reading_order()

    # -- who is here --------------------------------------------------------------------------
    def citizen_present(self) -> bool:
        return not self.agent_button.isChecked()

    def wants_agent_card(self) -> bool:
        return self.agent_button.isChecked()

    def agent_card(self) -> Identity | None:
        return self._agent

    def relation(self) -> str:
        return self._relation

    def set_agent(self, card: Identity | None) -> None:
        self._agent = card
        self._show_agent()

    def _who_changed(self, _value: str) -> None:
        self.agent_box.setVisible(self.agent_button.isChecked())
        self.summary.clear()

    def _relation_chosen(self, code: str) -> None:
        self._relation = code

    def _show_agent(self) -> None:
        agent = self._agent
        if agent is None:
            self.agent_line.setText(_("Agent: please place your own ID card on the reader."))
        else:
            self.agent_line.setText(
                _("Agent: {name}, ID card {number}").format(
                    name=mask_name(agent.name), number=mask_id_number(agent.id_number)
                )
            )

    # -- the outcome --------------------------------------------------------------------------
    def signature_png(self) -> bytes | None:
        pad = self.signature.pad
        return pad.png() if pad.has_signature else None

    def show_error(self, text: str) -> None:
        self.summary.show_errors(text, [])

    def spoken_text(self) -> str:
        return sentences(self.title.text(), self.service_name.text(), self.rows.status_text())

    def wipe(self) -> None:
        self._agent = None
        self._relation = ""
        for choice in self.relation_buttons.values():
            choice.setAutoExclusive(False)
            choice.setChecked(False)
            choice.setAutoExclusive(True)
        self.present_button.setChecked(True)
        self.agent_box.hide()
        self.signature.wipe()
        self.rows.clear()
        self.service_name.clear()
        self.summary.clear()
        self._show_agent()
