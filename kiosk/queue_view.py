"""The upload queue as staff see it: rows without personal data beyond the masked name, and the
actions they may take ("retry now" for one row or for everything waiting).

Every method here touches the disk; the UI calls them through its background helper.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from offline_queue.outbox import Outbox, OutboxItemInfo, State

log = logging.getLogger(__name__)

# Rows staff can act on come first; delivered rows are shown after them for reprints.
_OPEN_STATES = (State.NEEDS_ATTENTION, State.REJECTED, State.SENDING, State.QUEUED)


class Waker(Protocol):
    def wake(self) -> None: ...


@dataclass(frozen=True, slots=True)
class QueueRow:
    item_id: str
    receipt_number: str
    service_id: str
    masked_name: str
    created_at: dt.datetime
    state: State
    attempts: int
    last_error: str | None  # an error code (kiosk.sync_messages turns it into a sentence)
    next_attempt_at: dt.datetime | None
    damaged: bool  # the summary did not decrypt: only the id is known
    operator_id: str = ""  # the staff member who made it, at a counter or service point
    reprintable: bool = False  # its summary keeps a receipt (kiosk/reprint.py)

    @property
    def can_retry(self) -> bool:
        return self.state in (State.QUEUED, State.REJECTED, State.NEEDS_ATTENTION)


class UploadQueue:
    def __init__(
        self,
        outbox: Outbox,
        sync: Waker,
        *,
        tz: Callable[[], dt.tzinfo | None] = lambda: None,
    ) -> None:
        self._outbox = outbox
        self._sync = sync
        self._tz = tz

    def rows(self, limit: int = 200, include_delivered: int = 50) -> list[QueueRow]:
        """Open rows oldest first, then up to include_delivered recently delivered ones."""
        open_items = self._outbox.items(limit=limit, states=_OPEN_STATES)
        delivered: list[OutboxItemInfo] = []
        if include_delivered > 0:
            held = self._outbox.counts()[State.DELIVERED.value]
            delivered = self._outbox.items(
                limit=include_delivered,
                states=(State.DELIVERED,),
                offset=max(0, held - include_delivered),
            )
            delivered.reverse()  # the latest first: the one being asked about is usually new
        return [self._row(info) for info in (*open_items, *delivered)]

    def retry(self, item_id: str) -> None:
        """Staff's "retry now" for one row: due at once, and the sync engine is woken."""
        self._outbox.requeue(item_id)
        log.info("outbox item %s queued again by staff", item_id)
        self._sync.wake()

    def retry_all(self) -> int:
        """Every waiting row due now (the backoff is skipped); rows set aside stay for staff."""
        moved = self._outbox.bring_forward()
        self._sync.wake()
        return moved

    def _row(self, info: OutboxItemInfo) -> QueueRow:
        summary = _summary(info.summary)
        tz = self._tz()
        return QueueRow(
            item_id=info.id,
            receipt_number=str(summary.get("receipt_number", "")),
            # a call for staff has no service: its kind stands in the service's column
            service_id=str(summary.get("service_id", "") or summary.get("kind", "")),
            masked_name=str(summary.get("masked_name", "")),
            created_at=dt.datetime.fromtimestamp(info.created_at, tz),
            state=info.state,
            attempts=info.attempts,
            last_error=info.last_error,
            next_attempt_at=(
                None
                if info.next_attempt_at is None
                else dt.datetime.fromtimestamp(info.next_attempt_at, tz)
            ),
            damaged=info.summary is None,
            operator_id=str(summary.get("operator_id", "")),
            reprintable=bool(summary.get("masked_id")) and bool(summary.get("tracking_url")),
        )


_WAITING = (State.QUEUED, State.SENDING)


def oldest_waiting(rows: list[QueueRow], now: dt.datetime) -> dt.timedelta | None:
    """How long the oldest submission still to upload has waited; None when nothing waits."""
    waiting = [row.created_at for row in rows if row.state in _WAITING]
    if not waiting:
        return None
    oldest = min(waiting)
    return max(dt.timedelta(0), now.replace(tzinfo=oldest.tzinfo) - oldest)


def filter_rows(
    rows: list[QueueRow], text: str, *, mine: str | None = None, today: dt.date | None = None
) -> list[QueueRow]:
    """The rows whose receipt number or masked name holds text (any case); with mine, only
    that staff member's rows made today."""
    needle = text.strip().casefold()
    kept = []
    for row in rows:
        if needle and needle not in row.receipt_number.casefold() and needle not in (
            row.masked_name.casefold()
        ):
            continue
        if mine is not None and (row.operator_id != mine or row.created_at.date() != today):
            continue
        kept.append(row)
    return kept


def _summary(blob: bytes | None) -> dict[str, object]:
    if blob is None:
        return {}
    try:
        value = json.loads(blob)
    except (ValueError, UnicodeDecodeError):
        return {}
    return value if isinstance(value, dict) else {}
