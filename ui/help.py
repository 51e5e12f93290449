"""Calling staff: the button on every page sends a help request and says what happens next.

The request goes through the outbox (kiosk.help_requests), so it is never lost; the citizen is
told plainly whether someone has been told or where to go instead, and goes back to the page
they were on with nothing they typed lost.
"""

from __future__ import annotations

import functools
import logging
import time

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import QWidget

from kiosk.help_requests import HelpDesk, HelpOutcome
from kiosk.i18n import _, current_language
from ui.background import Background
from ui.journey import Journey, ShellPort
from ui.screens import (
    BusyPage,
    DonePage,
    GuidePage,
    MessagePage,
    Page,
    QuestionPage,
    ReviewPage,
    ServicesPage,
    WelcomePage,
)
from ui.widgets import button, label

log = logging.getLogger(__name__)

# The kind of page the citizen was on, as the platform is told it (no personal data).
_PAGE_KINDS = (
    (WelcomePage, "welcome"),
    (ServicesPage, "services"),
    (GuidePage, "guide"),
    (QuestionPage, "question"),
    (ReviewPage, "review"),
    (BusyPage, "busy"),
    (DonePage, "done"),
    (MessagePage, "message"),
)
# While the citizen waits for staff at the terminal, the visit is kept this long (the idle
# guard would otherwise wipe a half-filled form before anyone comes).
WAIT_FOR_STAFF_S = 300
_KEEP_ALIVE_MS = 30_000


def page_kind(page: QWidget | None) -> str:
    return next((kind for cls, kind in _PAGE_KINDS if isinstance(page, cls)), "other")


class HelpPage(Page):
    back = Signal()

    def __init__(self) -> None:
        super().__init__()
        self.message = label(name="question")
        self.message.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.detail = label()
        self.detail.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.body.addStretch(1)
        self.body.addWidget(self.message)
        self.body.addWidget(self.detail)
        self.body.addStretch(1)
        self.back_button = button("", self.back, name="primary")
        self.actions.addStretch(1)
        self.actions.addWidget(self.back_button)
        self.actions.addStretch(1)

    def show_state(self, title: str, message: str, detail: str, *, can_go_back: bool) -> None:
        self.title.setText(title)
        self.message.setText(message)
        self.detail.setText(detail)
        self.detail.setVisible(bool(detail))
        self.back_button.setText(_("Back to where I was"))
        self.back_button.setAccessibleName(_("Back to where I was"))
        self.back_button.setEnabled(can_go_back)
        self.back_button.setFocus()

    def spoken_text(self) -> str:
        parts = [self.message.text()]
        if self.detail.isVisible() and self.detail.text():
            parts.append(self.detail.text())
        return "。".join(parts)


class HelpJourney(Journey):
    """From the shell's "Call staff" button to a page that says who is coming, and back."""

    def __init__(self, shell: ShellPort, desk: HelpDesk, background: Background) -> None:
        super().__init__(shell)
        self._shell = shell
        self._desk = desk
        self._background = background
        self.page = HelpPage()
        shell.add_page(self.page)
        self.page.back.connect(self.go_back)
        self._came_from: QWidget | None = None
        self._pending = False
        self.last_outcome: HelpOutcome | None = None
        self._waiting_since = 0.0
        self._keep_alive = QTimer(self, interval=_KEEP_ALIVE_MS)
        self._keep_alive.timeout.connect(self._still_waiting)

    @property
    def pending(self) -> bool:
        return self._pending

    def request(self) -> None:
        """The citizen pressed "Call staff"."""
        self._shell.touch()
        current = self._shell.current_page()
        if current is not self.page:
            self._came_from = current
        if self._pending:
            self._shell.show_page(self.page)  # on its way already: say so again
            return
        self._pending = True
        self._waiting_since = time.monotonic()
        self._keep_alive.start()
        kind = page_kind(self._came_from)
        self.page.show_state(
            _("Calling staff"),
            _("Please wait a moment: staff are being called."),
            "",
            can_go_back=False,
        )
        self._shell.show_page(self.page)
        self._background.run(
            functools.partial(self._desk.request, kind, current_language()),
            self._answered,
            self._failed,
        )

    def _answered(self, outcome: object) -> None:
        self._pending = False
        if not isinstance(outcome, HelpOutcome):
            self._failed(TypeError("unexpected answer"))
            return
        self.last_outcome = outcome
        if outcome.reached_staff:
            self._show(
                _("Staff are on their way"),
                _("A member of staff has been told and will come to you."),
                _("Please stay at this terminal. You can go on while you wait."),
            )
        else:
            self._show(
                _("Please go to the help desk"),
                _("This terminal cannot reach the staff right now."),
                _("Please ask at the help desk in the hall."),
            )

    def _failed(self, exc: BaseException) -> None:
        self._pending = False
        log.error("help request not queued: %s", type(exc).__name__)
        self._show(
            _("Please go to the help desk"),
            _("Staff could not be called from this terminal."),
            _("Please ask at the help desk in the hall."),
        )

    def _show(self, title: str, message: str, detail: str) -> None:
        if self._shell.current_page() is not self.page:
            return  # the citizen went back already; the answer is not theirs to wait for
        self.page.show_state(title, message, detail, can_go_back=True)
        self._shell.show_page(self.page)

    def _still_waiting(self) -> None:
        """Someone may be on their way: the visit is not idle while its help page is up, for a
        while (not for ever: a citizen who left is still wiped)."""
        waiting = time.monotonic() - self._waiting_since < WAIT_FOR_STAFF_S
        if waiting and self._shell.current_page() is self.page:
            self._shell.touch()
        else:
            self._keep_alive.stop()

    def go_back(self) -> None:
        self._keep_alive.stop()
        came_from = self._came_from
        self._came_from = None
        if came_from is not None and self._shell.has_page(came_from):
            self._shell.show_page(came_from)
        else:
            self._shell.back_to_visit()

    def retranslate(self) -> None:
        if self._shell.current_page() is self.page and self.last_outcome is not None:
            self._answered(self.last_outcome)

    def wipe(self) -> None:
        self._keep_alive.stop()
        self._came_from = None
        self.last_outcome = None
