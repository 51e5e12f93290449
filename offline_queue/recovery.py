"""Opening the outbox when its files may be damaged: set the damaged files aside, start afresh.

A damaged outbox must not stop the terminal: the citizen in front of it still needs to submit. So
the damaged database and its -wal/-shm/-journal companions are renamed aside, never deleted (they
hold submissions that staff can have recovered with the same key), a fresh outbox starts at the
original path, and the caller learns why so staff can be told.

A wrong key or a database from a newer client is not damage: the data is fine and renaming it
aside would hide it, so those errors go to the caller unchanged.

SQLite treats a write-ahead log frame that fails its checksum as the torn tail of a write cut short
by power loss, and silently drops it and every frame after it, committed or not. With
synchronous=FULL only the last transaction can be torn, so a damaged frame followed by a later,
intact transaction means committed submissions would vanish without an error. The log is
therefore inspected before SQLite opens (and on close, checkpoints and deletes) it.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import sqlite3
import struct
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from offline_queue.errors import OutboxCorruptError, classify
from offline_queue.files import fsync_dir
from offline_queue.lock import OutboxLock
from offline_queue.outbox import BUSY_TIMEOUT_MS, SIDECARS, Outbox

log = logging.getLogger(__name__)

QUARANTINE_MARK = ".corrupt-"
MAX_DETAIL_CHARS = 500


class QuarantineReason(StrEnum):
    NOT_A_DATABASE = "not_a_database"  # the file is not SQLite at all (overwritten, truncated)
    DAMAGED = "damaged"  # SQLite reported damage while opening
    CHECK_FAILED = "check_failed"  # the integrity check found damage the open did not touch
    WAL_DAMAGED = "wal_damaged"  # the write-ahead log holds commits SQLite would drop


class Check(StrEnum):
    """How much of the database to verify at open."""

    QUICK = "quick"  # PRAGMA quick_check: every page and b-tree, not index-to-table agreement
    FULL = "full"  # PRAGMA integrity_check: also that every index matches its table
    NONE = "none"


@dataclass(frozen=True, slots=True)
class OpenedOutbox:
    outbox: Outbox
    quarantined: Path | None = None  # the damaged database under its new name
    reason: QuarantineReason | None = None
    files: tuple[Path, ...] = ()  # every file set aside (database, -wal, -shm, -journal)
    detail: str = ""  # what SQLite or the log inspection found, for the log


def open_outbox(
    path: Path,
    key: bytes,
    clock: Callable[[], float] = time.time,
    *,
    check: Check | str = Check.QUICK,
) -> OpenedOutbox:
    """Open the outbox at path; if it is damaged, quarantine it and open a fresh one there.

    WrongKeyError, SchemaTooNewError and storage errors (disk full, I/O) propagate: they are not
    damage. An error opening the fresh outbox propagates too; the damaged files are safe by then.
    OutboxLockedError when another process has the outbox open: its files are not looked at.
    """
    path = Path(path)
    # Held from before the log is inspected until the outbox (which holds its own share) is
    # open: another process's log being written is not damage, and its files are not renamed.
    lock = OutboxLock.acquire(path)
    try:
        return _open(path, key, clock, Check(check))
    finally:
        lock.release()


def _open(path: Path, key: bytes, clock: Callable[[], float], check: Check) -> OpenedOutbox:
    wal_problem = inspect_wal(wal_path(path), path)
    if wal_problem is not None:
        return _start_afresh(path, key, clock, QuarantineReason.WAL_DAMAGED, wal_problem)
    try:
        outbox = Outbox(path, key, clock=clock)
    except OutboxCorruptError as exc:
        reason = (
            QuarantineReason.NOT_A_DATABASE
            if _sqlite_code(exc) == sqlite3.SQLITE_NOTADB
            else QuarantineReason.DAMAGED
        )
        return _start_afresh(path, key, clock, reason, str(exc))
    try:
        problem = run_check(path, check)
    except BaseException:
        outbox.close()
        raise
    if problem is None:
        return OpenedOutbox(outbox)
    outbox.close()
    return _start_afresh(path, key, clock, QuarantineReason.CHECK_FAILED, problem)


def _start_afresh(
    path: Path,
    key: bytes,
    clock: Callable[[], float],
    reason: QuarantineReason,
    detail: str,
) -> OpenedOutbox:
    files = quarantine(path, clock)
    detail = detail[:MAX_DETAIL_CHARS]
    log.error(
        "outbox %s is damaged (%s: %s); set aside as %s; a new outbox starts",
        path,
        reason.value,
        detail,
        ", ".join(f.name for f in files),
    )
    fresh = Outbox(path, key, clock=clock)
    main = _quarantined_main(path, files)
    return OpenedOutbox(fresh, quarantined=main, reason=reason, files=files, detail=detail)


def _quarantined_main(path: Path, files: tuple[Path, ...]) -> Path | None:
    for f in files:
        if not f.name.endswith(SIDECARS) and f.name.startswith(path.name + QUARANTINE_MARK):
            return f
    return None


def wal_path(path: Path) -> Path:
    return path.with_name(path.name + "-wal")


def quarantine(path: Path, clock: Callable[[], float] = time.time) -> tuple[Path, ...]:
    """Rename the database at path and its companions aside; return their new paths.

    The names keep SQLite's pairing (outbox.sqlite3.corrupt-20261123T101500Z and
    outbox.sqlite3.corrupt-20261123T101500Z-wal), so the set opens together for recovery.
    Companions move first: a -wal left beside a new empty database would be replayed into it.
    Nothing is overwritten; every connection to path must be closed before calling this.
    """
    return set_aside(path, QUARANTINE_MARK, clock)


def set_aside(path: Path, mark: str, clock: Callable[[], float] = time.time) -> tuple[Path, ...]:
    """Rename the database at path and its companions to <name><mark><UTC time>[-n]<tail>."""
    path = Path(path)
    stamp = dt.datetime.fromtimestamp(clock(), tz=dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    sources = [path.with_name(path.name + tail) for tail in SIDECARS] + [path]
    for n in range(1000):
        base = f"{path.name}{mark}{stamp}" + (f"-{n}" if n else "")
        moves = [(src, src.with_name(base + src.name[len(path.name) :])) for src in sources]
        if not any(os.path.lexists(dst) for _, dst in moves):
            break
    else:
        raise OutboxCorruptError(f"no free name to set {path} aside at {stamp}")
    moved: list[Path] = []
    try:
        for src, dst in moves:
            try:
                os.rename(src, dst)
            except FileNotFoundError:
                continue
            moved.append(dst)
        fsync_dir(path.parent)
    except OSError as exc:
        raise classify(exc) from exc
    return tuple(moved)


def run_check(path: Path, check: Check = Check.QUICK) -> str | None:
    """None when the database passes the check, else what the check reported.

    Runs on a connection of its own; the outbox's connections stay open meanwhile, so closing this
    one does not checkpoint or remove the log.
    """
    if check is Check.NONE:
        return None
    pragma = "quick_check" if check is Check.QUICK else "integrity_check"
    try:
        conn = sqlite3.connect(path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None)
        try:
            rows = conn.execute(f"PRAGMA {pragma}").fetchall()
        finally:
            conn.close()
    except sqlite3.Error as exc:
        error = classify(exc)
        if isinstance(error, OutboxCorruptError):
            return str(error)
        raise error from exc
    lines = [str(row[0]) for row in rows]
    return None if lines == ["ok"] else "; ".join(lines)[:MAX_DETAIL_CHARS]


def _sqlite_code(exc: BaseException) -> int | None:
    cause = exc.__cause__
    code = getattr(cause, "sqlite_errorcode", None)
    return code & 0xFF if isinstance(code, int) else None


# -- write-ahead log inspection (https://www.sqlite.org/fileformat2.html#walformat) ----------

_WAL_MAGIC = 0x377F0682  # the low bit says whether checksum words are big-endian
_WAL_VERSION = 3007000
_WAL_HEADER = 32
_FRAME_HEADER = 24
_MASK = 0xFFFFFFFF


@dataclass(frozen=True, slots=True)
class _Frame:
    index: int
    page_no: int
    commit: int  # database size in pages for the last frame of a transaction, else 0
    salts: tuple[int, int]
    stored: tuple[int, int]  # the cumulative checksum the frame carries
    body: bytes  # the first 8 header bytes and the page: what the checksum covers


def inspect_wal(wal: Path, db: Path) -> str | None:
    """What is wrong with the log, or None when SQLite's reading of it loses no commit."""
    try:
        size = os.stat(wal).st_size
    except FileNotFoundError:
        return None
    if size < _WAL_HEADER + _FRAME_HEADER + 512:
        return None  # not one frame of the smallest page size: nothing committed to lose
    with open(wal, "rb") as fh:
        header = fh.read(_WAL_HEADER)
    magic, _, header_page_size = struct.unpack(">3I", header[:12])
    orders = [bool(magic & 1)] if magic & ~1 == _WAL_MAGIC else [False, True]
    for page_size in _candidate_page_sizes(header_page_size, db):
        for big_endian in orders:
            found = _lost_commits(wal, header, page_size, big_endian)
            if found is not None:
                return found
    return None


def _candidate_page_sizes(header_page_size: int, db: Path) -> list[int]:
    sizes = [header_page_size] if _valid_page_size(header_page_size) else []
    try:
        with open(db, "rb") as fh:
            db_header = fh.read(18)
    except OSError:
        db_header = b""
    if len(db_header) == 18 and db_header.startswith(b"SQLite format 3\x00"):
        raw = struct.unpack(">H", db_header[16:18])[0]
        db_size = 65536 if raw == 1 else raw
        if _valid_page_size(db_size) and db_size not in sizes:
            sizes.append(db_size)
    if not sizes:
        sizes.append(4096)  # SQLite's default
    return sizes


def _valid_page_size(size: int) -> bool:
    return 512 <= size <= 65536 and size & (size - 1) == 0


def _checksum(data: bytes, seed: tuple[int, int], big_endian: bool) -> tuple[int, int]:
    s0, s1 = seed
    words = iter(struct.unpack(f"{'>' if big_endian else '<'}{len(data) // 4}I", data))
    for a, b in zip(words, words, strict=True):
        s0 = (s0 + a + s1) & _MASK
        s1 = (s1 + b + s0) & _MASK
    return s0, s1


def _frames(wal: Path, page_size: int) -> Iterator[_Frame]:
    size = _FRAME_HEADER + page_size
    with open(wal, "rb") as fh:
        fh.seek(_WAL_HEADER)
        index = 0
        while len(raw := fh.read(size)) == size:
            page_no, commit, salt1, salt2, c1, c2 = struct.unpack(">6I", raw[:_FRAME_HEADER])
            yield _Frame(index, page_no, commit, (salt1, salt2), (c1, c2), raw[:8] + raw[24:])
            index += 1


def _lost_commits(wal: Path, header: bytes, page_size: int, big_endian: bool) -> str | None:
    magic, version, stored_size, _, salt1, salt2, c1, c2 = struct.unpack(">8I", header)
    header_ok = (
        magic & ~1 == _WAL_MAGIC
        and version == _WAL_VERSION
        and stored_size == page_size
        and _checksum(header[:24], (0, 0), big_endian) == (c1, c2)
    )
    salts = (salt1, salt2)
    running = (c1, c2)  # the checksum SQLite computes, valid while the chain holds
    previous = (c1, c2)  # the checksum the frame before carries, whatever its state
    broken: int | None = None if header_ok else -1
    generation = salts
    boundary_seen = False  # a transaction ended at or after the damage
    for frame in _frames(wal, page_size):
        if broken is None:
            # SQLite's own reading: salts match and the running checksum continues.
            if frame.salts == salts and frame.page_no != 0:
                running = _checksum(frame.body, running, big_endian)
                if running == frame.stored:
                    previous = frame.stored
                    continue
            broken = frame.index
        if broken == -1 and frame.index == 0:
            generation = frame.salts  # the header's salts may be what was damaged
        # Frames with other salts are left from before the log last restarted.
        if frame.salts == generation:
            intact = (
                frame.page_no != 0 and _checksum(frame.body, previous, big_endian) == frame.stored
            )
            if intact and frame.commit and boundary_seen:
                where = "header" if broken == -1 else f"frame {broken}"
                return (
                    f"write-ahead log damaged at {where}; an intact commit at frame"
                    f" {frame.index} follows it, so committed transactions would be dropped"
                )
            if frame.commit:
                boundary_seen = True
        previous = frame.stored
    return None
