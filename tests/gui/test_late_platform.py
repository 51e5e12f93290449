"""A terminal that starts before its platform answers (the demo boots the platform after the
first screen; a hall's network may come up after the terminal)."""

from __future__ import annotations

from pathlib import Path

from pytestqt.qtbot import QtBot

from refplatform.server import RunningPlatform
from tests.fixtures.badpeer import Gate
from tests.gui.enrolled import enrolled_terminal


def test_the_catalogue_is_fetched_once_the_platform_answers(
    qtbot: QtBot, tmp_path: Path, net_gate: Gate, platform_server: RunningPlatform
) -> None:
    # Enrolled with platform_server, which it reaches only through the gate: closed for now.
    with enrolled_terminal(platform_server, tmp_path / "data", url=net_gate.base_url) as terminal:
        cache = terminal.parts.config.catalogue_cache_path
        qtbot.waitUntil(lambda: terminal.parts.sync.status().online is False, timeout=5000)
        assert not cache.exists()  # the first fetch failed: the bundled catalogue is in use
        net_gate.open("127.0.0.1", platform_server.port)
        terminal.parts.sync.wake()  # what the demo does when its platform is up
        qtbot.waitUntil(cache.exists, timeout=5000)
        assert terminal.parts.sync.status().online is True
