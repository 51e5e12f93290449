"""A damaged outbox file is set aside byte for byte and a fresh queue starts in its place.

Every case damages a real outbox that holds rows, the way a failing disk or a stray write would,
then opens it the way the terminal does at start.
"""

from __future__ import annotations

import os
import random
import shutil
import sqlite3
import struct
from pathlib import Path

import pytest

from offline_queue.errors import OutboxCorruptError, SchemaTooNewError, WrongKeyError
from offline_queue.outbox import SCHEMA_VERSION, Outbox, State
from offline_queue.recovery import (
    Check,
    OpenedOutbox,
    QuarantineReason,
    inspect_wal,
    open_outbox,
    quarantine,
)

START = 1_800_000_000.0  # 2027-01-15 08:00:00 UTC
STAMP = "20270115T080000Z"
PAGE = 4096
FRAME = 24 + PAGE
ROWS = 40


class Clock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def key() -> bytes:
    return bytes(range(32))


@pytest.fixture
def db(tmp_path: Path) -> Path:
    folder = tmp_path / "data"
    folder.mkdir()
    return folder / "outbox.sqlite3"


def noise(size: int, seed: int) -> bytes:
    """Seeded damage, so a failure replays with the same bytes."""
    return random.Random(seed).randbytes(size)  # noqa: S311 - damage pattern, not a secret


def fill(box: Outbox, rows: int = ROWS) -> list[str]:
    return [
        box.enqueue("submission", f"payload {n} ".encode() * 60, f"summary {n}".encode())
        for n in range(rows)
    ]


def healthy_outbox(path: Path, key: bytes, clock: Clock) -> list[str]:
    with Outbox(path, key, clock=clock) as box:
        return fill(box)


def crash_image(target: Path, key: bytes, clock: Clock) -> list[str]:
    """Put at target the database and log a power cut after the last commit leaves behind.

    The outbox runs elsewhere and its files are copied while it is open, so the log has not been
    folded back into the database as a clean close would.
    """
    live = target.parent.parent / "live" / target.name
    live.parent.mkdir()
    target.parent.mkdir(exist_ok=True)
    box = Outbox(live, key, clock=clock)
    try:
        ids = fill(box)
        for tail in ("", "-wal"):
            shutil.copyfile(live.with_name(live.name + tail), target.with_name(target.name + tail))
    finally:
        box.close()
    return ids


def files_in(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def assert_fresh_queue_works(opened: OpenedOutbox, path: Path) -> None:
    box = opened.outbox
    assert box.counts() == {s.value: 0 for s in State}
    item_id = box.enqueue("submission", b"after the damage", b"summary")
    item = box.claim_next()
    assert item is not None and (item.id, item.payload) == (item_id, b"after the damage")
    box.close()
    # The new queue is durable at the original path.
    with Outbox(path, bytes(range(32))) as again:
        assert again.state_of(item_id) is State.QUEUED


def test_a_healthy_outbox_opens_untouched(db: Path, key: bytes, clock: Clock) -> None:
    ids = healthy_outbox(db, key, clock)
    opened = open_outbox(db, key, clock)
    try:
        assert (opened.quarantined, opened.reason, opened.files) == (None, None, ())
        assert opened.outbox.counts()["queued"] == len(ids)
    finally:
        opened.outbox.close()
    assert sorted(p.name for p in db.parent.iterdir()) == [db.name]


def test_garbage_over_the_whole_file(db: Path, key: bytes, clock: Clock) -> None:
    healthy_outbox(db, key, clock)
    garbage = noise(db.stat().st_size, 1)
    db.write_bytes(garbage)

    opened = open_outbox(db, key, clock)

    assert opened.reason is QuarantineReason.NOT_A_DATABASE
    assert opened.reason.value == "not_a_database"
    assert opened.quarantined == db.with_name(f"outbox.sqlite3.corrupt-{STAMP}")
    assert opened.quarantined.read_bytes() == garbage
    assert "not a database" in opened.detail
    assert_fresh_queue_works(opened, db)


def test_a_truncated_file(db: Path, key: bytes, clock: Clock) -> None:
    healthy_outbox(db, key, clock)
    cut = db.read_bytes()[: db.stat().st_size // 2]
    db.write_bytes(cut)

    opened = open_outbox(db, key, clock)

    assert opened.reason is QuarantineReason.DAMAGED
    assert opened.quarantined is not None and opened.quarantined.read_bytes() == cut
    assert "malformed" in opened.detail
    assert_fresh_queue_works(opened, db)


def _middle_table_leaf(data: bytes) -> int:
    """The index of a table b-tree leaf page with rows near the middle of the file (not page 1)."""
    pages = len(data) // PAGE
    leaves = [
        n
        for n in range(1, pages)
        if data[n * PAGE] == 0x0D and data[n * PAGE + 3 : n * PAGE + 5] != b"\x00\x00"
    ]
    assert leaves, "the outbox has no table leaf pages past the first"
    return min(leaves, key=lambda n: abs(n - pages // 2))


def test_random_bytes_over_a_page_in_the_middle(db: Path, key: bytes, clock: Clock) -> None:
    ids = healthy_outbox(db, key, clock)
    data = bytearray(db.read_bytes())
    page = _middle_table_leaf(bytes(data))
    data[page * PAGE : (page + 1) * PAGE] = noise(PAGE, 2)
    damaged = bytes(data)
    db.write_bytes(damaged)

    # The open itself does not read that page: the damage shows on the first read that does,
    # and it shows as the outbox's own corruption error, which the sync engine reports.
    with Outbox(db, key, clock=clock) as box:
        with pytest.raises(OutboxCorruptError) as caught:
            for _ in ids:
                box.claim_next()
        assert caught.value.code == "corrupt"
    assert db.read_bytes() == damaged  # looking did not change the file

    opened = open_outbox(db, key, clock)

    assert opened.reason is QuarantineReason.CHECK_FAILED
    assert opened.quarantined is not None and opened.quarantined.read_bytes() == damaged
    assert opened.detail
    assert_fresh_queue_works(opened, db)


def test_without_the_check_a_damaged_page_opens(db: Path, key: bytes, clock: Clock) -> None:
    healthy_outbox(db, key, clock)
    data = bytearray(db.read_bytes())
    page = _middle_table_leaf(bytes(data))
    data[page * PAGE : (page + 1) * PAGE] = noise(PAGE, 3)
    db.write_bytes(bytes(data))
    opened = open_outbox(db, key, clock, check=Check.NONE)
    try:
        assert opened.reason is None
        with pytest.raises(OutboxCorruptError):
            while opened.outbox.claim_next() is not None:
                pass
    finally:
        opened.outbox.close()


def test_integrity_check_also_catches_it(db: Path, key: bytes, clock: Clock) -> None:
    healthy_outbox(db, key, clock)
    data = bytearray(db.read_bytes())
    page = _middle_table_leaf(bytes(data))
    data[page * PAGE + 8 : page * PAGE + 64] = b"\xff" * 56  # the cell pointers
    db.write_bytes(bytes(data))
    opened = open_outbox(db, key, clock, check="full")
    opened.outbox.close()
    assert opened.reason is QuarantineReason.CHECK_FAILED


def _commit_frames(wal: bytes) -> list[int]:
    frames = (len(wal) - 32) // FRAME
    return [
        n for n in range(frames) if struct.unpack(">I", wal[32 + n * FRAME + 4 : 40 + n * FRAME])[0]
    ]


def test_a_corrupted_wal_is_quarantined(tmp_path: Path, key: bytes, clock: Clock) -> None:
    db = tmp_path / "data" / "outbox.sqlite3"
    ids = crash_image(db, key, clock)
    wal_file = db.with_name(db.name + "-wal")
    wal = bytearray(wal_file.read_bytes())
    frames = (len(wal) - 32) // FRAME
    middle = frames // 2
    wal[32 + middle * FRAME + 24 + 200] ^= 0x5A
    wal_file.write_bytes(bytes(wal))
    before = files_in(db.parent)

    # What SQLite alone would make of it: committed rows gone without an error.
    evidence = tmp_path / "evidence"
    shutil.copytree(db.parent, evidence)
    conn = sqlite3.connect(evidence / db.name)
    try:
        seen = conn.execute("SELECT COUNT(*) FROM outbox").fetchone()[0]
    finally:
        conn.close()
    assert seen < len(ids)

    opened = open_outbox(db, key, clock)

    assert opened.reason is QuarantineReason.WAL_DAMAGED
    assert f"frame {middle}" in opened.detail
    kept = {p.name.replace(f".corrupt-{STAMP}", ""): p.read_bytes() for p in opened.files}
    assert kept == before
    assert opened.quarantined == db.with_name(f"{db.name}.corrupt-{STAMP}")
    assert_fresh_queue_works(opened, db)


def test_a_crash_image_with_an_intact_wal_keeps_every_row(
    tmp_path: Path, key: bytes, clock: Clock
) -> None:
    db = tmp_path / "data" / "outbox.sqlite3"
    ids = crash_image(db, key, clock)
    assert db.with_name(db.name + "-wal").stat().st_size > 32 + FRAME
    opened = open_outbox(db, key, clock)
    try:
        assert opened.reason is None
        assert sorted(i.id for i in opened.outbox.items(limit=1000)) == sorted(ids)
    finally:
        opened.outbox.close()


def test_a_torn_last_transaction_is_not_damage(tmp_path: Path, key: bytes, clock: Clock) -> None:
    """Power lost while the last commit was being written: SQLite drops it, as it must."""
    db = tmp_path / "data" / "outbox.sqlite3"
    ids = crash_image(db, key, clock)
    wal_file = db.with_name(db.name + "-wal")
    wal = bytearray(wal_file.read_bytes())
    commits = _commit_frames(bytes(wal))
    torn = commits[-2] + 1  # the first frame of the last transaction
    assert torn < commits[-1]
    wal[32 + torn * FRAME + 24 : 32 + (torn + 1) * FRAME] = bytes(PAGE)
    wal_file.write_bytes(bytes(wal))
    assert inspect_wal(wal_file, db) is None
    opened = open_outbox(db, key, clock)
    try:
        assert opened.reason is None
        assert sorted(i.id for i in opened.outbox.items(limit=1000)) == sorted(ids[:-1])
    finally:
        opened.outbox.close()


@pytest.mark.parametrize("offset", [2, 17, 26], ids=["magic", "salt", "checksum"])
def test_a_damaged_wal_header_is_quarantined(
    tmp_path: Path, key: bytes, clock: Clock, offset: int
) -> None:
    db = tmp_path / "data" / "outbox.sqlite3"
    crash_image(db, key, clock)
    wal_file = db.with_name(db.name + "-wal")
    wal = bytearray(wal_file.read_bytes())
    wal[offset] ^= 0xFF
    wal_file.write_bytes(bytes(wal))
    problem = inspect_wal(wal_file, db)
    assert problem is not None and "header" in problem
    opened = open_outbox(db, key, clock)
    opened.outbox.close()
    assert opened.reason is QuarantineReason.WAL_DAMAGED
    assert db.with_name(f"{db.name}.corrupt-{STAMP}-wal").read_bytes() == bytes(wal)


def test_a_wrong_key_is_not_damage(db: Path, key: bytes, clock: Clock) -> None:
    ids = healthy_outbox(db, key, clock)
    before = files_in(db.parent)
    with pytest.raises(WrongKeyError):
        open_outbox(db, bytes(32), clock)
    assert files_in(db.parent) == before
    opened = open_outbox(db, key, clock)
    try:
        assert opened.reason is None and opened.outbox.counts()["queued"] == len(ids)
    finally:
        opened.outbox.close()


def test_a_newer_schema_is_not_damage(db: Path, key: bytes, clock: Clock) -> None:
    healthy_outbox(db, key, clock)
    conn = sqlite3.connect(db)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.commit()
    conn.close()
    before = files_in(db.parent)
    with pytest.raises(SchemaTooNewError):
        open_outbox(db, key, clock)
    assert files_in(db.parent) == before


def test_quarantine_never_overwrites(db: Path, key: bytes, clock: Clock) -> None:
    db.write_bytes(b"first damage " * 100)
    first = open_outbox(db, key, clock)
    first.outbox.close()
    db.write_bytes(b"second damage " * 100)
    (db.with_name(db.name + "-shm")).write_bytes(b"an index")
    second = open_outbox(db, key, clock)  # the same second by the clock
    second.outbox.close()
    assert first.quarantined == db.with_name(f"{db.name}.corrupt-{STAMP}")
    assert second.quarantined == db.with_name(f"{db.name}.corrupt-{STAMP}-1")
    assert first.quarantined.read_bytes() == b"first damage " * 100
    assert second.quarantined is not None
    assert second.quarantined.read_bytes() == b"second damage " * 100
    assert db.with_name(f"{db.name}.corrupt-{STAMP}-1-shm").read_bytes() == b"an index"


def test_quarantine_moves_only_what_exists(tmp_path: Path, clock: Clock) -> None:
    db = tmp_path / "outbox.sqlite3"
    db.write_bytes(b"x")
    (tmp_path / "outbox.sqlite3-shm").write_bytes(b"s")
    (tmp_path / "unrelated.sqlite3").write_bytes(b"u")
    moved = quarantine(db, clock)
    assert sorted(p.name for p in moved) == [
        f"outbox.sqlite3.corrupt-{STAMP}",
        f"outbox.sqlite3.corrupt-{STAMP}-shm",
    ]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [*(p.name for p in moved), "unrelated.sqlite3"]
    )
    assert os.path.lexists(db) is False
