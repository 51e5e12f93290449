"""Ways to type Chinese by touch on a question page: handwriting, pinyin keys, and for an address
the division picker. The page's answer field stays the one place the answer is; each way only
writes into it.

The panels are made the first time a text question needs them and kept for the terminal's life
(the pinyin keyboard's QML scene takes a while to build); every visit's end wipes them.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import QBoxLayout, QLineEdit, QStackedWidget, QWidget

from kiosk.i18n import _
from ui.theme import Palette
from ui.widgets import ChoiceButton, button, label

log = logging.getLogger(__name__)

HANDWRITING = "handwriting"
PINYIN = "pinyin"
ADDRESS = "address"
PanelFactory = Callable[[QWidget], QWidget]


def _handwriting(parent: QWidget) -> QWidget:
    from ui.handwriting import HandwritingPad

    return HandwritingPad(parent=parent)


def _pinyin(parent: QWidget) -> QWidget:
    from ui.pinyin_keyboard import PinyinKeyboard

    return PinyinKeyboard(parent)


def _address(parent: QWidget) -> QWidget:
    from ui.address_picker import AddressPicker

    return AddressPicker(parent)


DEFAULT_FACTORIES: dict[str, PanelFactory] = {
    HANDWRITING: _handwriting,
    PINYIN: _pinyin,
    ADDRESS: _address,
}


class TextInputs(QWidget):
    """The mode buttons, a line saying which ways the question accepts, and the panel in use."""

    help_requested = Signal()
    mode_changed = Signal(str)
    said = Signal(str)  # a panel moved on by itself (the picker's next step): say this

    def __init__(
        self, parent: QWidget, factories: dict[str, PanelFactory] | None = None
    ) -> None:
        super().__init__(parent)
        self.setObjectName("text_inputs")
        self._factories = dict(DEFAULT_FACTORIES if factories is None else factories)
        self._panels: dict[str, QWidget] = {}
        self._line: QLineEdit | None = None
        self._language = "zh_CN"
        self._modes: list[str] = []
        self._mode = ""
        self._card_address: str | None = None
        self._palette = Palette()
        self._hint = ""
        self._switching = False
        layout = QBoxLayout(QBoxLayout.Direction.TopToBottom, self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(8)
        # Which ways the question accepts: said aloud and told to a screen reader; not a line of
        # its own (the panel needs the room), and the mode buttons show them.
        self.ways = label(name="help")
        self.ways.setParent(self)
        self.ways.hide()
        row = QBoxLayout(QBoxLayout.Direction.LeftToRight)
        row.setSpacing(12)
        self.mode_buttons: dict[str, ChoiceButton] = {}
        for mode in (ADDRESS, HANDWRITING, PINYIN):
            # one way at a time: a screen reader reads them as radio buttons
            widget = ChoiceButton("", mode, name="choice")
            widget.setFocusPolicy(Qt.FocusPolicy.TabFocus)  # a tap leaves the cursor in the field
            widget.picked.connect(self.set_mode)
            row.addWidget(widget)
            self.mode_buttons[mode] = widget
        row.addStretch(1)
        self.help_button = button("", self.help_requested, name="ask_staff")
        row.addWidget(self.help_button)
        layout.addLayout(row)
        self.stack = QStackedWidget(self)
        layout.addWidget(self.stack, 1)
        self.retranslate()
        self.hide()

    # -- what the question page asks ------------------------------------------------------------

    def show_for(
        self,
        line: QLineEdit,
        kind: str,
        language: str,
        card_address: str | None = None,
        hint: str = "",
    ) -> None:
        """Offer the ways for a question of this kind ("text" or "address") typing into line.
        `hint`: what the empty field shows (the question's help); the ways it accepts otherwise."""
        self._line = line
        self._hint = hint
        self._language = language
        self._card_address = card_address
        self._modes = [ADDRESS, HANDWRITING, PINYIN] if kind == ADDRESS else [HANDWRITING, PINYIN]
        if language != "zh_CN" and kind != ADDRESS:
            self._modes = [PINYIN, HANDWRITING]  # latin letters first for an English speaker
        for mode, widget in self.mode_buttons.items():
            widget.setVisible(mode in self._modes)
        self.retranslate()
        self.show()
        self.set_mode(self._modes[0])

    def show_hint_in_field(self, shown: bool) -> None:
        """The page has no room for the question's help above the field: show it in the empty
        field when it fits there whole (a hint cut short helps nobody)."""
        line = self._line
        if line is None:
            return
        text = self._hint if shown else ""
        room = line.contentsRect().width() - 48  # the field's own padding and cursor
        if text and line.fontMetrics().horizontalAdvance(text) > room:
            text = ""
        line.setPlaceholderText(text)
        if text:
            colours = line.palette()  # the theme's muted colour (7:1), not Qt's pale grey
            colours.setColor(QPalette.ColorRole.PlaceholderText, QColor(self._palette.muted))
            line.setPalette(colours)

    def hide_inputs(self) -> None:
        """A question without text: no panel, nobody served."""
        for panel in self._panels.values():
            self._serve(panel, None)
        if self._line is not None:
            self._line.setPlaceholderText("")
        self._line = None
        self._mode = ""
        self.hide()

    @property
    def mode(self) -> str:
        return self._mode

    def panel(self, mode: str) -> QWidget | None:
        return self._panels.get(mode)

    def set_mode(self, mode: str) -> None:
        if mode not in self._modes or self._line is None or self._switching:
            return
        self._switching = True
        try:
            self._set_mode(mode)
        finally:
            self._switching = False

    def _set_mode(self, mode: str) -> None:
        for other, panel in self._panels.items():
            if other != mode:
                self._serve(panel, None)
        panel = self._panel(mode)
        self._mode = mode
        self.mode_buttons[mode].setChecked(True)  # the others uncheck: one group
        if panel is None:
            return
        self.stack.setCurrentWidget(panel)
        if mode == PINYIN:
            panel.set_language(self._language)  # type: ignore[attr-defined]
        if mode == ADDRESS:
            panel.preselect_from(self._card_address)  # type: ignore[attr-defined]
        self._serve(panel, self._line)
        panel.show()
        self._line.setFocus(Qt.FocusReason.OtherFocusReason)
        self.mode_changed.emit(mode)

    def _panel(self, mode: str) -> QWidget | None:
        panel = self._panels.get(mode)
        if panel is not None:
            return panel
        try:
            panel = self._factories[mode](self.stack)
        except Exception as exc:  # a missing recognizer or QML module: the other ways remain
            log.error("text input %s unavailable: %s", mode, exc)
            self.mode_buttons[mode].setEnabled(False)
            return None
        self.stack.addWidget(panel)
        self._panels[mode] = panel
        if mode == ADDRESS:
            panel.skipped.connect(self._address_skipped)  # type: ignore[attr-defined]
            panel.said.connect(self.said)  # type: ignore[attr-defined]
        if mode == HANDWRITING:
            panel.unavailable.connect(self._handwriting_unavailable)  # type: ignore[attr-defined]
        return panel

    @staticmethod
    def _serve(panel: QWidget, line: QLineEdit | None) -> None:
        panel.set_target(line)  # type: ignore[attr-defined]

    def _address_skipped(self) -> None:
        self.set_mode(HANDWRITING if self._language == "zh_CN" else PINYIN)

    def _handwriting_unavailable(self, _message: str) -> None:
        self.mode_buttons[HANDWRITING].setEnabled(False)
        if self._mode == HANDWRITING:
            self.set_mode(PINYIN)

    # -- the terminal's life ----------------------------------------------------------------------

    def set_colors(self, palette: Palette) -> None:
        self._palette = palette
        pad = self._panels.get(HANDWRITING)
        if pad is not None:
            pad.set_colors(palette)  # type: ignore[attr-defined]

    def retranslate(self) -> None:
        texts = {
            ADDRESS: _("Place"),
            HANDWRITING: _("Handwriting"),
            PINYIN: _("Pinyin keys") if self._language == "zh_CN" else _("Keyboard"),
        }
        for mode, widget in self.mode_buttons.items():
            widget.setText(texts[mode])
            widget.setAccessibleName(texts[mode])
        self.help_button.setText(_("Ask staff"))
        self.help_button.setAccessibleName(_("Ask staff to help"))
        if ADDRESS in self._modes:
            self.ways.setText(
                _("Choose the province, city and county, then write or type the street.")
            )
        else:
            self.ways.setText(_("You can write the characters by hand or type them in pinyin."))
        if self._line is not None:
            self._line.setAccessibleDescription(
                "\n".join(t for t in (self._hint, self.ways.text()) if t)
            )
        for panel in self._panels.values():
            panel.retranslate()  # type: ignore[attr-defined]

    def spoken_text(self) -> str:
        parts = [self.ways.text()]
        panel = self._panels.get(self._mode)
        if panel is not None:
            parts.append(panel.spoken_text())  # type: ignore[attr-defined]
        said = []
        for part in (p.strip() for p in parts):
            if part:  # each a sentence, once: no "。。"
                said.append(part if part[-1] in "。.!?！？：:" else part + "。")
        return " ".join(said)

    def wipe(self) -> None:
        """The visit ended: every panel forgets its strokes, candidates and chosen place."""
        for panel in self._panels.values():
            panel.wipe()  # type: ignore[attr-defined]
            self._serve(panel, None)
        if self._line is not None:
            self._line.setPlaceholderText("")
        self._line = None
        self._card_address = None
        self._mode = ""
        self.hide()

    def shutdown(self) -> None:
        pad = self._panels.get(HANDWRITING)
        if pad is not None:
            pad.shutdown()  # type: ignore[attr-defined]
