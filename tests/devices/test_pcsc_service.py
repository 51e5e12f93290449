"""pcscd going away under a running backend, which is how the application sees its readers
vanish all at once, and coming back. Runs its own pcscd (on vpcd ports away from the shared
one's) and the backend in a child process, since a process binds to one pcscd socket.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.fixtures.emrtd_card import Document, EmrtdChip, VirtualCard
from tests.fixtures.pcsc import PcscStackMissing, PrivatePcscd

pytestmark = pytest.mark.real_device

ROOT = Path(__file__).resolve().parents[2]
PORT = 35979  # "Virtual PCD 00 00" of this test's own pcscd; 00 01 is on 35980
READER_A, READER_B = "Virtual PCD 00 00", "Virtual PCD 00 01"
WAIT = 4.0

Event = dict[str, str | None]


class ChildEvents:
    """Events the child process prints, collected on a thread; waited on with timeouts."""

    def __init__(self, stream: Iterator[bytes]) -> None:
        self._cond = threading.Condition()
        self.events: list[Event] = []
        self._thread = threading.Thread(target=self._read, args=(stream,), daemon=True)
        self._thread.start()

    def _read(self, stream: Iterator[bytes]) -> None:
        for line in stream:
            with self._cond:
                self.events.append(json.loads(line))
                self._cond.notify_all()

    def mark(self) -> int:
        with self._cond:
            return len(self.events)

    def wait_for(self, match: Callable[[Event], bool], mark: int, timeout: float = WAIT) -> Event:
        with self._cond:
            found = self._cond.wait_for(
                lambda: next((e for e in self.events[mark:] if match(e)), None), timeout
            )
            if found is None:
                raise AssertionError(f"not seen within {timeout} s; saw {self.events[mark:]}")
            return found


def kind(name: str, reader: str) -> Callable[[Event], bool]:
    return lambda e: e["kind"] == name and e["reader"] == reader


def test_pcscd_going_away_and_coming_back(tmp_path: Path) -> None:
    doc = Document()
    daemon = PrivatePcscd(tmp_path, port=PORT)
    try:
        daemon.start()
    except PcscStackMissing as exc:
        pytest.fail(str(exc), pytrace=False)
    child = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.fixtures.pcsc_child",
            doc.document_number,
            doc.birth,
            doc.expiry,
        ],
        cwd=ROOT,
        env={**os.environ, "PCSCLITE_CSOCK_NAME": str(daemon.socket_path)},
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    assert child.stdout is not None and child.stdin is not None
    events = ChildEvents(iter(child.stdout.readline, b""))
    try:
        for reader in (READER_A, READER_B):
            events.wait_for(kind("reader_added", reader), 0)

        # pcscd dies while a read is blocked on a chip that went silent.
        mark = events.mark()
        with VirtualCard(EmrtdChip(doc), port=PORT, mute_at=5) as card:
            assert card.muted.wait(WAIT)
            daemon.kill()
            gone = events.wait_for(kind("error", READER_A), mark)
            assert gone["error"] == "reader_gone", json.dumps(gone)
            for reader in (READER_A, READER_B):
                events.wait_for(kind("reader_removed", reader), mark)
        seen_a = [e["kind"] for e in events.events[mark:] if e["reader"] == READER_A]
        assert seen_a == ["card_present", "error", "card_removed", "reader_removed"]

        # pcscd is back: so are the readers, and they read cards.
        mark = events.mark()
        daemon.start()
        for reader in (READER_A, READER_B):
            events.wait_for(kind("reader_added", reader), mark)
        with VirtualCard(EmrtdChip(doc), port=PORT):
            read = events.wait_for(kind("identity", READER_A), mark)
            assert read["id_number"] == doc.document_number
    finally:
        child.stdin.close()
        try:
            assert child.wait(10) == 0
        finally:
            if child.poll() is None:
                child.kill()
            daemon.stop()
            child.stdout.close()
