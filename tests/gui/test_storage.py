"""What people see when the terminal's own storage fails: a full disk, a damaged queue, a key
that does not fit."""

from __future__ import annotations

import json
import os
import random
import sqlite3
import subprocess
import sys
from pathlib import Path

from PySide6.QtCore import Qt
from pytestqt.qtbot import QtBot

from kiosk.app import build_parts
from kiosk.config import Config
from kiosk.session import Step
from offline_queue.errors import OutboxCorruptError
from offline_queue.outbox import Outbox, State, new_item_id
from offline_queue.recovery import QUARANTINE_MARK
from tests.fixtures.platform import demo_submission
from tests.fixtures.tmpfs import small_disk
from tests.gui.conftest import ROOT, MakeTerminal, closed_port_url, enrol_elsewhere
from tests.gui.test_visit import PHONE, answer_residence_permit, open_form, submit, wait_step

NOT_SAVED = "您的申请未能保存在本终端"


def test_a_full_disk_is_explained_and_nothing_typed_is_lost(
    qtbot: QtBot, make_terminal: MakeTerminal, tmp_path: Path
) -> None:
    with small_disk(2 * 1024 * 1024) as disk:
        terminal = make_terminal(data_dir=disk.path, receipts_dir=tmp_path / "receipts")
        window = terminal.window
        visit = terminal.visit
        outbox = terminal.parts.outbox
        open_form(qtbot, terminal)
        answer_residence_permit(qtbot, terminal)
        with disk.full():
            with qtbot.waitSignal(visit.submission_failed, timeout=10000) as failed:
                qtbot.mouseClick(visit.review.submit_button, Qt.MouseButton.LeftButton)
            wait_step(qtbot, terminal, Step.REVIEW)
            assert NOT_SAVED in failed.args[0]
            assert visit.review.summary.isVisible()
            assert NOT_SAVED in visit.review.summary.text()
            assert NOT_SAVED in window.voice.spoken[-1]
            assert visit.session.answers["phone"] == PHONE  # nothing typed is lost
            assert sum(outbox.counts().values()) == 0  # and nothing half-saved
        # space again (staff cleared the disk): the same answers go through
        result = submit(qtbot, terminal)
        assert result.delivered
        assert outbox.state_of(result.submission_id) is State.DELIVERED
        window.close()
        terminal.stop()
        terminal.parts.close()


def test_a_damaged_queue_is_set_aside_and_staff_are_told(
    qtbot: QtBot, make_terminal: MakeTerminal, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    data.mkdir()
    damaged = os.urandom(8192)
    (data / "outbox.sqlite3").write_bytes(damaged)
    terminal = make_terminal(data_dir=data)
    window = terminal.window
    kept = [p for p in data.iterdir() if QUARANTINE_MARK in p.name and p.name.endswith("Z")]
    assert len(kept) == 1 and kept[0].read_bytes() == damaged
    assert window.staff_banner.isVisible()
    assert kept[0].name in window.staff_text.text()
    assert "工作人员请注意" in window.staff_text.text()
    # the terminal works on a fresh queue
    open_form(qtbot, terminal)
    answer_residence_permit(qtbot, terminal)
    result = submit(qtbot, terminal)
    assert result.delivered
    qtbot.mouseClick(window.staff_dismiss, Qt.MouseButton.LeftButton)
    assert not window.staff_banner.isVisible()


def test_a_key_that_does_not_fit_stops_the_terminal_with_a_reason(tmp_path: Path) -> None:
    data = tmp_path / "data"
    url = closed_port_url()  # the platform is away; the terminal is enrolled with it

    def launch() -> subprocess.CompletedProcess[str]:
        env = {
            **os.environ,
            "QT_QPA_PLATFORM": "offscreen",
            "HALL_TTS_ENGINE": "mock",
            "PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring",
        }
        return subprocess.run(
            [sys.executable, str(ROOT / "main.py"), "--self-check", "--data-dir", str(data),
             "--platform-url", url, "--mode", "rural"],
            capture_output=True, text=True, timeout=60, env=env, cwd=ROOT, check=False,
        )

    config = Config(data_dir=data, platform_url=url)
    enrol_elsewhere(config)
    parts = build_parts(config, demo=False, bundled_catalogue=None)
    parts.outbox.enqueue("submission", b"{}", b"{}")  # a submission waiting under the old key
    parts.close()
    (data / "outbox.key").write_bytes(os.urandom(32))  # another terminal's key, say
    second = launch()
    assert second.returncode == 3, second.stderr
    assert "本终端目前无法受理申请" in second.stderr
    assert "wrong_key" in second.stderr
    assert "Traceback" not in second.stderr
    assert not any(QUARANTINE_MARK in p.name for p in data.iterdir())  # the data is not damaged


PAGE = 4096
TABLE_LEAF = 0x0D  # SQLite b-tree page type of a table leaf, which holds the rows themselves
RESTART = "请重新启动终端"


def queue_submissions(outbox: Outbox, count: int) -> list[str]:
    """Submissions saved while the platform is away, as the terminal saves them."""
    ids = []
    for _ in range(count):
        body = demo_submission(submission_id=new_item_id())
        summary = {"receipt_number": body["receipt_number"], "service_id": body["service_id"]}
        ids.append(
            outbox.enqueue(
                "submission",
                json.dumps(body, ensure_ascii=False).encode(),
                json.dumps(summary).encode(),
                item_id=body["submission_id"],
            )
        )
    return ids


def damage_row_pages(db: Path, seed: int) -> list[int]:
    """Overwrite, in place, every table leaf page that holds rows, except the schema page.

    The indexes stay whole, so counting rows still works: only reading a row (a claim) meets
    the damage, the way a failing disk sector shows up on a running terminal. Returns the pages.
    """
    # Fold the write-ahead log into the database first, so that the rows are read from the pages
    # damaged here; the reset log also tells the terminal's connections to drop cached pages.
    with sqlite3.connect(db, isolation_level=None) as conn:
        busy, _log, _done = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
    conn.close()
    assert busy == 0
    assert db.with_name(db.name + "-wal").stat().st_size == 0
    data = db.read_bytes()
    pages = [
        n
        for n in range(1, len(data) // PAGE)
        if data[n * PAGE] == TABLE_LEAF and data[n * PAGE + 3 : n * PAGE + 5] != b"\x00\x00"
    ]
    noise = random.Random(seed)  # noqa: S311 - a replayable damage pattern, not a secret
    with db.open("r+b") as fh:
        for n in pages:
            fh.seek(n * PAGE)
            fh.write(noise.randbytes(PAGE))
        fh.flush()
        os.fsync(fh.fileno())
    return pages


def test_damage_found_while_running_asks_staff_to_restart(
    qtbot: QtBot, make_terminal: MakeTerminal
) -> None:
    terminal = make_terminal(platform_url=closed_port_url())
    window = terminal.window
    outbox = terminal.parts.outbox
    queue_submissions(outbox, 40)
    assert outbox.counts()[State.QUEUED.value] == 40
    assert not window.staff_banner.isVisible()

    damaged = damage_row_pages(outbox.path, seed=7)
    assert damaged
    assert outbox.counts()[State.QUEUED.value] == 40  # opening and counting do not notice

    terminal.parts.sync.wake()  # the sync engine claims the oldest row and reads damaged bytes
    qtbot.waitUntil(window.staff_banner.isVisible, timeout=10000)
    assert RESTART in window.staff_text.text()
    assert terminal.parts.sync.status().last_error == OutboxCorruptError.code
