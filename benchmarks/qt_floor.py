"""The floor under the terminal's start-up: a bare PySide6 window with one label.

    python benchmarks/qt_floor.py --benchmark-ready

Launched exactly as main.py is, it says READY the same way the terminal does (the window's first
paint event has been handled, then a zero-timer fires, so the event loop takes input) and SETTLED
right after, having no deferred work. What the terminal takes beyond this is its own doing.
"""

from __future__ import annotations

import sys
from typing import Any

from PySide6.QtCore import QTimer, Signal
from PySide6.QtGui import QFont
from PySide6.QtWidgets import QApplication, QLabel, QMainWindow


class Window(QMainWindow):
    first_frame = Signal()

    def __init__(self) -> None:
        super().__init__()
        self._painted = False

    def paintEvent(self, event: Any) -> None:
        super().paintEvent(event)
        if not self._painted:
            self._painted = True
            self.first_frame.emit()


def main(argv: list[str]) -> int:
    app = QApplication(argv[:1])
    window = Window()
    # The terminal's first question, in Chinese and large type, so the floor loads the same fonts.
    label = QLabel("请将身份证放在读卡区")
    font = QFont(label.font())
    font.setPixelSize(44)
    label.setFont(font)
    window.setCentralWidget(label)
    window.resize(1280, 900)
    if "--benchmark-ready" in argv:

        def ready() -> None:
            print("READY", flush=True)
            print("SETTLED", flush=True)

        window.first_frame.connect(lambda: QTimer.singleShot(0, ready))
    window.show()
    return int(app.exec())


if __name__ == "__main__":
    sys.exit(main(sys.argv))
