"""The terminal window as a thin shell: the header, one page stack, the idle guard, and the one
place that ends a visit and wipes it. Everything a person does lives in a journey (ui/visit.py,
ui/card.py, ui/staff_queue.py); journeys reach the shell through ui.journey.ShellPort."""

from __future__ import annotations

import logging
import weakref
from collections.abc import Callable
from typing import Any, Protocol

from PySide6.QtCore import QEvent, QObject, QPoint, QRect, QSize, Qt, QTimer, Signal
from PySide6.QtGui import QClipboard
from PySide6.QtWidgets import (
    QApplication,
    QFrame,
    QHBoxLayout,
    QLabel,
    QLayout,
    QLayoutItem,
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
from ui.theme import TEXT_STEPS, Palette, palette_for, style_for
from ui.voice import VoiceGuide
from ui.widgets import button, label

log = logging.getLogger(__name__)

HEADER_GAP_PX = 10  # between header controls, across and down (the spec asks for >= 8)


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


class HeaderFlow(QLayout):
    """The header's row of controls, wrapped onto as many rows as the panel's width needs, so
    no control is ever squeezed or cut off, whatever the panel, language or text size. The
    first item (the hall's name) starts the first row on the left; every row's controls are
    packed to the right."""

    def __init__(self, parent: QWidget, gap: int = HEADER_GAP_PX) -> None:
        super().__init__(parent)
        self._items: list[QLayoutItem] = []
        self._gap = gap
        self.setContentsMargins(0, 0, 0, 0)

    def addItem(self, item: QLayoutItem) -> None:
        self._items.append(item)

    def insert_widget(self, index: int, widget: QWidget) -> None:
        """Put a widget at a place in the order (addWidget puts it last)."""
        self.addChildWidget(widget)
        self.addWidget(widget)  # appends its item; move it into place
        self._items.insert(index, self._items.pop())
        self.invalidate()

    def count(self) -> int:
        return len(self._items)

    def itemAt(self, index: int) -> QLayoutItem | None:
        return self._items[index] if 0 <= index < len(self._items) else None

    def takeAt(self, index: int) -> QLayoutItem | None:
        return self._items.pop(index) if 0 <= index < len(self._items) else None

    def expandingDirections(self) -> Qt.Orientation:
        return Qt.Orientation(0)

    def hasHeightForWidth(self) -> bool:
        return True

    def heightForWidth(self, width: int) -> int:
        return self._arrange(QRect(0, 0, width, 0), move=False)

    def setGeometry(self, rect: QRect) -> None:
        super().setGeometry(rect)
        self._arrange(rect, move=True)

    def sizeHint(self) -> QSize:
        shown = self._shown()
        width = sum(i.sizeHint().width() for i in shown) + self._gap * max(0, len(shown) - 1)
        height = max((i.sizeHint().height() for i in shown), default=0)
        m = self.contentsMargins()
        return QSize(width + m.left() + m.right(), height + m.top() + m.bottom())

    def minimumSize(self) -> QSize:
        size = QSize()
        for item in self._shown():
            size = size.expandedTo(item.minimumSize())
        m = self.contentsMargins()
        return size + QSize(m.left() + m.right(), m.top() + m.bottom())

    def _shown(self) -> list[QLayoutItem]:
        return [item for item in self._items if not item.isEmpty()]

    def _arrange(self, rect: QRect, *, move: bool) -> int:
        m = self.contentsMargins()
        area = rect.adjusted(m.left(), m.top(), -m.right(), -m.bottom())
        rows: list[list[QLayoutItem]] = [[]]
        used = 0
        for item in self._shown():
            width = min(item.sizeHint().width(), area.width())
            if rows[-1] and used + self._gap + width > area.width():
                rows.append([])
                used = 0
            used += (self._gap if rows[-1] else 0) + width
            rows[-1].append(item)
        y = area.y()
        for row in rows:
            height = max((item.sizeHint().height() for item in row), default=0)
            if move:
                self._place_row(row, area, y, height)
            y += height + self._gap
        return y - self._gap - rect.y() + m.bottom()

    def _place_row(self, row: list[QLayoutItem], area: QRect, y: int, height: int) -> None:
        first = self._items[0] if self._items else None
        left = [row.pop(0)] if row and row[0] is first else []
        x = area.x()
        for item in left:
            hint = item.sizeHint()
            item.setGeometry(QRect(QPoint(x, y), QSize(min(hint.width(), area.width()), height)))
        x = area.right() + 1
        for item in reversed(row):
            width = min(item.sizeHint().width(), area.width())
            x -= width
            item.setGeometry(QRect(QPoint(x, y), QSize(width, height)))
            x -= self._gap


class Shell(QMainWindow):
    language_changed = Signal()
    first_frame = Signal()  # the first paint of the window has been handled
    help_requested = Signal()  # the citizen pressed "Call staff"
    touched = Signal()  # a key, a click or a touch by a person at the terminal
    text_step_changed = Signal(int)  # an index into ui.theme.TEXT_STEPS
    contrast_changed = Signal(bool)  # True: the high-contrast palette is on

    def __init__(self, *, config: Config, voice: VoiceGuide) -> None:
        super().__init__()
        self.config = config
        self.voice = voice
        voice.setParent(self)
        # The visit is held weakly and the journeys are found as Qt children: the journeys refer
        # to the shell, so references back would make cycles only the garbage collector frees.
        self._visit_ref: weakref.ref[Visit] | None = None
        self._painted = False
        self._text_step = 0
        self._high_contrast = False
        self.setStyleSheet(style_for(palette_for(False), 0, config.font_scale))

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
        self.statusBar().messageChanged.connect(self._status_message)
        self.statusBar().hide()

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
        said = getattr(page, "said", None)  # a page that turns its own sub-pages reads them
        if said is not None:
            said.connect(self.say)
        asks_for_help = getattr(page, "help_requested", None)  # "ask staff" within a page
        if asks_for_help is not None:
            asks_for_help.connect(self.help_requested)

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
        """A journey's widget in the header (the upload count), after the hall's name."""
        self._header_widgets.append(widget)
        self._header_flow.insert_widget(len(self._header_widgets), widget)

    def add_shortcut(self, keys: str, slot: Callable[[], None]) -> None:
        shortcut(self, keys, slot)

    def say(self, text: str) -> None:
        self.voice.say(text)

    def flash(self, text: str) -> None:
        """A short line at the bottom of the window, spoken too (it is wiped with the visit)."""
        bar = self.statusBar()
        bar.showMessage(text, 10_000)
        bar.show()
        self.say(text)

    def _status_message(self, text: str) -> None:
        """The status line takes room from the page only while it says something."""
        if not text:
            self.statusBar().hide()

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
        self._header_flow = HeaderFlow(header)
        self._header_flow.setContentsMargins(24, 8, 24, 8)
        self.hall_label = label(wrap=False)
        self.hall_label.setAlignment(Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignLeft)
        self.text_size_button = button("", self.next_text_step)
        self.contrast_button = button("", self.toggle_contrast)
        self.repeat_button = button("", self.repeat)
        self.call_staff_button = button("", self.call_staff)
        self.voice_button = button("", self.toggle_voice)
        self.language_button = button("", self.toggle_language)
        for widget in (
            self.hall_label,
            self.text_size_button,
            self.contrast_button,
            self.repeat_button,
            self.call_staff_button,
            self.voice_button,
            self.language_button,
        ):
            self._header_flow.addWidget(widget)
        self._header_widgets: list[QWidget] = []
        return header

    # -- how the window looks: text size and contrast -------------------------------------------
    @property
    def text_step(self) -> int:
        return self._text_step

    @property
    def high_contrast(self) -> bool:
        return self._high_contrast

    def next_text_step(self) -> None:
        """Normal, larger, largest, and back to normal."""
        self.set_text_step((self._text_step + 1) % len(TEXT_STEPS))

    def set_text_step(self, step: int) -> None:
        self.set_look(step, self._high_contrast)

    def toggle_contrast(self) -> None:
        self.set_high_contrast(not self._high_contrast)

    def set_high_contrast(self, on: bool) -> None:
        self.set_look(self._text_step, on)

    def set_look(self, step: int, high_contrast: bool) -> None:
        """A text step (an index into TEXT_STEPS) and a palette, applied at once."""
        step = max(0, min(step, len(TEXT_STEPS) - 1))
        step_changed = step != self._text_step
        contrast_changed = high_contrast != self._high_contrast
        if not (step_changed or contrast_changed):
            return
        self._text_step = step
        self._high_contrast = high_contrast
        self._apply_look()
        if step_changed:
            self.text_step_changed.emit(step)
        if contrast_changed:
            self.contrast_changed.emit(high_contrast)

    def _apply_look(self) -> None:
        """The new style sheet for the whole window, then each page fits itself to it again.
        Nothing is said: the page is the same page, only its look changed."""
        self.setStyleSheet(
            style_for(palette_for(self._high_contrast), self._text_step, self.config.font_scale)
        )
        self._retranslate_look()
        palette = palette_for(self._high_contrast)
        for index in range(self.stack.count()):
            page = self.stack.widget(index)
            recolour: Callable[[Palette], None] | None = getattr(page, "set_colors", None)
            if recolour is not None:  # what a page draws itself rather than through the sheet
                recolour(palette)
            refit: Callable[[], None] | None = getattr(page, "refit", None)
            if refit is not None:
                refit()

    def call_staff(self) -> None:
        """Ask for a member of staff; whoever runs the terminal decides how to call them."""
        self.help_requested.emit()

    def repeat(self) -> None:
        """Say the current page again."""
        spoken: Callable[[], str] | None = getattr(self.stack.currentWidget(), "spoken_text", None)
        if spoken is not None:
            self.say(spoken())

    def retranslate(self) -> None:
        self.setWindowTitle(_("Government services self-service terminal"))
        self.hall_label.setText(self.config.hall_name or _("Government Service Hall"))
        self.language_button.setText("English" if current_language() != "en" else "中文")
        self.language_button.setAccessibleName(_("Change language"))
        # Each control says what pressing it does, not the state it is in.
        voice = _("Turn voice off") if self.voice.enabled else _("Turn voice on")
        self.voice_button.setText(voice)
        self.voice_button.setAccessibleName(voice)
        self.repeat_button.setText(_("Repeat"))
        self.repeat_button.setAccessibleName(_("Hear this page again"))
        self.repeat_button.setEnabled(self.voice.enabled)
        self.call_staff_button.setText(_("Call staff"))
        self.call_staff_button.setAccessibleName(_("Call a member of staff to help you"))
        self._retranslate_look()
        self.idle_button.setText(_("I need more time"))
        self.staff_dismiss.setText(_("Understood"))

    def _retranslate_look(self) -> None:
        size_actions = (_("Larger text"), _("Even larger text"), _("Normal text size"))
        self.text_size_button.setText(size_actions[self._text_step])
        self.text_size_button.setAccessibleName(self.text_size_button.text())
        self.contrast_button.setText(
            _("Standard colours") if self._high_contrast else _("High contrast")
        )
        self.contrast_button.setAccessibleName(self.contrast_button.text())

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
            self.touched.emit()  # a person, not the terminal's own calls to touch()
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
        self.statusBar().hide()
        self.set_look(0, False)  # the next person starts with the terminal's own look
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
