"""The back office over real HTTP on 127.0.0.1: status changes and the help-request list need the
staff's bearer token; the tracking page stays public."""

from __future__ import annotations

import logging
import os
import re
import stat
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from refplatform.app import API_PREFIX
from refplatform.backoffice import (
    ENVIRONMENT_VARIABLE,
    FILE_NAME,
    BackOffice,
    BackOfficeTokenError,
    configured_token,
    new_token,
)
from refplatform.models import STATUS_TEXTS
from refplatform.server import RunningPlatform
from tests.fixtures.platform import demo_submission, signed_session

TIMEOUT = 10.0
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def http() -> Iterator[requests.Session]:
    """Unsigned: the public, and staff with their token."""
    with requests.Session() as session:
        yield session


@pytest.fixture
def terminal(platform_server: RunningPlatform, tmp_path: Path) -> Iterator[requests.Session]:
    """Terminal K01 (the demo bodies' terminal_id), signing every request."""
    with signed_session(platform_server, tmp_path / "terminal") as session:
        yield session


def api(platform: RunningPlatform, path: str) -> str:
    return f"{platform.base_url}{API_PREFIX}{path}"


def submitted(terminal: requests.Session, platform: RunningPlatform) -> dict[str, str]:
    body = demo_submission()
    answer = terminal.post(
        api(platform, "/submissions"),
        json=body,
        headers={"Idempotency-Key": body["submission_id"]},
        timeout=TIMEOUT,
    )
    assert answer.status_code == 201
    receipt: dict[str, str] = answer.json()
    return receipt


def status_of(http: requests.Session, platform: RunningPlatform, sid: str) -> str:
    state = http.get(api(platform, f"/submissions/{sid}"), timeout=TIMEOUT).json()
    status: str = state["status"]
    return status


WRONG = {
    "nothing": {},
    "another token": {"Authorization": f"Bearer {new_token()}"},
    "another scheme": {"Authorization": "Basic c3RhZmY6c3RhZmY="},
    "bearer alone": {"Authorization": "Bearer"},
}
EXPECTED = {
    "nothing": "credentials_missing",
    "another token": "token_invalid",
    "another scheme": "credentials_missing",
    "bearer alone": "credentials_missing",
}


def _assert_refused(answer: requests.Response, case: str) -> None:
    assert answer.status_code == 401, answer.text
    assert answer.json()["error"] == EXPECTED[case]
    assert answer.json()["detail"]
    challenge = answer.headers["WWW-Authenticate"]
    assert challenge.startswith("Bearer ")
    assert ('error="invalid_token"' in challenge) is (case == "another token")


@pytest.mark.parametrize("case", list(WRONG))
def test_a_status_change_needs_the_back_office_token(
    platform_server: RunningPlatform, http: requests.Session, terminal: requests.Session, case: str
) -> None:
    sid = submitted(terminal, platform_server)["submission_id"]
    refused = http.post(
        api(platform_server, f"/submissions/{sid}/status"),
        json={"status": "approved"},
        headers=WRONG[case],
        timeout=TIMEOUT,
    )
    _assert_refused(refused, case)
    assert status_of(http, platform_server, sid) == "received"  # nothing changed
    # The token's holder moves the case; a token with other letter case is another token.
    token = platform_server.back_office_token
    swapped = http.post(
        api(platform_server, f"/submissions/{sid}/status"),
        json={"status": "approved"},
        headers={"Authorization": f"Bearer {token.swapcase()}"},
        timeout=TIMEOUT,
    )
    assert swapped.status_code == 401
    moved = http.post(
        api(platform_server, f"/submissions/{sid}/status"),
        json={"status": "approved"},
        headers={"Authorization": f"bearer  {token}"},  # the scheme is case-insensitive
        timeout=TIMEOUT,
    )
    assert moved.status_code == 200, moved.text
    assert status_of(http, platform_server, sid) == "approved"


def test_an_unknown_case_is_not_told_apart_without_the_token(
    platform_server: RunningPlatform, http: requests.Session
) -> None:
    url = api(platform_server, f"/submissions/{uuid.uuid4()}/status")
    refused = http.post(url, json={"status": "approved"}, timeout=TIMEOUT)
    assert refused.status_code == 401  # not 404: who may not change cases learns nothing
    # Nor is the body read: a refused request's body is not checked either.
    garbage = http.post(url, data=b"not json", timeout=TIMEOUT)
    assert garbage.status_code == 401
    known = http.post(
        url,
        json={"status": "approved"},
        headers=platform_server.back_office_headers,
        timeout=TIMEOUT,
    )
    assert known.status_code == 404


@pytest.mark.parametrize("case", list(WRONG))
def test_the_help_request_list_needs_the_back_office_token(
    platform_server: RunningPlatform, http: requests.Session, tmp_path: Path, case: str
) -> None:
    help_id = str(uuid.uuid4())
    with signed_session(platform_server, tmp_path / "terminal", "K07") as terminal:
        sent = terminal.post(
            api(platform_server, "/help-requests"),
            json={
                "help_request_id": help_id,
                "terminal_id": "K07",
                "channel": "kiosk",
                "page": "question",
                "language": "zh_CN",
                "requested_at": "2026-11-23T14:32:05+08:00",
            },
            headers={"Idempotency-Key": help_id},
            timeout=TIMEOUT,
        )
    assert sent.status_code == 201, sent.text
    refused = http.get(api(platform_server, "/help-requests"), headers=WRONG[case], timeout=TIMEOUT)
    _assert_refused(refused, case)
    assert "K07" not in refused.text
    listed = http.get(
        api(platform_server, "/help-requests"),
        headers=platform_server.back_office_headers,
        timeout=TIMEOUT,
    )
    assert listed.status_code == 200
    assert [h["help_request_id"] for h in listed.json()["help_requests"]] == [help_id]


def test_the_tracking_page_stays_public(
    platform_server: RunningPlatform, http: requests.Session, terminal: requests.Session
) -> None:
    receipt = submitted(terminal, platform_server)
    http.post(
        api(platform_server, f"/submissions/{receipt['submission_id']}/status"),
        json={"status": "ready_for_collection"},
        headers=platform_server.back_office_headers,
        timeout=TIMEOUT,
    ).raise_for_status()
    page = http.get(receipt["tracking_url"], timeout=TIMEOUT)
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert receipt["receipt_number"] in page.text
    assert STATUS_TEXTS["ready_for_collection"]["zh_CN"] in page.text
    # Read-only: it takes no writes, with or without a token.
    for headers in ({}, platform_server.back_office_headers):
        post = http.post(receipt["tracking_url"], headers=headers, timeout=TIMEOUT)
        assert post.status_code == 405


def test_the_openapi_document_names_the_credential(
    platform_server: RunningPlatform, http: requests.Session
) -> None:
    document = http.get(api(platform_server, "/openapi.json"), timeout=TIMEOUT).json()
    scheme = document["components"]["securitySchemes"]["backOffice"]
    assert (scheme["type"], scheme["scheme"]) == ("http", "bearer")
    def guarded_by(scheme: str) -> set[tuple[str, str]]:
        return {
            (path, method)
            for path, operations in document["paths"].items()
            for method, operation in operations.items()
            if {scheme: []} in operation.get("security", [])
        }

    assert guarded_by("terminalSignature") == {
        (f"{API_PREFIX}/submissions", "post"),
        (f"{API_PREFIX}/submissions/batch", "post"),
        (f"{API_PREFIX}/submissions/{{submission_id}}/rating", "post"),
        (f"{API_PREFIX}/help-requests", "post"),
        (f"{API_PREFIX}/bundles", "post"),  # relayed by a hall terminal, itself signed
        (f"{API_PREFIX}/audit", "post"),  # the terminal's own audit log
        (f"{API_PREFIX}/submissions/{{submission_id}}/corrections", "post"),
        (f"{API_PREFIX}/staff", "get"),  # the hall's staff list, PIN hashes only
        (f"{API_PREFIX}/lookup", "post"),  # a citizen's cases, asked at a terminal
    }
    assert guarded_by("backOffice") == {
        (f"{API_PREFIX}/submissions/{{submission_id}}/status", "post"),
        (f"{API_PREFIX}/help-requests", "get"),
        # The terminal registry: enrolment codes and revocations are staff's.
        (f"{API_PREFIX}/terminals", "post"),
        (f"{API_PREFIX}/terminals/{{terminal_id}}/revoke", "post"),
        (f"{API_PREFIX}/backoffice/staff", "put"),
    }


# --- where the token comes from ---------------------------------------------------------------


def test_the_platform_keeps_only_a_digest_of_the_token() -> None:
    token = new_token()
    office = BackOffice(token)
    assert len(token) >= 43
    assert token not in repr(office)
    assert all(token not in repr(value) for value in vars(office).values())
    assert office.admits(f"Bearer {token}") is True
    assert office.admits(f"Bearer {token}x") is False
    assert office.admits(None) is None
    with pytest.raises(BackOfficeTokenError, match="at least 32"):
        BackOffice("short")


def test_a_token_is_made_once_beside_the_database(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    db = tmp_path / "data" / "platform.sqlite3"
    with caplog.at_level(logging.INFO, logger="refplatform"):
        first = configured_token(None, None, db)
    path = db.parent / FILE_NAME
    assert path.read_text().strip() == first
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert str(path) in caplog.text
    assert first not in caplog.text  # the log says where, never what
    assert configured_token(None, None, db) == first  # read back, not made again
    assert [p.name for p in path.parent.iterdir()] == [FILE_NAME]  # no scratch file left


def test_a_token_given_by_the_operator(tmp_path: Path) -> None:
    db = tmp_path / "platform.sqlite3"
    given = new_token()
    assert configured_token(f" {given}\n", None, db) == given
    kept = tmp_path / "token"
    kept.write_text(given + "\n")
    kept.chmod(0o600)
    assert configured_token(None, kept, db) == given
    assert not (tmp_path / FILE_NAME).exists()  # nothing made when one was given
    with pytest.raises(BackOfficeTokenError, match="twice"):
        configured_token(given, kept, db)
    with pytest.raises(BackOfficeTokenError, match="at least 32"):
        configured_token("password", None, db)
    with pytest.raises(BackOfficeTokenError, match="cannot read"):
        configured_token(None, tmp_path / "missing", db)


def _read_log(process: subprocess.Popen[str], log: list[str], started: threading.Event) -> None:
    assert process.stderr is not None
    for line in process.stderr:
        log.append(line)
        if "Uvicorn running on" in line:
            started.set()
    started.set()


def test_the_command_line_makes_a_token_on_first_start_and_uses_it(tmp_path: Path) -> None:
    db = tmp_path / "platform.sqlite3"
    env = {k: v for k, v in os.environ.items() if k != ENVIRONMENT_VARIABLE}
    process = subprocess.Popen(
        [sys.executable, "-m", "refplatform", "--port", "0", "--db", str(db)],
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env={**env, "PYTHONUNBUFFERED": "1"},
    )
    log: list[str] = []
    started = threading.Event()
    reader = threading.Thread(target=_read_log, args=(process, log, started), daemon=True)
    reader.start()
    try:
        assert started.wait(60), "the platform did not start"
        found = re.search(r"Uvicorn running on (http://\S+)", "".join(log))
        assert found is not None, "".join(log)
        base = found.group(1) + API_PREFIX
        path = tmp_path / FILE_NAME
        token = path.read_text().strip()
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert str(path) in "".join(log)
        assert token not in "".join(log)
        with requests.Session() as http:
            assert http.get(f"{base}/help-requests", timeout=TIMEOUT).status_code == 401
            listed = http.get(
                f"{base}/help-requests",
                headers={"Authorization": f"Bearer {token}"},
                timeout=TIMEOUT,
            )
            assert listed.status_code == 200
            assert listed.json() == {"help_requests": []}
    finally:
        process.terminate()
        process.wait(timeout=30)
        reader.join(timeout=30)
        if process.stderr is not None:
            process.stderr.close()


def test_the_command_line_refuses_a_weak_token(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "refplatform", "--port", "0", "--db", str(tmp_path / "p.db")],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, ENVIRONMENT_VARIABLE: "letmein"},
    )
    assert done.returncode == 2
    assert ENVIRONMENT_VARIABLE in done.stderr and "at least 32" in done.stderr
    assert "letmein" not in done.stderr
