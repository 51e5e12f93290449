"""The citizen's confirmation of an assisted application: the screen turned to them (or the
second screen facing them) shows what staff typed in large type, and who is signing: the
applicant, or the relative applying for them (代办, read from the agent's own ID card on the
counter form). They sign in the box, then it is submitted."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from PySide6.QtCore import Signal
from PySide6.QtGui import QResizeEvent
from PySide6.QtWidgets import QBoxLayout, QVBoxLayout, QWidget

from devices.identity import Identity
from kiosk.catalogue import Question, Service
from kiosk.i18n import _, pick
from kiosk.identity import mask_id_number, mask_name
from ui.screens import Page, sentences
from ui.signature_pad import SignatureBox
from ui.widgets import ErrorSummary, TextGroup, button, label, named

SIDE_BY_SIDE_PX = 1200  # from this width the summary stands beside the signature box


class ConfirmPage(Page):
    back = Signal()  # staff: back to the form to change an answer
    submit = Signal()  # signed: send it

    def __init__(self) -> None:
        super().__init__()
        self._agent: Identity | None = None
        self._materials: tuple[str, ...] = ()
        self.summary = ErrorSummary()
        self.body.addWidget(self.summary)
        # The summary beside the signing on a wide screen, above it on a narrow one.
        self.columns = QBoxLayout(QBoxLayout.Direction.LeftToRight)
        self.columns.setSpacing(32)
        self.body.addLayout(self.columns, 1)

        left = QVBoxLayout()
        left.setSpacing(10)
        self.service_name = label(name="question")
        left.addWidget(self.service_name)
        self.rows = self.pager()
        left.addWidget(self.rows, 1)
        self.materials = label(name="help")  # the papers that go with it, by name
        left.addWidget(self.materials)
        self.columns.addLayout(left, 2)

        right = QVBoxLayout()
        right.setSpacing(12)
        self.signer = label()  # who signs: the applicant, or the agent by name
        right.addWidget(self.signer)
        self.signature = SignatureBox()
        right.addWidget(self.signature, 1)
        self.columns.addLayout(right, 3)  # the signature box needs its width

        self.back_button = button("", self.back)
        self.submit_button = button("", self.submit, name="primary")
        self.actions.addWidget(self.back_button)
        self.actions.addStretch(1)
        self.actions.addWidget(self.submit_button)
        self.retranslate()

    def resizeEvent(self, event: QResizeEvent) -> None:
        wide = event.size().width() >= SIDE_BY_SIDE_PX
        self.columns.setDirection(
            QBoxLayout.Direction.LeftToRight if wide else QBoxLayout.Direction.TopToBottom
        )
        super().resizeEvent(event)

    def retranslate(self) -> None:
        self.title.setText(_("Please check your application and sign"))
        self._show_signer()
        self._show_materials()
        self.signature.retranslate()
        self.back_button.setText(_("Change answers"))
        named(self.back_button, self.back_button.text(), _("Staff go back to the form"))
        self.submit_button.setText(_("Confirm and submit"))
        named(self.submit_button, self.submit_button.text(), _("The application is sent"))

    def show_confirm(
        self,
        service: Service,
        answers: dict[str, object],
        shown: Callable[[Question, object], str],
        agent: Identity | None,
        materials: Sequence[str] = (),
    ) -> None:
        """What was typed, the materials that go with it, and who signs: `agent` when a
        relative applies for the applicant."""
        self.summary.clear()
        self._materials = tuple(materials)
        self._agent = agent
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

    def _show_materials(self) -> None:
        if self._materials:
            self.materials.setText(
                _("Materials: {names}").format(names=_(", ").join(self._materials))
            )
        else:
            self.materials.setText(_("No materials go with it."))

    def _show_signer(self) -> None:
        agent = self._agent
        if agent is None:
            self.signer.setText(_("The applicant signs here:"))
        else:
            self.signer.setText(
                _("Signed by the agent {name} (ID card {number}):").format(
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
        return sentences(
            self.title.text(),
            self.service_name.text(),
            self.rows.status_text(),
            self.materials.text(),
            self.signer.text(),
        )

    def wipe(self) -> None:
        self._agent = None
        self._materials = ()
        self.materials.clear()
        self.signature.wipe()
        self.rows.clear()
        self.service_name.clear()
        self.summary.clear()
        self.signer.clear()
