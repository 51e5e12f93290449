"""Receipt numbers a person can read out over the phone: terminal, date, sequence of the day."""

from __future__ import annotations

import datetime as dt
import json
import os
import threading
from pathlib import Path


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
            data = json.loads(self._path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return {str(k): int(v) for k, v in data.items()} if isinstance(data, dict) else {}

    def _write(self, state: dict[str, int]) -> None:
        self._path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self._path.with_suffix(".tmp")
        with tmp.open("w", encoding="utf-8") as fh:
            json.dump(state, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self._path)
