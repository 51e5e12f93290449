"""Every demo service, completed with a physical keyboard alone.

A staff member at a counter, or a citizen who cannot use the touch screen, has a keyboard and no
mouse. Every key goes to the widget that has the focus, as a keyboard's keys do: Tab and
Shift+Tab move, Return and Space press, the arrow keys move among the options of a question,
PageDown turns the page of a long list, digits are typed, F2 presents the demo card and Chinese
arrives as an input method's commit to the focused field (a pinyin input method on a physical
keyboard types that way). No mouse event, no setter and no page method acts for the person.

Before every key the focus is checked where the person looks for it: on a control that is shown,
whole inside the window, not covered, and drawn with the theme's focus ring. The ring is checked
in the control's own pixels (its border, at the middle of each edge, is in one of the palette's
focus colours) rather than by comparing the control with and without the focus: taking the focus
away to compare would tell the pinyin keyboard and the address picker that the field was left,
changing what is being measured, and a ring in the focus colour proves more than "some pixels
differ" (a pressed or checked look differs too).
"""

from __future__ import annotations

import calendar
import contextlib
import datetime as dt
import json
import sqlite3
from typing import Any

import pytest
import requests
from PySide6.QtCore import QPoint, QRect, Qt
from PySide6.QtGui import QColor, QInputMethodEvent
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication, QLineEdit, QWidget
from pytestqt.qtbot import QtBot

from kiosk.session import Step
from kiosk.submissions import SubmissionResult
from refplatform.app import API_PREFIX
from refplatform.server import RunningPlatform
from tests.gui.conftest import MakeTerminal
from tests.gui.test_visit import checked, wait_step
from ui.app import Terminal
from ui.theme import palette_for

pytestmark = pytest.mark.qt_log_ignore(
    "PinyinDecoderService::init", "depends on non-bindable properties", "QLineEdit::echoMode"
)

NAME = "张秀英"  # the first demo card (assets/demo/identities.json)
ID_NUMBER = "110101195203080021"
BIRTH_DATE = "1952-03-08"
WAIT_MS = 5000
TAB_LIMIT = 60  # more Tabs than this to reach a control is a trap, not a route

NO = Qt.KeyboardModifier.NoModifier
SHIFT = Qt.KeyboardModifier.ShiftModifier


def _what(widget: QWidget | None) -> str:
    if widget is None:
        return "nothing"
    text = widget.text() if isinstance(widget, QLineEdit) else ""
    label = widget.accessibleName() or getattr(widget, "text", lambda: "")() or text
    return f"{type(widget).__name__}({widget.objectName()!r}, {label!r})"


def _ring_colours() -> set[str]:
    palette = palette_for(False)
    return {
        QColor(c).name() for c in (palette.focus, palette.focus_on_primary, palette.focus_on_header)
    }


class Keyboard:
    """A physical keyboard on the terminal; checks the focus before each key and counts keys."""

    def __init__(self, qtbot: QtBot, terminal: Terminal) -> None:
        self.qtbot = qtbot
        self.terminal = terminal
        self.window = terminal.window
        self.keys = 0
        self.commits = 0  # Chinese text committed by the input method
        self._rings = _ring_colours()

    # -- where the focus is --------------------------------------------------------------------

    def focused(self) -> QWidget:
        """The control with the focus, checked as a person would look for it."""
        widget = QApplication.focusWidget()
        assert widget is not None, "nothing has the keyboard focus"
        what = _what(widget)
        window = self.window
        assert widget.window() is window, f"the focus is outside the terminal's window: {what}"
        assert widget.hasFocus(), what
        assert widget.isVisible(), f"the focus is on a control that is not shown: {what}"
        assert widget.isEnabled(), f"the focus is on a disabled control: {what}"
        box = QRect(widget.mapTo(window, QPoint(0, 0)), widget.size())
        assert window.rect().contains(box), f"{what} is not whole inside the window: {box}"
        hit = window.childAt(widget.mapTo(window, widget.rect().center()))
        assert hit is widget or (hit is not None and widget.isAncestorOf(hit)), (
            f"{what} is covered by {_what(hit)}"
        )
        assert self.shows_ring(widget), f"{what} has the focus but no focus ring is drawn"
        return widget

    def shows_ring(self, widget: QWidget) -> bool:
        """The middle of each edge of the control is drawn in a focus colour (the ring is
        4-5 px wide; 2 px in from the edge is inside it, clear of the rounded corners)."""
        image = widget.grab().toImage()
        width, height = image.width(), image.height()
        if width < 8 or height < 8:
            return False
        points = [
            (2, height // 2),
            (width - 3, height // 2),
            (width // 2, 2),
            (width // 2, height - 3),
        ]
        return all(image.pixelColor(x, y).name() in self._rings for x, y in points)

    def page(self) -> QWidget:
        return self.window.stack.currentWidget()

    def focus_in_page(self) -> QWidget:
        """A page just came up: the focus is on one of its controls, ready for the next key."""
        page = self.page()
        widget = self.focused()
        assert page.isAncestorOf(widget), (
            f"the {type(page).__name__} came up with the focus on {_what(widget)}, outside it"
        )
        return widget

    # -- keys --------------------------------------------------------------------------------

    def press(self, key: Qt.Key, modifier: Qt.KeyboardModifier = NO) -> None:
        QTest.keyClick(self.focused(), key, modifier)
        self.keys += 1

    def type(self, text: str) -> None:
        """Characters a keyboard has keys for (digits here)."""
        for character in text:
            QTest.keyClick(self.focused(), Qt.Key(ord(character)))  # Key_0.. carry their text
            self.keys += 1

    def commit(self, text: str) -> None:
        """Chinese from the input method: its commit goes to the focused field."""
        widget = self.focused()
        assert isinstance(widget, QLineEdit), f"Chinese is committed to {_what(widget)}"
        event = QInputMethodEvent()
        event.setCommitString(text)
        QApplication.sendEvent(widget, event)
        self.commits += 1

    def tab_to(self, target: QWidget) -> None:
        """Tab (or Shift+Tab, whichever is the shorter way round) until the target has the focus."""
        what = _what(target)
        assert target.isVisible() and target.isEnabled(), f"{what} cannot take the focus"
        assert target.focusPolicy() & Qt.FocusPolicy.TabFocus, f"Tab never stops on {what}"
        forward = _tabs(self.focused(), target, True)
        backward = _tabs(self.focused(), target, False)
        modifier = SHIFT if backward < forward else NO
        visited: list[str] = []
        for _turn in range(TAB_LIMIT):
            if self.focused() is target:
                return
            self.press(Qt.Key.Key_Tab, modifier)
            visited.append(_what(QApplication.focusWidget()))
        raise AssertionError(f"Tab does not reach {what}; it goes round {visited[:25]}")


def _tabs(start: QWidget, target: QWidget, forward: bool) -> int:
    """How many Tabs Qt would take from start to target (its own rule for what Tab stops on)."""
    window = start.window()
    widget = start
    stops = 0
    for _step in range(2000):
        widget = widget.nextInFocusChain() if forward else widget.previousInFocusChain()
        if widget is start:
            break
        if (
            widget.focusPolicy() & Qt.FocusPolicy.TabFocus
            and widget.isVisibleTo(window)
            and widget.isEnabled()
            and widget.window() is window
            and widget.focusProxy() is None
        ):
            stops += 1
            if widget is target:
                return stops
    return 10_000


def _stored_answers(server: RunningPlatform, result: SubmissionResult) -> dict[str, Any]:
    """What the platform holds: its state over HTTP, the request as it stored it."""
    answer = requests.get(
        f"{server.base_url}{API_PREFIX}/submissions/{result.submission_id}", timeout=10
    )
    assert answer.status_code == 200
    assert answer.json()["receipt_number"] == result.receipt_number
    with contextlib.closing(sqlite3.connect(f"file:{server.db_path}?mode=ro", uri=True)) as db:
        rows = db.execute(
            "SELECT service_id, request_json FROM submissions WHERE submission_id = ?",
            (result.submission_id,),
        ).fetchall()
    assert len(rows) == 1
    answers = json.loads(rows[0][1])["answers"]
    assert isinstance(answers, dict)
    return {"service_id": rows[0][0], **answers}


class Visit:
    """The steps of a visit, each done with keys."""

    def __init__(self, keyboard: Keyboard) -> None:
        self.kb = keyboard
        self.qtbot = keyboard.qtbot
        self.terminal = keyboard.terminal
        self.visit = keyboard.terminal.visit

    def start(self, service_id: str, size: tuple[int, int]) -> None:
        """The demo card with F2, the service chosen from the list, the guide's Start."""
        window = self.kb.window
        window.resize(*size)
        self.qtbot.waitUntil(lambda: window.size().toTuple() == size, timeout=WAIT_MS)
        window.activateWindow()
        self.qtbot.waitUntil(window.isActiveWindow, timeout=WAIT_MS)
        wait_step(self.qtbot, self.terminal, Step.WELCOME)
        # F2 is the window's: it works wherever the focus is (where that should be on this
        # page: test_the_welcome_page_starts_on_its_action)
        self.kb.focused()
        self.kb.press(Qt.Key.Key_F2)
        wait_step(self.qtbot, self.terminal, Step.SERVICES)
        services = self.visit.services
        wanted = next(b for b in services.service_buttons if b.value == service_id)
        self.kb.focus_in_page()
        for _turn in range(len(services.service_buttons)):
            if wanted.isVisible():
                break
            self.kb.press(Qt.Key.Key_PageDown)
        assert wanted.isVisible(), "PageDown does not bring the service into view"
        self.kb.tab_to(wanted)
        self.kb.press(Qt.Key.Key_Return)
        wait_step(self.qtbot, self.terminal, Step.GUIDE)
        assert self.kb.focus_in_page() is self.visit.guide.start_button
        self.kb.press(Qt.Key.Key_Return)
        self.on_question("phone")

    def on_question(self, field: str) -> None:
        visit = self.visit
        self.qtbot.waitUntil(
            lambda: (
                visit.session.step is Step.QUESTION
                and visit.session.current_question.field == field
                and self.kb.page() is visit.question
            ),
            timeout=WAIT_MS,
        )
        self.kb.focus_in_page()

    def next_question(self, field: str | None) -> None:
        """To Next (a typed field's Return is Next), pressed; then the next question."""
        page = self.visit.question
        if not isinstance(self.kb.focused(), QLineEdit):
            self.kb.tab_to(page.next_button)
        self.kb.press(Qt.Key.Key_Return)
        checked(self.qtbot, self.terminal)
        assert not page.error.isVisible(), page.error.text()
        if field is None:
            wait_step(self.qtbot, self.terminal, Step.REVIEW)
            self.kb.focus_in_page()
        else:
            self.on_question(field)

    def digits(self, text: str) -> None:
        page = self.visit.question
        assert self.kb.focused() is page.line, "the field of digits does not have the focus"
        self.kb.type(text)

    def choose(self, value: str) -> None:
        """Arrow keys to the option, Space to choose it."""
        choices = self.visit.question.choices
        wanted = choices.button_for(value)
        assert wanted is not None, value
        assert self.kb.focused() in choices.buttons(), "the options do not have the focus"
        order = choices.buttons()
        for _turn in range(len(order)):
            if self.kb.focused() is wanted:
                break
            ahead = order.index(wanted) > order.index(self.kb.focused())
            if not wanted.isVisible():
                self.kb.press(Qt.Key.Key_PageDown if ahead else Qt.Key.Key_PageUp)
            else:
                self.kb.press(Qt.Key.Key_Down if ahead else Qt.Key.Key_Up)
        assert self.kb.focused() is wanted, f"the arrow keys do not reach {_what(wanted)}"
        if not wanted.isChecked():
            self.kb.press(Qt.Key.Key_Space)
        assert wanted.isChecked()
        assert self.visit.question.value() in (value, value == "true")

    def pick_date(self, wanted: dt.date) -> None:
        """The picker's buttons, each reached with Tab and pressed with Return."""
        picker = self.visit.question.date_picker

        def now() -> dt.date:
            return dt.date.fromisoformat(picker.value())

        def press(key: str) -> None:
            before = picker.value()
            self.kb.tab_to(picker.buttons[key])
            self.kb.press(Qt.Key.Key_Return)
            assert picker.value() != before, f"Return on {key} does not change the date"

        for _turn in range(200):
            if now().year == wanted.year:
                break
            gap = wanted.year - now().year
            press(("year:+" if gap > 0 else "year:-") + ("10" if abs(gap) >= 6 else "1"))
        for _turn in range(12):
            if now().month == wanted.month:
                break
            forward = (wanted.month - now().month) % 12
            press("month:+1" if forward <= 6 else "month:-1")
        last = calendar.monthrange(wanted.year, wanted.month)[1]
        for _turn in range(31):
            if now().day == wanted.day:
                break
            forward = (wanted.day - now().day) % last
            press("day:+1" if forward <= last // 2 else "day:-1")
        assert self.visit.question.value() == wanted.isoformat()

    def finish(self) -> SubmissionResult:
        """Every page of the answers read (PageDown), Submit pressed, the receipt shown."""
        visit = self.visit
        review = visit.review
        for _turn in range(6):
            more = review.rows.more_button
            if not (more.isVisible() and more.isEnabled()):
                break
            before = review.rows.page()
            self.kb.press(Qt.Key.Key_PageDown)
            # The page comes up with the focus on Submit: PageDown turns the answers' page from
            # there, as it does from inside the list.
            assert review.rows.page() == before + 1, (
                f"PageDown with the focus on {_what(QApplication.focusWidget())} does not turn "
                "the answers' page"
            )
        if self.kb.focused() is not review.submit_button:
            self.kb.tab_to(review.submit_button)
        with self.qtbot.waitSignal(visit.submission_done, timeout=15_000) as done:
            self.kb.press(Qt.Key.Key_Return)
        wait_step(self.qtbot, self.terminal, Step.DONE, timeout=15_000)
        result = done.args[0]
        assert isinstance(result, SubmissionResult)
        assert result.delivered and result.receipt_number
        assert visit.done.number.text() == result.receipt_number
        assert visit.done.number.isVisible()
        assert self.kb.focus_in_page() is visit.done.finish_button
        return result

    def end(self) -> None:
        """Finish, from the keyboard: the terminal is back at the start."""
        self.kb.press(Qt.Key.Key_Return)
        wait_step(self.qtbot, self.terminal, Step.WELCOME)


def test_the_welcome_page_starts_on_its_action(keyboard: Keyboard, qtbot: QtBot) -> None:
    """The first page a keyboard meets has the focus on what it is for (the demo card here),
    as every later page has on its own action, not on a header control."""
    window = keyboard.window
    window.activateWindow()
    qtbot.waitUntil(window.isActiveWindow, timeout=WAIT_MS)
    wait_step(qtbot, keyboard.terminal, Step.WELCOME)
    keyboard.focus_in_page()


def test_tab_from_the_address_field_reaches_the_place_picker_first(
    keyboard: Keyboard,
) -> None:
    """Tab goes through a page as it is laid out: from the answer field to the ways of typing
    it (the mode buttons, the address picker), and only then to Back and Next; the places of
    the picker come before its own row of buttons under them."""
    steps = Visit(keyboard)
    page = steps.visit.question
    steps.start("senior-card", (1920, 1080))
    steps.digits("13912345678")
    steps.next_question("address")
    inputs = page.text_inputs
    assert inputs is not None
    picker: Any = inputs.panel("address")
    keyboard.press(Qt.Key.Key_Tab)
    assert inputs.isAncestorOf(keyboard.focused()), (
        f"Tab from the address field goes to {_what(QApplication.focusWidget())}, "
        "not to the ways of typing the address"
    )
    keyboard.tab_to(picker.change_button)
    keyboard.press(Qt.Key.Key_Return)  # the provinces
    places = picker.grid.visible_buttons()
    keyboard.tab_to(picker.skip_button)
    keyboard.press(Qt.Key.Key_Tab)
    assert keyboard.focused() is places[0], (
        f"Tab after the picker's top row goes to {_what(QApplication.focusWidget())}, "
        "not to the first place"
    )


@pytest.fixture
def keyboard(qtbot: QtBot, make_terminal: MakeTerminal) -> Keyboard:
    return Keyboard(qtbot, make_terminal())


def _report(keyboard: Keyboard, service: str) -> None:
    print(f"\n{service}: {keyboard.keys} keys, {keyboard.commits} input-method commits")


def test_residence_permit_by_keyboard(keyboard: Keyboard, platform_server: RunningPlatform) -> None:
    steps = Visit(keyboard)
    page = steps.visit.question
    steps.start("residence-permit", (1080, 1920))
    steps.digits("13912345678")
    assert page.line.text() == "139 1234 5678"
    steps.next_question("address")

    # The card's region is offered; the person lives elsewhere: Change, then the places.
    inputs = page.text_inputs
    assert inputs is not None and inputs.mode == "address"
    picker: Any = inputs.panel("address")
    assert picker is not None and picker.is_done()
    keyboard.tab_to(picker.change_button)
    keyboard.press(Qt.Key.Key_Return)
    for code in ("440000", "440300", "440304"):  # 广东 → 深圳 → 福田
        # Each step of the picker leaves the focus in the picker, on the list now shown.
        focus = keyboard.focused()
        assert picker.isAncestorOf(focus), (
            f"after a step of the address picker the focus fell to {_what(focus)}"
        )
        wanted = next(b for b in picker.grid.buttons() if b.value == code)
        for _turn in range(picker.grid.page_count()):
            if wanted.isVisible():
                break
            keyboard.tab_to(picker.more_button)
            keyboard.press(Qt.Key.Key_Return)
        keyboard.tab_to(wanted)
        keyboard.press(Qt.Key.Key_Return)
    assert page.line.text() == "广东省深圳市福田区"
    assert keyboard.focused() is page.line  # the street is typed next, after the region
    keyboard.commit("福华路")
    keyboard.type("88")
    keyboard.commit("号")
    address = "广东省深圳市福田区福华路88号"
    assert page.line.text() == address
    steps.next_question("reason")

    steps.choose("work")
    steps.next_question("residence_start")
    assert keyboard.focused() is page.next_button  # Return takes the date shown
    steps.pick_date(dt.date(2025, 6, 1))
    steps.next_question("collection")
    steps.choose("hall")
    steps.next_question(None)

    result = steps.finish()
    assert _stored_answers(platform_server, result) == {
        "service_id": "residence-permit",
        "name": NAME,
        "id_number": ID_NUMBER,
        "phone": "13912345678",
        "address": address,
        "reason": "work",
        "residence_start": "2025-06-01",
        "collection": "hall",
    }
    steps.end()
    _report(keyboard, "residence-permit")


def test_pension_certification_by_keyboard(
    keyboard: Keyboard, platform_server: RunningPlatform
) -> None:
    steps = Visit(keyboard)
    steps.start("pension-certification", (1280, 1024))
    steps.digits("13800138000")
    steps.next_question("living_at_registered_address")
    steps.choose("true")
    steps.next_question("receiving_other_pension")
    steps.choose("false")
    steps.next_question("bank_card_last4")
    steps.digits("0427")
    assert steps.visit.question.value() == "0427"
    steps.next_question(None)
    result = steps.finish()
    assert _stored_answers(platform_server, result) == {
        "service_id": "pension-certification",
        "name": NAME,
        "id_number": ID_NUMBER,
        "phone": "13800138000",
        "living_at_registered_address": True,
        "receiving_other_pension": False,
        "bank_card_last4": "0427",
    }
    steps.end()
    _report(keyboard, "pension-certification")


def test_senior_card_by_keyboard(keyboard: Keyboard, platform_server: RunningPlatform) -> None:
    steps = Visit(keyboard)
    page = steps.visit.question
    steps.start("senior-card", (1920, 1080))
    steps.digits("13912345678")
    steps.next_question("address")

    # The card's region is offered: Use this; the card's street after it is selected, and what
    # is typed next replaces it.
    inputs = page.text_inputs
    assert inputs is not None and inputs.mode == "address"
    picker: Any = inputs.panel("address")
    assert picker is not None and picker.is_done()
    keyboard.tab_to(picker.use_button)
    keyboard.press(Qt.Key.Key_Return)
    assert keyboard.focused() is page.line
    assert page.line.text().startswith("北京市东城区")
    assert page.line.selectedText() == page.line.text()[len("北京市东城区") :]
    keyboard.commit("中三号")
    address = "北京市东城区中三号"
    assert page.line.text() == address
    steps.next_question("emergency_contact_name")

    assert keyboard.focused() is page.line
    keyboard.commit("王大")
    steps.next_question("emergency_contact_phone")
    steps.digits("13800138000")
    steps.next_question("collection")
    steps.choose("post")
    steps.next_question(None)
    result = steps.finish()
    assert _stored_answers(platform_server, result) == {
        "service_id": "senior-card",
        "name": NAME,
        "id_number": ID_NUMBER,
        "birth_date": BIRTH_DATE,
        "phone": "13912345678",
        "address": address,
        "emergency_contact_name": "王大",
        "emergency_contact_phone": "13800138000",
        "collection": "post",
    }
    steps.end()
    _report(keyboard, "senior-card")
