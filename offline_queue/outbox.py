"""The outbox: SQLite tables of submissions waiting for, or kept after, delivery, and their files.

Durability: WAL journal with synchronous=FULL, so a committed enqueue survives power loss; every
write is a BEGIN IMMEDIATE transaction, so two writers never claim the same row. A backlog is
claimed (claim_batch) and its results recorded (settle_many) many rows per transaction, so a
batch costs two commits, not two per row.

Confidentiality: payload, summary and response are AES-256-GCM blobs. The associated data binds
each blob to its row id and column, so a blob copied to another row or column does not decrypt.
The payload is dropped once the platform has acknowledged it; the summary stays for reprints.

Attachments (photographed materials, signatures) live in their own table, written in the same
transaction as their row and within the limits given to the constructor. Their name, digest and
data are sealed too, each bound to its row and its place among the row's files, and a row's
payload is bound to how many files it has: a file swapped, moved, dropped or added makes the row
undecryptable instead of sending something else. Delivery and row deletion delete the files in
the same transaction (triggers, so no path can forget them).

Threads: each thread gets its own connection (created on first use, closed by close()). In WAL
mode readers never wait for the writer, so the GUI thread's counts() does not queue behind the sync
thread's claim; writers serialise on SQLite's write lock with a busy timeout.

One process owns an outbox file: the constructor returns rows left in 'sending' to 'queued',
which is right after a crash and wrong if another live process were sending them. So the
constructor first takes the outbox's process lock (offline_queue.lock) and a second process gets
OutboxLockedError.

Privacy on disk: the database is created 0600 before SQLite opens it (SQLite gives its -wal, -shm
and -journal the database's mode), and an existing database or companion that allows more is
narrowed at open.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import hmac
import logging
import os
import re
import sqlite3
import threading
import time
import weakref
from collections.abc import Callable, Collection, Iterator, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

import uuid6
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from offline_queue.errors import (
    AttachmentsTooLargeError,
    AttachmentTooLargeError,
    DuplicateItemError,
    InvalidTransitionError,
    OutboxCorruptError,
    OutboxError,
    SchemaTooNewError,
    TooManyAttachmentsError,
    UnknownItemError,
    WrongKeyError,
    classify,
)
from offline_queue.files import (
    PRIVATE_FILE,
    create_private_file,
    fsync_dir,
    narrow_mode,
)
from offline_queue.keys import KEY_SIZE
from offline_queue.lock import OutboxLock

log = logging.getLogger(__name__)


class State(StrEnum):
    QUEUED = "queued"
    SENDING = "sending"
    DELIVERED = "delivered"
    REJECTED = "rejected"
    NEEDS_ATTENTION = "needs_attention"


PENDING_STATES = (State.QUEUED, State.SENDING)
SIDECARS = ("-wal", "-shm", "-journal")  # SQLite's companions of a database file
BUSY_TIMEOUT_MS = 5000
MAX_ERROR_CHARS = 500
UNDECRYPTABLE = "undecryptable"

_NONCE_SIZE = 12
_BLOB_FORMAT = b"\x01"  # leading byte of every sealed blob, so the format can change later
_AD_PREFIX = b"hall-outbox/1\x00"
_KEY_CHECK_ROW = "meta"
_KEY_CHECK_PLAINTEXT = b"hall terminal outbox key check"


def _migration_1(conn: sqlite3.Connection) -> None:
    states = ", ".join(f"'{s.value}'" for s in State)
    conn.execute(
        f"""
        CREATE TABLE outbox (
            id TEXT PRIMARY KEY NOT NULL,
            schema_version INTEGER NOT NULL,
            kind TEXT NOT NULL,
            state TEXT NOT NULL CHECK (state IN ({states})),
            attempts INTEGER NOT NULL DEFAULT 0,
            next_attempt_at REAL,
            last_error TEXT,
            created_at REAL NOT NULL,
            updated_at REAL NOT NULL,
            delivered_at REAL,
            payload BLOB,
            summary BLOB,
            response BLOB
        )
        """
    )
    conn.execute("CREATE INDEX outbox_due ON outbox (state, next_attempt_at, created_at)")
    conn.execute("CREATE TABLE meta (key TEXT PRIMARY KEY NOT NULL, value BLOB NOT NULL)")


def _migration_2(conn: sqlite3.Connection) -> None:
    # Claims walk queued rows oldest first; with outbox_due the planner sorts every due row on
    # each claim (9.4 ms per claim at 10,000 rows), with this index it reads them in order.
    conn.execute("CREATE INDEX outbox_claim ON outbox (state, created_at, id, next_attempt_at)")


def _migration_3(conn: sqlite3.Connection) -> None:
    # The data column comes last: reading the small columns of a row never walks the blob's
    # overflow pages. name and sha256 are sealed (a file name or a digest can identify a person
    # or a document); content type and size are not personal and let claims budget without
    # decrypting.
    conn.execute(
        """
        CREATE TABLE attachments (
            item_id TEXT NOT NULL,
            ordinal INTEGER NOT NULL CHECK (ordinal >= 0),
            name BLOB NOT NULL,
            content_type TEXT NOT NULL,
            size INTEGER NOT NULL CHECK (size > 0),
            sha256 BLOB NOT NULL,
            data BLOB NOT NULL,
            PRIMARY KEY (item_id, ordinal)
        )
        """
    )
    # Triggers rather than code in each path: whatever sets a row delivered or deletes it takes
    # its files with it in the same transaction (and secure_delete zeroes their pages). The state
    # is spelled out: a released step must not change when the code's names do.
    conn.execute(
        """
        CREATE TRIGGER attachments_purged_on_delivery AFTER UPDATE OF state ON outbox
        WHEN new.state = 'delivered'
        BEGIN DELETE FROM attachments WHERE item_id = new.id; END
        """
    )
    conn.execute(
        """
        CREATE TRIGGER attachments_deleted_with_row AFTER DELETE ON outbox
        BEGIN DELETE FROM attachments WHERE item_id = old.id; END
        """
    )


# Step i brings user_version from i to i + 1. Append, never edit a released step.
MIGRATIONS: tuple[Callable[[sqlite3.Connection], None], ...] = (
    _migration_1,
    _migration_2,
    _migration_3,
)
SCHEMA_VERSION = len(MIGRATIONS)


def companion_paths(path: Path) -> tuple[Path, ...]:
    """The database file and the companions SQLite may keep beside it."""
    return (path, *(path.with_name(path.name + tail) for tail in SIDECARS))


def new_item_id() -> str:
    """A UUIDv7 string: time-ordered, so ids sort roughly by creation, and unique per terminal."""
    return str(uuid6.uuid7())


MAX_ATTACHMENT_NAME_CHARS = 255
# A MIME type without parameters (RFC 6838 names), e.g. image/png or image/svg+xml.
_CONTENT_TYPE = re.compile(
    r"[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}"
)


@dataclass(frozen=True)
class Attachment:
    """A file that goes with a submission: a photographed material, a signature."""

    name: str
    content_type: str  # a MIME type without parameters, e.g. image/png
    data: bytes = field(repr=False)

    def __post_init__(self) -> None:
        if not isinstance(self.data, bytes):
            raise TypeError("attachment data must be bytes")
        if not self.data:
            raise ValueError("an attachment needs at least one byte")
        if not self.name or len(self.name) > MAX_ATTACHMENT_NAME_CHARS:
            raise ValueError(f"an attachment name has 1 to {MAX_ATTACHMENT_NAME_CHARS} characters")
        if any(ord(c) < 0x20 or ord(c) == 0x7F for c in self.name):
            raise ValueError("an attachment name has no control characters")
        if not _CONTENT_TYPE.fullmatch(self.content_type):
            raise ValueError("the content type must be a MIME type such as image/png")

    @property
    def size(self) -> int:
        return len(self.data)

    def sha256(self) -> str:
        """The SHA-256 of the data, in lowercase hex."""
        return hashlib.sha256(self.data).hexdigest()


@dataclass(frozen=True)
class AttachmentLimits:
    """What one submission may carry; enqueue refuses more before writing anything."""

    max_file_bytes: int = 5 * 1024 * 1024
    max_total_bytes: int = 20 * 1024 * 1024
    max_files: int = 20

    def __post_init__(self) -> None:
        if min(self.max_file_bytes, self.max_total_bytes, self.max_files) < 1:
            raise ValueError("attachment limits must be positive")


@dataclass(frozen=True)
class OutboxItem:
    """A claimed row, decrypted, ready to send, with its files in their order."""

    id: str
    kind: str
    payload: bytes
    attempts: int
    created_at: float
    schema_version: int
    attachments: tuple[Attachment, ...] = ()


@dataclass(frozen=True)
class Settlement:
    """What became of one claimed row, for settle_many.

    state is DELIVERED (response kept, payload dropped), QUEUED (try again after delay_s),
    REJECTED or NEEDS_ATTENTION (set aside for staff with error and, if given, response).
    """

    item_id: str
    state: State
    error: str = ""
    response: bytes | None = None
    delay_s: float = 0.0

    def __post_init__(self) -> None:
        if self.state is State.SENDING:
            raise ValueError("a settlement ends the sending state; it cannot be 'sending'")
        if self.state is State.DELIVERED and self.response is None:
            raise ValueError("a delivered row keeps the platform's answer")


# The states a row may be in for each settlement (the single mark_* methods follow them too).
_SETTLE_FROM: dict[State, frozenset[State]] = {
    State.QUEUED: frozenset({State.QUEUED, State.SENDING}),
    # A rejected row refused again (a correction of it was): the new refusal replaces the old.
    State.REJECTED: frozenset({State.QUEUED, State.SENDING, State.REJECTED}),
    State.NEEDS_ATTENTION: frozenset({State.QUEUED, State.SENDING, State.REJECTED}),
}
_SETTLE_VERB = {
    State.QUEUED: "retry",
    State.REJECTED: State.REJECTED.value,
    State.NEEDS_ATTENTION: State.NEEDS_ATTENTION.value,
}


@dataclass(frozen=True)
class OutboxItemInfo:
    """A row as the staff queue screen sees it: no payload; summary decrypted (None if damaged)."""

    id: str
    kind: str
    state: State
    attempts: int
    next_attempt_at: float | None
    last_error: str | None
    created_at: float
    updated_at: float
    delivered_at: float | None
    summary: bytes | None


class _Sealer:
    def __init__(self, key: bytes) -> None:
        if len(key) != KEY_SIZE:
            raise ValueError(f"the outbox key must be {KEY_SIZE} bytes")
        self._aead = AESGCM(key)

    @staticmethod
    def _ad(row_id: str, column: str) -> bytes:
        return _AD_PREFIX + column.encode() + b"\x00" + row_id.encode()

    def seal(self, row_id: str, column: str, plaintext: bytes) -> bytes:
        nonce = os.urandom(_NONCE_SIZE)
        return _BLOB_FORMAT + nonce + self._aead.encrypt(nonce, plaintext, self._ad(row_id, column))

    def open(self, row_id: str, column: str, blob: bytes) -> bytes:
        """Decrypt; InvalidTag for a wrong key, a tampered blob or one moved from elsewhere."""
        if len(blob) < 1 + _NONCE_SIZE or blob[:1] != _BLOB_FORMAT:
            raise InvalidTag
        nonce = blob[1 : 1 + _NONCE_SIZE]
        return self._aead.decrypt(nonce, blob[1 + _NONCE_SIZE :], self._ad(row_id, column))


def _payload_column(files: int) -> str:
    # A row with files binds its payload to how many it has: dropping every file of a row (which
    # leaves no file to fail) still makes the row undecryptable. Rows without files keep the
    # plain column name, as rows from before attachments have it.
    return "payload" if files == 0 else f"payload/files={files}"


def _attachment_column(ordinal: int, part: str) -> str:
    return f"attachment/{ordinal}/{part}"


def _attachment_data_column(ordinal: int, size: int, content_type: str) -> str:
    # The clear columns are bound here, so editing the size or content type breaks the seal.
    return _attachment_column(ordinal, f"data/{size}/{content_type}")


class Outbox:
    def __init__(
        self,
        path: Path,
        key: bytes,
        clock: Callable[[], float] = time.time,
        attachment_limits: AttachmentLimits | None = None,
    ) -> None:
        self._path = Path(path)
        self._sealer = _Sealer(key)
        self._limits = attachment_limits if attachment_limits is not None else AttachmentLimits()
        self._clock = clock
        self._local = threading.local()
        self._conns: list[tuple[weakref.ref[threading.Thread], sqlite3.Connection]] = []
        self._conns_lock = threading.Lock()
        self._closed = threading.Event()
        self._lock: OutboxLock | None = None
        try:
            self._lock = OutboxLock.acquire(self._path)
            self._prepare_files()
            self._migrate()
            self._check_key()
            reset = self.reset_stale_sending()
        except BaseException:
            self.close()
            raise
        if reset:
            log.warning("outbox: %d submission(s) left in sending were queued again", reset)

    @property
    def path(self) -> Path:
        return self._path

    def _prepare_files(self) -> None:
        try:
            if create_private_file(self._path):
                fsync_dir(self._path.parent)
        except OSError as exc:
            raise classify(exc) from exc
        for companion in companion_paths(self._path):
            narrow_mode(companion, PRIVATE_FILE)

    # -- connections and transactions -------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(
            self._path,
            timeout=BUSY_TIMEOUT_MS / 1000,
            isolation_level=None,  # transactions are explicit: BEGIN IMMEDIATE ... COMMIT
            check_same_thread=False,  # close() closes every thread's connection
        )
        try:
            conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                log.warning("outbox: WAL journal unavailable here (journal_mode=%s)", mode)
            conn.execute("PRAGMA synchronous = FULL")
            # Freed pages (a purged payload, a deleted row) are zeroed, not left for recovery.
            conn.execute("PRAGMA secure_delete = ON")
        except BaseException:
            conn.close()
            raise
        return conn

    def _conn(self) -> sqlite3.Connection:
        if self._closed.is_set():
            raise OutboxError("the outbox is closed")
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._connect()
            with self._conns_lock:
                if self._closed.is_set():
                    conn.close()
                    raise OutboxError("the outbox is closed")
                self._prune_dead_threads()
                self._conns.append((weakref.ref(threading.current_thread()), conn))
            self._local.conn = conn
        return conn

    def _prune_dead_threads(self) -> None:
        alive = []
        for ref, conn in self._conns:
            thread = ref()
            if thread is None or not thread.is_alive():
                conn.close()
            else:
                alive.append((ref, conn))
        self._conns = alive

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        try:
            conn = self._conn()
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    with contextlib.suppress(sqlite3.Error):
                        conn.execute("ROLLBACK")
                raise
        except (sqlite3.Error, OSError) as exc:
            raise classify(exc) from exc

    @contextlib.contextmanager
    def _reading(self) -> Iterator[sqlite3.Connection]:
        try:
            yield self._conn()
        except (sqlite3.Error, OSError) as exc:
            raise classify(exc) from exc

    def _migrate(self) -> None:
        with self._transaction() as conn:
            version = int(conn.execute("PRAGMA user_version").fetchone()[0])
            if version > SCHEMA_VERSION:
                raise SchemaTooNewError(
                    f"outbox schema {version} is newer than this client's {SCHEMA_VERSION}"
                )
            for step in MIGRATIONS[version:]:
                step(conn)
            if version != SCHEMA_VERSION:
                conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
                log.info("outbox schema migrated from %d to %d", version, SCHEMA_VERSION)

    def _check_key(self) -> None:
        """Fail at open, not on the first claim, when the key is not this outbox's key."""
        with self._transaction() as conn:
            row = conn.execute("SELECT value FROM meta WHERE key = 'key_check'").fetchone()
            if row is None:
                blob = self._sealer.seal(_KEY_CHECK_ROW, "key_check", _KEY_CHECK_PLAINTEXT)
                conn.execute("INSERT INTO meta (key, value) VALUES ('key_check', ?)", (blob,))
                return
            try:
                self._sealer.open(_KEY_CHECK_ROW, "key_check", bytes(row[0]))
            except InvalidTag:
                raise WrongKeyError("the key does not open this outbox") from None

    # -- writes ------------------------------------------------------------------------------

    @property
    def attachment_limits(self) -> AttachmentLimits:
        return self._limits

    def enqueue(
        self,
        kind: str,
        payload: bytes,
        summary: bytes,
        *,
        item_id: str | None = None,
        attachments: Sequence[Attachment] = (),
        created_at: float | None = None,
    ) -> str:
        """Store a new item with its files; when this returns, all of it is committed and
        fsync'd. Either the row and every file are stored or none of them is.

        Files beyond the attachment limits raise an AttachmentLimitError before anything is
        written. created_at is for a submission made earlier (recovered from a set-aside
        outbox): it keeps its place in the sending order. It is due at once either way.
        """
        files = tuple(attachments)
        self._check_limits(files)
        row_id = item_id if item_id is not None else new_item_id()
        if not row_id:
            raise ValueError("item_id must not be empty")
        sealed_payload = self._sealer.seal(row_id, _payload_column(len(files)), payload)
        sealed_summary = self._sealer.seal(row_id, "summary", summary)
        sealed_files = [self._seal_attachment(row_id, n, f) for n, f in enumerate(files)]
        now = self._clock()
        with self._transaction() as conn:
            try:
                conn.execute(
                    "INSERT INTO outbox (id, schema_version, kind, state, attempts,"
                    " next_attempt_at, created_at, updated_at, payload, summary)"
                    " VALUES (?, ?, ?, ?, 0, ?, ?, ?, ?, ?)",
                    (
                        row_id,
                        SCHEMA_VERSION,
                        kind,
                        State.QUEUED.value,
                        now,
                        now if created_at is None else created_at,
                        now,
                        sealed_payload,
                        sealed_summary,
                    ),
                )
            except sqlite3.IntegrityError as exc:
                raise DuplicateItemError(f"outbox item {row_id} exists already") from exc
            for values in sealed_files:
                conn.execute(
                    "INSERT INTO attachments (item_id, ordinal, name, content_type, size, sha256,"
                    " data) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    values,
                )
        return row_id

    def check_attachments(self, files: Sequence[Attachment]) -> None:
        """AttachmentLimitError when these files would break the attachment limits (enqueue
        checks the same; a caller that carries files inside its payload asks first)."""
        self._check_limits(files)

    def _check_limits(self, files: Sequence[Attachment]) -> None:
        limits = self._limits
        if len(files) > limits.max_files:
            raise TooManyAttachmentsError(
                f"{len(files)} attachments; at most {limits.max_files} may go with a submission",
                limit=limits.max_files,
                actual=len(files),
            )
        for file in files:
            if not isinstance(file, Attachment):
                raise TypeError("attachments must be Attachment objects")
            if file.size > limits.max_file_bytes:
                raise AttachmentTooLargeError(
                    f"an attachment of {file.size} bytes; at most {limits.max_file_bytes} each",
                    limit=limits.max_file_bytes,
                    actual=file.size,
                )
        total = sum(file.size for file in files)
        if total > limits.max_total_bytes:
            raise AttachmentsTooLargeError(
                f"attachments of {total} bytes; at most {limits.max_total_bytes} together",
                limit=limits.max_total_bytes,
                actual=total,
            )

    def _seal_attachment(self, row_id: str, ordinal: int, file: Attachment) -> tuple[object, ...]:
        seal = self._sealer.seal
        return (
            row_id,
            ordinal,
            seal(row_id, _attachment_column(ordinal, "name"), file.name.encode("utf-8")),
            file.content_type,
            file.size,
            seal(
                row_id,
                _attachment_column(ordinal, "sha256"),
                hashlib.sha256(file.data).digest(),
            ),
            seal(
                row_id,
                _attachment_data_column(ordinal, file.size, file.content_type),
                file.data,
            ),
        )

    def _open_attachments(
        self, conn: sqlite3.Connection, row_id: str, files: int
    ) -> tuple[Attachment, ...]:
        return open_attachments(self._sealer, conn, row_id, files)

    def claim_next(self, now: float | None = None) -> OutboxItem | None:
        """Move the oldest due queued row to 'sending' (attempts + 1) and return it decrypted.

        A row whose payload does not decrypt is set aside as needs_attention so it cannot block
        the rows behind it.
        """
        claimed = self.claim_batch(1, now)
        return claimed[0] if claimed else None

    def claim_batch(
        self,
        limit: int,
        now: float | None = None,
        *,
        ids: Collection[str] | None = None,
        max_bytes: int | None = None,
    ) -> list[OutboxItem]:
        """Move up to `limit` due queued rows, oldest first, to 'sending' (attempts + 1) in one
        transaction and return them decrypted, in that order.

        ids narrows the claim to those rows (a just-queued submission someone waits for).
        max_bytes stops the claim before the payloads and their attachments' bytes would add up
        to more (the oldest row is claimed whatever its size). Rows whose payload or any
        attachment does not decrypt are set aside as in claim_next and do not count.
        """
        if limit < 1:
            raise ValueError("limit must be at least 1")
        wanted = None if ids is None else sorted(set(ids))
        if wanted is not None and not wanted:
            return []
        at = self._clock() if now is None else now
        # Without ANALYZE statistics the planner prefers outbox_due and sorts; name the index
        # that yields rows in claim order. A claim of named rows goes by primary key instead.
        source = "outbox" if wanted is not None else "outbox INDEXED BY outbox_claim"
        query = (
            "SELECT id, kind, payload, attempts, created_at, schema_version,"  # noqa: S608 - literals only
            " (SELECT COUNT(*) FROM attachments WHERE item_id = outbox.id),"
            " (SELECT TOTAL(size) FROM attachments WHERE item_id = outbox.id)"
            f" FROM {source} WHERE state = ? AND next_attempt_at <= ?"
        )
        if wanted is not None:
            query += f" AND id IN ({', '.join('?' for _ in wanted)})"
        query += " ORDER BY created_at, id LIMIT ?"
        claimed: list[OutboxItem] = []
        size = 0
        full = False
        with self._transaction() as conn:
            while len(claimed) < limit and not full:
                params: list[object] = [State.QUEUED.value, at, *(wanted or ())]
                rows = conn.execute(query, [*params, limit - len(claimed)]).fetchall()
                found: list[OutboxItem] = []
                damaged: list[str] = []
                for row in rows:
                    row_id, kind, blob, attempts, created_at, schema_version = row[:6]
                    file_count, file_bytes = int(row[6]), int(row[7])
                    try:
                        if blob is None:
                            raise InvalidTag
                        column = _payload_column(file_count)
                        payload = self._sealer.open(row_id, column, bytes(blob))
                        row_size = len(payload) + file_bytes
                        over = max_bytes is not None and size + row_size > max_bytes
                        if over and (claimed or found):
                            full = True
                            break
                        attached = (
                            self._open_attachments(conn, row_id, file_count) if file_count else ()
                        )
                    except InvalidTag:
                        log.error("outbox item %s does not decrypt; set aside for staff", row_id)
                        damaged.append(row_id)
                        continue
                    size += row_size
                    found.append(
                        OutboxItem(
                            id=row_id,
                            kind=kind,
                            payload=payload,
                            attempts=int(attempts) + 1,
                            created_at=float(created_at),
                            schema_version=int(schema_version),
                            attachments=attached,
                        )
                    )
                conn.executemany(
                    "UPDATE outbox SET state = ?, attempts = attempts + 1, updated_at = ?"
                    " WHERE id = ?",
                    [(State.SENDING.value, at, item.id) for item in found],
                )
                conn.executemany(
                    "UPDATE outbox SET state = ?, last_error = ?, next_attempt_at = NULL,"
                    " updated_at = ? WHERE id = ?",
                    [(State.NEEDS_ATTENTION.value, UNDECRYPTABLE, at, i) for i in damaged],
                )
                claimed.extend(found)
                if not damaged:
                    break  # every row found was claimed: nothing more is due
        return claimed

    def mark_delivered(self, item_id: str, response: bytes) -> None:
        """The platform has it: drop the payload, keep summary and the sealed response.

        A second call for a delivered row keeps the first response.
        """
        self.settle_many([Settlement(item_id, State.DELIVERED, response=response)])

    def mark_delivered_many(self, delivered: Sequence[tuple[str, bytes]]) -> None:
        """mark_delivered for many (item id, response) pairs in one transaction."""
        self.settle_many([Settlement(i, State.DELIVERED, response=r) for i, r in delivered])

    def mark_retry(self, item_id: str, error: str, delay_s: float) -> None:
        self.settle_many([Settlement(item_id, State.QUEUED, error, delay_s=delay_s)])

    def mark_rejected(self, item_id: str, error: str, response: bytes | None = None) -> None:
        """The platform refused the submission (4xx): kept, with its payload, for staff."""
        self.settle_many([Settlement(item_id, State.REJECTED, error, response)])

    def mark_needs_attention(self, item_id: str, error: str, response: bytes | None = None) -> None:
        """Sending cannot settle this row by itself (a conflict, a damaged row): staff decide."""
        self.settle_many([Settlement(item_id, State.NEEDS_ATTENTION, error, response)])

    def settle_many(self, settlements: Sequence[Settlement]) -> None:
        """Record what became of many rows in one transaction (one fsync): all or none.

        Each follows the rule of its single counterpart: a delivered row stays delivered with
        its first response; retry and rejection need a queued or sending row; needs-attention
        also takes a rejected one. A row in any other state fails the whole call
        (InvalidTransitionError), an unknown row too (UnknownItemError).
        """
        sealed = [
            None if s.response is None else self._sealer.seal(s.item_id, "response", s.response)
            for s in settlements
        ]
        now = self._clock()
        with self._transaction() as conn:
            for settlement, response in zip(settlements, sealed, strict=True):
                self._settle(conn, settlement, response, now)

    def _settle(
        self,
        conn: sqlite3.Connection,
        settlement: Settlement,
        sealed: bytes | None,
        now: float,
    ) -> None:
        item_id, state = settlement.item_id, settlement.state
        if state is State.DELIVERED:
            if self._state_of(conn, item_id) is State.DELIVERED:
                return
            conn.execute(
                "UPDATE outbox SET state = ?, delivered_at = ?, updated_at = ?, payload = NULL,"
                " response = ?, last_error = NULL, next_attempt_at = NULL WHERE id = ?",
                (State.DELIVERED.value, now, now, sealed, item_id),
            )
            return
        self._require(conn, item_id, _SETTLE_FROM[state], _SETTLE_VERB[state])
        error = _short(settlement.error)
        if state is State.QUEUED:
            conn.execute(
                "UPDATE outbox SET state = ?, next_attempt_at = ?, last_error = ?, updated_at = ?"
                " WHERE id = ?",
                (state.value, now + max(0.0, settlement.delay_s), error, now, item_id),
            )
        else:
            conn.execute(
                "UPDATE outbox SET state = ?, last_error = ?, next_attempt_at = NULL,"
                " updated_at = ?, response = COALESCE(?, response) WHERE id = ?",
                (state.value, error, now, sealed, item_id),
            )

    def requeue(self, item_id: str) -> None:
        """Staff's "retry now": back to queued, due immediately."""
        now = self._clock()
        with self._transaction() as conn:
            self._require(
                conn, item_id, {State.QUEUED, State.REJECTED, State.NEEDS_ATTENTION}, "requeue"
            )
            conn.execute(
                "UPDATE outbox SET state = ?, next_attempt_at = ?, updated_at = ? WHERE id = ?",
                (State.QUEUED.value, now, now, item_id),
            )

    def bring_forward(self, now: float | None = None) -> int:
        """Make every queued row due now (the network is back: do not wait out the backoff)."""
        at = self._clock() if now is None else now
        with self._transaction() as conn:
            cur = conn.execute(
                "UPDATE outbox SET next_attempt_at = ? WHERE state = ? AND next_attempt_at > ?",
                (at, State.QUEUED.value, at),
            )
            return cur.rowcount

    def reset_stale_sending(self) -> int:
        """Rows a crash left in 'sending' are queued again; the id makes the resend safe."""
        now = self._clock()
        with self._transaction() as conn:
            cur = conn.execute(
                "UPDATE outbox SET state = ?, next_attempt_at = ?, updated_at = ? WHERE state = ?",
                (State.QUEUED.value, now, now, State.SENDING.value),
            )
            return cur.rowcount

    def purge_delivered(self, older_than_s: float) -> int:
        """Delete delivered rows (summary and response too) delivered more than older_than_s ago."""
        cutoff = self._clock() - older_than_s
        with self._transaction() as conn:
            cur = conn.execute(
                "DELETE FROM outbox WHERE state = ? AND delivered_at < ?",
                (State.DELIVERED.value, cutoff),
            )
            return cur.rowcount

    # -- reads -------------------------------------------------------------------------------

    def counts(self) -> dict[str, int]:
        """Rows per state, every state present (zero when empty)."""
        result = {s.value: 0 for s in State}
        with self._reading() as conn:
            for state, count in conn.execute(
                "SELECT state, COUNT(*) FROM outbox GROUP BY state"
            ).fetchall():
                result[str(state)] = int(count)
        return result

    def pending_count(self) -> int:
        with self._reading() as conn:
            row = conn.execute(
                "SELECT COUNT(*) FROM outbox WHERE state IN (?, ?)",
                tuple(s.value for s in PENDING_STATES),
            ).fetchone()
        return int(row[0])

    def next_due_at(self) -> float | None:
        """When the earliest queued row becomes due, or None when nothing is queued."""
        with self._reading() as conn:
            row = conn.execute(
                "SELECT MIN(next_attempt_at) FROM outbox WHERE state = ?", (State.QUEUED.value,)
            ).fetchone()
        return None if row[0] is None else float(row[0])

    def waiting_payloads(self, kind: str) -> list[tuple[str, bytes]]:
        """(id, payload) of the queued rows of kind, oldest first, read only: nothing is
        claimed or counted as an attempt. Rows with files apart, and rows whose payload does
        not decrypt, are left out (the second logged)."""
        with self._reading() as conn:
            rows = conn.execute(
                "SELECT id, payload,"
                " (SELECT COUNT(*) FROM attachments WHERE item_id = outbox.id)"
                " FROM outbox WHERE state = ? AND kind = ? ORDER BY created_at, id",
                (State.QUEUED.value, kind),
            ).fetchall()
        found: list[tuple[str, bytes]] = []
        for row_id, blob, files in rows:
            if blob is None or files:
                continue
            try:
                found.append((row_id, self._sealer.open(row_id, "payload", bytes(blob))))
            except InvalidTag:
                log.error("outbox item %s does not decrypt; left out", row_id)
        return found

    def items(
        self, limit: int = 100, states: Collection[State | str] | None = None, offset: int = 0
    ) -> list[OutboxItemInfo]:
        """Rows oldest first, without payloads, for the staff queue screen."""
        query = (
            "SELECT id, kind, state, attempts, next_attempt_at, last_error, created_at,"
            " updated_at, delivered_at, summary FROM outbox"
        )
        params: list[object] = []
        if states is not None:
            wanted = [State(s).value for s in states]
            if not wanted:
                return []
            query += f" WHERE state IN ({', '.join('?' for _ in wanted)})"
            params.extend(wanted)
        query += " ORDER BY created_at, id LIMIT ? OFFSET ?"
        params.extend((limit, offset))
        with self._reading() as conn:
            rows = conn.execute(query, params).fetchall()
        return [
            OutboxItemInfo(
                id=r[0],
                kind=r[1],
                state=State(r[2]),
                attempts=int(r[3]),
                next_attempt_at=None if r[4] is None else float(r[4]),
                last_error=r[5],
                created_at=float(r[6]),
                updated_at=float(r[7]),
                delivered_at=None if r[8] is None else float(r[8]),
                summary=self._open_or_none(r[0], "summary", r[9]),
            )
            for r in rows
        ]

    def get_summary(self, item_id: str) -> bytes | None:
        """The decrypted summary, or None when there is no such row."""
        return self._get_sealed(item_id, "summary")

    def get_response(self, item_id: str) -> bytes | None:
        """The decrypted platform answer, or None when there is none (yet)."""
        return self._get_sealed(item_id, "response")

    def state_of(self, item_id: str) -> State | None:
        with self._reading() as conn:
            row = conn.execute("SELECT state FROM outbox WHERE id = ?", (item_id,)).fetchone()
        return None if row is None else State(row[0])

    def pragmas(self) -> dict[str, int | str]:
        """The storage settings in force on this thread's connection (for tests and self-check)."""
        with self._reading() as conn:
            return {
                name: conn.execute(f"PRAGMA {name}").fetchone()[0]
                for name in (
                    "journal_mode",
                    "synchronous",
                    "user_version",
                    "busy_timeout",
                    "secure_delete",
                )
            }

    def close(self) -> None:
        """Close every thread's connection; idempotent."""
        with self._conns_lock:
            self._closed.set()
            conns, self._conns = self._conns, []
            lock, self._lock = self._lock, None
        for _, conn in conns:
            with contextlib.suppress(sqlite3.Error):
                conn.close()
        if lock is not None:  # only once every connection is closed: nothing writes after it
            lock.release()

    def __enter__(self) -> Outbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- helpers -----------------------------------------------------------------------------

    def _get_sealed(self, item_id: str, column: str) -> bytes | None:
        if column not in ("summary", "response"):
            raise ValueError(column)
        with self._reading() as conn:
            row = conn.execute(
                f"SELECT {column} FROM outbox WHERE id = ?",  # noqa: S608 - column checked above
                (item_id,),
            ).fetchone()
        if row is None or row[0] is None:
            return None
        try:
            return self._sealer.open(item_id, column, bytes(row[0]))
        except InvalidTag:
            raise OutboxCorruptError(
                f"the {column} of outbox item {item_id} does not decrypt"
            ) from None

    def _open_or_none(self, row_id: str, column: str, blob: bytes | None) -> bytes | None:
        if blob is None:
            return None
        try:
            return self._sealer.open(row_id, column, bytes(blob))
        except InvalidTag:
            log.error("outbox item %s: %s does not decrypt", row_id, column)
            return None

    @staticmethod
    def _state_of(conn: sqlite3.Connection, item_id: str) -> State:
        row = conn.execute("SELECT state FROM outbox WHERE id = ?", (item_id,)).fetchone()
        if row is None:
            raise UnknownItemError(f"no outbox item {item_id}")
        return State(row[0])

    def _require(
        self, conn: sqlite3.Connection, item_id: str, allowed: Collection[State], action: str
    ) -> State:
        state = self._state_of(conn, item_id)
        if state not in allowed:
            raise InvalidTransitionError(f"outbox item {item_id} is {state.value}; cannot {action}")
        return state


def open_attachments(
    sealer: _Sealer, conn: sqlite3.Connection, row_id: str, files: int
) -> tuple[Attachment, ...]:
    """A row's files in order, decrypted; InvalidTag when any is damaged or moved, or one is
    missing."""
    rows = conn.execute(
        "SELECT ordinal, name, content_type, size, sha256, data FROM attachments"
        " WHERE item_id = ? ORDER BY ordinal",
        (row_id,),
    ).fetchall()
    if len(rows) != files:  # the caller counted them in this same transaction: damage
        raise InvalidTag
    opened = []
    for expected, (ordinal, name, content_type, size, digest, data) in enumerate(rows):
        if ordinal != expected:
            raise InvalidTag
        column = functools.partial(_attachment_column, ordinal)
        plain = sealer.open(
            row_id,
            _attachment_data_column(ordinal, int(size), str(content_type)),
            bytes(data),
        )
        stored_digest = sealer.open(row_id, column("sha256"), bytes(digest))
        if not hmac.compare_digest(hashlib.sha256(plain).digest(), stored_digest):
            raise InvalidTag
        try:
            opened.append(
                Attachment(
                    name=sealer.open(row_id, column("name"), bytes(name)).decode("utf-8"),
                    content_type=str(content_type),
                    data=plain,
                )
            )
        except ValueError:  # a name that is not UTF-8 text or not a valid name
            raise InvalidTag from None
    return tuple(opened)


def _short(error: str) -> str:
    return error[:MAX_ERROR_CHARS]
