"""How many keys and clicks a window clerk spends on one assisted application.

    python -m benchmarks.counter_keys DIR

A counter terminal (offscreen, staff signed in) against the reference platform in another
process. The walk is the GUI tests' own (tests/gui/counter.py): the card is read, the clerk clicks
the residence-permit service, types every answer with Enter between them, presses Ctrl+Enter,
the citizen signs (strokes, not counted as keys or clicks) and the clerk clicks Confirm. Keys go
to the widget that has the focus, so a wrong focus order fails the walk instead of being counted.

- counter_submission_keystrokes: keys and clicks from the card read to the platform's receipt
- counter_keys_typed: of them, the characters of the answers themselves (phone, address, date)
- counter_keys_overhead: the rest (choosing, moving on, lists, confirming)
- counter_signature_strokes: strokes of the signature
The last line printed is a JSON object of the figures.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("HALL_TTS_ENGINE", "mock")

from PySide6.QtCore import QPoint, Qt
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication, QWidget

from benchmarks._launch import stop as stop_process
from benchmarks.startup import enrol_terminal
from benchmarks.sync import _start_platform
from kiosk.app import build_parts
from kiosk.config import Config, Mode
from kiosk.staff import ScryptCost, StaffDirectory
from tests.gui.counter import Count, counter_submission
from tests.gui.test_visit import ADDRESS, PHONE
from ui.app import Terminal
from ui.input_environment import prepare_environment

ROOT = Path(__file__).resolve().parent.parent
CATALOGUE = ROOT / "assets" / "catalogue" / "demo_catalogue.json"
WAIT_S = 20.0


class Bot:
    """What the walk asks of pytest-qt's qtbot, done with QTest and the event loop."""

    def keyClick(self, widget: QWidget, key: Qt.Key, modifier: object = None) -> None:
        if modifier is None:
            QTest.keyClick(widget, key)
        else:
            QTest.keyClick(widget, key, modifier)  # type: ignore[call-overload]

    def keyClicks(self, widget: QWidget, text: str) -> None:
        QTest.keyClicks(widget, text)

    def mouseClick(self, widget: QWidget, button: Qt.MouseButton) -> None:
        QTest.mouseClick(widget, button)

    def mousePress(self, widget: QWidget, button: Qt.MouseButton, pos: QPoint) -> None:
        QTest.mousePress(widget, button, Qt.KeyboardModifier.NoModifier, pos)

    def mouseMove(self, widget: QWidget, pos: QPoint) -> None:
        QTest.mouseMove(widget, pos)

    def mouseRelease(self, widget: QWidget, button: Qt.MouseButton, pos: QPoint) -> None:
        QTest.mouseRelease(widget, button, Qt.KeyboardModifier.NoModifier, pos)

    def waitUntil(self, done: Callable[[], object], timeout: int = 5000) -> None:
        deadline = time.monotonic() + timeout / 1000
        while not done():
            if time.monotonic() > deadline:
                raise TimeoutError("the counter walk did not reach its next step")
            QTest.qWait(5)  # the event loop runs meanwhile

    def waitSignal(self, signal: object, timeout: int = 5000) -> _Caught:
        return _Caught(self, signal, timeout)


class _Caught:
    """`with bot.waitSignal(signal) as caught:` then caught.args, as pytest-qt's blocker."""

    def __init__(self, bot: Bot, signal: object, timeout: int) -> None:
        self._bot, self._timeout = bot, timeout
        self.args: list[object] = []
        self._got = False
        signal.connect(self._caught)  # type: ignore[attr-defined]

    def _caught(self, *args: object) -> None:
        self.args, self._got = list(args), True

    def __enter__(self) -> _Caught:
        return self

    def __exit__(self, *exc: object) -> None:
        if exc[0] is None:
            self._bot.waitUntil(lambda: self._got, self._timeout)


def measure(directory: Path) -> dict[str, float]:
    prepare_environment()
    app = QApplication.instance() or QApplication([])
    platform_dir = directory / "platform"
    platform_dir.mkdir(parents=True, exist_ok=True)
    process, url = _start_platform(platform_dir / "platform.sqlite3")
    try:
        data = directory / "terminal"
        config = Config(data_dir=data, platform_url=url, mode=Mode.COUNTER, terminal_id="C01")
        enrol_terminal(platform_dir, url, data, "C01")
        parts = build_parts(config, demo=True, bundled_catalogue=CATALOGUE)
        terminal = Terminal(parts, app)  # type: ignore[arg-type]
        terminal.window.resize(1920, 1080)
        terminal.window.show()
        terminal.start()
        try:
            if terminal.staff is None:
                raise RuntimeError("a counter terminal without its staff sign-in")
            staff = StaffDirectory(data, cost=ScryptCost(n=2**10, r=8, p=1))
            staff.add("S0001", "窗口一", "135790")
            terminal.staff.signed_in(staff.sign_in("S0001", "135790"))
            count = Count()
            result = counter_submission(Bot(), terminal, count)  # type: ignore[arg-type]
            if not result.delivered:
                raise RuntimeError("the platform did not take the application")
        finally:
            terminal.stop()
            parts.close()
    finally:
        stop_process(process)
    typed = len(PHONE) + len(ADDRESS) + len("20250601")
    total = count.keys + count.clicks
    return {
        "counter_submission_keystrokes": float(total),
        "counter_keys_typed": float(typed),
        "counter_keys_overhead": float(total - typed),
        "counter_signature_strokes": float(count.strokes),
    }


if __name__ == "__main__":
    figures = measure(Path(sys.argv[1]))
    print(json.dumps(figures))
