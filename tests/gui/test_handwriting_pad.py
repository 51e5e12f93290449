"""The handwriting pad with real input events, the real recognizer and the packaged model."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from typing import ClassVar

import pytest
from PySide6.QtCore import QPoint, QRect, Qt
from PySide6.QtGui import QColor, QPointingDevice
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QLineEdit, QPushButton, QVBoxLayout, QWidget
from pytestqt.qtbot import QtBot

from kiosk.handwriting import Candidate, HandwritingUnavailable, Recognizer
from kiosk.i18n import set_language
from tests.unit.test_handwriting import BOX, CHARACTERS, Point
from ui.handwriting import HandwritingPad
from ui.theme import HIGH_CONTRAST, Palette, contrast, style_for

WAIT_MS = 5000


class ThreadNoting(Recognizer):
    """The real recognizer, noting the threads it was opened and asked on."""

    threads: ClassVar[list[threading.Thread]] = []

    def __init__(self) -> None:
        ThreadNoting.threads.append(threading.current_thread())
        super().__init__()

    def classify(
        self, strokes: Sequence[Sequence[Point]], width: float, height: float, count: int = 10
    ) -> list[Candidate]:
        ThreadNoting.threads.append(threading.current_thread())
        return super().classify(strokes, width, height, count)


class Page:
    def __init__(self, qtbot: QtBot, width: int, height: int) -> None:
        self.window = QWidget()
        self.window.setStyleSheet(style_for(Palette(), 0))
        layout = QVBoxLayout(self.window)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        self.line = QLineEdit(self.window)
        self.pad = HandwritingPad(ThreadNoting, self.window)
        self.pad.set_target(self.line)
        layout.addWidget(self.line)
        layout.addWidget(self.pad, 1)
        qtbot.addWidget(self.window)
        self.window.resize(width, height + self.line.sizeHint().height())
        self.window.show()
        qtbot.waitExposed(self.window)
        self.pad.resize(width, height)  # the layout gives it this; be exact for the size checks


@pytest.fixture
def page(qtbot: QtBot) -> Iterator[Page]:
    ThreadNoting.threads.clear()
    made = Page(qtbot, 1000, 560)
    yield made
    made.pad.shutdown()


def box_point(pad: HandwritingPad, point: Point) -> QPoint:
    box = pad.findChild(QWidget, "handwriting_box")
    assert box is not None
    scale = box.width() / BOX
    return QPoint(round(point[0] * scale), round(point[1] * scale))


def write_with_mouse(qtbot: QtBot, pad: HandwritingPad, strokes: list[list[Point]]) -> None:
    box = pad.findChild(QWidget, "handwriting_box")
    assert box is not None
    for stroke in strokes:
        points = [box_point(pad, p) for p in stroke]
        QTest.mousePress(box, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, points[0])
        for point in points[1:]:
            QTest.mouseMove(box, point)
        QTest.mouseRelease(
            box, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, points[-1]
        )


def write_with_finger(
    pad: HandwritingPad, device: QPointingDevice, strokes: list[list[Point]]
) -> None:
    box = pad.findChild(QWidget, "handwriting_box")
    assert box is not None
    for stroke in strokes:
        points = [box_point(pad, p) for p in stroke]
        QTest.touchEvent(box, device).press(0, points[0], box).commit()
        for point in points[1:]:
            QTest.touchEvent(box, device).move(0, point, box).commit()
        QTest.touchEvent(box, device).release(0, points[-1], box).commit()


def candidate_buttons(pad: HandwritingPad) -> list[QPushButton]:
    return [b for b in pad.findChildren(QPushButton, "candidate") if b.isVisible()]


def action(pad: HandwritingPad, index: int) -> QPushButton:
    buttons = pad.findChildren(QPushButton, "handwriting_action")
    assert len(buttons) == 2
    return buttons[index]


def wait_for(qtbot: QtBot, pad: HandwritingPad, character: str, within: int) -> None:
    def shown() -> None:
        texts = [b.text() for b in candidate_buttons(pad)]
        assert character in texts[:within], texts

    qtbot.waitUntil(shown, timeout=WAIT_MS)


def tap(button: QPushButton) -> None:
    QTest.mouseClick(button, Qt.MouseButton.LeftButton)


def test_writing_and_tapping_a_candidate_fills_the_field(qtbot: QtBot, page: Page) -> None:
    pad = page.pad
    write_with_mouse(qtbot, pad, CHARACTERS["王"])
    assert pad.stroke_count() == 4
    wait_for(qtbot, pad, "王", within=1)
    button = candidate_buttons(pad)[0]
    with qtbot.waitSignal(pad.committed, timeout=WAIT_MS) as committed:
        tap(button)
    assert committed.args == ["王"]
    assert page.line.text() == "王"
    assert pad.stroke_count() == 0
    assert pad.candidates() == []
    assert all(b.text() == "" and not b.isEnabled() for b in candidate_buttons(pad))

    write_with_mouse(qtbot, pad, CHARACTERS["大"])
    wait_for(qtbot, pad, "大", within=1)
    tap(candidate_buttons(pad)[0])
    assert page.line.text() == "王大"


def test_candidates_follow_each_stroke(qtbot: QtBot, page: Page) -> None:
    pad = page.pad
    write_with_mouse(qtbot, pad, CHARACTERS["十"][:1])
    wait_for(qtbot, pad, "一", within=1)
    write_with_mouse(qtbot, pad, CHARACTERS["十"][1:])
    wait_for(qtbot, pad, "十", within=1)


def test_recognition_runs_off_the_gui_thread(qtbot: QtBot, page: Page) -> None:
    write_with_mouse(qtbot, page.pad, CHARACTERS["一"])
    wait_for(qtbot, page.pad, "一", within=1)
    assert ThreadNoting.threads, "the recognizer was never used"
    assert threading.main_thread() not in ThreadNoting.threads


def test_a_finger_writes_like_the_mouse(qtbot: QtBot, page: Page) -> None:
    device = QTest.createTouchDevice()
    pad = page.pad
    write_with_finger(pad, device, CHARACTERS["人"])
    assert pad.stroke_count() == 2
    wait_for(qtbot, pad, "人", within=1)
    tap(candidate_buttons(pad)[0])
    assert page.line.text() == "人"


def test_a_tap_on_a_candidate_does_not_take_the_fields_focus(qtbot: QtBot, page: Page) -> None:
    page.line.setFocus()
    qtbot.waitUntil(page.line.hasFocus, timeout=WAIT_MS)
    write_with_mouse(qtbot, page.pad, CHARACTERS["十"])
    wait_for(qtbot, page.pad, "十", within=1)
    tap(candidate_buttons(page.pad)[0])
    assert page.line.hasFocus()


def test_clear_rubs_out_the_strokes_and_delete_is_backspace(qtbot: QtBot, page: Page) -> None:
    pad = page.pad
    page.line.setText("王大人")
    write_with_mouse(qtbot, pad, CHARACTERS["十"])
    wait_for(qtbot, pad, "十", within=1)
    tap(action(pad, 0))
    assert pad.stroke_count() == 0
    assert pad.candidates() == []
    assert all(b.text() == "" for b in candidate_buttons(pad))
    assert page.line.text() == "王大人"
    tap(action(pad, 1))
    assert page.line.text() == "王大"
    page.line.setCursorPosition(1)
    tap(action(pad, 1))
    assert page.line.text() == "大"


def test_wipe_empties_everything_and_drops_an_answer_on_its_way(qtbot: QtBot, page: Page) -> None:
    pad = page.pad
    write_with_mouse(qtbot, pad, CHARACTERS["王"])
    wait_for(qtbot, pad, "王", within=1)
    write_with_mouse(qtbot, pad, CHARACTERS["一"])  # a fifth stroke: a new answer is on its way
    pad.wipe()
    assert pad.stroke_count() == 0
    assert pad.candidates() == []
    assert pad.is_recognising()
    qtbot.waitUntil(lambda: not pad.is_recognising(), timeout=WAIT_MS)
    assert pad.candidates() == []
    assert all(b.text() == "" and not b.isEnabled() for b in candidate_buttons(pad))
    box = pad.findChild(QWidget, "handwriting_box")
    image = box.grab().toImage()
    ink = QColor(Palette().text)
    assert not any(
        image.pixelColor(x, y) == ink
        for x in range(0, image.width(), 4)
        for y in range(0, image.height(), 4)
    ), "strokes still drawn after wipe"


def test_strokes_are_drawn_thick_in_high_contrast_ink(qtbot: QtBot, page: Page) -> None:
    pad = page.pad
    box = pad.findChild(QWidget, "handwriting_box")
    assert box is not None
    for palette in (Palette(), HIGH_CONTRAST):
        pad.set_colors(palette)
        pad.wipe()
        write_with_mouse(qtbot, pad, [[(40, 200), (260, 200)]])
        image = box.grab().toImage()
        middle = box_point(pad, (100, 200))  # off the guide lines
        assert contrast(palette.text, palette.background) >= 7
        thick = [image.pixelColor(middle.x(), middle.y() + dy).name() for dy in range(-3, 4)]
        assert thick == [palette.text] * 7, thick
        assert image.pixelColor(middle.x(), box_point(pad, (0, 260)).y()).name() == (
            palette.background
        )


@pytest.mark.parametrize(("width", "height"), [(1000, 560), (1180, 520), (1000, 700)])
def test_the_pad_fits_its_region_with_big_targets(
    qtbot: QtBot, page: Page, width: int, height: int
) -> None:
    pad = page.pad
    page.window.resize(width, height + page.line.height())
    pad.resize(width, height)
    box = pad.findChild(QWidget, "handwriting_box")
    assert box is not None
    assert box.width() == box.height() >= 480
    buttons = candidate_buttons(pad)
    actions = [action(pad, 0), action(pad, 1)]
    assert len(buttons) >= 6
    whole = QRect(0, 0, width, height)
    for widget in [box, *buttons, *actions]:
        assert whole.contains(widget.geometry()), (widget.objectName(), widget.geometry())
    for button in [*buttons, *actions]:
        assert button.width() >= 80 and button.height() >= 80, button.geometry()
    for button in buttons:
        assert button.font().pixelSize() >= 40
    targets = [box, *buttons, *actions]
    for i, a in enumerate(targets):
        for b in targets[i + 1 :]:
            grown = a.geometry().adjusted(-8, -8, 8, 8)
            assert not grown.intersects(b.geometry()), (a.geometry(), b.geometry())


def test_every_control_is_named_and_retranslated(qtbot: QtBot, page: Page) -> None:
    pad = page.pad
    controls = [pad, pad.findChild(QWidget, "handwriting_box"), *pad.findChildren(QPushButton)]
    assert all(c.accessibleName() for c in controls)
    assert action(pad, 0).text() == "重写"
    assert action(pad, 1).text() == "删除"
    set_language("en")
    pad.retranslate()
    assert action(pad, 0).text() == "Clear"
    assert action(pad, 1).text() == "Delete"
    assert all(c.accessibleName() for c in controls)
    assert pad.spoken_text() == (
        "Write one character with your finger in the box, then tap it among the choices."
    )
    write_with_mouse(qtbot, pad, CHARACTERS["十"])
    wait_for(qtbot, pad, "十", within=1)
    assert candidate_buttons(pad)[0].accessibleName() == "十"


def _no_model() -> Recognizer:
    raise HandwritingUnavailable("no zinnia model at /nowhere (test)")


def test_a_missing_recognizer_hides_the_box_and_says_so(qtbot: QtBot) -> None:
    window = QWidget()
    qtbot.addWidget(window)
    pad = HandwritingPad(_no_model, window)
    window.resize(1000, 560)
    pad.resize(1000, 560)
    with qtbot.waitSignal(pad.unavailable, timeout=WAIT_MS) as said:
        window.show()
    try:
        assert said.args == ["本机暂不能手写输入，请使用键盘输入。"]
        assert not pad.is_available()
        assert pad.spoken_text() == said.args[0]
        assert not pad.findChild(QWidget, "handwriting_box").isVisible()
        assert not candidate_buttons(pad)
    finally:
        pad.shutdown()


def test_a_target_deleted_elsewhere_is_forgotten(qtbot: QtBot, page: Page) -> None:
    other = QLineEdit(page.window)
    page.pad.set_target(other)
    with qtbot.waitSignal(other.destroyed, timeout=WAIT_MS):
        other.deleteLater()
    assert page.pad.target() is None
    write_with_mouse(qtbot, page.pad, CHARACTERS["一"])
    wait_for(qtbot, page.pad, "一", within=1)
    with qtbot.waitSignal(page.pad.committed, timeout=WAIT_MS):
        tap(candidate_buttons(page.pad)[0])
