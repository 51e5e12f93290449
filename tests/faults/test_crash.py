"""Crash test: a terminal SIGKILLed at random instants loses no accepted submission and delivers
none twice.

The reference platform serves over real HTTP on 127.0.0.1 from this process; the terminal runs in
processes forked by tests/faults/crash_worker.py (real outbox file, real sync engine, real HTTP
client) and is killed while it opens the outbox, enqueues, claims, sends, waits for the answer or
marks a row delivered. After every kill the files are inspected where the kill left them, so a
loss shows at the round that caused it; at the end one last drain must leave every accepted
submission on the platform exactly once, with the body the citizen gave.

HALL_CRASH_KILLS sets the number of kills (200 by default; 1000 or more for a soak run) and
HALL_CRASH_SEED replays a run's random choices (kill delays, what each client does). Thread timing
still varies between runs, so a seed repeats the schedule, not every interleaving.
"""

from __future__ import annotations

import collections
import contextlib
import json
import os
import random
import secrets
import select
import signal
import sqlite3
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response

from kiosk.sync import SyncEngine
from kiosk.terminal_auth import load_identity
from offline_queue.keys import load_or_create_key
from offline_queue.outbox import Outbox, State
from refplatform.server import RunningPlatform, start_in_thread
from tests.faults.crash_worker import crash_submission, crash_summary, round_file
from tests.fixtures.platform import DEMO_CATALOGUE, client_for, enrol_terminal

ROOT = Path(__file__).resolve().parents[2]
CI_KILLS = 200
KILLS = int(os.environ.get("HALL_CRASH_KILLS", str(CI_KILLS)))
SEED_ENV = os.environ.get("HALL_CRASH_SEED")
FIRST_BOOT_KILLS = 3  # kills within a few ms of the very first start: key file, schema
FIRST_BOOT_DELAY_S = 0.015
CALIBRATION_ROUNDS = 3  # then unkilled rounds: how long a client takes, phase by phase
RECALIBRATE_EVERY = 40  # and one unkilled round now and then, as the backlog changes
MAX_ROUNDS_PER_KILL = 3  # rounds whose client finishes before its kill do not count
REPLY_TIMEOUT_S = 30.0
FINISH_TIMEOUT_S = 60.0
DEATH_TIMEOUT_S = 10.0
KILLED = -signal.SIGKILL


def _timeout_s(kills: int) -> float:
    return max(120.0, 30.0 + kills * 0.3)


# -- the platform side ------------------------------------------------------------------------


class SubmissionWatch:
    """Passes every submission request through unchanged, noting for each submission in it
    whether the platform already held its id on arrival: such a submission can only be answered
    by the idempotent replay."""

    def __init__(self, platform_db: Path) -> None:
        self._db = platform_db
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None
        self.requests = 0
        self.batches = 0  # requests carrying more than one submission
        self.sent = 0  # submissions in all requests
        self.replays = 0

    async def before_submission(
        self, request: Request, submission_ids: Sequence[str] | None = None
    ) -> Response | None:
        ids = list(submission_ids) if submission_ids is not None else await _ids_of(request)
        with self._lock:
            if self._conn is None:
                self._conn = _read_only(self._db, check_same_thread=False)
            for sid in ids:
                held = self._conn.execute(
                    "SELECT 1 FROM submissions WHERE submission_id = ?", (sid,)
                ).fetchone()
                self.replays += held is not None
            self.requests += 1
            self.batches += len(ids) > 1
            self.sent += len(ids)
        return None

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None


async def _ids_of(request: Request) -> list[str]:
    """The ids a submission request carries: its key header, or a batch body's items."""
    key = request.headers.get("Idempotency-Key")
    if key:
        return [key]
    try:
        doc = json.loads(await request.body())  # kept on the request for the handler
    except (ClientDisconnect, ValueError):
        return []  # the handler meets the same trouble and answers it
    items = doc.get("submissions") if isinstance(doc, dict) else None
    if not isinstance(items, list):
        return []
    return [
        item["submission_id"]
        for item in items
        if isinstance(item, dict) and isinstance(item.get("submission_id"), str)
    ]


def _read_only(path: Path, *, check_same_thread: bool = True) -> sqlite3.Connection:
    return sqlite3.connect(f"file:{path}?mode=ro", uri=True, check_same_thread=check_same_thread)


@contextlib.contextmanager
def _reading(path: Path) -> Iterator[sqlite3.Connection]:
    conn = _read_only(path)
    try:
        yield conn
    finally:
        conn.close()


def platform_ids(platform_db: Path) -> set[str]:
    with _reading(platform_db) as conn:
        return {str(r[0]) for r in conn.execute("SELECT submission_id FROM submissions")}


def outbox_states(outbox_db: Path) -> dict[str, str]:
    """Each row's state as the kill left it, read without opening (and so repairing) the outbox."""
    if not outbox_db.exists():
        return {}
    with _reading(outbox_db) as conn:
        try:
            rows = conn.execute("SELECT id, state FROM outbox").fetchall()
        except sqlite3.OperationalError as exc:
            if "no such table" in str(exc):  # killed before the schema was committed
                return {}
            raise
    return {str(r[0]): str(r[1]) for r in rows}


# -- the client side ---------------------------------------------------------------------------


class Zygote:
    """The process that forks clients (tests/faults/crash_worker.py), spoken to line by line."""

    def __init__(self, args: list[str], log_path: Path) -> None:
        self.log_path = log_path
        self._log = log_path.open("ab")
        self._buf = b""
        self._proc = subprocess.Popen(
            [sys.executable, "-W", "error", "-m", "tests.faults.crash_worker", *args],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log,
        )
        try:
            self._expect("ready")
        except BaseException:
            self.close()
            raise

    def spawn(self, round_no: int, seed: int) -> int:
        self._send(f"spawn {round_no} {seed}")
        return int(self._expect("pid"))

    def reap(self, pid: int) -> int:
        """Let the zygote collect the ended client; its wait status as an exit code."""
        self._send("reap")
        got_pid, status = self._expect("exit").split()
        assert int(got_pid) == pid
        return os.waitstatus_to_exitcode(int(status))

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._send("quit")
        try:
            self._proc.wait(REPLY_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait(REPLY_TIMEOUT_S)
        for pipe in (self._proc.stdin, self._proc.stdout):
            if pipe is not None:
                pipe.close()
        self._log.close()

    def log_tail(self, lines: int = 30) -> str:
        text = self.log_path.read_text("utf-8", errors="replace").splitlines()
        return "\n".join(text[-lines:])

    def _send(self, line: str) -> None:
        assert self._proc.stdin is not None
        self._proc.stdin.write(line.encode() + b"\n")
        self._proc.stdin.flush()

    def _expect(self, word: str) -> str:
        line = self._read_line()
        head, _, rest = line.partition(" ")
        assert head == word, f"zygote said {line!r}, expected {word!r}\n{self.log_tail()}"
        return rest

    def _read_line(self) -> str:
        assert self._proc.stdout is not None
        fd = self._proc.stdout.fileno()
        deadline = time.monotonic() + REPLY_TIMEOUT_S
        while b"\n" not in self._buf:
            remaining = deadline - time.monotonic()
            ready, _, _ = select.select([fd], [], [], max(0.0, remaining))
            assert ready, f"the zygote said nothing for {REPLY_TIMEOUT_S} s\n{self.log_tail()}"
            chunk = os.read(fd, 4096)
            assert chunk, f"the zygote ended\n{self.log_tail()}"
            self._buf += chunk
        line, _, self._buf = self._buf.partition(b"\n")
        return line.decode()


def end_or_kill(pid: int, delay: float | None) -> None:
    """Let the client run for delay seconds (None: until it finishes), then SIGKILL it.

    A pidfd names this very process even if it ended meanwhile, so the signal cannot reach
    another process that reused the number; the zygote does not reap before we say so anyway.
    """
    fd = os.pidfd_open(pid)
    try:
        ended, _, _ = select.select([fd], [], [], FINISH_TIMEOUT_S if delay is None else delay)
        if ended:
            return
        assert delay is not None, f"an unkilled client ran longer than {FINISH_TIMEOUT_S} s"
        signal.pidfd_send_signal(fd, signal.SIGKILL)
        gone, _, _ = select.select([fd], [], [], DEATH_TIMEOUT_S)
        assert gone, f"client {pid} outlived SIGKILL by {DEATH_TIMEOUT_S} s"
    finally:
        os.close(fd)


# -- bookkeeping -------------------------------------------------------------------------------

LANDINGS = {
    "unkilled": "client finished before its kill",
    "startup": "during start-up (key file, schema, queueing stale rows again)",
    "enqueue_uncommitted": "during enqueue, before the commit",
    "enqueue_untold": "after the commit, before the citizen was told (ledger)",
    "claimed_unsent": "row in 'sending' the platform never got (claimed, request cut off)",
    "in_flight": "row in 'sending' whose request the platform finished after the kill",
    "stored_unmarked": "row in 'sending' the platform had stored before the kill, unmarked",
    "resending": "row in 'sending' the platform held from an earlier round (resend cut off)",
    "requeued_unsent": "row queued again at start-up, the platform has it, not yet resent",
    "between": "between steps (waiting, waking, idle)",
}


@dataclass
class Tally:
    landings: collections.Counter[str] = field(default_factory=collections.Counter)
    kills: int = 0
    rounds: int = 0
    rounds_leaving_sending: int = 0
    history: collections.deque[str] = field(default_factory=lambda: collections.deque(maxlen=12))

    def table(self) -> str:
        return "\n".join(f"  {self.landings[k]:5d}  {v}" for k, v in LANDINGS.items())


def complete_lines(path: Path) -> list[str]:
    """The file's lines that end in a newline: a kill may have cut the last one short."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return []
    return data[: data.rfind(b"\n") + 1].decode("utf-8").splitlines()


Step = tuple[float, str, str]  # monotonic time, event, argument


def read_trace(path: Path) -> list[Step]:
    """The steps a client took, as crash_worker.py writes them."""
    steps = []
    for line in complete_lines(path):
        stamp, event, *arg = line.split(" ")
        steps.append((float(stamp), event, arg[0] if arg else ""))
    return steps


@dataclass
class Phases:
    """When, after the fork, an unkilled client had its outbox open and had finished its work."""

    opened: list[float] = field(default_factory=list)
    done: list[float] = field(default_factory=list)

    def add(self, spawned_at: float, events: list[Step]) -> None:
        stamps = {event: stamp for stamp, event, _ in events}
        if "opened" in stamps and "done" in stamps:
            self.opened.append(stamps["opened"] - spawned_at)
            self.done.append(stamps["done"] - spawned_at)

    def delay(self, rng: random.Random) -> float:
        """A kill delay: mostly inside the enqueue-and-send phase, some in start-up, some
        anywhere, so every step gets hit but time is not spent killing idle clients."""
        opened = statistics.median(self.opened[-9:])
        done = statistics.median(self.done[-9:])
        pick = rng.random()
        if pick < 0.15:
            return rng.uniform(0.0, opened * 1.5)
        if pick < 0.9:
            return rng.uniform(opened, done)
        return rng.uniform(0.0, done * 1.2)


# -- the test ----------------------------------------------------------------------------------


@dataclass
class CrashRun:
    tmp: Path
    platform: RunningPlatform
    watch: SubmissionWatch
    zygote: Zygote
    seed: int
    kills_wanted: int
    tally: Tally = field(default_factory=Tally)
    phases: Phases = field(default_factory=Phases)
    states: dict[str, str] = field(default_factory=dict)  # the outbox after the last round
    delivered: int = 0

    @property
    def outbox_db(self) -> Path:
        return self.tmp / "outbox.db"

    @property
    def key_file(self) -> Path:
        return self.tmp / "outbox.key"

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)  # noqa: S311 - a replayable schedule, not a secret
        # What the clients told citizens was accepted, by id.
        self.ledger: dict[str, dict[str, Any]] = {}

    def kill_rounds(self) -> None:
        calibrated = FIRST_BOOT_KILLS + CALIBRATION_ROUNDS
        max_rounds = calibrated + self.kills_wanted * MAX_ROUNDS_PER_KILL
        round_no = 0
        while self.tally.kills < self.kills_wanted:
            assert round_no < max_rounds, (
                f"only {self.tally.kills} of {round_no} rounds were killed: clients finish "
                "before their kill delays"
            )
            delay: float | None
            if round_no < FIRST_BOOT_KILLS:
                delay = self.rng.uniform(0.0, FIRST_BOOT_DELAY_S)
            elif round_no < calibrated or round_no % RECALIBRATE_EVERY == 0:
                delay = None
            else:
                delay = self.phases.delay(self.rng)
            self.one_round(round_no, delay)
            round_no += 1
        self.tally.rounds = round_no

    def one_round(self, round_no: int, delay: float | None) -> None:
        held_before = platform_ids(self.platform.db_path)
        pid = self.zygote.spawn(round_no, self.rng.getrandbits(64))
        spawned_at = time.monotonic()
        end_or_kill(pid, delay)
        # At once: a request the dead client left in flight may still be stored after this.
        held_at_kill = platform_ids(self.platform.db_path)
        code = self.zygote.reap(pid)
        events = read_trace(self.tmp / "trace" / round_file(round_no, ".log"))
        for line in complete_lines(self.tmp / "ledger" / round_file(round_no, ".jsonl")):
            entry = json.loads(line)
            assert entry["id"] not in self.ledger, f"id {entry['id']} handed out twice"
            self.ledger[entry["id"]] = entry
        shown = "none" if delay is None else f"{delay * 1000:.1f} ms"
        self.tally.history.append(
            f"round {round_no}: kill after {shown}, exit {code}, "
            f"steps {[(e[1], e[2][-6:]) for e in events]}"
        )
        assert code in (0, KILLED), (
            f"round {round_no}: the client ended with {code}\n{self.zygote.log_tail()}"
        )
        if code == 0:
            self.phases.add(spawned_at, events)
            self.tally.landings["unkilled"] += 1
        else:
            self.tally.kills += 1
        self.inspect(round_no, events, held_before, held_at_kill, killed=code == KILLED)

    def inspect(
        self,
        round_no: int,
        events: list[Step],
        held_before: set[str],
        held_at_kill: set[str],
        *,
        killed: bool,
    ) -> None:
        """Check the files where the client left them and note where the kill landed."""
        states = outbox_states(self.outbox_db)
        held = platform_ids(self.platform.db_path)
        lost = sorted(sid for sid in self.ledger if sid not in states)
        assert not lost, f"round {round_no}: accepted but missing from the outbox: {lost}"
        delivered = {sid for sid, state in states.items() if state == State.DELIVERED.value}
        assert delivered <= held, (
            f"round {round_no}: marked delivered, unknown to the platform: {delivered - held}"
        )
        assert held <= states.keys(), (
            f"round {round_no}: the platform holds ids no outbox row has: {held - states.keys()}"
        )
        stuck = {
            sid: state
            for sid, state in states.items()
            if state in (State.REJECTED.value, State.NEEDS_ATTENTION.value)
        }
        assert not stuck, f"round {round_no}: rows set aside: {stuck}"
        if not killed:
            # A client that lived to the end had time to send its backlog too.
            pending = {
                sid: state
                for sid, state in states.items()
                if state in (State.QUEUED.value, State.SENDING.value)
            }
            assert not pending, f"round {round_no}: a finished client left rows: {pending}"
        else:
            self.classify(events, states, held, held_before, held_at_kill)
        self.states = states

    def classify(
        self,
        events: list[Step],
        states: dict[str, str],
        held: set[str],
        held_before: set[str],
        held_at_kill: set[str],
    ) -> None:
        """Note where a kill landed, from the trace and the files it left."""
        landed = set()
        if "opened" not in {e[1] for e in events}:
            landed.add("startup")
        for _, event, sid in events:
            if event == "enqueue" and sid not in self.ledger:
                landed.add("enqueue_untold" if sid in states else "enqueue_uncommitted")
        sending = {sid for sid, state in states.items() if state == State.SENDING.value}
        queued = {sid for sid, state in states.items() if state == State.QUEUED.value}
        if sending - held:
            landed.add("claimed_unsent")
        if sending & (held - held_at_kill):
            landed.add("in_flight")
        if sending & (held_at_kill - held_before):
            landed.add("stored_unmarked")
        if sending & held_before:
            landed.add("resending")
        if {sid for sid in queued & held if self.states.get(sid) == State.SENDING.value}:
            landed.add("requeued_unsent")
        if sending:
            self.tally.rounds_leaving_sending += 1
        for kind in landed or {"between"}:
            self.tally.landings[kind] += 1

    def final_drain_and_check(self) -> None:
        key = load_or_create_key(self.key_file)
        identity = load_identity(self.tmp / "terminal", self.platform.base_url)
        client = client_for(self.platform, identity)  # the killed clients' own terminal
        with Outbox(self.outbox_db, key) as box:
            engine = SyncEngine(box, client)
            for _ in range(3):
                engine.drain_once()
                if box.pending_count() == 0:
                    break
            counts = box.counts()
            infos = box.items(limit=10 * (len(self.ledger) + 100))
            responses = {i.id: box.get_response(i.id) for i in infos}
        client.close()

        assert counts == {**dict.fromkeys(counts, 0), State.DELIVERED.value: len(infos)}, counts
        rows = {i.id: i for i in infos}
        ledger = self.ledger
        assert len(rows) >= len(ledger) > 0
        missing = sorted(sid for sid in ledger if sid not in rows)
        assert not missing, f"accepted submissions missing from the outbox: {missing}"
        for sid, entry in ledger.items():
            assert rows[sid].summary == crash_summary(entry["service"], entry["receipt"]), sid
        for sid, response in responses.items():
            assert response is not None and json.loads(response)["submission_id"] == sid

        with _reading(self.platform.db_path) as conn:
            stored = conn.execute(
                "SELECT submission_id, receipt_number, request_json FROM submissions"
            ).fetchall()
            histories = dict(
                conn.execute(
                    "SELECT submission_id, COUNT(*) FROM history GROUP BY submission_id"
                ).fetchall()
            )
            assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        ids = [str(r[0]) for r in stored]
        assert len(ids) == len(set(ids)), "the platform holds a submission id twice"
        assert set(ids) == set(rows), (
            f"outbox and platform differ: only in the outbox {set(rows) - set(ids)}, "
            f"only on the platform {set(ids) - set(rows)}"
        )
        receipts = collections.Counter(str(r[1]) for r in stored)
        doubled = [number for number, n in receipts.items() if n > 1]
        assert not doubled, f"one citizen's submission stored under several ids: {doubled}"
        assert set(histories.values()) == {1}, "a submission was received more than once"
        bodies = {str(r[0]): json.loads(r[2]) for r in stored}
        for sid, entry in ledger.items():
            expected = crash_submission(sid, entry["service"], entry["receipt"])
            assert bodies[sid] == expected, f"the platform's copy of {sid} differs"

        with _reading(self.outbox_db) as conn:
            assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        self.delivered = len(ids)


@contextlib.contextmanager
def crash_rig(tmp: Path, watch: SubmissionWatch) -> Iterator[tuple[RunningPlatform, Zygote]]:
    """The platform on a thread of this process and the zygote that forks its clients."""
    (tmp / "ledger").mkdir()
    (tmp / "trace").mkdir()
    with start_in_thread(tmp / "platform.sqlite3", DEMO_CATALOGUE, faults=watch) as platform:
        enrol_terminal(platform, tmp / "terminal")
        files = {
            "--outbox": tmp / "outbox.db",
            "--key": tmp / "outbox.key",
            "--ledger-dir": tmp / "ledger",
            "--trace-dir": tmp / "trace",
            "--base-url": platform.base_url,
            "--terminal-dir": tmp / "terminal",
        }
        zygote = Zygote([str(x) for pair in files.items() for x in pair], tmp / "clients.log")
        try:
            yield platform, zygote
        finally:
            zygote.close()
            watch.close()


@pytest.mark.timeout(_timeout_s(KILLS))
def test_sigkilled_client_loses_and_doubles_no_submission(tmp_path: Path) -> None:
    seed = int(SEED_ENV) if SEED_ENV else secrets.randbits(32)
    print(f"crash test: HALL_CRASH_SEED={seed} HALL_CRASH_KILLS={KILLS}")
    watch = SubmissionWatch(tmp_path / "platform.sqlite3")
    started = time.monotonic()
    with crash_rig(tmp_path, watch) as (platform, zygote):
        run = CrashRun(tmp_path, platform, watch, zygote, seed, KILLS)
        try:
            run.kill_rounds()
            killing_s = time.monotonic() - started
            run.final_drain_and_check()
            tally = run.tally
            # The run proves something only if kills hit the dangerous windows.
            assert tally.rounds_leaving_sending >= 1, "no kill left a row in 'sending'"
            assert watch.replays >= 1, "no resend of a submission the platform already held"
            assert tally.landings["stored_unmarked"] >= 1, "no kill between store and mark"
        except AssertionError as exc:
            # The message carries what is needed to understand and repeat the run.
            raise AssertionError(
                f"{exc}\n-- last rounds --\n"
                + "\n".join(run.tally.history)
                + f"\n-- where {run.tally.kills} kills landed --\n{run.tally.table()}"
                + f"\n[repeat with HALL_CRASH_SEED={seed} HALL_CRASH_KILLS={KILLS}]"
            ) from None

    print(
        f"{tally.kills} kills in {tally.rounds} rounds, {killing_s:.1f} s "
        f"({tally.kills / killing_s:.1f} kills/s); {len(run.ledger)} accepted, "
        f"{run.delivered} on the platform; {watch.requests} requests ({watch.batches} batches) "
        f"carrying {watch.sent} submissions, {watch.replays} of them replays; "
        f"{tally.rounds_leaving_sending} rounds left a row in 'sending'; unkilled client: "
        f"outbox open after {statistics.median(run.phases.opened) * 1000:.1f} ms, "
        f"done after {statistics.median(run.phases.done) * 1000:.1f} ms\n{tally.table()}"
    )
