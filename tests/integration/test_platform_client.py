"""The platform client over real HTTP: the reference platform, and peers that misbehave."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from kiosk.platform_client import (
    CONNECTION_FAILED,
    TIMEOUT,
    UNEXPECTED_ANSWER,
    FieldError,
    OutcomeKind,
    PlatformClient,
    PlatformNotFound,
    PlatformUnreachable,
)
from offline_queue.outbox import new_item_id
from refplatform.server import RunningPlatform
from tests.fixtures.badpeer import RETRY_AFTER_S, BadPeer
from tests.fixtures.platform import demo_submission, signed_client


@pytest.fixture
def client(platform_server: RunningPlatform, tmp_path: Path) -> Iterator[PlatformClient]:
    c = signed_client(platform_server, tmp_path / "terminal")
    yield c
    c.close()


@pytest.fixture
def peer_client(bad_peer: BadPeer) -> Iterator[PlatformClient]:
    c = PlatformClient(bad_peer.base_url, timeout=(2.0, 0.5))
    yield c
    c.close()


def test_health_and_catalogue(client: PlatformClient) -> None:
    assert client.health()
    catalogue = client.get_catalogue()
    assert isinstance(catalogue["version"], str)
    assert any(s["id"] == "residence-permit" for s in catalogue["services"])


def test_submit_delivers_and_a_resend_gets_the_same_answer(client: PlatformClient) -> None:
    sid = new_item_id()
    body = demo_submission(submission_id=sid)
    first = client.submit(sid, body)
    assert first.kind is OutcomeKind.DELIVERED, first
    assert first.http_status == 201
    assert first.response is not None and first.response["submission_id"] == sid
    again = client.submit(sid, body)
    assert again.kind is OutcomeKind.DELIVERED
    assert again.response == first.response
    status = client.status(sid)
    assert status["status"] == "received"
    assert [h["status"] for h in status["history"]] == ["received"]


def test_same_id_other_body_is_a_conflict(client: PlatformClient) -> None:
    sid = new_item_id()
    assert client.submit(sid, demo_submission(submission_id=sid)).delivered
    changed = demo_submission(submission_id=sid, phone="13900139000")
    outcome = client.submit(sid, changed)
    assert outcome.kind is OutcomeKind.CONFLICT
    assert (outcome.http_status, outcome.error_code) == (409, "idempotency_conflict")


def test_invalid_form_is_rejected_with_fields(client: PlatformClient) -> None:
    sid = new_item_id()
    outcome = client.submit(sid, demo_submission(submission_id=sid, phone="12"))
    assert outcome.kind is OutcomeKind.REJECTED
    assert (outcome.http_status, outcome.error_code) == (422, "validation_failed")
    assert FieldError("phone", "pattern") in outcome.fields
    with pytest.raises(PlatformNotFound):
        client.status(sid)  # a refused submission is not held


def test_unknown_service_is_rejected(client: PlatformClient) -> None:
    sid = new_item_id()
    outcome = client.submit(sid, demo_submission("no-such-service", submission_id=sid))
    assert outcome.kind is OutcomeKind.REJECTED
    assert outcome.error_code == "unknown_service"


def test_rate_and_status(client: PlatformClient) -> None:
    sid = new_item_id()
    assert client.submit(sid, demo_submission(submission_id=sid)).delivered
    rated = client.rate(sid, "very_satisfied", "快")
    assert rated["level"] == "very_satisfied"
    with pytest.raises(ValueError):
        client.rate(sid, "meh")
    with pytest.raises(PlatformNotFound):
        client.status(new_item_id())


def test_body_must_carry_the_key(client: PlatformClient) -> None:
    with pytest.raises(ValueError):
        client.submit(new_item_id(), demo_submission(submission_id=new_item_id()))


def test_verification_cannot_be_switched_off() -> None:
    session = requests.Session()
    session.verify = False
    with pytest.raises(ValueError):
        PlatformClient("https://platform.example", session=session)
    session.close()


@pytest.mark.parametrize(
    "case",
    [
        ("accept", OutcomeKind.DELIVERED, None, 201),
        ("captive", OutcomeKind.RETRY, UNEXPECTED_ANSWER, 200),
        ("other_id", OutcomeKind.RETRY, UNEXPECTED_ANSWER, 201),
        ("garbage", OutcomeKind.RETRY, UNEXPECTED_ANSWER, 200),
        ("redirect", OutcomeKind.RETRY, UNEXPECTED_ANSWER, 302),
        ("html_404", OutcomeKind.RETRY, UNEXPECTED_ANSWER, 404),
        ("busy", OutcomeKind.RETRY, "unavailable", 503),
        ("busy_date", OutcomeKind.RETRY, "http_503", 503),
        ("rejected", OutcomeKind.REJECTED, "validation_failed", 422),
        ("conflict", OutcomeKind.CONFLICT, "idempotency_conflict", 409),
    ],
    ids=lambda case: str(case[0]),
)
def test_answers_from_misbehaving_peers(
    bad_peer: BadPeer,
    peer_client: PlatformClient,
    case: tuple[str, OutcomeKind, str | None, int],
) -> None:
    mode, kind, code, status = case
    bad_peer.mode = mode
    sid = new_item_id()
    outcome = peer_client.submit(sid, demo_submission(submission_id=sid))
    assert (outcome.kind, outcome.error_code, outcome.http_status) == (kind, code, status)
    assert outcome.offline is (code == UNEXPECTED_ANSWER)  # a portal or proxy answered
    if mode == "busy":
        assert outcome.retry_after_s == RETRY_AFTER_S
    if mode == "busy_date":
        assert outcome.retry_after_s is not None and 100 < outcome.retry_after_s <= 121
    assert bad_peer.posts() == 1
    method, path, headers, _ = bad_peer.requests[-1]
    assert (method, path, headers["Idempotency-Key"]) == ("POST", "/api/v1/submissions", sid)


def test_dropped_connection_is_offline_retry(
    bad_peer: BadPeer, peer_client: PlatformClient
) -> None:
    bad_peer.mode = "drop"
    sid = new_item_id()
    outcome = peer_client.submit(sid, demo_submission(submission_id=sid))
    assert (outcome.kind, outcome.error_code, outcome.offline) == (
        OutcomeKind.RETRY,
        CONNECTION_FAILED,
        True,
    )


def test_stalled_answer_times_out(bad_peer: BadPeer, peer_client: PlatformClient) -> None:
    bad_peer.mode = "stall"
    sid = new_item_id()
    outcome = peer_client.submit(sid, demo_submission(submission_id=sid))
    assert (outcome.kind, outcome.error_code, outcome.offline) == (OutcomeKind.RETRY, TIMEOUT, True)


def test_closed_port_is_offline_retry() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))  # bound, never listening: connections are refused
        port = sock.getsockname()[1]
        client = PlatformClient(f"http://127.0.0.1:{port}", timeout=(1.0, 1.0))
        sid = new_item_id()
        outcome = client.submit(sid, demo_submission(submission_id=sid))
        assert (outcome.kind, outcome.error_code, outcome.offline) == (
            OutcomeKind.RETRY,
            CONNECTION_FAILED,
            True,
        )
        assert not client.health()
        with pytest.raises(PlatformUnreachable):
            client.get_catalogue()
        client.close()


def test_health_is_false_behind_a_captive_portal(
    bad_peer: BadPeer, peer_client: PlatformClient
) -> None:
    assert peer_client.health()
    bad_peer.health = "captive"
    assert not peer_client.health()
    bad_peer.health = "down"
    assert not peer_client.health()
