"""The outbox on real SQLite files: lifecycle, durability settings, encryption, concurrency."""

from __future__ import annotations

import json
import os
import sqlite3
import stat
import threading
import uuid
from pathlib import Path

import pytest

from offline_queue.errors import (
    DuplicateItemError,
    InvalidTransitionError,
    KeyFileError,
    OutboxCorruptError,
    SchemaTooNewError,
    UnknownItemError,
    WrongKeyError,
)
from offline_queue.keys import KEY_SIZE, load_or_create_key
from offline_queue.outbox import SCHEMA_VERSION, UNDECRYPTABLE, Outbox, State
from tests.fixtures.outbox import FakeClock

NAME = "张三丰"
ID_NUMBER = "11010519491231002X"
ADDRESS = "北京市朝阳区建国路88号"


def body(item_id: str = "x") -> bytes:
    return json.dumps(
        {
            "submission_id": item_id,
            "service_id": "residence-permit",
            "applicant": {"name": NAME, "id_number": ID_NUMBER, "address": ADDRESS},
            "answers": {"phone": "13800138000"},
        },
        ensure_ascii=False,
    ).encode("utf-8")


def summary(number: str = "K01-20261123-0001") -> bytes:
    return json.dumps(
        {"receipt_number": number, "service_id": "residence-permit", "name": "张**"},
        ensure_ascii=False,
    ).encode("utf-8")


def test_lifecycle_enqueue_claim_deliver(outbox: Outbox, clock: FakeClock) -> None:
    item_id = outbox.enqueue("submission", body(), summary())
    assert uuid.UUID(item_id).version == 7
    assert outbox.counts()["queued"] == 1
    assert outbox.pending_count() == 1

    item = outbox.claim_next()
    assert item is not None
    assert (item.id, item.kind, item.payload, item.attempts) == (item_id, "submission", body(), 1)
    assert item.created_at == clock.now
    assert outbox.state_of(item_id) is State.SENDING
    assert outbox.claim_next() is None  # the only row is in flight
    assert outbox.pending_count() == 1

    outbox.mark_delivered(item_id, b'{"status": "received"}')
    assert outbox.state_of(item_id) is State.DELIVERED
    assert outbox.pending_count() == 0
    assert outbox.counts() == {
        "queued": 0,
        "sending": 0,
        "delivered": 1,
        "rejected": 0,
        "needs_attention": 0,
    }
    assert outbox.get_response(item_id) == b'{"status": "received"}'
    # A second acknowledgement (a resend's answer) keeps the first response.
    outbox.mark_delivered(item_id, b"{}")
    assert outbox.get_response(item_id) == b'{"status": "received"}'


def test_given_item_id_is_kept_and_duplicates_refused(outbox: Outbox) -> None:
    given = "0192f0c4-0000-7000-8000-000000000001"
    assert outbox.enqueue("submission", body("a"), summary(), item_id=given) == given
    with pytest.raises(DuplicateItemError):
        outbox.enqueue("submission", body("b"), summary(), item_id=given)
    assert outbox.counts()["queued"] == 1


def test_oldest_first(outbox: Outbox, clock: FakeClock) -> None:
    ids = []
    for n in range(5):
        ids.append(outbox.enqueue("submission", body(str(n)), summary()))
        clock.advance(1)
    claimed = []
    while (item := outbox.claim_next()) is not None:
        claimed.append(item.id)
    assert claimed == ids


def test_backoff_is_respected(outbox: Outbox, clock: FakeClock) -> None:
    first = outbox.enqueue("submission", body("1"), summary())
    clock.advance(1)
    second = outbox.enqueue("submission", body("2"), summary())
    item = outbox.claim_next()
    assert item is not None and item.id == first
    outbox.mark_retry(first, "connection_failed", 30.0)
    assert outbox.next_due_at() == pytest.approx(clock.now)  # the second row is due now
    # The first row waits out its delay; the younger, due row goes ahead of it.
    nxt = outbox.claim_next()
    assert nxt is not None and nxt.id == second
    assert outbox.claim_next() is None
    assert outbox.next_due_at() == pytest.approx(clock.now + 30.0)
    clock.advance(29.9)
    assert outbox.claim_next() is None
    clock.advance(0.1)
    again = outbox.claim_next()
    assert again is not None and again.id == first and again.attempts == 2
    info = {i.id: i for i in outbox.items()}
    assert info[first].last_error == "connection_failed"


def test_stale_sending_reset_on_reopen(tmp_path: Path, key: bytes, clock: FakeClock) -> None:
    path = tmp_path / "outbox.db"
    box = Outbox(path, key, clock=clock)
    item_id = box.enqueue("submission", body(), summary())
    assert box.claim_next() is not None
    box.close()  # as if the process died between claim and mark

    reopened = Outbox(path, key, clock=clock)
    try:
        assert reopened.state_of(item_id) is State.QUEUED
        item = reopened.claim_next()
        assert item is not None and item.id == item_id and item.attempts == 2
    finally:
        reopened.close()


def test_migrations_set_user_version_and_storage_pragmas(tmp_path: Path, key: bytes) -> None:
    path = tmp_path / "outbox.db"
    with Outbox(path, key) as box:
        pragmas = box.pragmas()
        assert pragmas["journal_mode"] == "wal"
        assert pragmas["synchronous"] == 2  # FULL
        assert pragmas["user_version"] == SCHEMA_VERSION == 3
        assert int(pragmas["busy_timeout"]) >= 1000
        assert pragmas["secure_delete"] == 1
    # Read back by an independent connection: the settings live in the file.
    conn = sqlite3.connect(path)
    try:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        columns = {row[1] for row in conn.execute("PRAGMA table_info(outbox)")}
        assert columns == {
            "id",
            "schema_version",
            "kind",
            "state",
            "attempts",
            "next_attempt_at",
            "last_error",
            "created_at",
            "updated_at",
            "delivered_at",
            "payload",
            "summary",
            "response",
        }
        index = [r[1] for r in conn.execute("PRAGMA index_list(outbox)")]
        assert "outbox_due" in index
        indexed = [r[2] for r in conn.execute("PRAGMA index_info(outbox_due)")]
        assert indexed == ["state", "next_attempt_at", "created_at"]
    finally:
        conn.close()


def test_a_first_version_outbox_gains_the_claim_index_and_keeps_its_rows(
    tmp_path: Path, key: bytes
) -> None:
    path = tmp_path / "outbox.db"
    with Outbox(path, key) as box:
        ids = [box.enqueue("submission", b"p%d" % n, b"s") for n in range(3)]
    conn = sqlite3.connect(path)  # as a client of schema 1 left it
    conn.execute("DROP TRIGGER attachments_purged_on_delivery")
    conn.execute("DROP TRIGGER attachments_deleted_with_row")
    conn.execute("DROP TABLE attachments")
    conn.execute("DROP INDEX outbox_claim")
    conn.execute("PRAGMA user_version = 1")
    conn.commit()
    conn.close()
    with Outbox(path, key) as box:
        assert box.pragmas()["user_version"] == SCHEMA_VERSION
        claimed = box.claim_batch(10)
        assert [item.id for item in claimed] == ids
    conn = sqlite3.connect(path)
    try:
        plan = " ".join(
            str(row[3])
            for row in conn.execute(
                "EXPLAIN QUERY PLAN SELECT id FROM outbox INDEXED BY outbox_claim"
                " WHERE state = 'queued' AND next_attempt_at <= 0 ORDER BY created_at, id LIMIT 5"
            )
        )
    finally:
        conn.close()
    assert "outbox_claim" in plan
    assert "TEMP B-TREE" not in plan  # rows come in claim order, no sort per claim


def test_newer_schema_is_refused(tmp_path: Path, key: bytes) -> None:
    path = tmp_path / "outbox.db"
    Outbox(path, key).close()
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.commit()
    conn.close()
    with pytest.raises(SchemaTooNewError):
        Outbox(path, key)


def test_key_file_created_0600_and_reused(tmp_path: Path) -> None:
    key_file = tmp_path / "private" / "outbox.key"
    key = load_or_create_key(key_file)
    assert len(key) == KEY_SIZE
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert load_or_create_key(key_file) == key
    assert [p.name for p in key_file.parent.iterdir()] == ["outbox.key"]  # no temp file left


def test_key_file_with_wide_mode_is_narrowed(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    key_file = tmp_path / "outbox.key"
    key = load_or_create_key(key_file)
    key_file.chmod(0o644)
    assert load_or_create_key(key_file) == key
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert "0600" in caplog.text


def test_key_file_of_wrong_size_is_an_error(tmp_path: Path) -> None:
    key_file = tmp_path / "outbox.key"
    fd = os.open(key_file, os.O_WRONLY | os.O_CREAT, 0o600)
    os.write(fd, b"short")
    os.close(fd)
    with pytest.raises(KeyFileError):
        load_or_create_key(key_file)


def test_wrong_key_is_a_clear_error(tmp_path: Path, key: bytes) -> None:
    path = tmp_path / "outbox.db"
    with Outbox(path, key) as box:
        box.enqueue("submission", body(), summary())
    other = load_or_create_key(tmp_path / "other.key")
    assert other != key
    with pytest.raises(WrongKeyError):
        Outbox(path, other)
    # The right key still opens it and the row is intact.
    with Outbox(path, key) as box:
        item = box.claim_next()
        assert item is not None and item.payload == body()


def test_a_blob_moved_to_another_row_does_not_decrypt(tmp_path: Path, key: bytes) -> None:
    path = tmp_path / "outbox.db"
    with Outbox(path, key) as box:
        first = box.enqueue("submission", body("1"), summary("K01-1"))
        second = box.enqueue("submission", body("2"), summary("K01-2"))
    conn = sqlite3.connect(path)
    conn.execute(
        "UPDATE outbox SET payload = (SELECT payload FROM outbox WHERE id = ?),"
        " summary = (SELECT summary FROM outbox WHERE id = ?) WHERE id = ?",
        (first, first, second),
    )
    conn.commit()
    conn.close()
    with Outbox(path, key) as box:
        with pytest.raises(OutboxCorruptError):
            box.get_summary(second)
        assert box.get_summary(first) == summary("K01-1")
        # The intact row is sent; the tampered one is set aside instead of blocking the queue.
        item = box.claim_next()
        assert item is not None and item.id == first
        assert box.claim_next() is None
        assert box.state_of(second) is State.NEEDS_ATTENTION
        infos = {i.id: i for i in box.items()}
        assert infos[second].last_error == UNDECRYPTABLE
        assert infos[second].summary is None


def test_a_summary_moved_into_the_payload_column_does_not_decrypt(
    tmp_path: Path, key: bytes
) -> None:
    path = tmp_path / "outbox.db"
    with Outbox(path, key) as box:
        item_id = box.enqueue("submission", body(), summary())
    conn = sqlite3.connect(path)
    conn.execute("UPDATE outbox SET payload = summary WHERE id = ?", (item_id,))
    conn.commit()
    conn.close()
    with Outbox(path, key) as box:
        assert box.claim_next() is None
        assert box.state_of(item_id) is State.NEEDS_ATTENTION


def _files(path: Path) -> list[Path]:
    return [p for p in (path, Path(f"{path}-wal"), Path(f"{path}-shm")) if p.exists()]


def _needles() -> list[bytes]:
    needles = []
    for text in (NAME, ID_NUMBER, ADDRESS, "13800138000"):
        needles += [text.encode("utf-8"), text.encode("utf-16-le"), text.encode("utf-16-be")]
    needles.append(json.dumps(NAME).encode("ascii"))  # the \\uXXXX escaped form
    return needles


def test_personal_data_is_not_in_the_files(tmp_path: Path, key: bytes) -> None:
    path = tmp_path / "outbox.db"
    box = Outbox(path, key)
    try:
        for n in range(3):
            box.enqueue("submission", body(str(n)), summary())
        item = box.claim_next()
        assert item is not None
        box.mark_retry(item.id, "connection_failed", 5.0)
        # While open: the db, its WAL and the shared-memory index as they are on disk now.
        files = _files(path)
        assert Path(f"{path}-wal") in files
        for file in files:
            data = file.read_bytes()
            for needle in _needles():
                assert needle not in data, f"{needle!r} found in {file.name}"
    finally:
        box.close()
    for file in _files(path):
        data = file.read_bytes()
        for needle in _needles():
            assert needle not in data, f"{needle!r} found in {file.name} after close"


def test_the_needle_search_would_find_plaintext(tmp_path: Path) -> None:
    """The byte search above can fail: the same rows in a plain SQLite file are found."""
    path = tmp_path / "plain.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE t (payload BLOB)")
    conn.execute("INSERT INTO t VALUES (?)", (body(),))
    conn.commit()
    conn.close()
    data = path.read_bytes()
    assert NAME.encode("utf-8") in data and ID_NUMBER.encode("ascii") in data


def test_payload_purged_after_delivery_summary_kept(tmp_path: Path, key: bytes) -> None:
    path = tmp_path / "outbox.db"
    with Outbox(path, key) as box:
        item_id = box.enqueue("submission", body(), summary())
        assert box.claim_next() is not None
        box.mark_delivered(item_id, b'{"ok": true}')
        assert box.get_summary(item_id) == summary()
        [info] = box.items()
        assert info.state is State.DELIVERED and info.summary == summary()
        assert info.delivered_at is not None
    conn = sqlite3.connect(path)
    payload, summary_blob = conn.execute(
        "SELECT payload, summary FROM outbox WHERE id = ?", (item_id,)
    ).fetchone()
    conn.close()
    assert payload is None
    assert summary_blob is not None and len(summary_blob) > len(summary())


def test_purge_delivered_keeps_recent_and_pending(outbox: Outbox, clock: FakeClock) -> None:
    old = outbox.enqueue("submission", body("old"), summary())
    assert outbox.claim_next() is not None
    outbox.mark_delivered(old, b"{}")
    clock.advance(10 * 86400)
    recent = outbox.enqueue("submission", body("recent"), summary())
    assert outbox.claim_next() is not None
    outbox.mark_delivered(recent, b"{}")
    waiting = outbox.enqueue("submission", body("waiting"), summary())
    clock.advance(86400)

    assert outbox.purge_delivered(older_than_s=7 * 86400) == 1
    assert outbox.get_summary(old) is None
    assert outbox.get_summary(recent) == summary()
    assert outbox.state_of(waiting) is State.QUEUED
    assert outbox.purge_delivered(older_than_s=7 * 86400) == 0


def test_rejected_needs_attention_and_requeue(outbox: Outbox, clock: FakeClock) -> None:
    rejected = outbox.enqueue("submission", body("r"), summary())
    conflicted = outbox.enqueue("submission", body("c"), summary())
    assert outbox.claim_next() is not None
    outbox.mark_rejected(rejected, "validation_failed|phone:pattern", b'{"error": "x"}')
    assert outbox.claim_next() is not None
    outbox.mark_needs_attention(conflicted, "idempotency_conflict")
    assert outbox.counts()["rejected"] == 1
    assert outbox.counts()["needs_attention"] == 1
    assert outbox.pending_count() == 0
    assert outbox.next_due_at() is None
    assert outbox.get_response(rejected) == b'{"error": "x"}'

    with pytest.raises(InvalidTransitionError):
        outbox.mark_retry(rejected, "x", 1.0)
    clock.advance(5)
    outbox.requeue(conflicted)  # staff: "retry now"
    item = outbox.claim_next()
    assert item is not None and item.id == conflicted and item.attempts == 2
    # The payload of a row that was not delivered is still there.
    assert item.payload == body("c")
    with pytest.raises(InvalidTransitionError):
        outbox.requeue(item.id)  # in flight
    outbox.mark_delivered(item.id, b"{}")
    with pytest.raises(InvalidTransitionError):
        outbox.requeue(item.id)
    with pytest.raises(UnknownItemError):
        outbox.mark_retry("no-such-id", "x", 1.0)


def test_items_filter_and_states(outbox: Outbox, clock: FakeClock) -> None:
    a = outbox.enqueue("submission", body("a"), summary("A"))
    clock.advance(1)
    b = outbox.enqueue("submission", body("b"), summary("B"))
    assert outbox.claim_next() is not None
    outbox.mark_delivered(a, b"{}")
    assert [i.id for i in outbox.items()] == [a, b]
    assert [i.id for i in outbox.items(states=[State.QUEUED])] == [b]
    assert [i.id for i in outbox.items(states=["delivered"])] == [a]
    assert outbox.items(states=[]) == []
    assert [i.id for i in outbox.items(limit=1, offset=1)] == [b]
    assert outbox.items(states=[State.QUEUED])[0].summary == summary("B")


def test_bring_forward_makes_waiting_rows_due(outbox: Outbox, clock: FakeClock) -> None:
    item_id = outbox.enqueue("submission", body(), summary())
    assert outbox.claim_next() is not None
    outbox.mark_retry(item_id, "connection_failed", 600.0)
    assert outbox.claim_next() is None
    assert outbox.bring_forward() == 1
    item = outbox.claim_next()
    assert item is not None and item.id == item_id


def test_two_threads_never_claim_the_same_row(tmp_path: Path, key: bytes) -> None:
    path = tmp_path / "outbox.db"
    workers, rounds = 4, 50
    with Outbox(path, key) as box:
        ids = {box.enqueue("submission", body(str(n)), summary()) for n in range(workers * rounds)}
    # Two Outbox objects (two connections each, as two processes would have), two threads each.
    # Every round all four claim at the same moment, so the claims really contend.
    first, second = Outbox(path, key), Outbox(path, key)
    claimed: list[list[str | None]] = [[] for _ in range(workers)]
    barrier = threading.Barrier(workers)
    errors: list[BaseException] = []

    def worker(box: Outbox, out: list[str | None]) -> None:
        try:
            for _ in range(rounds):
                barrier.wait(timeout=10)
                item = box.claim_next()
                out.append(None if item is None else item.id)
        except BaseException as exc:  # reported below; a thread cannot fail the test itself
            errors.append(exc)
            barrier.abort()

    threads = [
        threading.Thread(target=worker, args=(box, out))
        for box, out in zip((first, first, second, second), claimed, strict=True)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    first.close()
    second.close()
    assert not errors
    everything = [i for out in claimed for i in out]
    assert None not in everything  # a row claimed twice would leave another claim empty-handed
    assert len(everything) == len(set(everything)) == len(ids)
    assert set(everything) == ids


def test_not_a_database_is_reported_as_corrupt(tmp_path: Path, key: bytes) -> None:
    path = tmp_path / "outbox.db"
    path.write_bytes(b"this is not a database, just text " * 200)
    with pytest.raises(OutboxCorruptError):
        Outbox(path, key)


def test_wrong_key_length_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        Outbox(tmp_path / "outbox.db", b"\x00" * 16)


def test_closed_outbox_refuses_work(outbox: Outbox) -> None:
    outbox.close()
    outbox.close()
    with pytest.raises(Exception, match="closed"):
        outbox.enqueue("submission", body(), summary())
