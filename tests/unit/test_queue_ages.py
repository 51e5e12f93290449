"""How long the oldest waiting submission has waited, as the village dashboard shows it."""

from __future__ import annotations

import dataclasses
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


def test_rows_found_by_receipt_number_or_name_and_by_whose_today() -> None:
    from kiosk.queue_view import filter_rows

    def made(number: str, name: str, operator: str, when: dt.datetime) -> QueueRow:
        return dataclasses.replace(
            _row(when, State.QUEUED),
            receipt_number=number,
            masked_name=name,
            operator_id=operator,
            item_id=number,
        )

    rows = [
        made("C03-20261129-0001", "张*英", "S0001", NOW),
        made("C03-20261129-0002", "李*国", "S0002", NOW),
        made("C03-20261128-0009", "王*", "S0001", NOW - dt.timedelta(days=1)),
    ]
    ids = [r.item_id for r in filter_rows(rows, "0002")]
    assert ids == ["C03-20261129-0002"]
    assert [r.item_id for r in filter_rows(rows, "张")] == ["C03-20261129-0001"]
    mine = filter_rows(rows, "", mine="S0001", today=NOW.date())
    assert [r.item_id for r in mine] == ["C03-20261129-0001"]  # not yesterday's, not S0002's
    assert len(filter_rows(rows, "  ")) == 3
