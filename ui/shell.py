"""The terminal window as a thin shell: the header, one page stack, the idle guard, and the one
place that ends a visit and wipes it. Everything a person does lives in a journey (ui/visit.py,
ui/card.py, ui/staff_queue.py); journeys reach the shell through ui.journey.ShellPort."""

from __future__ import annotations

import logging
import weakref
from collections.abc import Callable
from typing import Any, Protocol

from PySide6.QtCore import QEvent, QObject, Qt, QTimer, Signal
from PySide6.QtGui import QClipboard
from PySide6.QtWidgets import (
    QApplication,
    QFrame,
    QHBoxLayout,
    QLabel,
    QMainWindow,
    QPushButton,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from kiosk.config import Config
from kiosk.i18n import _, current_language, set_language
from kiosk.visit_steps import EndReason
from ui.journey import Journey
from ui.screens import shortcut
from ui.theme import Palette, Sizes, scaled, stylesheet
from ui.voice import VoiceGuide
from ui.widgets import button, label

log = logging.getLogger(__name__)

NARROW_PX = 1200  # below this width (a portrait panel) the journeys' header widgets get a row


class Visit(Protocol):
    """What the shell needs of the citizen's visit: whether the idle clock applies, whether it
    may end now, and how to show the start again."""

    def idle_applies(self) -> bool: ...

    def warning_applies(self) -> bool: ...

    def may_end(self, reason: EndReason) -> bool: ...

    def show_start(self, reason: EndReason, was_active: bool) -> None: ...

    def render(self) -> None: ...

    @property
    def active(self) -> bool: ...


def banner(text: QLabel, *buttons: QPushButton) -> QFrame:
    """A notice strip under the header: a sentence and its buttons; hidden until needed."""
    frame = QFrame()
    frame.setObjectName("notice")
    row = QHBoxLayout(frame)
    row.setContentsMargins(24, 12, 24, 12)
    row.addWidget(text, 1)
    for widget in buttons:
        row.addWidget(widget)
    frame.hide()
    return frame


class Shell(QMainWindow):
    language_changed = Signal()
    first_frame = Signal()  # the first paint of the window has been handled

    def __init__(self, *, config: Config, voice: VoiceGuide) -> None:
        super().__init__()
        self.config = config
        self.voice = voice
        voice.setParent(self)
        # The visit is held weakly and the journeys are found as Qt children: the journeys refer
        # to the shell, so references back would make cycles only the garbage collector frees.
        self._visit_ref: weakref.ref[Visit] | None = None
        self._painted = False
        self.setStyleSheet(stylesheet(Palette(), scaled(Sizes(), config.font_scale)))

        central = QWidget()
        self._layout = QVBoxLayout(central)
        self._layout.setContentsMargins(0, 0, 0, 0)
        self._layout.setSpacing(0)
        self._layout.addWidget(self._build_header())
        self.idle_text = label()
        self.idle_button = button("", self.keep_going, name="primary")
        self.idle_banner = banner(self.idle_text, self.idle_button)
        self.staff_text = label()
        self.staff_dismiss = button("")
        self.staff_banner = banner(self.staff_text, self.staff_dismiss)
        self.staff_dismiss.clicked.connect(self.staff_banner.hide)
        self._layout.addWidget(self.idle_banner)
        self._layout.addWidget(self.staff_banner)
        self._banners_end = self._layout.count()
        self.stack = QStackedWidget()
        self._layout.addWidget(self.stack, 1)
        self.setCentralWidget(central)

        shortcut(self, "Ctrl+L", self.toggle_language)
        self.idle_timer = QTimer(
            self, singleShot=True, interval=int(config.idle_timeout_s * 1000)
        )
        self.idle_timer.timeout.connect(self._idle_warning)
        self._tick = QTimer(self, interval=1000)
        self._tick.timeout.connect(self._on_tick)
        self._countdown = 0
        self._watching = False
        self.voice.set_language(current_language())
        self.retranslate()

    # -- what journeys use (ui.journey.ShellPort) -----------------------------------------------
    @property
    def _visit(self) -> Visit | None:
        return None if self._visit_ref is None else self._visit_ref()

    def _journeys(self) -> list[Journey]:
        return self.findChildren(Journey, options=Qt.FindChildOption.FindDirectChildrenOnly)

    def set_visit(self, visit: Visit) -> None:
        self._visit_ref = weakref.ref(visit)

    def add_page(self, page: QWidget) -> None:
        self.stack.addWidget(page)

    def has_page(self, page: QWidget) -> bool:
        return self.stack.indexOf(page) >= 0

    def show_page(self, page: QWidget) -> None:
        self.stack.setCurrentWidget(page)
        spoken: Callable[[], str] | None = getattr(page, "spoken_text", None)
        if spoken is not None:
            self.say(spoken())

    def current_page(self) -> QWidget:
        return self.stack.currentWidget()

    def add_banner(self, frame: QFrame) -> None:
        self._layout.insertWidget(self._banners_end, frame)
        self._banners_end += 1

    def add_header_widget(self, widget: QWidget) -> None:
        self._header_widgets.append(widget)
        self._place_header_widgets(again=True)

    def add_shortcut(self, keys: str, slot: Callable[[], None]) -> None:
        shortcut(self, keys, slot)

    def say(self, text: str) -> None:
        self.voice.say(text)

    def flash(self, text: str) -> None:
        """A short line at the bottom of the window, spoken too (it is wiped with the visit)."""
        self.statusBar().showMessage(text, 10_000)
        self.say(text)

    def back_to_visit(self) -> None:
        if self._visit is not None:
            self._visit.render()

    def show_staff_notice(self, text: str) -> None:
        """A notice for staff that stays until they dismiss it (e.g. a damaged queue set aside)."""
        self.staff_text.setText(text)
        self.staff_banner.setVisible(bool(text))

    # -- the header -----------------------------------------------------------------------------
    def _build_header(self) -> QFrame:
        header = QFrame()
        header.setObjectName("header")
        rows = QVBoxLayout(header)
        rows.setContentsMargins(24, 8, 24, 8)
        row = QHBoxLayout()
        self.hall_label = label(wrap=False)
        self.voice_button = button("", self.toggle_voice)
        self.language_button = button("", self.toggle_language)
        row.addWidget(self.hall_label)
        row.addStretch(1)
        row.addWidget(self.voice_button)
        row.addWidget(self.language_button)
        rows.addLayout(row)
        # Journeys' header widgets (the upload count) sit in the top row on a wide panel and
        # in a row of their own on a narrow one, where the top row has no room for them.
        self._header_extra = QFrame()
        self._header_extra.setObjectName("header")  # the header's colours, not the page's
        self._header_extra_row = QHBoxLayout(self._header_extra)
        self._header_extra_row.setContentsMargins(0, 0, 0, 0)
        self._header_extra_row.addStretch(1)
        self._header_extra.hide()
        rows.addWidget(self._header_extra)
        self._header_row = row
        self._header_widgets: list[QWidget] = []
        self._header_narrow: bool | None = None
        return header

    def _place_header_widgets(self, *, again: bool = False) -> None:
        narrow = self.width() < NARROW_PX
        if narrow == self._header_narrow and not again:
            return  # a resize that does not cross the line moves nothing
        self._header_narrow = narrow
        target = self._header_extra_row if narrow else self._header_row
        for widget in self._header_widgets:
            self._header_row.removeWidget(widget)
            self._header_extra_row.removeWidget(widget)
            target.insertWidget(target.count() - (1 if narrow else 2), widget)
        self._header_extra.setVisible(narrow and bool(self._header_widgets))

    def resizeEvent(self, event: Any) -> None:
        super().resizeEvent(event)
        if self._header_widgets:
            self._place_header_widgets()

    def retranslate(self) -> None:
        self.setWindowTitle(_("Government services self-service terminal"))
        self.hall_label.setText(self.config.hall_name or _("Government Service Hall"))
        self.language_button.setText("English" if current_language() != "en" else "中文")
        self.language_button.setAccessibleName(_("Change language"))
        self.voice_button.setText(_("Voice: on") if self.voice.enabled else _("Voice: off"))
        self.idle_button.setText(_("I need more time"))
        self.staff_dismiss.setText(_("Understood"))

    def toggle_language(self) -> None:
        set_language("en" if current_language() != "en" else "zh_CN")
        self.voice.set_language(current_language())
        self.retranslate()
        for journey in self._journeys():
            journey.retranslate()
        self.language_changed.emit()

    def toggle_voice(self) -> None:
        self.voice.set_enabled(not self.voice.enabled)
        self.retranslate()

    # -- the idle guard -------------------------------------------------------------------------
    def watch_for_people(self) -> None:
        """Every key press and touch anywhere in the application restarts the idle clock."""
        app = QApplication.instance()
        if app is not None and not self._watching:
            app.installEventFilter(self)
            self._watching = True

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        kind = event.type()
        if kind in (
            QEvent.Type.KeyPress,
            QEvent.Type.MouseButtonPress,
            QEvent.Type.TouchBegin,
        ):
            self.touch()
        return False

    def paintEvent(self, event: Any) -> None:
        super().paintEvent(event)
        if not self._painted:
            self._painted = True
            self.first_frame.emit()

    def touch(self) -> None:
        """Someone is there: restart the idle clock and withdraw any warning."""
        if self._tick.isActive():
            self.keep_going()
        if self._visit is not None and self._visit.idle_applies():
            self.idle_timer.start()

    def keep_going(self) -> None:
        self.idle_banner.hide()
        self._tick.stop()
        if self._visit is not None and self._visit.idle_applies():
            self.idle_timer.start()

    def _idle_warning(self) -> None:
        if self._visit is None or not self._visit.warning_applies():
            return
        self._countdown = int(self.config.idle_warning_s)
        self._show_countdown()
        self._tick.start()
        self.idle_banner.show()
        self.say(self.idle_text.text())

    def _on_tick(self) -> None:
        self._countdown -= 1
        if self._countdown <= 0:
            self._tick.stop()
            self.end_visit(EndReason.IDLE)
            return
        self._show_countdown()

    def _show_countdown(self) -> None:
        self.idle_text.setText(
            _(
                "Are you still there? To protect your information, "
                "this visit will end in {seconds} seconds."
            ).format(seconds=self._countdown)
        )

    # -- the end --------------------------------------------------------------------------------
    def end_visit(self, reason: EndReason) -> None:
        """Forget the person: every journey's data and pages, what was spoken, the clipboard.

        While the visit's submission is being saved the end is held: the visit shows and speaks
        the outcome first, then asks again."""
        visit = self._visit
        if visit is None:
            return
        if not visit.may_end(reason):
            return
        was_active = visit.active
        self.idle_timer.stop()
        self._tick.stop()
        self.idle_banner.hide()
        for journey in self._journeys():
            journey.wipe()
        self.voice.stop()
        self.voice.spoken.clear()
        clipboard = QApplication.clipboard()
        clipboard.clear(QClipboard.Mode.Clipboard)
        if clipboard.supportsSelection():
            clipboard.clear(QClipboard.Mode.Selection)
        self.statusBar().clearMessage()
        visit.show_start(reason, was_active)

    def stop_watching(self) -> None:
        app = QApplication.instance()
        if app is not None and self._watching:
            app.removeEventFilter(self)
            self._watching = False
        self.idle_timer.stop()
        self._tick.stop()

    def closeEvent(self, event: Any) -> None:
        self.stop_watching()
        super().closeEvent(event)
