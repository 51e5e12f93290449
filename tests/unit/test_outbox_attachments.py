"""Attachments in the outbox, on real SQLite files: limits, all-or-nothing with their row, order,
tamper and swap detection, encryption at rest, purge after delivery, migration of older files."""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from offline_queue.errors import (
    AttachmentLimitError,
    AttachmentsTooLargeError,
    AttachmentTooLargeError,
    OutboxError,
    OutboxFullError,
    TooManyAttachmentsError,
)
from offline_queue.outbox import (
    MIGRATIONS,
    SCHEMA_VERSION,
    UNDECRYPTABLE,
    Attachment,
    AttachmentLimits,
    Outbox,
    Settlement,
    State,
    _attachment_data_column,
    _Sealer,
)
from tests.fixtures.outbox import FakeClock
from tests.fixtures.tmpfs import SmallDisk

NAME = "王秀英"
ID_NUMBER = "11010519491231002X"
PNG_MARKER = b"PLAINTEXT-MATERIAL-PHOTO-7f3c"


def png(size: int = 50_000, seed: int = 1) -> bytes:
    """PNG-like bytes: the signature, a marker that must never reach the disk in clear, noise."""
    noise = hashlib.shake_256(b"%d" % seed).digest(size)
    return (b"\x89PNG\r\n\x1a\n" + PNG_MARKER + noise)[:size]


def signature_svg() -> bytes:
    return (
        '<svg xmlns="http://www.w3.org/2000/svg" width="300" height="100">'
        f"<title>{NAME} {ID_NUMBER}</title><path d='M10 80 C 40 10, 65 10, 95 80'/></svg>"
    ).encode()


def files() -> tuple[Attachment, ...]:
    return (
        Attachment(f"{NAME}-hukou-1.png", "image/png", png(seed=1)),
        Attachment("signature.svg", "image/svg+xml", signature_svg()),
        Attachment("hukou-2.png", "image/png", png(size=7_000, seed=2)),
    )


def payload(n: int = 0) -> bytes:
    return json.dumps({"n": n, "applicant": {"name": NAME}}, ensure_ascii=False).encode()


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "outbox.db"


@pytest.fixture
def outbox(path: Path, key: bytes, clock: FakeClock) -> Iterator[Outbox]:
    box = Outbox(path, key, clock=clock)
    yield box
    box.close()


def raw(path: Path) -> sqlite3.Connection:
    """A connection of its own, as a tool (or someone tampering with the file) would open."""
    return sqlite3.connect(path, isolation_level=None)


def stored_files(path: Path, item_id: str | None = None) -> list[tuple[str, int]]:
    conn = raw(path)
    try:
        query = "SELECT item_id, ordinal FROM attachments"
        if item_id is None:
            return [(r[0], r[1]) for r in conn.execute(query + " ORDER BY item_id, ordinal")]
        rows = conn.execute(query + " WHERE item_id = ? ORDER BY ordinal", (item_id,))
        return [(r[0], r[1]) for r in rows]
    finally:
        conn.close()


def disk_files(path: Path) -> list[Path]:
    suffixes = ("", "-wal", "-shm", "-journal")
    return [p for p in (Path(f"{path}{s}") for s in suffixes) if p.exists()]


def disk_bytes(path: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in disk_files(path)}


# -- the basics ----------------------------------------------------------------------------------


def test_files_come_back_with_their_row_in_order(outbox: Outbox, clock: FakeClock) -> None:
    with_files = outbox.enqueue("submission", payload(1), b"{}", attachments=files())
    clock.advance(1)
    without = outbox.enqueue("submission", payload(2), b"{}")
    clock.advance(1)
    reversed_files = tuple(reversed(files()))
    backwards = outbox.enqueue("submission", payload(3), b"{}", attachments=reversed_files)

    first = outbox.claim_next()
    assert first is not None and first.id == with_files
    assert first.payload == payload(1)
    assert first.attachments == files()
    assert [f.name for f in first.attachments] == [
        f"{NAME}-hukou-1.png",
        "signature.svg",
        "hukou-2.png",
    ]
    rest = outbox.claim_batch(10)
    assert [(i.id, i.attachments) for i in rest] == [(without, ()), (backwards, reversed_files)]
    # The queue screen's view is unchanged by files.
    assert outbox.counts()["sending"] == 3
    assert [i.id for i in outbox.items()] == [with_files, without, backwards]


@pytest.mark.parametrize(
    ("name", "content_type", "data", "error"),
    [
        ("a.png", "image/png", b"", ValueError),
        ("", "image/png", b"x", ValueError),
        ("a" * 256, "image/png", b"x", ValueError),
        ("a\nb.png", "image/png", b"x", ValueError),
        ("a.png", "png", b"x", ValueError),
        ("a.png", "image/png; charset=x", b"x", ValueError),
        ("a.png", "image/png", bytearray(b"x"), TypeError),
    ],
)
def test_an_attachment_that_is_not_a_file_is_refused(
    name: str, content_type: str, data: bytes, error: type[Exception]
) -> None:
    with pytest.raises(error):
        Attachment(name, content_type, data)


def test_attachment_repr_shows_no_data() -> None:
    text = repr(Attachment("signature.svg", "image/svg+xml", signature_svg()))
    assert "svg" in text and NAME not in text and ID_NUMBER not in text


# -- limits --------------------------------------------------------------------------------------

LIMITS = AttachmentLimits(max_file_bytes=1_000, max_total_bytes=2_500, max_files=3)


def small(n: int, size: int = 900) -> Attachment:
    return Attachment(f"f{n}.png", "image/png", png(size=size, seed=n))


LIMIT_CASES = {
    "one file too large": (
        (small(0, 1_001),),
        (AttachmentTooLargeError, "attachment_too_large", 1_000, 1_001),
    ),
    "too large together": (
        (small(0), small(1), small(2, 701)),
        (AttachmentsTooLargeError, "attachments_too_large", 2_500, 2_501),
    ),
    "too many": (
        tuple(small(n, 10) for n in range(4)),
        (TooManyAttachmentsError, "too_many_attachments", 3, 4),
    ),
}


@pytest.mark.parametrize(("attachments", "expected"), LIMIT_CASES.values(), ids=LIMIT_CASES.keys())
def test_limits_are_refused_before_anything_is_written(
    path: Path,
    key: bytes,
    attachments: tuple[Attachment, ...],
    expected: tuple[type[AttachmentLimitError], str, int, int],
) -> None:
    error, code, limit, actual = expected
    with Outbox(path, key, attachment_limits=LIMITS) as box:
        kept = box.enqueue("submission", payload(), b"{}", attachments=(small(9),))
        before = disk_bytes(path)
        with pytest.raises(error) as caught:
            box.enqueue("submission", payload(), b"{}", attachments=attachments)
        assert isinstance(caught.value, OutboxError)
        assert (caught.value.code, caught.value.limit, caught.value.actual) == (code, limit, actual)
        # Not a byte of the database or its WAL changed: nothing was begun, let alone rolled back.
        assert disk_bytes(path) == before
        assert box.counts()["queued"] == 1
        assert stored_files(path) == [(kept, 0)]


def test_files_exactly_at_the_limits_are_taken(path: Path, key: bytes) -> None:
    at_limits = (small(0, 1_000), small(1, 1_000), small(2, 500))
    with Outbox(path, key, attachment_limits=LIMITS) as box:
        item_id = box.enqueue("submission", payload(), b"{}", attachments=at_limits)
        item = box.claim_next()
        assert item is not None and item.id == item_id and item.attachments == at_limits


def test_the_default_limits_take_a_five_mib_file_and_refuse_one_byte_more(
    outbox: Outbox,
) -> None:
    limit = outbox.attachment_limits.max_file_bytes
    assert limit == 5 * 1024 * 1024
    outbox.enqueue("submission", payload(), b"{}", attachments=(small(0, limit),))
    with pytest.raises(AttachmentTooLargeError):
        outbox.enqueue("submission", payload(), b"{}", attachments=(small(0, limit + 1),))
    assert outbox.counts()["queued"] == 1


# -- all or nothing ------------------------------------------------------------------------------


def test_a_failure_on_the_third_file_leaves_neither_row_nor_files(
    path: Path, outbox: Outbox
) -> None:
    item_id = "0192f0c4-0000-7000-8000-00000000a003"
    # A stray file row already holds this id's third place, so the third INSERT of the enqueue
    # fails on the primary key after the row and two files went in.
    conn = raw(path)
    conn.execute(
        "INSERT INTO attachments (item_id, ordinal, name, content_type, size, sha256, data)"
        " VALUES (?, 2, x'00', 'image/png', 1, x'00', x'00')",
        (item_id,),
    )
    conn.close()
    with pytest.raises(OutboxError):
        outbox.enqueue("submission", payload(), b"{}", item_id=item_id, attachments=files())
    assert outbox.state_of(item_id) is None
    assert outbox.counts() == dict.fromkeys(outbox.counts(), 0)
    assert stored_files(path, item_id) == [(item_id, 2)]  # only the stray row, none of ours

    conn = raw(path)
    conn.execute("DELETE FROM attachments WHERE item_id = ?", (item_id,))
    conn.close()
    outbox.enqueue("submission", payload(), b"{}", item_id=item_id, attachments=files())
    item = outbox.claim_next()
    assert item is not None and item.id == item_id and item.attachments == files()


def test_a_disk_that_fills_up_midway_stores_nothing(tmpfs_disk: SmallDisk, key: bytes) -> None:
    path = tmpfs_disk.path / "outbox.sqlite3"
    big = tuple(Attachment(f"page-{n}.png", "image/png", png(300_000, seed=n)) for n in range(3))
    with Outbox(path, key) as box:
        kept = box.enqueue("submission", payload(0), b"{}", attachments=big[:1])
        with tmpfs_disk.full(leave_bytes=450_000):  # room for a file or so, not for three
            with pytest.raises(OutboxFullError):
                box.enqueue("submission", payload(1), b"{}", attachments=big)
            assert box.counts()["queued"] == 1
        assert stored_files(path) == [(kept, 0)]
        again = box.enqueue("submission", payload(1), b"{}", attachments=big)
        claimed = box.claim_batch(10)
        assert [(i.id, i.attachments) for i in claimed] == [(kept, big[:1]), (again, big)]
    conn = raw(path)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    finally:
        conn.close()


# -- tampering -----------------------------------------------------------------------------------


def _swap_places(conn: sqlite3.Connection, victim: str, donor: str) -> None:
    move = "UPDATE attachments SET ordinal = ? WHERE item_id = ? AND ordinal = ?"
    conn.execute(move, (99, victim, 0))
    conn.execute(move, (0, victim, 1))
    conn.execute(move, (1, victim, 99))


def _copy(column: str, source: tuple[str, int]) -> Tamper:
    def tamper(conn: sqlite3.Connection, victim: str, donor: str) -> None:
        item = {"victim": victim, "donor": donor}[source[0]]
        conn.execute(
            f"UPDATE attachments SET {column} = (SELECT {column} FROM attachments"  # noqa: S608 - column names are literals
            " WHERE item_id = ? AND ordinal = ?) WHERE item_id = ? AND ordinal = 0",
            (item, source[1], victim),
        )

    return tamper


def _sql(statement: str) -> Tamper:
    def tamper(conn: sqlite3.Connection, victim: str, donor: str) -> None:
        conn.execute(statement, {"victim": victim, "donor": donor})

    return tamper


def _flip_a_byte(conn: sqlite3.Connection, victim: str, donor: str) -> None:
    (data,) = conn.execute(
        "SELECT data FROM attachments WHERE item_id = ? AND ordinal = 0", (victim,)
    ).fetchone()
    flipped = bytearray(data)
    flipped[len(flipped) // 2] ^= 0x01
    conn.execute(
        "UPDATE attachments SET data = ? WHERE item_id = ? AND ordinal = 0",
        (bytes(flipped), victim),
    )


Tamper = Callable[[sqlite3.Connection, str, str], None]

# What was done to the first row's files, and whether the second row (the donor) is hurt too.
TAMPERING: dict[str, tuple[Tamper, bool]] = {
    "files swapped within a row": (_swap_places, False),
    "data swapped within a row": (_copy("data", ("victim", 2)), False),
    "name swapped within a row": (_copy("name", ("victim", 1)), False),
    "digest swapped within a row": (_copy("sha256", ("victim", 1)), False),
    "data copied from another row": (_copy("data", ("donor", 0)), False),
    "file moved from another row": (
        _sql(
            "UPDATE attachments SET item_id = :victim, ordinal = 3"
            " WHERE item_id = :donor AND ordinal = 0"
        ),
        True,  # the donor lost its only file
    ),
    "last file dropped": (
        _sql("DELETE FROM attachments WHERE item_id = :victim AND ordinal = 2"),
        False,
    ),
    "every file dropped": (_sql("DELETE FROM attachments WHERE item_id = :victim"), False),
    "content type changed": (
        _sql(
            "UPDATE attachments SET content_type = 'text/html'"
            " WHERE item_id = :victim AND ordinal = 1"
        ),
        False,
    ),
    "size changed": (
        _sql("UPDATE attachments SET size = size - 1 WHERE item_id = :victim AND ordinal = 1"),
        False,
    ),
    "a byte flipped": (_flip_a_byte, False),
}


@pytest.mark.parametrize(("tamper", "donor_hurt"), TAMPERING.values(), ids=TAMPERING.keys())
def test_a_tampered_file_sets_its_row_aside_and_the_rest_go_on(
    path: Path, key: bytes, clock: FakeClock, tamper: Tamper, donor_hurt: bool
) -> None:
    donor_files = (Attachment("other.png", "image/png", png(seed=9)),)
    with Outbox(path, key, clock=clock) as box:
        victim = box.enqueue("submission", payload(1), b"{}", attachments=files())
        clock.advance(1)
        donor = box.enqueue("submission", payload(2), b"{}", attachments=donor_files)
        clock.advance(1)
        plain = box.enqueue("submission", payload(3), b"{}")
    conn = raw(path)
    tamper(conn, victim, donor)
    conn.close()
    with Outbox(path, key, clock=clock) as box:
        claimed = {i.id: i.attachments for i in box.claim_batch(10)}
        set_aside = {i.id: i.last_error for i in box.items(states=[State.NEEDS_ATTENTION])}
    assert set_aside == (
        {victim: UNDECRYPTABLE, donor: UNDECRYPTABLE} if donor_hurt else {victim: UNDECRYPTABLE}
    )
    assert claimed == ({plain: ()} if donor_hurt else {donor: donor_files, plain: ()})


def test_a_row_set_aside_keeps_its_files_for_recovery(path: Path, key: bytes) -> None:
    with Outbox(path, key) as box:
        victim = box.enqueue("submission", payload(1), b"{}", attachments=files())
    conn = raw(path)
    TAMPERING["content type changed"][0](conn, victim, "")
    conn.close()
    with Outbox(path, key) as box:
        assert box.claim_next() is None
        assert box.state_of(victim) is State.NEEDS_ATTENTION
    assert len(stored_files(path, victim)) == 3


def test_data_that_differs_from_its_digest_is_set_aside(path: Path, key: bytes) -> None:
    """Bytes sealed with the right key (a writer gone wrong) must still have the digest taken
    when the file was queued."""
    with Outbox(path, key) as box:
        victim = box.enqueue("submission", payload(), b"{}", attachments=files())
    original = files()[0]
    other = original.data[:-1] + bytes([original.data[-1] ^ 0x01])  # same size and type
    column = _attachment_data_column(0, len(other), original.content_type)
    conn = raw(path)
    conn.execute(
        "UPDATE attachments SET data = ? WHERE item_id = ? AND ordinal = 0",
        (_Sealer(key).seal(victim, column, other), victim),
    )
    conn.close()
    with Outbox(path, key) as box:
        assert box.claim_next() is None
        assert box.state_of(victim) is State.NEEDS_ATTENTION


# -- encryption at rest --------------------------------------------------------------------------


def needles() -> list[bytes]:
    found = [PNG_MARKER, b"<svg xmlns", b"hukou-1.png", b"signature.svg"]
    for text in (NAME, ID_NUMBER):
        found += [text.encode("utf-8"), text.encode("utf-16-le"), text.encode("utf-16-be")]
    found.append(json.dumps(NAME).encode("ascii"))
    return found


def assert_nothing_in_clear(path: Path, when: str) -> None:
    searched = disk_files(path)
    assert searched, "no database files to search"
    for file in searched:
        data = file.read_bytes()
        for needle in needles():
            assert needle not in data, f"{needle!r} found in {file.name} {when}"


def test_queued_files_are_not_in_the_database_files_in_clear(path: Path, key: bytes) -> None:
    box = Outbox(path, key)
    try:
        for n in range(3):
            box.enqueue("submission", payload(n), b"{}", attachments=files())
        item = box.claim_next()
        assert item is not None and item.attachments == files()  # the files are really there
        box.mark_retry(item.id, "connection_failed", 5.0)
        assert Path(f"{path}-wal") in disk_files(path)
        assert_nothing_in_clear(path, "while open")
    finally:
        box.close()
    assert_nothing_in_clear(path, "after close")


def test_the_search_would_find_the_files_in_a_plain_database(tmp_path: Path) -> None:
    """The search above can fail: the same files in a plain SQLite table are found."""
    plain = tmp_path / "plain.db"
    conn = sqlite3.connect(plain)
    conn.execute("CREATE TABLE t (name TEXT, data BLOB)")
    conn.executemany("INSERT INTO t VALUES (?, ?)", [(f.name, f.data) for f in files()])
    conn.commit()
    conn.close()
    data = plain.read_bytes()
    found = [n for n in needles() if n in data]
    assert PNG_MARKER in found and NAME.encode() in found and ID_NUMBER.encode() in found


# -- after delivery ------------------------------------------------------------------------------


def sealed_data(path: Path, item_id: str) -> list[bytes]:
    conn = raw(path)
    try:
        rows = conn.execute(
            "SELECT data FROM attachments WHERE item_id = ? ORDER BY ordinal", (item_id,)
        )
        return [bytes(r[0]) for r in rows]
    finally:
        conn.close()


def test_every_way_of_delivering_purges_the_files(path: Path, key: bytes, clock: FakeClock) -> None:
    with Outbox(path, key, clock=clock) as box:
        ids = [box.enqueue("submission", payload(n), b"{}", attachments=files()) for n in range(4)]
        sealed = {i: sealed_data(path, i) for i in ids}
        assert all(len(s) == 3 for s in sealed.values())
        assert len(box.claim_batch(10)) == 4
        box.mark_delivered(ids[0], b"{}")
        box.mark_delivered_many([(ids[1], b"{}")])
        box.settle_many(
            [
                Settlement(ids[2], State.DELIVERED, response=b"{}"),
                Settlement(ids[3], State.QUEUED, "timeout", delay_s=1.0),
            ]
        )
        assert stored_files(path) == [(ids[3], 0), (ids[3], 1), (ids[3], 2)]
        assert box.counts()["delivered"] == 3
        assert [box.get_summary(i) for i in ids[:3]] == [b"{}"] * 3  # the receipt data stays
        clock.advance(2)
        item = box.claim_next()
        assert item is not None and item.id == ids[3] and item.attachments == files()
        box.mark_delivered(ids[3], b"{}")
        assert stored_files(path) == []
    # Closing checkpoints the WAL into the file: the freed pages were zeroed (secure_delete), so
    # not even the sealed bytes of a delivered file are left behind.
    assert not Path(f"{path}-wal").exists()
    data = path.read_bytes()
    for item_id, blobs in sealed.items():
        for blob in blobs:
            assert blob[13:77] not in data, f"sealed file data of {item_id} left in the file"


def test_rejected_rows_keep_their_files_and_a_retry_sends_them(outbox: Outbox, path: Path) -> None:
    item_id = outbox.enqueue("submission", payload(), b"{}", attachments=files())
    assert outbox.claim_next() is not None
    outbox.mark_rejected(item_id, "validation_failed|attachments.1:sha256")
    assert len(stored_files(path, item_id)) == 3
    outbox.requeue(item_id)
    item = outbox.claim_next()
    assert item is not None and item.attachments == files()


def test_deleting_a_row_deletes_its_files(path: Path, key: bytes, clock: FakeClock) -> None:
    with Outbox(path, key, clock=clock) as box:
        delivered = box.enqueue("submission", payload(1), b"{}", attachments=files())
        waiting = box.enqueue("submission", payload(2), b"{}", attachments=files())
        other = box.enqueue("submission", payload(3), b"{}", attachments=files()[:1])
        assert box.claim_batch(1) != []
        box.mark_delivered(delivered, b"{}")
        clock.advance(30 * 86400)
        assert box.purge_delivered(older_than_s=86400) == 1
        assert box.state_of(delivered) is None
    # A row deleted by any connection, even one outside the outbox, takes its files along.
    conn = raw(path)
    conn.execute("DELETE FROM outbox WHERE id = ?", (waiting,))
    conn.close()
    assert stored_files(path) == [(other, 0)]


# -- budget --------------------------------------------------------------------------------------


def test_a_claims_byte_budget_counts_the_files(outbox: Outbox, clock: FakeClock) -> None:
    ids = []
    for n in range(4):
        file = Attachment(f"f{n}.png", "image/png", png(10_000, seed=n))
        ids.append(outbox.enqueue("submission", payload(n), b"{}", attachments=(file,)))
        clock.advance(1)
    row = len(payload(0)) + 10_000
    assert [i.id for i in outbox.claim_batch(10, max_bytes=2 * row + 10)] == ids[:2]
    # The oldest row goes whatever its size, so one larger than the budget is never stuck.
    assert [i.id for i in outbox.claim_batch(10, max_bytes=100)] == ids[2:3]
    assert [i.id for i in outbox.claim_batch(10)] == ids[3:]


# -- migration -----------------------------------------------------------------------------------


def schema(conn: sqlite3.Connection) -> list[tuple[str, str, str]]:
    return sorted(
        (str(r[0]), str(r[1]), " ".join(str(r[2]).split()))
        for r in conn.execute("SELECT type, name, sql FROM sqlite_master WHERE sql IS NOT NULL")
    )


def test_a_schema_two_outbox_gains_attachments_and_keeps_its_rows(
    path: Path, key: bytes, tmp_path: Path
) -> None:
    with Outbox(path, key) as box:
        ids = [box.enqueue("submission", payload(n), b"{}") for n in range(3)]
        box.mark_retry(ids[1], "timeout", 0.0)  # claims need not be fresh: any state migrates
    conn = raw(path)  # back to what a client of schema 2 left behind
    conn.execute("DROP TRIGGER attachments_purged_on_delivery")
    conn.execute("DROP TRIGGER attachments_deleted_with_row")
    conn.execute("DROP TABLE attachments")
    conn.execute("PRAGMA user_version = 2")
    reference = raw(tmp_path / "schema2.db")
    for step in MIGRATIONS[:2]:
        step(reference)
    assert schema(conn) == schema(reference)  # exactly the released schema 2, nothing left over
    reference.close()
    conn.close()

    with Outbox(path, key) as box:
        assert box.pragmas()["user_version"] == SCHEMA_VERSION == 3
        claimed = box.claim_batch(10)
        assert [(i.id, i.payload, i.attachments) for i in claimed] == [
            (ids[n], payload(n), ()) for n in range(3)
        ]
        new = box.enqueue("submission", payload(9), b"{}", attachments=files())
        box.mark_delivered_many([(i, b"{}") for i in ids])
        item = box.claim_next()
        assert item is not None and item.id == new and item.attachments == files()
        box.mark_delivered(new, b"{}")
        assert stored_files(path) == []


def test_the_empty_file_gets_the_whole_schema(path: Path, key: bytes) -> None:
    Outbox(path, key).close()
    conn = raw(path)
    try:
        columns = [r[1] for r in conn.execute("PRAGMA table_info(attachments)")]
        triggers = {
            r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'")
        }
    finally:
        conn.close()
    assert columns == ["item_id", "ordinal", "name", "content_type", "size", "sha256", "data"]
    assert triggers == {"attachments_purged_on_delivery", "attachments_deleted_with_row"}


def test_files_of_random_bytes_round_trip(outbox: Outbox) -> None:
    blobs = tuple(
        Attachment(f"r{n}.bin", "application/octet-stream", os.urandom(n * 977 + 1))
        for n in range(5)
    )
    outbox.enqueue("submission", payload(), b"{}", attachments=blobs)
    item = outbox.claim_next()
    assert item is not None
    assert [f.sha256() for f in item.attachments] == [
        hashlib.sha256(b.data).hexdigest() for b in blobs
    ]
