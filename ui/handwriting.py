"""The handwriting pad: a citizen writes one Chinese character with a finger, then taps it.

A large square box takes strokes from touch or a mouse; after each stroke the strokes (plain
numbers) go to the recognizer on a worker (kiosk/handwriting.py, zinnia) and the candidates come
back as big buttons beside the box. Tapping a candidate puts it into the text field the page
named (`set_target`) and empties the box.

A classification takes about 4 ms warm on the terminal's CPU, but tens of milliseconds while the
model's pages are first read and more on a busy two-core terminal, so it runs off the GUI thread
through ui/background.py; at most one runs at a time and strokes written meanwhile are classified
as soon as it returns (older answers are dropped). The model is opened on the worker when the pad
is built; if the library or the model is missing the box hides and the pad says so.
"""

from __future__ import annotations

import functools
import logging
import math
import threading
from collections.abc import Callable, Sequence
from typing import Any

from PySide6.QtCore import QEvent, QPointF, QRectF, QSize, Qt, QTimer, Signal
from PySide6.QtGui import (
    QColor,
    QEventPoint,
    QMouseEvent,
    QPainter,
    QPainterPath,
    QPaintEvent,
    QPen,
    QResizeEvent,
    QTouchEvent,
)
from PySide6.QtWidgets import QLineEdit, QPushButton, QWidget

from kiosk.errors import message_for
from kiosk.handwriting import Candidate, HandwritingUnavailable, Recognizer
from kiosk.i18n import _
from ui.background import Background
from ui.theme import Palette
from ui.widgets import Text, ValueButton

log = logging.getLogger(__name__)

RecognizerFactory = Callable[[], Recognizer]
Stroke = tuple[tuple[float, float], ...]

MAX_CANDIDATES = 10
MIN_CANDIDATES = 6
GAP = 16  # between the box, the buttons and the text; touch targets need >= 8 px
CANDIDATE_FONT_PX = 56
CANDIDATE_MIN_PX = 88
ACTION_ROW_PX = 96
SIDE_PANEL_MIN_PX = 380  # narrower than this beside the box: the buttons go below it
MIN_POINT_STEP_PX = 1.5  # finer moves add points but no shape

ACTION_MIN_PX = 72  # Clear and Delete: large, but not the page's tallest buttons (room is short)
_STYLE = f"""
QPushButton#candidate {{
    font-size: {CANDIDATE_FONT_PX}px; min-width: {CANDIDATE_MIN_PX}px;
    min-height: {CANDIDATE_MIN_PX}px; padding: 0;
}}
QPushButton#handwriting_action {{ padding: 4px 12px; min-height: {ACTION_MIN_PX}px; }}
"""


class _Closed(RuntimeError):
    """The pad was shut down while work for it was queued."""


class _Engine:
    """The recognizer as the worker sees it: plain Python, no Qt. Made on first use from the
    factory (on the worker, so the model is read off the GUI thread); its lock keeps one
    classification at a time and makes close() wait for one in progress."""

    def __init__(self, factory: RecognizerFactory) -> None:
        self._factory = factory
        self._lock = threading.Lock()
        self._recognizer: Recognizer | None = None
        self._closed = False

    def load(self) -> None:
        with self._lock:
            self._open()

    def classify(
        self, strokes: Sequence[Stroke], width: float, height: float, count: int
    ) -> list[Candidate]:
        with self._lock:
            return self._open().classify(strokes, width, height, count)

    def _open(self) -> Recognizer:
        if self._closed:
            raise _Closed("the handwriting pad is closed")
        if self._recognizer is None:
            self._recognizer = self._factory()
        return self._recognizer

    def close(self) -> None:
        with self._lock:
            self._closed = True
            if self._recognizer is not None:
                self._recognizer.close()
                self._recognizer = None


def _load(engine: _Engine) -> None:
    engine.load()


def _classify(
    engine: _Engine, generation: int, strokes: tuple[Stroke, ...], width: float, height: float
) -> tuple[int, list[Candidate]]:
    return generation, engine.classify(strokes, width, height, MAX_CANDIDATES)


class _WritingBox(QWidget):
    """The square the citizen writes in: touch or mouse, thick strokes, a faint 田 guide."""

    stroke_finished = Signal()

    def __init__(self, parent: QWidget) -> None:
        super().__init__(parent)
        self.setObjectName("handwriting_box")
        self.setAttribute(Qt.WidgetAttribute.WA_AcceptTouchEvents)
        self.setAttribute(Qt.WidgetAttribute.WA_OpaquePaintEvent)
        self.setFocusPolicy(Qt.FocusPolicy.NoFocus)  # writing must not take the field's focus
        self.strokes: list[Stroke] = []
        self._current: list[tuple[float, float]] | None = None
        self._touch_id: int | None = None
        self.colors = Palette()

    # -- input ------------------------------------------------------------------------------

    def event(self, event: QEvent) -> bool:
        kind = event.type()
        if kind in (
            QEvent.Type.TouchBegin,
            QEvent.Type.TouchUpdate,
            QEvent.Type.TouchEnd,
            QEvent.Type.TouchCancel,
        ) and isinstance(event, QTouchEvent):
            self._touch(event)
            event.accept()
            return True
        return super().event(event)

    def _touch(self, event: QTouchEvent) -> None:
        if event.type() == QEvent.Type.TouchCancel:
            self._cancel()
            return
        for point in event.points():
            if self._touch_id is None and point.state() == QEventPoint.State.Pressed:
                self._touch_id = point.id()
                self._begin(point.position())
            elif point.id() == self._touch_id:
                if point.state() == QEventPoint.State.Released:
                    self._end(point.position())
                    self._touch_id = None
                else:
                    self._extend(point.position())
        if event.type() == QEvent.Type.TouchEnd and self._touch_id is not None:
            self._touch_id = None
            self._end(None)

    def mousePressEvent(self, event: QMouseEvent) -> None:
        if event.button() == Qt.MouseButton.LeftButton and self._touch_id is None:
            self._begin(event.position())
        event.accept()

    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        if self._touch_id is None:
            self._extend(event.position())
        event.accept()

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:
        if event.button() == Qt.MouseButton.LeftButton and self._touch_id is None:
            self._end(event.position())
        event.accept()

    def _begin(self, at: QPointF) -> None:
        self._current = [self._clamped(at)]
        self.update()

    def _extend(self, at: QPointF) -> None:
        if self._current is None:
            return
        point = self._clamped(at)
        last = self._current[-1]
        if math.dist(point, last) >= MIN_POINT_STEP_PX:
            self._current.append(point)
            self.update()

    def _end(self, at: QPointF | None) -> None:
        if self._current is None:
            return
        if at is not None:
            point = self._clamped(at)
            if point != self._current[-1]:
                self._current.append(point)
        self.strokes.append(tuple(self._current))
        self._current = None
        self.update()
        self.stroke_finished.emit()

    def _cancel(self) -> None:
        self._current = None
        self._touch_id = None
        self.update()

    def _clamped(self, at: QPointF) -> tuple[float, float]:
        return (
            min(max(at.x(), 0.0), float(self.width())),
            min(max(at.y(), 0.0), float(self.height())),
        )

    def clear(self) -> None:
        self.strokes = []
        self._cancel()

    def writing(self) -> bool:
        return self._current is not None

    # -- drawing ----------------------------------------------------------------------------

    def pen_width(self) -> float:
        return max(8.0, self.width() / 36)

    def paintEvent(self, event: QPaintEvent) -> None:
        c = self.colors
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        rect = QRectF(self.rect())
        painter.fillRect(rect, QColor(c.background))
        guide = QPen(QColor(c.muted), 2, Qt.PenStyle.DashLine)
        painter.setPen(guide)
        painter.drawLine(QPointF(rect.center().x(), 0), QPointF(rect.center().x(), rect.bottom()))
        painter.drawLine(QPointF(0, rect.center().y()), QPointF(rect.right(), rect.center().y()))
        border = QPen(QColor(c.secondary_text), 4)
        painter.setPen(border)
        painter.drawRect(rect.adjusted(2, 2, -2, -2))
        ink = QPen(QColor(c.text), self.pen_width())
        ink.setCapStyle(Qt.PenCapStyle.RoundCap)
        ink.setJoinStyle(Qt.PenJoinStyle.RoundJoin)
        painter.setPen(ink)
        strokes = list(self.strokes)
        if self._current is not None:
            strokes.append(tuple(self._current))
        for stroke in strokes:
            if len(stroke) == 1:
                painter.drawPoint(QPointF(*stroke[0]))
                continue
            path = QPainterPath(QPointF(*stroke[0]))
            for x, y in stroke[1:]:
                path.lineTo(x, y)
            painter.drawPath(path)
        painter.end()


class HandwritingPad(QWidget):
    """Write one character, choose it from the buttons; it goes into the target field.

    recognizer_factory makes the Recognizer (default: the packaged Simplified Chinese model); it
    is called once, on a worker, and must be a plain function (it runs off the GUI thread).
    background: the terminal's worker helper; without one the pad makes its own. Call
    `shutdown()` when the pad is no longer needed: it closes the recognizer."""

    committed = Signal(str)
    candidates_changed = Signal()  # the candidate buttons show new texts (or none)
    unavailable = Signal(str)  # the recognizer cannot be used; the message for the citizen

    def __init__(
        self,
        recognizer_factory: RecognizerFactory | None = None,
        parent: QWidget | None = None,
        *,
        background: Background | None = None,
    ) -> None:
        super().__init__(parent)
        self.setObjectName("handwriting_pad")
        self.setStyleSheet(_STYLE)
        self._engine = _Engine(recognizer_factory or Recognizer)
        self._own_background = background is None
        self._background = background or Background(self, workers=1)
        self._target: QLineEdit | None = None
        self._generation = 0  # counts changes to the strokes; an answer for an older one is stale
        self._in_flight = False
        self._shut_down = False
        self._model_loaded = False
        self._unavailable_message: str | None = None
        self._candidates: list[str] = []
        self._shown_buttons = MIN_CANDIDATES

        self._box = _WritingBox(self)
        self._box.stroke_finished.connect(self._stroke_finished)
        self._status = Text("", self)
        self._status.setObjectName("help")
        self._status.setWordWrap(True)
        self._buttons: list[ValueButton] = []
        for _index in range(MAX_CANDIDATES):
            candidate = ValueButton("", "", name="candidate")
            candidate.setParent(self)
            candidate.setFocusPolicy(Qt.FocusPolicy.TabFocus)  # a tap keeps the field's cursor
            candidate.setEnabled(False)
            candidate.picked.connect(self._pick)
            self._buttons.append(candidate)
        self._clear = QPushButton(self)
        self._clear.setObjectName("handwriting_action")
        self._clear.setFocusPolicy(Qt.FocusPolicy.TabFocus)
        self._clear.clicked.connect(self.clear_writing)
        self._delete = QPushButton(self)
        self._delete.setObjectName("handwriting_action")
        self._delete.setFocusPolicy(Qt.FocusPolicy.TabFocus)
        self._delete.clicked.connect(self.delete_back)
        self.retranslate()
        # Opened once the constructor has returned: an answer that comes back at once (a missing
        # model) then reaches whoever connected to `unavailable` after building the pad.
        QTimer.singleShot(0, self._start_loading)

    # -- what a page asks of it -------------------------------------------------------------

    def set_target(self, line: QLineEdit | None) -> None:
        """The field a chosen character goes into (None: the pad only emits `committed`)."""
        if self._target is line:
            return
        if self._target is not None:
            self._target.destroyed.disconnect(self._target_gone)
        self._target = line
        if line is not None:
            line.destroyed.connect(self._target_gone)

    def target(self) -> QLineEdit | None:
        return self._target

    def set_colors(self, palette: Palette) -> None:
        """The terminal's palette (normal or high contrast) for the box's ink and guide."""
        self._box.colors = palette
        self._box.update()

    def candidates(self) -> list[str]:
        return list(self._candidates)

    def stroke_count(self) -> int:
        return len(self._box.strokes)

    def is_recognising(self) -> bool:
        """Strokes are with the recognizer and its answer has not come back yet."""
        return self._in_flight

    def is_available(self) -> bool:
        return self._unavailable_message is None

    def spoken_text(self) -> str:
        if self._unavailable_message is not None:
            return self._unavailable_message
        return _("Write one character with your finger in the box, then tap it among the choices.")

    def retranslate(self) -> None:
        self._box.setAccessibleName(_("Handwriting box"))
        self._box.setAccessibleDescription(
            _("Write one character with your finger in the box, then tap it among the choices.")
        )
        self._clear.setText(_("Clear"))
        self._clear.setAccessibleName(_("Clear"))
        self._clear.setAccessibleDescription(_("Rub out what you wrote and write again"))
        self._delete.setText(_("Delete"))
        self._delete.setAccessibleName(_("Delete"))
        self._delete.setAccessibleDescription(_("Delete the last character in the field"))
        self._name_candidates()
        self._update_status()
        self.setAccessibleName(_("Handwriting input"))
        self.setAccessibleDescription(self.spoken_text())

    def wipe(self) -> None:
        """Forget the strokes and the candidates; an answer still on its way is dropped."""
        self._generation += 1
        self._box.clear()
        self._show_candidates([])

    def clear_writing(self) -> None:
        self.wipe()

    def delete_back(self) -> None:
        if self._target is not None:
            self._target.backspace()

    def shutdown(self) -> None:
        """Close the recognizer; answers still on their way go nowhere. Call on the GUI thread
        when the pad is no longer used (it may wait for a classification in progress)."""
        self._shut_down = True
        self.wipe()
        if self._own_background:
            self._background.forget_callbacks()
            self._background.shutdown(wait=True)
        self._engine.close()

    # -- recognition ------------------------------------------------------------------------

    def _stroke_finished(self) -> None:
        self._generation += 1
        self._submit()

    def _submit(self) -> None:
        if self._in_flight or self._shut_down or self._unavailable_message is not None:
            return
        if not self._box.strokes:
            return
        self._in_flight = True
        op = functools.partial(
            _classify,
            self._engine,
            self._generation,
            tuple(self._box.strokes),
            float(self._box.width()),
            float(self._box.height()),
        )
        self._background.run(op, self._recognised, self._failed)

    def _recognised(self, answer: Any) -> None:
        self._in_flight = False
        generation, found = answer
        if generation != self._generation:
            self._submit()  # the strokes changed meanwhile: classify what is there now
            return
        self._show_candidates([c.text for c in found if c.text])

    def _start_loading(self) -> None:
        if self._shut_down:
            return
        self._background.run(functools.partial(_load, self._engine), self._loaded, self._failed)

    def _loaded(self, _value: object) -> None:
        self._model_loaded = True

    def is_loaded(self) -> bool:
        """The model is open (strokes written now wait for no file)."""
        return self._model_loaded

    def _failed(self, exc: BaseException) -> None:
        self._in_flight = False
        if isinstance(exc, HandwritingUnavailable):
            log.warning("handwriting unavailable: %s", exc.detail)
            self._unavailable_message = exc.user_message()
            self.wipe()
            self._update_status()
            self._lay_out(self.width(), self.height())
            self.setAccessibleDescription(self.spoken_text())
            self.unavailable.emit(self._unavailable_message)
            return
        if isinstance(exc, _Closed):
            return
        log.error("handwriting recognition failed", exc_info=exc)
        self._status.setText(message_for(exc))

    def _show_candidates(self, texts: list[str]) -> None:
        self._candidates = texts[:MAX_CANDIDATES]
        for index, candidate in enumerate(self._buttons):
            text = self._candidates[index] if index < len(self._candidates) else ""
            candidate.value = text
            candidate.setText(text)
            candidate.setEnabled(bool(text))
        self._name_candidates()
        self._update_status()
        self.candidates_changed.emit()

    def _name_candidates(self) -> None:
        for index, candidate in enumerate(self._buttons):
            if candidate.value:
                candidate.setAccessibleName(candidate.value)
                candidate.setAccessibleDescription(_("Put this character into the field"))
            else:
                candidate.setAccessibleName(_("Choice {number}").format(number=index + 1))
                candidate.setAccessibleDescription(_("Write a character first"))

    def _update_status(self) -> None:
        if self._unavailable_message is not None:
            self._status.setText(self._unavailable_message)
        elif self._candidates:
            self._status.setText(_("Tap the character you wrote."))
        else:
            self._status.setText(_("Write one character in the box."))
        self._status.setAccessibleName(self._status.text())

    def _pick(self, text: str) -> None:
        if not text:
            return
        if self._target is not None:
            self._target.insert(text)
        self.wipe()
        self.committed.emit(text)

    def _target_gone(self) -> None:
        self._target = None

    # -- layout -----------------------------------------------------------------------------

    def sizeHint(self) -> QSize:
        return QSize(1000, 560)

    def minimumSizeHint(self) -> QSize:
        return QSize(600, 300)

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        self._lay_out(self.width(), self.height())

    def _lay_out(self, width: int, height: int) -> None:
        if self._unavailable_message is not None:
            for child in (self._box, self._clear, self._delete, *self._buttons):
                child.hide()
            self._status.show()
            self._status.setGeometry(0, 0, width, height)
            return
        action_h = max(ACTION_ROW_PX, self._clear.minimumSizeHint().height())
        cell_least = max(CANDIDATE_MIN_PX, self._buttons[0].minimumSizeHint().height())
        below = cell_least + 24 + action_h + 2 * GAP  # the buttons under the box
        side_beside = min(height, width - SIDE_PANEL_MIN_PX - GAP)
        side_above = min(width, height - below - GAP)
        beside = side_beside >= side_above  # whichever gives the larger box
        if beside:
            side = max(120, side_beside)
            self._box.setGeometry(0, 0, side, side)
            left, top, panel_w, panel_h = side + GAP, 0, width - side - GAP, height
            columns = max(2, min(5, (panel_w + GAP) // (130 + GAP)))
            status_h = self._status.heightForWidth(panel_w)
        else:
            # The buttons below the box: one row of candidates, then the action row.
            side = max(120, side_above)
            self._box.setGeometry((width - side) // 2, 0, side, side)
            left, top, panel_w, panel_h = 0, side + GAP, width, height - side - GAP
            columns = max(MIN_CANDIDATES, min(MAX_CANDIDATES, (width + GAP) // (96 + GAP)))
            status_h = 0
        self._status.setVisible(status_h > 0)
        rows = math.ceil(MIN_CANDIDATES / columns)
        # Drop the line rather than shrink the buttons (a line cut short helps nobody; it is
        # spoken anyway); add rows while they stay comfortably tall.
        if status_h > panel_h - action_h - 2 * GAP - rows * (cell_least + GAP):
            status_h = 0
        self._status.setVisible(status_h > 0)
        grid_h = panel_h - action_h - GAP - (status_h + GAP if status_h else 0)
        while (
            rows * columns < MAX_CANDIDATES
            and (grid_h + GAP) // (rows + 1) >= cell_least + 24 + GAP
        ):
            rows += 1
        cell_h = (grid_h - (rows - 1) * GAP) // rows
        cell_w = (panel_w - (columns - 1) * GAP) // columns
        self._status.setGeometry(left, top, panel_w, status_h)
        grid_top = top + (status_h + GAP if status_h else 0)
        self._shown_buttons = min(MAX_CANDIDATES, columns * rows)
        for index, candidate in enumerate(self._buttons):
            row, column = divmod(index, columns)
            candidate.setVisible(index < self._shown_buttons)
            candidate.setGeometry(
                left + column * (cell_w + GAP), grid_top + row * (cell_h + GAP), cell_w, cell_h
            )
        action_top = top + panel_h - action_h
        action_w = (panel_w - GAP) // 2
        self._clear.setGeometry(left, action_top, action_w, action_h)
        self._delete.setGeometry(left + action_w + GAP, action_top, action_w, action_h)

    def shown_candidate_buttons(self) -> list[QPushButton]:
        return [b for b in self._buttons if b.isVisible()]
