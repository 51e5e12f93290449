"""The pages of a visit. Each page shows what it is given and reports what the person chose;
the window decides what happens next."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtGui import QKeySequence, QPixmap, QResizeEvent, QShortcut
from PySide6.QtWidgets import (
    QAbstractButton,
    QFrame,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QScrollArea,
    QVBoxLayout,
    QWidget,
)

from kiosk.i18n import N_, _, pick
from ui.theme import Palette
from ui.widgets import (
    CardAnimation,
    Choices,
    ErrorSummary,
    Keypad,
    ValueButton,
    WrappingButton,
    button,
    label,
)

if TYPE_CHECKING:  # the first screen is drawn before forms and schemas load
    from kiosk.catalogue import Question, Service
    from kiosk.forms import FieldError

PHOTO_BOX = QSize(204, 252)  # twice the 102×126 of a resident ID card's photo


class Page(QWidget):
    """A page with a scrolling body and a row of large buttons at the bottom."""

    def __init__(self) -> None:
        super().__init__()
        outer = QVBoxLayout(self)
        outer.setContentsMargins(48, 32, 48, 32)
        outer.setSpacing(20)
        self.title = label(name="title")
        outer.addWidget(self.title)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        self.body_widget = QWidget()
        self.body = QVBoxLayout(self.body_widget)
        self.body.setSpacing(18)
        self.body.setAlignment(Qt.AlignmentFlag.AlignTop)
        scroll.setWidget(self.body_widget)
        outer.addWidget(scroll, 1)
        self.actions = QHBoxLayout()
        self.actions.setSpacing(24)
        outer.addLayout(self.actions)

    def spoken_text(self) -> str:
        return self.title.text()


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

    def __init__(self, demo: bool) -> None:
        super().__init__()
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
        self.demo_button: QPushButton | None = None
        if demo:
            self.demo_button = button("", self.demo_card, name="primary")
            self.actions.addStretch(1)
            self.actions.addWidget(self.demo_button)
            self.actions.addStretch(1)

    def retranslate(self) -> None:
        self.title.setText(_("Welcome to the self-service terminal"))
        self.instruction.setText(_("Please place your ID card on the reader"))
        self.hint.setText(
            _("The reader is below the screen. Keep the card still until you hear a sound.")
        )
        if self.demo_button is not None:
            self.demo_button.setText(_("Present the demo ID card (F2)"))
        self.animate()

    def animate(self) -> None:
        """One step of the card gliding onto the reader; driven by the window's timer."""
        self.card_art.advance()

    def show_message(self, text: str) -> None:
        self.message.setText(text)
        self.message.setVisible(bool(text))

    def spoken_text(self) -> str:
        return self.instruction.text()


class ServicesPage(Page):
    chosen = Signal(str)
    end = Signal()

    def __init__(self) -> None:
        super().__init__()
        # Every widget is in a layout (so it has a parent) from the start.
        self.greeting = label(name="question")
        self.masked_id = label(name="help")
        self.prompt = label()
        for widget in (self.greeting, self.masked_id, self.prompt):
            self.body.addWidget(widget)
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
        clear_layout(self.body)
        self.greeting = label(greeting, name="question")
        self.masked_id = label(masked_id, name="help")
        self.prompt = label(_("Please choose what you would like to do today:"))
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
            self.body.addLayout(row)
        else:
            self.body.addWidget(self.greeting)
            self.body.addWidget(self.masked_id)
        self.body.addWidget(self.prompt)
        self.service_buttons = []
        for index, service in enumerate(services, start=1):
            text = f"{index}. {pick(service.name)}"
            summary = pick(service.summary)
            if summary:
                text += f"\n{summary}"
            widget = WrappingButton(text, service.id, name="service")
            widget.picked.connect(self.chosen)
            widget.setAccessibleName(pick(service.name))
            self.body.addWidget(widget)
            self.service_buttons.append(widget)
        self.title.setText(_("Choose a service"))
        self.end_button.setText(_("End my visit"))
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
        return _("Please choose what you would like to do today:")


class GuidePage(Page):
    back = Signal()
    start = Signal()

    def __init__(self) -> None:
        super().__init__()
        self.back_button = button("", self.back)
        self.start_button = button("", self.start, name="primary")
        self.actions.addWidget(self.back_button)
        self.actions.addStretch(1)
        self.actions.addWidget(self.start_button)

    def show_guide(self, service: Service) -> None:
        clear_layout(self.body)
        self.title.setText(pick(service.name))
        guide = service.guide
        sections: list[tuple[str, str]] = [
            (_("Who it is for"), pick(guide.audience)),
            (_("What to bring"), "\n".join(f"• {pick(m)}" for m in guide.materials)),
            (_("Fee"), pick(guide.fee)),
            (_("Time limit"), pick(guide.time_limit)),
            (_("Where to collect the result"), pick(guide.collection)),
        ]
        if service.department:
            sections.append((_("Handled by"), pick(service.department)))
        for heading, text in sections:
            self.body.addWidget(label(heading, name="question"))
            self.body.addWidget(label(text))
        self.back_button.setText(_("Back"))
        self.start_button.setText(_("Start the application"))
        self.start_button.setFocus()

    def wipe(self) -> None:
        """The service chosen is the last visit's: forget it too."""
        clear_layout(self.body)
        self.title.clear()

    def spoken_text(self) -> str:
        return self.title.text()


class QuestionPage(Page):
    back = Signal()
    next = Signal()

    def __init__(self) -> None:
        super().__init__()
        self.summary = ErrorSummary()
        self.progress = label(name="progress")
        self.question = label(name="question")
        self.help = label(name="help")
        self.line = QLineEdit()
        self.line.returnPressed.connect(self.next)
        self.choices = Choices()
        self.choices.chosen.connect(self._chosen)
        self.error = label(name="field_error")
        self.keypad_holder = QVBoxLayout()
        self.body.addWidget(self.summary)
        self.body.addWidget(self.progress)
        self.body.addWidget(self.question)
        self.body.addWidget(self.help)
        # the answer on the left, the keypad beside it: both in view without scrolling
        row = QHBoxLayout()
        row.setSpacing(32)
        answer = QVBoxLayout()
        answer.addWidget(self.line)
        answer.addWidget(self.choices)
        answer.addWidget(self.error)
        answer.addStretch(1)
        row.addLayout(answer, 3)
        row.addLayout(self.keypad_holder, 2)
        self.body.addLayout(row)
        self.keypad: Keypad | None = None
        self.back_button = button("", self.back)
        self.next_button = button("", self.next, name="primary")
        self.actions.addWidget(self.back_button)
        self.actions.addStretch(1)
        self.actions.addWidget(self.next_button)
        self._question: Question | None = None
        self._choice: str | None = None

    def show_question(self, question: Question, value: object, index: int, total: int) -> None:
        self._question = question
        self.title.setText(_("Your application"))
        self.progress.setText(
            _("Question {number} of {total}").format(number=index + 1, total=total)
        )
        self.question.setText(pick(question.label))
        self.help.setText(pick(question.help))
        self.help.setVisible(bool(question.help))
        self.back_button.setText(_("Back"))
        self.next_button.setText(_("Next"))
        self.set_error(None)
        self._drop_keypad()
        if question.widget in ("choice", "yesno"):
            self.line.hide()
            self.choices.show()
            if question.widget == "yesno":
                options = [("true", _("Yes")), ("false", _("No"))]
                selected = (
                    None if value is None else ("true" if value in (True, "true") else "false")
                )
            else:
                options = [(o.value, pick(o.label)) for o in question.options]
                selected = None if value is None else str(value)
            self._choice = selected
            self.choices.set_options(options, selected)
            buttons = self.choices.buttons()
            if buttons:
                target = next((b for b in buttons if b.isChecked()), buttons[0])
                target.setFocus()
        else:
            self.choices.hide()
            self.line.show()
            self.line.setText("" if value is None else str(value))
            self.line.setAccessibleName(pick(question.label))
            numeric = question.widget in ("phone", "number", "id_number", "date")
            if numeric:
                extra = {"id_number": "X", "date": "-", "number": "."}.get(question.widget, "")
                self.keypad = Keypad(
                    self.line, extra=extra, delete_text=_("Delete"), parent=self.body_widget
                )
                # at the top of its column: its rows do not spread down a tall portrait panel
                self.keypad_holder.addWidget(self.keypad, 0, Qt.AlignmentFlag.AlignTop)
            if question.widget == "date":
                self.line.setPlaceholderText(_("for example 2026-11-23"))
            else:
                self.line.setPlaceholderText("")
            self.line.setFocus()

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
        self.choices.set_options((), None)
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
        return self.line.text()

    def _chosen(self, value: str) -> None:
        self._choice = value

    def set_error(self, error: FieldError | None) -> None:
        if error is None:
            self.error.clear()
            self.error.hide()
            self.summary.clear()
            self.line.setProperty("invalid", False)
        else:
            self.error.setText("⚠ " + error.message)
            self.error.show()
            self.summary.show_errors(
                _("Please correct the answer marked below."),
                [_("{label}: {message}").format(label=self.question.text(), message=error.message)],
            )
            self.line.setProperty("invalid", True)
        self.line.style().unpolish(self.line)
        self.line.style().polish(self.line)

    def spoken_text(self) -> str:
        parts = [self.question.text()]
        if self.help.isVisible() and self.help.text():
            parts.append(self.help.text())
        return "。".join(parts)


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
        self.edit_buttons: dict[str, ValueButton] = {}

    def show_review(
        self,
        service: Service,
        answers: dict[str, object],
        errors: Sequence[FieldError],
        masked: Callable[[Question, object], str],
    ) -> None:
        clear_layout(self.body)
        self.summary = ErrorSummary()
        self.body.addWidget(self.summary)
        self.title.setText(_("Please check your answers"))
        self.body.addWidget(label(pick(service.name), name="question"))
        by_field = {e.field: e for e in errors}
        self.edit_buttons = {}
        for question in service.questions:
            row = QHBoxLayout()
            text = QVBoxLayout()
            text.addWidget(label(pick(question.label), name="help"))
            shown = masked(question, answers.get(question.field))
            text.addWidget(label(shown))
            if question.field in by_field:
                text.addWidget(label("⚠ " + by_field[question.field].message, name="field_error"))
            row.addLayout(text, 1)
            if question.readonly:
                row.addWidget(label(_("From your ID card"), name="muted", wrap=False))
            else:
                edit = ValueButton(_("Change"), question.field)
                edit.picked.connect(self.edit)
                edit.setAccessibleName(_("Change") + " " + pick(question.label))
                row.addWidget(edit)
                self.edit_buttons[question.field] = edit
            self.body.addLayout(row)
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
        self.submit_button.setText(_("Submit"))
        self.submit_button.setEnabled(True)
        self.submit_button.setFocus()

    def show_review_cleared(self) -> None:
        clear_layout(self.body)
        self.summary = ErrorSummary()
        self.body.addWidget(self.summary)
        self.edit_buttons = {}
        self.title.clear()

    def spoken_text(self) -> str:
        return _("Please check your answers. If they are right, press Submit.")


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

    def spoken_text(self) -> str:
        return self.message.text()


class DonePage(Page):
    finish = Signal()
    rate = Signal(str)

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
        self.number_label = label(name="help")
        self.number = label(name="big_number")
        self.number.setTextInteractionFlags(Qt.TextInteractionFlag.NoTextInteraction)
        self.notice_frame = QFrame()
        self.notice_frame.setObjectName("notice")
        notice_layout = QVBoxLayout(self.notice_frame)
        self.notice = label()
        notice_layout.addWidget(self.notice)
        self.printed = label()
        self.countdown = label(name="muted")
        self.rating_prompt = label(name="help")
        # As many to a row as fit: all five across a landscape panel, fewer on a portrait one
        # where long English labels ("Basically satisfied") would be cut off.
        self.rating_row = QGridLayout()
        self.rating_row.setSpacing(14)
        self._rating_columns = 0
        self.rating_buttons: dict[str, ValueButton] = {}
        for level, _text in self.LEVELS:
            widget = ValueButton("", level)
            widget.picked.connect(self._rated)
            self.rating_buttons[level] = widget
        self._arrange_ratings()
        self.rating_thanks = label(name="muted")
        for widget in (
            self.status,
            self.number_label,
            self.number,
            self.notice_frame,
            self.printed,
        ):
            self.body.addWidget(widget)
        self.body.addWidget(self.rating_prompt)
        self.body.addLayout(self.rating_row)
        self.body.addWidget(self.rating_thanks)
        self.body.addWidget(self.countdown)
        self.finish_button = button("", self.finish, name="primary")
        self.actions.addStretch(1)
        self.actions.addWidget(self.finish_button)

    def show_done(
        self, *, accepted_text: str, receipt_number: str, notice: str, printed: str
    ) -> None:
        self.title.setText(_("Application received"))
        self.status.setText(accepted_text)
        self.number_label.setText(_("Your receipt number"))
        self.number.setText(receipt_number)
        self.notice.setText(notice)
        self.notice_frame.setVisible(bool(notice))
        self.printed.setText(printed)
        self.rating_prompt.setText(_("How satisfied are you with this service? (optional)"))
        for level, text in self.LEVELS:
            self.rating_buttons[level].setText(_(text))
            self.rating_buttons[level].setEnabled(True)
        self.rating_thanks.clear()
        self._rating_columns = 0  # the labels' widths changed with the language
        self._arrange_ratings()
        self.finish_button.setText(_("Finish"))
        self.finish_button.setFocus()

    def _arrange_ratings(self) -> None:
        buttons = list(self.rating_buttons.values())
        widest = max(b.sizeHint().width() for b in buttons) + self.rating_row.spacing()
        margins = self.layout().contentsMargins()
        room = self.width() - margins.left() - margins.right() - 24  # and a scroll bar's width
        columns = max(2, min(len(buttons), room // max(1, widest)))
        if columns == self._rating_columns:
            return
        self._rating_columns = columns
        for index, widget in enumerate(buttons):
            self.rating_row.removeWidget(widget)
            self.rating_row.addWidget(widget, index // columns, index % columns)

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        self._arrange_ratings()

    def _rated(self, level: str) -> None:
        for widget in self.rating_buttons.values():
            widget.setEnabled(False)
        self.rating_thanks.setText(_("Thank you for your rating."))
        self.rate.emit(level)

    def set_countdown(self, seconds: int) -> None:
        self.countdown.setText(
            _("This screen will return to the start in {seconds} seconds.").format(seconds=seconds)
        )

    def spoken_text(self) -> str:
        return (
            f"{self.status.text()} {self.number_label.text()} {self.number.text()}。"
            f"{self.printed.text()}"
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
        self.home_button.setFocus()

    def spoken_text(self) -> str:
        return self.message.text()


def shortcut(
    parent: QWidget, keys: str | QKeySequence.StandardKey, slot: Callable[[], None]
) -> QShortcut:
    sc = QShortcut(QKeySequence(keys), parent)
    sc.setContext(Qt.ShortcutContext.WindowShortcut)
    sc.activated.connect(slot)
    return sc
