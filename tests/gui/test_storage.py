"""What people see when the terminal's own storage fails: a full disk, a damaged queue, a key
that does not fit."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

from PySide6.QtCore import Qt
from pytestqt.qtbot import QtBot

from kiosk.app import build_parts
from kiosk.config import Config
from kiosk.session import Step
from offline_queue.outbox import State
from offline_queue.recovery import QUARANTINE_MARK
from tests.fixtures.tmpfs import small_disk
from tests.gui.conftest import ROOT, MakeTerminal, closed_port_url
from tests.gui.test_visit import PHONE, answer_residence_permit, open_form, submit, wait_step

NOT_SAVED = "您的申请未能保存在本终端"


def test_a_full_disk_is_explained_and_nothing_typed_is_lost(
    qtbot: QtBot, make_terminal: MakeTerminal, tmp_path: Path
) -> None:
    with small_disk(2 * 1024 * 1024) as disk:
        terminal = make_terminal(data_dir=disk.path, receipts_dir=tmp_path / "receipts")
        window = terminal.window
        visit = terminal.visit
        outbox = terminal.parts.outbox
        open_form(qtbot, terminal)
        answer_residence_permit(qtbot, terminal)
        with disk.full():
            with qtbot.waitSignal(visit.submission_failed, timeout=10000) as failed:
                qtbot.mouseClick(visit.review.submit_button, Qt.MouseButton.LeftButton)
            wait_step(qtbot, terminal, Step.REVIEW)
            assert NOT_SAVED in failed.args[0]
            assert visit.review.summary.isVisible()
            assert NOT_SAVED in visit.review.summary.text()
            assert NOT_SAVED in window.voice.spoken[-1]
            assert visit.session.answers["phone"] == PHONE  # nothing typed is lost
            assert sum(outbox.counts().values()) == 0  # and nothing half-saved
        # space again (staff cleared the disk): the same answers go through
        result = submit(qtbot, terminal)
        assert result.delivered
        assert outbox.state_of(result.submission_id) is State.DELIVERED
        window.close()
        terminal.stop()
        terminal.parts.close()


def test_a_damaged_queue_is_set_aside_and_staff_are_told(
    qtbot: QtBot, make_terminal: MakeTerminal, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    data.mkdir()
    damaged = os.urandom(8192)
    (data / "outbox.sqlite3").write_bytes(damaged)
    terminal = make_terminal(data_dir=data)
    window = terminal.window
    kept = [p for p in data.iterdir() if QUARANTINE_MARK in p.name and p.name.endswith("Z")]
    assert len(kept) == 1 and kept[0].read_bytes() == damaged
    assert window.staff_banner.isVisible()
    assert kept[0].name in window.staff_text.text()
    assert "工作人员请注意" in window.staff_text.text()
    # the terminal works on a fresh queue
    open_form(qtbot, terminal)
    answer_residence_permit(qtbot, terminal)
    result = submit(qtbot, terminal)
    assert result.delivered
    qtbot.mouseClick(window.staff_dismiss, Qt.MouseButton.LeftButton)
    assert not window.staff_banner.isVisible()


def test_a_key_that_does_not_fit_stops_the_terminal_with_a_reason(tmp_path: Path) -> None:
    data = tmp_path / "data"

    def launch() -> subprocess.CompletedProcess[str]:
        env = {
            **os.environ,
            "QT_QPA_PLATFORM": "offscreen",
            "HALL_TTS_ENGINE": "mock",
            "PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring",
        }
        return subprocess.run(
            [sys.executable, str(ROOT / "main.py"), "--self-check", "--data-dir", str(data),
             "--platform-url", closed_port_url(), "--mode", "rural"],
            capture_output=True, text=True, timeout=60, env=env, cwd=ROOT, check=False,
        )

    parts = build_parts(
        Config(data_dir=data, platform_url=closed_port_url()), demo=False, bundled_catalogue=None
    )
    parts.outbox.enqueue("submission", b"{}", b"{}")  # a submission waiting under the old key
    parts.close()
    (data / "outbox.key").write_bytes(os.urandom(32))  # another terminal's key, say
    second = launch()
    assert second.returncode == 3, second.stderr
    assert "本终端目前无法受理申请" in second.stderr
    assert "wrong_key" in second.stderr
    assert "Traceback" not in second.stderr
    assert not any(QUARANTINE_MARK in p.name for p in data.iterdir())  # the data is not damaged


def test_damage_found_while_running_asks_staff_to_restart(
    qtbot: QtBot, make_terminal: MakeTerminal
) -> None:
    terminal = make_terminal(platform_url=closed_port_url())
    window = terminal.window
    terminal.parts.sync.stop()
    status = terminal.parts.sync.status()
    terminal.status.sink(replace(status, last_error="corrupt"))
    assert window.staff_banner.isVisible()
    assert "请重新启动终端" in window.staff_text.text()
