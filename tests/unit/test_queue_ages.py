"""How long the oldest waiting submission has waited, as the village dashboard shows it."""

from __future__ import annotations

import datetime as dt

from kiosk.queue_view import QueueRow, oldest_waiting
from offline_queue.outbox import State

NOW = dt.datetime(2026, 11, 29, 12, 0)


def _row(created: dt.datetime, state: State) -> QueueRow:
    return QueueRow(
        item_id=str(created),
        receipt_number="R01-1",
        service_id="residence-permit",
        masked_name="张*英",
        created_at=created,
        state=state,
        attempts=0,
        last_error=None,
        next_attempt_at=None,
        damaged=False,
    )


def test_the_oldest_waiting_row_counts_and_delivered_ones_do_not() -> None:
    rows = [
        _row(NOW - dt.timedelta(days=9), State.DELIVERED),
        _row(NOW - dt.timedelta(days=3, hours=4), State.QUEUED),
        _row(NOW - dt.timedelta(hours=2), State.SENDING),
        _row(NOW - dt.timedelta(days=5), State.REJECTED),
    ]
    assert oldest_waiting(rows, NOW) == dt.timedelta(days=3, hours=4)


def test_nothing_waiting_has_no_age() -> None:
    assert oldest_waiting([_row(NOW, State.DELIVERED)], NOW) is None
    assert oldest_waiting([], NOW) is None
