"""The crash test's client: a zygote that forks terminal processes for the test to SIGKILL.

Starting Python and importing the client takes about half a second, far longer than one kill
round, so the zygote imports everything once and forks a fresh client per round. It stays
single-threaded (a fork copies only the calling thread, so a lock held by another thread would be
held forever in the child) and never touches the outbox itself.

Each client does what a terminal does after a restart: opens the outbox (which queues again the
rows a crash left in 'sending'), starts the sync engine, takes a few submissions and, once each is
committed, tells the citizen: a line appended to its round's ledger file and fsync'd. The ledgers
are therefore the list of submissions that must reach the platform exactly once, whatever instant
the kill hits.

A trace file per round gets a line at each step (with a monotonic time stamp, comparable across
processes), so the test can tell where a kill landed. A kill can cut the last line of a file
short; only lines ending in a newline count, and the next round writes files of its own.

Protocol on stdin/stdout, one line per message:

    zygote: ready
    test:   spawn <round> <seed>    zygote: pid <pid>
    test:   reap                    zygote: exit <pid> <wait status>
    test:   quit (or end of input)

The zygote reaps a client only when told to, so until then the pid cannot be reused and the test
may signal it safely (through a pidfd).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import random
import sys
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kiosk.platform_client import PlatformClient
from kiosk.sync import SUBMISSION_KIND, SyncEngine, SyncStatus
from kiosk.terminal_auth import TerminalIdentity, load_identity
from offline_queue.keys import load_or_create_key
from offline_queue.outbox import Outbox, new_item_id
from tests.fixtures.platform import DEMO_ANSWERS, demo_submission

SERVICES = tuple(sorted(DEMO_ANSWERS))
DELIVERY_WAIT_S = 20.0
EXIT_OK = 0
EXIT_UNDELIVERED = 3
EXIT_CRASHED = 70


def crash_submission(submission_id: str, service_id: str, receipt_number: str) -> dict[str, Any]:
    """The body a client enqueues; the test rebuilds it from the ledger to compare with the
    platform's copy. The receipt number is unique per submission, so the same citizen's request
    stored under two ids would show."""
    body = demo_submission(service_id, submission_id=submission_id)
    body["receipt_number"] = receipt_number
    return body


def crash_summary(service_id: str, receipt_number: str) -> bytes:
    return json.dumps({"receipt_number": receipt_number, "service_id": service_id}).encode()


def round_file(round_no: int, suffix: str) -> str:
    return f"{round_no:06d}{suffix}"


@dataclass(frozen=True)
class ClientFiles:
    outbox: Path
    key: Path
    ledger_dir: Path
    trace_dir: Path
    base_url: str
    max_items: int
    identity: TerminalIdentity  # the terminal's enrolment with the platform at base_url


class _AppendOnly:
    """A file written only by whole-line appends."""

    def __init__(self, path: Path) -> None:
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)

    def line(self, text: str, *, durable: bool = False) -> None:
        data = (text + "\n").encode("utf-8")
        if os.write(self._fd, data) != len(data):
            raise OSError(f"short append of {len(data)} bytes")
        if durable:
            os.fsync(self._fd)


def run_client(files: ClientFiles, round_no: int, seed: int) -> int:
    """One terminal's life until the kill: returns only when it finished its work unkilled."""
    rng = random.Random(seed)  # noqa: S311 - a replayable schedule, not a secret
    trace = _AppendOnly(files.trace_dir / round_file(round_no, ".log"))
    ledger = _AppendOnly(files.ledger_dir / round_file(round_no, ".jsonl"))

    def step(event: str, arg: str = "") -> None:
        trace.line(f"{time.monotonic():.6f} {event} {arg}".rstrip())

    step("start")
    outbox = Outbox(files.outbox, load_or_create_key(files.key))
    step("opened")
    client = PlatformClient(files.base_url, timeout=(2.0, 10.0), auth=files.identity.auth())
    progress = _Progress()
    # Short backoff: the platform is healthy, so a retry means something odd that the next
    # round should see settled rather than waiting out minutes.
    engine = SyncEngine(
        outbox,
        client,
        on_change=progress,
        probe_interval_s=0.05,
        retry_base_s=0.05,
        retry_cap_s=0.5,
    )
    engine.start()
    # Now and then several citizens are served before the engine hears of any of them, so the
    # backlog goes out in batches (a service point back online after a while).
    burst = rng.random() < 0.3
    mine = []
    for index in range(rng.randint(1, files.max_items)):
        sid = new_item_id()
        service = rng.choice(SERVICES)
        receipt = f"C-{round_no:05d}-{index}"
        body = crash_submission(sid, service, receipt)
        step("enqueue", sid)
        outbox.enqueue(
            SUBMISSION_KIND,
            json.dumps(body, ensure_ascii=False).encode("utf-8"),
            crash_summary(service, receipt),
            item_id=sid,
        )
        # The citizen is told only now, after the commit: this line is the promise.
        ledger.line(
            json.dumps({"id": sid, "service": service, "receipt": receipt}),
            durable=True,
        )
        mine.append(sid)
        if burst:
            continue
        # Half the time the next citizen comes while this one is still being sent.
        if rng.random() < 0.5:
            engine.deliver_now(sid, DELIVERY_WAIT_S)
        else:
            engine.wake()
    engine.wake()
    step("waiting")
    undelivered = [sid for sid in mine if not engine.deliver_now(sid, DELIVERY_WAIT_S)]
    # Rows an earlier client left behind go out too before this one calls it a day.
    drained = progress.wait_for(lambda: outbox.pending_count() == 0, DELIVERY_WAIT_S)
    step("done")
    engine.stop()
    client.close()
    outbox.close()
    if undelivered or not drained:
        print(
            f"round {round_no}: not delivered: {undelivered}; backlog left: {not drained}",
            file=sys.stderr,
        )
        return EXIT_UNDELIVERED
    return EXIT_OK


class _Progress:
    """The engine's status listener: wakes a waiting thread after every send."""

    def __init__(self) -> None:
        self._cond = threading.Condition()

    def __call__(self, status: SyncStatus) -> None:
        with self._cond:
            self._cond.notify_all()

    def wait_for(self, predicate: Callable[[], bool], timeout: float) -> bool:
        with self._cond:
            return self._cond.wait_for(predicate, timeout)


def _child(files: ClientFiles, round_no: int, seed: int) -> None:
    code = EXIT_CRASHED
    try:
        code = run_client(files, round_no, seed)
    except BaseException:
        traceback.print_exc()
    finally:
        sys.stderr.flush()
        # Not sys.exit: the child must not run the zygote's cleanups or flush its stdout buffer.
        os._exit(code)


def _reply(text: str) -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def serve(files: ClientFiles) -> int:
    _reply("ready")
    while True:
        words = sys.stdin.readline().split()
        if not words or words[0] == "quit":
            return 0
        if words[0] != "spawn" or len(words) != 3:
            print(f"zygote: unknown command {words!r}", file=sys.stderr)
            return 2
        if threading.active_count() != 1:
            print("zygote: more than one thread; refusing to fork", file=sys.stderr)
            return 2
        round_no, seed = int(words[1]), int(words[2])
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:
            _child(files, round_no, seed)
        _reply(f"pid {pid}")
        command = sys.stdin.readline().strip()
        _, status = os.waitpid(pid, 0)
        _reply(f"exit {pid} {status}")
        if command != "reap":
            return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--outbox", type=Path, required=True)
    parser.add_argument("--key", type=Path, required=True)
    parser.add_argument("--ledger-dir", type=Path, required=True)
    parser.add_argument("--trace-dir", type=Path, required=True)
    parser.add_argument("--base-url", required=True)
    parser.add_argument("--terminal-dir", type=Path, required=True, help="where it is enrolled")
    parser.add_argument("--max-items", type=int, default=4)
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.WARNING, format="%(process)d %(name)s %(levelname)s %(message)s"
    )
    files = ClientFiles(
        args.outbox,
        args.key,
        args.ledger_dir,
        args.trace_dir,
        args.base_url,
        args.max_items,
        load_identity(args.terminal_dir, args.base_url),  # once: every fork signs with it
    )
    return serve(files)


if __name__ == "__main__":
    sys.exit(main())
