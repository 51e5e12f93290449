"""Recovering a set-aside outbox: every undelivered submission that can be read reaches the real
platform exactly once, under its own id, and recovering twice adds nothing.

The damaged outbox is made the way the terminal makes one: a real outbox with rows in every state
is closed, set aside by recovery.quarantine, and one of its table pages is overwritten.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import random
import shutil
import sqlite3
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from kiosk.app import recover_outbox
from kiosk.config import Config
from kiosk.i18n import set_language
from kiosk.sync import SUBMISSION_KIND, SyncEngine
from kiosk.sync_messages import describe_salvage
from kiosk.terminal_auth import load_identity
from offline_queue.errors import SalvageSourceError, WrongKeyError
from offline_queue.keys import load_or_create_key
from offline_queue.outbox import Attachment, Outbox, State, new_item_id
from offline_queue.recovery import quarantine
from offline_queue.salvage import RECOVERED_MARK, recover_set_aside
from refplatform.server import RunningPlatform
from tests.fixtures.child import run_child
from tests.fixtures.platform import client_for, demo_submission, enrol_terminal

START = 1_700_000_000.0  # 2023-11-14 22:13:20 UTC: rows made then are due now
PAGE = 4096
FILLERS = 16


class Clock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> float:
        self.now += 1.0  # every row its own second: the sending order is the creation order
        return self.now


@dataclass
class Scenario:
    """The terminal's data directory with a damaged outbox set aside in it."""

    config: Config
    key: bytes
    set_aside: Path
    bodies: dict[str, dict[str, Any]] = field(default_factory=dict)
    files: dict[str, list[Attachment]] = field(default_factory=dict)
    delivered: list[str] = field(default_factory=list)  # delivered and marked before the damage
    unacknowledged: str = ""  # the platform has it; the outbox never heard back
    sending: str = ""
    rejected: str = ""
    fillers: list[str] = field(default_factory=list)  # plain queued rows
    damaged: set[str] = field(default_factory=set)  # on the overwritten page
    already_live: str = ""  # a filler the new outbox holds already
    new_in_live: str = ""  # taken by the new outbox after the damage


def _enqueue(
    box: Outbox,
    scenario: Scenario,
    number: int,
    service: str = "residence-permit",
    files: list[Attachment] | None = None,
) -> str:
    sid = new_item_id()
    body = demo_submission(service, submission_id=sid)
    body["receipt_number"] = f"K01-20231114-{number:04d}"
    box.enqueue(
        SUBMISSION_KIND,
        json.dumps(body, ensure_ascii=False).encode(),
        json.dumps({"receipt_number": body["receipt_number"]}).encode(),
        item_id=sid,
        attachments=files or (),
    )
    scenario.bodies[sid] = body
    scenario.files[sid] = files or []
    return sid


def _table_leaf_with(data: bytes, item_id: str) -> int:
    """The page number of the one table leaf page that holds item_id."""
    pages = [
        n
        for n in range(1, len(data) // PAGE)
        if data[n * PAGE] == 0x0D and item_id.encode() in data[n * PAGE : (n + 1) * PAGE]
    ]
    assert len(pages) == 1, pages
    return pages[0]


def build(tmp_path: Path, platform: RunningPlatform) -> Scenario:
    data = tmp_path / "data"
    data.mkdir()
    config = Config(data_dir=data, platform_url=platform.base_url, outbox_key_store="file")
    key = load_or_create_key(config.key_path)
    scenario = Scenario(config=config, key=key, set_aside=Path())
    clock = Clock()
    client = client_for(platform, enrol_terminal(platform, data))  # the terminal's own enrolment
    try:
        with Outbox(config.outbox_path, key, clock=clock) as box:
            scenario.delivered = [_enqueue(box, scenario, n) for n in (1, 2)]
            scenario.rejected = _enqueue(box, scenario, 3, service="no-such-service")
            assert SyncEngine(box, client, clock=clock).drain_once() == 2  # delivered
            assert [box.state_of(i) for i in scenario.delivered] == [State.DELIVERED] * 2
            assert box.state_of(scenario.rejected) is State.REJECTED
            # Sent, and the platform stored it, but the answer never reached the outbox.
            scenario.unacknowledged = _enqueue(box, scenario, 4)
            sent = client.submit(scenario.unacknowledged, scenario.bodies[scenario.unacknowledged])
            assert sent.delivered
            scenario.sending = _enqueue(box, scenario, 5)
            assert [i.id for i in box.claim_batch(1, ids=[scenario.sending])] == [scenario.sending]
            scan = [Attachment("scan.png", "image/png", b"\x89PNG" + os.urandom(3000))]
            sign = [Attachment("signature.svg", "image/svg+xml", b"<svg/>")]
            for n in range(FILLERS):
                files = scan + sign if n == 1 else None
                scenario.fillers.append(_enqueue(box, scenario, 10 + n, files=files))
            assert box.counts() == {
                "queued": FILLERS + 1,
                "sending": 1,
                "delivered": 2,
                "rejected": 1,
                "needs_attention": 0,
            }
    finally:
        client.close()

    # The terminal's start finds it damaged and sets it aside; then a page goes bad in it.
    moved = quarantine(config.outbox_path, clock)
    scenario.set_aside = next(p for p in moved if p.name.endswith("Z"))
    raw = bytearray(scenario.set_aside.read_bytes())
    target = scenario.fillers[FILLERS // 2]
    page = _table_leaf_with(bytes(raw), target)
    content = bytes(raw[page * PAGE : (page + 1) * PAGE])
    scenario.damaged = {sid for sid in scenario.bodies if sid.encode() in content}
    raw[page * PAGE : (page + 1) * PAGE] = random.Random(7).randbytes(PAGE)  # noqa: S311 - damage
    scenario.set_aside.write_bytes(bytes(raw))
    special = {scenario.unacknowledged, scenario.sending, scenario.rejected, *scenario.delivered}
    assert scenario.damaged and not scenario.damaged & special
    assert not scenario.damaged & {scenario.fillers[0], scenario.fillers[1]}

    # A fresh outbox took over: one new submission, and one old one staff had queued again.
    with Outbox(config.outbox_path, key, clock=clock) as live:
        scenario.new_in_live = _enqueue(live, scenario, 90)
        scenario.already_live = scenario.fillers[0]
        body = scenario.bodies[scenario.already_live]
        live.enqueue(
            SUBMISSION_KIND,
            json.dumps(body, ensure_ascii=False).encode(),
            b'{"receipt_number": "kept as it was"}',
            item_id=scenario.already_live,
        )
    return scenario


@pytest.fixture
def scenario(tmp_path: Path, platform_server: RunningPlatform) -> Scenario:
    return build(tmp_path, platform_server)


def platform_rows(platform: RunningPlatform) -> dict[str, tuple[str, int]]:
    """Per submission the platform holds: (receipt number, how many times it was received)."""
    with contextlib.closing(sqlite3.connect(platform.db_path)) as db:
        rows = db.execute(
            "SELECT s.submission_id, s.receipt_number,"
            " (SELECT COUNT(*) FROM history h WHERE h.submission_id = s.submission_id"
            "  AND h.status = 'received')"
            " FROM submissions s"
        ).fetchall()
    return {str(r[0]): (str(r[1]), int(r[2])) for r in rows}


def platform_files(platform: RunningPlatform, sid: str) -> list[tuple[str, str]]:
    with contextlib.closing(sqlite3.connect(platform.db_path)) as db:
        rows = db.execute(
            "SELECT name, sha256 FROM attachments WHERE submission_id = ? ORDER BY ordinal", (sid,)
        ).fetchall()
    return [(str(r[0]), str(r[1])) for r in rows]


def drain(config: Config, key: bytes, platform: RunningPlatform) -> dict[str, int]:
    """Everything the terminal of config.data_dir (enrolled there) still has, sent."""
    client = client_for(platform, load_identity(config.data_dir, platform.base_url))
    try:
        with Outbox(config.outbox_path, key) as box:
            engine = SyncEngine(box, client)
            for _ in range(10):
                engine.drain_once()
                if box.pending_count() == 0:
                    break
            return box.counts()
    finally:
        client.close()


def test_recovered_submissions_reach_the_platform_exactly_once(
    scenario: Scenario, platform_server: RunningPlatform
) -> None:
    on_platform_before = platform_rows(platform_server)
    assert set(on_platform_before) == {*scenario.delivered, scenario.unacknowledged}

    result = recover_outbox(scenario.config, scenario.set_aside)

    readable_fillers = [f for f in scenario.fillers[1:] if f not in scenario.damaged]
    requeued = {scenario.unacknowledged, scenario.sending, scenario.rejected, *readable_fillers}
    assert set(result.recovered) == requeued
    assert len(result.recovered) == len(requeued)
    assert result.already_present == (scenario.already_live,)
    assert result.delivered == len(scenario.delivered)
    assert result.unreadable == len(scenario.damaged)
    # Renamed with its companions, so nobody recovers it again by mistake; nothing deleted.
    assert not scenario.set_aside.exists()
    renamed = result.renamed_to
    assert renamed is not None and renamed.exists()
    assert renamed.name.startswith(scenario.set_aside.name + RECOVERED_MARK)
    # Reading it added nothing beside it (a read-only open makes an empty -wal and a -shm).
    assert [p.name for p in scenario.config.data_dir.glob(scenario.set_aside.name + "*")] == [
        renamed.name
    ]

    with Outbox(scenario.config.outbox_path, scenario.key) as live:
        assert live.get_summary(scenario.already_live) == b'{"receipt_number": "kept as it was"}'
        for sid in requeued:
            assert live.state_of(sid) is State.QUEUED
            expected = json.dumps({"receipt_number": scenario.bodies[sid]["receipt_number"]})
            assert live.get_summary(sid) == expected.encode()
        for sid in [*scenario.delivered, *scenario.damaged]:
            assert live.state_of(sid) is None
        # Oldest first, as before the damage: the recovered rows go before the new one.
        waiting = [i.id for i in live.items(limit=100, states=[State.QUEUED])]
        assert max(waiting.index(sid) for sid in requeued) < waiting.index(scenario.new_in_live)

    counts = drain(scenario.config, scenario.key, platform_server)
    assert counts["queued"] == counts["sending"] == 0
    assert counts["rejected"] == 1  # the refused one is refused again, kept for staff
    on_platform = platform_rows(platform_server)
    arrived = {
        *scenario.delivered,
        scenario.unacknowledged,
        scenario.sending,
        scenario.already_live,
        scenario.new_in_live,
        *readable_fillers,
    }
    assert set(on_platform) == arrived
    assert all(times == 1 for _, times in on_platform.values()), on_platform
    numbers = [number for number, _ in on_platform.values()]
    assert len(numbers) == len(set(numbers))  # no submission twice under another id
    assert counts["delivered"] == len(arrived) - len(scenario.delivered)
    with_files = scenario.fillers[1]
    assert platform_files(platform_server, with_files) == [
        (f.name, hashlib.sha256(f.data).hexdigest()) for f in scenario.files[with_files]
    ]

    # Recovering the same file again adds nothing, and the platform gets nothing new.
    again = recover_outbox(scenario.config, renamed)
    assert again.recovered == ()
    assert set(again.already_present) == requeued | {scenario.already_live}
    assert (again.delivered, again.unreadable) == (result.delivered, result.unreadable)
    assert again.renamed == () and renamed.exists()  # its name says it was recovered already
    assert drain(scenario.config, scenario.key, platform_server) == counts
    assert platform_rows(platform_server) == on_platform


def test_a_set_aside_outbox_with_its_log_is_read_with_the_log(
    tmp_path: Path, platform_server: RunningPlatform
) -> None:
    """A crash image: the rows committed only to the -wal beside the set-aside file count too."""
    live_dir, image_dir = tmp_path / "live", tmp_path / "image"
    live_dir.mkdir()
    image_dir.mkdir()
    key = load_or_create_key(image_dir / "outbox.key")
    scenario = Scenario(config=Config(data_dir=image_dir), key=key, set_aside=Path())
    with Outbox(live_dir / "outbox.sqlite3", key) as box:
        ids = [_enqueue(box, scenario, n) for n in range(30)]
        for tail in ("", "-wal"):
            shutil.copyfile(live_dir / f"outbox.sqlite3{tail}", image_dir / f"outbox.sqlite3{tail}")
    moved = quarantine(image_dir / "outbox.sqlite3")
    set_aside = next(p for p in moved if not p.name.endswith("-wal"))
    assert sorted(p.name for p in moved) == [set_aside.name, set_aside.name + "-wal"]
    with contextlib.closing(sqlite3.connect(f"file:{set_aside}?immutable=1", uri=True)) as db:
        tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master")}
        seen = db.execute("SELECT COUNT(*) FROM outbox").fetchone()[0] if "outbox" in tables else 0
    assert seen < len(ids)  # without its log the file lacks rows

    with Outbox(image_dir / "outbox.sqlite3", key) as fresh:
        result = recover_set_aside(set_aside, fresh, key)
        assert sorted(result.recovered) == sorted(ids)
        assert result.unreadable == 0
    new_name = result.renamed_to
    assert new_name is not None and new_name.name.startswith(set_aside.name + RECOVERED_MARK)
    assert new_name.with_name(new_name.name + "-wal") in result.renamed  # the log went with it
    assert not any(image_dir.glob(f"{set_aside.name}-*"))
    enrol_terminal(platform_server, image_dir)
    counts = drain(Config(data_dir=image_dir), key, platform_server)
    assert counts["delivered"] == len(ids)
    assert set(platform_rows(platform_server)) == set(ids)


def test_a_file_of_another_terminal_is_refused_untouched(tmp_path: Path) -> None:
    other = tmp_path / "other" / "outbox.sqlite3"
    other.parent.mkdir()
    with Outbox(other, bytes(32)) as box:
        box.enqueue("submission", b"p", b"s")
    set_aside = quarantine(other)[-1]
    before = set_aside.read_bytes()
    data = tmp_path / "data"
    with pytest.raises(WrongKeyError):
        recover_outbox(Config(data_dir=data, outbox_key_store="file"), set_aside)
    assert set_aside.read_bytes() == before


@pytest.mark.parametrize("what", ["garbage", "missing", "live"])
def test_what_is_not_a_set_aside_outbox_is_refused(tmp_path: Path, what: str) -> None:
    config = Config(data_dir=tmp_path / "data", outbox_key_store="file")
    source = {
        "garbage": tmp_path / "outbox.sqlite3.corrupt-20270115T080000Z",
        "missing": tmp_path / "nothing-here",
        "live": config.outbox_path,
    }[what]
    if what == "garbage":
        source.write_bytes(b"not a database " * 400)
    if what == "live":
        config.data_dir.mkdir()
        with Outbox(config.outbox_path, load_or_create_key(config.key_path)) as box:
            box.enqueue("submission", b"p", b"s")
    with pytest.raises(SalvageSourceError) as caught:
        recover_outbox(config, source)
    assert caught.value.code == "salvage_source"
    if what != "missing":
        assert source.exists()
        assert not list(source.parent.glob(f"*{RECOVERED_MARK}*"))


# -- the command staff run: python main.py --recover-outbox PATH ------------------------------


def run_command(scenario: Scenario, *extra: str) -> subprocess.CompletedProcess[str]:
    script = (
        "import sys, main\n"
        "code = main.main(sys.argv[1:])\n"
        "print('qt-loaded' if any(m.startswith('PySide6') for m in sys.modules) else 'no-qt')\n"
        "sys.exit(code)\n"
    )
    return run_child(
        [
            "-c",
            script,
            "--config",
            str(scenario.config.data_dir / "absent.toml"),
            "--data-dir",
            str(scenario.config.data_dir),
            "--recover-outbox",
            str(scenario.set_aside),
            *extra,
        ],
        timeout=90,
    )


def test_the_command_prints_the_summary_in_the_terminals_language(scenario: Scenario) -> None:
    done = run_command(scenario, "--language", "en")
    lines = done.stdout.splitlines()
    assert done.returncode == 3, done.stderr  # done, but some rows could not be read
    assert lines[-1] == "no-qt"  # recovery needs no Qt and starts no UI
    readable = FILLERS - 1 - len(scenario.damaged) + 3
    assert lines[0] == (
        f"Recovered from {scenario.set_aside.name}: {readable} application(s) queued for upload"
        f" again, 1 already in the queue, 2 delivered before the damage,"
        f" {len(scenario.damaged)} could not be read."
    )
    assert lines[1].startswith(f"The file was renamed to {scenario.set_aside.name}.recovered-")
    assert "technical support" in lines[2]
    assert not scenario.set_aside.exists()


def test_the_command_speaks_chinese_by_default(scenario: Scenario) -> None:
    done = run_command(scenario)
    assert done.returncode == 3, done.stderr
    readable = FILLERS - 1 - len(scenario.damaged) + 3
    assert done.stdout.startswith(
        f"已从 {scenario.set_aside.name} 恢复：{readable} 份申请重新排队等待上传"
    )


def test_the_command_refuses_while_the_terminal_runs(scenario: Scenario) -> None:
    with Outbox(scenario.config.outbox_path, scenario.key) as running_terminal:
        done = run_command(scenario, "--language", "en")
        assert running_terminal.pending_count() == 2  # nothing was added behind its back
    assert done.returncode == 1
    assert "the terminal program is running" in done.stderr
    assert "(Code: outbox_locked)" in done.stderr
    assert scenario.set_aside.exists()  # not renamed: nothing was recovered
    assert run_command(scenario).returncode == 3  # once the terminal is closed, it goes ahead


def test_the_summary_names_the_new_file(scenario: Scenario) -> None:
    result = recover_outbox(scenario.config, scenario.set_aside)
    set_language("en")
    text = describe_salvage(result)
    assert result.renamed_to is not None
    assert f"renamed to {result.renamed_to.name}" in text
