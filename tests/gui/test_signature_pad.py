"""The signature pad with real mouse and touch events: what counts as a signature, clearing,
wiping, the PNG kept with the submission, and what keyboard and screen-reader users meet."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pytest
from PySide6.QtCore import QPoint, Qt
from PySide6.QtGui import QColor, QImage, QPointingDevice
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QLineEdit, QPushButton, QVBoxLayout, QWidget
from pytestqt.qtbot import QtBot

from kiosk.i18n import set_language
from ui.signature_pad import (
    INK_PX,
    MIN_SIZE,
    PNG_MARGIN_PX,
    SignatureBox,
    SignaturePad,
)
from ui.theme import Palette, contrast, style_for

WAIT_MS = 2000
Point = tuple[int, int]


def _curve(points: int, fx: Callable[[float], float], fy: Callable[[float], float]) -> list[Point]:
    return [(round(fx(i / (points - 1))), round(fy(i / (points - 1)))) for i in range(points)]


def signature(left: int = 80, top: int = 40, scale: float = 1.0) -> list[list[Point]]:
    """A made-up name written quickly: three characters of a few strokes each and a flourish,
    about 560 x 170 px at scale 1 (the size a citizen writes on a 960 x 320 pad)."""

    def at(stroke: list[tuple[float, float]]) -> list[Point]:
        return [(round(left + x * scale), round(top + y * scale)) for x, y in stroke]

    def line(a: tuple[float, float], b: tuple[float, float], steps: int = 12) -> list[Point]:
        return at(
            [
                (a[0] + (b[0] - a[0]) * t / steps, a[1] + (b[1] - a[1]) * t / steps)
                for t in range(steps + 1)
            ]
        )

    strokes = [
        line((10, 30), (130, 20)),  # 王-like: three bars and a post
        line((20, 75), (120, 70)),
        line((70, 10), (72, 140)),
        line((0, 140), (140, 130)),
        line((200, 20), (180, 150)),  # a 小-like pair of falls and a hook
        line((240, 0), (250, 160)),
        line((290, 40), (320, 120)),
        line((380, 20), (500, 30)),  # the third character's frame
        line((440, 0), (420, 150)),
    ]

    def flourish_x(t: float) -> float:
        return left + (380 + 180 * t) * scale

    def flourish_y(t: float) -> float:
        return top + (110 + 40 * math.sin(t * math.pi * 3)) * scale

    flourish = _curve(40, flourish_x, flourish_y)
    strokes.append(flourish)
    return strokes


def draw_with_mouse(pad: SignaturePad, strokes: Sequence[Sequence[Point]]) -> None:
    for stroke in strokes:
        points = [QPoint(x, y) for x, y in stroke]
        QTest.mousePress(pad, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, points[0])
        for point in points[1:]:
            QTest.mouseMove(pad, point)
        QTest.mouseRelease(
            pad, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, points[-1]
        )


def draw_with_finger(
    pad: SignaturePad, device: QPointingDevice, strokes: Sequence[Sequence[Point]]
) -> None:
    for stroke in strokes:
        points = [QPoint(x, y) for x, y in stroke]
        QTest.touchEvent(pad, device).press(0, points[0], pad).commit()
        for point in points[1:]:
            QTest.touchEvent(pad, device).move(0, point, pad).commit()
        QTest.touchEvent(pad, device).release(0, points[-1], pad).commit()


class Page:
    """A counter page in small: a field before the box and a button after it."""

    def __init__(self, qtbot: QtBot, width: int = 1000, height: int = 600) -> None:
        self.window = QWidget()
        self.window.setStyleSheet(style_for(Palette(), 0))
        layout = QVBoxLayout(self.window)
        layout.setContentsMargins(20, 20, 20, 20)
        layout.setSpacing(16)
        self.before = QLineEdit(self.window)
        self.before.setAccessibleName("before")
        self.box = SignatureBox(self.window)
        self.after = QPushButton("Send", self.window)
        layout.addWidget(self.before)
        layout.addWidget(self.box, 1)
        layout.addWidget(self.after)
        qtbot.addWidget(self.window)
        self.window.resize(width, height)
        self.window.show()
        qtbot.waitExposed(self.window)
        self.pad = self.box.pad


@pytest.fixture
def page(qtbot: QtBot) -> Iterator[Page]:
    made = Page(qtbot)
    yield made
    made.box.wipe()


@pytest.fixture
def finger() -> QPointingDevice:
    return QTest.createTouchDevice(QPointingDevice.DeviceType.TouchScreen)


def dark(color: QColor) -> bool:
    return color.lightness() < 100


def ink_pixels(image: QImage, near: Point, reach: int) -> int:
    x0, y0 = near
    return sum(
        1
        for x in range(max(0, x0 - reach), min(image.width(), x0 + reach + 1))
        for y in range(max(0, y0 - reach), min(image.height(), y0 + reach + 1))
        if dark(image.pixelColor(x, y))
    )


def test_mouse_strokes_make_a_signature(qtbot: QtBot, page: Page) -> None:
    pad = page.pad
    assert not pad.has_signature and pad.strokes() == ()
    strokes = signature()
    with qtbot.waitSignals([pad.changed] * len(strokes), timeout=WAIT_MS):
        draw_with_mouse(pad, strokes)
    assert len(pad.strokes()) == len(strokes)
    for drawn, meant in zip(pad.strokes(), strokes, strict=True):
        assert drawn[0] == pytest.approx(meant[0]) and drawn[-1] == pytest.approx(meant[-1])
    assert pad.has_signature
    assert page.box.status_text() == "已签名。如需重签，请点“重写”。"
    assert pad.accessibleDescription() == "已签名。"
    assert page.box.clear_button().isEnabled()


def test_finger_strokes_make_a_signature(qtbot: QtBot, page: Page, finger: QPointingDevice) -> None:
    pad = page.pad
    strokes = signature(left=120, top=60)
    with qtbot.waitSignal(page.box.changed, timeout=WAIT_MS):
        draw_with_finger(pad, finger, strokes)
    assert len(pad.strokes()) == len(strokes)
    assert pad.strokes()[2][0] == pytest.approx(strokes[2][0])
    assert pad.has_signature
    shot = pad.grab().toImage()
    ratio = shot.devicePixelRatio()
    for stroke in strokes:
        x, y = stroke[len(stroke) // 2]
        assert dark(shot.pixelColor(round(x * ratio), round(y * ratio))), (x, y)


def test_a_second_finger_does_not_draw(qtbot: QtBot, page: Page, finger: QPointingDevice) -> None:
    pad = page.pad
    with qtbot.waitSignal(pad.changed, timeout=WAIT_MS):
        QTest.touchEvent(pad, finger).press(0, QPoint(100, 100), pad).commit()
        QTest.touchEvent(pad, finger).move(0, QPoint(300, 110), pad).press(
            1, QPoint(500, 200), pad
        ).commit()
        QTest.touchEvent(pad, finger).move(0, QPoint(400, 120), pad).move(
            1, QPoint(600, 220), pad
        ).commit()
        QTest.touchEvent(pad, finger).release(0, QPoint(400, 120), pad).release(
            1, QPoint(600, 220), pad
        ).commit()
    (stroke,) = pad.strokes()
    assert all(x <= 400 for x, _y in stroke), stroke


def test_a_tap_a_tick_or_a_bar_is_not_a_signature(qtbot: QtBot, page: Page) -> None:
    pad = page.pad
    with qtbot.waitSignal(pad.changed, timeout=WAIT_MS):
        QTest.mouseClick(pad, Qt.MouseButton.LeftButton, pos=QPoint(300, 150))
    assert len(pad.strokes()) == 1
    assert not pad.has_signature
    assert page.box.status_text() == "签名太短，请写下您的全名。"

    pad.clear()
    draw_with_mouse(pad, [[(300, 40), (310, 80), (330, 200)]])  # long but narrow: 30 px wide
    assert pad.ink_length() > 60
    assert not pad.has_signature
    pad.clear()
    draw_with_mouse(pad, [[(300, 100), (330, 100), (355, 100)]])  # wide but short: 55 px
    assert not pad.has_signature
    draw_with_mouse(pad, [[(400, 100), (410, 100)]])  # with a second stroke: long enough
    assert pad.has_signature


def test_the_clear_button_empties_the_pad(qtbot: QtBot, page: Page) -> None:
    pad, button = page.pad, page.box.clear_button()
    assert not button.isEnabled()  # nothing to clear yet
    draw_with_mouse(pad, signature())
    assert pad.has_signature and pad.png()
    assert button.isVisible() and button.isEnabled()
    assert button.height() >= 60 and button.width() >= 60
    assert button.text() == "重写" and button.accessibleName() == "重写"
    with qtbot.waitSignal(pad.changed, timeout=WAIT_MS):
        QTest.mouseClick(button, Qt.MouseButton.LeftButton)
    assert pad.strokes() == ()
    assert not pad.has_signature
    assert pad.png() == b""
    assert page.box.status_text() == "请在上方框内签上您的名字。"
    assert not button.isEnabled()
    shot = pad.grab().toImage()
    ratio = shot.devicePixelRatio()
    for stroke in signature():
        x, y = stroke[len(stroke) // 2]
        assert not dark(shot.pixelColor(round(x * ratio), round(y * ratio))), (x, y)


def test_png_holds_the_ink_where_it_was_drawn(qtbot: QtBot, page: Page) -> None:
    pad = page.pad
    strokes = signature()
    draw_with_mouse(pad, strokes)
    data = pad.png()
    assert data.startswith(b"\x89PNG")
    image = QImage.fromData(data)
    assert not image.isNull()
    assert image.isGrayscale()
    xs = [x for stroke in strokes for x, _y in stroke]
    ys = [y for stroke in strokes for _x, y in stroke]
    margin = INK_PX / 2 + PNG_MARGIN_PX
    # Cropped to the ink plus the margin, not the whole pad.
    assert image.width() == pytest.approx(max(xs) - min(xs) + 2 * margin, abs=1)
    assert image.height() == pytest.approx(max(ys) - min(ys) + 2 * margin, abs=1)
    left, top = min(xs) - margin, min(ys) - margin
    for stroke in strokes:
        for x, y in stroke[1:-1:3]:
            at = (round(x - left), round(y - top))
            assert ink_pixels(image, at, 2) >= 9, at
    # Where nothing was drawn the image is white: the corners and the middle of a gap.
    for at in (
        (2, 2),
        (image.width() - 3, image.height() - 3),
        (round(240 - left), round(60 - top)),
    ):
        assert ink_pixels(image, at, 1) == 0, at
    dark_share = sum(
        dark(image.pixelColor(x, y))
        for x in range(0, image.width(), 2)
        for y in range(0, image.height(), 2)
    ) / ((image.width() // 2) * (image.height() // 2))
    assert 0.02 < dark_share < 0.3
    assert len(data) < 40_000, len(data)


def test_png_is_the_same_for_the_same_strokes(qtbot: QtBot, page: Page) -> None:
    draw_with_mouse(page.pad, signature())
    first = page.pad.png()
    assert page.pad.png() == first
    other = SignaturePad(page.window)
    other.resize(page.pad.size())
    other.show()
    draw_with_mouse(other, signature())
    assert other.png() == first
    draw_with_mouse(other, [[(700, 250), (760, 260)]])
    assert other.png() != first
    other.deleteLater()


def test_png_of_a_large_pad_is_scaled_down(qtbot: QtBot) -> None:
    made = Page(qtbot, 1900, 900)
    pad = made.pad
    draw_with_mouse(pad, signature(left=40, top=20, scale=3.0))
    image = QImage.fromData(pad.png())
    assert 0 < image.width() <= 1200 and 0 < image.height() <= 400
    assert image.width() == 1200 or image.height() == 400  # as large as the bounds allow
    made.box.wipe()


def test_wipe_forgets_the_ink_and_its_image(qtbot: QtBot, page: Page) -> None:
    pad = page.pad
    draw_with_mouse(pad, signature())
    assert pad.png()
    pad.grab()  # painted: the finished strokes are kept as an image for the next paints
    assert pad._ink_image is not None
    with qtbot.waitSignal(page.box.changed, timeout=WAIT_MS):
        page.box.wipe()
    assert pad.strokes() == ()
    assert not pad.has_ink() and not pad.has_signature
    assert pad._png is None and pad._ink_image is None  # no image of the signature is kept
    assert pad.png() == b""
    assert pad.accessibleDescription() == "尚未签名。请用手指或笔在框内签名。"


def test_a_stroke_in_progress_is_wiped_too(qtbot: QtBot, page: Page) -> None:
    pad = page.pad
    QTest.mousePress(pad, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, QPoint(90, 90))
    QTest.mouseMove(pad, QPoint(300, 120))
    assert pad.has_ink() and pad.strokes() == ()
    pad.wipe()
    assert not pad.has_ink()
    QTest.mouseRelease(
        pad, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, QPoint(300, 120)
    )
    assert pad.strokes() == ()


def hint_pixels(pad: SignaturePad) -> int:
    """Pixels of the hint's grey in the band above the baseline's middle."""
    shot = pad.grab().toImage()
    ratio = shot.devicePixelRatio()
    width, height = shot.width(), shot.height()
    found = 0
    for x in range(width // 3, 2 * width // 3, 2):
        for y in range(round(height * 0.3), round(height * 0.7), 2):
            color = shot.pixelColor(x, y)
            if 60 < color.lightness() < 200 and abs(color.red() - color.blue()) < 8:
                found += 1
    assert ratio > 0
    return found


def test_the_hint_goes_once_there_is_ink(qtbot: QtBot, page: Page) -> None:
    pad = page.pad
    assert hint_pixels(pad) > 20
    QTest.mouseClick(pad, Qt.MouseButton.LeftButton, pos=QPoint(30, pad.height() - 20))
    assert hint_pixels(pad) == 0
    pad.clear()
    assert hint_pixels(pad) > 20


def test_ink_is_thick_and_dark(qtbot: QtBot, page: Page) -> None:
    pad = page.pad
    draw_with_mouse(pad, [[(100, 100), (200, 100), (300, 100)]])
    shot = pad.grab().toImage()
    ratio = shot.devicePixelRatio()
    column = round(200 * ratio)
    near_line = range(round(80 * ratio), round(120 * ratio))
    dark_rows = [y for y in near_line if dark(shot.pixelColor(column, y))]
    assert 4 * ratio <= len(dark_rows) <= 10 * ratio, dark_rows
    assert contrast("#1a1a1a", "#ffffff") >= 7


def test_the_pad_grows_with_its_layout_and_keeps_its_least_size(qtbot: QtBot, page: Page) -> None:
    pad = page.pad
    assert pad.width() >= MIN_SIZE.width() and pad.height() >= MIN_SIZE.height()
    before = pad.size()

    def grown() -> None:
        assert pad.width() > before.width() and pad.height() > before.height()

    page.window.resize(1400, 800)
    qtbot.waitUntil(grown, timeout=WAIT_MS)
    page.window.resize(300, 200)  # the window cannot be made smaller than the pad's least size
    assert pad.width() >= MIN_SIZE.width() and pad.height() >= MIN_SIZE.height()


def test_tab_moves_past_the_pad(qtbot: QtBot, page: Page) -> None:
    page.window.activateWindow()
    page.before.setFocus()
    qtbot.waitUntil(page.before.hasFocus, timeout=WAIT_MS)
    QTest.keyClick(page.before, Qt.Key.Key_Tab)
    assert page.after.hasFocus()  # nothing to clear: the button is off, the pad takes no focus
    draw_with_mouse(page.pad, signature())
    page.before.setFocus()
    QTest.keyClick(page.before, Qt.Key.Key_Tab)
    assert page.box.clear_button().hasFocus()
    QTest.keyClick(page.box.clear_button(), Qt.Key.Key_Tab)
    assert page.after.hasFocus()
    assert not page.pad.hasFocus()


def test_names_for_a_screen_reader(qtbot: QtBot, page: Page) -> None:
    pad, box = page.pad, page.box
    assert pad.accessibleName() == "签名板"
    assert pad.accessibleDescription() == "尚未签名。请用手指或笔在框内签名。"
    assert box.clear_button().accessibleDescription() == "擦掉签名，重新签"
    set_language("en")
    box.retranslate()
    assert pad.accessibleName() == "Signature pad"
    assert box.accessibleName() == "Signature"
    assert box.clear_button().accessibleName() == "Clear and sign again"
    assert pad.accessibleDescription().startswith("Not signed yet")
    draw_with_mouse(pad, signature())
    assert pad.accessibleDescription() == "Signed."
    assert box.status_text().startswith("Signed.")


def test_the_box_as_it_looks(qtbot: QtBot, page: Page, tmp_path: Path) -> None:
    """The empty box, then signed; saved so a person can look at them."""
    empty = page.box.grab()
    assert empty.save(str(tmp_path / "signature_empty.png"))
    draw_with_mouse(page.pad, signature())
    signed = page.box.grab()
    assert signed.save(str(tmp_path / "signature_signed.png"))
    assert empty.toImage() != signed.toImage()
    (tmp_path / "signature.png").write_bytes(page.pad.png())
