"""Timing of child processes, shared by the start-up and browser benchmarks."""

from __future__ import annotations

import json
import math
import os
import selectors
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any


class BenchmarkError(RuntimeError):
    """A benchmark could not produce its figure; the message says why."""


def median(values: list[float]) -> float:
    return statistics.median(values)


def percentile(values: list[float], fraction: float) -> float:
    """Nearest-rank percentile, which never reports a value that was not measured."""
    ordered = sorted(values)
    rank = max(1, math.ceil(fraction * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def rss_mb(pid: int) -> float:
    """Resident set size of a live process, from /proc (VmRSS is in kB)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise BenchmarkError(f"no VmRSS for process {pid}")


class LineReader:
    """Reads a child's stdout line by line with deadlines, keeping what it has read.

    Raw chunks through a selector, so a child that stops printing cannot block us past a deadline;
    lines that arrived together (READY and SETTLED in one chunk) are all kept for the next wait.
    """

    def __init__(self, process: subprocess.Popen[bytes]) -> None:
        if process.stdout is None:
            raise BenchmarkError("the process was started without a stdout pipe")
        self._fd = process.stdout.fileno()
        self._pending = b""
        self._lines: list[bytes] = []
        self.closed = False

    def wait_for(self, wanted: bytes, deadline: float) -> bool:
        """True once a line equal to `wanted` has been read; False at EOF or the deadline."""
        with selectors.DefaultSelector() as selector:
            selector.register(self._fd, selectors.EVENT_READ)
            while True:
                while self._lines:
                    if self._lines.pop(0).strip() == wanted:
                        return True
                if self.closed:
                    return False
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                if not selector.select(timeout=left):
                    continue
                chunk = os.read(self._fd, 65536)
                if not chunk:
                    self.closed = True
                    continue
                *lines, self._pending = (self._pending + chunk).split(b"\n")
                self._lines.extend(lines)


def stop(process: subprocess.Popen[bytes], grace_s: float = 10.0) -> None:
    """SIGTERM, then SIGKILL if the process does not leave within the grace period."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def run_module(module: str, *args: str, timeout_s: float = 600) -> dict[str, Any]:
    """`python -m MODULE ARGS` offscreen, in a process of its own (its memory and its garbage are
    its own); its last line of output is a JSON object of figures."""
    done = subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=Path(__file__).resolve().parent.parent,
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
        env={**os.environ, "QT_QPA_PLATFORM": "offscreen", "HALL_TTS_ENGINE": "mock"},
    )
    if done.returncode != 0:
        raise RuntimeError(done.stderr.strip().splitlines()[-1] if done.stderr else module)
    figures: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return figures
