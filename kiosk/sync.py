"""The sync engine: a background thread that delivers outbox rows to the platform, oldest first.

A new submission wakes it at once. When the network is gone it stops spending attempts and only
probes the platform's health every probe interval; the moment a probe succeeds every waiting row
becomes due and the queue drains, instead of each row sleeping out its own backoff.

A backlog goes out in batches: one claim, one request and one recorded result per batch of rows
instead of per row. The first send of every drain is a single row, so a lone new submission is
not held back and a dead network costs one attempt, not a batch of them; a submission someone
waits for (deliver_now) goes out alone ahead of the backlog.

on_change runs on the sync thread (or the thread calling drain_once), once per send, whatever
the batch size; the UI carries the status onto the GUI thread itself. Payloads are never logged,
only ids and error codes.

The outbox keeps a submission's files apart from its JSON payload; the body sent adds them as the
"attachments" list of docs/api.md, each with its SHA-256 (the outbox has checked on claiming it
that the data still has the digest taken when it was queued), so the platform can tell a file
that changed on the way.

A correction (kiosk/corrections.py) goes alone too. Once the platform has answered it, it is
delivered, and the submission it corrects takes the answer: delivered with the receipt when the
platform took the corrected submission, rejected again with the new problems when it found the
new values wrong too, and otherwise set aside for staff with the refusal it had. A submission
settles once per batch, however many corrections of it the batch carries.

A bundle imported from a village terminal (kiosk/bundles.py) is one row of its own kind: it goes
alone, as the file's bytes, and is delivered once the platform has answered for every
submission in it; submissions it refused are logged by id and code and kept in the row's
response, not sent again.
"""

from __future__ import annotations

import json
import logging
import random
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from kiosk.bundles import BUNDLE_KIND, bundle_submission_ids
from kiosk.platform_client import (
    MAX_BATCH,
    TIMEOUT,
    OutcomeKind,
    PlatformClient,
    SubmitOutcome,
    attachment_json,
)
from kiosk.ratings import RATING_KIND
from offline_queue.errors import OutboxError
from offline_queue.outbox import Outbox, OutboxItem, Settlement, State
from offline_queue.retry import DEFAULT_BASE_S, DEFAULT_CAP_S, retry_delay

if TYPE_CHECKING:
    from kiosk.audit_upload import AuditUploader
    from kiosk.staff_sync import StaffSync

log = logging.getLogger(__name__)

SUBMISSION_KIND = "submission"
HELP_REQUEST_KIND = "help_request"
# A satisfaction rating (kiosk/ratings.py, RATING_KIND): sent after any submission claimed with
# it (it rates one), and kept waiting while the submission it rates has not reached the platform.
# New values for a refused submission's fields (kiosk/corrections.py): answered for the row it
# corrects, which takes the platform's answer (delivered with the receipt, or refused again).
CORRECTION_KIND = "correction"
# The platform's refusal of a submission's answers: the one answer to a correction that replaces
# the refusal the submission's row keeps (the fields it names are what staff correct next).
VALIDATION_FAILED = "validation_failed"
# A call for staff that could not be sent within this time is set aside, not sent: staff sent to
# a terminal hours later would find nobody there.
HELP_REQUEST_TTL_S = 600.0
HELP_REQUEST_EXPIRED = "help_request_expired"
PAYLOAD_UNREADABLE = "payload_unreadable"
UNKNOWN_KIND = "unknown_kind"
RATED_NOT_UPLOADED = "rated_not_uploaded"
INTERNAL_ERROR = "internal_error"
_MIN_WAIT_S = 0.01  # never spin, even when a row is due this very instant
# A batch carries at most this much payload and attachment data, so that on a slow rural uplink
# one request still fits in the client's timeout (and a batch that times out is halved for the
# next try). Attachments travel as base64, a third larger on the wire than counted here; a row
# larger than the budget by itself still goes, alone.
DEFAULT_BATCH_BYTES = 256 * 1024


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
    # The platform itself last answered (a delivery, a refusal, a health check); not a portal.
    last_contact_at: float | None = None


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
        idle_check_s: float = 60.0,
        retry_base_s: float = DEFAULT_BASE_S,
        retry_cap_s: float = DEFAULT_CAP_S,
        rng: Callable[[], float] = random.random,
        batch_size: int = MAX_BATCH,
        batch_bytes: int = DEFAULT_BATCH_BYTES,
        audit_uploader: AuditUploader | None = None,
    ) -> None:
        if not 1 <= batch_size <= MAX_BATCH:
            raise ValueError(f"batch_size must be 1 to {MAX_BATCH}")
        self._batch_size = batch_size
        # With nothing to send the platform is still asked how it is this often, so staff see
        # a current "last contact" and "offline" before the next submission finds out.
        self._idle_check_s = idle_check_s
        self._last_contact_at: float | None = None
        self._batch_bytes = batch_bytes
        # What the link has carried lately: halved when a batch times out, doubled back (up to
        # batch_size) by each batch that is answered. Only the sync thread touches it.
        self._batch_limit = batch_size
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
        self._urgent: set[str] = set()  # ids deliver_now waits for, not yet tried
        # Sends the audit log's new entries once per drain while the platform answers.
        self._audit_uploader = audit_uploader
        self._staff_sync: StaffSync | None = None

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

    def set_audit_uploader(self, uploader: AuditUploader | None) -> None:
        """What uploads the audit log after each drain; set before start()."""
        self._audit_uploader = uploader

    def set_staff_sync(self, staff_sync: StaffSync | None) -> None:
        """What fetches the staff list from the platform after a drain (it keeps its own
        interval); set before start()."""
        self._staff_sync = staff_sync

    def set_listener(self, on_change: Callable[[SyncStatus], None] | None) -> None:
        """Who hears about status changes; set before start() (the UI's bridge)."""
        self._on_change = on_change

    def deliver_now(self, item_id: str, timeout_s: float) -> bool:
        """Wake the sync thread for a just-queued item and wait up to timeout_s for its answer.

        True only when the platform has confirmed it; False when it is still waiting (offline,
        slow, refused). Either way the item stays in the outbox's care.
        """
        deadline = time.monotonic() + timeout_s
        with self._lock:
            self._urgent.add(item_id)
        self.wake()
        try:
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
        finally:
            with self._lock:
                self._urgent.discard(item_id)

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    # -- work --------------------------------------------------------------------------------

    def drain_once(self) -> int:
        """Send every row due now, oldest first (a row deliver_now waits for goes ahead);
        return how many were delivered.

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
                size = 1  # until the platform has answered in this drain
                while not self._stop.is_set():
                    items = self._claim(size)
                    if not items:
                        break
                    try:
                        outcomes = self._deliver(items)
                    except OutboxError:
                        self._recover_sending = True
                        raise
                    delivered += sum(1 for o in outcomes if o is not None and o.delivered)
                    self._notify()
                    self._adapt_batch_limit(len(items), outcomes)
                    if any(o is not None and o.offline for o in outcomes):
                        break
                    size = self._batch_limit
                self._upload_audit()
                self._sync_staff()
            finally:
                self._set_draining(False)
                self._notify()
        return delivered

    def _sync_staff(self) -> None:
        """The platform's staff list, at most every few minutes, while it is not known away."""
        staff_sync = self._staff_sync
        if staff_sync is None or self._stop.is_set():
            return
        with self._lock:
            away = self._online is False or self._awaiting_network
        if not away:
            staff_sync.maybe_sync()

    def _upload_audit(self) -> None:
        """One audit upload pass, while the platform is not known to be away. A fork or a
        refused entry stops the uploads and stays the status's last error, pass after pass."""
        uploader = self._audit_uploader
        if uploader is None or self._stop.is_set():
            return
        with self._lock:
            away = self._online is False or self._awaiting_network
        if away and uploader.stopped is None:
            return
        try:
            result = uploader.upload()
        except Exception:
            log.exception("sync: the audit upload failed unexpectedly")
            return
        if result.stopped:
            with self._lock:
                self._last_error = result.error_code
        elif result.offline:
            with self._lock:
                self._online = False
        elif result.sent:
            with self._lock:
                self._online = True
                self._last_contact_at = self._clock()

    def status(self) -> SyncStatus:
        """The current status, read now (any thread; reads do not wait for the sync thread)."""
        with self._lock:
            base = self._last_status
            online, last_success, last_error, draining, last_contact = (
                self._online,
                self._last_success_at,
                self._last_error,
                self._draining,
                self._last_contact_at,
            )
        try:
            counts = self._outbox.counts()
            next_due = self._outbox.next_due_at()
        except OutboxError as exc:
            last_error = exc.code
            if base is None:
                return SyncStatus(
                    0,
                    0,
                    0,
                    0,
                    last_success,
                    last_error,
                    online,
                    draining,
                    last_contact_at=last_contact,
                )
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
            last_contact_at=last_contact,
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
                    due = self._outbox.next_due_at()
                    if due is None:
                        self._check_when_idle()
                    timeout = self._wait_time(due)
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

    def _wait_time(self, due: float | None) -> float | None:
        """How long to sleep, given when the earliest queued row is due (None: nothing queued)."""
        if self._is_awaiting_network():
            return self._probe_interval_s
        if due is None:
            return self._idle_check_s  # nothing queued: a submission wakes us sooner
        return max(_MIN_WAIT_S, due - self._clock())

    def _check_when_idle(self) -> None:
        """With nothing queued (sends would tell), ask the platform's health when it has not
        answered lately."""
        with self._lock:
            last = self._last_contact_at
        if last is not None and self._clock() - last < self._idle_check_s:
            return
        ok, changed = self._ask_health()
        if changed or ok:
            self._notify()

    def _ask_health(self) -> tuple[bool, bool]:
        """(the platform answers, that differs from what was known); records the contact."""
        ok = self._client.health()
        with self._lock:
            changed = self._online != ok
            self._online = ok
            if ok:
                self._last_contact_at = self._clock()
        return ok, changed

    def _is_awaiting_network(self) -> bool:
        with self._lock:
            return self._awaiting_network

    def _probe(self) -> bool:
        ok, changed = self._ask_health()
        if ok:
            with self._lock:
                self._awaiting_network = False
                self._recovering = True
            moved = self._outbox.bring_forward()
            log.info("sync: the platform answers again; %d waiting row(s) due now", moved)
        if changed:
            self._notify()
        return ok

    def _claim(self, size: int) -> list[OutboxItem]:
        """The next rows to send: a row deliver_now waits for, alone, before the backlog."""
        with self._lock:
            urgent, self._urgent = self._urgent, set()
        if urgent:
            items = self._outbox.claim_batch(1, ids=urgent)
            if items:
                with self._lock:  # the rest, if any, go next time
                    self._urgent |= urgent - {items[0].id}
                return items
        if size > 1 and self._client.batch_supported:
            return self._outbox.claim_batch(size, max_bytes=self._batch_bytes)
        return self._outbox.claim_batch(1)

    def _adapt_batch_limit(self, sent: int, outcomes: list[SubmitOutcome | None]) -> None:
        timed_out = any(o is not None and o.error_code == TIMEOUT for o in outcomes)
        answered = not any(o is not None and o.offline for o in outcomes)
        if timed_out and sent > 1:
            self._batch_limit = sent // 2
            log.info("sync: a batch of %d timed out; at most %d from now", sent, sent // 2)
        # A single row proves little about the link, except when singles are all it takes.
        elif answered and (sent > 1 or self._batch_limit == 1):
            self._batch_limit = min(self._batch_size, self._batch_limit * 2)

    def _deliver(self, items: list[OutboxItem]) -> list[SubmitOutcome | None]:
        """Send claimed rows (one request) and record every result in one outbox transaction.

        None stands for a row that was not sent because it cannot be read: it is set aside.
        """
        outcomes: list[SubmitOutcome | None] = [None] * len(items)
        sendable: list[tuple[int, dict[str, object]]] = []
        calls: list[tuple[int, dict[str, object]]] = []  # help requests: one request each
        bundles: list[tuple[int, tuple[str, ...]]] = []  # bundles: one request each
        corrections: list[tuple[int, dict[str, object]]] = []  # one request each
        ratings: list[tuple[int, dict[str, object]]] = []  # one request each, after submissions
        for index, item in enumerate(items):
            if item.kind == BUNDLE_KIND:
                _sort_bundle(index, item, bundles)
            elif item.kind == HELP_REQUEST_KIND:
                self._sort_help_request(index, item, outcomes, calls)
            else:
                _sort_body(index, item, sendable, corrections, ratings)
        # Help requests, bundles and corrections go one request each (an empty list sends
        # nothing).
        singles = [
            *self._send_help_requests(items, calls),
            *self._send_bundles(items, bundles),
            *self._send_corrections(items, corrections),
        ]
        for index, answer in singles:
            outcomes[index] = answer
        if sendable:
            sent = self._send(items, sendable)
            for (index, _), answer in zip(sendable, sent, strict=True):
                outcomes[index] = answer
        # Ratings last: a submission claimed with its rating reaches the platform first.
        for index, answer in self._send_ratings(items, ratings):
            outcomes[index] = answer
        delays = [self._delay(item, o) for item, o in zip(items, outcomes, strict=True)]
        settlements = [
            _settlement(i, o, d) for i, o, d in zip(items, outcomes, delays, strict=True)
        ]
        # Where each row stands once the settlements before it apply: two corrections of one
        # submission in one batch must not settle it twice (delivered, then refused).
        settled = {s.item_id: s.state for s in settlements}
        for index, body in corrections:
            for settlement in self._corrected(str(body["submission_id"]), outcomes[index], settled):
                settled[settlement.item_id] = settlement.state
                settlements.append(settlement)
        self._outbox.settle_many(settlements)
        with self._lock:
            # One send is one try after a recovery, however many rows it carried.
            recovering = self._recovering
        for item, outcome, delay in zip(items, outcomes, delays, strict=True):
            self._note(item, outcome, delay, recovering=recovering, alone=len(items) == 1)
        if len(items) > 1:
            _log_batch(outcomes)
        return outcomes

    def _sort_help_request(
        self,
        index: int,
        item: OutboxItem,
        outcomes: list[SubmitOutcome | None],
        calls: list[tuple[int, dict[str, object]]],
    ) -> None:
        """A help request goes to calls, or is refused here when too old to be worth sending."""
        if self._clock() - item.created_at > HELP_REQUEST_TTL_S:
            outcomes[index] = SubmitOutcome(
                OutcomeKind.REJECTED,
                error_code=HELP_REQUEST_EXPIRED,
                error="help request too old to send",
            )
            return
        body = _help_request_body(item)
        if body is not None:
            calls.append((index, body))

    def _send(
        self, items: list[OutboxItem], sendable: list[tuple[int, dict[str, object]]]
    ) -> list[SubmitOutcome]:
        try:
            if len(sendable) == 1:
                index, body = sendable[0]
                return [self._client.submit(items[index].id, body)]
            return self._client.submit_batch([(items[i].id, body) for i, body in sendable])
        except Exception:
            log.exception("sync: submitting %d outbox item(s) failed unexpectedly", len(sendable))
            return [SubmitOutcome(OutcomeKind.RETRY, error_code=INTERNAL_ERROR)] * len(sendable)

    def _send_help_requests(
        self, items: list[OutboxItem], calls: list[tuple[int, dict[str, object]]]
    ) -> list[tuple[int, SubmitOutcome]]:
        """Each help request alone (staff want them at once, and they are few); once the
        platform stops answering, the rest share that outcome."""
        answers: list[tuple[int, SubmitOutcome]] = []
        for index, body in calls:
            if answers and answers[-1][1].offline:
                answers.append((index, answers[-1][1]))
                continue
            try:
                outcome = self._client.send_help_request(items[index].id, body)
            except Exception:
                log.exception("sync: sending help request %s failed unexpectedly", items[index].id)
                outcome = SubmitOutcome(OutcomeKind.RETRY, error_code=INTERNAL_ERROR)
            answers.append((index, outcome))
        return answers

    def _send_ratings(
        self, items: list[OutboxItem], ratings: list[tuple[int, dict[str, object]]]
    ) -> list[tuple[int, SubmitOutcome]]:
        """Each rating alone; once the platform stops answering, the rest share that outcome.
        A rating of a submission still kept here undelivered (not found on the platform yet, in
        any state but delivered) waits too."""
        answers: list[tuple[int, SubmitOutcome]] = []
        for index, rating in ratings:
            if answers and answers[-1][1].offline:
                answers.append((index, answers[-1][1]))
                continue
            submission_id = str(rating["submission_id"])
            body = rating["body"]
            assert isinstance(body, dict)  # noqa: S101 - _rating_body checked it
            try:
                outcome = self._client.send_rating(items[index].id, submission_id, body)
            except Exception:
                log.exception("sync: sending rating %s failed unexpectedly", items[index].id)
                outcome = SubmitOutcome(OutcomeKind.RETRY, error_code=INTERNAL_ERROR)
            if outcome.http_status == 404 and self._waiting_here(submission_id):
                outcome = SubmitOutcome(
                    OutcomeKind.RETRY,
                    http_status=404,
                    error_code=RATED_NOT_UPLOADED,
                    error="the rated submission is not uploaded yet",
                )
            answers.append((index, outcome))
        return answers

    def _waiting_here(self, submission_id: str) -> bool:
        """The rated submission is kept here and has not reached the platform: queued, being
        sent, refused (staff correct and resend it) or set aside for staff. Only a submission
        delivered, or unknown here, makes the platform's 404 final."""
        state = self._outbox.state_of(submission_id)
        return state is not None and state is not State.DELIVERED

    def _send_bundles(
        self, items: list[OutboxItem], bundles: list[tuple[int, tuple[str, ...]]]
    ) -> list[tuple[int, SubmitOutcome]]:
        """Each bundle in a request of its own; once the platform stops answering, the rest
        share that outcome."""
        answers: list[tuple[int, SubmitOutcome]] = []
        for index, submission_ids in bundles:
            item = items[index]
            if answers and answers[-1][1].offline:
                answers.append((index, answers[-1][1]))
                continue
            try:
                outcome = self._client.send_bundle(item.id, item.payload, submission_ids)
            except Exception:
                log.exception("sync: sending bundle %s failed unexpectedly", item.id)
                outcome = SubmitOutcome(OutcomeKind.RETRY, error_code=INTERNAL_ERROR)
            _log_bundle(item.id, len(submission_ids), outcome)
            answers.append((index, outcome))
        return answers

    def _send_corrections(
        self, items: list[OutboxItem], corrections: list[tuple[int, dict[str, object]]]
    ) -> list[tuple[int, SubmitOutcome]]:
        """Each correction in a request of its own; once the platform stops answering, the
        rest share that outcome."""
        answers: list[tuple[int, SubmitOutcome]] = []
        for index, body in corrections:
            if answers and answers[-1][1].offline:
                answers.append((index, answers[-1][1]))
                continue
            try:
                outcome = self._client.send_correction(items[index].id, body)
            except Exception:
                log.exception("sync: sending correction %s failed unexpectedly", items[index].id)
                outcome = SubmitOutcome(OutcomeKind.RETRY, error_code=INTERNAL_ERROR)
            answers.append((index, outcome))
        return answers

    def _corrected(
        self,
        submission_id: str,
        outcome: SubmitOutcome | None,
        settled: Mapping[str, State],
    ) -> list[Settlement]:
        """What the platform's answer to a correction makes of the submission it corrects:
        delivered with the receipt, rejected again with the new problems (validation_failed),
        or set aside for staff, keeping the refusal it had (any other answer: the platform
        holds nothing to correct, or took the correction for no correction at all). Nothing
        while the answer is awaited, or when the row is gone, delivered or set aside already;
        settled says where rows settled earlier in this batch stand."""
        if outcome is None or outcome.kind is OutcomeKind.RETRY:
            return []
        if submission_id in settled:
            state: State | None = settled[submission_id]
        else:
            state = self._outbox.state_of(submission_id)
        if state is None or state is State.DELIVERED:
            return []
        code = outcome.error_code or outcome.kind.value
        if outcome.kind is OutcomeKind.DELIVERED:
            log.info("sync: submission %s delivered by its correction", submission_id)
            receipt = b"{}" if outcome.response is None else _dump(outcome.response)
            return [Settlement(submission_id, State.DELIVERED, response=receipt)]
        if state is State.NEEDS_ATTENTION:
            return []
        if outcome.kind is OutcomeKind.REJECTED and code == VALIDATION_FAILED:
            fields = tuple((f.field, f.code) for f in outcome.fields)
            response = None if outcome.response is None else _dump(outcome.response)
            return [Settlement(submission_id, State.REJECTED, encode_error(code, fields), response)]
        log.warning("sync: a correction of %s was refused (%s); set aside", submission_id, code)
        # No response: the row keeps the refusal it had (the outbox keeps a response not given).
        return [Settlement(submission_id, State.NEEDS_ATTENTION, code)]

    def _delay(self, item: OutboxItem, outcome: SubmitOutcome | None) -> float:
        if outcome is None or outcome.kind is not OutcomeKind.RETRY:
            return 0.0
        return retry_delay(
            item.attempts,
            outcome.retry_after_s,
            base_s=self._retry_base_s,
            cap_s=self._retry_cap_s,
            rng=self._rng,
        )

    def _note(
        self,
        item: OutboxItem,
        outcome: SubmitOutcome | None,
        delay: float,
        *,
        recovering: bool,
        alone: bool,
    ) -> None:
        """Take in one recorded result: online state, last error, last success; and the log."""
        if outcome is None:
            log.error("sync: outbox item %s set aside (%s)", item.id, _unreadable_code(item))
            return
        code = outcome.error_code or outcome.kind.value
        if outcome.kind is OutcomeKind.DELIVERED:
            self._record(last_error=None, online=True, success=True)
            log.log(
                logging.INFO if alone else logging.DEBUG,
                "sync: outbox item %s delivered (attempt %d)",
                item.id,
                item.attempts,
            )
        elif outcome.kind is OutcomeKind.CONFLICT:
            self._record(last_error=code, online=True)
            log.warning("sync: outbox item %s conflicts on the platform (%s)", item.id, code)
        elif outcome.kind is OutcomeKind.REJECTED:
            self._record(last_error=code, online=True)
            log.warning("sync: outbox item %s rejected by the platform (%s)", item.id, code)
        else:
            with self._lock:
                self._last_error = code
                if outcome.offline:
                    self._online = False
                    self._awaiting_network = not recovering
                elif outcome.http_status is not None:
                    self._online = True
                self._recovering = False
            log.log(
                logging.INFO if alone else logging.DEBUG,
                "sync: outbox item %s not delivered (%s); next try in %.1f s",
                item.id,
                code,
                delay,
            )

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
            if online:
                self._last_contact_at = self._clock()
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


def _unreadable_code(item: OutboxItem) -> str:
    known = item.kind in (
        SUBMISSION_KIND,
        HELP_REQUEST_KIND,
        BUNDLE_KIND,
        CORRECTION_KIND,
        RATING_KIND,
    )
    return PAYLOAD_UNREADABLE if known else UNKNOWN_KIND


def _settlement(item: OutboxItem, outcome: SubmitOutcome | None, delay: float) -> Settlement:
    """The outbox change one result calls for."""
    if outcome is None:
        return Settlement(item.id, State.NEEDS_ATTENTION, _unreadable_code(item))
    code = outcome.error_code or outcome.kind.value
    response = None if outcome.response is None else _dump(outcome.response)
    if outcome.kind is OutcomeKind.DELIVERED:
        return Settlement(item.id, State.DELIVERED, response=response or b"{}")
    if item.kind == CORRECTION_KIND and outcome.kind is not OutcomeKind.RETRY:
        # Answered for good: the row it corrects carries the answer (and the case) from here.
        return Settlement(item.id, State.DELIVERED, response=response or b"{}")
    if outcome.kind is OutcomeKind.CONFLICT:
        return Settlement(item.id, State.NEEDS_ATTENTION, code, response)
    if outcome.kind is OutcomeKind.REJECTED:
        fields = tuple((f.field, f.code) for f in outcome.fields)
        return Settlement(item.id, State.REJECTED, encode_error(code, fields), response)
    return Settlement(item.id, State.QUEUED, code, delay_s=delay)


def _log_batch(outcomes: list[SubmitOutcome | None]) -> None:
    """One line per batch: how many were delivered and what became of the others."""
    tally: dict[str, int] = {}
    for outcome in outcomes:
        key = "unreadable" if outcome is None else (outcome.error_code or outcome.kind.value)
        tally[key] = tally.get(key, 0) + 1
    log.info(
        "sync: batch of %d sent: %s",
        len(outcomes),
        ", ".join(f"{count} {key}" for key, count in sorted(tally.items())),
    )


def _log_bundle(bundle_id: str, count: int, outcome: SubmitOutcome) -> None:
    """What the platform made of a bundle's submissions: ids and error codes only."""
    if not outcome.delivered or outcome.response is None:
        return
    refused = outcome.response.get("refused")
    refused = refused if isinstance(refused, list) else []
    log.info("sync: bundle %s answered: %d of %d accepted", bundle_id, count - len(refused), count)
    for entry in refused:
        log.warning(
            "sync: bundle %s: submission %s refused by the platform (HTTP %s, %s)",
            bundle_id,
            entry.get("submission_id"),
            entry.get("status"),
            entry.get("error"),
        )


def _submission_body(item: OutboxItem) -> dict[str, object] | None:
    if item.kind != SUBMISSION_KIND:
        return None
    try:
        body = json.loads(item.payload)
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(body, dict) or body.get("submission_id") != item.id:
        return None
    if item.attachments:
        if "attachments" in body:
            return None  # two sources of files for one submission: neither can be trusted
        body["attachments"] = [attachment_json(file) for file in item.attachments]
    return body


def _sort_bundle(index: int, item: OutboxItem, bundles: list[tuple[int, tuple[str, ...]]]) -> None:
    ids = None if item.attachments else bundle_submission_ids(item.payload)
    if ids is not None:
        bundles.append((index, ids))


def _sort_body(
    index: int,
    item: OutboxItem,
    sendable: list[tuple[int, dict[str, object]]],
    corrections: list[tuple[int, dict[str, object]]],
    ratings: list[tuple[int, dict[str, object]]],
) -> None:
    """A submission joins sendable, a correction corrections, a rating ratings; an unreadable
    row none of them."""
    if item.kind == RATING_KIND:
        if (rating := _rating_body(item)) is not None:
            ratings.append((index, rating))
    elif item.kind == CORRECTION_KIND:
        if (correction := _correction_body(item)) is not None:
            corrections.append((index, correction))
    elif (body := _submission_body(item)) is not None:
        sendable.append((index, body))


def _correction_body(item: OutboxItem) -> dict[str, object] | None:
    try:
        body = json.loads(item.payload)
    except (ValueError, UnicodeDecodeError):
        return None
    if (
        not isinstance(body, dict)
        or body.get("correction_id") != item.id
        or not isinstance(body.get("submission_id"), str)
        or item.attachments
    ):
        return None
    return body


def _help_request_body(item: OutboxItem) -> dict[str, object] | None:
    try:
        body = json.loads(item.payload)
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(body, dict) or body.get("help_request_id") != item.id or item.attachments:
        return None
    return body


def _rating_body(item: OutboxItem) -> dict[str, object] | None:
    try:
        rating = json.loads(item.payload)
    except (ValueError, UnicodeDecodeError):
        return None
    if (
        not isinstance(rating, dict)
        or rating.get("rating_id") != item.id
        or not isinstance(rating.get("submission_id"), str)
        or not rating["submission_id"]
        or not isinstance(rating.get("body"), dict)
        or item.attachments
    ):
        return None
    return rating


def _dump(value: object) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
