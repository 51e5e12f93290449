"""lookup_ms_median: a receipt's line scanned (the scanner's Enter in the lookup field) until the
case's status is on the page, against the reference platform in another process on loopback.

python -m benchmarks.lookup LOOKUPS DIRECTORY prints the figures as JSON (its last line);
python -m benchmarks.lookup --serve DB PORT is the platform process it starts (the reference
platform with POST /api/v1/lookup).
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from PySide6.QtWidgets import QApplication

    from kiosk.platform_client import PlatformClient
    from ui.lookup import LookupJourney

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("HALL_TTS_ENGINE", "mock")

ROOT = Path(__file__).resolve().parent.parent
CATALOGUE = ROOT / "assets" / "catalogue" / "demo_catalogue.json"
START_S = 30.0
WAIT_S = 10.0


def serve(db: Path, port: int) -> None:
    """The platform with the lookup route, until SIGTERM; its back-office token beside db."""
    from refplatform import server
    from refplatform.backoffice import FILE_NAME

    token = secrets.token_urlsafe(24)
    (db.parent / FILE_NAME).write_text(token, "utf-8")
    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    with server.start_in_thread(db, CATALOGUE, port=port, back_office_token=token):
        print("READY", flush=True)
        stopped.wait()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _file_cases(client: PlatformClient) -> list[str]:
    from benchmarks._launch import BenchmarkError
    from tests.fixtures.platform import demo_submission

    receipts = []
    for n in range(10):
        body = demo_submission()
        body["receipt_number"] = receipt = f"K01-20261123-{n + 1:04d}"
        if not client.submit(str(body["submission_id"]), body).delivered:
            raise BenchmarkError("the platform did not take a case")
        receipts.append(receipt)
    return receipts


class _Marks:
    """When the cases came up (a bound method on the signal, not a lambda)."""

    def __init__(self) -> None:
        self.at: list[float] = []

    def note(self) -> None:
        self.at.append(time.perf_counter())


def _time_lookups(
    app: QApplication, journey: LookupJourney, receipts: list[str], lookups: int
) -> list[float]:
    """Milliseconds from Enter to the case on the page, for each lookup after three warm-ups
    (the connection and the pages)."""
    from PySide6.QtCore import Qt
    from PySide6.QtTest import QTest

    from benchmarks._launch import BenchmarkError

    marks = _Marks()
    journey.shown.connect(marks.note)
    shown = marks.at
    times = []
    for n in range(lookups + 3):
        journey.start()
        QTest.qWait(1)
        field = journey.entry_page.field
        QTest.keyClicks(field, receipts[n % len(receipts)])
        before = len(shown)
        started = time.perf_counter()
        QTest.keyClick(field, Qt.Key.Key_Return)
        until = time.monotonic() + WAIT_S
        while len(shown) == before:
            if time.monotonic() > until:
                raise BenchmarkError("the case was not shown in time")
            app.processEvents()
            time.sleep(0.0005)
        if journey.results_page.status_texts() == []:
            raise BenchmarkError("the lookup found nothing")
        if n >= 3:
            times.append((shown[-1] - started) * 1000)
    return times


def measure(lookups: int, directory: Path) -> dict[str, float]:
    import requests
    from PySide6.QtWidgets import QApplication

    from benchmarks._launch import BenchmarkError, median, percentile
    from benchmarks._launch import stop as stop_process
    from benchmarks.startup import enrol_terminal
    from kiosk.app import build_parts
    from kiosk.config import Config
    from ui.app import Terminal

    app = QApplication.instance() or QApplication([])
    platform_dir = directory / "platform"
    platform_dir.mkdir(parents=True, exist_ok=True)
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    process = subprocess.Popen(
        [sys.executable, "-m", "benchmarks.lookup", "--serve", str(platform_dir / "p.sqlite3"),
         str(port)],
        cwd=ROOT,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + START_S
        while True:
            try:
                if requests.get(f"{url}/api/v1/health", timeout=1).ok:
                    break
            except requests.RequestException:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise BenchmarkError("the platform did not start")
            time.sleep(0.05)
        data = directory / "terminal"
        config = Config(data_dir=data, platform_url=url)
        enrol_terminal(platform_dir, url, data)
        parts = build_parts(config, demo=True, bundled_catalogue=CATALOGUE)
        terminal = Terminal(parts, app)  # type: ignore[arg-type]
        terminal.window.resize(1920, 1080)
        terminal.window.show()
        terminal.start()
        try:
            journey = terminal.lookup  # as the terminal wires it (ui/app.py)
            times = _time_lookups(app, journey, _file_cases(parts.client), lookups)
        finally:
            terminal.stop()
            parts.close()
    finally:
        stop_process(process)
    return {
        "lookup_ms_median": round(median(times), 2),
        "lookup_ms_p95": round(percentile(times, 0.95), 2),
    }


if __name__ == "__main__":
    if sys.argv[1] == "--serve":
        serve(Path(sys.argv[2]), int(sys.argv[3]))
    else:
        print(json.dumps(measure(int(sys.argv[1]), Path(sys.argv[2]))))
