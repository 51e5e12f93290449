"""A browser-based terminal for comparison: Debian's chromium, headless, loading a static copy of
the kiosk's first question page (assets/form.html) from a local file, launch to loaded DOM."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from benchmarks._launch import BenchmarkError, median

FORM = Path(__file__).resolve().parent / "assets" / "form.html"
# The page sets this attribute from its script, so its presence in the dump proves the page ran.
LOADED_MARK = b'data-ready="form-ready"'
RUN_TIMEOUT_S = 60.0

FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)


def find_chromium() -> str:
    for name in ("chromium", "chromium-browser"):
        path = shutil.which(name)
        if path:
            return path
    raise BenchmarkError("chromium is not installed (Debian package: chromium)")


def _load_once(binary: str) -> float:
    with tempfile.TemporaryDirectory(prefix="hall-bench-chromium-") as profile:
        command = [binary, *FLAGS, f"--user-data-dir={profile}", "--dump-dom", FORM.as_uri()]
        started = time.monotonic()
        try:
            done = subprocess.run(
                command,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                timeout=RUN_TIMEOUT_S,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise BenchmarkError(f"chromium did not finish within {RUN_TIMEOUT_S:.0f} s") from exc
        elapsed = time.monotonic() - started
    if done.returncode != 0 or LOADED_MARK not in done.stdout:
        tail = done.stderr.decode(errors="replace").strip().splitlines()[-3:]
        raise BenchmarkError(
            f"chromium exited with {done.returncode} without the loaded page; {' | '.join(tail)}"
        )
    return elapsed


def measure_chromium(launches: int = 7) -> dict[str, float]:
    """Median seconds for chromium to start, load the form page, dump its DOM and exit."""
    if launches < 5:
        raise ValueError("at least 5 launches make a median worth reporting")
    binary = find_chromium()
    times = [_load_once(binary) for _ in range(launches)]
    return {"chromium_startup_s_median": median(times), "chromium_startup_s_max": max(times)}
