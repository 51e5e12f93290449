"""The counter form: every question of a service on one page, typed by staff at a keyboard, with
the card's details and photo beside it to compare with the face in front of them.

Enter moves to the next answer; Ctrl+Enter checks the whole form and turns it to the citizen for
confirmation (ui/confirm_page.py); Esc goes back to the list of services. The shortcuts are listed
on the page. Answers are those of the kiosk's question pages (kiosk.session keeps them), so a form
checks and submits exactly as the citizen's own would.
"""

from __future__ import annotations

from collections.abc import Sequence

from PySide6.QtCore import QDate, QEvent, QObject, QRegularExpression, Qt, Signal
from PySide6.QtGui import (
    QKeyEvent,
    QKeySequence,
    QPixmap,
    QRegularExpressionValidator,
    QResizeEvent,
    QShortcut,
)
from PySide6.QtWidgets import (
    QBoxLayout,
    QComboBox,
    QFormLayout,
    QHBoxLayout,
    QLineEdit,
    QScrollArea,
    QVBoxLayout,
    QWidget,
)

from devices.identity import Identity
from kiosk.assistance import RELATIONS
from kiosk.catalogue import Question, Service
from kiosk.forms import FieldError
from kiosk.i18n import _, pick
from kiosk.identity import mask_id_number, mask_name
from ui.screens import PHOTO_BOX, Page
from ui.widgets import ErrorSummary, button, label, named

# What each kind of answer accepts while it is typed (the form's schema has the last word).
_TYPED = {
    "phone": r"[0-9 ]{0,20}",
    "id_number": r"[0-9Xx ]{0,22}",
    "number": r"-?[0-9]{0,12}(\.[0-9]{0,6})?",
    # 2025-06-01, or 20250601 (read as the same date: two keys fewer)
    "date": r"[0-9]{0,8}|[0-9]{4}-([0-9]{0,2}(-[0-9]{0,2})?)?",
}
_NO_ANSWER = ""  # a choice's first entry: nothing chosen yet
WIDE_PX = 1500  # from this width the materials stand beside the questions


class Editor(QObject):
    """One question's input on the counter form, whatever its kind (a QObject owned by the
    page, so its slots are bound methods of a parented object)."""

    def __init__(self, question: Question, value: object, parent: QObject) -> None:
        super().__init__(parent)
        self.question = question
        self.widget: QLineEdit | QComboBox
        self.error = label(name="field_error")
        self.error.hide()
        kind = question.widget
        if kind in ("choice", "yesno"):
            combo = QComboBox()
            combo.addItem(_("(choose)"), _NO_ANSWER)
            if kind == "yesno":
                combo.addItem(_("Yes"), "true")
                combo.addItem(_("No"), "false")
                selected = "" if value is None else ("true" if value in (True, "true") else "false")
            else:
                for option in question.options:
                    combo.addItem(pick(option.label), option.value)
                selected = "" if value is None else str(value)
            index = combo.findData(selected)
            combo.setCurrentIndex(max(index, 0))
            combo.currentIndexChanged.connect(self._changed)
            self.widget = combo
        else:
            line = QLineEdit("" if value is None else str(value))
            pattern = _TYPED.get(kind)
            if pattern is not None:
                line.setValidator(
                    QRegularExpressionValidator(QRegularExpression(pattern), line)
                )
            if kind == "date":
                line.setPlaceholderText(QDate.currentDate().toString("yyyyMMdd"))
            line.textEdited.connect(self._changed)
            self.widget = line
        named(self.widget, pick(question.label), pick(question.help))

    def value(self) -> object:
        widget = self.widget
        if isinstance(widget, QComboBox):
            data = widget.currentData()
            if data == _NO_ANSWER or data is None:
                return None
            if self.question.widget == "yesno":
                return data == "true"
            return str(data)
        text = widget.text()
        if self.question.widget in ("phone", "id_number"):
            return "".join(text.split()).upper()
        if self.question.widget == "date" and len(text) == 8 and text.isdigit():
            return f"{text[:4]}-{text[4:6]}-{text[6:]}"
        return text

    def _changed(self) -> None:
        """Staff are putting it right: the old complaint goes (the next check says anew)."""
        if self.error.isVisible():
            self.set_error("")

    def set_error(self, message: str) -> None:
        self.error.setText(("⚠ " + message) if message else "")
        self.error.setVisible(bool(message))
        self.widget.setProperty("invalid", bool(message))
        self.widget.style().unpolish(self.widget)
        self.widget.style().polish(self.widget)


class CounterFormPage(Page):
    """All of a service's questions at once, for staff."""

    back = Signal()  # Esc: back to the list of services
    confirm = Signal()  # Ctrl+Enter: check everything, then the citizen confirms

    def __init__(self) -> None:
        super().__init__()
        self.setObjectName("dense")
        self._service: Service | None = None
        self.editors: dict[str, Editor] = {}

        self.summary = ErrorSummary()
        self.body.addWidget(self.summary)
        columns = QHBoxLayout()
        columns.setSpacing(24)
        self.body.addLayout(columns, 1)

        # The card, to compare with the person at the counter.
        card = QVBoxLayout()
        card.setSpacing(8)
        self.photo = label(name="photo")
        self.photo.setFixedSize(PHOTO_BOX)
        self.photo.setAlignment(Qt.AlignmentFlag.AlignCenter)
        card.addWidget(self.photo)
        self.card_lines = label()
        self.card_lines.setFixedWidth(PHOTO_BOX.width() + 120)
        card.addWidget(self.card_lines)
        # Who applies: the applicant, or a relative for them (代办) with the agent's own card.
        self.mode_label = label()
        card.addWidget(self.mode_label)
        self.mode = QComboBox()
        self.mode.addItem("", "present")
        self.mode.addItem("", "agent")
        self.mode.currentIndexChanged.connect(self._mode_changed)
        self.mode_label.setBuddy(self.mode)
        card.addWidget(self.mode)
        self.relation_label = label()
        card.addWidget(self.relation_label)
        self.relation_box = QComboBox()
        self.relation_box.addItem("", "")
        for code in RELATIONS:
            self.relation_box.addItem("", code)
        self.relation_label.setBuddy(self.relation_box)
        card.addWidget(self.relation_box)
        self.agent_line = label(name="help")
        card.addWidget(self.agent_line)
        self._agent: Identity | None = None
        card.addStretch(1)
        columns.addLayout(card)

        # The questions, and what goes with them beside (a wide screen) or under them.
        self.work = QBoxLayout(QBoxLayout.Direction.LeftToRight)
        self.work.setSpacing(24)
        columns.addLayout(self.work, 1)
        self.scroll = QScrollArea()
        self.scroll.setWidgetResizable(True)
        self.form_widget = QWidget()
        self.form = QFormLayout(self.form_widget)
        self.form.setRowWrapPolicy(QFormLayout.RowWrapPolicy.DontWrapRows)
        self.form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        self.form.setHorizontalSpacing(16)
        self.form.setVerticalSpacing(10)
        self.scroll.setWidget(self.form_widget)
        self.work.addWidget(self.scroll, 3)

        # What goes with it (materials), put in by the journey.
        self.side = QVBoxLayout()
        self.side.setSpacing(8)
        self.work.addLayout(self.side, 2)

        self.shortcuts = label(name="help")
        self.body.addWidget(self.shortcuts)
        self.back_button = button("", self.back)
        self.confirm_button = button("", self.confirm, name="primary")
        self.actions.addWidget(self.back_button)
        self.actions.addStretch(1)
        self.actions.addWidget(self.confirm_button)
        for keys in ("Ctrl+Return", "Ctrl+Enter"):
            shortcut = QShortcut(QKeySequence(keys), self)
            shortcut.setContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
            shortcut.activated.connect(self.confirm)
        self._enter = _EnterMovesOn(self)
        self._enter.moved_on.connect(self._next_after)
        self.retranslate()

    # -- showing ------------------------------------------------------------------------------
    def retranslate(self) -> None:
        self.back_button.setText(_("Back (Esc)"))
        named(self.back_button, self.back_button.text(), _("Back to the list of services"))
        self.confirm_button.setText(_("Check and ask the citizen to confirm (Ctrl+Enter)"))
        named(
            self.confirm_button,
            self.confirm_button.text(),
            _("Checks every answer, then shows the summary to the citizen to sign"),
        )
        self.shortcuts.setText(
            _(
                "Keys: Enter next answer · Tab / Shift+Tab move · Alt+Down open a list · "
                "Ctrl+Enter check and confirm · Esc back"
            )
        )
        self.mode_label.setText(_("Who applies"))
        self.mode.setItemText(0, _("The applicant, here in person"))
        self.mode.setItemText(1, _("A relative, for the applicant"))
        named(self.mode, self.mode_label.text())
        self.relation_label.setText(_("The agent is the applicant's"))
        self.relation_box.setItemText(0, _("(choose)"))
        for index, code in enumerate(RELATIONS, start=1):
            self.relation_box.setItemText(index, _(RELATIONS[code]))
        named(self.relation_box, _("How the agent is related to the applicant"))
        self._show_agent()

    def resizeEvent(self, event: QResizeEvent) -> None:
        """Materials beside the questions on a wide screen, under them on a narrow one."""
        wide = event.size().width() >= WIDE_PX
        self.work.setDirection(
            QBoxLayout.Direction.LeftToRight if wide else QBoxLayout.Direction.TopToBottom
        )
        super().resizeEvent(event)

    def holds(self, service: Service) -> bool:
        """This service's form is on the page (drawn again: what is typed is kept)."""
        return self._service is service and bool(self.editors)

    def show_form(
        self,
        service: Service,
        identity: Identity,
        answers: dict[str, object],
        with_photo: bool,
    ) -> None:
        self._clear_form()
        self._service = service
        self.retranslate()
        self.title.setText(_("{service} · assisted application").format(service=pick(service.name)))
        self.summary.clear()
        self.photo.setVisible(with_photo)
        if with_photo and self.photo.pixmap().isNull():
            self.photo.setText(_("Loading the photo…"))
        self.card_lines.setText(
            "\n".join(
                (
                    identity.name,
                    mask_id_number(identity.id_number),
                    identity.birth_date.isoformat(),
                    identity.address,
                )
            )
        )
        self.card_lines.setAccessibleName(_("From the ID card"))
        order: list[QWidget] = []
        for question in service.questions:
            if question.readonly:
                continue
            editor = Editor(question, answers.get(question.field), self.form_widget)
            mark = " *" if question.required else ""
            caption = label(pick(question.label) + mark, wrap=True)
            caption.setBuddy(editor.widget)
            field = QWidget()
            stack = QVBoxLayout(field)
            stack.setContentsMargins(0, 0, 0, 0)
            stack.setSpacing(2)
            stack.addWidget(editor.widget)
            stack.addWidget(editor.error)
            self.form.addRow(caption, field)
            editor.widget.installEventFilter(self._enter)
            self.editors[question.field] = editor
            order.append(editor.widget)
        self.tab_order(*order, self.mode, self.relation_box, self.confirm_button, self.back_button)
        if order:
            order[0].setFocus()

    # -- who applies ----------------------------------------------------------------------------
    def citizen_present(self) -> bool:
        return self.mode.currentData() != "agent"

    def wants_agent_card(self) -> bool:
        return not self.citizen_present()

    def relation(self) -> str:
        return str(self.relation_box.currentData() or "")

    def agent_card(self) -> Identity | None:
        return self._agent if self.wants_agent_card() else None

    def set_agent(self, card: Identity | None) -> None:
        self._agent = card
        self._show_agent()

    def _mode_changed(self) -> None:
        self._show_agent()

    def _show_agent(self) -> None:
        agent_mode = self.wants_agent_card()
        for widget in (self.relation_label, self.relation_box, self.agent_line):
            widget.setVisible(agent_mode)
        agent = self._agent
        if agent is None:
            self.agent_line.setText(_("Agent: please place your own ID card on the reader."))
        else:
            self.agent_line.setText(
                _("Agent: {name}, ID card {number}").format(
                    name=mask_name(agent.name), number=mask_id_number(agent.id_number)
                )
            )

    def show_problem(self, text: str) -> None:
        """Something of the whole application (not one answer) stops it: shown on top."""
        self.summary.show_errors(text, [])

    def show_photo(self, image: bytes | None) -> None:
        pixmap = QPixmap()
        if image is not None and pixmap.loadFromData(image) and not pixmap.isNull():
            self.photo.setPixmap(
                pixmap.scaled(
                    PHOTO_BOX,
                    Qt.AspectRatioMode.KeepAspectRatio,
                    Qt.TransformationMode.SmoothTransformation,
                )
            )
            self.photo.setAccessibleName(_("Photo from the card"))
        else:
            self.photo.setPixmap(QPixmap())
            self.photo.setText(_("The card's photo cannot be shown on this terminal."))
            self.photo.setWordWrap(True)

    def values(self) -> dict[str, object]:
        return {field: editor.value() for field, editor in self.editors.items()}

    def set_errors(self, errors: Sequence[FieldError]) -> None:
        """Each problem beside its answer, a list at the top, the focus on the first."""
        by_field = {e.field: e for e in errors}
        for field, editor in self.editors.items():
            problem = by_field.get(field)
            editor.set_error(problem.message if problem is not None else "")
        if not errors:
            self.summary.clear()
            return
        service = self._service
        lines = []
        for error in errors:
            caption = ""
            if service is not None and error.field:
                try:
                    caption = pick(service.question(error.field).label)
                except KeyError:
                    caption = error.field
            lines.append(_("{label}: {message}").format(label=caption, message=error.message))
        self.summary.show_errors(_("Some answers need correcting:"), lines)
        first = next((self.editors[e.field] for e in errors if e.field in self.editors), None)
        if first is not None:
            first.widget.setFocus()
            self.scroll.ensureWidgetVisible(first.widget)

    def spoken_text(self) -> str:
        return self.title.text()

    def wipe(self) -> None:
        self._clear_form()
        self._service = None
        self._agent = None
        self.mode.setCurrentIndex(0)
        self.relation_box.setCurrentIndex(0)
        self._show_agent()
        self.summary.clear()
        self.card_lines.clear()
        self.photo.setPixmap(QPixmap())
        self.photo.clear()
        self.title.clear()

    # -- inside -------------------------------------------------------------------------------
    def _clear_form(self) -> None:
        for editor in self.editors.values():
            editor.widget.removeEventFilter(self._enter)
            editor.deleteLater()
        self.editors = {}
        while self.form.rowCount():
            self.form.removeRow(0)  # deletes the row's widgets

    def _next_after(self, widget: QWidget) -> None:
        widgets = [e.widget for e in self.editors.values()]
        if widget not in widgets:
            return
        index = widgets.index(widget)
        if index + 1 < len(widgets):
            following = widgets[index + 1]
            following.setFocus(Qt.FocusReason.TabFocusReason)
            self.scroll.ensureWidgetVisible(following)
        else:
            self.confirm_button.setFocus(Qt.FocusReason.TabFocusReason)


class _EnterMovesOn(QObject):
    """Enter in an answer moves to the next one (a list that is open takes its Enter itself)."""

    moved_on = Signal(QWidget)  # Enter was pressed in this answer

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if event.type() != QEvent.Type.KeyPress or not isinstance(watched, QWidget):
            return False
        assert isinstance(event, QKeyEvent)  # noqa: S101 - a KeyPress is a QKeyEvent
        if event.key() not in (Qt.Key.Key_Return, Qt.Key.Key_Enter):
            return False
        if event.modifiers() & Qt.KeyboardModifier.ControlModifier:
            return False  # Ctrl+Enter is the page's shortcut
        if isinstance(watched, QComboBox) and watched.view().isVisible():
            return False
        self.moved_on.emit(watched)
        return True
