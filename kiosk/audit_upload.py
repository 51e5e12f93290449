"""Uploads the audit log (kiosk/audit_log.py) to the platform, which keeps a checked copy.

The entries after the last one the platform confirmed go in batches of at most MAX_AUDIT_BATCH,
oldest first, with PlatformClient.send_audit() (signed like every request). A batch counts as
uploaded only when the platform answers 2xx naming this terminal and a last_seq at least the
batch's last entry; anything short of that is tried again at the next pass, and the platform
takes a repeat of what it holds harmlessly.

Where the upload stands is kept in the audit database itself (its meta table, row
"uploaded_seq"), not in a file beside it: the audit database is already durable, and an old copy
of the database put back in place takes its mark back with it, so what it writes afterwards is
sent from there and meets the platform's copy as the fork it is (409 audit_fork), rather than
slipping past as if it followed on.

The platform's 409 (another entry at a number it holds: the log was put back to an older copy)
and 422 (an entry that does not verify: edited, or not signed by this terminal's key) stop the
upload: sending again cannot change either answer. It is logged and reported with a status code
(AUDIT_FORK or AUDIT_REFUSED) for staff; starting the terminal again tries once more.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Mapping, Sequence
from contextlib import closing
from dataclasses import dataclass
from typing import Any, Final, Protocol

from kiosk.audit_log import SIDECARS, AuditLog
from kiosk.platform_client import MAX_AUDIT_BATCH, OutcomeKind, SubmitOutcome
from offline_queue.files import PRIVATE_FILE, narrow_mode

log = logging.getLogger(__name__)

AUDIT_FORK: Final = "audit_fork"  # the platform holds other entries at these numbers
AUDIT_REFUSED: Final = "audit_entry_invalid"  # an entry did not verify on the platform
UPLOADED_SEQ: Final = "uploaded_seq"  # the meta row of the audit database
BUSY_TIMEOUT_S: Final = 5.0


class AuditSender(Protocol):
    """What the uploader sends with (kiosk.platform_client.PlatformClient)."""

    def send_audit(self, entries: Sequence[Mapping[str, Any]]) -> SubmitOutcome: ...


@dataclass(frozen=True)
class UploadResult:
    uploaded_seq: int  # the last entry the platform has confirmed
    sent: int = 0  # entries confirmed in this pass
    error_code: str | None = None  # None: nothing left to send
    stopped: bool = False  # a fork or a refused entry: no more uploads until restarted
    offline: bool = False  # the platform itself did not answer
    seq: int | None = None  # the entry the platform refused, when it named one


class AuditUploader:
    """Sends what the platform does not hold yet; one pass per upload() call (any thread)."""

    def __init__(
        self, audit: AuditLog, client: AuditSender, *, batch_size: int = MAX_AUDIT_BATCH
    ) -> None:
        if not 1 <= batch_size <= MAX_AUDIT_BATCH:
            raise ValueError(f"batch_size must be 1 to {MAX_AUDIT_BATCH}")
        self._audit = audit
        self._client = client
        self._batch_size = batch_size
        self._lock = threading.Lock()  # one pass at a time
        self._stopped: UploadResult | None = None

    @property
    def stopped(self) -> UploadResult | None:
        """The refusal that stopped uploading, or None while it goes on."""
        return self._stopped

    def uploaded_seq(self) -> int:
        """The last entry the platform confirmed (0 before the first)."""
        with self._meta() as conn:
            row = conn.execute("SELECT value FROM meta WHERE name = ?", (UPLOADED_SEQ,)).fetchone()
        if row is None:
            return 0
        try:
            return max(0, int(row[0]))
        except (TypeError, ValueError):
            log.error("audit upload: the uploaded mark is unreadable; sending from the start")
            return 0

    def upload(self) -> UploadResult:
        """Send every entry the platform does not hold yet, in batches; never raises for the
        network or the platform."""
        with self._lock:
            if self._stopped is not None:
                return self._stopped
            done = self.uploaded_seq()
            sent = 0
            while True:
                batch = self._audit.entries(done, self._batch_size)
                if not batch:
                    return UploadResult(done, sent)
                outcome = self._client.send_audit([entry.to_json() for entry in batch])
                if outcome.delivered:
                    done = batch[-1].seq
                    self._mark(done)
                    sent += len(batch)
                    continue
                return self._not_sent(outcome, done, sent)

    def _not_sent(self, outcome: SubmitOutcome, done: int, sent: int) -> UploadResult:
        code = outcome.error_code or outcome.kind.value
        body = outcome.response or {}
        named = body.get("seq")
        seq = named if type(named) is int else None
        if outcome.kind is OutcomeKind.CONFLICT and code == AUDIT_FORK:
            self._stopped = UploadResult(done, sent, AUDIT_FORK, stopped=True, seq=seq)
            log.error(
                "audit upload stopped: the platform holds another entry at number %s (the "
                "audit log was put back to an older copy); uploaded up to %d",
                seq,
                done,
            )
            return self._stopped
        if outcome.kind in (OutcomeKind.CONFLICT, OutcomeKind.REJECTED):
            reason = body.get("reason")
            self._stopped = UploadResult(done, sent, AUDIT_REFUSED, stopped=True, seq=seq)
            log.error(
                "audit upload stopped: the platform refused entry %s (%s, %s); uploaded up to %d",
                seq,
                code,
                reason if isinstance(reason, str) else "-",
                done,
            )
            return self._stopped
        log.info("audit upload: not delivered (%s); uploaded up to %d", code, done)
        return UploadResult(done, sent, code, offline=outcome.offline)

    def _mark(self, seq: int) -> None:
        with self._meta() as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                conn.execute(
                    "INSERT INTO meta (name, value) VALUES (?, ?)"
                    " ON CONFLICT (name) DO UPDATE SET value = excluded.value",
                    (UPLOADED_SEQ, str(seq)),
                )
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise

    def _meta(self) -> closing[sqlite3.Connection]:
        path = self._audit.path
        conn = sqlite3.connect(path, timeout=BUSY_TIMEOUT_S, isolation_level=None)
        # The log's own files stay the owner's alone, whoever made a journal file first.
        for companion in (path, *(path.with_name(path.name + tail) for tail in SIDECARS)):
            narrow_mode(companion, PRIVATE_FILE)
        return closing(conn)
