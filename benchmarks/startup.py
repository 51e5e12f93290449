"""Start-up of the demo: launch to the first interactive screen, and memory at that moment.

main.py, given --benchmark-ready, prints the line READY on stdout once the first interactive
screen is shown. Each launch is a fresh process against one private data directory, offscreen.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks._launch import BenchmarkError, median, rss_mb, stop, wait_for_line

ROOT = Path(__file__).resolve().parent.parent
READY_TIMEOUT_S = 60.0


def _environment(data_dir: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["QT_QPA_PLATFORM"] = "offscreen"
    env["HALL_DATA_DIR"] = str(data_dir)
    # READY must reach us as soon as it is printed, not when a pipe buffer fills.
    env["PYTHONUNBUFFERED"] = "1"
    # A benchmark machine may have no sound device; the mock engine costs what a real one would
    # to set up, without waiting on audio.
    env.setdefault("HALL_TTS_ENGINE", "mock")
    return env


def _launch_once(env: dict[str, str], log_path: Path) -> tuple[float, float]:
    with log_path.open("wb") as log:
        started = time.monotonic()
        process = subprocess.Popen(
            [sys.executable, str(ROOT / "main.py"), "--demo", "--benchmark-ready"],
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=log,
        )
        try:
            ready = wait_for_line(process, b"READY", started + READY_TIMEOUT_S)
            elapsed = time.monotonic() - started
            if not ready:
                code = _exit_code(process)
                how = f"exited with {code}" if code is not None else "timed out"
                raise BenchmarkError(
                    f"main.py {how} before printing READY; stderr: {_tail(log_path)}"
                )
            memory = rss_mb(process.pid)
        finally:
            stop(process)
            if process.stdout is not None:
                process.stdout.close()
    return elapsed, memory


def _exit_code(process: subprocess.Popen[bytes]) -> int | None:
    """The exit code of a child whose stdout closed, or None if it is still running."""
    try:
        return process.wait(timeout=2)
    except subprocess.TimeoutExpired:
        return None


def _tail(path: Path, lines: int = 8) -> str:
    text = path.read_text(errors="replace").strip().splitlines()
    return " | ".join(text[-lines:]) or "(empty)"


def measure_startup(launches: int = 7) -> dict[str, float]:
    """Median seconds from launch to READY and median RSS (MB) at READY over `launches` runs."""
    if launches < 5:
        raise ValueError("at least 5 launches make a median worth reporting")
    times: list[float] = []
    memories: list[float] = []
    with tempfile.TemporaryDirectory(prefix="hall-bench-startup-") as tmp:
        data_dir = Path(tmp) / "data"
        data_dir.mkdir()
        env = _environment(data_dir)
        for _ in range(launches):
            elapsed, memory = _launch_once(env, Path(tmp) / "stderr.log")
            times.append(elapsed)
            memories.append(memory)
    return {
        "startup_s_median": median(times),
        # The first launch also creates the data directory's files, as on a terminal's first boot.
        "startup_s_first": times[0],
        "startup_s_max": max(times),
        "startup_rss_mb": median(memories),
    }
