"""What a citizen feels turning pages, and whether a long day of visits grows the terminal.

Each figure comes from the real terminal, offscreen, in a process of its own, against the
reference platform in another process:

- page_turn_ms_median: a tap on "Next" (a real mouse press and release on the button) until the
  next page has been painted. The answer is checked on a worker first, as in every visit, so
  the figure includes that round trip.
- visit_rss_growth_mb: resident memory after 500 complete visits (card, service, every
  question, submit, receipt, finish) minus after the first 10, each read after a full
  collection on the GUI thread.

`python -m benchmarks.visits DIR PLATFORM_URL TURNS VISITS` prints one JSON line.
"""

from __future__ import annotations

import gc
import json
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("HALL_TTS_ENGINE", "mock")

from PySide6.QtCore import QEvent, QEventLoop, QObject, Qt, QTimer
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication, QWidget

from kiosk.app import build_parts
from kiosk.config import Config
from kiosk.session import Step
from kiosk.visit_steps import EndReason
from ui.app import Terminal
from ui.input_environment import prepare_environment
from ui.selfcheck import SelfCheck, sample_answer

ROOT = Path(__file__).resolve().parent.parent
CATALOGUE = ROOT / "assets" / "catalogue" / "demo_catalogue.json"
WAIT_MS = 30_000


def _rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


class PaintWatch(QObject):
    """Notes the first paint of a page of the form after a tap."""

    def __init__(self, app: QApplication) -> None:
        super().__init__(app)
        self.pages: set[QWidget] = set()
        self.painted_at: float | None = None
        self.loop: QEventLoop | None = None

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if (
            event.type() == QEvent.Type.Paint
            and self.painted_at is None
            and watched in self.pages
        ):
            self.painted_at = time.perf_counter()
            if self.loop is not None:
                QTimer.singleShot(0, self.loop.quit)
        return False


def _wait(loop: QEventLoop) -> None:
    guard = QTimer(singleShot=True, interval=WAIT_MS)
    guard.timeout.connect(loop.quit)
    guard.start()
    loop.exec()
    guard.stop()


def _open_form(terminal: Terminal) -> None:
    visit = terminal.visit
    loop = QEventLoop()
    visit.step_changed.connect(loop.quit)
    visit.present_demo_card()
    while visit.session.step is not Step.SERVICES:
        _wait(loop)
    visit.services.service_buttons[0].click()
    while visit.session.step is not Step.GUIDE:
        _wait(loop)
    visit.guide.start_button.click()
    while visit.session.step is not Step.QUESTION:
        _wait(loop)
    visit.step_changed.disconnect(loop.quit)


def _fill(terminal: Terminal) -> None:
    session = terminal.visit.session
    if session.service is None:
        raise RuntimeError("no service chosen")
    question = session.current_question
    value = sample_answer(session.service, question, session.answers)
    page = terminal.visit.question
    if question.widget in ("choice", "yesno"):
        wanted = ("true" if value else "false") if question.widget == "yesno" else str(value)
        button = page.choices.button_for(wanted)
        if button is None:
            raise RuntimeError(f"option {wanted!r} is not on screen")
        button.click()
    else:
        page.line.setText(str(value))


def page_turns(app: QApplication, terminal: Terminal, turns: int) -> list[float]:
    watch = PaintWatch(app)
    watch.pages = {terminal.visit.question, terminal.visit.review}
    app.installEventFilter(watch)
    timings: list[float] = []
    try:
        while len(timings) < turns:
            _open_form(terminal)
            while terminal.visit.session.step is Step.QUESTION and len(timings) < turns:
                _fill(terminal)
                page = terminal.visit.question
                before = terminal.visit.session.page
                app.processEvents()  # the answer's own repaint is not the page turn
                watch.painted_at = None
                loop = QEventLoop()
                watch.loop = loop
                started = time.perf_counter()
                QTest.mouseClick(page.next_button, Qt.MouseButton.LeftButton)
                # the question page is reused: a turn is the next question painted on it, or the
                # review page
                while watch.painted_at is None or (
                    terminal.visit.session.step is Step.QUESTION
                    and terminal.visit.session.page == before
                ):
                    watch.painted_at = None
                    _wait(loop)
                timings.append((watch.painted_at - started) * 1000)
            terminal.window.end_visit(EndReason.CANCELLED)
            app.processEvents()
    finally:
        app.removeEventFilter(watch)
    return timings


def whole_visits(terminal: Terminal, count: int) -> None:
    for _ in range(count):
        loop = QEventLoop()
        check = SelfCheck(terminal.visit, done=loop.quit)
        QTimer.singleShot(0, check.begin)
        loop.exec()
        if check.error:
            raise RuntimeError(check.error)
        terminal.visit.done.finish_button.click()
        check.close()
        QApplication.processEvents()


def measure(directory: Path, platform_url: str, turns: int, visits: int) -> dict[str, float]:
    prepare_environment()
    app = QApplication([])
    parts = build_parts(
        Config(data_dir=directory, platform_url=platform_url, done_reset_s=60),
        demo=True,
        bundled_catalogue=CATALOGUE,
    )
    terminal = Terminal(parts, app)
    terminal.window.resize(1280, 1024)
    terminal.window.show()
    terminal.start()
    timings = page_turns(app, terminal, turns)
    whole_visits(terminal, 10)
    gc.collect()
    after_10 = _rss_mb()
    whole_visits(terminal, visits - 10)
    gc.collect()
    after_all = _rss_mb()
    terminal.stop()
    parts.close()
    return {
        "page_turn_ms_median": statistics.median(timings),
        "page_turn_ms_max": max(timings),
        "page_turns": float(len(timings)),
        "visit_rss_mb_after_10": after_10,
        "visit_rss_mb_after_all": after_all,
        "visits": float(visits),
        "visit_rss_growth_mb": after_all - after_10,
    }


def measure_visits(directory: Path, turns: int = 60, visits: int = 500) -> dict[str, float]:
    from benchmarks._launch import run_module
    from benchmarks.startup import enrol_terminal, reference_platform

    (directory / "platform").mkdir(parents=True, exist_ok=True)
    with reference_platform(directory / "platform") as url:
        enrol_terminal(directory / "platform", url, directory / "terminal")
        result = run_module(
            "benchmarks.visits", str(directory / "terminal"), url, str(turns), str(visits)
        )
    return {key: float(value) for key, value in result.items()}


if __name__ == "__main__":
    directory, url, turns, count = sys.argv[1:5]
    print(json.dumps(measure(Path(directory), url, int(turns), int(count))))
