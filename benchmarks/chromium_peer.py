"""A browser-based terminal for comparison: Debian's chromium, headless, showing a static copy of
the kiosk's first question page (assets/form.html) from a local file.

Timed over the same interval as the terminal: from launch to the page painted and taking input.
Chromium is driven over the DevTools protocol on a pipe (--remote-debugging-pipe: it reads
NUL-terminated JSON commands on fd 3 and writes replies and events on fd 4), so no extra
dependency is needed. It starts on about:blank; the benchmark attaches to that page, turns on
lifecycle events, navigates to the form and stops the clock when both the page's load event and
its first contentful paint have arrived (Page.lifecycleEvent "load" and "firstContentfulPaint"
for that navigation), as read on this process's monotonic clock. The page's own script marks the
body when it has run, which is checked after the clock stops.
"""

from __future__ import annotations

import fcntl
import json
import os
import selectors
import shutil
import signal
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmarks._launch import BenchmarkError, median

FORM = Path(__file__).resolve().parent / "assets" / "form.html"
READY_MARK = "form-ready"  # the page's script sets body[data-ready] to this once it has run
RUN_TIMEOUT_S = 60.0
PAINTED = ("firstContentfulPaint", "firstMeaningfulPaint")

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


@dataclass
class DevTools:
    """The DevTools protocol on chromium's pipe: commands out on one fd, messages in on another."""

    to_browser: int
    from_browser: int
    deadline: float
    _next_id: int = 0
    _pending: bytes = b""
    _inbox: list[dict[str, Any]] = field(default_factory=list)

    def send(self, method: str, params: dict[str, Any] | None = None, session: str = "") -> int:
        self._next_id += 1
        message: dict[str, Any] = {"id": self._next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        data = json.dumps(message).encode() + b"\0"
        while data:
            data = data[os.write(self.to_browser, data) :]
        return self._next_id

    def call(
        self, method: str, params: dict[str, Any] | None = None, session: str = ""
    ) -> dict[str, Any]:
        """Sends a command and returns its result; events that arrive meanwhile are kept."""
        wanted = self.send(method, params, session)
        for index, message in self._messages(lambda m: m.get("id") == wanted):
            del self._inbox[index]
            if "error" in message:
                raise BenchmarkError(f"chromium refused {method}: {message['error']}")
            result: dict[str, Any] = message.get("result", {})
            return result
        raise AssertionError("unreachable: _messages raises at the deadline")

    def next_event(self, methods: tuple[str, ...]) -> tuple[dict[str, Any], float]:
        """The next event among `methods` (oldest first), and when it was read."""
        for index, message in self._messages(lambda m: m.get("method") in methods):
            del self._inbox[index]
            return message, message["_read_at"]
        raise AssertionError("unreachable: _messages raises at the deadline")

    def _messages(self, wanted: Any) -> Iterator[tuple[int, dict[str, Any]]]:
        with selectors.DefaultSelector() as selector:
            selector.register(self.from_browser, selectors.EVENT_READ)
            while True:
                for index, message in enumerate(self._inbox):
                    if wanted(message):
                        yield index, message
                        return
                left = self.deadline - time.monotonic()
                if left <= 0:
                    raise BenchmarkError(
                        f"chromium did not paint the page within {RUN_TIMEOUT_S:.0f} s"
                    )
                if not selector.select(timeout=left):
                    continue
                chunk = os.read(self.from_browser, 1 << 16)
                read_at = time.monotonic()
                if not chunk:
                    raise BenchmarkError("chromium closed its DevTools pipe (did it crash?)")
                *complete, self._pending = (self._pending + chunk).split(b"\0")
                for raw in complete:
                    message = json.loads(raw)
                    message["_read_at"] = read_at
                    self._inbox.append(message)


def _high_fd(fd: int) -> int:
    """A close-on-exec copy of fd numbered 10 or above, so it cannot sit on 3 or 4 in the child."""
    copy = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10)
    os.close(fd)
    return copy


@contextmanager
def _chromium(binary: str, profile: Path, log_path: Path) -> Iterator[tuple[DevTools, float]]:
    """Launches chromium with a DevTools pipe; yields the pipe and the launch time."""
    command_read, command_write = (_high_fd(fd) for fd in os.pipe())
    reply_read, reply_write = (_high_fd(fd) for fd in os.pipe())
    log = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    null = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
    argv = [
        binary,
        *FLAGS,
        f"--user-data-dir={profile}",
        "--remote-debugging-pipe",
        "about:blank",
    ]
    # posix_spawn places the pipe ends on exactly fds 3 and 4, which Popen cannot do without a
    # preexec hook; every other descriptor of ours is close-on-exec.
    actions = [
        (os.POSIX_SPAWN_DUP2, null, 0),
        (os.POSIX_SPAWN_DUP2, log, 1),
        (os.POSIX_SPAWN_DUP2, log, 2),
        (os.POSIX_SPAWN_DUP2, command_read, 3),
        (os.POSIX_SPAWN_DUP2, reply_write, 4),
    ]
    started = time.monotonic()
    try:
        pid = os.posix_spawn(binary, argv, dict(os.environ), file_actions=actions)
    except OSError as exc:
        os.close(command_write)
        os.close(reply_read)
        raise BenchmarkError(f"chromium could not be started: {exc}") from exc
    finally:
        for fd in (command_read, reply_write, log, null):
            os.close(fd)
    try:
        yield DevTools(command_write, reply_read, started + RUN_TIMEOUT_S), started
    finally:
        os.close(command_write)  # chromium leaves when its DevTools pipe closes
        _reap(pid)
        os.close(reply_read)


def _reap(pid: int, grace_s: float = 10.0) -> None:
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline:
        done, _status = os.waitpid(pid, os.WNOHANG)
        if done:
            return
        time.sleep(0.02)  # no child-exit notification without a signal handler of our own
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)


def _load_once(binary: str) -> float:
    with tempfile.TemporaryDirectory(prefix="hall-bench-chromium-") as tmp:
        profile = Path(tmp) / "profile"
        with _chromium(binary, profile, Path(tmp) / "chromium.log") as (devtools, started):
            try:
                return _time_to_paint(devtools, started)
            except BenchmarkError as exc:
                tail = (Path(tmp) / "chromium.log").read_text(errors="replace").splitlines()[-3:]
                raise BenchmarkError(f"{exc}; {' | '.join(tail)}") from exc


def _time_to_paint(devtools: DevTools, started: float) -> float:
    targets = devtools.call("Target.getTargets")["targetInfos"]
    pages = [t["targetId"] for t in targets if t.get("type") == "page"]
    if not pages:
        raise BenchmarkError("chromium opened no page")
    session = devtools.call("Target.attachToTarget", {"targetId": pages[0], "flatten": True})[
        "sessionId"
    ]
    devtools.call("Page.enable", session=session)
    devtools.call("Page.setLifecycleEventsEnabled", {"enabled": True}, session=session)
    navigation = devtools.call("Page.navigate", {"url": FORM.as_uri()}, session=session)
    if navigation.get("errorText"):
        raise BenchmarkError(f"chromium could not open the form: {navigation['errorText']}")
    loader = navigation.get("loaderId")
    painted_at: float | None = None
    loaded_at: float | None = None
    while painted_at is None or loaded_at is None:
        event, read_at = devtools.next_event(("Page.lifecycleEvent",))
        params = event.get("params", {})
        if params.get("loaderId") != loader:
            continue  # about:blank's, from before the navigation
        if params.get("name") == "load":
            loaded_at = loaded_at or read_at
        elif params.get("name") in PAINTED:
            painted_at = painted_at or read_at
    elapsed = max(painted_at, loaded_at) - started
    ready = devtools.call(
        "Runtime.evaluate", {"expression": "document.body.dataset.ready"}, session=session
    )
    if ready.get("result", {}).get("value") != READY_MARK:
        raise BenchmarkError("chromium painted the form but its script had not run")
    return elapsed


def measure_chromium(launches: int = 7) -> dict[str, float]:
    """Median seconds from launching chromium to the form page loaded and painted."""
    if launches < 5:
        raise ValueError("at least 5 launches make a median worth reporting")
    binary = find_chromium()
    times = [_load_once(binary) for _ in range(launches)]
    return {"chromium_startup_s_median": median(times), "chromium_startup_s_max": max(times)}


if __name__ == "__main__":
    print(measure_chromium(5))
