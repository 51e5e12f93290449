"""HTTP client for the government service platform API v1 (docs/api.md).

One keep-alive session, a (connect, read) timeout on every call, certificate checks always on.
Every answer is read as a stream and given up once it passes a size cap (kiosk.limits: the
catalogue has its own, larger one) or a deadline for the whole body, without reading the rest.
submit() never raises for network or platform trouble: it returns a SubmitOutcome that says
whether the submission is delivered, refused for good, in conflict, or worth trying again. Only a
2xx whose JSON body names our submission id counts as delivered: a captive portal's 200 page, a
redirect or a 2xx about another submission proves nothing.

submit_batch() sends many submissions in one request and holds each item to the same rule: an
item is delivered only when its own result is a 2xx whose body names it. An answer to the batch
that is not a well-formed result list for exactly these items proves nothing about any of them,
so every item is tried again. A platform without the batch endpoint (404/405) gets single
submissions, and is asked again only after a while.

send_bundle() hands the platform a bundle a village terminal signed (kiosk/bundles.py), as the
file's bytes, in a request this terminal signs like every other. The bundle is delivered when
the platform has answered for every one of its submissions: accepted (a 2xx naming it) or
refused for good (its error body); a refusal is reported, never sent again. Anything short of
an answer for each item tries the whole bundle again later; the platform takes each submission
id once, so nothing is stored twice.
"""

from __future__ import annotations

import base64
import email.utils
import json
import logging
import time
import urllib.parse
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import requests
import urllib3

from kiosk.errors import UserFacingError
from kiosk.i18n import N_
from kiosk.limits import MAX_CATALOGUE_BYTES, MAX_RESPONSE_BYTES, RESPONSE_DEADLINE_S
from kiosk.terminal_auth import TerminalAuth, check_transport
from offline_queue.outbox import Attachment
from offline_queue.retry import parse_retry_after

log = logging.getLogger(__name__)

API_PREFIX = "/api/v1"
DEFAULT_TIMEOUT = (3.05, 10.0)
DEFAULT_USER_AGENT = "hall-terminal/0.1"
RATING_LEVELS = (
    "very_satisfied",
    "satisfied",
    "basically_satisfied",
    "dissatisfied",
    "very_dissatisfied",
)
LOOKUP_FIELDS = ("receipt_number", "submission_id", "id_number")

# Error codes this client makes up itself, for answers that never came or made no sense.
TIMEOUT = "timeout"
CONNECTION_FAILED = "connection_failed"
TLS_ERROR = "tls_error"
TRANSPORT_ERROR = "transport_error"
UNEXPECTED_ANSWER = "unexpected_answer"
RESPONSE_TOO_LARGE = "response_too_large"

_RETRY_STATUSES = frozenset({408, 425, 429})
# The platform refused the terminal, not the submission: the row stays queued, unharmed, until
# the terminal is allowed again (enrolled anew, its clock put right). Staff see the code.
AUTH_REFUSALS = frozenset(
    {
        "credentials_missing",
        "signature_invalid",
        "terminal_unknown",
        "terminal_revoked",
        "request_stale",
        "request_replayed",
        # Queued before the terminal was enrolled again under another id, or sealed to another
        # platform's key: staff must put that right; the submission is not at fault.
        "terminal_mismatch",
        "sealed_invalid",
    }
)
REQUEST_STALE = "request_stale"
_MAX_TEXT = 200
MAX_AUDIT_BATCH = 200  # the most audit log entries one upload carries (the platform's limit)
MAX_BATCH = 100  # the most submissions one batch request carries (the platform's limit too)
# How long a platform that answered the batch endpoint with 404/405 is sent single submissions
# before the endpoint is tried again (a portal's 404 must not turn batches off for good).
BATCH_RECHECK_S = 600.0
_NO_BATCH_ENDPOINT = frozenset({404, 405})
_CHUNK = 64 * 1024
# A bundle of thousands of submissions is opened, checked and stored before the platform
# answers: its read timeout is longer than a single submission's, and its answer, one result
# per submission, is allowed this much per item beyond the usual cap.
BUNDLE_READ_TIMEOUT_S = 300.0
BUNDLE_RESULT_BYTES = 2048


class OutcomeKind(StrEnum):
    DELIVERED = "delivered"
    CONFLICT = "conflict"
    REJECTED = "rejected"
    RETRY = "retry"


@dataclass(frozen=True)
class FieldError:
    """One failed check the platform reported: the form property and the JSON Schema keyword."""

    field: str
    code: str


@dataclass(frozen=True)
class SubmitOutcome:
    kind: OutcomeKind
    response: dict[str, Any] | None = None  # the platform's JSON body, when it sent one
    http_status: int | None = None
    error_code: str | None = None
    retry_after_s: float | None = None
    error: str = ""  # short, non-personal, English: for logs and the outbox's last_error
    fields: tuple[FieldError, ...] = field(default_factory=tuple)
    # The platform itself did not answer: no answer at all, or one from a portal or proxy in its
    # place. The sync engine then probes health instead of spending attempts.
    offline: bool = False

    @property
    def delivered(self) -> bool:
        return self.kind is OutcomeKind.DELIVERED


class PlatformError(UserFacingError):
    """A non-submit call failed; `code` says why in machine terms."""

    def __init__(
        self, message: str, /, *, code: str, http_status: int | None = None, **params: object
    ) -> None:
        super().__init__(message, **params)
        self.code = code
        self.http_status = http_status


class PlatformUnreachable(PlatformError):
    MESSAGE = N_("The service platform cannot be reached right now. Please try again later.")


class PlatformAnswerError(PlatformError):
    MESSAGE = N_("The service platform gave an answer this terminal does not understand.")


class PlatformNotFound(PlatformError):
    MESSAGE = N_("The service platform has no record of this.")


class PlatformRefused(PlatformError):
    MESSAGE = N_("The service platform did not accept the request.")


class PlatformResponseTooLarge(PlatformAnswerError):
    """The answer passed its size cap; the rest of it was not read."""

    MESSAGE = N_("The service platform sent more data than this terminal accepts.")


class _TooLarge(Exception):
    def __init__(self, status: int, cap: int) -> None:
        super().__init__(f"answer larger than {cap} bytes (HTTP {status})")
        self.status = status
        self.cap = cap


@dataclass(frozen=True)
class _Answer:
    status: int
    headers: Mapping[str, str]
    content: bytes


class PlatformClient:
    def __init__(
        self,
        base_url: str,
        *,
        timeout: tuple[float, float] = DEFAULT_TIMEOUT,
        session: requests.Session | None = None,
        user_agent: str = DEFAULT_USER_AGENT,
        clock: Callable[[], float] = time.time,
        batch_recheck_s: float = BATCH_RECHECK_S,
        monotonic: Callable[[], float] = time.monotonic,
        max_response_bytes: int = MAX_RESPONSE_BYTES,
        max_catalogue_bytes: int = MAX_CATALOGUE_BYTES,
        response_deadline_s: float = RESPONSE_DEADLINE_S,
        auth: TerminalAuth | None = None,
        ca_path: str | None = None,
    ) -> None:
        """auth signs every request (kiosk.terminal_auth); ca_path, when given, is the only CA
        the platform's certificate may chain to (pinned at enrolment)."""
        if not base_url.startswith(("http://", "https://")):
            raise ValueError("base_url must be an http(s) URL")
        check_transport(base_url)
        self._base = base_url.rstrip("/")
        self._auth = auth
        self._timeout = timeout
        self._clock = clock
        self._batch_recheck_s = batch_recheck_s
        self._monotonic = monotonic
        self._no_batch_until: float | None = None  # monotonic time; None: batches are used
        self._max_response = max_response_bytes
        self._max_catalogue = max_catalogue_bytes
        self._deadline_s = response_deadline_s
        self._session = session if session is not None else requests.Session()
        if self._session.verify is False:
            raise ValueError("certificate verification must stay on")
        # Given with every request: requests lets REQUESTS_CA_BUNDLE or CURL_CA_BUNDLE in the
        # environment replace a session's verify, which would quietly undo the pin.
        verify = ca_path if ca_path is not None else self._session.verify
        self._verify: bool | str = True if verify is None else verify
        self._session.auth = auth
        self._session.headers.update({"User-Agent": user_agent, "Accept": "application/json"})

    @property
    def base_url(self) -> str:
        return self._base

    @property
    def terminal_id(self) -> str | None:
        """The terminal this client signs for; None when it does not sign."""
        return self._auth.terminal_id if self._auth is not None else None

    @property
    def batch_supported(self) -> bool:
        """False while the platform is taken to lack the batch endpoint."""
        until = self._no_batch_until
        return until is None or self._monotonic() >= until

    def _url(self, path: str) -> str:
        return f"{self._base}{API_PREFIX}{path}"

    # -- calls -------------------------------------------------------------------------------

    def health(self) -> bool:
        """True when the platform itself answers (not a portal or proxy in its place)."""
        try:
            answer = self._send("GET", "/health")
        except (requests.RequestException, _TooLarge):
            return False
        body = _json_object(answer.content) if answer.status == 200 else None
        return body is not None and body.get("status") == "ok"

    def get_terminal_keys(self) -> dict[str, Any]:
        """GET /terminals/keys as sent; checked by kiosk.catalogue_store.TerminalKeysStore."""
        return self._get_json("/terminals/keys")

    def get_staff(self) -> dict[str, Any]:
        """The hall's staff list with PIN hashes (docs/api.md "Staff"), for this terminal."""
        return self._get_json("/staff")

    def get_catalogue(self) -> dict[str, Any]:
        """The catalogue as sent (checked by kiosk.catalogue, not here); read up to its own cap."""
        body = self._get_json("/catalogue", cap=self._max_catalogue)
        if not isinstance(body.get("services"), list) or not isinstance(body.get("version"), str):
            raise PlatformAnswerError(PlatformAnswerError.MESSAGE, code=UNEXPECTED_ANSWER)
        return body

    def status(self, submission_id: str) -> dict[str, Any]:
        """Status and history of a submission; PlatformNotFound when the platform lacks it."""
        body = self._get_json(f"/submissions/{_path_segment(submission_id)}")
        if body.get("submission_id") != submission_id:
            raise PlatformAnswerError(PlatformAnswerError.MESSAGE, code=UNEXPECTED_ANSWER)
        return body

    def rate(self, submission_id: str, level: str, comment: str = "") -> dict[str, Any]:
        if level not in RATING_LEVELS:
            raise ValueError(f"unknown rating level {level!r}")
        answer = self._request(
            "POST",
            f"/submissions/{_path_segment(submission_id)}/rating",
            json_body={"level": level, "comment": comment},
        )
        body = self._json_or_raise(answer)
        if body.get("submission_id") != submission_id:
            raise PlatformAnswerError(PlatformAnswerError.MESSAGE, code=UNEXPECTED_ANSWER)
        return body

    def lookup(self, query: Mapping[str, str]) -> dict[str, Any]:
        """Cases by receipt number, submission id or ID number (docs/api.md, "Lookup"): the
        platform's answer {"cases": [...]}, newest first. The ID number goes only in this
        signed request's body, never in a URL or a log."""
        if len(query) != 1 or next(iter(query)) not in LOOKUP_FIELDS:
            raise ValueError("a lookup asks by exactly one of " + ", ".join(LOOKUP_FIELDS))
        return self._json_or_raise(self._request("POST", "/lookup", json_body=query))

    def send_rating(
        self, rating_id: str, submission_id: str, body: Mapping[str, Any]
    ) -> SubmitOutcome:
        """Send a queued satisfaction rating, with its id as the Idempotency-Key; never raises
        for the network. Delivered is a 2xx naming the submission. A rating for a case this
        terminal did not file (terminal_mismatch) is refused for good, not tried again."""
        path = f"/submissions/{_path_segment(submission_id)}/rating"
        answer = self._post(path, _dump(body), idempotency_key=rating_id)
        if isinstance(answer, SubmitOutcome):
            return answer
        outcome = _classify(
            submission_id,
            answer.status,
            answer.headers.get("Retry-After"),
            _json_object(answer.content),
            self._clock(),
        )
        if outcome.error_code == "terminal_mismatch" and outcome.http_status == 403:
            return SubmitOutcome(
                OutcomeKind.REJECTED,
                response=outcome.response,
                http_status=403,
                error_code="terminal_mismatch",
                error="HTTP 403 terminal_mismatch",
            )
        return outcome

    def submit(self, submission_id: str, body: Mapping[str, Any]) -> SubmitOutcome:
        """Send one submission with its id as the Idempotency-Key; never raises for the network."""
        if body.get("submission_id") != submission_id:
            raise ValueError("the body's submission_id must be the idempotency key")
        answer = self._post("/submissions", _dump(body), idempotency_key=submission_id)
        if isinstance(answer, SubmitOutcome):
            return answer
        return classify_submit_answer(
            submission_id,
            answer.status,
            answer.headers.get("Retry-After"),
            answer.content,
            now=self._clock(),
        )

    def send_help_request(self, help_request_id: str, body: Mapping[str, Any]) -> SubmitOutcome:
        """Tell staff a citizen needs them, with the request's id as the Idempotency-Key; never
        raises for the network. The answer is read like a submission's."""
        if body.get("help_request_id") != help_request_id:
            raise ValueError("the body's help_request_id must be the idempotency key")
        answer = self._post("/help-requests", _dump(body), idempotency_key=help_request_id)
        if isinstance(answer, SubmitOutcome):
            return answer
        return _classify(
            help_request_id,
            answer.status,
            answer.headers.get("Retry-After"),
            _json_object(answer.content),
            self._clock(),
            id_field="help_request_id",
        )

    def send_correction(self, correction_id: str, body: Mapping[str, Any]) -> SubmitOutcome:
        """Send new values for a refused submission's fields (docs/api.md, "Corrections");
        never raises for the network. Delivered is a 2xx naming the corrected submission: it is
        then received, under its own id and receipt number; a 422 is a refusal again."""
        submission_id = body.get("submission_id")
        if body.get("correction_id") != correction_id or not isinstance(submission_id, str):
            raise ValueError("a correction names its own id and the submission it corrects")
        path = f"/submissions/{_path_segment(submission_id)}/corrections"
        answer = self._post(path, _dump(body))
        if isinstance(answer, SubmitOutcome):
            return answer
        return _classify(
            submission_id,
            answer.status,
            answer.headers.get("Retry-After"),
            _json_object(answer.content),
            self._clock(),
        )

    def submit_batch(self, items: Sequence[tuple[str, Mapping[str, Any]]]) -> list[SubmitOutcome]:
        """Send up to MAX_BATCH submissions in one request: one outcome per item, in order.

        Never raises for the network. One item, or a platform without the batch endpoint, goes
        by single submissions.
        """
        if len(items) > MAX_BATCH:
            raise ValueError(f"a batch holds at most {MAX_BATCH} submissions")
        for submission_id, body in items:
            if body.get("submission_id") != submission_id:
                raise ValueError("each body's submission_id must be its idempotency key")
        if len(items) <= 1 or not self.batch_supported:
            return self._submit_singly(items)
        data = b'{"submissions":[' + b",".join(_dump(body) for _, body in items) + b"]}"
        try:
            answer = self._send(
                "POST",
                "/submissions/batch",
                data=data,
                headers={"Content-Type": "application/json"},
            )
        except requests.RequestException as exc:
            return [_transport_outcome(exc)] * len(items)
        except _TooLarge as exc:
            return [_too_large_outcome(exc)] * len(items)
        status = answer.status
        if status in _NO_BATCH_ENDPOINT:
            log.info("the platform has no batch endpoint (HTTP %d); sending one by one", status)
            self._no_batch_until = self._monotonic() + self._batch_recheck_s
            return self._submit_singly(items)
        outcomes = classify_batch_answer(
            [submission_id for submission_id, _ in items],
            status,
            answer.headers.get("Retry-After"),
            answer.content,
            now=self._clock(),
        )
        if outcomes is None:
            # The platform refused the batch as a whole (too large, say): not a verdict on any
            # item, so each goes on its own and gets its own answer.
            log.info("the platform refused a batch (HTTP %d); sending one by one", status)
            return self._submit_singly(items)
        return outcomes

    def send_bundle(
        self, bundle_id: str, data: bytes, submission_ids: Sequence[str]
    ) -> SubmitOutcome:
        """Hand the platform a village terminal's bundle (the file's bytes, as imported), with
        its id as the Idempotency-Key; never raises for the network. submission_ids are the
        bundle's items, in order: the answer must name each of them."""
        if not submission_ids:
            raise ValueError("a bundle holds at least one submission")
        read_s = max(self._timeout[1], BUNDLE_READ_TIMEOUT_S)
        answer = self._post(
            "/bundles",
            data,
            idempotency_key=bundle_id,
            cap=self._max_response + len(submission_ids) * BUNDLE_RESULT_BYTES,
            timeout=(self._timeout[0], read_s),
        )
        if isinstance(answer, SubmitOutcome):
            return answer
        return classify_bundle_answer(
            bundle_id,
            submission_ids,
            answer.status,
            answer.headers.get("Retry-After"),
            answer.content,
            now=self._clock(),
        )

    def send_audit(self, entries: Sequence[Mapping[str, Any]]) -> SubmitOutcome:
        """Upload audit log entries (AuditEntry.to_json(), oldest first, at most
        MAX_AUDIT_BATCH) to POST /audit; never raises for the network.

        DELIVERED only for a 2xx that names this terminal and a last_seq at least the last
        entry's: the platform holds them all. A 409 (audit_fork) is a CONFLICT, a refused entry
        (422 audit_entry_invalid, naming its seq) is REJECTED; both carry the platform's body."""
        if not 1 <= len(entries) <= MAX_AUDIT_BATCH:
            raise ValueError(f"an audit upload holds 1 to {MAX_AUDIT_BATCH} entries")
        last = entries[-1].get("seq")
        if type(last) is not int:
            raise ValueError("each audit entry has an integer seq")
        data = b'{"entries":[' + b",".join(_dump(entry) for entry in entries) + b"]}"
        answer = self._post("/audit", data)
        if isinstance(answer, SubmitOutcome):
            return answer
        outcome = _classify(
            self.terminal_id or "",
            answer.status,
            answer.headers.get("Retry-After"),
            _json_object(answer.content),
            self._clock(),
            id_field="terminal_id",
        )
        if outcome.delivered:
            held = outcome.response.get("last_seq") if outcome.response is not None else None
            if type(held) is not int or held < last:
                return _unexpected(answer.status)
        return outcome

    def _submit_singly(self, items: Sequence[tuple[str, Mapping[str, Any]]]) -> list[SubmitOutcome]:
        """submit() each item; once the platform stops answering, the rest share that outcome
        instead of each waiting out the same timeout."""
        outcomes: list[SubmitOutcome] = []
        for submission_id, body in items:
            if outcomes and outcomes[-1].offline:
                outcomes.append(outcomes[-1])
            else:
                outcomes.append(self.submit(submission_id, body))
        return outcomes

    def close(self) -> None:
        self._session.close()

    def _post(
        self,
        path: str,
        data: bytes,
        *,
        idempotency_key: str | None = None,
        cap: int | None = None,
        timeout: tuple[float, float] | None = None,
    ) -> _Answer | SubmitOutcome:
        """POST a JSON body for the outbox: the answer, or, when none came (or it was too
        large), the outcome that says so. Never raises for the network."""
        headers = {"Content-Type": "application/json"}
        if idempotency_key is not None:
            headers["Idempotency-Key"] = idempotency_key
        try:
            return self._send("POST", path, data=data, headers=headers, cap=cap, timeout=timeout)
        except requests.RequestException as exc:
            return _transport_outcome(exc)
        except _TooLarge as exc:
            return _too_large_outcome(exc)

    # -- helpers -----------------------------------------------------------------------------

    def _send(
        self,
        method: str,
        path: str,
        *,
        data: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        cap: int | None = None,
        timeout: tuple[float, float] | None = None,
    ) -> _Answer:
        """One request; its answer read up to `cap` bytes (the response cap by default).

        Raises requests' exceptions for the transport and _TooLarge past the cap. Redirects are
        not followed: they come from a portal or a misconfiguration.
        """
        limit = self._max_response if cap is None else cap
        wait = self._timeout if timeout is None else timeout
        answer = self._send_once(method, path, data, headers, limit, wait)
        if self._clock_corrected(answer):
            answer = self._send_once(method, path, data, headers, limit, wait)
        return answer

    def _send_once(  # noqa: PLR0917 - one request's parts, passed on from _send
        self,
        method: str,
        path: str,
        data: bytes | None,
        headers: Mapping[str, str] | None,
        limit: int,
        timeout: tuple[float, float],
    ) -> _Answer:
        resp = self._session.request(
            method,
            self._url(path),
            data=data,
            headers=headers,
            timeout=timeout,
            allow_redirects=False,
            stream=True,
            verify=self._verify,
        )
        try:
            return _Answer(resp.status_code, resp.headers, self._read(resp, limit))
        finally:
            # An answer given up part way closes its connection; a whole one goes back to the pool.
            resp.close()

    def _clock_corrected(self, answer: _Answer) -> bool:
        """After a refusal for a stale timestamp, take the platform's clock from its Date header
        (a village terminal's clock drifts while it is offline for days); True to send again.
        A signed request is sent again with a new nonce, so this is no replay."""
        if self._auth is None or answer.status != 401:
            return False
        if _error_code(_json_object(answer.content)) != REQUEST_STALE:
            return False
        try:
            theirs = email.utils.parsedate_to_datetime(answer.headers.get("Date", ""))
        except (TypeError, ValueError):
            return False
        if not self._auth.set_clock_from(theirs.timestamp()):
            return False  # already on the platform's time: something else is wrong
        log.warning(
            "the platform's clock is %.0f s from ours; signing on its time",
            self._auth.clock_offset_s,
        )
        return True

    def _read(self, resp: requests.Response, cap: int) -> bytes:
        declared = resp.headers.get("Content-Length", "").strip()
        if declared.isdigit() and (len(declared) > 18 or int(declared) > cap):
            raise _TooLarge(resp.status_code, cap)
        deadline = time.monotonic() + self._deadline_s
        body = bytearray()
        while True:
            # read1 returns whatever has arrived: a body that trickles in cannot hold one read
            # until a whole chunk is there, so the deadline is looked at at least once per
            # read timeout. The cap counts decoded bytes, so gzip cannot inflate past it.
            try:
                chunk = resp.raw.read1(_CHUNK, decode_content=True)
            except urllib3.exceptions.HTTPError as exc:
                raise _requests_error(exc) from exc
            if not chunk:
                return bytes(body)
            body += chunk
            if len(body) > cap:
                raise _TooLarge(resp.status_code, cap)
            if time.monotonic() > deadline:
                raise requests.exceptions.ReadTimeout("the answer did not end in time")

    def _request(
        self,
        method: str,
        path: str,
        json_body: Mapping[str, Any] | None = None,
        *,
        cap: int | None = None,
    ) -> _Answer:
        data = None
        headers = None
        if json_body is not None:
            data = json.dumps(json_body, ensure_ascii=False).encode("utf-8")
            headers = {"Content-Type": "application/json"}
        try:
            return self._send(method, path, data=data, headers=headers, cap=cap)
        except requests.RequestException as exc:
            code = _transport_outcome(exc).error_code or TRANSPORT_ERROR
            raise PlatformUnreachable(PlatformUnreachable.MESSAGE, code=code) from exc
        except _TooLarge as exc:
            log.warning("platform answer to %s given up: %s", method, exc)
            raise PlatformResponseTooLarge(
                PlatformResponseTooLarge.MESSAGE, code=RESPONSE_TOO_LARGE, http_status=exc.status
            ) from exc

    def _get_json(self, path: str, *, cap: int | None = None) -> dict[str, Any]:
        return self._json_or_raise(self._request("GET", path, cap=cap))

    @staticmethod
    def _json_or_raise(answer: _Answer) -> dict[str, Any]:
        body = _json_object(answer.content)
        status = answer.status
        if 200 <= status < 300 and body is not None:
            return body
        code = _error_code(body) or f"http_{status}"
        if body is not None and status == 404:
            raise PlatformNotFound(PlatformNotFound.MESSAGE, code=code, http_status=status)
        if body is not None and 400 <= status < 500 and status not in _RETRY_STATUSES:
            raise PlatformRefused(PlatformRefused.MESSAGE, code=code, http_status=status)
        if status >= 500 or status in _RETRY_STATUSES:
            raise PlatformUnreachable(PlatformUnreachable.MESSAGE, code=code, http_status=status)
        raise PlatformAnswerError(
            PlatformAnswerError.MESSAGE, code=UNEXPECTED_ANSWER, http_status=status
        )


def classify_submit_answer(
    submission_id: str,
    status: int,
    retry_after: str | None,
    content: bytes,
    *,
    now: float,
) -> SubmitOutcome:
    """Decide what an HTTP answer to POST /submissions means for the outbox row."""
    return _classify(submission_id, status, retry_after, _json_object(content), now)


def classify_batch_answer(
    submission_ids: Sequence[str],
    status: int,
    retry_after: str | None,
    content: bytes,
    *,
    now: float,
) -> list[SubmitOutcome] | None:
    """What an answer to POST /submissions/batch means for each item, in order.

    None when the platform itself refused the batch as a whole (its 4xx error body): the items
    are then worth sending one by one. Anything but a result list naming exactly these ids, in
    this order, is an unexpected answer for every item.
    """
    count = len(submission_ids)
    body = _json_object(content)
    if 200 <= status < 300:
        results = body.get("results") if body is not None else None
        if not isinstance(results, list) or len(results) != count:
            return [_unexpected(status)] * count
        outcomes = []
        for submission_id, result in zip(submission_ids, results, strict=True):
            item_status = result.get("status") if isinstance(result, dict) else None
            item_body = result.get("body") if isinstance(result, dict) else None
            if (
                not isinstance(result, dict)
                or result.get("submission_id") != submission_id
                or type(item_status) is not int
                or not 100 <= item_status <= 599
                or not isinstance(item_body, dict)
            ):
                return [_unexpected(status)] * count
            outcomes.append(_classify(submission_id, item_status, None, item_body, now))
        return outcomes
    if status >= 500 or status in _RETRY_STATUSES:
        # The batch as a whole failed for now; each item waits as a single submission would.
        return [
            _classify(submission_id, status, retry_after, body, now)
            for submission_id in submission_ids
        ]
    if 400 <= status < 500 and _error_code(body) is not None:
        return None
    return [_unexpected(status)] * count


def classify_bundle_answer(
    bundle_id: str,
    submission_ids: Sequence[str],
    status: int,
    retry_after: str | None,
    content: bytes,
    *,
    now: float,
) -> SubmitOutcome:
    """What an answer to POST /bundles means for the bundle's outbox row.

    DELIVERED when every item has its answer: a 2xx naming it, or the platform's refusal of it
    (kept in the response as {"submission_id", "status", "error"}, never sent again). An item
    the platform could not settle now (5xx) sends the whole bundle again later. A refusal of the
    bundle itself is read as a refusal of a submission: the platform's error body says whether
    it is for good (an altered bundle, a village terminal it does not know) or for now.
    """
    body = _json_object(content)
    if not 200 <= status < 300:
        return _classify(bundle_id, status, retry_after, body, now, id_field="bundle_id")
    results = body.get("results") if body is not None else None
    if (
        body is None
        or body.get("bundle_id") != bundle_id
        or not isinstance(results, list)
        or len(results) != len(submission_ids)
    ):
        return _unexpected(status)
    delivered = 0
    refused: list[dict[str, Any]] = []
    for submission_id, result in zip(submission_ids, results, strict=True):
        item_status = result.get("status") if isinstance(result, dict) else None
        item_body = result.get("body") if isinstance(result, dict) else None
        if (
            not isinstance(result, dict)
            or result.get("submission_id") != submission_id
            or type(item_status) is not int
            or not isinstance(item_body, dict)
        ):
            return _unexpected(status)
        if 200 <= item_status < 300 and item_body.get("submission_id") == submission_id:
            delivered += 1
            continue
        code = _error_code(item_body)
        if 400 <= item_status < 500 and item_status not in _RETRY_STATUSES and code is not None:
            refused.append({"submission_id": submission_id, "status": item_status, "error": code})
            continue
        return SubmitOutcome(
            OutcomeKind.RETRY,
            http_status=status,
            error_code=code or f"http_{item_status}",
            error=f"bundle item answered HTTP {item_status}",
        )
    return SubmitOutcome(
        OutcomeKind.DELIVERED,
        response={"bundle_id": bundle_id, "delivered": delivered, "refused": refused},
        http_status=status,
    )


def _classify(
    submission_id: str,
    status: int,
    retry_after: str | None,
    body: dict[str, Any] | None,
    now: float,
    *,
    id_field: str = "submission_id",
) -> SubmitOutcome:
    code = _error_code(body)
    if 200 <= status < 300:
        if body is not None and body.get(id_field) == submission_id:
            return SubmitOutcome(OutcomeKind.DELIVERED, response=body, http_status=status)
        return _unexpected(status)
    if status >= 500 or status in _RETRY_STATUSES:
        return SubmitOutcome(
            OutcomeKind.RETRY,
            response=body,
            http_status=status,
            error_code=code or f"http_{status}",
            retry_after_s=parse_retry_after(retry_after, now),
            error=f"HTTP {status}" + (f" {code}" if code else ""),
        )
    if status in (400, 401, 403) and code in AUTH_REFUSALS:
        return SubmitOutcome(
            OutcomeKind.RETRY,
            response=body,
            http_status=status,
            error_code=code,
            error=f"HTTP {status} {code}",
        )
    # A definite answer (conflict, refusal) must come from the platform itself: its error body.
    # A proxy's or portal's 4xx page says nothing about the submission, so it is retried.
    if 400 <= status < 500 and code is not None and body is not None:
        if status == 409:
            return SubmitOutcome(
                OutcomeKind.CONFLICT,
                response=body,
                http_status=status,
                error_code=code,
                error=f"HTTP 409 {code}",
            )
        return SubmitOutcome(
            OutcomeKind.REJECTED,
            response=body,
            http_status=status,
            error_code=code,
            error=f"HTTP {status} {code}",
            fields=_field_errors(body),
        )
    return _unexpected(status)


def attachment_json(file: Attachment) -> dict[str, Any]:
    """One file as docs/api.md's "attachments" list carries it."""
    return {
        "name": file.name,
        "content_type": file.content_type,
        "size": file.size,
        "sha256": file.sha256(),
        "data_base64": base64.b64encode(file.data).decode("ascii"),
    }


def _dump(body: Mapping[str, Any]) -> bytes:
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def _unexpected(status: int) -> SubmitOutcome:
    return SubmitOutcome(
        OutcomeKind.RETRY,
        http_status=status,
        error_code=UNEXPECTED_ANSWER,
        error=f"unexpected answer (HTTP {status})",
        offline=True,
    )


def _too_large_outcome(exc: _TooLarge) -> SubmitOutcome:
    # Whoever sent it did answer over HTTP, so this is not "offline": the row waits out its
    # backoff like any unexpected answer, and the submission's id keeps a resend harmless.
    return SubmitOutcome(
        OutcomeKind.RETRY,
        http_status=exc.status,
        error_code=RESPONSE_TOO_LARGE,
        error=str(exc)[:_MAX_TEXT],
    )


def _requests_error(exc: urllib3.exceptions.HTTPError) -> requests.RequestException:
    """What requests would have raised for a failure while the body was read, as its iter_content
    does (read1 is urllib3's own and raises urllib3's exceptions)."""
    if isinstance(exc, urllib3.exceptions.ReadTimeoutError):
        return requests.exceptions.ReadTimeout(type(exc).__name__)
    if isinstance(exc, urllib3.exceptions.SSLError):
        return requests.exceptions.SSLError(type(exc).__name__)
    if isinstance(exc, urllib3.exceptions.DecodeError):
        return requests.exceptions.ContentDecodingError(type(exc).__name__)
    if isinstance(exc, urllib3.exceptions.ProtocolError):
        return requests.exceptions.ChunkedEncodingError(type(exc).__name__)
    return requests.exceptions.ConnectionError(type(exc).__name__)


def _transport_outcome(exc: requests.RequestException) -> SubmitOutcome:
    if isinstance(exc, requests.Timeout):
        code, offline = TIMEOUT, True
    elif isinstance(exc, requests.exceptions.SSLError):
        code, offline = TLS_ERROR, True  # often a portal intercepting HTTPS
    elif isinstance(exc, requests.ConnectionError):
        code, offline = CONNECTION_FAILED, True
    else:
        code, offline = TRANSPORT_ERROR, False
    # Only the exception's class: its text can carry URLs and, for some errors, request data.
    return SubmitOutcome(
        OutcomeKind.RETRY, error_code=code, error=type(exc).__name__[:_MAX_TEXT], offline=offline
    )


def _json_object(content: bytes) -> dict[str, Any] | None:
    try:
        value = json.loads(content)
    except (ValueError, UnicodeDecodeError, RecursionError):  # deep nesting ends in RecursionError
        return None
    return value if isinstance(value, dict) else None


def _error_code(body: Mapping[str, Any] | None) -> str | None:
    if body is None:
        return None
    code = body.get("error")
    if isinstance(code, str) and code and len(code) <= 64 and code.isascii():
        return code
    return None


def _field_errors(body: Mapping[str, Any]) -> tuple[FieldError, ...]:
    raw = body.get("fields")
    if not isinstance(raw, list):
        return ()
    result = []
    for entry in raw:
        if isinstance(entry, dict):
            name, code = entry.get("field"), entry.get("code")
            if isinstance(name, str) and isinstance(code, str):
                result.append(FieldError(name[:64], code[:64]))
    return tuple(result)


def _path_segment(value: str) -> str:
    if not value or "/" in value or value in (".", ".."):
        raise ValueError("not a usable id")
    return urllib.parse.quote(value, safe="-_.~")
