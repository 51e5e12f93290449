"""SQLite storage of submissions, their files, history and ratings; safe under a pool of threads.

Every operation opens its own connection (sqlite3 connections are not shared across threads) and
writes inside BEGIN IMMEDIATE, so two requests for the same idempotency key serialise on the
database lock and the primary key keeps exactly one row.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import Callable, Iterator, Sequence
from contextlib import closing, contextmanager
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any

# 2: the attachments table (created where missing, so a version 1 file simply gains it).
# 3: the help_requests table.
# 4: the rejected and corrections tables (a refused submission kept for correction).
# 5: ratings keep the reason of a dissatisfied rating and whether to call back.
SCHEMA_VERSION = 5

_SCHEMA = """
CREATE TABLE IF NOT EXISTS submissions (
    submission_id   TEXT PRIMARY KEY,
    body_hash       TEXT NOT NULL,
    service_id      TEXT NOT NULL,
    receipt_number  TEXT NOT NULL,
    status          TEXT NOT NULL,
    request_json    TEXT NOT NULL,
    response_status INTEGER NOT NULL,
    response_body   BLOB NOT NULL,
    received_at     TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS history (
    seq            INTEGER PRIMARY KEY AUTOINCREMENT,
    submission_id  TEXT NOT NULL REFERENCES submissions(submission_id),
    status         TEXT NOT NULL,
    at             TEXT NOT NULL,
    note_json      TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS history_by_submission ON history(submission_id, seq);
CREATE TABLE IF NOT EXISTS attachments (
    submission_id  TEXT NOT NULL REFERENCES submissions(submission_id),
    ordinal        INTEGER NOT NULL,
    name           TEXT NOT NULL,
    content_type   TEXT NOT NULL,
    size           INTEGER NOT NULL,
    sha256         TEXT NOT NULL,
    data           BLOB NOT NULL,
    PRIMARY KEY (submission_id, ordinal)
);
CREATE TABLE IF NOT EXISTS help_requests (
    help_request_id TEXT PRIMARY KEY,
    body_hash       TEXT NOT NULL,
    request_json    TEXT NOT NULL,
    received_at     TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS rejected (
    submission_id   TEXT PRIMARY KEY,
    terminal_id     TEXT NOT NULL,
    request_json    TEXT NOT NULL,
    problems_json   TEXT NOT NULL,
    response_body   BLOB NOT NULL,
    rejected_at     TEXT NOT NULL,
    updated_at      TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS corrections (
    correction_id   TEXT PRIMARY KEY,
    submission_id   TEXT NOT NULL,
    terminal_id     TEXT NOT NULL,
    body_hash       TEXT NOT NULL,
    response_status INTEGER NOT NULL,
    response_body   BLOB NOT NULL,
    received_at     TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS ratings (
    submission_id  TEXT PRIMARY KEY REFERENCES submissions(submission_id),
    level          TEXT NOT NULL,
    comment        TEXT NOT NULL,
    rated_at       TEXT NOT NULL,
    reason         TEXT,
    call_back      INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;
"""


def canonical_hash(body: object) -> str:
    """SHA-256 of the parsed body in one canonical spelling (sorted keys, no spaces)."""
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@contextmanager
def immediate(db: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """One write transaction on db (opened with isolation_level=None): BEGIN IMMEDIATE, so
    writers serialise on the database lock before they read; committed, or rolled back on any
    exception."""
    db.execute("BEGIN IMMEDIATE")
    try:
        yield db
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")


@contextmanager
def writing(path: Path, timeout: float = 30.0) -> Iterator[sqlite3.Connection]:
    """A connection of its own to the platform's database, in one write transaction."""
    with closing(sqlite3.connect(path, timeout=timeout, isolation_level=None)) as db:
        db.execute("PRAGMA synchronous=FULL")
        with immediate(db):
            yield db


class Outcome(Enum):
    """What storing a submission under its key came to."""

    CREATED = "created"
    REPLAYED = "replayed"  # the same key with the same body: answer as the first time
    CONFLICT = "conflict"  # the same key with another body
    # The key of a submission another terminal filed and the platform refused (kept as
    # rejected, for that terminal alone to correct): not this terminal's to file.
    FOREIGN = "foreign"


@dataclass(frozen=True, slots=True)
class StoredAnswer:
    outcome: Outcome
    status_code: int
    body: bytes


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    status: str
    at: str
    note: dict[str, str]


@dataclass(frozen=True, slots=True)
class SubmissionRecord:
    submission_id: str
    receipt_number: str
    service_id: str
    status: str
    received_at: str
    history: tuple[HistoryEntry, ...]

    def __repr__(self) -> str:
        return f"SubmissionRecord(submission_id={self.submission_id!r}, status={self.status!r})"


@dataclass(frozen=True, slots=True)
class StoredAttachment:
    """A file of a submission, decoded and checked against its digest."""

    name: str
    content_type: str
    sha256: str
    data: bytes

    def __repr__(self) -> str:
        return f"StoredAttachment(size={len(self.data)})"


@dataclass(frozen=True, slots=True)
class NewSubmission:
    """What the first delivery of a key stores. request holds personal data: keep it out of logs.

    request is the body without the files' data (attachments keeps that, in the body's order).
    """

    submission_id: str
    body_hash: str
    service_id: str
    receipt_number: str
    request: dict[str, Any]
    response_status: int
    response_body: bytes
    received_at: str
    first_note: dict[str, str]
    terminal_id: str  # the terminal that filed it (the signature's, checked)
    attachments: tuple[StoredAttachment, ...] = ()

    def __repr__(self) -> str:
        return f"NewSubmission(submission_id={self.submission_id!r})"


@dataclass(frozen=True, slots=True)
class BatchEntry:
    """One item of a batch for store_many: its key and body hash, and what to store when the key
    is new (None when the body was refused and must not be stored)."""

    submission_id: str
    body_hash: str
    new: NewSubmission | None

    def __repr__(self) -> str:
        return f"BatchEntry(submission_id={self.submission_id!r})"


@dataclass(frozen=True, slots=True)
class RejectedSubmission:
    """A submission refused for its answers, kept so that its terminal can correct it. request
    is the whole body as it was opened, files and all: personal data, keep it out of logs."""

    submission_id: str
    terminal_id: str
    request: dict[str, Any]
    problems: tuple[tuple[str, str], ...]  # (field, keyword), as the 422 named them
    response_body: bytes

    def __repr__(self) -> str:
        return f"RejectedSubmission(submission_id={self.submission_id!r})"


@dataclass(frozen=True, slots=True)
class CorrectionAnswer:
    """What a correction came to: the status and body to answer, and what to keep.

    accepted: the submission to store as received (the rejected record goes); rejected: the
    rejected record as it now stands (still invalid). Neither: nothing changes but the answer.
    keep: remember the answer under the correction id, for a replay."""

    status_code: int
    body: bytes
    accepted: NewSubmission | None = None
    rejected: RejectedSubmission | None = None
    keep: bool = True

    def __repr__(self) -> str:
        return f"CorrectionAnswer(status_code={self.status_code!r})"


class CorrectionState(Enum):
    """Where the submission a correction names stands, before the correction is weighed."""

    REJECTED = "rejected"  # kept as rejected: the correction is weighed
    RECEIVED = "received"  # received already: nothing to correct
    UNKNOWN = "unknown"  # never rejected (nor received)


class Storage:
    """The platform's database file. Thread-safe: no connection outlives one call."""

    def __init__(self, path: Path, busy_timeout_s: float = 30.0) -> None:
        self.path = path
        self._timeout = busy_timeout_s
        path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as db:
            db.execute("PRAGMA journal_mode=WAL")
            version = db.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise RuntimeError(f"{path}: database schema {version} is newer than this server")
            db.executescript(_SCHEMA)
            columns = {row[1] for row in db.execute("PRAGMA table_info(ratings)")}
            if "reason" not in columns:  # a version 4 file: its ratings gain the two columns
                db.execute("ALTER TABLE ratings ADD COLUMN reason TEXT")
                db.execute("ALTER TABLE ratings ADD COLUMN call_back INTEGER NOT NULL DEFAULT 0")
            db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        with closing(sqlite3.connect(self.path, timeout=self._timeout, isolation_level=None)) as db:
            db.execute("PRAGMA synchronous=FULL")
            db.execute("PRAGMA foreign_keys=ON")
            yield db

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        with self._connect() as db, immediate(db):
            yield db

    def store_submission(self, new: NewSubmission) -> StoredAnswer:
        """Insert the submission unless its key exists; then say what the key's answer is."""
        with self._write() as db:
            return self._store(db, new)

    def store_many(self, entries: Sequence[BatchEntry]) -> list[StoredAnswer | None]:
        """Settle many keys in one transaction, in order, as if each had been posted alone.

        A key seen before (earlier in the database or earlier in entries) gets its earlier
        answer; a new key is stored from its entry's `new`, or answered None when `new` is None
        (the caller refused the body and answers for it).
        """
        answers: list[StoredAnswer | None] = []
        with self._write() as db:
            for entry in entries:
                if entry.new is None:
                    answers.append(self._earlier_answer(db, entry.submission_id, entry.body_hash))
                else:
                    answers.append(self._store(db, entry.new))
        return answers

    def _store(self, db: sqlite3.Connection, new: NewSubmission) -> StoredAnswer:
        """Store new under its key, in db's write transaction: a key seen before gets its
        earlier answer, the key of another terminal's refused submission FOREIGN (nothing is
        stored); a refused submission of the same terminal stored valid leaves no rejected
        record behind."""
        earlier = self._earlier_answer(db, new.submission_id, new.body_hash)
        if earlier is not None:
            return earlier
        if self._rejected_terminal(db, new.submission_id) not in (None, new.terminal_id):
            return StoredAnswer(Outcome.FOREIGN, 403, b"")
        inserted = db.execute(
            "INSERT INTO submissions (submission_id, body_hash, service_id, receipt_number,"
            " status, request_json, response_status, response_body, received_at)"
            " VALUES (?, ?, ?, ?, 'received', ?, ?, ?, ?)"
            " ON CONFLICT(submission_id) DO NOTHING",
            (
                new.submission_id,
                new.body_hash,
                new.service_id,
                new.receipt_number,
                json.dumps(new.request, ensure_ascii=False, sort_keys=True),
                new.response_status,
                new.response_body,
                new.received_at,
            ),
        ).rowcount
        if inserted:
            db.execute(
                "INSERT INTO history (submission_id, status, at, note_json)"
                " VALUES (?, 'received', ?, ?)",
                (new.submission_id, new.received_at, json.dumps(new.first_note)),
            )
            db.executemany(
                "INSERT INTO attachments (submission_id, ordinal, name, content_type, size,"
                " sha256, data) VALUES (?, ?, ?, ?, ?, ?, ?)",
                [
                    (new.submission_id, n, f.name, f.content_type, len(f.data), f.sha256, f.data)
                    for n, f in enumerate(new.attachments)
                ],
            )
            db.execute("DELETE FROM rejected WHERE submission_id = ?", (new.submission_id,))
            return StoredAnswer(Outcome.CREATED, new.response_status, new.response_body)
        answer = self._earlier_answer(db, new.submission_id, new.body_hash)
        if answer is None:  # the INSERT met a row this transaction cannot see: not SQLite
            raise RuntimeError("submission key conflict without a stored row")
        return answer

    def earlier_answer(self, submission_id: str, body_hash: str) -> StoredAnswer | None:
        """The answer already given for this key, or None when the key is new."""
        with self._connect() as db:
            return self._earlier_answer(db, submission_id, body_hash)

    @staticmethod
    def _earlier_answer(
        db: sqlite3.Connection, submission_id: str, body_hash: str
    ) -> StoredAnswer | None:
        row = db.execute(
            "SELECT body_hash, response_status, response_body FROM submissions"
            " WHERE submission_id = ?",
            (submission_id,),
        ).fetchone()
        if row is None:
            return None
        if row[0] != body_hash:
            return StoredAnswer(Outcome.CONFLICT, 409, b"")
        return StoredAnswer(Outcome.REPLAYED, int(row[1]), bytes(row[2]))

    def terminal_of(self, submission_id: str) -> str | None:
        """The terminal that filed this submission; None when there is no such submission."""
        with self._connect() as db:
            row = db.execute(
                "SELECT json_extract(request_json, '$.terminal_id') FROM submissions"
                " WHERE submission_id = ?",
                (submission_id,),
            ).fetchone()
        return None if row is None else str(row[0])

    def submission(self, submission_id: str) -> SubmissionRecord | None:
        with self._connect() as db:
            return self._record(db, submission_id)

    @staticmethod
    def _record(db: sqlite3.Connection, submission_id: str) -> SubmissionRecord | None:
        row = db.execute(
            "SELECT receipt_number, service_id, status, received_at FROM submissions"
            " WHERE submission_id = ?",
            (submission_id,),
        ).fetchone()
        if row is None:
            return None
        history = tuple(
            HistoryEntry(status, at, json.loads(note))
            for status, at, note in db.execute(
                "SELECT status, at, note_json FROM history WHERE submission_id = ? ORDER BY seq",
                (submission_id,),
            )
        )
        return SubmissionRecord(submission_id, row[0], row[1], row[2], row[3], history)

    def attachments(self, submission_id: str) -> tuple[StoredAttachment, ...]:
        """The files stored with a submission, in the order they were sent."""
        with self._connect() as db:
            rows = db.execute(
                "SELECT name, content_type, sha256, data FROM attachments"
                " WHERE submission_id = ? ORDER BY ordinal",
                (submission_id,),
            ).fetchall()
        return tuple(StoredAttachment(str(r[0]), str(r[1]), str(r[2]), bytes(r[3])) for r in rows)

    def set_status(
        self, submission_id: str, status: str, at: str, note: dict[str, str]
    ) -> SubmissionRecord | None:
        """Move the case to status, adding a history entry; None when the id is unknown."""
        with self._write() as db:
            changed = db.execute(
                "UPDATE submissions SET status = ? WHERE submission_id = ?",
                (status, submission_id),
            ).rowcount
            if not changed:
                return None
            db.execute(
                "INSERT INTO history (submission_id, status, at, note_json) VALUES (?, ?, ?, ?)",
                (submission_id, status, at, json.dumps(note, ensure_ascii=False)),
            )
            return self._record(db, submission_id)

    def rate(
        self,
        submission_id: str,
        level: str,
        comment: str,
        rated_at: str,
        *,
        reason: str | None = None,
        call_back: bool = False,
    ) -> bool:
        """Record (or replace) the rating; False when the id is unknown."""
        with self._write() as db:
            known = db.execute(
                "SELECT 1 FROM submissions WHERE submission_id = ?", (submission_id,)
            ).fetchone()
            if known is None:
                return False
            db.execute(
                "INSERT INTO ratings (submission_id, level, comment, rated_at, reason, call_back)"
                " VALUES (?, ?, ?, ?, ?, ?)"
                " ON CONFLICT(submission_id) DO UPDATE SET level = excluded.level,"
                " comment = excluded.comment, rated_at = excluded.rated_at,"
                " reason = excluded.reason, call_back = excluded.call_back",
                (submission_id, level, comment, rated_at, reason, int(call_back)),
            )
            return True

    def rating(self, submission_id: str) -> tuple[str, str, str, str | None, bool] | None:
        """(level, comment, rated_at, reason, call_back) of the current rating, if any."""
        with self._connect() as db:
            row = db.execute(
                "SELECT level, comment, rated_at, reason, call_back FROM ratings"
                " WHERE submission_id = ?",
                (submission_id,),
            ).fetchone()
        if row is None:
            return None
        return str(row[0]), str(row[1]), str(row[2]), row[3], bool(row[4])

    def store_help_request(
        self, help_request_id: str, body_hash: str, request: dict[str, Any], received_at: str
    ) -> tuple[Outcome, dict[str, Any]]:
        """Keep a help request under its key; a repeat gets the first one back, another body
        under the same key is a conflict."""
        with self._write() as db:
            inserted = db.execute(
                "INSERT INTO help_requests (help_request_id, body_hash, request_json, received_at)"
                " VALUES (?, ?, ?, ?) ON CONFLICT(help_request_id) DO NOTHING",
                (
                    help_request_id,
                    body_hash,
                    json.dumps(request, ensure_ascii=False, sort_keys=True),
                    received_at,
                ),
            ).rowcount
            row = db.execute(
                "SELECT body_hash, request_json, received_at FROM help_requests"
                " WHERE help_request_id = ?",
                (help_request_id,),
            ).fetchone()
        if row is None:  # the INSERT met a row this transaction cannot see: not SQLite
            raise RuntimeError("help request key conflict without a stored row")
        stored = {**json.loads(row[1]), "received_at": str(row[2])}
        if inserted:
            return Outcome.CREATED, stored
        if row[0] != body_hash:
            return Outcome.CONFLICT, stored
        return Outcome.REPLAYED, stored

    def help_requests(self) -> list[dict[str, Any]]:
        """Every help request received, oldest first."""
        with self._connect() as db:
            rows = db.execute(
                "SELECT request_json, received_at FROM help_requests ORDER BY received_at"
            ).fetchall()
        return [{**json.loads(r[0]), "received_at": str(r[1])} for r in rows]

    # -- rejected submissions and their corrections ------------------------------------------

    def keep_rejected(self, rejected: RejectedSubmission, at: str) -> None:
        """Keep (or replace) the rejected record of a submission, unless it has been received
        meanwhile (a received submission has nothing left to correct) or another terminal's
        refused submission holds the id (a record is replaced only by the terminal that filed
        it)."""
        with self._write() as db:
            self._keep_rejected(db, rejected, at)

    @staticmethod
    def _keep_rejected(db: sqlite3.Connection, rejected: RejectedSubmission, at: str) -> None:
        if db.execute(
            "SELECT 1 FROM submissions WHERE submission_id = ?", (rejected.submission_id,)
        ).fetchone():
            return
        db.execute(
            "INSERT INTO rejected (submission_id, terminal_id, request_json, problems_json,"
            " response_body, rejected_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT(submission_id) DO UPDATE SET"
            " request_json = excluded.request_json, problems_json = excluded.problems_json,"
            " response_body = excluded.response_body, updated_at = excluded.updated_at"
            " WHERE rejected.terminal_id = excluded.terminal_id",
            (
                rejected.submission_id,
                rejected.terminal_id,
                json.dumps(rejected.request, ensure_ascii=False, sort_keys=True),
                json.dumps([list(p) for p in rejected.problems]),
                rejected.response_body,
                at,
                at,
            ),
        )

    def rejected_terminal(self, submission_id: str) -> str | None:
        """The terminal whose refused submission this id is; None when no refusal is kept."""
        with self._connect() as db:
            return self._rejected_terminal(db, submission_id)

    @staticmethod
    def _rejected_terminal(db: sqlite3.Connection, submission_id: str) -> str | None:
        row = db.execute(
            "SELECT terminal_id FROM rejected WHERE submission_id = ?", (submission_id,)
        ).fetchone()
        return None if row is None else str(row[0])

    def rejected(self, submission_id: str) -> RejectedSubmission | None:
        """The rejected record of a submission, or None when it has none."""
        with self._connect() as db:
            return self._rejected(db, submission_id)

    @staticmethod
    def _rejected(db: sqlite3.Connection, submission_id: str) -> RejectedSubmission | None:
        row = db.execute(
            "SELECT terminal_id, request_json, problems_json, response_body FROM rejected"
            " WHERE submission_id = ?",
            (submission_id,),
        ).fetchone()
        if row is None:
            return None
        problems = tuple((str(f), str(c)) for f, c in json.loads(row[2]))
        return RejectedSubmission(
            submission_id, str(row[0]), json.loads(row[1]), problems, bytes(row[3])
        )

    def correct(
        self,
        correction_id: str,
        submission_id: str,
        *,
        terminal_id: str,
        body_hash: str,
        at: str,
        decide: Callable[
            [CorrectionState, RejectedSubmission | None, str | None], CorrectionAnswer
        ],
    ) -> tuple[Outcome, int, bytes]:
        """Weigh a correction in one write transaction: a correction id seen before gets its
        first answer (or a conflict for another body); otherwise decide() is asked, given where
        the submission stands and the terminal that filed it, and what it answers is stored
        (the received submission, the rejected record updated, the answer kept for replays)
        before the transaction ends."""
        with self._write() as db:
            row = db.execute(
                "SELECT submission_id, terminal_id, body_hash, response_status, response_body"
                " FROM corrections WHERE correction_id = ?",
                (correction_id,),
            ).fetchone()
            if row is not None:
                same = (str(row[0]), str(row[1]), str(row[2])) == (
                    submission_id,
                    terminal_id,
                    body_hash,
                )
                if not same:
                    return Outcome.CONFLICT, 409, b""
                return Outcome.REPLAYED, int(row[3]), bytes(row[4])
            rejected = self._rejected(db, submission_id)
            received = db.execute(
                "SELECT json_extract(request_json, '$.terminal_id') FROM submissions"
                " WHERE submission_id = ?",
                (submission_id,),
            ).fetchone()
            if received is not None:
                state, filed_by = CorrectionState.RECEIVED, str(received[0])
            elif rejected is not None:
                state, filed_by = CorrectionState.REJECTED, rejected.terminal_id
            else:
                state, filed_by = CorrectionState.UNKNOWN, None
            answer = decide(state, rejected, filed_by)
            if answer.accepted is not None:
                stored = self._store(db, answer.accepted)
                if stored.outcome is not Outcome.CREATED:  # under the write lock: not SQLite
                    raise RuntimeError("a rejected submission was received meanwhile")
                db.execute("DELETE FROM rejected WHERE submission_id = ?", (submission_id,))
            if answer.rejected is not None:
                self._keep_rejected(db, answer.rejected, at)
            if answer.keep:
                db.execute(
                    "INSERT INTO corrections (correction_id, submission_id, terminal_id,"
                    " body_hash, response_status, response_body, received_at)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (
                        correction_id,
                        submission_id,
                        terminal_id,
                        body_hash,
                        answer.status_code,
                        answer.body,
                        at,
                    ),
                )
            return Outcome.CREATED, answer.status_code, answer.body

    def count_submissions(self, submission_id: str | None = None) -> int:
        """How many rows there are (for one key when given): the proof of exactly-once."""
        with self._connect() as db:
            if submission_id is None:
                row = db.execute("SELECT COUNT(*) FROM submissions").fetchone()
            else:
                row = db.execute(
                    "SELECT COUNT(*) FROM submissions WHERE submission_id = ?", (submission_id,)
                ).fetchone()
        return int(row[0])
