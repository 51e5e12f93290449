"""POST /api/v1/audit: a terminal's audit log (kiosk/audit_log.py), uploaded with its queue.

The platform keeps its own checked copy, one row per entry, append-only. The terminal is the one
that signed the request, never a name in the body. Each entry is checked again here: its hash
recomputed from its fields, its signature verified with the key the terminal enrolled with (the
platform's record, never a key the terminal sends), its number one past the last one kept and
its prev_hash the last one's hash (the first entry's is 64 zeros). Entries that verify are kept
up to the first one that does not, which is answered 422 with its number.

An exact repeat of entries already kept is harmless (an answer lost on the way): it is answered
200 as the first time. A different entry, signed by the terminal, at a number already kept is a
fork (the terminal's log was put back to an older copy and written on from there): 409
audit_fork, and nothing of that request is kept.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import sqlite3
from collections.abc import Awaitable, Callable, Mapping
from contextlib import AbstractContextManager, closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Protocol

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from pydantic import BaseModel, Field
from starlette.requests import Request
from starlette.responses import Response

from kiosk.audit_log import ZERO_HASH, entry_hash, entry_signing_input
from kiosk.trust import canonical_json, key_id, raw_public_bytes
from refplatform.storage import writing

from .bodies import MIB
from .terminals import EnrolledKey

logger = logging.getLogger(__name__)

MAX_AUDIT_BATCH: Final = 200  # entries in one request (the terminal sends at most this many)
AUDIT_BODY_BYTES: Final = 2 * MIB
AUDIT_FORK: Final = "audit_fork"
AUDIT_INVALID: Final = "audit_entry_invalid"
_HEX64_CHARS: Final = frozenset("0123456789abcdef")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS audit_entries (
    terminal_id TEXT NOT NULL,
    key_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    time TEXT NOT NULL,
    kind TEXT NOT NULL,
    staff TEXT NOT NULL,
    details TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL,
    signature TEXT NOT NULL,
    received_at TEXT NOT NULL,
    PRIMARY KEY (terminal_id, key_id, seq)
) WITHOUT ROWID;
CREATE TRIGGER IF NOT EXISTS audit_entries_no_update BEFORE UPDATE ON audit_entries
BEGIN SELECT RAISE(ABORT, 'audit entries are append-only'); END;
CREATE TRIGGER IF NOT EXISTS audit_entries_no_delete BEFORE DELETE ON audit_entries
BEGIN SELECT RAISE(ABORT, 'audit entries are append-only'); END;
"""


class AuditAnswer(BaseModel):
    terminal_id: str = Field(description="the terminal that signed the request")
    last_seq: int = Field(description="the last entry of its log the platform now holds")


# The request body: {"entries": [AuditEntry.to_json(), ...]}, oldest first (docs/api.md).
AUDIT_REQUEST_SCHEMA: dict[str, Any] = {
    "title": "AuditUpload",
    "type": "object",
    "required": ["entries"],
    "additionalProperties": False,
    "properties": {
        "entries": {
            "type": "array",
            "minItems": 1,
            "maxItems": MAX_AUDIT_BATCH,
            "items": {
                "type": "object",
                "required": [
                    "seq",
                    "time",
                    "kind",
                    "staff",
                    "details",
                    "prev_hash",
                    "hash",
                    "signature",
                ],
                "additionalProperties": False,
                "properties": {
                    "seq": {"type": "integer", "minimum": 1},
                    "time": {"type": "string", "description": "RFC 3339 with its offset"},
                    "kind": {"type": "string"},
                    "staff": {"type": "string"},
                    "details": {"type": "object"},
                    "prev_hash": {"type": "string", "description": "64 hex digits"},
                    "hash": {"type": "string", "description": "64 hex digits"},
                    "signature": {"type": "string", "description": "base64 Ed25519 signature"},
                },
            },
        }
    },
}


@dataclass(frozen=True)
class Entry:
    seq: int
    time: str
    kind: str
    staff: str
    details: dict[str, Any]
    prev_hash: str
    hash: str
    signature: str


@dataclass(frozen=True)
class Appended:
    """What became of one upload: the last entry now held, or the refusal."""

    last_seq: int
    status: int = 200
    code: str | None = None
    reason: str = ""
    seq: int | None = None  # the entry refused


_FIELDS: Final = ("seq", "time", "kind", "staff", "details", "prev_hash", "hash", "signature")


def parse_entries(doc: object) -> list[Entry] | None:
    """The entries of a request body, None when it is not {"entries": [...]} of entries."""
    if not isinstance(doc, dict) or set(doc) != {"entries"}:
        return None
    raw = doc["entries"]
    if not isinstance(raw, list) or not 1 <= len(raw) <= MAX_AUDIT_BATCH:
        return None
    entries = []
    for item in raw:
        if not isinstance(item, dict) or set(item) != set(_FIELDS):
            return None
        seq, details = item["seq"], item["details"]
        texts = [item[name] for name in _FIELDS if name not in ("seq", "details")]
        if type(seq) is not int or seq < 1 or not isinstance(details, dict):
            return None
        if not all(isinstance(text, str) and len(text) <= 512 for text in texts):
            return None
        entries.append(
            Entry(
                seq,
                item["time"],
                item["kind"],
                item["staff"],
                details,
                item["prev_hash"],
                item["hash"],
                item["signature"],
            )
        )
    return entries


def _hex64(text: str) -> bool:
    return len(text) == 64 and set(text) <= _HEX64_CHARS


def _signed(public_key: Ed25519PublicKey, entry: Entry) -> bool:
    try:
        signature = base64.b64decode(entry.signature, validate=True)
        public_key.verify(signature, entry_signing_input(entry.hash))
    except (InvalidSignature, binascii.Error, ValueError):
        return False
    return True


def _fault(entry: Entry, public_key: Ed25519PublicKey) -> str | None:
    """Why the entry is not what a terminal holding this key wrote; None when it is."""
    if not _hex64(entry.hash) or not _hex64(entry.prev_hash):
        return "hash"
    try:
        recomputed = entry_hash(
            entry.seq, entry.time, entry.kind, entry.staff, entry.details, entry.prev_hash
        )
    except (TypeError, ValueError):
        return "hash"
    if recomputed != entry.hash:
        return "hash"
    if not _signed(public_key, entry):
        return "signature"
    return None


class AuditStore:
    """Every terminal's uploaded audit entries, in the platform's database."""

    def __init__(self, db_path: Path) -> None:
        self._path = db_path
        with closing(sqlite3.connect(self._path, timeout=30)) as db:
            db.executescript(_SCHEMA)

    def _write(self) -> AbstractContextManager[sqlite3.Connection]:
        return writing(self._path)

    def append(
        self,
        terminal_id: str,
        entries: list[Entry],
        public_key: Ed25519PublicKey,
        received_at: str,
    ) -> Appended:
        """Check and keep entries, oldest first, in one transaction.

        Entries that verify are kept up to a bad one (422); a fork (409) keeps nothing."""
        try:
            return self._append(terminal_id, entries, public_key, received_at)
        except _Fork as fork:
            return fork.answer

    def _append(
        self,
        terminal_id: str,
        entries: list[Entry],
        public_key: Ed25519PublicKey,
        received_at: str,
    ) -> Appended:
        log_key = key_id(raw_public_bytes(public_key))
        with self._write() as db:
            last = db.execute(
                "SELECT seq, hash FROM audit_entries WHERE terminal_id = ? AND key_id = ?"
                " ORDER BY seq DESC LIMIT 1",
                (terminal_id, log_key),
            ).fetchone()
            last_seq, last_hash = (int(last[0]), str(last[1])) if last else (0, ZERO_HASH)
            kept: list[tuple[Any, ...]] = []
            refusal: Appended | None = None
            for entry in entries:
                fault = _fault(entry, public_key)
                if fault is not None:
                    refusal = Appended(last_seq, 422, AUDIT_INVALID, fault, entry.seq)
                    break
                if entry.seq <= last_seq and not kept:
                    stored = db.execute(
                        "SELECT hash, signature FROM audit_entries"
                        " WHERE terminal_id = ? AND key_id = ? AND seq = ?",
                        (terminal_id, log_key, entry.seq),
                    ).fetchone()
                    if stored is not None and tuple(stored) == (entry.hash, entry.signature):
                        continue  # a repeat of what is kept
                    # Signed by this terminal, yet not what it uploaded before at this number.
                    raise _Fork(Appended(last_seq, 409, AUDIT_FORK, "fork", entry.seq))
                if entry.seq != last_seq + 1:
                    refusal = Appended(last_seq, 422, AUDIT_INVALID, "sequence", entry.seq)
                    break
                if entry.prev_hash != last_hash:
                    refusal = Appended(last_seq, 422, AUDIT_INVALID, "chain", entry.seq)
                    break
                kept.append(
                    (
                        terminal_id,
                        log_key,
                        entry.seq,
                        entry.time,
                        entry.kind,
                        entry.staff,
                        canonical_json(entry.details).decode("utf-8"),
                        entry.prev_hash,
                        entry.hash,
                        entry.signature,
                        received_at,
                    )
                )
                last_seq, last_hash = entry.seq, entry.hash
            db.executemany(
                "INSERT INTO audit_entries (terminal_id, key_id, seq, time, kind, staff, details,"
                " prev_hash, hash, signature, received_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                kept,
            )
        return refusal if refusal is not None else Appended(last_seq)

    def entries(self, terminal_id: str, log_key: str) -> list[dict[str, Any]]:
        """The terminal's entries signed by the key with id log_key (a terminal enrolled again
        starts a log of its own), oldest first, in the form they were uploaded in."""
        with closing(sqlite3.connect(self._path, timeout=30)) as db:
            rows = db.execute(
                "SELECT seq, time, kind, staff, details, prev_hash, hash, signature"
                " FROM audit_entries WHERE terminal_id = ? AND key_id = ? ORDER BY seq",
                (terminal_id, log_key),
            ).fetchall()
        return [
            {
                "seq": seq,
                "time": time,
                "kind": kind,
                "staff": staff,
                "details": _loads(details),
                "prev_hash": prev_hash,
                "hash": digest,
                "signature": signature,
            }
            for seq, time, kind, staff, details, prev_hash, digest, signature in rows
        ]


def _loads(text: str) -> object:
    return json.loads(text)


class _Fork(Exception):
    """Raised inside the transaction so that it keeps nothing."""

    def __init__(self, answer: Appended) -> None:
        super().__init__(answer.reason)
        self.answer = answer


class EnrolledKeys(Protocol):
    def key_of(self, terminal_id: str) -> EnrolledKey | None: ...


Run = Callable[..., Awaitable[Any]]
SignedJson = Callable[[Request, int], Awaitable[tuple[str, object]]]
ErrorAnswer = Callable[[int, str, str], Response]
JsonAnswer = Callable[[int, object], Response]


class AuditRoute:
    """The handler of POST /audit (refplatform/app.py wires it)."""

    def __init__(
        self,
        *,
        store: AuditStore,
        signed_json: SignedJson,
        run: Run,
        error: ErrorAnswer,
        answer: JsonAnswer,
        keys: EnrolledKeys,
        now: Callable[[], str],
    ) -> None:
        self._store = store
        self._signed_json = signed_json
        self._run = run
        self._error = error
        self._answer = answer
        self._keys = keys
        self._now = now

    async def post_audit(self, request: Request) -> Response:
        """Take entries of the signing terminal's audit log, oldest first, each checked against
        its hash, the terminal's enrolled key and the entries already held. Answered 200 with
        the last entry held (a repeat too); 409 audit_fork for a different entry at a number
        already held; 422 audit_entry_invalid, naming the entry, when one does not verify."""
        try:
            terminal_id, doc = await self._signed_json(request, AUDIT_BODY_BYTES)
        except ValueError:
            return self._error(400, "bad_request", "the body is not JSON")
        entries = parse_entries(doc)
        if entries is None:
            return self._error(
                400, "bad_request", f"the body is not a list of 1 to {MAX_AUDIT_BATCH} entries"
            )
        enrolled = await self._run(self._keys.key_of, terminal_id)
        try:
            public_key = Ed25519PublicKey.from_public_bytes(enrolled.public_key)
        except (AttributeError, ValueError):
            return self._error(403, "terminal_unknown", "the terminal's enrolled key is not usable")
        result: Appended = await self._run(
            self._store.append, terminal_id, entries, public_key, self._now()
        )
        if result.code is None:
            logger.info("audit of terminal %s held up to entry %d", terminal_id, result.last_seq)
            return self._answer(200, {"terminal_id": terminal_id, "last_seq": result.last_seq})
        logger.warning(
            "audit of terminal %s refused at entry %s (%s, %s)",
            terminal_id,
            result.seq,
            result.code,
            result.reason,
        )
        return self._answer(
            result.status,
            {
                "error": result.code,
                "detail": _DETAIL[result.reason],
                "seq": result.seq,
                "reason": result.reason,
                "terminal_id": terminal_id,
                "last_seq": result.last_seq,
            },
        )


_DETAIL: Final[Mapping[str, str]] = {
    "fork": "the platform holds another entry at this number",
    "hash": "the entry does not match its hash",
    "signature": "the entry is not signed by the terminal's enrolled key",
    "sequence": "the entry does not come next after the last one held",
    "chain": "the entry does not follow the last one held (prev_hash)",
}
