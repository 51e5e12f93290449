"""Correcting a submission the platform refused for its answers, over real HTTP on 127.0.0.1."""

from __future__ import annotations

import json
import sqlite3
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from kiosk.trust import seal
from refplatform.app import API_PREFIX
from refplatform.server import RunningPlatform
from refplatform.storage import RejectedSubmission, Storage
from tests.fixtures.platform import demo_submission, platform_keys, signed_session

TIMEOUT = 10
BAD_PHONE = "12345"


@pytest.fixture
def k01(platform_server: RunningPlatform, tmp_path: Path) -> Iterator[requests.Session]:
    """Terminal K01 (the demo bodies' terminal), signing every request."""
    with signed_session(platform_server, tmp_path / "k01", "K01") as session:
        yield session


def _dump(value: object) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def submit(platform: RunningPlatform, session: requests.Session, body: dict[str, Any]) -> Any:
    """POST the body sealed to the platform, as a terminal queues it."""
    sid = body["submission_id"]
    key = platform_keys(platform).sealing_public_key
    sealed = {"submission_id": sid, "sealed": seal(_dump(body), key, sid.encode("utf-8"))}
    return session.post(
        f"{platform.base_url}{API_PREFIX}/submissions",
        data=_dump(sealed),
        headers={"Content-Type": "application/json", "Idempotency-Key": sid},
        timeout=TIMEOUT,
    )


def correct(
    platform: RunningPlatform,
    session: requests.Session,
    submission_id: str,
    answers: dict[str, Any],
    correction_id: str | None = None,
) -> Any:
    cid = correction_id or str(uuid.uuid4())
    key = platform_keys(platform).sealing_public_key
    body = {
        "correction_id": cid,
        "submission_id": submission_id,
        "sealed": seal(_dump({"answers": answers}), key, cid.encode("utf-8")),
    }
    return session.post(
        f"{platform.base_url}{API_PREFIX}/submissions/{submission_id}/corrections",
        data=_dump(body),
        headers={"Content-Type": "application/json"},
        timeout=TIMEOUT,
    )


def rejected_submission(platform: RunningPlatform, session: requests.Session) -> dict[str, Any]:
    body = demo_submission(phone=BAD_PHONE)
    answer = submit(platform, session, body)
    assert answer.status_code == 422, answer.text
    assert answer.json()["fields"] == [{"field": "phone", "code": "pattern"}]
    return body


def stored_request(platform: RunningPlatform, submission_id: str) -> dict[str, Any] | None:
    with sqlite3.connect(platform.db_path) as db:
        row = db.execute(
            "SELECT request_json FROM submissions WHERE submission_id = ?", (submission_id,)
        ).fetchone()
    return None if row is None else dict(json.loads(row[0]))


def rejected_rows(platform: RunningPlatform, submission_id: str) -> int:
    with sqlite3.connect(platform.db_path) as db:
        row = db.execute(
            "SELECT COUNT(*) FROM rejected WHERE submission_id = ?", (submission_id,)
        ).fetchone()
    return int(row[0])


def test_a_refused_submission_is_kept_as_rejected_not_received(
    platform_server: RunningPlatform, k01: requests.Session
) -> None:
    body = rejected_submission(platform_server, k01)
    sid = body["submission_id"]
    assert stored_request(platform_server, sid) is None
    assert rejected_rows(platform_server, sid) == 1
    status = k01.get(f"{platform_server.base_url}{API_PREFIX}/submissions/{sid}", timeout=TIMEOUT)
    assert status.status_code == 404


def test_a_correction_of_the_named_field_makes_it_received_under_the_same_id(
    platform_server: RunningPlatform, k01: requests.Session
) -> None:
    body = rejected_submission(platform_server, k01)
    sid = body["submission_id"]
    answer = correct(platform_server, k01, sid, {"phone": "13800138000"})
    assert answer.status_code == 201, answer.text
    receipt = answer.json()
    assert receipt["submission_id"] == sid
    assert receipt["receipt_number"] == body["receipt_number"]
    assert receipt["status"] == "received"
    assert receipt["tracking_url"].endswith(f"/track/{sid}")
    kept = stored_request(platform_server, sid)
    assert kept is not None
    assert kept["answers"] == {**body["answers"], "phone": "13800138000"}
    assert kept["applicant"] == body["applicant"]
    assert rejected_rows(platform_server, sid) == 0
    state = k01.get(f"{platform_server.base_url}{API_PREFIX}/submissions/{sid}", timeout=TIMEOUT)
    assert state.json()["status"] == "received"
    assert state.json()["receipt_number"] == body["receipt_number"]
    # Received now: nothing left to correct.
    again = correct(platform_server, k01, sid, {"phone": "13900139000"})
    assert again.status_code == 409
    assert again.json()["error"] == "not_correctable"


def test_a_correction_still_invalid_is_refused_with_the_new_problems(
    platform_server: RunningPlatform, k01: requests.Session
) -> None:
    body = rejected_submission(platform_server, k01)
    sid = body["submission_id"]
    answer = correct(platform_server, k01, sid, {"phone": "1380013800"})
    assert answer.status_code == 422
    assert answer.json()["error"] == "validation_failed"
    assert answer.json()["fields"] == [{"field": "phone", "code": "pattern"}]
    assert stored_request(platform_server, sid) is None
    assert rejected_rows(platform_server, sid) == 1
    # The rejected record holds the latest values: a correction of phone alone now passes.
    fixed = correct(platform_server, k01, sid, {"phone": "13800138000"})
    assert fixed.status_code == 201, fixed.text


def test_a_replayed_correction_gets_the_same_answer_and_another_body_a_conflict(
    platform_server: RunningPlatform, k01: requests.Session
) -> None:
    body = rejected_submission(platform_server, k01)
    sid = body["submission_id"]
    cid = str(uuid.uuid4())
    first = correct(platform_server, k01, sid, {"phone": "13800138000"}, cid)
    assert first.status_code == 201
    # Sealed afresh (another ciphertext), the same content: the same answer, byte for byte.
    second = correct(platform_server, k01, sid, {"phone": "13800138000"}, cid)
    assert second.status_code == 201
    assert second.content == first.content
    other = correct(platform_server, k01, sid, {"phone": "13900139000"}, cid)
    assert other.status_code == 409
    assert other.json()["error"] == "idempotency_conflict"
    kept = stored_request(platform_server, sid)
    assert kept is not None and kept["answers"]["phone"] == "13800138000"


def test_a_refused_correction_replayed_gets_the_same_refusal(
    platform_server: RunningPlatform, k01: requests.Session
) -> None:
    body = rejected_submission(platform_server, k01)
    sid = body["submission_id"]
    cid = str(uuid.uuid4())
    first = correct(platform_server, k01, sid, {"phone": "0"}, cid)
    assert first.status_code == 422
    assert correct(platform_server, k01, sid, {"phone": "13800138000"}).status_code == 201
    replay = correct(platform_server, k01, sid, {"phone": "0"}, cid)
    assert (replay.status_code, replay.content) == (422, first.content)


def test_only_the_filing_terminal_may_correct(
    platform_server: RunningPlatform, k01: requests.Session, tmp_path: Path
) -> None:
    body = rejected_submission(platform_server, k01)
    sid = body["submission_id"]
    with signed_session(platform_server, tmp_path / "k02", "K02") as k02:
        answer = correct(platform_server, k02, sid, {"phone": "13800138000"})
    assert answer.status_code == 403
    assert answer.json()["error"] == "terminal_mismatch"
    assert stored_request(platform_server, sid) is None
    assert correct(platform_server, k01, sid, {"phone": "13800138000"}).status_code == 201


def test_a_submission_never_rejected_is_not_correctable(
    platform_server: RunningPlatform, k01: requests.Session
) -> None:
    unknown = correct(platform_server, k01, str(uuid.uuid4()), {"phone": "13800138000"})
    assert unknown.status_code == 409
    assert unknown.json()["error"] == "not_correctable"
    body = demo_submission()
    assert submit(platform_server, k01, body).status_code == 201
    received = correct(platform_server, k01, body["submission_id"], {"phone": "13900139000"})
    assert received.status_code == 409
    assert received.json()["error"] == "not_correctable"


def test_a_field_the_refusal_did_not_name_is_not_correctable(
    platform_server: RunningPlatform, k01: requests.Session
) -> None:
    body = rejected_submission(platform_server, k01)
    sid = body["submission_id"]
    answer = correct(platform_server, k01, sid, {"phone": "13800138000", "reason": "study"})
    assert answer.status_code == 422
    assert answer.json()["error"] == "not_correctable"
    assert answer.json()["fields"] == [{"field": "reason", "code": "not_correctable"}]
    assert stored_request(platform_server, sid) is None
    assert rejected_rows(platform_server, sid) == 1


@pytest.mark.parametrize(
    "damage",
    [
        lambda b: b.pop("correction_id"),
        lambda b: b.update(correction_id="not-a-uuid"),
        lambda b: b.update(submission_id=str(uuid.uuid4())),
        lambda b: b.update(extra=1),
    ],
)
def test_a_malformed_correction_is_a_bad_request(
    platform_server: RunningPlatform, k01: requests.Session, damage: Any
) -> None:
    body = rejected_submission(platform_server, k01)
    sid = body["submission_id"]
    cid = str(uuid.uuid4())
    key = platform_keys(platform_server).sealing_public_key
    doc: dict[str, Any] = {
        "correction_id": cid,
        "submission_id": sid,
        "sealed": seal(_dump({"answers": {"phone": "13800138000"}}), key, cid.encode()),
    }
    damage(doc)
    answer = k01.post(
        f"{platform_server.base_url}{API_PREFIX}/submissions/{sid}/corrections",
        data=_dump(doc),
        headers={"Content-Type": "application/json"},
        timeout=TIMEOUT,
    )
    assert answer.status_code == 400
    assert answer.json()["error"] == "bad_request"


def test_a_correction_sealed_for_another_id_does_not_open(
    platform_server: RunningPlatform, k01: requests.Session
) -> None:
    body = rejected_submission(platform_server, k01)
    sid = body["submission_id"]
    key = platform_keys(platform_server).sealing_public_key
    doc = {
        "correction_id": str(uuid.uuid4()),
        "submission_id": sid,
        "sealed": seal(_dump({"answers": {"phone": "13800138000"}}), key, sid.encode()),
    }
    answer = k01.post(
        f"{platform_server.base_url}{API_PREFIX}/submissions/{sid}/corrections",
        data=_dump(doc),
        headers={"Content-Type": "application/json"},
        timeout=TIMEOUT,
    )
    assert answer.status_code == 400
    assert answer.json()["error"] == "sealed_invalid"
    assert stored_request(platform_server, sid) is None


def test_a_batch_item_refused_for_its_answers_may_be_corrected_too(
    platform_server: RunningPlatform, k01: requests.Session
) -> None:
    key = platform_keys(platform_server).sealing_public_key
    bad, good = demo_submission(phone=BAD_PHONE), demo_submission()
    items = [
        {
            "submission_id": b["submission_id"],
            "sealed": seal(_dump(b), key, b["submission_id"].encode()),
        }
        for b in (bad, good)
    ]
    answer = k01.post(
        f"{platform_server.base_url}{API_PREFIX}/submissions/batch",
        data=_dump({"submissions": items}),
        headers={"Content-Type": "application/json"},
        timeout=TIMEOUT,
    )
    assert [r["status"] for r in answer.json()["results"]] == [422, 201]
    assert rejected_rows(platform_server, bad["submission_id"]) == 1
    assert rejected_rows(platform_server, good["submission_id"]) == 0
    fixed = correct(platform_server, k01, bad["submission_id"], {"phone": "13800138000"})
    assert fixed.status_code == 201
    assert stored_request(platform_server, bad["submission_id"]) is not None


# -- a refused submission stays its terminal's -----------------------------------------------


def rejected_record(platform: RunningPlatform, submission_id: str) -> tuple[str, str] | None:
    """(terminal_id, the kept phone answer) of the rejected record, or None."""
    with sqlite3.connect(platform.db_path) as db:
        row = db.execute(
            "SELECT terminal_id, json_extract(request_json, '$.answers.phone') FROM rejected"
            " WHERE submission_id = ?",
            (submission_id,),
        ).fetchone()
    return None if row is None else (str(row[0]), str(row[1]))


def post_batch(
    platform: RunningPlatform, session: requests.Session, *bodies: dict[str, Any]
) -> list[dict[str, Any]]:
    key = platform_keys(platform).sealing_public_key
    items = [
        {
            "submission_id": b["submission_id"],
            "sealed": seal(_dump(b), key, b["submission_id"].encode()),
        }
        for b in bodies
    ]
    answer = session.post(
        f"{platform.base_url}{API_PREFIX}/submissions/batch",
        data=_dump({"submissions": items}),
        headers={"Content-Type": "application/json"},
        timeout=TIMEOUT,
    )
    assert answer.status_code == 200, answer.text
    results = answer.json()["results"]
    assert isinstance(results, list)
    return results


def test_another_terminal_cannot_take_over_a_refused_submission(
    platform_server: RunningPlatform, k01: requests.Session, tmp_path: Path
) -> None:
    body = rejected_submission(platform_server, k01)
    sid = body["submission_id"]
    with signed_session(platform_server, tmp_path / "k02", "K02") as k02:
        invalid = {**body, "terminal_id": "K02", "answers": {**body["answers"], "phone": "0"}}
        answer = submit(platform_server, k02, invalid)
        assert answer.status_code == 403, answer.text
        assert answer.json()["error"] == "terminal_mismatch"
        valid = {**body, "terminal_id": "K02", "answers": {**body["answers"]}}
        valid["answers"]["phone"] = "13800138000"
        answer = submit(platform_server, k02, valid)
        assert answer.status_code == 403, answer.text
        assert answer.json()["error"] == "terminal_mismatch"
        [item] = post_batch(platform_server, k02, valid)
        assert (item["status"], item["body"]["error"]) == (403, "terminal_mismatch")
        # Nor may it correct it.
        assert correct(platform_server, k02, sid, {"phone": "13800138000"}).status_code == 403
    assert stored_request(platform_server, sid) is None
    assert rejected_record(platform_server, sid) == ("K01", BAD_PHONE)
    fixed = correct(platform_server, k01, sid, {"phone": "13800138000"})
    assert fixed.status_code == 201, fixed.text
    kept = stored_request(platform_server, sid)
    assert kept is not None and kept["terminal_id"] == "K01"


def test_the_rejected_record_is_replaced_only_by_its_own_terminal(tmp_path: Path) -> None:
    storage = Storage(tmp_path / "platform.sqlite3")
    body = demo_submission(phone=BAD_PHONE)
    sid = body["submission_id"]
    mine = RejectedSubmission(sid, "K01", body, (("phone", "pattern"),), b"{}")
    storage.keep_rejected(mine, "2026-11-23T14:32:05+08:00")
    other_body = {**body, "terminal_id": "K02", "answers": {**body["answers"], "phone": "0"}}
    storage.keep_rejected(
        RejectedSubmission(sid, "K02", other_body, (("phone", "pattern"),), b"{}"),
        "2026-11-23T14:33:05+08:00",
    )
    kept = storage.rejected(sid)
    assert kept is not None
    assert (kept.terminal_id, kept.request["answers"]["phone"]) == ("K01", BAD_PHONE)
    again = {**body, "answers": {**body["answers"], "phone": "1"}}
    storage.keep_rejected(
        RejectedSubmission(sid, "K01", again, (("phone", "pattern"),), b"{}"),
        "2026-11-23T14:34:05+08:00",
    )
    kept = storage.rejected(sid)
    assert kept is not None and kept.request["answers"]["phone"] == "1"


@pytest.mark.parametrize("by_batch", [False, True])
def test_a_valid_body_under_a_refused_id_from_its_terminal_clears_the_record(
    platform_server: RunningPlatform, k01: requests.Session, by_batch: bool
) -> None:
    body = rejected_submission(platform_server, k01)
    sid = body["submission_id"]
    valid = {**body, "answers": {**body["answers"], "phone": "13800138000"}}
    if by_batch:
        [item] = post_batch(platform_server, k01, valid)
        assert item["status"] == 201
    else:
        assert submit(platform_server, k01, valid).status_code == 201
    assert stored_request(platform_server, sid) is not None
    assert rejected_rows(platform_server, sid) == 0
    again = correct(platform_server, k01, sid, {"phone": "13900139000"})
    assert (again.status_code, again.json()["error"]) == (409, "not_correctable")
