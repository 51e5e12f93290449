"""Handwriting: from the finger lifting off the box to the candidates on the buttons.

Measured as the citizen feels it: the clock starts just before the last stroke's release event is
sent to the pad and stops when the pad says its candidate buttons hold the new texts, so the hop
to the worker, the classification and the hop back are all inside. A fresh pad is built for each
figure; its first recognition after the model has been opened (pages of the model still cold) is
reported on its own as handwriting_first_candidates_ms.

    python -m benchmarks.handwriting [repeats]
"""

from __future__ import annotations

import os
import statistics
import sys
import time

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PySide6.QtCore import QPoint, Qt
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication, QWidget

from tests.unit.test_handwriting import BOX, CHARACTERS
from ui.handwriting import HandwritingPad

TIMEOUT_S = 10.0


def _app() -> QApplication:
    app = QApplication.instance()
    if isinstance(app, QApplication):
        return app
    return QApplication([])


def _wait(app: QApplication, done: list[float]) -> float:
    deadline = time.perf_counter() + TIMEOUT_S
    while not done:
        if time.perf_counter() > deadline:
            raise TimeoutError("no candidates within 10 s")
        app.processEvents()
    return done[0]


def _write(app: QApplication, pad: HandwritingPad, character: str) -> float:
    """Write a character; the ms from the last release to the candidates shown."""
    box = pad.findChild(QWidget, "handwriting_box")
    if box is None:
        raise RuntimeError("the pad has no writing box")
    scale = box.width() / BOX
    strokes = CHARACTERS[character]
    shown: list[float] = []

    def record() -> None:
        if pad.candidates() and not shown:
            shown.append(time.perf_counter())

    pad.candidates_changed.connect(record)
    try:
        for index, stroke in enumerate(strokes):
            points = [QPoint(round(x * scale), round(y * scale)) for x, y in stroke]
            QTest.mousePress(
                box, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, points[0]
            )
            for point in points[1:]:
                QTest.mouseMove(box, point)
            last = index == len(strokes) - 1
            if last:
                shown.clear()
            started = time.perf_counter()
            QTest.mouseRelease(
                box, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, points[-1]
            )
            if not last:
                continue
            ended = _wait(app, shown)
            # Candidates from an earlier stroke may land first; wait for this stroke's own.
            while pad.is_recognising():
                shown.clear()
                ended = _wait(app, shown)
            if pad.candidates()[0] != character:
                raise RuntimeError(f"wrote {character}, got {pad.candidates()[:3]}")
            return (ended - started) * 1000.0
        raise RuntimeError("no strokes")
    finally:
        pad.candidates_changed.disconnect(record)
        pad.wipe()


def measure_handwriting(repeats: int = 20) -> dict[str, float]:
    if repeats < 1:
        raise ValueError("repeats must be at least 1")
    app = _app()
    window = QWidget()
    pad = HandwritingPad(parent=window)
    window.resize(1000, 560)
    pad.resize(1000, 560)
    window.show()
    try:
        deadline = time.perf_counter() + TIMEOUT_S
        while not pad.is_loaded():
            if time.perf_counter() > deadline or not pad.is_available():
                raise RuntimeError("the recognizer did not open: " + pad.spoken_text())
            app.processEvents()
        first = _write(app, pad, "十")
        times = [_write(app, pad, ("一", "十", "人", "大", "王")[i % 5]) for i in range(repeats)]
    finally:
        pad.shutdown()
        window.deleteLater()
        app.processEvents()
    times.sort()
    p95 = times[min(len(times) - 1, max(0, round(0.95 * len(times)) - 1))]
    return {
        "handwriting_candidates_ms_median": round(statistics.median(times), 2),
        "handwriting_candidates_ms_p95": round(p95, 2),
        "handwriting_first_candidates_ms": round(first, 2),
    }


def main(argv: list[str]) -> int:
    repeats = int(argv[1]) if len(argv) > 1 else 20
    for name, value in measure_handwriting(repeats).items():
        print(f"{name}: {value} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
