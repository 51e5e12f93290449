"""Timing of child processes, shared by the start-up and browser benchmarks."""

from __future__ import annotations

import math
import os
import selectors
import statistics
import subprocess
import time
from pathlib import Path


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


def wait_for_line(process: subprocess.Popen[bytes], wanted: bytes, deadline: float) -> bool:
    """Reads the child's stdout until a line equal to `wanted`, EOF or the deadline.

    Reads raw chunks through a selector so that a child that stops printing cannot block us past
    the deadline.
    """
    if process.stdout is None:
        raise BenchmarkError("the process was started without a stdout pipe")
    fd = process.stdout.fileno()
    pending = b""
    with selectors.DefaultSelector() as selector:
        selector.register(fd, selectors.EVENT_READ)
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            if not selector.select(timeout=left):
                continue
            chunk = os.read(fd, 65536)
            if not chunk:
                return False
            pending += chunk
            *lines, pending = pending.split(b"\n")
            if any(line.strip() == wanted for line in lines):
                return True


def stop(process: subprocess.Popen[bytes], grace_s: float = 10.0) -> None:
    """SIGTERM, then SIGKILL if the process does not leave within the grace period."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
