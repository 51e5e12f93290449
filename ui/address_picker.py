"""The address picker: province, city and county from big buttons, then the street is typed.

A person touches their province (short names: 广东), then their city, then their district or
county; the region's full name goes into the answer field with the cursor after it, and the
street and number are typed with the other input panels. The municipalities (北京, 天津, 上海,
重庆) go straight from the province to their districts, and a county a province administers
directly (仙桃市) ends the choice at the second step. Lists that do not fit are paged with big
buttons; a row of letter keys narrows a list by pinyin initials (G D for 广东). The card's address,
when there is one, chooses for the person and they confirm or change it.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import pairwise

from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtGui import QResizeEvent
from PySide6.QtWidgets import (
    QGridLayout,
    QHBoxLayout,
    QLineEdit,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

from kiosk.divisions import COUNTY, PROVINCE, Division, Register, matches, register
from kiosk.i18n import _
from ui.widgets import ValueButton, blank, button, label, named

GAP = 8  # between touch targets
TARGET = 64  # least height and width of every button here (the specification asks 60)
LINE_CHARS = 6  # a place name longer than this is shown on two lines
LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
DELETE, CLEAR = "delete", "clear"

# Sizes only: the colours come from the window's style sheet. The window's buttons are taller
# (88 px); here 34 provinces must fit a 1000x560 area, so the picker's buttons are 64 px with
# their padding (2 px) and border (2 px).
STYLE = f"""
QPushButton {{ min-height: {TARGET - 8}px; min-width: {TARGET - 8}px; padding: 2px 10px; }}
"""


def button_text(division: Division) -> str:
    """广东 for a province; a long name on two lines, broken after its proper part."""
    if division.level == PROVINCE:
        return division.short
    name = division.name
    if len(name) <= LINE_CHARS:
        return name
    cut = len(division.short)
    if not 2 <= cut <= LINE_CHARS + 2 or len(name) - cut > LINE_CHARS + 2:
        cut = (len(name) + 1) // 2
    return name[:cut] + "\n" + name[cut:]


class PlaceGrid(QWidget):
    """Place buttons in as many equal cells as fit the room it is given, a page at a time:
    never a scroll bar."""

    paged = Signal()  # the page count or the page shown changed

    def __init__(self, parent: QWidget) -> None:
        super().__init__(parent)
        self._buttons: list[ValueButton] = []
        self._page = 0
        self._per_page = 1
        self.empty = label()
        self.empty.setParent(self)
        self.empty.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.empty.hide()
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)

    def sizeHint(self) -> QSize:
        return QSize(600, 3 * TARGET + 2 * GAP)

    def minimumSizeHint(self) -> QSize:
        return QSize(TARGET * 2, TARGET)

    def set_buttons(self, buttons: Sequence[ValueButton]) -> None:
        for old in self._buttons:
            old.hide()
            blank(old)
            old.deleteLater()  # one of them may be the button whose click brought us here
        self._buttons = list(buttons)
        for new in self._buttons:
            new.setParent(self)
        self._page = 0
        self.relayout()

    def buttons(self) -> list[ValueButton]:
        return list(self._buttons)

    def visible_buttons(self) -> list[ValueButton]:
        start = self._page * self._per_page
        return self._buttons[start : start + self._per_page]

    def page(self) -> int:
        return self._page

    def page_count(self) -> int:
        return max(1, -(-len(self._buttons) // self._per_page))

    def turn(self, step: int) -> None:
        page = min(max(0, self._page + step), self.page_count() - 1)
        if page != self._page:
            self._page = page
            self.relayout()

    def show_button(self, value: str) -> None:
        """Turn to the page that holds this place."""
        for index, widget in enumerate(self._buttons):
            if widget.value == value:
                self._page = index // self._per_page
                self.relayout()
                return

    def _cell(self) -> QSize:
        """The largest button's own size (text, padding, border and the style's least size)."""
        width, height = TARGET, TARGET
        for widget in self._buttons:
            widget.ensurePolished()
            hint = widget.sizeHint().expandedTo(widget.minimumSizeHint())
            width = max(width, hint.width() + 4)  # a little air around the longest name
            height = max(height, hint.height())
        return QSize(width, height)

    def relayout(self) -> None:
        cell = self._cell()
        room_w, room_h = max(self.width(), cell.width()), max(self.height(), cell.height())
        columns = max(1, (room_w + GAP) // (cell.width() + GAP))
        rows = max(1, (room_h + GAP) // (cell.height() + GAP))
        self._per_page = columns * rows
        self._page = min(self._page, self.page_count() - 1)
        width = (room_w - (columns - 1) * GAP) // columns  # the cells share the width
        shown = set(map(id, self.visible_buttons()))
        for widget in self._buttons:
            widget.setVisible(id(widget) in shown)
        for index, widget in enumerate(self.visible_buttons()):
            row, column = divmod(index, columns)
            widget.setGeometry(
                column * (width + GAP), row * (cell.height() + GAP), width, cell.height()
            )
        self.empty.setGeometry(0, 0, max(1, self.width()), max(TARGET, self.height()))
        self.empty.setVisible(not self._buttons and bool(self.empty.text()))
        self.paged.emit()

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        self.relayout()


class LetterKeys(QWidget):
    """A compact A-Z keypad for pinyin initials, with delete and clear."""

    pressed = Signal(str)

    def __init__(self, parent: QWidget) -> None:
        super().__init__(parent)
        grid = QGridLayout(self)
        grid.setContentsMargins(0, 0, 0, 0)
        grid.setSpacing(GAP)
        self.keys: dict[str, ValueButton] = {}
        values = [letter.lower() for letter in LETTERS] + [DELETE, CLEAR]
        for index, value in enumerate(values):
            text = value.upper() if len(value) == 1 else ""
            key = ValueButton(text, value, name="key")
            key.setParent(self)
            key.setFocusPolicy(Qt.FocusPolicy.NoFocus)
            key.picked.connect(self.pressed)
            row, column = divmod(index, 10)
            span = 2 if len(value) > 1 else 1
            if len(value) > 1:
                column = 6 + (index - 26) * 2  # the two wide keys end the last row
            grid.addWidget(key, row, column, 1, span)
            self.keys[value] = key

    def allow(self, letters: set[str]) -> None:
        """Only letters that lead to a place can be pressed; they are drawn filled."""
        for value, key in self.keys.items():
            if len(value) == 1:
                key.setEnabled(value in letters)
                wanted = "primary" if value in letters else "key"
                if key.objectName() != wanted:
                    key.setObjectName(wanted)
                    key.style().unpolish(key)
                    key.style().polish(key)

    def retranslate(self) -> None:
        for value, key in self.keys.items():
            if value == DELETE:
                key.setText(_("Delete letter"))
                named(key, _("Delete letter"), _("Delete the last letter"))
            elif value == CLEAR:
                key.setText(_("Clear letters"))
                named(key, _("Clear letters"), _("Show the whole list again"))
            else:
                named(key, _("Letter {letter}").format(letter=value.upper()))


class AddressPicker(QWidget):
    """Province -> city -> county from big buttons; the region goes into the target field."""

    picked = Signal(str)  # the region's full name, just put into the field
    skipped = Signal()  # the person chose to type the whole address
    said = Signal(str)  # the step changed: what it asks now, for the voice guide

    def __init__(self, parent: QWidget, divisions: Register | None = None) -> None:
        super().__init__(parent)
        self._divisions = divisions if divisions is not None else register()
        self._target: QLineEdit | None = None
        self._chosen: list[str] = []  # codes from the province down
        self._done = False  # the last chosen place has nothing under it
        self._from_card = False  # the choice was made from the card, not yet confirmed
        self._street_kept = False  # a street was in the field after the region put there
        self._filter = ""
        self.setStyleSheet(STYLE)
        self.setObjectName("address_picker")

        outer = self._outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.setSpacing(GAP)
        top = QHBoxLayout()
        top.setSpacing(GAP)
        self.crumb = label()
        self.crumb.setParent(self)
        self.crumb.setObjectName("address_crumb")
        self.crumb.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.back_button = button("", self.back, name="address_back")
        self.skip_button = button("", self.skip, name="address_skip")
        top.addWidget(self.crumb, 1)
        top.addWidget(self.back_button)
        top.addWidget(self.skip_button)
        outer.addLayout(top)

        self.grid = PlaceGrid(self)
        self.grid.paged.connect(self._update_pages)
        outer.addWidget(self.grid, 1)

        self.done_panel = QWidget(self)
        done = QVBoxLayout(self.done_panel)
        done.setContentsMargins(0, 0, 0, 0)
        done.setSpacing(GAP // 2)
        self.chosen_label = label(name="question")
        self.chosen_label.setParent(self.done_panel)
        self.hint = label()
        self.hint.setParent(self.done_panel)
        # the place and what to do with it on one row: the panel is short on a landscape screen
        done_row = QHBoxLayout()
        done_row.setSpacing(GAP * 2)
        self.use_button = button("", self.use, name="primary")
        self.change_button = button("", self.change, name="address_change")
        done_row.addWidget(self.chosen_label, 1)
        done_row.addWidget(self.use_button)
        done_row.addWidget(self.change_button)
        done.addLayout(done_row)
        done.addWidget(self.hint)
        done.addStretch(1)
        outer.addWidget(self.done_panel, 1)
        self.done_panel.hide()

        self.letter_keys = LetterKeys(self)
        self.letter_keys.pressed.connect(self._letter)
        self.letter_keys.hide()
        outer.addWidget(self.letter_keys)

        bottom = QHBoxLayout()
        bottom.setSpacing(GAP)
        self.letters_button = button("", self.toggle_letters, name="address_letters")
        self.filter_label = label(wrap=False)
        self.filter_label.setParent(self)
        self.previous_button = button("", self.previous_page, name="address_previous")
        self.page_label = label(wrap=False)
        self.page_label.setParent(self)
        self.page_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.more_button = button("", self.next_page, name="address_more")
        bottom.addWidget(self.letters_button)
        bottom.addWidget(self.filter_label, 1)
        bottom.addWidget(self.previous_button)
        bottom.addWidget(self.page_label)
        bottom.addWidget(self.more_button)
        outer.addLayout(bottom)
        self.retranslate()
        self._show_step()

    # -- what the page asks of the picker ------------------------------------------------------

    def set_target(self, line: QLineEdit | None) -> None:
        """The answer field the region goes into (the picker does not own it)."""
        if self._target is not None:
            self._target.destroyed.disconnect(self._target_gone)
        self._target = line
        if line is not None:
            line.destroyed.connect(self._target_gone)

    def preselect_from(self, card_address: str | None) -> None:
        """Choose what the card's address names; the person confirms it or changes it."""
        self._reset()
        if card_address:
            found = self._divisions.match_address(card_address).deepest
            if found is not None:
                self._chosen = [d.code for d in self._divisions.path(found)]
                self._done = not self._divisions.children(found)
                self._from_card = self._done
        self._show_step()

    def region(self) -> str:
        """The full name of what is chosen so far (empty when nothing is)."""
        return self._divisions.full_name(self._chosen)

    def chosen(self) -> tuple[str, ...]:
        return tuple(self._chosen)

    def is_done(self) -> bool:
        return self._done

    def wipe(self) -> None:
        """Forget the choice, the card's address and the letters typed."""
        self._reset()
        blank(self.chosen_label)
        blank(self.hint)
        self.crumb.clear()
        self._show_step()

    def spoken_text(self) -> str:
        """What this step asks, for the voice guide."""
        if self._done:
            if self._from_card:
                return _(
                    "From your ID card: {region}. Press Use this, or Change to choose another."
                ).format(region=self.region())
            if self._street_kept:
                return _(
                    "{region} is in your answer. The street after it is selected: write or type "
                    "to replace it, or press Next to keep it."
                ).format(region=self.region())
            return _("{region} is in your answer. Now type the street and number.").format(
                region=self.region()
            )
        return self._prompt()

    def retranslate(self) -> None:
        self.back_button.setText(_("Back one step"))
        named(self.back_button, _("Back one step"), _("Go back to the previous list"))
        self.skip_button.setText(_("Skip: type it myself"))
        named(self.skip_button, _("Skip: type it myself"), _("Type the whole address yourself"))
        self.use_button.setText(_("Use this"))
        named(self.use_button, _("Use this"), _("Put this place into your answer"))
        self.change_button.setText(_("Change"))
        named(self.change_button, _("Change"), _("Choose the province again"))
        self.previous_button.setText(_("Previous"))
        self.more_button.setText(_("More"))
        self.letter_keys.retranslate()
        self.grid.empty.setText(_("No place matches these letters."))
        self.setAccessibleName(_("Choose your address"))
        self._update_texts()

    # -- steps ---------------------------------------------------------------------------------

    def _reset(self) -> None:
        self._chosen = []
        self._done = False
        self._from_card = False
        self._street_kept = False
        self._filter = ""
        self.letter_keys.hide()

    def _parent(self) -> str | None:
        return self._chosen[-1] if self._chosen else None

    def _options(self) -> tuple[Division, ...]:
        return self._divisions.children(self._parent())

    def _prompt(self) -> str:
        if not self._chosen:
            return _("Choose your province")
        options = self._options()
        if options and all(d.level == COUNTY for d in options):
            return _("Choose your district or county")
        return _("Choose your city")

    def _show_step(self) -> None:
        self._show_step_widgets()
        # Tab goes through the places in their order; the first place takes the focus from the
        # button that just went away (else the focus would wrap round to the window's header).
        places = self.grid.buttons()
        for first, second in pairwise([self.skip_button, *places, self.letters_button]):
            QWidget.setTabOrder(first, second)
        if not self._done and places and self.isVisible():
            self.grid.visible_buttons()[0].setFocus()

    def _show_step_widgets(self) -> None:
        if self._done:
            self.grid.set_buttons([])
            self.grid.hide()
            self.letter_keys.hide()
            self.done_panel.show()
        else:
            self.done_panel.hide()
            self.grid.show()
            self._fill()
        self._update_texts()

    def _fill(self) -> None:
        options = [d for d in self._options() if matches(d, self._filter)]
        buttons = []
        for division in options:
            widget = ValueButton(button_text(division), division.code, name="place")
            named(widget, division.name, _("Choose this place"))
            widget.picked.connect(self._choose)
            buttons.append(widget)
        self.grid.set_buttons(buttons)
        following = {
            d.initials[len(self._filter)] for d in options if len(d.initials) > len(self._filter)
        }
        self.letter_keys.allow(following)

    def _update_texts(self) -> None:
        region = self.region()
        if self._done:
            self.crumb.setText(_("Chosen: {region}").format(region=region))
            self.chosen_label.setText(region)
            if self._from_card:
                self.hint.setText(_("From your ID card. Is this where you live?"))
            elif self._street_kept:
                self.hint.setText(
                    _("The street after it is selected: write or type to replace it.")
                )
            else:
                self.hint.setText(_("This is in your answer. Now type the street and number."))
            self.use_button.setVisible(self._from_card)
        elif region:
            self.crumb.setText(f"{region} › {self._prompt()}")
        else:
            self.crumb.setText(self._prompt())
        named(self.crumb, self.crumb.text())
        # Once chosen, the place stands large in the panel below: the line above would say it
        # twice and take a row the panel needs.
        self.crumb.setVisible(not self._done)
        self.back_button.setEnabled(bool(self._chosen))
        letters = not self.letter_keys.isHidden()
        self.letters_button.setText(_("Hide letters") if letters else _("Find by letters"))
        named(
            self.letters_button,
            self.letters_button.text(),
            _("Narrow the list by the first letters of the pinyin"),
        )
        self.letters_button.setVisible(not self._done)
        if self._filter:
            self.filter_label.setText(_("Letters: {letters}").format(letters=self._filter.upper()))
        else:
            self.filter_label.clear()
        # The keypad or the done panel came or went: give the grid its new room now, so the
        # pages are right before the next touch.
        self._outer.activate()
        self._update_pages()

    def _update_pages(self) -> None:
        count = self.grid.page_count() if not self._done else 1
        paged = count > 1
        for widget in (self.previous_button, self.more_button, self.page_label):
            widget.setVisible(paged)
        if not paged:
            self.page_label.clear()
            return
        status = _("Page {number} of {total}").format(number=self.grid.page() + 1, total=count)
        self.page_label.setText(status)
        self.previous_button.setEnabled(self.grid.page() > 0)
        self.more_button.setEnabled(self.grid.page() + 1 < count)
        named(self.previous_button, _("Previous page"), status)
        named(self.more_button, _("Next page"), status)

    # -- what a touch does ---------------------------------------------------------------------

    def _choose(self, code: str) -> None:
        self._chosen.append(code)
        self._filter = ""
        self.letter_keys.hide()
        if not self._divisions.children(code):
            self._done = True
            self._from_card = False
            self._put()
            self._show_step()
        else:
            self._show_step()
        self.said.emit(self.spoken_text())

    def back(self) -> None:
        """One step back: from the chosen county to the county list, and so on up."""
        if not self._chosen:
            return
        left = self._chosen.pop()
        self._done = False
        self._from_card = False
        self._filter = ""
        self._show_step()
        self.grid.show_button(left)
        self.said.emit(self.spoken_text())

    def change(self) -> None:
        """Start again from the provinces."""
        self._reset()
        self._show_step()
        self.said.emit(self.spoken_text())

    def use(self) -> None:
        """Confirm what the card chose: put it into the answer."""
        self._from_card = False
        self._put()
        self._update_texts()
        self.said.emit(self.spoken_text())

    def skip(self) -> None:
        self.letter_keys.hide()
        self._update_texts()
        if self._target is not None:
            self._target.setFocus()
        self.skipped.emit()

    def toggle_letters(self) -> None:
        self.letter_keys.setVisible(self.letter_keys.isHidden())
        self._update_texts()

    def previous_page(self) -> None:
        self.grid.turn(-1)

    def next_page(self) -> None:
        self.grid.turn(1)

    def _letter(self, value: str) -> None:
        if value == DELETE:
            self._filter = self._filter[:-1]
        elif value == CLEAR:
            self._filter = ""
        else:
            self._filter += value
        self._fill()
        self._update_texts()

    def _put(self) -> None:
        """The region into the field, in place of any region already there; the street typed
        after it stays, and the cursor goes after the region."""
        region = self.region()
        street = ""
        if self._target is not None:
            current = self._target.text()
            street = self._divisions.match_address(current).street if current else ""
            self._target.setText(region + street)
            if street:  # selected: what is written or typed next replaces it, Next keeps it
                self._target.setSelection(len(region), len(street))
            else:
                self._target.setCursorPosition(len(region))
            self._target.setFocus()
        self._street_kept = bool(street)
        self.picked.emit(region)

    def _target_gone(self) -> None:
        self._target = None
