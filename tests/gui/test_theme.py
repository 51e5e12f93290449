"""Elder-friendly numbers measured on the real widgets (MIIT 2021, WCAG 2.2)."""

from __future__ import annotations

import pytest
from PySide6.QtWidgets import QLabel, QPushButton, QStyle, QStyleOptionButton, QWidget
from pytestqt.qtbot import QtBot

from tests.gui.conftest import MakeTerminal
from tests.gui.test_visit import open_form
from ui.theme import Palette, contrast


def test_text_colours_meet_aaa_contrast() -> None:
    p = Palette()
    assert contrast(p.text, p.background) >= 7.0
    assert contrast(p.primary_text, p.primary) >= 7.0
    assert contrast(p.secondary_text, p.secondary) >= 7.0
    assert contrast(p.header_text, p.header) >= 7.0
    assert contrast(p.error, p.error_background) >= 4.5
    assert contrast(p.muted, p.background) >= 7.0
    assert contrast(p.text, p.notice_background) >= 7.0


def test_contrast_formula_matches_known_values() -> None:
    assert round(contrast("#000000", "#ffffff"), 1) == 21.0
    assert round(contrast("#777777", "#ffffff"), 2) == 4.48


def test_targets_and_type_are_large_on_the_question_page(
    qtbot: QtBot, make_terminal: MakeTerminal
) -> None:
    terminal = make_terminal()
    window = terminal.window
    visit = terminal.visit
    open_form(qtbot, terminal)
    buttons = [b for b in window.findChildren(QPushButton) if b.isVisible()]
    assert buttons
    for b in buttons:
        assert b.height() >= 60 and b.width() >= 60, (b.text(), b.size())
    labels = [w for w in visit.question.findChildren(QLabel) if w.isVisible() and w.text()]
    for w in labels:
        assert w.fontInfo().pixelSize() >= 18, (w.text(), w.fontInfo().pixelSize())
    assert visit.question.question.fontInfo().pixelSize() >= 30  # the question itself


def test_long_service_summaries_wrap_inside_their_buttons(
    qtbot: QtBot, make_terminal: MakeTerminal
) -> None:
    from kiosk.i18n import set_language
    from tests.gui.test_visit import present_card

    set_language("en")  # the English summaries are the long ones
    terminal = make_terminal()
    visit = terminal.visit
    present_card(qtbot, terminal)
    buttons = visit.services.service_buttons
    assert buttons
    for b in buttons:
        qtbot.waitUntil(lambda b=b: b.label.height() > 0, timeout=2000)
        # the whole text fits: the label is as tall as its wrapped text needs, inside the button
        assert b.label.height() >= b.label.heightForWidth(b.label.width())
        assert b.label.geometry().right() <= b.width()
        assert b.height() >= 88
    assert any(
        b.label.heightForWidth(b.label.width()) > 2 * b.fontMetrics().height() for b in buttons
    )


def _clipped(root: QWidget) -> list[str]:
    """Visible buttons whose text is wider than the room the style leaves for it."""
    found = []
    for w in root.findChildren(QPushButton):
        if not (w.isVisible() and w.text()):
            continue
        option = QStyleOptionButton()
        w.initStyleOption(option)
        room = w.style().subElementRect(QStyle.SubElement.SE_PushButtonContents, option, w)
        if w.fontMetrics().horizontalAdvance(w.text()) > room.width():
            found.append(w.text())
    return found


@pytest.mark.parametrize("size", [(1080, 1920), (1280, 1024), (1920, 1080)])
def test_no_button_is_cut_off_on_any_panel_in_english(
    qtbot: QtBot, make_terminal: MakeTerminal, size: tuple[int, int]
) -> None:
    from kiosk.config import Mode
    from kiosk.session import Step
    from tests.gui.test_visit import answer_residence_permit, submit, type_digits, wait_step

    terminal = make_terminal(mode=Mode.COUNTER)
    window = terminal.window
    window.resize(*size)
    window.language_button.click()  # English: the longest labels
    open_form(qtbot, terminal)
    type_digits(qtbot, terminal, "1")
    # the header with the upload count, the keypad with "Delete"
    qtbot.waitUntil(lambda: window.width() == size[0] and _clipped(window) == [], timeout=2000)
    visit = terminal.visit
    visit.question.line.setText("")
    answer_residence_permit(qtbot, terminal)
    submit(qtbot, terminal)
    wait_step(qtbot, terminal, Step.DONE)
    qtbot.waitUntil(lambda: _clipped(window) == [], timeout=2000)  # the satisfaction levels
