"""A village service point that starts with no network: it works from the catalogue it fetched
last (its version and when it came shown to the assistant), and a whole assisted application is
made, signed and kept until a network comes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from PySide6.QtWidgets import QApplication
from pytestqt.qtbot import QtBot

from kiosk.app import build_parts
from kiosk.config import Config, Mode
from offline_queue.outbox import State
from refplatform.server import start_in_thread
from tests.fixtures.platform import DEMO_CATALOGUE
from tests.gui.conftest import CATALOGUE, sign_in_staff
from tests.gui.counter import counter_submission
from tests.gui.enrolled import enrolled_terminal
from tests.gui.test_queue import open_queue
from ui.app import Terminal

NEWER = "2026.12.1"


def _newer_catalogue(tmp_path: Path) -> Path:
    """The platform's catalogue of a later date than the one shipped with the terminal."""
    doc: dict[str, Any] = json.loads(DEMO_CATALOGUE.read_text(encoding="utf-8"))
    doc["version"] = NEWER
    path = tmp_path / "newer-catalogue.json"
    path.write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
    return path


def test_a_service_point_starts_offline_with_the_catalogue_it_fetched_last(
    qtbot: QtBot, tmp_path: Path
) -> None:
    data = tmp_path / "village"
    with start_in_thread(tmp_path / "platform.sqlite3", _newer_catalogue(tmp_path)) as platform:
        with enrolled_terminal(platform, data, mode=Mode.RURAL, terminal_id="V07") as online:
            qtbot.waitUntil(lambda: online.visit.session.catalogue.version == NEWER, timeout=10000)
        url = platform.base_url
    # The platform is gone: nothing answers at its address any more.
    config = Config(data_dir=data, platform_url=url, mode=Mode.RURAL, terminal_id="V07",
                    hall_name="幸福村便民服务站")
    parts = build_parts(config, demo=True, bundled_catalogue=CATALOGUE)
    app = QApplication.instance()
    assert isinstance(app, QApplication)
    terminal = Terminal(parts, app)
    try:
        terminal.window.resize(1920, 1080)
        terminal.window.show()
        terminal.start()
        sign_in_staff(terminal)
        assert terminal.visit.session.catalogue.version == NEWER  # not the one shipped
        parts.submitter._upload_wait_s = 0.2
        result = counter_submission(qtbot, terminal)
        assert not result.delivered
        assert parts.outbox.state_of(result.submission_id) is State.QUEUED
        open_queue(qtbot, terminal)
        queue = terminal.queue
        assert queue is not None
        ages = queue.queue_page.ages.text()
        assert f"服务目录版本：{NEWER}（" in ages and "从平台取得" in ages
        assert "待上传：1" in queue.queue_page.summary.text()
    finally:
        terminal.stop()
        parts.close()
