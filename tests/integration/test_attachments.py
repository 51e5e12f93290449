"""Submissions with files, end to end: the outbox, the real sync engine and the reference
platform over real HTTP on 127.0.0.1, and the platform's own checks of what it is sent."""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import hashlib
import json
import sqlite3
import threading
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest
import requests
from starlette.requests import Request
from starlette.responses import Response

from devices.identity import Identity, Sex
from devices.printing import PrintResult, PrintStatus, ReceiptDocument
from kiosk.catalogue import load_catalogue_file
from kiosk.config import Config
from kiosk.i18n import set_language
from kiosk.platform_client import PlatformClient, SubmitOutcome
from kiosk.receipt_numbers import ReceiptNumbers
from kiosk.session import Draft
from kiosk.submissions import AttachmentsRefusedError, SaveFailedError, Submitter
from kiosk.sync import SUBMISSION_KIND, SyncEngine
from kiosk.terminal_auth import TerminalIdentity
from offline_queue.errors import AttachmentsTooLargeError
from offline_queue.keys import load_or_create_key
from offline_queue.outbox import Attachment, AttachmentLimits, Outbox, State, new_item_id
from refplatform.app import API_PREFIX
from refplatform.faults import Fault, FaultPlan, FaultRule
from refplatform.server import RunningPlatform, start_in_thread
from tests.fixtures.platform import (
    DEMO_ANSWERS,
    DEMO_APPLICANT,
    DEMO_CATALOGUE,
    client_for,
    demo_submission,
    enrol_terminal,
)

TIMEOUT = 10


def png(size: int, seed: int) -> bytes:
    """Binary PNG-like bytes: every byte value occurs, so any text mangling on the way shows."""
    noise = hashlib.shake_256(b"photo %d" % seed).digest(size)
    return (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)) + noise)[:size]


def signature(seed: int = 0) -> bytes:
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n<svg xmlns="http://www.w3.org/2000/svg"'
        f' viewBox="0 0 300 100"><title>签名 {seed}</title>'
        "<path d='M10 80 C 40 10, 65 10, 95 80 S 150 150, 180 80'/></svg>\n"
    ).encode()


def two_files(seed: int = 0, photo_size: int = 120_000) -> tuple[Attachment, ...]:
    return (
        Attachment(f"hukou-{seed}.png", "image/png", png(photo_size, seed)),
        Attachment("signature.svg", "image/svg+xml", signature(seed)),
    )


def wire(file: Attachment) -> dict[str, Any]:
    """A file as docs/api.md spells it, built here independently of the client."""
    return {
        "name": file.name,
        "content_type": file.content_type,
        "size": len(file.data),
        "sha256": hashlib.sha256(file.data).hexdigest(),
        "data_base64": base64.b64encode(file.data).decode("ascii"),
    }


class RecordingPlan(FaultPlan):
    """The platform's fault plan, also noting each submission request: endpoint and item count."""

    def __init__(self) -> None:
        super().__init__()
        self._seen_lock = threading.Lock()
        self.seen: list[tuple[str, int]] = []

    async def before_submission(
        self, request: Request, submission_ids: Sequence[str] | None = None
    ) -> Response | None:
        batch = request.url.path.endswith("/batch")
        count = 1
        if batch:
            doc = json.loads(await request.body())
            count = len(doc["submissions"]) if isinstance(doc, dict) else 0
        with self._seen_lock:
            self.seen.append(("batch" if batch else "single", count))
        return await super().before_submission(request, submission_ids)

    def reset(self) -> None:
        self.clear()
        with self._seen_lock:
            self.seen.clear()


@pytest.fixture(scope="module")
def plan() -> RecordingPlan:
    return RecordingPlan()


@pytest.fixture(scope="module")
def platform(
    tmp_path_factory: pytest.TempPathFactory, plan: RecordingPlan
) -> Iterator[RunningPlatform]:
    db = tmp_path_factory.mktemp("platform") / "platform.sqlite3"
    with start_in_thread(db, DEMO_CATALOGUE, faults=plan) as running:
        yield running


@pytest.fixture(scope="module")
def identity(
    tmp_path_factory: pytest.TempPathFactory, platform: RunningPlatform
) -> TerminalIdentity:
    """Terminal K01 (the demo bodies' terminal_id), enrolled once for the module."""
    return enrol_terminal(platform, tmp_path_factory.mktemp("terminal"))


@pytest.fixture(autouse=True)
def _fresh_plan(plan: RecordingPlan) -> None:
    plan.reset()


@pytest.fixture
def outbox(tmp_path: Path) -> Iterator[Outbox]:
    box = Outbox(tmp_path / "outbox.db", load_or_create_key(tmp_path / "outbox.key"))
    yield box
    box.close()


@pytest.fixture
def client(platform: RunningPlatform, identity: TerminalIdentity) -> Iterator[PlatformClient]:
    with contextlib.closing(client_for(platform, identity)) as platform_client:
        yield platform_client


@pytest.fixture
def http(identity: TerminalIdentity) -> Iterator[requests.Session]:
    """Requests signed by the enrolled terminal, as the terminal's own would be."""
    with requests.Session() as session:
        session.auth = identity.auth()
        yield session


def enqueue(outbox: Outbox, files: Sequence[Attachment]) -> tuple[str, dict[str, Any]]:
    sid = new_item_id()
    body = demo_submission(submission_id=sid)
    outbox.enqueue(
        SUBMISSION_KIND,
        json.dumps(body, ensure_ascii=False).encode(),
        json.dumps({"receipt_number": body["receipt_number"]}).encode(),
        item_id=sid,
        attachments=files,
    )
    return sid, body


def platform_files(platform: RunningPlatform, sid: str) -> list[tuple[Any, ...]]:
    """What the platform's database holds for sid: (ordinal, name, type, size, sha256, data)."""
    with contextlib.closing(sqlite3.connect(platform.db_path)) as db:
        rows = db.execute(
            "SELECT ordinal, name, content_type, size, sha256, data FROM attachments"
            " WHERE submission_id = ? ORDER BY ordinal",
            (sid,),
        ).fetchall()
    return [(*r[:5], bytes(r[5])) for r in rows]


def expected_files(files: Sequence[Attachment]) -> list[tuple[Any, ...]]:
    return [
        (n, f.name, f.content_type, len(f.data), hashlib.sha256(f.data).hexdigest(), f.data)
        for n, f in enumerate(files)
    ]


def platform_request(platform: RunningPlatform, sid: str) -> dict[str, Any] | None:
    with contextlib.closing(sqlite3.connect(platform.db_path)) as db:
        row = db.execute(
            "SELECT request_json FROM submissions WHERE submission_id = ?", (sid,)
        ).fetchone()
    return None if row is None else json.loads(row[0])


def outbox_files(outbox_path: Path, sid: str | None = None) -> int:
    with contextlib.closing(sqlite3.connect(outbox_path)) as db:
        if sid is None:
            return int(db.execute("SELECT COUNT(*) FROM attachments").fetchone()[0])
        query = "SELECT COUNT(*) FROM attachments WHERE item_id = ?"
        return int(db.execute(query, (sid,)).fetchone()[0])


def post(http: requests.Session, platform: RunningPlatform, body: Mapping[str, Any]) -> Any:
    return http.post(
        f"{platform.base_url}{API_PREFIX}/submissions",
        json=body,
        headers={"Idempotency-Key": body["submission_id"]},
        timeout=TIMEOUT,
    )


# -- through the sync engine ---------------------------------------------------------------------


def test_two_files_arrive_byte_identical_and_leave_the_outbox(
    tmp_path: Path,
    outbox: Outbox,
    client: PlatformClient,
    platform: RunningPlatform,
    identity: TerminalIdentity,
) -> None:
    files = two_files(seed=1)
    sid, body = enqueue(outbox, files)
    assert outbox_files(tmp_path / "outbox.db", sid) == 2

    assert SyncEngine(outbox, client).drain_once() == 1

    assert outbox.state_of(sid) is State.DELIVERED
    assert outbox_files(tmp_path / "outbox.db") == 0
    assert platform_files(platform, sid) == expected_files(files)
    # The stored request lists the files without carrying their data a second time.
    kept = platform_request(platform, sid)
    assert kept is not None
    assert kept["attachments"] == [
        {k: v for k, v in wire(f).items() if k != "data_base64"} for f in files
    ]
    assert {k: v for k, v in kept.items() if k != "attachments"} == body

    # A resend of exactly that body (a lost answer, a second terminal) is answered as the first.
    first = json.loads(outbox.get_response(sid) or b"null")
    with requests.Session() as http:
        http.auth = identity.auth()
        replay = post(http, platform, {**body, "attachments": [wire(f) for f in files]})
        assert (replay.status_code, replay.json()) == (201, first)
        # The same key with a file changed, dropped or reordered is another submission: 409.
        changed = two_files(seed=2)
        for others in ([changed[0], files[1]], [files[0]], [files[1], files[0]], []):
            answer = post(http, platform, {**body, "attachments": [wire(f) for f in others]})
            assert (answer.status_code, answer.json()["error"]) == (409, "idempotency_conflict")
    assert platform_files(platform, sid) == expected_files(files)


def test_an_answer_lost_after_storing_is_replayed_without_a_second_copy(
    tmp_path: Path,
    outbox: Outbox,
    client: PlatformClient,
    platform: RunningPlatform,
    plan: RecordingPlan,
) -> None:
    files = two_files(seed=3)
    sid, _ = enqueue(outbox, files)
    plan.set(FaultRule(Fault.DROP_AFTER_STORE, submission_ids=frozenset({sid})))
    engine = SyncEngine(outbox, client)
    assert engine.drain_once() == 0
    assert outbox.state_of(sid) is State.QUEUED
    assert outbox_files(tmp_path / "outbox.db", sid) == 2  # not delivered: the files stay
    assert platform_files(platform, sid) == expected_files(files)  # but the platform has them

    outbox.bring_forward()  # as the network coming back would
    assert engine.drain_once() == 1
    assert outbox.state_of(sid) is State.DELIVERED
    assert outbox_files(tmp_path / "outbox.db", sid) == 0
    assert platform_files(platform, sid) == expected_files(files)
    with contextlib.closing(sqlite3.connect(platform.db_path)) as db:
        query = "SELECT COUNT(*) FROM submissions WHERE submission_id = ?"
        assert db.execute(query, (sid,)).fetchone() == (1,)
    assert plan.applied(Fault.DROP_AFTER_STORE) == 1


class TamperingClient(PlatformClient):
    """A link that changes one file's digest on the way, as a broken proxy might."""

    def submit(self, submission_id: str, body: Mapping[str, Any]) -> SubmitOutcome:
        files = [dict(f) for f in body["attachments"]]
        files[1]["sha256"] = hashlib.sha256(b"something else").hexdigest()
        return super().submit(submission_id, {**body, "attachments": files})


def test_a_tampered_digest_is_rejected_and_the_row_kept_with_its_reason(
    tmp_path: Path, outbox: Outbox, platform: RunningPlatform, identity: TerminalIdentity
) -> None:
    sid, _ = enqueue(outbox, two_files(seed=4))
    with contextlib.closing(TamperingClient(platform.base_url, auth=identity.auth())) as tampering:
        assert SyncEngine(outbox, tampering).drain_once() == 0
    [info] = outbox.items()
    assert (info.id, info.state) == (sid, State.REJECTED)
    assert info.last_error == "validation_failed|attachments.1:sha256"
    answer = json.loads(outbox.get_response(sid) or b"null")
    assert answer["fields"] == [{"field": "attachments.1", "code": "sha256"}]
    assert platform_request(platform, sid) is None
    assert platform_files(platform, sid) == []
    # Kept for staff, files and all: "retry now" sends the very same files again.
    assert outbox_files(tmp_path / "outbox.db", sid) == 2
    outbox.requeue(sid)
    with contextlib.closing(client_for(platform, identity)) as honest:
        assert SyncEngine(outbox, honest).drain_once() == 1
    assert platform_files(platform, sid) == expected_files(two_files(seed=4))


def test_a_backlog_with_files_drains_in_batches_within_the_byte_budget(
    tmp_path: Path,
    outbox: Outbox,
    client: PlatformClient,
    platform: RunningPlatform,
    plan: RecordingPlan,
) -> None:
    backlog = {}
    for n in range(7):
        files = two_files(seed=100 + n, photo_size=6_000)
        sid, body = enqueue(outbox, files)
        backlog[sid] = files
    row_bytes = len(json.dumps(body, ensure_ascii=False).encode()) + sum(len(f.data) for f in files)
    engine = SyncEngine(outbox, client, batch_bytes=3 * row_bytes + 100)

    assert engine.drain_once() == 7

    # The first send of a drain goes alone; then batches as large as the byte budget allows.
    assert plan.seen == [("single", 1), ("batch", 3), ("batch", 3)]
    assert outbox.counts()[State.DELIVERED.value] == 7
    assert outbox_files(tmp_path / "outbox.db") == 0
    for sid, files in backlog.items():
        assert platform_files(platform, sid) == expected_files(files), sid


# -- the platform's checks ----------------------------------------------------------------------

MiB = 1024 * 1024


def _entry(data: bytes = b"signature", **changes: Any) -> dict[str, Any]:
    return {**wire(Attachment("a.svg", "image/svg+xml", data)), **changes}


REFUSALS: dict[str, tuple[list[dict[str, Any]], list[dict[str, str]]]] = {
    "too many files": (
        [_entry(b"x%d" % n) for n in range(21)],
        [{"field": "attachments", "code": "maxItems"}],
    ),
    "too large together": (
        [_entry(size=5 * MiB) for _ in range(5)],
        [{"field": "attachments", "code": "maxSize"}],
    ),
    "one file too large": (
        [_entry(), _entry(size=5 * MiB + 1)],
        [{"field": "attachments.1", "code": "maxSize"}],
    ),
    "data shorter than its size": (
        [_entry(size=len(b"signature") + 3)],
        [{"field": "attachments.0", "code": "size"}],
    ),
    "not base64": (
        [_entry(data_base64="c2lnbmF0*XJl")],
        [{"field": "attachments.0", "code": "contentEncoding"}],
    ),
    "base64 in another spelling": (
        [_entry(b"ab", data_base64="YWJ=")],  # decodes to b"ab" too, but is not the spelling
        [{"field": "attachments.0", "code": "contentEncoding"}],
    ),
    "digest of other data": (
        [_entry(), _entry(sha256=hashlib.sha256(b"other").hexdigest())],
        [{"field": "attachments.1", "code": "sha256"}],
    ),
}


@pytest.mark.parametrize(("files", "fields"), REFUSALS.values(), ids=REFUSALS.keys())
def test_files_that_fail_a_check_are_refused_with_the_field(
    http: requests.Session,
    platform: RunningPlatform,
    files: list[dict[str, Any]],
    fields: list[dict[str, str]],
) -> None:
    body = {**demo_submission(submission_id=new_item_id()), "attachments": files}
    answer = post(http, platform, body)
    assert answer.status_code == 422, answer.text
    assert (answer.json()["error"], answer.json()["fields"]) == ("validation_failed", fields)
    assert platform_request(platform, body["submission_id"]) is None


def test_answers_and_files_are_reported_together(
    http: requests.Session, platform: RunningPlatform
) -> None:
    body = demo_submission(submission_id=new_item_id(), phone="12")
    body["attachments"] = [_entry(sha256="0" * 64)]
    answer = post(http, platform, body)
    assert answer.status_code == 422
    assert answer.json()["fields"] == [
        {"field": "phone", "code": "pattern"},
        {"field": "attachments.0", "code": "sha256"},
    ]


@pytest.mark.parametrize(
    "entry",
    [
        {k: v for k, v in _entry().items() if k != "sha256"},
        _entry(sha256="ABC"),
        _entry(size="9"),
        _entry(content_type="svg"),
        _entry(name=""),
        _entry(extra=1),
    ],
    ids=["no digest", "short digest", "size as text", "no MIME type", "no name", "unknown key"],
)
def test_a_malformed_entry_is_a_bad_request(
    http: requests.Session, platform: RunningPlatform, entry: dict[str, Any]
) -> None:
    body = {**demo_submission(submission_id=new_item_id()), "attachments": [entry]}
    answer = post(http, platform, body)
    assert (answer.status_code, answer.json()["error"]) == (400, "bad_request")


def test_a_batch_item_with_a_bad_file_is_refused_alone(
    http: requests.Session, platform: RunningPlatform
) -> None:
    good, bad = (demo_submission(submission_id=new_item_id()) for _ in range(2))
    good["attachments"] = [wire(f) for f in two_files(seed=7, photo_size=3_000)]
    bad["attachments"] = [_entry(sha256="0" * 64)]
    answer = http.post(
        f"{platform.base_url}{API_PREFIX}/submissions/batch",
        json={"submissions": [good, bad]},
        timeout=TIMEOUT,
    )
    results = answer.json()["results"]
    assert [(r["submission_id"], r["status"]) for r in results] == [
        (good["submission_id"], 201),
        (bad["submission_id"], 422),
    ]
    assert results[1]["body"]["fields"] == [{"field": "attachments.0", "code": "sha256"}]
    stored = platform_files(platform, good["submission_id"])
    assert stored == expected_files(two_files(seed=7, photo_size=3_000))


# -- the application's save path -----------------------------------------------------------------

APPLICANT = Identity(
    name=DEMO_APPLICANT["name"],
    sex=Sex.FEMALE,
    nation=DEMO_APPLICANT["nation"],
    birth_date=dt.date.fromisoformat(DEMO_APPLICANT["birth_date"]),
    address=DEMO_APPLICANT["address"],
    id_number=DEMO_APPLICANT["id_number"],
    issuing_authority="北京市公安局西城分局",
    valid_from=dt.date(2016, 5, 20),
    valid_until=None,
)


class RecordingPrinter:
    def __init__(self) -> None:
        self.printed: list[ReceiptDocument] = []

    def print_receipt(self, doc: ReceiptDocument) -> PrintResult:
        self.printed.append(doc)
        return PrintResult(PrintStatus.OK)


@pytest.mark.parametrize("sealed", [False, True], ids=["plain", "sealed"])
def test_the_submitter_saves_files_with_the_submission_and_they_are_delivered(
    tmp_path: Path,
    client: PlatformClient,
    platform: RunningPlatform,
    identity: TerminalIdentity,
    sealed: bool,
) -> None:
    catalogue = load_catalogue_file(DEMO_CATALOGUE)
    draft = Draft(
        service=catalogue.service("residence-permit"),
        identity=APPLICANT,
        answers=dict(DEMO_ANSWERS["residence-permit"]),
        catalogue_version=catalogue.version,
    )
    limits = AttachmentLimits(max_total_bytes=200_000)
    with Outbox(
        tmp_path / "outbox.db",
        load_or_create_key(tmp_path / "outbox.key"),
        attachment_limits=limits,
    ) as outbox:
        engine = SyncEngine(outbox, client)
        printer = RecordingPrinter()
        submitter = Submitter(
            config=Config(platform_url=platform.base_url, data_dir=tmp_path),
            outbox=outbox,
            uploader=engine,
            printer=printer,
            numbers=ReceiptNumbers(tmp_path / "receipt-counter.json", "K01"),
            # Sealed as a terminal built by build_parts seals: the files travel inside.
            seal_to=identity.enrolment.sealing_public_key() if sealed else None,
        )
        engine.start()
        try:
            files = two_files(seed=8)
            result = submitter.submit(draft, attachments=files)
            assert result.delivered
            assert platform_files(platform, result.submission_id) == expected_files(files)
            assert outbox_files(tmp_path / "outbox.db") == 0

            too_much = (*files, Attachment("more.png", "image/png", png(80_000, 9)))
            with pytest.raises(AttachmentsRefusedError) as caught:
                submitter.submit(draft, attachments=too_much)
        finally:
            assert engine.stop()
        assert isinstance(caught.value, SaveFailedError)  # callers that catch saves still do
        assert isinstance(caught.value.__cause__, AttachmentsTooLargeError)
        assert outbox.counts()[State.DELIVERED.value] == 1
        assert sum(outbox.counts().values()) == 1  # nothing of the refused one was stored
        assert len(printer.printed) == 1  # and no receipt says it was accepted
    set_language("zh_CN")
    assert caught.value.user_message().startswith("附件文件过大或数量过多")
    set_language("en")
    assert caught.value.user_message().startswith("The attached files are too large or too many")
