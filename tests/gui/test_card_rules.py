"""What the window does with cards: reading feedback, removal by mode, a second card."""

from __future__ import annotations

import dataclasses

from PySide6.QtCore import Qt
from pytestqt.qtbot import QtBot

from devices.readers.base import EventKind, ReaderEvent
from kiosk.config import Mode
from kiosk.session import Step
from tests.gui.conftest import MakeTerminal
from tests.gui.test_visit import PERSON_NAME, open_form, type_digits, wait_step
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
    open_form(qtbot, window)
    type_digits(qtbot, window, "139")
    _reader(terminal).remove()
    qtbot.waitUntil(window.card_banner.isVisible, timeout=3000)
    assert "是否继续" in window.card_text.text()
    assert "是否继续" in window.voice.spoken[-1]
    assert window.session.step is Step.QUESTION and window.session.identity is not None
    assert window.question.line.text() == "139"
    qtbot.mouseClick(window.card_continue, Qt.MouseButton.LeftButton)
    assert not window.card_banner.isVisible()
    type_digits(qtbot, window, "12345678")
    qtbot.mouseClick(window.question.next_button, Qt.MouseButton.LeftButton)
    assert window.session.answers["phone"] == "13912345678"


def test_counter_staff_can_end_the_visit_after_the_card_went(
    qtbot: QtBot, make_terminal: MakeTerminal
) -> None:
    terminal = make_terminal(mode=Mode.COUNTER)
    window = terminal.window
    open_form(qtbot, window)
    _reader(terminal).remove()
    qtbot.waitUntil(window.card_banner.isVisible, timeout=3000)
    qtbot.mouseClick(window.card_end, Qt.MouseButton.LeftButton)
    wait_step(qtbot, window, Step.WELCOME)
    assert window.session.identity is None
    assert not window.card_banner.isVisible()


def test_the_same_card_back_withdraws_the_question(
    qtbot: QtBot, make_terminal: MakeTerminal
) -> None:
    terminal = make_terminal(mode=Mode.RURAL)
    window = terminal.window
    open_form(qtbot, window)
    type_digits(qtbot, window, "1391")
    reader = _reader(terminal)
    reader.remove()
    qtbot.waitUntil(window.card_banner.isVisible, timeout=3000)
    reader.present(terminal.parts.demo_people[0])
    qtbot.waitUntil(lambda: not window.card_banner.isVisible(), timeout=3000)
    assert window.session.step is Step.QUESTION
    assert window.question.line.text() == "1391"  # nothing re-rendered under the typing


def test_a_counter_configured_to_end_on_removal_ends(
    qtbot: QtBot, make_terminal: MakeTerminal
) -> None:
    terminal = make_terminal(mode=Mode.COUNTER, card_removal_ends_session=True)
    window = terminal.window
    open_form(qtbot, window)
    _reader(terminal).remove()
    wait_step(qtbot, window, Step.WELCOME)
    assert not window.card_banner.isVisible()
    assert window.session.identity is None


def test_a_second_card_is_refused_politely(qtbot: QtBot, make_terminal: MakeTerminal) -> None:
    # One slot: the swap is a removal (staff are asked) and then another card (refused).
    terminal = make_terminal(mode=Mode.COUNTER)
    window = terminal.window
    open_form(qtbot, window)
    first = window.session.identity
    _reader(terminal).present(terminal.parts.demo_people[1])
    qtbot.waitUntil(lambda: "又放了一张身份证" in window.statusBar().currentMessage(), timeout=3000)
    assert window.session.identity == first
    assert window.session.step is Step.QUESTION
    assert window.card_banner.isVisible()
    assert "又放了一张身份证" in window.voice.spoken[-1]


def test_reading_feedback_appears_when_a_card_lands(
    qtbot: QtBot, make_terminal: MakeTerminal
) -> None:
    window = make_terminal().window
    window.on_reader_event(ReaderEvent(EventKind.CARD_PRESENT, "reader"))
    assert window.welcome.message.isVisible()
    assert "正在读卡" in window.welcome.message.text()
    assert "正在读卡" in window.voice.spoken[-1]
    window.on_reader_event(ReaderEvent(EventKind.CARD_REMOVED, "reader"))
    assert not window.welcome.message.isVisible()
    assert PERSON_NAME not in window.welcome.message.text()


def test_every_reader_error_has_advice_in_both_languages() -> None:
    from devices.readers.base import ReaderError
    from kiosk.i18n import _, set_language
    from ui.window import READER_ADVICE

    assert set(READER_ADVICE) == set(ReaderError)
    for advice in READER_ADVICE.values():
        assert _(advice) != advice  # translated (zh_CN is the default language)
    set_language("en")
    assert all(_(advice) == advice for advice in READER_ADVICE.values())


def test_counter_staff_see_a_placeholder_when_the_photo_cannot_be_decoded(
    qtbot: QtBot, make_terminal: MakeTerminal
) -> None:
    terminal = make_terminal(mode=Mode.COUNTER)  # no vendor photo decoder configured
    window = terminal.window
    person = dataclasses.replace(
        terminal.parts.demo_people[0], photo=bytes(1024), photo_format="wlt"
    )
    _reader(terminal).present(person)
    wait_step(qtbot, window, Step.SERVICES)
    photo = window.services.photo
    assert photo is not None
    qtbot.waitUntil(lambda: "无法显示证件照片" in photo.text(), timeout=3000)
    qtbot.mouseClick(window.services.end_button, Qt.MouseButton.LeftButton)
    wait_step(qtbot, window, Step.WELCOME)
    assert window.services.photo is None  # the page was wiped


def test_the_kiosk_shows_no_photo(qtbot: QtBot, make_terminal: MakeTerminal) -> None:
    window = make_terminal().window
    open_form(qtbot, window)
    assert window.services.photo is None
