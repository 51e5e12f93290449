"""Recovering the submissions of an outbox that was set aside as damaged into the live outbox.

A set-aside outbox may hold submissions citizens were told are accepted. Each row that can still
be read and decrypted, and was not delivered, goes into the live outbox under its same id and with
its files, queued. The id is the platform's idempotency key, so a row that was in fact delivered
before the damage gets the platform's stored answer and is marked delivered once. Rows the live
outbox already has are left alone, so recovering twice adds nothing.

Reading is row by row: a damaged page costs the rows on it, not the rest. Rows are found from the
table and from each of its indexes (an index still lists the rows of a damaged table page, which
is how they are counted as unreadable), and every row number up to the highest seen is tried too.

The set-aside file is opened read-only (SQLite may add -shm and -wal companions beside it), then it
and its companions are renamed to <name>.recovered-<UTC time> so it is not recovered again by
mistake. The live outbox must be open (and so locked) by the caller: a running terminal refuses.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
import time
import urllib.parse
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

from cryptography.exceptions import InvalidTag

from offline_queue.errors import (
    AttachmentLimitError,
    DuplicateItemError,
    SalvageSourceError,
    SchemaTooNewError,
    WrongKeyError,
)
from offline_queue.outbox import (
    _KEY_CHECK_PLAINTEXT,
    _KEY_CHECK_ROW,
    BUSY_TIMEOUT_MS,
    SCHEMA_VERSION,
    SIDECARS,
    Attachment,
    Outbox,
    State,
    _payload_column,
    _Sealer,
    companion_paths,
    open_attachments,
)
from offline_queue.recovery import set_aside

log = logging.getLogger(__name__)

RECOVERED_MARK = ".recovered-"
_SQLITE_MAGIC = b"SQLite format 3\x00"
_SCAN_CHUNK = 500


@dataclass(frozen=True, slots=True)
class SalvageResult:
    source: Path  # the set-aside file as given
    recovered: tuple[str, ...]  # ids now queued in the live outbox
    already_present: tuple[str, ...]  # ids the live outbox had already: left alone
    delivered: int  # delivered before the damage: the platform has them, nothing to send
    unreadable: int  # rows known to exist that could not be read, decrypted or stored
    renamed: tuple[Path, ...]  # the set-aside files under their new names

    @property
    def renamed_to(self) -> Path | None:
        """The set-aside database under its new name."""
        for path in self.renamed:
            if not path.name.endswith(SIDECARS):
                return path
        return None


class _Skip(Enum):
    DELIVERED = "delivered"
    UNREADABLE = "unreadable"


@dataclass(frozen=True, slots=True)
class _Row:
    id: str
    kind: str
    created_at: float
    payload: bytes
    summary: bytes
    attachments: tuple[Attachment, ...]


def recover_set_aside(
    source: Path,
    outbox: Outbox,
    key: bytes,
    clock: Callable[[], float] = time.time,
) -> SalvageResult:
    """Queue the undelivered submissions of the set-aside outbox at source into outbox.

    key is the key of both (one terminal, one key). Raises SalvageSourceError when source is
    missing, not an outbox or the live outbox itself, WrongKeyError when the key does not open
    it, SchemaTooNewError for a newer client's file; nothing is changed or renamed then.
    """
    source = Path(source)
    _check_source(source, outbox.path)
    sealer = _Sealer(key)
    recovered: list[str] = []
    present: list[str] = []
    delivered = 0
    unreadable = 0
    companions = companion_paths(source)[1:]
    existed = {path for path in companions if os.path.lexists(path)}
    with _cleaning_up(companions, existed), contextlib.closing(_open_read_only(source)) as conn:
        files_table = _check_schema(conn)
        _check_key(conn, sealer)
        for found in _rows(conn, sealer, files_table):
            if found is _Skip.UNREADABLE:
                unreadable += 1
            elif found is _Skip.DELIVERED:
                delivered += 1
            elif outbox.state_of(found.id) is not None:
                present.append(found.id)
            else:
                try:
                    _store(outbox, found)
                except DuplicateItemError:  # the same id arrived meanwhile: it is queued
                    present.append(found.id)
                except AttachmentLimitError as exc:
                    log.error("outbox recovery: item %s exceeds the limits: %s", found.id, exc)
                    unreadable += 1
                else:
                    recovered.append(found.id)
    # A file recovered before keeps its name: it says so already.
    renamed = () if RECOVERED_MARK in source.name else set_aside(source, RECOVERED_MARK, clock)
    log.info(
        "outbox recovery from %s: %d queued again, %d already present, %d delivered before,"
        " %d unreadable; renamed to %s",
        source,
        len(recovered),
        len(present),
        delivered,
        unreadable,
        ", ".join(p.name for p in renamed),
    )
    return SalvageResult(source, tuple(recovered), tuple(present), delivered, unreadable, renamed)


@contextlib.contextmanager
def _cleaning_up(companions: tuple[Path, ...], existed: set[Path]) -> Iterator[None]:
    """Remove the companions a read-only connection made (an empty -wal, the -shm index) once
    it is closed, so the set-aside files stay the files that were set aside."""
    try:
        yield
    finally:
        for path in companions:
            if path not in existed:
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()


def _check_source(source: Path, live: Path) -> None:
    try:
        with source.open("rb") as fh:
            header = fh.read(len(_SQLITE_MAGIC))
    except OSError as exc:
        raise SalvageSourceError(f"cannot read {source}: {exc.strerror}") from exc
    if header != _SQLITE_MAGIC:
        raise SalvageSourceError(f"{source} is not an SQLite database (or its first page is lost)")
    for own in companion_paths(live):
        with contextlib.suppress(OSError):
            if os.path.samefile(source, own):
                raise SalvageSourceError(f"{source} is the live outbox, not a set-aside one")


def _open_read_only(source: Path) -> sqlite3.Connection:
    uri = f"file:{urllib.parse.quote(str(source.resolve()))}?mode=ro"
    try:
        return sqlite3.connect(uri, uri=True, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None)
    except sqlite3.Error as exc:
        raise SalvageSourceError(f"{source} cannot be opened: {exc}") from exc


def _check_schema(conn: sqlite3.Connection) -> bool:
    """True when the file has an attachments table (schema 3 on)."""
    try:
        version = int(conn.execute("PRAGMA user_version").fetchone()[0])
        tables = {str(r[0]) for r in conn.execute("SELECT name FROM sqlite_master").fetchall()}
    except sqlite3.Error as exc:
        raise SalvageSourceError(f"the schema cannot be read: {exc}") from exc
    if version > SCHEMA_VERSION:
        raise SchemaTooNewError(
            f"outbox schema {version} is newer than this client's {SCHEMA_VERSION}"
        )
    if "outbox" not in tables:
        raise SalvageSourceError("the file holds no outbox table")
    return "attachments" in tables


def _check_key(conn: sqlite3.Connection, sealer: _Sealer) -> None:
    """WrongKeyError when the key check row is readable and the key does not open it; a damaged
    check row is no reason to give up on the rows."""
    try:
        row = conn.execute("SELECT value FROM meta WHERE key = 'key_check'").fetchone()
    except sqlite3.Error as exc:
        log.warning("outbox recovery: the key check row cannot be read (%s)", exc)
        return
    if row is None:
        return
    try:
        plain = sealer.open(_KEY_CHECK_ROW, "key_check", bytes(row[0]))
    except InvalidTag:
        raise WrongKeyError("the key does not open the set-aside outbox") from None
    if plain != _KEY_CHECK_PLAINTEXT:
        raise WrongKeyError("the key does not open the set-aside outbox")


def _scan(conn: sqlite3.Connection, query: str) -> tuple[set[int], bool]:
    """Row numbers a query yields until damage stops it; and whether it got to the end."""
    found: set[int] = set()
    try:
        cursor = conn.execute(query)
        while batch := cursor.fetchmany(_SCAN_CHUNK):
            found.update(int(r[0]) for r in batch)
    except sqlite3.Error as exc:
        log.warning("outbox recovery: %s stopped at damage (%s)", query, exc)
        return found, False
    return found, True


def _known_rows(conn: sqlite3.Connection) -> set[int]:
    queries = ["SELECT rowid FROM outbox NOT INDEXED"]
    try:
        indexes = conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'outbox'"
        ).fetchall()
    except sqlite3.Error:
        indexes = []
    for (name,) in indexes:
        quoted = '"' + str(name).replace('"', '""') + '"'
        queries.append(f"SELECT rowid FROM outbox INDEXED BY {quoted}")  # noqa: S608 - quoted name from the schema
    known: set[int] = set()
    for query in queries:
        found, _ = _scan(conn, query)
        known |= found
    return known


def _rows(conn: sqlite3.Connection, sealer: _Sealer, files_table: bool) -> Iterator[_Row | _Skip]:
    """Per row, by row number: a _Row to queue, or why there is nothing to queue."""
    known = _known_rows(conn)
    top = max(known, default=0)
    for rowid in range(1, top + 1):
        try:
            row = conn.execute(
                "SELECT id, kind, state, created_at, payload, summary FROM outbox WHERE rowid = ?",
                (rowid,),
            ).fetchone()
        except sqlite3.Error as exc:
            if rowid in known:  # a gap on a damaged page may never have held a row
                log.warning("outbox recovery: row %d unreadable (%s)", rowid, exc)
                yield _Skip.UNREADABLE
            continue
        if row is None:
            if rowid in known:  # an index lists it, the table has lost it
                yield _Skip.UNREADABLE
            continue
        yield _open_row(conn, sealer, files_table, row)


def _open_row(
    conn: sqlite3.Connection, sealer: _Sealer, files_table: bool, row: tuple[object, ...]
) -> _Row | _Skip:
    row_id, kind, state, created_at, payload, summary = row
    if not isinstance(row_id, str) or not isinstance(kind, str):
        return _Skip.UNREADABLE
    if state == State.DELIVERED.value:
        return _Skip.DELIVERED
    if state not in {s.value for s in State} or not isinstance(payload, bytes):
        log.warning("outbox recovery: item %s has no readable payload", row_id)
        return _Skip.UNREADABLE
    if not isinstance(created_at, int | float):
        return _Skip.UNREADABLE
    try:
        count = 0
        if files_table:
            count = int(
                conn.execute(
                    "SELECT COUNT(*) FROM attachments WHERE item_id = ?", (row_id,)
                ).fetchone()[0]
            )
        plain = sealer.open(row_id, _payload_column(count), payload)
        files = open_attachments(sealer, conn, row_id, count) if count else ()
    except (sqlite3.Error, InvalidTag, ValueError) as exc:
        log.warning("outbox recovery: item %s unreadable (%s)", row_id, type(exc).__name__)
        return _Skip.UNREADABLE
    opened_summary = b"{}"
    if isinstance(summary, bytes):
        try:
            opened_summary = sealer.open(row_id, "summary", summary)
        except InvalidTag:  # the submission itself is whole: queue it without its summary
            log.warning("outbox recovery: item %s summary does not decrypt", row_id)
    return _Row(row_id, kind, float(created_at), plain, opened_summary, files)


def _store(outbox: Outbox, row: _Row) -> None:
    outbox.enqueue(
        row.kind,
        row.payload,
        row.summary,
        item_id=row.id,
        attachments=row.attachments,
        created_at=row.created_at,
    )
