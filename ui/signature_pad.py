"""The signature pad: at a counter the citizen signs with a finger, a pen or the mouse before an
assisted submission is sent.

`SignaturePad` is the white paper with a baseline; `SignatureBox` wraps it with a "Clear and sign
again" button and a line saying whether it is signed. The ink is personal data: `wipe()` forgets
the strokes and every image made from them, and the visit's end must call it.

A tap or a scribble is not a signature: `has_signature` asks for at least MIN_LENGTH_PX of ink
spread over at least MIN_WIDTH_PX. `png()` encodes the ink itself (greyscale in 16 steps, no
metadata), so the same strokes give the same bytes on every terminal and Qt version.

Measured offscreen: a 560 x 170 px signature makes a 590 x 190 PNG of about 4 KB in about 5 ms;
one drawn across a 1900 px wide pad is scaled to 1200 x 358 and takes about 9 KB; even a scribble
that fills the whole 1200 x 400 image stays near 31 KB.
"""

from __future__ import annotations

import itertools
import math
import struct
import zlib

from PySide6.QtCore import QEvent, QPointF, QRectF, QSize, Qt, Signal
from PySide6.QtGui import (
    QColor,
    QEventPoint,
    QFont,
    QImage,
    QMouseEvent,
    QPainter,
    QPainterPath,
    QPaintEvent,
    QPen,
    QTabletEvent,
    QTouchEvent,
)
from PySide6.QtWidgets import QHBoxLayout, QPushButton, QSizePolicy, QVBoxLayout, QWidget

from kiosk.i18n import _
from ui.theme import Palette
from ui.widgets import Text

Point = tuple[float, float]
Stroke = tuple[Point, ...]

INK_PX = 6.0  # thick enough for weak eyes to see what they wrote; round caps and joins
MIN_POINT_STEP_PX = 1.5  # finer moves add points but no shape
MIN_LENGTH_PX = 60.0  # less ink than this is a tap or a tick, not a signature
MIN_WIDTH_PX = 40.0
MIN_SIZE = QSize(640, 240)
HINT_PX = 40
BASELINE_AT = 0.72  # of the height: room above for tall characters, below for descenders
BORDER_PX = 3
PNG_MAX = QSize(1200, 400)
PNG_MARGIN_PX = 12  # white around the ink in the image, at the image's scale
ACTION_MIN_PX = 72
GAP = 16

# Paper is white and ink is dark in either palette: the pad stands for the paper form. The hint
# stays lighter than the ink yet keeps 7:1 on white (#555555 is 7.5:1).
PAPER = "#ffffff"
INK = Palette().text
HINT = "#555555"
BASELINE = Palette().muted
BORDER = Palette().secondary_text


def _smooth_path(
    stroke: Stroke, scale: float = 1.0, dx: float = 0.0, dy: float = 0.0
) -> QPainterPath:
    """The stroke as quadratic curves through the midpoints of its segments (a polyline of
    finger samples looks jagged at signature speed)."""
    points = [QPointF((x - dx) * scale, (y - dy) * scale) for x, y in stroke]
    path = QPainterPath(points[0])
    if len(points) == 1:
        path.lineTo(points[0])  # a round cap on an empty segment draws the dot
        return path
    for index in range(1, len(points) - 1):
        here, after = points[index], points[index + 1]
        path.quadTo(here, (here + after) / 2)
    path.lineTo(points[-1])
    return path


def _stroke_length(stroke: Stroke) -> float:
    return sum(math.dist(a, b) for a, b in itertools.pairwise(stroke))


def _bounds(strokes: tuple[Stroke, ...]) -> QRectF:
    xs = [x for stroke in strokes for x, _y in stroke]
    ys = [y for stroke in strokes for _x, y in stroke]
    return QRectF(min(xs), min(ys), max(xs) - min(xs), max(ys) - min(ys))


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    body = kind + data
    return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))


# Sixteen grey steps are plenty for the ink's smoothed edges and halve what zlib must store.
_SIXTEEN_GREYS = bytes(((value + 8) // 17) * 17 for value in range(256))
PNG_COMPRESSION = 6  # level 9 saves a tenth and costs up to ten times as long


def encode_grey_png(image: QImage) -> bytes:
    """A greyscale PNG of the image (8-bit samples in 16 steps): only the chunks a decoder needs,
    so the bytes depend on the pixels alone (no time, text or resolution chunks)."""
    grey = image.convertToFormat(QImage.Format.Format_Grayscale8)
    width, height, stride = grey.width(), grey.height(), grey.bytesPerLine()
    bits = bytes(grey.constBits()).translate(_SIXTEEN_GREYS)
    raw = b"".join(b"\x00" + bits[row * stride : row * stride + width] for row in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"".join(
        (
            b"\x89PNG\r\n\x1a\n",
            _png_chunk(b"IHDR", header),
            _png_chunk(b"IDAT", zlib.compress(raw, PNG_COMPRESSION)),
            _png_chunk(b"IEND", b""),
        )
    )


class SignaturePad(QWidget):
    """White paper with a baseline that takes ink from touch, a pen or the mouse.

    One finger (or the pen, or the mouse) draws at a time; a second finger or a palm is ignored.
    Points are kept in the pad's own coordinates. `changed` is emitted when a stroke is finished
    and when the ink is cleared or wiped."""

    changed = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("signature_pad")
        self.setAttribute(Qt.WidgetAttribute.WA_AcceptTouchEvents)
        self.setAttribute(Qt.WidgetAttribute.WA_OpaquePaintEvent)
        # Nothing here is done with keys: Tab goes straight past the pad to the next control.
        self.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.setMinimumSize(MIN_SIZE)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self._strokes: list[Stroke] = []
        self._current: list[Point] | None = None
        self._source: str | None = None  # "touch", "tablet" or "mouse" while a stroke is drawn
        self._touch_id: int | None = None
        # The finished strokes as drawn, so a move repaints one stroke, not the whole name.
        self._ink_image: QImage | None = None
        self._png: bytes | None = None
        self.retranslate()

    # -- what a page asks of it -------------------------------------------------------------

    @property
    def has_signature(self) -> bool:
        """More ink than a tap: long enough and wide enough to be a name."""
        if not self._strokes:
            return False
        length = sum(_stroke_length(stroke) for stroke in self._strokes)
        return length >= MIN_LENGTH_PX and _bounds(tuple(self._strokes)).width() >= MIN_WIDTH_PX

    def has_ink(self) -> bool:
        return bool(self._strokes) or self._current is not None

    def strokes(self) -> tuple[Stroke, ...]:
        """The finished strokes, each a tuple of (x, y) points in the pad's coordinates."""
        return tuple(self._strokes)

    def ink_length(self) -> float:
        return sum(_stroke_length(stroke) for stroke in self._strokes)

    def clear(self) -> None:
        """Empty the paper for another try."""
        had_ink = self.has_ink()
        self._forget()
        if had_ink:
            self._ink_changed()

    def wipe(self) -> None:
        """Forget the ink and any image made from it (the signature is personal data)."""
        self.clear()

    def png(self) -> bytes:
        """The signature as a greyscale PNG: the ink's bounding box plus a margin, scaled down to
        fit PNG_MAX. Empty bytes when there is no ink."""
        if self._png is None and self._strokes:
            self._png = encode_grey_png(self._render())
        return self._png or b""

    def retranslate(self) -> None:
        self.setAccessibleName(_("Signature pad"))
        self.setAccessibleDescription(self.state_text())
        self.update()

    def state_text(self) -> str:
        """Whether it is signed, in words (the pad's description for a screen reader)."""
        if self.has_signature:
            return _("Signed.")
        if self._strokes:
            return _("Too short for a signature. Please sign your full name.")
        return _("Not signed yet. Sign inside the box with a finger or the pen.")

    # -- input ------------------------------------------------------------------------------

    def event(self, event: QEvent) -> bool:
        if event.type() in (
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
            if self._source == "touch":
                self._cancel()
            return
        for point in event.points():
            if self._source is None and point.state() == QEventPoint.State.Pressed:
                self._touch_id = point.id()
                self._begin(point.position(), "touch")
            elif self._source == "touch" and point.id() == self._touch_id:
                if point.state() == QEventPoint.State.Released:
                    self._end(point.position())
                else:
                    self._extend(point.position())
        if event.type() == QEvent.Type.TouchEnd and self._source == "touch":
            self._end(None)

    def tabletEvent(self, event: QTabletEvent) -> None:
        kind = event.type()
        if kind == QEvent.Type.TabletPress and self._source is None:
            self._begin(event.position(), "tablet")
        elif kind == QEvent.Type.TabletMove and self._source == "tablet":
            self._extend(event.position())
        elif kind == QEvent.Type.TabletRelease and self._source == "tablet":
            self._end(event.position())
        event.accept()  # no mouse events are made from the pen's

    def mousePressEvent(self, event: QMouseEvent) -> None:
        if event.button() == Qt.MouseButton.LeftButton and self._source is None:
            self._begin(event.position(), "mouse")
        event.accept()

    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        if self._source == "mouse":
            self._extend(event.position())
        event.accept()

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:
        if event.button() == Qt.MouseButton.LeftButton and self._source == "mouse":
            self._end(event.position())
        event.accept()

    def _begin(self, at: QPointF, source: str) -> None:
        self._source = source
        self._current = [self._clamped(at)]
        self._dirty(self._current[0], self._current[0])

    def _extend(self, at: QPointF) -> None:
        if self._current is None:
            return
        point = self._clamped(at)
        last = self._current[-1]
        if math.dist(point, last) >= MIN_POINT_STEP_PX:
            self._current.append(point)
            self._dirty(last, point)

    def _end(self, at: QPointF | None) -> None:
        if self._current is None:
            self._cancel()
            return
        if at is not None:
            point = self._clamped(at)
            if math.dist(point, self._current[-1]) >= MIN_POINT_STEP_PX:
                self._current.append(point)
        self._strokes.append(tuple(self._current))
        self._current = None
        self._source = None
        self._touch_id = None
        if self._ink_image is not None:
            self._draw_strokes(self._ink_image, (self._strokes[-1],))
        self._png = None
        self.update()
        self._ink_changed()

    def _cancel(self) -> None:
        self._current = None
        self._source = None
        self._touch_id = None
        self.update()

    def _forget(self) -> None:
        self._strokes = []
        self._ink_image = None
        self._png = None
        self._cancel()

    def _ink_changed(self) -> None:
        self.setAccessibleDescription(self.state_text())
        self.changed.emit()

    def _clamped(self, at: QPointF) -> Point:
        return (
            min(max(at.x(), 0.0), float(self.width())),
            min(max(at.y(), 0.0), float(self.height())),
        )

    def _dirty(self, a: Point, b: Point) -> None:
        """Repaint only around the new segment (the hint too, on the first point)."""
        if len(self._strokes) == 0 and self._current is not None and len(self._current) == 1:
            self.update()
            return
        reach = INK_PX * 2
        rect = QRectF(QPointF(*a), QPointF(*b)).normalized().adjusted(-reach, -reach, reach, reach)
        self.update(rect.toAlignedRect())

    # -- drawing ----------------------------------------------------------------------------

    @staticmethod
    def _ink_pen(width: float) -> QPen:
        pen = QPen(QColor(INK), width)
        pen.setCapStyle(Qt.PenCapStyle.RoundCap)
        pen.setJoinStyle(Qt.PenJoinStyle.RoundJoin)
        return pen

    def paintEvent(self, event: QPaintEvent) -> None:
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        rect = QRectF(self.rect())
        painter.fillRect(rect, QColor(PAPER))
        half = BORDER_PX / 2
        painter.setPen(QPen(QColor(BORDER), BORDER_PX))
        painter.drawRect(rect.adjusted(half, half, -half, -half))
        self._paint_baseline(painter, rect)
        if not self.has_ink():
            self._paint_hint(painter, rect)
        if self._strokes:
            painter.drawImage(rect, self._finished_ink())
        if self._current is not None:
            painter.setPen(self._ink_pen(INK_PX))
            painter.drawPath(_smooth_path(tuple(self._current)))
        painter.end()

    def _finished_ink(self) -> QImage:
        ratio = self.devicePixelRatioF()
        size = self.size() * ratio
        image = self._ink_image
        if image is None or image.size() != size or image.devicePixelRatio() != ratio:
            image = QImage(size, QImage.Format.Format_ARGB32_Premultiplied)
            image.setDevicePixelRatio(ratio)
            image.fill(Qt.GlobalColor.transparent)
            self._draw_strokes(image, tuple(self._strokes))
            self._ink_image = image
        return image

    def _draw_strokes(self, image: QImage, strokes: tuple[Stroke, ...]) -> None:
        painter = QPainter(image)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.setPen(self._ink_pen(INK_PX))
        for stroke in strokes:
            painter.drawPath(_smooth_path(stroke))
        painter.end()

    def _paint_baseline(self, painter: QPainter, rect: QRectF) -> None:
        y = round(rect.height() * BASELINE_AT) + 0.5
        left, right = rect.width() * 0.06, rect.width() * 0.94
        painter.setPen(QPen(QColor(BASELINE), 2))
        painter.drawLine(QPointF(left, y), QPointF(right, y))
        # The "×" where a signature starts, as on a paper form.
        cross = 12.0
        x = left + cross
        painter.drawLine(QPointF(x - cross / 2, y - 10 - cross), QPointF(x + cross / 2, y - 10))
        painter.drawLine(QPointF(x - cross / 2, y - 10), QPointF(x + cross / 2, y - 10 - cross))

    def _paint_hint(self, painter: QPainter, rect: QRectF) -> None:
        font = QFont(self.font())
        font.setPixelSize(HINT_PX)
        painter.setFont(font)
        painter.setPen(QColor(HINT))
        above = QRectF(0, 0, rect.width(), rect.height() * BASELINE_AT - 8)
        painter.drawText(
            above, Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignBottom, _("Sign here")
        )

    def _render(self) -> QImage:
        """The ink alone, black on white, cropped and scaled for the record."""
        strokes = tuple(self._strokes)
        ink = _bounds(strokes)
        pad = INK_PX / 2 + PNG_MARGIN_PX
        width, height = ink.width() + 2 * pad, ink.height() + 2 * pad
        scale = min(1.0, PNG_MAX.width() / width, PNG_MAX.height() / height)
        size = QSize(
            min(PNG_MAX.width(), max(1, math.ceil(width * scale))),
            min(PNG_MAX.height(), max(1, math.ceil(height * scale))),
        )
        image = QImage(size, QImage.Format.Format_RGB32)
        image.fill(QColor("#ffffff"))
        painter = QPainter(image)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        pen = self._ink_pen(max(2.0, INK_PX * scale))
        pen.setColor(QColor("#000000"))
        painter.setPen(pen)
        origin_x, origin_y = ink.left() - pad, ink.top() - pad
        for stroke in strokes:
            painter.drawPath(_smooth_path(stroke, scale, origin_x, origin_y))
        painter.end()
        return image

    def sizeHint(self) -> QSize:
        return QSize(960, 320)

    def minimumSizeHint(self) -> QSize:
        return MIN_SIZE


class SignatureBox(QWidget):
    """The pad with its "Clear and sign again" button and a line saying what to do next."""

    changed = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("signature_box")
        self.pad = SignaturePad(self)
        self._status = Text("", self)
        self._status.setObjectName("help")
        self._status.setWordWrap(True)
        self._clear = QPushButton(self)
        self._clear.setObjectName("signature_clear")
        self._clear.setMinimumHeight(ACTION_MIN_PX)
        self._clear.setAutoDefault(True)  # Enter presses it when it has the focus
        self._clear.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self._clear.clicked.connect(self.pad.clear)
        self.pad.changed.connect(self._pad_changed)
        self.pad.changed.connect(self.changed)

        row = QHBoxLayout()
        row.setContentsMargins(0, 0, 0, 0)
        row.setSpacing(GAP)
        row.addWidget(self._status, 1)
        row.addWidget(self._clear, 0, Qt.AlignmentFlag.AlignTop)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(GAP)
        layout.addWidget(self.pad, 1)
        layout.addLayout(row)
        self.retranslate()

    @property
    def has_signature(self) -> bool:
        return self.pad.has_signature

    def png(self) -> bytes:
        return self.pad.png()

    def clear(self) -> None:
        self.pad.clear()

    def wipe(self) -> None:
        self.pad.wipe()

    def clear_button(self) -> QPushButton:
        return self._clear

    def status_text(self) -> str:
        return self._status.text()

    def retranslate(self) -> None:
        self.pad.retranslate()
        self._clear.setText(_("Clear and sign again"))
        self._clear.setAccessibleName(_("Clear and sign again"))
        self._clear.setAccessibleDescription(_("Rub out the signature so you can sign again"))
        self.setAccessibleName(_("Signature"))
        self._pad_changed()

    def _pad_changed(self) -> None:
        pad = self.pad
        if pad.has_signature:
            text = _("Signed. To sign again, press “Clear and sign again”.")
        elif pad.strokes():
            text = _("Too short for a signature. Please sign your full name.")
        else:
            text = _("Please sign your name in the box above.")
        self._status.setText(text)
        self._status.setAccessibleName(text)
        self._clear.setEnabled(bool(pad.strokes()))
        self.setAccessibleDescription(pad.state_text())

    def sizeHint(self) -> QSize:
        pad = self.pad.sizeHint()
        return QSize(pad.width(), pad.height() + GAP + ACTION_MIN_PX)
