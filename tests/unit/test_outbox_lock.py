"""One process per outbox: a second process is refused with a stable code, and a dead holder
(killed, not closed) holds nothing."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from kiosk.i18n import set_language
from kiosk.sync_messages import describe_startup_failure
from offline_queue.errors import OutboxError, OutboxLockedError
from offline_queue.lock import lock_path
from offline_queue.outbox import Outbox, State
from offline_queue.recovery import open_outbox

REPO = Path(__file__).resolve().parents[2]
KEY = bytes(range(32))
WAIT_S = 30.0

# Opens the outbox, says so, and keeps it open until its stdin closes.
HOLDER = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from offline_queue.outbox import Outbox

    box = Outbox(Path(sys.argv[1]), bytes(range(32)))
    box.enqueue("submission", b"from the holder", b"summary", item_id="held-row")
    print("open", flush=True)
    sys.stdin.read()
    box.close()
    print("closed", flush=True)
    """
)

# Tries to open the outbox once and prints what came of it.
OPENER = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from offline_queue.errors import OutboxError
    from offline_queue.outbox import Outbox

    try:
        box = Outbox(Path(sys.argv[1]), bytes(range(32)))
    except OutboxError as exc:
        print(type(exc).__name__, exc.code, flush=True)
    else:
        print("opened", box.counts()["queued"], flush=True)
        box.close()
    """
)


def _python(script: str, *args: str, stdin: int | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", script, *args],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        stdin=stdin,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


class Holder:
    """Another process with the outbox open."""

    def __init__(self, path: Path) -> None:
        self.process = _python(HOLDER, str(path), stdin=subprocess.PIPE)
        assert self.process.stdout is not None
        line = self.process.stdout.readline().strip()
        assert line == "open", self.process.stderr.read() if self.process.stderr else line

    def close(self) -> str:
        out, err = self.process.communicate(timeout=WAIT_S)
        assert self.process.returncode == 0, err
        return out.strip()

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.communicate(timeout=WAIT_S)
        assert self.process.returncode == -signal.SIGKILL


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "outbox.sqlite3"


@pytest.fixture
def holder(db: Path) -> Iterator[Holder]:
    held = Holder(db)
    yield held
    if held.process.poll() is None:
        held.kill()


def test_a_second_process_is_refused_while_the_first_has_it_open(db: Path, holder: Holder) -> None:
    with pytest.raises(OutboxLockedError) as caught:
        Outbox(db, KEY)
    assert caught.value.code == "outbox_locked"
    assert isinstance(caught.value, OutboxError)
    assert f"process {holder.process.pid}" in str(caught.value)
    assert holder.close() == "closed"
    with Outbox(db, KEY) as box:  # released on close: the next process opens it
        assert box.state_of("held-row") is State.QUEUED
    assert not lock_path(db).exists()  # a clean close leaves no lock file


def test_the_start_up_path_is_refused_too_and_touches_no_file(db: Path, holder: Holder) -> None:
    before = {p.name: p.read_bytes() for p in db.parent.iterdir()}
    assert "outbox.sqlite3-wal" in before  # the holder's log, still being written
    with pytest.raises(OutboxLockedError):
        open_outbox(db, KEY)
    after = {p.name: p.read_bytes() for p in db.parent.iterdir()}
    assert after == before  # nothing renamed aside, the live log not replayed or checkpointed


def test_a_killed_holder_holds_nothing(db: Path, holder: Holder) -> None:
    holder.kill()
    assert lock_path(db).exists()  # killed: its lock file stays, and locks nothing
    with Outbox(db, KEY) as box:
        assert box.state_of("held-row") is State.QUEUED


def test_this_process_holding_it_refuses_another_process(db: Path) -> None:
    with Outbox(db, KEY) as box:
        box.enqueue("submission", b"p", b"s")
        assert stat.S_IMODE(lock_path(db).stat().st_mode) == 0o600
        opener = _python(OPENER, str(db))
        out, err = opener.communicate(timeout=WAIT_S)
        assert out.split() == ["OutboxLockedError", "outbox_locked"], err
    opener = _python(OPENER, str(db))
    out, err = opener.communicate(timeout=WAIT_S)
    assert out.split() == ["opened", "1"], err


def test_objects_of_one_process_share_the_lock_until_the_last_closes(db: Path) -> None:
    first = Outbox(db, KEY)
    second = Outbox(db, KEY)  # same process: allowed, as tools and contention tests need
    first.close()
    out, _ = _python(OPENER, str(db)).communicate(timeout=WAIT_S)
    assert out.split()[0] == "OutboxLockedError"  # the second still holds it
    second.close()
    second.close()  # closing twice does not release anyone else's share
    out, _ = _python(OPENER, str(db)).communicate(timeout=WAIT_S)
    assert out.split()[0] == "opened"


def test_a_failed_open_releases_the_lock(db: Path) -> None:
    db.write_bytes(b"not a database " * 100)
    with pytest.raises(OutboxError):
        Outbox(db, KEY)
    assert not lock_path(db).exists()
    out, _ = _python(OPENER, str(db)).communicate(timeout=WAIT_S)
    assert out.split() == ["OutboxCorruptError", "corrupt"]  # refused for the damage, not a lock


@pytest.mark.parametrize(
    ("language", "expected"),
    [
        ("en", "Another copy of this program is using the stored submissions"),
        ("zh_CN", "本程序的另一个副本正在使用已保存的申请"),
    ],
)
def test_the_out_of_service_screen_names_the_lock(language: str, expected: str) -> None:
    set_language(language)
    text = describe_startup_failure(OutboxLockedError.code)
    assert expected in text
    assert "outbox_locked" in text
