"""A terminal with nothing to offer says so to the citizen plainly, and to staff in small type."""

from __future__ import annotations

from pathlib import Path

from pytestqt.qtbot import QtBot

from kiosk.i18n import set_language
from tests.gui.conftest import MakeTerminal, closed_port_url


def test_no_catalogue_sends_the_citizen_to_a_window_and_gives_staff_the_reason(
    qtbot: QtBot, make_terminal: MakeTerminal, tmp_path: Path
) -> None:
    missing = tmp_path / "no-catalogue.json"
    terminal = make_terminal(bundled=missing, platform_url=closed_port_url())
    page = terminal.visit.out_of_service
    qtbot.waitUntil(lambda: terminal.window.current_page() is page, timeout=5000)
    assert page.title.text() == "暂停服务"
    assert page.message.text() == "本机暂停服务，请到人工窗口办理。"
    assert page.detail.isVisible() and page.detail.text().startswith("工作人员请看：")
    assert page.detail.objectName() == "muted"  # small type, for staff
    # Only the citizen's sentence is read aloud; the staff line is not.
    assert page.spoken_text() == page.message.text()
    assert terminal.voice.spoken[-1] == page.message.text()
    # In English too, when the terminal speaks English.
    set_language("en")
    terminal.window.retranslate()
    page.retranslate()
    assert page.message.text() == (
        "This terminal is not working at the moment. Please go to a service window."
    )
