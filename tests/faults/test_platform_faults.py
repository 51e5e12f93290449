"""Fault test: the reference platform misbehaves on a switch, and the real sync engine, outbox and
client settle every submission as the rules say.

The platform serves over real HTTP on 127.0.0.1 with a FaultPlan switched from this process (and,
for the command line, over its admin endpoint). 5xx, a delay past the client's timeout, a dropped
connection and garbage keep a row queued with backoff until the fault is gone, then it is
delivered once; an answer lost after the platform stored the submission is replayed on the
resend; a conflict waits for staff; a 422 is kept as rejected. Backoff is read off a fake clock
shared by outbox, engine and client, so no test waits it out.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import socket
import sqlite3
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests

from kiosk.i18n import set_language
from kiosk.platform_client import CONNECTION_FAILED, PlatformClient
from kiosk.sync import SyncEngine
from kiosk.sync_messages import describe_item
from kiosk.terminal_auth import TerminalIdentity, sign_headers
from offline_queue.keys import load_or_create_key
from offline_queue.outbox import Outbox, OutboxItemInfo, State
from refplatform.app import API_PREFIX
from refplatform.backoffice import FILE_NAME as TOKEN_FILE
from refplatform.faults import FAULTS_PATH, Fault, FaultPlan, FaultRule
from refplatform.server import RunningPlatform, start_in_thread
from tests.fixtures.outbox import FakeClock
from tests.fixtures.platform import (
    DEMO_CATALOGUE,
    client_for,
    demo_submission,
    enrol_at,
    enrol_terminal,
    signed_client,
)
from tests.integration.test_sync import StatusWatch, enqueue

REPO = Path(__file__).resolve().parents[2]
WAIT_S = 10.0
# Loopback answers take milliseconds; the read timeout only has to be clearly shorter than the
# injected delay.
TIMEOUT = (2.0, 0.5)
DELAY_S = 1.5
RETRY_BASE_S = 60.0  # with rng() == 1.0 the n-th failure waits exactly 60 * 2**(n - 1) s
RETRY_AFTER_S = 7


@dataclass
class Rig:
    platform: RunningPlatform
    plan: FaultPlan
    outbox: Outbox
    client: PlatformClient
    engine: SyncEngine
    clock: FakeClock

    def row(self, sid: str) -> OutboxItemInfo:
        [info] = [i for i in self.outbox.items(limit=1000) if i.id == sid]
        return info

    def copies(self, sid: str) -> int:
        return platform_copies(self.platform, sid)

    def stored_answer(self, sid: str) -> dict[str, Any]:
        """The answer the platform keeps for a repeat of this key, read from its database."""
        with contextlib.closing(sqlite3.connect(self.platform.db_path)) as db:
            (body,) = db.execute(
                "SELECT response_body FROM submissions WHERE submission_id = ?", (sid,)
            ).fetchone()
        answer: dict[str, Any] = json.loads(body)
        return answer

    def history(self, sid: str) -> list[str]:
        return [entry["status"] for entry in self.client.status(sid)["history"]]


def platform_copies(platform: RunningPlatform, sid: str | None = None) -> int:
    """Rows in the platform's database: for one submission id, or all of them."""
    query, args = "SELECT COUNT(*) FROM submissions", ()
    if sid is not None:
        query, args = query + " WHERE submission_id = ?", (sid,)
    with contextlib.closing(sqlite3.connect(platform.db_path)) as db:
        (count,) = db.execute(query, args).fetchone()
    return int(count)


@pytest.fixture
def plan() -> FaultPlan:
    return FaultPlan()


@pytest.fixture
def faulty_platform(tmp_path: Path, plan: FaultPlan) -> Iterator[RunningPlatform]:
    with start_in_thread(tmp_path / "platform.sqlite3", DEMO_CATALOGUE, faults=plan) as running:
        yield running


@pytest.fixture
def identity(tmp_path: Path, faulty_platform: RunningPlatform) -> TerminalIdentity:
    """Terminal K01 (the demo bodies' terminal_id), enrolled with faulty_platform."""
    return enrol_terminal(faulty_platform, tmp_path / "terminal")


@pytest.fixture
def rig(
    tmp_path: Path, faulty_platform: RunningPlatform, plan: FaultPlan, identity: TerminalIdentity
) -> Iterator[Rig]:
    clock = FakeClock(time.time())
    outbox = Outbox(tmp_path / "outbox.db", load_or_create_key(tmp_path / "outbox.key"), clock)
    # The fake clock paces retries only; requests are signed with the real time, as they are.
    client = client_for(faulty_platform, identity, timeout=TIMEOUT, clock=clock)
    engine = SyncEngine(
        outbox, client, clock=clock, retry_base_s=RETRY_BASE_S, retry_cap_s=3600.0, rng=lambda: 1.0
    )
    yield Rig(faulty_platform, plan, outbox, client, engine, clock)
    client.close()
    outbox.close()


def _wait_after(fault: Fault, attempt: int) -> float:
    if fault is Fault.HTTP_503:
        return RETRY_AFTER_S
    return RETRY_BASE_S * 2 ** (attempt - 1)


@pytest.mark.parametrize(
    ("fault", "error", "platform_answered"),
    [
        (Fault.HTTP_500, "internal_error", True),
        (Fault.HTTP_502, "http_502", True),
        (Fault.HTTP_503, "unavailable", True),
        (Fault.DELAY, "timeout", False),
        (Fault.DROP_BEFORE_STORE, CONNECTION_FAILED, False),
        (Fault.CAPTIVE_PORTAL, "unexpected_answer", False),
        (Fault.INVALID_JSON, "unexpected_answer", False),
        (Fault.OTHER_ID, "unexpected_answer", False),
    ],
)
def test_passing_fault_keeps_the_row_queued_then_it_is_delivered_once(
    rig: Rig, fault: Fault, error: str, platform_answered: bool
) -> None:
    bystander, _ = enqueue(rig.outbox)
    rig.clock.advance(1.0)
    target, _ = enqueue(rig.outbox)
    rig.plan.set(
        FaultRule(
            fault,
            count=2,
            submission_ids=frozenset({target}),
            retry_after_s=RETRY_AFTER_S if fault is Fault.HTTP_503 else None,
            delay_s=DELAY_S,
        )
    )
    for attempt in (1, 2):
        # The bystander, not named by the rule, goes through on the first drain.
        assert rig.engine.drain_once() == (1 if attempt == 1 else 0)
        info = rig.row(target)
        assert (info.state, info.attempts, info.last_error) == (State.QUEUED, attempt, error)
        assert info.next_attempt_at is not None
        wait = _wait_after(fault, attempt)
        assert info.next_attempt_at - info.updated_at == pytest.approx(wait)
        status = rig.engine.status()
        assert status.last_error == error
        assert status.online is platform_answered
        assert status.next_attempt_at == pytest.approx(info.next_attempt_at)
        if fault is not Fault.DELAY:  # a delayed request is stored once the delay is over
            assert rig.copies(target) == 0
        rig.clock.advance(wait - 0.5)
        assert rig.engine.drain_once() == 0  # not before its time
        assert rig.row(target).attempts == attempt
        rig.clock.advance(0.5)
    assert rig.plan.applied(fault) == 2
    assert rig.plan.rules() == ()  # used up: the platform answers normally again

    assert rig.engine.drain_once() == 1
    info = rig.row(target)
    assert (info.state, info.attempts, info.last_error) == (State.DELIVERED, 3, None)
    answer = json.loads(rig.outbox.get_response(target) or b"null")
    assert answer["submission_id"] == target
    assert answer == rig.stored_answer(target)
    assert (rig.copies(target), rig.copies(bystander), platform_copies(rig.platform)) == (1, 1, 2)
    assert rig.history(target) == ["received"]
    assert rig.engine.status().last_error is None
    assert rig.engine.drain_once() == 0


def test_answer_lost_after_storing_is_replayed_to_the_resend(rig: Rig) -> None:
    sid, _ = enqueue(rig.outbox)
    rig.plan.set(FaultRule(Fault.DROP_AFTER_STORE))
    assert rig.engine.drain_once() == 0
    info = rig.row(sid)
    assert (info.state, info.attempts, info.last_error) == (State.QUEUED, 1, CONNECTION_FAILED)
    # The platform has it; the terminal cannot know and must send it again.
    assert rig.copies(sid) == 1
    stored = rig.stored_answer(sid)
    assert info.next_attempt_at is not None
    rig.clock.advance(info.next_attempt_at - rig.clock())

    assert rig.engine.drain_once() == 1
    assert rig.row(sid).state is State.DELIVERED
    assert json.loads(rig.outbox.get_response(sid) or b"null") == stored
    assert rig.copies(sid) == 1
    assert rig.history(sid) == ["received"]
    assert rig.plan.applied() == 1


def test_conflict_waits_for_staff_with_its_reason(rig: Rig) -> None:
    sid, _ = enqueue(rig.outbox)
    rig.plan.set(FaultRule(Fault.CONFLICT))
    assert rig.engine.drain_once() == 0
    info = rig.row(sid)
    assert (info.state, info.attempts, info.last_error, info.next_attempt_at) == (
        State.NEEDS_ATTENTION,
        1,
        "idempotency_conflict",
        None,
    )
    kept = json.loads(rig.outbox.get_response(sid) or b"null")
    assert kept["error"] == "idempotency_conflict"
    set_language("en")
    assert "different submission" in describe_item(info)
    assert rig.engine.status().needs_attention == 1

    rig.clock.advance(7 * 24 * 3600.0)
    assert rig.engine.drain_once() == 0  # never settled by resending on its own
    assert rig.row(sid).attempts == 1
    assert rig.plan.applied() == 1
    assert rig.copies(sid) == 0

    rig.outbox.requeue(sid)  # staff checked and chose "retry now"
    assert rig.engine.drain_once() == 1
    assert rig.row(sid).state is State.DELIVERED
    assert rig.copies(sid) == 1


def test_validation_refusal_is_kept_as_rejected(rig: Rig) -> None:
    sid, _ = enqueue(rig.outbox)
    rig.plan.set(FaultRule(Fault.VALIDATION))
    assert rig.engine.drain_once() == 0
    info = rig.row(sid)
    assert (info.state, info.attempts, info.last_error) == (
        State.REJECTED,
        1,
        "validation_failed|phone:pattern",
    )
    assert info.summary is not None  # kept for staff, not deleted
    rig.clock.advance(7 * 24 * 3600.0)
    assert rig.engine.drain_once() == 0
    assert rig.engine.status().rejected == 1
    assert rig.copies(sid) == 0


def test_captive_portal_never_marks_delivered(rig: Rig) -> None:
    sid, _ = enqueue(rig.outbox)
    rig.plan.set(FaultRule(Fault.CAPTIVE_PORTAL, count=None))  # until switched off
    for attempt in range(1, 6):
        assert rig.engine.drain_once() == 0
        info = rig.row(sid)
        assert (info.state, info.attempts) == (State.QUEUED, attempt)
        assert info.last_error == "unexpected_answer"
        rig.clock.advance(RETRY_BASE_S * 2 ** (attempt - 1))
    assert rig.plan.applied(Fault.CAPTIVE_PORTAL) == 5
    rig.plan.clear()
    assert rig.engine.drain_once() == 1
    assert rig.copies(sid) == 1


def _post_raw(platform: RunningPlatform, identity: TerminalIdentity, body: dict[str, Any]) -> bytes:
    """POST a submission, signed by identity, on a fresh socket and return every byte that comes
    back until EOF (the request asks the server to close once it has answered)."""
    data = json.dumps(body).encode()
    path = f"{API_PREFIX}/submissions"
    signed = sign_headers(identity.key, identity.terminal_id, "POST", path, data, now=time.time())
    head = (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Content-Type: application/json\r\nIdempotency-Key: {body['submission_id']}\r\n"
        + "".join(f"{name}: {value}\r\n" for name, value in signed.items())
        + f"Content-Length: {len(data)}\r\nConnection: close\r\n\r\n"
    ).encode()
    received = b""
    with socket.create_connection(("127.0.0.1", platform.port), timeout=WAIT_S) as sock:
        sock.sendall(head + data)
        with contextlib.suppress(ConnectionResetError):
            while chunk := sock.recv(65536):
                received += chunk
    return received


@pytest.mark.parametrize(
    ("fault", "stored"), [(Fault.DROP_BEFORE_STORE, 0), (Fault.DROP_AFTER_STORE, 1)]
)
def test_dropped_connection_is_a_connection_error_not_an_answer(
    faulty_platform: RunningPlatform,
    plan: FaultPlan,
    identity: TerminalIdentity,
    fault: Fault,
    stored: int,
) -> None:
    body = demo_submission()
    plan.set(FaultRule(fault))
    assert _post_raw(faulty_platform, identity, body) == b""  # not even a status line
    assert platform_copies(faulty_platform, body["submission_id"]) == stored

    # The same through the client's keep-alive session: a connection error, no HTTP status.
    with contextlib.closing(client_for(faulty_platform, identity, timeout=TIMEOUT)) as client:
        assert client.health()  # the session now holds an open connection
        plan.set(FaultRule(fault))
        sid = str(uuid.uuid4())
        outcome = client.submit(sid, demo_submission(submission_id=sid))
        assert (outcome.error_code, outcome.http_status, outcome.offline) == (
            CONNECTION_FAILED,
            None,
            True,
        )
        assert outcome.error == "ConnectionError"
        assert platform_copies(faulty_platform, sid) == stored
        assert client.submit(sid, demo_submission(submission_id=sid)).delivered
    assert plan.applied(fault) == 2
    # Without the fault the same request gets a full answer.
    assert _post_raw(faulty_platform, identity, demo_submission()).startswith(b"HTTP/1.1 201 ")


def test_switch_is_off_by_default(platform_server: RunningPlatform, tmp_path: Path) -> None:
    url = f"{platform_server.base_url}{FAULTS_PATH}"
    plan_doc = {"rules": [{"fault": "http_503", "count": None}]}
    with requests.Session() as http:
        for method in ("PUT", "GET", "DELETE"):
            answer = http.request(method, url, json=plan_doc, timeout=WAIT_S)
            assert answer.status_code == 404, method
            assert answer.json()["error"] == "not_found"
    with (
        Outbox(tmp_path / "outbox.db", load_or_create_key(tmp_path / "outbox.key")) as outbox,
        contextlib.closing(
            signed_client(platform_server, tmp_path / "terminal", timeout=TIMEOUT)
        ) as client,
    ):
        sid, _ = enqueue(outbox)
        assert SyncEngine(outbox, client).drain_once() == 1
        assert outbox.state_of(sid) is State.DELIVERED
    assert platform_copies(platform_server, sid) == 1


def test_admin_switch_over_http(
    faulty_platform: RunningPlatform, plan: FaultPlan, identity: TerminalIdentity
) -> None:
    url = f"{faulty_platform.base_url}{FAULTS_PATH}"
    with (
        requests.Session() as http,
        contextlib.closing(client_for(faulty_platform, identity, timeout=TIMEOUT)) as client,
    ):
        shown = http.get(url, timeout=WAIT_S).json()
        assert shown["rules"] == [] and set(shown["applied"].values()) == {0}

        answer = http.put(
            url, json={"rules": [{"fault": "http_503", "retry_after_s": 5}]}, timeout=WAIT_S
        )
        assert answer.status_code == 200
        assert plan.rules() == (FaultRule(Fault.HTTP_503, retry_after_s=5),)
        sid = str(uuid.uuid4())
        busy = client.submit(sid, demo_submission(submission_id=sid))
        assert (busy.http_status, busy.error_code, busy.retry_after_s) == (503, "unavailable", 5)
        shown = http.get(url, timeout=WAIT_S).json()
        assert shown["rules"] == [] and shown["applied"]["http_503"] == 1
        assert client.submit(sid, demo_submission(submission_id=sid)).delivered

        bad = http.put(
            url,
            json={"rules": [{"fault": "http_503", "count": 0}, {"fault": "meteor"}]},
            timeout=WAIT_S,
        )
        assert bad.status_code == 422
        assert bad.json()["fields"] == [
            {"field": "0.count", "code": "minimum"},
            {"field": "1.fault", "code": "enum"},
        ]
        assert plan.rules() == ()  # a refused plan changes nothing
        assert http.put(url, data=b"{", timeout=WAIT_S).status_code == 400
        assert http.put(url, json=[], timeout=WAIT_S).status_code == 400

        http.put(url, json={"rules": [{"fault": "captive_portal", "count": None}]}, timeout=WAIT_S)
        for _ in range(3):
            other = str(uuid.uuid4())
            assert not client.submit(other, demo_submission(submission_id=other)).delivered
        assert http.delete(url, timeout=WAIT_S).json()["rules"] == []
        assert client.submit(other, demo_submission(submission_id=other)).delivered
        # The switch is kept out of the published API document.
        document = http.get(f"{faulty_platform.base_url}{API_PREFIX}/openapi.json", timeout=WAIT_S)
        assert document.status_code == 200 and "_faults" not in document.text


def test_engine_thread_delivers_each_submission_once_through_every_fault(
    tmp_path: Path, faulty_platform: RunningPlatform, plan: FaultPlan, identity: TerminalIdentity
) -> None:
    passing = [
        Fault.DROP_AFTER_STORE,
        Fault.DROP_BEFORE_STORE,
        Fault.HTTP_500,
        Fault.HTTP_502,
        Fault.CAPTIVE_PORTAL,
        Fault.INVALID_JSON,
        Fault.OTHER_ID,
        Fault.DELAY,
    ]
    watch = StatusWatch()
    with (
        Outbox(tmp_path / "outbox.db", load_or_create_key(tmp_path / "outbox.key")) as outbox,
        contextlib.closing(client_for(faulty_platform, identity, timeout=TIMEOUT)) as client,
    ):
        ids = [enqueue(outbox)[0] for _ in range(12)]
        # One fault per submission from the second on: the first goes out alone and the rest
        # as they come, so faults hit single requests and requests carrying several submissions.
        plan.set(
            *(
                FaultRule(fault, submission_ids=frozenset({sid}), delay_s=1.0)
                for fault, sid in zip(passing, ids[1:], strict=False)
            )
        )
        engine = SyncEngine(
            outbox,
            client,
            on_change=watch,
            probe_interval_s=0.05,
            retry_base_s=0.05,
            retry_cap_s=0.2,
        )
        engine.start()
        try:
            engine.wake()
            done = watch.wait_for(lambda s: s.delivered_total == len(ids), timeout=3 * WAIT_S)
        finally:
            assert engine.stop(timeout=WAIT_S)
        infos = {i.id: i for i in outbox.items(limit=100)}
    assert done.pending == 0
    assert {info.state for info in infos.values()} == {State.DELIVERED}
    assert plan.rules() == ()
    assert {fault: plan.applied(fault) for fault in passing} == dict.fromkeys(passing, 1)
    for sid in ids:
        assert platform_copies(faulty_platform, sid) == 1
    assert platform_copies(faulty_platform) == len(ids)
    assert all(infos[sid].attempts >= 2 for sid in ids[1 : 1 + len(passing)])


def _start_cli(tmp_path: Path, name: str, *flags: str) -> tuple[subprocess.Popen[str], str]:
    process = subprocess.Popen(
        [sys.executable, "-m", "refplatform", "--port", "0", "--db", str(tmp_path / name), *flags],
        cwd=REPO,
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert process.stderr is not None
    for line in process.stderr:  # uvicorn says where it listens once it does
        found = re.search(r"Uvicorn running on (http://\S+)", line)
        if found:
            return process, found.group(1)
    process.wait(timeout=WAIT_S)
    process.stderr.close()
    raise AssertionError(f"the platform did not start (exit {process.returncode})")


def test_command_line_switch(tmp_path: Path) -> None:
    plain, plain_url = _start_cli(tmp_path, "plain.sqlite3")
    try:
        enabled, enabled_url = _start_cli(tmp_path, "enabled.sqlite3", "--enable-faults")
        try:
            with requests.Session() as http:
                refused = http.put(f"{plain_url}{FAULTS_PATH}", json={"rules": []}, timeout=WAIT_S)
                assert refused.status_code == 404

                conflict = {"rules": [{"fault": "conflict"}]}
                switched = http.put(f"{enabled_url}{FAULTS_PATH}", json=conflict, timeout=WAIT_S)
                assert switched.status_code == 200
            # Both platforms keep their back-office token in the one file beside their databases.
            token = (tmp_path / TOKEN_FILE).read_text().strip()
            for url, first in ((enabled_url, "conflict"), (plain_url, "delivered")):
                identity = enrol_at(url, token, tmp_path / f"terminal-{first}")
                client = PlatformClient(url, timeout=TIMEOUT, auth=identity.auth())
                with contextlib.closing(client):
                    sid = str(uuid.uuid4())
                    assert client.submit(sid, demo_submission(submission_id=sid)).kind == first
                    assert client.submit(sid, demo_submission(submission_id=sid)).delivered
        finally:
            enabled.terminate()
            enabled.wait(timeout=WAIT_S)
            assert enabled.stderr is not None
            enabled.stderr.close()
    finally:
        plain.terminate()
        plain.wait(timeout=WAIT_S)
        assert plain.stderr is not None
        plain.stderr.close()
