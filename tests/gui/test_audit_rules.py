"""Each rule of the accessibility audit, on small hand-built widgets that break it and that keep it:
the audit can fail."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from PySide6.QtCore import QSize, Qt
from PySide6.QtGui import QColor, QIcon, QPixmap
from PySide6.QtWidgets import QFrame, QLabel, QPushButton, QScrollArea, QVBoxLayout, QWidget
from pytestqt.qtbot import QtBot

from ui.audit import (
    CLIPPED,
    CONTRAST,
    FITS_PANEL,
    FONT,
    NAME,
    OUTSIDE_WINDOW,
    SCROLL_BAR,
    SPOKEN,
    TARGET_GAP,
    TARGET_SIZE,
    TEXT_CUT,
    Violation,
    accessible_name,
    audit_page,
    gap_between,
)

BASE = "QWidget { background: #ffffff; color: #1a1a1a; font-size: 32px; }"


class SpokenPage(QWidget):
    def __init__(self, spoken: str = "A page") -> None:
        super().__init__()
        self._spoken = spoken

    def spoken_text(self) -> str:
        return self._spoken


@pytest.fixture
def page(qtbot: QtBot) -> Iterator[SpokenPage]:
    widget = SpokenPage()
    widget.setStyleSheet(BASE)
    widget.resize(800, 600)
    qtbot.addWidget(widget)
    yield widget


def shown(qtbot: QtBot, widget: QWidget) -> None:
    widget.show()
    qtbot.waitExposed(widget)


def broken(page: QWidget, rule: str, window: QWidget | None = None) -> list[Violation]:
    return [v for v in audit_page(page, window or page) if v.rule == rule]


def text_label(  # noqa: PLR0917 - a geometry reads best as x, y, w, h
    parent: QWidget, text: str, x: int, y: int, w: int, h: int, css: str = ""
) -> QLabel:
    widget = QLabel(text, parent)
    widget.setGeometry(x, y, w, h)
    if css:
        widget.setStyleSheet(css)
    return widget


def big_button(  # noqa: PLR0917 - a geometry reads best as x, y, w, h
    parent: QWidget, text: str, x: int, y: int, w: int = 80, h: int = 80
) -> QPushButton:
    widget = QPushButton(text, parent)
    widget.setGeometry(x, y, w, h)
    return widget


def test_a_20_px_label_fails_and_a_32_px_label_passes(qtbot: QtBot, page: SpokenPage) -> None:
    small = text_label(page, "Small words", 20, 20, 400, 60, "font-size: 20px;")
    text_label(page, "Large words", 20, 120, 400, 60)
    shown(qtbot, page)
    found = broken(page, FONT)
    assert len(found) == 1
    assert "Small words" in found[0].widget and found[0].measured == "20 px"
    small.setStyleSheet("font-size: 30px;")
    assert broken(page, FONT) == []


def test_a_50_px_button_fails_and_an_80_px_button_passes(qtbot: QtBot, page: SpokenPage) -> None:
    small = big_button(page, "A", 20, 20, 50, 50)
    big_button(page, "B", 300, 20)
    shown(qtbot, page)
    found = broken(page, TARGET_SIZE)
    assert [v.measured for v in found] == ["50×50 px"]
    small.resize(60, 60)
    assert broken(page, TARGET_SIZE) == []


def test_buttons_4_px_apart_fail_and_12_px_apart_pass(qtbot: QtBot, page: SpokenPage) -> None:
    big_button(page, "A", 20, 20)
    near = big_button(page, "B", 104, 20)  # 20 + 80 + 4
    shown(qtbot, page)
    found = broken(page, TARGET_GAP)
    assert len(found) == 1 and found[0].measured.startswith("4 px")
    near.move(112, 20)
    assert broken(page, TARGET_GAP) == []
    near.move(20, 104)  # one above the other counts the same
    assert [v.measured[:4] for v in broken(page, TARGET_GAP)] == ["4 px"]


def test_gap_between_measures_the_free_space() -> None:
    from PySide6.QtCore import QRect

    assert gap_between(QRect(0, 0, 10, 10), QRect(14, 0, 10, 10)) == 4
    assert gap_between(QRect(0, 0, 10, 10), QRect(5, 5, 10, 10)) == 0  # overlapping
    assert gap_between(QRect(0, 0, 10, 10), QRect(20, 13, 10, 10)) == 10  # diagonal


def test_a_cut_off_label_fails(qtbot: QtBot, page: SpokenPage) -> None:
    text = "A long sentence that wraps onto several lines in a narrow box"
    cut = text_label(page, text, 20, 20, 300, 45)
    cut.setWordWrap(True)
    shown(qtbot, page)
    found = broken(page, TEXT_CUT)
    assert len(found) == 1 and "needs" in found[0].measured
    cut.resize(300, cut.heightForWidth(300))
    assert broken(page, TEXT_CUT) == []


def test_a_button_too_narrow_for_its_text_fails(qtbot: QtBot, page: SpokenPage) -> None:
    narrow = big_button(page, "Basically satisfied", 20, 20, 120, 80)
    shown(qtbot, page)
    assert len(broken(page, TEXT_CUT)) == 1
    narrow.resize(narrow.sizeHint().width(), 80)
    assert broken(page, TEXT_CUT) == []


def test_a_label_outside_its_frame_or_the_window_fails(qtbot: QtBot, page: SpokenPage) -> None:
    frame = QFrame(page)
    frame.setGeometry(20, 20, 300, 100)
    inside = text_label(frame, "Inside", 0, 0, 200, 60)
    text_label(page, "Off the edge", 700, 20, 300, 60)
    shown(qtbot, page)
    assert broken(page, CLIPPED) == []
    assert [v.measured for v in broken(page, OUTSIDE_WINDOW)] == ["right +200 px"]
    inside.move(0, 70)  # its lower part hangs below the frame
    found = broken(page, CLIPPED)
    assert len(found) == 1 and "bottom +30 px" in found[0].measured


def test_an_unnamed_icon_button_fails_and_a_named_one_passes(
    qtbot: QtBot, page: SpokenPage
) -> None:
    pixmap = QPixmap(32, 32)
    pixmap.fill(QColor("#0a4a8f"))
    icon_only = big_button(page, "", 20, 20)
    icon_only.setIcon(QIcon(pixmap))
    icon_only.setIconSize(QSize(32, 32))
    worded = big_button(page, "Help", 200, 20)
    shown(qtbot, page)
    assert accessible_name(worded) == "Help"  # a button's text is its name for screen readers
    found = broken(page, NAME)
    assert len(found) == 1 and found[0].widget.startswith("QPushButton")
    icon_only.setAccessibleName("Call staff")
    assert broken(page, NAME) == []


def test_grey_777_on_white_fails_contrast(qtbot: QtBot, page: SpokenPage) -> None:
    grey = text_label(page, "Grey words", 20, 20, 400, 60, "color: #777777;")
    text_label(page, "Dark words", 20, 120, 400, 60)
    shown(qtbot, page)
    found = broken(page, CONTRAST)
    assert len(found) == 1 and "Grey words" in found[0].widget
    assert found[0].measured.startswith("4.48:1")
    grey.setStyleSheet("color: #3d3d3d;")
    assert broken(page, CONTRAST) == []


def test_contrast_is_measured_as_drawn_in_each_state(qtbot: QtBot, page: SpokenPage) -> None:
    """A checked choice drawn pale on pale: a palette read misses it, the frame does not."""
    choice = big_button(page, "Choice", 20, 20, 300, 90)
    choice.setCheckable(True)
    choice.setStyleSheet(
        "QPushButton { background: #e6edf5; color: #0a2f5c; }"
        "QPushButton:checked { background: #a0a0a0; color: #c8c8c8; }"
    )
    shown(qtbot, page)
    assert broken(page, CONTRAST) == []
    choice.setChecked(True)
    assert len(broken(page, CONTRAST)) == 1


def test_a_text_on_a_transparent_background_is_judged_on_what_is_behind(
    qtbot: QtBot, page: SpokenPage
) -> None:
    box = QFrame(page)
    box.setGeometry(20, 20, 500, 120)
    box.setStyleSheet("QFrame { background: #0a4a8f; }")
    words = text_label(box, "On blue", 10, 10, 400, 60, "background: transparent; color: #1a1a1a;")
    shown(qtbot, page)
    assert len(broken(page, CONTRAST)) == 1  # dark on blue
    words.setStyleSheet("background: transparent; color: #ffffff;")
    assert broken(page, CONTRAST) == []


def test_a_visible_scroll_bar_fails(qtbot: QtBot, page: SpokenPage) -> None:
    area = QScrollArea(page)
    area.setGeometry(20, 20, 400, 300)
    area.setWidgetResizable(True)
    area.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
    body = QWidget()
    column = QVBoxLayout(body)
    rows = [QLabel(f"Line {n}") for n in range(12)]
    for row in rows:
        column.addWidget(row)
    area.setWidget(body)
    shown(qtbot, page)
    qtbot.waitUntil(lambda: area.verticalScrollBar().isVisible(), timeout=2000)
    found = broken(page, SCROLL_BAR)
    assert [v.measured.split()[0] for v in found] == ["vertical"], found
    assert broken(page, CLIPPED)  # the lines below the fold are outside the viewport
    for row in rows[2:]:
        row.hide()
    qtbot.waitUntil(lambda: not area.verticalScrollBar().isVisible(), timeout=2000)
    assert broken(page, SCROLL_BAR) == []


def test_a_page_with_nothing_to_say_fails(qtbot: QtBot) -> None:
    silent = SpokenPage("")
    qtbot.addWidget(silent)
    mute = QWidget()
    qtbot.addWidget(mute)
    talking = SpokenPage("Choose a service")
    qtbot.addWidget(talking)
    for widget in (silent, mute, talking):
        shown(qtbot, widget)
    assert [v.measured for v in broken(silent, SPOKEN)] == ["nothing to say"]
    assert [v.measured for v in broken(mute, SPOKEN)] == ["no spoken_text()"]
    assert broken(talking, SPOKEN) == []


def test_a_window_bigger_than_the_panel_fails(qtbot: QtBot, page: SpokenPage) -> None:
    shown(qtbot, page)
    assert [v.rule for v in audit_page(page, page, panel=QSize(640, 480))].count(FITS_PANEL) == 1
    assert FITS_PANEL not in [v.rule for v in audit_page(page, page, panel=QSize(800, 600))]


def test_a_well_made_page_passes_every_rule(qtbot: QtBot, page: SpokenPage) -> None:
    title = text_label(page, "Choose a service", 20, 20, 600, 60)
    title.setStyleSheet("font-size: 40px; font-weight: bold;")
    big_button(page, "Back", 20, 480, 160, 88)
    big_button(page, "Next", 600, 480, 160, 88).setStyleSheet(
        "background: #0a4a8f; color: #ffffff; border: none;"
    )
    shown(qtbot, page)
    assert audit_page(page, page, panel=QSize(800, 600)) == []


@pytest.mark.parametrize("hidden", [True, False])
def test_hidden_widgets_are_not_judged(qtbot: QtBot, page: SpokenPage, hidden: bool) -> None:
    small = text_label(page, "Small", 20, 20, 200, 60, "font-size: 12px;")
    small.setVisible(not hidden)
    shown(qtbot, page)
    assert bool(broken(page, FONT)) is not hidden


def test_keyboard_focus_only_widgets_count_as_targets(qtbot: QtBot, page: SpokenPage) -> None:
    custom = QWidget(page)
    custom.setGeometry(20, 20, 40, 40)
    custom.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
    shown(qtbot, page)
    assert [v.measured for v in broken(page, TARGET_SIZE)] == ["40×40 px"]
    assert len(broken(page, NAME)) == 1
