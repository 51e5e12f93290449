"""Draining a backlog to the reference platform with the terminal's window up.

The platform runs as its own process (it would be remote in real life) on a free loopback port
with a fresh database. The outbox is filled with n submissions built the way the terminal builds
them (demo catalogue, demo card holders), then the real terminal is built offscreen in rural mode
and started, which starts its sync engine. While the backlog drains, a 5 ms timer on the GUI
thread measures how late the event loop runs it, and a sampler thread records this process's
peak resident memory. The drain ends when the engine reports nothing pending.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import psutil
import requests
from PySide6.QtCore import QElapsedTimer, QEventLoop, Qt, QTimer
from PySide6.QtWidgets import QApplication

from benchmarks._launch import BenchmarkError, percentile
from benchmarks._launch import stop as stop_process
from benchmarks.startup import enrol_terminal
from kiosk.app import build_parts
from kiosk.assistance import Assistance
from kiosk.catalogue import load_catalogue_file
from kiosk.config import Config, Mode
from kiosk.demo import demo_identities
from kiosk.identity import mask_name
from kiosk.platform_client import attachment_json
from kiosk.session import Draft
from kiosk.submissions import SUBMISSION_KIND, files_of, submission_body
from kiosk.sync import SyncStatus
from kiosk.terminal_auth import load_identity
from kiosk.trust import seal
from offline_queue.keys import load_or_create_key
from offline_queue.outbox import Outbox, new_item_id
from refplatform.backoffice import ENVIRONMENT_VARIABLE
from ui.app import Terminal

ROOT = Path(__file__).resolve().parent.parent
CATALOGUE = ROOT / "assets" / "catalogue" / "demo_catalogue.json"

PROBE_INTERVAL_MS = 5
RSS_SAMPLE_S = 0.02
PLATFORM_START_S = 30.0
DRAIN_LIMIT_S = 600.0

# Answers a person would give, per demo service; the card fills the identity fields.
_ANSWERS: dict[str, dict[str, Any]] = {
    "residence-permit": {
        "phone": "13800138000",
        "address": "本市幸福路12号3栋502室",
        "reason": "family",
        "residence_start": "2026-03-01",
        "collection": "hall",
    },
    "pension-certification": {
        "phone": "13800138000",
        "living_at_registered_address": True,
        "receiving_other_pension": False,
        "bank_card_last4": "0427",
    },
    "senior-card": {
        "phone": "13800138000",
        "emergency_contact_name": "李建国",
        "emergency_contact_phone": "13912345678",
        "collection": "post",
    },
}


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _start_platform(db: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = _free_port()
    # No token from this environment: the platform makes one beside its database, where
    # enrol_terminal() finds it.
    env = {k: v for k, v in os.environ.items() if k != ENVIRONMENT_VARIABLE}
    process = subprocess.Popen(
        [sys.executable, "-m", "refplatform", "--port", str(port), "--db", str(db)],
        cwd=ROOT,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + PLATFORM_START_S
    with requests.Session() as session:
        while time.monotonic() < deadline:
            try:
                if session.get(f"{url}/api/v1/health", timeout=1).ok:
                    return process, url
            except requests.RequestException:
                pass
            try:  # the pause between tries doubles as the watch for an early exit
                code = process.wait(timeout=0.05)
            except subprocess.TimeoutExpired:
                continue
            raise BenchmarkError(f"the platform exited at start ({code})")
    stop_process(process)
    raise BenchmarkError("the platform did not answer within its start-up time")


# A signature as the confirmation page would send it (the platform checks its digest and type).
SIGNATURE = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 12


def _fill(config: Config, n: int) -> None:
    """n submissions in the outbox, as the terminal's Submitter would have queued them: sealed to
    the platform the terminal is enrolled with."""
    sealing_key = load_identity(config.data_dir, config.platform_url).enrolment.sealing_public_key()
    if sealing_key is None:
        raise BenchmarkError("the terminal's enrolment holds no sealing key")
    catalogue = load_catalogue_file(CATALOGUE)
    services = [catalogue.service(service_id) for service_id in _ANSWERS]
    people = demo_identities()
    created = dt.datetime(2026, 11, 23, 9, 0, tzinfo=dt.timezone(dt.timedelta(hours=8)))
    config.data_dir.mkdir(parents=True, exist_ok=True)
    box = Outbox(config.outbox_path, load_or_create_key(config.key_path))
    try:
        for i in range(n):
            service = services[i % len(services)]
            person = people[i % len(people)]
            answers = dict(_ANSWERS[service.id])
            for question in service.questions:
                source = question.prefill
                if source is not None and source.startswith("identity."):
                    value = getattr(person, source.removeprefix("identity."))
                    answers[question.field] = (
                        value.isoformat() if source.endswith("date") else value
                    )
            # At a service point staff make it and the applicant signs (kiosk/assistance.py).
            assisted = config.mode is not Mode.KIOSK
            draft = Draft(
                service,
                person,
                answers,
                catalogue.version,
                Assistance(citizen_present=True, agent=None, signature_png=SIGNATURE)
                if assisted
                else None,
            )
            submission_id = new_item_id()
            receipt_number = f"{config.terminal_id}-20261123-{i + 1:05d}"
            body = submission_body(
                submission_id=submission_id,
                receipt_number=receipt_number,
                draft=draft,
                config=config,
                created_at=created + dt.timedelta(seconds=i),
                operator_id="S0001" if assisted else None,
            )
            files = files_of(draft, ())
            if files:
                body["attachments"] = [attachment_json(file) for file in files]
            summary = {
                "receipt_number": receipt_number,
                "service_id": service.id,
                "created_at": body["created_at"],
                "masked_name": mask_name(person.name),
            }
            plain = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
            envelope = seal(plain, sealing_key, submission_id.encode("utf-8"))
            box.enqueue(
                SUBMISSION_KIND,
                json.dumps({"submission_id": submission_id, "sealed": envelope}).encode(),
                json.dumps(summary, ensure_ascii=False).encode(),
                item_id=submission_id,
            )
    finally:
        box.close()


class _RssSampler:
    """Peak resident set size of this process, sampled on its own thread."""

    def __init__(self) -> None:
        self._process = psutil.Process()
        self._stop = threading.Event()
        self.peak = self._process.memory_info().rss
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(RSS_SAMPLE_S):
            self.peak = max(self.peak, self._process.memory_info().rss)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> float:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._process.memory_info().rss)
        return float(self.peak) / (1024 * 1024)


def _platform_count(db: Path) -> int:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as connection:
        (count,) = connection.execute("SELECT COUNT(*) FROM submissions").fetchone()
    connection.close()
    return int(count)


class _StallProbe:
    """A 5 ms timer on the GUI thread; each tick records how long since the last one."""

    def __init__(self) -> None:
        self.gaps_ms: list[float] = []
        self._clock = QElapsedTimer()
        self._timer = QTimer(interval=PROBE_INTERVAL_MS)
        self._timer.setTimerType(Qt.TimerType.PreciseTimer)
        self._timer.timeout.connect(self._tick)

    def _tick(self) -> None:
        self.gaps_ms.append(self._clock.nsecsElapsed() / 1e6)
        self._clock.restart()

    def start(self) -> None:
        self._clock.start()
        self._timer.start()

    def stop(self) -> list[float]:
        """Each tick's lateness: the gap beyond the interval (0 when on time)."""
        self._timer.stop()
        return [max(0.0, gap - PROBE_INTERVAL_MS) for gap in self.gaps_ms] or [0.0]


def _drain(terminal: Terminal, n: int) -> tuple[float, list[float], float]:
    """Start the terminal and run its event loop until n rows are settled.

    Returns the drain's wall time, the probe's stalls and the peak RSS in MB.
    """
    loop = QEventLoop()
    finished: list[float] = []

    def on_status(status: object) -> None:
        settled = (
            isinstance(status, SyncStatus)
            and status.pending == 0
            and status.delivered_total + status.rejected + status.needs_attention >= n
        )
        if settled and not finished:
            finished.append(time.perf_counter())
            loop.quit()

    terminal.status.changed.connect(on_status)
    limit = QTimer(singleShot=True, interval=int(DRAIN_LIMIT_S * 1000))
    limit.timeout.connect(loop.quit)
    probe = _StallProbe()
    sampler = _RssSampler()
    sampler.start()
    probe.start()
    limit.start()
    started = time.perf_counter()
    terminal.start()
    loop.exec()
    limit.stop()
    stalls = probe.stop()
    rss_mb = sampler.stop()
    if not finished:
        raise BenchmarkError(f"the backlog did not drain within {DRAIN_LIMIT_S:.0f} s")
    return finished[0] - started, stalls, rss_mb


def measure_sync(n: int, directory: Path) -> dict[str, float]:
    """Drain n queued submissions to a loopback platform with the rural window up."""
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    os.environ.setdefault("HALL_TTS_ENGINE", "mock")
    directory.mkdir(parents=True, exist_ok=True)
    platform_db = directory / "platform.sqlite3"
    process, url = _start_platform(platform_db)
    try:
        config = Config(
            mode=Mode.RURAL,
            terminal_id="R01",
            hall_name="幸福村便民服务点",
            platform_url=url,
            data_dir=directory / "terminal",
            voice=False,
        )
        enrol_terminal(directory, url, config.data_dir, config.terminal_id)
        _fill(config, n)
        existing = QApplication.instance()
        app = existing if isinstance(existing, QApplication) else QApplication([sys.argv[0]])
        parts = build_parts(config, demo=False, bundled_catalogue=CATALOGUE)
        terminal = Terminal(parts, app)
        try:
            terminal.window.resize(1280, 900)
            terminal.window.show()
            app.processEvents()
            elapsed, stalls, rss_mb = _drain(terminal, n)
            delivered = parts.sync.status().delivered_total
        finally:
            terminal.window.close()
            terminal.stop()
            parts.close()
        received = _platform_count(platform_db)
    finally:
        stop_process(process)
    if delivered != n or received != n:
        raise BenchmarkError(f"{delivered} of {n} delivered, {received} held by the platform")
    return {
        "sync_per_s": round(n / elapsed, 1),
        "sync_drain_s": round(elapsed, 3),
        "sync_rss_mb": round(rss_mb, 1),
        "sync_max_stall_ms": round(max(stalls), 2),
        "sync_stall_p99_ms": round(percentile(stalls, 0.99), 2),
        "sync_items": float(n),
    }


if __name__ == "__main__":
    # Run on its own so the RSS figure is this drain's, not what other benchmarks loaded:
    #   python -m benchmarks.sync N DIRECTORY  → one JSON object of figures on stdout
    import json
    import sys

    print(json.dumps(measure_sync(int(sys.argv[1]), Path(sys.argv[2]))))
