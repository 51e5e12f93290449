"""A real terminal for GUI tests: real outbox, real platform over HTTP, PDF printer, demo reader."""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtWidgets import QApplication, QLabel, QLineEdit, QWidget
from pytestqt.qtbot import QtBot

from kiosk.app import build_parts
from kiosk.config import Config
from refplatform.server import RunningPlatform
from tests.fixtures.platform import enrol_terminal
from tests.fixtures.stalls import StallRecorder
from ui.app import Terminal

ROOT = Path(__file__).resolve().parents[2]
CATALOGUE = ROOT / "assets" / "catalogue" / "demo_catalogue.json"

MakeTerminal = Callable[..., Terminal]


@pytest.fixture(autouse=True)
def _no_stalls(stall_guard: StallRecorder) -> StallRecorder:
    """Every GUI test fails if the event loop is held up for more than 200 ms at a time."""
    return stall_guard


def closed_port_url() -> str:
    """A loopback URL where nothing listens: the platform is unreachable."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}"


@pytest.fixture
def make_terminal(
    qtbot: QtBot, tmp_path: Path, platform_server: RunningPlatform
) -> Iterator[MakeTerminal]:
    made: list[Terminal] = []

    def make(*, bundled: Path = CATALOGUE, signed_in: bool = True, **overrides: Any) -> Terminal:
        """A terminal with the settings given; at a counter or rural terminal a staff member
        (STAFF_ID) is signed in unless signed_in=False."""
        values: dict[str, Any] = {
            "data_dir": tmp_path / "data",
            "platform_url": platform_server.base_url,
            "hall_name": "本市政务服务中心",
        }
        values.update(overrides)
        config = Config(**values)
        if config.platform_url == platform_server.base_url:
            enrol_terminal(platform_server, config.data_dir, config.terminal_id)
        else:
            enrol_elsewhere(config)
        parts = build_parts(config, demo=True, bundled_catalogue=bundled)
        app = QApplication.instance()
        assert isinstance(app, QApplication)
        terminal = Terminal(parts, app)
        terminal.window.resize(1280, 900)
        terminal.window.show()
        terminal.start()
        made.append(terminal)
        if terminal.staff is not None and signed_in:
            sign_in_staff(terminal)
        return terminal

    yield make
    for terminal in made:
        terminal.stop()  # deletes the window and everything Qt of the terminal
        terminal.parts.close()
    made.clear()


STAFF_ID = "S0001"
STAFF_NAME = "测试员"
STAFF_PIN = "135790"


def sign_in_staff(terminal: Terminal) -> None:
    """A staff member provisioned and signed in, as the sign-in page would (a cheap scrypt cost:
    each entry records its own, and the rules under test do not depend on it)."""
    from kiosk.staff import ScryptCost, StaffDirectory

    assert terminal.staff is not None
    directory = StaffDirectory(terminal.parts.config.data_dir, cost=ScryptCost(n=2**4, r=1, p=1))
    directory.add(STAFF_ID, STAFF_NAME, STAFF_PIN)
    terminal.staff.signed_in(directory.sign_in(STAFF_ID, STAFF_PIN))


def enrol_elsewhere(config: Config) -> None:
    """A terminal pointed at an address where no platform answers: enrolled, as it would be,
    with a platform that is away (its keys made here)."""
    from kiosk.terminal_auth import PlatformKey, enrol_locally
    from refplatform.keys import PlatformKeys

    keys = PlatformKeys(config.data_dir.parent / "absent-platform-keys")
    enrol_locally(
        config.data_dir,
        config.platform_url,
        config.terminal_id,
        (PlatformKey(keys.signing_key_id, keys.signing_public_b64),),
        PlatformKey(keys.sealing_key_id, keys.sealing_public_b64),
    )


def visible_texts(root: QWidget) -> list[str]:
    """Every text a person could read or a screen reader could speak from the window."""
    texts: list[str] = []
    for widget in root.findChildren(QWidget):
        if isinstance(widget, QLabel | QLineEdit):
            texts.append(widget.text())
        elif hasattr(widget, "text") and callable(widget.text):
            try:
                value = widget.text()
            except TypeError:
                continue
            if isinstance(value, str):
                texts.append(value)
        texts.append(widget.accessibleName())
        texts.append(widget.accessibleDescription())
        texts.append(widget.toolTip())
    return [t for t in texts if t]
