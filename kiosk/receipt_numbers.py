"""Receipt numbers a person can read out over the phone: terminal, date, sequence of the day."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import threading
from pathlib import Path

from offline_queue.files import fsync_dir


class CounterUnreadableError(OSError):
    """The counter file exists but cannot be read back; handing out numbers again from 0001 could
    give two citizens the same receipt number, so nothing is handed out until staff look."""


class ReceiptNumbers:
    """Hands out K01-20261123-0007 style numbers; the counter survives restarts (fsync'd)."""

    def __init__(self, path: Path, terminal_id: str) -> None:
        self._path = path
        self._terminal_id = terminal_id
        self._lock = threading.Lock()

    def next(self, today: dt.date) -> str:
        with self._lock:
            day = today.strftime("%Y%m%d")
            state = self._read()
            sequence = int(state.get(day, 0)) + 1
            self._write({day: sequence})  # older days are not needed again
            return f"{self._terminal_id}-{day}-{sequence:04d}"

    def _read(self) -> dict[str, int]:
        try:
            text = self._path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return {}
        try:
            data = json.loads(text)
            if not isinstance(data, dict):
                raise TypeError("not an object")
            return {str(k): int(v) for k, v in data.items()}
        except (ValueError, TypeError) as exc:
            raise CounterUnreadableError(f"receipt counter {self._path} is damaged") from exc

    def _write(self, state: dict[str, int]) -> None:
        """Write beside, fsync, rename over, fsync the folder: after a power cut the counter is
        either the old or the new value, never a number handed out twice."""
        folder = self._path.parent
        folder.mkdir(parents=True, exist_ok=True)
        tmp = self._path.with_suffix(".tmp")
        try:
            # 0600 whatever the process umask: the counter lives beside personal data
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with open(fd, "w", encoding="utf-8") as fh:
                json.dump(state, fh)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, self._path)
        except BaseException:
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise
        fsync_dir(folder)
