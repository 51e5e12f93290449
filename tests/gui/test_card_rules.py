"""What the window does with cards: reading feedback, removal by mode, a second card."""

from __future__ import annotations

import dataclasses

import pytest
from PySide6.QtCore import Qt
from pytestqt.qtbot import QtBot

from devices.readers.base import EventKind, ReaderError, ReaderEvent
from kiosk.card_rules import READER_ADVICE
from kiosk.config import Mode
from kiosk.session import Step
from tests.gui.conftest import MakeTerminal
from tests.gui.counter import open_counter_form
from tests.gui.test_visit import PERSON_NAME, open_form, wait_step
from ui.app import Terminal


def _reader(terminal: Terminal):  # type: ignore[no-untyped-def]
    reader = terminal.parts.demo_reader
    assert reader is not None
    return reader


def test_counter_asks_when_the_card_is_taken_away_and_keeps_the_typing(
    qtbot: QtBot, make_terminal: MakeTerminal
) -> None:
    terminal = make_terminal(mode=Mode.COUNTER)
    window = terminal.window
    visit, card = terminal.visit, terminal.card
    form = open_counter_form(qtbot, terminal)
    phone = form.editors["phone"].widget
    qtbot.keyClicks(phone, "139")
    _reader(terminal).remove()
    qtbot.waitUntil(card.card_banner.isVisible, timeout=3000)
    assert "是否继续" in card.card_text.text()
    assert "是否继续" in window.voice.spoken[-1]
    assert visit.session.step is Step.FORM and visit.session.identity is not None
    assert form.values()["phone"] == "139"
    qtbot.mouseClick(card.card_continue, Qt.MouseButton.LeftButton)
    assert not card.card_banner.isVisible()
    phone.setFocus()
    qtbot.keyClicks(phone, "12345678")
    assert form.values()["phone"] == "13912345678"


def test_counter_staff_can_end_the_visit_after_the_card_went(
    qtbot: QtBot, make_terminal: MakeTerminal
) -> None:
    terminal = make_terminal(mode=Mode.COUNTER)
    visit, card = terminal.visit, terminal.card
    open_counter_form(qtbot, terminal)
    _reader(terminal).remove()
    qtbot.waitUntil(card.card_banner.isVisible, timeout=3000)
    qtbot.mouseClick(card.card_end, Qt.MouseButton.LeftButton)
    wait_step(qtbot, terminal, Step.WELCOME)
    assert visit.session.identity is None
    assert not card.card_banner.isVisible()


def test_the_same_card_back_withdraws_the_question(
    qtbot: QtBot, make_terminal: MakeTerminal
) -> None:
    terminal = make_terminal(mode=Mode.RURAL)
    visit, card = terminal.visit, terminal.card
    form = open_counter_form(qtbot, terminal)
    qtbot.keyClicks(form.editors["phone"].widget, "1391")
    reader = _reader(terminal)
    reader.remove()
    qtbot.waitUntil(card.card_banner.isVisible, timeout=3000)
    reader.present(terminal.parts.demo_people[0])
    qtbot.waitUntil(lambda: not card.card_banner.isVisible(), timeout=3000)
    assert visit.session.step is Step.FORM
    assert form.values()["phone"] == "1391"  # nothing re-rendered under the typing


def test_a_counter_configured_to_end_on_removal_ends(
    qtbot: QtBot, make_terminal: MakeTerminal
) -> None:
    terminal = make_terminal(mode=Mode.COUNTER, card_removal_ends_session=True)
    visit, card = terminal.visit, terminal.card
    open_counter_form(qtbot, terminal)
    _reader(terminal).remove()
    wait_step(qtbot, terminal, Step.WELCOME)
    assert not card.card_banner.isVisible()
    assert visit.session.identity is None


def test_a_second_card_is_refused_politely(qtbot: QtBot, make_terminal: MakeTerminal) -> None:
    # One slot: the swap is a removal (staff are asked) and then another card (refused).
    terminal = make_terminal(mode=Mode.COUNTER)
    window = terminal.window
    visit, card = terminal.visit, terminal.card
    open_counter_form(qtbot, terminal)
    first = visit.session.identity
    _reader(terminal).present(terminal.parts.demo_people[1])
    qtbot.waitUntil(lambda: "又放了一张身份证" in window.statusBar().currentMessage(), timeout=3000)
    assert visit.session.identity == first
    assert visit.session.step is Step.FORM
    assert card.card_banner.isVisible()
    assert "又放了一张身份证" in window.voice.spoken[-1]


def test_reading_feedback_appears_when_a_card_lands(
    qtbot: QtBot, make_terminal: MakeTerminal
) -> None:
    terminal = make_terminal()
    window = terminal.window
    visit, card = terminal.visit, terminal.card
    card.on_reader_event(ReaderEvent(EventKind.CARD_PRESENT, "reader"))
    assert visit.welcome.message.isVisible()
    assert "正在读卡" in visit.welcome.message.text()
    assert "正在读卡" in window.voice.spoken[-1]
    card.on_reader_event(ReaderEvent(EventKind.CARD_REMOVED, "reader"))
    assert not visit.welcome.message.isVisible()
    assert PERSON_NAME not in visit.welcome.message.text()


@pytest.mark.parametrize("language", ["zh_CN", "en"])
def test_every_reader_error_is_explained_on_the_welcome_page_in_the_language_shown(
    make_terminal: MakeTerminal, language: str
) -> None:
    terminal = make_terminal()
    visit, card = terminal.visit, terminal.card
    if language == "en":
        terminal.window.language_button.click()
    for error in ReaderError:
        if error in (ReaderError.ACCESS_KEY_NEEDED, ReaderError.ACCESS_DENIED):
            expected = READER_ADVICE[ReaderError.UNSUPPORTED_CARD]  # a kiosk sends them to staff
        else:
            expected = READER_ADVICE[error]
        card.on_reader_event(ReaderEvent(EventKind.ERROR, "reader", error=error))
        shown = visit.welcome.message.text()
        assert visit.welcome.message.isVisible()
        assert terminal.window.voice.spoken[-1] == shown
        has_chinese = any("\u4e00" <= ch <= "\u9fff" for ch in shown)
        if language == "en":
            assert shown == expected and not has_chinese
        else:
            assert has_chinese and shown != expected


def test_counter_staff_see_a_placeholder_when_the_photo_cannot_be_decoded(
    qtbot: QtBot, make_terminal: MakeTerminal
) -> None:
    terminal = make_terminal(mode=Mode.COUNTER)  # no vendor photo decoder configured
    visit = terminal.visit
    person = dataclasses.replace(
        terminal.parts.demo_people[0], photo=bytes(1024), photo_format="wlt"
    )
    _reader(terminal).present(person)
    wait_step(qtbot, terminal, Step.SERVICES)
    photo = visit.services.photo
    assert photo is not None
    qtbot.waitUntil(lambda: "无法显示证件照片" in photo.text(), timeout=3000)
    qtbot.mouseClick(visit.services.end_button, Qt.MouseButton.LeftButton)
    wait_step(qtbot, terminal, Step.WELCOME)
    assert visit.services.photo is None  # the page was wiped


def test_the_kiosk_shows_no_photo(qtbot: QtBot, make_terminal: MakeTerminal) -> None:
    terminal = make_terminal()
    visit = terminal.visit
    open_form(qtbot, terminal)
    assert visit.services.photo is None


def test_staff_can_leave_the_mrz_page_and_what_they_typed_goes(
    qtbot: QtBot, make_terminal: MakeTerminal
) -> None:
    terminal = make_terminal(mode=Mode.COUNTER)
    card, visit = terminal.card, terminal.visit
    card.on_reader_event(
        ReaderEvent(EventKind.ERROR, "reader", error=ReaderError.ACCESS_KEY_NEEDED)
    )
    assert terminal.window.current_page() is card.mrz_page
    assert "机读区" in terminal.window.voice.spoken[-1]
    card.mrz.number.setText("E12345678")
    card.mrz.birth.setText("490101")
    qtbot.mouseClick(card.mrz_page.cancel_button, Qt.MouseButton.LeftButton)
    assert terminal.window.current_page() is visit.welcome
    assert card.mrz.number.text() == "" and card.mrz.birth.text() == ""
    card.mrz.number.undo()
    assert card.mrz.number.text() == ""  # nothing to bring back either


def test_mrz_data_left_half_typed_is_forgotten_after_the_idle_time(
    qtbot: QtBot, make_terminal: MakeTerminal
) -> None:
    terminal = make_terminal(mode=Mode.COUNTER, idle_timeout_s=0.3)
    card, visit = terminal.card, terminal.visit
    card.on_reader_event(
        ReaderEvent(EventKind.ERROR, "reader", error=ReaderError.ACCESS_KEY_NEEDED)
    )
    qtbot.keyClicks(card.mrz.number, "E1234")  # typing restarts the clock
    assert card.mrz_timer.isActive()
    with qtbot.waitSignal(card.mrz_timer.timeout, timeout=3000):
        pass
    assert terminal.window.current_page() is visit.welcome
    assert card.mrz.number.text() == ""
