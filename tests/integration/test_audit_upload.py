"""The terminal's audit log goes to the reference platform over real HTTP on 127.0.0.1, and the
platform keeps a copy it has checked entry by entry against the terminal's enrolled key."""

from __future__ import annotations

import json
import logging
import shutil
import sqlite3
import uuid
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest
import requests

from kiosk.audit_log import (
    AUDIT_FILE,
    SIDECARS,
    AuditEntry,
    AuditKind,
    AuditLog,
    entry_hash,
    open_audit_log,
    verify,
)
from kiosk.audit_upload import AUDIT_FORK, AUDIT_REFUSED, UPLOADED_SEQ, AuditUploader
from kiosk.i18n import set_language
from kiosk.platform_client import MAX_AUDIT_BATCH, OutcomeKind, PlatformClient, SubmitOutcome
from kiosk.sync import SyncEngine
from kiosk.sync_messages import describe_error
from kiosk.terminal_auth import TerminalIdentity
from kiosk.trust import key_id, raw_public_bytes
from offline_queue.keys import load_or_create_key
from offline_queue.outbox import Outbox
from refplatform.audit import AuditStore
from refplatform.server import RunningPlatform
from tests.fixtures.platform import enrol_terminal

API = "/api/v1/audit"


class Counting:
    """A sender that passes every upload on and remembers what it carried."""

    def __init__(self, client: PlatformClient) -> None:
        self.client = client
        self.batches: list[list[int]] = []

    def send_audit(self, entries: Sequence[Mapping[str, Any]]) -> SubmitOutcome:
        self.batches.append([int(entry["seq"]) for entry in entries])
        return self.client.send_audit(entries)


class Terminal:
    def __init__(self, platform: RunningPlatform, data_dir: Path, terminal_id: str) -> None:
        self.data_dir = data_dir
        self.identity: TerminalIdentity = enrol_terminal(platform, data_dir, terminal_id)
        ca = str(self.identity.ca_path) if self.identity.ca_path is not None else None
        self.client = PlatformClient(platform.base_url, auth=self.identity.auth(), ca_path=ca)
        self.sender = Counting(self.client)
        self.log = open_audit_log(data_dir, self.identity.key)
        self.uploader = AuditUploader(self.log, self.sender)
        LOG_KEYS[terminal_id] = key_id(raw_public_bytes(self.identity.key.public_key()))

    @property
    def terminal_id(self) -> str:
        return self.identity.terminal_id

    def reopen(self) -> None:
        self.log.close()
        self.log = open_audit_log(self.data_dir, self.identity.key)
        self.uploader = AuditUploader(self.log, self.sender)

    def close(self) -> None:
        self.log.close()
        self.client.close()


@pytest.fixture
def k01(platform_server: RunningPlatform, tmp_path: Path) -> Iterator[Terminal]:
    terminal = Terminal(platform_server, tmp_path / "k01", "K01")
    yield terminal
    terminal.close()


LOG_KEYS: dict[str, str] = {}  # terminal id -> the id of the key its current log is signed by


def held(platform: RunningPlatform, terminal_id: str) -> list[dict[str, Any]]:
    return AuditStore(platform.db_path).entries(terminal_id, LOG_KEYS[terminal_id])


def write_some(log: AuditLog, count: int, staff: str = "S0012") -> list[AuditEntry]:
    entries = [log.append(AuditKind.SIGN_IN, staff)]
    for _ in range(count - 2):
        entries.append(
            log.append(AuditKind.SUBMISSION, staff, {"submission_id": str(uuid.uuid4())})
        )
    entries.append(log.append(AuditKind.SIGN_OUT, staff))
    return entries[:count]


def as_sent(log: AuditLog) -> list[dict[str, Any]]:
    return [entry.to_json() for entry in log.entries(0, 10_000)]


# --- uploading ---------------------------------------------------------------------------------


def test_new_entries_are_uploaded_and_the_platform_holds_the_same(
    k01: Terminal, platform_server: RunningPlatform
) -> None:
    write_some(k01.log, 5)
    result = k01.uploader.upload()
    assert (result.sent, result.uploaded_seq, result.error_code) == (5, 5, None)
    assert k01.uploader.uploaded_seq() == 5
    assert held(platform_server, "K01") == as_sent(k01.log)
    write_some(k01.log, 3)
    assert k01.uploader.upload().sent == 3
    assert held(platform_server, "K01") == as_sent(k01.log)
    assert [entry["seq"] for entry in held(platform_server, "K01")] == list(range(1, 9))
    assert k01.sender.batches == [[1, 2, 3, 4, 5], [6, 7, 8]]


def test_a_backlog_goes_in_batches(k01: Terminal, platform_server: RunningPlatform) -> None:
    write_some(k01.log, 7)
    uploader = AuditUploader(k01.log, k01.sender, batch_size=3)
    assert uploader.upload().sent == 7
    assert k01.sender.batches == [[1, 2, 3], [4, 5, 6], [7]]
    assert held(platform_server, "K01") == as_sent(k01.log)


def test_the_batch_size_is_capped() -> None:
    with pytest.raises(ValueError, match="batch_size"):
        AuditUploader(None, None, batch_size=MAX_AUDIT_BATCH + 1)  # type: ignore[arg-type]


def test_uploading_again_sends_nothing_new(
    k01: Terminal, platform_server: RunningPlatform
) -> None:
    write_some(k01.log, 4)
    k01.uploader.upload()
    requests_before = len(k01.sender.batches)
    result = k01.uploader.upload()
    assert (result.sent, result.uploaded_seq, result.error_code) == (0, 4, None)
    assert len(k01.sender.batches) == requests_before


def test_a_repeat_of_what_the_platform_holds_is_harmless(
    k01: Terminal, platform_server: RunningPlatform
) -> None:
    write_some(k01.log, 4)
    k01.uploader.upload()
    # The answer was lost: the mark never moved, and everything goes again.
    with sqlite3.connect(k01.log.path) as db:
        db.execute("UPDATE meta SET value = '1' WHERE name = ?", (UPLOADED_SEQ,))
    db.close()
    write_some(k01.log, 2)
    result = k01.uploader.upload()
    assert (result.sent, result.uploaded_seq, result.error_code) == (5, 6, None)
    assert k01.sender.batches[-1] == [2, 3, 4, 5, 6]
    assert held(platform_server, "K01") == as_sent(k01.log)
    # A repeat of all of it, straight to the platform: answered as before, nothing added.
    outcome = k01.client.send_audit(as_sent(k01.log))
    assert outcome.delivered, outcome
    assert outcome.response == {"terminal_id": "K01", "last_seq": 6}
    assert len(held(platform_server, "K01")) == 6


def test_the_mark_is_kept_in_the_audit_database(k01: Terminal) -> None:
    write_some(k01.log, 3)
    k01.uploader.upload()
    k01.reopen()
    assert k01.uploader.uploaded_seq() == 3
    with sqlite3.connect(k01.log.path) as db:
        row = db.execute("SELECT value FROM meta WHERE name = ?", (UPLOADED_SEQ,)).fetchone()
    db.close()
    assert row == ("3",)
    assert (k01.log.path.stat().st_mode & 0o777) == 0o600


def test_nothing_is_marked_while_the_platform_is_away(k01: Terminal) -> None:
    write_some(k01.log, 3)
    away = PlatformClient("http://127.0.0.1:9", auth=k01.identity.auth(), timeout=(1.0, 1.0))
    try:
        result = AuditUploader(k01.log, away).upload()
    finally:
        away.close()
    assert (result.sent, result.uploaded_seq, result.stopped) == (0, 0, False)
    assert result.offline
    assert k01.uploader.uploaded_seq() == 0


# --- an edited log -----------------------------------------------------------------------------


def rewrite_entry(path: Path, seq: int, staff: str, *, rehash: bool) -> None:
    """What a thief with the file, but not the key, can do: change an entry, and its hash."""
    with sqlite3.connect(path) as db:
        db.execute("DROP TRIGGER entries_append_only_UPDATE")
        time, kind, details, prev = db.execute(
            "SELECT time, kind, details, prev_hash FROM entries WHERE seq = ?", (seq,)
        ).fetchone()
        db.execute("UPDATE entries SET staff = ? WHERE seq = ?", (staff, seq))
        if rehash:
            digest = entry_hash(seq, time, kind, staff, json.loads(details), prev)
            db.execute("UPDATE entries SET hash = ? WHERE seq = ?", (digest, seq))
    db.close()


@pytest.mark.parametrize(("rehash", "reason"), [(False, "hash"), (True, "signature")])
def test_an_edited_entry_is_refused_and_reported(
    k01: Terminal,
    platform_server: RunningPlatform,
    caplog: pytest.LogCaptureFixture,
    rehash: bool,
    reason: str,
) -> None:
    write_some(k01.log, 2)
    k01.uploader.upload()
    write_some(k01.log, 3)
    rewrite_entry(k01.log.path, 4, "S9999", rehash=rehash)
    caplog.set_level(logging.ERROR, logger="kiosk.audit_upload")
    result = k01.uploader.upload()
    assert (result.error_code, result.stopped, result.seq) == (AUDIT_REFUSED, True, 4)
    assert result.uploaded_seq == 2
    assert any("refused entry 4" in r.getMessage() for r in caplog.records)
    # The platform kept what verified, up to the edit, and nothing after it.
    assert [e["seq"] for e in held(platform_server, "K01")] == [1, 2, 3]
    assert all(e["staff"] == "S0012" for e in held(platform_server, "K01"))
    # Its answer names the entry and why.
    outcome = k01.client.send_audit(as_sent(k01.log)[3:])
    assert (outcome.kind, outcome.http_status) == (OutcomeKind.REJECTED, 422)
    assert outcome.response is not None
    assert (outcome.response["seq"], outcome.response["reason"]) == (4, reason)
    # Uploading has stopped: nothing more is sent.
    sent = len(k01.sender.batches)
    assert k01.uploader.upload().error_code == AUDIT_REFUSED
    assert len(k01.sender.batches) == sent


# --- a log put back to an older copy -----------------------------------------------------------


def copy_log(data_dir: Path, to: Path) -> None:
    to.mkdir()
    for tail in ("", *SIDECARS):
        source = data_dir / (AUDIT_FILE + tail)
        if source.exists():
            shutil.copy2(source, to / source.name)


def restore_log(backup: Path, data_dir: Path) -> None:
    for tail in ("", *SIDECARS):
        (data_dir / (AUDIT_FILE + tail)).unlink(missing_ok=True)
        source = backup / (AUDIT_FILE + tail)
        if source.exists():
            shutil.copy2(source, data_dir / source.name)


@pytest.fixture
def rolled_back(k01: Terminal, platform_server: RunningPlatform, tmp_path: Path) -> Terminal:
    """K01's log uploaded up to 4, then put back to its copy at 2 and written on from there."""
    write_some(k01.log, 2)
    k01.uploader.upload()
    k01.log.close()
    copy_log(k01.data_dir, tmp_path / "backup")
    k01.reopen()
    write_some(k01.log, 2, staff="S0077")
    assert k01.uploader.upload().uploaded_seq == 4
    k01.log.close()
    restore_log(tmp_path / "backup", k01.data_dir)
    k01.reopen()
    k01.log.append(AuditKind.REPRINT, "S0012", {"copies": 1})
    k01.log.append(AuditKind.EXPORT, "S0012", {"count": 3})
    return k01


def test_a_rolled_back_log_is_a_fork(
    rolled_back: Terminal, platform_server: RunningPlatform
) -> None:
    before = held(platform_server, "K01")
    # Nothing at the terminal can tell: the old copy is whole, every entry signed.
    assert verify(rolled_back.log.path, rolled_back.identity.key.public_key()).ok
    result = rolled_back.uploader.upload()
    assert (result.error_code, result.stopped, result.seq) == (AUDIT_FORK, True, 3)
    assert held(platform_server, "K01") == before  # the platform's copy stands
    outcome = rolled_back.client.send_audit(as_sent(rolled_back.log)[2:])
    assert (outcome.kind, outcome.http_status, outcome.error_code) == (
        OutcomeKind.CONFLICT,
        409,
        AUDIT_FORK,
    )


def test_a_fork_is_reported_to_staff_through_the_sync_status(
    rolled_back: Terminal, platform_server: RunningPlatform, tmp_path: Path
) -> None:
    outbox = Outbox(tmp_path / "outbox.db", load_or_create_key(tmp_path / "outbox.key"))
    engine = SyncEngine(outbox, rolled_back.client, audit_uploader=rolled_back.uploader)
    try:
        engine.drain_once()
        status = engine.status()
    finally:
        outbox.close()
    assert status.last_error == AUDIT_FORK
    set_language("en")
    assert "older copy" in describe_error(status.last_error)
    set_language("zh_CN")
    try:
        assert "较早的副本" in describe_error(status.last_error)
    finally:
        set_language("en")


def test_the_sync_engine_uploads_once_per_drain(
    k01: Terminal, platform_server: RunningPlatform, tmp_path: Path
) -> None:
    write_some(k01.log, 3)
    outbox = Outbox(tmp_path / "outbox.db", load_or_create_key(tmp_path / "outbox.key"))
    engine = SyncEngine(outbox, k01.client)
    engine.set_audit_uploader(k01.uploader)
    try:
        engine.drain_once()
        status = engine.status()
    finally:
        outbox.close()
    assert status.last_error is None
    assert k01.sender.batches == [[1, 2, 3]]
    assert held(platform_server, "K01") == as_sent(k01.log)


# --- whose log ---------------------------------------------------------------------------------


def test_another_terminal_cannot_upload_into_this_log(
    k01: Terminal, platform_server: RunningPlatform, tmp_path: Path
) -> None:
    write_some(k01.log, 3)
    k01.uploader.upload()
    k02 = Terminal(platform_server, tmp_path / "k02", "K02")
    try:
        # K01's own entries, sent by K02: they are taken as K02's, and K02 did not sign them.
        forged = k02.client.send_audit(as_sent(k01.log))
        assert (forged.kind, forged.http_status) == (OutcomeKind.REJECTED, 422)
        assert forged.response is not None and forged.response["reason"] == "signature"
        # Naming K01 in the body is no way round: the body has no such member.
        with requests.Session() as session:
            session.auth = k02.identity.auth()
            answer = session.post(
                f"{platform_server.base_url}{API}",
                json={"terminal_id": "K01", "entries": as_sent(k01.log)},
                timeout=10,
            )
        assert answer.status_code == 400, answer.text
        # K02's own log goes into K02's copy only.
        write_some(k02.log, 2)
        assert k02.uploader.upload().sent == 2
    finally:
        k02.close()
    assert held(platform_server, "K01") == as_sent(k01.log)
    assert [e["staff"] for e in held(platform_server, "K02")] == ["S0012", "S0012"]
    assert len(held(platform_server, "K01")) == 3


def test_an_unsigned_upload_is_refused(k01: Terminal, platform_server: RunningPlatform) -> None:
    write_some(k01.log, 2)
    answer = requests.post(
        f"{platform_server.base_url}{API}", json={"entries": as_sent(k01.log)}, timeout=10
    )
    assert answer.status_code == 401
    assert held(platform_server, "K01") == []


def test_a_terminal_enrolled_again_starts_a_log_of_its_own(
    k01: Terminal, platform_server: RunningPlatform, tmp_path: Path
) -> None:
    write_some(k01.log, 3)
    k01.uploader.upload()
    first_key = LOG_KEYS["K01"]
    first = held(platform_server, "K01")
    again = Terminal(platform_server, tmp_path / "k01-again", "K01")  # a new key, the same id
    try:
        write_some(again.log, 2, staff="S0034")
        result = again.uploader.upload()
    finally:
        again.close()
    assert (result.sent, result.uploaded_seq, result.error_code) == (2, 2, None)
    assert [e["staff"] for e in held(platform_server, "K01")] == ["S0034", "S0034"]
    assert AuditStore(platform_server.db_path).entries("K01", first_key) == first
