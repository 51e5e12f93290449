"""The terminal's audit log: who did what at this terminal, append-only, hash-chained and signed.

Each entry names an event kind, the staff member (if any) and a few non-personal details
(submission ids, receipt numbers, service ids, counts, reason codes). Its hash covers its
sequence number, time, kind, staff id, details and the previous entry's hash, so an entry edited,
removed, inserted or moved breaks the chain; the hash is signed with the terminal's enrolled
Ed25519 key, so rewriting the chain from an edit onwards needs that key. A one-row head record
(the last sequence number and hash, signed too) is rewritten with every append, so cutting
entries off the end is found as well. What no local check can find is the whole file put back
to an older copy of itself: the platform's copy of the entries (uploaded with the queue) is
what settles that.

Storage: SQLite in WAL mode with synchronous=FULL, created 0600 before SQLite opens it; every
append is one BEGIN IMMEDIATE transaction (read the head, insert, rewrite the head), so two
writers, in one process or two, never fork the chain.

Personal data is refused at the door: details take only allow-listed keys with short code-like
values, and anything that looks like a resident ID number or a phone number is a ValueError.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import datetime as dt
import hashlib
import json
import logging
import os
import re
import sqlite3
import threading
import uuid
import weakref
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any, Final

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from devices.identity import is_valid_id_number
from kiosk.i18n import N_, _
from kiosk.trust import canonical_json, ed25519_public_from_b64, key_id, raw_public_bytes
from offline_queue.files import PRIVATE_FILE, create_private_file, fsync_dir, narrow_mode

log = logging.getLogger(__name__)

AUDIT_FILE: Final = "audit.sqlite3"
ZERO_HASH: Final = "0" * 64
ENTRY_SCHEME: Final = "hall-audit-entry-v1"
HEAD_SCHEME: Final = "hall-audit-head-v1"
BUSY_TIMEOUT_MS: Final = 5000
SIDECARS: Final = ("-wal", "-shm", "-journal")

MAX_DETAILS: Final = 8
MAX_VALUE_CHARS: Final = 64
MAX_INT: Final = 2**31 - 1  # ten digits at most: no phone or ID number fits in a count


class AuditKind(StrEnum):
    SIGN_IN = "sign_in"
    SIGN_OUT = "sign_out"
    SIGN_IN_REFUSED = "sign_in_refused"
    SUBMISSION = "submission"
    CORRECTION = "correction"
    REPRINT = "reprint"
    EXPORT = "export"
    IMPORT = "import"
    UPLOAD = "upload"
    # Bundles (kiosk/bundles.py) and the staff list from the platform (kiosk/staff_sync.py).
    BUNDLE_EXPORTED = "bundle_exported"
    BUNDLE_IMPORTED = "bundle_imported"
    STAFF_LIST_UPDATED = "staff_list_updated"


class Broken(StrEnum):
    """Why verification stopped: the first entry that is not what the terminal wrote."""

    HASH = "hash"  # the entry's content does not match its hash: edited
    SIGNATURE = "signature"  # the hash is not signed by this terminal's key
    CHAIN = "chain"  # a signed entry that does not follow the one before: spliced in
    SEQUENCE = "sequence"  # a number missing or out of place: removed, reordered, cut off
    HEAD = "head"  # the head record is missing, unsigned, or does not match the last entry
    UNREADABLE = "unreadable"  # not an audit log, or it cannot be read
    MISSING = "missing"  # no file there


# -- what details may hold ----------------------------------------------------------------------

_CODE = re.compile(r"[a-z][a-z0-9_]{0,39}")
_SERVICE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}")
# The terminal id (as the platform enrols them) before the date and the day's number.
_RECEIPT_NUMBER = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,31}-\d{8}-\d{4,6}")
_STAFF_ID = re.compile(r"[A-Za-z0-9]{1,16}")
_STRUCTURED = frozenset({"receipt_number", "submission_id", "corrects", "bundle_id"})
_CHANNELS = frozenset({"kiosk", "counter", "rural"})


def _matches(pattern: re.Pattern[str]) -> Callable[[str], bool]:
    def check(value: str) -> bool:
        return pattern.fullmatch(value) is not None

    return check


def _uuid_text(value: str) -> bool:
    try:
        return str(uuid.UUID(value)) == value.lower() and len(value) == 36
    except ValueError:
        return False


_STRING_KEYS: Final[Mapping[str, Callable[[str], bool]]] = {
    "submission_id": _uuid_text,
    "corrects": _uuid_text,  # the submission a correction replaces
    "receipt_number": _matches(_RECEIPT_NUMBER),
    "service_id": _matches(_SERVICE_ID),
    "reason": _matches(_CODE),
    "field": _matches(_CODE),
    "result": _matches(_CODE),
    "channel": _CHANNELS.__contains__,
    "bundle_id": _uuid_text,  # a bundle exported or imported
}
_INT_KEYS: Final = frozenset(
    {"count", "copies", "attempt", "delivered", "rejected", "failed", "first_seq", "last_seq"}
    | {"version", "added", "changed", "removed"}  # the staff list from the platform
)
# Lists of a form's field names (which answers a correction changed; never the answers).
_LIST_KEYS: Final[Mapping[str, Callable[[str], bool]]] = {"fields": _matches(_CODE)}
MAX_LIST_ITEMS: Final = 32
ALLOWED_DETAILS: Final = frozenset(_STRING_KEYS) | _INT_KEYS | frozenset(_LIST_KEYS)
Detail = str | int | list[str]

_ID_NUMBER_CANDIDATE = re.compile(r"(?=(\d{17}[\dXx]))")
_LONG_DIGITS = re.compile(r"\d{15,}")  # the old 15-digit ID numbers, bank cards
_MOBILE = re.compile(r"(?<!\d)(?:\+?86[\s-]?)?1[3-9]\d(?:[\s-]?\d{4}){2}(?!\d)")
_LANDLINE = re.compile(r"(?<![\w-])0\d{2,3}[\s-]?\d{7,8}(?!\d)")


def looks_personal(text: str) -> bool:
    """True when text holds what looks like a resident ID number or a phone number."""
    compact = re.sub(r"\s", "", text)
    if any(is_valid_id_number(m) for m in _ID_NUMBER_CANDIDATE.findall(compact)):
        return True
    return bool(_LONG_DIGITS.search(compact) or _MOBILE.search(text) or _LANDLINE.search(text))


def check_staff_id(staff: str) -> str:
    if staff and (not _STAFF_ID.fullmatch(staff) or looks_personal(staff)):
        raise ValueError("a staff id is 1 to 16 letters or digits, and no phone number")
    return staff


def check_details(details: Mapping[str, Any] | None) -> dict[str, Detail]:
    """details as they are kept, once every key is allowed and every value is a short code.

    ValueError names the key, never the value (the value may be the very thing refused)."""
    if details is None:
        return {}
    if len(details) > MAX_DETAILS:
        raise ValueError(f"an audit entry has at most {MAX_DETAILS} details")
    kept: dict[str, Detail] = {}
    for name, value in details.items():
        if name not in ALLOWED_DETAILS:
            raise ValueError(f"{name!r} is not a detail an audit entry may hold")
        if name in _LIST_KEYS:
            kept[name] = _checked_list(name, value, _LIST_KEYS[name])
            continue
        if name in _INT_KEYS:
            if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_INT:
                raise ValueError(f"{name!r} is a count from 0 to {MAX_INT}")
            kept[name] = value
            continue
        if not isinstance(value, str) or not 0 < len(value) <= MAX_VALUE_CHARS:
            raise ValueError(f"{name!r} is a string of 1 to {MAX_VALUE_CHARS} characters")
        if not _STRING_KEYS[name](value):
            raise ValueError(f"{name!r} does not have the form of a {name}")
        # A receipt number or a submission id has a form of its own that a phone number does
        # not take ("0755-20261123-0007" is a receipt number, not a landline).
        if name not in _STRUCTURED and looks_personal(value):
            raise ValueError(f"{name!r} looks like an ID or phone number; it is not kept")
        kept[name] = value
    return kept


def _checked_list(name: str, value: object, check: Callable[[str], bool]) -> list[str]:
    """A list detail as kept: 1 to MAX_LIST_ITEMS short codes, none that looks personal."""
    if not isinstance(value, list | tuple) or not 0 < len(value) <= MAX_LIST_ITEMS:
        raise ValueError(f"{name!r} is a list of 1 to {MAX_LIST_ITEMS} names")
    for item in value:
        if not isinstance(item, str) or not check(item) or looks_personal(item):
            raise ValueError(f"{name!r} holds something that is not a name")
    return list(value)


# -- hashes and signatures ----------------------------------------------------------------------


def entry_hash(  # noqa: PLR0917 - the fields of one entry, in the order they are hashed
    seq: int, time: str, kind: str, staff: str, details: Mapping[str, Any], prev_hash: str
) -> str:
    """SHA-256 (hex) over the canonical JSON of the entry's fields, its predecessor's hash too."""
    body = {
        "seq": seq,
        "time": time,
        "kind": kind,
        "staff": staff,
        "details": dict(details),
        "prev_hash": prev_hash,
    }
    return hashlib.sha256(canonical_json(body)).hexdigest()


def entry_signing_input(hash_hex: str) -> bytes:
    """What the terminal signs for an entry: its hash, under a scheme name of its own, so an
    audit signature is never also a valid request signature or head signature."""
    return f"{ENTRY_SCHEME}\n{hash_hex}".encode("ascii")


def head_signing_input(seq: int, hash_hex: str) -> bytes:
    return f"{HEAD_SCHEME}\n{seq}\n{hash_hex}".encode("ascii")


def _sign(key: Ed25519PrivateKey, message: bytes) -> str:
    return base64.b64encode(key.sign(message)).decode("ascii")


def _signed_by(public_key: Ed25519PublicKey, signature_b64: str, message: bytes) -> bool:
    try:
        public_key.verify(base64.b64decode(signature_b64, validate=True), message)
    except (InvalidSignature, binascii.Error, ValueError, TypeError):
        return False
    return True


@dataclass(frozen=True)
class AuditEntry:
    seq: int
    time: str  # RFC 3339 with offset, e.g. 2026-11-29T20:09:41.123+08:00
    kind: str
    staff: str
    details: Mapping[str, Detail]
    prev_hash: str
    hash: str
    signature: str  # base64 of the Ed25519 signature of entry_signing_input(hash)

    def to_json(self) -> dict[str, Any]:
        """As it would travel to the platform: every field, so it can check each one again."""
        return {
            "seq": self.seq,
            "time": self.time,
            "kind": self.kind,
            "staff": self.staff,
            "details": dict(self.details),
            "prev_hash": self.prev_hash,
            "hash": self.hash,
            "signature": self.signature,
        }


def _rfc3339(moment: dt.datetime) -> str:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError("the audit clock must give a time with its offset")
    return moment.isoformat(timespec="milliseconds")


def _local_now() -> dt.datetime:
    return dt.datetime.now().astimezone()


# -- the log ------------------------------------------------------------------------------------

_SCHEMA = (
    """
    CREATE TABLE IF NOT EXISTS entries (
        seq INTEGER PRIMARY KEY NOT NULL,
        time TEXT NOT NULL,
        kind TEXT NOT NULL,
        staff TEXT NOT NULL,
        details TEXT NOT NULL,
        prev_hash TEXT NOT NULL,
        hash TEXT NOT NULL,
        signature TEXT NOT NULL
    )
    """,
    """
    CREATE TABLE IF NOT EXISTS head (
        one INTEGER PRIMARY KEY NOT NULL CHECK (one = 1),
        seq INTEGER NOT NULL,
        hash TEXT NOT NULL,
        signature TEXT NOT NULL
    )
    """,
    # Which key signs this file: read only to notice a re-enrolment (a new key), never trusted
    # for verification, which takes the key from outside.
    "CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY NOT NULL, value TEXT NOT NULL)",
)
_NO_CHANGES = """
    CREATE TRIGGER IF NOT EXISTS entries_append_only_{op} BEFORE {op} ON entries
    BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END
"""


def _companions(path: Path) -> tuple[Path, ...]:
    return (path, *(path.with_name(path.name + tail) for tail in SIDECARS))


def _connect(target: str | Path, *, uri: bool = False) -> sqlite3.Connection:
    conn = sqlite3.connect(
        target,
        timeout=BUSY_TIMEOUT_MS / 1000,
        isolation_level=None,  # transactions are explicit: BEGIN IMMEDIATE ... COMMIT
        check_same_thread=False,  # close() closes every thread's connection
        uri=uri,
    )
    try:
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    except BaseException:
        conn.close()
        raise
    return conn


class AuditLog:
    """Appends to data_dir/audit.sqlite3; safe to share between threads (a connection each)."""

    def __init__(
        self,
        path: Path,
        key: Ed25519PrivateKey,
        clock: Callable[[], dt.datetime] = _local_now,
    ) -> None:
        self._path = Path(path)
        self._key = key
        self._key_id = key_id(raw_public_bytes(key.public_key()))
        self._clock = clock
        self._local = threading.local()
        self._conns: list[tuple[weakref.ref[threading.Thread], sqlite3.Connection]] = []
        self._conns_lock = threading.Lock()
        self._closed = False
        try:
            self._prepare_files()
            self._create()
        except BaseException:
            self.close()
            raise

    @classmethod
    def in_data_dir(
        cls,
        data_dir: Path,
        key: Ed25519PrivateKey,
        clock: Callable[[], dt.datetime] = _local_now,
    ) -> AuditLog:
        data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        return cls(data_dir / AUDIT_FILE, key, clock)

    @property
    def path(self) -> Path:
        return self._path

    def _prepare_files(self) -> None:
        if create_private_file(self._path):
            fsync_dir(self._path.parent)
        for companion in _companions(self._path):
            narrow_mode(companion, PRIVATE_FILE)

    def _connection(self) -> sqlite3.Connection:
        if self._closed:
            raise RuntimeError("the audit log is closed")
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = _connect(self._path)
            try:
                mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
                if str(mode).lower() != "wal":
                    log.warning("audit log: WAL journal unavailable here (journal_mode=%s)", mode)
                # An append the terminal went on from is on disk, not in a cache a power cut
                # takes with it.
                conn.execute("PRAGMA synchronous = FULL")
            except BaseException:
                conn.close()
                raise
            with self._conns_lock:
                alive = []
                for ref, other in self._conns:
                    thread = ref()
                    if thread is None or not thread.is_alive():
                        other.close()
                    else:
                        alive.append((ref, other))
                alive.append((weakref.ref(threading.current_thread()), conn))
                self._conns = alive
            self._local.conn = conn
        return conn

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        conn = self._connection()
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                with contextlib.suppress(sqlite3.Error):
                    conn.execute("ROLLBACK")
            raise

    def _create(self) -> None:
        with self._transaction() as conn:
            for statement in _SCHEMA:
                conn.execute(statement)
            for op in ("UPDATE", "DELETE"):
                conn.execute(_NO_CHANGES.format(op=op))
            row = conn.execute("SELECT value FROM meta WHERE name = 'key_id'").fetchone()
            if row is not None and row[0] != self._key_id:
                # Enrolling again makes a new key; entries signed by the old one stay where
                # they are, and this key starts a log of its own.
                raise KeyChangedError(str(row[0]))
            if row is None:
                conn.execute("INSERT INTO meta (name, value) VALUES ('key_id', ?)", (self._key_id,))
            if conn.execute("SELECT 1 FROM head").fetchone() is None:
                # A head from the start: a file whose entries were all deleted still has one
                # saying how many there were; a file without one was not written here.
                conn.execute(
                    "INSERT INTO head (one, seq, hash, signature) VALUES (1, 0, ?, ?)",
                    (ZERO_HASH, _sign(self._key, head_signing_input(0, ZERO_HASH))),
                )

    def append(
        self, kind: AuditKind | str, staff: str = "", details: Mapping[str, Any] | None = None
    ) -> AuditEntry:
        """Write one entry (fsync'd when this returns). ValueError for an unknown kind, a
        malformed staff id, or details that are not allowed."""
        kind = AuditKind(kind).value
        staff = check_staff_id(staff)
        kept = check_details(details)
        time = _rfc3339(self._clock())
        details_text = canonical_json(kept).decode("utf-8")
        with self._transaction() as conn:
            head_seq, head_hash = conn.execute("SELECT seq, hash FROM head").fetchone()
            last = conn.execute(
                "SELECT seq, hash FROM entries ORDER BY seq DESC LIMIT 1"
            ).fetchone()
            if tuple(last or (0, ZERO_HASH)) != (head_seq, head_hash):
                # Go on from the head, the signed record of what was last written: what was
                # removed or added stays a visible break for verify() to name.
                log.error("audit log: the last entry and the head disagree")
            seq = int(head_seq) + 1
            digest = entry_hash(seq, time, kind, staff, kept, str(head_hash))
            signature = _sign(self._key, entry_signing_input(digest))
            conn.execute(
                "INSERT INTO entries (seq, time, kind, staff, details, prev_hash, hash, signature)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (seq, time, kind, staff, details_text, head_hash, digest, signature),
            )
            conn.execute(
                "UPDATE head SET seq = ?, hash = ?, signature = ?",
                (seq, digest, _sign(self._key, head_signing_input(seq, digest))),
            )
        return AuditEntry(seq, time, kind, staff, kept, str(head_hash), digest, signature)

    def entries(self, after_seq: int = 0, limit: int = 500) -> list[AuditEntry]:
        """Entries with a sequence number above after_seq, oldest first (a batch to upload)."""
        rows = self._connection().execute(
            "SELECT seq, time, kind, staff, details, prev_hash, hash, signature FROM entries"
            " WHERE seq > ? ORDER BY seq LIMIT ?",
            (after_seq, limit),
        )
        return [
            AuditEntry(seq, time, kind, staff, json.loads(details), prev, digest, signature)
            for seq, time, kind, staff, details, prev, digest, signature in rows
        ]

    def close(self) -> None:
        with self._conns_lock:
            self._closed = True
            for _ref, conn in self._conns:
                conn.close()
            self._conns = []


class KeyChangedError(RuntimeError):
    """The file is signed by another key (the terminal was enrolled again since)."""

    def __init__(self, old_key_id: str) -> None:
        super().__init__(f"the audit log is signed by key {old_key_id}, not this terminal's key")
        self.old_key_id = old_key_id


def open_audit_log(
    data_dir: Path, key: Ed25519PrivateKey, clock: Callable[[], dt.datetime] = _local_now
) -> AuditLog:
    """The terminal's audit log for this key. After a re-enrolment the old key's log is kept
    beside, renamed audit-<old key id>.sqlite3, and a new one is started for the new key."""
    try:
        return AuditLog.in_data_dir(data_dir, key, clock)
    except KeyChangedError as exc:
        path = data_dir / AUDIT_FILE
        kept = data_dir / f"audit-{exc.old_key_id}.sqlite3"
        # No connection is open (the constructor closed its own), so SQLite has folded its
        # WAL back into the file and removed it; any companion left is moved with it.
        for companion, target in zip(_companions(path), _companions(kept), strict=True):
            if companion.exists():
                os.replace(companion, target)
        fsync_dir(data_dir)
        log.warning("audit log of an earlier enrolment kept as %s", kept.name)
        return AuditLog.in_data_dir(data_dir, key, clock)


# -- verification -------------------------------------------------------------------------------


@dataclass(frozen=True)
class VerifyResult:
    ok: bool
    entries: int  # how many entries were checked and found whole before any break
    broken_seq: int | None = None  # the first entry that is not what the terminal wrote
    reason: Broken | None = None


def verify(path: Path, public_key: Ed25519PublicKey) -> VerifyResult:
    """Check every entry of the log at path against public_key, and the head against the last.

    Reads only: the file is opened read-only and left as it was."""
    if not path.is_file():
        return VerifyResult(False, 0, None, Broken.MISSING)
    try:
        conn = _connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    except sqlite3.Error:
        return VerifyResult(False, 0, None, Broken.UNREADABLE)
    try:
        conn.execute("BEGIN")  # one snapshot: an append meanwhile cannot split head and entries
        head = conn.execute("SELECT seq, hash, signature FROM head").fetchall()
        rows = conn.execute(
            "SELECT seq, time, kind, staff, details, prev_hash, hash, signature FROM entries"
            " ORDER BY seq"
        )
        return _check(rows, head, public_key)
    except sqlite3.Error:
        return VerifyResult(False, 0, None, Broken.UNREADABLE)
    finally:
        conn.close()


def _check(
    rows: Iterable[Any],
    head: list[tuple[Any, ...]],
    public_key: Ed25519PublicKey,
) -> VerifyResult:
    expected, prev = 1, ZERO_HASH
    for row in rows:
        seq, time, kind, staff, details_text, prev_hash, digest, signature = row
        if seq != expected:
            # A number missing (removed) or one before 1 (added): name the first out of place.
            return VerifyResult(False, expected - 1, min(int(seq), expected), Broken.SEQUENCE)
        try:
            details = json.loads(details_text)
            if not isinstance(details, dict):
                raise ValueError("details are an object")
            recomputed = entry_hash(seq, time, kind, staff, details, prev_hash)
        except (TypeError, ValueError):
            recomputed = None
        if recomputed != digest:
            return VerifyResult(False, seq - 1, seq, Broken.HASH)
        if not isinstance(signature, str) or not _signed_by(
            public_key, signature, entry_signing_input(digest)
        ):
            return VerifyResult(False, seq - 1, seq, Broken.SIGNATURE)
        if prev_hash != prev:
            return VerifyResult(False, seq - 1, seq, Broken.CHAIN)
        expected, prev = seq + 1, digest
    last = expected - 1
    if len(head) != 1:
        return VerifyResult(False, last, last + 1, Broken.HEAD)
    head_seq, head_hash, head_signature = head[0]
    if not isinstance(head_seq, int) or not isinstance(head_hash, str):
        return VerifyResult(False, last, last + 1, Broken.HEAD)
    if not isinstance(head_signature, str) or not _signed_by(
        public_key, head_signature, head_signing_input(head_seq, head_hash)
    ):
        return VerifyResult(False, last, last + 1, Broken.HEAD)
    if head_seq > last:
        # The head saw more entries than there are: the tail was cut off.
        return VerifyResult(False, last, last + 1, Broken.SEQUENCE)
    if head_seq < last or head_hash != prev:
        # Entries the head never saw, or a last entry that is not the one it saw.
        broken = head_seq + 1 if head_seq < last else last
        return VerifyResult(False, broken - 1, broken, Broken.HEAD)
    return VerifyResult(True, last)


# -- the --verify-audit command -----------------------------------------------------------------

WHOLE: Final = N_("The audit log is whole: {count} entries, each signed by this terminal.")
_BROKEN: Final[Mapping[Broken, str]] = {
    Broken.HASH: N_(
        "The audit log is broken at entry {number}: its content does not match its hash "
        "(the entry was changed)."
    ),
    Broken.SIGNATURE: N_(
        "The audit log is broken at entry {number}: it is not signed by this terminal's key."
    ),
    Broken.CHAIN: N_(
        "The audit log is broken at entry {number}: it does not follow the entry before it "
        "(an entry was inserted or replaced)."
    ),
    Broken.SEQUENCE: N_(
        "The audit log is broken at entry {number}: that entry is missing "
        "(entries were removed or reordered)."
    ),
    Broken.HEAD: N_(
        "The audit log is broken at entry {number}: its closing record does not match the "
        "entries (entries were removed or added at the end)."
    ),
}
UNREADABLE: Final = N_("The audit log could not be read: the file is not an audit log.")
MISSING: Final = N_("There is no audit log at that place.")


def describe(result: VerifyResult) -> str:
    """The sentence staff read for a verification's result, in the terminal's language."""
    if result.ok:
        return _(WHOLE).format(count=result.entries)
    if result.reason is Broken.MISSING:
        return _(MISSING)
    if result.reason is None or result.reason is Broken.UNREADABLE or result.broken_seq is None:
        return _(UNREADABLE)
    return _(_BROKEN[result.reason]).format(number=result.broken_seq)


def enrolled_public_key(data_dir: Path) -> Ed25519PublicKey:
    """The public key this terminal's enrolment names; NotEnrolled when there is none.

    Good for a check at the terminal; an auditor checks against the platform's record of the
    key instead, since whoever can rewrite files here could rewrite this one too."""
    from kiosk.terminal_auth import ENROLMENT_FILE, NotEnrolled

    try:
        record = json.loads((data_dir / ENROLMENT_FILE).read_text("utf-8"))
        return ed25519_public_from_b64(str(record["terminal_key"]))
    except (OSError, KeyError, TypeError, ValueError, binascii.Error) as exc:
        raise NotEnrolled(NotEnrolled.MESSAGE) from exc


def verify_command(path: Path, public_key: Ed25519PublicKey) -> tuple[bool, str]:
    """--verify-audit [PATH]: PATH is an audit file or a data directory holding one."""
    target = path / AUDIT_FILE if path.is_dir() else path
    result = verify(target, public_key)
    if not result.ok:
        log.info("audit log %s broken at %s: %s", target, result.broken_seq, result.reason)
    return result.ok, describe(result)
