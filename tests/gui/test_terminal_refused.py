"""A terminal the platform no longer takes: the citizen's application is kept, staff are told."""

from __future__ import annotations

from pathlib import Path

import requests
from PySide6.QtCore import Qt
from pytestqt.qtbot import QtBot

from kiosk.session import Step
from offline_queue.outbox import State
from refplatform.server import RunningPlatform
from tests.gui.conftest import MakeTerminal
from tests.gui.test_visit import answer_residence_permit, open_form, submit, wait_step


def test_a_revoked_terminal_keeps_the_application_and_tells_staff(
    qtbot: QtBot, make_terminal: MakeTerminal, platform_server: RunningPlatform
) -> None:
    terminal = make_terminal()
    revoked = requests.post(
        f"{platform_server.base_url}/api/v1/terminals/{terminal.parts.config.terminal_id}/revoke",
        headers=platform_server.back_office_headers,
        timeout=10,
    )
    assert revoked.status_code == 200
    open_form(qtbot, terminal)
    answer_residence_permit(qtbot, terminal)
    result = submit(qtbot, terminal)
    assert not result.delivered
    assert terminal.parts.outbox.state_of(result.submission_id) is State.QUEUED
    done = terminal.visit.done
    assert result.receipt_number in done.number.text()
    banner = terminal.window.staff_banner
    qtbot.waitUntil(banner.isVisible, timeout=10_000)
    text = terminal.window.staff_text.text()
    assert "工作人员请看" in text and "收回本终端的接入权限" in text and "--enrol" in text
    answer = requests.get(
        f"{platform_server.base_url}/api/v1/submissions/{result.submission_id}", timeout=10
    )
    assert answer.status_code == 404  # the platform took nothing from it
    qtbot.mouseClick(done.finish_button, Qt.MouseButton.LeftButton)
    wait_step(qtbot, terminal, Step.WELCOME)
    assert banner.isVisible()  # staff still need to see it after the citizen has gone



def test_a_terminal_never_enrolled_is_out_of_service_and_says_how_to_enrol(
    qtbot: QtBot, tmp_path: Path, platform_server: RunningPlatform
) -> None:
    # Started the way it starts for real (ui/start.py): the welcome page first, the parts built
    # behind it; here they cannot be, as nobody has enrolled the terminal.
    from kiosk.app import Parts, build_parts
    from kiosk.config import Config
    from tests.gui.conftest import CATALOGUE
    from ui.background import Background
    from ui.out_of_service import OutOfServicePage
    from ui.screens import WelcomePage
    from ui.shell import Shell
    from ui.start import Startup
    from ui.voice import VoiceGuide

    config = Config(data_dir=tmp_path / "data", platform_url=platform_server.base_url)
    shell = Shell(config=config, voice=VoiceGuide(enabled=False))
    welcome = WelcomePage(demo=False)
    shell.add_page(welcome)
    shell.show_page(welcome)
    startup = Startup(shell, welcome, Background(shell), check="", benchmark=False)
    shell.first_frame.connect(startup.first_frame)

    def build() -> Parts:
        return build_parts(config, demo=False, bundled_catalogue=CATALOGUE)

    startup.begin(build)
    shell.show()
    try:
        qtbot.waitUntil(lambda: isinstance(shell.current_page(), OutOfServicePage), timeout=20_000)
        page = shell.current_page()
        assert isinstance(page, OutOfServicePage)
        assert "窗口" in page.message.text()  # the citizen is sent to a window
        assert "--enrol" in page.detail.text() and "登记" in page.detail.text()
        assert startup.exit_code == 1 and startup.terminal is None
        assert not (config.data_dir / "outbox.sqlite3").exists()  # nothing opened
    finally:
        startup.stop()
