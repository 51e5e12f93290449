"""The outbox's batch operations on real SQLite files: claim_batch and settle_many."""

from __future__ import annotations

import json
import sqlite3
import threading
from pathlib import Path

import pytest

from offline_queue.errors import InvalidTransitionError, UnknownItemError
from offline_queue.outbox import UNDECRYPTABLE, Outbox, Settlement, State
from tests.fixtures.outbox import FakeClock


def body(n: int) -> bytes:
    return json.dumps({"n": n, "applicant": {"name": "张三丰"}}, ensure_ascii=False).encode()


def fill(outbox: Outbox, clock: FakeClock, count: int) -> list[str]:
    ids = []
    for n in range(count):
        ids.append(outbox.enqueue("submission", body(n), b"{}"))
        clock.advance(1)
    return ids


def test_claim_batch_takes_the_oldest_due_rows_up_to_the_limit(
    outbox: Outbox, clock: FakeClock
) -> None:
    ids = fill(outbox, clock, 7)
    first = outbox.claim_batch(3)
    assert [i.id for i in first] == ids[:3]
    assert [i.payload for i in first] == [body(n) for n in range(3)]
    assert all(i.attempts == 1 and i.kind == "submission" for i in first)
    assert {outbox.state_of(i) for i in ids[:3]} == {State.SENDING}
    assert {outbox.state_of(i) for i in ids[3:]} == {State.QUEUED}
    rest = outbox.claim_batch(10)
    assert [i.id for i in rest] == ids[3:]
    assert outbox.claim_batch(10) == []
    assert outbox.counts()["sending"] == 7


def test_claim_batch_skips_rows_waiting_out_their_backoff(outbox: Outbox, clock: FakeClock) -> None:
    ids = fill(outbox, clock, 4)
    outbox.claim_batch(2)
    outbox.settle_many(
        [
            Settlement(ids[0], State.QUEUED, "timeout", delay_s=60.0),
            Settlement(ids[1], State.QUEUED, "timeout", delay_s=0.0),
        ]
    )
    claimed = outbox.claim_batch(10)
    assert [i.id for i in claimed] == [ids[1], ids[2], ids[3]]
    assert claimed[0].attempts == 2
    clock.advance(60.0)
    [again] = outbox.claim_batch(10)
    assert (again.id, again.attempts) == (ids[0], 2)


def test_claim_batch_by_ids_takes_only_those_due_rows(outbox: Outbox, clock: FakeClock) -> None:
    ids = fill(outbox, clock, 5)
    claimed = outbox.claim_batch(5, ids=[ids[3], ids[1], "no-such-row"])
    assert [i.id for i in claimed] == [ids[1], ids[3]]  # still oldest first
    assert outbox.claim_batch(5, ids=[ids[1]]) == []  # in flight already
    assert outbox.claim_batch(5, ids=[]) == []
    assert [i.id for i in outbox.claim_batch(5)] == [ids[0], ids[2], ids[4]]


def test_claim_batch_stops_before_max_bytes(outbox: Outbox, clock: FakeClock) -> None:
    sizes = [3000, 400, 400, 400, 400]
    ids = []
    for size in sizes:
        ids.append(outbox.enqueue("submission", b"x" * size, b"{}"))
        clock.advance(1)
    # The oldest row goes even when it alone is over the limit, so it cannot block the queue.
    [big] = outbox.claim_batch(10, max_bytes=1000)
    assert big.id == ids[0]
    claimed = outbox.claim_batch(10, max_bytes=1000)
    assert [i.id for i in claimed] == ids[1:3]  # a third would make 1200 bytes
    assert outbox.state_of(ids[3]) is State.QUEUED
    assert [i.id for i in outbox.claim_batch(10, max_bytes=800)] == ids[3:]


def test_claim_batch_limit_must_be_positive(outbox: Outbox, clock: FakeClock) -> None:
    fill(outbox, clock, 1)
    with pytest.raises(ValueError, match="limit"):
        outbox.claim_batch(0)
    assert outbox.counts()["queued"] == 1


def test_undecryptable_rows_are_set_aside_and_the_batch_still_fills(
    tmp_path: Path, key: bytes, clock: FakeClock
) -> None:
    path = tmp_path / "outbox.db"
    with Outbox(path, key, clock=clock) as box:
        ids = fill(box, clock, 6)
    # Damage the two oldest rows: one payload swapped with another row's, one emptied.
    conn = sqlite3.connect(path)
    conn.execute(
        "UPDATE outbox SET payload = (SELECT payload FROM outbox WHERE id = ?) WHERE id = ?",
        (ids[5], ids[0]),
    )
    conn.execute("UPDATE outbox SET payload = NULL WHERE id = ?", (ids[1],))
    conn.commit()
    conn.close()
    with Outbox(path, key, clock=clock) as box:
        claimed = box.claim_batch(3)
        assert [i.id for i in claimed] == ids[2:5]
        infos = {i.id: i for i in box.items()}
        for damaged in ids[:2]:
            assert infos[damaged].state is State.NEEDS_ATTENTION
            assert infos[damaged].last_error == UNDECRYPTABLE
            assert infos[damaged].attempts == 0
        assert infos[ids[5]].state is State.QUEUED


def test_settle_many_records_every_outcome_at_once(outbox: Outbox, clock: FakeClock) -> None:
    ids = fill(outbox, clock, 4)
    outbox.claim_batch(4)
    outbox.settle_many(
        [
            Settlement(ids[0], State.DELIVERED, response=b'{"receipt": 1}'),
            Settlement(ids[1], State.REJECTED, "validation_failed|phone:pattern", b'{"e": 1}'),
            Settlement(ids[2], State.NEEDS_ATTENTION, "idempotency_conflict", b'{"e": 2}'),
            Settlement(ids[3], State.QUEUED, "unavailable", delay_s=30.0),
        ]
    )
    infos = {i.id: i for i in outbox.items()}
    assert [infos[i].state for i in ids] == [
        State.DELIVERED,
        State.REJECTED,
        State.NEEDS_ATTENTION,
        State.QUEUED,
    ]
    assert infos[ids[0]].delivered_at == clock.now and infos[ids[0]].last_error is None
    assert outbox.get_response(ids[0]) == b'{"receipt": 1}'
    assert outbox.get_response(ids[1]) == b'{"e": 1}'
    assert infos[ids[1]].last_error == "validation_failed|phone:pattern"
    assert outbox.get_response(ids[2]) == b'{"e": 2}'
    assert infos[ids[3]].next_attempt_at == clock.now + 30.0
    assert outbox.get_response(ids[3]) is None
    # The delivered row's payload is gone; the set-aside ones keep theirs for staff.
    conn = sqlite3.connect(outbox._path)
    payloads = dict(conn.execute("SELECT id, payload IS NOT NULL FROM outbox").fetchall())
    conn.close()
    assert [payloads[i] for i in ids] == [0, 1, 1, 1]


def test_settle_many_is_all_or_nothing(outbox: Outbox, clock: FakeClock) -> None:
    ids = fill(outbox, clock, 3)
    outbox.claim_batch(2)
    outbox.mark_delivered(ids[1], b"{}")
    with pytest.raises(InvalidTransitionError):
        outbox.settle_many(
            [
                Settlement(ids[0], State.DELIVERED, response=b"{}"),
                Settlement(ids[1], State.REJECTED, "validation_failed"),  # delivered already
            ]
        )
    assert outbox.state_of(ids[0]) is State.SENDING  # rolled back with the rest
    with pytest.raises(UnknownItemError):
        outbox.settle_many(
            [
                Settlement(ids[0], State.QUEUED, "timeout"),
                Settlement("no-such-row", State.QUEUED, "timeout"),
            ]
        )
    assert outbox.state_of(ids[0]) is State.SENDING


def test_mark_delivered_many_keeps_the_first_answer(outbox: Outbox, clock: FakeClock) -> None:
    ids = fill(outbox, clock, 3)
    outbox.claim_batch(3)
    outbox.mark_delivered_many([(ids[0], b'{"first": 0}'), (ids[1], b'{"first": 1}')])
    # A resend's answer for a delivered row changes nothing; the third row is delivered now.
    outbox.mark_delivered_many([(ids[0], b'{"second": 0}'), (ids[2], b'{"first": 2}')])
    assert [outbox.get_response(i) for i in ids] == [
        b'{"first": 0}',
        b'{"first": 1}',
        b'{"first": 2}',
    ]
    assert outbox.counts()["delivered"] == 3


def test_settlement_refuses_meaningless_states() -> None:
    with pytest.raises(ValueError, match="sending"):
        Settlement("x", State.SENDING)
    with pytest.raises(ValueError, match="answer"):
        Settlement("x", State.DELIVERED)


def test_two_threads_claiming_batches_never_share_a_row(tmp_path: Path, key: bytes) -> None:
    path = tmp_path / "outbox.db"
    with Outbox(path, key) as box:
        ids = {box.enqueue("submission", body(n), b"{}") for n in range(300)}
    boxes = [Outbox(path, key), Outbox(path, key)]
    claimed: list[list[str]] = [[], []]
    barrier = threading.Barrier(2)
    errors: list[BaseException] = []

    def worker(box: Outbox, out: list[str]) -> None:
        try:
            while True:
                barrier.wait(timeout=10)  # both claim at the same moment, every round
                batch = box.claim_batch(7)
                out.extend(item.id for item in batch)
                if not batch:
                    barrier.abort()  # the queue is empty: the other thread stops too
                    return
        except threading.BrokenBarrierError:
            return  # the other thread found the queue empty first
        except BaseException as exc:  # reported below; a thread cannot fail the test itself
            errors.append(exc)
            barrier.abort()

    threads = [
        threading.Thread(target=worker, args=(box, out))
        for box, out in zip(boxes, claimed, strict=True)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    for box in boxes:
        box.close()
    assert not errors
    everything = claimed[0] + claimed[1]
    assert len(everything) == len(set(everything)) == len(ids)
    assert claimed[0] and claimed[1]
