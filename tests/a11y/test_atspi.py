"""A whole visit done the way a screen reader user does it: through the AT-SPI tree only.

The terminal runs on a private X server (Xvfb) and a private D-Bus session bus with the
accessibility bus launched on it; the AT-SPI client (tests/a11y/atspi_client.py, system Python
with pyatspi) finds the controls by role and name, presses them through their Action interface,
fills fields through EditableText, and reads the receipt number off the done page. The platform
is the reference one over real HTTP on 127.0.0.1; the test then checks it holds the submissions
with the answers given through the accessibility bus.

Needs (Debian): xvfb, dbus-daemon, at-spi2-core, python3-pyatspi.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests

from refplatform.server import RunningPlatform
from tests.a11y.atspi_client import DEFAULT_ANSWERS, iter_json_lines
from tests.fixtures.platform import enrol_terminal

pytestmark = pytest.mark.real_device

ROOT = Path(__file__).resolve().parents[2]
CLIENT = Path(__file__).with_name("atspi_client.py")
SYSTEM_PYTHON = "/usr/bin/python3"
BUS_LAUNCHER = "/usr/libexec/at-spi-bus-launcher"
START_TIMEOUT_S = 10.0
CLIENT_TIMEOUT_S = 60.0
HTTP_TIMEOUT_S = 10.0


def _missing() -> str:
    for tool in ("Xvfb", "dbus-daemon", "dbus-send"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed"
    if not Path(BUS_LAUNCHER).exists():
        return "at-spi2-core is not installed"
    probe = subprocess.run(
        [SYSTEM_PYTHON, "-c", "import pyatspi"], capture_output=True, check=False, timeout=30
    )
    if probe.returncode != 0:
        return "python3-pyatspi is not installed for /usr/bin/python3"
    return ""


def _read_line(fd: int, what: str, timeout_s: float = START_TIMEOUT_S) -> str:
    """The first line a child writes to a pipe (a display number, a bus address)."""
    deadline = time.monotonic() + timeout_s
    data = b""
    while b"\n" not in data:
        left = deadline - time.monotonic()
        ready, _, _ = select.select([fd], [], [], max(0.0, left))
        if not ready:
            raise TimeoutError(f"{what} did not start within {timeout_s} s")
        chunk = os.read(fd, 4096)
        if not chunk:
            raise RuntimeError(f"{what} exited before it was ready")
        data += chunk
    return data.split(b"\n", 1)[0].decode().strip()


def _spawn(args: list[str], log: Path, **options: Any) -> subprocess.Popen[Any]:
    """Start a child in its own process group, its output in `log`."""
    with log.open("wb") as output:
        return subprocess.Popen(
            args, stdout=output, stderr=subprocess.STDOUT, start_new_session=True, **options
        )


def _stop(process: subprocess.Popen[Any]) -> None:
    """End a child this test started, and what it started in its own process group."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)  # its group: the bus launcher, the a11y bus


@dataclass
class Desktop:
    """A private X display and session bus with the accessibility bus up."""

    env: dict[str, str]
    display: str
    bus: str
    a11y_bus: str


@pytest.fixture
def desktop(tmp_path: Path) -> Iterator[Desktop]:
    reason = _missing()
    if reason:  # a failure, never a skip: a missing peer must not pass unnoticed
        pytest.fail(f"{reason} (scripts/setup.sh installs it)", pytrace=False)
    runtime = tmp_path / "runtime"  # the a11y bus's socket lives here, not in a shared ~/.cache
    runtime.mkdir(mode=0o700)
    started: list[subprocess.Popen[Any]] = []
    try:
        read_fd, write_fd = os.pipe()
        xvfb = _spawn(
            [
                "Xvfb",
                "-displayfd",
                str(write_fd),
                "-screen",
                "0",
                "1280x1024x24",
                "-nolisten",
                "tcp",
                "-noreset",
            ],
            tmp_path / "xvfb.log",
            pass_fds=(write_fd,),
        )
        started.append(xvfb)
        os.close(write_fd)
        display = ":" + _read_line(read_fd, "Xvfb")
        os.close(read_fd)

        env = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith(("DBUS_", "AT_SPI", "QT_", "WAYLAND"))
        }
        env.update(DISPLAY=display, XDG_RUNTIME_DIR=str(runtime))
        read_fd, write_fd = os.pipe()
        bus = _spawn(
            ["dbus-daemon", "--session", "--nofork", f"--print-address={write_fd}"],
            tmp_path / "dbus.log",
            pass_fds=(write_fd,),
            env=env,
        )
        started.append(bus)
        os.close(write_fd)
        env["DBUS_SESSION_BUS_ADDRESS"] = _read_line(read_fd, "dbus-daemon")
        os.close(read_fd)
        # Qt joins the accessibility bus only if org.a11y.Bus is already on the session bus
        # when it starts (it does not activate it): ask for its address, which starts it.
        answer = subprocess.run(
            [
                "dbus-send",
                "--session",
                "--print-reply=literal",
                "--dest=org.a11y.Bus",
                "/org/a11y/bus",
                "org.a11y.Bus.GetAddress",
            ],
            env=env,
            capture_output=True,
            text=True,
            check=True,
            timeout=START_TIMEOUT_S,
        )
        yield Desktop(env, display, env["DBUS_SESSION_BUS_ADDRESS"], answer.stdout.strip())
    finally:
        for process in reversed(started):
            _stop(process)


@dataclass
class Terminal:
    process: subprocess.Popen[Any]
    data_dir: Path
    log: Path


def start_terminal(
    desktop: Desktop, platform: RunningPlatform, tmp: Path, language: str
) -> Terminal:
    data_dir = tmp / f"terminal-{language}"
    enrol_terminal(platform, data_dir)  # as staff do before a terminal's first start
    env = dict(desktop.env)
    env.update(
        QT_QPA_PLATFORM="xcb",
        # Qt serves the tree only when org.a11y.Status.IsEnabled is true (a screen reader such as
        # Orca sets it) or when told to always; QT_ACCESSIBILITY=1 alone is not enough.
        QT_ACCESSIBILITY="1",
        QT_LINUX_ACCESSIBILITY_ALWAYS_ON="1",
        HALL_DATA_DIR=str(data_dir),
        HALL_TTS_ENGINE="mock",
        PYTHON_KEYRING_BACKEND="keyring.backends.fail.Keyring",
    )
    log = tmp / f"terminal-{language}.log"
    process = _spawn(
        [
            sys.executable,
            str(ROOT / "main.py"),
            "--demo",
            "--language",
            language,
            "--platform-url",
            platform.base_url,
            "--data-dir",
            str(data_dir),
        ],
        log,
        cwd=ROOT,
        env=env,
    )
    return Terminal(process, data_dir, log)


def run_client(desktop: Desktop, terminal: Terminal, *services: str) -> list[dict[str, Any]]:
    result = subprocess.run(
        [SYSTEM_PYTHON, str(CLIENT), "--pid", str(terminal.process.pid), "visit", *services],
        env=desktop.env,
        capture_output=True,
        text=True,
        check=False,
        timeout=CLIENT_TIMEOUT_S,
    )
    records = list(iter_json_lines(result.stdout))
    # What the screen reader would have read, for whoever reads the test's output.
    for record in records:
        print(json.dumps(record, ensure_ascii=False))
    print(result.stderr, file=sys.stderr)
    assert records, f"the client printed nothing: {result.stderr}"
    summary = records[-1]
    assert summary["event"] == "summary", result.stderr
    terminal_log = terminal.log.read_text(errors="replace")
    assert summary["ok"], f"{summary['error']}\nterminal: {terminal_log}\nclient: {result.stderr}"
    assert result.returncode == 0
    return records


def platform_submission(platform: RunningPlatform, receipt_number: str) -> dict[str, Any]:
    """The platform's copy of a submission, found by its receipt number and read over HTTP."""
    with sqlite3.connect(f"file:{platform.db_path}?mode=ro", uri=True) as db:
        rows = db.execute(
            "SELECT submission_id FROM submissions WHERE receipt_number = ?", (receipt_number,)
        ).fetchall()
    assert len(rows) == 1, f"the platform holds {len(rows)} submissions numbered {receipt_number}"
    (submission_id,) = rows[0]
    state = requests.get(
        f"{platform.base_url}/api/v1/submissions/{submission_id}", timeout=HTTP_TIMEOUT_S
    )
    assert state.status_code == 200, state.text
    assert state.json()["receipt_number"] == receipt_number
    page = requests.get(f"{platform.base_url}/track/{submission_id}", timeout=HTTP_TIMEOUT_S)
    assert page.status_code == 200 and receipt_number in page.text
    with sqlite3.connect(f"file:{platform.db_path}?mode=ro", uri=True) as db:
        (request_json,) = db.execute(
            "SELECT request_json FROM submissions WHERE submission_id = ?", (submission_id,)
        ).fetchone()
    body: dict[str, Any] = json.loads(request_json)
    return body


# Controls Qt itself puts on a page that the terminal cannot name (a scroll area's bar); reported
# by the client, not held against the pages.
QT_OWN_ROLES = {"scroll bar"}


@pytest.mark.parametrize(
    ("language", "services"),
    [
        ("zh_CN", ("pension-certification", "residence-permit")),
        ("en", ("pension-certification", "senior-card")),
    ],
)
def test_a_screen_reader_user_completes_services(
    desktop: Desktop,
    platform_server: RunningPlatform,
    tmp_path: Path,
    language: str,
    services: tuple[str, ...],
) -> None:
    terminal = start_terminal(desktop, platform_server, tmp_path, language)
    try:
        records = run_client(desktop, terminal, *services)
    finally:
        _stop(terminal.process)
    summary = records[-1]

    receipts = summary["receipts"]
    assert [r["service"] for r in receipts] == list(services)
    for receipt in receipts:
        assert receipt["title"], "the done page's heading was not read"
        assert receipt["status"] == "received", receipt
        body = platform_submission(platform_server, receipt["receipt_number"])
        assert body["service_id"] == receipt["service"]
        for field_name, (value, _how) in DEFAULT_ANSWERS[receipt["service"]].items():
            assert body["answers"][field_name] == value, field_name

    pages = {r["page"] for r in records if r["event"] == "page"}
    assert {"welcome", "services", "guide", "review", "done"} <= pages
    assert summary["controls_seen"] > 10
    unnamed = [c for c in summary["unnamed"] if c["role"] not in QT_OWN_ROLES]
    assert not unnamed, "controls a screen reader cannot name:\n" + "\n".join(
        f"{c['page']}: {c['role']} {c['path']} actions={c['actions']}" for c in unnamed
    )
    assert not summary["failed_actions"], summary["failed_actions"]
    # nothing is read twice (a button's or a row's text after its name), no page button is read
    # out as unavailable, and a single choice is offered as radio buttons
    assert not summary["read_twice"], summary["read_twice"]
    assert not summary["unavailable"], summary["unavailable"]
    assert summary["option_roles"] and set(summary["option_roles"]) == {"radio button"}
