"""A terminal enrolled with a platform other than the GUI tests' platform_server (one with faults
switched on, say), or reaching its platform through another address (a gate): make_terminal
enrols those with a platform that is away, whose keys no real platform has."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from PySide6.QtWidgets import QApplication

from kiosk.app import build_parts
from kiosk.config import Config
from refplatform.server import RunningPlatform
from tests.fixtures.platform import enrol_behind, enrol_terminal
from tests.gui.conftest import CATALOGUE, sign_in_staff
from ui.app import Terminal


@contextlib.contextmanager
def enrolled_terminal(
    platform: RunningPlatform, data_dir: Path, *, url: str | None = None, **overrides: Any
) -> Iterator[Terminal]:
    """A started terminal, as make_terminal makes one, enrolled with platform. url: the address
    it reaches the platform at (default: the platform's own); overrides: more Config values."""
    values: dict[str, Any] = {
        "data_dir": data_dir,
        "platform_url": url or platform.base_url,
        "hall_name": "本市政务服务中心",
    }
    values.update(overrides)
    config = Config(**values)
    if config.platform_url == platform.base_url:
        enrol_terminal(platform, config.data_dir, config.terminal_id)
    else:
        enrol_behind(platform, config.data_dir, config.platform_url, config.terminal_id)
    parts = build_parts(config, demo=True, bundled_catalogue=CATALOGUE)
    app = QApplication.instance()
    assert isinstance(app, QApplication)
    terminal = Terminal(parts, app)
    try:
        terminal.window.resize(1280, 900)
        terminal.window.show()
        terminal.start()
        if terminal.staff is not None:
            sign_in_staff(terminal)
        yield terminal
    finally:
        terminal.stop()  # deletes the window and everything Qt of the terminal
        parts.close()


class EnrolledTerminals:
    """Terminals made by enrolled_terminal that live until close() (a fixture's teardown), as
    make_terminal's do: past the end of the `with` of a platform started inside the test."""

    def __init__(self) -> None:
        self._stack = contextlib.ExitStack()

    def make(
        self, platform: RunningPlatform, data_dir: Path, *, url: str | None = None, **overrides: Any
    ) -> Terminal:
        return self._stack.enter_context(
            enrolled_terminal(platform, data_dir, url=url, **overrides)
        )

    def close(self) -> None:
        self._stack.close()
