"""A citizen's first visit, one per demo service, by touch alone with the voice on.

Every control is reached as a finger reaches it: a press and release at a point of the window,
delivered by Qt to whatever is under that point (the test first checks that the control meant is
what lies there, whole, on the panel and at least 60x60 px). Strokes are drawn with touch points on
the handwriting box; keys and candidates of the pinyin keyboard are tapped where they are drawn.
No physical key, no input-method event and no setter is used: what the platform receives is what
the taps and strokes typed. Each service completes with one answer typed on the pinyin keys, one
written by hand, and the address chosen with the division picker.
"""

from __future__ import annotations

import calendar
import contextlib
import datetime as dt
import json
import sqlite3
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from PySide6.QtCore import QPoint, QRect, Qt
from PySide6.QtGui import QPointingDevice
from PySide6.QtQuick import QQuickItem
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QPushButton, QWidget
from pytestqt.qtbot import QtBot

from kiosk.identity import mask_id_number, mask_name
from kiosk.session import Step
from kiosk.submissions import SubmissionResult
from refplatform.app import API_PREFIX
from refplatform.server import RunningPlatform
from tests.gui.conftest import MakeTerminal
from tests.gui.test_visit import checked, wait_step
from tests.unit.test_handwriting import BOX, CHARACTERS, Point, path
from ui.app import Terminal
from ui.handwriting import HandwritingPad
from ui.pinyin_keyboard import PinyinKeyboard
from ui.screens import QuestionPage

pytestmark = pytest.mark.qt_log_ignore(
    "PinyinDecoderService::init", "depends on non-bindable properties", "QLineEdit::echoMode"
)

# The first demo card (assets/demo/identities.json): the one a fresh terminal presents first.
NAME = "张秀英"
ID_NUMBER = "110101195203080021"
BIRTH_DATE = "1952-03-08"
CARD_STREET = "景山前街4号院2号楼3单元101室"  # after 北京市东城区 on the card
TARGET = 60  # least width and height of a touch target, px
WAIT_MS = 5000

# Strokes of a few more characters, written as tests/unit/test_handwriting.py writes its own.
_KOU = [
    path((90, 30), (92, 110)),
    path((90, 30), (210, 30), (208, 110)),
    path((92, 110), (208, 110)),
]
STROKES: dict[str, list[list[Point]]] = {
    **CHARACTERS,
    "中": [
        path((80, 90), (80, 200)),
        path((80, 90), (220, 90), (220, 200)),
        path((80, 200), (220, 200)),
        path((150, 30), (150, 270)),
    ],
    "三": [path((80, 60), (220, 60)), path((100, 150), (200, 150)), path((50, 240), (250, 240))],
    "号": [
        *_KOU,
        path((50, 150), (250, 150)),
        path((110, 150), (90, 210), (220, 210), (210, 280), (170, 265)),
    ],
}


class Citizen:
    """A finger on the terminal's window; counts what it does."""

    def __init__(self, qtbot: QtBot, terminal: Terminal) -> None:
        self.qtbot = qtbot
        self.terminal = terminal
        self.window = terminal.window
        self.taps = 0
        self.strokes = 0
        self._touch = QTest.createTouchDevice(QPointingDevice.DeviceType.TouchScreen)
        self._said_from = 0
        self.pages_heard: list[str] = []

    # -- touching ---------------------------------------------------------------------------

    def tap(self, widget: QWidget, at: QPoint | None = None) -> None:
        """A finger on the middle of the control (or at `at`, in its coordinates)."""
        window = self.window
        what = widget.accessibleName() or widget.objectName() or type(widget).__name__
        assert widget.isVisible(), f"{what!r} is not on the screen"
        assert widget.isEnabled(), f"{what!r} cannot be pressed"
        assert widget.width() >= TARGET and widget.height() >= TARGET, (
            f"{what!r} is too small to touch: {widget.size().toTuple()}"
        )
        box = QRect(widget.mapTo(window, QPoint(0, 0)), widget.size())
        assert window.rect().contains(box), f"{what!r} is not whole on the panel: {box}"
        point = widget.mapTo(window, at if at is not None else widget.rect().center())
        hit = window.childAt(point)
        assert hit is widget or (hit is not None and widget.isAncestorOf(hit)), (
            f"a tap on {what!r} lands on {hit!r}"
        )
        self._press_release(point)

    def tap_item(self, keyboard: PinyinKeyboard, item: QQuickItem) -> None:
        """A finger on a key or a candidate of the pinyin keyboard, where it is drawn."""
        view = keyboard.view()
        what = item.property("text") or item.property("displayText") or item.objectName()
        shown = item.mapRectToScene(item.boundingRect()).toAlignedRect()
        assert view.isVisible() and item.isVisible(), f"{what!r} is not on the screen"
        assert view.rect().contains(shown), f"{what!r} at {shown} is outside the keyboard"
        assert shown.width() >= TARGET and shown.height() >= TARGET, (what, shown)
        point = view.mapTo(self.window, shown.center())
        assert self.window.rect().contains(point), f"{what!r} is off the panel"
        assert self.window.childAt(point) is view, f"a tap on {what!r} misses the keyboard"
        self._press_release(point)

    def _press_release(self, point: QPoint) -> None:
        handle = self.window.windowHandle()
        assert handle is not None
        QTest.mouseClick(handle, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, point)
        self.taps += 1

    def write(self, pad: HandwritingPad, character: str) -> None:
        """Write the character with a fingertip in the box, then tap it among the candidates."""
        box = pad.findChild(QWidget, "handwriting_box")
        assert box is not None and box.isVisible()
        assert box.width() >= 300 and box.height() >= 300, box.size()
        handle = self.window.windowHandle()
        assert handle is not None
        scale = box.width() / BOX
        for stroke in STROKES[character]:
            points = [
                box.mapTo(self.window, QPoint(round(x * scale), round(y * scale)))
                for x, y in stroke
            ]
            assert self.window.childAt(points[0]) is box
            QTest.touchEvent(handle, self._touch).press(0, points[0], handle).commit()
            for point in points[1:]:
                QTest.touchEvent(handle, self._touch).move(0, point, handle).commit()
            QTest.touchEvent(handle, self._touch).release(0, points[-1], handle).commit()
            self.strokes += 1

        def offered() -> None:
            texts = [b.text() for b in pad.shown_candidate_buttons()]
            assert character in texts, texts

        self.qtbot.waitUntil(offered, timeout=WAIT_MS)
        button = next(b for b in pad.shown_candidate_buttons() if b.text() == character)
        self.tap(button)
        assert pad.stroke_count() == 0  # the box is empty for the next character

    def type_pinyin(self, keyboard: PinyinKeyboard, letters: str, character: str) -> None:
        """Tap the letters, then the character among the candidates the bar shows whole."""
        self.qtbot.waitUntil(lambda: set(letters) <= set(keyboard.key_items()), timeout=WAIT_MS)
        keys = keyboard.key_items()
        for letter in letters:
            self.tap_item(keyboard, keys[letter])

        def shown() -> QQuickItem:
            band = keyboard.view().rect()
            for item in keyboard.candidate_items():
                box = item.mapRectToScene(item.boundingRect()).toAlignedRect()
                if item.property("text") == character and band.contains(box):
                    return item
            raise AssertionError(
                f"{character!r} not shown for {letters!r}: {keyboard.candidates()}"
            )

        self.qtbot.waitUntil(lambda: bool(shown()), timeout=WAIT_MS)
        self.tap_item(keyboard, shown())
        self.qtbot.waitUntil(lambda: keyboard.preedit_text() == "", timeout=WAIT_MS)

    def tap_key_text(self, keyboard: PinyinKeyboard, text: str) -> None:
        """A key found by what it shows (the mode keys show "&123", "ABC", ...)."""

        def key() -> QQuickItem:
            for item in _keyboard_items(keyboard):
                if text in (item.property("text"), item.property("displayText")):
                    return item
            raise AssertionError(f"no key shows {text!r}")

        self.qtbot.waitUntil(lambda: bool(key()), timeout=WAIT_MS)
        self.tap_item(keyboard, key())

    # -- the pages ---------------------------------------------------------------------------

    def said_since_mark(self) -> list[str]:
        return self.terminal.voice.spoken[self._said_from :]

    def mark(self) -> None:
        self._said_from = len(self.terminal.voice.spoken)

    def arrived(self, step: Step) -> None:
        """The page of this step is up, and what it says was read aloud as it came."""
        wait_step(self.qtbot, self.terminal, step, timeout=15_000 if step is Step.DONE else 5000)
        page = self.window.stack.currentWidget()
        spoken = page.spoken_text()
        assert spoken, f"the {step.value} page says nothing"
        assert spoken in self.said_since_mark(), (step.value, spoken, self.said_since_mark())
        self.pages_heard.append(step.value)
        self.mark()

    def next_question(self, field: str | None) -> None:
        """Press Next; the answer is checked and the next question (or the review) comes."""
        page = self.terminal.visit.question
        self.mark()
        self.tap(page.next_button)
        checked(self.qtbot, self.terminal)
        assert not page.error.isVisible(), page.error.text()
        if field is None:
            self.arrived(Step.REVIEW)
        else:
            self.on_question(field)

    def on_question(self, field: str) -> None:
        visit = self.terminal.visit
        self.qtbot.waitUntil(
            lambda: (
                visit.session.step is Step.QUESTION
                and visit.session.current_question.field == field
            ),
            timeout=WAIT_MS,
        )
        self.arrived(Step.QUESTION)

    def start(self, service_id: str, size: tuple[int, int]) -> None:
        """At the welcome page: present the demo card, choose the service, start."""
        window = self.window
        window.resize(*size)
        self.qtbot.waitUntil(lambda: window.size().toTuple() == size, timeout=WAIT_MS)
        window.activateWindow()
        self.qtbot.waitUntil(window.isActiveWindow, timeout=WAIT_MS)
        visit = self.terminal.visit
        wait_step(self.qtbot, self.terminal, Step.WELCOME)
        self.mark()
        assert visit.welcome.demo_button is not None
        self.tap(visit.welcome.demo_button)
        self.arrived(Step.SERVICES)
        services = visit.services
        wanted = next(b for b in services.service_buttons if b.value == service_id)
        more = services.findChild(QPushButton, "page_more")
        assert more is not None
        for _turn in range(len(services.service_buttons)):
            if wanted.isVisible():
                break
            self.mark()
            self.tap(more)
            assert services.spoken_text() in self.said_since_mark()  # the new page is read
        self.mark()
        self.tap(wanted)
        self.arrived(Step.GUIDE)
        self.tap(visit.guide.start_button)
        self.arrived(Step.QUESTION)

    # -- kinds of answer ------------------------------------------------------------------------

    def keypad(self, digits: str) -> None:
        keypad = self.terminal.visit.question.keypad
        assert keypad is not None, "no keypad for a question of digits"
        for digit in digits:
            self.tap(keypad.buttons[digit])

    def choose(self, value: str) -> None:
        choices = self.terminal.visit.question.choices
        wanted = choices.button_for(value)
        assert wanted is not None, value
        more = choices.pager.more_button
        for _turn in range(len(choices.buttons())):
            if wanted.isVisible():
                break
            self.tap(more)
        self.tap(wanted)
        assert wanted.isChecked()

    def pick_date(self, wanted: dt.date) -> None:
        """The picker's buttons, ten years at a time where that is shorter."""
        picker = self.terminal.visit.question.date_picker

        def now() -> dt.date:
            return dt.date.fromisoformat(picker.value())

        while now().year != wanted.year:
            gap = wanted.year - now().year
            step = ("+" if gap > 0 else "-") + ("10" if abs(gap) >= 6 else "1")
            self.tap(picker.buttons[f"year:{step}"])
        while now().month != wanted.month:
            forward = (wanted.month - now().month) % 12
            self.tap(picker.buttons["month:+1" if forward <= 6 else "month:-1"])
        last = calendar.monthrange(wanted.year, wanted.month)[1]
        while now().day != wanted.day:
            forward = (wanted.day - now().day) % last
            self.tap(picker.buttons["day:+1" if forward <= last // 2 else "day:-1"])
        assert picker.value() == wanted.isoformat()

    def use_mode(self, mode: str) -> QWidget:
        inputs = self.terminal.visit.question.text_inputs
        assert inputs is not None, "no typing panels on a text question"
        if inputs.mode != mode:
            self.tap(inputs.mode_buttons[mode])
        assert inputs.mode == mode
        panel = inputs.panel(mode)
        assert panel is not None and panel.isVisible(), f"the {mode} panel is not shown"
        return panel

    def finish(self) -> SubmissionResult:
        """Submit on the review page; the done page shows the receipt number."""
        visit = self.terminal.visit
        review = visit.review
        # A careful first-timer reads every page of the answers before submitting.
        turns = 0
        while review.rows.more_button.isVisible() and review.rows.more_button.isEnabled():
            assert turns < 5, "the review never ends"
            self.mark()
            self.tap(review.rows.more_button)
            assert review.spoken_text() in self.said_since_mark()  # each page is read out
            turns += 1
        self.mark()
        with self.qtbot.waitSignal(visit.submission_done, timeout=15_000) as done:
            self.tap(visit.review.submit_button)
        self.arrived(Step.DONE)
        result = done.args[0]
        assert isinstance(result, SubmissionResult)
        assert result.delivered
        assert result.receipt_number
        assert visit.done.number.text() == result.receipt_number
        assert visit.done.number.isVisible()
        return result


def _keyboard_items(keyboard: PinyinKeyboard) -> list[QQuickItem]:
    found: list[QQuickItem] = []
    pending = [keyboard.root()]
    while pending:
        item = pending.pop()
        if item.property("keyType") is not None and item.isVisible():
            found.append(item)
        pending.extend(item.childItems())
    return found


def _stored_answers(server: RunningPlatform, result: SubmissionResult) -> dict[str, Any]:
    """What the platform holds: its state over HTTP, the request as it stored it."""
    answer = requests.get(
        f"{server.base_url}{API_PREFIX}/submissions/{result.submission_id}", timeout=10
    )
    assert answer.status_code == 200
    state = answer.json()
    assert state["receipt_number"] == result.receipt_number
    with contextlib.closing(sqlite3.connect(f"file:{server.db_path}?mode=ro", uri=True)) as db:
        rows = db.execute(
            "SELECT service_id, request_json FROM submissions WHERE submission_id = ?",
            (result.submission_id,),
        ).fetchall()
    assert len(rows) == 1
    request = json.loads(rows[0][1])
    assert request["receipt_number"] == result.receipt_number
    answers = request["answers"]
    assert isinstance(answers, dict)
    return {"service_id": rows[0][0], **answers}


def _nothing_personal_said(citizen: Citizen) -> None:
    spoken = citizen.terminal.voice.spoken
    assert spoken
    for text in spoken:
        plain = "".join(text.split())
        assert ID_NUMBER not in plain, text
        assert NAME not in plain, text


@pytest.fixture
def citizen(qtbot: QtBot, make_terminal: MakeTerminal) -> Iterator[Citizen]:
    terminal = make_terminal()
    assert terminal.voice.enabled  # the voice guide is on, as on a kiosk
    yield Citizen(qtbot, terminal)


def _report(citizen: Citizen, service: str) -> None:
    print(f"\n{service}: {citizen.taps} taps, {citizen.strokes} strokes")


def test_residence_permit_by_touch_on_the_portrait_panel(
    citizen: Citizen, platform_server: RunningPlatform
) -> None:
    visit = citizen.terminal.visit
    page: QuestionPage = visit.question
    citizen.start("residence-permit", (1080, 1920))

    assert visit.session.current_question.field == "phone"
    citizen.keypad("13912345678")
    assert page.line.text() == "139 1234 5678"
    citizen.next_question("address")

    # The division picker, preselected from the card; the person lives elsewhere now.
    picker = citizen.use_mode("address")
    assert picker.is_done() and picker.chosen_label.text() == "北京市东城区"  # type: ignore[attr-defined]
    citizen.tap(picker.change_button)  # type: ignore[attr-defined]
    for code in ("440000", "440300", "440304"):  # 广东 → 深圳 → 福田
        places = {b.value: b for b in picker.grid.visible_buttons()}  # type: ignore[attr-defined]
        assert code in places, sorted(places)
        citizen.tap(places[code])
    assert page.line.text() == "广东省深圳市福田区"
    # The street on the pinyin keys, a syllable at a time; the number from the keys' number layer.
    keyboard = citizen.use_mode("pinyin")
    assert isinstance(keyboard, PinyinKeyboard)
    for letters, character in (("fu", "福"), ("hua", "华"), ("lu", "路")):
        citizen.type_pinyin(keyboard, letters, character)
    assert page.line.text() == "广东省深圳市福田区福华路"
    citizen.tap_key_text(keyboard, "&123")
    citizen.tap_key_text(keyboard, "8")
    citizen.tap_key_text(keyboard, "8")
    citizen.tap_key_text(keyboard, "ABC")
    citizen.type_pinyin(keyboard, "hao", "号")
    address = "广东省深圳市福田区福华路88号"
    assert page.line.text() == address
    citizen.next_question("reason")

    citizen.choose("work")
    citizen.next_question("residence_start")
    citizen.pick_date(dt.date(2025, 6, 1))
    citizen.next_question("collection")
    citizen.choose("hall")
    citizen.next_question(None)

    assert mask_id_number(ID_NUMBER) in visit.review.spoken_text()  # masked, where it is said
    result = citizen.finish()
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
    _nothing_personal_said(citizen)
    assert citizen.pages_heard == ["services", "guide"] + ["question"] * 5 + ["review", "done"]
    _report(citizen, "residence-permit")


def test_pension_certification_by_touch_on_the_square_panel(
    citizen: Citizen, platform_server: RunningPlatform
) -> None:
    visit = citizen.terminal.visit
    citizen.start("pension-certification", (1280, 1024))
    assert visit.session.current_question.field == "phone"
    citizen.keypad("13800138000")
    citizen.next_question("living_at_registered_address")
    citizen.choose("true")
    citizen.next_question("receiving_other_pension")
    citizen.choose("false")
    citizen.next_question("bank_card_last4")
    citizen.keypad("0427")
    assert visit.question.value() == "0427"
    citizen.next_question(None)
    assert mask_id_number(ID_NUMBER) in visit.review.spoken_text()
    assert mask_name(NAME) in visit.review.spoken_text()
    result = citizen.finish()
    assert _stored_answers(platform_server, result) == {
        "service_id": "pension-certification",
        "name": NAME,
        "id_number": ID_NUMBER,
        "phone": "13800138000",
        "living_at_registered_address": True,
        "receiving_other_pension": False,
        "bank_card_last4": "0427",
    }
    _nothing_personal_said(citizen)
    assert citizen.pages_heard == ["services", "guide"] + ["question"] * 4 + ["review", "done"]
    _report(citizen, "pension-certification")


def test_senior_card_by_touch_on_the_landscape_panel(
    citizen: Citizen, platform_server: RunningPlatform
) -> None:
    visit = citizen.terminal.visit
    page: QuestionPage = visit.question
    citizen.start("senior-card", (1920, 1080))
    assert visit.session.current_question.field == "phone"
    citizen.keypad("13912345678")
    citizen.next_question("address")

    # The card's address is in the field; the picker offers its region: use it.
    assert page.line.text() == "北京市东城区" + CARD_STREET
    picker = citizen.use_mode("address")
    assert picker.chosen_label.text() == "北京市东城区"  # type: ignore[attr-defined]
    citizen.tap(picker.use_button)  # type: ignore[attr-defined]
    assert page.line.text().startswith("北京市东城区")
    # The person lives in another street of the district: the card's street goes, a finger
    # writes the new one after the region.
    pad = citizen.use_mode("handwriting")
    assert isinstance(pad, HandwritingPad)
    citizen.qtbot.waitUntil(pad.is_loaded, timeout=WAIT_MS)
    line = page.line
    citizen.tap(line, QPoint(line.width() - 30, line.height() // 2))  # the cursor to the end
    assert line.cursorPosition() == len(line.text())
    actions = pad.findChildren(QPushButton, "handwriting_action")
    delete = next(b for b in actions if b.text() == "删除")
    for _character in CARD_STREET:
        citizen.tap(delete)
    assert line.text() == "北京市东城区"
    for character in "中三号":
        citizen.write(pad, character)
    address = "北京市东城区中三号"
    assert line.text() == address
    citizen.next_question("emergency_contact_name")

    pad = citizen.use_mode("handwriting")
    assert isinstance(pad, HandwritingPad)
    citizen.write(pad, "王")
    citizen.write(pad, "大")
    assert page.line.text() == "王大"
    citizen.next_question("emergency_contact_phone")
    citizen.keypad("13800138000")
    citizen.next_question("collection")
    citizen.choose("post")
    citizen.next_question(None)
    assert mask_id_number(ID_NUMBER) in visit.review.spoken_text()
    result = citizen.finish()
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
    _nothing_personal_said(citizen)
    assert citizen.pages_heard == ["services", "guide"] + ["question"] * 5 + ["review", "done"]
    _report(citizen, "senior-card")
