"""Python's cyclic garbage collector runs on the GUI thread only.

Left alone, the collector runs on whichever thread happens to cross its allocation threshold:
a worker rendering a receipt, a reader thread. If the garbage it finds holds a Qt object, Qt frees
that object on the wrong thread and the terminal crashes or warns ("Timers cannot be stopped from
another thread"). So automatic collection is off while the terminal runs, and a GUI-thread timer
collects whenever a generation's threshold has been passed, as automatic collection would.
The long-lived objects (pages, journeys, imported modules) are frozen out of the collector's view
when the terminal starts, again at its first frame and once the start-up work done after the first
paint has finished, so the full collections the timer makes do not walk the whole application each
time. Each freeze collects first, so nothing already garbage is set aside; after the first, each
collection walks only what was made since the one before.
"""

from __future__ import annotations

import gc
import logging
import time

from PySide6.QtCore import QObject, QTimer

log = logging.getLogger(__name__)

CHECK_MS = 500

# Collection is process-wide; several terminals in one process (tests) share it: the first to
# start turns automatic collection off, the last to stop hands it back as it found it.
_running: list[GuiThreadCollector] = []
_found_enabled: list[bool] = []


class GuiThreadCollector(QObject):
    def __init__(self, parent: QObject, interval_ms: int = CHECK_MS) -> None:
        super().__init__(parent)
        self._thresholds = gc.get_threshold()
        self._timer = QTimer(self, interval=interval_ms)
        self._timer.timeout.connect(self.check)
        self.collections = 0
        self.longest_ms = 0.0
        self.freezes = True  # off only to measure what freezing is worth (benchmarks/gc_pause.py)
        self.frozen_ms = 0.0  # the longest freeze, collection included

    def start(self) -> None:
        if self in _running:
            return
        if not _running:
            _found_enabled[:] = [gc.isenabled()]
            gc.disable()
        _running.append(self)
        self.freeze_long_lived()
        self._timer.start()

    def freeze_long_lived(self) -> None:
        """Collect, then set what is still alive aside: it lives as long as the terminal."""
        # Another terminal's objects are not this one's to freeze.
        if not self.freezes or _running != [self]:
            return
        started = time.perf_counter()
        gc.collect()
        gc.freeze()
        self.frozen_ms = max(self.frozen_ms, (time.perf_counter() - started) * 1000)

    def check(self) -> None:
        counts = gc.get_count()
        generation = -1
        for index in (2, 1, 0):
            if counts[index] > self._thresholds[index]:
                generation = index
                break
        if generation < 0:
            return
        started = time.perf_counter()
        gc.collect(generation)
        spent = (time.perf_counter() - started) * 1000
        self.collections += 1
        self.longest_ms = max(self.longest_ms, spent)

    def stop(self) -> None:
        """Collect what is left here, on the GUI thread, and hand collection back as it was."""
        self._timer.stop()
        if self not in _running:
            return
        _running.remove(self)
        if _running:
            return
        gc.unfreeze()
        gc.collect()
        if _found_enabled and _found_enabled[0]:
            gc.enable()
