"""A terminal that starts before its platform answers (the demo boots the platform after the
first screen; a hall's network may come up after the terminal)."""

from __future__ import annotations

from pytestqt.qtbot import QtBot

from refplatform.server import RunningPlatform
from tests.fixtures.badpeer import Gate
from tests.gui.conftest import MakeTerminal


def test_the_catalogue_is_fetched_once_the_platform_answers(
    qtbot: QtBot, make_terminal: MakeTerminal, net_gate: Gate, platform_server: RunningPlatform
) -> None:
    terminal = make_terminal(platform_url=net_gate.base_url)
    cache = terminal.parts.config.catalogue_cache_path
    qtbot.waitUntil(lambda: terminal.parts.sync.status().online is False, timeout=5000)
    assert not cache.exists()  # the first fetch failed: the bundled catalogue is in use
    net_gate.open("127.0.0.1", platform_server.port)
    terminal.parts.sync.wake()  # what the demo does when its platform is up
    qtbot.waitUntil(cache.exists, timeout=5000)
    assert terminal.parts.sync.status().online is True
