"""Batches end to end: the platform's batch endpoint, the client's submit_batch and the sync
engine draining a backlog in batches, over real HTTP to the reference platform on 127.0.0.1."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
import requests
from starlette.requests import Request
from starlette.responses import Response

from kiosk.platform_client import (
    CONNECTION_FAILED,
    UNEXPECTED_ANSWER,
    FieldError,
    OutcomeKind,
    PlatformClient,
    classify_batch_answer,
)
from kiosk.sync import SUBMISSION_KIND, SyncEngine, SyncStatus
from kiosk.terminal_auth import TerminalIdentity
from offline_queue.keys import load_or_create_key
from offline_queue.outbox import Outbox, State, new_item_id
from refplatform.app import API_PREFIX
from refplatform.server import RunningPlatform, start_in_thread
from tests.fixtures.badpeer import CAPTIVE_PAGE, RETRY_AFTER_S, BadPeer
from tests.fixtures.platform import DEMO_CATALOGUE, client_for, demo_submission, enrol_terminal

TIMEOUT = 10
WAIT_S = 10.0


class BatchSwitch:
    """The platform's faults hook: counts submission requests per endpoint and can make the
    batch endpoint misbehave while single submissions are handled normally."""

    def __init__(self) -> None:
        self.batch_mode: str | None = None  # None | "missing_404" | "missing_405" | "captive"
        self.batch_delay_s = 0.0
        self.stall_batches_over: int | None = None  # larger batches are held this long first:
        self.stall_s = 0.0
        self.calls: Counter[str] = Counter()
        self.batch_sizes: list[int] = []

    async def before_submission(
        self, request: Request, submission_ids: Sequence[str] | None = None
    ) -> Response | None:
        batch = request.url.path.endswith("/batch")
        self.calls["batch" if batch else "single"] += 1
        if not batch:
            return None
        try:
            doc = json.loads(await request.body())
        except ValueError:
            doc = None  # the platform answers that itself
        items = doc.get("submissions") if isinstance(doc, dict) else None
        size = len(items) if isinstance(items, list) else 0
        self.batch_sizes.append(size)
        if self.stall_batches_over is not None and size > self.stall_batches_over:
            await asyncio.sleep(self.stall_s)  # then handled and stored as usual
        if self.batch_delay_s:
            await asyncio.sleep(self.batch_delay_s)
        if self.batch_mode == "missing_404":  # what a platform without the route answers
            return _json_response(404, {"error": "not_found", "detail": "Not Found"})
        if self.batch_mode == "missing_405":  # the reference platform before it had batches
            return _json_response(405, {"error": "bad_request", "detail": "Method Not Allowed"})
        if self.batch_mode == "captive":
            return Response(CAPTIVE_PAGE, status_code=200, media_type="text/html")
        return None


def _json_response(status: int, body: dict[str, Any]) -> Response:
    return Response(json.dumps(body).encode(), status_code=status, media_type="application/json")


@pytest.fixture
def switch() -> BatchSwitch:
    return BatchSwitch()


@pytest.fixture
def platform(tmp_path: Path, switch: BatchSwitch) -> Iterator[RunningPlatform]:
    with start_in_thread(tmp_path / "platform.sqlite3", DEMO_CATALOGUE, faults=switch) as running:
        yield running


@pytest.fixture
def identity(platform: RunningPlatform, tmp_path: Path) -> TerminalIdentity:
    """Terminal K01 (the demo bodies' terminal_id), enrolled with the platform."""
    return enrol_terminal(platform, tmp_path / "terminal")


@pytest.fixture
def http(identity: TerminalIdentity) -> Iterator[requests.Session]:
    """Requests signed by the enrolled terminal."""
    with requests.Session() as session:
        session.auth = identity.auth()
        yield session


@pytest.fixture
def outbox(tmp_path: Path) -> Iterator[Outbox]:
    box = Outbox(tmp_path / "outbox.db", load_or_create_key(tmp_path / "outbox.key"))
    yield box
    box.close()


def api(platform: RunningPlatform, path: str) -> str:
    return f"{platform.base_url}{API_PREFIX}{path}"


def post_single(http: requests.Session, platform: RunningPlatform, body: Any) -> requests.Response:
    key = body["submission_id"] if isinstance(body, dict) else "x"
    return http.post(
        api(platform, "/submissions"),
        json=body,
        headers={"Idempotency-Key": key},
        timeout=TIMEOUT,
    )


def post_batch(http: requests.Session, platform: RunningPlatform, doc: Any) -> requests.Response:
    return http.post(api(platform, "/submissions/batch"), json=doc, timeout=TIMEOUT)


def stored_rows(platform: RunningPlatform, submission_id: str | None = None) -> int:
    with sqlite3.connect(platform.db_path) as db:
        if submission_id is None:
            (count,) = db.execute("SELECT COUNT(*) FROM submissions").fetchone()
        else:
            (count,) = db.execute(
                "SELECT COUNT(*) FROM submissions WHERE submission_id = ?", (submission_id,)
            ).fetchone()
    db.close()
    return int(count)


def enqueue(outbox: Outbox, body: dict[str, Any]) -> str:
    sid = str(body["submission_id"])
    outbox.enqueue(
        SUBMISSION_KIND,
        json.dumps(body, ensure_ascii=False).encode("utf-8"),
        json.dumps({"receipt_number": body["receipt_number"]}).encode(),
        item_id=sid,
    )
    return sid


def fresh(**answers: Any) -> dict[str, Any]:
    return demo_submission(submission_id=new_item_id(), **answers)


class StatusLog:
    def __init__(self) -> None:
        self._cond = threading.Condition()
        self.history: list[SyncStatus] = []

    def __call__(self, status: SyncStatus) -> None:
        with self._cond:
            self.history.append(status)
            self._cond.notify_all()

    def wait_for(self, pred: Callable[[SyncStatus], bool], timeout: float = WAIT_S) -> SyncStatus:
        with self._cond:
            ok = self._cond.wait_for(lambda: any(pred(s) for s in self.history), timeout)
            assert ok, f"no matching status; last: {self.history[-1:]}"
            return next(s for s in self.history if pred(s))


# --- the platform's batch endpoint ------------------------------------------------------------


def test_each_item_gets_what_the_single_endpoint_would_answer(
    platform: RunningPlatform, http: requests.Session, switch: BatchSwitch
) -> None:
    held = fresh()
    assert post_single(http, platform, held).status_code == 201
    new = fresh()
    invalid = fresh(phone="12")
    unknown = demo_submission("no-such-service", submission_id=new_item_id())
    clash_held = {**held, "receipt_number": "K01-20261123-0099"}
    clash_new = {**new, "receipt_number": "K01-20261123-0098"}
    partial = {"submission_id": new_item_id(), "service_id": "residence-permit"}
    items: list[Any] = [new, invalid, held, clash_held, new, clash_new, unknown, 7, partial]
    switch.calls.clear()

    answer = post_batch(http, platform, {"submissions": items})

    assert answer.status_code == 200, answer.text
    assert switch.calls == {"batch": 1}
    results = answer.json()["results"]
    assert [r["submission_id"] for r in results] == [
        new["submission_id"],
        invalid["submission_id"],
        held["submission_id"],
        held["submission_id"],
        new["submission_id"],
        new["submission_id"],
        unknown["submission_id"],
        None,
        partial["submission_id"],
    ]
    assert [r["status"] for r in results] == [201, 422, 201, 409, 201, 409, 404, 400, 400]
    # Sent alone now, each item gets the same status and body (the stored ones are replays).
    for item, result in zip(items, results, strict=True):
        if isinstance(item, dict) and "applicant" in item:
            alone = post_single(http, platform, item)
            assert (alone.status_code, alone.json()) == (result["status"], result["body"]), item
    assert results[1]["body"]["fields"] == [{"field": "phone", "code": "pattern"}]
    assert results[7]["body"]["error"] == results[8]["body"]["error"] == "bad_request"
    assert {"field": "applicant", "code": "required"} in results[8]["body"]["fields"]
    assert stored_rows(platform) == 2
    assert stored_rows(platform, new["submission_id"]) == 1


@pytest.mark.parametrize(
    ("doc", "code"),
    [
        ({"submissions": []}, "batch_size"),
        ({"submissions": [{}] * 101}, "batch_size"),
        ({"submissions": {}}, "bad_request"),
        ([], "bad_request"),
        ({"submissions": [], "extra": 1}, "bad_request"),
    ],
)
def test_a_malformed_batch_is_refused_as_a_whole(
    platform: RunningPlatform, http: requests.Session, doc: Any, code: str
) -> None:
    answer = post_batch(http, platform, doc)
    assert answer.status_code == 400
    assert answer.json()["error"] == code
    assert stored_rows(platform) == 0


def test_a_body_that_is_not_json_is_a_bad_request(
    platform: RunningPlatform, http: requests.Session
) -> None:
    answer = http.post(
        api(platform, "/submissions/batch"),
        data=b'{"submissions": [',
        headers={"Content-Type": "application/json"},
        timeout=TIMEOUT,
    )
    assert (answer.status_code, answer.json()["error"]) == (400, "bad_request")


# --- the client ---------------------------------------------------------------------------------


def test_submit_batch_outcomes_and_a_resend(
    platform: RunningPlatform, identity: TerminalIdentity
) -> None:
    client = client_for(platform, identity)
    held = fresh()
    assert client.submit(held["submission_id"], held).delivered
    items = [fresh(), fresh(phone="12"), {**held, "receipt_number": "other"}, held]
    pairs = [(body["submission_id"], body) for body in items]

    outcomes = client.submit_batch(pairs)

    assert [o.kind for o in outcomes] == [
        OutcomeKind.DELIVERED,
        OutcomeKind.REJECTED,
        OutcomeKind.CONFLICT,
        OutcomeKind.DELIVERED,
    ]
    assert [o.http_status for o in outcomes] == [201, 422, 409, 201]
    assert outcomes[1].fields == (FieldError("phone", "pattern"),)
    assert outcomes[2].error_code == "idempotency_conflict"
    assert not any(o.offline for o in outcomes)
    assert outcomes[0].response is not None
    assert outcomes[0].response["submission_id"] == items[0]["submission_id"]
    # A resend of the same batch (a crash before the answers were recorded) changes nothing.
    again = client.submit_batch(pairs)
    assert [(o.kind, o.response) for o in again] == [(o.kind, o.response) for o in outcomes]
    assert stored_rows(platform) == 2
    client.close()


def test_submit_batch_refuses_bodies_that_do_not_name_their_key(
    platform: RunningPlatform, identity: TerminalIdentity
) -> None:
    client = client_for(platform, identity)
    body = fresh()
    with pytest.raises(ValueError, match="idempotency key"):
        client.submit_batch([(new_item_id(), body), (body["submission_id"], body)])
    with pytest.raises(ValueError, match="at most"):
        client.submit_batch([(body["submission_id"], body)] * 101)
    assert client.submit_batch([]) == []
    client.close()


@pytest.mark.parametrize("mode", ["missing_404", "missing_405"])
def test_a_platform_without_batches_gets_single_submissions(
    platform: RunningPlatform, identity: TerminalIdentity, switch: BatchSwitch, mode: str
) -> None:
    switch.batch_mode = mode
    now = [0.0]
    client = client_for(platform, identity, batch_recheck_s=600.0, monotonic=lambda: now[0])
    bodies = [fresh() for _ in range(3)]

    outcomes = client.submit_batch([(b["submission_id"], b) for b in bodies])

    assert all(o.delivered for o in outcomes)
    assert switch.calls == {"batch": 1, "single": 3}
    assert not client.batch_supported
    more = [fresh() for _ in range(2)]
    assert all(o.delivered for o in client.submit_batch([(b["submission_id"], b) for b in more]))
    assert switch.calls == {"batch": 1, "single": 5}  # remembered: no second batch request
    now[0] = 600.0  # after a while the platform is asked again (it may have been upgraded)
    switch.batch_mode = None
    last = [fresh() for _ in range(2)]
    assert all(o.delivered for o in client.submit_batch([(b["submission_id"], b) for b in last]))
    assert switch.calls == {"batch": 2, "single": 5}
    assert stored_rows(platform) == 7
    client.close()


@pytest.mark.parametrize(
    ("mode", "expected", "posts"),
    [
        ("captive", (OutcomeKind.RETRY, UNEXPECTED_ANSWER, True), 1),
        ("garbage", (OutcomeKind.RETRY, UNEXPECTED_ANSWER, True), 1),
        ("accept", (OutcomeKind.RETRY, UNEXPECTED_ANSWER, True), 1),  # 2xx, but no result list
        ("other_id", (OutcomeKind.RETRY, UNEXPECTED_ANSWER, True), 1),
        ("redirect", (OutcomeKind.RETRY, UNEXPECTED_ANSWER, True), 1),
        ("busy", (OutcomeKind.RETRY, "unavailable", False), 1),
        ("drop", (OutcomeKind.RETRY, CONNECTION_FAILED, True), 1),
        # The platform refused the batch as a whole: each item is asked about on its own.
        ("rejected", (OutcomeKind.REJECTED, "validation_failed", False), 4),
        ("conflict", (OutcomeKind.CONFLICT, "idempotency_conflict", False), 4),
        # No batch endpoint here: singles, which this portal answers with its page too.
        ("html_404", (OutcomeKind.RETRY, UNEXPECTED_ANSWER, True), 2),
    ],
)
def test_submit_batch_against_misbehaving_peers(
    bad_peer: BadPeer, mode: str, expected: tuple[OutcomeKind, str, bool], posts: int
) -> None:
    bad_peer.mode = mode
    client = PlatformClient(bad_peer.base_url, timeout=(2.0, 0.5))
    bodies = [fresh() for _ in range(3)]
    outcomes = client.submit_batch([(b["submission_id"], b) for b in bodies])
    assert [(o.kind, o.error_code, o.offline) for o in outcomes] == [expected] * 3
    assert not any(o.delivered for o in outcomes)
    assert bad_peer.posts() == posts
    assert bad_peer.requests[0][1] == "/api/v1/submissions/batch"
    if mode == "busy":
        assert {o.retry_after_s for o in outcomes} == {RETRY_AFTER_S}
    client.close()


def _result(sid: str, status: int = 201, named: str | None = None) -> dict[str, Any]:
    return {"submission_id": sid, "status": status, "body": {"submission_id": named or sid}}


@pytest.mark.parametrize(
    "results",
    [
        pytest.param(lambda a, b: [_result(b), _result(a)], id="out_of_order"),
        pytest.param(lambda a, b: [_result(a)], id="too_few"),
        pytest.param(lambda a, b: [_result(a), _result(b), _result(b)], id="too_many"),
        pytest.param(lambda a, b: [_result(a), {**_result(b), "status": True}], id="bool_status"),
        pytest.param(lambda a, b: [_result(a), {**_result(b), "status": 42}], id="no_such_status"),
        pytest.param(lambda a, b: [_result(a), {**_result(b), "body": "ok"}], id="body_not_object"),
        pytest.param(lambda a, b: [_result(a), "ok"], id="result_not_object"),
    ],
)
def test_a_batch_answer_that_does_not_fit_proves_nothing(
    results: Callable[[str, str], list[Any]],
) -> None:
    a, b = new_item_id(), new_item_id()
    content = json.dumps({"results": results(a, b)}).encode()
    outcomes = classify_batch_answer([a, b], 200, None, content, now=0.0)
    assert outcomes is not None
    assert [(o.kind, o.error_code, o.offline) for o in outcomes] == [
        (OutcomeKind.RETRY, UNEXPECTED_ANSWER, True)
    ] * 2


def test_only_the_item_whose_body_names_it_is_delivered() -> None:
    a, b = new_item_id(), new_item_id()
    content = json.dumps({"results": [_result(a), _result(b, named=a)]}).encode()
    outcomes = classify_batch_answer([a, b], 200, None, content, now=0.0)
    assert outcomes is not None
    assert [(o.kind, o.error_code) for o in outcomes] == [
        (OutcomeKind.DELIVERED, None),
        (OutcomeKind.RETRY, UNEXPECTED_ANSWER),
    ]


# --- the sync engine ----------------------------------------------------------------------------


def test_mixed_backlog_drains_in_batches_with_one_notice_per_send(
    outbox: Outbox, platform: RunningPlatform, identity: TerminalIdentity, switch: BatchSwitch
) -> None:
    client = client_for(platform, identity)
    held_same, held_other = fresh(), fresh()
    for body in (held_same, held_other):
        assert client.submit(body["submission_id"], body).delivered
    bodies = [fresh() for _ in range(120)]
    bodies[10] = fresh(phone="12")
    bodies[20] = held_same  # already on the platform with this body: its answer again
    bodies[30] = {**held_other, "receipt_number": "K01-20261123-0077"}  # another body: conflict
    ids = [enqueue(outbox, body) for body in bodies]
    notices = StatusLog()
    engine = SyncEngine(outbox, client, on_change=notices, batch_size=50)
    switch.calls.clear()

    assert engine.drain_once() == 118

    # The first send of a drain is one row; then batches: 1 + 50 + 50 + 19.
    assert switch.calls == {"single": 1, "batch": 3}
    assert len(notices.history) == 4 + 1  # one per send and one when the drain ends
    assert [s.pending for s in notices.history] == [119, 69, 19, 0, 0]
    infos = {i.id: i for i in outbox.items(limit=200)}
    assert infos[ids[10]].state is State.REJECTED
    assert infos[ids[10]].last_error == "validation_failed|phone:pattern"
    assert infos[ids[30]].state is State.NEEDS_ATTENTION
    assert infos[ids[30]].last_error == "idempotency_conflict"
    delivered = [i for i in ids if infos[i].state is State.DELIVERED]
    assert len(delivered) == 118 and all(infos[i].attempts == 1 for i in ids)
    for sid in delivered:
        response = json.loads(outbox.get_response(sid) or b"null")
        assert response["submission_id"] == sid
        assert stored_rows(platform, sid) == 1
    assert stored_rows(platform, ids[10]) == 0
    assert stored_rows(platform) == 119  # 117 new, the held one, the conflicting key's first
    status = engine.status()
    assert (status.pending, status.delivered_total, status.rejected) == (0, 118, 1)
    assert status.needs_attention == 1 and status.online is True
    client.close()


def test_a_captive_portal_answering_the_batch_sends_every_item_again(
    outbox: Outbox, platform: RunningPlatform, identity: TerminalIdentity, switch: BatchSwitch
) -> None:
    client = client_for(platform, identity)
    # No jitter: a row to be retried is due again at once, so the second drain takes it.
    engine = SyncEngine(outbox, client, rng=lambda: 0.0)
    ids = [enqueue(outbox, fresh()) for _ in range(5)]
    switch.batch_mode = "captive"

    assert engine.drain_once() == 1  # the single first send got through; the batch did not

    infos = {i.id: i for i in outbox.items()}
    assert infos[ids[0]].state is State.DELIVERED
    for sid in ids[1:]:
        assert (infos[sid].state, infos[sid].last_error, infos[sid].attempts) == (
            State.QUEUED,
            UNEXPECTED_ANSWER,
            1,
        )
    assert stored_rows(platform) == 1
    status = engine.status()
    assert status.online is False and status.last_error == UNEXPECTED_ANSWER

    switch.batch_mode = None  # the assistant signed in to the Wi-Fi
    assert engine.drain_once() == 4
    assert all(outbox.state_of(sid) is State.DELIVERED for sid in ids)
    assert all(stored_rows(platform, sid) == 1 for sid in ids)
    assert switch.calls == {"single": 2, "batch": 2}
    client.close()


def test_a_platform_without_batches_is_drained_one_by_one(
    outbox: Outbox, platform: RunningPlatform, identity: TerminalIdentity, switch: BatchSwitch
) -> None:
    switch.batch_mode = "missing_405"
    client = client_for(platform, identity)
    engine = SyncEngine(outbox, client)
    ids = [enqueue(outbox, fresh()) for _ in range(6)]
    assert engine.drain_once() == 6
    assert switch.calls == {"single": 6, "batch": 1}
    ids += [enqueue(outbox, fresh()) for _ in range(3)]
    assert engine.drain_once() == 3
    assert switch.calls == {"single": 9, "batch": 1}
    assert all(stored_rows(platform, sid) == 1 for sid in ids)
    client.close()


def test_batches_that_time_out_are_halved_until_they_fit(
    outbox: Outbox, platform: RunningPlatform, identity: TerminalIdentity, switch: BatchSwitch
) -> None:
    # A slow uplink: a request with more than two submissions does not finish in time.
    switch.stall_batches_over, switch.stall_s = 2, 1.0
    client = client_for(platform, identity, timeout=(2.0, 0.4))
    engine = SyncEngine(outbox, client, batch_size=8, rng=lambda: 0.0)
    ids = [enqueue(outbox, fresh()) for _ in range(9)]
    drains = 0
    while outbox.pending_count() and drains < 10:
        engine.drain_once()
        drains += 1
    assert outbox.pending_count() == 0
    # 8 and 4 time out; 2 goes through, and the engine tries 4 again before settling on 2.
    assert switch.batch_sizes[:4] == [8, 4, 2, 4]
    assert all(size <= 2 for size in switch.batch_sizes[4:])
    assert all(outbox.state_of(sid) is State.DELIVERED for sid in ids)
    # The stalled batches were stored when they finished; their resends were answered as such.
    assert all(stored_rows(platform, sid) == 1 for sid in ids)
    client.close()


def test_a_busy_platform_puts_the_whole_batch_back_for_its_retry_after(
    outbox: Outbox, bad_peer: BadPeer
) -> None:
    bad_peer.mode = "busy"
    client = PlatformClient(bad_peer.base_url, timeout=(2.0, 0.5))
    engine = SyncEngine(outbox, client, retry_base_s=600.0, rng=lambda: 1.0)
    ids = [enqueue(outbox, fresh()) for _ in range(4)]
    before = time.time()
    assert engine.drain_once() == 0
    # A 503 is an answer from the platform: the drain goes on, from one row to a batch.
    assert [r[1] for r in bad_peer.requests] == [
        "/api/v1/submissions",
        "/api/v1/submissions/batch",
    ]
    for info in outbox.items():
        assert info.id in ids and info.state is State.QUEUED
        assert (info.attempts, info.last_error) == (1, "unavailable")
        assert info.next_attempt_at is not None
        assert RETRY_AFTER_S - 1 <= info.next_attempt_at - before <= RETRY_AFTER_S + 5
    assert engine.status().online is True
    client.close()


def test_deliver_now_overtakes_a_backlog(
    outbox: Outbox, platform: RunningPlatform, identity: TerminalIdentity, switch: BatchSwitch
) -> None:
    switch.batch_delay_s = 0.1  # each batch takes a while: the backlog needs a second or more
    backlog = [enqueue(outbox, fresh()) for _ in range(300)]
    client = client_for(platform, identity)
    notices = StatusLog()
    engine = SyncEngine(outbox, client, on_change=notices, batch_size=50)
    engine.start()
    try:
        notices.wait_for(lambda s: s.draining and s.delivered_total >= 1)
        citizen = enqueue(outbox, fresh())
        assert engine.deliver_now(citizen, timeout_s=WAIT_S) is True
        waiting = outbox.pending_count()
        notices.wait_for(lambda s: s.pending == 0 and s.delivered_total == 301)
    finally:
        assert engine.stop(timeout=WAIT_S)
    # The citizen's submission went ahead of the rows queued before it.
    assert waiting >= 100
    assert all(outbox.state_of(sid) is State.DELIVERED for sid in backlog)
    assert stored_rows(platform) == 301
    client.close()
