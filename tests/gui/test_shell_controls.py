"""The header's controls, pressed as a person would: text size, high contrast, repeat, call
staff, voice; a visit's end puts the look back for the next person; and a list that must scroll
follows the finger."""

from __future__ import annotations

from collections import Counter
from itertools import combinations

from PySide6.QtCore import QPointF, QRect, Qt
from PySide6.QtGui import QColor, QFontInfo, QImage
from PySide6.QtWidgets import (
    QAbstractItemView,
    QLabel,
    QPushButton,
    QScroller,
    QStyle,
    QStyleOptionButton,
    QTableWidgetItem,
    QWidget,
)
from pytestqt.qtbot import QtBot

from kiosk.session import Step
from tests.gui.conftest import MakeTerminal
from tests.gui.test_visit import present_card, wait_step
from ui.app import Terminal
from ui.queue_page import QueuePage
from ui.shell import Shell
from ui.theme import HIGH_CONTRAST, TEXT_STEPS, Palette, contrast, sizes_for


def click(qtbot: QtBot, widget: QWidget) -> None:
    qtbot.mouseClick(widget, Qt.MouseButton.LeftButton)


def english(qtbot: QtBot, window: Shell) -> None:
    if window.language_button.text() == "English":
        click(qtbot, window.language_button)


def body_label(window: Shell) -> QLabel:
    """A plain body text of the page shown (a label without a heading's or help's name)."""
    page = window.stack.currentWidget()
    found = [
        w for w in page.findChildren(QLabel) if w.isVisible() and w.text() and not w.objectName()
    ]
    assert found, "the page shows no body text"
    return found[0]


def pixel_size(widget: QWidget) -> int:
    return QFontInfo(widget.font()).pixelSize()


def header_buttons(window: Shell) -> list[QPushButton]:
    return [
        window.text_size_button,
        window.contrast_button,
        window.repeat_button,
        window.call_staff_button,
        window.voice_button,
        window.language_button,
    ]


class RefitProbe(QWidget):
    """A page that counts how often the shell asks it to fit itself again."""

    def __init__(self) -> None:
        super().__init__()
        self.refits = 0

    def refit(self) -> None:
        self.refits += 1


# -- what the screen shows, read from the pixels ----------------------------------------------
def _colours(image: QImage, area: QRect) -> Counter[int]:
    part = image.copy(area).convertToFormat(QImage.Format.Format_RGB32)
    bits = part.constBits()
    data = memoryview(bits).cast("B").cast("I")
    per_line = part.bytesPerLine() // 4
    found: Counter[int] = Counter()
    for y in range(part.height()):
        found.update(data[y * per_line : y * per_line + part.width()])
    return found


def _hex(rgb: int) -> str:
    return QColor.fromRgb(rgb).name()


def rendered_pair(widget: QWidget) -> tuple[str, str]:
    """(text, background) as drawn: the background is the commonest colour where the text is,
    the text the colour that stands out most from it."""
    image = widget.grab().toImage()
    area = image.rect()
    if isinstance(widget, QPushButton):
        option = QStyleOptionButton()
        widget.initStyleOption(option)
        contents = QStyle.SubElement.SE_PushButtonContents
        area = widget.style().subElementRect(contents, option, widget)
    colours = _colours(image, area)
    background = colours.most_common(1)[0][0]
    text = max(colours, key=lambda c: contrast(_hex(c), _hex(background)))
    return _hex(text), _hex(background)


def visible_texts_with_colours(window: Shell) -> dict[str, tuple[str, str]]:
    found: dict[str, tuple[str, str]] = {}
    for widget in window.findChildren(QWidget):
        if not widget.isVisible() or widget.width() < 4 or widget.height() < 4:
            continue
        if isinstance(widget, QLabel) and widget.text():
            found[f"label {widget.text()[:30]!r}"] = rendered_pair(widget)
        elif isinstance(widget, QPushButton) and widget.text():
            found[f"button {widget.text()[:30]!r}"] = rendered_pair(widget)
    assert len(found) >= 8, found
    return found


def low_contrast(pairs: dict[str, tuple[str, str]]) -> dict[str, float]:
    return {
        name: round(contrast(fg, bg), 2) for name, (fg, bg) in pairs.items() if contrast(fg, bg) < 7
    }


# -- the tests --------------------------------------------------------------------------------
def test_larger_text_grows_the_type_by_each_step_and_back(
    qtbot: QtBot, make_terminal: MakeTerminal
) -> None:
    terminal = make_terminal()
    window = terminal.window
    english(qtbot, window)
    present_card(qtbot, terminal)
    probe = RefitProbe()
    window.add_page(probe)
    body = body_label(window)
    title = window.stack.currentWidget().findChild(QLabel, "title")
    assert title is not None
    normal_body, normal_title = pixel_size(body), pixel_size(title)
    assert normal_body == sizes_for(0).body_px >= 30
    assert pixel_size(window.hall_label) >= 30
    said = list(terminal.window.voice.spoken)
    labels = []
    steps: list[int] = []
    window.text_step_changed.connect(steps.append)
    for step in (1, 2):
        labels.append(window.text_size_button.text())
        click(qtbot, window.text_size_button)
        want = round(normal_body * TEXT_STEPS[step])
        qtbot.waitUntil(lambda want=want: pixel_size(body) == want, timeout=2000)
        qtbot.waitUntil(lambda: header_problems(window) == [], timeout=2000)
        assert pixel_size(title) == round(normal_title * TEXT_STEPS[step])
        assert pixel_size(window.hall_label) == round(sizes_for(0).help_px * TEXT_STEPS[step])
        assert window.text_step == step
        assert probe.refits == step  # every page was asked to fit itself again
    assert labels == ["Larger text", "Even larger text"]
    assert window.text_size_button.text() == "Normal text size"
    click(qtbot, window.text_size_button)
    qtbot.waitUntil(lambda: pixel_size(body) == normal_body, timeout=2000)
    assert steps == [1, 2, 0]
    assert window.voice.spoken == said  # a new look is not a new page: nothing is said again


def header_problems(window: Shell) -> list[str]:
    """Header controls smaller than 60×60, outside the header, too close to another one (less
    than 8 px apart), or too narrow for their text."""
    header = window.hall_label.parentWidget()
    problems = []
    boxes = [window.hall_label.geometry()]
    for b in header_buttons(window):
        box = b.geometry()
        if box.width() < 60 or box.height() < 60:
            problems.append(f"{b.text()} is small: {box}")
        if not header.rect().contains(box):
            problems.append(f"{b.text()} is outside the header: {box}")
        option = QStyleOptionButton()
        b.initStyleOption(option)
        room = b.style().subElementRect(QStyle.SubElement.SE_PushButtonContents, option, b)
        if b.fontMetrics().horizontalAdvance(b.text()) > room.width():
            problems.append(f"{b.text()} is cut off")
        boxes.append(box)
    for one, other in combinations(boxes, 2):
        apart = max(
            other.left() - one.right() - 1,
            one.left() - other.right() - 1,
            other.top() - one.bottom() - 1,
            one.top() - other.bottom() - 1,
        )
        if apart < 8:
            problems.append(f"{one} and {other} are {apart} px apart")
    return problems


def test_header_controls_stay_large_apart_and_uncut_at_every_size_and_step(
    qtbot: QtBot, make_terminal: MakeTerminal
) -> None:
    terminal = make_terminal()
    window = terminal.window
    english(qtbot, window)  # the longer labels
    for size in ((1080, 1920), (1280, 1024), (1920, 1080)):
        window.resize(*size)
        for step in range(len(TEXT_STEPS)):
            for high in (False, True):
                window.set_text_step(step)
                window.set_high_contrast(high)
                qtbot.waitUntil(lambda size=size: window.size().toTuple() == size, timeout=2000)
                try:
                    qtbot.waitUntil(lambda: header_problems(window) == [], timeout=2000)
                except AssertionError:
                    raise AssertionError((size, step, high, header_problems(window))) from None
    rows = {b.geometry().top() for b in header_buttons(window)}
    assert len(rows) >= 2  # the largest text takes a second row even on the wide panel


def test_high_contrast_changes_the_colours_and_every_text_reaches_7_to_1(
    qtbot: QtBot, make_terminal: MakeTerminal
) -> None:
    terminal = make_terminal()
    window = terminal.window
    english(qtbot, window)
    present_card(qtbot, terminal)
    body = body_label(window)
    normal = visible_texts_with_colours(window)
    assert low_contrast(normal) == {}
    assert rendered_pair(body)[1] == Palette().background
    assert window.contrast_button.text() == "High contrast"
    said = list(window.voice.spoken)
    with qtbot.waitSignal(window.contrast_changed, timeout=2000) as changed:
        click(qtbot, window.contrast_button)
    assert changed.args == [True]
    qtbot.waitUntil(lambda: rendered_pair(body)[1] == HIGH_CONTRAST.background, timeout=2000)
    high = visible_texts_with_colours(window)
    assert low_contrast(high) == {}
    assert rendered_pair(body) == (HIGH_CONTRAST.text, HIGH_CONTRAST.background)
    header_pair = rendered_pair(window.hall_label)
    assert header_pair == (HIGH_CONTRAST.header_text, HIGH_CONTRAST.header)
    assert window.contrast_button.text() == "Standard colours"
    assert window.voice.spoken == said
    click(qtbot, window.contrast_button)
    qtbot.waitUntil(lambda: rendered_pair(body)[1] == Palette().background, timeout=2000)
    assert not window.high_contrast


def test_repeat_says_the_page_again(qtbot: QtBot, make_terminal: MakeTerminal) -> None:
    terminal = make_terminal()
    window = terminal.window
    present_card(qtbot, terminal)
    page = window.stack.currentWidget()
    text = page.spoken_text()  # type: ignore[attr-defined]
    assert text
    before = len(window.voice.spoken)
    click(qtbot, window.repeat_button)
    assert window.voice.spoken[before:] == [text]
    click(qtbot, window.repeat_button)
    assert window.voice.spoken[before:] == [text, text]


def test_call_staff_asks_for_help(qtbot: QtBot, make_terminal: MakeTerminal) -> None:
    terminal = make_terminal()
    window = terminal.window
    english(qtbot, window)
    assert window.call_staff_button.text() == "Call staff"
    with qtbot.waitSignal(window.help_requested, timeout=2000):
        click(qtbot, window.call_staff_button)
    present_card(qtbot, terminal)  # on every page
    with qtbot.waitSignal(window.help_requested, timeout=2000):
        click(qtbot, window.call_staff_button)


def test_the_voice_button_says_what_pressing_it_does(
    qtbot: QtBot, make_terminal: MakeTerminal
) -> None:
    terminal = make_terminal()
    window = terminal.window
    english(qtbot, window)
    assert window.voice.enabled
    assert window.voice_button.text() == "Turn voice off"
    click(qtbot, window.voice_button)
    assert not window.voice.enabled
    assert window.voice_button.text() == "Turn voice on"
    assert window.voice_button.accessibleName() == "Turn voice on"
    assert not window.repeat_button.isEnabled()  # nothing to hear while the voice is off
    before = len(window.voice.spoken)
    present_card(qtbot, terminal)
    assert len(window.voice.spoken) == before
    click(qtbot, window.voice_button)
    assert window.voice.enabled
    assert window.voice_button.text() == "Turn voice off"
    assert window.repeat_button.isEnabled()
    click(qtbot, window.language_button)  # and in Chinese
    assert window.voice_button.text() == "关闭语音"


def test_the_end_of_a_visit_puts_the_look_back(qtbot: QtBot, make_terminal: MakeTerminal) -> None:
    terminal: Terminal = make_terminal()
    window = terminal.window
    present_card(qtbot, terminal)
    click(qtbot, window.text_size_button)
    click(qtbot, window.text_size_button)
    click(qtbot, window.contrast_button)
    assert window.text_step == 2 and window.high_contrast
    steps: list[int] = []
    window.text_step_changed.connect(steps.append)
    with qtbot.waitSignal(window.contrast_changed, timeout=5000) as changed:
        reader = terminal.parts.demo_reader
        assert reader is not None
        reader.remove()  # the citizen walks away with the card
    wait_step(qtbot, terminal, Step.WELCOME)
    assert changed.args == [False]
    assert steps == [0]
    assert window.text_step == 0 and not window.high_contrast
    page = window.stack.currentWidget()
    title = page.findChild(QLabel, "title")
    assert title is not None
    qtbot.waitUntil(lambda: pixel_size(title) == sizes_for(0).title_px, timeout=2000)
    assert rendered_pair(title)[1] == Palette().background


def test_a_finger_drag_scrolls_the_staff_queue_list(qtbot: QtBot) -> None:
    page = QueuePage()
    qtbot.addWidget(page)
    table = page.table
    table.setRowCount(200)
    for row in range(200):
        table.setItem(row, 0, QTableWidgetItem(f"row {row}"))
    page.resize(900, 700)
    page.show()
    qtbot.waitExposed(page)
    viewport = table.viewport()
    # A press and drag on the rows is taken as a scroll gesture, and the scroller moves this
    # list. (Synthetic drags depend on the scroller's frame timing; the wiring is what is
    # checked here.)
    assert QScroller.hasScroller(viewport)
    assert QScroller.grabbedGesture(viewport) != Qt.GestureType(0)
    assert table.verticalScrollMode() is QAbstractItemView.ScrollMode.ScrollPerPixel
    assert table.verticalScrollBar().value() == 0
    QScroller.scroller(viewport).scrollTo(QPointF(0, 400), 0)
    qtbot.waitUntil(lambda: table.verticalScrollBar().value() == 400, timeout=3000)
