"""Platform answers are read up to a cap and a deadline, over real HTTP on 127.0.0.1: a peer that
sends for ever, claims a huge length, inflates from gzip or trickles never gets the client stuck,
and a catalogue too big to take leaves the cached one in place."""

from __future__ import annotations

import concurrent.futures
import contextlib
import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from kiosk.catalogue_store import CatalogueStore
from kiosk.limits import MAX_CATALOGUE_BYTES, MAX_RESPONSE_BYTES
from kiosk.platform_client import (
    RESPONSE_TOO_LARGE,
    TIMEOUT,
    OutcomeKind,
    PlatformClient,
    PlatformResponseTooLarge,
    PlatformUnreachable,
    SubmitOutcome,
)
from offline_queue.outbox import new_item_id
from tests.fixtures.badpeer import FloodPeer
from tests.fixtures.platform import DEMO_CATALOGUE, demo_submission

# Generous: each case ends in well under a second here; a client that read on would never end.
WITHIN_S = 30.0


@pytest.fixture
def client(flood_peer: FloodPeer) -> Iterator[PlatformClient]:
    c = PlatformClient(flood_peer.base_url, timeout=(2.0, 5.0))
    yield c
    c.close()


def _within(call: Callable[[], Any]) -> tuple[Any, float]:
    """Run a client call on a worker thread: (its result or the exception it raised, seconds)."""
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=1)
    try:
        started = time.perf_counter()
        future = pool.submit(call)
        try:
            exc = future.exception(timeout=WITHIN_S)
        except concurrent.futures.TimeoutError:
            pytest.fail(f"the client was still reading after {WITHIN_S} s")
        elapsed = time.perf_counter() - started
        return (exc if exc is not None else future.result()), elapsed
    finally:
        # A client stuck in a read is let go; stopping the peer ends that read.
        pool.shutdown(wait=False)


def _submission() -> tuple[str, dict[str, Any]]:
    sid = new_item_id()
    return sid, demo_submission(submission_id=sid)


def _assert_too_large(outcome: Any) -> None:
    assert isinstance(outcome, SubmitOutcome), outcome
    assert (outcome.kind, outcome.error_code, outcome.http_status) == (
        OutcomeKind.RETRY,
        RESPONSE_TOO_LARGE,
        200,
    )
    assert not outcome.delivered


def _assert_refused(result: Any) -> None:
    assert isinstance(result, PlatformResponseTooLarge), result
    assert result.code == RESPONSE_TOO_LARGE
    assert "服务平台" in result.user_message()  # a message for people, in zh_CN


@pytest.mark.parametrize("mode", ["endless", "declared", "gzip"])
@pytest.mark.parametrize("call", ["catalogue", "status", "rate", "submit", "batch", "health"])
def test_an_answer_past_its_cap_is_given_up_unread(
    flood_peer: FloodPeer, client: PlatformClient, mode: str, call: str
) -> None:
    flood_peer.mode = mode
    sid, body = _submission()
    calls: dict[str, Callable[[], Any]] = {
        "catalogue": client.get_catalogue,
        "status": lambda: client.status(sid),
        "rate": lambda: client.rate(sid, "satisfied"),
        "submit": lambda: client.submit(sid, body),
        "batch": lambda: client.submit_batch([(sid, body), _submission()]),
        "health": client.health,
    }
    result, _elapsed = _within(calls[call])
    if call == "health":
        assert result is False
    elif call == "submit":
        _assert_too_large(result)
    elif call == "batch":
        assert isinstance(result, list) and len(result) == 2
        for outcome in result:
            _assert_too_large(outcome)
    else:
        _assert_refused(result)
    assert flood_peer.requests, "the peer was asked"
    if mode == "endless":
        # The client hung up: the peer's next write failed instead of going on for ever.
        assert flood_peer.cut_off.wait(WITHIN_S)
    if mode == "declared":
        # Refused on the header: no more than the first bytes of the body ever left the peer.
        assert flood_peer.sent < 64


def test_the_catalogue_has_its_own_larger_cap(
    flood_peer: FloodPeer, client: PlatformClient
) -> None:
    catalogue = json.loads(DEMO_CATALOGUE.read_text(encoding="utf-8"))
    catalogue["padding"] = ""
    base = len(json.dumps(catalogue).encode())
    # Between the two caps: a catalogue may be that big, any other answer may not.
    catalogue["padding"] = "x" * (MAX_RESPONSE_BYTES + 1024 - base)
    flood_peer.mode = "payload"
    flood_peer.payload = json.dumps(catalogue).encode()
    assert MAX_RESPONSE_BYTES < len(flood_peer.payload) < MAX_CATALOGUE_BYTES
    got, _ = _within(client.get_catalogue)
    assert isinstance(got, dict) and got["version"] == catalogue["version"]
    status, _ = _within(lambda: client.status("0192f0c4-0000-7000-8000-000000000001"))
    _assert_refused(status)


@pytest.mark.parametrize("declare_length", [False, True])
def test_a_catalogue_one_byte_past_its_cap_is_refused(
    flood_peer: FloodPeer, client: PlatformClient, declare_length: bool
) -> None:
    catalogue = json.loads(DEMO_CATALOGUE.read_text(encoding="utf-8"))
    catalogue["padding"] = ""
    base = len(json.dumps(catalogue).encode())
    flood_peer.mode = "payload"
    flood_peer.declare_length = declare_length
    catalogue["padding"] = "x" * (MAX_CATALOGUE_BYTES - base)
    flood_peer.payload = json.dumps(catalogue).encode()
    assert len(flood_peer.payload) == MAX_CATALOGUE_BYTES
    at_cap, _ = _within(client.get_catalogue)
    assert isinstance(at_cap, dict), at_cap
    catalogue["padding"] += "x"
    flood_peer.payload = json.dumps(catalogue).encode()
    past_cap, _ = _within(client.get_catalogue)
    _assert_refused(past_cap)


def test_an_answer_that_never_ends_meets_the_deadline(flood_peer: FloodPeer) -> None:
    # Each byte comes well within the read timeout, so only the deadline for the whole body ends
    # the wait, long before the size cap would.
    flood_peer.mode = "trickle"
    deadline_s = 0.3
    with contextlib.closing(
        PlatformClient(flood_peer.base_url, timeout=(2.0, 5.0), response_deadline_s=deadline_s)
    ) as client:
        sid, body = _submission()
        outcome, elapsed = _within(lambda: client.submit(sid, body))
        assert isinstance(outcome, SubmitOutcome), outcome
        assert (outcome.kind, outcome.error_code, outcome.offline) == (
            OutcomeKind.RETRY,
            TIMEOUT,
            True,
        )
        assert elapsed >= deadline_s
        assert flood_peer.sent < MAX_RESPONSE_BYTES
        refused, _ = _within(client.get_catalogue)
        assert isinstance(refused, PlatformUnreachable), refused
        assert refused.code == TIMEOUT


def test_a_catalogue_too_big_to_take_leaves_the_cached_one(
    flood_peer: FloodPeer, client: PlatformClient, tmp_path: Path
) -> None:
    cache = tmp_path / "catalogue.json"
    store = CatalogueStore(cache, DEMO_CATALOGUE)
    flood_peer.mode = "payload"
    flood_peer.payload = DEMO_CATALOGUE.read_bytes()
    good = store.refresh(client)
    kept = cache.read_bytes()
    flood_peer.mode = "endless"
    result, _ = _within(lambda: store.refresh(client))
    _assert_refused(result)
    assert cache.read_bytes() == kept
    assert [s.id for s in store.load_local().services] == [s.id for s in good.services]
