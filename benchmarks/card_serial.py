"""Card presented on a GA/T 467 serial reader → form prefilled, through a real pty at line rate.

The reader simulator (tests/fixtures/gat467_sim.py) answers on a pseudo-terminal and paces its
replies at 115200 8N1 (11,520 bytes/s), so the 1295-byte base-message reply alone takes 112 ms on
the wire, as on a real reader. The path measured is the application's: the serial backend polls,
finds, selects and reads the card on its device thread, the IDENTITY event crosses to the GUI
thread through ui.bridge.ReaderBridge, and the form is prefilled there (kiosk.forms.prefill).
Each placement comes at a random moment against the reader's polling, as a hand's does.

While the reads run, a 5 ms precise QTimer probes the GUI event loop (offscreen Qt); the largest
gap between its ticks beyond 5 ms is the worst stall the person at the screen would have seen.
"""

from __future__ import annotations

import itertools
import os
import random
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
CATALOGUE = ROOT / "assets" / "catalogue" / "demo_catalogue.json"
PROBE_MS = 5


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(fraction * len(ordered)) - 1))]


class _Session:
    """Places the card, takes it away when the form is filled, and again, on the GUI thread."""

    def __init__(self, reads: int, sim: Any, service: Any, poll_s: float, loop: Any) -> None:
        self.reads = reads
        self.sim = sim
        self.service = service
        self.poll_s = poll_s
        self.loop = loop
        self.samples_ms: list[float] = []
        self.failures: list[str] = []
        # A fixed seed: the same placement phases on every run, so runs compare.
        self._rng = random.Random(467)  # noqa: S311 - timing jitter, not secrecy

    def place_later(self) -> None:
        from PySide6.QtCore import QTimer

        from tests.fixtures.gat467_sim import PERSON

        delay_ms = round(self._rng.uniform(0, 2 * self.poll_s) * 1000)
        QTimer.singleShot(delay_ms, lambda: self.sim.present(PERSON))

    def fail(self, why: str) -> None:
        self.failures.append(why)
        self.loop.quit()

    def on_event(self, event: Any) -> None:
        from devices.readers.base import EventKind
        from kiosk.forms import prefill

        if event.kind is EventKind.READER_ADDED:
            self.place_later()
        elif event.kind is EventKind.IDENTITY and event.identity is not None:
            answers = prefill(self.service, event.identity)
            done = time.perf_counter()
            if event.identity.name not in answers.values():
                self.fail("the form was not prefilled with the card's name")
                return
            self.samples_ms.append((done - self.sim.presented_at) * 1000.0)
            self.sim.remove()
        elif event.kind is EventKind.CARD_REMOVED:
            if len(self.samples_ms) >= self.reads:
                self.loop.quit()
            else:
                self.place_later()
        elif event.kind in (EventKind.ERROR, EventKind.READER_REMOVED):
            self.fail(f"{event.kind.value}: {event.error} {event.detail}")


def measure_card_prefill_serial(reads: int = 20, *, timeout_s: float = 120.0) -> dict[str, float]:
    """Median and 95th percentile of card-to-prefilled-form time over reads placements, and the
    largest GUI event-loop stall (ms) while they ran."""
    if reads < 1:
        raise ValueError("reads must be at least 1")
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtCore import QEventLoop, Qt, QTimer
    from PySide6.QtWidgets import QApplication

    from devices.readers.gat467 import Gat467Reader, SerialSettings
    from kiosk.catalogue import load_catalogue_file
    from tests.fixtures.gat467_sim import Gat467Simulator
    from ui.bridge import ReaderBridge

    app = QApplication.instance() or QApplication([])
    service = next(
        s
        for s in load_catalogue_file(CATALOGUE).services
        if any(q.prefill == "identity.name" for q in s.questions)
    )
    ticks: list[float] = []
    with tempfile.TemporaryDirectory(prefix="card-serial-bench-") as tmp:
        sim = Gat467Simulator(Path(tmp), line_rate=True)
        settings = SerialSettings(port=sim.path)
        reader = Gat467Reader("bench reader", settings)
        loop = QEventLoop()
        session = _Session(reads, sim, service, settings.poll_interval_s, loop)
        bridge = ReaderBridge(loop)  # owned by the loop, deleted with it on this thread
        bridge.event.connect(session.on_event)
        probe = QTimer()
        probe.setTimerType(Qt.TimerType.PreciseTimer)
        probe.setInterval(PROBE_MS)
        probe.timeout.connect(lambda: ticks.append(time.perf_counter()))
        deadline = QTimer()
        deadline.setSingleShot(True)
        deadline.timeout.connect(lambda: session.fail("timed out"))
        try:
            reader.start(bridge.sink)
            probe.start()
            deadline.start(round(timeout_s * 1000))
            loop.exec()
        finally:
            deadline.stop()
            probe.stop()
            reader.stop()
            sim.close()
            app.processEvents()
    if session.failures:
        raise RuntimeError(f"card reads failed: {session.failures[0]}")
    gaps_ms = [(b - a) * 1000.0 for a, b in itertools.pairwise(ticks)]
    return {
        "card_prefill_serial_ms_median": statistics.median(session.samples_ms),
        "card_prefill_serial_ms_p95": _percentile(session.samples_ms, 0.95),
        "card_read_max_stall_ms": max(0.0, max(gaps_ms, default=0.0) - PROBE_MS),
    }
