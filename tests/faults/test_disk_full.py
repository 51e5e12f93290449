"""A full data disk: every write fails cleanly and leaves nothing half-written behind.

Runs on a real 2 MiB tmpfs (tests/fixtures/tmpfs.py), filled to the last page with ballast.
"""

from __future__ import annotations

import datetime as dt
import errno
import json
import os
import sqlite3
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from devices.identity import Identity, Sex
from devices.printing import PrintResult, PrintStatus, ReceiptDocument
from kiosk.catalogue import load_catalogue_file
from kiosk.config import Config
from kiosk.receipt_numbers import CounterUnreadableError, ReceiptNumbers
from kiosk.session import Draft
from kiosk.submissions import SaveFailedError, Submitter
from offline_queue.errors import KeyFileError, OutboxFullError, StorageError
from offline_queue.keys import load_or_create_key, load_outbox_key
from offline_queue.outbox import Outbox, State
from offline_queue.recovery import open_outbox
from tests.fixtures.tmpfs import SmallDisk, small_disk

REPO = Path(__file__).resolve().parents[2]
CATALOGUE = REPO / "assets" / "catalogue" / "demo_catalogue.json"
KEY = bytes(range(32))
ROWS = 12
TODAY = dt.date(2026, 11, 23)


def payload(n: int) -> bytes:
    """A submission of realistic size (a few KB once photographed materials are referenced)."""
    return json.dumps({"n": n, "answers": {"note": "材料" * 700}}, ensure_ascii=False).encode()


def rows_on_disk(path: Path) -> list[tuple[str, str]]:
    """(id, state) of every row, read by a connection of its own, as a recovery tool would."""
    conn = sqlite3.connect(path)
    try:
        return [(r[0], r[1]) for r in conn.execute("SELECT id, state FROM outbox ORDER BY id")]
    finally:
        conn.close()


def integrity(path: Path) -> list[str]:
    conn = sqlite3.connect(path)
    try:
        return [str(r[0]) for r in conn.execute("PRAGMA integrity_check")]
    finally:
        conn.close()


def test_the_fixture_mounts_fills_and_unmounts(tmpfs_disk: SmallDisk) -> None:
    st = os.statvfs(tmpfs_disk.path)
    assert st.f_blocks * st.f_frsize == tmpfs_disk.size_bytes
    assert tmpfs_disk.free_bytes() == tmpfs_disk.size_bytes
    with tmpfs_disk.full() as left:
        assert left == 0
        with pytest.raises(OSError) as caught:
            (tmpfs_disk.path / "one-byte").write_bytes(b"x")
        assert caught.value.errno == errno.ENOSPC
    assert tmpfs_disk.free_bytes() == tmpfs_disk.size_bytes  # the ballast is gone
    assert (tmpfs_disk.path / "one-byte").stat().st_size == 0  # the refused write's empty file
    assert tmpfs_disk.fill(leave_bytes=64 * 1024) <= 64 * 1024
    tmpfs_disk.release()
    assert [p.name for p in tmpfs_disk.path.iterdir()] == ["one-byte"]


def test_the_namespace_fallback_gives_a_real_tmpfs(tmp_path: Path) -> None:
    """The fallback for machines that refuse mount(8), run in a process of its own because it
    moves that process into private namespaces for good."""
    script = textwrap.dedent(
        """
        import errno, os, sqlite3, sys
        from tests.fixtures.tmpfs import small_disk
        with small_disk(1024 * 1024, method="unshare") as disk:
            outside = open("/proc/1/mounts").read() if os.geteuid() == 0 else ""
            assert str(disk.path) not in outside, "the mount leaked into the host namespace"
            conn = sqlite3.connect(disk.path / "x.sqlite3", isolation_level=None)
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("CREATE TABLE t (x BLOB)")
            with disk.full():
                try:
                    conn.execute("INSERT INTO t VALUES (randomblob(20000))")
                except sqlite3.OperationalError as exc:
                    print(disk.method, exc)
            conn.close()
            mountpoint = disk.path
        print(mountpoint.exists())
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["unshare database or disk is full", "False"]


def test_enqueue_on_a_full_disk(tmpfs_disk: SmallDisk) -> None:
    path = tmpfs_disk.path / "outbox.sqlite3"
    box = Outbox(path, KEY)
    try:
        ids = [box.enqueue("submission", payload(n), f"summary {n}".encode()) for n in range(ROWS)]
        before = rows_on_disk(path)

        with tmpfs_disk.full():
            with pytest.raises(OutboxFullError) as caught:
                box.enqueue("submission", payload(99), b"summary 99", item_id="refused-item")
            assert caught.value.code == "storage_full"
            # The rows before are intact and readable; the refused one left no trace.
            assert box.counts()["queued"] == ROWS
            assert [box.get_summary(i) for i in ids] == [
                f"summary {n}".encode() for n in range(ROWS)
            ]
            assert box.state_of("refused-item") is None
            assert rows_on_disk(path) == before
            assert integrity(path) == ["ok"]
            # Closing and opening again while the disk is still full: the log is usable.
            box.close()
            reopened = open_outbox(path, KEY)
            box = reopened.outbox
            assert reopened.reason is None
            assert box.counts()["queued"] == ROWS

        # Space is back: the queue takes submissions again and kept the earlier ones.
        later = box.enqueue("submission", payload(100), b"summary 100")
        assert box.state_of(later) is State.QUEUED
        claimed = box.claim_next()
        assert claimed is not None and (claimed.id, claimed.payload) == (ids[0], payload(0))
    finally:
        box.close()
    assert sorted(i for i, _ in rows_on_disk(path)) == sorted([*ids, later])
    assert integrity(path) == ["ok"]


def test_a_new_outbox_on_a_full_disk_is_a_storage_error(tmpfs_disk: SmallDisk) -> None:
    path = tmpfs_disk.path / "outbox.sqlite3"
    with tmpfs_disk.full():
        with pytest.raises(StorageError) as caught:
            open_outbox(path, KEY)
        assert caught.value.code in ("storage_full", "storage_error")
        assert not any(QUARANTINE in p.name for p in tmpfs_disk.path.iterdir())
    opened = open_outbox(path, KEY)
    try:
        assert opened.reason is None
        opened.outbox.enqueue("submission", b"p", b"s")
    finally:
        opened.outbox.close()


QUARANTINE = ".corrupt-"


def test_no_key_file_is_left_half_written(tmpfs_disk: SmallDisk) -> None:
    folder = tmpfs_disk.path / "keys"
    folder.mkdir()
    key_file = folder / "outbox.key"
    with tmpfs_disk.full():
        with pytest.raises(KeyFileError) as caught:
            load_or_create_key(key_file)
        assert caught.value.code == "key_file"
        assert "No space left" in str(caught.value)
        assert list(folder.iterdir()) == []  # neither the key nor an empty temporary
        with pytest.raises(KeyFileError):
            load_outbox_key(tmpfs_disk.path / "outbox.sqlite3", key_file, "auto")
        assert list(folder.iterdir()) == []
    key = load_or_create_key(key_file)
    assert len(key) == 32
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert [p.name for p in folder.iterdir()] == ["outbox.key"]


# -- the application's save path --------------------------------------------------------------

PERSON = Identity(
    name="张秀英",
    sex=Sex.FEMALE,
    nation="汉",
    birth_date=dt.date(1952, 3, 8),
    address="北京市东城区景山前街4号院2号楼3单元101室",
    id_number="110101195203080021",
    issuing_authority="北京市公安局东城分局",
    valid_from=dt.date(2016, 5, 20),
    valid_until=None,
)


class RecordingUploader:
    def __init__(self) -> None:
        self.asked: list[str] = []

    def deliver_now(self, item_id: str, timeout_s: float) -> bool:
        self.asked.append(item_id)
        return False


class RecordingPrinter:
    def __init__(self) -> None:
        self.printed: list[ReceiptDocument] = []

    def print_receipt(self, doc: ReceiptDocument) -> PrintResult:
        self.printed.append(doc)
        return PrintResult(PrintStatus.OK)


def make_draft() -> Draft:
    catalogue = load_catalogue_file(CATALOGUE)
    service = catalogue.services[0]
    return Draft(
        service=service,
        identity=PERSON,
        answers={"phone": "13800138000"},
        catalogue_version=catalogue.version,
    )


def make_submitter(
    outbox: Outbox, counter: Path
) -> tuple[Submitter, RecordingUploader, RecordingPrinter]:
    uploader, printer = RecordingUploader(), RecordingPrinter()
    submitter = Submitter(
        config=Config(data_dir=counter.parent),
        outbox=outbox,
        uploader=uploader,
        printer=printer,
        numbers=ReceiptNumbers(counter, "K01"),
        now=lambda: dt.datetime(2026, 11, 23, 10, 15, tzinfo=dt.UTC),
    )
    return submitter, uploader, printer


def test_submitter_reports_save_failed_when_the_outbox_disk_is_full(
    tmpfs_disk: SmallDisk, tmp_path: Path
) -> None:
    box = Outbox(tmpfs_disk.path / "outbox.sqlite3", KEY)
    try:
        submitter, uploader, printer = make_submitter(box, tmp_path / "receipt-counter.json")
        first = submitter.submit(make_draft())
        with tmpfs_disk.full():
            with pytest.raises(SaveFailedError) as caught:
                submitter.submit(make_draft())
            assert isinstance(caught.value.__cause__, OutboxFullError)
            # Nothing was sent or printed for a submission that was not saved.
            assert uploader.asked == [first.submission_id]
            assert len(printer.printed) == 1
            assert box.counts()["queued"] == 1
        again = submitter.submit(make_draft())
        assert box.counts()["queued"] == 2
        assert again.receipt_number == "K01-20261123-0003"  # the refused one's number is unused
    finally:
        box.close()


def test_submitter_reports_save_failed_when_the_counter_disk_is_full(
    tmpfs_disk: SmallDisk,
) -> None:
    box = Outbox(tmpfs_disk.path / "outbox.sqlite3", KEY)
    counter = tmpfs_disk.path / "receipt-counter.json"
    try:
        submitter, uploader, _ = make_submitter(box, counter)
        submitter.submit(make_draft())
        saved = counter.read_bytes()
        with tmpfs_disk.full():
            with pytest.raises(SaveFailedError) as caught:
                submitter.submit(make_draft())
            assert isinstance(caught.value.__cause__, OSError)
            assert caught.value.__cause__.errno == errno.ENOSPC
            assert box.counts()["queued"] == 1
            assert counter.read_bytes() == saved
            assert len(uploader.asked) == 1
    finally:
        box.close()


def test_receipt_counter_survives_a_full_disk(tmpfs_disk: SmallDisk) -> None:
    counter = tmpfs_disk.path / "receipt-counter.json"
    numbers = ReceiptNumbers(counter, "K01")
    assert [numbers.next(TODAY) for _ in range(2)] == ["K01-20261123-0001", "K01-20261123-0002"]
    with tmpfs_disk.full():
        with pytest.raises(OSError) as caught:
            numbers.next(TODAY)
        assert caught.value.errno == errno.ENOSPC
        # The counter itself was never touched: the new value goes to a temporary first,
        # and the temporary does not outlive the failure.
        assert json.loads(counter.read_text(encoding="utf-8")) == {"20261123": 2}
        assert sorted(p.name for p in tmpfs_disk.path.iterdir() if "counter" in p.name) == [
            "receipt-counter.json"
        ]
    # The failed call handed out no number, so the sequence goes on without a duplicate.
    assert numbers.next(TODAY) == "K01-20261123-0003"
    assert json.loads(counter.read_text(encoding="utf-8")) == {"20261123": 3}


def test_a_damaged_counter_hands_out_no_number(tmp_path: Path) -> None:
    counter = tmp_path / "receipt-counter.json"
    numbers = ReceiptNumbers(counter, "K01")
    assert numbers.next(TODAY) == "K01-20261123-0001"
    counter.write_bytes(b'{"20261123": ')  # damaged: restarting at 0001 would repeat a number
    with pytest.raises(CounterUnreadableError):
        numbers.next(TODAY)
    assert counter.read_bytes() == b'{"20261123": '  # left for staff to look at


def test_small_disk_is_a_plain_context_manager() -> None:
    """Other tests (the citizen-facing message) use it without the fixture."""
    with small_disk(1024 * 1024) as disk:
        mountpoint = disk.path
        with disk.full() as left:
            assert left == 0
        assert disk.free_bytes() == 1024 * 1024
    assert not mountpoint.exists()
    with open("/proc/self/mounts", encoding="utf-8") as fh:
        assert str(mountpoint) not in fh.read()
