"""The sync engine: a background thread that delivers outbox rows to the platform, oldest first.

A new submission wakes it at once. When the network is gone it stops spending attempts and only
probes the platform's health every probe interval; the moment a probe succeeds every waiting row
becomes due and the queue drains, instead of each row sleeping out its own backoff.

on_change runs on the sync thread (or the thread calling drain_once); the UI carries the status
onto the GUI thread itself. Payloads are never logged, only ids and error codes.
"""

from __future__ import annotations

import json
import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from kiosk.platform_client import OutcomeKind, PlatformClient, SubmitOutcome
from offline_queue.errors import OutboxError
from offline_queue.outbox import Outbox, OutboxItem, State
from offline_queue.retry import DEFAULT_BASE_S, DEFAULT_CAP_S, retry_delay

log = logging.getLogger(__name__)

SUBMISSION_KIND = "submission"
PAYLOAD_UNREADABLE = "payload_unreadable"
UNKNOWN_KIND = "unknown_kind"
INTERNAL_ERROR = "internal_error"
_MIN_WAIT_S = 0.01  # never spin, even when a row is due this very instant


@dataclass(frozen=True)
class SyncStatus:
    pending: int  # queued + sending
    delivered_total: int  # delivered rows still held (receipts that can be reprinted)
    needs_attention: int
    rejected: int
    last_success_at: float | None
    last_error: str | None  # an error code (see describe_error), never personal text
    online: bool | None  # None until the platform has been tried
    draining: bool
    next_attempt_at: float | None = None


def encode_error(code: str, fields: tuple[tuple[str, str], ...] = ()) -> str:
    """The outbox's last_error text: a code, then `field:keyword` pairs (form names, no values)."""
    if not fields:
        return code
    return code + "|" + ",".join(f"{name}:{keyword}" for name, keyword in fields)


def decode_error(text: str | None) -> tuple[str | None, tuple[tuple[str, str], ...]]:
    if not text:
        return None, ()
    code, _, rest = text.partition("|")
    fields = []
    for pair in rest.split(",") if rest else ():
        name, _, keyword = pair.partition(":")
        fields.append((name, keyword))
    return code, tuple(fields)


class SyncEngine:
    def __init__(
        self,
        outbox: Outbox,
        client: PlatformClient,
        *,
        on_change: Callable[[SyncStatus], None] | None = None,
        clock: Callable[[], float] = time.time,
        probe_interval_s: float = 5.0,
        retry_base_s: float = DEFAULT_BASE_S,
        retry_cap_s: float = DEFAULT_CAP_S,
        rng: Callable[[], float] = random.random,
    ) -> None:
        self._outbox = outbox
        self._client = client
        self._on_change = on_change
        self._clock = clock
        self._probe_interval_s = probe_interval_s
        self._retry_base_s = retry_base_s
        self._retry_cap_s = retry_cap_s
        self._rng = rng
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._progress = threading.Condition()  # notified after every attempt
        self._drain_lock = threading.Lock()  # one drain at a time: the thread or a drain_once
        self._lock = threading.Lock()  # guards the fields below
        self._online: bool | None = None
        self._awaiting_network = False
        # Set when a probe succeeded and waiting rows were brought forward; cleared by the next
        # answer. If the next send still fails as if offline, the rows follow their backoff
        # instead of being brought forward again at every probe (no retry storm against a
        # platform whose health check answers while its submissions do not).
        self._recovering = False
        self._last_success_at: float | None = None
        self._last_error: str | None = None
        self._draining = False
        self._recover_sending = False
        self._last_status: SyncStatus | None = None

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="outbox-sync", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 15.0) -> bool:
        """Stop the thread and wait for it; True when it has ended. Safe to call repeatedly.

        A send in flight finishes (bounded by the client's timeouts); its row is marked first.
        """
        self._stop.set()
        self._wake.set()
        thread = self._thread
        if thread is None:
            return True
        thread.join(timeout)
        if thread.is_alive():
            log.warning("sync thread did not stop within %.1f s", timeout)
            return False
        self._thread = None
        return True

    def wake(self) -> None:
        """Try sending now (a submission was just queued, or staff asked for a retry)."""
        with self._lock:
            self._awaiting_network = False
        self._wake.set()

    def set_listener(self, on_change: Callable[[SyncStatus], None] | None) -> None:
        """Who hears about status changes; set before start() (the UI's bridge)."""
        self._on_change = on_change

    def deliver_now(self, item_id: str, timeout_s: float) -> bool:
        """Wake the sync thread for a just-queued item and wait up to timeout_s for its answer.

        True only when the platform has confirmed it; False when it is still waiting (offline,
        slow, refused). Either way the item stays in the outbox's care.
        """
        deadline = time.monotonic() + timeout_s
        self.wake()
        with self._progress:
            while True:
                state = self._outbox.state_of(item_id)
                if state is State.DELIVERED:
                    return True
                if state in (State.REJECTED, State.NEEDS_ATTENTION, None):
                    return False
                with self._lock:
                    gave_up = self._awaiting_network and state is State.QUEUED
                remaining = deadline - time.monotonic()
                if gave_up or remaining <= 0 or not self.running:
                    return False
                self._progress.wait(min(remaining, 0.5))

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    # -- work --------------------------------------------------------------------------------

    def drain_once(self) -> int:
        """Send every row due now, oldest first; return how many were delivered.

        Stops early when the network is gone (the rest would only fail the same way) or when
        stop() was called.
        """
        delivered = 0
        with self._drain_lock:
            if self._recover_sending:
                # A failed mark left a row in 'sending'; under the drain lock nothing else is.
                self._outbox.reset_stale_sending()
                self._recover_sending = False
            self._set_draining(True)
            try:
                while not self._stop.is_set():
                    item = self._outbox.claim_next()
                    if item is None:
                        break
                    try:
                        outcome = self._deliver(item)
                    except OutboxError:
                        self._recover_sending = True
                        raise
                    if outcome is not None and outcome.delivered:
                        delivered += 1
                    self._notify()
                    if outcome is not None and outcome.offline:
                        break
            finally:
                self._set_draining(False)
                self._notify()
        return delivered

    def status(self) -> SyncStatus:
        """The current status, read now (any thread; reads do not wait for the sync thread)."""
        with self._lock:
            base = self._last_status
            online, last_success, last_error, draining = (
                self._online,
                self._last_success_at,
                self._last_error,
                self._draining,
            )
        try:
            counts = self._outbox.counts()
            next_due = self._outbox.next_due_at()
        except OutboxError as exc:
            last_error = exc.code
            if base is None:
                return SyncStatus(0, 0, 0, 0, last_success, last_error, online, draining)
            counts = {
                State.QUEUED.value: base.pending,
                State.DELIVERED.value: base.delivered_total,
                State.NEEDS_ATTENTION.value: base.needs_attention,
                State.REJECTED.value: base.rejected,
            }
            next_due = base.next_attempt_at
        status = SyncStatus(
            pending=counts.get(State.QUEUED.value, 0) + counts.get(State.SENDING.value, 0),
            delivered_total=counts.get(State.DELIVERED.value, 0),
            needs_attention=counts.get(State.NEEDS_ATTENTION.value, 0),
            rejected=counts.get(State.REJECTED.value, 0),
            last_success_at=last_success,
            last_error=last_error,
            online=online,
            draining=draining,
            next_attempt_at=next_due,
        )
        with self._lock:
            self._last_status = status
        return status

    # -- internals ---------------------------------------------------------------------------

    def _run(self) -> None:
        self._notify()
        while not self._stop.is_set():
            timeout: float | None
            try:
                if self._is_awaiting_network() and not self._probe():
                    timeout = self._probe_interval_s
                else:
                    self.drain_once()
                    timeout = self._wait_time()
            except OutboxError as exc:
                log.error("sync: the outbox failed (%s); trying again shortly", exc.code)
                self._record(last_error=exc.code)
                self._notify()
                timeout = self._probe_interval_s
            except Exception:
                log.exception("sync: unexpected failure; trying again shortly")
                self._record(last_error=INTERNAL_ERROR)
                timeout = self._probe_interval_s
            if self._wake.wait(timeout):
                self._wake.clear()

    def _wait_time(self) -> float | None:
        if self._is_awaiting_network():
            return self._probe_interval_s
        due = self._outbox.next_due_at()
        if due is None:
            return None  # nothing queued: sleep until a submission wakes us
        return max(_MIN_WAIT_S, due - self._clock())

    def _is_awaiting_network(self) -> bool:
        with self._lock:
            return self._awaiting_network

    def _probe(self) -> bool:
        ok = self._client.health()
        with self._lock:
            changed = self._online != ok
            self._online = ok
            if ok:
                self._awaiting_network = False
                self._recovering = True
        if ok:
            moved = self._outbox.bring_forward()
            log.info("sync: the platform answers again; %d waiting row(s) due now", moved)
        if changed:
            self._notify()
        return ok

    def _deliver(self, item: OutboxItem) -> SubmitOutcome | None:
        """Send one claimed row and record the result in the outbox."""
        body = _submission_body(item)
        if body is None:
            code = UNKNOWN_KIND if item.kind != SUBMISSION_KIND else PAYLOAD_UNREADABLE
            log.error("sync: outbox item %s set aside (%s)", item.id, code)
            self._outbox.mark_needs_attention(item.id, code)
            return None
        try:
            outcome = self._client.submit(item.id, body)
        except Exception:
            log.exception("sync: submitting outbox item %s failed unexpectedly", item.id)
            outcome = SubmitOutcome(OutcomeKind.RETRY, error_code=INTERNAL_ERROR)
        code = outcome.error_code or outcome.kind.value
        response = None if outcome.response is None else _dump(outcome.response)
        if outcome.kind is OutcomeKind.DELIVERED:
            self._outbox.mark_delivered(item.id, response or b"{}")
            self._record(last_error=None, online=True, success=True)
            log.info("sync: outbox item %s delivered (attempt %d)", item.id, item.attempts)
        elif outcome.kind is OutcomeKind.CONFLICT:
            self._outbox.mark_needs_attention(item.id, code, response)
            self._record(last_error=code, online=True)
            log.warning("sync: outbox item %s conflicts on the platform (%s)", item.id, code)
        elif outcome.kind is OutcomeKind.REJECTED:
            fields = tuple((f.field, f.code) for f in outcome.fields)
            self._outbox.mark_rejected(item.id, encode_error(code, fields), response)
            self._record(last_error=code, online=True)
            log.warning("sync: outbox item %s rejected by the platform (%s)", item.id, code)
        else:
            delay = retry_delay(
                item.attempts,
                outcome.retry_after_s,
                base_s=self._retry_base_s,
                cap_s=self._retry_cap_s,
                rng=self._rng,
            )
            self._outbox.mark_retry(item.id, code, delay)
            with self._lock:
                self._last_error = code
                if outcome.offline:
                    self._online = False
                    self._awaiting_network = not self._recovering
                elif outcome.http_status is not None:
                    self._online = True
                self._recovering = False
            log.info(
                "sync: outbox item %s not delivered (%s); next try in %.1f s",
                item.id,
                code,
                delay,
            )
        return outcome

    def _record(
        self,
        *,
        last_error: str | None,
        online: bool | None = None,
        success: bool = False,
    ) -> None:
        with self._lock:
            self._last_error = last_error
            self._recovering = False
            if online is not None:
                self._online = online
            if success:
                self._last_success_at = self._clock()

    def _set_draining(self, draining: bool) -> None:
        with self._lock:
            self._draining = draining

    def _notify(self) -> None:
        with self._progress:
            self._progress.notify_all()
        if self._on_change is None:
            return
        status = self.status()
        try:
            self._on_change(status)
        except Exception:
            log.exception("sync: the status listener failed")


def _submission_body(item: OutboxItem) -> dict[str, object] | None:
    if item.kind != SUBMISSION_KIND:
        return None
    try:
        body = json.loads(item.payload)
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(body, dict) or body.get("submission_id") != item.id:
        return None
    return body


def _dump(value: object) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
