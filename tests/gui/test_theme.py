"""Elder-friendly numbers measured on the real widgets (MIIT 2021, WCAG 2.2), and every page of
every demo service fitting each panel without scrolling, at the default and a larger text size."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from PySide6.QtCore import QEvent, QPoint, QRect, Qt
from PySide6.QtWidgets import (
    QApplication,
    QLabel,
    QPushButton,
    QScrollArea,
    QScrollBar,
    QStyle,
    QStyleOptionButton,
    QWidget,
)
from pytestqt.exceptions import TimeoutError as QtTimeoutError
from pytestqt.qtbot import QtBot

from kiosk.i18n import _, set_language
from kiosk.session import Step
from tests.gui.conftest import MakeTerminal
from tests.gui.test_visit import checked, open_form, present_card, type_digits, wait_step
from ui.app import Terminal
from ui.date_picker import DatePicker
from ui.selfcheck import sample_answer
from ui.theme import Palette, contrast
from ui.widgets import Pager, Text, group_digits, label

PANELS = [(1080, 1920), (1920, 1080), (1280, 1024)]


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
    # the question is the page's heading
    assert visit.question.title is visit.question.question
    assert visit.question.question.text() == "手机号码"
    assert visit.question.question.fontInfo().pixelSize() >= 30
    assert visit.question.progress.fontInfo().pixelSize() < (
        visit.question.question.fontInfo().pixelSize()
    )


def test_long_service_summaries_wrap_inside_their_buttons(
    qtbot: QtBot, make_terminal: MakeTerminal
) -> None:
    set_language("en")  # the English summaries are the long ones
    terminal = make_terminal()
    visit = terminal.visit
    present_card(qtbot, terminal)
    buttons = [b for b in visit.services.service_buttons if b.isVisible()]
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


@pytest.mark.parametrize("size", PANELS)
def test_no_button_is_cut_off_on_any_panel_in_english(
    qtbot: QtBot, make_terminal: MakeTerminal, size: tuple[int, int], tmp_path: Path
) -> None:
    from kiosk.config import Mode
    from tests.gui.counter import (
        Count,
        ask_to_confirm,
        confirm_and_submit,
        open_counter_form,
        type_residence_permit,
    )
    from tests.gui.test_visit import answer_residence_permit, submit

    # The citizen's own pages, with the keypad's "Delete"
    terminal = make_terminal()
    window = terminal.window
    window.resize(*size)
    window.language_button.click()  # English: the longest labels
    open_form(qtbot, terminal)
    type_digits(qtbot, terminal, "1")
    qtbot.waitUntil(lambda: window.width() == size[0] and _clipped(window) == [], timeout=2000)
    visit = terminal.visit
    visit.question.line.setText("")
    answer_residence_permit(qtbot, terminal)
    submit(qtbot, terminal)
    wait_step(qtbot, terminal, Step.DONE)
    qtbot.waitUntil(lambda: _clipped(window) == [], timeout=2000)  # the satisfaction levels

    # A counter's: the header with the staff member and the upload count, the form, the
    # materials, the citizen's confirmation
    counter = make_terminal(mode=Mode.COUNTER, data_dir=tmp_path / "counter")
    window = counter.window
    window.resize(*size)  # in English still: the language is the terminal's, not the visit's
    count = Count()
    open_counter_form(qtbot, counter, count)
    qtbot.waitUntil(lambda: window.width() == size[0] and _clipped(window) == [], timeout=2000)
    type_residence_permit(qtbot, counter, count)
    ask_to_confirm(qtbot, counter, count)
    qtbot.waitUntil(lambda: _clipped(window) == [], timeout=2000)
    # the citizen's page fits the panel as every citizen page does, the signature box too
    assert_fits(qtbot, window, size, "the citizen's confirmation")
    confirm_and_submit(qtbot, counter, count)
    qtbot.waitUntil(lambda: _clipped(window) == [], timeout=2000)


# -- every page fits ------------------------------------------------------------------------------


def _describe(widget: QWidget) -> str:
    text = ""
    if isinstance(widget, QLabel | QPushButton):
        text = widget.text()[:30]
    return f"{type(widget).__name__}({widget.objectName()!r}, {text!r})"


def misfits(window: QWidget, size: tuple[int, int]) -> list[str]:
    """Whatever on the page shown cannot be seen whole without scrolling."""
    # layouts asked for since the last pass are done first, as they are before the next paint
    QApplication.sendPostedEvents(None, QEvent.Type.LayoutRequest)
    found: list[str] = []
    if (window.width(), window.height()) != size:
        found.append(f"the window grew to {window.width()}x{window.height()}")
    page = window.stack.currentWidget()  # type: ignore[attr-defined]
    found += [f"a scroll area on {type(page).__name__}" for _ in page.findChildren(QScrollArea)]
    found += [
        f"a scroll bar in {_describe(bar.parentWidget())}"  # type: ignore[arg-type]
        for bar in window.findChildren(QScrollBar)
        if bar.isVisible()
    ]
    found += [
        f"{_describe(pager)} is still working out its pages"
        for pager in page.findChildren(Pager)
        if pager.isVisible() and not pager.settled()
    ]
    top_left = page.mapTo(window, QPoint(0, 0))
    if not window.rect().contains(QRect(top_left, page.size())):
        found.append(f"the page {QRect(top_left, page.size())} is larger than the window")
    for widget in page.findChildren(QWidget):
        if not widget.isVisible() or widget.width() <= 0 or widget.height() <= 0:
            continue
        where = QRect(widget.mapTo(page, QPoint(0, 0)), widget.size())
        if not page.rect().contains(where):
            found.append(f"{_describe(widget)} at {where} is outside the page {page.rect()}")
        parent = widget.parentWidget()
        if parent not in (None, page) and not parent.rect().contains(widget.geometry()):
            found.append(f"{_describe(widget)} is cut off by {_describe(parent)}")
        if isinstance(widget, QLabel) and widget.wordWrap() and widget.text():
            needed = widget.heightForWidth(widget.width())
            if widget.height() + 2 < needed:
                found.append(f"{_describe(widget)} is {widget.height()} high, needs {needed}")
    return found


def assert_fits(qtbot: QtBot, window: QWidget, size: tuple[int, int], where: str) -> None:
    try:
        qtbot.waitUntil(lambda: misfits(window, size) == [], timeout=2000)
    except QtTimeoutError:
        raise AssertionError(f"{where} at {size}: {misfits(window, size)}") from None


def each_page(
    qtbot: QtBot, window: QWidget, size: tuple[int, int], where: str, pager: Pager
) -> int:
    """Check every page of a pager, turning them with More, then go back to the first; returns
    the number of pages."""
    assert_fits(qtbot, window, size, f"{where} page 1")
    seen = [pager.visible_items()]
    while pager.more_button.isVisible() and pager.more_button.isEnabled():
        qtbot.mouseClick(pager.more_button, Qt.MouseButton.LeftButton)
        assert_fits(qtbot, window, size, f"{where} page {pager.page() + 1}")
        seen.append(pager.visible_items())
    while pager.page() > 0:
        qtbot.mouseClick(pager.previous_button, Qt.MouseButton.LeftButton)
    # each item is on one page only, in order, and the page count says how many pages there are
    shown = [w for items in seen for w in items]
    assert len({id(w) for w in shown}) == len(shown)
    assert shown == [w for w in pager.items() if w in shown]
    assert len(seen) == pager.page_count()
    if len(seen) > 1:
        assert pager.status_text() == _("Page {number} of {total}").format(
            number=1, total=len(seen)
        )
    return len(seen)


def walk_service(
    qtbot: QtBot, terminal: Terminal, index: int, size: tuple[int, int], pages: dict[str, int]
) -> None:
    """One whole visit of the demo service at `index`, checking every page it shows."""
    window, visit = terminal.window, terminal.visit
    present_card(qtbot, terminal)
    each_page(qtbot, window, size, "services", visit.services.list)
    target = visit.services.service_buttons[index]
    visit.services.list.show_item(target)
    qtbot.mouseClick(target, Qt.MouseButton.LeftButton)
    wait_step(qtbot, terminal, Step.GUIDE)
    service = visit.session.service
    assert service is not None
    pages[f"guide:{service.id}"] = each_page(qtbot, window, size, "guide", visit.guide.sections)
    qtbot.mouseClick(visit.guide.start_button, Qt.MouseButton.LeftButton)
    wait_step(qtbot, terminal, Step.QUESTION)
    page = visit.question
    while visit.session.step is Step.QUESTION:
        question = visit.session.current_question
        where = f"{service.id}:{question.field}"
        if question.widget in ("choice", "yesno"):
            pages[where] = each_page(qtbot, window, size, where, page.choices.pager)
        else:
            assert_fits(qtbot, window, size, where)
        if question.widget == "phone":  # the tallest state: an error beside and above the field
            page.line.setText("123")
            qtbot.mouseClick(page.next_button, Qt.MouseButton.LeftButton)
            checked(qtbot, terminal)
            assert page.error.isVisible()
            assert_fits(qtbot, window, size, f"{where} with an error")
        if page.keypad is not None:
            assert all(key.isVisible() for key in page.keypad.buttons.values()), where
        value = sample_answer(service, question, visit.session.answers)
        if question.widget in ("choice", "yesno"):
            wanted = ("true" if value else "false") if question.widget == "yesno" else str(value)
            button = page.choices.button_for(wanted)
            assert button is not None
            page.choices.pager.show_item(button)
            qtbot.mouseClick(button, Qt.MouseButton.LeftButton)
        elif question.widget == "date":
            if page.value() != value:
                page.line.setText(str(value))
        else:
            page.line.setText(str(value))
        qtbot.mouseClick(page.next_button, Qt.MouseButton.LeftButton)
        checked(qtbot, terminal)
        moved_on = visit.session.step is not Step.QUESTION
        assert moved_on or visit.session.current_question is not question, page.error.text()
    wait_step(qtbot, terminal, Step.REVIEW)
    pages[f"review:{service.id}"] = each_page(qtbot, window, size, "review", visit.review.rows)
    with qtbot.waitSignal(visit.submission_done, timeout=15000):
        qtbot.mouseClick(visit.review.submit_button, Qt.MouseButton.LeftButton)
    wait_step(qtbot, terminal, Step.DONE)
    each_page(qtbot, window, size, "done", visit.done.parts)
    assert visit.done.card_reminder.text() == _("Please take your ID card")
    qtbot.mouseClick(visit.done.finish_button, Qt.MouseButton.LeftButton)
    wait_step(qtbot, terminal, Step.WELCOME)
    assert_fits(qtbot, window, size, "welcome")


@pytest.mark.parametrize("language", ["zh_CN", "en"])
@pytest.mark.parametrize("factor", [1.0, 1.4])
@pytest.mark.parametrize("size", PANELS)
def test_every_page_of_every_service_fits_without_scrolling(
    qtbot: QtBot, make_terminal: MakeTerminal, size: tuple[int, int], factor: float, language: str
) -> None:
    set_language(language)
    terminal = make_terminal(font_scale=factor)
    window = terminal.window
    window.resize(*size)
    qtbot.waitUntil(lambda: (window.width(), window.height()) == size, timeout=2000)
    assert_fits(qtbot, window, size, "welcome")
    pages: dict[str, int] = {}
    for index in range(len(terminal.visit.session.catalogue.services)):
        walk_service(qtbot, terminal, index, size, pages)
    assert pages  # the walk saw the guides, the choices and the reviews
    assert not [p for p in terminal.visit.pages() if p.findChildren(QScrollArea)]


# -- paging, dates, digits in groups --------------------------------------------------------------


def test_a_long_list_is_paged_with_previous_and_more(qtbot: QtBot) -> None:
    set_language("zh_CN")
    holder = QWidget()
    qtbot.addWidget(holder)
    holder.setStyleSheet("QPushButton { min-height: 90px; font-size: 30px; }")
    pager = Pager(holder)
    pager.setGeometry(0, 0, 600, 500)
    buttons = [QPushButton(f"item {n}") for n in range(9)]
    pager.set_items(buttons)
    holder.resize(600, 500)
    holder.show()
    qtbot.waitUntil(lambda: pager.page_count() > 1, timeout=2000)
    count = pager.page_count()
    first = pager.visible_items()
    assert first and first[0] is buttons[0]
    assert all(b.isVisible() for b in first)
    assert not any(b.isVisible() for b in buttons if b not in first)
    assert pager.status.text() == f"第 1 页，共 {count} 页"
    assert not pager.previous_button.isEnabled() and pager.more_button.isEnabled()
    assert pager.previous_button.text() == "上一页" and pager.more_button.text() == "更多"
    # what is shown fits above the page buttons
    bottom = max(b.geometry().bottom() for b in first)
    assert bottom < pager.nav.geometry().top()
    qtbot.mouseClick(pager.more_button, Qt.MouseButton.LeftButton)
    second = pager.visible_items()
    assert second and second[0] is buttons[len(first)]
    assert pager.status.text() == f"第 2 页，共 {count} 页"
    assert pager.previous_button.isEnabled()
    qtbot.mouseClick(pager.previous_button, Qt.MouseButton.LeftButton)
    assert pager.visible_items() == first
    # a taller pager needs fewer pages; everything on one page hides the page buttons
    pager.setGeometry(0, 0, 600, 2000)
    qtbot.waitUntil(lambda: pager.page_count() == 1, timeout=2000)
    assert not pager.nav.isVisible()
    assert all(b.isVisible() for b in buttons)
    assert pager.status_text() == ""


def test_paging_follows_the_text_size(qtbot: QtBot) -> None:
    holder = QWidget()
    qtbot.addWidget(holder)
    holder.setStyleSheet("QPushButton { min-height: 60px; }")
    pager = Pager(holder)
    pager.setGeometry(0, 0, 600, 700)
    pager.set_items([QPushButton(f"item {n}") for n in range(6)])
    holder.show()
    qtbot.waitUntil(lambda: pager.page_count() == 1, timeout=2000)
    holder.setStyleSheet("QPushButton { min-height: 200px; }")  # a larger text step
    qtbot.waitUntil(lambda: pager.page_count() > 1, timeout=2000)


def test_the_date_picker_gives_year_month_day(qtbot: QtBot) -> None:
    picker = DatePicker(today=dt.date(2026, 11, 23))
    qtbot.addWidget(picker)
    assert picker.value() == "2026-11-23"
    picker.set_value("2024-02-29")
    qtbot.mouseClick(picker.buttons["year:+1"], Qt.MouseButton.LeftButton)
    assert picker.value() == "2025-02-28"  # no 29 February in 2025
    qtbot.mouseClick(picker.buttons["month:-1"], Qt.MouseButton.LeftButton)
    qtbot.mouseClick(picker.buttons["month:-1"], Qt.MouseButton.LeftButton)
    assert picker.value() == "2025-12-28"  # round the year, the year stays
    qtbot.mouseClick(picker.buttons["year:-10"], Qt.MouseButton.LeftButton)
    for _press in range(4):
        qtbot.mouseClick(picker.buttons["day:+1"], Qt.MouseButton.LeftButton)
    assert picker.value() == "2015-12-01"
    assert picker.values["year"].text() == "2015"
    for _press in range(20):
        qtbot.mouseClick(picker.buttons["year:-10"], Qt.MouseButton.LeftButton)
    assert picker.value().startswith("1900-")
    picker.set_value("not a date")
    assert picker.value() == "2026-11-23"  # today
    for _press in range(3):
        qtbot.mouseClick(picker.buttons["year:+10"], Qt.MouseButton.LeftButton)
    assert picker.value() == "2031-11-23"  # five years ahead at most


def test_the_date_question_answers_with_the_picker(
    qtbot: QtBot, make_terminal: MakeTerminal
) -> None:
    from tests.gui.test_visit import ADDRESS, PHONE, ime_commit, pick_date

    terminal = make_terminal()
    visit = terminal.visit
    page = visit.question
    open_form(qtbot, terminal)
    type_digits(qtbot, terminal, PHONE)
    qtbot.mouseClick(page.next_button, Qt.MouseButton.LeftButton)
    checked(qtbot, terminal)
    page.line.setFocus()
    ime_commit(page.line, ADDRESS)
    qtbot.mouseClick(page.next_button, Qt.MouseButton.LeftButton)
    checked(qtbot, terminal)
    qtbot.mouseClick(page.choices.button_for("work"), Qt.MouseButton.LeftButton)  # type: ignore[arg-type]
    qtbot.mouseClick(page.next_button, Qt.MouseButton.LeftButton)
    checked(qtbot, terminal)
    assert visit.session.current_question.widget == "date"
    assert not page.line.isVisible() and page.keypad is None
    assert page.value() == dt.date.today().isoformat()  # it starts from today
    pick_date(qtbot, terminal, "2024-03-09")
    assert "2024-03-09" in page.spoken_text()
    qtbot.mouseClick(page.next_button, Qt.MouseButton.LeftButton)
    checked(qtbot, terminal)
    assert visit.session.answers["residence_start"] == "2024-03-09"
    qtbot.mouseClick(page.back_button, Qt.MouseButton.LeftButton)
    assert page.date_picker.value() == "2024-03-09"  # back again: it starts from the answer


def test_a_phone_number_shows_in_groups_and_answers_in_digits(
    qtbot: QtBot, make_terminal: MakeTerminal
) -> None:
    terminal = make_terminal()
    visit = terminal.visit
    open_form(qtbot, terminal)
    type_digits(qtbot, terminal, "1381234")
    assert visit.question.line.text() == "138 1234"
    type_digits(qtbot, terminal, "5678")
    assert visit.question.line.text() == "138 1234 5678"
    assert visit.question.value() == "13812345678"
    visit.question.line.setCursorPosition(5)  # after "138 1": the keypad types there
    type_digits(qtbot, terminal, "9")
    assert visit.question.line.text() == "138 1923 4567 8"
    assert visit.question.line.cursorPosition() == 6
    qtbot.mouseClick(visit.question.keypad.buttons["⌫"], Qt.MouseButton.LeftButton)  # type: ignore[union-attr]
    assert visit.question.value() == "13812345678"
    qtbot.mouseClick(visit.question.next_button, Qt.MouseButton.LeftButton)
    checked(qtbot, terminal)
    assert visit.session.answers["phone"] == "13812345678"  # the form's own check accepted it
    assert group_digits("11010519491231002x", (6, 8, 4)) == "110105 19491231 002X"


@pytest.mark.parametrize("size", PANELS)
def test_each_way_of_typing_fits_under_its_field(
    qtbot: QtBot, make_terminal: MakeTerminal, size: tuple[int, int]
) -> None:
    """The address picker, the writing pad and the pinyin keys, each in turn, fit the panel
    with the field, the mode buttons and Back/Next, and leave the panel room to be used."""
    from tests.gui.test_visit import PHONE

    terminal = make_terminal()
    window, visit = terminal.window, terminal.visit
    window.resize(*size)
    page = visit.question
    open_form(qtbot, terminal)
    type_digits(qtbot, terminal, PHONE)
    qtbot.mouseClick(page.next_button, Qt.MouseButton.LeftButton)
    checked(qtbot, terminal)
    assert visit.session.current_question.widget == "address"
    inputs = page.text_inputs
    assert inputs is not None and inputs.isVisible()
    assert inputs.mode == "address"  # the picker first, preselected from the card
    for mode in ("address", "handwriting", "pinyin"):
        qtbot.mouseClick(inputs.mode_buttons[mode], Qt.MouseButton.LeftButton)
        assert inputs.mode == mode
        panel = inputs.panel(mode)
        assert panel is not None and panel.isVisible()
        assert_fits(qtbot, window, size, f"the {mode} panel")
        assert panel.height() >= 300, mode
        assert panel.width() >= 900, mode
        assert page.line.isVisible() and page.next_button.isVisible()
        assert page.line.hasFocus(), mode  # what is typed or written goes into the field


def test_labels_keep_plain_text_and_space_their_lines(qtbot: QtBot) -> None:
    widget = label("<b>张三</b> & 李四\n第二行")
    qtbot.addWidget(widget)
    assert isinstance(widget, Text)
    assert widget.text() == "<b>张三</b> & 李四\n第二行"  # never read as markup
    assert "line-height:130%" in QLabel.text(widget)
    assert "&lt;b&gt;" in QLabel.text(widget)
    widget.clear()
    assert widget.text() == ""


def test_pages_speak_everything_they_show(qtbot: QtBot, make_terminal: MakeTerminal) -> None:
    from tests.gui.test_visit import PHONE, ime_commit

    terminal = make_terminal()
    window, visit = terminal.window, terminal.visit
    present_card(qtbot, terminal)
    said = window.voice.spoken[-1]
    for button in visit.services.service_buttons:
        if button.isVisible():
            assert button.accessibleName() in said
    qtbot.mouseClick(visit.services.service_buttons[0], Qt.MouseButton.LeftButton)
    wait_step(qtbot, terminal, Step.GUIDE)
    said = window.voice.spoken[-1]
    for section in visit.guide.sections.visible_items():
        assert section.accessibleName() in said
    assert "所需材料" in said and visit.guide.sections.status_text() in said
    # a page turned is read out: what is on it now, and which page it is
    assert visit.guide.sections.page_count() > 1
    with qtbot.waitSignal(visit.guide.said, timeout=2000) as turned:
        qtbot.mouseClick(visit.guide.sections.more_button, Qt.MouseButton.LeftButton)
    assert "第 2 页" in turned.args[0]
    assert visit.guide.sections.visible_items()[0].accessibleName() in turned.args[0]
    qtbot.mouseClick(visit.guide.start_button, Qt.MouseButton.LeftButton)
    wait_step(qtbot, terminal, Step.QUESTION)
    page = visit.question
    type_digits(qtbot, terminal, PHONE)
    qtbot.mouseClick(page.next_button, Qt.MouseButton.LeftButton)
    checked(qtbot, terminal)
    page.line.setFocus()
    ime_commit(page.line, "本市和平路12号")
    qtbot.mouseClick(page.next_button, Qt.MouseButton.LeftButton)
    checked(qtbot, terminal)
    said = window.voice.spoken[-1]
    assert said.startswith(page.question.text())
    for text in page.choices.shown_texts():
        assert text in said  # numbered, as on the buttons
    assert page.choices.shown_texts()[0].startswith("1. ")
    for widget in page.findChildren(QPushButton):
        if widget.isVisible():
            assert widget.accessibleName(), _describe(widget)


def test_the_end_page_reminds_to_take_the_card(qtbot: QtBot, make_terminal: MakeTerminal) -> None:
    from tests.gui.test_visit import answer_residence_permit, submit

    terminal = make_terminal()
    visit = terminal.visit
    open_form(qtbot, terminal)
    answer_residence_permit(qtbot, terminal)
    submit(qtbot, terminal)
    done = visit.done
    assert done.card_reminder.text() == "请取回身份证"
    assert done.card_reminder.isVisible()
    assert "请取回身份证" in done.spoken_text() and done.number.text() in done.spoken_text()
    # good news: nothing on it is drawn in the error style
    assert not [w for w in done.findChildren(QWidget) if "error" in w.objectName()]
