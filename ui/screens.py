"""The pages of a visit. Each page shows what it is given and reports what the person chose;
the window decides what happens next.

Every page fits the panel: nothing scrolls. Long content (the services, a question's options, the
guide, the answers to check) is paged by a Pager, which works its pages out again whenever the
page is resized or the text size changes."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from itertools import pairwise
from typing import TYPE_CHECKING

from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtGui import QKeyEvent, QKeySequence, QPixmap, QResizeEvent, QShortcut, QShowEvent
from PySide6.QtWidgets import (
    QBoxLayout,
    QFrame,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from kiosk.i18n import N_, _, current_language, pick
from ui.date_picker import DatePicker, parse_date
from ui.rating import FaceButton, RatingChoice, RatingFollowUp
from ui.receipt_qr import ReceiptQr
from ui.text_input import TextInputs
from ui.theme import Palette
from ui.widgets import (
    GROUPS,
    CardAnimation,
    Choices,
    ErrorSummary,
    Keypad,
    Pager,
    TextGroup,
    ValueButton,
    WrappingButton,
    blank,
    button,
    group_digits,
    label,
    named,
    read_in_layout_order,
)

if TYPE_CHECKING:  # the first screen is drawn before forms and schemas load
    from kiosk.catalogue import Question, Service
    from kiosk.forms import FieldError

__all__ = ["blank", "clear_layout", "shortcut"]

PHOTO_BOX = QSize(204, 252)  # twice the 102×126 of a resident ID card's photo
NUMERIC = ("phone", "number", "id_number")
TYPED = ("text", "address")  # room is left under these for pinyin, handwriting, address panels


class Page(QWidget):
    """A page: its title, a body that fits the panel, and a row of large buttons at the bottom."""

    said = Signal(str)  # read this aloud: the person turned a page of a long list

    def __init__(self) -> None:
        super().__init__()
        self.outer = QVBoxLayout(self)
        self.outer.setContentsMargins(40, 12, 40, 12)
        self.outer.setSpacing(12)
        self.title = label(name="title")
        self.outer.addWidget(self.title)
        self.body_widget = QWidget()
        self.body = QVBoxLayout(self.body_widget)
        self.body.setContentsMargins(0, 0, 0, 0)
        self.body.setSpacing(14)
        self.outer.addWidget(self.body_widget, 1)
        self.actions = QHBoxLayout()
        self.actions.setSpacing(24)
        self.outer.addLayout(self.actions)

    def pager(self) -> Pager:
        """A pager for this page's long content; its page turns are read aloud."""
        pager = Pager(self.body_widget)
        pager.page_changed.connect(self._turned)
        return pager

    def _turned(self) -> None:
        self.said.emit(self.spoken_text())

    def tab_order(self, *widgets: QWidget) -> None:
        """Tab goes through these in this order (the page's content, its page buttons, then its
        actions), whatever order they were made in."""
        chain = [w for w in widgets if w.focusPolicy() != Qt.FocusPolicy.NoFocus]
        for first, second in pairwise(chain):
            QWidget.setTabOrder(first, second)

    def refit(self) -> None:
        """Work out the pages of long content again (after the text size changed; resizes and
        style changes are noticed by the pagers themselves)."""
        for pager in self.findChildren(Pager):
            pager.refit()

    def spoken_text(self) -> str:
        return self.title.text()

    def in_reading_order(self) -> None:
        """A screen reader reads the page in the order it is shown: the heading, the content
        (a long list before its page buttons), then the buttons at the bottom. (Qt tells it the
        widgets in the order they were made, not as laid out.)"""
        read_in_layout_order(self)

    def keyPressEvent(self, event: QKeyEvent) -> None:
        """PageDown/PageUp turn the page's list wherever the focus is (on Submit, say)."""
        if event.key() in (Qt.Key.Key_PageDown, Qt.Key.Key_PageUp):
            pagers = [p for p in self.findChildren(Pager) if p.isVisible() and p.page_count() > 1]
            if pagers:
                pager = pagers[0]
                (pager.more if event.key() == Qt.Key.Key_PageDown else pager.previous)()
                return
        super().keyPressEvent(event)

    def showEvent(self, event: QShowEvent) -> None:
        self.in_reading_order()
        super().showEvent(event)


def sentences(*parts: str) -> str:
    """Texts read one after another, each ending as a sentence (with the full stop of the
    language shown)."""
    stop = "。" if current_language().startswith("zh") else "."
    said = []
    for part in parts:
        text = part.strip()
        if text:
            said.append(text if text[-1] in "。.!?！？：:" else text + stop)
    return " ".join(said)


def shown_names(pager: Pager) -> list[str]:
    """What the items on the page shown say: each item's accessible name, or that of the text
    in it read as one (a review row's, beside its Change button)."""
    said = []
    for widget in pager.visible_items():
        name = widget.accessibleName() or next(
            (g.accessibleName() for g in widget.findChildren(TextGroup) if g.accessibleName()), ""
        )
        if name:
            said.append(name)
    return said


def clear_layout(layout: QVBoxLayout | QHBoxLayout) -> None:
    """Take every widget out of the layout. Each is hidden and emptied now (nothing personal
    lingers until Qt deletes it) and deleted by Qt on the GUI thread, never handed to Python:
    the widget may be the one whose click brought us here."""
    while layout.count():
        item = layout.takeAt(0)
        widget = item.widget()
        if widget is not None:
            widget.hide()
            blank(widget)
            widget.deleteLater()
        elif item.layout() is not None:
            clear_layout(item.layout())  # type: ignore[arg-type]
            item.layout().deleteLater()


class WelcomePage(Page):
    demo_card = Signal()
    browse = Signal()  # the service guide, without a card

    def __init__(self, demo: bool) -> None:
        super().__init__()
        self.staff_view = False
        self.instruction = label(name="question")
        self.instruction.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.card_art = CardAnimation(Palette().primary, Palette().header)
        self.hint = label(name="help")
        self.hint.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.message = label(name="field_error")
        self.message.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.message.hide()
        self.body.addStretch(1)
        self.body.addWidget(self.instruction)
        self.body.addWidget(self.card_art, 0, Qt.AlignmentFlag.AlignHCenter)
        self.body.addWidget(self.hint)
        self.body.addWidget(self.message)
        self.body.addStretch(1)
        # Ways in without a card, at the bottom left: the service guide, and the case lookup
        # (add_way_in). They share the row of the page's action while it has room, and take a
        # row of their own above it when it has not (a portrait panel in English).
        self.ways = QHBoxLayout()
        self.ways.setSpacing(24)
        self.ways.addStretch(1)
        self.outer.insertLayout(self.outer.indexOf(self.body_widget) + 1, self.ways)
        self.browse_button = button("", self.browse, name="browse_guide")
        self._way_buttons: list[QPushButton] = [self.browse_button]
        self.actions.addWidget(self.browse_button)
        self._ways_apart = False
        self.actions.addStretch(1)
        self.demo_button: QPushButton | None = None
        if demo:
            self.demo_button = button("", self.demo_card, name="primary")
            self.actions.addWidget(self.demo_button)

    def set_staff_view(self, staff_view: bool) -> None:
        """Worded for staff at a counter or service point, or for a citizen at a kiosk."""
        self.staff_view = staff_view
        self.retranslate()

    def add_way_in(self, widget: QPushButton) -> None:
        """Another journey that starts here without a card (beside the service guide)."""
        self._way_buttons.append(widget)
        target = self.ways if self._ways_apart else self.actions
        target.insertWidget(len(self._way_buttons) - 1, widget)
        self._place_ways(self.width())
        self.in_reading_order()

    def _place_ways(self, width: int) -> None:
        """The ways in beside the page's action when all fit the width, else on their own row."""
        others = [
            self.actions.itemAt(i).widget()
            for i in range(self.actions.count())
            if self.actions.itemAt(i).widget() is not None
            and self.actions.itemAt(i).widget() not in self._way_buttons
        ]
        spacing = max(self.actions.spacing(), 0)
        buttons = [*self._way_buttons, *others]
        needed = sum(b.sizeHint().width() for b in buttons) + spacing * len(buttons)
        margins = self.outer.contentsMargins()
        apart = needed > width - margins.left() - margins.right()
        if apart == self._ways_apart:
            return
        self._ways_apart = apart
        source, target = (self.actions, self.ways) if apart else (self.ways, self.actions)
        for index, widget in enumerate(self._way_buttons):
            source.removeWidget(widget)
            target.insertWidget(index, widget)
        self.in_reading_order()

    def resizeEvent(self, event: QResizeEvent) -> None:
        self._place_ways(event.size().width())
        super().resizeEvent(event)

    def refit(self) -> None:
        super().refit()
        self._place_ways(self.width())  # the text size changed the buttons' widths

    def showEvent(self, event: QShowEvent) -> None:
        super().showEvent(event)
        # Return on a keyboard does what the page offers, not what the header's first button does
        (self.demo_button or self.browse_button).setFocus()

    def set_colors(self, palette: Palette) -> None:
        """The card drawn on the reader in the palette's colours (visible in high contrast)."""
        reader = palette.header if palette.background != palette.header else palette.text
        self.card_art.set_colors(palette.primary, reader, palette.background)

    def retranslate(self) -> None:
        self.browse_button.setText(_("Service guide"))
        named(
            self.browse_button,
            self.browse_button.text(),
            _("Read or listen to what each service needs, without an ID card"),
        )
        if self.staff_view:  # a counter or service point: staff read the applicant's card
            self.title.setText(_("Assisted applications"))
            self.instruction.setText(_("Place the applicant's ID card on the reader"))
            self.hint.setText(
                _("Then choose the service and type every answer on one page; "
                  "the applicant checks it and signs.")
            )
        else:
            self.title.setText(_("Welcome"))
            self.instruction.setText(_("Please place your ID card on the reader"))
            self.hint.setText(
                _("The reader is below the screen. Keep the card still until you hear a sound.")
            )
        if self.demo_button is not None:
            self.demo_button.setText(_("Demo ID card (F2)"))
            named(self.demo_button, self.demo_button.text(), _("Starts a visit with a demo card"))
        self._place_ways(self.width())  # the words' widths changed with the language
        self.animate()

    def animate(self) -> None:
        """One step of the card gliding onto the reader; driven by the window's timer."""
        self.card_art.advance()

    def show_message(self, text: str) -> None:
        self.message.setText(text)
        self.message.setVisible(bool(text))

    def spoken_text(self) -> str:
        # read as shown, in order (a message of how the last visit ended is said on its own)
        return sentences(self.instruction.text(), self.hint.text())


class ServicesPage(Page):
    chosen = Signal(str)
    end = Signal()

    def __init__(self) -> None:
        super().__init__()
        # Every widget is in a layout (so it has a parent) from the start.
        self.head = QVBoxLayout()
        self.head.setSpacing(8)
        self.greeting = label()
        self.masked_id = label(name="help")
        for widget in (self.greeting, self.masked_id):
            self.head.addWidget(widget)
        self.body.addLayout(self.head)
        self.list = self.pager()
        self.body.addWidget(self.list, 1)
        self.end_button = button("", self.end)
        self.actions.addWidget(self.end_button)
        self.actions.addStretch(1)
        self.service_buttons: list[WrappingButton] = []
        self.photo: QLabel | None = None

    def show_services(
        self,
        greeting: str,
        masked_id: str,
        services: Sequence[Service],
        *,
        with_photo: bool = False,
    ) -> None:
        clear_layout(self.head)
        self.greeting = label(greeting)
        self.masked_id = label(masked_id, name="help")
        self.photo = None
        if with_photo:
            # Staff compare the face in front of them with the card's photo.
            row = QHBoxLayout()
            names = QVBoxLayout()
            names.addWidget(self.greeting)
            names.addWidget(self.masked_id)
            names.addStretch(1)
            row.addLayout(names, 1)
            self.photo = label(_("Loading the photo…"), name="photo")
            self.photo.setFixedSize(PHOTO_BOX)
            self.photo.setAlignment(Qt.AlignmentFlag.AlignCenter)
            row.addWidget(self.photo)
            self.head.addLayout(row)
        else:
            # one line for both where it fits: the room below is the services'
            row = QHBoxLayout()
            row.setSpacing(32)
            row.addWidget(self.greeting)
            row.addWidget(self.masked_id, 1, Qt.AlignmentFlag.AlignBottom)
            self.head.addLayout(row)
        self.service_buttons = []
        for index, service in enumerate(services, start=1):
            text = f"{index}. {pick(service.name)}"
            summary = pick(service.summary)
            if summary:
                text += f"\n{summary}"
            widget = WrappingButton(text, service.id, name="service")
            widget.picked.connect(self.chosen)
            named(widget, f"{index}. {pick(service.name)}", summary)
            self.service_buttons.append(widget)
        self.list.set_items(self.service_buttons)
        self.tab_order(
            *self.service_buttons,
            self.list.previous_button,
            self.list.more_button,
            self.end_button,
        )
        self.title.setText(_("Choose a service"))
        self.end_button.setText(_("End my visit"))
        named(self.end_button, self.end_button.text(), _("Your information is cleared"))
        self.in_reading_order()
        if self.service_buttons:
            self.service_buttons[0].setFocus()

    def show_photo(self, image: bytes | None) -> None:
        """The holder's photo, or a placeholder saying why there is none."""
        if self.photo is None:
            return
        pixmap = QPixmap()
        if image and pixmap.loadFromData(image):
            self.photo.setPixmap(
                pixmap.scaled(
                    PHOTO_BOX,
                    Qt.AspectRatioMode.KeepAspectRatio,
                    Qt.TransformationMode.SmoothTransformation,
                )
            )
            self.photo.setAccessibleName(_("Photo from the card"))
        else:
            self.photo.setText(_("The card's photo cannot be shown on this terminal."))
            self.photo.setWordWrap(True)

    def spoken_text(self) -> str:
        # The greeting is not read out: the name is personal, and the hall can hear.
        return sentences(
            _("Please choose what you would like to do today:"),
            *shown_names(self.list),
            self.list.status_text(),
        )


class GuidePage(Page):
    back = Signal()
    start = Signal()

    def __init__(self) -> None:
        super().__init__()
        self.sections = self.pager()
        self.body.addWidget(self.sections, 1)
        self.back_button = button("", self.back)
        self.start_button = button("", self.start, name="primary")
        self.actions.addWidget(self.back_button)
        self.actions.addStretch(1)
        self.actions.addWidget(self.start_button)

    def show_guide(self, service: Service) -> None:
        self.title.setText(pick(service.name))
        guide = service.guide
        items: list[QWidget] = [
            _section(_("Who it is for"), pick(guide.audience)),
            _section(_("What to bring"), ""),
        ]
        items[-1].setProperty("keep_with_next", True)
        items += [_section("", f"• {pick(m)}") for m in guide.materials]
        items += [
            _section(_("Fee"), pick(guide.fee)),
            _section(_("Time limit"), pick(guide.time_limit)),
            _section(_("Where to collect the result"), pick(guide.collection)),
        ]
        if service.department:
            items.append(_section(_("Handled by"), pick(service.department)))
        self.sections.set_items(items)
        self.back_button.setText(_("Back"))
        named(self.back_button, self.back_button.text(), _("Back to the list of services"))
        self.tab_order(
            self.sections.previous_button,
            self.sections.more_button,
            self.back_button,
            self.start_button,
        )
        self.start_button.setText(_("Start the application"))
        named(self.start_button, self.start_button.text(), _("The questions begin"))
        self.in_reading_order()
        self.start_button.setFocus()

    def wipe(self) -> None:
        """The service chosen is the last visit's: forget it too."""
        self.sections.clear()
        self.title.clear()

    def spoken_text(self) -> str:
        return sentences(
            self.title.text(), *shown_names(self.sections), self.sections.status_text()
        )


def _section(heading: str, text: str) -> QWidget:
    """One part of a service guide: a heading and its text (either may be empty), read as one."""
    widget = TextGroup()
    layout = QVBoxLayout(widget)
    layout.setContentsMargins(0, 0, 0, 0)
    layout.setSpacing(4)
    if heading:
        layout.addWidget(label(heading, name="question"))
    if text:
        layout.addWidget(label(text))
    widget.setAccessibleName(sentences(heading, text))
    return widget


class QuestionPage(Page):
    """One question a page: the question is the heading with its help under it, the answer
    below, its keypad beside them on a landscape panel and under the field on a portrait one;
    the progress is a smaller line between Back and Next."""

    back = Signal()
    next = Signal()
    help_requested = Signal()  # "ask staff to help" beside the typing panels

    def __init__(self, text_inputs: Callable[[QWidget], TextInputs] | None = None) -> None:
        """`text_inputs` makes the typing panels (handwriting, pinyin, address) the first time a
        text question is shown; the default makes the real ones."""
        super().__init__()
        self._make_text_inputs = text_inputs or TextInputs
        self.text_inputs: TextInputs | None = None
        self._card_address: str | None = None
        self._showing = False  # inside show_question: panels settling are not news to say
        self.question = self.title  # the question is the page's heading
        self.help = label(name="help")
        # a smaller line between Back and Next: the question keeps the room above the answer
        self.progress = label(name="progress", wrap=False)
        self.progress.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.line = QLineEdit()
        self.line.returnPressed.connect(self.next)
        self.line.textChanged.connect(self._text_changed)
        self.date_picker = DatePicker()
        self.date_picker.changed.connect(self.line.setText)
        self.choices = Choices()
        self.choices.chosen.connect(self._chosen)
        self.choices.pager.page_changed.connect(self._turned)
        self.error = label(name="field_error")
        # Empty: the panels for typing Chinese (pinyin, handwriting, an address) are put here.
        self.input_modes = QHBoxLayout()
        self.input_modes.setSpacing(16)
        self.input_holder = QVBoxLayout()
        self.keypad_holder = QVBoxLayout()
        # The question and its help head the answer's column, so that on a landscape panel the
        # keypad beside them has the page's whole height.
        self.outer.removeWidget(self.title)
        self.answer = QVBoxLayout()
        self.answer.setSpacing(8)
        self.answer.addWidget(self.title)
        self.answer.addWidget(self.help)
        for widget in (self.line, self.date_picker, self.choices, self.error):
            self.answer.addWidget(widget)
        self.answer.addLayout(self.input_modes)
        self.answer.addLayout(self.input_holder)
        self.answer.addStretch(1)
        self.row = QBoxLayout(QBoxLayout.Direction.LeftToRight)
        self.row.setSpacing(32)
        self.row.addLayout(self.answer, 3)
        self.row.addLayout(self.keypad_holder, 2)
        self.body.addLayout(self.row, 1)
        self.body.addStretch(0)
        self.keypad: Keypad | None = None
        self.back_button = button("", self.back)
        self.next_button = button("", self.next, name="primary")
        self.actions.addWidget(self.back_button)
        self.actions.addWidget(self.progress, 1)
        self.actions.addWidget(self.next_button)
        self._question: Question | None = None
        self._choice: str | None = None
        self._regrouping = False
        self.date_picker.hide()
        self.choices.hide()

    def set_colors(self, palette: Palette) -> None:
        """The palette changed (high contrast): the handwriting ink and hints follow it."""
        if self.text_inputs is not None:
            self.text_inputs.set_colors(palette)

    def set_card_address(self, address: str | None) -> None:
        """The address on the card read for this visit: the address picker starts from it."""
        self._card_address = address

    def show_question(self, question: Question, value: object, index: int, total: int) -> None:
        self._showing = True
        try:
            self._show_question(question, value, index, total)
        finally:
            self._showing = False

    def _show_question(self, question: Question, value: object, index: int, total: int) -> None:
        self._question = question
        self.progress.setText(
            _("Question {number} of {total}").format(number=index + 1, total=total)
        )
        self.title.setText(pick(question.label))
        self.help.setText(pick(question.help))
        self.back_button.setText(_("Back"))
        named(self.back_button, self.back_button.text(), _("Back to the previous question"))
        self.next_button.setText(_("Next"))
        named(self.next_button, self.next_button.text(), _("Your answer is checked"))
        self.set_error(None)
        self._drop_keypad()
        kind = question.widget
        self.line.setVisible(kind not in ("choice", "yesno", "date"))
        self.choices.setVisible(kind in ("choice", "yesno"))
        self.date_picker.setVisible(kind == "date")
        if kind in ("choice", "yesno"):
            if kind == "yesno":
                options = [("true", _("Yes")), ("false", _("No"))]
                selected = (
                    None if value is None else ("true" if value in (True, "true") else "false")
                )
            else:
                options = [(o.value, pick(o.label)) for o in question.options]
                selected = None if value is None else str(value)
            self._choice = selected
            self.choices.set_options(options, selected)
            pager = self.choices.pager
            self.tab_order(
                *self.choices.buttons(),
                pager.previous_button,
                pager.more_button,
                self.back_button,
                self.next_button,
            )
            buttons = self.choices.buttons()
            if buttons:
                target = next((b for b in buttons if b.isChecked()), buttons[0])
                target.setFocus()
        elif kind == "date":
            self.tab_order(*self.date_picker.buttons.values(), self.back_button, self.next_button)
            self.date_picker.set_value(None if value is None else str(value))
            self.line.setText(self.date_picker.value())
            self.next_button.setFocus()  # Enter takes the date shown, as in a typed field
        else:
            self.line.setText("" if value is None else str(value))
            named(self.line, pick(question.label), pick(question.help))
            if kind in NUMERIC:
                extra = {"id_number": "X", "number": "."}.get(kind, "")
                self.keypad = Keypad(
                    self.line, extra=extra, delete_text=_("Delete"), parent=self.body_widget
                )
                # at the top of its column: its rows do not spread down a tall portrait panel
                self.keypad_holder.addWidget(self.keypad, 0, Qt.AlignmentFlag.AlignTop)
                self.keypad.show()  # now, not on the next pass: keys never appear late
            self.line.setPlaceholderText("")
            self.line.setFocus()
        self._offer_text_inputs(kind)
        self._arrange()
        self.in_reading_order()

    def _offer_text_inputs(self, kind: str) -> None:
        """Handwriting and pinyin for text, and the picker for an address; none otherwise."""
        hints = Qt.InputMethodHint.ImhSensitiveData | Qt.InputMethodHint.ImhNoPredictiveText
        if kind in NUMERIC:
            hints |= Qt.InputMethodHint.ImhDigitsOnly  # its own keypad, not the pinyin keys
        self.line.setInputMethodHints(hints)
        if kind not in TYPED:
            if self.text_inputs is not None:
                self.text_inputs.hide_inputs()
            return
        self.help.hide()  # until _arrange knows it fits beside the panel about to show
        if self.text_inputs is None:
            self.text_inputs = self._make_text_inputs(self.body_widget)
            self.text_inputs.help_requested.connect(self.help_requested)
            self.text_inputs.mode_changed.connect(self._input_mode_changed)
            self.text_inputs.said.connect(self.said)
            self.input_holder.addWidget(self.text_inputs, 1)
        self.text_inputs.show_for(
            self.line, kind, current_language(), self._card_address, hint=self.help.text()
        )
        # Tab from the field goes through the typing modes and the panel, then Back and Next.
        inside = {
            w
            for w in self.text_inputs.findChildren(QWidget)
            if w.focusPolicy() & Qt.FocusPolicy.TabFocus
        }
        order: list[QWidget] = []
        widget = self.text_inputs.nextInFocusChain()
        while widget is not self.text_inputs and len(order) < len(inside):
            if widget in inside and widget not in order:
                order.append(widget)
            widget = widget.nextInFocusChain()
        for first, second in pairwise([self.line, *order, self.back_button, self.next_button]):
            QWidget.setTabOrder(first, second)
        self.line.setFocus()

    def _input_mode_changed(self, _mode: str) -> None:
        # A mode chosen by the citizen is said; the first mode of a new question is part of the
        # question's own spoken text (said once the page is shown).
        if self.isVisible() and self.text_inputs is not None and not self._showing:
            self.said.emit(self.text_inputs.spoken_text())

    def _arrange(self) -> None:
        """Where the room goes: to the options or the typing panels, or nowhere (the field and
        its keypad sit at the top); and the keypad beside the field or under it."""
        kind = self._question.widget if self._question is not None else ""
        landscape = self.width() > self.height()
        self.row.setDirection(
            QBoxLayout.Direction.LeftToRight if landscape else QBoxLayout.Direction.TopToBottom
        )
        # Beside a keypad on a landscape panel the room is short: an error message stands in
        # for the help while it is shown.
        crowded = landscape and self.keypad is not None and self.error.isVisibleTo(self)
        # Over a typing panel the height may be short (a landscape panel, large text): then the
        # help gives its line to the panel; it is still read aloud, told to a screen reader and,
        # where it fits, shown in the empty field.
        if kind in TYPED and not crowded and self.help.text():
            crowded = not self._room_for_help()
        if self.text_inputs is not None:
            self.text_inputs.show_hint_in_field(kind in TYPED and crowded)
        self.help.setVisible(bool(self.help.text()) and not crowded)
        margins = self.outer.contentsMargins()
        self.date_picker.fit_width(self.width() - margins.left() - margins.right())
        grows = kind in ("choice", "yesno") or kind in TYPED
        self.answer.setStretchFactor(self.choices, 1 if kind in ("choice", "yesno") else 0)
        self.answer.setStretchFactor(self.input_holder, 1 if kind in TYPED else 0)
        self.answer.setStretch(self.answer.count() - 1, 0 if grows else 1)
        self.row.setStretch(0, 3)
        self.row.setStretch(1, 2 if self.keypad is not None else 0)
        self.body.setStretch(0, 1 if grows or landscape else 0)  # the answer row
        self.body.setStretch(1, 0 if grows or landscape else 1)  # the room under it

    def _room_for_help(self) -> bool:
        """Whether the page, help line included, fits the height it has."""
        layout = self.layout()
        if layout is None or self.height() <= 0:
            return True
        # Measured without the help line (shown only once it is known to fit: a page that
        # overflowed for a moment would have grown the window for good).
        self.help.hide()
        layout.activate()
        width = max(1, self.line.width())
        needed = (
            layout.minimumSize().height()
            + self.help.heightForWidth(width)
            + self.answer.spacing()
        )
        return needed <= self.height()

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        self._arrange()

    def holds(self, question: Question) -> bool:
        """Whether this question is the one on the page (and its answer may be half typed)."""
        return self._question is question

    def _drop_keypad(self) -> None:
        if self.keypad is not None:
            self.keypad_holder.removeWidget(self.keypad)
            self.keypad.hide()
            self.keypad.deleteLater()
            self.keypad = None

    def wipe(self) -> None:
        """Forget the answer being typed or chosen, with the field's undo history."""
        self._question = None
        self._choice = None
        self.line.setText("")  # clear() could be undone; setText empties the undo history
        self.line.setAccessibleName("")
        self.line.setAccessibleDescription("")
        self.choices.set_options((), None)
        self.date_picker.set_value(None)
        self._card_address = None
        if self.text_inputs is not None:
            self.text_inputs.wipe()
        self.question.clear()
        self.help.clear()
        self.progress.clear()
        self.set_error(None)
        self._drop_keypad()

    def value(self) -> object:
        if self._question is None:
            return None
        if self._question.widget == "yesno":
            return None if self._choice is None else self._choice == "true"
        if self._question.widget == "choice":
            return self._choice
        if self._question.widget in GROUPS:
            return "".join(self.line.text().split())  # shown in groups, kept as digits
        return self.line.text()

    def _chosen(self, value: str) -> None:
        self._choice = value

    def _text_changed(self, text: str) -> None:
        question = self._question
        if question is None or self._regrouping:
            return
        if question.widget == "date":
            if parse_date(text) is not None:
                self.date_picker.set_value(text)
            return
        sizes = GROUPS.get(question.widget)
        if sizes is None:
            return
        grouped = group_digits(text, sizes)
        if grouped == text:
            return
        # the cursor stays after the same digit it was after
        before = len("".join(text[: self.line.cursorPosition()].split()))
        position = 0
        while before and position < len(grouped):
            if not grouped[position].isspace():
                before -= 1
            position += 1
        self._regrouping = True
        try:
            self.line.setText(grouped)
            self.line.setCursorPosition(position)
        finally:
            self._regrouping = False

    def set_error(self, error: FieldError | None) -> None:
        # One question a page: the message stands once, under the answer it is about (a summary
        # above the question as well would push the keypad off a landscape panel).
        if error is None:
            self.error.clear()
            self.error.hide()
            self.line.setProperty("invalid", False)
            self.line.setAccessibleDescription(self.help.text())
        else:
            self.error.setText("⚠ " + error.message)
            self.error.show()
            self.line.setProperty("invalid", True)
            self.line.setAccessibleDescription(error.message)
        self._arrange()
        self.line.style().unpolish(self.line)
        self.line.style().polish(self.line)

    def spoken_text(self) -> str:
        parts = [self.question.text()]
        if self._question is not None and pick(self._question.help):
            parts.append(self.help.text())  # read even when an error stands in for it
        parts.append(self.progress.text())
        question = self._question
        if question is not None and question.widget in ("choice", "yesno"):
            parts += self.choices.shown_texts()
            parts.append(self.choices.pager.status_text())
        elif question is not None and question.widget == "date":
            parts.append(self.date_picker.spoken_text())
        elif question is not None and question.widget in TYPED and self.text_inputs is not None:
            parts.append(self.text_inputs.spoken_text())
        if self.error.isVisibleTo(self):
            parts.append(self.error.text())
        return sentences(*parts)


class ReviewPage(Page):
    back = Signal()
    submit = Signal()
    edit = Signal(str)

    def __init__(self) -> None:
        super().__init__()
        self.back_button = button("", self.back)
        self.submit_button = button("", self.submit, name="primary")
        self.actions.addWidget(self.back_button)
        self.actions.addStretch(1)
        self.actions.addWidget(self.submit_button)
        self.summary = ErrorSummary()
        self.body.addWidget(self.summary)
        self.service_name = label(name="question")
        self.body.addWidget(self.service_name)
        self.rows = self.pager()
        self.body.addWidget(self.rows, 1)
        self.edit_buttons: dict[str, ValueButton] = {}

    def show_review(
        self,
        service: Service,
        answers: dict[str, object],
        errors: Sequence[FieldError],
        masked: Callable[[Question, object], str],
    ) -> None:
        self.summary.clear()
        self.title.setText(_("Please check your answers"))
        self.service_name.setText(pick(service.name))
        by_field = {e.field: e for e in errors}
        self.edit_buttons = {}
        rows: list[QWidget] = []
        for question in service.questions:
            row_widget = QWidget()
            row = QHBoxLayout(row_widget)
            row.setContentsMargins(0, 0, 0, 0)
            # the question, the answer and what is wrong with it: one item to a screen reader
            said_widget = TextGroup()
            text = QVBoxLayout(said_widget)
            text.setContentsMargins(0, 0, 0, 0)
            text.setSpacing(2)
            text.addWidget(label(pick(question.label), name="help"))
            shown = masked(question, answers.get(question.field))
            text.addWidget(label(shown))
            said = [pick(question.label), shown]
            if question.field in by_field:
                problem = "⚠ " + by_field[question.field].message
                text.addWidget(label(problem, name="field_error"))
                said.append(problem)
            row.addWidget(said_widget, 1)
            if question.readonly:
                row.addWidget(label(_("From your ID card"), name="muted", wrap=False))
            else:
                edit = ValueButton(_("Change"), question.field)
                edit.picked.connect(self.edit)
                named(edit, _("Change") + " " + pick(question.label), shown)
                row.addWidget(edit)
                self.edit_buttons[question.field] = edit
            said_widget.setAccessibleName(sentences(*said))
            rows.append(row_widget)
        self.rows.set_items(rows)
        self.tab_order(
            *self.edit_buttons.values(),
            self.rows.previous_button,
            self.rows.more_button,
            self.back_button,
            self.submit_button,
        )
        if errors:
            self.summary.show_errors(
                _("Some answers need correcting before you can submit:"),
                [
                    _("{label}: {message}").format(
                        label=pick(service.question(e.field).label) if e.field else "",
                        message=e.message,
                    )
                    for e in errors
                ],
            )
        self.back_button.setText(_("Back"))
        named(self.back_button, self.back_button.text(), _("Back to the last question"))
        self.submit_button.setText(_("Submit"))
        named(self.submit_button, self.submit_button.text(), _("Your application is sent"))
        self.submit_button.setEnabled(True)
        self.in_reading_order()
        self.submit_button.setFocus()

    def show_review_cleared(self) -> None:
        self.summary.clear()
        self.rows.clear()
        self.service_name.clear()
        self.edit_buttons = {}
        self.title.clear()

    def spoken_text(self) -> str:
        summary = self.summary.text() if self.summary.isVisibleTo(self) else ""
        return sentences(
            _("Please check your answers. If they are right, press Submit."),
            summary,
            *shown_names(self.rows),
            self.rows.status_text(),
        )


class BusyPage(Page):
    def __init__(self) -> None:
        super().__init__()
        self.message = label(name="question")
        self.message.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.body.addStretch(1)
        self.body.addWidget(self.message)
        self.body.addStretch(1)

    def show_busy(self, text: str) -> None:
        self.title.setText("")
        self.message.setText(text)
        self.in_reading_order()

    def spoken_text(self) -> str:
        return self.message.text()


class DonePage(Page):
    """The outcome and the receipt number: good news, not an error; a reminder to take the ID
    card stands beside the Finish button."""

    finish = Signal()
    rate = Signal(str)  # the level, once, when its face is chosen
    # kiosk.ratings.RatingChoice: the level when its face is chosen; for an unhappy one, again
    # with why and the call back once the follow-up is answered (the later replaces the first)
    rated = Signal(object)

    LEVELS = (
        ("very_satisfied", N_("Very satisfied")),
        ("satisfied", N_("Satisfied")),
        ("basically_satisfied", N_("Basically satisfied")),
        ("dissatisfied", N_("Dissatisfied")),
        ("very_dissatisfied", N_("Very dissatisfied")),
    )

    def __init__(self) -> None:
        super().__init__()
        self.status = label(name="question")
        self.receipt = QWidget()
        receipt = QVBoxLayout(self.receipt)
        receipt.setContentsMargins(0, 0, 0, 0)
        self.number_label = label(name="help")
        self.number = label(name="big_number")
        self.number.setTextInteractionFlags(Qt.TextInteractionFlag.NoTextInteraction)
        for widget in (self.number_label, self.number):
            receipt.addWidget(widget)
        self.notice_frame = QFrame()
        self.notice_frame.setObjectName("notice")
        notice_layout = QVBoxLayout(self.notice_frame)
        self.notice = label()
        notice_layout.addWidget(self.notice)
        self.printed = label()
        # A receipt that did not print: its QR code on screen, to photograph.
        self.receipt_qr = ReceiptQr()
        self.rating_prompt = label(name="help")
        self.rating_prompt.setProperty("keep_with_next", True)
        # As many to a row as fit: all five across a landscape panel, fewer on a portrait one
        # where long English labels ("Basically satisfied") would be cut off. Each row is an
        # item of its own, so that very large text pages them rather than cutting them off.
        self.rating_rows: list[QWidget] = []
        self._rating_row_layouts: list[QHBoxLayout] = []
        for _level in self.LEVELS:
            row_widget = QWidget()
            row = QHBoxLayout(row_widget)
            row.setContentsMargins(0, 0, 0, 0)
            row.setSpacing(14)
            row.addStretch(1)
            self.rating_rows.append(row_widget)
            self._rating_row_layouts.append(row)
        self._rating_columns = 0
        self.rating_buttons: dict[str, ValueButton] = {}
        for level, _text in self.LEVELS:
            rating = FaceButton(level)  # a face beside the words
            rating.picked.connect(self._rated)
            self.rating_buttons[level] = rating
        self.rating_thanks = label(name="muted")
        # "Dissatisfied" and below: why, and whether to be called back, before it is sent.
        self.rating_follow_up = RatingFollowUp()
        self.rating_follow_up.finished.connect(self._rating_finished)
        self.rating_follow_up.said.connect(self.said)
        self.parts = self.pager()  # one page unless the text is very large on a small panel
        self.body.addWidget(self.parts, 1)
        self.status.setProperty("keep_with_next", True)  # the outcome and its number together
        self.parts.set_items(
            [
                self.status,
                self.receipt,
                self.notice_frame,
                self.printed,
                self.receipt_qr,
                self.rating_prompt,
                *self.rating_rows,
                self.rating_follow_up,
                self.rating_thanks,
            ]
        )
        self.parts.omit(self.rating_thanks, True)
        self.parts.omit(self.rating_follow_up, True)
        self.parts.omit(self.receipt_qr, True)
        self._arrange_ratings()
        # beside Finish: take the card, and how long the page stays
        self.card_reminder = label(name="question")
        self.countdown = label(name="muted")
        beside = QVBoxLayout()
        beside.setSpacing(0)
        beside.addWidget(self.card_reminder)
        beside.addWidget(self.countdown)
        self.finish_button = button("", self.finish, name="primary")
        self.actions.addLayout(beside, 1)
        self.actions.addWidget(self.finish_button, 0, Qt.AlignmentFlag.AlignBottom)

    def show_done(
        self,
        *,
        accepted_text: str,
        receipt_number: str,
        notice: str,
        printed: str,
        remind_card: bool | None = None,
        title: str | None = None,
        qr_url: str = "",
    ) -> None:
        """`remind_card`: whether the ID card is still in the reader; by default, whether
        `printed` asks for it to be taken. `title`: the page's heading ("Application received"
        by default: say so only when the platform has it). `qr_url`: the receipt's QR link,
        shown as a code to photograph when the receipt did not print ("": none)."""
        if title is None:
            title = _("Application received") if receipt_number else ""
        self.title.setText(title)
        self.status.setText(accepted_text)
        self.number_label.setText(_("Your receipt number") if receipt_number else "")
        self.number.setText(receipt_number)
        self.notice.setText(notice)
        self.parts.omit(self.notice_frame, not notice, refit=False)
        self.printed.setText(printed)
        self.receipt_qr.show_link(
            qr_url,
            printed,  # said beside the code instead
            _("Take a photo of this code with your phone to follow your application online."),
            _("The QR code of your receipt"),
        )
        self.parts.omit(self.printed, bool(qr_url), refit=False)
        self.parts.omit(self.receipt_qr, not qr_url, refit=False)
        self.rating_prompt.setText(_("How satisfied are you with this service? (optional)"))
        for level, text in self.LEVELS:
            widget = self.rating_buttons[level]
            widget.setText(_(text))
            widget.setEnabled(True)
            named(widget, _(text), self.rating_prompt.text())
        self.rating_thanks.clear()
        self.parts.omit(self.rating_thanks, True, refit=False)
        self.rating_follow_up.clear()
        self.parts.omit(self.rating_follow_up, True, refit=False)
        if remind_card is None:
            remind_card = bool(printed) and _("Please take your ID card with you.") in printed
        self.card_reminder.setText(_("Please take your ID card") if remind_card else "")
        self._rating_columns = 0  # the labels' widths changed with the language
        self._arrange_ratings()
        self.finish_button.setText(_("Finish"))
        named(self.finish_button, self.finish_button.text(), _("Your information is cleared"))
        self.in_reading_order()
        self.finish_button.setFocus()
        self.parts.refit()

    def _arrange_ratings(self) -> None:
        buttons = list(self.rating_buttons.values())
        for widget in buttons:
            widget.ensurePolished()  # measured in the style sheet's type size
        margins = self.layout().contentsMargins()
        room = self.width() - margins.left() - margins.right()
        gap = 14
        widths = [b.sizeHint().width() for b in buttons]

        def needed(columns: int) -> int:
            """Each column as wide as its widest button."""
            return sum(
                max(widths[start::columns]) for start in range(columns)
            ) + gap * (columns - 1)

        columns = next((n for n in range(len(buttons), 2, -1) if needed(n) <= room), 2)
        if columns == self._rating_columns:
            return
        self._rating_columns = columns
        for row in self._rating_row_layouts:
            for widget in buttons:
                row.removeWidget(widget)
        for index, widget in enumerate(buttons):
            row = self._rating_row_layouts[index // columns]
            row.insertWidget(row.count() - 1, widget)  # before the row's stretch
        rows = -(-len(buttons) // columns)
        for index, row_widget in enumerate(self.rating_rows):
            self.parts.omit(row_widget, index >= rows, refit=False)
        self.in_reading_order()  # the buttons moved between rows
        self.parts.refit()

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        self._arrange_ratings()

    def _rated(self, level: str) -> None:
        for widget in self.rating_buttons.values():
            widget.setEnabled(False)
        choice = RatingChoice(level)
        if choice.asks_why:
            # The level goes at once: the page's countdown may end before the follow-up is
            # answered. The answer, when it comes, is sent as the rating that replaces it.
            self.rated.emit(choice)
            self.rate.emit(level)
            self.rating_follow_up.ask(level)
            self.parts.omit(self.rating_follow_up, False)
            self.rating_follow_up.reason_buttons["long_wait"].setFocus()
            self.said.emit(self.rating_follow_up.spoken_text())
            return
        self._rating_finished(choice)

    def _rating_finished(self, choice: RatingChoice) -> None:
        """The rating is complete (with its reason and call back, for an unhappy one)."""
        self.parts.omit(self.rating_follow_up, True, refit=False)
        self.rating_thanks.setText(_("Thank you for your rating."))
        self.parts.omit(self.rating_thanks, False)
        self.rated.emit(choice)
        if not choice.asks_why:
            self.rate.emit(choice.level)  # an unhappy level went when its face was chosen

    def set_countdown(self, seconds: int) -> None:
        self.countdown.setText(
            _("This screen will return to the start in {seconds} seconds.").format(seconds=seconds)
        )

    def spoken_text(self) -> str:
        return sentences(
            self.status.text(),
            f"{self.number_label.text()} {self.number.text()}",
            self.notice.text(),
            self.printed.text(),
            self.receipt_qr.caption.text(),
            self.card_reminder.text(),
            self.countdown.text(),
        )


class MessagePage(Page):
    home = Signal()

    def __init__(self) -> None:
        super().__init__()
        self.message = label(name="question")
        self.body.addStretch(1)
        self.body.addWidget(self.message)
        self.body.addStretch(1)
        self.home_button = button("", self.home, name="primary")
        self.actions.addStretch(1)
        self.actions.addWidget(self.home_button)

    def show_message(self, title: str, text: str) -> None:
        self.title.setText(title)
        self.message.setText(text)
        self.home_button.setText(_("Back to the start"))
        named(self.home_button, self.home_button.text(), _("Your information is cleared"))
        self.in_reading_order()
        self.home_button.setFocus()

    def spoken_text(self) -> str:
        return sentences(self.title.text(), self.message.text())


def shortcut(
    parent: QWidget, keys: str | QKeySequence.StandardKey, slot: Callable[[], None]
) -> QShortcut:
    sc = QShortcut(QKeySequence(keys), parent)
    sc.setContext(Qt.ShortcutContext.WindowShortcut)
    sc.activated.connect(slot)
    return sc
