"""The sync engine between a real outbox file and the platform over real HTTP."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from kiosk.i18n import set_language
from kiosk.platform_client import PlatformClient
from kiosk.sync import SUBMISSION_KIND, SyncEngine, SyncStatus
from kiosk.sync_messages import describe_item
from kiosk.terminal_auth import TerminalIdentity
from offline_queue.keys import load_or_create_key
from offline_queue.outbox import Outbox, State, new_item_id
from refplatform.server import RunningPlatform
from tests.fixtures.badpeer import RETRY_AFTER_S, BadPeer, Gate
from tests.fixtures.platform import client_for, demo_submission, enrol_terminal

WAIT_S = 10.0


class StatusWatch:
    """Collects on_change statuses and lets a test wait for one that matches."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self.history: list[SyncStatus] = []
        self.threads: set[str] = set()

    def __call__(self, status: SyncStatus) -> None:
        with self._cond:
            self.history.append(status)
            self.threads.add(threading.current_thread().name)
            self._cond.notify_all()

    def happens(self, pred: Callable[[SyncStatus], bool], timeout: float = WAIT_S) -> bool:
        with self._cond:
            return self._cond.wait_for(
                lambda: bool(self.history) and pred(self.history[-1]), timeout
            )

    def wait_for(self, pred: Callable[[SyncStatus], bool], timeout: float = WAIT_S) -> SyncStatus:
        assert self.happens(pred, timeout), f"no matching status; last: {self.history[-1:]}"
        with self._cond:
            return self.history[-1]


@pytest.fixture
def outbox(tmp_path: Path) -> Iterator[Outbox]:
    box = Outbox(tmp_path / "outbox.db", load_or_create_key(tmp_path / "outbox.key"))
    yield box
    box.close()


@pytest.fixture
def identity(platform_server: RunningPlatform, tmp_path: Path) -> TerminalIdentity:
    """Terminal K01 (the demo bodies' terminal_id), enrolled with platform_server."""
    return enrol_terminal(platform_server, tmp_path / "terminal")


def enqueue(outbox: Outbox, **answers: Any) -> tuple[str, dict[str, Any]]:
    sid = new_item_id()
    body = demo_submission(submission_id=sid, **answers)
    summary = {"receipt_number": body["receipt_number"], "service_id": body["service_id"]}
    outbox.enqueue(
        SUBMISSION_KIND,
        json.dumps(body, ensure_ascii=False).encode("utf-8"),
        json.dumps(summary).encode("utf-8"),
        item_id=sid,
    )
    return sid, body


def test_twenty_submissions_drain_once_each(
    outbox: Outbox, platform_server: RunningPlatform, identity: TerminalIdentity
) -> None:
    client = client_for(platform_server, identity)
    engine = SyncEngine(outbox, client)
    ids = [enqueue(outbox)[0] for _ in range(20)]
    assert outbox.pending_count() == 20
    assert engine.drain_once() == 20
    assert outbox.counts()["delivered"] == 20
    assert outbox.pending_count() == 0
    for sid in ids:
        status = client.status(sid)
        assert [h["status"] for h in status["history"]] == ["received"]
        response = json.loads(outbox.get_response(sid) or b"null")
        assert response["submission_id"] == sid
    assert engine.drain_once() == 0
    status = engine.status()
    assert (status.pending, status.delivered_total, status.online) == (0, 20, True)
    assert status.last_success_at is not None and status.last_error is None
    client.close()


def test_resend_of_a_delivered_id_gets_the_same_answer(
    outbox: Outbox, platform_server: RunningPlatform, identity: TerminalIdentity
) -> None:
    client = client_for(platform_server, identity)
    sid, body = enqueue(outbox)
    assert SyncEngine(outbox, client).drain_once() == 1
    stored = json.loads(outbox.get_response(sid) or b"null")
    again = client.submit(sid, body)
    assert again.delivered and again.response == stored
    client.close()


def test_background_thread_sends_on_wake(
    outbox: Outbox, platform_server: RunningPlatform, identity: TerminalIdentity
) -> None:
    client = client_for(platform_server, identity)
    watch = StatusWatch()
    engine = SyncEngine(outbox, client, on_change=watch)
    engine.start()
    try:
        # The start-up notice and the end of the first (empty) drain: the thread is idle now,
        # waiting with no timer, so only wake() can make it send.
        watch.wait_for(lambda s: len(watch.history) >= 2 and not s.draining)
        sid, _ = enqueue(outbox)
        engine.wake()
        status = watch.wait_for(lambda s: s.delivered_total == 1)
        assert status.pending == 0 and status.online is True
        assert outbox.state_of(sid) is State.DELIVERED
    finally:
        assert engine.stop(timeout=WAIT_S)
    assert engine.stop() is True  # idempotent
    assert not engine.running
    assert watch.threads == {"outbox-sync"}  # never the caller's (GUI) thread
    client.close()


def test_crash_between_claim_and_mark_is_resent_once(
    tmp_path: Path, platform_server: RunningPlatform, identity: TerminalIdentity
) -> None:
    key = load_or_create_key(tmp_path / "outbox.key")
    client = client_for(platform_server, identity)
    box = Outbox(tmp_path / "outbox.db", key)
    sid, body = enqueue(box)
    item = box.claim_next()
    assert item is not None
    assert client.submit(sid, body).delivered  # reached the platform, then the terminal died
    box.close()

    box = Outbox(tmp_path / "outbox.db", key)
    try:
        assert box.state_of(sid) is State.QUEUED
        assert SyncEngine(box, client).drain_once() == 1
        assert [h["status"] for h in client.status(sid)["history"]] == ["received"]
    finally:
        box.close()
        client.close()


def test_real_platform_rejection_and_conflict(
    outbox: Outbox, platform_server: RunningPlatform, identity: TerminalIdentity
) -> None:
    client = client_for(platform_server, identity)
    bad_id, _ = enqueue(outbox, phone="12")
    # The platform already holds this id with other content: a resend cannot settle it.
    clash_id = new_item_id()
    assert client.submit(clash_id, demo_submission(submission_id=clash_id, phone="13900139000"))
    summary = b"{}"
    body = demo_submission(submission_id=clash_id)
    outbox.enqueue(SUBMISSION_KIND, json.dumps(body).encode(), summary, item_id=clash_id)

    assert SyncEngine(outbox, client).drain_once() == 0
    infos = {i.id: i for i in outbox.items()}
    assert infos[bad_id].state is State.REJECTED
    assert infos[bad_id].last_error == "validation_failed|phone:pattern"
    assert infos[clash_id].state is State.NEEDS_ATTENTION
    assert infos[clash_id].last_error == "idempotency_conflict"
    assert outbox.pending_count() == 0
    set_language("zh_CN")
    assert describe_item(infos[bad_id]) == "平台未受理：服务平台发现表单有误：phone：格式不对"
    set_language("en")
    assert describe_item(infos[clash_id]) == (
        "Needs staff attention: The platform already holds a different submission with this number."
    )
    client.close()


@pytest.mark.parametrize(
    ("mode", "state", "error"),
    [
        ("captive", State.QUEUED, "unexpected_answer"),
        ("other_id", State.QUEUED, "unexpected_answer"),
        ("garbage", State.QUEUED, "unexpected_answer"),
        ("redirect", State.QUEUED, "unexpected_answer"),
        ("html_404", State.QUEUED, "unexpected_answer"),
        ("busy", State.QUEUED, "unavailable"),
        ("drop", State.QUEUED, "connection_failed"),
        ("stall", State.QUEUED, "timeout"),
        ("rejected", State.REJECTED, "validation_failed|phone:pattern"),
        ("conflict", State.NEEDS_ATTENTION, "idempotency_conflict"),
        ("accept", State.DELIVERED, None),
    ],
)
def test_misbehaving_peer_outcomes_map_to_states(
    outbox: Outbox, bad_peer: BadPeer, mode: str, state: State, error: str | None
) -> None:
    bad_peer.mode = mode
    client = PlatformClient(bad_peer.base_url, timeout=(2.0, 0.5))
    engine = SyncEngine(outbox, client, retry_base_s=60.0, rng=lambda: 1.0)
    sid, _ = enqueue(outbox)
    before = time.time()
    delivered = engine.drain_once()
    assert delivered == (1 if state is State.DELIVERED else 0)
    [info] = outbox.items()
    assert (info.id, info.state, info.last_error, info.attempts) == (sid, state, error, 1)
    if state is State.QUEUED:
        assert info.next_attempt_at is not None
        wait = info.next_attempt_at - before
        expected = RETRY_AFTER_S if mode == "busy" else 60.0
        assert expected - 1 <= wait <= expected + 5
        assert outbox.claim_next() is None  # not due again before its time
    else:
        assert info.next_attempt_at is None
    status = engine.status()
    assert status.online is (state is not State.QUEUED or mode == "busy")
    client.close()


def test_offline_engine_probes_and_drains_when_the_network_returns(
    outbox: Outbox, platform_server: RunningPlatform, identity: TerminalIdentity, net_gate: Gate
) -> None:
    client = PlatformClient(net_gate.base_url, timeout=(1.0, 5.0), auth=identity.auth())
    watch = StatusWatch()
    # A long backoff: only the health probe can bring the row back within the test's wait.
    engine = SyncEngine(
        outbox,
        client,
        on_change=watch,
        probe_interval_s=0.05,
        retry_base_s=600.0,
        retry_cap_s=600.0,
        rng=lambda: 1.0,
    )
    engine.start()
    try:
        first, _ = enqueue(outbox)
        second, _ = enqueue(outbox)
        engine.wake()
        offline = watch.wait_for(
            lambda s: s.online is False and not s.draining and s.last_error is not None
        )
        assert offline.pending == 2 and offline.last_error == "connection_failed"
        infos = {i.id: i for i in outbox.items()}
        # The drain stopped at the first failure instead of spending the second row's attempt.
        assert (infos[first].attempts, infos[second].attempts) == (1, 0)
        assert infos[first].next_attempt_at is not None
        assert infos[first].next_attempt_at - time.time() > 500

        back_at = time.monotonic()
        net_gate.open("127.0.0.1", platform_server.port)
        done = watch.wait_for(lambda s: s.delivered_total == 2 and s.pending == 0)
        took = time.monotonic() - back_at
    finally:
        assert engine.stop(timeout=WAIT_S)
    assert done.online is True
    assert took < 5.0
    assert outbox.state_of(first) is State.DELIVERED
    assert outbox.state_of(second) is State.DELIVERED
    client.close()


def _probing_engine(outbox: Outbox, client: PlatformClient, watch: StatusWatch) -> SyncEngine:
    return SyncEngine(
        outbox,
        client,
        on_change=watch,
        probe_interval_s=0.05,
        retry_base_s=600.0,
        retry_cap_s=600.0,
        rng=lambda: 1.0,
    )


def test_sends_as_soon_as_a_captive_portal_lets_go(outbox: Outbox, bad_peer: BadPeer) -> None:
    bad_peer.mode = bad_peer.health = "captive"
    client = PlatformClient(bad_peer.base_url, timeout=(2.0, 2.0))
    watch = StatusWatch()
    engine = _probing_engine(outbox, client, watch)
    engine.start()
    try:
        sid, _ = enqueue(outbox)
        engine.wake()
        # (an idle health check may report the portal before the send does)
        status = watch.wait_for(
            lambda s: s.online is False and not s.draining and s.last_error is not None
        )
        assert status.last_error == "unexpected_answer"
        bad_peer.mode, bad_peer.health = "accept", "ok"  # the assistant signed in to the Wi-Fi
        watch.wait_for(lambda s: s.delivered_total == 1)
    finally:
        assert engine.stop(timeout=WAIT_S)
    assert outbox.state_of(sid) is State.DELIVERED
    assert bad_peer.posts() == 2
    client.close()


def test_no_retry_storm_when_health_answers_but_sending_fails(
    outbox: Outbox, bad_peer: BadPeer
) -> None:
    bad_peer.mode, bad_peer.health = "captive", "ok"
    client = PlatformClient(bad_peer.base_url, timeout=(2.0, 2.0))
    watch = StatusWatch()
    engine = _probing_engine(outbox, client, watch)
    engine.start()
    try:
        sid, _ = enqueue(outbox)
        engine.wake()
        # First failure, a successful probe brings the row forward, the second try fails too...
        watch.wait_for(lambda s: bad_peer.posts() >= 2 and not s.draining)
        # ...and from then on the row waits out its backoff: ten probe intervals, no new send.
        assert not watch.happens(lambda s: bad_peer.posts() >= 3, timeout=0.5)
    finally:
        assert engine.stop(timeout=WAIT_S)
    [info] = outbox.items()
    assert (info.id, info.state, info.attempts) == (sid, State.QUEUED, 2)
    assert info.next_attempt_at is not None and info.next_attempt_at - time.time() > 500
    client.close()
