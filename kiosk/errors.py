"""Errors meant for people. Anything else is logged and shown as 'please ask staff for help'."""

from __future__ import annotations

from kiosk.i18n import N_, _


class UserFacingError(Exception):
    """Carries an untranslated message id; str() gives it in the active language."""

    def __init__(self, message: str, /, **params: object) -> None:
        super().__init__(message)
        self.message = message
        self.params = params

    def user_message(self) -> str:
        return _(self.message).format(**self.params)

    def __str__(self) -> str:
        return self.user_message()


ASK_STAFF = N_("Something went wrong. Please ask a member of staff for help.")


def message_for(exc: BaseException) -> str:
    """The text to show a person for any exception."""
    if isinstance(exc, UserFacingError):
        return exc.user_message()
    return _(ASK_STAFF)
