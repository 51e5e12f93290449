"""Start-up: launch to the first frame painted with input taken, and memory once settled.

main.py, given --benchmark-ready, prints READY once the window's first paint event has been
handled and a zero-timer has fired (the event loop takes input), and SETTLED once its deferred
start-up work (the receipt printer loaded and warmed, the demo platform booted) has finished.
The time is launch to READY on this process's monotonic clock; the memory is the RSS at SETTLED,
when the terminal holds everything it will hold while idle.

Three programs are launched the same way (offscreen, same interpreter, same environment), in
turn, the same number of times each, so that noise on the machine falls on all of them alike:

- the terminal as configured in a hall: not the demo, pointed with --platform-url at the
  reference platform, which runs in a process of its own started beforehand;
- the demo (--demo), which boots the reference platform inside itself after the first frame;
- the floor: benchmarks/qt_floor.py, a bare PySide6 window with one label. What the terminal
  takes beyond it is the terminal's own doing.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from benchmarks._launch import BenchmarkError, LineReader, median, rss_mb, stop

ROOT = Path(__file__).resolve().parent.parent
QT_FLOOR = Path(__file__).resolve().parent / "qt_floor.py"
READY_TIMEOUT_S = 60.0
SETTLED_TIMEOUT_S = 60.0  # after READY
PLATFORM_TIMEOUT_S = 60.0


@dataclass(frozen=True)
class Launch:
    ready_s: float
    settled_rss_mb: float
    settled_s: float  # launch to SETTLED: the parts built and the deferred work done


def _environment() -> dict[str, str]:
    env = dict(os.environ)
    env["QT_QPA_PLATFORM"] = "offscreen"
    # READY must reach us as soon as it is printed, not when a pipe buffer fills.
    env["PYTHONUNBUFFERED"] = "1"
    # A benchmark machine may have no sound device; the mock engine costs what a real one would
    # to set up, without waiting on audio.
    env.setdefault("HALL_TTS_ENGINE", "mock")
    env.pop("HALL_DATA_DIR", None)  # each terminal is given its data directory explicitly
    return env


def _launch_once(command: list[str], env: dict[str, str], log_path: Path) -> Launch:
    name = Path(command[1]).name
    with log_path.open("wb") as log:
        started = time.monotonic()
        process = subprocess.Popen(
            command,
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=log,
        )
        try:
            lines = LineReader(process)
            ready = lines.wait_for(b"READY", started + READY_TIMEOUT_S)
            elapsed = time.monotonic() - started
            if not ready:
                raise BenchmarkError(
                    f"{name} {_how_it_ended(process, READY_TIMEOUT_S)} without printing READY; "
                    f"stderr: {_tail(log_path)}"
                )
            if not lines.wait_for(b"SETTLED", time.monotonic() + SETTLED_TIMEOUT_S):
                raise BenchmarkError(
                    f"{name} printed READY but {_how_it_ended(process, SETTLED_TIMEOUT_S)} "
                    f"without printing SETTLED, so its deferred start-up work never finished "
                    f"and its settled memory cannot be read; stderr: {_tail(log_path)}"
                )
            settled = time.monotonic() - started
            memory = rss_mb(process.pid)
        finally:
            stop(process)
            if process.stdout is not None:
                process.stdout.close()
    return Launch(elapsed, memory, settled)


def _how_it_ended(process: subprocess.Popen[bytes], timeout_s: float) -> str:
    try:
        code = process.wait(timeout=2)
    except subprocess.TimeoutExpired:
        return f"ran {timeout_s:.0f} s"
    return f"exited with {code}"


def _tail(path: Path, lines: int = 8) -> str:
    text = path.read_text(errors="replace").strip().splitlines()
    return " | ".join(text[-lines:]) or "(empty)"


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as reply:  # noqa: S310 (loopback http URL we built)
            return bool(200 <= reply.status < 300)
    except (urllib.error.URLError, OSError):
        return False


@contextmanager
def reference_platform(directory: Path) -> Iterator[str]:
    """The reference platform in a process of its own on a free loopback port; yields its URL."""
    from refplatform.backoffice import ENVIRONMENT_VARIABLE

    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    log_path = directory / "platform.log"
    # No token from this environment: the platform makes one beside its database, where
    # enrol_terminal() finds it.
    env = {k: v for k, v in os.environ.items() if k != ENVIRONMENT_VARIABLE}
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "refplatform",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--db",
                str(directory / "platform.sqlite3"),
            ],
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            deadline = time.monotonic() + PLATFORM_TIMEOUT_S
            while not _answers(f"{url}/api/v1/health"):
                if process.poll() is not None:
                    raise BenchmarkError(
                        f"the reference platform exited with {process.returncode}; "
                        f"{_tail(log_path)}"
                    )
                if time.monotonic() > deadline:
                    raise BenchmarkError(
                        f"the reference platform did not answer within {PLATFORM_TIMEOUT_S:.0f} s"
                    )
                time.sleep(0.05)  # polling a server we started; it has no readiness signal
            yield url
        finally:
            stop(process)


def enrol_terminal(platform_dir: Path, url: str, data_dir: Path, terminal_id: str = "K01") -> None:
    """Enrol the terminal whose data directory is data_dir with the platform reference_platform
    (platform_dir) started at url, as staff do: a one-time code from the platform's back office
    (with the token the platform made beside its database), then the terminal's enrolment."""
    import requests

    from kiosk.terminal_auth import enrol
    from refplatform.backoffice import FILE_NAME

    token = (platform_dir / FILE_NAME).read_text("utf-8").strip()
    with requests.Session() as session:
        answer = session.post(
            f"{url}/api/v1/terminals",
            json={"terminal_id": terminal_id},
            headers={"Authorization": f"Bearer {token}"},
            timeout=10,
        )
    if answer.status_code != 201:
        raise BenchmarkError(f"no enrolment code from the platform: {answer.status_code}")
    enrol(data_dir, url, answer.json()["code"])


def measure_startup(launches: int = 7) -> dict[str, float]:
    """Medians over `launches` runs of each program: seconds to READY, RSS (MB) at SETTLED."""
    if launches < 5:
        raise ValueError("at least 5 launches make a median worth reporting")
    env = _environment()
    with tempfile.TemporaryDirectory(prefix="hall-bench-startup-") as tmp_name:
        tmp = Path(tmp_name)
        # No settings file: every run starts from the defaults, not this machine's settings.
        no_settings = tmp / "absent-config.toml"
        for name in ("configured", "demo"):
            (tmp / name).mkdir()
        with reference_platform(tmp) as platform_url:
            enrol_terminal(tmp, platform_url, tmp / "configured")  # a hall's terminal is enrolled
            commands = {
                "configured": [
                    sys.executable,
                    str(ROOT / "main.py"),
                    "--config",
                    str(no_settings),
                    "--platform-url",
                    platform_url,
                    "--data-dir",
                    str(tmp / "configured"),
                    "--benchmark-ready",
                ],
                "demo": [
                    sys.executable,
                    str(ROOT / "main.py"),
                    "--config",
                    str(no_settings),
                    "--demo",
                    "--data-dir",
                    str(tmp / "demo"),
                    "--benchmark-ready",
                ],
                "floor": [sys.executable, str(QT_FLOOR), "--benchmark-ready"],
            }
            runs: dict[str, list[Launch]] = {name: [] for name in commands}
            for _ in range(launches):
                for name, command in commands.items():
                    runs[name].append(_launch_once(command, env, tmp / f"{name}.stderr.log"))
    ours = [run.ready_s for run in runs["configured"]]
    demo = [run.ready_s for run in runs["demo"]]
    floor = [run.ready_s for run in runs["floor"]]
    return {
        "startup_s_median": median(ours),
        # The first launch also creates the data directory's files, as on a terminal's first boot.
        "startup_s_first": ours[0],
        "startup_s_max": max(ours),
        "startup_rss_mb": median([run.settled_rss_mb for run in runs["configured"]]),
        # The first frame comes before the outbox, catalogue and readers are built (ui/start.py);
        # this is when all of it, and the deferred work, is done.
        "startup_settled_s_median": median([run.settled_s for run in runs["configured"]]),
        "startup_demo_s_median": median(demo),
        "startup_demo_s_max": max(demo),
        "startup_demo_rss_mb": median([run.settled_rss_mb for run in runs["demo"]]),
        "qt_floor_startup_s_median": median(floor),
        "qt_floor_rss_mb": median([run.settled_rss_mb for run in runs["floor"]]),
        "startup_vs_qt_floor_ratio": median(ours) / median(floor),
    }


if __name__ == "__main__":
    print(measure_startup(5))
