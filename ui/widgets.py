"""Large, touch- and keyboard-friendly building blocks used by every screen."""

from __future__ import annotations

import html
from collections.abc import Callable, Sequence
from typing import cast

from PySide6.QtCore import QEvent, QObject, QRectF, QSize, Qt, QTimer, Signal
from PySide6.QtGui import (
    QAccessible,
    QAccessibleActionInterface,
    QAccessibleInterface,
    QColor,
    QKeyEvent,
    QPainter,
    QPaintEvent,
    QPen,
    QPixmap,
    QShowEvent,
)
from PySide6.QtWidgets import (
    QAbstractButton,
    QAccessibleWidget,
    QApplication,
    QBoxLayout,
    QButtonGroup,
    QFrame,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QLayout,
    QLineEdit,
    QPushButton,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

from kiosk.i18n import _

LINE_HEIGHT_PERCENT = 130  # MIIT 2021: line spacing at least 1.3 for body text


class Text(QLabel):
    """A label for plain text drawn with 1.3 line spacing.

    A plain-text QLabel has no line spacing, so the text is escaped and shown as rich text;
    `text()` still gives the plain text, and catalogue or card text is never read as markup."""

    def __init__(self, text: str = "", parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._plain = ""
        self.setTextFormat(Qt.TextFormat.RichText)
        self.setText(text)

    def setText(self, text: str) -> None:  # type: ignore[override]
        self._plain = text
        if not text:
            super().setText("")
            return
        super().setText(
            f'<p style="line-height:{LINE_HEIGHT_PERCENT}%; white-space:pre-wrap; margin:0">'
            f"{html.escape(text, quote=False)}</p>"
        )

    def text(self) -> str:  # type: ignore[override]
        return self._plain

    def clear(self) -> None:
        self._plain = ""
        super().clear()

    def setPixmap(self, pixmap: QPixmap) -> None:  # type: ignore[override]
        self._plain = ""
        super().setPixmap(pixmap)


def label(text: str = "", name: str = "", wrap: bool = True) -> Text:
    widget = Text(text)
    if name:
        widget.setObjectName(name)
    widget.setWordWrap(wrap)
    return widget


def blank(widget: QWidget) -> None:
    """Empty every text a widget and its children show or tell a screen reader."""
    for child in [widget, *widget.findChildren(QWidget)]:
        if isinstance(child, QLabel):
            child.clear()
        elif isinstance(child, QAbstractButton):
            child.setText("")
        elif isinstance(child, QLineEdit):
            child.setText("")  # setText, unlike clear(), also empties the undo history
        child.setAccessibleName("")
        child.setAccessibleDescription("")
        child.setToolTip("")


def named(widget: QWidget, name: str, description: str = "") -> QWidget:
    """What a screen reader says for a control: its name and what pressing it does."""
    widget.setAccessibleName(name)
    widget.setAccessibleDescription(description)
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


# -- what a screen reader is told ---------------------------------------------------------------
# Qt's accessibility tree lists a widget's children in the order they were given their parent
# (QAccessibleWidget::child walks QObject::children()), not where they are drawn; and it lists
# the labels inside a button or a row beside the name that already says what they say. The
# helpers below put the children in the order their layouts show them, and give the widgets that
# draw their text with labels an interface of their own that leaves those labels out.

PLAIN_CONTAINERS = (QWidget, QFrame)
OWN_MODULES = ("ui.widgets", "ui.screens", "ui.date_picker")


def laid_out(layout: QLayout) -> list[QWidget]:
    """The widgets of a layout and its inner layouts, in the order they are shown: a box's items
    in its direction, a grid's row by row."""
    indexes = list(range(layout.count()))
    if isinstance(layout, QGridLayout):
        grid = layout
        indexes.sort(key=lambda i: _grid_cell(grid, i))
    elif isinstance(layout, QBoxLayout) and layout.direction() in (
        QBoxLayout.Direction.RightToLeft,
        QBoxLayout.Direction.BottomToTop,
    ):
        indexes.reverse()
    widgets: list[QWidget] = []
    for index in indexes:
        item = layout.itemAt(index)
        if item is None:
            continue
        widget = item.widget()
        if widget is not None:
            widgets.append(widget)
        else:
            inner = item.layout()
            if inner is not None:
                widgets += laid_out(inner)
    return widgets


def _grid_cell(grid: QGridLayout, index: int) -> tuple[int, int]:
    position = cast("tuple[int, int, int, int]", grid.getItemPosition(index))  # and spans
    return position[0], position[1]


def read_in_layout_order(root: QWidget) -> None:
    """Put the children of `root` and of its containers in the order their layouts show them,
    which is the order a screen reader reads them in. Widgets outside the layouts (drawn over
    it) stay last, on top. Other modules' widgets are ordered among their siblings but their
    insides are left as they are."""
    pending = [root]
    while pending:
        widget = pending.pop()
        children = [c for c in widget.children() if isinstance(c, QWidget) and not c.isWindow()]
        layout = widget.layout()
        if layout is not None and len(children) > 1:
            shown = [w for w in laid_out(layout) if w.parent() is widget]
            placed = {id(w) for w in shown}
            wanted = shown + [c for c in children if id(c) not in placed]
            if [id(c) for c in wanted] != [id(c) for c in children]:
                for child in wanted:
                    child.raise_()  # to the end of the parent's children: reading order
        pending += [
            c for c in children if type(c) in PLAIN_CONTAINERS or type(c).__module__ in OWN_MODULES
        ]


class _WithoutLabels(QAccessibleWidget):
    """A widget's interface whose children leave out the labels that draw its text: its own
    name and description say it once. Other children (a button in a row) are still there."""

    def _children(self) -> list[QWidget]:
        widget = self.widget()
        return [
            c
            for c in widget.children()
            if isinstance(c, QWidget) and not c.isWindow() and not isinstance(c, QLabel)
        ]

    def childCount(self) -> int:
        return len(self._children())

    def child(self, index: int) -> QAccessibleInterface | None:  # type: ignore[override]
        children = self._children()
        if 0 <= index < len(children):
            return QAccessible.queryAccessibleInterface(children[index])
        return None

    def indexOfChild(self, child: QAccessibleInterface) -> int:
        target = child.object() if child is not None else None
        return next((i for i, c in enumerate(self._children()) if c is target), -1)


class _ButtonWithoutLabels(_WithoutLabels):
    """A push button (press, focus, its states) whose text is drawn by a label inside it."""

    def __init__(self, widget: QAbstractButton) -> None:
        super().__init__(widget, QAccessible.Role.Button)

    def state(self) -> QAccessible.State:
        state = super().state()
        widget = self.widget()
        if isinstance(widget, QAbstractButton):
            state.pressed = widget.isDown()
            state.checkable = widget.isCheckable()
            state.checked = widget.isChecked()
        return state

    def actionNames(self) -> list[str]:
        names = [QAccessibleActionInterface.pressAction()] if self.widget().isEnabled() else []
        return names + super().actionNames()

    def doAction(self, name: str) -> None:
        widget = self.widget()
        if name == QAccessibleActionInterface.pressAction():
            if widget.isEnabled() and isinstance(widget, QAbstractButton):
                widget.animateClick()
        else:
            super().doAction(name)


def _interface_for(_class_name: str, target: QObject) -> QAccessibleInterface | None:
    """Qt asks this first for every object a screen reader reaches (then its own factories)."""
    if isinstance(target, WrappingButton):
        return _ButtonWithoutLabels(target)
    if isinstance(target, TextGroup):
        return _WithoutLabels(target, QAccessible.Role.StaticText)
    return None


_interfaces_installed = False


def _use_own_interfaces() -> None:
    """Tell Qt about the interfaces above, once a process (the first such widget made)."""
    global _interfaces_installed  # noqa: PLW0603 - Qt keeps one list of factories a process
    if not _interfaces_installed:
        QAccessible.installFactory(_interface_for)
        _interfaces_installed = True


class TextGroup(QWidget):
    """Texts read as one item: a screen reader hears the group's accessible name (a review
    row's question and answer, a section of a guide), not each label in it again."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        _use_own_interfaces()


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


class ChoiceButton(ValueButton):
    """One option of a single choice: a checkable button that a screen reader calls a radio
    button (Qt names a checkable button a radio button when it is auto-exclusive, a check box
    otherwise). It says its value when it becomes the one chosen, however that happened: a
    touch, a key, or a screen reader's Toggle action (which checks it without a click)."""

    def __init__(self, text: str, value: str, *, name: str = "") -> None:
        super().__init__(text, value, name=name)
        self.clicked.disconnect(self._pick)
        self.setCheckable(True)
        self.setAutoExclusive(True)
        self.toggled.connect(self._toggled)

    def _toggled(self, checked: bool) -> None:
        if checked:
            self.picked.emit(self.value)

    def release(self) -> None:
        """Out of its group and unchecked (an auto-exclusive button keeps its check otherwise)."""
        self.setAutoExclusive(False)
        self.setChecked(False)


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
        _use_own_interfaces()  # the label below draws the text; the button's name says it
        self.label = label(text)
        self.label.setAttribute(Qt.WidgetAttribute.WA_TransparentForMouseEvents)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(28, 8, 28, 8)
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
        self._layout.setContentsMargins(16, 6, 16, 6)
        self._layout.setSpacing(2)
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


class Pager(QWidget):
    """Items shown a page at a time, as many as fit the height the pager is given, with large
    Previous and More buttons and "Page 1 of 3": long content pages instead of scrolling.

    The pages are worked out again whenever the pager's size, font or style changes, by measuring
    each item at the pager's width. An item with the property "keep_with_next" (a heading) is
    never the last of a page."""

    page_changed = Signal()  # the person turned a page

    def __init__(self, parent: QWidget | None = None, spacing: int = 14) -> None:
        super().__init__(parent)
        self._items: list[QWidget] = []
        self._omitted: list[QWidget] = []
        self._pages: list[list[int]] = []
        self._page = 0
        self._fitted = QSize()  # the size the pages were worked out for
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.setSpacing(0)
        # What the pager shows never changes the room it is given: no feedback between the two.
        outer.setSizeConstraint(QLayout.SizeConstraint.SetNoConstraint)
        self._list = QVBoxLayout()
        self._list.setContentsMargins(0, 0, 0, 0)
        self._list.setSpacing(spacing)
        outer.addLayout(self._list)
        outer.addStretch(1)
        self.nav = QWidget(self)
        row = QHBoxLayout(self.nav)
        row.setContentsMargins(0, spacing, 0, 0)
        row.setSpacing(16)
        # named so that tools walking the pages (the audit, a screen-reader client) find them
        self.previous_button = button("", self.previous, name="page_previous")
        self.more_button = button("", self.more, name="page_more")
        self.status = label(wrap=True)
        self.status.setAlignment(Qt.AlignmentFlag.AlignCenter)
        for widget in (self.previous_button, self.more_button):
            # Hidden where there is no page to turn to (a disabled button would be read out as
            # "unavailable"), keeping its room so that nothing moves.
            policy = widget.sizePolicy()
            policy.setRetainSizeWhenHidden(True)
            widget.setSizePolicy(policy)
        row.addWidget(self.previous_button)
        row.addWidget(self.status, 1)
        row.addWidget(self.more_button)
        outer.addWidget(self.nav)
        self.nav.hide()
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self._later = QTimer(self)
        self._later.setSingleShot(True)
        self._later.setInterval(0)
        self._later.timeout.connect(self.refit)

    # The pager takes the room the page leaves it, whatever it holds.
    def sizeHint(self) -> QSize:
        return QSize(320, 240)

    def minimumSizeHint(self) -> QSize:
        return QSize(120, 120)

    def set_items(self, widgets: Sequence[QWidget]) -> None:
        """Show these widgets (the pager becomes their parent) from the first page."""
        self.clear()
        for widget in widgets:
            widget.hide()
            self._list.addWidget(widget)
            self._items.append(widget)
        self.nav.raise_()  # read after the items, as it is shown
        self._page = 0
        self.refit()
        self._later.start()  # and again once the page around it has been laid out

    def clear(self) -> None:
        """Take every item out: hidden and emptied now, deleted by Qt later (an item may be the
        button whose click brought us here)."""
        for widget in self._items:
            self._list.removeWidget(widget)
            widget.hide()
            blank(widget)
            widget.deleteLater()
        self._items = []
        self._omitted = []
        self._pages = []
        self._page = 0
        self.nav.hide()
        self.status.clear()

    def omit(self, widget: QWidget, omitted: bool, *, refit: bool = True) -> None:
        """Leave an item out of every page (an empty notice) or put it back; several changes
        in a row can leave the refit to the last."""
        if omitted and widget not in self._omitted:
            self._omitted.append(widget)
        elif not omitted and widget in self._omitted:
            self._omitted.remove(widget)
        if refit:
            self.refit()

    def items(self) -> list[QWidget]:
        return list(self._items)

    def visible_items(self) -> list[QWidget]:
        self.settle()
        return self._shown()

    def _shown(self) -> list[QWidget]:
        if not self._pages:
            return []
        return [self._items[i] for i in self._pages[self._page]]

    def page(self) -> int:
        """The page shown, counted from 0."""
        self.settle()
        return self._page

    def page_count(self) -> int:
        self.settle()
        return max(1, len(self._pages))

    def settle(self) -> None:
        """Lay the page out now if it is waiting to be, so that what is read out (the moment a
        page comes up) is what will be on the screen."""
        if self.isVisible() and not self.settled():
            QApplication.sendPostedEvents(None, QEvent.Type.LayoutRequest)
            if not self.settled():
                self._later.stop()
                self.refit()

    def status_text(self) -> str:
        """"Page 2 of 3", or nothing when everything fits on one page."""
        self.settle()
        return self._status()

    def _status(self) -> str:
        if len(self._pages) <= 1:
            return ""
        return _("Page {number} of {total}").format(number=self._page + 1, total=len(self._pages))

    def show_item(self, widget: QWidget) -> None:
        """Turn to the page that holds this item (the chosen option, say)."""
        for number, indexes in enumerate(self._pages):
            if any(self._items[i] is widget for i in indexes):
                if number != self._page:
                    self._page = number
                    self._show()
                return

    def previous(self) -> None:
        if self._page > 0:
            self._page -= 1
            self._turned()

    def more(self) -> None:
        if self._page + 1 < len(self._pages):
            self._page += 1
            self._turned()

    def _turned(self) -> None:
        focused = next((b for b in (self.previous_button, self.more_button) if b.hasFocus()), None)
        self._show()
        # Focus stays on the page buttons; a button that is gone now hands it over.
        if focused is self.more_button and not self.more_button.isVisibleTo(self.nav):
            self.previous_button.setFocus()
        elif focused is self.previous_button and not self.previous_button.isVisibleTo(self.nav):
            self.more_button.setFocus()
        self.page_changed.emit()

    def settled(self) -> bool:
        """Whether the pages shown were worked out for the pager's present size."""
        return not self._later.isActive() and self._fitted == self.size()

    def refit(self) -> None:
        """Work out the pages for the height the pager has now."""
        self._fitted = self.size()
        if not self._items:
            self.nav.hide()
            return
        shown = self._shown()
        anchor = shown[0] if shown else self._items[0]
        width = max(1, self.width())
        indexes = [i for i, w in enumerate(self._items) if w not in self._omitted]
        heights = {i: item_height(self._items[i], width) for i in indexes}
        gap = self._list.spacing()
        if sum(heights.values()) + gap * (len(heights) - 1) <= self.height():
            self._pages = [indexes]
        else:
            self._set_nav_texts()
            room = self.height() - item_height(self.nav, width)
            self._pages = self._split(indexes, heights, room, gap)
        self._page = next(
            (n for n, page in enumerate(self._pages) if anchor in (self._items[i] for i in page)),
            0,
        )
        self._show()

    def _split(
        self, indexes: list[int], heights: dict[int, int], room: int, gap: int
    ) -> list[list[int]]:
        pages: list[list[int]] = []
        current: list[int] = []
        used = 0
        for index in indexes:
            height = heights[index]
            need = height + (gap if current else 0)
            if current and used + need > room:
                carried: list[int] = []
                # a heading goes over with what it introduces
                while len(current) > 1 and self._items[current[-1]].property("keep_with_next"):
                    carried.insert(0, current.pop())
                pages.append(current)
                current = carried
                used = sum(heights[i] for i in current) + gap * max(0, len(current) - 1)
                need = height + (gap if current else 0)
            current.append(index)
            used += need
        if current:
            pages.append(current)
        return pages

    def _set_nav_texts(self) -> None:
        self.previous_button.setText(_("Previous"))
        self.more_button.setText(_("More"))
        status = self._status()
        self.status.setText(status)
        named(self.previous_button, _("Previous page"), status)
        named(self.more_button, _("More: next page"), status)

    def _show(self) -> None:
        shown = set(self._pages[self._page]) if self._pages else set()
        for index, widget in enumerate(self._items):
            widget.setVisible(index in shown)
        several = len(self._pages) > 1
        self.nav.setVisible(several)
        self._set_nav_texts()
        earlier = self._page > 0
        later = self._page + 1 < len(self._pages)
        self.previous_button.setEnabled(earlier)
        self.previous_button.setVisible(earlier)
        self.more_button.setEnabled(later)
        self.more_button.setVisible(later)

    def resizeEvent(self, event: QEvent) -> None:  # type: ignore[override]
        super().resizeEvent(event)  # type: ignore[arg-type]
        self.refit()

    def showEvent(self, event: QShowEvent) -> None:
        super().showEvent(event)
        self._later.start()

    def changeEvent(self, event: QEvent) -> None:
        super().changeEvent(event)
        if event.type() in (QEvent.Type.StyleChange, QEvent.Type.FontChange):
            self._later.start()  # a larger text size: the items are taller now

    def keyPressEvent(self, event: QKeyEvent) -> None:
        if event.key() == Qt.Key.Key_PageDown:
            self.more()
        elif event.key() == Qt.Key.Key_PageUp:
            self.previous()
        else:
            super().keyPressEvent(event)


def item_height(widget: QWidget, width: int) -> int:
    """The height a widget needs at this width, as its layout would give it."""
    widget.ensurePolished()
    height = widget.heightForWidth(width) if widget.hasHeightForWidth() else -1
    if height < 0:
        # (a wrapping label's minimum is its height at its narrowest: not asked when the width
        # is known)
        height = max(widget.sizeHint().height(), widget.minimumSizeHint().height())
    return max(height, widget.minimumHeight())


GROUPS = {"phone": (3, 4, 4), "id_number": (6, 8, 4)}


def group_digits(text: str, sizes: Sequence[int]) -> str:
    """Digits in the groups they are read in: 138 1234 5678, 110101 19520308 002X."""
    chars = [c.upper() for c in text if not c.isspace()]
    parts: list[str] = []
    start = 0
    for size in sizes:
        if start >= len(chars):
            break
        parts.append("".join(chars[start : start + size]))
        start += size
    if start < len(chars):
        parts.append("".join(chars[start:]))
    return " ".join(parts)


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
        grid.setContentsMargins(0, 0, 0, 0)
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
            self.buttons[key] = widget
        self._fit_keys()
        self._name_keys()

    def _fit_keys(self) -> None:
        """Each key wide enough for its word ("Delete", "删除") at the type size in force:
        measured once polished in the window, and again whenever it is shown (a keypad made
        before the window's style sheet reached it measured the default font)."""
        for widget in self.buttons.values():
            widget.ensurePolished()
            advance = widget.fontMetrics().horizontalAdvance(widget.text())
            widget.setMinimumWidth(max(110, advance + 64))

    def showEvent(self, event: QShowEvent) -> None:
        self._fit_keys()
        super().showEvent(event)

    def _name_keys(self) -> None:
        for key, widget in self.buttons.items():
            if key == "⌫":
                named(widget, widget.text(), _("Removes the last character of the answer"))
            else:
                named(widget, key, _("Types {key} into the answer").format(key=key))

    def set_delete_text(self, text: str) -> None:
        if "⌫" in self.buttons:
            self.buttons["⌫"].setText(text)
            self._fit_keys()
            self._name_keys()

    def _press(self, key: str) -> None:
        if key == "⌫":
            self._target.backspace()
        else:
            self._target.insert(key)
        self._target.setFocus()


class Choices(QWidget):
    """One large button per option; exactly one can be chosen. Arrow keys and Enter work. Many
    options are paged (see Pager)."""

    chosen = Signal(str)

    def __init__(self) -> None:
        super().__init__()
        self._layout = QVBoxLayout(self)
        self._layout.setContentsMargins(0, 0, 0, 0)
        self.pager = Pager(self)
        self._layout.addWidget(self.pager)
        self._group = QButtonGroup(self)
        self._group.setExclusive(True)
        self._values: dict[ChoiceButton, str] = {}
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)

    def set_options(self, options: Sequence[tuple[str, str]], selected: str | None) -> None:
        """`options`: (value, text) pairs; the texts are shown numbered, as they are read out."""
        for widget in list(self._values):
            self._group.removeButton(widget)
            widget.release()
        self._values.clear()
        widgets: list[QWidget] = []
        for number, (value, text) in enumerate(options, start=1):
            widget = ChoiceButton(f"{number}. {text}", value, name="choice")
            widget.setChecked(value == selected)
            widget.picked.connect(self.chosen)
            named(widget, text, _("Option {number} of {total}").format(
                number=number, total=len(options)
            ))
            self._group.addButton(widget)
            self._values[widget] = value
            widgets.append(widget)
        self.pager.set_items(widgets)  # the old buttons are emptied and deleted there
        target = self.button_for(selected) if selected is not None else None
        if target is not None:
            self.pager.show_item(target)

    def value(self) -> str | None:
        checked = self._group.checkedButton()
        return None if checked is None else self._values.get(checked)  # type: ignore[arg-type]

    def button_for(self, value: str) -> QPushButton | None:
        return next((b for b, v in self._values.items() if v == value), None)

    def buttons(self) -> list[QPushButton]:
        return list(self._values)

    def shown_texts(self) -> list[str]:
        """The options on the page shown, numbered as on the screen."""
        return [w.text() for w in self.pager.visible_items() if isinstance(w, QPushButton)]


class CardAnimation(QWidget):
    """A card gliding down onto the reader, drawn rather than typed so every screen shows it."""

    FRAMES = 4

    def __init__(self, card: str, reader: str, face: str = "#ffffff") -> None:
        super().__init__()
        self._card = QColor(card)
        self._reader = QColor(reader)
        self._face = QColor(face)
        self._frame = 0
        # drawn for 300×250, scaled down (to nothing, if need be: it only shows what the words
        # say) when the text is large and the room is short
        self.setMinimumSize(150, 0)
        self.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Preferred)
        self.setAccessibleName("")

    def sizeHint(self) -> QSize:
        return QSize(300, 250)

    def set_colors(self, card: str, reader: str, face: str) -> None:
        self._card, self._reader, self._face = QColor(card), QColor(reader), QColor(face)
        self.update()

    def advance(self) -> None:
        self._frame = (self._frame + 1) % self.FRAMES
        self.update()

    def paintEvent(self, event: QPaintEvent) -> None:
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        scale = min(1.0, self.width() / 300, self.height() / 250)
        painter.translate(self.width() / 2, self.height())
        painter.scale(scale, scale)
        painter.translate(-150, -250)
        w, h = 300, 250
        reader = QRectF(w / 2 - 120, h - 50, 240, 40)
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(self._reader)
        painter.drawRoundedRect(reader, 10, 10)
        lift = (self.FRAMES - 1 - self._frame) * 20
        card = QRectF(w / 2 - 85, h - 60 - 100 - lift, 170, 106)
        painter.setPen(QPen(self._card, 5))
        painter.setBrush(self._face)
        painter.drawRoundedRect(card, 12, 12)
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(self._card)
        painter.drawRect(QRectF(card.left() + 16, card.top() + 22, 44, 56))  # the photo
        for row in range(3):
            painter.drawRect(QRectF(card.left() + 72, card.top() + 26 + row * 20, 80, 8))
        painter.end()


class ActivityWatch(QObject):
    """Says when anyone presses a key, clicks or touches anywhere in the application, while it
    watches: the idle clock of a journey that has no visit of its own (the service guide, the
    case lookup) starts again on it."""

    seen = Signal()

    def __init__(self, parent: QObject) -> None:
        super().__init__(parent)
        self._watching = False

    def watch(self, on: bool) -> None:
        app = QApplication.instance()
        if app is None or on == self._watching:
            return
        if on:
            app.installEventFilter(self)
        else:
            app.removeEventFilter(self)
        self._watching = on

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if event.type() in (
            QEvent.Type.KeyPress,
            QEvent.Type.MouseButtonPress,
            QEvent.Type.TouchBegin,
        ):
            self.seen.emit()
        return False
