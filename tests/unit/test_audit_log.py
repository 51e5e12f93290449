"""The audit log: appends chain and sign, tampering of every kind is found, nothing personal."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import itertools
import json
import re
import sqlite3
import stat
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from kiosk import audit_log
from kiosk.audit_log import (
    AUDIT_FILE,
    ZERO_HASH,
    AuditKind,
    AuditLog,
    Broken,
    check_details,
    entry_hash,
    entry_signing_input,
    looks_personal,
    open_audit_log,
    verify,
    verify_command,
)
from kiosk.i18n import current_language, set_language
from kiosk.terminal_auth import NotEnrolled

SUBMISSION = "0192f5a8-7c3e-7d4b-9a21-5c1e2f3a4b5c"
VALID_ID = "11010519491231002X"
CHINA = dt.timezone(dt.timedelta(hours=8))


class Clock:
    """A time that moves one second per reading: every entry gets its own, no sleeping."""

    def __init__(self) -> None:
        self.now = dt.datetime(2026, 11, 29, 9, 30, tzinfo=CHINA)
        self.lock = threading.Lock()

    def __call__(self) -> dt.datetime:
        with self.lock:
            self.now += dt.timedelta(seconds=1)
            return self.now


@pytest.fixture
def key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


@pytest.fixture
def log(tmp_path: Path, key: Ed25519PrivateKey) -> Iterator[AuditLog]:
    opened = AuditLog.in_data_dir(tmp_path, key, Clock())
    yield opened
    opened.close()


@pytest.fixture
def language() -> Iterator[None]:
    before = current_language()
    yield
    set_language(before)


def _fill(log: AuditLog, n: int = 5) -> None:
    log.append(AuditKind.SIGN_IN, "S0012")
    for i in range(n - 1):
        log.append(
            AuditKind.SUBMISSION,
            "S0012",
            {"submission_id": SUBMISSION, "receipt_number": f"K01-20261129-{i + 1:04d}"},
        )


def _tamper(path: Path, *statements: str | tuple[str, tuple[object, ...]]) -> None:
    """What someone with the file in hand can do: the append-only triggers are no obstacle."""
    conn = sqlite3.connect(path)
    try:
        conn.execute("DROP TRIGGER IF EXISTS entries_append_only_UPDATE")
        conn.execute("DROP TRIGGER IF EXISTS entries_append_only_DELETE")
        for statement in statements:
            sql, params = (statement, ()) if isinstance(statement, str) else statement
            conn.execute(sql, params)
        conn.commit()
    finally:
        conn.close()


def _row(path: Path, seq: int) -> tuple[object, ...]:
    conn = sqlite3.connect(path)
    try:
        row = conn.execute("SELECT * FROM entries WHERE seq = ?", (seq,)).fetchone()
    finally:
        conn.close()
    assert row is not None
    return tuple(row)


def _insert(path: Path, row: tuple[object, ...]) -> None:
    conn = sqlite3.connect(path)
    try:
        conn.execute("INSERT INTO entries VALUES (?, ?, ?, ?, ?, ?, ?, ?)", row)
        conn.commit()
    finally:
        conn.close()


def _broken(log: AuditLog, key: Ed25519PrivateKey) -> tuple[int | None, Broken | None]:
    result = verify(log.path, key.public_key())
    assert not result.ok
    return result.broken_seq, result.reason


# -- appending and verifying --------------------------------------------------------------------


def test_entries_chain_and_verify(log: AuditLog, key: Ed25519PrivateKey) -> None:
    _fill(log, 5)
    result = verify(log.path, key.public_key())
    assert result.ok and result.entries == 5 and result.broken_seq is None
    entries = log.entries()
    assert [e.seq for e in entries] == [1, 2, 3, 4, 5]
    assert entries[0].prev_hash == ZERO_HASH
    for before, after in itertools.pairwise(entries):
        assert after.prev_hash == before.hash
    first = entries[0]
    assert first.time == "2026-11-29T09:30:01.000+08:00"
    assert first.hash == entry_hash(1, first.time, "sign_in", "S0012", {}, ZERO_HASH)
    key.public_key().verify(base64.b64decode(first.signature), entry_signing_input(first.hash))
    assert log.entries(after_seq=3, limit=1)[0].seq == 4


def test_an_empty_log_verifies(log: AuditLog, key: Ed25519PrivateKey) -> None:
    result = verify(log.path, key.public_key())
    assert result.ok and result.entries == 0


def test_reopening_goes_on_from_the_last_entry(tmp_path: Path, key: Ed25519PrivateKey) -> None:
    first = AuditLog.in_data_dir(tmp_path, key, Clock())
    _fill(first, 3)
    first.close()
    again = AuditLog.in_data_dir(tmp_path, key, Clock())
    try:
        assert again.append(AuditKind.SIGN_OUT, "S0012").seq == 4
    finally:
        again.close()
    assert verify(tmp_path / AUDIT_FILE, key.public_key()).entries == 4


def test_file_is_private_and_wal(tmp_path: Path, key: Ed25519PrivateKey) -> None:
    opened = AuditLog.in_data_dir(tmp_path, key, Clock())
    try:
        opened.append(AuditKind.SIGN_IN, "S1")
        for path in tmp_path.iterdir():
            if path.name.startswith(AUDIT_FILE):
                assert stat.S_IMODE(path.stat().st_mode) == 0o600, path.name
        conn = sqlite3.connect(opened.path)
        try:
            assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        finally:
            conn.close()
    finally:
        opened.close()


def test_verify_leaves_the_file_as_it_was(log: AuditLog, key: Ed25519PrivateKey) -> None:
    _fill(log, 3)
    log.close()
    before = hashlib.sha256(log.path.read_bytes()).hexdigest()
    assert verify(log.path, key.public_key()).ok
    assert hashlib.sha256(log.path.read_bytes()).hexdigest() == before


def test_the_log_refuses_updates_and_deletes_itself(log: AuditLog) -> None:
    _fill(log, 2)
    conn = sqlite3.connect(log.path)
    try:
        with pytest.raises(sqlite3.DatabaseError, match="append-only"):
            conn.execute("DELETE FROM entries WHERE seq = 1")
        with pytest.raises(sqlite3.DatabaseError, match="append-only"):
            conn.execute("UPDATE entries SET staff = 'X' WHERE seq = 1")
    finally:
        conn.close()


def test_a_clock_without_offset_is_refused(tmp_path: Path, key: Ed25519PrivateKey) -> None:
    opened = AuditLog(tmp_path / AUDIT_FILE, key, lambda: dt.datetime(2026, 1, 1))
    try:
        with pytest.raises(ValueError, match="offset"):
            opened.append(AuditKind.SIGN_IN, "S1")
    finally:
        opened.close()


def test_unknown_kind_is_refused(log: AuditLog) -> None:
    with pytest.raises(ValueError, match="AuditKind"):
        log.append("login", "S1")


# -- tampering ----------------------------------------------------------------------------------


def test_edited_details_are_found(log: AuditLog, key: Ed25519PrivateKey) -> None:
    _fill(log)
    _tamper(log.path, """UPDATE entries SET details = '{"count":9}' WHERE seq = 3""")
    assert _broken(log, key) == (3, Broken.HASH)


def test_edited_hash_is_found(log: AuditLog, key: Ed25519PrivateKey) -> None:
    _fill(log)
    _tamper(log.path, ("UPDATE entries SET hash = ? WHERE seq = 3", ("ab" * 32,)))
    assert _broken(log, key) == (3, Broken.HASH)


def test_edit_with_a_fresh_hash_is_found_by_its_signature(
    log: AuditLog, key: Ed25519PrivateKey
) -> None:
    _fill(log)
    seq, time, kind, staff, _details, prev, _digest, _signature = _row(log.path, 4)
    details = {"count": 9}
    forged = entry_hash(4, str(time), str(kind), str(staff), details, str(prev))
    _tamper(
        log.path,
        ("UPDATE entries SET details = ?, hash = ? WHERE seq = ?", ('{"count":9}', forged, seq)),
    )
    assert _broken(log, key) == (4, Broken.SIGNATURE)


def test_edited_signature_is_found(log: AuditLog, key: Ed25519PrivateKey) -> None:
    _fill(log)
    other = _row(log.path, 2)[7]
    _tamper(log.path, ("UPDATE entries SET signature = ? WHERE seq = 3", (other,)))
    assert _broken(log, key) == (3, Broken.SIGNATURE)
    _tamper(log.path, "UPDATE entries SET signature = 'not base64!' WHERE seq = 3")
    assert _broken(log, key) == (3, Broken.SIGNATURE)


def test_a_deleted_middle_entry_is_found(log: AuditLog, key: Ed25519PrivateKey) -> None:
    _fill(log)
    _tamper(log.path, "DELETE FROM entries WHERE seq = 3")
    result = verify(log.path, key.public_key())
    assert (result.ok, result.entries, result.broken_seq, result.reason) == (
        False,
        2,
        3,
        Broken.SEQUENCE,
    )


def test_deleted_last_entries_are_found_by_the_head(log: AuditLog, key: Ed25519PrivateKey) -> None:
    _fill(log)
    _tamper(log.path, "DELETE FROM entries WHERE seq >= 4")
    assert _broken(log, key) == (4, Broken.SEQUENCE)


def test_every_entry_deleted_is_found(log: AuditLog, key: Ed25519PrivateKey) -> None:
    _fill(log)
    _tamper(log.path, "DELETE FROM entries")
    assert _broken(log, key) == (1, Broken.SEQUENCE)


def test_a_removed_head_is_found(log: AuditLog, key: Ed25519PrivateKey) -> None:
    _fill(log)
    _tamper(log.path, "DELETE FROM entries WHERE seq >= 4", "DELETE FROM head")
    assert _broken(log, key) == (4, Broken.HEAD)


def test_a_forged_head_is_found(log: AuditLog, key: Ed25519PrivateKey) -> None:
    _fill(log)
    _tamper(log.path, ("UPDATE head SET seq = 3, hash = ?", (_row(log.path, 3)[6],)))
    # Its signature is for seq 5: entries 1 to 5 are whole, where they end is not known.
    assert _broken(log, key) == (6, Broken.HEAD)


def test_an_older_signed_head_put_back_is_found(log: AuditLog, key: Ed25519PrivateKey) -> None:
    _fill(log, 3)
    conn = sqlite3.connect(log.path)
    try:
        old_head = conn.execute("SELECT seq, hash, signature FROM head").fetchone()
    finally:
        conn.close()
    log.append(AuditKind.SIGN_OUT, "S0012")
    log.append(AuditKind.SIGN_IN, "S0013")
    _tamper(log.path, ("UPDATE head SET seq = ?, hash = ?, signature = ?", tuple(old_head)))
    assert _broken(log, key) == (4, Broken.HEAD)  # entries the head never saw


def test_reordered_entries_are_found(log: AuditLog, key: Ed25519PrivateKey) -> None:
    _fill(log)
    two, three = _row(log.path, 2), _row(log.path, 3)
    _tamper(log.path, "DELETE FROM entries WHERE seq IN (2, 3)")
    _insert(log.path, (2, *three[1:]))
    _insert(log.path, (3, *two[1:]))
    assert _broken(log, key) == (2, Broken.HASH)


def test_an_inserted_forged_entry_is_found(log: AuditLog, key: Ed25519PrivateKey) -> None:
    _fill(log)
    prev = str(_row(log.path, 2)[6])
    moved = [_row(log.path, seq) for seq in (3, 4, 5)]
    _tamper(log.path, "DELETE FROM entries WHERE seq >= 3")
    for row in reversed(moved):
        _insert(log.path, (int(str(row[0])) + 1, *row[1:]))
    time = "2026-11-29T09:30:02.500+08:00"
    digest = entry_hash(3, time, "export", "S0012", {"count": 1}, prev)
    forger = Ed25519PrivateKey.generate()
    signature = base64.b64encode(forger.sign(entry_signing_input(digest))).decode()
    _insert(log.path, (3, time, "export", "S0012", '{"count":1}', prev, digest, signature))
    assert _broken(log, key) == (3, Broken.SIGNATURE)


def test_a_signed_entry_spliced_from_another_log_is_found(
    tmp_path: Path, key: Ed25519PrivateKey
) -> None:
    """Two logs by the same key (a data directory reset, a second copy): an entry of one, signed
    and hashed correctly, does not follow the entries of the other."""
    first = AuditLog(tmp_path / "a.sqlite3", key, Clock())
    other = AuditLog(tmp_path / "b.sqlite3", key, Clock())
    try:
        _fill(first, 5)
        other.append(AuditKind.SIGN_IN, "S0099")
        other.append(AuditKind.EXPORT, "S0099", {"count": 12})
        other.append(AuditKind.SIGN_OUT, "S0099")
    finally:
        first.close()
        other.close()
    _tamper(first.path, "DELETE FROM entries WHERE seq = 3")
    _insert(first.path, _row(other.path, 3))
    result = verify(first.path, key.public_key())
    assert (result.broken_seq, result.reason) == (3, Broken.CHAIN)


def test_an_entry_added_at_the_end_is_found(tmp_path: Path, key: Ed25519PrivateKey) -> None:
    first = AuditLog(tmp_path / "a.sqlite3", key, Clock())
    other = AuditLog(tmp_path / "b.sqlite3", key, Clock())
    try:
        _fill(first, 3)
        other.append(AuditKind.SIGN_IN, "S0099")  # a chain of its own from the first entry
        _fill(other, 3)
    finally:
        first.close()
        other.close()
    _insert(first.path, _row(other.path, 4))
    result = verify(first.path, key.public_key())
    assert (result.broken_seq, result.reason) == (4, Broken.CHAIN)


def test_a_wrong_public_key_fails(log: AuditLog) -> None:
    stranger = Ed25519PrivateKey.generate().public_key()
    assert (verify(log.path, stranger).broken_seq, verify(log.path, stranger).reason) == (
        1,
        Broken.HEAD,
    )
    _fill(log, 2)
    result = verify(log.path, stranger)
    assert (result.ok, result.broken_seq, result.reason) == (False, 1, Broken.SIGNATURE)


def test_not_an_audit_log(tmp_path: Path, key: Ed25519PrivateKey) -> None:
    garbage = tmp_path / "x.sqlite3"
    garbage.write_bytes(b"this is not a database" * 100)
    assert verify(garbage, key.public_key()).reason is Broken.UNREADABLE
    assert verify(tmp_path / "none.sqlite3", key.public_key()).reason is Broken.MISSING


# -- personal data ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "details",
    [
        {"reason": VALID_ID.lower()},
        {"service_id": f"svc-{VALID_ID}"},
        {"service_id": "110105194912310"},  # a 15-digit ID number of the old kind
        {"service_id": "13800138000"},
        {"service_id": "+86-138-0013-8000"},
        {"service_id": "010-62345678"},
        {"receipt_number": "13800138000"},
        {"name": "张三"},
        {"id_number": "K01"},
        {"phone": "K01"},
        {"reason": "张三"},
        {"reason": "x" * 65},
        {"reason": 5},
        {"count": "12"},
        {"count": True},
        {"count": -1},
        {"count": 13800138000},
        {"submission_id": "not-a-uuid"},
        {"channel": "home"},
        {f"k{i}": 1 for i in range(9)},
    ],
)
def test_personal_or_unexpected_details_are_refused(
    log: AuditLog, key: Ed25519PrivateKey, details: dict[str, object]
) -> None:
    with pytest.raises(ValueError) as refused:
        log.append(AuditKind.SUBMISSION, "S0012", details)
    for value in details.values():
        if isinstance(value, str) and len(value) > 3:
            assert value not in str(refused.value)  # the refusal does not repeat it either
    assert verify(log.path, key.public_key()).entries == 0


@pytest.mark.parametrize("staff", ["13800138000", "S 12", "张三", "S" * 17])
def test_staff_ids_are_checked(log: AuditLog, staff: str) -> None:
    with pytest.raises(ValueError):
        log.append(AuditKind.SIGN_IN_REFUSED, staff, {"reason": "unknown_staff"})


def test_the_details_a_log_needs_are_kept(log: AuditLog, key: Ed25519PrivateKey) -> None:
    details = {
        "submission_id": SUBMISSION,
        "receipt_number": "K01-20261129-0007",
        "service_id": "hukou.transfer-2",
        "reason": "wrong_pin",
        "channel": "counter",
        "count": 12,
        "copies": 1,
    }
    kept = log.append(AuditKind.REPRINT, "S0012", details).details
    assert kept == details == log.entries()[0].details
    assert verify(log.path, key.public_key()).ok


def test_looks_personal() -> None:
    assert looks_personal(VALID_ID)
    assert looks_personal("110105 19491231 002X")
    assert looks_personal("13912345678")
    assert looks_personal("139 1234 5678")
    assert looks_personal(VALID_ID[:17])  # a long run of digits, whatever its check
    assert not looks_personal("20261129000071")  # 14 digits: a date and a number
    assert not looks_personal("K01-20261129-0007")
    assert not looks_personal(SUBMISSION)
    assert not looks_personal(re.sub("-", "", SUBMISSION))
    assert check_details(None) == {}


# -- two writers --------------------------------------------------------------------------------


def _append_many(log: AuditLog, start: threading.Barrier, staff: str, n: int) -> None:
    start.wait(timeout=30)
    for i in range(n):
        log.append(AuditKind.SUBMISSION, staff, {"submission_id": SUBMISSION, "count": i})


def test_two_writers_keep_one_chain(tmp_path: Path, key: Ed25519PrivateKey) -> None:
    """Two logs on one file (as two outboxes of one process would open it), each on its own
    thread, and a third thread sharing the first: one chain, no number twice."""
    clock = Clock()
    one = AuditLog(tmp_path / AUDIT_FILE, key, clock)
    two = AuditLog(tmp_path / AUDIT_FILE, key, clock)
    start = threading.Barrier(3)
    errors: list[BaseException] = []

    def run(log: AuditLog, staff: str) -> None:
        try:
            _append_many(log, start, staff, 40)
        except BaseException as exc:
            errors.append(exc)

    threads = [
        threading.Thread(target=run, args=(one, "A1")),
        threading.Thread(target=run, args=(two, "B2")),
        threading.Thread(target=run, args=(one, "C3")),
    ]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        assert not any(thread.is_alive() for thread in threads)
    finally:
        one.close()
        two.close()
    assert not errors
    result = verify(tmp_path / AUDIT_FILE, key.public_key())
    assert result.ok and result.entries == 120
    reader = AuditLog(tmp_path / AUDIT_FILE, key, clock)
    try:
        staff = [e.staff for e in reader.entries(limit=200)]
    finally:
        reader.close()
    assert {s: staff.count(s) for s in ("A1", "B2", "C3")} == {"A1": 40, "B2": 40, "C3": 40}


# -- re-enrolment and the command ---------------------------------------------------------------


def test_a_new_key_starts_a_new_log(tmp_path: Path, key: Ed25519PrivateKey) -> None:
    old = open_audit_log(tmp_path, key, Clock())
    _fill(old, 2)
    old.close()
    new_key = Ed25519PrivateKey.generate()
    new = open_audit_log(tmp_path, new_key, Clock())
    try:
        assert new.append(AuditKind.SIGN_IN, "S1").seq == 1
    finally:
        new.close()
    kept = [p for p in tmp_path.glob("audit-*.sqlite3")]
    assert len(kept) == 1
    assert verify(kept[0], key.public_key()).entries == 2
    assert verify(tmp_path / AUDIT_FILE, new_key.public_key()).entries == 1


def test_verify_command_sentences(
    log: AuditLog, key: Ed25519PrivateKey, tmp_path: Path, language: None
) -> None:
    _fill(log, 4)
    set_language("en")
    assert verify_command(tmp_path, key.public_key()) == (
        True,
        "The audit log is whole: 4 entries, each signed by this terminal.",
    )
    _tamper(log.path, "DELETE FROM entries WHERE seq = 2")
    ok, sentence = verify_command(log.path, key.public_key())
    assert not ok and "entry 2" in sentence and "missing" in sentence
    set_language("zh_CN")
    ok, sentence = verify_command(log.path, key.public_key())
    assert not ok and sentence.startswith("审计日志在第 2 条记录处被破坏")
    ok, sentence = verify_command(tmp_path / "elsewhere", key.public_key())
    assert not ok and sentence == "该位置没有审计日志。"


def test_every_reason_has_a_sentence(language: None) -> None:
    set_language("zh_CN")
    for reason in Broken:
        result = audit_log.VerifyResult(False, 0, 7, reason)
        sentence = audit_log.describe(result)
        assert sentence and re.search("[\u4e00-\u9fff]", sentence), reason
        if reason not in (Broken.MISSING, Broken.UNREADABLE):
            assert "7" in sentence


def test_enrolled_public_key(tmp_path: Path, key: Ed25519PrivateKey) -> None:
    from kiosk.trust import public_key_b64

    with pytest.raises(NotEnrolled):
        audit_log.enrolled_public_key(tmp_path)
    (tmp_path / "enrolment.json").write_text(
        json.dumps({"terminal_key": public_key_b64(key.public_key())}), "utf-8"
    )
    opened = AuditLog.in_data_dir(tmp_path, key, Clock())
    try:
        _fill(opened, 2)
    finally:
        opened.close()
    assert verify(tmp_path / AUDIT_FILE, audit_log.enrolled_public_key(tmp_path)).ok


def test_receipt_numbers_of_every_enrolled_terminal_id_are_kept() -> None:
    from kiosk.audit_log import check_details

    for number in ("0755-20261123-0007", "V.01_a-20261123-0001", "K01-20261129-0001"):
        assert check_details({"receipt_number": number}) == {"receipt_number": number}
