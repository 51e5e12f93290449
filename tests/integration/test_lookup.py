"""Looking cases up and rating them over real HTTP: POST /api/v1/lookup, and ratings queued in the
outbox and delivered once by the sync engine, also after the platform was away."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from kiosk.lookup import LookupCache, LookupDesk, Query, cache_key
from kiosk.platform_client import OutcomeKind, PlatformClient
from kiosk.ratings import RatingChoice, RatingDesk, rating_body
from kiosk.sync import SyncEngine
from offline_queue.keys import load_or_create_key
from offline_queue.outbox import Outbox, Settlement, State
from refplatform.lookup import MAX_CASES
from refplatform.server import RunningPlatform, start_in_thread
from refplatform.storage import Storage
from tests.fixtures.platform import DEMO_CATALOGUE, demo_submission, signed_client

APPLICANT = "11010519491231002X"
OTHER = "110101199003070513"  # another valid ID number


@pytest.fixture
def platform_server(tmp_path: Path) -> Iterator[RunningPlatform]:
    with start_in_thread(tmp_path / "platform.sqlite3", DEMO_CATALOGUE) as running:
        yield running


@pytest.fixture
def outbox(tmp_path: Path) -> Iterator[Outbox]:
    box = Outbox(tmp_path / "outbox.db", load_or_create_key(tmp_path / "outbox.key"))
    yield box
    box.close()


def file_case(
    client: PlatformClient,
    receipt: str,
    terminal: str = "K01",
    id_number: str = APPLICANT,
    created_at: str = "2026-11-23T14:32:05+08:00",
) -> str:
    body = demo_submission()
    body["created_at"] = created_at
    body["receipt_number"] = receipt
    body["terminal_id"] = terminal
    body["applicant"]["id_number"] = id_number
    body["answers"]["id_number"] = id_number
    outcome = client.submit(str(body["submission_id"]), body)
    assert outcome.delivered, outcome
    return str(body["submission_id"])


def test_a_case_is_found_by_receipt_number_with_its_history(
    tmp_path: Path, platform_server: RunningPlatform
) -> None:
    client = signed_client(platform_server, tmp_path / "k01", "K01")
    submission_id = file_case(client, "K01-20261123-0007")
    file_case(client, "K01-20261123-0008")
    answer = client.lookup({"receipt_number": "K01-20261123-0007"})
    [case] = answer["cases"]
    assert case["submission_id"] == submission_id
    assert case["status"] == "received"
    assert [step["status"] for step in case["history"]] == ["received"]
    assert case["filed_here"] is True
    # The same case as the receipt's code finds it (its submission id).
    assert client.lookup({"submission_id": submission_id})["cases"] == [case]
    assert client.lookup({"receipt_number": "K01-20261123-0099"}) == {"cases": []}


def test_a_card_finds_every_case_of_its_holder_newest_first_at_any_terminal(
    tmp_path: Path, platform_server: RunningPlatform
) -> None:
    k01 = signed_client(platform_server, tmp_path / "k01", "K01")
    c02 = signed_client(platform_server, tmp_path / "c02", "C02")
    older = file_case(k01, "K01-20261120-0001")
    newer = file_case(c02, "C02-20261121-0001", terminal="C02")
    file_case(k01, "K01-20261121-0002", id_number=OTHER)
    cases = k01.lookup({"id_number": APPLICANT})["cases"]
    assert [c["submission_id"] for c in cases] == [newer, older]
    assert [c["filed_here"] for c in cases] == [False, True]


def test_at_most_twenty_cases_are_answered(
    tmp_path: Path, platform_server: RunningPlatform
) -> None:
    client = signed_client(platform_server, tmp_path / "k01", "K01")
    for n in range(MAX_CASES + 2):
        file_case(client, f"K01-20261123-{n + 1:04d}")
    assert len(client.lookup({"id_number": APPLICANT})["cases"]) == MAX_CASES


def test_only_an_enrolled_terminal_may_look_up(platform_server: RunningPlatform) -> None:
    answer = requests.post(
        f"{platform_server.base_url}/api/v1/lookup", json={"id_number": APPLICANT}, timeout=10
    )
    assert answer.status_code == 401


def test_a_lookup_asks_one_thing_and_a_valid_id_number(
    tmp_path: Path, platform_server: RunningPlatform
) -> None:
    session = requests.Session()
    client = signed_client(platform_server, tmp_path / "k01", "K01")
    session.auth = client._auth  # the same signature
    url = f"{platform_server.base_url}/api/v1/lookup"
    for body in (
        {},
        {"id_number": "110105194912310021"},  # wrong check character
        {"id_number": APPLICANT, "receipt_number": "K01-20261123-0007"},
    ):
        answer = session.post(url, data=json.dumps(body), timeout=10)
        assert answer.status_code == 422, body


def test_offline_the_last_known_status_is_shown_with_its_time(
    tmp_path: Path, platform_server: RunningPlatform
) -> None:
    client = signed_client(platform_server, tmp_path / "k01", "K01")
    file_case(client, "K01-20261123-0007")
    cache = LookupCache(tmp_path / "cache.sqlite3", cache_key(b"k" * 32), clock=lambda: 1_000.0)
    online = LookupDesk(client, cache, clock=lambda: 1_000.0)
    assert online.find(Query(receipt_number="K01-20261123-0007")).online
    platform_server.stop()
    offline = LookupDesk(client, cache, clock=lambda: 1_000.0 + 3 * 86400)
    result = offline.find(Query(receipt_number="K01-20261123-0007"))
    assert not result.online
    [case] = result.cases
    assert (case.status, case.known_at) == ("received", 1_000.0)
    assert case.service_id == "residence-permit"
    # The cache holds neither the receipt number nor the status in the clear.
    raw = (tmp_path / "cache.sqlite3").read_bytes()
    assert b"K01-20261123-0007" not in raw
    assert b"received" not in raw


def test_a_replayed_rating_gets_the_same_answer_and_a_new_one_replaces_it(
    tmp_path: Path, platform_server: RunningPlatform
) -> None:
    client = signed_client(platform_server, tmp_path / "k01", "K01")
    submission_id = file_case(client, "K01-20261123-0007")
    rating_id = str(uuid.uuid4())
    body = rating_body(RatingChoice("satisfied"))
    first = client.send_rating(rating_id, submission_id, body)
    again = client.send_rating(rating_id, submission_id, body)
    assert first.delivered and again.delivered
    assert first.response is not None and again.response is not None
    assert again.response["level"] == first.response["level"] == "satisfied"
    # The platform's rule for a second, different rating: it replaces the first.
    other = client.send_rating(str(uuid.uuid4()), submission_id, {"level": "very_satisfied"})
    assert other.delivered
    stored = Storage(platform_server.db_path).rating(submission_id)
    assert stored is not None and stored[0] == "very_satisfied"


def test_a_rating_for_a_case_filed_elsewhere_is_refused_for_good(
    tmp_path: Path, platform_server: RunningPlatform
) -> None:
    k01 = signed_client(platform_server, tmp_path / "k01", "K01")
    c02 = signed_client(platform_server, tmp_path / "c02", "C02")
    submission_id = file_case(k01, "K01-20261123-0007")
    outcome = c02.send_rating(str(uuid.uuid4()), submission_id, {"level": "satisfied"})
    assert outcome.kind is OutcomeKind.REJECTED
    assert outcome.error_code == "terminal_mismatch"


def _rated_offline_then_delivered(
    tmp_path: Path, outbox: Outbox, platform_server: RunningPlatform, choice: RatingChoice
) -> tuple[str, Storage]:
    client = signed_client(platform_server, tmp_path / "k01", "K01")
    submission_id = file_case(client, "K01-20261123-0007")
    db, port = platform_server.db_path, platform_server.port
    platform_server.stop()
    engine = SyncEngine(outbox, client)
    rating_id = RatingDesk(outbox, engine).queue(submission_id, choice)
    assert engine.drain_once() == 0  # the platform is away: kept
    assert outbox.state_of(rating_id) is State.QUEUED
    with start_in_thread(db, DEMO_CATALOGUE, port=port) as back:
        outbox.bring_forward()
        assert engine.drain_once() == 1
        assert outbox.state_of(rating_id) is State.DELIVERED
        outbox.bring_forward()
        assert engine.drain_once() == 0  # delivered once: nothing more is sent
        assert back.db_path == db
    client.close()
    return submission_id, Storage(db)


def test_a_rating_queued_offline_is_delivered_once_when_the_platform_returns(
    tmp_path: Path, outbox: Outbox, platform_server: RunningPlatform
) -> None:
    submission_id, storage = _rated_offline_then_delivered(
        tmp_path, outbox, platform_server, RatingChoice("basically_satisfied")
    )
    stored = storage.rating(submission_id)
    assert stored is not None and stored[0] == "basically_satisfied"


def test_an_unhappy_rating_brings_its_reason_and_call_back_to_the_platform(
    tmp_path: Path, outbox: Outbox, platform_server: RunningPlatform
) -> None:
    submission_id, storage = _rated_offline_then_delivered(
        tmp_path, outbox, platform_server, RatingChoice("dissatisfied", "long_wait", True)
    )
    stored = storage.rating(submission_id)
    assert stored is not None
    assert stored[0] == "dissatisfied"
    assert "long_wait" in stored and True in stored


def test_a_rating_waits_for_the_submission_it_rates(
    tmp_path: Path, outbox: Outbox, platform_server: RunningPlatform
) -> None:
    """Saved offline, the submission and its rating go in that order once the platform answers;
    a rating sent alone first (its submission not yet there) waits instead of being refused."""
    client = signed_client(platform_server, tmp_path / "k01", "K01")
    body = demo_submission()
    submission_id = str(body["submission_id"])
    engine = SyncEngine(outbox, client)
    rating_id = RatingDesk(outbox, engine).queue(submission_id, RatingChoice("satisfied"))
    # The rating is older than the submission here: it is tried first, alone.
    outbox.enqueue("submission", json.dumps(body).encode(), b"{}", item_id=submission_id)
    engine.drain_once()
    assert outbox.state_of(submission_id) is State.DELIVERED
    assert outbox.state_of(rating_id) is not State.REJECTED
    outbox.bring_forward()
    engine.drain_once()
    assert outbox.state_of(rating_id) is State.DELIVERED
    client.close()


@pytest.mark.parametrize("state", [State.REJECTED, State.NEEDS_ATTENTION])
def test_a_rating_waits_while_the_submission_it_rates_is_refused_or_set_aside_here(
    tmp_path: Path, outbox: Outbox, platform_server: RunningPlatform, state: State
) -> None:
    """A submission refused (staff correct and resend it) or set aside for staff has not reached
    the platform: its rating is kept waiting, not dropped on the platform's 404."""
    client = signed_client(platform_server, tmp_path / "k01", "K01")
    body = demo_submission()
    submission_id = str(body["submission_id"])
    outbox.enqueue("submission", json.dumps(body).encode(), b"{}", item_id=submission_id)
    [claimed] = outbox.claim_batch(1)
    outbox.settle_many([Settlement(claimed.id, state, error="refused here")])
    assert outbox.state_of(submission_id) is state
    engine = SyncEngine(outbox, client)
    rating_id = RatingDesk(outbox, engine).queue(submission_id, RatingChoice("dissatisfied"))
    engine.drain_once()
    assert outbox.state_of(rating_id) is State.QUEUED
    # A rating of a submission this terminal does not keep at all is refused for good.
    unknown = RatingDesk(outbox, engine).queue(str(uuid.uuid4()), RatingChoice("satisfied"))
    outbox.bring_forward()
    engine.drain_once()
    assert outbox.state_of(unknown) is State.REJECTED
    assert outbox.state_of(rating_id) is State.QUEUED
    client.close()
