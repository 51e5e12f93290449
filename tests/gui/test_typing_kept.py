"""What a person is typing survives everything that redraws the page, and an answer changed
while it was being checked is never the one that counts."""

from __future__ import annotations

import threading

import pytest
from PySide6.QtCore import Qt
from pytestqt.qtbot import QtBot

import ui.visit
from kiosk.config import Mode
from kiosk.forms import validate_field
from tests.gui.conftest import MakeTerminal
from tests.gui.counter import open_counter_form
from tests.gui.test_visit import ADDRESS, checked, ime_commit, open_form, type_digits


def test_typing_survives_the_queue_page_and_a_language_switch(
    qtbot: QtBot, make_terminal: MakeTerminal
) -> None:
    terminal = make_terminal(mode=Mode.COUNTER)
    window, visit, queue = terminal.window, terminal.visit, terminal.queue
    assert queue is not None
    form = open_counter_form(qtbot, terminal)
    qtbot.keyClicks(form.editors["phone"].widget, "1391234")
    ime_commit(form.editors["address"].widget, ADDRESS)
    queue.open_queue()
    assert window.current_page() is queue.queue_page
    window.language_button.click()
    qtbot.mouseClick(queue.queue_page.back_button, Qt.MouseButton.LeftButton)
    assert window.current_page() is visit.counter_form
    assert form.values()["phone"] == "1391234" and form.values()["address"] == ADDRESS
    assert form.confirm_button.text().startswith("Check")
    window.language_button.click()  # and switching while the form is up
    assert form.values()["phone"] == "1391234" and form.values()["address"] == ADDRESS
    assert form.confirm_button.text().startswith("检查")


def test_an_answer_corrected_while_it_is_checked_is_not_the_one_kept(
    qtbot: QtBot, make_terminal: MakeTerminal, monkeypatch: pytest.MonkeyPatch
) -> None:
    release = threading.Event()
    started = threading.Event()

    def slow_check(*args: object) -> object:
        started.set()
        release.wait(10)  # the check takes as long as the test says
        return validate_field(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(ui.visit, "validate_field", slow_check)
    terminal = make_terminal()
    visit = terminal.visit
    open_form(qtbot, terminal)
    type_digits(qtbot, terminal, "13912345678")
    qtbot.mouseClick(visit.question.next_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(started.is_set, timeout=5000)
    qtbot.mouseClick(visit.question.keypad.buttons["⌫"], Qt.MouseButton.LeftButton)  # type: ignore[union-attr]
    type_digits(qtbot, terminal, "0")
    release.set()
    checked(qtbot, terminal)
    assert visit.session.current_question.field == "phone"  # did not move on with the old one
    assert visit.question.value() == "13912345670"
    qtbot.mouseClick(visit.question.next_button, Qt.MouseButton.LeftButton)
    checked(qtbot, terminal)
    assert visit.session.current_question.field == "address"
    assert visit.session.answers["phone"] == "13912345670"
