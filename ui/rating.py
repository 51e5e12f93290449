"""The satisfaction rating's controls (好差评, GB/T 39735-2020): five faces with their words, and,
for "dissatisfied" and below, why (a short list) and whether to be called back.

Used at the end of a visit (ui/screens.py DonePage) and for each case on the lookup page
(ui/lookup.py). The rules are kiosk.ratings'; these widgets only show and report a RatingChoice.
"""

from __future__ import annotations

from PySide6.QtCore import QEvent, QPointF, QRectF, QSize, Qt, Signal
from PySide6.QtGui import QColor, QIcon, QPainter, QPainterPath, QPalette, QPen, QPixmap, QShowEvent
from PySide6.QtWidgets import QGridLayout, QVBoxLayout, QWidget

from kiosk.i18n import _
from kiosk.ratings import LEVELS, REASONS, RatingChoice

__all__ = ["FaceButton", "FaceRow", "RatingChoice", "RatingFollowUp", "RatingPanel"]
from ui.widgets import ValueButton, label, named

FACE_PX = 48
GAP = 14
# How far each level's mouth bends: a broad smile down to a deep frown.
_SMILES = {
    "very_satisfied": 1.0,
    "satisfied": 0.55,
    "basically_satisfied": 0.15,
    "dissatisfied": -0.45,
    "very_dissatisfied": -1.0,
}


def face_pixmap(level: str, color: QColor, side: int = FACE_PX) -> QPixmap:
    """A round face in one colour (the button's text colour, so it keeps the text's contrast)
    whose mouth says the level."""
    ratio = 2
    pixmap = QPixmap(side * ratio, side * ratio)
    pixmap.setDevicePixelRatio(ratio)
    pixmap.fill(Qt.GlobalColor.transparent)
    painter = QPainter(pixmap)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    pen = QPen(color, max(2.0, side / 14))
    pen.setCapStyle(Qt.PenCapStyle.RoundCap)
    painter.setPen(pen)
    margin = pen.widthF()
    painter.drawEllipse(QRectF(margin, margin, side - 2 * margin, side - 2 * margin))
    painter.setBrush(color)
    eye = side / 14
    for x in (side * 0.36, side * 0.64):
        painter.drawEllipse(QPointF(x, side * 0.4), eye, eye)
    painter.setBrush(Qt.BrushStyle.NoBrush)
    smile = _SMILES.get(level, 0.0)
    mouth = QPainterPath()
    left, right, y = side * 0.3, side * 0.7, side * 0.66 - smile * side * 0.04
    mouth.moveTo(left, y)
    mouth.quadTo(side / 2, y + smile * side * 0.2, right, y)
    painter.drawPath(mouth)
    painter.end()
    return pixmap


class FaceButton(ValueButton):
    """A level's face and words; the face is drawn in the button's own text colour, again when
    the style (normal or high contrast) changes."""

    def __init__(self, level: str) -> None:
        super().__init__("", level)
        self.setIconSize(QSize(FACE_PX, FACE_PX))

    def _draw_face(self) -> None:
        color = self.palette().color(QPalette.ColorRole.ButtonText)
        self.setIcon(QIcon(face_pixmap(self.value, color)))

    def changeEvent(self, event: QEvent) -> None:
        super().changeEvent(event)
        if event.type() in (QEvent.Type.StyleChange, QEvent.Type.PaletteChange):
            self._draw_face()

    def showEvent(self, event: QShowEvent) -> None:
        self.ensurePolished()
        self._draw_face()
        super().showEvent(event)


def level_words(level: str) -> str:
    return next((_(words) for code, words in LEVELS if code == level), level)


class FaceRow(QWidget):
    """The five faces, as many to a row as the width allows (all five on a landscape panel)."""

    picked = Signal(str)
    arranged = Signal()  # the faces moved between rows: the height changed

    def __init__(self) -> None:
        super().__init__()
        self.grid = QGridLayout(self)
        self.grid.setContentsMargins(0, 0, 0, 0)
        self.grid.setSpacing(GAP)
        self.buttons: dict[str, FaceButton] = {}
        for level, _words in LEVELS:
            face = FaceButton(level)
            face.setParent(self)
            face.picked.connect(self.picked)
            self.buttons[level] = face
        self._columns = 0
        self._room = 0
        self._arrange(len(LEVELS))

    def retranslate(self, description: str) -> None:
        for level, widget in self.buttons.items():
            widget.setText(level_words(level))
            named(widget, widget.text(), description)
        self._columns = 0
        self.fit(self._room)

    def set_enabled(self, enabled: bool) -> None:
        for widget in self.buttons.values():
            widget.setEnabled(enabled)

    def set_room(self, room: int) -> None:
        self._room = room
        self.fit(room)

    def _arrange(self, columns: int) -> None:
        if columns == self._columns:
            return
        self._columns = columns
        for widget in self.buttons.values():
            self.grid.removeWidget(widget)
        for index, widget in enumerate(self.buttons.values()):
            self.grid.addWidget(widget, index // columns, index % columns)
        self.updateGeometry()
        self.arranged.emit()

    def _columns_for(self, room: int) -> int:
        widest = 0
        for widget in self.buttons.values():
            widget.ensurePolished()
            widest = max(widest, widget.sizeHint().width())
        return next((n for n in (5, 4, 3, 2) if n * widest + GAP * (n - 1) <= room), 1)

    def fit(self, room: int) -> None:
        """As many faces to a row as `room` pixels hold (the page's width, known before the
        row is laid out: the page is paged by the rows' heights)."""
        if room > 0:
            self._arrange(self._columns_for(room))


class RatingFollowUp(QWidget):
    """After "dissatisfied" or "very dissatisfied": why (one of a short list), then whether to
    be called back (the number given with the application is used; none is asked here)."""

    finished = Signal(object)  # RatingChoice
    said = Signal(str)  # the next question, to be read aloud

    def __init__(self) -> None:
        super().__init__()
        box = QVBoxLayout(self)
        box.setContentsMargins(0, 0, 0, 0)
        box.setSpacing(GAP)
        self.question = label(name="help")
        box.addWidget(self.question)
        self.reasons = QWidget()
        grid = QGridLayout(self.reasons)
        grid.setContentsMargins(0, 0, 0, 0)
        grid.setSpacing(GAP)
        self.reason_buttons: dict[str, ValueButton] = {}
        for index, (code, _words) in enumerate(REASONS):
            widget = ValueButton("", code)
            widget.picked.connect(self._reason)
            grid.addWidget(widget, index // 3, index % 3)
            self.reason_buttons[code] = widget
        box.addWidget(self.reasons)
        self.answers = QWidget()
        row = QGridLayout(self.answers)
        row.setContentsMargins(0, 0, 0, 0)
        row.setSpacing(GAP)
        self.yes_button = ValueButton("", "yes")
        self.no_button = ValueButton("", "no")
        for column, widget in enumerate((self.yes_button, self.no_button)):
            widget.picked.connect(self._call_back)
            row.addWidget(widget, 0, column)
        row.setColumnStretch(2, 1)
        box.addWidget(self.answers)
        self._level = ""
        self._reason_code = ""
        self.clear()

    def ask(self, level: str) -> None:
        """Start with the reasons."""
        self._level = level
        self._reason_code = ""
        self.reasons.show()
        self.answers.hide()
        self.retranslate()
        self.show()

    def clear(self) -> None:
        self._level = ""
        self._reason_code = ""
        self.question.clear()
        self.hide()

    @property
    def asking(self) -> bool:
        return bool(self._level)

    def retranslate(self) -> None:
        for code, words in REASONS:
            widget = self.reason_buttons[code]
            widget.setText(_(words))
            named(widget, widget.text(), _("What did not go well?"))
        self.yes_button.setText(_("Yes, please call me"))
        named(self.yes_button, self.yes_button.text(), _("Staff call the number you gave"))
        self.no_button.setText(_("No, thank you"))
        named(self.no_button, self.no_button.text())
        if not self._level:
            return
        if self.answers.isHidden():
            self.question.setText(_("We are sorry. What did not go well?"))
        else:
            self.question.setText(
                _("Would you like staff to call you back? They use the phone number you gave.")
            )
        self.question.setAccessibleName(self.question.text())

    def _reason(self, code: str) -> None:
        if not self._level:
            return
        self._reason_code = code
        self.reasons.hide()
        self.answers.show()
        self.retranslate()
        self.yes_button.setFocus()
        self.said.emit(self.question.text())

    def _call_back(self, answer: str) -> None:
        if not self._level or not self._reason_code:
            return
        choice = RatingChoice(self._level, self._reason_code, answer == "yes")
        self.clear()
        self.finished.emit(choice)

    def spoken_text(self) -> str:
        return self.question.text()


class RatingPanel(QWidget):
    """A case's rating on the lookup page: the question, the faces, what follows an unhappy
    face, then thanks. Reports (submission id, RatingChoice)."""

    rated = Signal(str, object)
    changed = Signal()  # its height changed: the page is worked out again
    said = Signal(str)  # read this aloud

    def __init__(self, submission_id: str) -> None:
        super().__init__()
        self.submission_id = submission_id
        box = QVBoxLayout(self)
        box.setContentsMargins(0, 0, 0, 0)
        box.setSpacing(8)
        self.prompt = label(name="help")
        self.faces = FaceRow()
        self.follow_up = RatingFollowUp()
        self.thanks = label(name="muted")
        for widget in (self.prompt, self.faces, self.follow_up, self.thanks):
            box.addWidget(widget)
        self.thanks.hide()
        self.faces.picked.connect(self._picked)
        self.faces.arranged.connect(self.changed)
        self.follow_up.finished.connect(self._done)
        self.follow_up.said.connect(self.said)
        self.retranslate()

    def retranslate(self) -> None:
        self.prompt.setText(_("How satisfied are you with this service? (optional)"))
        self.prompt.setAccessibleName(self.prompt.text())
        self.faces.retranslate(self.prompt.text())
        self.follow_up.retranslate()
        if self.thanks.isVisibleTo(self):
            self.thanks.setText(_("Thank you for your rating."))

    def _picked(self, level: str) -> None:
        choice = RatingChoice(level)
        self.faces.set_enabled(False)
        if choice.asks_why:
            self.follow_up.ask(level)
            self.changed.emit()
            self.follow_up.reason_buttons["long_wait"].setFocus()
            self.said.emit(self.follow_up.spoken_text())
            return
        self._done(choice)

    def _done(self, choice: RatingChoice) -> None:
        self.faces.hide()
        self.prompt.hide()
        self.thanks.setText(_("Thank you for your rating."))
        self.thanks.show()
        self.changed.emit()
        self.rated.emit(self.submission_id, choice)

    def spoken_text(self) -> str:
        if self.follow_up.asking:
            return self.follow_up.spoken_text()
        return self.thanks.text() if self.thanks.isVisibleTo(self) else self.prompt.text()
