"""The page a terminal shows when it cannot serve anyone: one plain sentence for the citizen in
the terminal's language, and the reason with its code in small type for staff."""

from __future__ import annotations

from PySide6.QtCore import Qt

from kiosk.i18n import _
from ui.screens import Page
from ui.widgets import label


class OutOfServicePage(Page):
    def __init__(self) -> None:
        super().__init__()
        self.message = label(name="question")
        self.message.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.detail = label(name="muted")
        self.detail.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.body.addStretch(1)
        self.body.addWidget(self.message)
        self.body.addStretch(1)
        self.body.addWidget(self.detail)
        self._detail = ""

    def show_reason(self, detail: str) -> None:
        """`detail`: why, for staff (with its code); the citizen is told only where to go."""
        self._detail = detail
        self.retranslate()

    def retranslate(self) -> None:
        self.title.setText(_("Out of service"))
        self.message.setText(
            _("This terminal is not working at the moment. Please go to a service window.")
        )
        self.detail.setText(_("For staff: {detail}").format(detail=self._detail))
        self.detail.setVisible(bool(self._detail))
        self.detail.setAccessibleName(self.detail.text())

    def spoken_text(self) -> str:
        return self.message.text()  # the staff line is read on the screen, not aloud
