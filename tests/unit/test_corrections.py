"""Correcting a refused submission on the terminal: the refusal in words, the correction row,
and the round trip through the sync engine to the real platform on 127.0.0.1."""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
import threading
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from kiosk.audit_log import AuditLog
from kiosk.catalogue import Service, load_catalogue_file
from kiosk.corrections import (
    CORRECTION_KIND,
    CorrectionError,
    Corrector,
    FieldProblem,
    explain,
    problem_text,
    refused_fields,
)
from kiosk.i18n import set_language
from kiosk.platform_client import FieldError, OutcomeKind, PlatformClient, SubmitOutcome
from kiosk.sync import SyncEngine
from kiosk.trust import seal
from offline_queue.outbox import Outbox, Settlement, State, new_item_id
from refplatform.keys import PlatformKeys
from refplatform.server import RunningPlatform
from tests.fixtures.outbox import FakeClock
from tests.fixtures.platform import (
    DEMO_CATALOGUE,
    client_for,
    demo_submission,
    enrol_terminal,
    platform_keys,
)

REFUSED_PHONE = json.dumps(
    {
        "error": "validation_failed",
        "detail": "some answers are not valid",
        "fields": [{"field": "answers.phone", "code": "pattern"}],
    }
).encode()


@pytest.fixture(scope="module")
def residence() -> Service:
    return load_catalogue_file(DEMO_CATALOGUE).service("residence-permit")


class Audit:
    def __init__(self) -> None:
        self.entries: list[tuple[str, str, Mapping[str, Any]]] = []

    def append(self, kind: str, staff: str = "", details: Mapping[str, Any] | None = None) -> None:
        self.entries.append((kind, staff, dict(details or {})))


def _dump(value: object) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def queue_sealed(outbox: Outbox, keys: PlatformKeys, body: dict[str, Any]) -> str:
    """A submission queued as the terminal queues one: sealed to the platform."""
    sid = body["submission_id"]
    sealed = seal(_dump(body), keys.sealing_public_key, sid.encode("utf-8"))
    summary = {"receipt_number": body["receipt_number"], "service_id": body["service_id"]}
    return outbox.enqueue(
        "submission",
        _dump({"submission_id": sid, "sealed": sealed}),
        _dump(summary),
        item_id=sid,
    )


def rejected_row(outbox: Outbox, response: bytes = REFUSED_PHONE) -> str:
    item_id = outbox.enqueue("submission", b"{}", b"{}")
    [claimed] = outbox.claim_batch(1, ids={item_id})
    assert claimed.id == item_id
    outbox.settle_many([Settlement(item_id, State.REJECTED, "validation_failed", response)])
    return item_id


# -- the refusal in words ----------------------------------------------------------------------


def test_refused_fields_reads_the_stored_refusal() -> None:
    body = {
        "error": "validation_failed",
        "fields": [
            {"field": "answers.phone", "code": "pattern"},
            {"field": "address", "code": "maxLength"},
            {"field": "phone", "code": "required"},  # named twice: once is enough
            {"field": "", "code": "type"},  # the form as a whole: no field to correct
            {"field": "attachments.0", "code": "maxSize"},
            {"field": 3, "code": "pattern"},
        ],
    }
    assert refused_fields(_dump(body)) == (
        FieldProblem("phone", "pattern"),
        FieldProblem("address", "maxLength"),
    )
    assert refused_fields(None) == ()
    assert refused_fields(b"<html>") == ()
    assert refused_fields(_dump({"error": "unknown_service", "fields": body["fields"]})) == ()


def test_problems_read_as_the_question_and_the_forms_own_sentence(residence: Service) -> None:
    problems = (
        FieldProblem("phone", "pattern"),
        FieldProblem("address", "maxLength"),
        FieldProblem("reason", "required"),
        FieldProblem("residence_start", "type"),
        FieldProblem("unknown_field", "whatever"),
    )
    texts = [problem_text(p) for p in explain(problems, residence)]
    assert texts == [
        "手机号码：请输入11位手机号码，以1开头。",  # the question's own error text
        "本市居住地址：请不要超过100个字。",  # the form's limit, in the form's sentence
        "居住原因：请填写此项。",
        "开始在本市居住的日期：" + explain([problems[3]], residence)[0].reason,
        "unknown_field：" + explain([problems[4]], None)[0].reason,
    ]
    assert "{" not in texts[3] and texts[3] != texts[4]
    set_language("en")
    [phone] = explain(problems[:1], residence)
    assert problem_text(phone) == (
        "Mobile phone number: Enter an 11-digit mobile number starting with 1."
    )


def test_a_pattern_without_the_questions_own_text_gets_the_forms_general_one(
    residence: Service,
) -> None:
    [problem] = explain([FieldProblem("collection", "pattern")], residence)
    assert problem.reason == "填写的内容格式不对，请核对。"
    assert problem.label == "领取方式"


# -- the correction row --------------------------------------------------------------------------


def test_enqueue_seals_only_the_refused_fields_and_audits_their_names(
    outbox: Outbox, tmp_path: Path
) -> None:
    keys = PlatformKeys(tmp_path / "platform-keys")
    audit = Audit()
    woken: list[bool] = []
    corrector = Corrector(
        outbox, seal_to=keys.sealing_public_key, audit=audit, wake=lambda: woken.append(True)
    )
    item_id = rejected_row(outbox)
    assert corrector.refused() == {item_id: (FieldProblem("phone", "pattern"),)}

    with pytest.raises(CorrectionError):
        corrector.enqueue(item_id, {"phone": "13800138000", "reason": "work"})
    with pytest.raises(CorrectionError):
        corrector.enqueue(item_id, {})
    assert outbox.counts()["queued"] == 0 and audit.entries == []

    correction_id = corrector.enqueue(item_id, {"phone": "13800138000"}, staff="S0012")
    assert woken == [True]
    assert corrector.pending() == {item_id}
    [item] = outbox.claim_batch(1)
    assert (item.id, item.kind) == (correction_id, CORRECTION_KIND)
    doc = json.loads(item.payload)
    assert set(doc) == {"correction_id", "submission_id", "sealed"}
    assert (doc["correction_id"], doc["submission_id"]) == (correction_id, item_id)
    assert b"13800138000" not in item.payload
    opened = keys.open_sealed(doc["sealed"], correction_id.encode())
    assert json.loads(opened) == {"answers": {"phone": "13800138000"}}
    with pytest.raises(ValueError, match="not_authentic"):
        keys.open_sealed(doc["sealed"], item_id.encode())  # bound to the correction's id
    assert audit.entries == [
        ("correction", "S0012", {"submission_id": item_id, "fields": ["phone"]})
    ]


def test_a_correction_waits_for_no_second_one_and_needs_a_rejected_row(
    outbox: Outbox, tmp_path: Path
) -> None:
    keys = PlatformKeys(tmp_path / "platform-keys")
    corrector = Corrector(outbox, seal_to=keys.sealing_public_key)
    item_id = rejected_row(outbox)
    corrector.enqueue(item_id, {"phone": "13800138000"})
    with pytest.raises(CorrectionError):
        corrector.enqueue(item_id, {"phone": "13900139000"})
    queued = outbox.enqueue("submission", b"{}", b"{}")
    with pytest.raises(CorrectionError):
        corrector.enqueue(queued, {"phone": "13800138000"})
    with pytest.raises(CorrectionError):
        Corrector(outbox, seal_to=None).enqueue(rejected_row(outbox), {"phone": "1"})


def test_the_audit_log_keeps_the_field_names_and_refuses_values(tmp_path: Path) -> None:
    when = dt.datetime(2026, 11, 29, 9, 0, tzinfo=dt.UTC)
    log = AuditLog(tmp_path / "audit.sqlite3", Ed25519PrivateKey.generate(), lambda: when)
    sid = new_item_id()
    entry = log.append("correction", "S0012", {"submission_id": sid, "fields": ["phone"]})
    assert entry.details == {"submission_id": sid, "fields": ["phone"]}
    for bad in (["13800138000"], [], "phone", ["Phone Number"], ["x"] * 33):
        with pytest.raises(ValueError):
            log.append("correction", "S0012", {"submission_id": sid, "fields": bad})


def test_a_rejected_row_refused_again_takes_the_new_refusal(outbox: Outbox) -> None:
    item_id = rejected_row(outbox)
    outbox.settle_many([Settlement(item_id, State.REJECTED, "validation_failed|phone:x", b"{2}")])
    assert outbox.state_of(item_id) is State.REJECTED
    assert outbox.get_response(item_id) == b"{2}"
    [info] = outbox.items(states=(State.REJECTED,))
    assert info.last_error == "validation_failed|phone:x"


# -- the round trip --------------------------------------------------------------------------------


@pytest.fixture
def terminal(
    platform_server: RunningPlatform, tmp_path: Path, clock: FakeClock
) -> Iterator[tuple[Outbox, PlatformClient, PlatformKeys]]:
    identity = enrol_terminal(platform_server, tmp_path / "k01", "K01")
    client = client_for(platform_server, identity)
    box = Outbox(tmp_path / "outbox.db", b"k" * 32, clock=clock)
    yield box, client, platform_keys(platform_server)
    box.close()
    client.close()


def platform_answers(platform: RunningPlatform, submission_id: str) -> dict[str, Any] | None:
    with sqlite3.connect(platform.db_path) as db:
        row = db.execute(
            "SELECT request_json FROM submissions WHERE submission_id = ?", (submission_id,)
        ).fetchone()
    return None if row is None else dict(json.loads(row[0])["answers"])


def test_a_sync_round_trip_corrects_the_submission_under_its_own_id(
    platform_server: RunningPlatform,
    terminal: tuple[Outbox, PlatformClient, PlatformKeys],
    clock: FakeClock,
) -> None:
    outbox, client, keys = terminal
    engine = SyncEngine(outbox, client, clock=clock)
    audit = Audit()
    corrector = Corrector(outbox, seal_to=keys.sealing_public_key, audit=audit)
    body = demo_submission(submission_id=new_item_id(), phone="12345")
    sid = queue_sealed(outbox, keys, body)
    assert engine.drain_once() == 0
    assert outbox.state_of(sid) is State.REJECTED
    assert corrector.refused() == {sid: (FieldProblem("phone", "pattern"),)}
    assert platform_answers(platform_server, sid) is None

    # Still wrong: the row is refused again, with the platform's new answer.
    first = corrector.enqueue(sid, {"phone": "1380013800"})
    assert engine.drain_once() == 0
    assert outbox.state_of(first) is State.DELIVERED
    assert outbox.state_of(sid) is State.REJECTED
    refusal = json.loads(outbox.get_response(sid) or b"{}")
    assert refusal["error"] == "validation_failed"
    assert outbox.get_response(first) == outbox.get_response(sid)
    assert corrector.pending() == frozenset()

    second = corrector.enqueue(sid, {"phone": "13800138000"})
    assert engine.drain_once() == 1
    assert outbox.state_of(second) is State.DELIVERED
    assert outbox.state_of(sid) is State.DELIVERED
    receipt = json.loads(outbox.get_response(sid) or b"{}")
    assert receipt["submission_id"] == sid
    assert receipt["receipt_number"] == body["receipt_number"]
    assert receipt["status"] == "received"
    assert platform_answers(platform_server, sid) == {**body["answers"], "phone": "13800138000"}
    assert outbox.counts()["queued"] == 0 and outbox.counts()["rejected"] == 0
    assert [e[2]["fields"] for e in audit.entries] == [["phone"], ["phone"]]


def test_a_correction_the_platform_cannot_apply_sets_the_row_aside(
    platform_server: RunningPlatform,
    terminal: tuple[Outbox, PlatformClient, PlatformKeys],
    clock: FakeClock,
) -> None:
    outbox, client, keys = terminal
    engine = SyncEngine(outbox, client, clock=clock)
    # Refused here, but never seen by this platform (another one refused it, say).
    item_id = rejected_row(outbox)
    correction = Corrector(outbox, seal_to=keys.sealing_public_key).enqueue(
        item_id, {"phone": "13800138000"}
    )
    engine.drain_once()
    assert outbox.state_of(correction) is State.DELIVERED
    assert outbox.state_of(item_id) is State.NEEDS_ATTENTION
    [info] = outbox.items(states=(State.NEEDS_ATTENTION,))
    assert info.last_error == "not_correctable"


# -- answers to corrections, without a platform ------------------------------------------------


class Answers:
    """A platform client whose answers to corrections are given in advance, in order; every
    submission is taken."""

    batch_supported = True

    def __init__(self, *corrections: SubmitOutcome) -> None:
        self.corrections = list(corrections)
        self.sent: list[str] = []

    def submit(self, item_id: str, body: Mapping[str, Any]) -> SubmitOutcome:
        return SubmitOutcome(OutcomeKind.DELIVERED, response={"submission_id": item_id})

    def submit_batch(self, items: list[tuple[str, Mapping[str, Any]]]) -> list[SubmitOutcome]:
        return [self.submit(item_id, body) for item_id, body in items]

    def send_correction(self, correction_id: str, body: Mapping[str, Any]) -> SubmitOutcome:
        self.sent.append(correction_id)
        return self.corrections.pop(0)

    def health(self) -> bool:
        return True


RECEIVED = SubmitOutcome(OutcomeKind.DELIVERED, response={"status": "received"}, http_status=201)
STILL_WRONG = SubmitOutcome(
    OutcomeKind.REJECTED,
    response=json.loads(REFUSED_PHONE),
    http_status=422,
    error_code="validation_failed",
    fields=(FieldError("phone", "pattern"),),
)
NOT_CORRECTABLE = SubmitOutcome(
    OutcomeKind.REJECTED,
    response={"error": "not_correctable", "detail": "only the fields the refusal named"},
    http_status=422,
    error_code="not_correctable",
)
RECEIVED_ALREADY = SubmitOutcome(
    OutcomeKind.CONFLICT,
    response={"error": "not_correctable", "detail": "this submission has been received"},
    http_status=409,
    error_code="not_correctable",
)
BAD_REQUEST = SubmitOutcome(
    OutcomeKind.REJECTED,
    response={"error": "bad_request", "detail": "the body is not JSON"},
    http_status=400,
    error_code="bad_request",
)


def correction_row(outbox: Outbox, item_id: str, clock: FakeClock) -> str:
    """A correction row as Corrector queues one, without its checks (so two can be queued)."""
    clock.advance(1)
    correction_id = new_item_id()
    body = {"correction_id": correction_id, "submission_id": item_id, "sealed": {}}
    summary = {"kind": CORRECTION_KIND, "corrects": item_id}
    return outbox.enqueue(CORRECTION_KIND, _dump(body), _dump(summary), item_id=correction_id)


@pytest.mark.parametrize("second", [RECEIVED_ALREADY, NOT_CORRECTABLE, STILL_WRONG, RECEIVED])
def test_two_corrections_of_one_submission_in_one_batch_settle_once(
    outbox: Outbox, clock: FakeClock, second: SubmitOutcome
) -> None:
    item_id = rejected_row(outbox)
    # The drain's first send is one row alone; the backlog behind it goes as one batch.
    lone = new_item_id()
    outbox.enqueue("submission", _dump({"submission_id": lone}), b"{}", item_id=lone)
    corrections = [correction_row(outbox, item_id, clock), correction_row(outbox, item_id, clock)]
    client = Answers(RECEIVED, second)
    engine = SyncEngine(outbox, client, clock=clock)  # type: ignore[arg-type]
    # The lone submission, the first correction, and the second when it is a delivery too.
    assert engine.drain_once() == 2 + (second is RECEIVED)
    assert client.sent == corrections
    assert outbox.state_of(item_id) is State.DELIVERED
    assert json.loads(outbox.get_response(item_id) or b"{}") == {"status": "received"}
    assert [outbox.state_of(c) for c in corrections] == [State.DELIVERED, State.DELIVERED]
    assert outbox.counts().get("queued", 0) == 0


@pytest.mark.parametrize("answer", [NOT_CORRECTABLE, BAD_REQUEST, RECEIVED_ALREADY])
def test_a_correction_refused_for_another_reason_keeps_the_original_refusal(
    outbox: Outbox, clock: FakeClock, answer: SubmitOutcome
) -> None:
    item_id = rejected_row(outbox)
    correction = correction_row(outbox, item_id, clock)
    SyncEngine(outbox, Answers(answer), clock=clock).drain_once()  # type: ignore[arg-type]
    assert outbox.state_of(correction) is State.DELIVERED
    assert outbox.state_of(item_id) is State.NEEDS_ATTENTION
    assert outbox.get_response(item_id) == REFUSED_PHONE
    assert refused_fields(outbox.get_response(item_id)) == (FieldProblem("phone", "pattern"),)
    [info] = outbox.items(states=(State.NEEDS_ATTENTION,))
    assert info.last_error == answer.error_code


def test_a_correction_refused_for_its_values_takes_the_new_refusal(
    outbox: Outbox, clock: FakeClock
) -> None:
    item_id = rejected_row(outbox, response=b'{"error":"validation_failed","fields":[]}')
    correction_row(outbox, item_id, clock)
    SyncEngine(outbox, Answers(STILL_WRONG), clock=clock).drain_once()  # type: ignore[arg-type]
    assert outbox.state_of(item_id) is State.REJECTED
    assert json.loads(outbox.get_response(item_id) or b"{}") == json.loads(REFUSED_PHONE)


class WatchedLock:
    """A lock that sets an event when a caller has to wait for it."""

    def __init__(self, lock: Any, waiting: threading.Event) -> None:
        self.lock = lock
        self.waiting = waiting

    def __enter__(self) -> WatchedLock:
        if not self.lock.acquire(blocking=False):
            self.waiting.set()
            self.lock.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.lock.release()


def test_two_corrections_queued_at_once_leave_one_row(outbox: Outbox, tmp_path: Path) -> None:
    keys = PlatformKeys(tmp_path / "platform-keys")
    corrector = Corrector(outbox, seal_to=keys.sealing_public_key)
    item_id = rejected_row(outbox)
    # Set when the second caller is done, or waits for the first one's lock.
    moved = threading.Event()
    corrector._enqueue_lock = WatchedLock(corrector._enqueue_lock, moved)  # type: ignore[assignment]
    results: list[object] = []
    real_pending = corrector.pending

    def enqueue(phone: str) -> None:
        try:
            results.append(corrector.enqueue(item_id, {"phone": phone}))
        except CorrectionError as exc:
            results.append(exc)

    def second() -> None:
        enqueue("13900139000")
        moved.set()

    other = threading.Thread(target=second)

    def pending_then_the_other() -> frozenset[str]:
        # The first caller has checked; the other one comes now, before it has inserted.
        found = real_pending()
        if other.ident is None:
            other.start()
            assert moved.wait(timeout=10)
        return found

    corrector.pending = pending_then_the_other  # type: ignore[method-assign]
    enqueue("13800138000")
    other.join(timeout=10)
    assert not other.is_alive()
    assert len(results) == 2
    refusals = [r for r in results if isinstance(r, CorrectionError)]
    assert len(refusals) == 1
    set_language("en")
    assert refusals[0].user_message() == (
        "A correction of this submission is already waiting to upload."
    )
    assert len(outbox.items(states=(State.QUEUED,))) == 1
    assert corrector.pending() == {item_id}
