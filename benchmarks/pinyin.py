"""How long a finger waits for pinyin candidates: key tap to the frame that shows them.

    python -m benchmarks.pinyin [REPEATS]

The real keyboard (ui/pinyin_keyboard.py, Qt Virtual Keyboard and its Pinyin engine) sits on a
1080-wide page with a text field. Each repeat types n-i-h-a-o with mouse events on the key items,
as a finger would, then chooses 你好. A key types on release, so the clock starts as the release
is sent; it stops when the keyboard's QQuickWidget has painted its next frame into the window and
the candidate list has changed. Also reported: the release to the candidate model's update alone
(the engine), and choosing a candidate to the frame that shows the committed text.
The last line printed is a JSON object of the figures.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import time
from collections.abc import Callable

from PySide6.QtCore import QEvent, QEventLoop, QObject, QPoint, Qt, QTimer
from PySide6.QtQuick import QQuickItem
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication, QLineEdit, QVBoxLayout, QWidget

from ui.pinyin_keyboard import PANEL_HEIGHT, PinyinKeyboard, prepare_environment

TARGET_MS = 30.0
FRAME_TIMEOUT_MS = 2000
SETTLE_MS = 30  # no frame for this long: the keyboard is still


class FrameWaiter(QObject):
    """Runs the event loop until the keyboard's view has painted a new frame into the window."""

    def __init__(self, keyboard: PinyinKeyboard) -> None:
        super().__init__(keyboard)
        self._loop = QEventLoop(self)
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.timeout.connect(self._loop.quit)
        self.rendered_at = 0.0
        self._view = keyboard.view()
        self._view.installEventFilter(self)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if watched is self._view and event.type() == QEvent.Type.Paint:
            # The view renders its scene if needed and draws it into the window here; the
            # frame is in the window once this returns.
            self._view.removeEventFilter(self)
            try:
                self._view.event(event)
            finally:
                self._view.installEventFilter(self)
            self.rendered_at = time.perf_counter()
            self._loop.quit()
            return True
        return False

    def wait(self, timeout_ms: int = FRAME_TIMEOUT_MS) -> float:
        """The time the next frame was painted (0.0 if none came within the timeout)."""
        self.rendered_at = 0.0
        self._timer.start(timeout_ms)
        self._loop.exec()
        self._timer.stop()
        return self.rendered_at

    def settle(self) -> None:
        """Let every frame already asked for be painted, so the next one is the tap's."""
        for _ in range(100):
            if not self.wait(SETTLE_MS):
                return
        raise RuntimeError("the keyboard never stops painting")


def _centre(item: QQuickItem) -> QPoint:
    centre = item.mapToScene(item.boundingRect().center())
    return QPoint(round(centre.x()), round(centre.y()))


def _wait_until(app: QApplication, condition: Callable[[], bool], timeout_s: float = 5.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise RuntimeError("the keyboard did not get ready")
        app.processEvents(QEventLoop.ProcessEventsFlag.AllEvents, 20)


def _page() -> tuple[QWidget, QLineEdit, PinyinKeyboard]:
    page = QWidget()
    layout = QVBoxLayout(page)
    line = QLineEdit(page)
    layout.addWidget(line)
    layout.addStretch(1)
    keyboard = PinyinKeyboard(page)
    keyboard.setFixedHeight(PANEL_HEIGHT)
    layout.addWidget(keyboard)
    page.resize(1080, 1000)
    page.show()
    page.activateWindow()  # keys type into the focused field of the active window only
    QTest.qWaitForWindowActive(page)
    keyboard.set_target(line)
    return page, line, keyboard


def _tap(view: QWidget, at: QPoint, waiter: FrameWaiter) -> float:
    """Press (and let its frame go by), then release: the time the release was sent."""
    QTest.mousePress(view, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, at)
    waiter.settle()
    start = time.perf_counter()
    QTest.mouseRelease(view, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, at)
    return start


def _type_nihao(
    keyboard: PinyinKeyboard, waiter: FrameWaiter, frame_ms: list[float], model_ms: list[float]
) -> None:
    keys = keyboard.key_items()
    for letter in "nihao":
        before = keyboard.candidates(), keyboard.preedit_text()
        start = _tap(keyboard.view(), _centre(keys[letter]), waiter)
        model_ms.append((time.perf_counter() - start) * 1000)
        rendered = waiter.wait()
        if not rendered:
            raise RuntimeError(f"no frame after the tap on {letter!r}")
        frame_ms.append((rendered - start) * 1000)
        after = keyboard.candidates(), keyboard.preedit_text()
        if after == before or not after[0]:
            raise RuntimeError(f"the tap on {letter!r} showed no new candidates")


def measure_pinyin(repeats: int = 30) -> dict[str, float]:
    # The input method is chosen when the QApplication is made: this must come first.
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    prepare_environment()
    app = QApplication.instance() or QApplication([])
    if not isinstance(app, QApplication):
        raise RuntimeError("a QCoreApplication without widgets is already running")
    page, line, keyboard = _page()
    _wait_until(app, lambda: set("nihao") <= set(keyboard.key_items()))
    waiter = FrameWaiter(keyboard)
    frame_ms: list[float] = []
    model_ms: list[float] = []
    choose_ms: list[float] = []
    try:
        for _ in range(repeats):
            keyboard.wipe()
            line.clear()
            waiter.settle()
            _type_nihao(keyboard, waiter, frame_ms, model_ms)
            choice = next(i for i in keyboard.candidate_items() if i.property("text") == "你好")
            start = _tap(keyboard.view(), _centre(choice), waiter)
            rendered = waiter.wait()
            if line.text() != "你好" or not rendered:
                raise RuntimeError(f"choosing 你好 typed {line.text()!r}")
            choose_ms.append((rendered - start) * 1000)
    finally:
        keyboard.set_target(None)
        page.close()
        page.deleteLater()
        app.processEvents()
    ordered = sorted(frame_ms)
    return {
        "pinyin_candidates_ms_median": round(statistics.median(frame_ms), 2),
        "pinyin_candidates_ms_p95": round(ordered[int(0.95 * (len(ordered) - 1))], 2),
        "pinyin_candidates_ms_max": round(ordered[-1], 2),
        "pinyin_engine_ms_median": round(statistics.median(model_ms), 2),
        "pinyin_choose_ms_median": round(statistics.median(choose_ms), 2),
        "pinyin_taps": float(len(frame_ms)),
    }


def main(argv: list[str]) -> int:
    repeats = int(argv[1]) if len(argv) > 1 else 30
    figures = measure_pinyin(repeats)
    print(
        f"key tap to candidates on screen: median {figures['pinyin_candidates_ms_median']} ms"
        f" (target {TARGET_MS:.0f} ms), p95 {figures['pinyin_candidates_ms_p95']} ms"
        f" over {figures['pinyin_taps']:.0f} taps"
    )
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
