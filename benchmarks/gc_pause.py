"""How long the garbage collector holds the GUI thread, now that it runs only there.

Automatic collection is off while the terminal runs; a GUI-thread timer collects when a
generation's threshold is passed (ui/collector.py). Two ways to keep those pauses short were
weighed: the timer alone, and the timer with the long-lived objects frozen out of the collector's
view (gc.freeze, when the terminal starts and at its first frame). Each is measured in a process
of its own: the real terminal, offscreen, runs whole visits against the reference platform (its own
process), and the figures are the longest collection the timer made, how many it made, and one
full collection at the end.

`python -m benchmarks.gc_pause DIR PLATFORM_URL VISITS freeze|nofreeze` prints one JSON line.
"""

from __future__ import annotations

import gc
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("HALL_TTS_ENGINE", "mock")

from PySide6.QtCore import QEventLoop, QTimer
from PySide6.QtWidgets import QApplication

from kiosk.app import build_parts
from kiosk.config import Config
from ui.app import Terminal
from ui.input_environment import prepare_environment
from ui.selfcheck import SelfCheck

ROOT = Path(__file__).resolve().parent.parent
CATALOGUE = ROOT / "assets" / "catalogue" / "demo_catalogue.json"


def measure(directory: Path, platform_url: str, visits: int, freeze: bool) -> dict[str, float]:
    prepare_environment()
    app = QApplication([])
    parts = build_parts(
        Config(data_dir=directory, platform_url=platform_url, done_reset_s=60),
        demo=True,
        bundled_catalogue=CATALOGUE,
    )
    terminal = Terminal(parts, app)
    terminal.collector.freezes = freeze
    terminal.window.show()
    terminal.start()
    for _ in range(visits):
        loop = QEventLoop()
        visit = SelfCheck(terminal.visit, done=loop.quit)
        QTimer.singleShot(0, visit.begin)
        loop.exec()
        if visit.error:
            raise RuntimeError(visit.error)
        terminal.visit.done.finish_button.click()
        visit.close()
    started = time.perf_counter()
    gc.collect()
    full_ms = (time.perf_counter() - started) * 1000
    figures = {
        "collections": float(terminal.collector.collections),
        "longest_ms": terminal.collector.longest_ms,
        "full_ms": full_ms,
        "tracked_objects": float(len(gc.get_objects())),
    }
    terminal.stop()
    parts.close()
    return figures


def measure_gc(directory: Path, visits: int = 8) -> dict[str, float]:
    """Both ways, each in a process of its own against one reference platform."""
    from benchmarks._launch import run_module
    from benchmarks.startup import enrol_terminal, reference_platform

    figures: dict[str, float] = {}
    (directory / "platform").mkdir(parents=True, exist_ok=True)
    with reference_platform(directory / "platform") as url:
        for mode in ("nofreeze", "freeze"):
            enrol_terminal(directory / "platform", url, directory / mode)
            result = run_module(
                "benchmarks.gc_pause", str(directory / mode), url, str(visits), mode
            )
            suffix = "frozen" if mode == "freeze" else "unfrozen"
            figures[f"gc_pause_max_ms_{suffix}"] = result["longest_ms"]
            figures[f"gc_collections_{suffix}"] = result["collections"]
            figures[f"gc_full_collect_ms_{suffix}"] = result["full_ms"]
    return figures


if __name__ == "__main__":
    directory, url, count, mode = sys.argv[1:5]
    print(json.dumps(measure(Path(directory), url, int(count), mode == "freeze")))
