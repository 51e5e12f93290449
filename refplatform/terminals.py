"""The terminals the platform knows: enrolment codes, public keys, revocations, and the check of
every signed request (kiosk/terminal_auth.py says how a terminal signs).

The back office issues a one-time code for a terminal id; the terminal sends it once with its
public key; from then on the platform takes the terminal id from a valid signature. A code is
stored only as its hash, lives ENROLMENT_CODE_TTL_S and works once. Seen nonces are kept for
twice the allowed clock skew, so a request cannot be replayed within the window in which its
timestamp would still pass.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import sqlite3
import time
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager, closing
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from kiosk.terminal_auth import (
    HEADER_NONCE,
    HEADER_SIGNATURE,
    HEADER_TERMINAL,
    HEADER_TIMESTAMP,
    MAX_SKEW_S,
    new_code_secret,
    normal_code_secret,
    signing_input_for_digest,
    verify_signature,
)
from refplatform.storage import writing

ENROLMENT_CODE_TTL_S = 7 * 86400
_TERMINAL_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,31}")
_NONCE = re.compile(r"[0-9a-f]{16,64}")
_PURGE_EVERY_S = 60.0

_SCHEMA = """
CREATE TABLE IF NOT EXISTS terminals (
    terminal_id  TEXT PRIMARY KEY,
    public_key   BLOB,
    status       TEXT NOT NULL,
    enrolled_at  REAL,
    revoked_at   REAL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS enrolment_codes (
    code_hash    TEXT PRIMARY KEY,
    terminal_id  TEXT NOT NULL,
    expires_at   REAL NOT NULL,
    used_at      REAL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS request_nonces (
    terminal_id  TEXT NOT NULL,
    nonce        TEXT NOT NULL,
    seen_at      REAL NOT NULL,
    PRIMARY KEY (terminal_id, nonce)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS request_nonces_by_age ON request_nonces(seen_at);
"""


class AuthRefused(Exception):
    """A request the platform does not take from this sender: status, machine code, reason."""

    def __init__(self, status: int, code: str, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.code = code
        self.reason = reason


@dataclass(frozen=True)
class EnrolledKey:
    public_key: bytes  # raw Ed25519
    active: bool  # False once revoked


@dataclass(frozen=True)
class IssuedCode:
    terminal_id: str
    secret: str
    expires_at: float


def _code_hash(secret: str) -> str:
    return hashlib.sha256(normal_code_secret(secret).encode("ascii")).hexdigest()


class TerminalRegistry:
    def __init__(self, db_path: Path, clock: Callable[[], float] = time.time) -> None:
        self._path = db_path
        self._clock = clock
        self._last_purge = 0.0
        with closing(sqlite3.connect(self._path, timeout=30)) as db:
            db.executescript(_SCHEMA)

    def _write(self) -> AbstractContextManager[sqlite3.Connection]:
        return writing(self._path)

    # -- the back office -------------------------------------------------------------------

    def issue_code(self, terminal_id: str, ttl_s: float = ENROLMENT_CODE_TTL_S) -> IssuedCode:
        if not _TERMINAL_ID.fullmatch(terminal_id):
            raise ValueError("a terminal id is 1-32 letters, digits, '.', '_' or '-'")
        secret = new_code_secret()
        expires = self._clock() + ttl_s
        with self._write() as db:
            db.execute(
                "INSERT INTO enrolment_codes (code_hash, terminal_id, expires_at) "
                "VALUES (?, ?, ?)",
                (_code_hash(secret), terminal_id, expires),
            )
        return IssuedCode(terminal_id, secret, expires)

    def revoke(self, terminal_id: str) -> bool:
        """False when no such terminal was ever enrolled."""
        with self._write() as db:
            cursor = db.execute(
                "UPDATE terminals SET status = 'revoked', revoked_at = ? WHERE terminal_id = ?",
                (self._clock(), terminal_id),
            )
            return cursor.rowcount > 0

    def register(self, terminal_id: str, public_key: bytes) -> None:
        """Enrol directly, without a code: for a platform embedded with its one terminal (the
        demo), which has nobody to hand a code to."""
        if not _TERMINAL_ID.fullmatch(terminal_id):
            raise ValueError("a terminal id is 1-32 letters, digits, '.', '_' or '-'")
        Ed25519PublicKey.from_public_bytes(public_key)
        with self._write() as db:
            self._store_key(db, terminal_id, public_key)

    def _store_key(self, db: sqlite3.Connection, terminal_id: str, public_key: bytes) -> None:
        db.execute(
            "INSERT INTO terminals (terminal_id, public_key, status, enrolled_at) "
            "VALUES (?, ?, 'active', ?) ON CONFLICT(terminal_id) DO UPDATE SET "
            "public_key = excluded.public_key, status = 'active', "
            "enrolled_at = excluded.enrolled_at, revoked_at = NULL",
            (terminal_id, public_key, self._clock()),
        )
        # A nonce the old key used means nothing for the new one.
        db.execute("DELETE FROM request_nonces WHERE terminal_id = ?", (terminal_id,))

    def key_of(self, terminal_id: str) -> EnrolledKey | None:
        """The key a terminal enrolled with, and whether it may still use it."""
        with closing(sqlite3.connect(self._path, timeout=30)) as db:
            row = db.execute(
                "SELECT public_key, status FROM terminals WHERE terminal_id = ?", (terminal_id,)
            ).fetchone()
        if row is None or row[0] is None:
            return None
        return EnrolledKey(bytes(row[0]), row[1] == "active")

    def published_keys(self) -> tuple[dict[str, str], dict[str, str]]:
        """Every enrolled terminal's public key (standard base64 of the raw 32 bytes): those in
        service, and those revoked. What GET /api/v1/terminals/keys publishes."""
        with closing(sqlite3.connect(self._path, timeout=30)) as db:
            rows = db.execute(
                "SELECT terminal_id, public_key, status FROM terminals "
                "WHERE public_key IS NOT NULL ORDER BY terminal_id"
            ).fetchall()
        active: dict[str, str] = {}
        revoked: dict[str, str] = {}
        for terminal_id, public_key, status in rows:
            shown = base64.b64encode(bytes(public_key)).decode("ascii")
            (active if status == "active" else revoked)[str(terminal_id)] = shown
        return active, revoked

    # -- enrolment ---------------------------------------------------------------------------

    def enrol(self, code: str, public_key_b64: str) -> str:
        """The terminal id the code was issued for, once; AuthRefused otherwise."""
        try:
            raw = base64.b64decode(public_key_b64, validate=True)
            Ed25519PublicKey.from_public_bytes(raw)
        except (binascii.Error, ValueError) as exc:
            raise AuthRefused(400, "public_key_invalid", "not an Ed25519 public key") from exc
        now = self._clock()
        with self._write() as db:
            row = db.execute(
                "SELECT terminal_id, expires_at, used_at FROM enrolment_codes WHERE code_hash = ?",
                (_code_hash(code),),
            ).fetchone()
            if row is None:
                raise AuthRefused(403, "enrolment_code_unknown", "no such enrolment code")
            terminal_id, expires_at, used_at = row
            if used_at is not None:
                raise AuthRefused(403, "enrolment_code_used", "this code has been used")
            if expires_at < now:
                raise AuthRefused(403, "enrolment_code_expired", "this code has expired")
            db.execute(
                "UPDATE enrolment_codes SET used_at = ? WHERE code_hash = ?",
                (now, _code_hash(code)),
            )
            self._store_key(db, str(terminal_id), raw)
        return str(terminal_id)

    # -- every signed request ----------------------------------------------------------------

    def precheck(self, headers: Mapping[str, str]) -> None:
        """What can be refused before a body is read: no or malformed credentials, a terminal
        nobody enrolled, a time far from ours. AuthRefused as authenticate() raises it; the
        signature itself needs the body and is checked by authenticate()."""
        terminal_id, stamp = self._headers(headers)
        with closing(sqlite3.connect(self._path, timeout=30)) as db:
            row = db.execute(
                "SELECT public_key FROM terminals WHERE terminal_id = ?", (terminal_id,)
            ).fetchone()
        if row is None or row[0] is None:
            raise AuthRefused(401, "terminal_unknown", "no such terminal is enrolled")
        if abs(self._clock() - stamp) > MAX_SKEW_S:
            raise AuthRefused(401, "request_stale", "the request's time is too far from ours")

    @staticmethod
    def _headers(headers: Mapping[str, str]) -> tuple[str, int]:
        terminal_id = headers.get(HEADER_TERMINAL, "")
        timestamp = headers.get(HEADER_TIMESTAMP, "")
        nonce = headers.get(HEADER_NONCE, "")
        signature = headers.get(HEADER_SIGNATURE, "")
        if not (terminal_id and timestamp and nonce and signature):
            raise AuthRefused(401, "credentials_missing", "the request is not signed")
        if not _TERMINAL_ID.fullmatch(terminal_id) or not _NONCE.fullmatch(nonce):
            raise AuthRefused(401, "signature_invalid", "malformed signature headers")
        try:
            return terminal_id, int(timestamp)
        except ValueError as exc:
            raise AuthRefused(401, "signature_invalid", "malformed timestamp") from exc

    def authenticate(
        self,
        method: str,
        target: str,
        headers: Mapping[str, str],
        body: bytes = b"",
        *,
        body_sha256: str | None = None,
    ) -> str:
        """The terminal that signed this request, or AuthRefused (401 for a request that proves
        nothing, 403 for a terminal that is known and no longer allowed)."""
        terminal_id, stamp = self._headers(headers)
        timestamp = headers[HEADER_TIMESTAMP]
        nonce = headers[HEADER_NONCE]
        signature = headers[HEADER_SIGNATURE]
        with closing(sqlite3.connect(self._path, timeout=30)) as db:
            row = db.execute(
                "SELECT public_key, status FROM terminals WHERE terminal_id = ?", (terminal_id,)
            ).fetchone()
        if row is None or row[0] is None:
            raise AuthRefused(401, "terminal_unknown", "no such terminal is enrolled")
        public_key, status = row
        digest = body_sha256 if body_sha256 is not None else hashlib.sha256(body).hexdigest()
        signed = signing_input_for_digest(method, target, timestamp, nonce, terminal_id, digest)
        if not verify_signature(Ed25519PublicKey.from_public_bytes(public_key), signature, signed):
            raise AuthRefused(401, "signature_invalid", "the signature does not verify")
        if status != "active":
            raise AuthRefused(403, "terminal_revoked", "this terminal's access was withdrawn")
        now = self._clock()
        if abs(now - stamp) > MAX_SKEW_S:
            raise AuthRefused(401, "request_stale", "the request's time is too far from ours")
        with self._write() as db:
            if now - self._last_purge > _PURGE_EVERY_S:
                db.execute(
                    "DELETE FROM request_nonces WHERE seen_at < ?", (now - 2 * MAX_SKEW_S,)
                )
                self._last_purge = now
            try:
                db.execute(
                    "INSERT INTO request_nonces (terminal_id, nonce, seen_at) VALUES (?, ?, ?)",
                    (terminal_id, nonce, now),
                )
            except sqlite3.IntegrityError as exc:
                raise AuthRefused(401, "request_replayed", "this request was seen before") from exc
        return terminal_id
