"""Looking a case up at the terminal: what a scanned or typed receipt means, the platform's answer
read into cases, and the last known status of cases seen here, for when the platform is away.

A receipt's QR code holds the platform's public tracking URL with the receipt's signed token
(?t=..., kiosk/receipt_token.py, which names the receipt number), or, from a terminal without a
key, .../track/<submission id>; a USB scanner types it as a line of text. A receipt
number (K01-20261123-0007) may be scanned or typed. An ID card asks the platform for every case of
its holder; the ID number travels only in the signed request, never into the cache or a log.

The cache (LookupCache) keeps, per case, the receipt number, the service, the status and when
that status was last known: nothing else. It is a SQLite file of its own, each row sealed with
AES-GCM under a key derived from the outbox key (HKDF), its row key a keyed hash of the receipt
number: the file alone gives away neither which receipts it holds nor their status.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import hmac
import json
import logging
import os
import re
import sqlite3
import threading
import time
import urllib.parse
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from devices.identity import is_valid_id_number
from kiosk.errors import UserFacingError
from kiosk.i18n import N_, _
from kiosk.platform_client import PlatformAnswerError, PlatformError, PlatformUnreachable
from kiosk.receipt_token import (
    LINK_QUERY_NAME,
    ReceiptTokenError,
    TerminalKeys,
    unverified_claim,
)

log = logging.getLogger(__name__)

MAX_CASES = 20  # the platform answers at most this many, newest first
CACHE_MAX_ROWS = 500
CACHE_MAX_AGE_S = 400 * 86400.0  # a case is looked up again within a year, or forgotten
_CACHE_INFO = b"hall-terminal lookup cache v1"
_NONCE = 12
# Terminal id, day, sequence of the day (kiosk/receipt_numbers.py): K01-20261123-0007.
RECEIPT_PATTERN = re.compile(r"^[A-Z]{1,4}[0-9]{1,6}-[0-9]{8}-[0-9]{4,6}$")
# Where a receipt's code is scanned from: the tracking page, its submission id last.
_TRACK_SEGMENT = "track"
_RECEIPT_PARAMETERS = ("receipt", "receipt_number", "r")
# Not uploaded yet: only this terminal knows the case.
WAITING_UPLOAD = "waiting_upload"

STATUS_WORDS: dict[str, str] = {
    "received": N_("Application received"),
    "in_review": N_("Being reviewed"),
    "approved": N_("Approved"),
    "rejected": N_("Not approved"),
    "ready_for_collection": N_("Ready to collect"),
    "completed": N_("Completed"),
    WAITING_UPLOAD: N_("Saved on this terminal, waiting to upload"),
}


class NotAReceiptError(UserFacingError):
    MESSAGE = N_(
        "This is not a receipt number. A receipt number looks like K01-20261123-0007."
    )

    def __init__(self) -> None:
        super().__init__(self.MESSAGE)


class LookupUnavailableError(UserFacingError):
    """Offline, and the cache cannot answer this kind of question."""


# -- what was scanned or typed --------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Query:
    """One way to find cases: exactly one field is set."""

    receipt_number: str = ""
    submission_id: str = ""
    id_number: str = field(default="", repr=False)
    # The receipt's signed token when its code was scanned: not sent, only checked before a
    # case found by it may be rated (may_rate).
    token: str = field(default="", repr=False, compare=False)

    @property
    def by_card(self) -> bool:
        return bool(self.id_number)

    def body(self) -> dict[str, str]:
        """The request body of POST /lookup."""
        if self.receipt_number:
            return {"receipt_number": self.receipt_number}
        if self.submission_id:
            return {"submission_id": self.submission_id}
        return {"id_number": self.id_number}


def normalise_receipt(text: str) -> str | None:
    """The receipt number in its printed spelling, or None when text is not one (spaces and
    full-width characters, as some scanners and keyboards send, are tolerated)."""
    cleaned = "".join(ch for ch in _halfwidth(text).upper() if not ch.isspace())
    cleaned = cleaned.replace("—", "-").replace("_", "-")
    return cleaned if RECEIPT_PATTERN.fullmatch(cleaned) else None


def parse_scan(text: str) -> Query:
    """A scanned or typed line: the receipt's tracking URL or its receipt number.

    Raises NotAReceiptError for anything else (another code, a half-typed number)."""
    line = text.strip()
    if not line or len(line) > 2048:
        raise NotAReceiptError
    receipt = normalise_receipt(line)
    if receipt is not None:
        return Query(receipt_number=receipt)
    parts = urllib.parse.urlsplit(line)
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        raise NotAReceiptError
    for name, value in urllib.parse.parse_qsl(parts.query):
        if name == LINK_QUERY_NAME:
            # The receipt's signed token (kiosk/receipt_token.py) names the receipt; the
            # platform's answer, not the token, is what is shown, so it need not be checked.
            try:
                claim = unverified_claim(value)
            except ReceiptTokenError:
                raise NotAReceiptError from None
            if (found := normalise_receipt(claim.receipt_number)) is not None:
                return Query(receipt_number=found, token=value)
            return Query(submission_id=claim.submission_id, token=value)
        if name.lower() in _RECEIPT_PARAMETERS and (found := normalise_receipt(value)):
            return Query(receipt_number=found)
    segments = [urllib.parse.unquote(s) for s in parts.path.split("/") if s]
    if len(segments) >= 2 and segments[-2] == _TRACK_SEGMENT:
        try:
            submission_id = str(uuid.UUID(segments[-1]))
        except ValueError:
            raise NotAReceiptError from None
        return Query(submission_id=submission_id)
    raise NotAReceiptError


def card_query(id_number: str) -> Query:
    if not is_valid_id_number(id_number):
        raise NotAReceiptError
    return Query(id_number=id_number.upper())


def may_rate(query: Query, case: Case, keys: TerminalKeys | None) -> bool:
    """Whether the case may be rated here: one filed at this terminal, found by its holder's ID
    card or by a receipt code whose signed token verifies with the terminals' published keys and
    names this very submission. A receipt number typed (or a code that does not verify) shows
    the status, never the rating: receipt numbers are easy to guess."""
    if not (case.rateable and case.submission_id):
        return False
    if query.by_card:
        return True
    if not query.token or keys is None:
        return False
    try:
        claim = keys.verify(query.token)
    except ReceiptTokenError:
        return False
    return claim.submission_id == case.submission_id


def _halfwidth(text: str) -> str:
    return "".join(chr(ord(c) - 0xFEE0) if "！" <= c <= "～" else c for c in text)


# -- cases ------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class StatusStep:
    status: str
    at: str  # ISO 8601, as the platform gave it
    note: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Case:
    receipt_number: str
    service_id: str
    status: str
    known_at: float  # when this status was last known here (epoch seconds)
    submission_id: str = ""  # empty for a case from the cache
    history: tuple[StatusStep, ...] = ()
    rateable: bool = False  # filed at this terminal, and so rated here


@dataclass(frozen=True, slots=True)
class LookupResult:
    cases: tuple[Case, ...]
    online: bool  # the platform answered; otherwise the cases are the last known here
    query: Query = field(repr=False)


def status_words(status: str) -> str:
    return _(STATUS_WORDS[status]) if status in STATUS_WORDS else status


def age_words(seconds: float) -> str:
    """How long ago, in words a person says: just now, 5 minutes ago, 3 hours ago, 2 days ago."""
    seconds = max(0.0, seconds)
    if seconds < 60:
        return _("just now")
    if seconds < 3600:
        return _("{count} minutes ago").format(count=int(seconds // 60))
    if seconds < 86400:
        return _("{count} hours ago").format(count=int(seconds // 3600))
    return _("{count} days ago").format(count=int(seconds // 86400))


def last_updated(seconds: float) -> str:
    return _("Last updated: {age}").format(age=age_words(seconds))


def read_cases(body: Mapping[str, Any], now: float) -> tuple[Case, ...]:
    """The platform's answer to POST /lookup as cases; PlatformAnswerError when it is not one."""
    raw = body.get("cases")
    if not isinstance(raw, list) or len(raw) > MAX_CASES:
        raise PlatformAnswerError(PlatformAnswerError.MESSAGE, code="unexpected_answer")
    cases = []
    for entry in raw:
        if not isinstance(entry, dict):
            raise PlatformAnswerError(PlatformAnswerError.MESSAGE, code="unexpected_answer")
        texts = [entry.get(k) for k in ("submission_id", "receipt_number", "service_id", "status")]
        history = entry.get("history", [])
        if not all(isinstance(t, str) and t for t in texts) or not isinstance(history, list):
            raise PlatformAnswerError(PlatformAnswerError.MESSAGE, code="unexpected_answer")
        steps = tuple(
            StatusStep(
                str(step.get("status", "")),
                str(step.get("at", "")),
                {k: str(v) for k, v in note.items()}
                if isinstance(note := step.get("note"), dict)
                else {},
            )
            for step in history
            if isinstance(step, dict)
        )
        cases.append(
            Case(
                receipt_number=str(texts[1]),
                service_id=str(texts[2]),
                status=str(texts[3]),
                known_at=now,
                submission_id=str(texts[0]),
                history=steps,
                rateable=entry.get("filed_here") is True,
            )
        )
    return tuple(cases)


# -- the cache --------------------------------------------------------------------------------
def cache_key(outbox_key: bytes) -> bytes:
    """The cache's own key, derived from the outbox key (which never leaves its store)."""
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_CACHE_INFO).derive(
        outbox_key
    )


class LookupCache:
    """The last known status of cases filed or looked up here: receipt number, service, status
    and when it was known, sealed row by row. Safe from any thread."""

    def __init__(self, path: Path, key: bytes, clock: Callable[[], float] = time.time) -> None:
        if len(key) != 32:
            raise ValueError("the cache key must be 32 bytes")
        self._path = path
        self._aead = AESGCM(key)
        self._tag_key = hmac.new(key, b"row tag", hashlib.sha256).digest()
        self._clock = clock
        self._lock = threading.Lock()
        path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as db:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute(
                "CREATE TABLE IF NOT EXISTS cases (tag TEXT PRIMARY KEY, known_at REAL NOT NULL,"
                " sealed BLOB NOT NULL) WITHOUT ROWID"
            )
        with contextlib.suppress(OSError):
            os.chmod(path, 0o600)

    @contextlib.contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        with self._lock, contextlib.closing(sqlite3.connect(self._path, timeout=5.0)) as db:
            db.execute("PRAGMA synchronous=FULL")
            with db:
                yield db

    def _tag(self, receipt_number: str) -> str:
        return hmac.new(self._tag_key, receipt_number.encode(), hashlib.sha256).hexdigest()

    def remember(self, cases: Sequence[Case]) -> None:
        """Keep each case's receipt number, service, status and time (newer replaces older)."""
        rows = []
        for case in cases:
            tag = self._tag(case.receipt_number)
            plain = json.dumps(
                [case.receipt_number, case.service_id, case.status, case.known_at],
                ensure_ascii=False,
            ).encode()
            nonce = os.urandom(_NONCE)
            sealed = nonce + self._aead.encrypt(nonce, plain, tag.encode())
            rows.append((tag, case.known_at, sealed))
        if not rows:
            return
        cutoff = self._clock() - CACHE_MAX_AGE_S
        with self._connect() as db:
            db.executemany(
                "INSERT INTO cases (tag, known_at, sealed) VALUES (?, ?, ?) ON CONFLICT(tag)"
                " DO UPDATE SET known_at = excluded.known_at, sealed = excluded.sealed"
                " WHERE excluded.known_at >= cases.known_at",
                rows,
            )
            db.execute("DELETE FROM cases WHERE known_at < ?", (cutoff,))
            db.execute(
                "DELETE FROM cases WHERE tag NOT IN"
                " (SELECT tag FROM cases ORDER BY known_at DESC LIMIT ?)",
                (CACHE_MAX_ROWS,),
            )

    def get(self, receipt_number: str) -> Case | None:
        tag = self._tag(receipt_number)
        with self._connect() as db:
            row = db.execute("SELECT sealed FROM cases WHERE tag = ?", (tag,)).fetchone()
        if row is None:
            return None
        blob = bytes(row[0])
        try:
            plain = self._aead.decrypt(blob[:_NONCE], blob[_NONCE:], tag.encode())
            receipt, service_id, status, known_at = json.loads(plain)
        except (InvalidTag, ValueError, TypeError):
            log.warning("lookup cache: a row does not open; ignored")
            return None
        return Case(str(receipt), str(service_id), str(status), float(known_at))

    def count(self) -> int:
        with self._connect() as db:
            return int(db.execute("SELECT count(*) FROM cases").fetchone()[0])


# -- the desk ---------------------------------------------------------------------------------
class LookupClient(Protocol):
    def lookup(self, query: Mapping[str, str]) -> dict[str, Any]: ...


class LookupDesk:
    """Finds cases: from the platform when it answers, else the last known status here."""

    def __init__(
        self,
        client: LookupClient,
        cache: LookupCache,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._client = client
        self._cache = cache
        self._clock = clock

    def find(self, query: Query) -> LookupResult:
        """Blocks on the network: run it off the GUI thread. UserFacingError when neither the
        platform nor the cache can answer."""
        try:
            body = self._client.lookup(query.body())
        except PlatformUnreachable:
            return self._offline(query)
        except PlatformAnswerError:
            # A portal or proxy in the platform's place: as good as no answer.
            return self._offline(query)
        except PlatformError:
            raise
        cases = read_cases(body, self._clock())
        try:
            self._cache.remember(cases)
        except sqlite3.Error:
            log.warning("lookup cache not updated", exc_info=True)
        return LookupResult(cases, online=True, query=query)

    def _offline(self, query: Query) -> LookupResult:
        if not query.receipt_number:
            raise LookupUnavailableError(
                N_(
                    "The service platform cannot be reached right now. Without it, an "
                    "application can be found here only by its receipt number."
                )
            )
        try:
            cached = self._cache.get(query.receipt_number)
        except sqlite3.Error:
            log.warning("lookup cache unreadable", exc_info=True)
            cached = None
        return LookupResult((cached,) if cached else (), online=False, query=query)

    def remember_filed(self, receipt_number: str, service: str, *, delivered: bool) -> None:
        """A case filed here: known at once, uploaded or waiting to upload. `service`: its id,
        or its name when that is what the visit knows (shown as it is)."""
        if not receipt_number:
            return
        status = "received" if delivered else WAITING_UPLOAD
        self._cache.remember([Case(receipt_number, service, status, self._clock())])


def format_at(at: str) -> str:
    """A history entry's time as the hall reads it (local date and time, no seconds)."""
    try:
        moment = dt.datetime.fromisoformat(at)
    except ValueError:
        return at
    if moment.tzinfo is not None:
        moment = moment.astimezone()
    return moment.strftime("%Y-%m-%d %H:%M")
