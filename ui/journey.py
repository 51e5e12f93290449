"""What a journey may ask of the shell, and what the shell asks of every journey.

A journey (the citizen's visit, the card, the upload queue, ...) owns its pages and its rules; it
reaches the rest of the terminal only through `ShellPort`. The shell is the only thing that ends a
visit and wipes: it calls `wipe()` on every journey, then shows the start again.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from PySide6.QtCore import QObject
from PySide6.QtWidgets import QFrame, QWidget

from kiosk.visit_steps import EndReason


class ShellPort(Protocol):
    """Everything a journey may ask of the shell. Journeys are typed against this, not Shell."""

    def add_page(self, page: QWidget) -> None: ...

    def has_page(self, page: QWidget) -> bool: ...

    def show_page(self, page: QWidget) -> None:
        """Put the page on the screen and speak it."""

    def current_page(self) -> QWidget: ...

    def add_banner(self, banner: QFrame) -> None:
        """A notice strip under the header, hidden until the journey shows it."""

    def add_header_widget(self, widget: QWidget) -> None: ...

    def add_shortcut(self, keys: str, slot: Callable[[], None]) -> None: ...

    def say(self, text: str) -> None: ...

    def flash(self, text: str) -> None:
        """A short line at the bottom of the window, spoken too; wiped with the visit."""

    def end_visit(self, reason: EndReason) -> None:
        """Ask for the visit to end; it ends at once unless its submission is being saved."""

    def back_to_visit(self) -> None:
        """Another journey's page is done: the visit's page for its step comes back."""

    def touch(self) -> None:
        """Someone is there: the idle clock starts again."""


class StaffPort(Protocol):
    """Who is signed in at a counter or rural terminal (ui/staff_signin.py)."""

    def needs_sign_in(self) -> bool: ...

    def show(self) -> None:
        """Put the sign-in page on the screen."""

    def operator_id(self) -> str | None: ...


class Journey(QObject):
    """Base of every journey: a QObject owned by the shell (deleted with it, on the GUI thread)."""

    def __init__(self, shell: ShellPort) -> None:
        super().__init__(shell)  # type: ignore[arg-type]  # the shell is the journey's Qt parent

    def retranslate(self) -> None:
        """The language changed: redraw what this journey shows."""

    def wipe(self) -> None:
        """The visit ended: forget everything personal this journey shows or holds."""
