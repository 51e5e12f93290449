"""Calling staff from any page: the platform is told once, the citizen is told plainly, and
nothing they typed is lost."""

from __future__ import annotations

import pytest
import requests
from PySide6.QtCore import Qt
from pytestqt.qtbot import QtBot

from kiosk.session import Step
from kiosk.sync import HELP_REQUEST_KIND
from offline_queue.outbox import State
from refplatform.app import API_PREFIX
from refplatform.server import RunningPlatform
from tests.gui.conftest import MakeTerminal, closed_port_url
from tests.gui.test_visit import PHONE, open_form, type_digits, wait_step

WAIT_MS = 15_000


def help_requests(server: RunningPlatform) -> list[dict[str, object]]:
    answer = requests.get(
        f"{server.base_url}{API_PREFIX}/help-requests",
        headers=server.back_office_headers,
        timeout=10,
    )
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


def test_waiting_for_staff_keeps_the_form_for_a_while_but_not_for_ever(
    qtbot: QtBot, make_terminal: MakeTerminal, monkeypatch: pytest.MonkeyPatch
) -> None:
    import ui.help

    monkeypatch.setattr(ui.help, "_KEEP_ALIVE_MS", 100)
    monkeypatch.setattr(ui.help, "WAIT_FOR_STAFF_S", 3.0)
    terminal = make_terminal(idle_timeout_s=0.4, idle_warning_s=1)
    shell = terminal.window
    open_form(qtbot, terminal)
    type_digits(qtbot, terminal, PHONE[:5])
    qtbot.mouseClick(shell.call_staff_button, Qt.MouseButton.LeftButton)
    help_page = terminal.help.page
    qtbot.waitUntil(help_page.back_button.isEnabled, timeout=WAIT_MS)
    # Several idle periods pass while the citizen waits: the visit and its answer stay.
    for _ in range(20):  # 2 s: longer than the idle time and its warning together
        with qtbot.waitSignal(terminal.help._keep_alive.timeout, timeout=WAIT_MS):
            pass
    assert terminal.visit.session.step is Step.QUESTION
    assert terminal.visit.question.value() == PHONE[:5]
    # Then nobody came and nobody is there: the visit ends and is wiped as usual.
    wait_step(qtbot, terminal, Step.WELCOME, timeout=WAIT_MS)
    assert terminal.visit.question.value() is None
