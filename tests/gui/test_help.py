"""Calling staff from any page: the platform is told once, the citizen is told plainly, and
nothing they typed is lost."""

from __future__ import annotations

import requests
from PySide6.QtCore import Qt
from pytestqt.qtbot import QtBot

from kiosk.session import Step
from kiosk.sync import HELP_REQUEST_KIND
from offline_queue.outbox import State
from refplatform.app import API_PREFIX
from refplatform.server import RunningPlatform
from tests.gui.conftest import MakeTerminal, closed_port_url
from tests.gui.test_visit import PHONE, open_form, type_digits

WAIT_MS = 15_000


def help_requests(server: RunningPlatform) -> list[dict[str, object]]:
    answer = requests.get(f"{server.base_url}{API_PREFIX}/help-requests", timeout=10)
    assert answer.status_code == 200
    listed = answer.json()["help_requests"]
    assert isinstance(listed, list)
    return listed


def test_call_staff_reaches_the_platform_and_the_citizen_goes_back_with_the_answer_kept(
    qtbot: QtBot, make_terminal: MakeTerminal, platform_server: RunningPlatform
) -> None:
    terminal = make_terminal()
    shell = terminal.window
    open_form(qtbot, terminal)
    type_digits(qtbot, terminal, PHONE[:5])  # half typed when help is needed
    question_page = shell.current_page()
    qtbot.mouseClick(shell.call_staff_button, Qt.MouseButton.LeftButton)
    help_page = terminal.help.page
    assert shell.current_page() is help_page
    qtbot.waitUntil(help_page.back_button.isEnabled, timeout=WAIT_MS)
    assert terminal.help.last_outcome is not None
    assert terminal.help.last_outcome.reached_staff
    assert help_page.message.text() == "已通知工作人员，马上会有人来帮您。"
    assert "已通知工作人员" in terminal.voice.spoken[-1]
    [stored] = help_requests(platform_server)
    assert stored["page"] == "question"
    assert stored["terminal_id"] == terminal.parts.config.terminal_id
    # Back: the same question with what was typed.
    qtbot.mouseClick(help_page.back_button, Qt.MouseButton.LeftButton)
    assert shell.current_page() is question_page
    assert terminal.visit.session.step is Step.QUESTION
    assert terminal.visit.question.value() == PHONE[:5]


def test_offline_the_citizen_is_sent_to_the_help_desk_and_the_call_waits_to_upload(
    qtbot: QtBot, make_terminal: MakeTerminal
) -> None:
    terminal = make_terminal(platform_url=closed_port_url())
    shell = terminal.window
    welcome = shell.current_page()
    qtbot.mouseClick(shell.call_staff_button, Qt.MouseButton.LeftButton)
    help_page = terminal.help.page
    qtbot.waitUntil(help_page.back_button.isEnabled, timeout=WAIT_MS)
    assert terminal.help.last_outcome is not None
    assert not terminal.help.last_outcome.reached_staff
    assert help_page.title.text() == "请到咨询台求助"
    waiting = terminal.parts.outbox.items(states=[State.QUEUED, State.SENDING])
    assert [item.kind for item in waiting] == [HELP_REQUEST_KIND]
    qtbot.mouseClick(help_page.back_button, Qt.MouseButton.LeftButton)
    assert shell.current_page() is welcome


def test_pressing_call_staff_twice_sends_one_request(
    qtbot: QtBot, make_terminal: MakeTerminal, platform_server: RunningPlatform
) -> None:
    terminal = make_terminal()
    shell = terminal.window
    qtbot.mouseClick(shell.call_staff_button, Qt.MouseButton.LeftButton)
    qtbot.mouseClick(shell.call_staff_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(terminal.help.page.back_button.isEnabled, timeout=WAIT_MS)
    assert len(help_requests(platform_server)) == 1
