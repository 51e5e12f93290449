"""The reference platform over real HTTP on 127.0.0.1: every endpoint and error code of API v1."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import psutil
import pytest
import requests
from jsonschema import Draft202012Validator
from starlette.requests import Request
from starlette.responses import Response

from kiosk.terminal_auth import TerminalIdentity
from refplatform.app import API_PREFIX
from refplatform.catalogue import LANGUAGES, WIDGETS, check_catalogue
from refplatform.models import (
    MAX_ATTACHMENT_BYTES,
    MAX_ATTACHMENTS,
    MAX_ATTACHMENTS_BYTES,
    RATING_LEVELS,
    STATUS_TEXTS,
)
from refplatform.server import RunningPlatform, start_in_thread
from tests.fixtures.platform import (
    DEMO_ANSWERS,
    DEMO_CATALOGUE,
    demo_submission,
    enrol_terminal,
    unsigned_catalogue,
)

TIMEOUT = 10
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def http() -> Iterator[requests.Session]:
    """Unsigned: what anyone may read (and the back office, with its token)."""
    with requests.Session() as session:
        yield session


@pytest.fixture
def identity(platform_server: RunningPlatform, tmp_path: Path) -> TerminalIdentity:
    """Terminal K01 (the demo bodies' terminal_id), enrolled with platform_server."""
    return enrol_terminal(platform_server, tmp_path / "terminal")


@pytest.fixture
def terminal(identity: TerminalIdentity) -> Iterator[requests.Session]:
    """Every request signed by terminal K01, as the terminal posts submissions and ratings."""
    with requests.Session() as session:
        session.auth = identity.auth()
        yield session


def api(platform: RunningPlatform, path: str) -> str:
    return f"{platform.base_url}{API_PREFIX}{path}"


def submit(
    http: requests.Session,
    platform: RunningPlatform,
    body: dict[str, Any],
    key: str | None = "from-body",
) -> requests.Response:
    headers = {}
    if key == "from-body":
        headers["Idempotency-Key"] = body["submission_id"]
    elif key is not None:
        headers["Idempotency-Key"] = key
    return http.post(api(platform, "/submissions"), json=body, headers=headers, timeout=TIMEOUT)


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


def is_text(value: object) -> bool:
    return isinstance(value, dict) and all(
        isinstance(value.get(lang), str) and value[lang].strip() for lang in LANGUAGES
    )


# --- health and catalogue ---------------------------------------------------------------------


def test_health(platform_server: RunningPlatform, http: requests.Session) -> None:
    answer = http.get(api(platform_server, "/health"), timeout=TIMEOUT)
    assert answer.status_code == 200
    assert answer.json() == {"status": "ok", "api_version": "1"}


def test_catalogue_is_complete_and_consistent(
    platform_server: RunningPlatform, http: requests.Session
) -> None:
    answer = http.get(api(platform_server, "/catalogue"), timeout=TIMEOUT)
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("application/json")
    served = answer.json()
    assert served["signature"]["alg"] == "Ed25519"
    catalogue = unsigned_catalogue(platform_server, served)  # raises unless the signature holds
    # the file's catalogue, with the limits on files this platform takes announced beside it
    # and where citizens follow a case: the receipt's QR is this address with a signed token
    assert catalogue.pop("tracking") == {"public_url": f"{platform_server.base_url}/track"}
    limits = catalogue.pop("attachment_limits")
    assert limits == {
        "max_files": MAX_ATTACHMENTS,
        "max_file_bytes": MAX_ATTACHMENT_BYTES,
        "max_total_bytes": MAX_ATTACHMENTS_BYTES,
    }
    assert catalogue == json.loads(DEMO_CATALOGUE.read_text(encoding="utf-8"))
    assert catalogue["version"] == "2026.11.1"
    assert check_catalogue(catalogue) == []
    services = {s["id"]: s for s in catalogue["services"]}
    assert {"residence-permit", "pension-certification", "senior-card"} <= set(services)
    for sid, service in services.items():
        for key in ("name", "summary", "department"):
            assert is_text(service[key]), (sid, key)
        guide = service["guide"]
        for key in ("audience", "fee", "time_limit", "collection"):
            assert is_text(guide[key]), (sid, key)
        assert guide["materials"], sid
        assert all(is_text(item) for item in guide["materials"]), sid
        assert isinstance(guide["time_limit_days"], int), sid
        form = service["form"]
        Draft202012Validator.check_schema(form)
        assert form["type"] == "object"
        assert form["additionalProperties"] is False
        fields = [q["field"] for q in service["questions"]]
        assert len(fields) == len(set(fields)), sid
        assert set(fields) == set(form["properties"]), sid
        for question in service["questions"]:
            assert question["widget"] in WIDGETS
            assert is_text(question["label"]) and is_text(question["help"])
            if question["readonly"]:
                assert question["prefill"], (sid, question["field"])
            if question["widget"] == "choice":
                values = [o["value"] for o in question["options"]]
                assert values == form["properties"][question["field"]]["enum"]
            if "pattern" in form["properties"][question["field"]]:
                assert is_text(question.get("error")), (sid, question["field"])
        # The demo answers exercise every field and pass the service's own schema.
        assert set(DEMO_ANSWERS[sid]) == set(fields)
    assert services["pension-certification"]["guide"]["fee"]["zh_CN"] == "免费"
    assert services["senior-card"]["guide"]["fee"]["zh_CN"] == "免费"


def test_one_service_and_unknown_service(
    platform_server: RunningPlatform, http: requests.Session
) -> None:
    catalogue = http.get(api(platform_server, "/catalogue"), timeout=TIMEOUT).json()
    for service in catalogue["services"]:
        answer = http.get(api(platform_server, f"/services/{service['id']}"), timeout=TIMEOUT)
        assert answer.status_code == 200
        assert answer.json() == service
    missing = http.get(api(platform_server, "/services/no-such-service"), timeout=TIMEOUT)
    assert missing.status_code == 404
    assert missing.json()["error"] == "unknown_service"


# --- submissions and idempotency --------------------------------------------------------------


@pytest.mark.parametrize("service_id", sorted(DEMO_ANSWERS))
def test_submission_is_received_and_names_its_id(
    platform_server: RunningPlatform,
    terminal: requests.Session,
    service_id: str,
) -> None:
    body = demo_submission(service_id)
    answer = submit(terminal, platform_server, body)
    assert answer.status_code == 201, answer.text
    receipt = answer.json()
    assert receipt["submission_id"] == body["submission_id"]
    assert receipt["receipt_number"] == body["receipt_number"]
    assert receipt["status"] == "received"
    assert dt.datetime.fromisoformat(receipt["received_at"]).tzinfo is not None
    assert receipt["tracking_url"] == f"{platform_server.base_url}/track/{body['submission_id']}"
    assert stored_rows(platform_server, body["submission_id"]) == 1


def test_same_key_same_body_gets_the_same_answer(
    platform_server: RunningPlatform, terminal: requests.Session
) -> None:
    body = demo_submission()
    first = submit(terminal, platform_server, body)
    assert first.status_code == 201
    # The same JSON spelt differently (key order, spacing) is the same body.
    respelt = json.dumps(dict(reversed(list(body.items()))), indent=3, ensure_ascii=True)
    again = terminal.post(
        api(platform_server, "/submissions"),
        data=respelt.encode(),
        headers={"Idempotency-Key": body["submission_id"], "Content-Type": "application/json"},
        timeout=TIMEOUT,
    )
    assert again.status_code == first.status_code
    assert again.content == first.content
    assert stored_rows(platform_server) == 1


def test_same_key_other_body_is_a_conflict(
    platform_server: RunningPlatform, terminal: requests.Session
) -> None:
    body = demo_submission()
    assert submit(terminal, platform_server, body).status_code == 201
    other = demo_submission(submission_id=body["submission_id"], phone="13900001111")
    answer = submit(terminal, platform_server, other)
    assert answer.status_code == 409
    assert answer.json()["error"] == "idempotency_conflict"
    assert stored_rows(platform_server) == 1
    # The first body is still answered as before.
    assert submit(terminal, platform_server, body).status_code == 201


def test_key_header_must_match_the_body(
    platform_server: RunningPlatform, terminal: requests.Session
) -> None:
    body = demo_submission()
    answer = submit(terminal, platform_server, body, key=str(uuid.uuid4()))
    assert answer.status_code == 400
    assert answer.json()["error"] == "idempotency_key_mismatch"
    assert stored_rows(platform_server) == 0


def test_key_header_is_required(
    platform_server: RunningPlatform, terminal: requests.Session
) -> None:
    answer = submit(terminal, platform_server, demo_submission(), key=None)
    assert answer.status_code == 400
    assert answer.json()["error"] == "idempotency_key_missing"
    assert stored_rows(platform_server) == 0


@pytest.mark.parametrize(
    ("raw", "note"),
    [
        (b"{not json", "not JSON"),
        (b"\xff\xfe", "not UTF-8"),
        (b'["a list"]', "not an object"),
        (b'{"submission_id": NaN}', "not strict JSON"),
    ],
)
def test_body_that_is_not_json_is_a_bad_request(
    platform_server: RunningPlatform,
    terminal: requests.Session,
    raw: bytes,
    note: str,
) -> None:
    answer = terminal.post(
        api(platform_server, "/submissions"),
        data=raw,
        headers={"Idempotency-Key": str(uuid.uuid4()), "Content-Type": "application/json"},
        timeout=TIMEOUT,
    )
    assert answer.status_code == 400, note
    assert answer.json()["error"] == "bad_request"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"channel": "web"}, "channel"),
        ({"created_at": "2026-11-23 14:32"}, "created_at"),
        ({"created_at": "2026-11-23T14:32:05"}, "created_at"),  # no offset
        ({"receipt_number": ""}, "receipt_number"),
        ({"answers": ["phone"]}, "answers"),
        ({"applicant": None}, "applicant"),
        ({"unexpected": 1}, "unexpected"),
    ],
)
def test_envelope_is_checked(
    platform_server: RunningPlatform,
    terminal: requests.Session,
    change: dict[str, Any],
    field: str,
) -> None:
    body = {**demo_submission(), **change}
    answer = submit(terminal, platform_server, body)
    assert answer.status_code == 400
    error = answer.json()
    assert error["error"] == "bad_request"
    assert field in {f["field"] for f in error["fields"]}
    assert stored_rows(platform_server) == 0


@pytest.mark.parametrize(
    ("service_id", "answers", "expected"),
    [
        ("residence-permit", {"phone": "1380013800"}, {("phone", "pattern")}),
        ("residence-permit", {"phone": "23800138000"}, {("phone", "pattern")}),
        # The last character of 11010519491231002X, changed: a wrong GB 11643 check character.
        ("residence-permit", {"id_number": "110105194912310021"}, {("id_number", "format")}),
        ("residence-permit", {"residence_start": "2026-02-30"}, {("residence_start", "format")}),
        ("residence-permit", {"reason": "holiday"}, {("reason", "enum")}),
        ("residence-permit", {"address": "本市"}, {("address", "minLength")}),
        (
            "residence-permit",
            {"favourite_colour": "red"},
            {("favourite_colour", "additionalProperties")},
        ),
        ("pension-certification", {"bank_card_last4": "427"}, {("bank_card_last4", "pattern")}),
        (
            "pension-certification",
            {"receiving_other_pension": "no"},
            {("receiving_other_pension", "type")},
        ),
        (
            "senior-card",
            {"phone": "12345", "emergency_contact_phone": "1"},
            {("phone", "pattern"), ("emergency_contact_phone", "pattern")},
        ),
    ],
)
def test_invalid_answers_name_field_and_keyword(
    platform_server: RunningPlatform,
    terminal: requests.Session,
    service_id: str,
    answers: dict[str, Any],
    expected: set[tuple[str, str]],
) -> None:
    answer = submit(terminal, platform_server, demo_submission(service_id, **answers))
    assert answer.status_code == 422
    error = answer.json()
    assert error["error"] == "validation_failed"
    assert {(f["field"], f["code"]) for f in error["fields"]} == expected
    assert stored_rows(platform_server) == 0


def test_missing_answer_is_reported_as_required(
    platform_server: RunningPlatform, terminal: requests.Session
) -> None:
    body = demo_submission("senior-card")
    del body["answers"]["emergency_contact_name"]
    answer = submit(terminal, platform_server, body)
    assert answer.status_code == 422
    assert answer.json()["fields"] == [{"field": "emergency_contact_name", "code": "required"}]


def test_unknown_service_is_refused(
    platform_server: RunningPlatform, terminal: requests.Session
) -> None:
    answer = submit(terminal, platform_server, demo_submission("no-such-service"))
    assert answer.status_code == 404
    assert answer.json()["error"] == "unknown_service"
    assert stored_rows(platform_server) == 0


def test_concurrent_identical_posts_store_one_row(
    platform_server: RunningPlatform, identity: TerminalIdentity
) -> None:
    body = demo_submission()
    clients = 12
    barrier = threading.Barrier(clients)

    def post(_: int) -> tuple[int, bytes]:
        with requests.Session() as session:
            session.auth = identity.auth()
            barrier.wait(TIMEOUT)
            answer = submit(session, platform_server, body)
            return answer.status_code, answer.content

    with ThreadPoolExecutor(clients) as pool:
        results = list(pool.map(post, range(clients)))
    assert {status for status, _ in results} == {201}
    assert len({content for _, content in results}) == 1
    assert stored_rows(platform_server) == 1


def test_concurrent_conflicting_posts_accept_exactly_one(
    platform_server: RunningPlatform, identity: TerminalIdentity
) -> None:
    key = str(uuid.uuid4())
    clients = 8
    bodies = [demo_submission(submission_id=key, phone=f"1380013800{i}") for i in range(clients)]
    barrier = threading.Barrier(clients)

    def post(index: int) -> int:
        with requests.Session() as session:
            session.auth = identity.auth()
            barrier.wait(TIMEOUT)
            return submit(session, platform_server, bodies[index]).status_code

    with ThreadPoolExecutor(clients) as pool:
        statuses = sorted(pool.map(post, range(clients)))
    assert statuses == [201] + [409] * (clients - 1)
    assert stored_rows(platform_server) == 1


# --- status, history and rating ---------------------------------------------------------------


def test_history_starts_with_received(
    platform_server: RunningPlatform, http: requests.Session, terminal: requests.Session
) -> None:
    body = demo_submission("pension-certification")
    assert submit(terminal, platform_server, body).status_code == 201
    answer = http.get(
        api(platform_server, f"/submissions/{body['submission_id']}"), timeout=TIMEOUT
    )
    assert answer.status_code == 200
    state = answer.json()
    assert state["submission_id"] == body["submission_id"]
    assert state["receipt_number"] == body["receipt_number"]
    assert state["service_id"] == "pension-certification"
    assert state["status"] == "received"
    assert [h["status"] for h in state["history"]] == ["received"]
    assert is_text(state["history"][0]["note"])
    missing = http.get(api(platform_server, f"/submissions/{uuid.uuid4()}"), timeout=TIMEOUT)
    assert missing.status_code == 404
    assert missing.json()["error"] == "not_found"


def test_status_change_extends_history(
    platform_server: RunningPlatform, http: requests.Session, terminal: requests.Session
) -> None:
    body = demo_submission()
    sid = body["submission_id"]
    assert submit(terminal, platform_server, body).status_code == 201
    moved = http.post(
        api(platform_server, f"/submissions/{sid}/status"),
        headers=platform_server.back_office_headers,
        json={"status": "in_review"},
        timeout=TIMEOUT,
    )
    assert moved.status_code == 200
    note = {"zh_CN": "请到3号窗口领取。", "en": "Collect it at window 3."}
    ready = http.post(
        api(platform_server, f"/submissions/{sid}/status"),
        headers=platform_server.back_office_headers,
        json={"status": "ready_for_collection", "note": note},
        timeout=TIMEOUT,
    )
    assert ready.status_code == 200
    state = http.get(api(platform_server, f"/submissions/{sid}"), timeout=TIMEOUT).json()
    assert state == ready.json()
    assert state["status"] == "ready_for_collection"
    assert [h["status"] for h in state["history"]] == [
        "received",
        "in_review",
        "ready_for_collection",
    ]
    assert state["history"][-1]["note"] == note
    assert is_text(state["history"][1]["note"])
    # A replay of the submission still gets the answer it got first.
    replay = submit(terminal, platform_server, body)
    assert replay.status_code == 201
    assert replay.json()["status"] == "received"

    bad = http.post(
        api(platform_server, f"/submissions/{sid}/status"),
        headers=platform_server.back_office_headers,
        json={"status": "lost"},
        timeout=TIMEOUT,
    )
    assert bad.status_code == 422
    assert bad.json()["fields"] == [{"field": "status", "code": "enum"}]
    unknown = http.post(
        api(platform_server, f"/submissions/{uuid.uuid4()}/status"),
        headers=platform_server.back_office_headers,
        json={"status": "approved"},
        timeout=TIMEOUT,
    )
    assert unknown.status_code == 404
    assert unknown.json()["error"] == "not_found"


def test_rating_takes_the_five_levels_and_the_last_one_counts(
    platform_server: RunningPlatform, terminal: requests.Session
) -> None:
    body = demo_submission()
    sid = body["submission_id"]
    assert submit(terminal, platform_server, body).status_code == 201
    assert len(RATING_LEVELS) == 5
    for level in RATING_LEVELS:
        answer = terminal.post(
            api(platform_server, f"/submissions/{sid}/rating"),
            json={"level": level, "comment": "工作人员很耐心"},
            timeout=TIMEOUT,
        )
        assert answer.status_code == 201
        rated = answer.json()
        assert rated["submission_id"] == sid
        assert rated["level"] == level
        assert dt.datetime.fromisoformat(rated["rated_at"]).tzinfo is not None
    with sqlite3.connect(platform_server.db_path) as db:
        rows = db.execute("SELECT level FROM ratings WHERE submission_id = ?", (sid,)).fetchall()
    db.close()
    assert rows == [(RATING_LEVELS[-1],)]


@pytest.mark.parametrize(
    ("rating", "expected"),
    [
        ({"level": "excellent"}, [{"field": "level", "code": "enum"}]),
        ({"level": 5}, [{"field": "level", "code": "enum"}]),
        ({}, [{"field": "level", "code": "required"}]),
        (
            {"level": "satisfied", "comment": "很" * 501},
            [{"field": "comment", "code": "maxLength"}],
        ),
    ],
)
def test_bad_rating_is_refused(
    platform_server: RunningPlatform,
    terminal: requests.Session,
    rating: dict[str, Any],
    expected: list[dict[str, str]],
) -> None:
    body = demo_submission()
    assert submit(terminal, platform_server, body).status_code == 201
    answer = terminal.post(
        api(platform_server, f"/submissions/{body['submission_id']}/rating"),
        json=rating,
        timeout=TIMEOUT,
    )
    assert answer.status_code == 422
    assert answer.json()["error"] == "validation_failed"
    assert answer.json()["fields"] == expected


def test_rating_an_unknown_submission_is_not_found(
    platform_server: RunningPlatform, terminal: requests.Session
) -> None:
    answer = terminal.post(
        api(platform_server, f"/submissions/{uuid.uuid4()}/rating"),
        json={"level": "satisfied"},
        timeout=TIMEOUT,
    )
    assert answer.status_code == 404
    assert answer.json()["error"] == "not_found"


def test_unknown_route_answers_in_the_error_shape(
    platform_server: RunningPlatform, http: requests.Session
) -> None:
    answer = http.get(api(platform_server, "/nothing-here"), timeout=TIMEOUT)
    assert answer.status_code == 404
    assert answer.json()["error"] == "not_found"
    wrong_method = http.delete(api(platform_server, "/health"), timeout=TIMEOUT)
    assert wrong_method.status_code == 405
    assert set(wrong_method.json()) >= {"error", "detail"}


# --- tracking page ----------------------------------------------------------------------------


def test_tracking_page_shows_the_case(
    platform_server: RunningPlatform, http: requests.Session, terminal: requests.Session
) -> None:
    body = demo_submission("senior-card")
    receipt = submit(terminal, platform_server, body).json()
    http.post(
        api(platform_server, f"/submissions/{body['submission_id']}/status"),
        headers=platform_server.back_office_headers,
        json={"status": "approved"},
        timeout=TIMEOUT,
    ).raise_for_status()
    page = http.get(receipt["tracking_url"], timeout=TIMEOUT)
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    text = page.text
    assert body["receipt_number"] in text
    assert "老年人优待证办理" in text and "Senior citizen concession card" in text
    for status in ("received", "approved"):
        assert STATUS_TEXTS[status]["zh_CN"] in text
        assert STATUS_TEXTS[status]["en"] in text
    assert 'name="viewport"' in text
    # Personal data stays off the page.
    assert body["applicant"]["name"] not in text
    assert body["applicant"]["id_number"] not in text


def test_tracking_page_escapes_everything(
    platform_server: RunningPlatform, http: requests.Session, terminal: requests.Session
) -> None:
    script = "<script>alert(1)</script>"
    body = demo_submission()
    body["receipt_number"] = f'K01"{script}'
    receipt = submit(terminal, platform_server, body).json()
    http.post(
        api(platform_server, f"/submissions/{body['submission_id']}/status"),
        headers=platform_server.back_office_headers,
        json={
            "status": "rejected",
            "note": {"zh_CN": script, "en": "<img src=x onerror=alert(2)>"},
        },
        timeout=TIMEOUT,
    ).raise_for_status()
    text = http.get(receipt["tracking_url"], timeout=TIMEOUT).text
    assert "<script>" not in text
    assert "<img" not in text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text
    assert "K01&quot;&lt;script&gt;" in text


def test_tracking_page_of_unknown_case(
    platform_server: RunningPlatform, http: requests.Session
) -> None:
    page = http.get(f"{platform_server.base_url}/track/<b>{uuid.uuid4()}", timeout=TIMEOUT)
    assert page.status_code == 404
    assert page.headers["content-type"].startswith("text/html")
    assert "没有找到" in page.text and "could not find" in page.text
    assert "<b>" not in page.text


# --- OpenAPI, life cycle and command line -----------------------------------------------------


def test_served_openapi_is_the_committed_one(
    platform_server: RunningPlatform, http: requests.Session
) -> None:
    served = http.get(api(platform_server, "/openapi.json"), timeout=TIMEOUT)
    assert served.status_code == 200
    committed = json.loads((REPO / "refplatform" / "openapi.json").read_text(encoding="utf-8"))
    assert served.json() == committed
    docs = http.get(api(platform_server, "/docs"), timeout=TIMEOUT)
    assert docs.status_code == 200
    assert "openapi.json" in docs.text


def test_keep_alive_answers_do_not_wait_for_delayed_acks(
    platform_server: RunningPlatform, http: requests.Session
) -> None:
    # Headers and body leave in two writes; without TCP_NODELAY on the server's sockets each
    # answer on a reused connection waits for the client's delayed ACK (40 ms or more on Linux).
    times = []
    for _ in range(15):
        started = time.perf_counter()
        http.get(api(platform_server, "/health"), timeout=TIMEOUT).raise_for_status()
        times.append(time.perf_counter() - started)
    assert statistics.median(times) < 0.025, times


def _open_sockets() -> int:
    return sum(1 for c in psutil.Process().net_connections(kind="inet"))


def _serve_once(db: Path) -> int:
    with (
        start_in_thread(db, DEMO_CATALOGUE) as running,
        requests.Session() as session,
    ):
        session.auth = enrol_terminal(running, db.parent / "terminal").auth()
        assert submit(session, running, demo_submission()).status_code == 201
    assert not running.serving
    return running.port


def test_start_and_stop_many_times_leaves_nothing_behind(tmp_path: Path) -> None:
    db = tmp_path / "platform.sqlite3"
    _serve_once(db)  # the first start may open what lives as long as the process (imports)
    threads_before = {t.ident for t in threading.enumerate()}
    fds_before = psutil.Process().num_fds()
    sockets_before = _open_sockets()
    ports = {_serve_once(db) for _ in range(15)}
    assert len(ports) > 1  # each start binds afresh
    leftover = [t.name for t in threading.enumerate() if t.ident not in threads_before]
    assert leftover == []
    assert psutil.Process().num_fds() <= fds_before
    assert _open_sockets() <= sockets_before
    with sqlite3.connect(db) as connection:
        (count,) = connection.execute("SELECT COUNT(*) FROM submissions").fetchone()
    connection.close()
    assert count == 16


class _Unavailable:
    """A fault switch that answers every submission with 503, to prove the seam is consulted."""

    def __init__(self) -> None:
        self.seen = 0

    async def before_submission(self, request: Request) -> Response | None:
        self.seen += 1
        return Response(b'{"error":"unavailable","detail":"maintenance"}', status_code=503)


def test_faults_are_consulted_before_a_submission(tmp_path: Path) -> None:
    faults = _Unavailable()
    with (
        start_in_thread(tmp_path / "platform.sqlite3", DEMO_CATALOGUE, faults=faults) as running,
        requests.Session() as session,
    ):
        session.auth = enrol_terminal(running, tmp_path / "terminal").auth()
        answer = submit(session, running, demo_submission())
        assert answer.status_code == 503
        assert faults.seen == 1
        assert stored_rows(running) == 0
        health = session.get(api(running, "/health"), timeout=TIMEOUT)
        assert health.status_code == 200


def test_start_on_a_busy_port_fails_cleanly(tmp_path: Path) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        threads_before = threading.active_count()
        with pytest.raises(OSError, match="in use"):
            start_in_thread(tmp_path / "platform.sqlite3", DEMO_CATALOGUE, port=port)
        assert threading.active_count() == threads_before


def test_command_line_help() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "refplatform", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
        check=False,
    )
    assert done.returncode == 0
    assert "--catalogue" in done.stdout and "--write-openapi" in done.stdout


def test_command_line_serves_the_demo_catalogue(tmp_path: Path) -> None:
    db = tmp_path / "standalone.sqlite3"
    process = subprocess.Popen(
        [sys.executable, "-m", "refplatform", "--port", "0", "--db", str(db)],
        cwd=REPO,
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert process.stderr is not None
        base_url = None
        for line in process.stderr:  # uvicorn says where it listens once it does
            found = re.search(r"Uvicorn running on (http://\S+)", line)
            if found:
                base_url = found.group(1)
                break
        assert base_url is not None, "the server never said it was running"
        with requests.Session() as session:
            catalogue = session.get(f"{base_url}{API_PREFIX}/catalogue", timeout=TIMEOUT)
        assert catalogue.status_code == 200
        assert catalogue.json()["version"] == "2026.11.1"
        process.terminate()  # SIGTERM: uvicorn shuts down gracefully, then re-raises it
        rest = process.stderr.read()
    finally:
        process.terminate()
        process.wait(timeout=30)
        if process.stderr is not None:
            process.stderr.close()
    assert "Finished server process" in rest
    assert process.returncode == -signal.SIGTERM
    assert db.exists()


def test_no_request_decides_the_tracking_address_the_platform_signs(
    platform_server: RunningPlatform, http: requests.Session
) -> None:
    """A forged Host header must not get a genuine catalogue sending receipt codes elsewhere."""
    answer = http.get(
        api(platform_server, "/catalogue"), headers={"Host": "evil.example"}, timeout=TIMEOUT
    )
    assert answer.status_code == 200
    catalogue = unsigned_catalogue(platform_server, answer.json())
    assert catalogue["tracking"] == {"public_url": f"{platform_server.base_url}/track"}
    assert "evil.example" not in answer.text
