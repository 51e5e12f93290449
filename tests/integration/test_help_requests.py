"""A citizen's call for staff reaches the platform once, over real HTTP, even after offline."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from kiosk.config import Config, Mode
from kiosk.help_requests import HelpDesk, help_request_body
from kiosk.platform_client import OutcomeKind, PlatformClient
from kiosk.sync import HELP_REQUEST_EXPIRED, HELP_REQUEST_KIND, HELP_REQUEST_TTL_S, SyncEngine
from offline_queue.keys import load_or_create_key
from offline_queue.outbox import Outbox, State, new_item_id
from refplatform.app import API_PREFIX
from refplatform.server import RunningPlatform
from tests.fixtures.platform import signed_client
from tests.gui.conftest import closed_port_url

TIMEOUT = 10.0
TERMINAL = "K07"  # the terminal the calls come from, as config() names it


@pytest.fixture
def outbox(tmp_path: Path) -> Iterator[Outbox]:
    box = Outbox(tmp_path / "outbox.db", load_or_create_key(tmp_path / "outbox.key"))
    yield box
    box.close()


def config(tmp_path: Path, url: str) -> Config:
    return Config(
        data_dir=tmp_path / "data",
        platform_url=url,
        terminal_id=TERMINAL,
        hall_name="本市政务服务中心",
        mode=Mode.KIOSK,
    )


def received(server: RunningPlatform) -> list[dict[str, object]]:
    answer = requests.get(
        f"{server.base_url}{API_PREFIX}/help-requests",
        headers=server.back_office_headers,
        timeout=TIMEOUT,
    )
    assert answer.status_code == 200
    listed = answer.json()["help_requests"]
    assert isinstance(listed, list)
    return listed


def test_a_call_for_staff_reaches_the_platform_at_once(
    tmp_path: Path, outbox: Outbox, platform_server: RunningPlatform
) -> None:
    client = signed_client(platform_server, tmp_path / "terminal", TERMINAL)
    engine = SyncEngine(outbox, client)
    engine.start()
    try:
        desk = HelpDesk(outbox, engine, config(tmp_path, platform_server.base_url))
        outcome = desk.request("question", "zh_CN")
    finally:
        engine.stop()
        client.close()
    assert outcome.reached_staff
    assert outbox.state_of(outcome.help_request_id) is State.DELIVERED
    [stored] = received(platform_server)
    assert stored["help_request_id"] == outcome.help_request_id
    assert stored["terminal_id"] == TERMINAL
    assert stored["page"] == "question"
    # Nothing about the citizen travels: only these fields exist.
    assert set(stored) == {
        "help_request_id", "terminal_id", "page", "requested_at", "received_at", "status"
    }


def test_offline_the_call_waits_and_goes_once_when_the_platform_answers(
    tmp_path: Path, outbox: Outbox, platform_server: RunningPlatform
) -> None:
    offline = PlatformClient(closed_port_url())
    engine = SyncEngine(outbox, offline)
    desk = HelpDesk(outbox, engine, config(tmp_path, offline.base_url), confirm_timeout_s=0.0)
    outcome = desk.request("review", "en")
    assert not outcome.reached_staff
    assert engine.drain_once() == 0  # tried, and the network is not there
    assert outbox.state_of(outcome.help_request_id) is State.QUEUED
    offline.close()

    online = signed_client(platform_server, tmp_path / "terminal", TERMINAL)
    later = SyncEngine(outbox, online)
    outbox.bring_forward()
    assert later.drain_once() == 1
    assert outbox.state_of(outcome.help_request_id) is State.DELIVERED
    # The same request sent again (a lost answer) is answered as before and kept once.
    row_body = desk.body(outcome.help_request_id, "review", "en")
    stored = received(platform_server)
    assert [s["help_request_id"] for s in stored] == [outcome.help_request_id]
    again = online.send_help_request(
        outcome.help_request_id,
        {**row_body, "requested_at": stored[0]["requested_at"]},
    )
    assert again.kind is OutcomeKind.DELIVERED
    assert again.http_status == 200
    assert len(received(platform_server)) == 1
    online.close()


def test_the_platform_refuses_a_reused_key_and_a_request_with_personal_fields(
    tmp_path: Path, platform_server: RunningPlatform
) -> None:
    client = signed_client(platform_server, tmp_path / "terminal", TERMINAL)
    settings = config(tmp_path, platform_server.base_url)
    now = dt.datetime.now().astimezone()
    key = new_item_id()
    first = client.send_help_request(key, help_request_body(settings, key, "welcome", "zh_CN", now))
    assert first.kind is OutcomeKind.DELIVERED
    assert first.http_status == 201
    other = client.send_help_request(key, help_request_body(settings, key, "review", "zh_CN", now))
    assert other.kind is OutcomeKind.CONFLICT
    assert other.http_status == 409
    with_name = {
        **help_request_body(settings, new_item_id(), "question", "zh_CN", now),
        "name": "张秀英",
    }
    refused = client.send_help_request(str(with_name["help_request_id"]), with_name)
    assert refused.kind is OutcomeKind.REJECTED
    assert refused.http_status == 422
    client.close()
    assert len(received(platform_server)) == 1


def test_a_help_row_in_the_outbox_names_no_person(tmp_path: Path, outbox: Outbox) -> None:
    engine = SyncEngine(outbox, PlatformClient(closed_port_url()))
    desk = HelpDesk(outbox, engine, config(tmp_path, "http://127.0.0.1:9"), confirm_timeout_s=0.0)
    outcome = desk.request("question", "zh_CN")
    [info] = outbox.items(states=[State.QUEUED])
    assert info.kind == HELP_REQUEST_KIND
    assert info.id == outcome.help_request_id
    assert info.summary is not None
    assert json.loads(info.summary) == {"kind": HELP_REQUEST_KIND, "page": "question"}


def test_a_call_too_old_to_help_anyone_is_set_aside_not_sent(
    tmp_path: Path, outbox: Outbox, platform_server: RunningPlatform
) -> None:
    client = signed_client(platform_server, tmp_path / "terminal", TERMINAL)
    now = [1_000_000.0]
    engine = SyncEngine(outbox, client, clock=lambda: now[0])
    desk = HelpDesk(outbox, engine, config(tmp_path, client.base_url), confirm_timeout_s=0.0)
    old = desk.request("question", "zh_CN").help_request_id
    # Queued while offline; the network is back only when nobody waits any more.
    [info] = outbox.items(states=[State.QUEUED])
    now[0] = info.created_at + HELP_REQUEST_TTL_S + 1
    engine.drain_once()
    assert outbox.state_of(old) is State.REJECTED
    [row] = outbox.items(states=[State.REJECTED])
    assert row.last_error == HELP_REQUEST_EXPIRED
    assert received(platform_server) == []
    # One still fresh goes.
    fresh = desk.request("review", "zh_CN").help_request_id
    [fresh_info] = outbox.items(states=[State.QUEUED])
    now[0] = fresh_info.created_at + 5
    engine.drain_once()
    assert outbox.state_of(fresh) is State.DELIVERED
    assert [s["help_request_id"] for s in received(platform_server)] == [fresh]
    client.close()
