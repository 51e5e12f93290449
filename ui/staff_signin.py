"""Staff sign-in for counter and rural terminals: nothing is done there without a staff member.

Until a staff member has signed in, the terminal shows the sign-in page and ignores cards; the
visit, the upload queue and everything else are behind it. The signed-in member's name and number
stand in the header beside "Sign out", and every submission carries their number (never typed
into a form). They are signed out on demand, and after `idle_s` without a key or a touch. The PIN
check (scrypt, and the lockout kept on disk) runs off the GUI thread.
"""

from __future__ import annotations

import functools
import logging

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import QLineEdit

from kiosk.errors import message_for
from kiosk.i18n import _
from kiosk.staff import SignInLocked, StaffDirectory, StaffSession, StaffSessions
from kiosk.staff_sync import SIGNED_OUT_REMOVED
from kiosk.submissions import AuditSink
from kiosk.visit_steps import EndReason
from ui.background import Background
from ui.journey import Journey, ShellPort
from ui.screens import Page
from ui.widgets import button, label

log = logging.getLogger(__name__)

IDLE_CHECK_MS = 5000


class SignInPage(Page):
    sign_in = Signal()

    def __init__(self) -> None:
        super().__init__()
        self.number_label = label(name="help")
        self.number = QLineEdit()
        self.number.setObjectName("staff_number")
        self.number.setMaxLength(16)
        self.pin_label = label(name="help")
        self.pin = QLineEdit()
        self.pin.setObjectName("staff_pin")
        self.pin.setEchoMode(QLineEdit.EchoMode.Password)
        self.pin.setMaxLength(12)
        self.pin.setInputMethodHints(
            Qt.InputMethodHint.ImhDigitsOnly | Qt.InputMethodHint.ImhSensitiveData
        )
        self.error = label(name="field_error")
        self.error.hide()
        for widget in (self.number_label, self.number, self.pin_label, self.pin, self.error):
            self.body.addWidget(widget)
        self.body.addStretch(1)
        self.sign_in_button = button("", self.sign_in, name="primary")
        self.actions.addStretch(1)
        self.actions.addWidget(self.sign_in_button)
        self.number.returnPressed.connect(self._number_entered)
        self.pin.returnPressed.connect(self.sign_in)
        self.retranslate()

    def retranslate(self) -> None:
        self.title.setText(_("Staff sign-in"))
        self.number_label.setText(_("Staff number"))
        self.pin_label.setText(_("PIN"))
        self.number.setAccessibleName(_("Staff number"))
        self.pin.setAccessibleName(_("PIN"))
        self.sign_in_button.setText(_("Sign in (Enter)"))

    def _number_entered(self) -> None:
        self.pin.setFocus()

    def clear(self) -> None:
        """Both fields emptied without an undo history; any error withdrawn."""
        self.number.setText("")
        self.pin.setText("")
        self.show_error("")

    def show_error(self, text: str) -> None:
        self.error.setText(text)
        self.error.setVisible(bool(text))

    def set_busy(self, busy: bool) -> None:
        self.sign_in_button.setEnabled(not busy)

    def spoken_text(self) -> str:
        return self.title.text()


class StaffGate(Journey):
    """Who is signed in at a counter or rural terminal, and the page that asks."""

    changed = Signal()

    def __init__(
        self,
        shell: ShellPort,
        directory: StaffDirectory,
        sessions: StaffSessions,
        background: Background,
        audit: AuditSink | None = None,
    ) -> None:
        """audit: where sign-ins, refusals and sign-outs are recorded (kiosk/audit_log.py)."""
        super().__init__(shell)
        self._shell = shell
        self._audit = audit
        self._directory = directory
        self._sessions = sessions
        self._background = background
        self._busy = False
        self._member: StaffSession | None = None  # who signed in, until signed out
        self.page = SignInPage()
        shell.add_page(self.page)
        self.page.sign_in.connect(self._sign_in_clicked)
        self.sign_out_button = button("", self.sign_out)
        self.sign_out_button.setObjectName("staff_sign_out")
        self.sign_out_button.hide()
        shell.add_header_widget(self.sign_out_button)
        # Looked at often enough that a short idle time (a test's) is kept to.
        check_ms = max(100, min(IDLE_CHECK_MS, int(sessions.idle_s * 500)))
        self._idle = QTimer(self, interval=check_ms)
        self._idle.timeout.connect(self._check_idle)
        self._idle.start()

    # -- what the rest of the terminal asks --------------------------------------------------
    def needs_sign_in(self) -> bool:
        return self._current() is None

    def operator_id(self) -> str | None:
        session = self._current()
        return session.staff_id if session is not None else None

    def _current(self) -> StaffSession | None:
        """The signed-in member; None once idle has ended the session, and then the sign-out
        (the visit's end, the sign-in page) follows at once, not at the next idle check."""
        session = self._sessions.current()
        if session is None and self._member is not None:
            QTimer.singleShot(0, self._expired)
        return session

    def show(self) -> None:
        self.page.retranslate()
        self._shell.show_page(self.page)
        self.page.number.setFocus()

    def touch(self) -> None:
        self._current()  # a touch after the idle time does not bring anyone back
        self._sessions.touch()

    # -- signing in and out ------------------------------------------------------------------
    def _sign_in_clicked(self) -> None:
        if self._busy:
            return
        number, pin = self.page.number.text().strip(), self.page.pin.text()
        self.page.pin.setText("")  # the PIN leaves the screen at once, whatever the outcome
        if not number or not pin:
            self.page.show_error(_("Enter your staff number and PIN."))
            return
        self._busy = True
        self.page.set_busy(True)
        self._background.run(
            functools.partial(self._directory.sign_in, number, pin),
            self.signed_in,
            self._refused,
        )

    def signed_in(self, session: StaffSession) -> None:
        self._busy = False
        self.page.set_busy(False)
        self._sessions.sign_in(session)
        self._member = session
        self.page.clear()
        self._show_who()
        log.info("staff %s signed in", session.staff_id)
        self._record("sign_in", session.staff_id)
        self.changed.emit()
        self._shell.back_to_visit()

    def _refused(self, exc: BaseException) -> None:
        self._busy = False
        self.page.set_busy(False)
        # Not the number typed: a PIN typed into the number field would be kept. Nor is it left
        # on the screen, with nobody signed in to clear it.
        self.page.number.setText("")
        self.page.number.setFocus()
        self._record("sign_in_refused", "", {"reason": _reason(exc)})
        text = message_for(exc)
        self.page.show_error(text)
        self._shell.say(text)

    def sign_out(self) -> None:
        """On demand: the visit in progress ends, the sign-in page comes back."""
        self._end_session("")

    def _expired(self) -> None:
        self._end_session("removed" if self._sessions.ended_by_withdrawal else "idle")

    def _end_session(self, reason: str) -> None:
        member = self._member
        if member is None:
            return
        self._member = None
        self._sessions.sign_out()
        self._show_who()
        log.info("staff %s signed out%s", member.staff_id, f" ({reason})" if reason else "")
        self._record("sign_out", member.staff_id, {"reason": reason} if reason else None)
        self.changed.emit()
        # The visit ends and its start page asks for a sign-in; a visit whose submission is
        # being saved shows its outcome first.
        self._shell.end_visit(EndReason.CANCELLED)
        if reason == "removed":
            text = _(SIGNED_OUT_REMOVED)
            self.page.show_error(text)
            self._shell.say(text)

    def _record(self, kind: str, staff: str, details: dict[str, str] | None = None) -> None:
        if self._audit is not None:
            self._background.run(
                functools.partial(self._audit.append, kind, staff, details),
                _ignore,
                _not_recorded,
            )

    def _check_idle(self) -> None:
        self._current()

    def _show_who(self) -> None:
        session = self._member
        if session is None:
            self.sign_out_button.hide()
            return
        text = _("{name} ({number}) · Sign out").format(
            name=session.name, number=session.staff_id
        )
        self.sign_out_button.setText(text)
        self.sign_out_button.setAccessibleName(text)
        self.sign_out_button.show()

    def retranslate(self) -> None:
        self.page.retranslate()
        self._show_who()

    def wipe(self) -> None:
        """The citizen's visit ended; the staff member stays signed in. Half-typed sign-in
        details go."""
        self.page.clear()


def _reason(exc: BaseException) -> str:
    return "locked" if isinstance(exc, SignInLocked) else "refused"


def _ignore(_value: object) -> None:
    return


def _not_recorded(exc: BaseException) -> None:
    log.error("an audit entry was not written: %s", type(exc).__name__)
