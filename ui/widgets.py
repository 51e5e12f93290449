"""Large, touch- and keyboard-friendly building blocks used by every screen."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from PySide6.QtCore import QRectF, QSize, Qt, Signal
from PySide6.QtGui import QColor, QPainter, QPaintEvent, QPen
from PySide6.QtWidgets import (
    QButtonGroup,
    QFrame,
    QGridLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)


def label(text: str = "", name: str = "", wrap: bool = True) -> QLabel:
    widget = QLabel(text)
    if name:
        widget.setObjectName(name)
    widget.setWordWrap(wrap)
    widget.setTextFormat(Qt.TextFormat.PlainText)  # catalogue and card text is never markup
    return widget


def button(text: str, on_click: Callable[[], None] | None = None, *, name: str = "") -> QPushButton:
    """A large button; on_click is a bound method or a signal, never a lambda over a widget
    (a connection holds its lambda, and a lambda over `self` ties the widget into a cycle)."""
    widget = QPushButton(text)
    if name:
        widget.setObjectName(name)
    widget.setAutoDefault(True)  # Enter activates the focused button
    widget.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
    if on_click is not None:
        widget.clicked.connect(on_click)
    return widget


class ValueButton(QPushButton):
    """A button that carries a value and says which when pressed, so one page slot serves many
    buttons without a lambda per button."""

    picked = Signal(str)

    def __init__(self, text: str, value: str, *, name: str = "") -> None:
        super().__init__(text)
        if name:
            self.setObjectName(name)
        self.value = value
        self.setAutoDefault(True)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.clicked.connect(self._pick)

    def _pick(self) -> None:
        self.picked.emit(self.value)


class WrappingButton(QPushButton):
    """A large button whose text wraps onto as many lines as it needs (QPushButton's own text
    never wraps, so a long service summary in English would be cut off)."""

    picked = Signal(str)

    def __init__(self, text: str, value: str = "", name: str = ""):
        super().__init__()
        if name:
            self.setObjectName(name)
        self.value = value
        self.setAutoDefault(True)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.label = label(text)
        self.label.setAttribute(Qt.WidgetAttribute.WA_TransparentForMouseEvents)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(28, 12, 28, 12)
        layout.addWidget(self.label)
        policy = self.sizePolicy()
        policy.setHeightForWidth(True)
        self.setSizePolicy(policy)
        self.setAccessibleName(text)
        self.clicked.connect(self._pick)

    def _pick(self) -> None:
        self.picked.emit(self.value)

    def text(self) -> str:  # type: ignore[override]
        return self.label.text()

    def setText(self, text: str) -> None:  # type: ignore[override]
        self.label.setText(text)
        self.updateGeometry()

    def hasHeightForWidth(self) -> bool:
        return True

    def heightForWidth(self, width: int) -> int:
        margins = self.layout().contentsMargins()
        inner = max(1, width - margins.left() - margins.right())
        return max(self.minimumHeight(), self.label.heightForWidth(inner) + margins.top() * 2)

    # QPushButton's own hints measure its (empty) text and call each other; the label decides.
    def sizeHint(self) -> QSize:
        hint = self.layout().sizeHint()
        return QSize(hint.width(), max(hint.height(), self.minimumHeight()))

    def minimumSizeHint(self) -> QSize:
        least = self.layout().minimumSize()
        return QSize(least.width(), max(least.height(), self.minimumHeight()))


class ErrorSummary(QFrame):
    """A boxed list of what needs correcting, placed at the top of the page."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("error_summary")
        self._layout = QVBoxLayout(self)
        self._title = label(name="field_error")
        self._items = label()
        self._layout.addWidget(self._title)
        self._layout.addWidget(self._items)
        self.hide()

    def show_errors(self, title: str, lines: Sequence[str]) -> None:
        self._title.setText(title)
        self._items.setText("\n".join(f"• {line}" for line in lines))
        self.setAccessibleDescription(title + "\n" + "\n".join(lines))
        self.show()

    def clear(self) -> None:
        self._title.clear()
        self._items.clear()
        self.setAccessibleDescription("")
        self.hide()

    def text(self) -> str:
        return self._title.text() + "\n" + self._items.text()


class Keypad(QWidget):
    """Big on-screen digit keys that type into a line edit; extra keys such as X or - as needed."""

    def __init__(
        self,
        target: QLineEdit,
        extra: str = "",
        delete_text: str = "⌫",
        parent: QWidget | None = None,
    ) -> None:
        """`parent`: the page, so the keys are sized with the window's style sheet."""
        super().__init__(parent)
        self._target = target
        grid = QGridLayout(self)
        grid.setSpacing(12)
        keys = ["1", "2", "3", "4", "5", "6", "7", "8", "9", extra or "", "0", "⌫"]
        self.buttons: dict[str, ValueButton] = {}
        for index, key in enumerate(keys):
            if not key:
                continue
            text = delete_text if key == "⌫" else key
            widget = ValueButton(text, key, name="key")
            widget.setFocusPolicy(Qt.FocusPolicy.NoFocus)  # typing stays in the field
            widget.picked.connect(self._press)
            grid.addWidget(widget, index // 3, index % 3)
            # Wide enough for its word ("Delete", "删除") at the elder-mode type size: polished
            # once in the window, so the style sheet's font is the one measured.
            widget.ensurePolished()
            widget.setMinimumWidth(max(110, widget.fontMetrics().horizontalAdvance(text) + 64))
            self.buttons[key] = widget

    def set_delete_text(self, text: str) -> None:
        if "⌫" in self.buttons:
            self.buttons["⌫"].setText(text)

    def _press(self, key: str) -> None:
        if key == "⌫":
            self._target.backspace()
        else:
            self._target.insert(key)
        self._target.setFocus()


class Choices(QWidget):
    """One large button per option; exactly one can be chosen. Arrow keys and Enter work."""

    chosen = Signal(str)

    def __init__(self) -> None:
        super().__init__()
        self._layout = QVBoxLayout(self)
        self._layout.setSpacing(14)
        self._group = QButtonGroup(self)
        self._group.setExclusive(True)
        self._values: dict[QPushButton, str] = {}

    def set_options(self, options: Sequence[tuple[str, str]], selected: str | None) -> None:
        for widget in list(self._values):
            self._group.removeButton(widget)
            widget.setChecked(False)
            widget.hide()
            widget.setText("")
            widget.deleteLater()
        self._values.clear()
        for value, text in options:
            widget = ValueButton(text, value, name="choice")
            widget.setCheckable(True)
            widget.setChecked(value == selected)
            widget.picked.connect(self.chosen)
            self._group.addButton(widget)
            self._layout.addWidget(widget)
            self._values[widget] = value

    def value(self) -> str | None:
        checked = self._group.checkedButton()
        return None if checked is None else self._values.get(checked)  # type: ignore[arg-type]

    def button_for(self, value: str) -> QPushButton | None:
        return next((b for b, v in self._values.items() if v == value), None)

    def buttons(self) -> list[QPushButton]:
        return list(self._values)


class CardAnimation(QWidget):
    """A card gliding down onto the reader, drawn rather than typed so every screen shows it."""

    FRAMES = 4

    def __init__(self, card: str, reader: str) -> None:
        super().__init__()
        self._card = QColor(card)
        self._reader = QColor(reader)
        self._frame = 0
        self.setMinimumSize(300, 250)
        self.setAccessibleName("")

    def advance(self) -> None:
        self._frame = (self._frame + 1) % self.FRAMES
        self.update()

    def paintEvent(self, event: QPaintEvent) -> None:
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        w, h = self.width(), self.height()
        reader = QRectF(w / 2 - 120, h - 50, 240, 40)
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(self._reader)
        painter.drawRoundedRect(reader, 10, 10)
        lift = (self.FRAMES - 1 - self._frame) * 20
        card = QRectF(w / 2 - 85, h - 60 - 100 - lift, 170, 106)
        painter.setPen(QPen(self._card, 5))
        painter.setBrush(QColor("#ffffff"))
        painter.drawRoundedRect(card, 12, 12)
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(self._card)
        painter.drawRect(QRectF(card.left() + 16, card.top() + 22, 44, 56))  # the photo
        for row in range(3):
            painter.drawRect(QRectF(card.left() + 72, card.top() + 26 + row * 20, 80, 8))
        painter.end()
